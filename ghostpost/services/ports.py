"""The ports the services need; db/ implements them (DESIGN.md §6: imports point inward)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.model import Account, NewPost, Post, Principal, Role, User, Window
from ghostpost.domain.policy import WindowPolicy
from ghostpost.domain.states import PostState


class PrincipalRepository(Protocol):
    """Principals."""

    def add(self, name: str) -> Principal:
        """Store a new principal."""

    def get(self, principal_id: int) -> Principal | None:
        """Return the principal with this id, or None."""

    def by_name(self, name: str) -> Principal | None:
        """Return the principal with this name, or None."""

    def list(self) -> list[Principal]:
        """Return every principal, by name."""


class AccountRepository(Protocol):
    """Accounts; `lock` serialises publishing decisions per account."""

    def add(
        self,
        *,
        principal_id: int,
        platform: str,
        handle: str,
        max_chars: int | None,
        url_length: int | None,
    ) -> Account:
        """Store a new account."""

    def get(self, account_id: int) -> Account | None:
        """Return the account with this id, or None."""

    def by_handle(self, platform: str, handle: str) -> Account | None:
        """Return the account with this handle on this platform, or None."""

    def list(self) -> list[Account]:
        """Return every account, oldest first."""

    def lock(self, account_id: int) -> None:
        """Hold the account until commit, so one decision at a time is made for it."""


class UserRepository(Protocol):
    """Staff users."""

    def add(
        self, *, email: str, name: str, role: Role, password_hash: str, principal_id: int | None
    ) -> User:
        """Store a new staff user."""

    def get(self, user_id: int) -> User | None:
        """Return the user with this id, or None."""

    def by_email(self, email: str) -> User | None:
        """Return the user with this email (case-insensitive), or None."""

    def password_hash(self, user_id: int) -> str | None:
        """Return the user's password hash, or None."""

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace the user's password hash."""

    def list(self) -> list[User]:
        """Return every user, by name."""

    def set_active(self, user_id: int, active: bool) -> User:
        """Activate or deactivate a user and return them."""


class AssignmentRepository(Protocol):
    """Which writer may post to which account."""

    def add(self, user_id: int, account_id: int) -> None:
        """Allow the user to write for the account."""

    def exists(self, user_id: int, account_id: int) -> bool:
        """Tell whether the user may write for the account."""

    def accounts_of(self, user_id: int) -> list[int]:
        """Return the ids of the accounts the user may write for."""

    def users_of(self, account_id: int) -> list[int]:
        """Return the ids of the users assigned to the account."""

    def remove(self, user_id: int, account_id: int) -> None:
        """Withdraw the user's permission to write for the account."""


class WindowRepository(Protocol):
    """Delegation windows."""

    def add(self, *, account_id: int, name: str, policy: WindowPolicy, created_by: int) -> Window:
        """Store a new window."""

    def get(self, window_id: int) -> Window | None:
        """Return the window with this id (fresh from the database), or None."""

    def covering(self, account_id: int, at: datetime) -> Window | None:
        """Return the window of the account that contains `at`, or None."""

    def overlaps(
        self,
        account_id: int,
        starts_at: datetime,
        ends_at: datetime,
        exclude_window_id: int | None = None,
    ) -> bool:
        """Tell whether another window of the account (not `exclude_window_id`) overlaps."""

    def update(self, window_id: int, **changes: Any) -> Window:
        """Change fields of a window and return it."""

    def list_for_account(self, account_id: int) -> list[Window]:
        """Return the account's windows by start time."""

    def list_for_accounts(self, account_ids: Collection[int]) -> list[Window]:
        """Return the windows of these accounts, latest start first."""

    def notices_awaiting_approval(
        self, account_ids: Collection[int], now: datetime
    ) -> list[Window]:
        """Return unended windows of these accounts whose pending notice awaits approval."""


class PostRepository(Protocol):
    """Posts."""

    def add(self, post: NewPost) -> Post:
        """Store a new post."""

    def get(self, post_id: int) -> Post | None:
        """Return the post with this id (fresh from the database), or None."""

    def by_public_id(self, public_id: str) -> Post | None:
        """Return the post with this public id, or None."""

    def update(self, post_id: int, **changes: Any) -> Post:
        """Change fields of a post and return it."""

    def due(self, now: datetime, limit: int, skip_accounts: set[int]) -> list[Post]:
        """Return scheduled posts whose time has come, in publishing order, skipping accounts."""

    def publishing_account_ids(self) -> set[int]:
        """Return the accounts that have a post in flight."""

    def stale_publishing(self, now: datetime) -> list[Post]:
        """Return posts in flight whose lease has run out."""

    def pending_reminder_for(self, post_id: int) -> Post | None:
        """Return the scheduled standalone reminder that must precede this post, if any."""

    def waiting_in_ended_windows(self, now: datetime) -> list[Post]:
        """Return posts held or awaiting approval whose window has ended."""

    def held_in_window(self, window_id: int) -> list[Post]:
        """Return a window's held posts in publishing order."""

    def list_for_account(self, account_id: int) -> list[Post]:
        """Return all of an account's posts, oldest first."""

    def published_timeline(
        self, account_id: int, starts_at: datetime, ends_at: datetime, also_post_id: int | None
    ) -> list[Post]:
        """Return the account's posts published in [starts_at, ends_at) (plus one), as published."""

    def search(
        self,
        *,
        account_ids: Collection[int] | None,
        window_id: int | None,
        states: Collection[PostState] | None,
        offset: int,
        limit: int,
    ) -> list[Post]:
        """Return one page of posts by state group (attention first), then by time."""

    def count_by_state(
        self, *, account_ids: Collection[int] | None, window_id: int | None
    ) -> dict[PostState, int]:
        """Return how many posts are in each state (None account_ids: every account)."""

    def awaiting_approval(self, account_ids: Collection[int]) -> list[Post]:
        """Return the regular posts of these accounts awaiting approval, soonest first."""


class Ledger(Protocol):
    """The append-only, hash-chained ledger."""

    def append(
        self, *, tag: str, actor: str, subject: str, data: Mapping[str, Any], occurred_at: datetime
    ) -> LedgerEntry:
        """Append an entry chained to the current head and return it."""

    def entries(self) -> Iterator[LedgerEntry]:
        """Yield every entry in sequence order."""

    def search(
        self,
        *,
        account_ids: Collection[int] | None = None,
        window_id: int | None = None,
        author_id: int | None = None,
        tag: str | None = None,
        subject: str | None = None,
        occurred_from: str | None = None,
        occurred_before: str | None = None,
        before_seq: int | None = None,
        after_seq: int | None = None,
        oldest_first: bool = False,
        limit: int = 50,
    ) -> list[LedgerEntry]:
        """Return up to `limit` entries matching every given filter, ordered by seq."""


class UnitOfWork(Protocol):
    """One transaction; rolls back on exit unless committed."""

    principals: PrincipalRepository
    accounts: AccountRepository
    users: UserRepository
    assignments: AssignmentRepository
    windows: WindowRepository
    posts: PostRepository
    ledger: Ledger

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None:
        """Commit the transaction."""

    def rollback(self) -> None:
        """Roll the transaction back."""
