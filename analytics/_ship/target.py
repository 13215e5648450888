"""Where a shipper delivers: a URL, parsed once, with one clear error per mistake.

``clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE?table=NAME`` (the HTTP
interface; port 8123 by default) and
``postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE?table=NAME`` (``postgres://``
too; port 5432 by default). ``table`` defaults to ``analytics_entries``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from .._exceptions import TargetError

__all__ = ["DEFAULT_TABLE", "SCHEMES", "Target", "parse_target"]

DEFAULT_TABLE = "analytics_entries"

SCHEMES = {"clickhouse": "clickhouse", "postgresql": "postgresql", "postgres": "postgresql"}
"""The URL schemes we ship to, and the engine each one names."""

_DEFAULT_PORTS = {"clickhouse": 8123, "postgresql": 5432}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class Target:
    """A parsed shipping URL."""

    engine: str
    """``"clickhouse"`` or ``"postgresql"``."""
    host: str
    port: int
    database: str
    table: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)
    """Other query parameters, passed on to the engine (for example ``sslmode``)."""

    @property
    def sink_id(self) -> str:
        """A name for this sink, safe in a file name: one checkpoint per sink and
        directory. The password is not part of it (a new password is the same sink)."""
        raw = f"{self.engine}-{self.host}-{self.port}-{self.database}-{self.table}"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)

    def display(self) -> str:
        """The URL without its password, for logs and messages."""
        user = f"{self.user}@" if self.user else ""
        return f"{self.engine}://{user}{self.host}:{self.port}/{self.database}?table={self.table}"


def parse_target(url: str) -> Target:
    """Parse a shipping URL.

    Raises:
        TargetError: the URL cannot be used; the message names what is wrong.
    """
    if not isinstance(url, str) or "://" not in url:
        raise TargetError(
            f"not a shipping URL: {url!r} (expected clickhouse://HOST:8123/DB?table=NAME"
            " or postgresql://USER@HOST:5432/DB?table=NAME)"
        )
    parts = urlsplit(url)
    engine = SCHEMES.get(parts.scheme.lower())
    if engine is None:
        raise TargetError(
            f"unknown scheme {parts.scheme!r} in {_hide_password(url)}:"
            f" expected one of {', '.join(sorted(SCHEMES))}"
        )
    host = parts.hostname
    if not host:
        raise TargetError(f"no host in {_hide_password(url)}")
    try:
        port = parts.port or _DEFAULT_PORTS[engine]
    except ValueError:
        raise TargetError(f"bad port in {_hide_password(url)}") from None
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise TargetError(f"no database in {_hide_password(url)} (…:PORT/DATABASE?table=NAME)")
    if "/" in database:
        raise TargetError(f"bad database {database!r} in {_hide_password(url)}")
    query = parse_qs(parts.query, keep_blank_values=True)
    options = {key: values[-1] for key, values in query.items()}
    table = options.pop("table", DEFAULT_TABLE)
    for what, name in (("table", table), ("database", database)):
        if not _IDENTIFIER.fullmatch(name):
            raise TargetError(
                f"bad {what} name {name!r} in {_hide_password(url)}: letters, digits and _"
                " only, not starting with a digit"
            )
    return Target(
        engine=engine,
        host=host,
        port=port,
        database=database,
        table=table,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        options=options,
    )


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
