"""Use cases for a principal's guards (domain.guards): read them, change them.

The principal and the managing roles (admins, managers) manage them; an API client acts as its
owner, for a principal of one of its accounts. Watching more is stronger and applies at once;
watching less, or turning first-use hashtags off, weakens what the principal agreed to, so only
the principal makes that change (their own session or their own API client): the consent rule
of windows (domain.consent), where the principal's own change is their consent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghostpost.domain.guards import PrincipalGuards, guard_weakenings, parse_watched
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Principal, User
from ghostpost.services.authz import MANAGING_ROLES, require_user
from ghostpost.services.clients import client_of
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Forbidden, NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork


@dataclass(frozen=True)
class GuardSettings:
    """A principal's guards, and whether the asker may weaken them (is the principal)."""

    principal: Principal
    guards: PrincipalGuards
    may_weaken: bool


def _person(uow: UnitOfWork, actor: Actor) -> User:
    """The person deciding: the signed-in user, or an API client's owner."""
    if actor.user is not None:
        return require_user(actor)
    client = client_of(uow, actor)
    owner = uow.users.get(client.owner_id) if client is not None else None
    if client is None or not client.is_active or owner is None or not owner.is_active:
        raise Forbidden("This needs a signed-in staff user or an active API client.")
    return owner


def _principal(uow: UnitOfWork, actor: Actor, principal_id: int) -> tuple[Principal, User]:
    """The principal whose guards `actor` may manage, and the person deciding."""
    principal = uow.principals.get(principal_id)
    if principal is None:
        raise NotFound(f"No principal {principal_id}.")
    if actor.account_ids is not None and not any(
        a.principal_id == principal_id and actor.may_use_account(a.id)
        for a in (uow.accounts.get(i) for i in actor.account_ids)
        if a is not None
    ):
        raise NotFound(f"No principal {principal_id}.")
    person = _person(uow, actor)
    if person.principal_id != principal_id and person.role not in MANAGING_ROLES:
        raise Forbidden("Only the principal, managers and admins manage the principal's guards.")
    return principal, person


def principal_of_account(ctx: ServiceContext, actor: Actor, account_id: int) -> int:
    """The principal of an account the actor may use (NotFound otherwise)."""
    with ctx.uow(read_only=True) as uow:
        account = uow.accounts.get(account_id)
        if account is None or not actor.may_use_account(account_id):
            raise NotFound(f"No account {account_id}.")
        return account.principal_id


def guard_settings(ctx: ServiceContext, actor: Actor, principal_id: int) -> GuardSettings:
    """The principal's guards, for the principal, a manager or an admin."""
    with ctx.uow(read_only=True) as uow:
        principal, person = _principal(uow, actor, principal_id)
        return GuardSettings(
            principal, uow.guards.of(principal_id), person.principal_id == principal_id
        )


def change_guards(
    ctx: ServiceContext,
    actor: Actor,
    principal_id: int,
    *,
    watched: str | list[str],
    first_use_hashtags: bool,
) -> GuardSettings:
    """Replace the principal's watched hashtags and terms (text: one per line or comma) and the
    first-use setting; a weakening by anyone but the principal is refused by name (Forbidden),
    nothing stored. Ledger: `principal:guards_changed` with the old and new guards."""
    raw = watched if isinstance(watched, str) else "\n".join(watched)
    try:
        entries = parse_watched(raw)
    except ValueError as error:
        raise ValidationFailed(f"Watched: {error}.", {"watched": str(error)}) from None
    new = PrincipalGuards(entries, first_use_hashtags)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        principal, person = _principal(uow, actor, principal_id)
        old = uow.guards.of(principal_id)
        weaker = guard_weakenings(old, new)
        is_principal = person.principal_id == principal_id
        if weaker and not is_principal:
            raise Forbidden(
                f"Only {principal.name} can weaken their guards ({'; '.join(weaker)}): "
                "it lets posts out that they asked to see first."
            )
        if new != old:
            uow.guards.set(principal_id, new, now)
            uow.ledger.append(
                tag=LedgerTag.PRINCIPAL_GUARDS_CHANGED,
                actor=actor.ref,
                subject=f"principal:{principal_id}",
                data={
                    "by": user_summary(person),
                    "old": _record(old),
                    "new": _record(new),
                    "weakened": list(weaker),
                },
                occurred_at=now,
            )
            uow.commit()
        return GuardSettings(principal, new, is_principal)


def _record(guards: PrincipalGuards) -> dict[str, object]:
    return {"watched": list(guards.watched), "first_use_hashtags": guards.first_use_hashtags}
