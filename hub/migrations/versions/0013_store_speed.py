"""issue 13 store speed (reserved): nothing yet

Reserved so that parallel work on separate branches keeps one linear chain of revisions; the
branch that needs it fills in upgrade() and downgrade() and this docstring.

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
