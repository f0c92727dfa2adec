"""oauth clients: API clients (client credentials), their accounts, and hashed access tokens

Revision ID: 0002_oauth_clients
Revises: 0bdd6aed957b
Create Date: 2026-11-21 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ghostpost.db.base

revision: str = "0002_oauth_clients"
down_revision: str | None = "0bdd6aed957b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("default_author_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["default_author_id"],
            ["users.id"],
            name=op.f("fk_oauth_clients_default_author_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_oauth_clients_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_clients_client_id")),
    )
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_clients_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "oauth_client_accounts",
        sa.Column("client_row_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_oauth_client_accounts_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["client_row_id"],
            ["oauth_clients.id"],
            name=op.f("fk_oauth_client_accounts_client_row_id_oauth_clients"),
        ),
        sa.PrimaryKeyConstraint("client_row_id", "account_id", name=op.f("pk_oauth_client_accounts")),
    )
    op.create_table(
        "oauth_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_row_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("issued_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_row_id"],
            ["oauth_clients.id"],
            name=op.f("fk_oauth_tokens_client_row_id_oauth_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oauth_tokens_token_hash")),
    )
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_tokens_client_row_id"), ["client_row_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_tokens_client_row_id"))

    op.drop_table("oauth_tokens")
    op.drop_table("oauth_client_accounts")
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_clients_owner_id"))

    op.drop_table("oauth_clients")
