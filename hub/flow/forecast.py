"""Monte Carlo forecasts over observed weekly throughput: "when will it be done", "how many".

A trial replays the future as a run of weeks, each week's throughput drawn at random (with
replacement, uniformly) from the weeks of history given as `weekly_samples`. Many trials give
a distribution, read at 50/85/95 % with the nearest-rank rule of `hub.flow.stats`:

- `when_done(remaining, ...)`: a trial counts the weeks until its draws add up to `remaining`
  items. The 85 % answer is the number of weeks W such that 85 % of trials were done within W
  weeks (more confidence = a later date). The date is `start + W weeks`: done by that date.
- `how_many(weeks, ...)`: a trial sums `weeks` draws. The 85 % answer is the count that 85 %
  of trials reached or beat (more confidence = fewer items: "at least that many").

With a seed the same data gives the same answer (`random.Random(seed)`, no global state).
A history without a single finished item gives `CannotForecast`, never an endless loop, and
a trial that is still not done after `max_weeks` is counted as beyond the horizon.

Speed: 10,000 trials take a few tens of milliseconds in pure Python because weeks are drawn
as bytes (`Random.randbytes`, mapped to throughput values by `bytes.translate`) and summed
with `itertools.accumulate`/`sum`, all C loops; inputs outside that fast path (more than 256
weeks of history, or a week above 255 items) fall back to `Random.choices`.

The method is the one flow-analytics tools use (e.g. Troy Magennis' Focused Objective
throughput forecaster, ActionableAgile's Monte Carlo "when" and "how many").
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate

from hub.flow.stats import LEVELS, nearest_rank, rank_index

DEFAULT_TRIALS = 10_000
MAX_WEEKS = 520
"""A trial still short of the backlog after ten years is reported as beyond the horizon."""
_BLOCK_DRAWS = 1 << 20
"""Weeks drawn at once for a block of trials: few calls into `random`, bounded memory."""


@dataclass(frozen=True, slots=True)
class CannotForecast:
    """No forecast can rest on this history (the reason says why, for people)."""

    reason: str


@dataclass(frozen=True, slots=True)
class WhenDone:
    """Completion forecast: weeks from `start` and the dates, at 50/85/95 % (None = beyond
    the `max_weeks` horizon), and what the forecast rests on."""

    start: date
    remaining: int
    weeks: dict[int, int | None]
    dates: dict[int, date | None]
    trials: int
    seed: int
    history_weeks: int
    beyond_horizon: int = 0
    """Trials that had not finished after `max_weeks` weeks."""


@dataclass(frozen=True, slots=True)
class HowMany:
    """Items that will be done in the next `weeks` weeks, at 50/85/95 % confidence
    ("at least this many")."""

    weeks: int
    items: dict[int, int]
    trials: int
    seed: int
    history_weeks: int


def when_done(
    remaining: int,
    weekly_samples: Sequence[int],
    *,
    start: date,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    max_weeks: int = MAX_WEEKS,
) -> WhenDone | CannotForecast:
    """When `remaining` items will be done, from `start`, at 50/85/95 % (module doc)."""
    _check(trials, weekly_samples)
    if remaining < 0:
        raise ValueError(f"remaining must be >= 0, got {remaining}")
    refusal = _refusal(weekly_samples)
    if refusal is not None:
        return refusal
    finished: list[int] = []
    beyond = 0
    if remaining == 0:
        finished = [0] * trials
    else:
        sampler = _WeekSampler(weekly_samples, random.Random(seed))
        mean = sum(weekly_samples) / len(weekly_samples)
        batch = min(max_weeks, math.ceil(remaining / mean * 1.25) + 4)
        for draws in sampler.blocks(trials, batch):
            weeks = _weeks_to_finish(remaining, draws, sampler, max_weeks)
            if weeks is None:
                beyond += 1
            else:
                finished.append(weeks)
    finished.sort()
    weeks_at: dict[int, int | None] = {}
    for level in LEVELS:
        # A trial beyond the horizon sorts after every finished one: the level is only
        # answered if enough trials finished.
        position = rank_index(trials, level)
        weeks_at[level] = finished[position] if position < len(finished) else None
    return WhenDone(
        start=start,
        remaining=remaining,
        weeks=weeks_at,
        dates={level: None if w is None else start + timedelta(weeks=w) for level, w in weeks_at.items()},
        trials=trials,
        seed=seed,
        history_weeks=len(weekly_samples),
        beyond_horizon=beyond,
    )


def how_many(
    weeks: int,
    weekly_samples: Sequence[int],
    *,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
) -> HowMany | CannotForecast:
    """How many items will be done in the next `weeks` weeks, at 50/85/95 % (module doc)."""
    _check(trials, weekly_samples)
    if weeks < 0:
        raise ValueError(f"weeks must be >= 0, got {weeks}")
    refusal = _refusal(weekly_samples)
    if refusal is not None:
        return refusal
    if weeks == 0:
        totals = [0] * trials
    else:
        sampler = _WeekSampler(weekly_samples, random.Random(seed))
        totals = [sum(draws) for draws in sampler.blocks(trials, weeks)]
    # Descending: the 85 % answer is a count that 85 % of trials reached or beat.
    totals.sort(reverse=True)
    return HowMany(
        weeks=weeks,
        items={level: nearest_rank(totals, level) for level in LEVELS},
        trials=trials,
        seed=seed,
        history_weeks=len(weekly_samples),
    )


@dataclass(frozen=True, slots=True)
class Backtest:
    """Outcome of `backtest()`: how often the forecast date was at or after the real one."""

    runs: int
    hits: int
    skipped: int
    """Cut weeks with nothing finished afterwards, or with a history that cannot forecast."""
    level: int
    misses: tuple[int, ...] = field(default=())
    """Cut weeks whose forecast came too early."""

    @property
    def hit_rate(self) -> float:
        return self.hits / self.runs if self.runs else 0.0


def backtest(
    weekly_throughput: Sequence[int],
    *,
    history_weeks: int = 12,
    horizon_weeks: int = 8,
    level: int = 85,
    trials: int = 2_000,
    seed: int = 0,
) -> Backtest:
    """Replay `when_done` on a team's real weekly throughput where the outcome is known.

    For every cut week c that has `history_weeks` weeks before it and `horizon_weeks` after:
    the backlog n is what the team really finished in weeks c .. c + horizon_weeks - 1; the
    forecast is `when_done(n, weekly_throughput[c - history_weeks:c])` (only the past is
    used); the actual completion is the first week W (counted from c, 1-based) by which the
    real weekly counts from c add up to n. A run is a hit when the forecast's `level` % weeks
    are >= W (the forecast date is at or after the real completion). Cuts where n is 0 or the
    history cannot forecast are skipped. An honest 85 % forecast on a team whose throughput
    does not trend hits in about 85 % of runs; a falling throughput makes it miss.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    hits = runs = skipped = 0
    misses: list[int] = []
    for cut in range(history_weeks, len(weekly_throughput) - horizon_weeks + 1):
        future = weekly_throughput[cut : cut + horizon_weeks]
        backlog = sum(future)
        forecast = when_done(
            backlog, weekly_throughput[cut - history_weeks : cut], start=date.min, trials=trials, seed=seed + cut
        )
        if backlog == 0 or isinstance(forecast, CannotForecast):
            skipped += 1
            continue
        actual = bisect_left(list(accumulate(future)), backlog) + 1
        forecast_weeks = forecast.weeks[level]
        runs += 1
        if forecast_weeks is None or forecast_weeks >= actual:
            hits += 1
        else:
            misses.append(cut)
    return Backtest(runs=runs, hits=hits, skipped=skipped, level=level, misses=tuple(misses))


def _check(trials: int, weekly_samples: Sequence[int]) -> None:
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in weekly_samples):
        raise ValueError("weekly samples must be whole numbers of items >= 0")


def _refusal(weekly_samples: Sequence[int]) -> CannotForecast | None:
    if not weekly_samples:
        return CannotForecast("no weeks of throughput history to forecast from")
    if not any(weekly_samples):
        return CannotForecast(f"no item was finished in the {len(weekly_samples)} weeks of history")
    return None


def _weeks_to_finish(remaining: int, draws: Sequence[int], sampler: _WeekSampler, max_weeks: int) -> int | None:
    """Weeks until the cumulative draws reach `remaining` (None past `max_weeks`)."""
    totals = list(accumulate(draws))
    while True:
        reached = bisect_left(totals, remaining)
        if reached < len(totals):
            return reached + 1 if reached < max_weeks else None
        if len(totals) >= max_weeks:
            return None
        so_far = totals[-1]
        totals.extend(so_far + total for total in accumulate(sampler.draw(len(draws))))


class _WeekSampler:
    """Draws weeks uniformly (with replacement) from the samples with a seeded generator."""

    def __init__(self, samples: Sequence[int], rng: random.Random) -> None:
        self._samples = list(samples)
        self._rng = rng
        self._table: bytes | None = None
        self._reject = b""
        count = len(self._samples)
        if count <= 256 and max(self._samples) <= 255:
            # Byte b picks sample b % count; bytes at or above `keep` are dropped so that every
            # sample is picked by the same number of byte values (uniform, no modulo bias).
            keep = 256 // count * count
            self._table = bytes(self._samples[b % count] for b in range(keep)) + bytes(256 - keep)
            self._reject = bytes(range(keep, 256))

    def draw(self, count: int) -> Sequence[int]:
        if self._table is None:
            return self._rng.choices(self._samples, k=count)
        out = b""
        while len(out) < count:
            wanted = count - len(out)
            out += self._rng.randbytes(wanted + wanted // 4 + 8).translate(self._table, self._reject)
        return out[:count]

    def blocks(self, trials: int, weeks: int) -> Iterator[Sequence[int]]:
        """`weeks` draws for each of `trials` trials, drawn a block of trials at a time."""
        per_block = max(1, _BLOCK_DRAWS // max(weeks, 1))
        done = 0
        while done < trials:
            size = min(per_block, trials - done)
            pool = self.draw(size * weeks)
            for offset in range(0, size * weeks, weeks):
                yield pool[offset : offset + weeks]
            done += size
