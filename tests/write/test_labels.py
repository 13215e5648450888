"""The bounded label values and field readings the metrics sinks share."""

from __future__ import annotations

import pytest

from analytics._write.labels import (
    OTHER,
    UNKNOWN,
    LabelValues,
    amount,
    outcome,
    seconds,
    token_counts,
)


class TestLabelValues:
    def test_the_first_values_are_kept_and_later_ones_become_other(self) -> None:
        labels = LabelValues(max_values=2)
        assert [labels.value("tool", v) for v in ["a", "b", "c", "a", "d", "b"]] == [
            "a", "b", OTHER, "a", OTHER, "b",
        ]  # fmt: skip
        assert labels.overflowed == {"tool": 2}

    def test_each_label_has_its_own_bound(self) -> None:
        labels = LabelValues(max_values=1)
        assert labels.value("tool", "a") == "a"
        assert labels.value("model", "m") == "m"
        assert labels.value("tool", "b") == OTHER

    def test_a_missing_or_non_string_value_is_unknown_and_takes_no_room(self) -> None:
        labels = LabelValues(max_values=1)
        assert [labels.value("tool", v) for v in [None, 3, ["x"], {"a": 1}]] == [UNKNOWN] * 4
        assert labels.value("tool", "a") == "a"

    def test_free_text_and_the_word_other_are_never_a_value_of_their_own(self) -> None:
        labels = LabelValues()
        assert labels.value("error_type", "x" * 129) == OTHER
        assert labels.value("error_type", "") == OTHER
        assert labels.value("error_type", OTHER) == OTHER
        assert labels.seen["error_type"] == set()

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "100"])
    def test_the_bound_must_be_a_positive_int(self, bad: object) -> None:
        with pytest.raises(ValueError, match="max_values"):
            LabelValues(bad)  # type: ignore[arg-type]


class TestFields:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [({"success": True}, "success"), ({"success": False}, "failure"), ({}, UNKNOWN),
         ({"success": 1}, UNKNOWN)],
    )  # fmt: skip
    def test_outcome(self, data: dict[str, object], expected: str) -> None:
        assert outcome(data) == expected

    def test_token_counts_keep_only_non_negative_ints(self) -> None:
        data = {"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": -1,
                "cache_write_tokens": 2.5}  # fmt: skip
        assert token_counts(data) == [("input", 10), ("output", 5)]
        assert token_counts({"cache_write_tokens": 7}) == [("cache_write", 7)]

    def test_seconds_from_milliseconds(self) -> None:
        assert seconds({"duration_ms": 1500}) == 1.5
        assert seconds({"duration_ms": 2.5}) == 0.0025
        assert seconds({"t": 10.0}, "t") == 0.01

    @pytest.mark.parametrize("bad", [None, True, -1, "5", float("inf"), [1]])
    def test_amount_refuses_what_is_not_a_finite_non_negative_number(self, bad: object) -> None:
        assert amount({"x": bad}, "x") is None
        assert seconds({"duration_ms": bad}) is None
