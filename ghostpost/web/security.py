"""CSRF protection, rate limits and security headers for the staff web app."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request, session
from flask import make_response as app_response
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import TooManyRequests

from ghostpost.http_surface import rate_limiter_of
from ghostpost.rate_limits import Limit, RateLimiter, parse_limit
from ghostpost.web.compose import COMPOSE_MAX_BYTES

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
#: Public verifications (/verify: a URL asked about, or an answer pasted) per client address.
VERIFY_LIMIT = "30 per minute"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


#: Over HTTPS: browsers refuse plain HTTP to this host for a year (subdomains included).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def _remote_address() -> str:
    return request.remote_addr or "127.0.0.1"


class SignInThrottle:
    """Counts failed sign-ins per account and address and per account, in the app's rate
    limiter (memory per process, or Redis shared by every process). Keyed on a hash of the
    email as typed, known or not: the answers tell nothing about which accounts exist."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._pair = parse_limit(LOGIN_PAIR_FAILURES)
        self._account = parse_limit(LOGIN_ACCOUNT_FAILURES)

    @staticmethod
    def _account_key(email: str) -> str:
        # A hash: no email lands in Redis, and no "/" of an email splits the key.
        return hashlib.sha256(email.strip().lower()[:320].encode()).hexdigest()

    def retry_after(self, email: str, address: str) -> int | None:
        """Return the seconds this address must wait before trying this account, or None."""
        account = self._account_key(email)
        pair = self._limiter.window(self._pair, "login-pair", account, address)
        if pair.remaining >= self._pair.amount:
            return None  # no recent failure from here: never locked out by others' guesses
        if pair.remaining > 0 and self._limiter.test(self._account, "login-account", account):
            return None
        stats = pair
        if pair.remaining > 0:
            stats = self._limiter.window(self._account, "login-account", account)
        return max(1, int(stats.reset_in) + 1)

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
        email, address = request.form.get("email", ""), _remote_address()
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


def _limited(
    limiter: RateLimiter,
    limit: str,
    view: Callable[..., Any],
    *,
    scope: str,
    key: Callable[[], str],
    message: str,
    only_failures: bool = False,
    counts: Callable[[], bool] = lambda: request.method == "POST",
) -> Callable[..., Any]:
    """Wrap a view: its requests that `counts()` (POSTs unless told) are counted per `key()`
    under `limit`, and refused (429 with Retry-After) once the window is full. With
    `only_failures`, only answers 401 count."""
    parsed: Limit = parse_limit(limit)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not counts():
            return view(*args, **kwargs)
        keys = (scope, key())
        allowed = limiter.test(parsed, *keys) if only_failures else limiter.hit(parsed, *keys)
        if not allowed:
            raise TooManyRequests(message, retry_after=limiter.window(parsed, *keys).retry_after)
        if not only_failures:
            return view(*args, **kwargs)
        response = app_response(view(*args, **kwargs))
        if response.status_code == 401:
            limiter.hit(parsed, *keys)
        return response

    return wrapper


#: Routes whose request bodies may be larger than the app's MAX_CONTENT_LENGTH, and how large.
LARGER_BODIES = {"compose.submit": COMPOSE_MAX_BYTES}


def _body_limit() -> None:
    # First of all before_request functions: the CSRF check reads the form under this limit.
    limit = LARGER_BODIES.get(request.endpoint or "")
    # Only files may be that large, and only a multipart body carries files: a form's text
    # fields keep the app's limit (werkzeug applies `max_form_memory_size` to multipart text
    # parts), so a 10 MB "text" is still refused (413) before anything reads it.
    if limit is not None and request.method == "POST" and request.mimetype == "multipart/form-data":
        request.max_content_length = limit
        request.max_form_memory_size = current_app.config["MAX_CONTENT_LENGTH"]


def init_app(app: Flask) -> None:
    """Attach CSRF checks, the rate limits and the headers (after the blueprints exist)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _body_limit)
    csrf.init_app(app)
    # The app's one limiter. Counters live in settings.rate_limit_storage_uri: memory:// is per
    # process; with several gunicorn processes or hosts use Redis, so the limits are global.
    limiter = rate_limiter_of(app)
    login: Any = _limited(
        limiter,
        LOGIN_LIMIT,
        app.view_functions["auth.login"],
        scope="login",
        key=_remote_address,
        message="Too many sign-in attempts from your address; wait a minute and retry.",
    )
    # Only failures count: a person who signs in often is never locked out by success.
    app.view_functions["auth.login"] = _throttled(SignInThrottle(limiter), login)
    code_view: Any = _limited(
        limiter,
        SECOND_FACTOR_LIMIT,
        app.view_functions["auth.second_factor"],
        scope="second-factor-address",
        key=_remote_address,
        message="Too many sign-in codes from your address; wait a minute and retry.",
    )
    code_view = _limited(
        limiter,
        SECOND_FACTOR_ACCOUNT_LIMIT,
        code_view,
        scope="second-factor-user",
        key=_second_factor_key,
        # Spread over many addresses, guesses at one user's code still meet this limit.
        only_failures=True,
        message="Too many wrong codes for this account; wait 15 minutes and retry.",
    )
    app.view_functions["auth.second_factor"] = code_view
    app.view_functions["verify.verify"] = _limited(
        limiter,
        VERIFY_LIMIT,
        app.view_functions["verify.verify"],
        scope="verify",
        key=_remote_address,
        # The empty form is free; asking about a URL or checking an answer counts.
        counts=lambda: request.method == "POST" or "url" in request.args,
        message="Too many verifications from your address; wait a minute and retry.",
    )

    https = bool(app.config.get("SESSION_COOKIE_SECURE"))

    # Every response carries these unless its view set its own: (name, lowered, value).
    defaults = tuple(
        (name, name.lower(), value)
        for name, value in (
            *((("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY),) if https else ()),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "same-origin"),
        )
    )

    @app.after_request
    def _headers(response: Response) -> Response:
        # What headers.setdefault does for each, with one pass over the response's headers
        # (setdefault scans them twice per header, on every request).
        headers = response.headers
        present = {name.lower() for name in headers.keys()}  # noqa: SIM118 (a Headers)
        for name, lowered, value in defaults:
            if lowered not in present:
                headers.add(name, value)
        if response.mimetype == "text/html":
            headers.setdefault("Cache-Control", "no-store")
        return response
