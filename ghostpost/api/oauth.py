"""OAuth 2.0 for schedulers (Authlib): client-credentials tokens, revocation, scopes, rate limits.

- `POST /oauth/token`: the client_credentials grant only; the client authenticates with
  `client_secret_basic` or `client_secret_post`. Tokens are opaque, short-lived
  (`api_token_seconds`), stored as SHA-256 hashes, never refreshed. A scope that is unknown,
  or that the client may not hold, is refused with `invalid_scope` (Authlib alone would drop
  it silently and hand out a token without it).
- `POST /oauth/revoke`: RFC 7009.
- `require_scope(scope)` protects an API view: Bearer token only (never the session cookie),
  401/403 as problem+json with `WWW-Authenticate`, then `flask.g.api_client` and
  `flask.g.api_actor` are set and the client's request budget (`api_rate_limit`) is charged.
- `client_rate_limit` charges that budget explicitly (for public API views: per address).

Every service call goes through ghostpost.services.clients; this module only speaks HTTP.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import unquote

from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.flask_oauth2.requests import (
    FlaskJsonPayload,
    FlaskOAuth2Payload,
    FlaskOAuth2Request,
)
from authlib.integrations.flask_oauth2.signals import token_authenticated
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InsecureTransportError,
    InvalidClientError,
    InvalidGrantError,
    InvalidScopeError,
    MissingAuthorizationError,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import JsonRequest
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from ghostpost.api import errors
from ghostpost.api.scopes import SCOPES
from ghostpost.bootstrap import Container
from ghostpost.domain.model import ApiClient
from ghostpost.http_surface import rate_limiter_of
from ghostpost.rate_limits import Limit, RateLimiter, parse_limits
from ghostpost.services import clients
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("oauth", __name__, url_prefix="/oauth")

#: How a client proves who it is at /oauth/token and /oauth/revoke.
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
REALM = "ghostpost"
#: Token and revocation requests allowed per (claimed client id, address): guessing is slow.
TOKEN_RATE_LIMIT = "30 per minute"
#: Blueprints whose routes take Bearer tokens only, so CSRF (a cookie attack) does not apply.
API_BLUEPRINT_PREFIXES = ("api", "mastodon", "oauth")

_SERVER = "ghostpost.oauth_server"
_LIMITS = "ghostpost.api_limits"
_KINDS = "ghostpost.oauth_client_kinds"


# --- problem+json -------------------------------------------------------------------------


def problem_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """Return the API's problem for `code` (api.errors: its title, its members), with `error`
    repeating the code, as OAuth (RFC 6749 section 5.2) and Mastodon clients read that
    member, and never cached: it answers a credential."""
    response = errors.problem_response(status, code, detail, headers=headers, error=code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _container() -> Container:
    found: Container = current_app.extensions["ghostpost"]
    return found


# --- Authlib's view of clients and tokens ---------------------------------------------------


class _Client(ClientMixin):  # type: ignore[misc]
    """An authenticated ApiClient as Authlib sees it."""

    def __init__(self, record: ApiClient) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        granted = clients.granted_scopes(self.record, scope_to_list(scope))
        return str(list_to_scope(sorted(granted & self.record.scopes)))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        # Never stored in clear: the service compares SHA-256 digests in constant time.
        found = clients.authenticate_client(
            _container().services, self.record.client_id, client_secret
        )
        return found is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def validate_requested_scope(self, scope: str | None) -> None:
        """Refuse unknown scopes and scopes the client may not hold (never drop them)."""
        try:
            requested = clients.parse_scopes(scope or "")
        except clients.InvalidScope as exc:
            raise InvalidScopeError(description=exc.message) from exc
        not_allowed = sorted(requested - self.record.scopes)
        if not_allowed:
            raise InvalidScopeError(
                description=f"Scope(s) not allowed to this client: {' '.join(not_allowed)}."
            )

    def issue_token(self, grant_type: str, user: Any, scope: str | None) -> dict[str, Any]:
        """Issue the token through the service (which stores only its hash); no refresh token."""
        container = _container()
        requested = scope_to_list(scope) or None
        try:
            token, lifetime = clients.issue_token(
                container.services,
                self.record,
                requested,
                lifetime_seconds=container.settings.api_token_seconds,
            )
        except clients.InvalidScope as exc:
            raise InvalidScopeError(description=exc.message) from exc
        except Forbidden as exc:
            raise InvalidClientError(status_code=401, description=exc.message) from exc
        granted = clients.granted_scopes(self.record, requested)
        return {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": lifetime,
            "scope": list_to_scope(sorted(granted)),
        }

    def revoke_token(self, token: str) -> None:
        """Revoke one of this client's tokens (RFC 7009); another client's is refused."""
        try:
            clients.revoke_token(_container().services, self.record, token)
        except Forbidden as exc:
            raise InvalidGrantError(description=exc.message) from exc


class _Token(TokenMixin):  # type: ignore[misc]
    """A resolved access token (the service already refused expired and revoked ones)."""

    def __init__(self, grant: clients.TokenGrant) -> None:
        self.grant = grant

    def check_client(self, client: _Client) -> bool:
        return client.record.id == self.grant.client.id

    def get_scope(self) -> str:
        return str(list_to_scope(sorted(self.grant.scopes)))

    def get_expires_in(self) -> int:
        return max(0, int(self.grant.expires_at.timestamp() - time.time()))

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> None:
        return None

    def get_client(self) -> _Client:
        return _Client(self.grant.client)


@dataclass(frozen=True)
class ClientKind:
    """Another kind of OAuth client served by the same /oauth/token and /oauth/revoke (the
    Mastodon apps of api.mastodon_oauth). Its clients implement what _Client implements:
    validate_requested_scope, issue_token, revoke_token besides Authlib's ClientMixin."""

    #: (client_id, secret) -> the client, or None
    authenticate: Callable[[str, str], Any]
    #: client_id -> the client, or None (for the authorization endpoint and public clients)
    find: Callable[[str], Any]


def register_client_kind(app: Flask, kind: ClientKind) -> None:
    """Serve another kind of client on this app's token and revocation endpoints."""
    app.extensions.setdefault(_KINDS, []).append(kind)


def server_of(app: Flask) -> AuthorizationServer:
    """Return the app's authorization server (to register more grants on it)."""
    found: AuthorizationServer = app.extensions[_SERVER]
    return found


def _kinds() -> list[ClientKind]:
    found: list[ClientKind] = current_app.extensions.get(_KINDS, [])
    return found


def _authenticate(client_id: str | None, secret: str | None) -> Any:
    if not client_id or not secret:
        return None
    # Other kinds first: a miss there logs nothing, a miss among schedulers logs a warning.
    for kind in _kinds():
        found = kind.authenticate(client_id, secret)
        if found is not None:
            return found
    record = clients.authenticate_client(_container().services, client_id, secret)
    return _Client(record) if record is not None else None


def _query_client(client_id: str) -> Any:
    # Scheduler clients are only ever found by authenticating; other kinds may be public.
    for kind in _kinds():
        found = kind.find(client_id)
        if found is not None:
            return found
    return None


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    """Read HTTP Basic credentials (RFC 6749 §2.3.1: each part form-encoded); never raise."""
    kind, _, encoded = (header or "").partition(" ")
    if kind.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, None
    client_id, colon, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if colon else (None, None)


def _client_secret_basic(query_client: Any, oauth_request: Any) -> _Client | None:
    return _authenticate(*_basic_credentials(oauth_request.headers.get("Authorization")))


def _client_secret_post(query_client: Any, oauth_request: Any) -> _Client | None:
    form = oauth_request.form
    return _authenticate(form.get("client_id"), form.get("client_secret"))


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        """Refuse unknown scopes and scopes the client may not hold (never drop them)."""
        self.client.validate_requested_scope(self.request.payload.scope)


class _WithholdIssuedTokens(logging.Filter):
    """authlib logs every token it issues at DEBUG ("Issue token {...} to client"), the access
    token included: keep the record, without the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Issue token"):
            args = record.args if isinstance(record.args, tuple) else ()
            record.args = ("<token withheld>", *args[1:])
        return True


logging.getLogger(ClientCredentialsGrant.__module__).addFilter(_WithholdIssuedTokens())


def _generate_token(
    grant_type: str,
    client: Any,
    user: Any = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    """Issue the token through the client's service (which stores only its hash)."""
    token: dict[str, Any] = client.issue_token(grant_type, user, scope)
    return token


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def create_endpoint_response(self, oauth_request: Any) -> tuple[int, Any, Any]:
        """Revoke the token if it is this client's; unknown tokens are fine (RFC 7009 §2.2)."""
        client = self.authenticate_endpoint_client(oauth_request)
        self.check_params(oauth_request, client)
        client.revoke_token(oauth_request.form["token"])
        return 200, {}, default_json_headers


class _FieldsPayload(FlaskOAuth2Payload):  # type: ignore[misc]
    def __init__(self, fields: MultiDict[str, str]) -> None:
        self._fields = fields

    @property
    def data(self) -> MultiDict[str, str]:
        return self._fields


class _JsonBodyRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """A token or revocation request with a JSON body (masto.js and Ice Cubes send one): its
    string members read as the form fields would."""

    def __init__(self, flask_request: Any, fields: MultiDict[str, str]) -> None:
        super().__init__(flask_request)
        self._fields = fields
        self.payload = _FieldsPayload(CombinedMultiDict([flask_request.args, fields]))

    @property
    def form(self) -> MultiDict[str, str]:
        return self._fields


class _Server(AuthorizationServer):  # type: ignore[misc]
    def create_oauth2_request(self, oauth_request: Any) -> Any:
        """Read a JSON body as a form (RFC 6749 wants a form; Mastodon takes both)."""
        if request.is_json and request.method == "POST":
            body = request.get_json(silent=True)
            if isinstance(body, dict):
                fields = MultiDict({k: v for k, v in body.items() if isinstance(v, str)})
                return _JsonBodyRequest(request._get_current_object(), fields)
        return super().create_oauth2_request(oauth_request)

    def authenticate_client(self, oauth_request: Any, methods: Any, endpoint: str = "token") -> Any:
        """Authenticate the client; every failure gets the same 401 (no hint which part failed)."""
        try:
            return super().authenticate_client(oauth_request, methods, endpoint)
        except InvalidClientError as exc:
            raise InvalidClientError(
                status_code=401,
                description="Client authentication failed (unknown client, wrong secret, "
                "or revoked client).",
            ) from exc


def _build_server(app: Flask) -> AuthorizationServer:
    server = _Server()
    server.init_app(
        app,
        # Scheduler clients are only ever found by authenticating (AUTH_METHODS below).
        query_client=_query_client,
        save_token=lambda token, oauth_request: None,  # issue_token already stored its hash
    )
    server.scopes_supported = list(SCOPES)
    server.register_token_generator("default", _generate_token)
    server.register_client_auth_method("client_secret_basic", _client_secret_basic)
    server.register_client_auth_method("client_secret_post", _client_secret_post)
    server.register_grant(_ClientCredentialsGrant)
    server.register_endpoint(_Revocation)
    return server


def _server() -> AuthorizationServer:
    found: AuthorizationServer = current_app.extensions[_SERVER]
    return found


def _insecure_transport() -> Response:
    return problem_response(
        400, "insecure_transport", "OAuth 2.0 needs https (plain http only on a loopback address)."
    )


@bp.post("/token")
def token() -> Any:
    """Client credentials grant: answer an access token or an RFC 6749 §5.2 error."""
    _charge_token_endpoint()
    try:
        return _server().create_token_response()
    except InsecureTransportError:
        return _insecure_transport()


@bp.post("/revoke")
def revoke() -> Any:
    """RFC 7009 token revocation."""
    _charge_token_endpoint()
    try:
        return _server().create_endpoint_response("revocation")
    except InsecureTransportError:
        return _insecure_transport()


# --- resource protection --------------------------------------------------------------------


class _BearerValidator(BearerTokenValidator):  # type: ignore[misc]
    def authenticate_token(self, token_string: str) -> _Token | None:
        grant = clients.resolve_token(_container().services, token_string)
        return _Token(grant) if grant is not None else None


class _BearerRequest(JsonRequest):  # type: ignore[misc]
    """authlib's FlaskJsonRequest, but the URL is built only if something reads it: werkzeug
    rebuilds and re-encodes it on every access, and bearer validation reads the headers alone."""

    def __init__(self, flask_request: Any) -> None:  # JsonRequest's would assign `uri`
        self.method = flask_request.method
        self.headers = flask_request.headers
        self.payload = FlaskJsonPayload(flask_request)
        self._flask_request = flask_request

    @property
    def uri(self) -> str:
        return str(self._flask_request.url)


class _ResourceProtector(ResourceProtector):  # type: ignore[misc]
    def acquire_token(self, scopes: list[str] | None = None) -> Any:
        """authlib's acquire_token (the same validation, signal and `g` attribute), with the
        request built by _BearerRequest."""
        token = self.validate_request(request=_BearerRequest(request), scopes=scopes)
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token


protector = _ResourceProtector()
protector.register_token_validator(_BearerValidator(realm=REALM))


def _bearer_challenge(error: str | None = None, **params: str) -> str:
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    parts += [f'{name}="{value}"' for name, value in params.items()]
    return "Bearer " + ", ".join(parts)


def _authenticate_request(scope: str | None) -> None:
    """Check the Bearer token and its scope (None: any); set g.api_client and g.api_actor."""
    try:
        found: _Token = protector.acquire_token([scope] if scope else None)
    except MissingAuthorizationError:
        abort(
            problem_response(
                401,
                "unauthorized",
                "This API needs an OAuth 2.0 access token: Authorization: Bearer <token> "
                "(get one at POST /oauth/token).",
                {"WWW-Authenticate": _bearer_challenge()},
            )
        )
    except InsufficientScopeError:
        assert scope is not None
        abort(
            problem_response(
                403,
                "insufficient_scope",
                f"This access token lacks the scope {scope!r}.",
                {"WWW-Authenticate": _bearer_challenge("insufficient_scope", scope=scope)},
            )
        )
    except OAuth2Error:
        abort(
            problem_response(
                401,
                "invalid_token",
                "The access token is invalid, expired or revoked.",
                {"WWW-Authenticate": _bearer_challenge("invalid_token")},
            )
        )
    client = found.grant.client
    g.api_client = client
    g.api_actor = Actor.for_client(client.client_id, client.account_ids)


def require_scope(scope: str) -> Callable[[F], F]:
    """Protect an API view: a valid Bearer token with `scope`, within the client's budget.

    The wrapped view carries `required_scope` (tests walk the URL map for it). Inside the view,
    `current_client()` and `current_api_actor()` tell who is calling.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _authenticate_request(scope)
            _charge_budget()
            return current_app.ensure_sync(view)(*args, **kwargs)

        wrapper.required_scope = scope  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def optional_api_actor() -> Actor | None:
    """For public views that say more to a known caller: None without an Authorization
    header; with one, the token must be valid (any scope, else the same 401 as
    `require_scope`), and its actor is returned and its client charged."""
    if "Authorization" not in request.headers:
        return None
    _authenticate_request(None)
    _charge_budget()
    return current_api_actor()


def current_client() -> ApiClient:
    """Return the API client of this request (inside a `require_scope` view)."""
    client: ApiClient | None = g.get("api_client")
    if client is None:
        raise RuntimeError("current_client() outside a view protected by require_scope")
    return client


def current_api_actor() -> Actor:
    """Return the actor of this request's API client (inside a `require_scope` view)."""
    actor: Actor | None = g.get("api_actor")
    if actor is None:
        raise RuntimeError("current_api_actor() outside a view protected by require_scope")
    return actor


# --- rate limits --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    limiter: RateLimiter
    per_client: list[Limit]
    token_endpoint: list[Limit]


def _limits() -> _Limits:
    found: _Limits = current_app.extensions[_LIMITS]
    return found


def _charge(items: list[Limit], *keys: str, who: str) -> None:
    limiter = _limits().limiter
    for item in items:
        if not limiter.hit(item, *keys):
            retry_after = limiter.window(item, *keys).retry_after
            abort(
                problem_response(
                    429,
                    "rate_limited",
                    f"{who} may make {item.amount} request(s) per {item.multiples} "
                    f"{item.GRANULARITY.name}; retry in {retry_after} s.",
                    {"Retry-After": str(retry_after)},
                )
            )


def _charge_budget() -> None:
    """Charge this request to its client's budget (or its address's, without a client), once."""
    if g.get("_api_budget_charged"):
        return
    g._api_budget_charged = True
    client = g.get("api_client")
    if client is not None:
        _charge(_limits().per_client, "api-client", client.client_id, who="This API client")
    else:
        _charge(_limits().per_client, "api-address", request.remote_addr or "-", who="Your address")


def charge_signed_in_budget(user_id: int) -> None:
    """Charge a request made with a token a staff user granted an app to that user's budget
    (the same amounts as a client's, `api_rate_limit`), once per request."""
    if g.get("_api_budget_charged"):
        return
    g._api_budget_charged = True
    _charge(_limits().per_client, "api-user", str(user_id), who="Your sign-in")


def _charge_token_endpoint() -> None:
    claimed, _ = _basic_credentials(request.headers.get("Authorization"))
    claimed = (claimed or request.form.get("client_id") or "-")[:100]
    _charge(
        _limits().token_endpoint,
        "oauth-token",
        request.remote_addr or "-",
        claimed,
        who="This client, from your address,",
    )


@overload
def client_rate_limit(view_or_limit: F) -> F: ...
@overload
def client_rate_limit(view_or_limit: str | None = None) -> Callable[[F], F]: ...
def client_rate_limit(view_or_limit: F | str | None = None) -> F | Callable[[F], F]:
    """Charge a view's requests to the calling client's budget (`api_rate_limit`).

    `@client_rate_limit` charges the shared per-client budget (once per request: views under
    `require_scope` are already charged, so stacking both is harmless); on a public API view it
    charges the caller's address instead. `@client_rate_limit("10 per minute")` adds a budget of
    its own for that view, per client.
    """
    extra = parse_limits(view_or_limit) if isinstance(view_or_limit, str) else []

    def decorator(view: F) -> F:
        scoped = hasattr(view, "required_scope")

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # Outside require_scope the client is not known yet: require_scope charges it.
            if not scoped or g.get("api_client") is not None:
                _charge_budget()
            client = g.get("api_client")
            if extra and client is not None:
                endpoint = request.endpoint or "-"
                _charge(extra, "api-view", client.client_id, endpoint, who="This API client")
            elif extra:
                endpoint = request.endpoint or "-"
                _charge(extra, "api-view", request.remote_addr or "-", endpoint, who="Your address")
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if callable(view_or_limit):
        return decorator(view_or_limit)
    return decorator


# --- wiring --------------------------------------------------------------------------------


def is_api_blueprint(name: str) -> bool:
    """Tell whether a blueprint (dotted name for nested ones) serves Bearer-token routes only."""
    return name.split(".")[0].startswith(API_BLUEPRINT_PREFIXES)


def init_app(app: Flask) -> None:
    """Register /oauth, exempt the API blueprints from CSRF, and set up per-client limits."""
    # The web surface installs CSRF protection first (create_app's order); the API finds it on
    # the app rather than importing the web surface.
    # (An app without the web surface, such as the Mastodon face, has no cookies and no CSRF.)
    csrf = app.extensions.get("csrf")
    container: Container = app.extensions["ghostpost"]
    if "oauth" not in app.blueprints:
        app.register_blueprint(bp)
    app.extensions[_SERVER] = _build_server(app)
    # The same store as the sign-in limits: memory:// per process, or Redis shared by all.
    app.extensions[_LIMITS] = _Limits(
        limiter=rate_limiter_of(app),
        per_client=parse_limits(container.settings.api_rate_limit),
        token_endpoint=parse_limits(TOKEN_RATE_LIMIT),
    )
    if csrf is None:
        return
    for name, blueprint in app.blueprints.items():
        if is_api_blueprint(name):
            csrf.exempt(blueprint)

    def _exempt_late_api_blueprints() -> None:
        # API blueprints registered after init_app are exempted on their first request;
        # this runs before Flask-WTF's check because it is first in the list.
        name = request.blueprint
        if name and is_api_blueprint(name) and name in current_app.blueprints:
            csrf.exempt(current_app.blueprints[name])

    app.before_request_funcs.setdefault(None, []).insert(0, _exempt_late_api_blueprints)
