"""The OTel sink's helper process: ``python -m analytics._write.otel_main CONFIG``
(see :mod:`analytics._write.otel_helper`)."""

from .otel_helper import main

if __name__ == "__main__":
    raise SystemExit(main())
