"""CSRF protection, rate limits and security headers for the staff web app."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
#: Sign-in attempts allowed per client address.
LOGIN_LIMIT = "10 per minute"
#: Failed sign-ins allowed per account (the email as typed, lower-cased), from any address:
#: slows password guessing spread over many addresses. Keyed on what was typed, known account
#: or not, and answered with the same message, so it tells nothing about which emails exist.
LOGIN_ACCOUNT_LIMIT = "10 per 15 minutes"
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


def _login_account_key() -> str:
    return "login-account:" + request.form.get("email", "").strip().lower()[:320]


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
    view = limiter.limit(
        LOGIN_ACCOUNT_LIMIT,
        methods=["POST"],
        key_func=_login_account_key,
        # Only failures count: a person who signs in often is never locked out by success.
        deduct_when=lambda response: response.status_code == 401,
        error_message="Too many failed sign-ins for this account; wait 15 minutes and retry.",
    )(view)
    app.view_functions["auth.login"] = view
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
