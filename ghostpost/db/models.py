"""Tables. Columns mirror the records in ghostpost.domain.model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from ghostpost.db.base import Base
from ghostpost.domain.disclosure import REASON_NOT_RECORDED


class PrincipalRow(Base):
    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("platform", "handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    #: local | mastodon | bluesky | x
    platform: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str] = mapped_column(String(200))
    #: The account's own limit when it differs from the platform default (e.g. a Mastodon fork).
    max_chars: Mapped[int | None] = mapped_column(Integer)
    url_length: Mapped[int | None] = mapped_column(Integer)
    #: The platform's own id (Mastodon account id, Bluesky DID, X user id).
    remote_id: Mapped[str | None] = mapped_column(String(200))
    #: Mastodon instance or Bluesky PDS base URL.
    base_url: Mapped[str | None] = mapped_column(String(500))
    #: Platform tokens, AES-GCM sealed by ghostpost.secretbox (bound to `account:<id>`).
    credentials: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class UserRow(Base):
    __tablename__ = "users"
    #: One principal, one person: at most one user is linked to a principal record (NULLs are
    #: distinct in a unique index on SQLite and PostgreSQL alike, so unlinked users are free).
    __table_args__ = (Index("uq_users_principal_id", "principal_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: admin | manager | writer | auditor
    role: Mapped[str] = mapped_column(String(20))
    #: Set when this user *is* the principal.
    principal_id: Mapped[int | None] = mapped_column(ForeignKey("principals.id"))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    #: The TOTP secret sealed with the SecretBox, bound to `user:<id>`; NULL: no second factor.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    #: The last accepted 30-second TOTP step: a code of that step or earlier is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    #: The IANA time zone the user reads times in; NULL: not chosen yet (UTC).
    time_zone: Mapped[str | None] = mapped_column(String(64))


class AssignmentRow(Base):
    __tablename__ = "assignments"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    created_at: Mapped[datetime]


class WindowRow(Base):
    __tablename__ = "windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    notice_text: Mapped[str] = mapped_column(Text)
    reminder_text: Mapped[str] = mapped_column(Text)
    reminder_every: Mapped[int] = mapped_column(Integer)
    #: inline | standalone
    reminder_mode: Mapped[str] = mapped_column(String(20))
    tag: Mapped[str] = mapped_column(String(120))
    #: when_fits | required | off
    tag_mode: Mapped[str] = mapped_column(String(20))
    #: end | start
    tag_position: Mapped[str] = mapped_column(String(10))
    requires_approval: Mapped[bool] = mapped_column(Boolean)
    #: Delegated posts' images need alt text (WindowPolicy.alt_text_required).
    alt_text_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: A thread's later parts carry the tag too (0018; off: only the first part).
    tag_every_part: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Why the account is handed over (public, on the disclosure page; 0022). Older windows
    #: read domain.disclosure.REASON_NOT_RECORDED.
    reason: Mapped[str] = mapped_column(Text, server_default=REASON_NOT_RECORDED)
    #: delegation | away (an away notice: no delegated posting; 0022)
    kind: Mapped[str] = mapped_column(String(20), server_default="delegation")
    #: approve | allow | refuse: delegated replies through the API or the Mastodon face (0023).
    reply_policy: Mapped[str] = mapped_column(
        String(10), default="approve", server_default="approve"
    )
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    notice_post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", use_alter=True, name="fk_windows_notice_post_id_posts")
    )
    notice_approved_at: Mapped[datetime | None]
    notice_approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notice_published_at: Mapped[datetime | None]
    #: When the approved notice goes out (never earlier); NULL only on windows made before it
    #: existed, which then behave as before (at approval).
    notice_publish_at: Mapped[datetime | None]
    #: The principal's rejection of the notice (it stays unpublished until the window is edited).
    notice_rejected_at: Mapped[datetime | None]
    notice_rejected_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notice_rejection_comment: Mapped[str | None] = mapped_column(Text)
    #: Confirmed publishes inside the window since the last disclosure; only the worker's
    #: record step changes it, under the account lock.
    posts_since_disclosure: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class WindowProposalRow(Base):
    """A change to an approved window's policy that waits for the principal's consent; the
    `windows` row (what the worker reads) keeps the approved policy until it is approved."""

    __tablename__ = "window_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("windows.id"), index=True)
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime]
    #: field -> {"old": value, "new": value}, values as the ledger records them.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending | approved | rejected | superseded
    status: Mapped[str] = mapped_column(String(20))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)


class PostRow(Base):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_state_publish_at", "state", "publish_at"),
        # An account's posts (foreign key, exports), with the public id their ledger entries'
        # subjects name: the misfiled-entry check reads it from the index alone (0012).
        Index("ix_posts_account_id_public_id", "account_id", "public_id"),
        # The worker looks for unfinished deletions at every idle poll: an index, not a scan.
        # This one and the next two hold only the rows with a value (0021): no query reads
        # the NULLs, and a create (most posts have none) writes three b-trees fewer.
        Index(
            "ix_posts_deletion_requested_at",
            "deletion_requested_at",
            sqlite_where=text("deletion_requested_at IS NOT NULL"),
            postgresql_where=text("deletion_requested_at IS NOT NULL"),
        ),
        # A post page lists the other posts of its group (one compose, several accounts).
        Index(
            "ix_posts_group_id",
            "group_id",
            sqlite_where=text("group_id IS NOT NULL"),
            postgresql_where=text("group_id IS NOT NULL"),
        ),
        # A thread's parts.
        Index(
            "ix_posts_thread_id",
            "thread_id",
            sqlite_where=text("thread_id IS NOT NULL"),
            postgresql_where=text("thread_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"), index=True)
    #: regular | notice | reminder
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    state_reason: Mapped[str | None] = mapped_column(Text)
    #: The human who wrote the text (never an API client).
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: Who handed it to ghostpost: "user:<id>", "client:<id>", "system:<name>".
    submitter: Mapped[str] = mapped_column(String(100))
    #: web | api | mastodon-compat | cli | system
    source: Mapped[str] = mapped_column(String(20))
    submitted_text: Mapped[str] = mapped_column(Text)
    #: Exactly what is (or was) sent to the platform.
    final_text: Mapped[str] = mapped_column(Text)
    #: The content warning as the writer gave it ("" for none) and as sent (with the tag when
    #: the policy added it there).
    content_warning: Mapped[str] = mapped_column(Text, default="", server_default="")
    final_content_warning: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: public | unlisted | private (what the adapter asks the platform for).
    visibility: Mapped[str] = mapped_column(String(20), default="public", server_default="public")
    #: A BCP 47-ish tag ("en", "pt-BR") sent to the platform, or None to let it guess.
    language: Mapped[str | None] = mapped_column(String(35))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    publish_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    platform_post_id: Mapped[str | None] = mapped_column(String(200))
    platform_url: Mapped[str | None] = mapped_column(String(500))
    #: Sent with every attempt so the platform (or our reconciliation) can dedupe.
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    decisions: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    precedes_post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    #: Replies and threads (0018): the ghostpost post answered (a thread's previous part), or
    #: a platform post id answered; a thread's id (its first part's public id) and position.
    reply_to_post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    reply_to_platform_id: Mapped[str | None] = mapped_column(String(200))
    thread_id: Mapped[str | None] = mapped_column(String(36))
    thread_position: Mapped[int | None] = mapped_column(Integer)
    #: A published post the principal asked to take back (the state stays `published`):
    #: when and by whom it was asked (committed before the platform is called), and when the
    #: platform confirmed it gone. Asked and not confirmed: the worker finishes it.
    deletion_requested_at: Mapped[datetime | None]
    deletion_requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]
    #: The unguessable id shared by the posts one compose made for several accounts; NULL for
    #: a post made alone.
    group_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LedgerEntryRow(Base):
    """Append-only: no code path updates or deletes these rows."""

    __tablename__ = "ledger_entries"
    # An account's entries in ledger order: the filtered exports and the ledger viewer.
    __table_args__ = (
        Index("ix_ledger_entries_account_id_seq", "account_id", "seq"),
        # Entries by subject, with the derived columns: the misfiled-entry check compares them
        # from the index alone (0012).
        Index("ix_ledger_entries_subject_refs", "subject", "account_id", "post_id"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: RFC 3339 UTC with microseconds, exactly as hashed.
    occurred_at: Mapped[str] = mapped_column(String(40))
    tag: Mapped[str] = mapped_column(String(60), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(100))
    #: Canonical JSON text, exactly as hashed.
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Derived from `subject` when appended (db.repositories.ledger.subject_refs), NOT hashed:
    #: the account the subject belongs to (account:<id>, a window's account, a post's account)
    #: and the post it names, or NULL. An index for filtering, trusted only as far as
    #: `ghostpost audit check` finds it agreeing with the subject (misfiled_entries).
    account_id: Mapped[int | None] = mapped_column(Integer)
    post_id: Mapped[int | None] = mapped_column(Integer, index=True)


class LedgerHeadRow(Base):
    """One row; locking it serialises appends so `seq` is gapless and in commit order."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))


class LedgerLeafRow(Base):
    """A ledger entry's public leaf (ghostpost.domain.public_leaf), written by the notary's pass
    (never in the request's transaction). Derived: the notary rebuilds it from the entries and
    their salts when its own state is gone."""

    __tablename__ = "ledger_leaves"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: The canonical JSON bytes that were hashed.
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    #: RFC 9162 leaf hash: SHA-256(0x00 || leaf), 32 bytes.
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerLeafSaltRow(Base):
    """The secret salt of an entry's commitments (32 random bytes); only auditors see it.
    Deleting one makes that entry's commitments unopenable; the log still verifies."""

    __tablename__ = "ledger_leaf_salts"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerTreeNodeRow(Base):
    """The hash of a complete aligned subtree of the leaves (level >= 1; level 0 is
    ledger_leaves.leaf_hash): leaves [index * 2**level, (index + 1) * 2**level). Proofs read
    O(log n) of these (domain.merkle.proof_from_nodes)."""

    __tablename__ = "ledger_tree_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeCheckpointRow(Base):
    """A Merkle tree head signed by the notary as a C2SP signed note (tlog-checkpoint)."""

    __tablename__ = "tree_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The whole signed note (text, blank line, signature lines), exactly as signed.
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[str] = mapped_column(String(40))


#: The verify page finds a post by its exact platform URL. Only the posts that have one (0027):
#: the look-up always asks for a value, and a create (no URL until published) writes one b-tree
#: fewer.
Index(
    "ix_posts_platform_url",
    PostRow.platform_url,
    sqlite_where=text("platform_url IS NOT NULL"),
    postgresql_where=text("platform_url IS NOT NULL"),
)


class LedgerCheckpointRow(Base):
    """A signed ledger head (ghostpost.domain.checkpoint). Append-only like the entries: no code
    path updates or deletes these rows, and database triggers refuse it (migration 0004)."""

    __tablename__ = "ledger_checkpoints"

    #: Signing order (one notary pass signs at a time, so ids follow signing order).
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The ledger size (number of entries) and its head hash when signed.
    size: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    #: RFC 3339 UTC with microseconds, exactly as signed; never earlier than the previous one.
    signed_at: Mapped[str] = mapped_column(String(40))
    #: First 16 hex characters of the SHA-256 of the raw Ed25519 public key.
    key_id: Mapped[str] = mapped_column(String(16))
    #: Base64 of the 64-byte Ed25519 signature over the checkpoint note.
    signature: Mapped[str] = mapped_column(String(100))
    #: append | heartbeat
    kind: Mapped[str] = mapped_column(String(20))


class IdempotencyKeyRow(Base):
    """A create request under its (client, Idempotency-Key) and the response it got; kept at
    least 24 hours (ghostpost.services.idempotency.KEY_RETENTION)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The submitter reference the key belongs to, e.g. "client:<client_id>".
    client_id: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(300))
    #: SHA-256 (hex) of the request's canonical JSON.
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: in_flight | completed
    status: Mapped[str] = mapped_column(String(20))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class LocalStatusRow(Base):
    """The `local` platform's own storage: what its public timeline shows."""

    __tablename__ = "local_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(200), index=True)
    text: Mapped[str] = mapped_column(Text)
    #: The platform dedupes on it, like Mastodon's Idempotency-Key (but without expiry).
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime]
    #: The content warning as sent (with the disclosure tag when the policy added it); "" for none.
    content_warning: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: public | unlisted (local has no followers, so no followers-only posts).
    visibility: Mapped[str] = mapped_column(String(20), default="public", server_default="public")
    #: A BCP 47-ish tag ("en", "pt-BR") for the page's `lang`, or None.
    language: Mapped[str | None] = mapped_column(String(35))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The images, in order: [{"hash", "alt", "mime", "width", "height"}] (bytes in the store).
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    #: The local status this one answers (0018); the platform refuses a reply to none.
    in_reply_to_id: Mapped[int | None] = mapped_column(Integer)


class OAuthClientRow(Base):
    """An API client (OAuth 2.0 client credentials). The secret is kept only as a hash."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Public identifier: random, at least 128 bits, URL-safe.
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    #: SHA-256 (hex) of the secret. The secret is 256 random bits, so a fast hash is enough: a
    #: slow KDF (argon2) defends guessable human passwords and would only make every token
    #: request cost 64 MiB and tens of milliseconds, a lever for denial of service.
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    #: The staff user accountable for the client.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: Allowed scopes, space-separated (RFC 6749 §3.3).
    scopes: Mapped[str] = mapped_column(String(500))
    #: Who posts are attributed to when a request names no author (Mastodon compat).
    default_author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class OAuthClientAccountRow(Base):
    """The accounts an API client may touch."""

    __tablename__ = "oauth_client_accounts"

    client_row_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)


class OAuthClientAuthorRow(Base):
    """The staff users an API client may name as a post's author (its grant, nothing wider)."""

    __tablename__ = "oauth_client_authors"

    client_row_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class OAuthTokenRow(Base):
    """An access token: only its SHA-256 is stored; revoked and expired rows are kept a while."""

    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_row_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    #: Granted scopes, space-separated.
    scope: Mapped[str] = mapped_column(String(500))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class PlatformAppRow(Base):
    """ghostpost's OAuth app registered on one Mastodon instance (one per instance, reused)."""

    __tablename__ = "platform_apps"
    __table_args__ = (UniqueConstraint("platform", "base_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    base_url: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    #: The client secret, sealed (bound to `platform_app:<platform>:<base_url>`).
    client_secret: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    #: Space-separated scopes it was registered with ("": stored before 0020 kept them).
    scopes: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[datetime]


class PublishAttemptRow(Base):
    """Written before a non-idempotent platform is called, so a crash can be reconciled."""

    __tablename__ = "publish_attempts"

    #: The post's idempotency key: one attempt record per post, reused by every retry.
    idempotency_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    #: What the platform will know the post by, chosen before sending (Bluesky: the TID rkey).
    ref: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class WebSessionRow(Base):
    """A staff web session (ghostpost.web.sessions). The cookie holds a random token; only its
    SHA-256 is stored here, so a copy of this table does not sign anyone in."""

    __tablename__ = "web_sessions"

    #: SHA-256 hex of the cookie's 32-byte random token.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: None for anonymous sessions (they hold the CSRF token and flashes before sign-in).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class MastodonAppRow(Base):
    """An app registered at POST /api/v1/apps. The secret is kept only as a SHA-256 hash."""

    __tablename__ = "mastodon_apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(500))
    #: The registered redirect URIs, one per line.
    redirect_uris: Mapped[str] = mapped_column(Text)
    #: Mastodon scopes the app may ask for, space-separated.
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]


class MastodonAuthCodeRow(Base):
    """An authorization code, hashed: single-use (used_at), short-lived (expires_at)."""

    __tablename__ = "mastodon_auth_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("mastodon_apps.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MastodonTokenRow(Base):
    """An access token of a Mastodon app, hashed; bound to (user, account) unless it is the
    app's own (client credentials). Lasts until revoked."""

    __tablename__ = "mastodon_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("mastodon_apps.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class MediaUploadRow(Base):
    """An uploaded image, before and after it is attached to a post. The bytes live in the
    media store (by `content_hash`); the row says who uploaded it and what it is."""

    __tablename__ = "media_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The id clients see: random, unguessable.
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    #: Who uploaded it, as the ledger names actors: `client:<id>` or `user:<id>`.
    uploaded_by: Mapped[str] = mapped_column(String(120), index=True)
    #: The staff user behind a signed-in app's upload (None for a client's own).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    mime_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    alt_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: The post it is attached to (once attached, never to another).
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"), index=True)


class PostMediaRow(Base):
    """One image of a post, in order, as approved and sent: the content hash names the exact
    bytes in the media store."""

    __tablename__ = "post_media"
    __table_args__ = (UniqueConstraint("post_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
    position: Mapped[int] = mapped_column(Integer)
    #: The upload's public id (what the APIs call the image).
    media_id: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    alt_text: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)


class PrincipalGuardsRow(Base):
    """A principal's guards (domain.guards.PrincipalGuards); no row: the defaults (0023)."""

    __tablename__ = "principal_guards"

    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), primary_key=True)
    #: Folded entries: "#name" for a hashtag, else a term.
    watched: Mapped[list[str]] = mapped_column(JSON)
    first_use_hashtags: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class AccountHashtagRow(Base):
    """A hashtag (folded name) an account has used in a published post, kept when the post is
    recorded published (0023; backfilled from the posts then published)."""

    __tablename__ = "account_hashtags"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_published_at: Mapped[datetime]


class NotificationRow(Base):
    """The outbox: one email to one user about one event, written in the event's own
    transaction and delivered by the worker (claimed, sent, marked sent: once)."""

    __tablename__ = "notifications"
    __table_args__ = (
        # Exactly once per event and recipient.
        UniqueConstraint("user_id", "event_key"),
        # The worker's look-up of what is due.
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: domain.notifications.NotificationKind
    kind: Mapped[str] = mapped_column(String(40))
    #: What caused it: `ledger:<seq>` for an event, `digest:<YYYY-MM-DD>` for a digest.
    event_key: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    #: pending | sent | failed (gave up) | off (the user turned the kind off: digest only)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class NotificationPreferenceRow(Base):
    """A user's choice for one kind; no row: the kind's default."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
