"""``python -m analytics``: run the command line (analytics/_cli)."""

from analytics._cli import main as main

if __name__ == "__main__":
    raise SystemExit(main())
