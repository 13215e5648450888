"""The SVG charts: nice ticks, human numbers, axes, and marks that carry exact values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics._report.charts import (
    duration,
    exact,
    human,
    latency_chart,
    linear_ticks,
    log_ticks,
    stacked_bars,
    time_bars,
    time_label,
    time_ticks,
)

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Svg(HTMLParser):
    """The elements of one chart: (tag, attributes, text) each."""

    def __init__(self, svg: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str]] = []
        self.feed(svg)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, ""))

    def handle_data(self, data: str) -> None:
        if self.elements:
            tag, attrs, text = self.elements[-1]
            self.elements[-1] = (tag, attrs, text + data)

    def texts(self, cls: str) -> list[str]:
        return [text for tag, a, text in self.elements if tag == "text" and a.get("class") == cls]

    def tips(self) -> list[str]:
        return [a["data-tip"] for _, a, _ in self.elements if "data-tip" in a]


class TestNumbers:
    @pytest.mark.parametrize(
        ("value", "text"),
        [(0, "0"), (950, "950"), (1000, "1k"), (1250, "1.25k"), (2.5e6, "2.5M"), (0.5, "0.5")],
    )
    def test_counts_are_short(self, value: float, text: str) -> None:
        assert human(value) == text

    @pytest.mark.parametrize(
        ("ms", "text"),
        [(0.25, "250 µs"), (2.5, "2.5 ms"), (1500, "1.5 s"), (120_000, "2 min"), (0, "0")],
    )
    def test_durations_take_their_unit(self, ms: float, text: str) -> None:
        assert duration(ms) == text

    def test_exact_values_keep_their_digits(self) -> None:
        assert exact(1234567) == "1,234,567"
        assert exact(3.14159, "ms") == "3.142 ms"


class TestTicks:
    @given(st.floats(min_value=1e-6, max_value=1e15))
    def test_linear_ticks_are_several_round_steps_covering_the_data(self, high: float) -> None:
        ticks = linear_ticks(high)
        assert 3 <= len(ticks) <= 8
        assert ticks[0] == 0
        assert ticks[-1] >= high * (1 - 1e-9)  # equal to the drawing's precision
        step = ticks[1]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 10))

    def test_counts_tick_at_whole_numbers(self) -> None:
        assert linear_ticks(1, integer=True) == [0, 1, 2]
        assert linear_ticks(0) == [0, 0.25, 0.5, 0.75, 1.0]

    @given(st.floats(min_value=1e-4, max_value=1e6), st.floats(min_value=1, max_value=1e4))
    def test_log_ticks_cover_the_range_with_at_least_three(self, low: float, ratio: float) -> None:
        high = low * ratio
        ticks = log_ticks(low, high)
        assert len(ticks) >= 3
        assert ticks[0] <= low * (1 + 1e-9)
        assert ticks[-1] >= high * (1 - 1e-9)
        assert ticks == sorted(ticks)

    def test_log_ticks_hug_a_narrow_range_in_1_2_5_steps(self) -> None:
        assert log_ticks(3.5, 25) == pytest.approx([2, 5, 10, 20, 50])
        assert log_ticks(5, 5) == pytest.approx([2, 5, 10])

    def test_log_ticks_are_decades_on_a_wide_range(self) -> None:
        assert log_ticks(0.05, 900) == pytest.approx([0.01, 0.1, 1, 10, 100, 1000])

    @pytest.mark.parametrize(
        ("span", "step"),
        [
            (timedelta(seconds=50), timedelta(seconds=10)),
            (timedelta(hours=5), timedelta(hours=1)),
            (timedelta(days=6), timedelta(days=2)),
        ],
    )
    def test_time_ticks_step_with_the_span(self, span: timedelta, step: timedelta) -> None:
        ticks = time_ticks(T, T + span)
        assert ticks[1] - ticks[0] == step
        assert ticks[0] >= T
        assert ticks[-1] <= T + span

    def test_time_labels_are_as_precise_as_the_span(self) -> None:
        moment = T + timedelta(seconds=30)
        assert time_label(moment, timedelta(minutes=1)) == "12:00:30"
        assert time_label(moment, timedelta(hours=3)) == "12:00"
        assert time_label(T.replace(hour=0), timedelta(days=9)) == "Nov 01"
        assert time_label(T, timedelta(days=900)) == "2026-11-01"

    def test_time_ticks_over_centuries_are_few(self) -> None:
        start = datetime(1970, 1, 1, tzinfo=UTC)
        ticks = time_ticks(start, datetime(9999, 12, 31, tzinfo=UTC))
        assert 3 <= len(ticks) <= 6


class TestCharts:
    def test_time_bars_have_axes_ticks_titles_and_tips(self) -> None:
        starts = [T + timedelta(hours=i) for i in range(6)]
        svg = Svg(
            time_bars(
                "Entries per hour",
                starts,
                [("entries", [1.0, 2500.0, 0.0, 4.0, 5.0, 6.0])],
                timedelta(hours=1),
                y_title="entries",
                bucket_name="per hour",
                unit="entries",
            )
        )
        assert svg.texts("tick")[:4] == ["0", "1k", "2k", "3k"]
        assert svg.texts("axis-title") == ["entries", "time (UTC), per hour"]
        assert "2026-11-01 13:00:00 UTC, per hour: 2,500 entries" in svg.tips()
        assert len(svg.tips()) == 5  # no mark for the empty bucket
        assert sum(1 for _, a, _ in svg.elements if a.get("class") == "zero") == 1
        root = svg.elements[0][1]
        assert root["viewbox"].startswith("0 0 480 ")
        assert "width" not in root

    def test_a_long_legend_wraps_inside_the_chart_and_pushes_the_bars_down(self) -> None:
        starts = [T + timedelta(seconds=i) for i in range(3)]
        names = [f"a_rather_long_series_name_{i}" for i in range(8)]
        series = [(name, [1.0, 2.0, 3.0]) for name in names]
        second = timedelta(seconds=1)
        one = Svg(time_bars("t", starts, series[:2], second, y_title="n", bucket_name="per s"))
        many = Svg(time_bars("t", starts, series, second, y_title="n", bucket_name="per s"))
        assert sorted(many.texts("legend")) == sorted(names)
        swatches = [a for tag, a, _ in many.elements if tag == "rect" and "data-tip" not in a]
        assert len(swatches) == 8
        assert all(float(a["x"]) >= 0 for a in swatches)
        assert len({a["y"] for a in swatches}) > 1  # several lines
        one_height = float(one.elements[0][1]["viewbox"].split()[3])
        many_height = float(many.elements[0][1]["viewbox"].split()[3])
        assert many_height > one_height
        marks = [float(a["y"]) for tag, a, _ in many.elements if "data-tip" in a]
        lowest_swatch = max(float(a["y"]) for a in swatches) + 10
        assert min(marks) > lowest_swatch

    def test_latency_is_on_a_log_scale_with_every_percentile(self) -> None:
        svg = Svg(
            latency_chart(
                "Duration per tool",
                [("fast", 10, [0.02, 0.05, 0.08, 0.1]), ("slow", 3, [900.0, 2000.0, None, 2500.0])],
            )
        )
        assert svg.texts("tick") == ["10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"]
        assert svg.texts("axis-title") == ["duration (ms, log scale)", "name"]
        assert svg.texts("legend") == ["max", "p99", "p95", "p50"]
        assert svg.tips() == [
            "fast: 10 calls; p50 0.02 ms, p95 0.05 ms, p99 0.08 ms, max 0.1 ms",
            "slow: 3 calls; p50 900 ms, p95 2,000 ms, max 2,500 ms",
        ]
        circles = [a for tag, a, _ in svg.elements if tag == "circle"]
        assert len(circles) == 5  # the unknown p99 is not drawn
        x = [float(a["cx"]) for a in circles]
        assert x[1] - x[0] > 10  # 0.02 and 0.05 ms stay apart: a log scale

    def test_long_names_are_cut_and_kept_whole_in_the_tip(self) -> None:
        name = "a-tool-with-a-name-far-too-long-for-the-label-column-of-a-chart-" * 2
        svg = Svg(
            stacked_bars("Calls", [(name, [3.0])], ["calls"], x_title="calls", y_title="tool")
        )
        (label,) = svg.texts("label")
        assert label.endswith("…")
        assert len(label) < 30
        assert svg.tips() == [f"{name}: 3"]

    def test_stacked_bars_have_a_legend_and_a_zero_line(self) -> None:
        svg = Svg(
            stacked_bars(
                "Tokens",
                [("m1", [1500.0, 500.0]), ("m2", [10.0, 0.0])],
                ["input", "output"],
                x_title="tokens",
                y_title="model",
                unit="tokens",
            )
        )
        assert svg.texts("legend") == ["output", "input"]
        assert svg.texts("tick") == ["0", "500", "1k", "1.5k", "2k"]
        assert "m1, output: 500 tokens of 2,000 tokens" in svg.tips()
        assert sum(1 for _, a, _ in svg.elements if a.get("class") == "zero") == 1

    def test_many_rows_are_left_to_the_table(self) -> None:
        rows = [(f"t{i}", [float(i + 1)]) for i in range(40)]
        svg = Svg(stacked_bars("Calls", rows, ["calls"], x_title="calls", y_title="tool"))
        assert len(svg.texts("label")) == 25
