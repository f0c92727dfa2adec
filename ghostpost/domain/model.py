"""Plain records of the things ghostpost keeps; services pass these, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from ghostpost.domain.policy import PostKind, WindowPolicy, WindowState
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState


class Role(StrEnum):
    """What a staff user may do."""

    ADMIN = "admin"
    MANAGER = "manager"
    WRITER = "writer"
    AUDITOR = "auditor"


class Source(StrEnum):
    """Which surface a post came through."""

    WEB = "web"
    API = "api"
    MASTODON_COMPAT = "mastodon-compat"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True)
class Principal:
    """The person whose name is on the accounts."""

    id: int
    name: str


@dataclass(frozen=True)
class Account:
    """One social account of a principal on one platform."""

    id: int
    principal_id: int
    platform: str
    handle: str
    #: The platform's limit for this account when it differs from the platform default.
    max_chars: int | None = None
    url_length: int | None = None
    #: The platform's own id of the account (Mastodon account id, Bluesky DID, X user id).
    remote_id: str | None = None
    #: Where the account lives: a Mastodon instance or a Bluesky PDS (None for X and local).
    base_url: str | None = None
    #: Whether platform credentials are stored (always true for `local`).
    connected: bool = False


@dataclass(frozen=True)
class MediaItem:
    """One image as an adapter sends it: bytes already checked for the platform and stripped of
    metadata (EXIF location and the like), named by the SHA-256 of exactly these bytes."""

    content_hash: str
    mime_type: str
    data: bytes = field(repr=False)
    alt_text: str
    width: int
    height: int


@dataclass(frozen=True)
class ReplyTarget:
    """The platform post a post answers, by the ids its adapter returned in the receipt:
    `parent_id` the post answered, `root_id` the first post of that conversation (Bluesky
    needs both; Mastodon and X need only the parent)."""

    parent_id: str
    root_id: str


@dataclass(frozen=True)
class User:
    """A staff user; `principal_id` is set when the user *is* that principal."""

    id: int
    email: str
    name: str
    role: Role
    principal_id: int | None = None
    is_active: bool = True
    #: A TOTP second factor is enrolled (the secret itself never leaves the repository sealed).
    totp_enabled: bool = False
    #: The IANA time zone the user reads times in; None: not chosen yet (pages use UTC).
    time_zone: str | None = None

    def is_principal_of(self, account: Account) -> bool:
        """Tell whether this user is the principal who owns `account`."""
        return self.principal_id is not None and self.principal_id == account.principal_id

    @property
    def may_be_required_totp(self) -> bool:
        """Tell whether the TOTP requirement setting covers this user (admins and principals)."""
        return self.role is Role.ADMIN or self.principal_id is not None


@dataclass(frozen=True)
class Window:
    """A delegation window and the state of its disclosures."""

    id: int
    account_id: int
    name: str
    policy: WindowPolicy
    created_by: int
    notice_post_id: int | None = None
    notice_approved_at: datetime | None = None
    notice_approved_by: int | None = None
    notice_published_at: datetime | None = None
    posts_since_disclosure: int = 0
    #: When the approved notice goes out: never before, at once if already past.
    notice_publish_at: datetime | None = None
    #: Set when the principal rejected the notice; cleared when the window is edited again.
    notice_rejected_at: datetime | None = None
    notice_rejected_by: int | None = None
    notice_rejection_comment: str | None = None

    def state(self, disclosure_url: str | None = None) -> WindowState:
        """Return the snapshot the policy engine reads; `disclosure_url` fills the reminder's
        `{disclosure_url}` (ghostpost.domain.disclosure)."""
        return WindowState(
            policy=self.policy,
            notice_published=self.notice_published_at is not None,
            posts_since_disclosure=self.posts_since_disclosure,
            **({} if disclosure_url is None else {"disclosure_url": disclosure_url}),
        )


class ProposalStatus(StrEnum):
    """Where a proposed policy change stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    #: Replaced by a later proposal on the same window before the principal decided.
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class WindowProposal:
    """A change to an approved window's policy that waits for the principal's consent."""

    id: int
    window_id: int
    proposed_by: int
    proposed_at: datetime
    #: field -> {"old": value, "new": value}, values as the ledger records them (JSON).
    changes: dict[str, dict[str, Any]]
    status: ProposalStatus
    decided_by: int | None = None
    decided_at: datetime | None = None
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewPost:
    """What a service hands the repository to create a post."""

    public_id: str
    account_id: int
    kind: PostKind
    state: PostState
    author_id: int
    submitter: str
    source: Source
    submitted_text: str
    final_text: str
    idempotency_key: str
    created_at: datetime
    window_id: int | None = None
    state_reason: str | None = None
    publish_at: datetime | None = None
    decisions: dict[str, Any] = field(default_factory=dict)
    #: For a standalone reminder: the post it was published ahead of.
    precedes_post_id: int | None = None
    #: How it is shown besides its text, as the writer asked (content warning as submitted).
    options: PostOptions = PLAIN
    #: The content warning exactly as sent (or to be sent): the writer's, plus the tag when
    #: the policy put it there (policy.decide_warning_tag). "" for none.
    final_content_warning: str = ""
    #: The id shared by the posts of one compose to several accounts (unguessable); None for
    #: a post made alone.
    group_id: str | None = None
    #: The ghostpost post this one answers on the same account (a reply, or a thread's previous
    #: part): its platform id is known once it is published.
    reply_to_post_id: int | None = None
    #: A post on the account's own platform this one answers, by the platform's id, when it is
    #: not a ghostpost post (answering someone else's post).
    reply_to_platform_id: str | None = None
    #: A thread's parts share `thread_id` (the first part's public id) and go out in
    #: `thread_position` order (1, 2, ...), each a reply to the part before.
    thread_id: str | None = None
    thread_position: int | None = None

    def stored_as(self, post_id: int) -> Post:
        """Return the post as just stored under `post_id` (nothing published or claimed yet)."""
        values = {f.name: getattr(self, f.name) for f in fields(NewPost)}
        return Post(id=post_id, **{**values, "decisions": dict(self.decisions)})


@dataclass(frozen=True, kw_only=True)
class Post(NewPost):
    """A post as ghostpost keeps it: what was submitted plus what storing and publishing add."""

    id: int
    published_at: datetime | None = None
    platform_post_id: str | None = None
    platform_url: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    claimed_by: str | None = None
    approved_by: int | None = None
    approved_at: datetime | None = None
    #: Set when the principal asked to take the published post back (before the platform is
    #: called); `deleted_at` once the platform said it is gone. The state stays `published`:
    #: it was published, by its writer, and was seen (services.deletion).
    deletion_requested_at: datetime | None = None
    deletion_requested_by: int | None = None
    deleted_at: datetime | None = None

    @property
    def is_deleted(self) -> bool:
        """Tell whether the platform confirmed the post is no longer there."""
        return self.deleted_at is not None

    @property
    def is_being_deleted(self) -> bool:
        """Tell whether a deletion was asked for and the platform has not confirmed it yet."""
        return self.deletion_requested_at is not None and self.deleted_at is None

    @property
    def is_delegated(self) -> bool:
        """Tell whether the author is not the principal (stored in the decisions at submission)."""
        return bool(self.decisions.get("delegated", True))


@dataclass(frozen=True)
class DuePost:
    """A scheduled post whose time has come, as the worker scans for one to claim: only what
    it needs to choose (it reads the post itself again under the account lock)."""

    id: int
    account_id: int
    #: Set while it backs off after a retryable error: its account waits until then.
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    """A create request remembered under its Idempotency-Key, with the response it got."""

    #: Whose key it is: the submitter reference, e.g. "client:<client_id>".
    client_id: str
    key: str
    #: SHA-256 (hex) of the request's canonical JSON: the same key must come with the same body.
    fingerprint: str
    #: "in_flight" while the creating transaction runs, then "completed".
    status: str
    created_at: datetime
    response_status: int | None = None
    response_body: dict[str, Any] | None = None


@dataclass(frozen=True)
class ApiClient:
    """A scheduler's OAuth client: owned by a staff user, limited to scopes and accounts."""

    id: int
    client_id: str
    name: str
    owner_id: int
    scopes: frozenset[str]
    account_ids: frozenset[int]
    #: The writer posts are attributed to when a request names none (Mastodon compat); always
    #: one of `author_ids`.
    default_author_id: int | None = None
    is_active: bool = True
    #: The only staff users this client may name as a post's author (its grant). The principal
    #: is among them only when the client's owner is the principal's own user.
    author_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ClientStanding:
    """Whether an API client's grant still holds, as the worker checks it before each post the
    client submitted goes out: the client's standing and its owner's."""

    name: str
    is_active: bool
    owner_id: int
    #: None when the owner's user is gone.
    owner_name: str | None
    owner_active: bool


@dataclass(frozen=True)
class ApiToken:
    """An access token issued to an API client; only its SHA-256 is ever stored."""

    id: int
    client_row_id: int
    scopes: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class MastodonApp:
    """An app registered at POST /api/v1/apps (anyone may register one, as on Mastodon): it
    acts for nobody until a staff user signs in through it. Its secret is stored hashed."""

    id: int
    client_id: str
    name: str
    website: str | None
    #: Registered redirect URIs, in the order given (`urn:ietf:wg:oauth:2.0:oob` shows the code).
    redirect_uris: tuple[str, ...]
    #: Mastodon scopes the app may ask for (`read`, `write`, `write:statuses`, ...).
    scopes: frozenset[str]
    created_at: datetime


@dataclass(frozen=True)
class MastodonAuthCode:
    """An authorization code (stored hashed): single-use, short-lived, bound to its app, its
    redirect URI, the user who approved and the one account they chose."""

    id: int
    app_id: int
    user_id: int
    account_id: int
    redirect_uri: str
    scopes: frozenset[str]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True)
class MastodonToken:
    """An access token of a Mastodon app (stored hashed), lasting until revoked. With a user
    and an account it acts for that user on that account only; without (client credentials)
    it identifies the app and acts for nobody."""

    id: int
    app_id: int
    user_id: int | None
    account_id: int | None
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
