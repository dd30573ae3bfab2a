"""issue 13 API speed: a trigram text index for `q=` (substring search on key and title)

GET /v1/items?q=x keeps `key ILIKE '%x%' OR title ILIKE '%x%'` (hub/store/queries.py), a
case-insensitive substring test no B-tree can answer: the page walked the page-order index
and read every row it passed to test the title. At 1,000,000 items a rare term read the whole
table for one page, and `q=timeout` (7 % of the items) read ~1,400 wide rows a page (p99
158-209 ms, bench/README.md). This adds a trigram index over key and title on each backend.

PostgreSQL: a GIN index with pg_trgm's `gin_trgm_ops` on (key, title). It answers ILIKE
'%x%' itself (https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX), rechecking
each candidate on the row, so the statement and its result do not change: the planner picks
this index (a bitmap scan, then a sort of the matches) or the ordered walk, from its estimate
of how many rows match. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension:
the owner of the database may create it. Where it is not installed, or may not be created,
the migration logs a warning and leaves the index out; `q=` then answers as before, by the
walk (hub/store/queries.py needs nothing from the index to be correct).

SQLite: an FTS5 table with the trigram tokenizer, external content on `items` (its rowid),
kept in step by triggers on `items` (https://www.sqlite.org/fts5.html#external_content_tables,
https://www.sqlite.org/fts5.html#the_trigram_tokenizer). Case-insensitive (it folds Unicode
case, SQLite's LIKE only ASCII's), so its matches are a superset of the ILIKE's, which is kept
as the final test: the FTS5 table only narrows the rows the page reads. The update trigger
runs only when key or title changed. A term of fewer than three characters has no trigram
and is not looked up (queries.py).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 14:00:00
"""

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("hub.migrations")

PG_INDEX = "ix_items_text_trgm"
FTS = "items_text"
SQLITE_UP = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(key, title, content='items', content_rowid='rowid',"
    " tokenize='trigram case_sensitive 0', columnsize=0)",
    f"""CREATE TRIGGER {FTS}_insert AFTER INSERT ON items BEGIN
        INSERT INTO {FTS}(rowid, key, title) VALUES (new.rowid, new.key, new.title);
    END""",
    f"""CREATE TRIGGER {FTS}_delete AFTER DELETE ON items BEGIN
        INSERT INTO {FTS}({FTS}, rowid, key, title) VALUES ('delete', old.rowid, old.key, old.title);
    END""",
    f"""CREATE TRIGGER {FTS}_update AFTER UPDATE OF key, title ON items
        WHEN old.key IS NOT new.key OR old.title IS NOT new.title BEGIN
        INSERT INTO {FTS}({FTS}, rowid, key, title) VALUES ('delete', old.rowid, old.key, old.title);
        INSERT INTO {FTS}(rowid, key, title) VALUES (new.rowid, new.key, new.title);
    END""",
    f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
]


def _pg_trgm() -> bool:
    """Whether pg_trgm is there or could be created now (in a savepoint, so that a refusal
    leaves the migration's transaction usable)."""
    conn = op.get_bind()
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return True
    if not conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        log.warning("pg_trgm is not installed on this server: q= searches walk the items (no text index)")
        return False
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except Exception as exc:  # noqa: BLE001 - any refusal (privileges) leaves q= without the index
        log.warning("could not create pg_trgm (%s): q= searches walk the items (no text index)", exc)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)
        return
    if _pg_trgm():
        op.execute(f"CREATE INDEX {PG_INDEX} ON items USING gin (key gin_trgm_ops, title gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
        return
    # The extension stays: other databases' objects or the operator may use it.
    op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
