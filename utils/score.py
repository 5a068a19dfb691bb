"""Deprecated name of `python -m tools.score` (kept for one release)."""
from utils.deprecated import forward

if __name__ == "__main__":
    forward(old="utils.score", new="tools.score")
