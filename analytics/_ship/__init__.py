"""The shipping wing: a directory's entries into a central engine (ClickHouse,
PostgreSQL), exactly once after dedup."""
