"""Shipping URLs: parsed once, one clear error per mistake, no password in sight."""

from __future__ import annotations

import pytest

from analytics import TargetError
from analytics._ship.target import DEFAULT_TABLE, parse_target


def test_a_clickhouse_url() -> None:
    target = parse_target("clickhouse://ch.internal/analytics?table=fleet")
    assert (target.engine, target.host, target.port) == ("clickhouse", "ch.internal", 8123)
    assert (target.database, target.table, target.user) == ("analytics", "fleet", None)


def test_a_postgresql_url_with_credentials_and_options() -> None:
    target = parse_target("postgres://ship%40er:p%2Fw@10.0.0.5:6543/db?table=t&sslmode=require")
    assert target.engine == "postgresql"
    assert (target.user, target.password, target.port) == ("ship@er", "p/w", 6543)
    assert target.options == {"sslmode": "require"}
    assert "p/w" not in repr(target)
    assert "p/w" not in target.display()
    assert target.display() == "postgresql://ship@er@10.0.0.5:6543/db?table=t"


def test_the_table_has_a_default() -> None:
    assert parse_target("postgresql://h/db").table == DEFAULT_TABLE


def test_one_sink_per_engine_host_port_database_and_table_not_password() -> None:
    a = parse_target("postgresql://u:one@h:5432/db?table=t")
    b = parse_target("postgresql://u:two@h:5432/db?table=t")
    c = parse_target("postgresql://u:one@h:5432/db?table=other")
    assert a.sink_id == b.sink_id != c.sink_id
    assert "/" not in a.sink_id
    assert ":" not in a.sink_id


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:5432/db", "not a shipping URL"),
        ("mysql://h/db", "unknown scheme 'mysql'"),
        ("postgresql:///db", "no host"),
        ("postgresql://h:port/db", "bad port"),
        ("clickhouse://h:8123", "no database"),
        ("clickhouse://h:8123/a/b", "bad database"),
        ("clickhouse://h/db?table=drop table", "bad table name"),
        ("postgresql://u:secret@h/db?table=x;y", "bad table name"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(TargetError, match=message) as caught:
        parse_target(url)
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value, ValueError)
