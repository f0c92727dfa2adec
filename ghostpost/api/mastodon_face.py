"""The Mastodon face: the Mastodon client API at the root of a host of its own.

Mastodon apps take a host name only and build `https://<host>/api/v1/...` (masto.js drops any
path in the base URL), and those paths overlap ghostpost's own `/api/v1` and `/oauth/token`.
So the face is a second Flask app on the same container (the same services, database, token
cache and rate limiter), and `HostDispatcher` hands it the requests whose Host header names
`mastodon_host`; every other request reaches ghostpost's own app unchanged. Neither app's routes
change, neither surface imports the other, and nothing of ghostpost's (web pages, its API, the
session cookie) is reachable on the Mastodon host. `ghostpost serve --mastodon-port` serves the
face alone on a port of its own instead.

Under the face every answer is JSON: every error is Mastodon's `{"error": "..."}` (401 with
`WWW-Authenticate`), trailing slashes are tolerated, and `/api/*`, `/oauth/token`,
`/oauth/revoke` and `/.well-known/*` allow any origin (bearer tokens only; no cookie exists
here to ride along).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, jsonify, redirect, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ghostpost.api import mastodon_oauth, mastodon_reads, oauth
from ghostpost.api.mastodon import MastodonError
from ghostpost.db.engine import DATABASE_UNAVAILABLE
from ghostpost.domain.errors import DomainError
from ghostpost.http_surface import PROBLEM_MIMETYPE, App, share_rate_limiter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ghostpost.bootstrap import Container

log = logging.getLogger(__name__)

#: Where a face app is kept on ghostpost's own app (`ghostpost serve --mastodon-port` serves it).
EXTENSION = "ghostpost.mastodon_face"
#: Paths a browser app may call from any origin (Mastodon's config/initializers/cors.rb).
CORS_PREFIXES = ("/api/", "/.well-known/")
CORS_PATHS = ("/oauth/token", "/oauth/revoke")
CORS_METHODS = "POST, PUT, DELETE, GET, PATCH, OPTIONS"
CORS_EXPOSED = "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id"

#: Mastodon's own words for the statuses ghostpost's problems carry (doorkeeper, base
#: controller); the problem's detail follows as `error_description`.
STATUS_MESSAGES = {
    400: "Bad request",
    401: "The access token is invalid",
    403: "This action is not allowed",
    404: "Record not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request entity too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
#: DomainError codes -> HTTP status, as ghostpost.api.mastodon maps them.
DOMAIN_STATUS = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "validation_failed": 422,
    "policy_refused": 422,
    "invalid_scope": 422,
}


def mastodon_error(
    status: int,
    message: str,
    description: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """Return Mastodon's error entity: `{"error": ..., "error_description"?: ...}`."""
    body: dict[str, str] = {"error": message}
    if description and description != message:
        body["error_description"] = description
    response = jsonify(body)
    response.status_code = status
    for name, value in headers:
        response.headers[name] = value
    return response


# --- errors: one place for the face -------------------------------------------------------


def _from_mastodon_error(exc: MastodonError) -> Response:
    return mastodon_error(exc.status, exc.message)


def _from_domain_error(exc: DomainError) -> Response:
    status = DOMAIN_STATUS.get(exc.code, 400)
    if status == 404:
        return mastodon_error(404, STATUS_MESSAGES[404])
    if status == 422:
        return mastodon_error(422, f"Validation failed: {exc.message}")
    return mastodon_error(status, exc.message)


def _from_http_exception(exc: HTTPException) -> Response:
    if exc.response is not None:
        # abort(response): the view built the whole Mastodon answer (a 401 with its header).
        return exc.response  # type: ignore[return-value]
    status = exc.code or 500
    headers = []
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers.append(("Allow", ", ".join(sorted(exc.valid_methods))))
    message = STATUS_MESSAGES.get(status, exc.name)
    return mastodon_error(status, message, exc.description if status != 404 else None, headers)


def _database_unavailable(exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__)
    return mastodon_error(
        503,
        "Service unavailable",
        "The database is not answering; retry in a few seconds.",
        [("Retry-After", "5")],
    )


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error under the Mastodon face")
    return mastodon_error(500, STATUS_MESSAGES[500])


def _as_mastodon_error(response: Response) -> Response:
    """Reshape an error answered elsewhere (the OAuth module's problem+json, an HTML page)."""
    detail: str | None = None
    code: str | None = None
    if response.mimetype == PROBLEM_MIMETYPE:
        try:
            problem = json.loads(response.get_data(as_text=True))
        except ValueError:
            problem = {}
        if isinstance(problem, dict):
            detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
            code = problem.get("error") or problem.get("code")
    status = response.status_code
    message = STATUS_MESSAGES.get(status, "Error")
    if status == 403 and code == "insufficient_scope":
        message = "This action is outside the authorized scopes"
    elif status == 400 and code and detail:
        message = detail
    headers = [
        (name, value)
        for name, value in response.headers.items()
        if name in ("WWW-Authenticate", "Retry-After", "Allow")
    ]
    if status == 429:
        headers.append(("X-RateLimit-Remaining", "0"))
    return mastodon_error(status, message, detail, headers)


def _only_json(response: Response) -> Response:
    if response.status_code >= 400 and response.mimetype != "application/json":
        response = _as_mastodon_error(response)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- CORS ---------------------------------------------------------------------------------


def _cors_applies(path: str) -> bool:
    return path.startswith(CORS_PREFIXES) or path.rstrip("/") in CORS_PATHS


def _preflight() -> Response | None:
    if request.method != "OPTIONS" or not _cors_applies(request.path):
        return None
    response = Response(status=200)
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    asked = request.headers.get("Access-Control-Request-Headers")
    if asked:
        response.headers["Access-Control-Allow-Headers"] = asked
    response.headers["Access-Control-Max-Age"] = "7200"
    return response


def _allow_origins(response: Response) -> Response:
    if _cors_applies(request.path):
        # Any origin, never credentials: the face reads bearer tokens only (no cookie here).
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    return response


# --- the app ------------------------------------------------------------------------------


def create_face_app(main: Flask, container: Container) -> Flask:
    """Build the Mastodon face on `main`'s container; it shares `main`'s rate limiter."""
    face = App("ghostpost", static_folder=None, template_folder=None)
    face.config.update(
        SECRET_KEY=container.settings.secret_key,
        TESTING=main.config["TESTING"],
        MAX_CONTENT_LENGTH=main.config["MAX_CONTENT_LENGTH"],
    )
    # Mastodon.py asks for /api/v1/instance/, toot for /oauth/authorize/.
    face.url_map.strict_slashes = False
    face.extensions["ghostpost"] = container
    share_rate_limiter(main, face)
    face.register_blueprint(mastodon_reads.bp)
    # POST /oauth/token and /oauth/revoke on this host too, with Mastodon apps' code grant,
    # and POST /api/v1/apps.
    oauth.init_app(face)
    mastodon_oauth.init_app(face)
    # The consent page is a staff web page: it lives on ghostpost's host, with its session.
    face.add_url_rule("/oauth/authorize", "authorize", _authorize_on_the_main_host)
    face.register_error_handler(MastodonError, _from_mastodon_error)
    face.register_error_handler(DomainError, _from_domain_error)
    face.register_error_handler(HTTPException, _from_http_exception)
    for error_type in DATABASE_UNAVAILABLE:
        face.register_error_handler(error_type, _database_unavailable)
    face.register_error_handler(Exception, _unexpected)
    face.before_request(_preflight)
    face.after_request(_only_json)
    face.after_request(_allow_origins)
    return face


def _authorize_on_the_main_host() -> Response:
    """Send the browser to the staff sign-in and consent page on ghostpost's own host (its
    `public_url`), with the app's request unchanged; the face holds no session cookie."""
    settings = current_app.extensions["ghostpost"].settings
    target = settings.public_url.rstrip("/") + "/oauth/authorize"
    query = request.query_string.decode("ascii", "replace")
    return redirect(f"{target}?{query}" if query else target, code=302)


def face_of(main: Flask) -> Flask:
    """Return the Mastodon face built with `main` (create_app builds it)."""
    face: Flask = main.extensions[EXTENSION]
    return face


def _split_host(value: str, default_port: str | None) -> tuple[str, str | None]:
    name, colon, port = value.strip().lower().rpartition(":")
    if not colon or not port.isdigit():
        name, port = value.strip().lower(), ""
    return name.rstrip("."), port or default_port


class HostDispatcher:
    """WSGI middleware: a request whose Host is `mastodon_host` goes to the face, any other to
    ghostpost. Without a port in `mastodon_host` any port of that host matches (behind a
    proxy passing `Host $host` there is none); with one, only that port."""

    def __init__(self, main: WSGIApplication, face: WSGIApplication, mastodon_host: str) -> None:
        self.main = main
        self.face = face
        self.name, self.port = _split_host(mastodon_host, None)

    def is_face(self, environ: WSGIEnvironment) -> bool:
        """Tell whether this request is for the Mastodon host."""
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        default_port = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
        name, port = _split_host(host, default_port)
        return name == self.name and (self.port is None or port == self.port)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self.face if self.is_face(environ) else self.main
        return app(environ, start_response)


def install(main: Flask, container: Container) -> None:
    """Build the face, keep it on `main`, and route `mastodon_host`'s requests to it."""
    face = create_face_app(main, container)
    main.extensions[EXTENSION] = face
    host = container.settings.mastodon_host
    if host:
        wrapped: Callable[..., Any] = main.wsgi_app
        main.wsgi_app = HostDispatcher(wrapped, face, host)  # type: ignore[method-assign]
