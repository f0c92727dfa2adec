"""window reason and kind: why the account is handed over, and away notices

Every window now says why (shown on the public disclosure page). Windows made before get a
reason saying it was not recorded, and are delegation windows, as they always were.

Revision ID: 0022_window_reason
Revises: 0021_ledger_leaves
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_window_reason"
down_revision: str | None = "0021_ledger_leaves"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: domain.disclosure.REASON_NOT_RECORDED as of this revision (a migration never imports the app).
NOT_RECORDED = "(not recorded: this window was made before ghostpost asked for a reason)"


def upgrade() -> None:
    op.add_column(
        "windows", sa.Column("reason", sa.Text(), nullable=False, server_default=NOT_RECORDED)
    )
    op.add_column(
        "windows",
        sa.Column("kind", sa.String(length=20), nullable=False, server_default="delegation"),
    )


def downgrade() -> None:
    # A plain DROP COLUMN (as 0018 does): a batch copy of `windows` would drop a table that
    # posts point to.
    op.drop_column("windows", "kind")
    op.drop_column("windows", "reason")
