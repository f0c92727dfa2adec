"""Signing in like Mastodon, the API half: `POST /api/v1/apps`, and Mastodon apps on the shared
`POST /oauth/token` (authorization_code with PKCE, client_credentials) and `POST /oauth/revoke`.

The authorize and consent pages are web pages (ghostpost.web.authorize); they drive the same
Authlib server, which this module teaches about Mastodon apps (api.oauth.ClientKind) and the
authorization-code grant.

PKCE: only S256. `plain` is refused, and so is a challenge without its method (RFC 7636 would
default it to plain). A code bound to a challenge needs its verifier; a client that does not
authenticate (`none`, a public client) may redeem only such a code. A confidential client (it
sends its secret) may skip PKCE, as toot and Mastodon.py do; its secret then stands in.

Tokens of Mastodon apps start with TOKEN_PREFIX, so a bearer token is dispatched by its form:
scheduler tokens keep their one cached read, Mastodon tokens resolve through
services.mastodon_apps.resolve_bearer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.util import list_to_scope
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request

from ghostpost.api import oauth
from ghostpost.domain.model import MastodonApp, MastodonAuthCode
from ghostpost.http_surface import container, services
from ghostpost.services import mastodon_apps
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden, ValidationFailed

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("mastodon_oauth", __name__)

#: Mastodon refuses registrations beyond its rate limit too; ours is per address.
APPS_RATE_LIMIT = "30 per 5 minutes"
#: Mastodon apps' tokens carry this prefix (never in a urlsafe-base64 scheduler token).
TOKEN_PREFIX = mastodon_apps.TOKEN_PREFIX
#: Mastodon's own answer for an app token on a user's method (M:api/base_controller.rb).
NEEDS_USER = "This method requires an authenticated user"


# --- Authlib's view of Mastodon apps --------------------------------------------------------


class AppClient(ClientMixin):  # type: ignore[misc]
    """A Mastodon app as Authlib sees it (see oauth.ClientKind)."""

    def __init__(self, app: MastodonApp, *, authenticated: bool) -> None:
        self.app = app
        self.authenticated = authenticated

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Mastodon needs redirect_uri; with a single registered one, it is unambiguous.
        return self.app.redirect_uris[0] if len(self.app.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        try:
            return str(list_to_scope(sorted(mastodon_apps.requestable_scopes(self.app, scope))))
        except ValidationFailed as exc:
            raise InvalidScopeError(description=exc.message) from exc

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact match only (RFC 6749 §3.1.2.3 for registered URIs): no prefix, no path games.
        return redirect_uri in self.app.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        found = mastodon_apps.authenticate_app(services(), self.app.client_id, client_secret)
        return found is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "none":
            return endpoint == "token"
        return method in oauth.AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.authenticated
        return grant_type == "authorization_code"

    def validate_requested_scope(self, scope: str | None) -> None:
        self.get_allowed_scope(scope)

    def issue_token(self, grant_type: str, user: Any, scope: str | None) -> dict[str, Any]:
        """Issue a Mastodon-shaped token: no expiry, `created_at` as Mastodon answers it."""
        ctx = services()
        try:
            if grant_type == "authorization_code":
                token, stored = mastodon_apps.exchange_code(ctx, self.app, user.record)
            else:
                scopes = mastodon_apps.requestable_scopes(self.app, scope)
                token, stored = mastodon_apps.issue_app_token(ctx, self.app, scopes)
        except Forbidden as exc:
            raise InvalidGrantError(description=exc.message) from exc
        except ValidationFailed as exc:
            raise InvalidScopeError(description=exc.message) from exc
        return {
            "access_token": TOKEN_PREFIX + token,
            "token_type": "Bearer",
            "scope": list_to_scope(sorted(stored.scopes)),
            "created_at": int(stored.created_at.timestamp()),
        }

    def revoke_token(self, token: str) -> None:
        if not token.startswith(TOKEN_PREFIX):
            return  # not one of ours: unknown tokens are fine (RFC 7009 §2.2)
        try:
            mastodon_apps.revoke_by_app(services(), self.app, token.removeprefix(TOKEN_PREFIX))
        except Forbidden as exc:
            # Mastodon answers someone else's token so.
            raise UnauthorizedClientError(status_code=403, description=exc.message) from exc


class _Code:
    """An authorization code as Authlib's grant sees it."""

    def __init__(self, record: MastodonAuthCode) -> None:
        self.record = record

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return str(list_to_scope(sorted(self.record.scopes)))


class _MastodonCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

    def validate_requested_scope(self) -> None:
        # Mastodon scopes, within the app's (the server's scopes_supported are ghostpost's own).
        self.client.get_allowed_scope(self.request.payload.scope)

    def save_authorization_code(self, code: str, oauth_request: Any) -> None:
        approval: mastodon_apps.Approval = oauth_request.user
        data = oauth_request.payload.data
        mastodon_apps.grant_code(
            services(),
            approval.actor,
            app=oauth_request.client.app,
            code=code,
            account_id=approval.account_id,
            redirect_uri=self.redirect_uri,
            scopes=oauth_request.scope.split(),
            code_challenge=data.get("code_challenge") or None,
            code_challenge_method=data.get("code_challenge_method") or None,
        )

    def query_authorization_code(self, code: str, client: AppClient) -> _Code | None:
        if not isinstance(client, AppClient):
            return None
        found = mastodon_apps.find_code(services(), client.app, code)
        return _Code(found) if found is not None else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Nothing: exchange_code spent the code in the token's own transaction."""

    def authenticate_user(self, authorization_code: _Code) -> _Code:
        # The user and account are checked again when the code is spent (exchange_code).
        return authorization_code


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only: `plain`, and a challenge without a method, are refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if (challenge or method) and method != "S256":
            raise InvalidRequestError(
                "Only code_challenge_method=S256 is accepted (plain is refused)."
            )
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: _Code) -> str | None:
        return authorization_code.record.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: _Code) -> str | None:
        return authorization_code.record.code_challenge_method


def _authenticate_app(client_id: str, secret: str) -> AppClient | None:
    found = mastodon_apps.authenticate_app(services(), client_id, secret)
    return AppClient(found, authenticated=True) if found is not None else None


def _find_app(client_id: str) -> AppClient | None:
    found = mastodon_apps.find_app(services(), client_id)
    return AppClient(found, authenticated=False) if found is not None else None


# --- POST /api/v1/apps -----------------------------------------------------------------------


def _mastodon_error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _body() -> dict[str, Any]:
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(_mastodon_error(422, "Validation failed: the body must be a JSON object"))
        return body
    form: dict[str, Any] = {k: v for k, v in request.form.items()}
    if "redirect_uris[]" in request.form:
        form["redirect_uris"] = request.form.getlist("redirect_uris[]")
    return form


@bp.post("/api/v1/apps")
@oauth.client_rate_limit(APPS_RATE_LIMIT)
def create_app() -> Any:
    """Register an app as Mastodon does; answer the Application entity with its secret."""
    body = _body()
    uris = body.get("redirect_uris")
    scopes = body.get("scopes")
    name, website = body.get("client_name"), body.get("website")
    if not isinstance(uris, str | list) or not isinstance(scopes, str | list | None):
        return _mastodon_error(422, "Validation failed: redirect_uris and scopes are strings")
    if not isinstance(name, str) or not isinstance(website, str | None):
        return _mastodon_error(422, "Validation failed: client_name can't be blank")
    try:
        app, secret = mastodon_apps.register_app(
            services(), name=name, redirect_uris=uris, scopes=scopes, website=website
        )
    except ValidationFailed as exc:
        return _mastodon_error(422, exc.message)
    response = jsonify(
        id=str(app.id),
        name=app.name,
        website=app.website,
        scopes=sorted(app.scopes),
        redirect_uris=list(app.redirect_uris),
        # Deprecated in Mastodon 4.3, still read by megalodon and Ice Cubes.
        redirect_uri="\n".join(app.redirect_uris),
        client_id=app.client_id,
        client_secret=secret,
        client_secret_expires_at=0,
        # ghostpost has no Web Push; Mastodon answers its VAPID key here.
        vapid_key="",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata() -> Any:
    """RFC 8414 metadata as Mastodon 4.3+ serves it (Mastodon.py takes its OAuth URLs from it;
    Phanpy turns PKCE on when S256 is listed). URLs come from `public_url`, never the Host
    header."""
    base = container().settings.public_url.rstrip("/")
    response = jsonify(
        issuer=base + "/",
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        revocation_endpoint=f"{base}/oauth/revoke",
        app_registration_endpoint=f"{base}/api/v1/apps",
        scopes_supported=sorted(mastodon_apps.KNOWN_SCOPES),
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "client_credentials"],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
        service_documentation="https://docs.joinmastodon.org/",
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# --- bearer tokens on the Mastodon routes ----------------------------------------------------


def current_mastodon_grant() -> mastodon_apps.MastodonGrant | None:
    """The signed-in user's grant of this request (None for a scheduler's token)."""
    found: mastodon_apps.MastodonGrant | None = g.get("mastodon_grant")
    return found


def _bearer() -> str | None:
    kind, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if kind.lower() == "bearer" else None


def _invalid_token() -> Response:
    response = _mastodon_error(401, "The access token is invalid")
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="{oauth.REALM}", error="invalid_token", '
        'error_description="The access token is invalid"'
    )
    return response


def optional_token_actor() -> Actor | None:
    """For public Mastodon routes that say more to a known caller (`instance`): None without
    an Authorization header; a scheduler's token as `oauth.optional_api_actor`; a signed-in
    app's token must be valid (else the same 401 as `require_token`), and gives its actor."""
    token = _bearer()
    if token is None or not token.startswith(TOKEN_PREFIX):
        return oauth.optional_api_actor()
    grant = mastodon_apps.resolve_bearer(services(), token.removeprefix(TOKEN_PREFIX))
    if grant is None:
        abort(_invalid_token())
    if grant.user is None:
        return None  # the app's own token: app-level calls, no account of its own
    oauth.charge_signed_in_budget(grant.user.id)
    return grant.actor()


def require_token(scope: str, *, mastodon_scope: str | None = None) -> Callable[[F], F]:
    """Protect a Mastodon route: a scheduler's token (api.oauth.require_scope, unchanged) or a
    token a staff user granted a Mastodon app, holding `mastodon_scope` (by default the one
    `scope` maps to: posts:write needs write:statuses; `write` holds it). A user's token sets
    `current_api_actor()` to that user, limited to the token's one account."""
    needed = mastodon_scope or mastodon_apps.GHOSTPOST_SCOPE_OF.get(scope, scope)

    def decorator(view: F) -> F:
        as_scheduler = oauth.require_scope(scope)(view)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _bearer()
            if token is None or not token.startswith(TOKEN_PREFIX):
                return as_scheduler(*args, **kwargs)
            grant = mastodon_apps.resolve_bearer(services(), token.removeprefix(TOKEN_PREFIX))
            if grant is None:
                return _invalid_token()
            if grant.user is None:
                return _mastodon_error(422, NEEDS_USER)
            if not grant.allows(needed):
                return _mastodon_error(403, "This action is outside the authorized scopes")
            g.mastodon_grant = grant
            g.api_actor = grant.actor()
            oauth.charge_signed_in_budget(grant.user.id)
            return current_app.ensure_sync(view)(*args, **kwargs)

        wrapper.required_scope = scope  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def init_app(app: Flask) -> None:
    """Register /api/v1/apps and teach the app's OAuth server about Mastodon apps (after
    oauth.init_app)."""
    if "mastodon_oauth" not in app.blueprints:
        app.register_blueprint(bp)
    oauth.register_client_kind(app, oauth.ClientKind(_authenticate_app, _find_app))
    oauth.server_of(app).register_grant(_MastodonCodeGrant, [_S256Only(required=True)])
