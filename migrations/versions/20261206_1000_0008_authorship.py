"""authorship: the authors each API client may name; one user per principal

Revision ID: 0008_authorship
Revises: 0007_user_totp
Create Date: 2026-12-06 10:00:00

Existing clients get their default author (if any) as the only author they may name, so no
client can name anyone it could not name by default before. A default author who is linked to a
principal stays only on a client that principal's own user owns; elsewhere the default is
cleared (such a client was posting "as the principal" without the principal submitting).

A database where two users are linked to the same principal is not upgraded: which one is the
principal's person is for the operator to decide, not for a migration to guess.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_authorship"
down_revision: str | None = "0007_user_totp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class SeveralUsersPerPrincipal(RuntimeError):
    """Two or more users are linked to one principal; the operator must unlink all but one."""


def _refuse_duplicate_links(bind: sa.engine.Connection) -> None:
    rows = bind.execute(
        sa.text(
            "SELECT principal_id, email FROM users WHERE principal_id IN ("
            " SELECT principal_id FROM users WHERE principal_id IS NOT NULL"
            " GROUP BY principal_id HAVING COUNT(*) > 1)"
            " ORDER BY principal_id, email"
        )
    ).all()
    if not rows:
        return
    by_principal: dict[int, list[str]] = {}
    for principal_id, email in rows:
        by_principal.setdefault(principal_id, []).append(email)
    described = "; ".join(
        f"principal {pid}: {', '.join(emails)}" for pid, emails in sorted(by_principal.items())
    )
    raise SeveralUsersPerPrincipal(
        "Several users are linked to the same principal, and only one person may act as a "
        f"principal ({described}). Decide which user is the principal, set principal_id to "
        "NULL on the others (and record why), then run the upgrade again."
    )


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_duplicate_links(bind)
    op.create_index("uq_users_principal_id", "users", ["principal_id"], unique=True)
    op.create_table(
        "oauth_client_authors",
        sa.Column("client_row_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_row_id"],
            ["oauth_clients.id"],
            name=op.f("fk_oauth_client_authors_client_row_id_oauth_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oauth_client_authors_user_id_users")
        ),
        sa.PrimaryKeyConstraint("client_row_id", "user_id", name=op.f("pk_oauth_client_authors")),
    )
    # A principal's user as default author of a client someone else owns: no longer allowed.
    bind.execute(
        sa.text(
            "UPDATE oauth_clients SET default_author_id = NULL"
            " WHERE default_author_id IS NOT NULL AND default_author_id <> owner_id"
            " AND default_author_id IN (SELECT id FROM users WHERE principal_id IS NOT NULL)"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO oauth_client_authors (client_row_id, user_id)"
            " SELECT id, default_author_id FROM oauth_clients"
            " WHERE default_author_id IS NOT NULL"
        )
    )


def downgrade() -> None:
    op.drop_table("oauth_client_authors")
    op.drop_index("uq_users_principal_id", table_name="users")
