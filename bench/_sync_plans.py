"""Run `opshub ARGS...` and record the plan of every statement the sync runs, batch by batch.

    python bench/_sync_plans.py OUT.json sync bench --full

Before each psycopg `execute` of a SELECT, INSERT, UPDATE or DELETE, the same statement with
the same parameters is run once more as `EXPLAIN (COSTS OFF)` on the same cursor (planned,
not executed: https://www.postgresql.org/docs/current/sql-explain.html), in the same
transaction, so it sees the statistics and the table sizes the statement itself is planned
with. The plan's text is kept by statement kind with the commits it was seen between: a
plan that changes as the store grows (an index scan turning into a sequential scan or a
hash) shows as a second plan from the commit on where it appeared. The EXPLAINs double the
round trips: this run's times are not the measured ones (`bench/sync_jira.py --plans`).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from _opshub_cli import run_cli  # a sibling module: these run as scripts

_PLANNED = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
_KIND = re.compile(r"\s+")


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    sys.argv = ["opshub", *args]
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type] # as hub/__main__.py does
    import psycopg

    from hub.cli import app

    plans: dict[str, dict[str, dict[str, int]]] = {}  # kind -> plan text -> first, last, n
    commits = {"n": 0}
    execute = psycopg.Cursor.execute

    def explained_execute(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else None
        if text is not None and _PLANNED.match(text) and "pg_catalog" not in text and "alembic" not in text:
            execute(self, "EXPLAIN (COSTS OFF) " + text, params, *args, **kwargs)
            plan = "\n".join(row[0] for row in self.fetchall())
            kind = _KIND.sub(" ", text).strip()[:90]
            entry = plans.setdefault(kind, {}).setdefault(plan, {"first": commits["n"], "last": 0, "n": 0})
            entry["last"] = commits["n"]
            entry["n"] += 1
        return execute(self, query, params, *args, **kwargs)

    commit = psycopg.Connection.commit

    def counted_commit(self: Any) -> Any:
        commits["n"] += 1
        return commit(self)

    psycopg.Cursor.execute = explained_execute  # type: ignore[method-assign]
    psycopg.Connection.commit = counted_commit  # type: ignore[method-assign]
    try:
        run_cli(app)
    finally:
        with open(out, "w") as f:
            json.dump({"commits": commits["n"], "plans": plans}, f, indent=1)


if __name__ == "__main__":
    main()
