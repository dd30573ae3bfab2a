"""hub.flow.forecast: Monte Carlo "when" and "how many", seeded, checked by back-tests."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.flow.forecast import CannotForecast, HowMany, WhenDone, backtest, how_many, when_done

START = date(2026, 3, 2)


@settings(max_examples=60, deadline=None, database=None)
@given(
    k=st.integers(min_value=1, max_value=300),
    n=st.integers(min_value=0, max_value=2_000),
    history=st.integers(min_value=1, max_value=300),
    seed=st.integers(),
)
def test_constant_throughput_gives_ceil_n_over_k_weeks_at_every_percentile(
    k: int, n: int, history: int, seed: int
) -> None:
    # Up to 300 weeks of history and throughput above 255: both sampling paths are covered.
    result = when_done(n, [k] * history, start=START, trials=200, seed=seed, max_weeks=2_000)
    assert isinstance(result, WhenDone)
    weeks = math.ceil(n / k)
    assert result.weeks == {50: weeks, 85: weeks, 95: weeks}
    assert result.dates == dict.fromkeys((50, 85, 95), START + timedelta(weeks=weeks))


@settings(max_examples=40, deadline=None, database=None)
@given(k=st.integers(min_value=1, max_value=300), weeks=st.integers(min_value=0, max_value=60))
def test_constant_throughput_how_many_is_k_times_weeks(k: int, weeks: int) -> None:
    result = how_many(weeks, [k] * 8, trials=200, seed=1)
    assert isinstance(result, HowMany)
    assert result.items == dict.fromkeys((50, 85, 95), k * weeks)


def test_same_seed_same_answer_and_another_seed_may_differ() -> None:
    samples = [3, 5, 0, 7, 4, 6, 2, 5, 8, 4, 3, 6]
    first = when_done(60, samples, start=START, seed=42)
    again = when_done(60, samples, start=START, seed=42)
    assert first == again
    assert how_many(6, samples, seed=42) == how_many(6, samples, seed=42)
    # The figures are not constant: the seed really drives the trials.
    answers = {tuple(how_many(6, samples, seed=seed, trials=500).items.values()) for seed in range(10)}  # type: ignore[union-attr]
    assert len(answers) > 1


def test_percentiles_go_the_right_way() -> None:
    samples = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    when = when_done(50, samples, start=START, seed=3)
    assert isinstance(when, WhenDone)
    assert when.weeks[50] is not None and when.weeks[85] is not None and when.weeks[95] is not None
    assert when.weeks[50] <= when.weeks[85] <= when.weeks[95]  # more confidence: later
    many = how_many(10, samples, seed=3)
    assert isinstance(many, HowMany)
    assert many.items[50] >= many.items[85] >= many.items[95]  # more confidence: fewer ("at least")
    # Around the mean of 5 items a week: 10 weeks ~ 50 items, 50 items ~ 10 weeks.
    assert 40 <= many.items[50] <= 60
    assert 8 <= when.weeks[50] <= 12


def test_how_many_85_means_at_least_that_many_in_85_percent_of_trials() -> None:
    samples = [1, 2, 3, 9]
    many = how_many(4, samples, trials=4_000, seed=11)
    assert isinstance(many, HowMany)
    # Recompute the trials' totals independently with the exact distribution of 4 draws.
    totals = [a + b + c + d for a in samples for b in samples for c in samples for d in samples]
    share_at_least = sum(1 for total in totals if total >= many.items[85]) / len(totals)
    share_above = sum(1 for total in totals if total > many.items[85]) / len(totals)
    assert share_at_least >= 0.83  # sampling noise around 0.85
    assert share_above < 0.87


def test_zero_throughput_cannot_forecast_and_returns() -> None:
    for result in (when_done(10, [0, 0, 0], start=START), how_many(4, [0, 0]), when_done(1, [], start=START)):
        assert isinstance(result, CannotForecast)
        assert result.reason


def test_rare_throughput_is_beyond_the_horizon_not_a_hang() -> None:
    result = when_done(10, [0] * 99 + [1], start=START, trials=300, max_weeks=52)
    assert isinstance(result, WhenDone)
    assert result.weeks[85] is None and result.dates[85] is None
    assert result.beyond_horizon > 0


def test_nothing_remaining_is_done_at_the_start() -> None:
    result = when_done(0, [2, 3], start=START)
    assert isinstance(result, WhenDone)
    assert set(result.dates.values()) == {START}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="remaining"):
        when_done(-1, [1], start=START)
    with pytest.raises(ValueError, match="whole numbers"):
        when_done(3, [1, -2], start=START)
    with pytest.raises(ValueError, match="trials"):
        how_many(3, [1], trials=0)


def stationary_team(weeks: int, seed: int) -> list[int]:
    """A team whose weekly throughput does not trend: each week drawn from one distribution."""
    rng = random.Random(seed)
    return [rng.choice([0, 1, 2, 3, 3, 4, 4, 5, 6, 8]) for _ in range(weeks)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backtest_85_percent_date_is_at_or_after_the_real_completion(seed: int) -> None:
    result = backtest(stationary_team(80, seed), history_weeks=20, horizon_weeks=6, trials=1_000, seed=seed)
    assert result.runs >= 50
    assert result.hit_rate >= 0.8, result


def test_backtest_catches_a_forecast_that_cannot_hold() -> None:
    # Throughput halves after the history window: an honest forecast from the past must miss.
    falling = [6, 7, 5, 6, 8, 6, 7, 5] * 3 + [2, 3, 2, 3, 2, 3, 2, 3] * 2
    result = backtest(falling, history_weeks=24, horizon_weeks=6, trials=500)
    assert result.runs > 0
    assert result.hit_rate < 0.8
