"""Rendering a Summary: text, JSON, Markdown and CSV (``formats``), and a self-contained
HTML page (``html``) drawn with the pure SVG charts of ``charts``."""

from .formats import FORMATS, render, text_table

__all__ = ["FORMATS", "render", "text_table"]
