"""The dashboard app through httpx's ASGI transport: the page, the JSON, the empty
states, the windows and filters against ``summarize``, and the token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.datastructures import QueryParams

from analytics import MetricEntry, MetricType, Summary, summarize
from analytics._serve.app import QueryError, create_app, parse_query

from ..helpers import T0, at, line_of, write_file


def recent(seconds_ago: float, **fields: object) -> MetricEntry:
    """An entry ``seconds_ago`` before now (windows are counted back from now)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return at((now - T0).total_seconds() - seconds_ago, **fields)  # type: ignore[arg-type]


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """Entries two days, two hours, ten minutes and a minute old; two tools, two
    sessions, two types."""
    entries = []
    for age in (2 * 86400, 2 * 3600, 600, 60):
        for i in range(3):
            entries.append(
                recent(
                    age - i,
                    session_id="s1" if i else "s2",
                    data={
                        "tool_name": "grep" if i % 2 else "edit",
                        "success": True,
                        "duration_ms": float(age % 97 + i),
                    },
                )
            )
        entries.append(
            recent(
                age - 5,
                type=MetricType.ERROR_OCCURRED,
                session_id="s1",
                data={"error_type": "Timeout", "error_message": "late"},
            )
        )
    write_file(tmp_path / "metrics", datetime.now(UTC) - timedelta(days=3), 1, entries)
    return tmp_path


async def client_of(base: Path, **options: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(base, **options)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dashboard"
    ) as client:
        yield client


@pytest.fixture
async def client(live: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_of(live):
        yield c


class TestPage:
    async def test_the_page_holds_the_report_controls_and_script(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert 'id="analytics-report"' in page
        assert "16 of 16 entries" in page
        assert 'id="panel-tools"' in page
        for control in (
            "dashboard-window",
            "dashboard-type",
            "dashboard-tool",
            "dashboard-session",
        ):
            assert f'id="{control}"' in page
        assert "api/view?" in page  # the script refreshes in place
        assert "<script src" not in page
        assert "http" not in page.split("<script>")[1]

    async def test_the_page_starts_with_the_query_it_was_opened_with(
        self, client: httpx.AsyncClient
    ) -> None:
        page = (await client.get("/", params={"window": "1h", "tool": "grep"})).text
        assert '<option value="1h" selected>' in page
        assert '<option value="grep" selected>' in page
        assert "2 of 16 entries" in page  # grep, in the last hour

    async def test_a_bad_query_is_a_400_in_one_line(self, client: httpx.AsyncClient) -> None:
        for params in ({"since": "yesterday"}, {"window": "forever"}, {"type": "nope"}):
            response = await client.get("/api/summary", params=params)
            assert response.status_code == 400
            assert "\n" not in response.json()["error"]


class TestEmptyStates:
    @pytest.mark.parametrize(
        ("make", "title"),
        [(False, "No data directory yet"), (True, "No entries yet")],
    )
    async def test_missing_or_empty_directory_shows_a_clear_empty_state(
        self, tmp_path: Path, make: bool, title: str
    ) -> None:
        base = tmp_path / "service"
        if make:
            (base / "metrics").mkdir(parents=True)
        async for client in client_of(base):
            page = await client.get("/")
            assert page.status_code == 200
            assert title in page.text
            assert 'data-empty="true"' in page.text
            view = (await client.get("/api/view")).json()
            assert view["state"] == ("empty" if make else "missing")
            assert title in view["html"]
            summary = await client.get("/api/summary")
            assert Summary.model_validate_json(summary.content).entries == 0
            assert (await client.get("/healthz")).json()["status"] == "ok"

    async def test_a_window_with_nothing_in_it_says_so(self, client: httpx.AsyncClient) -> None:
        view = (await client.get("/api/view", params={"session": "nobody"})).json()
        assert view["state"] == "ready"
        assert view["entries"] == 0
        assert "No entries in this window" in view["html"]


class TestWindowsAndFilters:
    @pytest.mark.parametrize(
        ("params", "keywords"),
        [
            ({}, {}),
            ({"window": "15m"}, {"since": timedelta(minutes=15)}),
            ({"window": "1h"}, {"since": timedelta(hours=1)}),
            ({"window": "24h"}, {"since": timedelta(hours=24)}),
            ({"window": "all", "type": "error_occurred"}, {"types": ["error_occurred"]}),
            (
                {"session": "s2", "window": "24h"},
                {"session_id": "s2", "since": timedelta(hours=24)},
            ),
        ],
    )
    async def test_the_summary_equals_summarizes_numbers(
        self,
        client: httpx.AsyncClient,
        live: Path,
        params: dict[str, str],
        keywords: dict[str, object],
    ) -> None:
        """Relative windows are counted back from the server's clock: no entry lies
        near their edges, so ``summarize`` with ``since=now - window`` agrees."""
        response = await client.get("/api/summary", params=params)
        assert response.status_code == 200
        got = Summary.model_validate_json(response.content)
        if "since" in keywords:
            keywords["since"] = datetime.now(UTC) - keywords["since"]  # type: ignore[operator]
        assert got == summarize(live, **keywords)  # type: ignore[arg-type]
        assert got.entries > 0

    async def test_custom_since_until_and_a_tool(
        self, client: httpx.AsyncClient, live: Path
    ) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        since, until = now - timedelta(hours=3), now - timedelta(minutes=5)
        params = {"since": since.isoformat(), "until": until.isoformat().replace("+00:00", "Z")}
        got = Summary.model_validate_json((await client.get("/api/summary", params=params)).content)
        assert got == summarize(live, since=since, until=until)
        assert got.entries == 8
        with_tool = (await client.get("/api/summary", params={**params, "tool": "edit"})).json()
        assert with_tool["entries"] == 4
        assert list(with_tool["tools"]) == ["edit"]

    async def test_new_entries_appear_on_the_next_request(
        self, client: httpx.AsyncClient, live: Path
    ) -> None:
        first = (await client.get("/api/view")).json()
        (path,) = (live / "metrics").glob("*.jsonl")
        with open(path, "ab") as f:
            f.write(line_of(recent(1)) + line_of(recent(0)))
        second = (await client.get("/api/view")).json()
        assert second["entries"] == first["entries"] + 2 == 18
        health = (await client.get("/healthz")).json()
        assert health["stats"]["bytes_read"] == path.stat().st_size

    def test_parse_query_reads_every_parameter(self) -> None:
        now = datetime(2026, 11, 1, 12, tzinfo=UTC)
        query = parse_query(
            QueryParams("window=90m&type=tool_use&type=error_occurred&tool=grep&session=s"),
            now,
        )
        assert query.since == now - timedelta(minutes=90)
        assert query.types == ("tool_use", "error_occurred")
        assert (query.tool, query.session_id, query.until) == ("grep", "s", None)
        naive = parse_query(QueryParams("since=2026-11-01T10:00:00"))
        assert naive.since == datetime(2026, 11, 1, 10, tzinfo=UTC)
        with pytest.raises(QueryError, match="until"):
            parse_query(QueryParams("until=soon"))


class TestToken:
    @pytest.fixture
    async def guarded(self, live: Path) -> AsyncIterator[httpx.AsyncClient]:
        async for c in client_of(live, token="s3cret"):
            yield c

    @pytest.mark.parametrize("path", ["/", "/api/view", "/api/summary", "/healthz"])
    async def test_every_endpoint_needs_the_token(
        self, guarded: httpx.AsyncClient, path: str
    ) -> None:
        assert (await guarded.get(path)).status_code == 401
        assert (await guarded.get(path, params={"token": "wrong"})).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert (await guarded.get(path, headers=wrong)).status_code == 401
        assert (await guarded.get(path, params={"token": "s3cret"})).status_code == 200
        right = {"Authorization": "Bearer s3cret"}
        assert (await guarded.get(path, headers=right)).status_code == 200

    async def test_the_page_sends_the_token_it_was_opened_with(
        self, guarded: httpx.AsyncClient
    ) -> None:
        """The script takes ``token`` from the page's address and sends it as a
        bearer header on every refresh."""
        page = (await guarded.get("/", params={"token": "s3cret"})).text
        assert 'here.get("token")' in page
        assert '"Bearer " + token' in page
