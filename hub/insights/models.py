"""Response models of the insights services (`/v1/insights/...`, `opshub report ...`).

Named by role as in hub/api/models.py. The services build these, the API returns them as
they are and the CLI prints them, so a figure is computed in one place only. One exception
for speed: GET /v1/insights/flow answers `FlowReport`'s JSON built without the objects
(hub/insights/flow.py `report_json`, tested byte for byte against the model), and
`FlowReport` stays its documented schema.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, Field

PERCENTILE_DEFINITION = (
    "nearest rank: the p-th percentile of n sorted values is the value at rank ceil(p/100 * n) "
    "(1-based), the smallest observed value with at least p % of the values at or below it"
)
"""Stated in every response (hub/flow/stats.py is the one implementation)."""


class FlowFilters(BaseModel):
    """The item filters a figure was computed for (repeating a filter means OR)."""

    source: list[str]
    tool: list[str]
    container: list[str]
    kind: list[str] = Field(description="The kinds counted (delivery kinds unless asked otherwise).")
    label: list[str]
    assignee: list[str]


class PeriodPublic(BaseModel):
    start: date = Field(description="First UTC day of the period.")
    end: date = Field(description="Last UTC day of the period (included).")


class PercentilesPublic(BaseModel):
    p50: float
    p85: float
    p95: float


class WeekThroughput(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W05 (edge weeks count only the period's days).")
    starts_on: date = Field(description="Monday of the week.")
    count: int = Field(ge=0, description="Items whose final completion falls in this week of the period.")


class ThroughputPublic(BaseModel):
    weeks: list[WeekThroughput]
    total: int = Field(ge=0, description="Items done in the period (the sum of the weeks).")
    left_out: dict[str, int] = Field(description="Items not counted, by reason (cancelled, reopened ...).")


class DurationPoint(BaseModel):
    item_id: str
    done_at: AwareDatetime = Field(description="Final completion (the scatterplot's x).")
    days: float = Field(ge=0, description="Elapsed days (36 hours is 1.5; the scatterplot's y).")


class DurationsPublic(BaseModel):
    percentiles: PercentilesPublic | None = Field(description="Null when no item has a duration.")
    points: list[DurationPoint] = Field(description="Every item behind the figure, by completion time.")
    left_out: dict[str, int] = Field(description="Completed items without a duration, by reason.")


class WipItem(BaseModel):
    item_id: str
    started_at: AwareDatetime | None = Field(description="First entry into in_progress; null when unknown.")
    age_days: float | None = Field(description="Days in progress at `as_of`; null when the start is unknown.")
    zone: str | None = Field(
        description="up_to_p50, p50_to_p85, p85_to_p95 or above_p95 against the period's cycle times; "
        "null without an age or without cycle times."
    )


class WipPublic(BaseModel):
    count: int = Field(ge=0, description="Items in progress at `as_of` (those of unknown age included).")
    items: list[WipItem] = Field(description="Oldest first; unknown ages last.")
    left_out: dict[str, int] = Field(description="Items in progress whose age is unknown, by reason.")


class CfdDayPublic(BaseModel):
    day: date
    counts: dict[str, int] = Field(description="Items per status category at the end of the UTC day.")


class CumulativeFlowPublic(BaseModel):
    days: list[CfdDayPublic]
    left_out: dict[str, int] = Field(description="Items missing on some or all days, by reason.")


class FlowReport(BaseModel):
    """Flow metrics of the items matching the filters over a period (GET /v1/insights/flow)."""

    period: PeriodPublic
    as_of: AwareDatetime = Field(description="When work in progress is measured.")
    filters: FlowFilters
    percentile_definition: str = Field(default=PERCENTILE_DEFINITION)
    items: int = Field(ge=0, description="Items matching the filters (created by the period's end or not).")
    not_counted: dict[str, int] = Field(
        description="Matching items left out of every figure, by reason (no_created_at: the tool gave none)."
    )
    throughput: ThroughputPublic
    cycle_time: DurationsPublic = Field(description="First entry into in_progress -> final completion, in days.")
    lead_time: DurationsPublic = Field(description="The tool's created_at -> final completion, in days.")
    wip: WipPublic
    cumulative_flow: CumulativeFlowPublic


class ForecastBasis(BaseModel):
    """What a forecast rests on."""

    history_weeks: int = Field(ge=0, description="Whole weeks of throughput history drawn from.")
    weekly_throughput: list[int] = Field(description="The weekly samples, oldest first.")
    history_from: date = Field(description="First day of the history weeks.")
    history_to: date = Field(description="Last day of the history weeks.")
    containers: list[str] = Field(description="Containers (teams, projects, repos) whose throughput is used.")
    items_in_history: int = Field(ge=0, description="Items of those containers the throughput was read from.")


class WhenDoneForecast(BaseModel):
    """When the open delivery items under a roadmap item will be done (Monte Carlo)."""

    item_id: str
    item_kind: str
    as_of: date = Field(description="The forecast starts on this day.")
    remaining: int = Field(ge=0, description="Open delivery items under the item, in every tool.")
    remaining_items: list[str]
    items_without_history: int = Field(ge=0, description="Remaining items with no status transition stored.")
    trials: int
    seed: int
    weeks: dict[str, int | None] | None = Field(
        description="Weeks from `as_of` at 50/85/95 %; null per level beyond the horizon; null if no forecast."
    )
    dates: dict[str, date | None] | None = Field(description="Done by this date at 50/85/95 % confidence.")
    beyond_horizon: int = Field(ge=0, description="Trials not done within the horizon (ten years).")
    reason: str | None = Field(description="Why there is no forecast (e.g. nothing finished in the history).")
    basis: ForecastBasis
    percentile_definition: str = Field(default=PERCENTILE_DEFINITION)


class HowManyForecast(BaseModel):
    """How many items matching the filters will be done in the next `weeks` weeks (Monte Carlo)."""

    weeks: int
    as_of: date
    filters: FlowFilters
    trials: int
    seed: int
    items: dict[str, int] | None = Field(
        description="At least this many items at 50/85/95 % confidence; null if no forecast."
    )
    reason: str | None
    basis: ForecastBasis
    percentile_definition: str = Field(default=PERCENTILE_DEFINITION)
