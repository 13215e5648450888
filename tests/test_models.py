"""MetricType and MetricEntry: validation, serialization, round-trips."""

from __future__ import annotations

import json
import pickle
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import analytics
from analytics import MetricEntry, MetricType, SerializationError
from analytics._models import PLAIN_DEPTH, assemble_entry, build_entry

from .strategies import entries, json_values, texts

KEYS = {"id", "timestamp", "type", "session_id", "user_id", "data", "metadata"}


class TestMetricType:
    def test_has_exactly_the_documented_values(self) -> None:
        assert {t.value for t in MetricType} == {
            "session_start",
            "session_end",
            "tool_use",
            "agent_execution",
            "checkpoint_created",
            "hook_triggered",
            "command_executed",
            "error_occurred",
            "token_usage",
            "performance",
        }

    def test_is_a_str_enum(self) -> None:
        assert isinstance(MetricType.TOOL_USE, str)
        assert MetricType.TOOL_USE.value == "tool_use"
        assert str(MetricType.TOOL_USE) == "tool_use"
        assert MetricType("session_end") is MetricType.SESSION_END


class TestDefaults:
    def test_id_is_a_fresh_uuid4_string(self) -> None:
        a = MetricEntry(type=MetricType.TOOL_USE)
        b = MetricEntry(type=MetricType.TOOL_USE)
        assert isinstance(a.id, str)
        assert uuid.UUID(a.id).version == 4
        assert str(uuid.UUID(a.id)) == a.id
        assert a.id != b.id

    def test_ids_do_not_repeat(self) -> None:
        ids = {MetricEntry(type=MetricType.TOOL_USE).id for _ in range(20_000)}
        assert len(ids) == 20_000

    def test_timestamp_is_now_in_utc(self) -> None:
        before = datetime.now(UTC)
        e = MetricEntry(type=MetricType.TOOL_USE)
        after = datetime.now(UTC)
        assert e.timestamp.utcoffset() == timedelta(0)
        assert before <= e.timestamp <= after

    def test_optional_fields_default_to_none_and_empty(self) -> None:
        e = MetricEntry(type="tool_use")
        assert e.type is MetricType.TOOL_USE
        assert e.session_id is None
        assert e.user_id is None
        assert e.data == {}
        assert e.metadata == {}

    def test_type_is_required(self) -> None:
        with pytest.raises(ValidationError, match="type"):
            MetricEntry()  # type: ignore[call-arg]

    def test_unknown_type_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="type"):
            MetricEntry(type="not_a_type")


class TestTimestamp:
    def test_naive_timestamp_is_rejected_with_a_clear_error(self) -> None:
        with pytest.raises(ValidationError, match="timezone-aware") as info:
            MetricEntry(type=MetricType.TOOL_USE, timestamp=datetime(2026, 1, 1, 12, 0))
        assert info.value.errors()[0]["loc"] == ("timestamp",)

    def test_naive_iso_string_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="timezone-aware"):
            MetricEntry.from_dict({"type": "tool_use", "timestamp": "2026-01-01T12:00:00"})

    def test_aware_timestamp_is_normalised_to_utc(self) -> None:
        local = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2)))
        e = MetricEntry(type=MetricType.TOOL_USE, timestamp=local)
        assert e.timestamp == local
        assert e.timestamp.tzinfo == UTC
        assert e.timestamp.hour == 0

    def test_assignment_is_validated_too(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE)
        with pytest.raises(ValidationError, match="timezone-aware"):
            e.timestamp = datetime(2026, 1, 1)
        with pytest.raises(ValidationError, match="session_id"):
            e.session_id = 5  # type: ignore[assignment]


class TestSerialization:
    def test_line_is_one_json_object_with_exactly_the_keys(self) -> None:
        e = MetricEntry(
            type=MetricType.TOOL_USE, session_id="s1", user_id="u1", data={"tool_name": "grep"}
        )
        line = e.to_json_line()
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        parsed = json.loads(line)
        assert set(parsed) == KEYS
        assert parsed["type"] == "tool_use"
        assert parsed["data"] == {"tool_name": "grep"}

    def test_timestamp_is_iso_8601_with_its_utc_offset(self) -> None:
        when = datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)
        parsed = json.loads(MetricEntry(type=MetricType.TOOL_USE, timestamp=when).to_json_line())
        assert parsed["timestamp"] == "2026-05-01T08:30:15.123456+00:00"
        assert datetime.fromisoformat(parsed["timestamp"]) == when

    def test_whole_second_timestamp_keeps_its_offset(self) -> None:
        when = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
        parsed = MetricEntry(type=MetricType.TOOL_USE, timestamp=when).to_dict()
        assert parsed["timestamp"] == "2026-05-01T08:30:00+00:00"

    def test_to_dict_is_exactly_the_line(self) -> None:
        e = MetricEntry(type=MetricType.ERROR_OCCURRED, data={"a": [1, 2.5, None, True]})
        assert e.to_dict() == json.loads(e.to_json_line())
        assert set(e.to_dict()) == KEYS

    @pytest.mark.parametrize(
        "text", ["a\nb", "a\r\nb", "a\rb", "a\u2028b", "a\u2029b", "a\x85b", "a\x0bb\x0c\x1c"]
    )
    def test_no_newline_in_a_value_breaks_the_line(self, text: str) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, session_id=text, data={text: text})
        line = e.to_json_line()
        assert line.count(b"\n") == 1
        assert len(line.decode().splitlines()) == 1
        assert MetricEntry.from_json_line(line) == e

    def test_mutated_entry_fails_at_serialization_with_a_named_error(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE)
        e.data["bad"] = object()  # type: ignore[assignment]  # in-place: no validation
        with pytest.raises(SerializationError, match="cannot be serialized"):
            e.to_json_line()


class TestInvalidValues:
    @pytest.mark.parametrize(
        ("data", "path"),
        [
            ({"s": {1, 2}}, ("data", "s")),
            ({"o": object()}, ("data", "o")),
            ({"n": float("nan")}, ("data", "n")),
            ({"i": float("inf")}, ("data", "i")),
            ({"i": float("-inf")}, ("data", "i")),
            ({"b": b"bytes"}, ("data", "b")),
            ({1: "x"}, ("data", 1)),
            ({b"k": "x"}, ("data", "b'k'")),
            ({"deep": {"items": [1, {"x": float("nan")}]}}, ("data", "deep")),
        ],
    )
    def test_non_json_values_are_rejected_naming_the_field_path(
        self, data: dict[Any, Any], path: tuple[Any, ...]
    ) -> None:
        with pytest.raises(ValidationError) as info:
            MetricEntry(type=MetricType.TOOL_USE, data=data)
        loc = info.value.errors()[0]["loc"]
        assert loc[: len(path)] == path

    def test_nested_path_is_named_down_to_the_bad_item(self) -> None:
        with pytest.raises(ValidationError) as info:
            MetricEntry(
                type=MetricType.TOOL_USE, metadata={"deep": {"items": [1, {"x": float("nan")}]}}
            )
        loc = [part for part in info.value.errors()[0]["loc"] if part not in ("dict", "list")]
        assert loc[:5] == ["metadata", "deep", "items", 1, "x"]

    def test_metadata_is_validated_like_data(self) -> None:
        with pytest.raises(ValidationError, match="metadata"):
            MetricEntry(type=MetricType.TOOL_USE, metadata={"s": {1}})

    def test_unknown_fields_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="extra"):
            MetricEntry(type=MetricType.TOOL_USE, colour="red")  # type: ignore[call-arg]


class TestRoundTrip:
    @given(entries)
    def test_from_dict_of_to_dict_is_equal(self, e: MetricEntry) -> None:
        assert MetricEntry.from_dict(e.to_dict()) == e

    @given(entries)
    def test_parsing_the_line_back_is_equal(self, e: MetricEntry) -> None:
        line = e.to_json_line()
        assert line.count(b"\n") == 1
        assert len(line.decode().splitlines()) == 1
        assert MetricEntry.from_json_line(line) == e

    @given(entries)
    def test_to_dict_is_the_json_of_the_line(self, e: MetricEntry) -> None:
        assert json.loads(e.to_json_line()) == e.to_dict()


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_line_with_a_non_finite_number_is_rejected_naming_the_path(token: bytes) -> None:
    line = b'{"type": "tool_use", "data": {"n": [1, ' + token + b"]}}"
    with pytest.raises(ValidationError) as info:
        MetricEntry.from_json_line(line)
    assert info.value.errors()[0]["loc"] == ("data", "n", 1)


# -- the fast builder used by MetricsWriter -------------------------------------------

_odd_values = st.sampled_from(
    [float("nan"), float("inf"), -float("inf"), b"bytes", {1, 2}, (1, 2), object(), 1 + 2j]
)


class _Text(str):
    pass


_anything = json_values | _odd_values | st.builds(_Text, texts)
_anything_objects = st.dictionaries(texts | st.integers() | st.binary(max_size=3), _anything)


@given(
    type=st.sampled_from(list(MetricType)),
    session_id=st.none() | texts | st.integers() | st.builds(_Text, texts),
    user_id=st.none() | texts | st.binary(max_size=3),
    data=_anything_objects,
    metadata=_anything_objects,
)
def test_build_entry_accepts_and_rejects_exactly_what_the_model_does(
    type: MetricType, session_id: Any, user_id: Any, data: Any, metadata: Any
) -> None:
    expected_errors: list[Any] | None = None
    try:
        expected = MetricEntry(
            type=type, session_id=session_id, user_id=user_id, data=data, metadata=metadata
        )
    except ValidationError as exc:
        expected_errors = list(exc.errors())
    if expected_errors is not None:
        with pytest.raises(ValidationError) as raised:
            build_entry(type, session_id, user_id, dict(data), metadata)
        assert raised.value.errors() == expected_errors
        return
    got = build_entry(type, session_id, user_id, dict(data), metadata)
    same = expected.model_copy(update={"id": got.id, "timestamp": got.timestamp})
    assert got == same
    assert got.model_fields_set == expected.model_fields_set
    assert got.to_json_line() == same.to_json_line()
    assert MetricEntry.from_json_line(got.to_json_line()) == got
    assert got.metadata is not metadata  # copied: no entry shares the caller's dict


def test_build_entry_takes_the_fast_path_for_flat_values_and_stays_a_full_model() -> None:
    data = {"tool_name": "grep", "success": True, "duration_ms": 1.5, "count": 3, "x": None}
    entry = build_entry(MetricType.TOOL_USE, "s1", None, data, {})
    assert entry.data is data  # built directly, not copied by a validator
    assert uuid.UUID(entry.id).version == 4
    assert entry.timestamp.tzinfo is UTC
    with pytest.raises(ValidationError):  # assignment is still validated
        entry.session_id = 5  # type: ignore[assignment]
    with pytest.raises(ValidationError, match="finite"):
        build_entry(MetricType.TOOL_USE, "s1", None, {"d": float("nan")}, {})


def test_build_entry_takes_the_fast_path_for_plain_nested_values_and_copies_them() -> None:
    params = {"pattern": "x", "paths": ["a", {"b": 1, "c": [1.5, None, True]}]}
    data: dict[str, Any] = {"tool_name": "grep", "parameters": params}
    tags = ["t"]
    metadata: dict[str, Any] = {"tags": tags}
    entry = build_entry(MetricType.TOOL_USE, "s1", None, data, metadata)
    assert entry.data is data  # built directly: pydantic would have copied it
    assert entry == MetricEntry.model_validate(entry.model_dump())
    # Every container is a copy: the caller can change its own afterwards.
    assert entry.data["parameters"] == params
    assert entry.data["parameters"] is not params
    parameters: Any = entry.data["parameters"]
    paths = parameters["paths"]
    assert paths is not params["paths"]
    assert paths[1] is not params["paths"][1]
    assert entry.metadata == {"tags": ["t"]}
    assert entry.metadata["tags"] is not tags
    assert metadata["tags"] is tags  # the caller's own dict is left alone


def test_build_entry_leaves_deep_nesting_and_odd_containers_to_pydantic() -> None:
    deep: Any = "leaf"
    for _ in range(PLAIN_DEPTH + 1):
        deep = {"d": deep}
    for value in (deep, (1, 2), [float("nan")]):
        data = {"v": value}
        errors: list[Any] | None = None
        try:
            expected: Any = MetricEntry(type=MetricType.TOOL_USE, data={"v": value})
        except ValidationError as exc:
            errors = list(exc.errors())
        if errors is not None:
            with pytest.raises(ValidationError) as raised:
                build_entry(MetricType.TOOL_USE, None, None, data, {})
            assert raised.value.errors() == errors
            continue
        got = build_entry(MetricType.TOOL_USE, None, None, data, {})
        assert got.data is not data  # pydantic's copy: not the fast path
        assert got.data == expected.data


class TestAssembleEntry:
    """The one fast builder that both hot paths share (build_entry writes,
    entry_from_line reads), held to what MetricEntry(...) builds."""

    @given(entries, st.sets(st.sampled_from(sorted(KEYS))))
    def test_builds_what_the_model_builds_from_the_same_values(
        self, entry: MetricEntry, given_names: set[str]
    ) -> None:
        expected = MetricEntry(**{name: getattr(entry, name) for name in given_names | {"type"}})
        got = assemble_entry(
            expected.id,
            expected.timestamp,
            expected.type,
            expected.session_id,
            expected.user_id,
            expected.data,
            expected.metadata,
            set(expected.model_fields_set),
        )
        assert type(got) is MetricEntry
        assert got == expected
        assert got.model_fields_set == expected.model_fields_set
        assert got.model_dump() == expected.model_dump()
        assert got.model_dump(exclude_unset=True) == expected.model_dump(exclude_unset=True)
        assert got.to_json_line() == expected.to_json_line()
        assert repr(got) == repr(expected)
        assert pickle.loads(pickle.dumps(got)) == got
        assert got.model_copy() == got
        with pytest.raises(ValidationError):  # a full model: assignment is validated
            got.user_id = 5  # type: ignore[assignment]

    def test_is_the_only_place_that_fills_pydantics_internals(self) -> None:
        """A second hand-built entry elsewhere could drift from the model unseen."""
        package = Path(analytics.__file__).parent
        fillers = sorted(
            path.name
            for path in package.rglob("*.py")
            if "__pydantic_fields_set__" in path.read_text()
        )
        assert fillers == ["_models.py"]
        source = (package / "_models.py").read_text()
        assert source.count('"__pydantic_fields_set__"') == 1
