"""guards: watched hashtags and terms per principal, the hashtags each account has used, and a
window's reply policy

`account_hashtags` is backfilled from the posts already published (their final text, hashtags as
the account's platform extracts them), so that a hashtag the account used before this revision
is not taken for a first use. Existing windows get `reply_policy = approve`, the default: a
stronger policy, which needs no consent (domain.consent).

Revision ID: 0023_guards
Revises: 0022_window_reason
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ghostpost.db.base import UTCDateTime

revision: str = "0023_guards"
down_revision: str | None = "0022_window_reason"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "windows",
        sa.Column("reply_policy", sa.String(length=10), nullable=False, server_default="approve"),
    )
    op.create_table(
        "principal_guards",
        sa.Column("principal_id", sa.Integer(), sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("watched", sa.JSON(), nullable=False),
        sa.Column("first_use_hashtags", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal_id"),
    )
    hashtags = op.create_table(
        "account_hashtags",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("first_published_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "name"),
    )
    _backfill(hashtags)


def _backfill(hashtags: sa.Table) -> None:
    # Imported here: the extractors are the app's own (the platform's rules), read once.
    from ghostpost.domain.guards import fold
    from ghostpost.domain.length import budget_for
    from ghostpost.textseg import default_segmenter

    segmenter = default_segmenter()
    posts = sa.table(
        "posts",
        sa.column("id", sa.Integer()),
        sa.column("account_id", sa.Integer()),
        sa.column("state", sa.String()),
        sa.column("final_text", sa.Text()),
        sa.column("published_at", UTCDateTime(timezone=True)),
    )
    accounts = sa.table("accounts", sa.column("id", sa.Integer()), sa.column("platform", sa.String()))
    rows = op.get_bind().execute(
        sa.select(posts.c.account_id, accounts.c.platform, posts.c.final_text, posts.c.published_at)
        .join(accounts, accounts.c.id == posts.c.account_id)
        .where(posts.c.state == "published")
        .order_by(posts.c.id)
    )
    seen: dict[tuple[int, str], datetime] = {}
    for account_id, platform, text, published_at in rows:
        try:
            budget = budget_for(platform, segmenter)
        except ValueError:
            continue  # a platform this version does not know has no hashtag rules here
        for tag in budget.hashtags(text or ""):
            name = fold(tag.name)[:200]
            seen.setdefault((account_id, name), published_at or datetime.now(UTC))
    if seen:
        op.bulk_insert(
            hashtags,
            [
                {"account_id": a, "name": n, "first_published_at": at}
                for (a, n), at in seen.items()
            ],
        )


def downgrade() -> None:
    op.drop_table("account_hashtags")
    op.drop_table("principal_guards")
    # As 0018 drops tag_every_part: a batch copy of `windows` would break the posts' keys.
    op.drop_column("windows", "reply_policy")
