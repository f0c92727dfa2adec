"""Use cases for connecting accounts to their platforms: store identity and sealed tokens."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, Principal, User
from ghostpost.services.authz import MANAGING_ROLES, require_user
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork

#: Platforms whose accounts are connected with credentials (`local` needs none).
CONNECTABLE = ("mastodon", "bluesky", "x")


def require_connector(actor: Actor) -> User:
    """Return the user if they may connect and disconnect accounts (managers and admins)."""
    user = require_user(actor)
    if user.role not in MANAGING_ROLES:
        raise Forbidden("Only managers and admins connect accounts to their platforms.")
    return user


def connectable_principals(
    ctx: ServiceContext, actor: Actor
) -> tuple[list[Principal], list[Account]]:
    """Return the principals and their accounts, for the page where accounts are connected."""
    require_connector(actor)
    with ctx.uow(read_only=True) as uow:
        return uow.principals.list(), uow.accounts.list()


def save_connection(
    ctx: ServiceContext,
    actor: Actor,
    *,
    principal_id: int,
    platform: str,
    handle: str,
    remote_id: str,
    base_url: str | None,
    credentials: dict[str, Any],
    max_chars: int | None = None,
    url_length: int | None = None,
) -> Account:
    """Create or reconnect a principal's account with its platform identity and sealed tokens."""
    user = require_connector(actor)
    if platform not in CONNECTABLE:
        raise ValidationFailed(f"{platform!r} accounts are not connected.", {"platform": "unknown"})
    if not credentials:
        raise ValidationFailed("The platform returned no credentials.", {"credentials": "empty"})
    now = ctx.clock.now()
    with ctx.uow() as uow:
        if uow.principals.get(principal_id) is None:
            raise NotFound(f"No principal {principal_id}.")
        account = uow.accounts.by_handle(platform, handle)
        reconnect = account is not None
        if account is None:
            account = uow.accounts.add(
                principal_id=principal_id,
                platform=platform,
                handle=handle,
                max_chars=max_chars,
                url_length=url_length,
            )
            uow.ledger.append(
                tag=LedgerTag.ACCOUNT_CREATED,
                actor=actor.ref,
                subject=f"account:{account.id}",
                data={"principal_id": principal_id, "platform": platform, "handle": handle},
                occurred_at=now,
            )
        elif account.principal_id != principal_id:
            # One platform account speaks for one person; moving it silently would let the
            # wrong principal's writers post as it.
            raise Conflict(f"The {platform} account @{handle} belongs to another principal.")
        elif account.remote_id is not None and account.remote_id != remote_id:
            raise Conflict(
                f"@{handle} is now a different {platform} account (id {remote_id}); "
                "register it anew instead of reconnecting."
            )
        account = uow.accounts.store_connection(
            account.id,
            remote_id=remote_id,
            base_url=base_url,
            # Sealed for the account as stored below: this server, this remote identity.
            sealed_credentials=ctx.seal_credentials(
                replace(account, remote_id=remote_id, base_url=base_url), credentials
            ),
            max_chars=max_chars,
            url_length=url_length,
            connected_at=now,
        )
        uow.ledger.append(
            tag=LedgerTag.ACCOUNT_CONNECTED,
            actor=actor.ref,
            subject=f"account:{account.id}",
            data={
                "platform": platform,
                "handle": handle,
                "remote_id": remote_id,
                "base_url": base_url,
                "max_chars": max_chars,
                "url_length": url_length,
                "reconnect": reconnect,
                "by": user.email,
            },
            occurred_at=now,
        )
        uow.commit()
    return account


def disconnect_account(ctx: ServiceContext, actor: Actor, account_id: int) -> Account:
    """Forget an account's platform tokens; its posts then fail with 'not connected'."""
    require_connector(actor)
    with ctx.uow() as uow:
        account = _connectable(uow, account_id)
        account = uow.accounts.store_connection(
            account.id,
            remote_id=account.remote_id,
            base_url=account.base_url,
            sealed_credentials=None,
            max_chars=account.max_chars,
            url_length=account.url_length,
            connected_at=None,
        )
        uow.ledger.append(
            tag=LedgerTag.ACCOUNT_DISCONNECTED,
            actor=actor.ref,
            subject=f"account:{account.id}",
            data={"platform": account.platform, "handle": account.handle},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return account


def _connectable(uow: UnitOfWork, account_id: int) -> Account:
    account = uow.accounts.get(account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    if account.platform not in CONNECTABLE:
        raise ValidationFailed("Local accounts need no connection.", {"account": "local"})
    return account


def rotate_token_key(ctx: ServiceContext, actor: Actor) -> dict[str, int]:
    """Re-seal every platform secret under the active token key, with its ledger entry."""
    if actor.user is not None:
        require_connector(actor)
    with ctx.uow() as uow:
        counts = uow.sealed.reseal_all()
        uow.ledger.append(
            tag=LedgerTag.TOKENS_RESEALED,
            actor=actor.ref,
            subject=f"token_key:{uow.sealed.active_key_id}",
            data=dict(counts),
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return counts


__all__ = [
    "CONNECTABLE",
    "connectable_principals",
    "disconnect_account",
    "require_connector",
    "rotate_token_key",
    "save_connection",
]
