"""Who may do what: the one place services ask authorization questions."""

from __future__ import annotations

from collections.abc import Callable

from ghostpost.domain.model import Account, Role, User
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden
from ghostpost.services.ports import UnitOfWork

MANAGING_ROLES = frozenset({Role.ADMIN, Role.MANAGER})
#: Roles that read the windows, ledger and coverage of every account.
OVERSEEING_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.AUDITOR})


def is_system(actor: Actor) -> bool:
    """Tell whether the actor is ghostpost itself (CLI, demo seeding), not a person or a client."""
    return actor.user is None and actor.ref.startswith("system:")


def require_user(actor: Actor) -> User:
    """Return the actor's active staff user, or refuse."""
    if actor.user is None or not actor.user.is_active:
        raise Forbidden("This needs a signed-in, active staff user.")
    return actor.user


def may_author(uow: UnitOfWork, user: User, account: Account) -> bool:
    """Tell whether `user` may write posts for `account`."""
    return may_author_if(
        user, account, assigned=lambda: uow.assignments.exists(user.id, account.id)
    )


def may_author_if(user: User, account: Account, *, assigned: Callable[[], bool]) -> bool:
    """may_author, told whether `user` is assigned to `account` (asked only when it matters)."""
    if not user.is_active:
        return False
    if user.is_principal_of(account):
        return True
    return user.role is not Role.AUDITOR and assigned()


def may_oversee(user: User, account: Account) -> bool:
    """Tell whether `user` may read the windows, ledger entries and coverage of `account`."""
    return user.is_active and (user.role in OVERSEEING_ROLES or user.is_principal_of(account))


def may_manage(user: User, account: Account) -> bool:
    """Tell whether `user` may manage the windows and writers of `account`."""
    return user.is_active and (user.role in MANAGING_ROLES or user.is_principal_of(account))


def require_admin(actor: Actor) -> User:
    """Return the actor's user if they are an admin, or refuse."""
    user = require_user(actor)
    if user.role is not Role.ADMIN:
        raise Forbidden("Only admins manage users.")
    return user


def require_manager(actor: Actor, account: Account) -> User:
    """Return the user if they may manage windows of `account` (manager, admin or its principal)."""
    user = require_user(actor)
    if user.role in MANAGING_ROLES or user.is_principal_of(account):
        return user
    raise Forbidden("Only managers, admins and the principal manage delegation windows.")


def require_principal(actor: Actor, account: Account) -> User:
    """Return the user if they are the principal of `account`."""
    user = require_user(actor)
    if not user.is_principal_of(account):
        raise Forbidden("Only the principal of this account may approve.")
    return user
