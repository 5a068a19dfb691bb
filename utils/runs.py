"""Deprecated name of `python -m tools.runs` (kept for one release)."""
from utils.deprecated import forward

if __name__ == "__main__":
    forward(old="utils.runs", new="tools.runs")
