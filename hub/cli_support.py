"""Helpers behind `hub.cli`: user-facing errors, opening the store, the JSON Lines importer.

Kept apart from the typer wiring so that the CLI module stays a thin list of commands and
the importer can be used (and tested) without a terminal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

from connectors.egress import EgressPolicy, configure_default
from hub.config import ConfigError, HubConfig, load_config
from hub.schema import ItemDeletion, WorkItem
from hub.settings import Settings, get_settings
from hub.store import ApplyResult, Store
from hub.store.items import database_unavailable

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """A user error: printed as one line on stderr, exit code 1, no traceback."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (drivers add SQL and hints below it)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr; return the Exit to raise."""
    err_console.print(f"error: {message}", markup=False)
    return typer.Exit(1)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn user errors (bad URL, missing file, unreachable database ...) into one line + exit 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (CliError, ConfigError) as exc:
            raise fail(str(exc)) from None
        except (ArgumentError, NoSuchModuleError) as exc:
            raise fail(f"bad database URL: {one_line(exc)}") from None
        except OperationalError as exc:
            raise fail(f"database unavailable: {one_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise fail(f"database error: {one_line(exc)}") from None
        except OSError as exc:
            raise fail(f"{exc.strerror or one_line(exc)}: {exc.filename}" if exc.filename else one_line(exc)) from None

    return wrapper


@dataclass
class CliState:
    """Options given before the command (`opshub --database-url URL COMMAND`)."""

    database_url: str | None = None
    config: Path | None = None

    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.database_url:
            overrides["database_url"] = self.database_url
        if self.config:
            overrides["config"] = self.config
        settings = Settings(**overrides) if overrides else get_settings()
        # Where connectors may connect (connectors/egress.py): a CLI sync follows the settings too.
        configure_default(EgressPolicy(allow=tuple(settings.egress_allow), allow_http=settings.egress_allow_http))
        return settings

    def hub_config(self) -> HubConfig:
        """The sources file (--config, HUB_CONFIG, or ./opshub.toml if present)."""
        return load_config(self.settings().config)

    def open_store(self, *, migrate_schema: bool = True) -> Store:
        settings = self.settings()
        try:
            return Store.open(
                settings.database_url,
                migrate_schema=migrate_schema,
                sqlite_cache_mib=settings.sqlite_cache_mib,
                sqlite_mmap_mib=settings.sqlite_mmap_mib,
            )
        except ValueError as exc:  # unsupported backend
            raise CliError(f"bad database URL: {exc}") from None


# ---------------------------------------------------------------------- import


@dataclass
class ImportReport:
    read: int = 0
    upserted: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: int = 0

    def add(self, result: ApplyResult, *, tombstone: bool = False) -> None:
        if not tombstone:
            self.upserted += result.upserted
            self.unchanged += result.unchanged
        elif result.deleted:  # one line, two writes (upsert + tombstone): count the line once
            self.deleted += 1
        elif result.upserted:
            self.upserted += 1
        else:
            self.unchanged += 1

    def summary(self, name: str) -> str:
        return (
            f"imported {name}: {self.read} read, {self.upserted} upserted, {self.unchanged} unchanged, "
            f"{self.deleted} deleted, {self.errors} errors"
        )


class StopImport(Exception):
    """Raised to end an import early (`--stop-on-error`)."""


def parse_line(line: bytes) -> WorkItem:
    """One JSON Lines record -> WorkItem; raises ValueError with a one-line message."""
    try:
        data: Any = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object (a WorkItem), got {type(data).__name__}")
    try:
        return WorkItem.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "item"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValueError(f"{where}: {first['msg']}{more}") from None


def _tombstone(item: WorkItem) -> list[WorkItem | ItemDeletion]:
    """A record with `deleted: true` (e.g. exported from another hub) lands as a tombstone."""
    return [item, ItemDeletion(source=item.source, native_id=item.native_id, deleted_at=item.updated_at)]


def read_lines(stream: IO[bytes], on_bytes: Callable[[int], None]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        on_bytes(len(line))
        if line.strip():
            yield number, line


def import_items(
    store: Store,
    lines: Iterable[tuple[int, bytes]],
    *,
    name: str,
    on_error: Callable[[str], None],
    batch_size: int = 500,
    stop_on_error: bool = False,
) -> ImportReport:
    """Validate each line and apply the items in batches (one transaction per batch).

    A bad line is reported as `NAME:LINE: message` and skipped; everything before and after
    it still lands. If a whole batch is refused by the store, its items are retried one by
    one so that only the offending lines are lost. With `stop_on_error` the import ends at
    the first bad line, after storing the good lines read before it.
    """
    report = ImportReport()
    batch: list[tuple[int, WorkItem]] = []

    def error(number: int, message: str) -> None:
        report.errors += 1
        on_error(f"{name}:{number}: {message}")
        if stop_on_error:
            raise StopImport

    def apply_one(number: int, item: WorkItem) -> None:
        try:
            if item.deleted:
                report.add(store.items.apply(_tombstone(item)), tombstone=True)
            else:
                report.add(store.items.apply([item]))
        except Exception as exc:
            if database_unavailable(exc):
                raise  # the database is gone: not the line's fault
            error(number, f"refused by the store: {one_line(exc)}")

    def flush() -> None:
        if not batch:
            return
        pending = list(batch)
        batch.clear()
        try:
            report.add(store.items.apply(item for _, item in pending))
            return
        except Exception as exc:  # driver errors of the bulk path come unwrapped (not SQLAlchemyError)
            if database_unavailable(exc):
                raise
        for number, item in pending:  # find the line(s) the store refuses
            apply_one(number, item)

    try:
        for number, line in lines:
            report.read += 1
            try:
                item = parse_line(line)
            except ValueError as exc:
                flush()
                error(number, str(exc))
                continue
            if item.deleted:  # rare: applied on its own, in file order, so it is counted exactly
                flush()
                apply_one(number, item)
                continue
            batch.append((number, item))
            if len(batch) >= batch_size:
                flush()
        flush()
    except StopImport:
        pass
    return report
