"""ledger leaves: the transparency log's public leaves, salts, subtree hashes and signed heads

The notary writes these in its pass (not in the request's transaction): each ledger entry's
public leaf, its secret salt (a separate table, so the leaves can be published whole), the hash
of each complete aligned subtree (proofs read O(log n) of them), and each signed tree head (a
C2SP checkpoint note). Existing ledgers are covered by the notary's first pass after upgrade.

Revision ID: 0021_ledger_leaves
Revises: 0020_platform_app_scopes
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_ledger_leaves"
down_revision: str | None = "0020_platform_app_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_leaves",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_leaves")),
    )
    op.create_table(
        "ledger_leaf_salts",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_leaf_salts")),
    )
    op.create_table(
        "ledger_tree_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_ledger_tree_nodes")),
    )
    op.create_table(
        "tree_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tree_checkpoints")),
    )
    op.create_index(op.f("ix_tree_checkpoints_size"), "tree_checkpoints", ["size"])
    op.create_index("ix_posts_platform_url", "posts", ["platform_url"])


def downgrade() -> None:
    op.drop_index("ix_posts_platform_url", table_name="posts")
    op.drop_index(op.f("ix_tree_checkpoints_size"), table_name="tree_checkpoints")
    op.drop_table("tree_checkpoints")
    op.drop_table("ledger_tree_nodes")
    op.drop_table("ledger_leaf_salts")
    op.drop_table("ledger_leaves")
