"""Tests of the write path (analytics/_write/)."""
