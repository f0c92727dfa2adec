"""What every use case is handed: a unit-of-work factory, the clock and the platform budgets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ghostpost.clock import Clock
from ghostpost.domain.length import Budget
from ghostpost.domain.media_rules import CleanImage
from ghostpost.domain.model import Account, User
from ghostpost.services.ports import ClientSubmission, UnitOfWork

SYSTEM_WORKER = "system:worker"


class GrantCache:
    """What bearer tokens grant, kept per process for `seconds` after it was read (0: never
    kept), so that most API requests do not read their token. A revocation made in this
    process forgets the grants at once (services.clients); one made elsewhere applies here
    within `seconds`. Ages are measured with the services' clock."""

    def __init__(self, seconds: float, *, max_entries: int = 10_000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._grants: dict[str, tuple[datetime, Any]] = {}

    def get(self, key: str, now: datetime) -> Any | None:
        """Return the grant kept under `key` if it was read less than `seconds` ago."""
        found = self._grants.get(key)
        if found is None:
            return None
        read_at, grant = found
        if not read_at <= now < read_at + timedelta(seconds=self.seconds):
            self._grants.pop(key, None)
            return None
        return grant

    def put(self, key: str, grant: Any, now: datetime) -> None:
        """Keep `grant` (read `now`) under `key`."""
        if self.seconds <= 0:
            return
        if len(self._grants) >= self.max_entries:
            self._grants.clear()  # rare, cheap, and only costs a read per token
        self._grants[key] = (now, grant)

    def forget(self, key: str | None = None) -> None:
        """Forget the grant under `key`, or every grant."""
        if key is None:
            self._grants.clear()
        else:
            self._grants.pop(key, None)


#: Whose facts a client's create reads: (client id, account id, author's email or None).
FactsKey = tuple[str, int, str | None]


class LastFacts:
    """The facts an API client's create or preview last read, per (client, account, author
    named), kept per process as the guess a create is planned ahead on
    (services.posts.plan_client_post_ahead) instead of reading them again, and as the objects
    a later read that finds the very same row reuses instead of building them again
    (services.posts._plan_on_client_read). Only a guess: the write transaction reads the facts
    under the lock and takes the plan only if it finds exactly these, and a reuse needs the
    whole row read equal, so facts gone stale cost the one request that finds them changed
    some work (and it keeps what it found), never a decision taken on them. No age limit for
    that reason; `max_entries` bounds the memory."""

    def __init__(self, *, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._facts: dict[FactsKey, ClientSubmission] = {}

    def get(self, key: FactsKey) -> ClientSubmission | None:
        """The facts last kept under `key`, however old (a guess, never the decision's)."""
        return self._facts.get(key)

    def put(self, key: FactsKey, facts: ClientSubmission) -> None:
        """Keep `facts`, as a read just found them, as the next guess under `key`."""
        if len(self._facts) >= self.max_entries and key not in self._facts:
            self._facts.clear()  # rare, cheap, and only costs a read per key
        self._facts[key] = facts

    def forget(self, key: FactsKey) -> None:
        """Drop the guess under `key` (it was refused or found changed): the next create
        under it reads its facts ahead."""
        self._facts.pop(key, None)


class MediaFiles(Protocol):
    """Image bytes by content hash (ghostpost.media_store.FileMediaStore)."""

    def put(self, data: bytes) -> str:
        """Store the bytes (once) and return their SHA-256."""
        ...

    def read(self, content_hash: str) -> bytes:
        """Return the bytes; raise errors.MediaUnavailable when missing or altered."""
        ...


class UnitOfWorkFactory(Protocol):
    """Opens a unit of work: one write transaction, or with `read_only` one that only reads
    (it never takes SQLite's write lock; PostgreSQL refuses its writes), or with `single_read`
    one read-only statement (PostgreSQL: no transaction of its own, the statement's implicit
    one; a second statement is refused, as it would read another snapshot). `lean` (a write)
    is the same transaction, for a use case that runs its statements on the connection (the
    API client's create): an implementation may then skip the bookkeeping of an ORM it would
    not use."""

    def __call__(
        self, *, read_only: bool = False, single_read: bool = False, lean: bool = False
    ) -> UnitOfWork: ...


@dataclass(frozen=True)
class LogIdentity:
    """The transparency log as verifiers know it (services.verification)."""

    #: The log's origin (C2SP checkpoint origin, the verifier key's name).
    origin: str
    #: The app's public base URL (links in verify answers).
    public_url: str
    #: Returns the raw Ed25519 public key the notary signs with now.
    public_key: Callable[[], bytes]


@dataclass(frozen=True)
class ServiceContext:
    """Dependencies of the services, built once by the composition root."""

    uow: UnitOfWorkFactory
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
    #: Bearer-token grants read recently (api_token_cache_seconds; see GrantCache).
    token_grants: GrantCache = field(default_factory=lambda: GrantCache(0))
    #: The media store (ghostpost.media_store): image bytes by content hash, read back verified.
    media_files: MediaFiles | None = None
    #: Decodes an upload and re-encodes it without metadata (ghostpost.images.normalise);
    #: raises ImageRefused.
    clean_image: Callable[[bytes], CleanImage] | None = None
    #: The transparency log's identity; None: verification is not configured.
    log: LogIdentity | None = None
    #: Where the public reaches this ghostpost (settings.public_url): disclosure page links.
    public_url: str = "http://127.0.0.1:8000"
    #: Whether a write transaction holds every other writer off for all its length (SQLite's
    #: one write lock), so that an API client's create pays for planning it first, on a read
    #: without the lock (services.posts.plan_client_post_ahead).
    decide_before_write_lock: bool = False
    #: The facts API clients' creates and previews last read in this process: what a create
    #: is planned ahead on when decide_before_write_lock (a guess the write transaction
    #: checks), and what a read finding the same row reuses (LastFacts).
    last_client_facts: LastFacts = field(default_factory=LastFacts)


@dataclass(frozen=True)
class Actor:
    """Who asks: a staff user, an API client acting for a user, or the system."""

    ref: str
    user: User | None = None
    #: For API clients: the only accounts they may touch (None means no such limit).
    account_ids: frozenset[int] | None = None
    #: What the actor acts through, when the ledger should say so: `mastodon-app:<id>` for a
    #: token a staff user granted a Mastodon app (services.mastodon_apps).
    via: str | None = None

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
