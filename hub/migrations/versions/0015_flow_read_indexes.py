"""issue 11 flow page speed: PostgreSQL reads the cumulative flow and the work in progress from an index alone

A flow request over every item (hub/insights/flow.py `flow_metrics_stored`) aggregates the
`flow_days` rows after the period's first day (`_cfd_days`: ~26,000 rows at 100,000 items)
and lists the items in progress (~6,500). PostgreSQL found both through an index and then
read each row from the table: 3,500-4,700 heap pages per request, more than half of the
statements' time (EXPLAIN (ANALYZE, BUFFERS) in bench/README.md). Each index below holds
every column its statement reads (`INCLUDE`), filters included, so that once VACUUM has
marked the pages all-visible (autovacuum does, after inserts too) the statement is an
index-only scan: https://www.postgresql.org/docs/current/indexes-index-only-scans.html

- `ix_flow_days_cfd`: `flow_days (day)` with the category change and the filter columns;
- `ix_flow_facts_wip`: the items in progress only (partial), keyed by `created_at` (the
  request's `created_at <= now`), with the cycle start and the filter columns.

SQLite gets neither: `flow_days` is a WITHOUT ROWID table in (day, item_id) order, so its
range on `day` already reads the rows themselves in order, and SQLite has no INCLUDE (a
wider key would only be one more b-tree to write on every status change).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILTERS = ["kind", "deleted", "source", "tool", "container_id", "container_key"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_flow_days_cfd", "flow_days", ["day"], postgresql_include=["category", "prev_category", *FILTERS]
    )
    op.create_index(
        "ix_flow_facts_wip",
        "flow_facts",
        ["created_at"],
        postgresql_include=["item_id", "start", "started_at", "has_history", *FILTERS],
        postgresql_where=sa.text("category = 'in_progress'"),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_flow_facts_wip", table_name="flow_facts")
    op.drop_index("ix_flow_days_cfd", table_name="flow_days")
