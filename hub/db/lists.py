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

from sqlalchemy import ColumnElement, Connection, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def in_list(conn: Connection, column: ColumnElement[str], values: Collection[str]) -> ColumnElement[bool]:
    """`column IN values` for `conn`'s backend (text columns)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(list(values))
