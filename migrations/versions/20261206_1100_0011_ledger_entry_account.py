"""ledger entry account: each entry's account and post, derived from its subject, indexed

Filtering the ledger by account (exports, the ledger viewer) used to match every entry's subject
against the account's posts: a pass over the whole ledger (and under an OR an unhashed SubPlan
per entry on PostgreSQL). Entries now carry `account_id` (the account their subject belongs
to: `account:<id>`, a window's account, a post's account) and `post_id` (the post a
`post:<public id>` subject names), filled when appended (ghostpost.db.repositories.ledger.
subject_refs) and backfilled here by the same rules.

Neither column is hashed: they are an index, not evidence. `ghostpost audit check` names every
entry whose stored columns disagree with its subject.

The backfill updates ledger_entries, whose append-only trigger refuses UPDATE: it is set aside
for the backfill only (PostgreSQL: disabled inside this transaction; SQLite: dropped and
re-created with the text of 0004).

Revision ID: 0011_ledger_entry_account
Revises: 0010_bound_tokens
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_ledger_entry_account"
down_revision: str | None = "0010_bound_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same rules as subject_refs, frozen here as SQL (the code may move on).
BACKFILL = (
    "UPDATE ledger_entries SET"
    " post_id = (SELECT p.id FROM posts p WHERE p.public_id = substr(ledger_entries.subject, 6)),"
    " account_id = (SELECT p.account_id FROM posts p"
    "  WHERE p.public_id = substr(ledger_entries.subject, 6))"
    " WHERE subject LIKE 'post:%'",
    "UPDATE ledger_entries SET account_id = (SELECT w.account_id FROM windows w"
    "  WHERE 'window:' || CAST(w.id AS VARCHAR(20)) = ledger_entries.subject)"
    " WHERE subject LIKE 'window:%'",
    "UPDATE ledger_entries SET account_id = (SELECT a.id FROM accounts a"
    "  WHERE 'account:' || CAST(a.id AS VARCHAR(20)) = ledger_entries.subject)"
    " WHERE subject LIKE 'account:%'",
)
SQLITE_UPDATE_TRIGGER = (
    "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ghostpost: ledger_entries is append-only; "
    "UPDATE refused'); END"
)


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("account_id", sa.Integer(), nullable=True))
    op.add_column("ledger_entries", sa.Column("post_id", sa.Integer(), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
    for statement in BACKFILL:
        op.execute(statement)
    if dialect == "postgresql":
        op.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")
    elif dialect == "sqlite":
        op.execute(SQLITE_UPDATE_TRIGGER)
    op.create_index(
        "ix_ledger_entries_account_id_seq", "ledger_entries", ["account_id", "seq"], unique=False
    )
    op.create_index(
        op.f("ix_ledger_entries_post_id"), "ledger_entries", ["post_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_entries_post_id"), table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_account_id_seq", table_name="ledger_entries")
    # Plain ALTER TABLE DROP COLUMN (SQLite >= 3.35 too): a batch copy of the table would lose
    # its append-only triggers.
    op.execute("ALTER TABLE ledger_entries DROP COLUMN post_id")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN account_id")
