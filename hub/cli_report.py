"""`opshub report flow|forecast`: the insights services' figures as tables in a terminal.

The same services as GET /v1/insights/flow and /v1/insights/forecast compute every figure
(hub/insights); this module only prints them. `--json` prints the API's document instead.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.table import Table

from hub.cli_support import CliError, CliState, err_console, user_errors
from hub.flow.forecast import DEFAULT_TRIALS
from hub.flow.history import Transition, TransitionSource
from hub.flow.metrics import Period
from hub.insights.digest import DEFAULT_NAMED, DigestService, default_window, to_markdown
from hub.insights.flow import FlowService, period_of
from hub.insights.forecast import DEFAULT_HISTORY_WEEKS, ForecastService, ItemNotFound, NotRoadmapItem
from hub.insights.models import DurationsPublic, FlowReport, WhenDoneForecast
from hub.schema import ItemKind, Status
from hub.store import ItemQuery
from hub.store.items import utcnow
from hub.store.transitions import TransitionStore

report_app = typer.Typer(help="Flow metrics and forecasts across every tool, as tables.", no_args_is_help=True)

Repeated = Annotated[list[str] | None, typer.Option(show_default=False)]
# The /v1/items filters every report takes, declared once (as hub/api/params.py does for the API).
ContainerOption = Annotated[list[str] | None, typer.Option(help="Container id or key (repeatable).")]
AssigneeOption = Annotated[list[str] | None, typer.Option(help="Hub person id or email (repeatable).")]


def _state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    return state if isinstance(state, CliState) else CliState()


def _console() -> Console:
    # Piped or captured output has no width: use one the tables fit in rather than wrap at 80.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{name} must be a date like 2026-03-04, got {value!r}") from None


@report_app.command("flow")
@user_errors
def flow(
    ctx: typer.Context,
    source: Repeated = None,
    tool: Repeated = None,
    container: ContainerOption = None,
    kind: Annotated[list[ItemKind] | None, typer.Option(help="Kinds counted [default: delivery kinds].")] = None,
    label: Repeated = None,
    assignee: AssigneeOption = None,
    start: Annotated[str | None, typer.Option("--from", help="First day, e.g. 2026-03-04.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (included).")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Measure WIP at this day's start [default: now].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON document.")] = False,
) -> None:
    """Throughput, cycle and lead time, aging WIP and cumulative flow [default: last 12 weeks]."""
    day = _day(as_of, "--as-of")
    now = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else utcnow()
    try:
        period: Period = period_of(_day(start, "--from"), _day(end, "--to"), now)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    query = ItemQuery.shared_filters(
        source=source, tool=tool, container=container, kind=kind, label=label, assignee=assignee
    )
    store = _state(ctx).open_store()
    try:
        result = FlowService(store.engine).flow(query, as_of=now, period=period)
    finally:
        store.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    print_flow(_console(), result)


def print_flow(console: Console, r: FlowReport) -> None:
    console.print(
        f"Flow {r.period.start} .. {r.period.end} (WIP at {r.as_of:%Y-%m-%d %H:%M}Z), {r.items} matching items"
    )
    weeks = Table("week", "starts", "done", title=f"Throughput: {r.throughput.total} done")
    for w in r.throughput.weeks:
        weeks.add_row(w.week, str(w.starts_on), str(w.count))
    console.print(weeks)
    _left_out(console, "throughput", r.throughput.left_out)
    times = Table("figure", "items", "p50 days", "p85 days", "p95 days", "left out", title="Cycle and lead time")
    for name, figure in (("cycle time", r.cycle_time), ("lead time", r.lead_time)):
        times.add_row(name, str(len(figure.points)), *_percentiles(figure), _reasons(figure.left_out))
    console.print(times)
    wip = Table("item", "started", "age days", "zone", title=f"Work in progress: {r.wip.count}")
    for a in r.wip.items:
        wip.add_row(
            a.item_id,
            "unknown" if a.started_at is None else f"{a.started_at:%Y-%m-%d %H:%M}",
            "-" if a.age_days is None else f"{a.age_days:g}",
            a.zone or "-",
        )
    console.print(wip)
    categories = ("backlog", "todo", "in_progress", "done", "cancelled")
    cfd = Table("day", *categories, title="Cumulative flow (end of day)")
    for d in r.cumulative_flow.days:
        cfd.add_row(str(d.day), *(str(d.counts.get(c, 0)) for c in categories))
    console.print(cfd)
    _left_out(console, "cumulative flow", r.cumulative_flow.left_out)
    console.print(f"Percentiles: {r.percentile_definition}.")


def _percentiles(figure: DurationsPublic) -> tuple[str, str, str]:
    p = figure.percentiles
    return ("-", "-", "-") if p is None else (f"{p.p50:g}", f"{p.p85:g}", f"{p.p95:g}")


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "-"


def _left_out(console: Console, figure: str, counts: dict[str, int]) -> None:
    if counts:
        console.print(f"Left out of {figure}: {_reasons(counts)}")


@report_app.command("forecast")
@user_errors
def forecast(
    ctx: typer.Context,
    item_id: Annotated[str, typer.Argument(help="Hub id of a roadmap item (initiative, epic, feature).")],
    weeks: Annotated[
        int, typer.Option("--weeks", min=1, max=260, help="Whole weeks of throughput history.")
    ] = DEFAULT_HISTORY_WEEKS,
    seed: Annotated[int, typer.Option(min=0, help="Same data and seed, same answer.")] = 0,
    trials: Annotated[int, typer.Option(min=1, max=100_000, help="Monte Carlo trials.")] = DEFAULT_TRIALS,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Day the forecast starts [default: today].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON document.")] = False,
) -> None:
    """When the open delivery items under a roadmap item will be done, at 50/85/95 %."""
    today = _day(as_of, "--as-of") or utcnow().date()
    store = _state(ctx).open_store()
    try:
        result = ForecastService(store.engine).when_done(
            item_id, as_of=today, history_weeks=weeks, trials=trials, seed=seed
        )
    except ItemNotFound:
        raise CliError(f"no item with id {item_id!r}") from None
    except NotRoadmapItem as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    print_forecast(_console(), result)


def print_forecast(console: Console, r: WhenDoneForecast) -> None:
    console.print(f"Forecast for {r.item_id} ({r.item_kind}) from {r.as_of}: {r.remaining} open delivery items")
    if r.weeks is None or r.dates is None:
        console.print(f"No forecast: {r.reason}.")
    else:
        table = Table("confidence", "weeks", "done by", title=f"{r.trials} trials, seed {r.seed}")
        for level in ("p50", "p85", "p95"):
            w, d = r.weeks[level], r.dates[level]
            table.add_row(f"{level[1:]} %", "beyond horizon" if w is None else str(w), "-" if d is None else str(d))
        console.print(table)
    b = r.basis
    console.print(
        f"Rests on {b.history_weeks} weeks ({b.history_from} .. {b.history_to}) of throughput "
        f"{b.weekly_throughput} from containers {', '.join(b.containers) or '-'}; "
        f"{r.items_without_history} of the remaining items have no status history."
    )


class TransitionLine(BaseModel):
    """One line of a status history file (examples/history.jsonl): an item entered `to` at
    `at` (the tool's clock), from `from` where known."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    item_id: str = Field(min_length=1)
    at: AwareDatetime
    to: Status
    from_: Status | None = Field(default=None, alias="from")
    source: TransitionSource = TransitionSource.changelog

    def fact(self) -> Transition:
        before = self.from_
        return Transition(
            self.item_id,
            self.at,
            self.to.category,
            self.to.name,
            None if before is None else before.category,
            None if before is None else before.name,
            self.source,
        )


@user_errors
def import_history(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON Lines of status transitions (see examples/history.jsonl).")],
) -> None:
    """Load status transitions (e.g. exported from a tool) into the hub's history; loading the
    same facts again adds nothing."""
    if file.is_dir():
        raise CliError(f"{file} is a directory, not a JSON Lines file")
    facts: list[Transition] = []
    with file.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                facts.append(TransitionLine.model_validate_json(line).fact())
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(part) for part in problem["loc"]) or "line"
                raise CliError(f"{file}:{number}: {where}: {problem['msg']} (nothing was stored)") from None
    store = _state(ctx).open_store()
    try:
        TransitionStore(store.engine).record(facts)
    finally:
        store.close()
    err_console.print(f"{len(facts)} transitions of {len({f.item_id for f in facts})} items recorded", markup=False)


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{name} must be a date or time like 2026-03-04 or 2026-03-04T09:00Z, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@report_app.command("digest")
@user_errors
def digest(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="Period start [default: until - 7 days].")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Period end, excluded [default: now].")] = None,
    named: Annotated[int, typer.Option(min=0, max=20, help="Items named per point.")] = DEFAULT_NAMED,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown (as the API's text/markdown).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON document.")] = False,
) -> None:
    """What was finished, started, blocked, reopened, new urgent, overdue; RICE top 10."""
    end = _moment(until, "--until") or utcnow()
    start = _moment(since, "--since") or default_window(end)[0]
    if start >= end:
        raise CliError("--since must be before --until")
    store = _state(ctx).open_store()
    try:
        result = DigestService(store.engine).digest(start, end, named=named)
    finally:
        store.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        # The Markdown is the terminal form too: it reads as plain text.
        typer.echo(to_markdown(result), nl=False)
