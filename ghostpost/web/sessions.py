"""Server-side sessions for the staff web app (Flask SessionInterface).

Flask's default session is a signed cookie: it cannot be revoked, so logout, deactivation and
timeouts could only be enforced by trusting the browser. Here the cookie carries only a random
token; the session's data lives in `web_sessions` under the token's SHA-256
(ghostpost.services.web_sessions). Cookie attributes (name, HttpOnly, SameSite, Secure) come
from the app config set in create_app.

An anonymous visitor stores nothing on the server: while a session holds only what a visitor
who is not signed in may have (the CSRF secret of the sign-in form, flashed messages), it lives
in a second cookie signed with the secret key (`<session cookie>-anon`) with its issue time.
Flask-WTF's form token is an HMAC of that secret, so the sign-in form is protected by a signed
double-submit cookie: a form token only passes together with the cookie of the browser it was
issued to, and nobody without the secret key can mint a cookie. Signing in (or a half sign-in
waiting for its second factor) moves to a server-side session with a fresh id and drops the
anonymous cookie.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, Request, Response, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SessionInterface
from itsdangerous import BadSignature, URLSafeSerializer

from ghostpost.bootstrap import Container, timeouts
from ghostpost.db.engine import DATABASE_UNAVAILABLE
from ghostpost.domain.sessions import WebSession
from ghostpost.services.web_sessions import (
    open_web_session,
    revoke_web_session,
    save_web_session,
    start_web_session,
)
from ghostpost.settings import Settings

EXPIRED_MESSAGE = "Your session expired; sign in again."
#: Our tokens are 43 characters; anything much longer is not ours and not worth a query.
log = logging.getLogger("ghostpost.web.sessions")
_MAX_TOKEN_LENGTH = 100
#: The only keys an anonymous session may hold; any other key (a user, a pending second
#: factor) makes it a server-side session.
ANONYMOUS_KEYS = frozenset({"csrf_token", "_flashes"})
#: A signed anonymous cookie is no longer than this (a CSRF secret and a few messages).
_MAX_ANONYMOUS_COOKIE_LENGTH = 3000
_ANONYMOUS_SALT = "ghostpost.web.sessions.anonymous"


class ServerSession(SecureCookieSession):
    """A dict of session values plus the stored session it was loaded from (if any)."""

    def __init__(
        self,
        initial: dict[str, Any] | None = None,
        *,
        stored: WebSession | None = None,
        had_cookie: bool = False,
    ) -> None:
        super().__init__(initial)
        self.stored = stored
        #: The browser sent a cookie (perhaps of a dead session) that may need deleting.
        self.had_cookie = had_cookie
        #: Set by `regenerate`: save under a new id and revoke the old one.
        self.regenerate = False
        #: The cookie named a session that is gone (revoked, timed out, unknown).
        self.dead = False
        #: The database could not be asked: the request is answered 503 before any view.
        self.unavailable: Exception | None = None
        #: The browser sent an anonymous (signed, stateless) session cookie.
        self.had_anonymous_cookie = False
        #: Set by `not_activity`: this request does not count as the user being there.
        self.passive = False


class DetachedSession(ServerSession):
    """The session of a request to a bearer-token surface (the API, the Mastodon
    compatibility routes): empty, never read from or saved to the database, and never a
    cookie. Values written to it are dropped when the request ends."""


#: Paths served to bearer tokens only: they never read or write the staff web session (a
#: session row read and a `last_seen_at` write each request cost a staff page view, and a
#: token request has no business extending a browser's session).
BEARER_PATH_PREFIXES = ("/api/", "/compat/mastodon/")
BEARER_PATHS = frozenset({"/oauth/token", "/oauth/revoke"})


def is_bearer_path(path: str) -> bool:
    """Tell whether `path` belongs to a bearer-token surface (no staff web session there)."""
    return path in BEARER_PATHS or path.startswith(BEARER_PATH_PREFIXES)


def is_anonymous(data: dict[str, Any]) -> bool:
    """Tell whether session data holds only what a visitor who is not signed in may have."""
    return set(data) <= ANONYMOUS_KEYS


def not_activity() -> None:
    """Do not count this request as activity: it neither marks the session seen nor keeps it
    alive. For requests a page makes by itself (live status polls), so a tab left open is
    still signed out after the idle timeout."""
    current = session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(current, ServerSession):
        current.passive = True


def regenerate() -> None:
    """Give the current session a new id when this request ends; the old id is revoked.

    Called whenever the privilege changes (sign-in, sign-out), so an id planted or observed
    before cannot ride along (session fixation).
    """
    current = session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(current, ServerSession):
        current.regenerate = True
    # Flask-WTF caches the request's CSRF token in g; drop it so the new session gets its own.
    g.pop("csrf_token", None)


def init_app(app: Flask) -> None:
    """Keep sessions server-side and send form posts of dead sessions to /login."""
    app.session_interface = ServerSessionInterface()
    # First in line, before Flask-WTF's check: a form posted from a page whose session has
    # since expired would otherwise get a bare "CSRF session token missing" 400.
    app.before_request_funcs.setdefault(None, []).insert(0, _dead_session_post_to_login)


def _dead_session_post_to_login() -> Any:
    from ghostpost.web import BLUEPRINTS  # the staff and public pages, never the API

    current = session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(current, ServerSession) and current.unavailable is not None:
        raise current.unavailable
    if not (isinstance(current, ServerSession) and current.dead):
        return None
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None  # login_required sends these to /login; public pages stay public
    if request.blueprint not in {bp.name for bp in BLUEPRINTS}:
        return None
    if "_flashes" not in current:
        flash(EXPIRED_MESSAGE, "error")
    return redirect(url_for("auth.login"))


def _container(app: Flask) -> Container:
    found: Container = app.extensions["ghostpost"]
    return found


class ServerSessionInterface(SessionInterface):
    """Loads and saves sessions through ghostpost.services.web_sessions, reading time only
    from the container's clock."""

    @staticmethod
    def anonymous_cookie_name(app: Flask) -> str:
        """Return the name of the anonymous session cookie (keeps a `__Host-` prefix)."""
        return f"{app.config['SESSION_COOKIE_NAME']}-anon"

    @staticmethod
    def _serializer(app: Flask) -> URLSafeSerializer:
        return URLSafeSerializer(str(app.secret_key), salt=_ANONYMOUS_SALT)

    def _open_anonymous(self, app: Flask, request: Request) -> ServerSession:
        raw = request.cookies.get(self.anonymous_cookie_name(app))
        if not raw:
            return ServerSession()
        fresh = ServerSession()
        fresh.had_anonymous_cookie = True
        if len(raw) > _MAX_ANONYMOUS_COOKIE_LENGTH:
            return fresh
        try:
            payload = self._serializer(app).loads(raw)
        except BadSignature:
            return fresh
        container = _container(app)
        issued, data = (payload.get("t"), payload.get("d")) if isinstance(payload, dict) else (0, 0)
        if not isinstance(issued, int | float) or not isinstance(data, dict):
            return fresh
        if not is_anonymous(data):
            return fresh  # signed by us, yet more than an anonymous session may hold
        age = container.clock.now().timestamp() - issued
        if not 0 <= age <= timeouts(container.settings).idle.total_seconds():
            fresh.dead = True  # like a timed-out server session: a POST goes back to /login
            return fresh
        opened = ServerSession(data)
        opened.had_anonymous_cookie = True
        return opened

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        if is_bearer_path(request.path):
            return DetachedSession()
        container = _container(app)
        token = request.cookies.get(self.get_cookie_name(app))
        if not token:
            return self._open_anonymous(app, request)
        if len(token) > _MAX_TOKEN_LENGTH:
            return ServerSession(had_cookie=True)
        try:
            opened = open_web_session(container.services, token, timeouts(container.settings))
        except DATABASE_UNAVAILABLE as exc:
            # Raised here, Flask would answer a bare 500 (sessions open before error handling);
            # the first before_request hook re-raises it, and the 503 handler answers.
            unavailable = ServerSession(had_cookie=True)
            unavailable.unavailable = exc
            return unavailable
        if opened.session is not None:
            return ServerSession(opened.session.data, stored=opened.session, had_cookie=True)
        fresh = ServerSession(had_cookie=True)
        fresh.dead = True
        if opened.signed_out:
            # A dead session is no session; the message is shown on the next page rendered,
            # normally /login, where login_required sends the visitor.
            fresh["_flashes"] = [("error", EXPIRED_MESSAGE)]
        return fresh

    def is_null_session(self, obj: object) -> bool:
        # Flask saves no null session: a detached one is never saved either.
        return isinstance(obj, DetachedSession) or super().is_null_session(obj)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if not isinstance(session, ServerSession) or session.unavailable is not None:
            return
        if isinstance(session, DetachedSession):
            return
        try:
            self._save(app, session, response)
        except DATABASE_UNAVAILABLE:
            # The answer is already made; losing this session write beats turning it into a
            # 500. The next request finds the database (or answers 503 itself).
            log.exception("could not save the web session; the database is unavailable")

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        container = _container(app)
        ctx = container.services
        if session.accessed:
            response.vary.add("Cookie")
        data = dict(session)
        raw_user = data.get("user_id")
        user_id = raw_user if isinstance(raw_user, int) else None
        stored = session.stored
        if is_anonymous(data):
            self._save_anonymous(app, session, response, data, container)
            return
        if session.had_anonymous_cookie:
            self._delete_cookie(app, response, self.anonymous_cookie_name(app))
        if session.regenerate or (stored is None and data):
            token = start_web_session(
                ctx, replaces=stored.id if stored else None, data=data, user_id=user_id
            )
            created = container.clock.now()
            self._set_cookie(app, response, token, session, created, container.settings)
            return
        if stored is not None and not (session.passive and not session.modified):
            save_web_session(ctx, stored, data=data, user_id=user_id, modified=session.modified)

    def _save_anonymous(
        self,
        app: Flask,
        session: ServerSession,
        response: Response,
        data: dict[str, Any],
        container: Container,
    ) -> None:
        """Keep an anonymous session in its signed cookie; end any stored one it came from."""
        if session.stored is not None:
            # Emptied (a deactivated user's) or signed out: the stored session ends for good.
            revoke_web_session(container.services, session.stored.id)
        if session.had_cookie:
            self._delete_cookie(app, response, self.get_cookie_name(app))
        name = self.anonymous_cookie_name(app)
        if not data:
            if session.had_anonymous_cookie:
                self._delete_cookie(app, response, name)
            return
        if not (session.modified or session.accessed or session.regenerate):
            return
        # Re-issued whenever read, so the idle timeout counts from the last page shown.
        issued = int(container.clock.now().timestamp())
        value = self._serializer(app).dumps({"t": issued, "d": data})
        response.set_cookie(
            name,
            value,
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    def _delete_cookie(self, app: Flask, response: Response, name: str) -> None:
        response.delete_cookie(
            name,
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    def _set_cookie(
        self,
        app: Flask,
        response: Response,
        token: str,
        session: ServerSession,
        created: datetime,
        settings: Settings,
    ) -> None:
        # A permanent (signed-in) cookie expires with the absolute timeout; the server
        # enforces it anyway, this only spares the browser from sending a dead token.
        expires = created + timeouts(settings).absolute if session.permanent else None
        response.set_cookie(
            self.get_cookie_name(app),
            token,
            expires=expires,
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            partitioned=self.get_cookie_partitioned(app),
        )
        response.vary.add("Cookie")
