"""Values are written exactly or refused, and read back equal; lines from elsewhere
are read as they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricType,
    SerializationError,
    iter_entries,
    read_entries,
)
from analytics._models import INT_LIMIT, MAX_NESTING
from analytics._read.rows import entry_from_line

from .helpers import GOOD_TRACK_ARGUMENTS, call_track, entry, read_all


class TestSerializationNeverCoerces:
    @pytest.mark.parametrize(
        "bad", [{1, 2}, (1, 2), float("nan"), float("inf"), -float("inf"), b"x", object()]
    )
    def test_a_value_put_in_after_validation_is_refused(self, bad: Any) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"a": 1})
        e.data["late"] = bad
        with pytest.raises(SerializationError, match=r"data\.late"):
            e.to_json_line()

    def test_a_nested_value_put_in_after_validation_is_refused(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, metadata={"a": [1, {"b": 2}]})
        e.metadata["a"][1]["b"] = {3}  # type: ignore[index,assignment,call-overload]
        with pytest.raises(SerializationError, match=r"metadata\.a\[1\]\.b is a set"):
            e.to_json_line()

    def test_a_non_string_key_put_in_after_validation_is_refused(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"a": {"b": 1}})
        e.data["a"][2] = 3  # type: ignore[index]
        with pytest.raises(SerializationError, match="int key"):
            e.to_json_line()

    def test_valid_nested_values_are_written_unchanged(self) -> None:
        data: dict[str, Any] = {"a": [1, 2.5, None, True, "x", {"b": []}]}
        e = MetricEntry(type=MetricType.TOOL_USE, data=data)
        assert json.loads(e.to_json_line())["data"] == data

    async def test_write_batch_refuses_only_the_bad_entries(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            bad = entry(1)
            bad.data["oops"] = {1}  # type: ignore[assignment]
            nan = entry(3)
            nan.data["x"] = float("nan")
            with pytest.raises(SerializationError) as info:
                await writer.write_batch([entry(0), bad, entry(2), nan, entry(4)])
            message = str(info.value)
            assert "#1" in message
            assert bad.id in message
            assert "#3" in message
            assert nan.id in message
            assert "#0" not in message
            assert isinstance(info.value.__cause__, SerializationError)
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0, 2, 4]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


class TestValuesRoundTrip:
    """Whatever the model accepts is written exactly and reads back equal; the rest is
    refused at the call that built the entry."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"data": {"\ud800": 1}},
            {"metadata": {"ok": {"\udfff": 1}}},
            {"data": {"a": "x\ud800y"}},
            {"data": {"a": ["\udc00"]}},
            {"session_id": "\ud800"},
            {"user_id": "u\udfff"},
            {"id": "\ud800"},
        ],
    )
    def test_a_lone_surrogate_is_refused_at_the_call(self, kwargs: dict[str, Any]) -> None:
        # (pydantic itself refuses one in ``id``: its length check needs the text.)
        with pytest.raises(ValidationError, match=r"lone surrogate|unicode string"):
            MetricEntry(type=MetricType.TOOL_USE, **kwargs)

    def test_surrogate_keys_would_have_collided(self) -> None:
        # Two distinct keys; written as U+FFFD both would read back as one.
        with pytest.raises(ValidationError, match="lone surrogate"):
            MetricEntry(type=MetricType.TOOL_USE, data=dict([("\ud800", 1), ("\ud801", 2)]))

    def test_paired_surrogates_in_text_are_ordinary_characters(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, session_id="🙂", data={"🙂": "é🙂"})
        back = MetricEntry.from_json_line(e.to_json_line())
        assert back == e

    async def test_a_track_helper_refuses_a_lone_surrogate(self) -> None:
        with pytest.raises(ValidationError, match="lone surrogate"):
            await call_track(
                "track_tool_use",
                **{**GOOD_TRACK_ARGUMENTS["track_tool_use"], "tool_name": "\ud800"},
            )
        with pytest.raises(ValidationError, match="lone surrogate"):
            await call_track(
                "track_tool_use",
                **{**GOOD_TRACK_ARGUMENTS["track_tool_use"], "session_id": "\ud800"},
            )

    def test_the_deepest_accepted_value_reads_back_equal(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"x": _nested(MAX_NESTING)})
        assert MetricEntry.from_json_line(e.to_json_line()) == e
        assert entry_from_line(e.to_json_line()) == e

    @pytest.mark.parametrize("depth", [MAX_NESTING + 1, 150, 200, 253])
    def test_deeper_values_are_refused_at_the_call(self, depth: int) -> None:
        with pytest.raises(ValidationError, match=f"nested more than {MAX_NESTING}"):
            MetricEntry(type=MetricType.TOOL_USE, data={"x": _nested(depth)})
        deep_dict: Any = 1
        for _ in range(depth):
            deep_dict = {"k": deep_dict}
        with pytest.raises(ValidationError, match="nested more than"):
            MetricEntry(type=MetricType.TOOL_USE, metadata={"m": deep_dict})

    async def test_the_deepest_value_survives_the_file(self, tmp_path: Path) -> None:
        deep = MetricEntry(type=MetricType.TOOL_USE, data={"x": _nested(MAX_NESTING)})
        async with JSONLWriter(tmp_path) as writer:
            await writer.write(deep)
        assert read_all(writer.metrics_dir) == [deep]
        assert [e async for e in read_entries(tmp_path)] == [deep]

    @pytest.mark.parametrize(
        "value",
        [INT_LIMIT - 1, -(INT_LIMIT - 1), 2**64, 10**300],
        ids=["2**1024-1", "-(2**1024-1)", "2**64", "10**300"],
    )
    def test_large_integers_in_range_read_back_equal(self, value: int) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"n": value, "l": [value]})
        back = MetricEntry.from_json_line(e.to_json_line())
        assert back.data["n"] == value
        assert back == e

    @pytest.mark.parametrize(
        "value",
        [INT_LIMIT, -INT_LIMIT, 10**400, -(10**5000)],
        ids=["2**1024", "-2**1024", "10**400", "-10**5000"],
    )
    def test_integers_beyond_a_float_are_refused_at_the_call(self, value: int) -> None:
        with pytest.raises(ValidationError, match=r"integer beyond"):
            MetricEntry(type=MetricType.TOOL_USE, data={"n": value})
        with pytest.raises(ValidationError, match=r"metadata\.a\[0\] is an integer beyond"):
            MetricEntry(type=MetricType.TOOL_USE, metadata={"a": [value]})

    async def test_a_track_helper_refuses_a_huge_duration(self) -> None:
        with pytest.raises(ValidationError, match="duration_ms is an integer beyond"):
            await call_track(
                "track_tool_use",
                **{**GOOD_TRACK_ARGUMENTS["track_tool_use"], "duration_ms": 10**400},
            )

    @pytest.mark.parametrize(
        ("late", "message"),
        [
            ("\ud800", "lone surrogate"),
            (10**400, "integer beyond"),
            (_nested(MAX_NESTING + 1), "nested more than"),
        ],
    )
    def test_such_a_value_put_in_after_validation_is_refused(self, late: Any, message: str) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"a": 1})
        e.data["late"] = late
        with pytest.raises(SerializationError, match=rf"data\.late.*{message}"):
            e.to_json_line()

    def test_a_surrogate_key_put_in_after_validation_is_refused(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"a": 1})
        e.data["\udc00"] = 1
        with pytest.raises(SerializationError, match="lone surrogate"):
            e.to_json_line()

    @settings(max_examples=300)
    @given(
        text=st.text(st.characters(exclude_categories=()), max_size=8),
        number=st.integers(min_value=-(2**1100), max_value=2**1100) | st.integers(),
        depth=st.integers(min_value=0, max_value=260),
    )
    def test_accepted_means_read_back_equal(self, text: str, number: int, depth: int) -> None:
        kwargs: dict[str, Any] = {
            "session_id": text,
            "data": {text: number, "deep": _nested(depth)},
            "metadata": {"t": [text, {text: text}]},
        }
        try:
            e = MetricEntry(type=MetricType.TOOL_USE, **kwargs)
        except ValidationError:
            return
        line = e.to_json_line()
        assert MetricEntry.from_json_line(line) == e
        assert entry_from_line(line) == e


class TestLinesFromElsewhere:
    """The limits hold when an entry is built; a line already on disk (another writer,
    an older version) is read as it is, by every reader alike."""

    @pytest.mark.parametrize(
        "value",
        [b"1" + b"0" * 400, b"[" * 150 + b"1" + b"]" * 150],
        ids=["10**400", "150-deep"],
    )
    def test_is_read_as_it_is_by_every_reader(self, value: bytes, tmp_path: Path) -> None:
        line = (
            b'{"id":"x","timestamp":"2026-01-01T00:00:00+00:00","type":"tool_use",'
            b'"data":{"v":' + value + b"}}\n"
        )
        by_model = MetricEntry.from_json_line(line)
        assert entry_from_line(line) == by_model
        directory = tmp_path / "metrics"
        directory.mkdir()
        (directory / "metrics_20260101T000000.000000Z_p1_0000000a.jsonl").write_bytes(line)
        assert list(iter_entries(tmp_path)) == [by_model]
        with pytest.raises(SerializationError, match=r"data\.v"):
            by_model.to_json_line()  # nothing is written that would not read back equal
