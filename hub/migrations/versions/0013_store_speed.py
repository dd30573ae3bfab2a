"""issue 13 store speed (reserved, released empty): nothing

This revision reached main empty, so databases may already be stamped 0013 without any change.
It stays empty for good: its intended change (partial flow_facts indexes) is revision 0014, so
that such databases get it too.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 19:45:00
"""

from collections.abc import Sequence

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
