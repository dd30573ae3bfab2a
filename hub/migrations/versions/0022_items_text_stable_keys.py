"""issue 13: SQLite's text index keyed by a stable integer, not by items' rowid

Migration 0019 keyed the FTS5 table `items_text` by items' implicit rowid (external content
on `items`). `items` has a text primary key, so its rowid is not part of the row: SQLite says
VACUUM "may change the ROWIDs of entries in any tables that do not have an explicit INTEGER
PRIMARY KEY" (https://www.sqlite.org/lang_vacuum.html), and a copy of the table (a dump and
restore, the 12-step ALTER TABLE, https://www.sqlite.org/lang_altertable.html#otheralter)
numbers the rows anew. After such a renumbering the index would point at other rows, and
`q=` would miss items (never show a wrong one: the ILIKE decides) until a 'rebuild'.

Now each item gets its own number in `items_text_ids` (docid INTEGER PRIMARY KEY, which VACUUM
keeps, and the item's id): the FTS5 table is keyed by docid, and `q=` goes from the index's
docids to items by id (hub/store/queries.py). The FTS5 table's external content is the view
`items_text_rows` (docid, key, title), so 'rebuild' and 'integrity-check' read items through
the same numbers (https://www.sqlite.org/fts5.html#external_content_tables). Rebuilding
`items` itself (1M rows) would have been the other way to a stable key; this adds one small
table instead: the existing rowids become the docids (the index's numbers today), so the map
is one INSERT ... SELECT. The FTS5 table is created again (its content option changes) and
rebuilt once, as 0019 did.

PostgreSQL: nothing (its trigram index is on items' own columns).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = "items_text"
IDS = "items_text_ids"
ROWS = "items_text_rows"
FTS_OPTIONS = "tokenize='trigram case_sensitive 0', columnsize=0"

_DROP = [f"DROP TRIGGER IF EXISTS {FTS}_{trigger}" for trigger in ("insert", "delete", "update")] + [
    f"DROP TABLE IF EXISTS {FTS}"
]

UP = [
    *_DROP,
    f"CREATE TABLE {IDS} (docid INTEGER PRIMARY KEY, item_id VARCHAR(320) NOT NULL UNIQUE)",
    f"INSERT INTO {IDS} (docid, item_id) SELECT rowid, id FROM items ORDER BY rowid",
    f"CREATE VIEW {ROWS} AS SELECT t.docid AS docid, i.key AS key, i.title AS title"
    f" FROM {IDS} AS t JOIN items AS i ON i.id = t.item_id",
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(key, title, content='{ROWS}', content_rowid='docid', {FTS_OPTIONS})",
    # A new item takes the next docid (last_insert_rowid() is the map row's while the trigger
    # runs: https://www.sqlite.org/c3ref/last_insert_rowid.html).
    f"""CREATE TRIGGER {FTS}_insert AFTER INSERT ON items BEGIN
        INSERT INTO {IDS} (item_id) VALUES (new.id);
        INSERT INTO {FTS}(rowid, key, title) VALUES (last_insert_rowid(), new.key, new.title);
    END""",
    # FTS5's 'delete' takes the values that were indexed: the old ones.
    f"""CREATE TRIGGER {FTS}_delete AFTER DELETE ON items BEGIN
        INSERT INTO {FTS}({FTS}, rowid, key, title)
            SELECT 'delete', docid, old.key, old.title FROM {IDS} WHERE item_id = old.id;
        DELETE FROM {IDS} WHERE item_id = old.id;
    END""",
    f"""CREATE TRIGGER {FTS}_update AFTER UPDATE OF id, key, title ON items
        WHEN old.id IS NOT new.id OR old.key IS NOT new.key OR old.title IS NOT new.title BEGIN
        INSERT INTO {FTS}({FTS}, rowid, key, title)
            SELECT 'delete', docid, old.key, old.title FROM {IDS} WHERE item_id = old.id;
        UPDATE {IDS} SET item_id = new.id WHERE item_id = old.id;
        INSERT INTO {FTS}(rowid, key, title)
            SELECT docid, new.key, new.title FROM {IDS} WHERE item_id = new.id;
    END""",
    f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')",
]

# Migration 0019's table and triggers, keyed by items' rowid.
DOWN = [
    *_DROP,
    f"DROP VIEW IF EXISTS {ROWS}",
    f"DROP TABLE IF EXISTS {IDS}",
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(key, title, content='items', content_rowid='rowid', {FTS_OPTIONS})",
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in DOWN:
            op.execute(statement)
