"""platform app scopes: the scopes each instance's OAuth app was registered with

An instance refuses to authorize a scope its app was not registered with, and Mastodon offers no
way to edit an app. Keeping the scopes lets ghostpost register a new app when it needs more
(`write:media` for images). Apps stored before this revision get "": they are registered again
at the next connection.

Revision ID: 0020_platform_app_scopes
Revises: 0019_post_groups
Create Date: 2026-12-06 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_platform_app_scopes"
down_revision: str | None = "0019_post_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "platform_apps",
        sa.Column("scopes", sa.String(length=500), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("platform_apps") as batch:
        batch.drop_column("scopes")
