"""The ports the services need; db/ implements them (DESIGN.md §6: imports point inward)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self

from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.guards import PrincipalGuards
from ghostpost.domain.ledger import CanonicalData, LedgerEntry
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
from ghostpost.domain.notifications import OutgoingMail, SentNotification
from ghostpost.domain.policy import WindowPolicy
from ghostpost.domain.sessions import WebSession
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
        """Replace the account's platform identity, sealed credentials and limits."""

    def by_handle(self, platform: str, handle: str) -> Account | None:
        """Return the account with this handle on this platform, or None."""

    def list(self) -> list[Account]:
        """Return every account, oldest first."""

    def lock(self, account_id: int) -> None:
        """Hold the account until commit, so one decision at a time is made for it."""

    def try_lock(self, account_id: int) -> bool:
        """Hold the account until commit unless another transaction holds it (then False)."""


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

    def set_time_zone(self, user_id: int, time_zone: str | None) -> User:
        """Store the user's time zone (an IANA name the caller checked; None: not chosen)."""

    def linked_to_principal(self, principal_id: int) -> User | None:
        """Return the one user linked to this principal record, or None."""

    def set_principal(self, user_id: int, principal_id: int | None) -> User:
        """Link the user to a principal record (or, with None, unlink them) and return them."""

    def totp(self, user_id: int) -> tuple[str | None, int | None]:
        """Return the user's sealed TOTP secret and last accepted step (None when not set)."""

    def set_totp(self, user_id: int, sealed_secret: str | None, last_step: int | None) -> None:
        """Store (or with None, remove) the user's sealed TOTP secret and last accepted step."""

    def advance_totp_step(self, user_id: int, step: int) -> bool:
        """Record `step` as the last accepted one if it is later than the stored one; else False."""


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

    def add(
        self,
        *,
        account_id: int,
        name: str,
        policy: WindowPolicy,
        created_by: int,
        notice_publish_at: datetime | None = None,
    ) -> Window:
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

    def attach_notice(self, window_id: int, notice_post_id: int) -> Window:
        """Record which post is the window's notice; return the window."""

    def set_policy(
        self,
        window_id: int,
        *,
        name: str,
        policy: WindowPolicy,
        notice_publish_at: datetime | None,
        clear_notice_rejection: bool,
    ) -> Window:
        """Replace the window's name, policy and notice time (and with `clear_notice_rejection`,
        forget the principal's rejection of its notice); return the window."""

    def approve_notice(self, window_id: int, *, approved_by: int, approved_at: datetime) -> Window:
        """Record the principal's approval of the notice (forgetting any rejection)."""

    def reject_notice(
        self, window_id: int, *, rejected_by: int, rejected_at: datetime, comment: str
    ) -> Window:
        """Record the principal's rejection of the notice, with their comment."""

    def record_disclosures(
        self,
        window_id: int,
        *,
        posts_since_disclosure: int,
        notice_published_at: datetime | None,
    ) -> Window:
        """Store the window's disclosure state after a publication (the cadence count and when
        its notice went out); return the window."""

    def list_for_account(self, account_id: int) -> list[Window]:
        """Return the account's windows by start time."""

    def list_for_accounts(self, account_ids: Collection[int]) -> list[Window]:
        """Return the windows of these accounts, latest start first."""

    def notices_awaiting_approval(
        self, account_ids: Collection[int], now: datetime
    ) -> list[Window]:
        """Return unended windows of these accounts whose pending notice awaits approval
        (not those whose notice the principal rejected)."""

    def add_proposal(
        self,
        *,
        window_id: int,
        proposed_by: int,
        proposed_at: datetime,
        changes: Mapping[str, Mapping[str, Any]],
    ) -> WindowProposal:
        """Store a pending proposal to change a window's policy."""

    def get_proposal(self, proposal_id: int) -> WindowProposal | None:
        """Return the proposal with this id, or None."""

    def proposals_of(self, window_id: int) -> list[WindowProposal]:
        """Return a window's proposals, newest first."""

    def pending_proposals(self, account_ids: Collection[int]) -> list[WindowProposal]:
        """Return the pending proposals on windows of these accounts, oldest first."""

    def decide_proposal(
        self,
        proposal_id: int,
        *,
        status: ProposalStatus,
        decided_by: int | None,
        decided_at: datetime,
        comment: str | None,
    ) -> WindowProposal:
        """Record the decision on a proposal and return it."""


@dataclass(frozen=True)
class ClaimView:
    """A post the worker may claim, with everything its claim reads, as stored now (one read
    under the account's lock instead of one per question)."""

    post: Post
    account: Account
    #: Whether a post of the account is being published (so the account waits).
    account_busy: bool
    #: The next part of a thread on the account whose previous part is published and which is
    #: not out yet (scheduled, awaiting approval or being sent): the only post of the account
    #: that may go out next, so that no other post lands inside the thread. None: no thread
    #: in progress.
    thread_in_progress_id: int | None
    #: The scheduled standalone reminder that must precede this post, or None.
    pending_reminder_id: int | None
    #: The window the post names (posts.window_id), or None.
    own_window: Window | None
    #: The account's window covering `at`, or None.
    covering_window: Window | None
    #: The post's author (None when the user is gone) and whether they are assigned to the
    #: account (assignments row).
    author: User | None
    author_assigned: bool
    #: The standing of the API client the post's submitter names ("client:<id>"): None when
    #: the submitter is not a client, or no such client is stored.
    client: ClientStanding | None
    #: Whether the post has images (MediaRepository.images_of is not empty).
    has_images: bool


class PostRepository(Protocol):
    """Posts."""

    def add(self, post: NewPost) -> Post:
        """Store a new post."""

    def get(self, post_id: int) -> Post | None:
        """Return the post with this id (fresh from the database), or None."""

    def by_platform_post_id(self, platform: str, platform_post_id: str) -> list[Post]:
        """The posts published under this platform id on accounts of `platform`."""
        ...

    def next_part(self, post: Post) -> Post | None:
        """The thread part that answers `post`, if any."""
        ...

    def in_thread(self, thread_id: str) -> list[Post]:
        """Return every part of one thread, in thread order."""
        ...

    def by_public_id(self, public_id: str) -> Post | None:
        """Return the post with this public id, or None."""

    def by_public_ids(self, public_ids: Collection[str]) -> list[Post]:
        """Return the posts with these public ids (unknown ids are skipped), oldest first."""

    def in_group(self, group_id: str) -> list[Post]:
        """Return the posts of one group (one compose, several accounts), oldest first."""

    # The state changes below store what the service decided (it checks the move with
    # domain.states.transition); each returns the post as stored.

    def set_state(
        self,
        post_id: int,
        state: PostState,
        reason: str | None,
        *,
        decisions: Mapping[str, Any] | None = None,
    ) -> Post:
        """Move the post to `state` for `reason`, replacing its decisions when given."""

    def set_reason(self, post_id: int, reason: str | None) -> Post:
        """Replace the reason shown with the post's state (the state stays)."""

    def set_decisions(self, post_id: int, decisions: Mapping[str, Any]) -> Post:
        """Replace the record of the decisions taken on the post."""

    def approve(
        self,
        post_id: int,
        *,
        state: PostState,
        approved_by: int,
        approved_at: datetime,
        publish_at: datetime | None,
    ) -> Post:
        """Record an approval: the new state (no reason), who approved when, and the time the
        post goes out."""

    def reschedule(
        self,
        post_id: int,
        *,
        state: PostState,
        reason: str | None,
        publish_at: datetime,
        window_id: int | None,
        final_text: str,
        decisions: Mapping[str, Any],
        approved_by: int | None,
        approved_at: datetime | None,
        final_content_warning: str = "",
    ) -> Post:
        """Store a regular post decided again for a new time (its window, text, state and
        approval follow from the new decision)."""

    def revise_notice(
        self, post_id: int, *, text: str, publish_at: datetime | None, reason: str | None
    ) -> Post:
        """Replace a notice's text (a notice publishes what it submits), time and reason."""

    def start_publishing(
        self,
        post_id: int,
        *,
        state: PostState,
        final_text: str,
        attempts: int,
        claimed_by: str,
        lease_until: datetime,
        decisions: Mapping[str, Any],
        final_content_warning: str = "",
    ) -> Post:
        """Record a worker's claim: the text it will publish, the attempt count, its lease and
        the decisions it published under; the reason is cleared."""

    def reclaim(self, post_id: int, *, claimed_by: str, lease_until: datetime) -> Post:
        """Hand a post in flight whose lease ran out to another worker."""

    def mark_published(
        self, post_id: int, *, state: PostState, platform_post_id: str, url: str, at: datetime
    ) -> Post:
        """Record the platform's receipt and the time of publication; the lease ends."""

    def end_attempt(
        self, post_id: int, *, state: PostState, reason: str, next_attempt_at: datetime | None
    ) -> Post:
        """End the publishing attempt (the lease ends): the post waits for its next attempt
        (not before `next_attempt_at`) or has failed."""

    def request_deletion(
        self, post_id: int, *, requested_by: int, at: datetime, lease_until: datetime
    ) -> Post:
        """Record that `requested_by` asked to delete the published post, and lease the
        platform call until `lease_until` (after which the worker may make it)."""

    def lease_deletion(self, post_id: int, *, lease_until: datetime) -> Post:
        """Lease the platform call of a deletion already asked for (a retry, the worker)."""

    def mark_deleted(self, post_id: int, *, at: datetime) -> Post:
        """Record that the platform confirmed the post gone; the lease ends."""

    def drop_deletion(self, post_id: int) -> Post:
        """Forget a deletion the platform refused for good: the post is out as before."""

    def stale_deletions(self, now: datetime) -> list[Post]:
        """Return posts whose deletion was asked for, not confirmed, and not leased now."""

    def due_on_idle_accounts(self, now: datetime, limit: int) -> list[DuePost]:
        """Return scheduled posts whose time has come, in publishing order, of the accounts
        that have no post in flight."""

    def claim_view(self, post_id: int, at: datetime) -> ClaimView | None:
        """What the worker decides a claim on, read in one go (None: no such post): the
        post, its account and what the claim asks of them as stored now (see ClaimView).
        The caller holds the account's lock (AccountRepository.try_lock) before it asks."""

    def stale_publishing(self, now: datetime) -> list[Post]:
        """Return posts in flight whose lease has run out."""

    def any_claimable(self, now: datetime) -> bool:
        """Tell whether due_on_idle_accounts(now, 1) or waiting_in_ended_windows(now) would
        return any post."""

    def any_stale(self, now: datetime) -> bool:
        """Tell whether stale_publishing(now) or stale_deletions(now) would return any post."""

    def waiting_in_ended_windows(self, now: datetime) -> list[Post]:
        """Return posts held or awaiting approval whose window has ended."""

    def any_waiting_in_ended_windows(self, now: datetime) -> bool:
        """Tell whether waiting_in_ended_windows(now) would return any post."""

    def held_in_window(self, window_id: int) -> list[Post]:
        """Return a window's held posts in publishing order."""

    def waiting_regular(
        self,
        *,
        author_id: int | None = None,
        account_id: int | None = None,
        submitters: Collection[str] | None = None,
    ) -> list[Post]:
        """Return the regular posts not yet out (scheduled, awaiting approval or held) that match
        every filter given, oldest first."""

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

    def in_period(
        self,
        *,
        account_ids: Collection[int],
        states: Collection[PostState],
        starts_at: datetime,
        ends_at: datetime,
        limit: int,
    ) -> list[Post]:
        """Return the posts of these accounts in these states whose moment (published_at once
        published, else publish_at) falls in [starts_at, ends_at), earliest first."""

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
        """Return up to `limit` posts of these accounts matching the filters, newest (highest id)
        first, starting below `before_id` (keyset pagination)."""

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
        """Return up to `limit` posts of one account in these states, newest first, with ids
        below `max_id` and above `since_id` and `min_id` (Mastodon's paging: with `min_id`, the
        posts just above it; otherwise the newest of the range). `live_only`: none whose
        deletion was asked for."""


class IdempotencyKeyRepository(Protocol):
    """Create requests remembered under their (client, Idempotency-Key)."""

    def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        """Return the record of this client's key, as committed (or claimed by this
        transaction), or None."""

    def claim(self, client_id: str, key: str, fingerprint: str, now: datetime) -> bool:
        """Insert the key as in flight; return False when another transaction already holds it.

        A concurrent transaction holding the same key is waited for (bounded): once it commits
        the claim fails (read the winner's record), once it rolls back the claim succeeds.
        Raises KeyStillLocked when the wait runs out."""

    def claim_or_get(
        self, client_id: str, key: str, fingerprint: str, now: datetime
    ) -> IdempotencyRecord | None:
        """Claim the key (insert unless present; one statement unless another transaction
        holds the key): None when this transaction claimed it, else the record of the request
        holding it. Waits (bounded) for a concurrent transaction holding the same key; raises
        KeyStillLocked when the wait runs out."""

    def complete(
        self, client_id: str, key: str, response_status: int, response_body: Mapping[str, Any]
    ) -> None:
        """Store the response of a claimed key and mark it completed."""

    def purge(self, created_before: datetime) -> int:
        """Delete the keys created before the given time; return how many."""


@dataclass(frozen=True)
class ClientSubmission:
    """What one read tells about an API client's create, as committed now."""

    #: The client, fresh (its accounts and the authors it may name).
    client: ApiClient
    owner_active: bool
    #: The account asked for, None when there is no such account.
    account: Account | None
    #: The author named by email, or the client's default author when none is named.
    author: User | None
    #: Whether the author is assigned to the account (assignments row).
    author_assigned: bool
    #: The account's window covering the `at` asked for.
    window: Window | None
    #: The name of the account's principal (None without an account).
    principal_name: str | None = None
    #: The principal's guards as stored (None: never set, the defaults).
    guards: PrincipalGuards | None = None
    #: What the read found, as the implementation sees it (opaque):
    #: another read finding the same answers `for_client(..., same_as=this)` with this very
    #: object, so that a decision taken on it is known to hold (empty: never the same).
    source: tuple[Any, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class TokenFacts:
    """An access token's row with its client (fresh) and whether the client's owner is active."""

    token: ApiToken
    client: ApiClient
    owner_active: bool


class WithdrawnGrant(StrEnum):
    """A grant a create's decision relied on, withdrawn (committed) before its insert."""

    CLIENT = "client"
    AUTHOR = "author"
    ASSIGNMENT = "assignment"


class SubmissionReader(Protocol):
    """The hot path of an API client: what a request decides on, one read each."""

    def token(self, token_hash: str) -> TokenFacts | None:
        """Return the token with this hash, its client and owner (None: no such token)."""

    def add_post(
        self, post: NewPost, *, assigned_author: bool = False, client_id: str | None = None
    ) -> Post | WithdrawnGrant:
        """Store a new post (as PostRepository.add, in one INSERT). The decision read the
        author, the submitting client (`client_id`: the post is that client's) and the
        author's assignment (`assigned_author`: the decision relied on it) without locks:
        which of them a committed withdrawal took away since, if any (the caller refuses)."""

    def for_client(
        self,
        client_id: str,
        account_id: int,
        author_email: str | None,
        at: datetime,
        *,
        same_as: ClientSubmission | None = None,
    ) -> ClientSubmission | None:
        """Return the facts of a create by this client (None when no such client). When the
        read finds exactly the rows `same_as` was built from (whatever arguments read them:
        the facts are the rows), return `same_as` itself; an implementation may always build
        new facts instead."""

    def expect_client_read(
        self, client_id: str, account_id: int, author_email: str | None, at: datetime
    ) -> None:
        """Announce that `for_client` with these arguments follows this transaction's next
        idempotency claim. A hint: an implementation may read it with the claim (one round
        trip); `for_client` answers the same either way."""


class KeyStillLocked(Exception):
    """Another transaction kept an idempotency key locked for longer than the claim waits."""


class ApiClientRepository(Protocol):
    """API clients (OAuth client credentials) and the accounts each may touch."""

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
        """Store a new, active client with the authors it may name."""

    def set_authors(
        self, row_id: int, author_ids: Collection[int], default_author_id: int | None
    ) -> ApiClient:
        """Replace the authors a client may name and its default author; return the client."""

    def get(self, row_id: int) -> ApiClient | None:
        """Return the client with this row id, or None."""

    def by_client_id(self, client_id: str) -> ApiClient | None:
        """Return the client with this public client id, or None."""

    def standing(self, client_id: str) -> ClientStanding | None:
        """Return the client's and its owner's standing (one read), or None if no client."""

    def secret_hash(self, client_id: str) -> str | None:
        """Return the stored hash of the client's secret, or None."""

    def list(self) -> list[ApiClient]:
        """Return every client, by name."""

    def set_active(self, row_id: int, active: bool) -> ApiClient:
        """Activate or deactivate a client and return it."""


class ApiTokenRepository(Protocol):
    """Access tokens, stored only as SHA-256 hashes."""

    def add(
        self,
        *,
        token_hash: str,
        client_row_id: int,
        scopes: Collection[str],
        issued_at: datetime,
        expires_at: datetime,
    ) -> ApiToken:
        """Store a newly issued token."""

    def by_hash(self, token_hash: str) -> ApiToken | None:
        """Return the token with this hash, or None."""

    def revoke(self, token_id: int, at: datetime) -> None:
        """Mark a token revoked (kept, so its hash can never be issued or accepted again)."""

    def revoke_all(self, client_row_id: int, at: datetime) -> int:
        """Revoke every unrevoked token of a client; return how many."""

    def purge_expired(self, client_row_id: int, expired_before: datetime) -> int:
        """Delete a client's tokens that expired before the given time; return how many."""


class MastodonAppRepository(Protocol):
    """Apps registered at /api/v1/apps, their authorization codes and tokens (hashed)."""

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
        """Store an app (its secret only as a hash) and return it."""

    def app(self, app_id: int) -> MastodonApp | None:
        """Return the app with this row id, or None."""

    def app_by_client_id(self, client_id: str) -> tuple[MastodonApp, str] | None:
        """Return the app and its secret's hash, or None."""

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
        """Store an authorization code (only its hash) and return it."""

    def code_by_hash(self, code_hash: str) -> MastodonAuthCode | None:
        """Return the code with this hash, or None."""

    def use_code(self, code_id: int, at: datetime) -> bool:
        """Mark a code used; False when it already was (atomic)."""

    def purge_codes(self, expired_before: datetime) -> int:
        """Delete codes that expired before this instant; return how many."""

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
        """Store a token (only its hash) and return it."""

    def token_by_hash(self, token_hash: str) -> MastodonToken | None:
        """Return the token with this hash, or None."""

    def token(self, token_id: int) -> MastodonToken | None:
        """Return the token with this row id, or None."""

    def revoke_token(self, token_id: int, at: datetime) -> bool:
        """Revoke a token; False when it already was."""

    def tokens_of_user(self, user_id: int) -> list[MastodonToken]:
        """The user's live (unrevoked) tokens, oldest first."""

    def counts(self) -> tuple[int, int]:
        """How many codes and tokens are stored (kept ones included)."""


class HeadSigner(Protocol):
    """Signs ledger heads with the current Ed25519 key, which never enters the database."""

    @property
    def key_id(self) -> str:
        """Return the id of the key signing now."""

    @property
    def public_key_bytes(self) -> bytes:
        """Return the raw 32-byte Ed25519 public key signing now."""

    def sign(self, note: bytes) -> str:
        """Return the base64 signature of a checkpoint note."""


class Ledger(Protocol):
    """The append-only, hash-chained ledger. Appends only chain; the notary (one process at a
    time, see services.ledger_integrity) verifies the chain and signs its heads."""

    def append(
        self,
        *,
        tag: str,
        actor: str,
        subject: str,
        data: Mapping[str, Any] | CanonicalData,
        occurred_at: datetime,
    ) -> LedgerEntry:
        """Append an entry chained to the current head and return it (`data` already
        serialised, or serialised here)."""

    def entries(
        self, *, after_seq: int = 0, up_to_seq: int | None = None, snapshot: bool = False
    ) -> Iterator[LedgerEntry]:
        """Yield the entries after `after_seq` (up to `up_to_seq`) in sequence order.

        `snapshot`: read in a read-only transaction that never blocks writers (only when it is
        the first statement of the unit of work)."""

    def entry(self, seq: int) -> LedgerEntry | None:
        """Return the entry at `seq`, or None."""

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

    def head(self) -> tuple[int, str]:
        """Return the ledger's size and head hash."""

    def claim_notary(self) -> bool:
        """Take the notary's lock until the transaction ends; False when another process holds
        it (PostgreSQL advisory lock; SQLite's writers are already serialised)."""

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a checkpoint the notary signed."""

    def latest_checkpoint(self) -> Checkpoint | None:
        """Return the newest signed head, or None before the first."""

    def checkpoints(
        self, *, max_size: int | None = None, batch: int = 1000
    ) -> Iterator[Checkpoint]:
        """Yield the signed heads in signing order (only those of at most `max_size` entries)."""


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree checkpoint the notary signed, as stored (tree_checkpoints)."""

    origin: str
    size: int
    root_hash: bytes
    #: The whole C2SP signed note, exactly as signed.
    note: str
    signed_at: str


@dataclass(frozen=True)
class LeafRecord:
    """A stored public leaf and its salt (None when the salt was deleted)."""

    seq: int
    leaf: bytes
    leaf_hash: bytes
    salt: bytes | None


@dataclass(frozen=True)
class StoredEdge:
    """What the notary's per-pass check reads of the stored tree, in one statement."""

    #: The newest stored tree head's signed note, or None when there is none.
    newest_note: str | None
    #: How many leaves are stored (the highest seq).
    leaf_count: int
    #: The stored hash of each subtree at the edge of the tree of the size asked (None: absent).
    hashes: dict[tuple[int, int], bytes | None]


class TransparencyLog(Protocol):
    """The ledger's Merkle tree as stored: leaves, salts, complete subtree hashes and signed
    heads. Only the notary's pass writes it (services.ledger_integrity), never a request."""

    def leaf_count(self) -> int:
        """Return how many leaves are stored (they are contiguous from seq 1)."""

    def salts(self, *, after_seq: int, up_to_seq: int) -> dict[int, bytes]:
        """Return the stored salts of entries after_seq < seq <= up_to_seq."""

    def add_leaves(self, leaves: Sequence[LeafRecord], new_salts: Mapping[int, bytes]) -> None:
        """Store leaves (and the salts drawn for them that were not stored yet)."""

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store complete subtree hashes (level >= 1, index, hash)."""

    def nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return the stored hashes of the complete subtrees `wanted` (level 0: leaf hashes),
        in one read."""

    def edge(self, size: int) -> StoredEdge:
        """Return the newest head's note, the leaf count and the stored hashes of the
        subtrees at the edge of a tree of `size` leaves (merkle.subtree_nodes(0, size))."""

    def clear_derived(self) -> None:
        """Delete the leaves and subtree hashes (kept: salts, signed heads) before a rebuild."""

    def leaf(self, seq: int) -> LeafRecord | None:
        """Return the stored leaf of entry `seq`, or None."""

    def leaves(self, *, after_seq: int, up_to_seq: int) -> dict[int, LeafRecord]:
        """Return the stored leaves of entries after_seq < seq <= up_to_seq, by seq."""

    def add_checkpoint(self, head: SignedTreeHead) -> None:
        """Store a signed tree head."""

    def latest_checkpoint(self) -> SignedTreeHead | None:
        """Return the newest signed tree head, or None."""

    def published_entry(self, platform_url: str) -> LedgerEntry | None:
        """Return the newest `post:published` entry of a post stored with exactly this
        platform URL, or None."""

    def delegated(self, public_ids: Collection[str]) -> dict[str, bool]:
        """Return whether each post (by public id) was written by the team, as stored at
        submission (for entries recorded before `delegated` was)."""


@dataclass(frozen=True)
class ExportScope:
    """What an export is restricted to; None everywhere means everything."""

    #: None: every account; else only these (an API client's accounts, a principal's).
    account_ids: frozenset[int] | None = None
    window_id: int | None = None
    author_id: int | None = None
    #: Time range [since, until): a post's publishing time (its submission time while it is
    #: unpublished), a ledger entry's `occurred_at`.
    since: datetime | None = None
    until: datetime | None = None
    #: Ledger entries listed besides the scope's own: those the scope's subjects name but
    #: whose stored account/post columns put elsewhere (ExportReader.misfiled_entries).
    misfiled_seqs: frozenset[int] = frozenset()


@dataclass(frozen=True)
class MisfiledEntry:
    """A ledger entry whose stored account/post columns disagree with its hashed subject."""

    seq: int
    tag: str
    subject: str
    stored_account_id: int | None
    stored_post_id: int | None
    #: What the subject says (the account it belongs to, the post it names).
    account_id: int | None
    post_id: int | None


class ExportReader(Protocol):
    """Streaming reads for exports: one read-only snapshot, rows fetched in batches."""

    def use_snapshot(self) -> None:
        """Make this unit of work one read-only snapshot that never blocks writers (call it
        before anything else reads)."""

    def count_posts(self, scope: ExportScope) -> int:
        """Return how many posts `posts(scope)` yields."""

    def posts(self, scope: ExportScope, batch: int) -> Iterator[Post]:
        """Yield the posts in scope by id, `batch` rows per round trip (server-side cursor)."""

    def post_rows(self, scope: ExportScope, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Yield the posts of `posts(scope)` as batches of column tuples, no object per row:
        (id, public_id, account_id, window_id, kind, state, state_reason, author_id,
        submitter, source, final_text, published_at, platform_url, approved_by, approved_at,
        created_at, final_content_warning, visibility, deleted_at, deletion_requested_by,
        group_id) and then, instead of `decisions`, its `decision_summary` (delegated — a bool
        or 1/0 —, stage, tag, tag_outcome, tag_needs, tag_has, tag_unit, reminder_outcome) —
        ghostpost.db.exports.POST_COLUMNS.
        The times are aware datetimes, or naive UTC ISO 8601 text (SQLite: as stored)."""

    def count_entries(self, scope: ExportScope, up_to_seq: int) -> int:
        """Return how many entries `entries(scope, up_to_seq)` yields."""

    def entries(self, scope: ExportScope, up_to_seq: int, batch: int) -> Iterator[LedgerEntry]:
        """Yield the entries in scope with seq <= up_to_seq in seq order, `batch` per round
        trip (server-side cursor)."""

    def entry_rows(
        self, scope: ExportScope, up_to_seq: int, batch: int
    ) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Yield the entries of `entries(...)` as batches of column tuples, no object per row:
        (seq, occurred_at, tag, actor, subject, data as its stored canonical JSON text,
        prev_hash, entry_hash)."""

    def misfiled_entries(self, scope: ExportScope, up_to_seq: int) -> list[MisfiledEntry]:
        """Return the entries (seq <= up_to_seq) whose subject is in `scope` — an account of
        it, a window, a post in it; every entry for the empty scope — but whose stored
        account_id or post_id says otherwise, in seq order. Costs a probe per post of the scope
        (read from indexes alone for an account scope: ix_posts_account_id_public_id into
        ix_ledger_entries_subject_refs), the whole ledger for the empty scope."""

    def checkpoint_rows(self, up_to_size: int, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Yield the checkpoints of `checkpoints(...)` as batches of column tuples:
        (size, head_hash, signed_at, key_id, signature, kind)."""

    def checkpoints(self, up_to_size: int, batch: int) -> Iterator[Checkpoint]:
        """Yield the signed heads over at most `up_to_size` entries in signing order, `batch`
        per round trip (server-side cursor)."""


class SealedSecrets(Protocol):
    """Every platform secret sealed at rest (account tokens, OAuth app secrets)."""

    @property
    def active_key_id(self) -> str:
        """The id of the key new secrets are sealed with."""
        ...

    def reseal_all(self) -> dict[str, int]:
        """Re-encrypt every secret not yet under the active key; return counts per table."""
        ...


class WebSessionRepository(Protocol):
    """Server-side web sessions, keyed by the SHA-256 of the cookie token."""

    def get(self, session_id: str) -> WebSession | None:
        """Return the session with this id (revoked or not), or None."""

    def add(
        self, session_id: str, *, user_id: int | None, data: dict[str, Any], now: datetime
    ) -> None:
        """Store a new session created and last seen `now`."""

    def save(
        self, session_id: str, *, user_id: int | None, data: dict[str, Any], now: datetime
    ) -> None:
        """Replace the session's data and user, and mark it seen `now`."""

    def touch(self, session_id: str, now: datetime) -> None:
        """Mark the session seen `now` (it stays alive for another idle period)."""

    def revoke(self, session_id: str, now: datetime) -> None:
        """End the session (if it is not already ended)."""

    def revoke_for_user(self, user_id: int, now: datetime) -> int:
        """End every live session of the user; return how many."""

    def purge(
        self, *, revoked_before: datetime, seen_before: datetime, created_before: datetime
    ) -> int:
        """Delete sessions revoked, last seen or created before these instants; return how many."""


class MediaRepository(Protocol):
    """Uploaded images and the images of posts (the bytes are in the media store)."""

    def add_upload(
        self,
        *,
        public_id: str,
        uploaded_by: str,
        image: CleanImage,
        alt_text: str,
        created_at: datetime,
    ) -> MediaUpload:
        """Store an upload, unattached."""

    def get_upload(self, public_id: str) -> MediaUpload | None:
        """Return the upload with this public id, if any."""

    def set_alt_text(self, public_id: str, alt_text: str) -> MediaUpload:
        """Change an upload's alt text."""

    def attach(
        self, post_id: int, uploads: Sequence[MediaUpload], *, claim: bool = True
    ) -> tuple[PostImage, ...]:
        """Make `uploads` the post's images, in order; raise services.errors.Conflict when one
        of them was attached to a post meanwhile (a concurrent create). Without `claim`, the
        uploads' own attachment is left as it is: a group's other posts take the images its
        first post claimed, in the same transaction."""

    def images_of(self, post_id: int) -> tuple[PostImage, ...]:
        """Return the post's images, in order."""

    def purge_unattached(self, created_before: datetime) -> int:
        """Delete the uploads never attached and made before `created_before`; return how many."""

    def image_hashes(self) -> dict[int, tuple[str, ...]]:
        """Every post with images: post id -> its images' content hashes, in order."""


class GuardRepository(Protocol):
    """A principal's guards and the hashtags each account has used (domain.guards)."""

    def of(self, principal_id: int) -> PrincipalGuards:
        """The principal's guards (the defaults when never set)."""

    def set(self, principal_id: int, guards: PrincipalGuards, at: datetime) -> None:
        """Store the principal's guards."""

    def used_hashtags(self, account_id: int, names: Collection[str]) -> frozenset[str]:
        """Those of `names` (folded) the account has used in a published post (one indexed
        read; none for no names)."""

    def record_used(self, account_id: int, names: Collection[str], at: datetime) -> None:
        """Remember that the account published these hashtags (folded names)."""


class NotificationRepository(Protocol):
    """The email outbox and each user's choices of kinds (domain.notifications)."""

    def preferences(self, user_id: int) -> dict[str, bool]:
        """The kinds the user chose (kind -> on); absent kinds keep their default."""
        ...

    def set_preference(self, user_id: int, kind: str, enabled: bool) -> None:
        """Store the user's choice for one kind."""
        ...

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
        """Record one email; False (nothing stored) when this user has one for `event_key`."""
        ...

    def has_due(self, now: datetime) -> bool:
        """Whether any email is due (read only: an idle worker's look costs no write)."""
        ...

    def claim_due(
        self, now: datetime, worker_id: str, until: datetime, limit: int
    ) -> list[OutgoingMail]:
        """Claim pending emails due by `now` that nobody holds (or whose claim lapsed)."""
        ...

    def mark_sent(self, notification_id: int, worker_id: str, at: datetime) -> None:
        """Record the email sent, if `worker_id` still holds its claim."""
        ...

    def mark_failed(
        self, notification_id: int, worker_id: str, error: str, retry_at: datetime | None
    ) -> None:
        """Record a failed attempt: pending again at `retry_at`, or `failed` when None."""
        ...

    def events_between(
        self, user_id: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, str, str]]:
        """(when, subject, link) of the user's event emails (not digests) made in [start, end)."""
        ...

    def digest_recipients(self) -> list[int]:
        """Active users who turned the daily digest on."""
        ...

    def recent(self, user_id: int, limit: int) -> list[SentNotification]:
        """The user's latest notifications, newest first."""
        ...


class Mailer(Protocol):
    """Sends one plain-text email (adapters.mail.SmtpMailer); raises on any failure."""

    def send(self, to: str, subject: str, body: str) -> None:
        """Send one email to `to`."""
        ...


class UnitOfWork(Protocol):
    """One transaction; rolls back on exit unless committed."""

    principals: PrincipalRepository
    accounts: AccountRepository
    users: UserRepository
    assignments: AssignmentRepository
    windows: WindowRepository
    posts: PostRepository
    ledger: Ledger
    tree: TransparencyLog
    api_clients: ApiClientRepository
    api_tokens: ApiTokenRepository
    mastodon_apps: MastodonAppRepository
    idempotency_keys: IdempotencyKeyRepository
    submissions: SubmissionReader
    exports: ExportReader
    sealed: SealedSecrets
    web_sessions: WebSessionRepository
    media: MediaRepository
    guards: GuardRepository
    notifications: NotificationRepository

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
