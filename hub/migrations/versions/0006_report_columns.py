"""report columns: facts written at store time for the quality/digest/priorities reports (issue 10 speed)

Creates `item_report_facts` (hub/db/tables.py, hub/store/report_facts.py) and fills it from
every stored document, so a database migrated with items in it reports exactly as one whose
items were written after the upgrade (store.apply writes the row with each item from now on).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 15:00:00
"""

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

from hub.store.report_facts import facts_of_document

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2000
_COPIED = (
    "source",
    "container_id",
    "container_key",
    "kind",
    "status_category",
    "priority_level",
    "parent_id",
    "rice_score",
    "updated_at",
    "deleted",
)
_FROM_DOCUMENT = (
    "url",
    "container_name",
    "due_on",
    "release_on",
    "has_assignee",
    "has_estimate",
    "has_description",
    "has_iteration",
    "has_rice",
    "fallbacks",
    "title_key",
    "container_family",
)


def upgrade() -> None:
    op.create_table(
        "item_report_facts",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("container_id", sa.String(length=200), nullable=True),
        sa.Column("container_key", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status_category", sa.String(length=20), nullable=False),
        sa.Column("priority_level", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.String(length=320), nullable=True),
        sa.Column("rice_score", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("container_name", sa.Text(), nullable=True),
        sa.Column("due_on", sa.String(length=10), nullable=True),
        sa.Column("release_on", sa.String(length=10), nullable=True),
        sa.Column("has_assignee", sa.Boolean(), nullable=False),
        sa.Column("has_estimate", sa.Boolean(), nullable=False),
        sa.Column("has_description", sa.Boolean(), nullable=False),
        sa.Column("has_iteration", sa.Boolean(), nullable=False),
        sa.Column("has_rice", sa.Boolean(), nullable=False),
        sa.Column("fallbacks", sa.Text(), nullable=True),
        sa.Column("title_key", sa.Text(), nullable=False),
        sa.Column("container_family", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_report_facts")),
    )
    op.create_index("ix_item_report_facts_parent", "item_report_facts", ["parent_id", "deleted", "status_category"])
    # Backfill: every stored item (deleted ones too: their document stays readable), in id
    # order a chunk at a time. The copied columns go back as the driver returned them
    # (untyped columns: SQLite's stored time text stays byte for byte what the store wrote);
    # the rest comes from the document, by the derivation the store uses.
    stored = sa.table("items", *(sa.column(name) for name in ("id", *_COPIED, "doc")))
    target = sa.table("item_report_facts", *(sa.column(name) for name in ("item_id", *_COPIED, *_FROM_DOCUMENT)))
    conn = op.get_bind()
    after = ""
    while True:
        rows = conn.execute(sa.select(stored).where(stored.c.id > after).order_by(stored.c.id).limit(_CHUNK)).all()
        if not rows:
            break
        conn.execute(
            target.insert(),
            [
                {
                    "item_id": row.id,
                    **{name: getattr(row, name) for name in _COPIED},
                    **dict(zip(_FROM_DOCUMENT, facts_of_document(orjson.loads(row.doc)), strict=True)),
                }
                for row in rows
            ],
        )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_item_report_facts_parent", table_name="item_report_facts")
    op.drop_table("item_report_facts")
