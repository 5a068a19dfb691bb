"""Deprecated name of `python -m tools.synthetic` (kept for one release)."""
from utils.deprecated import forward

if __name__ == "__main__":
    forward(old="data_loader.synthetic", new="tools.synthetic")
