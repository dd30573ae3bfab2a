"""webhook inbox claims and stored mapping contexts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:00:00

- `webhook_inbox.claim_token`: the holder of a claim; `finish` counts only for it, so a
  worker whose claim lapsed (and was taken over) cannot mark the delivery a second time.
- `source_contexts`: each source's mapping context (Jira field catalog ...), so webhooks map
  while the tool is unreachable.
- `provisional_items`: items mapped without the context, mapped again once it arrives.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
    op.create_table(
        "source_contexts",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_contexts")),
    )
    op.create_table(
        "provisional_items",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("mapped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "item_id", name=op.f("pk_provisional_items")),
    )


def downgrade() -> None:
    op.drop_table("provisional_items")
    op.drop_table("source_contexts")
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_column("claim_token")
