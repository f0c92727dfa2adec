"""window consent: notice time and rejection on windows; proposals for policy changes

Revision ID: 0009_window_consent
Revises: 0007_user_totp
Create Date: 2026-12-06 10:10:00
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import ghostpost.db.base

revision: str = "0009_window_consent"
down_revision: str | None = "0008_authorship"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Existing windows get the default lead (notice_lead_minutes = 60) before their start.
LEAD = timedelta(minutes=60)


def upgrade() -> None:
    with op.batch_alter_table("windows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "notice_publish_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "notice_rejected_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("notice_rejected_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notice_rejection_comment", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_windows_notice_rejected_by_users"),
            "users",
            ["notice_rejected_by"],
            ["id"],
        )
    windows = sa.table(
        "windows",
        sa.column("id", sa.Integer()),
        sa.column("starts_at", ghostpost.db.base.UTCDateTime(timezone=True)),
        sa.column("notice_publish_at", ghostpost.db.base.UTCDateTime(timezone=True)),
    )
    connection = op.get_bind()
    for window_id, starts_at in connection.execute(sa.select(windows.c.id, windows.c.starts_at)):
        connection.execute(
            windows.update()
            .where(windows.c.id == window_id)
            .values(notice_publish_at=starts_at - LEAD)
        )

    op.create_table(
        "window_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("proposed_by", sa.Integer(), nullable=False),
        sa.Column("proposed_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", ghostpost.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_window_proposals_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["users.id"], name=op.f("fk_window_proposals_proposed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["window_id"], ["windows.id"], name=op.f("fk_window_proposals_window_id_windows")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_window_proposals")),
    )
    with op.batch_alter_table("window_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_window_proposals_window_id"), ["window_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("window_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_window_proposals_window_id"))
    op.drop_table("window_proposals")
    with op.batch_alter_table("windows", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_windows_notice_rejected_by_users"), type_="foreignkey"
        )
        batch_op.drop_column("notice_rejection_comment")
        batch_op.drop_column("notice_rejected_by")
        batch_op.drop_column("notice_rejected_at")
        batch_op.drop_column("notice_publish_at")
