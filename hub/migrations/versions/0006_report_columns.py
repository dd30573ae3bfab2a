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
_FACTS = (
    "item_id",
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
)


def upgrade() -> None:
    facts = op.create_table(
        "item_report_facts",
        sa.Column("item_id", sa.String(length=320), nullable=False),
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
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_report_facts")),
    )
    assert facts is not None
    # Backfill: every stored item (deleted ones too: their document stays readable), parsed
    # once here, in id order a chunk at a time, with the same derivation the reports rely on.
    stored = sa.table("items", sa.column("id", sa.String()), sa.column("doc", sa.Text()))
    conn = op.get_bind()
    after = ""
    while True:
        rows = conn.execute(
            sa.select(stored.c.id, stored.c.doc).where(stored.c.id > after).order_by(stored.c.id).limit(_CHUNK)
        ).all()
        if not rows:
            break
        conn.execute(
            facts.insert(),
            [dict(zip(_FACTS, facts_of_document(orjson.loads(doc)), strict=True)) for _, doc in rows],
        )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("item_report_facts")
