"""mastodon apps: apps registered at /api/v1/apps, their authorization codes and tokens

Signing in like Mastodon (issue 15): anyone may register an app; a staff user signs in through
it and picks one of their accounts; the token is bound to (user, account, app) and lasts until
revoked. Secrets, codes and tokens are stored as SHA-256 hashes only.

Revision ID: 0012_mastodon_apps
Revises: 0011_ledger_entry_account
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ghostpost.db.base

revision: str = "0012_mastodon_apps"
down_revision: str | None = "0011_ledger_entry_account"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = ghostpost.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mastodon_apps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mastodon_apps")),
        sa.UniqueConstraint("client_id", name=op.f("uq_mastodon_apps_client_id")),
    )
    op.create_table(
        "mastodon_auth_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("used_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_mastodon_auth_codes_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["mastodon_apps.id"], name=op.f("fk_mastodon_auth_codes_app_id_mastodon_apps")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mastodon_auth_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mastodon_auth_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_mastodon_auth_codes_code_hash")),
    )
    with op.batch_alter_table("mastodon_auth_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mastodon_auth_codes_app_id"), ["app_id"], unique=False)
    op.create_table(
        "mastodon_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_mastodon_tokens_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["mastodon_apps.id"], name=op.f("fk_mastodon_tokens_app_id_mastodon_apps")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_mastodon_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mastodon_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_mastodon_tokens_token_hash")),
    )
    with op.batch_alter_table("mastodon_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mastodon_tokens_app_id"), ["app_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mastodon_tokens_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mastodon_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mastodon_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_mastodon_tokens_app_id"))
    op.drop_table("mastodon_tokens")
    with op.batch_alter_table("mastodon_auth_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mastodon_auth_codes_app_id"))
    op.drop_table("mastodon_auth_codes")
    op.drop_table("mastodon_apps")
