"""Tests of the command line (analytics/_cli/)."""
