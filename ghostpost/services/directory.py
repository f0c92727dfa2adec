"""Use cases for people and accounts: principals, accounts, staff users, assignments."""

from __future__ import annotations

import re

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, Principal, Role, User
from ghostpost.services import delegation
from ghostpost.services.authz import is_system, require_admin, require_manager, require_user
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
    text_problem,
)
from ghostpost.services.ports import UnitOfWork

PLATFORMS = ("local", "mastodon", "bluesky", "x")
_HANDLE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}(@[A-Za-z0-9.\-]{1,200}(:[0-9]{1,5})?)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


def create_principal(ctx: ServiceContext, actor: Actor, name: str) -> Principal:
    """Create a principal (the executive) by name."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A principal needs a name.", {"name": "required"})
    with ctx.uow() as uow:
        if uow.principals.by_name(name) is not None:
            raise Conflict(f"A principal named {name!r} already exists.")
        principal = uow.principals.add(name)
        uow.ledger.append(
            tag=LedgerTag.PRINCIPAL_CREATED,
            actor=actor.ref,
            subject=f"principal:{principal.id}",
            data={"name": name},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return principal


def create_account(
    ctx: ServiceContext,
    actor: Actor,
    *,
    principal_id: int,
    platform: str,
    handle: str,
    max_chars: int | None = None,
    url_length: int | None = None,
) -> Account:
    """Register one social account of a principal."""
    handle = handle.strip().lstrip("@")
    if platform not in PLATFORMS:
        raise ValidationFailed(
            f"Unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}.",
            {"platform": "unknown"},
        )
    if not _HANDLE.match(handle):
        raise ValidationFailed(
            "The handle may hold letters, digits, '_', '.', '-'.", {"handle": "invalid"}
        )
    if max_chars is not None and not 1 <= max_chars <= 100_000:
        raise ValidationFailed("max_chars must be between 1 and 100000.", {"max_chars": "range"})
    with ctx.uow() as uow:
        if uow.principals.get(principal_id) is None:
            raise NotFound(f"No principal {principal_id}.")
        if uow.accounts.by_handle(platform, handle) is not None:
            raise Conflict(f"The {platform} account @{handle} is already registered.")
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
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return account


def create_user(
    ctx: ServiceContext,
    actor: Actor,
    *,
    email: str,
    name: str,
    role: Role,
    password: str,
    principal_id: int | None = None,
) -> User:
    """Create a staff user; with `principal_id` the user is that principal.

    Only the operator (a system actor: CLI, demo seeding) links a new user to a principal, and
    only as the principal's first link: one principal, one person. Admins create staff only.
    """
    if not is_system(actor):
        require_admin(actor)
        if principal_id is not None:
            raise Forbidden(LINK_NEEDS_CONSENT)
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if not _EMAIL.match(email):
        errors["email"] = "not an email address"
    if not name.strip():
        errors["name"] = "required"
    for field_name, value in (("email", email), ("name", name)):
        problem = text_problem(value)
        if problem is not None:
            errors[field_name] = problem
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"at least {MIN_PASSWORD_LENGTH} characters"
    if errors:
        said = "; ".join(f"{name}: {text}" for name, text in errors.items())
        raise ValidationFailed(f"The user cannot be created: {said}.", errors)
    with ctx.uow() as uow:
        if uow.users.by_email(email) is not None:
            raise Conflict(f"A user with email {email} already exists.")
        principal = None
        if principal_id is not None:
            principal = _unlinked_principal(uow, principal_id)
        user = uow.users.add(
            email=email,
            name=name.strip(),
            role=role,
            password_hash=ctx.hash_password(password),
            principal_id=principal_id,
        )
        uow.ledger.append(
            tag=LedgerTag.USER_CREATED,
            actor=actor.ref,
            subject=f"user:{user.id}",
            data={**user_summary(user), "principal_id": principal_id},
            occurred_at=ctx.clock.now(),
        )
        if principal is not None:
            _record_first_link(ctx, uow, actor, principal, user)
        uow.commit()
    return user


#: Why nobody but the operator (first link) or the principal (hand-over) links a principal.
LINK_NEEDS_CONSENT = (
    "Only the operator links a principal to their first user (ghostpost users link-principal); "
    "after that, only the principal's own user can hand the principal over to another user."
)


def _unlinked_principal(uow: UnitOfWork, principal_id: int) -> Principal:
    principal = uow.principals.get(principal_id)
    if principal is None:
        raise NotFound(f"No principal {principal_id}.")
    linked = uow.users.linked_to_principal(principal.id)
    if linked is not None:
        raise Conflict(
            f"{principal.name} is already linked to {linked.email}: one principal, one person. "
            "Only that user can hand the principal over to someone else."
        )
    return principal


def _record_first_link(
    ctx: ServiceContext, uow: UnitOfWork, actor: Actor, principal: Principal, user: User
) -> None:
    uow.ledger.append(
        tag=LedgerTag.PRINCIPAL_LINKED,
        actor=actor.ref,
        subject=f"principal:{principal.id}",
        data={"principal": principal.name, "user": user_summary(user), "first_link": True},
        occurred_at=ctx.clock.now(),
    )


def link_principal(ctx: ServiceContext, actor: Actor, *, email: str, principal_name: str) -> User:
    """The operator links an existing user to a principal that has no user yet (first link)."""
    if not is_system(actor):
        raise Forbidden(LINK_NEEDS_CONSENT)
    with ctx.uow() as uow:
        found = uow.principals.by_name(principal_name.strip())
        if found is None:
            raise NotFound(f"No principal named {principal_name.strip()!r}.")
        principal = _unlinked_principal(uow, found.id)
        user = uow.users.by_email(email.strip().lower())
        if user is None:
            raise NotFound(f"No staff user {email.strip()}.")
        if not user.is_active:
            raise Conflict(f"{user.name} is deactivated; reactivate them first.")
        if user.principal_id is not None:
            raise Conflict(
                f"{user.email} already is another principal; only that principal can hand "
                "themself over."
            )
        user = uow.users.set_principal(user.id, principal.id)
        _record_first_link(ctx, uow, actor, principal, user)
        uow.commit()
    return user


def hand_over_principal(ctx: ServiceContext, actor: Actor, *, to_email: str, password: str) -> User:
    """The principal's own user moves the principal link to another user; return the new one.

    The principal confirms with their password (a session left open on a shared desk is not
    consent). The old user stops being the principal in the same transaction.
    """
    current = require_user(actor)
    if current.principal_id is None:
        raise Forbidden("Only the principal's own user can hand the principal over.")
    problem = text_problem(to_email)
    if problem is not None:
        raise ValidationFailed(f"The email {problem}.", {"to_email": problem})
    with ctx.uow() as uow:
        stored = uow.users.password_hash(current.id)
        if not password or stored is None or not ctx.check_password(stored, password)[0]:
            raise ValidationFailed(
                "Confirm with your own password.", {"password": "does not match"}
            )
        current = uow.users.get(current.id) or current
        if current.principal_id is None:
            raise Forbidden("Only the principal's own user can hand the principal over.")
        principal = uow.principals.get(current.principal_id)
        assert principal is not None
        target = uow.users.by_email(to_email.strip().lower())
        if target is None or not target.is_active:
            raise ValidationFailed(
                f"No active staff user {to_email.strip()}.", {"to_email": "no such active user"}
            )
        if target.id == current.id:
            raise ValidationFailed("You already are the principal.", {"to_email": "yourself"})
        if target.principal_id is not None:
            raise Conflict(f"{target.email} already is a principal.")
        uow.users.set_principal(current.id, None)
        target = uow.users.set_principal(target.id, principal.id)
        uow.ledger.append(
            tag=LedgerTag.PRINCIPAL_LINK_CHANGED,
            actor=actor.ref,
            subject=f"principal:{principal.id}",
            data={
                "principal": principal.name,
                "from": user_summary(current),
                "to": user_summary(target),
                "confirmed_by": user_summary(current),
            },
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return target


def _assignment_parties(uow: UnitOfWork, actor: Actor, *, user_id: int, account_id: int) -> User:
    # Shared by assign and unassign: the account must exist and the actor must manage it.
    account = uow.accounts.get(account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    if not is_system(actor):
        require_manager(actor, account)
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def assign_writer(ctx: ServiceContext, actor: Actor, *, user_id: int, account_id: int) -> None:
    """Allow a staff user to write for an account (idempotent)."""
    with ctx.uow() as uow:
        user = _assignment_parties(uow, actor, user_id=user_id, account_id=account_id)
        if user.role is Role.AUDITOR:
            raise Conflict("Auditors read; they are never assigned to write.")
        if not user.is_active:
            raise Conflict(f"{user.name} is deactivated; reactivate them before assigning.")
        if uow.assignments.exists(user_id, account_id):
            return
        uow.assignments.add(user_id, account_id)
        uow.ledger.append(
            tag=LedgerTag.WRITER_ASSIGNED,
            actor=actor.ref,
            subject=f"account:{account_id}",
            data={"user": user_summary(user)},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()


def unassign_writer(ctx: ServiceContext, actor: Actor, *, user_id: int, account_id: int) -> None:
    """Withdraw a staff user's permission to write for an account (idempotent); their delegated
    posts there that are not out yet are held in the same transaction (services.delegation)."""
    with ctx.uow() as uow:
        user = _assignment_parties(uow, actor, user_id=user_id, account_id=account_id)
        if not uow.assignments.exists(user_id, account_id):
            return
        uow.assignments.remove(user_id, account_id)
        delegation.lock_accounts_for_withdrawal(uow, [account_id])
        uow.ledger.append(
            tag=LedgerTag.WRITER_UNASSIGNED,
            actor=actor.ref,
            subject=f"account:{account_id}",
            data={"user": user_summary(user)},
            occurred_at=ctx.clock.now(),
        )
        account = uow.accounts.get(account_id)
        assert account is not None
        delegation.withdraw_assignment(uow, actor, user, account, ctx.clock.now())
        uow.commit()
    # Tokens that act for this user on this account stop here at once (elsewhere: within the
    # token cache's bound, services.mastodon_apps.resolve_bearer).
    ctx.token_grants.forget()


def staff_directory(ctx: ServiceContext, actor: Actor) -> tuple[list[User], list[Principal]]:
    """Return every staff user and every principal, by name (admins only)."""
    require_admin(actor)
    with ctx.uow(read_only=True) as uow:
        return uow.users.list(), uow.principals.list()


def set_user_active(ctx: ServiceContext, actor: Actor, user_id: int, active: bool) -> User:
    """Deactivate or reactivate a staff user; deactivation revokes all their web sessions and
    holds their posts not out yet (services.delegation). Reactivation releases nothing."""
    admin = None if is_system(actor) else require_admin(actor)
    with ctx.uow() as uow:
        user = uow.users.get(user_id)
        if user is None:
            raise NotFound(f"No user {user_id}.")
        if not active and admin is not None and admin.id == user.id:
            raise Conflict("You cannot deactivate yourself; ask another admin.")
        if user.is_active == active:
            return user
        user = uow.users.set_active(user.id, active)
        if not active:
            # Same transaction: the user is never inactive while a session of theirs still works.
            uow.web_sessions.revoke_for_user(user.id, ctx.clock.now())
            delegation.lock_accounts_for_withdrawal(uow)
        uow.ledger.append(
            tag=LedgerTag.USER_REACTIVATED if active else LedgerTag.USER_DEACTIVATED,
            actor=actor.ref,
            subject=f"user:{user.id}",
            data={"user": user_summary(user)},
            occurred_at=ctx.clock.now(),
        )
        if not active:
            delegation.withdraw_user(uow, actor, user, ctx.clock.now())
        uow.commit()
    if not active:
        ctx.token_grants.forget()  # the user's app tokens stop at once in this process
    return user
