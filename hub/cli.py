"""The `opshub` command line: serve the API, migrate, manage API keys, print the schema, import.

Sub-apps (`keys`, and later `sync`, `mappings`) are plain `typer.Typer` objects added with
`app.add_typer`, so a new command group lives in its own module and edits one line here.
Every user error is one line on stderr and exit code 1 (see `hub.cli_support.user_errors`).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.json_schema import models_json_schema
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub import cli_quality  # noqa: F401 - registers `opshub report quality`
from hub.cli_inbox import inbox_app
from hub.cli_priorities import priorities
from hub.cli_report import import_history, report_app
from hub.cli_support import CliError, CliState, err_console, import_items, read_lines, user_errors
from hub.cli_sync import mappings_app, sync_command
from hub.db.engine import migrate as migrate_engine
from hub.db.engine import schema_status
from hub.schema import SCHEMA_VERSION, Change, Person, WorkItem
from hub.settings import Role
from hub.store.keys import Scope

app = typer.Typer(
    name="opshub",
    help="OpsHub: one store and one API for your product tools' work items.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
    add_completion=False,
)
keys_app = typer.Typer(help="Manage API keys (shown once at creation, stored only as hashes).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(mappings_app, name="mappings")
app.add_typer(inbox_app, name="inbox")
app.add_typer(report_app, name="report")
report_app.command("priorities")(priorities)
app.command("sync")(sync_command)
app.command("import-history")(import_history)

console = Console(highlight=False, soft_wrap=True)


def _state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    return state if isinstance(state, CliState) else CliState()


@app.callback()
def main(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy URL; overrides HUB_DATABASE_URL.", show_default=False),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Sources file; overrides HUB_CONFIG [default: ./opshub.toml].", show_default=False
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(database_url=database_url, config=config)


@app.command()
@user_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address [default: HUB_HOST or 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: HUB_PORT or 8000]")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    role: Annotated[
        Role | None,
        typer.Option(
            help="api: the HTTP API only; worker: schedules and the inbox worker (HTTP only for /healthz, "
            "/readyz, /metrics); all: both [default: HUB_ROLE or all]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the API and/or run the background work (migrates the database first unless
    HUB_MIGRATE_ON_START=false)."""
    import uvicorn

    settings = _state(ctx).settings()
    role = role or settings.role
    host = host or settings.host
    port = port or settings.port
    # Bind before saying "serving on": a busy port is one line and exit 1, not a banner
    # followed by uvicorn's error block. The bound socket is handed to uvicorn as is.
    listener = listen_socket(host, port)
    try:
        store = _state(ctx).open_store(migrate_schema=settings.migrate_on_start)
    except BaseException:
        listener.close()
        raise
    what = "health and metrics" if role is Role.worker else "serving"
    err_console.print(
        f"OpsHub ({role.value}) {what} on http://{host}:{port} (database: {store.engine.url.render_as_string()})"
    )
    if reload:
        # The reloader imports the app in a fresh process and binds the port itself: hand the
        # settings over by environment and free the port checked above.
        listener.close()
        store.close()
        os.environ["HUB_DATABASE_URL"] = settings.database_url
        os.environ["HUB_ROLE"] = role.value
        uvicorn.run(
            "hub.api.app:create_app", factory=True, host=host, port=port, reload=True, log_level=settings.log_level
        )
        return
    from hub.api.app import create_app
    from hub.logs import configure_for

    try:
        config = _state(ctx).hub_config()
        # The hub's handler (format, request ids, redaction) carries uvicorn's lines too:
        # log_config=None keeps uvicorn from installing its own, unredacted handlers.
        configure_for(settings, config)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(store=store, settings=settings, config=config, role=role),
                log_level=settings.log_level,
                log_config=None,
            )
        )
        server.run(sockets=[listener])
    finally:
        listener.close()
        store.close()


@app.command()
@user_errors
def demo(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Keep the demo's data in this database (migrated first); default: a throwaway SQLite file.",
            show_default=False,
        ),
    ] = None,
    trickle: Annotated[
        bool, typer.Option("--trickle/--no-trickle", help="Send a webhook every few seconds that moves an item.")
    ] = True,
    trickle_seconds: Annotated[float, typer.Option(min=0.2, help="Seconds between two webhooks.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Which variant of the demo organisation to build.")] = 1,
) -> None:
    """Try the hub without credentials: fakes of all seven tools, synced and served, until Ctrl-C."""
    from hub.demo.run import run_demo

    settings = _state(ctx).settings()
    listener = listen_socket(host, port)
    try:
        run_demo(
            settings,
            listener,
            database_url=database_url or _state(ctx).database_url,
            seed=seed,
            trickle_seconds=trickle_seconds if trickle else None,
            say=lambda line: err_console.print(line, markup=False, highlight=False),
        )
    finally:
        listener.close()


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), as uvicorn would bind it; CliError when it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = " (another process is listening there; pick another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


@app.command()
@user_errors
def migrate(ctx: typer.Context) -> None:
    """Bring the database schema to the newest revision (idempotent)."""
    store = _state(ctx).open_store(migrate_schema=False)
    try:
        before, head = schema_status(store.engine)
        if before == head:
            console.print(f"database already at revision {head}, nothing to do")
            return
        migrate_engine(store.engine)
        after, _ = schema_status(store.engine)
        console.print(f"migrated database from revision {before or '(empty)'} to {after}")
    finally:
        store.close()


class SchemaMode(StrEnum):
    serialization = "serialization"  # the documents the API returns (with computed fields)
    validation = "validation"  # what `opshub import` and apply() accept


@app.command()
def schema(
    mode: Annotated[
        SchemaMode, typer.Option(help="serialization: what the API returns; validation: what import accepts.")
    ] = SchemaMode.serialization,
) -> None:
    """Print the JSON Schema of the shared schema (WorkItem, Person, Change) on stdout."""
    _, top = models_json_schema(
        [(WorkItem, mode.value), (Person, mode.value), (Change, mode.value)],
        title=f"OpsHub shared schema v{SCHEMA_VERSION}",
    )
    document: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **top}
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@app.command("import")
@user_errors
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file of WorkItems, or - for stdin.")],
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Items per transaction.")] = 500,
    stop_on_error: Annotated[
        bool, typer.Option(help="Stop at the first bad line (good lines before it are kept).")
    ] = False,
) -> None:
    """Load WorkItems from JSON Lines through the store's one write path (upsert only if newer)."""
    if file == "-":
        stream, name, total = sys.stdin.buffer, "<stdin>", None
    else:
        path = Path(file)
        if path.is_dir():
            raise CliError(f"{file} is a directory, not a JSON Lines file")
        stream, name, total = path.open("rb"), file, path.stat().st_size
    store = _state(ctx).open_store()
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("import", total=total)
            report = import_items(
                store,
                read_lines(stream, lambda n: progress.advance(task, n)),
                name=name,
                on_error=lambda message: progress.console.print(message, markup=False),
                batch_size=batch_size,
                stop_on_error=stop_on_error,
            )
    finally:
        store.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    console.print(report.summary(name), markup=False)
    if report.errors:
        raise typer.Exit(1)


# ---------------------------------------------------------------------- keys


@keys_app.command("create")
@user_errors
def keys_create(
    ctx: typer.Context,
    scope: Annotated[Scope, typer.Option(help="read: the /v1 read API; admin: everything.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key (for KEY=$(...)).")] = False,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    store = _state(ctx).open_store()
    try:
        key, token = store.keys.create(scope, name)
    finally:
        store.close()
    if quiet:
        typer.echo(token)
        return
    err_console.print(f"created {key.scope.value} key {key.id}" + (f" ({key.name})" if key.name else ""), markup=False)
    err_console.print("the key is shown only now; store it safely:", markup=False)
    typer.echo(token)


@keys_app.command("list")
@user_errors
def keys_list(ctx: typer.Context) -> None:
    """List API keys (never their secrets)."""
    store = _state(ctx).open_store()
    try:
        found = store.keys.list()
    finally:
        store.close()
    table = Table("id", "name", "scope", "created", "last used", "revoked")
    table.columns[0].no_wrap = True

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"

    for key in found:
        table.add_row(
            key.id, key.name or "-", key.scope.value, when(key.created_at), when(key.last_used_at), when(key.revoked_at)
        )
    if not found:
        err_console.print("no API keys yet: opshub keys create --scope read")
        return
    # Piped or captured output has no width: use one the table fits in rather than wrap at 80.
    Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id from `keys list`.")]
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    store = _state(ctx).open_store()
    try:
        revoked = store.keys.revoke(key_id)
    finally:
        store.close()
    if not revoked:
        raise CliError(f"no active API key with id {key_id!r} (unknown or already revoked; see `opshub keys list`)")
    console.print(f"revoked key {key_id}", markup=False)
