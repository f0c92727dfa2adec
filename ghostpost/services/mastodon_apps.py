"""Signing in like Mastodon: app registration, consent (authorization codes), user-bound tokens.

Anyone may register an app (POST /api/v1/apps), as on Mastodon; an app acts for nobody until a
staff user signs in through it and picks ONE account they may write for. The token is then bound
to (user, account, app) and lasts until revoked; it stops working when the user is deactivated
or no longer assigned to the account (resolve_bearer reads both, and the create reads them again
in its own transaction). Secrets, codes and tokens are random and stored as SHA-256 only.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, MastodonApp, MastodonAuthCode, MastodonToken, User
from ghostpost.services.authz import may_author, require_user
from ghostpost.services.clients import MAX_CREDENTIAL_LENGTH, InvalidScope, digest
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Forbidden, NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork

#: Access tokens of Mastodon apps start with this, so a bearer token says which kind it is.
TOKEN_PREFIX = "gpm."

#: The redirect URI that shows the code on a page instead of redirecting (RFC 6749 "oob").
OOB = "urn:ietf:wg:oauth:2.0:oob"
#: Codes are good this long (RFC 6749 §4.1.2 recommends at most 10 minutes).
CODE_LIFETIME = timedelta(minutes=5)
#: Codes are deleted this long after they expired.
CODE_RETENTION = timedelta(days=1)
#: Mastodon's scope families (docs.joinmastodon.org/api/oauth-scopes). `follow`, `push` and
#: `profile` are accepted because most clients ask for them, and grant nothing in ghostpost.
TOP_SCOPES = frozenset({"read", "write", "follow", "push", "profile"})
READ_PARTS = frozenset(
    {
        *("accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists"),
        *("mutes", "notifications", "search", "statuses"),
    }
)
WRITE_PARTS = frozenset(
    {
        *("accounts", "blocks", "bookmarks", "conversations", "favourites", "filters"),
        *("follows", "lists", "media", "mutes", "notifications", "reports", "statuses"),
    }
)
KNOWN_SCOPES = TOP_SCOPES | {f"read:{p}" for p in READ_PARTS} | {f"write:{p}" for p in WRITE_PARTS}
#: What each ghostpost scope needs among a Mastodon token's scopes.
GHOSTPOST_SCOPE_OF = {"posts:write": "write:statuses", "posts:read": "read:statuses"}
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
#: Schemes a browser would run or render instead of handing the code to an app.
_REFUSED_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob"})


@dataclass(frozen=True)
class MastodonGrant:
    """What a Mastodon bearer token grants: its app, and for a signed-in user's token the
    user and the one account it acts on (both None for the app's own token)."""

    app: MastodonApp
    user: User | None
    account: Account | None
    scopes: frozenset[str]
    token_id: int

    def allows(self, scope: str) -> bool:
        """Tell whether the token holds `scope` (Mastodon or ghostpost), directly or through
        its family (`write` holds `write:statuses`)."""
        return scope_allows(self.scopes, GHOSTPOST_SCOPE_OF.get(scope, scope))

    def actor(self) -> Actor:
        """The actor of a user's token: the user, limited to the token's one account."""
        if self.user is None or self.account is None:
            raise Forbidden("This method requires an authenticated user.")
        return Actor(
            ref=f"user:{self.user.id}",
            user=self.user,
            account_ids=frozenset({self.account.id}),
            via=f"mastodon-app:{self.app.id}",
        )


@dataclass(frozen=True)
class Approval:
    """The consent page's answer: the signed-in user and the account they chose (None when
    the form named none, or nothing that is an id)."""

    actor: Actor
    account_id: int | None


@dataclass(frozen=True)
class SignedInApp:
    """A live token of the user's, as their page lists it."""

    token_id: int
    app_name: str
    app_website: str | None
    account: Account
    scopes: frozenset[str]
    created_at: datetime


def scope_allows(granted: Iterable[str], scope: str) -> bool:
    """Tell whether `granted` holds `scope` itself or its family (`read` holds `read:x`)."""
    held = set(granted)
    return scope in held or scope.partition(":")[0] in held


def parse_scopes(text: str | Iterable[str] | None, *, default: str = "read") -> frozenset[str]:
    """Return Mastodon scopes from a space-separated string or a list; refuse unknown ones."""
    if text is None or text == "" or text == []:
        text = default
    words = text.split() if isinstance(text, str) else [w for s in text for w in str(s).split()]
    unknown = sorted(set(words) - KNOWN_SCOPES)
    if unknown:
        raise InvalidScope(
            f"Unknown scope(s): {' '.join(unknown)[:200]}.", {"scopes": "unknown scope"}
        )
    return frozenset(words)


def _check_redirect_uri(uri: str) -> str | None:
    """Return why `uri` may not be registered, or None."""
    if uri == OOB:
        return None
    if len(uri) > MAX_URI_LENGTH or any(c.isspace() or ord(c) < 32 for c in uri):
        return "a redirect URI is one absolute URI without spaces"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "a redirect URI must be an absolute URI"
    if not _SCHEME.match(parts.scheme or ""):
        return "a redirect URI must be an absolute URI"
    if parts.scheme in _REFUSED_SCHEMES:
        return f"{parts.scheme}: redirect URIs are refused"
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment (RFC 6749 §3.1.2)"
    if parts.scheme in ("http", "https") and not parts.hostname:
        return "an http(s) redirect URI names a host"
    if parts.scheme not in ("http", "https") and not (parts.netloc or parts.path):
        return "a redirect URI must be an absolute URI"
    return None


def register_app(
    ctx: ServiceContext,
    *,
    name: str,
    redirect_uris: str | Sequence[str],
    scopes: str | Sequence[str] | None,
    website: str | None,
) -> tuple[MastodonApp, str]:
    """Register an app (public, as on Mastodon); return it with its secret, shown this once.

    `redirect_uris`: one URI, several separated by newlines (Mastodon.py), or a list."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["client_name"] = "can't be blank"
    elif len(name) > 200:
        errors["client_name"] = "is too long (at most 200 characters)"
    raw = redirect_uris.split("\n") if isinstance(redirect_uris, str) else list(redirect_uris)
    uris = [str(u).strip() for u in raw if str(u).strip()]
    if not uris:
        errors["redirect_uris"] = "can't be blank"
    elif len(uris) > MAX_REDIRECT_URIS:
        errors["redirect_uris"] = f"at most {MAX_REDIRECT_URIS}"
    else:
        problems = [p for p in map(_check_redirect_uri, uris) if p]
        if problems:
            errors["redirect_uris"] = problems[0]
    website = (website or "").strip() or None
    if website is not None and (len(website) > 500 or _check_redirect_uri(website)):
        errors["website"] = "must be an absolute URI of at most 500 characters"
    granted = parse_scopes(scopes)
    if errors:
        detail = ", ".join(f"{k} {v}" for k, v in errors.items())
        raise ValidationFailed(f"Validation failed: {detail}", errors)
    client_id, secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with ctx.uow() as uow:
        app = uow.mastodon_apps.add_app(
            client_id=client_id,
            secret_hash=digest(secret),
            name=name,
            website=website,
            redirect_uris=list(dict.fromkeys(uris)),
            scopes=granted,
            created_at=ctx.clock.now(),
        )
        uow.commit()
    return app, secret


def find_app(ctx: ServiceContext, client_id: str) -> MastodonApp | None:
    """Return the app with this client id, or None."""
    if not client_id or len(client_id) > MAX_CREDENTIAL_LENGTH:
        return None
    with ctx.uow(read_only=True) as uow:
        found = uow.mastodon_apps.app_by_client_id(client_id)
    return found[0] if found else None


def authenticate_app(ctx: ServiceContext, client_id: str, secret: str) -> MastodonApp | None:
    """Return the app with these credentials, or None (compared in constant time)."""
    if not client_id or not secret or max(len(client_id), len(secret)) > MAX_CREDENTIAL_LENGTH:
        return None
    with ctx.uow(read_only=True) as uow:
        found = uow.mastodon_apps.app_by_client_id(client_id)
    matches = hmac.compare_digest(digest(secret), found[1] if found else "-" * 64)
    return found[0] if found and matches else None


def requestable_scopes(app: MastodonApp, requested: str | None) -> frozenset[str]:
    """The scopes an authorization or client-credentials request gets: those asked for (the
    app's own by default), each within what the app registered; refused otherwise."""
    wanted = parse_scopes(requested, default=" ".join(sorted(app.scopes)))
    beyond = sorted(s for s in wanted if not scope_allows(app.scopes, s))
    if beyond:
        raise InvalidScope(
            f"Scope(s) beyond what this app registered: {' '.join(beyond)}.",
            {"scope": "not registered"},
        )
    return wanted


def accounts_to_offer(ctx: ServiceContext, actor: Actor) -> list[Account]:
    """The accounts the signed-in user may let an app post to: those they may write for (the
    principal's own accounts count for the principal)."""
    user = require_user(actor)
    with ctx.uow(read_only=True) as uow:
        return [a for a in uow.accounts.list() if may_author(uow, user, a)]


def grant_code(
    ctx: ServiceContext,
    actor: Actor,
    *,
    app: MastodonApp,
    code: str,
    account_id: int | None,
    redirect_uri: str,
    scopes: Iterable[str],
    code_challenge: str | None,
    code_challenge_method: str | None,
) -> None:
    """The user approves the app for one account: store `code` (the random code the
    authorization server made; only its hash) bound to the app, the redirect URI, the user and
    the account. A forged account (not one the user may write for) is refused, nothing stored."""
    user = require_user(actor)
    if redirect_uri not in app.redirect_uris:
        raise Forbidden("This redirect URI is not registered for the app.")
    if code_challenge is not None and code_challenge_method != "S256":
        raise ValidationFailed("Only the S256 code challenge method is accepted.", {})
    refused = ValidationFailed(
        "Choose one of the accounts you write for.", {"account_id": "not one of yours"}
    )
    if account_id is None:
        raise refused
    if not code or len(code) > MAX_CREDENTIAL_LENGTH:
        raise ValidationFailed("A code is 1 to 200 characters.", {})
    now = ctx.clock.now()
    with ctx.uow() as uow:
        current = uow.users.get(user.id)
        account = uow.accounts.get(account_id)
        if current is None or account is None or not may_author(uow, current, account):
            raise refused
        uow.mastodon_apps.purge_codes(now - CODE_RETENTION)
        uow.mastodon_apps.add_code(
            code_hash=digest(code),
            app_id=app.id,
            user_id=current.id,
            account_id=account.id,
            redirect_uri=redirect_uri,
            scopes=frozenset(scopes),
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method if code_challenge else None,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
        uow.commit()


def find_code(ctx: ServiceContext, app: MastodonApp, code: str) -> MastodonAuthCode | None:
    """Return the unused, unexpired code if it was issued to `app`, else None."""
    if not code or len(code) > MAX_CREDENTIAL_LENGTH:
        return None
    with ctx.uow(read_only=True) as uow:
        found = uow.mastodon_apps.code_by_hash(digest(code))
    if (
        found is None
        or found.app_id != app.id
        or found.used_at is not None
        or found.expires_at <= ctx.clock.now()
    ):
        return None
    return found


def exchange_code(
    ctx: ServiceContext, app: MastodonApp, code: MastodonAuthCode
) -> tuple[str, MastodonToken]:
    """Spend the code (once: a second exchange finds it used) and issue the user's token, in one
    transaction with its ledger entry. Refused (Forbidden) when the code was used meanwhile, or
    the user may no longer write for the account."""
    now = ctx.clock.now()
    token = secrets.token_urlsafe(32)
    with ctx.uow() as uow:
        if code.app_id != app.id or code.expires_at <= now:
            raise Forbidden("Invalid 'code' in request.")
        if not uow.mastodon_apps.use_code(code.id, now):
            raise Forbidden("This code was already used.")
        user = uow.users.get(code.user_id)
        account = uow.accounts.get(code.account_id)
        if user is None or account is None or not may_author(uow, user, account):
            raise Forbidden("The user who approved may no longer write for this account.")
        stored = uow.mastodon_apps.add_token(
            token_hash=digest(token),
            app_id=app.id,
            user_id=user.id,
            account_id=account.id,
            scopes=code.scopes,
            created_at=now,
        )
        uow.ledger.append(
            tag=LedgerTag.TOKEN_ISSUED,
            actor=f"user:{user.id}",
            subject=f"account:{account.id}",
            data={
                "mastodon_app": {"id": app.id, "name": app.name, "website": app.website},
                "token_id": stored.id,
                "user": user_summary(user),
                "scopes": sorted(code.scopes),
            },
            occurred_at=now,
        )
        uow.commit()
    return token, stored


def issue_app_token(
    ctx: ServiceContext, app: MastodonApp, scopes: Iterable[str]
) -> tuple[str, MastodonToken]:
    """Issue the app's own token (client credentials): it identifies the app, acts for nobody."""
    token = secrets.token_urlsafe(32)
    with ctx.uow() as uow:
        stored = uow.mastodon_apps.add_token(
            token_hash=digest(token),
            app_id=app.id,
            user_id=None,
            account_id=None,
            scopes=frozenset(scopes),
            created_at=ctx.clock.now(),
        )
        uow.commit()
    return token, stored


def _grant_key(token_hash: str) -> str:
    return f"mastodon:{token_hash}"


def resolve_bearer(ctx: ServiceContext, token: str) -> MastodonGrant | None:
    """Resolve a Mastodon bearer token to (app, user, account, scopes), or None when it is
    unknown or revoked, its user is deactivated, or its user may no longer write for its
    account. Kept in ctx.token_grants (api_token_cache_seconds): a change made in another
    process applies here within that bound; one made in this process at once."""
    if not token or len(token) > MAX_CREDENTIAL_LENGTH:
        return None
    token_hash = digest(token)
    now = ctx.clock.now()
    found = ctx.token_grants.get(_grant_key(token_hash), now)
    if isinstance(found, MastodonGrant):
        return found
    with ctx.uow(read_only=True) as uow:
        grant = _read_grant(uow, token_hash)
    if grant is not None:
        ctx.token_grants.put(_grant_key(token_hash), grant, now)
    return grant


def _read_grant(uow: UnitOfWork, token_hash: str) -> MastodonGrant | None:
    stored = uow.mastodon_apps.token_by_hash(token_hash)
    if stored is None or stored.revoked_at is not None:
        return None
    app = uow.mastodon_apps.app(stored.app_id)
    if app is None:
        return None
    if stored.user_id is None:
        return MastodonGrant(app, None, None, stored.scopes, stored.id)
    user = uow.users.get(stored.user_id)
    account = uow.accounts.get(stored.account_id) if stored.account_id is not None else None
    if user is None or account is None or not may_author(uow, user, account):
        return None
    return MastodonGrant(app, user, account, stored.scopes, stored.id)


def revoke_by_app(ctx: ServiceContext, app: MastodonApp, token: str) -> bool:
    """Revoke one of the app's tokens (RFC 7009); tell whether a live token was revoked.
    Unknown tokens are fine; another app's token is Forbidden."""
    if not token or len(token) > MAX_CREDENTIAL_LENGTH:
        return False
    token_hash = digest(token)
    with ctx.uow() as uow:
        stored = uow.mastodon_apps.token_by_hash(token_hash)
        if stored is None:
            return False
        if stored.app_id != app.id:
            raise Forbidden("This token was not issued to this app.")
        revoked = _revoke(uow, ctx, stored, f"mastodon-app:{app.client_id}")
        uow.commit()
    ctx.token_grants.forget(_grant_key(token_hash))
    return revoked


def _revoke(uow: UnitOfWork, ctx: ServiceContext, stored: MastodonToken, actor_ref: str) -> bool:
    now = ctx.clock.now()
    if not uow.mastodon_apps.revoke_token(stored.id, now):
        return False
    if stored.user_id is not None:
        uow.ledger.append(
            tag=LedgerTag.TOKEN_REVOKED,
            actor=actor_ref,
            subject=f"account:{stored.account_id}",
            data={"mastodon_app_id": stored.app_id, "token_id": stored.id},
            occurred_at=now,
        )
    return True


def signed_in_apps(ctx: ServiceContext, actor: Actor) -> list[SignedInApp]:
    """The user's live app tokens, for their own page."""
    user = require_user(actor)
    with ctx.uow(read_only=True) as uow:
        listed = []
        for token in uow.mastodon_apps.tokens_of_user(user.id):
            app = uow.mastodon_apps.app(token.app_id)
            account = uow.accounts.get(token.account_id or 0)
            if app is None or account is None:
                continue
            listed.append(
                SignedInApp(
                    token.id, app.name, app.website, account, token.scopes, token.created_at
                )
            )
    return listed


def revoke_own_token(ctx: ServiceContext, actor: Actor, token_id: int) -> None:
    """The user revokes one of their own app tokens (another's is NotFound)."""
    user = require_user(actor)
    with ctx.uow() as uow:
        stored = uow.mastodon_apps.token(token_id)
        if stored is None or stored.user_id != user.id or stored.revoked_at is not None:
            raise NotFound(f"No app token {token_id} of yours.")
        _revoke(uow, ctx, stored, actor.ref)
        uow.commit()
    # Its hash is not at hand here: forget every grant (costs one read per live token).
    ctx.token_grants.forget()
