"""The shipping tests' servers are fixtures of tests/conftest.py (the docs use them too);
here, one face for both engines."""

from .central import central, crashable  # noqa: F401
