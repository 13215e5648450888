"""Tests of the read path (analytics/_read/)."""
