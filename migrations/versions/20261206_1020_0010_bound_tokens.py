"""bound tokens: reseal account credentials bound to platform, base URL and remote id

Until now a sealed credential was bound to `account:<id>` only, so pointing the row's base_url
at another host sent its tokens there. This revision opens every sealed credential under that
old binding and seals it again under the new one (ghostpost.db.platform_store.account_binding:
row id, platform, canonical base URL, remote id, as they stand now). The code opens credentials
only under the new binding, so a row this revision could not reseal opens nowhere (its posts
fail with the reason; reconnecting the account fixes it) — nothing stays usable under the old
binding. OAuth app secrets were already bound to platform and instance and are left as they are.

The token keys come from ghostpost's settings (GHOSTPOST_TOKEN_KEYS, or outside production
the key derived from GHOSTPOST_SECRET_KEY), exactly as `ghostpost db upgrade` loads them.

Revision ID: 0010_bound_tokens
Revises: 0007_user_totp
Create Date: 2026-12-06 10:20:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_bound_tokens"
down_revision: str | None = "0009_window_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

accounts = sa.table(
    "accounts",
    sa.column("id", sa.Integer),
    sa.column("principal_id", sa.Integer),
    sa.column("platform", sa.String),
    sa.column("handle", sa.String),
    sa.column("remote_id", sa.String),
    sa.column("base_url", sa.String),
    sa.column("credentials", sa.Text),
)
# The binding this revision retires, frozen here (the code no longer knows it).
OLD_BINDING = "account:{id}"


def _box():  # type: ignore[no-untyped-def]
    from ghostpost.bootstrap import make_secretbox
    from ghostpost.settings import Settings, SettingsError

    try:
        return make_secretbox(Settings.load())
    except SettingsError as exc:
        raise RuntimeError(
            f"0010_bound_tokens must reseal stored platform credentials and needs the token keys "
            f"from ghostpost's settings, which do not load ({exc}). Run it with the same "
            "environment as `ghostpost serve` (GHOSTPOST_TOKEN_KEYS / GHOSTPOST_SECRET_KEY)."
        ) from exc


def _rebind(old: str, new: str) -> None:
    from ghostpost.db.platform_store import account_binding
    from ghostpost.domain.model import Account
    from ghostpost.secretbox import SecretBoxError

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(accounts).where(accounts.c.credentials.is_not(None)).order_by(accounts.c.id)
    ).all()
    if not rows:
        return
    box = _box()
    resealed = unopened = 0
    for row in rows:
        account = Account(
            id=row.id,
            principal_id=row.principal_id,
            platform=row.platform,
            handle=row.handle,
            remote_id=row.remote_id,
            base_url=row.base_url,
        )
        bindings = {"old": OLD_BINDING.format(id=row.id), "new": account_binding(account)}
        try:
            secret = box.open(row.credentials, bound_to=bindings[old])
        except SecretBoxError:
            try:
                box.open(row.credentials, bound_to=bindings[new])
            except SecretBoxError:
                # No configured key opens it under either binding: it was already unusable.
                unopened += 1
            continue  # already under the target binding (a re-run)
        connection.execute(
            accounts.update()
            .where(accounts.c.id == row.id)
            .values(credentials=box.seal(secret, bound_to=bindings[new]))
        )
        resealed += 1
    log.info("resealed %d account credential(s) %s -> %s binding", resealed, old, new)
    if unopened:
        log.warning(
            "%d account credential(s) open with no configured token key; they stay unusable "
            "until the account is reconnected",
            unopened,
        )


def upgrade() -> None:
    _rebind("old", "new")


def downgrade() -> None:
    # Back to the row-only binding the older code reads (weaker: only for a rollback).
    _rebind("new", "old")
