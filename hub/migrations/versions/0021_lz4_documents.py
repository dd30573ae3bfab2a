"""issue 13 PostgreSQL's share: the large text and bytes columns are compressed with lz4

PostgreSQL compresses a value when its row is over ~2 KB (TOAST), with `pglz` unless told
otherwise (`default_toast_compression`). A Jira item's row holds its document (~1.1 KB of
JSON) and the tool's payload (~3.3 KB), an inbox row the delivery's body (~3.7 KB) and
headers: each write of such a row compressed them with pglz, on the server's CPU, which the
hub's process shares two cores with. Measured with bench/worker_split.py (10,000 Jira
deliveries on PostgreSQL 15): the items INSERT's server time went from 253-330 to 144-156
us per delivery with lz4 (bench/README.md, "PostgreSQL's share", branch i13pgserver).
lz4 compresses several times faster than pglz, to a few percent larger values here.

Only values written from now on use lz4; stored ones stay pglz (both are read alike, each
value records its method). Needs PostgreSQL 14 or later built with lz4 (the Debian, Ubuntu,
RHEL and official Docker builds are): without it the migration changes nothing. SQLite
does not compress values: nothing to do there. The column compression is not part of the
SQLAlchemy metadata (hub/db/tables.py cannot say it; alembic does not compare it).

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0021"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("items", "doc"), ("items", "raw"), ("webhook_inbox", "body"), ("webhook_inbox", "headers"))


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(found)  # None: before PostgreSQL 14 (no such setting, no column compression)


def _set(method: str) -> None:
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    if _lz4_available():
        _set("lz4")


def downgrade() -> None:
    if _lz4_available():
        _set("default")
