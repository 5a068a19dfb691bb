"""Deprecated name of `python -m tools.gpucheck` (kept for one release)."""
from utils.deprecated import forward

if __name__ == "__main__":
    forward(old="utils.gpucheck", new="tools.gpucheck")
