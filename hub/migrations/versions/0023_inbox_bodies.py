"""issue 13 worker: the inbox's headers and body in a table of their own, out of the claimed row

An inbox row changes state three times or more (claimed, renewed, settled: done, failed,
replayed), and each UPDATE rewrote the delivery's ~5 KB body with it: SQLite rewrites a row
whose size changes whole, its overflow pages too, and PostgreSQL writes a new version of the
row with its ~1.5 KB of compressed body (status is indexed: no HOT update). Measured in
bench/README.md (i13worker): ~60-80 us of the SQLite worker's CPU per delivery, ~140 us of
PostgreSQL's time, for bytes that never change after intake.

`webhook_inbox_bodies` (id = the inbox id, headers, body) is written by the intake in the same
transaction as the inbox row (no 202 before both are committed) and read by the claim by
primary key; `webhook_inbox` keeps the delivery's identity and its state. The bodies of the rows
already stored are moved, so that deliveries stored before this revision are claimed and
replayed as before. Nothing deletes inbox rows (processed deliveries are kept and can be
replayed), so nothing deletes bodies either.

PostgreSQL: the new columns are compressed with lz4 when the server has it (as 0021 did for
the columns they replace). The old columns are dropped (PostgreSQL only marks them dropped: a
row's old bytes go when the row is next written or the table rewritten, e.g. VACUUM FULL).
SQLite: the two columns are dropped in place (ALTER TABLE DROP COLUMN, SQLite 3.35 or later).

The downgrade puts the headers and bodies back in the inbox rows and drops the table.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BODIES = "webhook_inbox_bodies"


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(found)  # None: before PostgreSQL 14


def _lz4(table: str) -> None:
    if _lz4_available():
        for column in ("headers", "body"):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def upgrade() -> None:
    op.create_table(
        BODIES,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["webhook_inbox.id"], name=op.f(f"fk_{BODIES}_id_webhook_inbox"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{BODIES}")),
    )
    _lz4(BODIES)
    op.execute(f"INSERT INTO {BODIES} (id, headers, body) SELECT id, headers, body FROM webhook_inbox ORDER BY id")
    # ALTER TABLE ... DROP COLUMN on both (SQLite >= 3.35 rewrites the rows in place), not
    # alembic's batch copy: that drops and renames webhook_inbox, and with foreign keys on
    # (hub/db/engine.py) dropping the parent table would cascade to the bodies just copied.
    for column in ("body", "headers"):
        op.execute(f"ALTER TABLE webhook_inbox DROP COLUMN {column}")


def downgrade() -> None:
    for column, kind in (
        ("headers", "TEXT"),
        ("body", "BYTEA" if op.get_bind().dialect.name == "postgresql" else "BLOB"),
    ):
        op.execute(f"ALTER TABLE webhook_inbox ADD COLUMN {column} {kind}")
    _lz4("webhook_inbox")
    op.execute(
        f"UPDATE webhook_inbox SET"
        f" headers = COALESCE((SELECT b.headers FROM {BODIES} b WHERE b.id = webhook_inbox.id), '{{}}'),"
        f" body = COALESCE((SELECT b.body FROM {BODIES} b WHERE b.id = webhook_inbox.id), '')"
    )
    op.drop_table(BODIES)  # before the batch copy below drops and renames webhook_inbox (its parent)
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.alter_column("headers", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
