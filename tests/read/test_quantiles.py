"""Quantiles: exact for modest data, then a sketch within its stated relative error,
and merging is adding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analytics._read.summary import Quantiles


class TestQuantiles:
    def test_exact_for_modest_data(self) -> None:
        q = Quantiles()
        for v in range(1, 101):
            q.add(float(v))
        assert (q.quantile(0.5), q.quantile(0.95), q.quantile(0.99)) == (50, 95, 99)
        assert q.exact

    def test_approximate_within_the_stated_error_beyond_the_limit(self) -> None:
        import random

        rng = random.Random(7)
        values = [rng.lognormvariate(3, 1.5) for _ in range(20_000)]
        q = Quantiles(exact_limit=1000)
        for v in values:
            q.add(v)
        assert not q.exact
        ordered = sorted(values)
        for p in (0.5, 0.9, 0.95, 0.99):
            exact = ordered[max(1, int(-(-p * len(values) // 1))) - 1]
            estimate = q.quantile(p)
            assert estimate is not None
            assert abs(estimate - exact) <= 0.011 * exact

    @given(
        st.lists(st.floats(0, 1e6), max_size=60),
        st.lists(st.floats(0, 1e6), max_size=60),
        st.integers(1, 80),
    )
    def test_merging_two_streams_is_adding_them_all(
        self, first: list[float], second: list[float], limit: int
    ) -> None:
        whole, left, right = (Quantiles(exact_limit=limit) for _ in range(3))
        for v in first + second:
            whole.add(v)
        for v in first:
            left.add(v)
        for v in second:
            right.add(v)
        left.merge(right)
        assert (left.count, left.exact) == (whole.count, whole.exact)
        assert left.maximum == whole.maximum
        for p in (0.01, 0.5, 0.95, 0.99, 1.0):
            assert left.quantile(p) == whole.quantile(p)
