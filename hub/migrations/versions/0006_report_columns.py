"""report columns: facts written at store time for the quality/digest/priorities reports (issue 10 speed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 15:00:00
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # placeholder: filled in by the issue named above


def downgrade() -> None:
    pass
