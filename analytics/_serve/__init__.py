"""The live dashboard (``python -m analytics serve DIR``): an in-memory index of a
directory's entries, kept up to date by reading only what changed, and a small ASGI
app (Starlette, served by uvicorn: the ``serve`` extra) that shows its report."""
