"""web sessions: server-side staff sessions (revocable; idle and absolute timeouts)

Revision ID: 0006_web_sessions
Revises: 0005_platform_connections
Create Date: 2026-11-21 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ghostpost.db.base

revision: str = "0006_web_sessions"
down_revision: str | None = "0005_platform_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new table only: no existing table (least of all the ledger's) is altered.
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
