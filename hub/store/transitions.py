"""Status history in the store: the `status_transitions` table (hub/db/tables.py).

Facts are hub/flow/history.py `Transition`s. Writing is idempotent: a fact whose identity
(item, time, to-category, to-name) is stored already adds nothing, except that a preferred
one (`Transition.preference`: a better source, such as a tool's changelog over an
observation by the hub, then the smallest remaining fields) replaces the stored one, so the
stored history depends only on the set of facts, never on the order they arrived in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.dialects import postgresql, sqlite

from hub.db.engine import write_transaction
from hub.db.tables import status_transitions
from hub.flow.history import CATEGORY_RANK, SOURCE_RANK, Transition, TransitionSource
from hub.schema import StatusCategory
from hub.store.flow_facts import refresh_flow_facts

_T = status_transitions.c


def _preference_sql(row: str, dialect: str) -> str:
    """`Transition.preference` of a `status_transitions` row (`row`: the table or `excluded`)
    as an SQL row value. Text is compared by code point as Python does: SQLite's default
    BINARY collation compares UTF-8 bytes, and PostgreSQL's "C" collation does too, whatever
    the database's locale (https://www.postgresql.org/docs/current/collation.html)."""
    ranks = " ".join(f"WHEN '{category.value}' THEN {rank}" for category, rank in CATEGORY_RANK.items())
    code_points = ' COLLATE "C"' if dialect == "postgresql" else ""
    return (
        f"({row}.source_rank, CASE {row}.from_category {ranks} ELSE -1 END,"
        f" COALESCE({row}.from_name, ''){code_points},"
        f" CASE WHEN {row}.native_id IS NULL THEN 0 ELSE 1 END,"
        f" COALESCE({row}.native_id, ''){code_points})"
    )


def preferred_sql(dialect: str) -> str:
    """The upsert condition of both writers (`TransitionStore.add` and hub/store/apply.py's
    bulk path): the incoming fact replaces the stored one with its identity only if it is
    the one `build_history` keeps of the two. Comparing the source alone kept whichever of
    two facts from one source arrived first (e.g. an observation with and one without the
    status it left), and with it the history's start. Row values compare left to right:
    https://www.sqlite.org/rowvalue.html, https://www.postgresql.org/docs/current/functions-comparisons.html"""
    table = status_transitions.name
    return f"{_preference_sql('excluded', dialect)} < {_preference_sql(table, dialect)}"


def preferred_facts(facts: Iterable[Transition]) -> dict[tuple[str, datetime, StatusCategory, str], Transition]:
    """One fact per identity (`to_name` as stored: None is ""), the one `build_history` keeps."""
    best: dict[tuple[str, datetime, StatusCategory, str], Transition] = {}
    for fact in facts:
        key = (fact.item_id, fact.at, fact.to_category, fact.to_name or "")
        kept = best.get(key)
        if kept is None or fact.preference() < kept.preference():
            best[key] = fact
    return best


def _row(fact: Transition) -> dict[str, object]:
    return {
        "item_id": fact.item_id,
        "at": fact.at,
        "to_category": fact.to_category.value,
        "to_name": fact.to_name or "",
        "from_category": fact.from_category.value if fact.from_category is not None else None,
        "from_name": fact.from_name,
        "source": fact.source.value,
        "source_rank": SOURCE_RANK[fact.source],
        "native_id": fact.native_id,
    }


def _fact(r: Any) -> Transition:
    return Transition(
        item_id=r.item_id,
        at=r.at,
        to_category=StatusCategory(r.to_category),
        to_name=r.to_name or None,
        from_category=StatusCategory(r.from_category) if r.from_category else None,
        from_name=r.from_name,
        source=TransitionSource(r.source),
        native_id=r.native_id,
    )


class TransitionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def add(self, conn: Connection, facts: Iterable[Transition]) -> None:
        """Store facts inside the caller's transaction (e.g. `apply`'s own)."""
        best = preferred_facts(facts)
        if not best:
            return
        stmt = self._insert(status_transitions)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["item_id", "at", "to_category", "to_name"],
                set_={
                    "from_category": stmt.excluded.from_category,
                    "from_name": stmt.excluded.from_name,
                    "source": stmt.excluded.source,
                    "source_rank": stmt.excluded.source_rank,
                    "native_id": stmt.excluded.native_id,
                },
                where=text(preferred_sql(conn.dialect.name)),
            ),
            [_row(fact) for fact in best.values()],
        )
        refresh_flow_facts(conn, {fact.item_id for fact in best.values()})

    def record(self, facts: Iterable[Transition]) -> None:
        """Store facts in a transaction of their own (e.g. a history backfill)."""
        with write_transaction(self.engine) as conn:
            self.add(conn, facts)

    def history(self, item_id: str) -> list[Transition]:
        """One item's stored facts, oldest first."""
        return self.for_items([item_id]).get(item_id, [])

    def for_items(self, item_ids: Sequence[str], conn: Connection | None = None) -> dict[str, list[Transition]]:
        """Stored facts of these items, each list oldest first."""
        found: dict[str, list[Transition]] = defaultdict(list)
        if not item_ids:
            return found
        if conn is None:
            with self.engine.connect() as own:
                return self.for_items(item_ids, own)
        stmt = select(status_transitions).order_by(_T.item_id, _T.at, _T.source_rank)
        for start in range(0, len(item_ids), 500):
            for row in conn.execute(stmt.where(_T.item_id.in_(list(item_ids[start : start + 500])))):
                found[row.item_id].append(_fact(row))
        return found
