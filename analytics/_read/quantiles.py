"""Percentiles of a stream of numbers: exact for modest data, then a log-bucketed sketch
with a guaranteed relative error (the Python engine's ``Quantiles``)."""

from __future__ import annotations

import math
from array import array
from collections import Counter

__all__ = ["EXACT_LIMIT", "RELATIVE_ERROR", "Quantiles"]

EXACT_LIMIT = 100_000
"""Up to this many values per series, percentiles are exact; beyond, they come from a
log-bucketed sketch whose answers are within ``RELATIVE_ERROR`` of an exact rank."""

RELATIVE_ERROR = 0.01


class Quantiles:
    """Percentiles of a stream: exact for modest data, then approximate with a
    guaranteed relative error of 1% and memory that stays small."""

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.exact_limit = exact_limit
        self.values: array[float] | None = array("d")
        """The values while exact: 8 bytes each, not a float object's 32."""
        self.count = 0
        self.maximum = -math.inf
        self._gamma = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
        self._log_gamma = math.log(self._gamma)
        self._buckets: Counter[int] = Counter()
        self._low = 0  # values <= 0, kept exactly as a count (durations are >= 0)

    @property
    def exact(self) -> bool:
        return self.values is not None

    def add(self, value: float) -> None:
        self.count += 1
        if value > self.maximum:
            self.maximum = value
        values = self.values
        if values is not None:
            values.append(value)
            if self.count > self.exact_limit:
                for v in values:
                    self._bucket(v)
                self.values = None
        else:
            self._bucket(value)

    def merge(self, other: Quantiles) -> None:
        """Add every value ``other`` holds (or its sketch), as if added one by one."""
        self.count += other.count
        self.maximum = max(self.maximum, other.maximum)
        if self.values is not None and other.values is not None:
            self.values.extend(other.values)
            if self.count <= self.exact_limit:
                return
            for v in self.values:
                self._bucket(v)
            self.values = None
            return
        if self.values is not None:  # other is a sketch: so is the result
            for v in self.values:
                self._bucket(v)
            self.values = None
        if other.values is not None:
            for v in other.values:
                self._bucket(v)
        else:
            self._buckets.update(other._buckets)
            self._low += other._low

    def _bucket(self, value: float) -> None:
        if value <= 0:
            self._low += 1
        else:
            self._buckets[math.ceil(math.log(value) / self._log_gamma)] += 1

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (0 < q <= 1), or ``None`` if empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if self.values is not None:
            return sorted(self.values)[rank - 1]
        if rank <= self._low:
            return 0.0
        seen = self._low
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                # The middle of the bucket, in relative terms: within RELATIVE_ERROR.
                return min(2 * self._gamma**index / (self._gamma + 1), self.maximum)
        return self.maximum
