"""`opshub report priorities`: the urgent x important matrix as a table in a terminal.

The same service as GET /v1/insights/priorities decides every quadrant
(hub/insights/priorities.py, rules from the settings); this module only prints it.
`--json` prints the API's document instead.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.cli_report import AssigneeOption, ContainerOption, Repeated, _console, _day, _state
from hub.cli_support import user_errors
from hub.insights.priorities import PriorityMatrix, PriorityRules, PriorityService, Quadrant
from hub.schema import ItemKind, PriorityLevel, StatusCategory
from hub.store import ItemQuery
from hub.store.items import utcnow

TITLES = {
    Quadrant.urgent_important: "urgent and important: do first",
    Quadrant.important_not_urgent: "important, not urgent: schedule",
    Quadrant.urgent_not_important: "urgent, not important: delegate or drop",
    Quadrant.neither: "neither",
}


@user_errors
def priorities(
    ctx: typer.Context,
    source: Repeated = None,
    tool: Repeated = None,
    container: ContainerOption = None,
    kind: Annotated[list[ItemKind] | None, typer.Option(help="Item kind (repeatable).")] = None,
    status_category: Annotated[list[StatusCategory] | None, typer.Option(help="Status category (repeatable).")] = None,
    priority_level: Annotated[list[PriorityLevel] | None, typer.Option(help="Priority level (repeatable).")] = None,
    label: Repeated = None,
    assignee: AssigneeOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Items listed per quadrant.")] = 10,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Day urgency is measured from [default: today].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON document.")] = False,
) -> None:
    """Every open item in one of four quadrants, urgent x important (rules: the README)."""
    today = _day(as_of, "--as-of") or utcnow().date()
    query = ItemQuery(
        source=source or [],
        tool=tool or [],
        container=container or [],
        kind=[k.value for k in kind or []],
        status_category=[s.value for s in status_category or []],
        priority_level=[p.value for p in priority_level or []],
        label=label or [],
        assignee=assignee or [],
    )
    state = _state(ctx)
    store = state.open_store()
    try:
        result = PriorityService(store.engine, PriorityRules.from_settings(state.settings())).matrix(
            query, as_of=today, limit=limit
        )
    finally:
        store.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    print_matrix(_console(), result)


def print_matrix(console: Console, m: PriorityMatrix) -> None:
    console.print(f"Priority matrix on {m.as_of}: {m.open_items} open items")
    grid = Table("", "important", "not important", title="open items per quadrant")
    q = m.quadrants
    grid.add_row("urgent", str(q[Quadrant.urgent_important].count), str(q[Quadrant.urgent_not_important].count))
    grid.add_row("not urgent", str(q[Quadrant.important_not_urgent].count), str(q[Quadrant.neither].count))
    console.print(grid)
    for quadrant, title in TITLES.items():
        found = q[quadrant]
        if not found.items:
            continue
        console.print(f"{title} ({found.count})", style="bold")  # a table title would wrap to the table's width
        table = Table("key", "title", "why")
        for item in found.items:
            table.add_row(item.key or item.id, item.title, ", ".join(item.why))
        if found.count > len(found.items):
            table.caption = f"{found.count - len(found.items)} more (--limit, or the API's paging)"
        console.print(table)
    for name, rule in m.rules.items():
        console.print(f"{name}: {rule}", markup=False)
