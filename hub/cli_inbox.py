"""`opshub inbox list|replay`: see stored webhook deliveries and queue dead ones again.

After an outage (a tool or the database down), deliveries that could not be applied wait
(`pending`, with the reason as their error) or, after their attempts ran out, are `dead`.
`opshub inbox list --status dead` shows them; `opshub inbox replay --all-dead` queues them
again with fresh attempts (the running hub's worker applies them). The admin API offers the
same under /v1/inbox.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from hub.cli_support import CliError, CliState, err_console, user_errors
from hub.store.inbox import DEAD, DONE, FAILED, IGNORED, PENDING, PROCESSING, InboxStore, ReplayRefused

console = Console(highlight=False, soft_wrap=True)
inbox_app = typer.Typer(help="See stored webhook deliveries; replay dead ones.", no_args_is_help=True)


class Status(StrEnum):
    pending = PENDING
    processing = PROCESSING
    done = DONE
    ignored = IGNORED
    failed = FAILED
    dead = DEAD


def _state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    return state if isinstance(state, CliState) else CliState()


@inbox_app.command("list")
@user_errors
def list_deliveries(
    ctx: typer.Context,
    status: Annotated[Status | None, typer.Option("--status", help="Only deliveries in this state.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source's deliveries.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Most rows to show.")] = 100,
) -> None:
    """Deliveries in arrival order with their state, attempts and last error."""
    store = _state(ctx).open_store()
    try:
        entries = InboxStore(store.engine).entries(status=status.value if status else None, source=source, limit=limit)
    finally:
        store.close()
    # One tab-separated line per delivery (no table: errors are long and lines are grep-able).
    console.print("\t".join(("id", "source", "delivery", "status", "attempts", "received", "error")))
    for e in entries:
        fields = (str(e.id), e.source, e.delivery_id, e.status, str(e.attempts), f"{e.received_at:%Y-%m-%dT%H:%M:%SZ}")
        console.print("\t".join((*fields, " ".join((e.error or "").split())[:500])), markup=False)
    if not entries:
        err_console.print("no deliveries match")


@inbox_app.command("replay")
@user_errors
def replay(
    ctx: typer.Context,
    inbox_id: Annotated[int | None, typer.Argument(help="Inbox id of one delivery (see `inbox list`).")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery (of --source).")] = False,
    source: Annotated[str | None, typer.Option("--source", help="With --all-dead: only this source.")] = None,
) -> None:
    """Queue deliveries again with fresh attempts; the hub's worker applies them."""
    if (inbox_id is None) == (not all_dead):
        raise CliError("give either an inbox id or --all-dead")
    if source is not None and not all_dead:
        raise CliError("--source goes with --all-dead")
    store = _state(ctx).open_store()
    try:
        inbox = InboxStore(store.engine)
        if inbox_id is not None:
            try:
                entry = inbox.replay(inbox_id)
            except ReplayRefused as exc:
                raise CliError(str(exc)) from None
            console.print(f"queued delivery {entry.delivery_id} of {entry.source} again (inbox id {entry.id})")
        else:
            count = inbox.replay_dead(source)
            console.print(f"queued {count} dead deliveries again")
    finally:
        store.close()
