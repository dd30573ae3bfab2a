"""The one percentile definition every flow figure and forecast uses: nearest rank.

The p-th percentile of n sorted values is the value at rank ceil(p / 100 * n) (1-based):
the smallest observed value such that at least p % of the values are at or below it. It is
always a value that really occurred (a cycle time some item really had, a week count some
trial really gave), it needs no interpolation, and it can be worked by hand, which is why
flow-analytics tools use it for the percentile lines of a cycle time scatterplot.
Reference: https://en.wikipedia.org/wiki/Percentile#The_nearest-rank_method
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T", int, float)

LEVELS = (50, 85, 95)
"""The percentiles every figure reports (p50, p85, p95)."""


def nearest_rank(sorted_values: Sequence[T], percent: float) -> T:
    """The nearest-rank `percent` percentile of values sorted ascending (module doc)."""
    return sorted_values[rank_index(len(sorted_values), percent)]


def rank_index(count: int, percent: float) -> int:
    """0-based position of the nearest-rank `percent` percentile among `count` sorted values."""
    if count < 1:
        raise ValueError("no values to take a percentile of")
    if not 0 < percent <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percent}")
    # round() first: 7 / 100 * 100 is 7.000000000000001 in binary floating point; the rank is 7.
    rank = math.ceil(round(percent / 100 * count, 9))
    return max(rank, 1) - 1
