"""Deprecated name of `python -m tools.data_report` (kept for one release)."""
from utils.deprecated import forward

if __name__ == "__main__":
    forward(old="data_loader.report", new="tools.data_report")
