"""`opshub report quality`: the data-quality report in a terminal, and a gate for CI.

The same service as GET /v1/insights/quality computes every figure (hub/insights/quality.py);
this module prints it. `--fail-under N` exits 1 when a source or a container scores below N,
naming the first one on one line, so a team can gate a pipeline on its data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from hub.cli_report import AssigneeOption, ContainerOption, Repeated, _console, _day, _state, report_app
from hub.cli_support import CliError, user_errors
from hub.insights.quality import DEFAULT_FINDING_LIMIT, GroupQuality, QualityReport, QualityService
from hub.schema import ItemKind
from hub.store import ItemQuery
from hub.store.items import utcnow


@report_app.command("quality")
@user_errors
def quality(
    ctx: typer.Context,
    source: Repeated = None,
    tool: Repeated = None,
    container: ContainerOption = None,
    kind: Annotated[list[ItemKind] | None, typer.Option(help="Kinds counted [default: all].")] = None,
    label: Repeated = None,
    assignee: AssigneeOption = None,
    stale_days: Annotated[
        int | None, typer.Option("--stale-days", min=1, help="[default: setting HUB_QUALITY_STALE_DAYS]")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Item ids listed per finding.")] = DEFAULT_FINDING_LIMIT,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many ids of each finding.")] = 0,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Measure staleness at this day's start.")] = None,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", min=0, max=100, help="Exit 1 if a score is below this.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON document.")] = False,
) -> None:
    """Completeness, vocabulary drift, hygiene findings and a 0-100 score per source and container."""
    day = _day(as_of, "--as-of")
    now = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else utcnow()
    query = ItemQuery.shared_filters(
        source=source, tool=tool, container=container, kind=kind, label=label, assignee=assignee
    )
    state = _state(ctx)
    store = state.open_store()
    try:
        result = QualityService(store.engine).report(
            query, as_of=now, stale_days=stale_days or state.settings().quality_stale_days, limit=limit, offset=offset
        )
    finally:
        store.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        print_quality(result)
    if fail_under is not None:
        below = first_below(result, fail_under)
        if below is not None:
            raise CliError(f"quality score {below.score:g} of {_name(below)} is below {fail_under:g}")


def first_below(report: QualityReport, threshold: float) -> GroupQuality | None:
    """The lowest-scoring source or container under `threshold` (None when all pass)."""
    groups = [g for g in (*report.sources, *report.containers) if g.score < threshold]
    return min(groups, key=lambda g: (g.score, _name(g))) if groups else None


def _name(group: GroupQuality) -> str:
    if group.container_id is None:
        return f"source {group.source}"
    return f"container {group.container_key or group.container_id} of source {group.source}"


def print_quality(r: QualityReport) -> None:
    console = _console()
    console.print(f"Data quality at {r.as_of:%Y-%m-%d %H:%M}Z, {r.items} matching items")
    fields = [s.field for s in (r.sources[0].completeness if r.sources else [])]
    scores = Table("source / container", "items", "open", *fields, "drifting", "findings", "score", title="Scores")
    for g in (*r.sources, *r.containers):
        shares = ["-" if s.share is None else f"{s.share:.0%}" for s in g.completeness]
        scores.add_row(
            _name(g),
            str(g.items),
            str(g.open_items),
            *shares,
            str(g.drifting_items),
            str(g.items_with_findings),
            f"{g.score:g}",
        )
    console.print(scores)
    drift = Table("source", "field", "raw value", "items", "example", title="Vocabulary drift (add mapping overrides)")
    for d in r.drift:
        drift.add_row(d.source, d.field, d.raw, str(d.count), d.example.url or d.example.id)
    console.print(drift)
    for f in r.findings:
        more = f" (next: --offset {f.next_offset})" if f.next_offset is not None else ""
        ids = ", ".join(i.id for i in f.items) or "-"
        console.print(f"{f.name}: {f.count}{more}: {ids}", markup=False)
    console.print(f"Score: {r.rules['score']}", markup=False)
