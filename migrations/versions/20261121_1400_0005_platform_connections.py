"""platform connections: account remote id, base URL and sealed credentials; OAuth apps per
instance; publish attempts recorded before non-idempotent platforms are called

Revision ID: 0005_platform_connections
Revises: 0004_ledger_checkpoints
Create Date: 2026-11-21 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ghostpost.db.base

revision: str = "0005_platform_connections"
down_revision: str | None = "0004_ledger_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable) works on SQLite without a table rebuild.
    op.add_column("accounts", sa.Column("remote_id", sa.String(length=200), nullable=True))
    op.add_column("accounts", sa.Column("base_url", sa.String(length=500), nullable=True))
    op.add_column("accounts", sa.Column("credentials", sa.Text(), nullable=True))
    op.add_column(
        "accounts",
        sa.Column("connected_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "platform_apps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("created_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_apps")),
        sa.UniqueConstraint(
            "platform", "base_url", name=op.f("uq_platform_apps_platform_base_url")
        ),
    )
    op.create_table(
        "publish_attempts",
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("created_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_publish_attempts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_publish_attempts")),
    )
    op.create_index(
        op.f("ix_publish_attempts_account_id"), "publish_attempts", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_publish_attempts_account_id"), table_name="publish_attempts")
    op.drop_table("publish_attempts")
    op.drop_table("platform_apps")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("connected_at")
        batch_op.drop_column("credentials")
        batch_op.drop_column("base_url")
        batch_op.drop_column("remote_id")
