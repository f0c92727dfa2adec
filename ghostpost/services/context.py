"""What every use case is handed: a unit-of-work factory, the clock and the platform budgets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ghostpost.clock import Clock
from ghostpost.domain.length import Budget
from ghostpost.domain.model import Account, User
from ghostpost.services.ports import UnitOfWork

SYSTEM_WORKER = "system:worker"


@dataclass(frozen=True)
class ServiceContext:
    """Dependencies of the services, built once by the composition root."""

    uow: Callable[[], UnitOfWork]
    clock: Clock
    budget_for: Callable[[Account], Budget]
    hash_password: Callable[[str], str]
    #: (stored hash, password) -> (matches, needs rehash)
    check_password: Callable[[str, str], tuple[bool, bool]]
    #: (account as it will be stored, secrets) -> sealed text bound to that account's id,
    #: platform, base URL and remote id (AES-GCM, key outside the db): moving any of them in
    #: the database makes the secrets fail to open instead of following the row elsewhere.
    seal_credentials: Callable[[Account, dict[str, Any]], str]
    #: (bound_to, secrets) -> sealed text bound to that row, e.g. `user:7` (same SecretBox)
    seal_secret: Callable[[str, dict[str, Any]], str]
    #: (bound_to, sealed text) -> the secrets; raises if sealed for another row or key
    open_secret: Callable[[str, str], dict[str, Any]]
    #: How long before a window's start its notice goes out by default (notice_lead_minutes).
    notice_lead: timedelta = timedelta(minutes=60)


@dataclass(frozen=True)
class Actor:
    """Who asks: a staff user, an API client acting for a user, or the system."""

    ref: str
    user: User | None = None
    #: For API clients: the only accounts they may touch (None means no such limit).
    account_ids: frozenset[int] | None = None

    def may_use_account(self, account_id: int) -> bool:
        """Tell whether this actor's credentials cover the account."""
        return self.account_ids is None or account_id in self.account_ids

    @classmethod
    def for_client(cls, client_id: str, account_ids: frozenset[int]) -> Actor:
        """Return the actor for an API client limited to some accounts."""
        return cls(ref=f"client:{client_id}", account_ids=account_ids)

    @classmethod
    def for_user(cls, user: User) -> Actor:
        """Return the actor for a logged-in staff user."""
        return cls(ref=f"user:{user.id}", user=user)

    @classmethod
    def system(cls, name: str = "cli") -> Actor:
        """Return a system actor (CLI, demo seeding, worker)."""
        return cls(ref=f"system:{name}")


def user_summary(user: User) -> dict[str, object]:
    """Return the user facts the ledger records about a person."""
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role.value}
