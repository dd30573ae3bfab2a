"""`column IN (many values)` as each backend takes it best.

SQLAlchemy renders `column.in_(values)` as one bind parameter per value ("expanding" IN,
https://docs.sqlalchemy.org/en/20/core/sqlelement.html#sqlalchemy.sql.expression.ColumnOperators.in_):
at a few thousand ids (the roadmap walk, resolve_links) building and sending that many
parameters costs more than the lookups. PostgreSQL takes the whole list as one array
parameter instead, `column = ANY(%(ids)s)`, which psycopg sends as a single text[] value and
the planner treats like IN (an index scan per element, or a hash): see
https://www.postgresql.org/docs/current/functions-comparisons.html#FUNCTIONS-COMPARISONS-ANY-SOME.
SQLite has no array type, so it keeps the expanding IN (callers chunk below its parameter
limit).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Connection, String, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY


def in_list(conn: Connection, column: ColumnElement[str], values: Collection[str]) -> ColumnElement[bool]:
    """`column IN values` for `conn`'s backend (text columns)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(list(values))


def pairs_in_list(
    conn: Connection, first: ColumnElement[str], second: ColumnElement[str], pairs: Collection[tuple[str, str]]
) -> ColumnElement[bool]:
    """`(first, second) IN pairs` (a tool and a key, say) for `conn`'s backend.

    PostgreSQL: the pairs as two array parameters zipped back into rows by `unnest` (two
    set-returning calls in one select list advance together), a semi-join the planner can
    hash; a row-valued IN list of a thousand pairs (two thousand parameters) cost about
    300 ms to send and plan for the roadmap at 100,000 items, with nothing to match.
    https://www.postgresql.org/docs/current/functions-array.html (unnest). SQLite: the
    expanding row-value IN list."""
    if conn.dialect.name == "postgresql":
        values = list(pairs)
        zipped = select(
            func.unnest(bindparam(None, [a for a, _ in values], type_=ARRAY(String))),
            func.unnest(bindparam(None, [b for _, b in values], type_=ARRAY(String))),
        )
        return tuple_(first, second).in_(zipped)
    return tuple_(first, second).in_(list(pairs))
