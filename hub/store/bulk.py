"""Bulk SQL helpers of the store's write path: multi-row inserts of tuples (`_Bulk`),
one-parameter key lookups (`any_of`), the dialect's INSERT, and telling a database outage
from a refused record (`database_unavailable`).

Why the bulk writes bypass SQLAlchemy's per-row parameter handling: `apply` must sustain
>= 10,000 items/s, i.e. ~100 us per item for everything (items row, labels, assignees,
change row). SQLAlchemy's executemany spends ~5 us per row building and type-processing
parameter dicts, and its expanding IN lists compile a new statement for every batch size.
So rows are built once as tuples in column order and handed to the driver in one call per
table (see `_Bulk`); every lookup binds its keys as ONE parameter (`any_of`), so each
statement's text is the same for every batch and is compiled and prepared once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Dialect, String, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from hub.db.tables import items


def any_of(dialect: str, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` with all values in ONE bound parameter.

    An IN list renders one parameter per value, so every batch size is a new statement
    to compile (SQLAlchemy) and to plan (the server), and SQLite caps the parameter
    count. PostgreSQL takes an array, SQLite a JSON array (`json_each`).
    """
    clause: ColumnElement[bool]
    if dialect == "postgresql":
        clause = column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    else:
        values_json = bindparam(None, orjson.dumps(list(values)).decode(), type_=String)
        clause = column.in_(select(func.json_each(values_json).table_valued("value").c.value))
    return clause


def keys_in(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """`any_of` with its values left to bind: the parameter `name` of a `Statements` entry,
    bound to `Statements.keys(values)`."""
    clause: ColumnElement[bool]
    if dialect == "postgresql":
        clause = column == any_(bindparam(name, None, type_=postgresql.ARRAY(String)))
    else:
        values_json = bindparam(name, None, type_=String)
        clause = column.in_(select(func.json_each(values_json).table_valued("value").c.value))
    return clause


class Statements:
    """Hot Core statements compiled once per dialect and run on the transaction's DBAPI cursor.

    Through `Connection.execute`, every run of a Core statement is built again (coercions),
    hashed for SQLAlchemy's compiled cache, and its rows fetched one at a time through the
    result machinery: ~21 statements a batch of `apply`, ~10 % of its Python time on an empty
    store. Here each is built and compiled once (`build()` under a `name`, its parameters named,
    IN lists of constants rendered), then run by the driver with the values of that run; rows
    come back as the driver's tuples with no type processing (callers read times with
    `time_reader`). Use it only for statements whose parameters need no bind processing
    (strings, numbers, booleans, `keys`)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.postgres = dialect.name == "postgresql"
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def keys(self, values: Sequence[str]) -> Any:
        """The bound form of a `keys_in` parameter."""
        return list(values) if self.postgres else orjson.dumps(list(values)).decode()

    def _sql(self, name: str, build: Callable[[], Any]) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        compiled = self._compiled.get(name)
        if compiled is None:
            stmt = build().compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
            order = tuple(stmt.positiontup) if stmt.positional and stmt.positiontup is not None else None
            compiled = self._compiled[name] = (stmt.string, order, dict(stmt.params))
        return compiled

    def _run(self, conn: Connection, name: str, build: Callable[[], Any], params: dict[str, Any]) -> Any:
        sql, order, constants = self._sql(name, build)
        values = {**constants, **params}
        cursor = conn.connection.cursor()  # same DBAPI connection, so same transaction
        cursor.execute(sql, tuple(values[key] for key in order) if order is not None else values)
        return cursor

    def rows(self, conn: Connection, name: str, build: Callable[[], Any], **params: Any) -> list[Any]:
        """The rows of the statement `build()` (compiled once under `name`) with `params`."""
        return self.fetch(self._run(conn, name, build, params))

    def start(self, conn: Connection, name: str, build: Callable[[], Any], **params: Any) -> Any:
        """Run the statement `build()` with `params` and return its cursor, for `fetch` later:
        in a psycopg pipeline (hub/store/apply.py `pipelined`) several reads go out before
        the first answer is awaited."""
        return self._run(conn, name, build, params)

    @staticmethod
    def fetch(cursor: Any) -> list[Any]:
        """The rows of a cursor from `start`, which is then closed."""
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def run(self, conn: Connection, name: str, build: Callable[[], Any], **params: Any) -> None:
        """Run the statement `build()` (compiled once under `name`) with `params`."""
        self._run(conn, name, build, params).close()


def time_reader(dialect: Dialect) -> Callable[[Any], datetime | None]:
    """A stored time as `UTCDateTime` reads it (aware, UTC), from the driver's value: SQLite
    gives the text `_sqlite_time` wrote, PostgreSQL an aware datetime."""
    if dialect.name == "sqlite":
        return _read_sqlite_time
    return _utc_time


def _read_sqlite_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc_time(value)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT (both have `on_conflict_do_*`)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def time_binder(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """The stored form of a time on this dialect. The bulk path binds datetimes itself, in
    the form the column type (hub/db/tables.py `UTCDateTime`) gives them, so the stored form
    (SQLite compares times as text) is exactly what SQLAlchemy writes: on SQLite and
    PostgreSQL by `_sqlite_time` and `_utc_time` (tests/test_store_bulk.py checks them
    against SQLAlchemy's), which cost about half of SQLAlchemy's processor chain (the
    TypeDecorator, then SQLite's format string: 4.8 us a call), and `apply` binds ~10 times
    an item (items row, transitions, flow facts)."""
    if dialect.name == "sqlite":
        return _sqlite_time
    if dialect.name == "postgresql":
        return _utc_time
    processor = items.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda value: value)


def _utc_time(value: datetime | None) -> datetime | None:
    """`UTCDateTime.process_bind_param` on PostgreSQL: aware, in UTC (naive means UTC)."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is UTC:
        return value
    return value.replace(tzinfo=UTC) if zone is None else value.astimezone(UTC)


_SQLITE_TIMES: dict[datetime, str] = {}
"""`_sqlite_time`'s memo: emptied when full, so a page group's times stay in it."""
_SQLITE_TIMES_MAX = 4096


def _sqlite_time(value: datetime | None) -> str | None:
    """`UTCDateTime` on SQLite (`_sqlite_text`), memoised.

    Why: `apply` binds the same times several times an item (created_at in the items and flow
    facts rows, updated_at in the items row and its status transition), and CPython's
    `isoformat` of an aware datetime costs ~1 us, a dict hit ~0.1 us. Exact: the text is a
    function of what `==` and `hash` compare (an aware value's instant, a naive value's wall
    time; the two never compare equal). A plain dict, not `functools.lru_cache`: the bounded
    LRU keeps a GC-tracked link per entry and makes one per miss, which cost the cyclic
    collector more than the memo saved (callgrind, bench/README.md "i13py12"). Shared by
    threads: each dict operation is atomic under the GIL, and an entry lost to a `clear` is
    only made again."""
    if value is None:
        return None
    text = _SQLITE_TIMES.get(value)
    if text is None:
        if len(_SQLITE_TIMES) >= _SQLITE_TIMES_MAX:
            _SQLITE_TIMES.clear()
        text = _SQLITE_TIMES[value] = _sqlite_text(value)
    return text


def _sqlite_text(value: datetime) -> str:
    """`UTCDateTime` on SQLite: naive UTC, then SQLAlchemy's SQLite DATETIME format
    (`%Y-%m-%d %H:%M:%S.%f`, microseconds always written), which isoformat writes too."""
    zone = value.tzinfo
    if zone is UTC:  # the usual case: cut the "+00:00" off rather than copy the datetime
        return value.isoformat(" ", "microseconds")[:-6]
    if zone is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def database_unavailable(exc: BaseException) -> bool:
    """The database is down, unreachable or busy (retrying later helps), as opposed to a
    record it refuses. Raw driver errors come through the store's bulk path unwrapped, so
    they are told apart by their PEP 249 class (psycopg's QueryCanceled is an
    OperationalError, sqlite3's "database is locked" too), except a value past one of
    PostgreSQL's limits (`past_a_limit`), which is the record's fault."""
    if past_a_limit(exc):
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    dbapi = getattr(exc, "orig", None) or exc
    return any(cls.__name__ in ("OperationalError", "InterfaceError") for cls in type(dbapi).__mro__)


def past_a_limit(exc: BaseException) -> bool:
    """PostgreSQL refused a value past one of its limits: SQLSTATE class 54, e.g. an index
    entry over the B-tree's 2,704 bytes (a label of ~2,600 bytes in `item_labels`' primary key,
    https://www.postgresql.org/docs/current/btree.html#BTREE-IMPLEMENTATION). psycopg raises
    these as OperationalError, but the same value fails the same way on every retry: it is the
    record's fault, to be refused with its error, not an outage to wait out
    (https://www.postgresql.org/docs/current/errcodes-appendix.html)."""
    dbapi = getattr(exc, "orig", None) or exc
    return str(getattr(dbapi, "sqlstate", None) or "").startswith("54")


def _sqlite_max_parameters(cursor: Any) -> int:
    """The connection's bound-parameter limit (https://www.sqlite.org/limits.html#max_variable_number:
    999 before SQLite 3.32, 32,766 since, and lower if the connection was given a lower one by
    `setlimit`), read from the library rather than assumed. One C call per statement."""
    return int(cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


class _Bulk:
    """Multi-row INSERT / upsert of tuples through the transaction's own DBAPI cursor.

    PostgreSQL: one `INSERT ... SELECT * FROM unnest(%s::type[], ...)` with one array per
    column: one statement and one round trip per table whatever the row count, and the
    statement text never changes. (psycopg's
    executemany runs one server-side statement per row; multi-row VALUES needs a new
    statement per row count and hits the 65,535 parameter cap.)
    SQLite: the sqlite3 module's executemany, a C loop over one prepared statement; or, for a
    table with triggers (`one_statement`), one multi-row `VALUES` statement per chunk (see
    `_sqlite_rows`).
    """

    def __init__(self, dialect: Any) -> None:
        self.postgres = dialect.name == "postgresql"
        self.dialect = dialect
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool, str, tuple[str, ...]], str] = {}
        self._types: dict[str, dict[str, int]] = {}  # table -> column -> type OID (`copy`)

    def insert(
        self,
        conn: Connection,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: tuple[str, ...] = (),
        update: bool = True,
        update_where: str = "",
        one_statement: bool = False,
        utf8: tuple[str, ...] = (),
    ) -> None:
        """Insert `rows` (tuples in `columns` order). On a clash on the `conflict` columns,
        overwrite the other columns (`update`; only where the SQL condition `update_where`
        holds, if given) or keep the stored row (not `update`). `one_statement`: on SQLite,
        as few statements as the parameter limit allows rather than one per row (`_sqlite_rows`).
        `utf8`: text columns whose values may come as UTF-8 bytes on SQLite (see `_row_sql`);
        PostgreSQL takes str only."""
        if not rows:
            return
        sql = self._statement(table, tuple(columns), conflict, update, update_where, utf8)
        cursor = conn.connection.cursor()  # same DBAPI connection, so same transaction
        try:
            if self.postgres:
                cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
            elif one_statement:
                self._sqlite_rows(cursor, sql, self._row_sql(columns, utf8), rows)
            else:
                cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def copy(self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """PostgreSQL: `rows` into `table` by `COPY ... FROM STDIN (FORMAT BINARY)`, for rows the
        caller knows are absent (a plain insert: a clash is an error, as with `insert` without
        `conflict`).

        Why: for the items rows of a sync page group (21 columns, ~5 KB a row) COPY's
        `write_row` (formatted in C by psycopg's binary implementation:
        https://www.psycopg.org/psycopg3/docs/basic/copy.html) cost the client half of what
        `insert`'s one array per column did (10 -> 5.4 us a row, bench/README.md
        "i13store12"). For narrow rows the arrays cost ~0.1 us a value, where a COPY of its
        own (two round trips) would save little.
        COPY cannot run inside a pipeline (https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html),
        nor take ON CONFLICT: callers run it before `pipelined`, for ids whose absence is
        settled. Column types are the table's as the server has them (`_copy_types`), which
        the binary format must match."""
        if not rows:
            return
        driver = conn.connection.driver_connection
        types = self._copy_types(driver, table.name, columns)
        names = ", ".join(self.dialect.identifier_preparer.quote(c) for c in columns)
        statement = f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _copy_types(self, driver: Any, table: str, columns: Sequence[str]) -> list[int]:
        """The type OIDs of `columns` of `table`, read from the server once per table."""
        found = self._types.get(table)
        if found is None:
            with driver.cursor() as cursor:
                cursor.execute(
                    "SELECT attname, atttypid::int FROM pg_attribute"
                    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    (table,),
                )
                found = self._types[table] = dict(cursor.fetchall())
        return [found[c] for c in columns]

    @staticmethod
    def _sqlite_rows(cursor: Any, sql: str, one: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `sql` (one row's `VALUES` with the placeholders `one`) for many rows at once, as
        multi-row VALUES.

        For `items` on SQLite, which has the FTS5 text index's triggers (migration 0019): with a
        trigger, each execution of the INSERT opens a statement journal (it may abort half
        done, https://www.sqlite.org/tempfiles.html#statement_journal_files), and each
        statement savepoint makes FTS5 flush its pending terms to disk as a new segment
        (`fts5SavepointMethod`: "Flush the contents of the pending-terms table to disk"), which
        its automerge then merges again. executemany is one execution per row: a one-row
        segment per item, ~100 us of the ~160 us the index cost an insert (bench/README.md,
        "i13fts"). One statement per chunk flushes once per chunk, and journals each page once.
        Chunks stay under the connection's bound-parameter limit (`_sqlite_max_parameters`)."""
        width = one.count("?")
        head, tail = sql.split(f" VALUES {one}", 1)
        chunk = max(1, _sqlite_max_parameters(cursor) // width)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            # The rows' values flattened in C (`chain.from_iterable`), not by a comprehension:
            # ~60 values a new item over items, report facts and flow facts rows.
            cursor.execute(f"{head} VALUES {', '.join([one] * len(part))}{tail}", list(chain.from_iterable(part)))

    def _array_element(self, column_type: Any) -> str:
        """The element type a column's array is cast to on PostgreSQL: the column's own, except
        that a length-bounded string is cast to unbounded VARCHAR. An explicit cast to
        varchar(n) cuts a longer value silently, whereas the assignment of the cast value to
        the varchar(n) column refuses it (SQLSTATE 22001, "value too long"), so a value wider
        than its column is an error, never a cut
        (https://www.postgresql.org/docs/current/datatype-character.html)."""
        if isinstance(column_type, String) and column_type.length is not None:
            column_type = String()
        return str(column_type.compile(dialect=self.dialect))

    @staticmethod
    def _row_sql(columns: Sequence[str], utf8: tuple[str, ...]) -> str:
        """One row's SQLite placeholders: `CAST(? AS TEXT)` for the `utf8` columns.

        Why: their values are JSON made as UTF-8 bytes (pydantic's `to_json`, `orjson.dumps`),
        KBs an item. Bound as str, each was decoded to str and encoded back to UTF-8 by the
        sqlite3 module when bound: ~4 us an item for the items row's `doc` and `raw`. A BLOB
        cast to TEXT is read as text in the database's encoding, UTF-8 here, and stored as
        TEXT (https://www.sqlite.org/lang_expr.html#castexpr), so the stored value is the
        same text; a str value is cast to itself."""
        return f"({', '.join('CAST(? AS TEXT)' if c in utf8 else '?' for c in columns)})"

    def _statement(
        self,
        table: Table,
        columns: tuple[str, ...],
        conflict: tuple[str, ...],
        update: bool,
        update_where: str = "",
        utf8: tuple[str, ...] = (),
    ) -> str:
        key = (table.name, columns, conflict, update, update_where, utf8)
        sql = self._sql.get(key)
        if sql is None:
            quote = self.dialect.identifier_preparer.quote
            names = ", ".join(quote(c) for c in columns)
            if self.postgres:
                # %b: binary parameters. psycopg's text format escapes every array element
                # with a regex, which costs more than the whole insert for KB-sized documents.
                arrays = ", ".join(f"%b::{self._array_element(table.c[c].type)}[]" for c in columns)
                sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608 - names from metadata
            else:
                sql = f"INSERT INTO {table.name} ({names}) VALUES {self._row_sql(columns, utf8)}"  # noqa: S608
            if conflict and update:
                sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in conflict)
                sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {sets}"
                if update_where:
                    sql += f" WHERE {update_where}"
            elif conflict:
                sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
            self._sql[key] = sql
        return sql
