"""The read path: files, lines, filters, the merge and the summary engines."""
