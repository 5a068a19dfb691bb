"""Deprecated name of `python -m tools.benchmark` (kept for one release)."""
from utils.deprecated import forward

if __name__ == "__main__":
    forward(old="utils.benchmark", new="tools.benchmark")
