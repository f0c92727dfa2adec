"""API clients (OAuth 2.0 client credentials): create, revoke, authenticate, tokens.

Secrets and access tokens are random (256 bits) and are handed out once; only their SHA-256 is
stored. A slow password hash (argon2) protects guessable human passwords; for random 256-bit
values a fast hash is as safe and keeps every token request cheap (no 64 MiB per request).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, ApiClient, Role, User
from ghostpost.services import delegation
from ghostpost.services.authz import (
    is_system,
    may_author,
    may_author_if,
    may_manage,
    require_user,
)
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork

log = logging.getLogger("ghostpost.clients")

#: Every scope an API client may hold, with what it allows.
SCOPES: Mapping[str, str] = {
    "posts:write": "Submit, preview and cancel posts on the client's accounts, for a named writer.",
    "posts:read": "Read the client's posts: state, final text and disclosure decisions.",
    "windows:read": "List the client's accounts and their delegation windows.",
    "audit:read": "Read the ledger and the authorship report of the client's accounts.",
    "guards:write": "Change the watched hashtags and terms of the client's accounts' principal "
    "(as the client's owner may).",
}
#: Default access-token lifetime (the `api_token_seconds` setting overrides it).
DEFAULT_TOKEN_SECONDS = 900
#: Tokens are deleted this long after they expired (they stop working at expiry).
TOKEN_RETENTION = timedelta(days=1)
#: Longest client id / secret / token we even look at (ours are 22 / 43 / 43 characters).
MAX_CREDENTIAL_LENGTH = 200
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_\-]{8,100}$")
_MIN_FIXED_SECRET = 16


class InvalidScope(ValidationFailed):
    """A requested scope is unknown, or not allowed to this client."""

    code = "invalid_scope"


@dataclass(frozen=True)
class TokenGrant:
    """What a valid access token grants: its client and scopes."""

    client: ApiClient
    scopes: frozenset[str]
    token_id: int
    expires_at: datetime


@dataclass(frozen=True)
class ClientListing:
    """A client with the names a person reads: owner, authors, account handles."""

    client: ApiClient
    owner_email: str
    default_author_email: str | None
    account_handles: tuple[str, ...]
    author_emails: tuple[str, ...] = ()


#: One answer for every author a client may not name (unknown email, deactivated, not assigned
#: to the account, not in the client's list, the principal named by someone else's client), so
#: that a client learns nothing about which staff emails exist.
AUTHOR_NOT_ALLOWED = "not an author this client may name for this account"


def author_not_allowed() -> ValidationFailed:
    """Return the one refusal for an author the client may not name (see AUTHOR_NOT_ALLOWED)."""
    return ValidationFailed(
        "The author is not one this client may name for this account.",
        {"author": AUTHOR_NOT_ALLOWED},
    )


def may_name_author(uow: UnitOfWork, client: ApiClient, author: User, account: Account) -> bool:
    """Tell whether `client` may submit a post on `account` written by `author`.

    The author must be in the client's list and allowed to write for the account; the principal
    only through a client their own user owns (a post is the principal's own only when the
    principal submits it).
    """
    return may_name_author_if(
        client, author, account, assigned=lambda: uow.assignments.exists(author.id, account.id)
    )


def may_name_author_if(
    client: ApiClient, author: User, account: Account, *, assigned: Callable[[], bool]
) -> bool:
    """may_name_author, told whether `author` is assigned to `account` (the create's one read)."""
    if account.id not in client.account_ids or author.id not in client.author_ids:
        return False
    if not may_author_if(author, account, assigned=assigned):
        return False
    return not author.is_principal_of(account) or client.owner_id == author.id


def client_of(uow: UnitOfWork, actor: Actor) -> ApiClient | None:
    """Return the API client an actor acts as (fresh from the database), or None for others."""
    if actor.user is not None or actor.account_ids is None or not actor.ref.startswith("client:"):
        return None
    return uow.api_clients.by_client_id(actor.ref.removeprefix("client:"))


def digest(value: str) -> str:
    """Return the SHA-256 (hex) under which a secret or token is stored."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """Return the scopes of a space-separated string or of a list, refusing unknown ones."""
    words = scopes.split() if isinstance(scopes, str) else [w for s in scopes for w in s.split()]
    unknown = sorted(set(words) - set(SCOPES))
    if unknown:
        raise InvalidScope(
            f"Unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}.",
            {"scope": "unknown: " + " ".join(unknown)},
        )
    return frozenset(words)


def granted_scopes(client: ApiClient, requested_scopes: Iterable[str] | None) -> frozenset[str]:
    """Return the scopes a token request gets: those requested, or all the client's."""
    return frozenset(requested_scopes or ()) or client.scopes


def find_accounts(ctx: ServiceContext, refs: Iterable[str]) -> list[int]:
    """Return the ids of the accounts named by id, handle, @handle or platform:handle."""
    with ctx.uow(read_only=True) as uow:
        accounts = uow.accounts.list()
    found: list[int] = []
    for raw in refs:
        ref = raw.strip()
        if not ref:
            continue
        platform, _, handle = ref.rpartition(":")
        handle = handle.lstrip("@")
        matches = [
            a
            for a in accounts
            if (ref.isascii() and ref.isdigit() and a.id == int(ref))
            or (a.handle == handle and platform in ("", a.platform))
        ]
        if not matches:
            raise NotFound(f"No account {ref!r}.")
        if len(matches) > 1:
            names = ", ".join(f"{a.platform}:{a.handle} (id {a.id})" for a in matches)
            raise ValidationFailed(
                f"{ref!r} names several accounts: {names}; say platform:handle or the id.",
                {"accounts": "ambiguous"},
            )
        if matches[0].id not in found:
            found.append(matches[0].id)
    return found


def create_client(
    ctx: ServiceContext,
    actor: Actor,
    *,
    name: str,
    owner_email: str,
    scopes: str | Iterable[str],
    account_ids: Collection[int],
    default_author_email: str | None = None,
    author_emails: Collection[str] | None = None,
    fixed_credentials: tuple[str, str] | None = None,
) -> tuple[ApiClient, str]:
    """Create an API client; return it with its secret, shown this once and stored only hashed.

    `author_emails` are the only authors the client may name; the default author must be one
    of them. Without a list the client may name its default author only (or nobody).
    `fixed_credentials` (client id, secret) is for the DEMO ONLY, so the README's curl example
    works as written; real clients always get random credentials.
    """
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "required"
    elif len(name) > 200:
        errors["name"] = "at most 200 characters"
    granted = parse_scopes(scopes)
    if not granted:
        errors["scopes"] = "at least one scope"
    if not account_ids:
        errors["accounts"] = "at least one account"
    if fixed_credentials is not None and (
        not _CLIENT_ID.match(fixed_credentials[0]) or len(fixed_credentials[1]) < _MIN_FIXED_SECRET
    ):
        errors["credentials"] = "a fixed client id is 8-100 URL-safe characters, a secret 16+"
    if errors:
        raise ValidationFailed("The client cannot be created: " + ", ".join(errors) + ".", errors)
    with ctx.uow() as uow:
        owner = _active_user(uow, owner_email, "owner")
        if not is_system(actor):
            creator = require_user(actor)
            if creator.role is not Role.ADMIN and creator.id != owner.id:
                raise Forbidden("Only admins create API clients owned by someone else.")
        accounts = [_account(uow, account_id) for account_id in sorted(set(account_ids))]
        for account in accounts:
            if not may_manage(owner, account):
                raise Forbidden(
                    f"{owner.name} may not manage @{account.handle}: a client's owner must be "
                    "a manager, an admin or the principal of each of its accounts."
                )
        author, authors = _granted_authors(
            uow, owner, accounts, default_author_email, author_emails
        )
        if fixed_credentials is not None:
            client_id, secret = fixed_credentials
        else:
            # Hex, not URL-safe base64: an id starting with "-" reads as an option to the
            # command line (`ghostpost clients revoke -Rx…` failed one CLI test in 64).
            client_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
        if uow.api_clients.by_client_id(client_id) is not None:
            raise Conflict(f"A client with id {client_id} already exists.")
        client = uow.api_clients.add(
            client_id=client_id,
            secret_hash=digest(secret),
            name=name,
            owner_id=owner.id,
            scopes=granted,
            account_ids=[a.id for a in accounts],
            default_author_id=author.id if author else None,
            author_ids=[a.id for a in authors],
            created_at=ctx.clock.now(),
        )
        uow.ledger.append(
            tag=LedgerTag.CLIENT_CREATED,
            actor=actor.ref,
            subject=f"client:{client.client_id}",
            data={
                "name": name,
                "owner": user_summary(owner),
                "scopes": sorted(granted),
                "accounts": [
                    {"id": a.id, "platform": a.platform, "handle": a.handle} for a in accounts
                ],
                "default_author": user_summary(author) if author else None,
                "authors": [user_summary(a) for a in authors],
            },
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return client, secret


def set_client_authors(
    ctx: ServiceContext,
    actor: Actor,
    client_id: str,
    *,
    author_emails: Collection[str],
    default_author_email: str | None = None,
    keep_default: bool = True,
) -> ApiClient:
    """Replace the authors a client may name; admins, its owner or the system.

    With `keep_default` and no `default_author_email`, the current default author stays, and
    must then be in the new list (the refusal names them); `keep_default=False` clears it.
    """
    with ctx.uow() as uow:
        client = uow.api_clients.by_client_id(client_id)
        if client is None:
            raise NotFound(f"No API client {client_id}.")
        if not is_system(actor):
            user = require_user(actor)
            if user.role is not Role.ADMIN and user.id != client.owner_id:
                raise Forbidden("Only admins and the client's owner change its authors.")
        owner = uow.users.get(client.owner_id)
        assert owner is not None
        accounts = [_account(uow, account_id) for account_id in sorted(client.account_ids)]
        if default_author_email is None and keep_default and client.default_author_id:
            current = uow.users.get(client.default_author_id)
            default_author_email = current.email if current else None
        author, authors = _granted_authors(
            uow, owner, accounts, default_author_email, author_emails, explicit=True
        )
        before = sorted(client.author_ids), client.default_author_id
        new_ids = [a.id for a in authors]
        if before == (sorted(new_ids), author.id if author else None):
            return client
        old_people = {u.id: u for u in uow.users.list() if u.id in client.author_ids}
        client = uow.api_clients.set_authors(client.id, new_ids, author.id if author else None)
        ctx.token_grants.forget()
        old_default = uow.users.get(before[1]) if before[1] is not None else None
        uow.ledger.append(
            tag=LedgerTag.CLIENT_AUTHORS_CHANGED,
            actor=actor.ref,
            subject=f"client:{client.client_id}",
            data={
                "old": {
                    "authors": [user_summary(old_people[i]) for i in before[0] if i in old_people],
                    "default_author": user_summary(old_default) if old_default else None,
                },
                "new": {
                    "authors": [user_summary(a) for a in authors],
                    "default_author": user_summary(author) if author else None,
                },
            },
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
    return client


def _granted_authors(
    uow: UnitOfWork,
    owner: User,
    accounts: list[Account],
    default_author_email: str | None,
    author_emails: Collection[str] | None,
    *,
    explicit: bool = False,
) -> tuple[User | None, list[User]]:
    """Check a client's author list and default author; return (default, authors by email).

    Each author is an active staff user who may write for at least one of the client's
    accounts (submission checks the account itself); the default author for all of them. The
    principal of an account is allowed only when the client's owner is the principal's user.
    """
    default_email = (default_author_email or "").strip().lower() or None
    wanted = [e.strip().lower() for e in (author_emails or ()) if e.strip()]
    if not wanted and not explicit and author_emails is None and default_email:
        wanted = [default_email]
    authors: dict[int, User] = {}
    for email in wanted:
        person = _active_user(uow, email, "author")
        if person.role is Role.AUDITOR:
            raise Conflict(f"{person.name} is an auditor; auditors never write posts.")
        if not any(may_author(uow, person, account) for account in accounts):
            handles = " or ".join(f"@{a.handle}" for a in accounts)
            raise Conflict(
                f"{person.name} is not assigned to {handles}; an author the client may name "
                "must be allowed to write for its accounts."
            )
        for account in accounts:
            if person.is_principal_of(account) and person.id != owner.id:
                raise Forbidden(
                    f"{person.name} is the principal of @{account.handle}: only a client "
                    "the principal's own user owns may post as the principal."
                )
        authors[person.id] = person
    author = None
    if default_email:
        author = _active_user(uow, default_email, "default author")
        if author.id not in authors:
            raise ValidationFailed(
                f"{author.name} (the default author) is not among the authors the client may "
                "name; add them to the authors, or choose another default author.",
                {"default_author": "not among the authors"},
            )
        for account in accounts:
            if not may_author(uow, author, account):
                raise Conflict(
                    f"{author.name} is not assigned to @{account.handle}; the default "
                    "author must be allowed to write for every account of the client."
                )
    return author, sorted(authors.values(), key=lambda u: u.email)


def revoke_client(ctx: ServiceContext, actor: Actor, client_id: str) -> ApiClient:
    """Deactivate a client and revoke its tokens (idempotent); admins, its owner or the system.

    What it submitted and is not out yet is held in the same transaction (services.delegation).
    """
    with ctx.uow() as uow:
        client = uow.api_clients.by_client_id(client_id)
        if client is None:
            raise NotFound(f"No API client {client_id}.")
        if not is_system(actor):
            user = require_user(actor)
            if user.role is not Role.ADMIN and user.id != client.owner_id:
                raise Forbidden("Only admins and the client's owner revoke it.")
        if not client.is_active:
            return client
        now = ctx.clock.now()
        client = uow.api_clients.set_active(client.id, False)
        revoked = uow.api_tokens.revoke_all(client.id, now)
        delegation.lock_accounts_for_withdrawal(uow)
        uow.ledger.append(
            tag=LedgerTag.CLIENT_REVOKED,
            actor=actor.ref,
            subject=f"client:{client.client_id}",
            data={"name": client.name, "tokens_revoked": revoked},
            occurred_at=now,
        )
        delegation.withdraw_client(uow, actor, client, now)
        uow.commit()
    ctx.token_grants.forget()
    return client


def list_clients(ctx: ServiceContext, actor: Actor) -> list[ClientListing]:
    """Return the clients the actor may see (all for admins and the system, else their own)."""
    viewer = None if is_system(actor) else require_user(actor)
    with ctx.uow(read_only=True) as uow:
        handles = {a.id: f"{a.platform}:{a.handle}" for a in uow.accounts.list()}
        emails = {u.id: u.email for u in uow.users.list()}
        listed = uow.api_clients.list()
    return [
        ClientListing(
            client=c,
            owner_email=emails.get(c.owner_id, "?"),
            default_author_email=emails.get(c.default_author_id)
            if c.default_author_id is not None
            else None,
            account_handles=tuple(handles.get(i, str(i)) for i in sorted(c.account_ids)),
            author_emails=tuple(sorted(emails.get(i, str(i)) for i in c.author_ids)),
        )
        for c in listed
        if viewer is None or viewer.role is Role.ADMIN or viewer.id == c.owner_id
    ]


def authenticate_client(ctx: ServiceContext, client_id: str, secret: str) -> ApiClient | None:
    """Return the active client with these credentials (and an active owner), or None."""
    if not client_id or not secret or max(len(client_id), len(secret)) > MAX_CREDENTIAL_LENGTH:
        return None
    with ctx.uow(read_only=True) as uow:
        client = uow.api_clients.by_client_id(client_id)
        stored = uow.api_clients.secret_hash(client_id) if client else None
        usable = client is not None and client.is_active and _owner_active(uow, client)
    # Compared in constant time, and for unknown ids too (against a hash nothing matches).
    matches = hmac.compare_digest(digest(secret), stored or "-" * 64)
    if client is None or not matches or not usable:
        log.warning("API client authentication failed for client_id %r", client_id)
        return None
    return client


def issue_token(
    ctx: ServiceContext,
    client: ApiClient,
    requested_scopes: Iterable[str] | None,
    *,
    lifetime_seconds: int = DEFAULT_TOKEN_SECONDS,
) -> tuple[str, int]:
    """Issue an access token; return it (shown this once) and its lifetime in seconds.

    Grants `granted_scopes(client, requested_scopes)`: no requested scope means every scope of
    the client (the RFC 6749 §3.3 default); a scope the client may not hold is refused with
    InvalidScope, never silently dropped.
    """
    requested = parse_scopes(list(requested_scopes or ()))
    with ctx.uow() as uow:
        current = uow.api_clients.get(client.id)
        if current is None or not current.is_active or not _owner_active(uow, current):
            raise Forbidden("This API client is revoked.")
        not_allowed = sorted(requested - current.scopes)
        if not_allowed:
            raise InvalidScope(
                f"Scope(s) not allowed to this client: {', '.join(not_allowed)}; "
                f"it may ask for: {', '.join(sorted(current.scopes))}.",
                {"scope": "not allowed: " + " ".join(not_allowed)},
            )
        granted = granted_scopes(current, requested)
        token = secrets.token_urlsafe(32)
        now = ctx.clock.now()
        expires_at = now + timedelta(seconds=lifetime_seconds)
        uow.api_tokens.purge_expired(current.id, now - TOKEN_RETENTION)
        stored = uow.api_tokens.add(
            token_hash=digest(token),
            client_row_id=current.id,
            scopes=granted,
            issued_at=now,
            expires_at=expires_at,
        )
        uow.ledger.append(
            tag=LedgerTag.TOKEN_ISSUED,
            actor=f"client:{current.client_id}",
            subject=f"client:{current.client_id}",
            data={
                "token_id": stored.id,
                "scopes": sorted(granted),
                "expires_at": expires_at.isoformat(),
            },
            occurred_at=now,
        )
        uow.commit()
    return token, lifetime_seconds


def resolve_token(ctx: ServiceContext, token: str) -> TokenGrant | None:
    """Return what a bearer token grants, or None when it is unknown, expired or revoked.

    One read (token, client, its accounts and authors, owner), then kept for a few seconds
    (ctx.token_grants): a revocation in another process applies within that bound.
    """
    if not token or len(token) > MAX_CREDENTIAL_LENGTH:
        return None
    token_hash = digest(token)
    now = ctx.clock.now()
    grant: TokenGrant | None = ctx.token_grants.get(token_hash, now)
    if grant is None:
        with ctx.uow(read_only=True) as uow:
            found = uow.submissions.token(token_hash)
        if (
            found is None
            or found.token.revoked_at is not None
            or not found.client.is_active
            or not found.owner_active
        ):
            return None
        client = found.client
        grant = TokenGrant(
            client, found.token.scopes & client.scopes, found.token.id, found.token.expires_at
        )
        ctx.token_grants.put(token_hash, grant, now)
    return grant if grant.expires_at > now else None


def revoke_token(ctx: ServiceContext, client: ApiClient, token: str) -> bool:
    """Revoke one of the client's tokens (RFC 7009); tell whether a live token was revoked.

    Unknown, expired or already revoked tokens are not an error; another client's token is.
    """
    if not token or len(token) > MAX_CREDENTIAL_LENGTH:
        return False
    with ctx.uow() as uow:
        stored = uow.api_tokens.by_hash(digest(token))
        if stored is None:
            return False
        if stored.client_row_id != client.id:
            raise Forbidden("This token was not issued to this client.")
        now = ctx.clock.now()
        if stored.revoked_at is not None or stored.expires_at <= now:
            return False
        uow.api_tokens.revoke(stored.id, now)
        ctx.token_grants.forget(digest(token))
        uow.ledger.append(
            tag=LedgerTag.TOKEN_REVOKED,
            actor=f"client:{client.client_id}",
            subject=f"client:{client.client_id}",
            data={"token_id": stored.id},
            occurred_at=now,
        )
        uow.commit()
    return True


def _active_user(uow: UnitOfWork, email: str, what: str) -> User:
    user = uow.users.by_email(email.strip().lower())
    if user is None:
        raise NotFound(f"No staff user {email.strip()} (the {what}).")
    if not user.is_active:
        raise Conflict(f"{user.name} (the {what}) is deactivated.")
    return user


def _account(uow: UnitOfWork, account_id: int) -> Account:
    account = uow.accounts.get(account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.")
    return account


def _owner_active(uow: UnitOfWork, client: ApiClient) -> bool:
    owner = uow.users.get(client.owner_id)
    return owner is not None and owner.is_active
