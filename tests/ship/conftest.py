"""Fixtures of the shipping tests: real servers, started by the tests themselves."""
