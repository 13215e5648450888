"""The write path: from a ``track_*`` call to a line in a file."""
