"""`opshub sync SOURCE` and `opshub mappings check|preview`: the CLI side of the sync engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.cli_support import CliError, CliState, err_console, user_errors
from hub.store.runs import RunInProgress
from hub.sync import RunSummary, SyncEngine
from mappings import MappingError, check_all, preview

console = Console(highlight=False, soft_wrap=True)
mappings_app = typer.Typer(help="Check mapping specs and overrides; preview how a record maps.", no_args_is_help=True)


def _state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    return state if isinstance(state, CliState) else CliState()


def _summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"{summary.source}: {summary.mode} sync {summary.status}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in (
        ("fetched", summary.fetched),
        ("changed", summary.changed),
        ("unchanged", summary.unchanged),
        ("deleted", summary.deleted),
        ("failed records", summary.failed_records),
        ("requests", summary.requests),
        ("retries", summary.retries),
        ("time", f"{summary.seconds:.1f} s"),
    ):
        table.add_row(label, str(value))
    return table


@user_errors
def sync_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Source name from the config file.")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything instead of resuming.")] = False,
    sweep: Annotated[
        bool | None,
        typer.Option(
            "--sweep/--no-sweep", help="Tombstone items the tool deleted [default: on full runs].", show_default=False
        ),
    ] = None,
) -> None:
    """Sync one source now, with a progress bar and a summary."""
    state = _state(ctx)
    config = state.hub_config()
    if source not in config.sources:
        known = ", ".join(sorted(config.sources)) or "none configured"
        raise CliError(f"no source named {source!r} (known: {known})")
    store = state.open_store()
    try:
        engine = SyncEngine(store, config)
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        ) as progress:
            task = progress.add_task(f"syncing {source}", total=None, detail="starting")

            def report(summary: RunSummary) -> None:
                progress.update(
                    task,
                    detail=f"{summary.fetched} fetched, {summary.changed} changed, "
                    f"{summary.failed_records} failed, {summary.requests} requests",
                )

            try:
                summary = asyncio.run(engine.run(source, full=full, sweep=sweep, progress=report))
            except RunInProgress as exc:
                raise CliError(str(exc)) from None
        console.print(_summary_table(summary))
        for error in summary.record_errors[:10]:
            err_console.print(f"record {error['native_id']}: {error['error']}", markup=False)
        if summary.status != "succeeded":
            raise CliError(f"sync of {source} failed: {summary.error}")
    finally:
        store.close()


@mappings_app.command("check")
@user_errors
def mappings_check(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(help="Only this source [default: every source and spec].")] = None,
) -> None:
    """Validate the shipped specs and each source's overrides; one line per problem."""
    config = _state(ctx).hub_config()
    wanted = {
        name: (src.tool, src.config.mapping) for name, src in config.sources.items() if source is None or name == source
    }
    if source is not None and not wanted:
        raise CliError(f"no source named {source!r} in the config")
    problems = check_all(wanted)
    for line in problems:
        err_console.print(line, markup=False)
    if problems:
        raise CliError(f"{len(problems)} mapping problem(s)")
    console.print(f"mappings ok ({len(wanted)} source(s) checked)")


@mappings_app.command("preview")
@user_errors
def mappings_preview(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Source name from the config file.")],
    record: Annotated[Path, typer.Argument(help="A raw record as the tool's API returns it (JSON).")],
    fields: Annotated[
        Path | None, typer.Option(help="Jira: the field catalog (GET /rest/api/3/field) to resolve custom fields.")
    ] = None,
) -> None:
    """Print the WorkItem a raw record becomes under this source's mapping."""
    config = _state(ctx).hub_config()
    if source not in config.sources:
        raise CliError(f"no source named {source!r} in the config")
    definition = config.sources[source]
    raw = _read_json(record)
    if not isinstance(raw, dict):
        raise CliError(f"{record}: expected one JSON object (a raw record)")
    context: dict[str, Any] = {"source": source, "tool": definition.tool, "base_url": definition.config.base_url}
    if fields is not None:
        context["fields"] = _read_json(fields)
    try:
        item = preview(definition.tool, raw, context, definition.config.mapping)
    except MappingError as exc:
        raise CliError(f"{record}: {exc}") from None
    console.print_json(item.model_dump_json(exclude_none=True))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
