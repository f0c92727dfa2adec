"""CSRF protection, rate limits and security headers for the staff web app."""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request, session
from flask import make_response as app_response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

csrf = CSRFProtect()
#: Sign-in attempts allowed per client address.
LOGIN_LIMIT = "10 per minute"
#: Failed sign-ins allowed per account *and* address (the email as typed, lower-cased, known
#: account or not): a guesser soon stops, the account's owner elsewhere is not affected.
LOGIN_PAIR_FAILURES = "5 per 15 minutes"
#: Failed sign-ins allowed per account from all addresses together (guessing spread over many
#: addresses). Past it, an address that failed for the account recently is refused; an address
#: with no recent failure still gets its answer, so nobody can lock the owner out from
#: elsewhere (a guesser gets one try per fresh address, then meets the limit above).
LOGIN_ACCOUNT_FAILURES = "20 per 15 minutes"
THROTTLED_MESSAGE = "Too many sign-in attempts failed; wait 15 minutes and retry."
#: Second-step (TOTP code) attempts per client address: a million codes, ten guesses a minute.
SECOND_FACTOR_LIMIT = "10 per minute"
#: Wrong codes allowed per pending user, from any address (like LOGIN_ACCOUNT_LIMIT).
SECOND_FACTOR_ACCOUNT_LIMIT = "10 per 15 minutes"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


#: Over HTTPS: browsers refuse plain HTTP to this host for a year (subdomains included).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


class SignInThrottle:
    """Counts failed sign-ins per account and address and per account, in the rate limiter's
    storage (memory per process, or Redis shared by every process). Keyed on a hash of the
    email as typed, known or not: the answers tell nothing about which accounts exist."""

    def __init__(self, storage_uri: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._pair = parse(LOGIN_PAIR_FAILURES)
        self._account = parse(LOGIN_ACCOUNT_FAILURES)

    @staticmethod
    def _account_key(email: str) -> str:
        # A hash: no email lands in Redis, and no "/" of an email splits the key.
        return hashlib.sha256(email.strip().lower()[:320].encode()).hexdigest()

    def retry_after(self, email: str, address: str) -> int | None:
        """Return the seconds this address must wait before trying this account, or None."""
        account = self._account_key(email)
        pair = self._limiter.get_window_stats(self._pair, "login-pair", account, address)
        if pair.remaining >= self._pair.amount:
            return None  # no recent failure from here: never locked out by others' guesses
        if pair.remaining > 0 and self._limiter.test(self._account, "login-account", account):
            return None
        stats = pair
        if pair.remaining > 0:
            stats = self._limiter.get_window_stats(self._account, "login-account", account)
        return max(1, int(stats.reset_time - time.time()) + 1)

    def failed(self, email: str, address: str) -> None:
        """Count one failed sign-in."""
        account = self._account_key(email)
        self._limiter.hit(self._pair, "login-pair", account, address)
        self._limiter.hit(self._account, "login-account", account)


def _throttled(throttle: SignInThrottle, view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the sign-in view: refuse throttled POSTs before the password is checked, count
    the failures (401) after."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return view(*args, **kwargs)
        email, address = request.form.get("email", ""), get_remote_address()
        wait = throttle.retry_after(email, address)
        if wait is not None:
            raise TooManyRequests(THROTTLED_MESSAGE, retry_after=wait)
        response = app_response(view(*args, **kwargs))
        if response.status_code == 401:
            throttle.failed(email, address)
        return response

    return wrapper


def _second_factor_key() -> str:
    return f"second-factor:{session.get('pending_user_id')}"


def init_app(app: Flask) -> None:
    """Attach CSRF checks, the rate limiter and the headers (after the blueprints exist)."""
    csrf.init_app(app)
    # One limiter per app. Counters live in settings.rate_limit_storage_uri: memory:// is per
    # process; with several gunicorn processes or hosts use Redis, so the limits are global.
    storage_uri = app.extensions["ghostpost"].settings.rate_limit_storage_uri
    limiter = Limiter(
        key_func=get_remote_address, app=app, storage_uri=storage_uri, headers_enabled=True
    )
    view = limiter.limit(
        LOGIN_LIMIT,
        methods=["POST"],
        error_message="Too many sign-in attempts from your address; wait a minute and retry.",
    )(app.view_functions["auth.login"])
    # Only failures count: a person who signs in often is never locked out by success.
    app.view_functions["auth.login"] = _throttled(SignInThrottle(storage_uri), view)
    code_view: Any = limiter.limit(
        SECOND_FACTOR_LIMIT,
        methods=["POST"],
        error_message="Too many sign-in codes from your address; wait a minute and retry.",
    )(app.view_functions["auth.second_factor"])
    code_view = limiter.limit(
        SECOND_FACTOR_ACCOUNT_LIMIT,
        methods=["POST"],
        key_func=_second_factor_key,
        # Spread over many addresses, guesses at one user's code still meet this limit.
        deduct_when=lambda response: response.status_code == 401,
        error_message="Too many wrong codes for this account; wait 15 minutes and retry.",
    )(code_view)
    app.view_functions["auth.second_factor"] = code_view

    https = bool(app.config.get("SESSION_COOKIE_SECURE"))

    @app.after_request
    def _headers(response: Response) -> Response:
        if https:
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
