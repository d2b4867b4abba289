"""subscription protocol, not kind

Revision ID: 7c1764f10eb1
Revises: cc13826f535a
Create Date: 2026-12-07 00:05:26.340233
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1764f10eb1"
down_revision: str | None = "cc13826f535a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename(old: str, new: str) -> None:
    """Rename subscription_state's column `old` to `new`, its rows kept."""
    with op.batch_alter_table("subscription_state", schema=None) as batch_op:
        batch_op.alter_column(
            old, new_column_name=new, existing_type=sa.VARCHAR(length=20), existing_nullable=False
        )


def upgrade() -> None:
    """Apply this revision."""
    _rename("kind", "protocol")


def downgrade() -> None:
    """Revert this revision."""
    _rename("protocol", "kind")
