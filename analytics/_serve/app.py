"""The dashboard's ASGI app (Starlette): the page, its JSON, and a health check.

Endpoints:

- ``/``: the page (the report of the current view, controls, a refreshing script);
- ``/api/view``: what the script swaps in (the report's content, the status line, the
  controls' choices);
- ``/api/summary``: the ``Summary`` of the window and filters, as JSON (what
  ``report --format json`` prints);
- ``/healthz``: ``{"status": "ok", ...}`` with the index's counters.

Every one takes the same query: ``window`` (``15m``, ``1h``, ``24h``, any duration
the writer's options accept, or ``all``) or ``since``/``until`` (ISO-8601; UTC if
naive), ``type`` (repeatable), ``tool``, ``session``. With a token, every endpoint
needs it, as ``?token=`` or ``Authorization: Bearer``.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._config import parse_duration
from .._exceptions import AnalyticsError
from .index import DirectoryIndex, Query, View
from .page import content, facets_json, page, status_line

__all__ = ["DEFAULT_REFRESH", "TokenGuard", "create_app", "parse_query"]

DEFAULT_REFRESH = 3.0
"""Seconds between the page's refreshes."""


class QueryError(AnalyticsError, ValueError):
    """A query parameter the dashboard cannot use (answered with 400)."""


def _moment(name: str, text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name}={text!r} is not an ISO-8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_query(params: QueryParams, now: datetime | None = None) -> Query:
    """The :class:`Query` of a request's parameters.

    Raises:
        QueryError: a time, window or type that cannot be used.
    """
    since = until = None
    window = (params.get("window") or "").strip()
    if window and window != "all":
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            raise QueryError(f"window={window!r}: {exc}") from None
        since = (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    elif params.get("since"):
        since = _moment("since", params["since"])
    if params.get("until"):
        until = _moment("until", params["until"])
    types = tuple(t for t in params.getlist("type") if t)
    query = Query(
        since=since,
        until=until,
        types=types,
        tool=params.get("tool") or None,
        session_id=params.get("session") or None,
    )
    try:
        query.filter()
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    return query


class TokenGuard:
    """ASGI middleware: every HTTP request needs ``token``, as the ``token`` query
    parameter or an ``Authorization: Bearer`` header; else 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(Request(scope)):
            response = JSONResponse(
                {"error": "this dashboard needs its token (?token=... or Authorization: Bearer)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, request: Request) -> bool:
        given = request.query_params.get("token")
        if given is None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            given = value.strip() if scheme.lower() == "bearer" else None
        return given is not None and hmac.compare_digest(given.encode(), self.token)


class _Dashboard:
    """The endpoints over one index. Index work (reading files, summing, rendering)
    runs in a worker thread, one hop per request, one request at a time."""

    def __init__(self, index: DirectoryIndex, refresh_seconds: float) -> None:
        self.index = index
        self.refresh_seconds = refresh_seconds
        self.limiter = anyio.CapacityLimiter(1)

    async def _run(self, request: Request, build: Any) -> Response:
        try:
            query = parse_query(request.query_params)
        except QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        response: Response = await anyio.to_thread.run_sync(
            partial(build, query), limiter=self.limiter
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def home(self, request: Request) -> Response:
        params = dict(request.query_params)

        def build(query: Query) -> Response:
            view = self.index.view(query)
            return HTMLResponse(page(view, params, self.refresh_seconds))

        return await self._run(request, build)

    async def view(self, request: Request) -> Response:
        def build(query: Query) -> Response:
            view = self.index.view(query)
            return JSONResponse(_view_json(view))

        return await self._run(request, build)

    async def summary(self, request: Request) -> Response:
        def build(query: Query) -> Response:
            view = self.index.view(query)
            return Response(view.summary.model_dump_json(), media_type="application/json")

        return await self._run(request, build)

    async def warm(self) -> None:
        """Index the directory before the first request asks: the first view then
        shows at once (a request that comes sooner waits for this, not longer)."""
        await anyio.to_thread.run_sync(self.index.refresh, limiter=self.limiter)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.warm)
            yield
            tasks.cancel_scope.cancel()  # a refresh in a thread still ends as it would

    async def health(self, request: Request) -> Response:
        stats = asdict(self.index.stats)  # counters only: no file work on the loop
        directory = self.index.directory
        return JSONResponse(
            {
                "status": "ok",
                "state": self.index.state,
                "directory": str(directory or self.index.base),
                "stats": stats,
            },
            headers={"Cache-Control": "no-store"},
        )


def _view_json(view: View) -> dict[str, Any]:
    return {
        "state": view.state,
        "entries": view.summary.entries,
        "total_entries": view.total_entries,
        "status": status_line(view),
        "html": content(view),
        "facets": facets_json(view),
    }


def create_app(
    base_path: str | os.PathLike[str],
    *,
    prefix: str = "metrics",
    token: str | None = None,
    refresh_seconds: float = DEFAULT_REFRESH,
) -> Starlette:
    """The dashboard of the directory ``base_path`` (which need not exist yet).

    Args:
        base_path: the writer's base path (or its ``metrics`` directory).
        prefix: the writer's ``filename_prefix``.
        token: when given, every endpoint needs it.
        refresh_seconds: how often the page refreshes.

    Returns:
        the ASGI app; its ``state.index`` is the :class:`DirectoryIndex` it reads.
        Served with its lifespan, it indexes the directory as it starts.
    """
    index = DirectoryIndex(base_path, prefix=prefix)
    dashboard = _Dashboard(index, refresh_seconds)
    app = Starlette(
        lifespan=dashboard.lifespan,
        middleware=[Middleware(TokenGuard, token=token)] if token else [],
        routes=[
            Route("/", dashboard.home),
            Route("/api/view", dashboard.view),
            Route("/api/summary", dashboard.summary),
            Route("/healthz", dashboard.health),
        ],
    )
    app.state.index = index
    return app
