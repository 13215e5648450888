"""Request timing for any ASGI application (FastAPI, Starlette, Quart...), no framework
dependency: plain ASGI."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .facade import MetricsWriter

__all__ = ["RequestTimingMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTimingMiddleware:
    """Records one ``performance`` entry per HTTP request.

    ``data`` holds ``operation``, ``duration_ms`` (until the response is complete),
    ``success`` (status below 500 and no exception), ``method``, ``path`` and
    ``status``; an exception adds ``error_type`` and is re-raised. Other scopes
    (websocket, lifespan) pass through untouched.

    Args:
        app: the ASGI application to wrap.
        metrics: where to record.
        operation: the ``operation`` field of each entry.
        session_header: a request header whose value becomes ``session_id``.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: MetricsWriter,
        *,
        operation: str = "http.request",
        session_header: str | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.operation = operation
        self.session_header = session_header.lower().encode() if session_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # until the application says otherwise
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message["status"])
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException as exc:
            error = exc
            raise
        finally:
            extra: dict[str, Any] = {
                "method": scope.get("method", ""),
                "path": scope.get("path", ""),
                "status": status,
            }
            if error is not None:
                extra["error_type"] = type(error).__name__
            await self.metrics.track_performance(
                self._session(scope),
                self.operation,
                error is None and status < 500,
                (time.perf_counter() - started) * 1000.0,
                **extra,
            )

    def _session(self, scope: Scope) -> str | None:
        if self.session_header is None:
            return None
        for name, value in scope.get("headers", []):
            if name.lower() == self.session_header:
                return bytes(value).decode("latin-1")
        return None
