"""An in-memory unit of work: every port of ghostpost.services.ports over plain dicts.

It lets service tests run the real use cases in milliseconds (tests/unit/services). It
mirrors the SQL repositories (ghostpost/db), and tests/integration/test_memory_contract.py
runs the same repository scenarios against both so the two cannot drift apart:

- a unit of work works on a copy of the committed state taken when it begins (rows are frozen
  dataclasses, so copying the tables' dicts is enough); `commit` publishes the copy, and
  leaving without a commit drops it: a service that raises leaves nothing behind;
- two write units that overlap would both hold SQLite's write lock; here the second commit
  raises ConcurrentCommit instead of silently dropping the first one's writes;
- ids count up per table; list results have the SQL queries' order; the unique constraints
  services rely on (email, principal link, handle, client id, token hash, idempotency key,
  public id) raise UniqueViolation where SQL raises IntegrityError;
- a read-only unit refuses writes (ReadOnlyViolation), as PostgreSQL's READ ONLY does;
- the ledger chains with ghostpost.domain.ledger exactly as SqlLedger does, so the same
  appends give the same hashes and a ledger built here verifies;
- JSON columns (decisions, changes, session data, response bodies) go through JSON, so a
  value SQL cannot store fails here too, and reads hand out copies.

Foreign keys are not enforced (the services check existence before they refer to a row).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from ghostpost.db.repositories.changes import PostChanges, WindowChanges
from ghostpost.domain.checkpoint import Checkpoint, NotaryAlarm, NotaryState, TreeState
from ghostpost.domain.guards import PrincipalGuards
from ghostpost.domain.ledger import (
    GENESIS_HASH,
    CanonicalData,
    LedgerEntry,
    LedgerTag,
    canonical_json,
    chain_entry,
)
from ghostpost.domain.media_rules import CleanImage, MediaUpload, PostImage
from ghostpost.domain.model import (
    Account,
    ApiClient,
    ApiToken,
    ClientStanding,
    DuePost,
    IdempotencyRecord,
    MastodonApp,
    MastodonAuthCode,
    MastodonToken,
    NewPost,
    Post,
    Principal,
    ProposalStatus,
    Role,
    User,
    Window,
    WindowProposal,
)
from ghostpost.domain.notifications import NotificationKind, OutgoingMail, SentNotification
from ghostpost.domain.policy import (
    PostKind,
    ReminderMode,
    ReplyPolicy,
    TagMode,
    TagPosition,
    WindowKind,
    WindowPolicy,
    decision_summary,
)
from ghostpost.domain.sessions import WebSession
from ghostpost.domain.states import PostState
from ghostpost.services.context import UnitOfWorkFactory
from ghostpost.services.ledger_integrity import NotaryStore
from ghostpost.services.ports import (
    AccountRepository,
    ApiClientRepository,
    ApiTokenRepository,
    AssignmentRepository,
    ClaimView,
    ClientSubmission,
    ExportReader,
    ExportScope,
    GuardRepository,
    IdempotencyKeyRepository,
    Ledger,
    MastodonAppRepository,
    MediaRepository,
    MisfiledEntry,
    NotificationRepository,
    PostRepository,
    PrincipalRepository,
    SealedSecrets,
    SubmissionReader,
    TokenFacts,
    TransparencyLog,
    UnitOfWork,
    UserRepository,
    WebSessionRepository,
    WindowRepository,
    WithdrawnGrant,
)


class UniqueViolation(Exception):
    """A write broke a unique constraint (where SQL raises IntegrityError)."""


class ReadOnlyViolation(Exception):
    """A read-only unit of work was asked to write (PostgreSQL's READ ONLY refuses it too)."""


class ConcurrentCommit(Exception):
    """Another unit of work committed after this one began: on SQL the two would have been
    serialised by the write lock; here the later one's writes would silently erase the other's."""


def format_timestamp(at: datetime) -> str:
    """A ledger time as SqlLedger renders it: RFC 3339, UTC, microseconds, 'Z'."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(value: Any) -> Any:
    """What the UTCDateTime column does: refuse naive times, keep aware ones as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)
    return value


def _json(value: Any) -> Any:
    """Round-trip through JSON, as a JSON column stores and reads back."""
    return json.loads(json.dumps(value))


def _bookkeeping_now() -> datetime:
    # As the SQL repositories: created_at/updated_at of rows are bookkeeping, not decisions.
    return datetime.now(UTC)


# --- rows: the domain records plus the columns the records do not carry ----------------------


@dataclass(frozen=True)
class _AccountRow:
    account: Account
    credentials: str | None = None
    connected_at: datetime | None = None


@dataclass(frozen=True)
class _UserRow:
    user: User
    password_hash: str
    totp_secret: str | None = None
    totp_last_step: int | None = None


@dataclass(frozen=True)
class _PostRow:
    post: Post
    updated_at: datetime


@dataclass(frozen=True)
class _ClientRow:
    client: ApiClient
    secret_hash: str


@dataclass(frozen=True)
class _TokenRow:
    token: ApiToken
    token_hash: str


@dataclass(frozen=True)
class _EntryRow:
    entry: LedgerEntry
    #: The entry's data as stored: its canonical JSON text.
    data_text: str


@dataclass
class MemoryState:
    """The tables. A unit of work changes a copy (`copy`); rows are never mutated in place."""

    last_ids: dict[str, int] = field(default_factory=dict)
    principals: dict[int, Principal] = field(default_factory=dict)
    accounts: dict[int, _AccountRow] = field(default_factory=dict)
    users: dict[int, _UserRow] = field(default_factory=dict)
    assignments: set[tuple[int, int]] = field(default_factory=set)
    windows: dict[int, Window] = field(default_factory=dict)
    proposals: dict[int, WindowProposal] = field(default_factory=dict)
    posts: dict[int, _PostRow] = field(default_factory=dict)
    ledger: list[_EntryRow] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    clients: dict[int, _ClientRow] = field(default_factory=dict)
    tokens: dict[int, _TokenRow] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    web_sessions: dict[str, WebSession] = field(default_factory=dict)
    #: Mastodon apps, codes and tokens, each with its hash.
    mastodon_apps: dict[int, tuple[MastodonApp, str]] = field(default_factory=dict)
    mastodon_codes: dict[int, tuple[MastodonAuthCode, str]] = field(default_factory=dict)
    mastodon_tokens: dict[int, tuple[MastodonToken, str]] = field(default_factory=dict)
    #: Uploads by id; the images of each post by post id, in order.
    uploads: dict[int, MediaUpload] = field(default_factory=dict)
    post_images: dict[int, tuple[PostImage, ...]] = field(default_factory=dict)
    guards: dict[int, PrincipalGuards] = field(default_factory=dict)
    account_hashtags: set[tuple[int, str]] = field(default_factory=set)
    #: The email outbox (rows as dicts, by id) and each (user, kind) choice.
    notifications: dict[int, dict[str, Any]] = field(default_factory=dict)
    notification_prefs: dict[tuple[int, str], bool] = field(default_factory=dict)

    def copy(self) -> MemoryState:
        """Return a copy whose tables can change without touching this one."""
        return MemoryState(
            last_ids=dict(self.last_ids),
            principals=dict(self.principals),
            accounts=dict(self.accounts),
            users=dict(self.users),
            assignments=set(self.assignments),
            windows=dict(self.windows),
            proposals=dict(self.proposals),
            posts=dict(self.posts),
            ledger=list(self.ledger),
            checkpoints=list(self.checkpoints),
            clients=dict(self.clients),
            tokens=dict(self.tokens),
            idempotency=dict(self.idempotency),
            web_sessions=dict(self.web_sessions),
            mastodon_apps=dict(self.mastodon_apps),
            mastodon_codes=dict(self.mastodon_codes),
            mastodon_tokens=dict(self.mastodon_tokens),
            uploads=dict(self.uploads),
            post_images=dict(self.post_images),
            guards=dict(self.guards),
            account_hashtags=set(self.account_hashtags),
            notifications=dict(self.notifications),
            notification_prefs=dict(self.notification_prefs),
        )

    def next_id(self, table: str) -> int:
        self.last_ids[table] = self.last_ids.get(table, 0) + 1
        return self.last_ids[table]


class MemoryDatabase:
    """The committed state, and how many commits made it (to detect overlapping writers)."""

    def __init__(self) -> None:
        self.state = MemoryState()
        self.version = 0


class _Transaction:
    """What a unit's repositories share: the working copy and whether it may be written."""

    def __init__(self, database: MemoryDatabase, read_only: bool) -> None:
        self.database = database
        self.read_only = read_only
        self.begin()

    def begin(self) -> None:
        self.state = self.database.state.copy()
        self.version = self.database.version
        self.dirty = False

    def writes(self) -> MemoryState:
        """The working copy, to change (refused in a read-only unit)."""
        if self.read_only:
            raise ReadOnlyViolation("cannot write in a read-only unit of work")
        self.dirty = True
        return self.state

    def commit(self) -> None:
        if self.dirty:
            if self.database.version != self.version:
                raise ConcurrentCommit("another unit of work committed since this one began")
            self.database.state = self.state
            self.database.version += 1
        self.begin()


def _unique(taken: bool, what: str) -> None:
    if taken:
        raise UniqueViolation(what)


# --- repositories ----------------------------------------------------------------------------


class MemoryGuards:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def of(self, principal_id: int) -> PrincipalGuards:
        return self.tx.state.guards.get(principal_id, PrincipalGuards())

    def set(self, principal_id: int, guards: PrincipalGuards, at: datetime) -> None:
        self.tx.writes().guards[principal_id] = guards

    def used_hashtags(self, account_id: int, names: Collection[str]) -> frozenset[str]:
        return frozenset(n for n in names if (account_id, n) in self.tx.state.account_hashtags)

    def record_used(self, account_id: int, names: Collection[str], at: datetime) -> None:
        self.tx.writes().account_hashtags.update((account_id, n) for n in names)


class MemoryPrincipals:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add(self, name: str) -> Principal:
        state = self.tx.writes()
        _unique(any(p.name == name for p in state.principals.values()), "principals.name")
        principal = Principal(id=state.next_id("principals"), name=name)
        state.principals[principal.id] = principal
        return principal

    def get(self, principal_id: int) -> Principal | None:
        return self.tx.state.principals.get(principal_id)

    def by_name(self, name: str) -> Principal | None:
        return next((p for p in self.tx.state.principals.values() if p.name == name), None)

    def list(self) -> list[Principal]:
        return sorted(self.tx.state.principals.values(), key=lambda p: p.name)


def _account(row: _AccountRow) -> Account:
    account = row.account
    connected = account.platform == "local" or row.credentials is not None
    return replace(account, connected=connected)


class MemoryAccounts:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add(
        self,
        *,
        principal_id: int,
        platform: str,
        handle: str,
        max_chars: int | None,
        url_length: int | None,
    ) -> Account:
        state = self.tx.writes()
        _unique(
            any(
                (r.account.platform, r.account.handle) == (platform, handle)
                for r in state.accounts.values()
            ),
            "accounts.platform, handle",
        )
        account = Account(
            id=state.next_id("accounts"),
            principal_id=principal_id,
            platform=platform,
            handle=handle,
            max_chars=max_chars,
            url_length=url_length,
        )
        row = _AccountRow(account)
        state.accounts[account.id] = row
        return _account(row)

    def get(self, account_id: int) -> Account | None:
        row = self.tx.state.accounts.get(account_id)
        return _account(row) if row else None

    def store_connection(
        self,
        account_id: int,
        *,
        remote_id: str | None,
        base_url: str | None,
        sealed_credentials: str | None,
        max_chars: int | None,
        url_length: int | None,
        connected_at: datetime | None,
    ) -> Account:
        state = self.tx.writes()
        old = state.accounts[account_id]
        row = _AccountRow(
            replace(
                old.account,
                remote_id=remote_id,
                base_url=base_url,
                max_chars=max_chars,
                url_length=url_length,
            ),
            credentials=sealed_credentials,
            connected_at=_utc(connected_at),
        )
        state.accounts[account_id] = row
        return _account(row)

    def by_handle(self, platform: str, handle: str) -> Account | None:
        for row in self.tx.state.accounts.values():
            if (row.account.platform, row.account.handle) == (platform, handle):
                return _account(row)
        return None

    def list(self) -> list[Account]:
        return [_account(r) for _, r in sorted(self.tx.state.accounts.items())]

    def lock(self, account_id: int) -> None:
        """One unit writes at a time here (see ConcurrentCommit): nothing to hold."""

    def try_lock(self, account_id: int) -> bool:
        return True


def _user(row: _UserRow) -> User:
    return replace(row.user, totp_enabled=row.totp_secret is not None)


class MemoryUsers:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def _check_principal_free(
        self, state: MemoryState, user_id: int, principal_id: int | None
    ) -> None:
        if principal_id is None:
            return
        _unique(
            any(
                r.user.principal_id == principal_id and r.user.id != user_id
                for r in state.users.values()
            ),
            "users.principal_id",
        )

    def add(
        self, *, email: str, name: str, role: Role, password_hash: str, principal_id: int | None
    ) -> User:
        state = self.tx.writes()
        _unique(any(r.user.email == email for r in state.users.values()), "users.email")
        self._check_principal_free(state, 0, principal_id)
        user = User(
            id=state.next_id("users"),
            email=email,
            name=name,
            role=Role(role),
            principal_id=principal_id,
            is_active=True,
        )
        row = _UserRow(user, password_hash)
        state.users[user.id] = row
        return _user(row)

    def get(self, user_id: int) -> User | None:
        row = self.tx.state.users.get(user_id)
        return _user(row) if row else None

    def by_email(self, email: str) -> User | None:
        wanted = email.lower()
        return next(
            (_user(r) for r in self.tx.state.users.values() if r.user.email == wanted), None
        )

    def password_hash(self, user_id: int) -> str | None:
        row = self.tx.state.users.get(user_id)
        return row.password_hash if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        state = self.tx.writes()
        state.users[user_id] = replace(state.users[user_id], password_hash=password_hash)

    def list(self) -> list[User]:
        return [_user(r) for r in sorted(self.tx.state.users.values(), key=lambda r: r.user.name)]

    def set_active(self, user_id: int, active: bool) -> User:
        state = self.tx.writes()
        row = state.users[user_id]
        row = state.users[user_id] = replace(row, user=replace(row.user, is_active=active))
        return _user(row)

    def set_time_zone(self, user_id: int, time_zone: str | None) -> User:
        state = self.tx.writes()
        row = state.users[user_id]
        row = state.users[user_id] = replace(row, user=replace(row.user, time_zone=time_zone))
        return _user(row)

    def linked_to_principal(self, principal_id: int) -> User | None:
        return next(
            (_user(r) for r in self.tx.state.users.values() if r.user.principal_id == principal_id),
            None,
        )

    def set_principal(self, user_id: int, principal_id: int | None) -> User:
        state = self.tx.writes()
        self._check_principal_free(state, user_id, principal_id)
        row = state.users[user_id]
        row = state.users[user_id] = replace(row, user=replace(row.user, principal_id=principal_id))
        return _user(row)

    def totp(self, user_id: int) -> tuple[str | None, int | None]:
        row = self.tx.state.users.get(user_id)
        return (row.totp_secret, row.totp_last_step) if row else (None, None)

    def set_totp(self, user_id: int, sealed_secret: str | None, last_step: int | None) -> None:
        state = self.tx.writes()
        state.users[user_id] = replace(
            state.users[user_id], totp_secret=sealed_secret, totp_last_step=last_step
        )

    def advance_totp_step(self, user_id: int, step: int) -> bool:
        state = self.tx.writes()
        row = state.users.get(user_id)
        if row is None or row.totp_secret is None:
            return False
        if row.totp_last_step is not None and row.totp_last_step >= step:
            return False
        state.users[user_id] = replace(row, totp_last_step=step)
        return True


class MemoryAssignments:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add(self, user_id: int, account_id: int) -> None:
        state = self.tx.writes()
        _unique((user_id, account_id) in state.assignments, "assignments primary key")
        state.assignments.add((user_id, account_id))

    def exists(self, user_id: int, account_id: int) -> bool:
        return (user_id, account_id) in self.tx.state.assignments

    def accounts_of(self, user_id: int) -> list[int]:
        return sorted(a for u, a in self.tx.state.assignments if u == user_id)

    def users_of(self, account_id: int) -> list[int]:
        return sorted(u for u, a in self.tx.state.assignments if a == account_id)

    def remove(self, user_id: int, account_id: int) -> None:
        if (user_id, account_id) in self.tx.state.assignments:
            self.tx.writes().assignments.discard((user_id, account_id))


#: The window columns that live in its WindowPolicy, and the enum each typed one is read as.
_POLICY_TYPES: dict[str, Callable[[Any], Any] | None] = {
    "starts_at": None,
    "ends_at": None,
    "notice_text": None,
    "reminder_text": None,
    "reminder_every": None,
    "reminder_mode": ReminderMode,
    "tag": None,
    "tag_mode": TagMode,
    "tag_position": TagPosition,
    "requires_approval": None,
    "alt_text_required": None,
    "tag_every_part": None,
    "reason": None,
    "kind": WindowKind,
    "reply_policy": ReplyPolicy,
}


class MemoryWindows(WindowChanges):
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add(
        self,
        *,
        account_id: int,
        name: str,
        policy: WindowPolicy,
        created_by: int,
        notice_publish_at: datetime | None = None,
    ) -> Window:
        state = self.tx.writes()
        window = Window(
            id=state.next_id("windows"),
            account_id=account_id,
            name=name,
            policy=replace(policy, starts_at=_utc(policy.starts_at), ends_at=_utc(policy.ends_at)),
            created_by=created_by,
            notice_publish_at=_utc(notice_publish_at),
        )
        state.windows[window.id] = window
        return window

    def get(self, window_id: int) -> Window | None:
        return self.tx.state.windows.get(window_id)

    def covering(self, account_id: int, at: datetime) -> Window | None:
        return next(
            (
                w
                for _, w in sorted(self.tx.state.windows.items())
                if w.account_id == account_id and w.policy.starts_at <= at < w.policy.ends_at
            ),
            None,
        )

    def overlaps(
        self,
        account_id: int,
        starts_at: datetime,
        ends_at: datetime,
        exclude_window_id: int | None = None,
    ) -> bool:
        return any(
            w.account_id == account_id
            and w.policy.starts_at < ends_at
            and w.policy.ends_at > starts_at
            and w.id != exclude_window_id
            for w in self.tx.state.windows.values()
        )

    def _change(self, window_id: int, **changes: Any) -> Window:
        state = self.tx.writes()
        window = state.windows[window_id]
        policy_changes: dict[str, Any] = {}
        window_changes: dict[str, Any] = {}
        for key, value in changes.items():
            if key in _POLICY_TYPES:
                typed = _POLICY_TYPES[key]
                policy_changes[key] = _utc(typed(value) if typed is not None else value)
            else:
                window_changes[key] = _utc(value)
        window = replace(window, policy=replace(window.policy, **policy_changes), **window_changes)
        state.windows[window_id] = window
        return window

    def list_for_account(self, account_id: int) -> list[Window]:
        found = [w for w in self.tx.state.windows.values() if w.account_id == account_id]
        return sorted(found, key=lambda w: (w.policy.starts_at, w.id))

    def list_for_accounts(self, account_ids: Collection[int]) -> list[Window]:
        found = [w for w in self.tx.state.windows.values() if w.account_id in set(account_ids)]
        return sorted(found, key=lambda w: (w.policy.starts_at, w.id), reverse=True)

    def notices_awaiting_approval(
        self, account_ids: Collection[int], now: datetime
    ) -> list[Window]:
        posts = self.tx.state.posts
        found = [
            w
            for w in self.tx.state.windows.values()
            if w.account_id in set(account_ids)
            and w.notice_approved_at is None
            and w.notice_rejected_at is None
            and w.policy.ends_at > now
            and w.notice_post_id in posts
            and posts[w.notice_post_id].post.state is PostState.PENDING_APPROVAL
        ]
        return sorted(found, key=lambda w: (w.policy.starts_at, w.id))

    def add_proposal(
        self,
        *,
        window_id: int,
        proposed_by: int,
        proposed_at: datetime,
        changes: Mapping[str, Mapping[str, Any]],
    ) -> WindowProposal:
        state = self.tx.writes()
        proposal = WindowProposal(
            id=state.next_id("window_proposals"),
            window_id=window_id,
            proposed_by=proposed_by,
            proposed_at=_utc(proposed_at),
            changes=_json({k: dict(v) for k, v in changes.items()}),
            status=ProposalStatus.PENDING,
        )
        state.proposals[proposal.id] = proposal
        return replace(proposal, changes=_json(proposal.changes))

    def get_proposal(self, proposal_id: int) -> WindowProposal | None:
        found = self.tx.state.proposals.get(proposal_id)
        return replace(found, changes=_json(found.changes)) if found else None

    def proposals_of(self, window_id: int) -> list[WindowProposal]:
        found = [p for p in self.tx.state.proposals.values() if p.window_id == window_id]
        return [replace(p, changes=_json(p.changes)) for p in sorted(found, key=lambda p: -p.id)]

    def pending_proposals(self, account_ids: Collection[int]) -> list[WindowProposal]:
        windows = self.tx.state.windows
        found = [
            p
            for p in self.tx.state.proposals.values()
            if p.status is ProposalStatus.PENDING
            and p.window_id in windows
            and windows[p.window_id].account_id in set(account_ids)
        ]
        found.sort(key=lambda p: (p.proposed_at, p.id))
        return [replace(p, changes=_json(p.changes)) for p in found]

    def decide_proposal(
        self,
        proposal_id: int,
        *,
        status: ProposalStatus,
        decided_by: int | None,
        decided_at: datetime,
        comment: str | None,
    ) -> WindowProposal:
        state = self.tx.writes()
        proposal = replace(
            state.proposals[proposal_id],
            status=ProposalStatus(status),
            decided_by=decided_by,
            decided_at=_utc(decided_at),
            comment=comment,
        )
        state.proposals[proposal_id] = proposal
        return replace(proposal, changes=_json(proposal.changes))


#: Queue order of SqlPosts.search: what needs a person first, then what waits, then the rest.
_ATTENTION_RANK = {
    PostState.FAILED: 0,
    PostState.HELD: 1,
    PostState.PENDING_APPROVAL: 2,
    PostState.PUBLISHING: 3,
    PostState.SCHEDULED: 4,
    PostState.PUBLISHED: 5,
    PostState.REFUSED: 6,
    PostState.CANCELLED: 6,
}
_DONE_RANK = 5
#: Where SQLite sorts NULL in an ascending order (first); PostgreSQL sorts it last. The
#: services never store a post without publish_at, so the difference never shows.
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _post(row: _PostRow) -> Post:
    return replace(row.post, decisions=_json(row.post.decisions))


class MemoryPosts(PostChanges):
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def _all(self) -> list[Post]:
        return [_post(row) for _, row in sorted(self.tx.state.posts.items())]

    def add(self, post: NewPost) -> Post:
        state = self.tx.writes()
        _unique(
            any(r.post.public_id == post.public_id for r in state.posts.values()),
            "posts.public_id",
        )
        _unique(
            any(r.post.idempotency_key == post.idempotency_key for r in state.posts.values()),
            "posts.idempotency_key",
        )
        values = {f.name: _utc(getattr(post, f.name)) for f in fields(post)}
        values["decisions"] = _json(post.decisions)
        stored = Post(id=state.next_id("posts"), **values)
        state.posts[stored.id] = _PostRow(stored, updated_at=stored.created_at)
        return _post(state.posts[stored.id])

    def get(self, post_id: int) -> Post | None:
        row = self.tx.state.posts.get(post_id)
        return _post(row) if row else None

    def by_public_id(self, public_id: str) -> Post | None:
        return next(
            (_post(r) for r in self.tx.state.posts.values() if r.post.public_id == public_id),
            None,
        )

    def by_public_ids(self, public_ids: Collection[str]) -> list[Post]:
        wanted = set(public_ids)
        rows = sorted(self.tx.state.posts.values(), key=lambda r: r.post.id)
        return [_post(r) for r in rows if r.post.public_id in wanted]

    def in_group(self, group_id: str) -> list[Post]:
        return [
            _post(row)
            for _, row in sorted(self.tx.state.posts.items())
            if row.post.group_id == group_id
        ]

    def in_thread(self, thread_id: str) -> list[Post]:
        rows = self.tx.state.posts.values()
        parts = [_post(row) for row in rows if row.post.thread_id == thread_id]
        return sorted(parts, key=lambda post: post.thread_position or 0)

    def by_platform_post_id(self, platform: str, platform_post_id: str) -> list[Post]:
        accounts = self.tx.state.accounts
        return [
            p
            for p in self._all()
            if p.platform_post_id == platform_post_id
            and p.account_id in accounts
            and accounts[p.account_id].account.platform == platform
        ]

    def _thread_in_progress(self, account_id: int) -> Post | None:
        by_id = {p.id: p for p in self._all()}
        open_states = (PostState.SCHEDULED, PostState.PENDING_APPROVAL, PostState.PUBLISHING)
        for post in by_id.values():
            previous = by_id.get(post.reply_to_post_id or 0)
            if (
                post.account_id == account_id
                and post.thread_id is not None
                and post.state in open_states
                and previous is not None
                and previous.thread_id == post.thread_id
                and previous.state is PostState.PUBLISHED
            ):
                return post
        return None

    def next_part(self, post: Post) -> Post | None:
        if post.thread_id is None:
            return None
        return next(
            (
                p
                for p in self._all()
                if p.thread_id == post.thread_id and p.reply_to_post_id == post.id
            ),
            None,
        )

    def _change(self, post_id: int, **changes: Any) -> Post:
        state = self.tx.writes()
        typed = {key: PostState(v) if key == "state" else v for key, v in changes.items()}
        if "decisions" in typed:
            typed["decisions"] = _json(typed["decisions"])
        post = replace(state.posts[post_id].post, **{k: _utc(v) for k, v in typed.items()})
        state.posts[post_id] = _PostRow(post, updated_at=_bookkeeping_now())
        return _post(state.posts[post_id])

    def _due(self, now: datetime, limit: int, skip_accounts: set[int]) -> list[DuePost]:
        found = [
            p
            for p in self._all()
            if p.state is PostState.SCHEDULED
            and (p.publish_at is None or p.publish_at <= now)
            and p.account_id not in skip_accounts
        ]
        found.sort(key=lambda p: (p.publish_at or _EARLIEST, p.id))
        return [DuePost(p.id, p.account_id, p.next_attempt_at) for p in found[:limit]]

    def _publishing_account_ids(self) -> set[int]:
        return {p.account_id for p in self._all() if p.state is PostState.PUBLISHING}

    def due_on_idle_accounts(self, now: datetime, limit: int) -> list[DuePost]:
        return self._due(now, limit, self._publishing_account_ids())

    def claim_view(self, post_id: int, at: datetime) -> ClaimView | None:
        # As the SQL read's parts: each the answer of the repository asked it one by one.
        post = self.get(post_id)
        account = MemoryAccounts(self.tx).get(post.account_id) if post else None
        if post is None or account is None:
            return None
        in_progress = self._thread_in_progress(post.account_id)
        reminder = self._pending_reminder_for(post.id)
        windows = MemoryWindows(self.tx)
        kind, _, client_id = post.submitter.partition(":")
        return ClaimView(
            post=post,
            account=account,
            account_busy=post.account_id in self._publishing_account_ids(),
            thread_in_progress_id=None if in_progress is None else in_progress.id,
            pending_reminder_id=None if reminder is None else reminder.id,
            own_window=windows.get(post.window_id) if post.window_id is not None else None,
            covering_window=windows.covering(post.account_id, at),
            author=MemoryUsers(self.tx).get(post.author_id),
            author_assigned=MemoryAssignments(self.tx).exists(post.author_id, post.account_id),
            client=(
                MemoryApiClients(self.tx).standing(client_id)
                if kind == "client" and client_id
                else None
            ),
            has_images=bool(MemoryMedia(self.tx).images_of(post.id)),
        )

    def stale_publishing(self, now: datetime) -> list[Post]:
        return [
            p
            for p in self._all()
            if p.state is PostState.PUBLISHING and (p.lease_until is None or p.lease_until < now)
        ]

    def any_claimable(self, now: datetime) -> bool:
        return bool(self.due_on_idle_accounts(now, 1) or self.waiting_in_ended_windows(now))

    def any_stale(self, now: datetime) -> bool:
        return bool(self.stale_publishing(now) or self.stale_deletions(now))

    def stale_deletions(self, now: datetime) -> list[Post]:
        return [
            p
            for p in self._all()
            if p.is_being_deleted and (p.lease_until is None or p.lease_until < now)
        ]

    def _pending_reminder_for(self, post_id: int) -> Post | None:
        return next(
            (
                p
                for p in self._all()
                if p.precedes_post_id == post_id
                and p.kind is PostKind.REMINDER
                and p.state is PostState.SCHEDULED
            ),
            None,
        )

    def waiting_in_ended_windows(self, now: datetime) -> list[Post]:
        windows = self.tx.state.windows
        return [
            p
            for p in self._all()
            if p.state in (PostState.HELD, PostState.PENDING_APPROVAL)
            and p.window_id in windows
            and windows[p.window_id].policy.ends_at <= now
        ]

    def any_waiting_in_ended_windows(self, now: datetime) -> bool:
        return bool(self.waiting_in_ended_windows(now))

    def held_in_window(self, window_id: int) -> list[Post]:
        found = [p for p in self._all() if p.window_id == window_id and p.state is PostState.HELD]
        return sorted(found, key=lambda p: (p.publish_at or _EARLIEST, p.id))

    def waiting_regular(
        self,
        *,
        author_id: int | None = None,
        account_id: int | None = None,
        submitters: Collection[str] | None = None,
    ) -> list[Post]:
        waiting = (PostState.SCHEDULED, PostState.PENDING_APPROVAL, PostState.HELD)
        return [
            p
            for p in self._all()
            if p.kind is PostKind.REGULAR
            and p.state in waiting
            and (author_id is None or p.author_id == author_id)
            and (account_id is None or p.account_id == account_id)
            and (submitters is None or p.submitter in set(submitters))
        ]

    def list_for_account(self, account_id: int) -> list[Post]:
        return [p for p in self._all() if p.account_id == account_id]

    def published_timeline(
        self, account_id: int, starts_at: datetime, ends_at: datetime, also_post_id: int | None
    ) -> list[Post]:
        first_published: dict[str, int] = {}
        for row in self.tx.state.ledger:
            entry = row.entry
            if entry.tag == LedgerTag.POST_PUBLISHED:
                first_published.setdefault(entry.subject, entry.seq)
        found = [
            p
            for p in self._all()
            if p.account_id == account_id
            and p.state is PostState.PUBLISHED
            and (
                (p.published_at is not None and starts_at <= p.published_at < ends_at)
                or (bool(also_post_id) and p.id == also_post_id)
            )
        ]

        def order(post: Post) -> tuple[bool, int, datetime, int]:
            seq = first_published.get(f"post:{post.public_id}")
            # nulls last, then published_at (a published post has one), then id
            return (seq is None, seq or 0, post.published_at or _EARLIEST, post.id)

        return sorted(found, key=order)

    def _in_scope(
        self, post: Post, account_ids: Collection[int] | None, window_id: int | None
    ) -> bool:
        return (account_ids is None or post.account_id in set(account_ids)) and (
            window_id is None or post.window_id == window_id
        )

    def search(
        self,
        *,
        account_ids: Collection[int] | None,
        window_id: int | None,
        states: Collection[PostState] | None,
        offset: int,
        limit: int,
    ) -> list[Post]:
        updated = {i: r.updated_at for i, r in self.tx.state.posts.items()}
        found = [
            p
            for p in self._all()
            if self._in_scope(p, account_ids, window_id) and (states is None or p.state in states)
        ]

        def order(post: Post) -> tuple[int, bool, datetime, float, int]:
            rank = _ATTENTION_RANK[post.state]
            if rank >= _DONE_RANK:
                # Finished posts: the latest first (published_at, else last change), then id desc.
                moment = post.published_at or updated[post.id]
                return (rank, False, _EARLIEST, -moment.timestamp(), -post.id)
            # Waiting posts: the next one to go out first (no time: last), then id.
            return (rank, post.publish_at is None, post.publish_at or _EARLIEST, 0.0, post.id)

        found.sort(key=order)
        return found[offset : offset + limit]

    def count_by_state(
        self, *, account_ids: Collection[int] | None, window_id: int | None
    ) -> dict[PostState, int]:
        counts: dict[PostState, int] = {}
        for post in self._all():
            if self._in_scope(post, account_ids, window_id):
                counts[post.state] = counts.get(post.state, 0) + 1
        return counts

    def awaiting_approval(self, account_ids: Collection[int]) -> list[Post]:
        found = [
            p
            for p in self._all()
            if p.account_id in set(account_ids)
            and p.kind is PostKind.REGULAR
            and p.state is PostState.PENDING_APPROVAL
        ]
        return sorted(found, key=lambda p: (p.publish_at or _EARLIEST, p.id))

    def in_period(
        self,
        *,
        account_ids: Collection[int],
        states: Collection[PostState],
        starts_at: datetime,
        ends_at: datetime,
        limit: int,
    ) -> list[Post]:
        found = [
            (moment, p)
            for p in self._all()
            if p.account_id in set(account_ids)
            and p.state in set(states)
            and (moment := p.published_at or p.publish_at) is not None
            and starts_at <= moment < ends_at
        ]
        return [p for _, p in sorted(found, key=lambda pair: (pair[0], pair[1].id))][:limit]

    def page(
        self,
        *,
        account_ids: Collection[int],
        window_id: int | None,
        author_id: int | None,
        state: PostState | None,
        before_id: int | None,
        limit: int,
    ) -> list[Post]:
        found = [
            p
            for p in reversed(self._all())
            if self._in_scope(p, account_ids, window_id)
            and (author_id is None or p.author_id == author_id)
            and (state is None or p.state is state)
            and (before_id is None or p.id < before_id)
        ]
        return found[:limit]

    def feed(
        self,
        *,
        account_id: int,
        states: Collection[PostState],
        regular_only: bool,
        max_id: int | None,
        since_id: int | None,
        min_id: int | None,
        limit: int,
        live_only: bool = False,
    ) -> list[Post]:
        found = [
            p
            for p in reversed(self._all())
            if p.account_id == account_id
            and p.state in states
            and (not regular_only or p.kind is PostKind.REGULAR)
            and (max_id is None or p.id < max_id)
            and all(lower is None or p.id > lower for lower in (since_id, min_id))
            and not (live_only and p.deletion_requested_at is not None)
        ]
        return found[-limit:] if min_id is not None else found[:limit]


class MemoryIdempotencyKeys:
    """Single-threaded: a key is never held by a transaction still running (no KeyStillLocked)."""

    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        found = self.tx.state.idempotency.get((client_id, key))
        return replace(found, response_body=_json(found.response_body)) if found else None

    def claim(self, client_id: str, key: str, fingerprint: str, now: datetime) -> bool:
        return self.claim_or_get(client_id, key, fingerprint, now) is None

    def claim_or_get(
        self, client_id: str, key: str, fingerprint: str, now: datetime
    ) -> IdempotencyRecord | None:
        if (client_id, key) in self.tx.state.idempotency:
            return self.get(client_id, key)
        self.tx.writes().idempotency[(client_id, key)] = IdempotencyRecord(
            client_id=client_id,
            key=key,
            fingerprint=fingerprint,
            status="in_flight",
            created_at=_utc(now),
        )
        return None

    def complete(
        self, client_id: str, key: str, response_status: int, response_body: Mapping[str, Any]
    ) -> None:
        state = self.tx.writes()
        record = state.idempotency.get((client_id, key))
        assert record is not None and record.status == "in_flight"
        state.idempotency[(client_id, key)] = replace(
            record,
            status="completed",
            response_status=response_status,
            response_body=_json(dict(response_body)),
        )

    def purge(self, created_before: datetime) -> int:
        old = [k for k, r in self.tx.state.idempotency.items() if r.created_at < created_before]
        if old:
            state = self.tx.writes()
            for key in old:
                del state.idempotency[key]
        return len(old)


class MemoryApiClients:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add(
        self,
        *,
        client_id: str,
        secret_hash: str,
        name: str,
        owner_id: int,
        scopes: Collection[str],
        account_ids: Collection[int],
        default_author_id: int | None,
        author_ids: Collection[int],
        created_at: datetime,
    ) -> ApiClient:
        state = self.tx.writes()
        _unique(
            any(r.client.client_id == client_id for r in state.clients.values()),
            "oauth_clients.client_id",
        )
        client = ApiClient(
            id=state.next_id("oauth_clients"),
            client_id=client_id,
            name=name,
            owner_id=owner_id,
            scopes=frozenset(scopes),
            account_ids=frozenset(account_ids),
            default_author_id=default_author_id,
            is_active=True,
            author_ids=frozenset(author_ids),
        )
        state.clients[client.id] = _ClientRow(client, secret_hash)
        return client

    def set_authors(
        self, row_id: int, author_ids: Collection[int], default_author_id: int | None
    ) -> ApiClient:
        state = self.tx.writes()
        row = state.clients[row_id]
        client = replace(
            row.client, author_ids=frozenset(author_ids), default_author_id=default_author_id
        )
        state.clients[row_id] = replace(row, client=client)
        return client

    def get(self, row_id: int) -> ApiClient | None:
        row = self.tx.state.clients.get(row_id)
        return row.client if row else None

    def by_client_id(self, client_id: str) -> ApiClient | None:
        return next(
            (r.client for r in self.tx.state.clients.values() if r.client.client_id == client_id),
            None,
        )

    def standing(self, client_id: str) -> ClientStanding | None:
        client = self.by_client_id(client_id)
        if client is None:
            return None
        owner = self.tx.state.users.get(client.owner_id)
        return ClientStanding(
            client.name,
            client.is_active,
            client.owner_id,
            None if owner is None else owner.user.name,
            owner is not None and owner.user.is_active,
        )

    def secret_hash(self, client_id: str) -> str | None:
        return next(
            (
                r.secret_hash
                for r in self.tx.state.clients.values()
                if r.client.client_id == client_id
            ),
            None,
        )

    def list(self) -> list[ApiClient]:
        clients = [r.client for r in self.tx.state.clients.values()]
        return sorted(clients, key=lambda c: (c.name, c.id))

    def set_active(self, row_id: int, active: bool) -> ApiClient:
        state = self.tx.writes()
        row = state.clients[row_id]
        client = replace(row.client, is_active=active)
        state.clients[row_id] = replace(row, client=client)
        return client


class MemoryApiTokens:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add(
        self,
        *,
        token_hash: str,
        client_row_id: int,
        scopes: Collection[str],
        issued_at: datetime,
        expires_at: datetime,
    ) -> ApiToken:
        state = self.tx.writes()
        _unique(
            any(r.token_hash == token_hash for r in state.tokens.values()),
            "oauth_tokens.token_hash",
        )
        token = ApiToken(
            id=state.next_id("oauth_tokens"),
            client_row_id=client_row_id,
            scopes=frozenset(scopes),
            issued_at=_utc(issued_at),
            expires_at=_utc(expires_at),
        )
        state.tokens[token.id] = _TokenRow(token, token_hash)
        return token

    def by_hash(self, token_hash: str) -> ApiToken | None:
        return next(
            (r.token for r in self.tx.state.tokens.values() if r.token_hash == token_hash), None
        )

    def revoke(self, token_id: int, at: datetime) -> None:
        row = self.tx.state.tokens.get(token_id)
        if row is not None and row.token.revoked_at is None:
            token = replace(row.token, revoked_at=_utc(at))
            self.tx.writes().tokens[token_id] = replace(row, token=token)

    def revoke_all(self, client_row_id: int, at: datetime) -> int:
        live = [
            (i, r)
            for i, r in self.tx.state.tokens.items()
            if r.token.client_row_id == client_row_id and r.token.revoked_at is None
        ]
        if live:
            state = self.tx.writes()
            for token_id, row in live:
                state.tokens[token_id] = replace(row, token=replace(row.token, revoked_at=_utc(at)))
        return len(live)

    def purge_expired(self, client_row_id: int, expired_before: datetime) -> int:
        old = [
            i
            for i, r in self.tx.state.tokens.items()
            if r.token.client_row_id == client_row_id and r.token.expires_at < expired_before
        ]
        if old:
            state = self.tx.writes()
            for token_id in old:
                del state.tokens[token_id]
        return len(old)


class MemoryMastodonApps:
    """Implements ports.MastodonAppRepository (what SqlMastodonApps stores)."""

    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add_app(
        self,
        *,
        client_id: str,
        secret_hash: str,
        name: str,
        website: str | None,
        redirect_uris: Sequence[str],
        scopes: Collection[str],
        created_at: datetime,
    ) -> MastodonApp:
        state = self.tx.writes()
        _unique(
            any(a.client_id == client_id for a, _ in state.mastodon_apps.values()),
            "mastodon_apps.client_id",
        )
        app = MastodonApp(
            id=state.next_id("mastodon_apps"),
            client_id=client_id,
            name=name,
            website=website,
            redirect_uris=tuple(redirect_uris),
            scopes=frozenset(scopes),
            created_at=_utc(created_at),
        )
        state.mastodon_apps[app.id] = (app, secret_hash)
        return app

    def app(self, app_id: int) -> MastodonApp | None:
        found = self.tx.state.mastodon_apps.get(app_id)
        return found[0] if found else None

    def app_by_client_id(self, client_id: str) -> tuple[MastodonApp, str] | None:
        return next(
            (f for f in self.tx.state.mastodon_apps.values() if f[0].client_id == client_id), None
        )

    def add_code(
        self,
        *,
        code_hash: str,
        app_id: int,
        user_id: int,
        account_id: int,
        redirect_uri: str,
        scopes: Collection[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
        created_at: datetime,
        expires_at: datetime,
    ) -> MastodonAuthCode:
        state = self.tx.writes()
        code = MastodonAuthCode(
            id=state.next_id("mastodon_auth_codes"),
            app_id=app_id,
            user_id=user_id,
            account_id=account_id,
            redirect_uri=redirect_uri,
            scopes=frozenset(scopes),
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires_at=_utc(expires_at),
        )
        state.mastodon_codes[code.id] = (code, code_hash)
        return code

    def code_by_hash(self, code_hash: str) -> MastodonAuthCode | None:
        return next((c for c, h in self.tx.state.mastodon_codes.values() if h == code_hash), None)

    def use_code(self, code_id: int, at: datetime) -> bool:
        found = self.tx.state.mastodon_codes.get(code_id)
        if found is None or found[0].used_at is not None:
            return False
        self.tx.writes().mastodon_codes[code_id] = (replace(found[0], used_at=_utc(at)), found[1])
        return True

    def purge_codes(self, expired_before: datetime) -> int:
        old = [
            i for i, (c, _) in self.tx.state.mastodon_codes.items() if c.expires_at < expired_before
        ]
        if old:
            state = self.tx.writes()
            for code_id in old:
                del state.mastodon_codes[code_id]
        return len(old)

    def add_token(
        self,
        *,
        token_hash: str,
        app_id: int,
        user_id: int | None,
        account_id: int | None,
        scopes: Collection[str],
        created_at: datetime,
    ) -> MastodonToken:
        state = self.tx.writes()
        token = MastodonToken(
            id=state.next_id("mastodon_tokens"),
            app_id=app_id,
            user_id=user_id,
            account_id=account_id,
            scopes=frozenset(scopes),
            created_at=_utc(created_at),
        )
        state.mastodon_tokens[token.id] = (token, token_hash)
        return token

    def token_by_hash(self, token_hash: str) -> MastodonToken | None:
        return next((t for t, h in self.tx.state.mastodon_tokens.values() if h == token_hash), None)

    def token(self, token_id: int) -> MastodonToken | None:
        found = self.tx.state.mastodon_tokens.get(token_id)
        return found[0] if found else None

    def revoke_token(self, token_id: int, at: datetime) -> bool:
        found = self.tx.state.mastodon_tokens.get(token_id)
        if found is None or found[0].revoked_at is not None:
            return False
        revoked = replace(found[0], revoked_at=_utc(at))
        self.tx.writes().mastodon_tokens[token_id] = (revoked, found[1])
        return True

    def tokens_of_user(self, user_id: int) -> list[MastodonToken]:
        return sorted(
            (
                t
                for t, _ in self.tx.state.mastodon_tokens.values()
                if t.user_id == user_id and t.revoked_at is None
            ),
            key=lambda t: t.id,
        )

    def counts(self) -> tuple[int, int]:
        return len(self.tx.state.mastodon_codes), len(self.tx.state.mastodon_tokens)


class MemorySubmissions:
    """The API create's reads, answered from the tables (what SqlSubmissions joins)."""

    def __init__(self, tx: _Transaction, posts: MemoryPosts) -> None:
        self.tx = tx
        self._posts = posts

    def _owner_active(self, client: ApiClient) -> bool:
        owner = self.tx.state.users.get(client.owner_id)
        return owner is not None and owner.user.is_active

    def token(self, token_hash: str) -> TokenFacts | None:
        token = next((r for r in self.tx.state.tokens.values() if r.token_hash == token_hash), None)
        if token is None:
            return None
        client = self.tx.state.clients[token.token.client_row_id].client
        return TokenFacts(token=token.token, client=client, owner_active=self._owner_active(client))

    def add_post(
        self, post: NewPost, *, assigned_author: bool = False, client_id: str | None = None
    ) -> Post | WithdrawnGrant:
        # One transaction at a time here: the read the decision took is still current.
        return self._posts.add(post)

    def expect_client_read(
        self, client_id: str, account_id: int, author_email: str | None, at: datetime
    ) -> None:
        """A local read costs no round trip: nothing to save."""

    def for_client(
        self,
        client_id: str,
        account_id: int,
        author_email: str | None,
        at: datetime,
        *,
        same_as: ClientSubmission | None = None,
    ) -> ClientSubmission | None:
        state = self.tx.state
        row = next((r for r in state.clients.values() if r.client.client_id == client_id), None)
        if row is None or row.client.owner_id not in state.users:
            return None
        client = row.client
        account_row = state.accounts.get(account_id)
        if author_email is not None:
            author_row = next(
                (u for u in state.users.values() if u.user.email == author_email), None
            )
        else:
            author_row = state.users.get(client.default_author_id or 0)
        account = _account(account_row) if account_row else None
        author = _user(author_row) if author_row else None
        facts = ClientSubmission(
            client=client,
            owner_active=self._owner_active(client),
            account=account,
            author=author,
            author_assigned=(
                account is not None
                and author is not None
                and (author.id, account.id) in state.assignments
            ),
            window=MemoryWindows(self.tx).covering(account_id, at) if account else None,
            principal_name=(
                state.principals[account.principal_id].name
                if account is not None and account.principal_id in state.principals
                else None
            ),
            guards=state.guards.get(account.principal_id) if account is not None else None,
        )
        # No row here: the facts themselves are compared (every field but `source`).
        return same_as if same_as is not None and same_as == facts else facts


class MemoryLedger:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def append(
        self,
        *,
        tag: str,
        actor: str,
        subject: str,
        data: Mapping[str, Any] | CanonicalData,
        occurred_at: datetime,
    ) -> LedgerEntry:
        state = self.tx.writes()
        size, head_hash = self.head()
        text = data.text if isinstance(data, CanonicalData) else canonical_json(dict(data))
        entry = chain_entry(
            seq=size + 1,
            occurred_at=format_timestamp(occurred_at),
            tag=str(tag),
            actor=actor,
            subject=subject,
            data=json.loads(text),
            prev_hash=head_hash,
        )
        state.ledger.append(_EntryRow(entry, text))
        return self._copy(entry)

    @staticmethod
    def _copy(entry: LedgerEntry) -> LedgerEntry:
        return replace(entry, data=_json(entry.data))

    def head(self) -> tuple[int, str]:
        ledger = self.tx.state.ledger
        return (len(ledger), ledger[-1].entry.entry_hash) if ledger else (0, GENESIS_HASH)

    def entries(
        self, *, after_seq: int = 0, up_to_seq: int | None = None, snapshot: bool = False
    ) -> Iterator[LedgerEntry]:
        for row in list(self.tx.state.ledger[after_seq:]):
            if up_to_seq is not None and row.entry.seq > up_to_seq:
                return
            yield self._copy(row.entry)

    def entry(self, seq: int) -> LedgerEntry | None:
        ledger = self.tx.state.ledger
        return self._copy(ledger[seq - 1].entry) if 0 < seq <= len(ledger) else None

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
        state = self.tx.state
        posts = [r.post for r in state.posts.values()]
        subject_sets: list[set[str]] = []
        if account_ids is not None:
            ids = set(account_ids)
            subject_sets.append(
                {f"account:{i}" for i in ids}
                | {f"post:{p.public_id}" for p in posts if p.account_id in ids}
                | {f"window:{w.id}" for w in state.windows.values() if w.account_id in ids}
            )
        if window_id is not None:
            subject_sets.append(
                {f"window:{window_id}"}
                | {f"post:{p.public_id}" for p in posts if p.window_id == window_id}
            )
        if author_id is not None:
            subject_sets.append({f"post:{p.public_id}" for p in posts if p.author_id == author_id})
        found = [
            row.entry
            for row in state.ledger
            if all(row.entry.subject in subjects for subjects in subject_sets)
            and (tag is None or row.entry.tag == tag)
            and (subject is None or row.entry.subject == subject)
            and (occurred_from is None or row.entry.occurred_at >= occurred_from)
            and (occurred_before is None or row.entry.occurred_at < occurred_before)
            and (before_seq is None or row.entry.seq < before_seq)
            and (after_seq is None or row.entry.seq > after_seq)
        ]
        if not oldest_first:
            found.reverse()
        return [self._copy(e) for e in found[:limit]]

    def claim_notary(self) -> bool:
        return True

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.tx.writes().checkpoints.append(checkpoint)

    def latest_checkpoint(self) -> Checkpoint | None:
        checkpoints = self.tx.state.checkpoints
        return checkpoints[-1] if checkpoints else None

    def checkpoints(
        self, *, max_size: int | None = None, batch: int = 1000
    ) -> Iterator[Checkpoint]:
        for checkpoint in list(self.tx.state.checkpoints):
            if max_size is None or checkpoint.size <= max_size:
                yield checkpoint


#: The columns ExportReader.post_rows yields (ghostpost.db.exports.POST_COLUMNS).
POST_COLUMNS = (
    "id",
    "public_id",
    "account_id",
    "window_id",
    "kind",
    "state",
    "state_reason",
    "author_id",
    "submitter",
    "source",
    "final_text",
    "published_at",
    "platform_url",
    "approved_by",
    "approved_at",
    "created_at",
    "final_content_warning",
    "visibility",
    "deleted_at",
    "deletion_requested_by",
    "group_id",
    "decisions",  # replaced by its decision_summary
)
_ENUM_COLUMNS = {"kind", "state", "source"}


def _batched(rows: Sequence[tuple[Any, ...]], batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), batch):
        yield rows[start : start + batch]


class MemoryExports:
    def __init__(self, tx: _Transaction, posts: MemoryPosts) -> None:
        self.tx = tx
        self._posts = posts

    def use_snapshot(self) -> None:
        """A unit of work here always reads its own snapshot."""

    def misfiled_entries(self, scope: ExportScope, up_to_seq: int) -> list[MisfiledEntry]:
        """None: memory keeps no derived columns a raw write could move."""
        return []

    def _post_in_scope(self, post: Post, scope: ExportScope) -> bool:
        moment = post.published_at or post.created_at
        return (
            (scope.account_ids is None or post.account_id in scope.account_ids)
            and (scope.window_id is None or post.window_id == scope.window_id)
            and (scope.author_id is None or post.author_id == scope.author_id)
            and (scope.since is None or moment >= scope.since)
            and (scope.until is None or moment < scope.until)
        )

    def count_posts(self, scope: ExportScope) -> int:
        return sum(1 for _ in self.posts(scope, 1000))

    def posts(self, scope: ExportScope, batch: int) -> Iterator[Post]:
        return iter([p for p in self._posts._all() if self._post_in_scope(p, scope)])

    def post_rows(self, scope: ExportScope, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        rows = [
            (
                *(
                    getattr(p, name).value
                    if name in _ENUM_COLUMNS
                    else p.options.visibility
                    if name == "visibility"
                    else getattr(p, name)
                    for name in POST_COLUMNS[:-1]
                ),
                *decision_summary(p.decisions),
            )
            for p in self.posts(scope, batch)
        ]
        return _batched(rows, batch)

    def _entries_in_scope(self, scope: ExportScope, up_to_seq: int) -> list[_EntryRow]:
        state = self.tx.state
        by_subject = {f"post:{r.post.public_id}": r.post for r in state.posts.values()}
        named: set[str] = set()
        if scope.account_ids is not None:
            named = {f"account:{i}" for i in scope.account_ids} | {
                f"window:{w.id}"
                for w in state.windows.values()
                if w.account_id in scope.account_ids
            }
        since = format_timestamp(scope.since) if scope.since is not None else None
        until = format_timestamp(scope.until) if scope.until is not None else None
        found = []
        for row in state.ledger[:up_to_seq]:
            entry = row.entry
            post = by_subject.get(entry.subject)
            if scope.account_ids is not None and not (
                entry.subject in named
                or (post is not None and post.account_id in scope.account_ids)
            ):
                continue
            if scope.window_id is not None and not (
                entry.subject == f"window:{scope.window_id}"
                or (post is not None and post.window_id == scope.window_id)
            ):
                continue
            if scope.author_id is not None and not (
                post is not None and post.author_id == scope.author_id
            ):
                continue
            if since is not None and entry.occurred_at < since:
                continue
            if until is not None and entry.occurred_at >= until:
                continue
            found.append(row)
        return found

    def count_entries(self, scope: ExportScope, up_to_seq: int) -> int:
        return len(self._entries_in_scope(scope, up_to_seq))

    def entries(self, scope: ExportScope, up_to_seq: int, batch: int) -> Iterator[LedgerEntry]:
        return iter(
            [
                replace(r.entry, data=_json(r.entry.data))
                for r in self._entries_in_scope(scope, up_to_seq)
            ]
        )

    def entry_rows(
        self, scope: ExportScope, up_to_seq: int, batch: int
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        rows = [
            (
                e.seq,
                e.occurred_at,
                e.tag,
                e.actor,
                e.subject,
                r.data_text,
                e.prev_hash,
                e.entry_hash,
            )
            for r in self._entries_in_scope(scope, up_to_seq)
            for e in [r.entry]
        ]
        return _batched(rows, batch)

    def checkpoint_rows(self, up_to_size: int, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        rows = [
            (c.size, c.head_hash, c.signed_at, c.key_id, c.signature, c.kind)
            for c in self.checkpoints(up_to_size, batch)
        ]
        return _batched(rows, batch)

    def checkpoints(self, up_to_size: int, batch: int) -> Iterator[Checkpoint]:
        return iter([c for c in self.tx.state.checkpoints if c.size <= up_to_size])


class Resealer:
    """What MemorySealedSecrets needs to re-encrypt: the services' own sealing functions."""

    def __init__(
        self,
        active_key_id: Callable[[], str],
        key_id_of: Callable[[str], str],
        reseal_account: Callable[[Account, str], str],
    ) -> None:
        self.active_key_id = active_key_id
        self.key_id_of = key_id_of
        self.reseal_account = reseal_account


class MemorySealedSecrets:
    """Account credentials are the only sealed column here (no platform_apps table)."""

    def __init__(self, tx: _Transaction, resealer: Resealer | None) -> None:
        self.tx = tx
        self._resealer = resealer

    @property
    def active_key_id(self) -> str:
        return self._resealer.active_key_id() if self._resealer else "memory"

    def reseal_all(self) -> dict[str, int]:
        counts = {"accounts": 0, "platform_apps": 0}
        resealer = self._resealer
        if resealer is None:
            return counts
        for account_id, row in sorted(self.tx.state.accounts.items()):
            if row.credentials and resealer.key_id_of(row.credentials) != resealer.active_key_id():
                sealed = resealer.reseal_account(_account(row), row.credentials)
                self.tx.writes().accounts[account_id] = replace(row, credentials=sealed)
                counts["accounts"] += 1
        return counts


class MemoryWebSessions:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def get(self, session_id: str) -> WebSession | None:
        found = self.tx.state.web_sessions.get(session_id)
        return replace(found, data=_json(found.data)) if found else None

    def add(
        self, session_id: str, *, user_id: int | None, data: dict[str, Any], now: datetime
    ) -> None:
        state = self.tx.writes()
        _unique(session_id in state.web_sessions, "web_sessions primary key")
        state.web_sessions[session_id] = WebSession(
            id=session_id,
            user_id=user_id,
            data=_json(data),
            created_at=_utc(now),
            last_seen_at=_utc(now),
            revoked_at=None,
        )

    def _change_live(self, session_id: str, **changes: Any) -> None:
        # Never resurrects a revoked row (as the SQL UPDATE ... WHERE revoked_at IS NULL).
        found = self.tx.state.web_sessions.get(session_id)
        if found is not None and found.revoked_at is None:
            self.tx.writes().web_sessions[session_id] = replace(found, **changes)

    def save(
        self, session_id: str, *, user_id: int | None, data: dict[str, Any], now: datetime
    ) -> None:
        self._change_live(session_id, user_id=user_id, data=_json(data), last_seen_at=_utc(now))

    def touch(self, session_id: str, now: datetime) -> None:
        self._change_live(session_id, last_seen_at=_utc(now))

    def revoke(self, session_id: str, now: datetime) -> None:
        self._change_live(session_id, revoked_at=_utc(now))

    def revoke_for_user(self, user_id: int, now: datetime) -> int:
        live = [
            s.id
            for s in self.tx.state.web_sessions.values()
            if s.user_id == user_id and s.revoked_at is None
        ]
        for session_id in live:
            self._change_live(session_id, revoked_at=_utc(now))
        return len(live)

    def purge(
        self, *, revoked_before: datetime, seen_before: datetime, created_before: datetime
    ) -> int:
        dead = [
            s.id
            for s in self.tx.state.web_sessions.values()
            if (s.revoked_at is not None and s.revoked_at < revoked_before)
            or s.last_seen_at < seen_before
            or s.created_at < created_before
        ]
        if dead:
            state = self.tx.writes()
            for session_id in dead:
                del state.web_sessions[session_id]
        return len(dead)


class MemoryNotaryStore:
    """The notary's state, alarm and lock (ghostpost.audit.notary.FileNotaryStore keeps them in
    files on the notary's host); one process, so the lock is always free."""

    def __init__(self) -> None:
        self.state: NotaryState | None = None
        self.raised: NotaryAlarm | None = None
        self.cleared: list[NotaryAlarm] = []
        self.tree: TreeState | None = None

    def load(self) -> NotaryState | None:
        return self.state

    def load_tree(self) -> TreeState | None:
        return self.tree

    def save_tree(self, tree: TreeState | None) -> None:
        self.tree = tree

    def save(self, state: NotaryState) -> None:
        self.state = state

    def alarm(self) -> NotaryAlarm | None:
        return self.raised

    def raise_alarm(self, alarm: NotaryAlarm) -> None:
        self.raised = alarm

    def clear_alarm(self) -> None:
        if self.raised is not None:
            self.cleared.append(self.raised)
        self.raised = None

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        yield True


class MemoryNotifications:
    """ports.NotificationRepository over MemoryState (rows are replaced, never mutated)."""

    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def preferences(self, user_id: int) -> dict[str, bool]:
        prefs = self.tx.state.notification_prefs
        return {kind: on for (user, kind), on in prefs.items() if user == user_id}

    def set_preference(self, user_id: int, kind: str, enabled: bool) -> None:
        self.tx.writes().notification_prefs[(user_id, kind)] = enabled

    def add(
        self,
        *,
        user_id: int,
        kind: str,
        event_key: str,
        subject: str,
        body: str,
        link: str,
        at: datetime,
        status: str,
    ) -> bool:
        rows = self.tx.state.notifications.values()
        if any(r["user_id"] == user_id and r["event_key"] == event_key for r in rows):
            return False
        state = self.tx.writes()
        new_id = state.next_id("notifications")
        state.notifications[new_id] = {
            "id": new_id, "user_id": user_id, "kind": kind, "event_key": event_key,
            "subject": subject, "body": body, "link": link, "created_at": at,
            "status": status, "attempts": 0, "next_attempt_at": at, "claimed_by": None,
            "claimed_until": None, "last_error": None,
        }  # fmt: skip
        return True

    def has_due(self, now: datetime) -> bool:
        return any(
            r["status"] == "pending" and r["next_attempt_at"] <= now
            for r in self.tx.state.notifications.values()
        )

    def claim_due(
        self, now: datetime, worker_id: str, until: datetime, limit: int
    ) -> list[OutgoingMail]:
        claimed: list[OutgoingMail] = []
        for row in sorted(self.tx.state.notifications.values(), key=lambda r: r["id"]):
            lapsed = row["claimed_until"] is None or row["claimed_until"] < now
            if row["status"] != "pending" or row["next_attempt_at"] > now or not lapsed:
                continue
            if len(claimed) == limit:
                break
            self._replace(row["id"], claimed_by=worker_id, claimed_until=until)
            email = self.tx.state.users[row["user_id"]].user.email
            claimed.append(
                OutgoingMail(row["id"], email, row["subject"], row["body"], row["attempts"])
            )
        return claimed

    def _replace(self, notification_id: int, **values: Any) -> None:
        state = self.tx.writes()
        state.notifications[notification_id] = {**state.notifications[notification_id], **values}

    def _mine(self, notification_id: int, worker_id: str) -> dict[str, Any] | None:
        row = self.tx.state.notifications.get(notification_id)
        return row if row is not None and row["claimed_by"] == worker_id else None

    def mark_sent(self, notification_id: int, worker_id: str, at: datetime) -> None:
        row = self._mine(notification_id, worker_id)
        if row is not None:
            self._replace(
                notification_id, status="sent", attempts=row["attempts"] + 1,
                claimed_by=None, claimed_until=None, last_error=None,
            )  # fmt: skip

    def mark_failed(
        self, notification_id: int, worker_id: str, error: str, retry_at: datetime | None
    ) -> None:
        row = self._mine(notification_id, worker_id)
        if row is None:
            return
        moved = {"status": "failed"} if retry_at is None else {"next_attempt_at": retry_at}
        self._replace(
            notification_id, attempts=row["attempts"] + 1, claimed_by=None,
            claimed_until=None, last_error=error[:500], **moved,
        )  # fmt: skip

    def events_between(
        self, user_id: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, str, str]]:
        rows = sorted(self.tx.state.notifications.values(), key=lambda r: r["id"])
        return [
            (r["created_at"], r["subject"], r["link"])
            for r in rows
            if r["user_id"] == user_id
            and r["kind"] != "daily_digest"
            and start <= r["created_at"] < end
        ]

    def digest_recipients(self) -> list[int]:
        prefs = self.tx.state.notification_prefs
        users = self.tx.state.users
        return sorted(
            user
            for (user, kind), on in prefs.items()
            if kind == "daily_digest" and on and users[user].user.is_active
        )

    def recent(self, user_id: int, limit: int) -> list[SentNotification]:
        rows = sorted(self.tx.state.notifications.values(), key=lambda r: -r["id"])
        return [
            SentNotification(
                r["created_at"],
                NotificationKind(r["kind"]),
                r["subject"],
                r["link"],
                r["status"],
                r["last_error"],
            )
            for r in rows
            if r["user_id"] == user_id
        ][:limit]


class MemoryMedia:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx

    def add_upload(
        self,
        *,
        public_id: str,
        uploaded_by: str,
        image: CleanImage,
        alt_text: str,
        created_at: datetime,
    ) -> MediaUpload:
        state = self.tx.writes()
        _unique(
            any(u.public_id == public_id for u in state.uploads.values()),
            "media_uploads public_id",
        )
        upload = MediaUpload(
            id=state.next_id("media_uploads"),
            public_id=public_id,
            uploaded_by=uploaded_by,
            content_hash=image.content_hash,
            mime_type=image.mime_type,
            width=image.width,
            height=image.height,
            size=len(image.data),
            alt_text=alt_text,
            created_at=_utc(created_at),
        )
        state.uploads[upload.id] = upload
        return upload

    def get_upload(self, public_id: str) -> MediaUpload | None:
        return next((u for u in self.tx.state.uploads.values() if u.public_id == public_id), None)

    def set_alt_text(self, public_id: str, alt_text: str) -> MediaUpload:
        found = self.get_upload(public_id)
        assert found is not None
        changed = replace(found, alt_text=alt_text)
        self.tx.writes().uploads[found.id] = changed
        return changed

    def attach(
        self, post_id: int, uploads: Sequence[MediaUpload], *, claim: bool = True
    ) -> tuple[PostImage, ...]:
        from ghostpost.services.errors import Conflict

        state = self.tx.writes()
        if claim and any(state.uploads[u.id].post_id is not None for u in uploads):
            raise Conflict("An image was attached to another post meanwhile.")
        for upload in uploads if claim else ():
            state.uploads[upload.id] = replace(state.uploads[upload.id], post_id=post_id)
        images = tuple(
            PostImage(
                position=position,
                content_hash=u.content_hash,
                alt_text=u.alt_text,
                mime_type=u.mime_type,
                width=u.width,
                height=u.height,
                size=u.size,
                media_id=u.public_id,
            )
            for position, u in enumerate(uploads)
        )
        state.post_images[post_id] = images
        return images

    def images_of(self, post_id: int) -> tuple[PostImage, ...]:
        return self.tx.state.post_images.get(post_id, ())

    def image_hashes(self) -> dict[int, tuple[str, ...]]:
        return {
            post_id: tuple(image.content_hash for image in images)
            for post_id, images in sorted(self.tx.state.post_images.items())
            if images
        }

    def purge_unattached(self, created_before: datetime) -> int:
        state = self.tx.writes()
        gone = [
            u.id
            for u in state.uploads.values()
            if u.post_id is None and u.created_at < created_before
        ]
        for upload_id in gone:
            del state.uploads[upload_id]
        return len(gone)


# --- the unit of work and its factory ----------------------------------------------------------


class SqlOnlyTransparencyLog:
    """The transparency log's tables exist on the SQL stores only: the notary of the memory
    tests runs without a log origin (no tree), and verification is tested against SQL."""

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"TransparencyLog.{name} runs on the SQL stores only")


class MemoryUnitOfWork:
    """Implements ghostpost.services.ports.UnitOfWork over a MemoryDatabase."""

    def __init__(
        self,
        database: MemoryDatabase,
        *,
        read_only: bool = False,
        resealer: Resealer | None = None,
    ) -> None:
        self._database = database
        self._resealer = resealer
        self.read_only = read_only

    def __enter__(self) -> Self:
        self._tx = _Transaction(self._database, self.read_only)
        tx = self._tx
        posts = MemoryPosts(tx)
        # Annotated with the ports so mypy proves each repository implements its protocol.
        self.principals: PrincipalRepository = MemoryPrincipals(tx)
        self.accounts: AccountRepository = MemoryAccounts(tx)
        self.users: UserRepository = MemoryUsers(tx)
        self.assignments: AssignmentRepository = MemoryAssignments(tx)
        self.windows: WindowRepository = MemoryWindows(tx)
        self.posts: PostRepository = posts
        self.ledger: Ledger = MemoryLedger(tx)
        self.tree: TransparencyLog = SqlOnlyTransparencyLog()
        self.api_clients: ApiClientRepository = MemoryApiClients(tx)
        self.api_tokens: ApiTokenRepository = MemoryApiTokens(tx)
        self.mastodon_apps: MastodonAppRepository = MemoryMastodonApps(tx)
        self.idempotency_keys: IdempotencyKeyRepository = MemoryIdempotencyKeys(tx)
        self.submissions: SubmissionReader = MemorySubmissions(tx, posts)
        self.exports: ExportReader = MemoryExports(tx, posts)
        self.sealed: SealedSecrets = MemorySealedSecrets(tx, self._resealer)
        self.web_sessions: WebSessionRepository = MemoryWebSessions(tx)
        self.guards: GuardRepository = MemoryGuards(tx)
        self.media: MediaRepository = MemoryMedia(tx)
        self.notifications: NotificationRepository = MemoryNotifications(tx)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        self._tx.commit()

    def rollback(self) -> None:
        self._tx.begin()


class MemoryUnitsOfWork:
    """The unit-of-work factory of the services (ServiceContext.uow), in memory: `uow()` writes,
    `uow(read_only=True)` only reads."""

    def __init__(
        self, database: MemoryDatabase | None = None, resealer: Resealer | None = None
    ) -> None:
        self.database = database or MemoryDatabase()
        self.resealer = resealer

    def __call__(
        self, *, read_only: bool = False, single_read: bool = False, lean: bool = False
    ) -> MemoryUnitOfWork:
        # `lean` is the same transaction (the SQL one skips ORM bookkeeping): nothing here.
        return MemoryUnitOfWork(
            self.database, read_only=read_only or single_read, resealer=self.resealer
        )


def _conforms() -> None:
    """Never called: mypy checks that the in-memory unit of work and its factory have the
    shapes the services are handed."""
    _uow: UnitOfWork = MemoryUnitOfWork(MemoryDatabase())
    _units: UnitOfWorkFactory = MemoryUnitsOfWork()
    _store: NotaryStore = MemoryNotaryStore()
