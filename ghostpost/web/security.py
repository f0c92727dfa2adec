"""CSRF protection, rate limits and security headers for the staff web app."""

from __future__ import annotations

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
#: Sign-in attempts allowed per client address.
LOGIN_LIMIT = "10 per minute"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


#: Over HTTPS: browsers refuse plain HTTP to this host for a year (subdomains included).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    """Attach CSRF checks, the rate limiter and the headers (after the blueprints exist)."""
    csrf.init_app(app)
    # One limiter per app, in memory: counters are per process (a shared store is issue 8).
    limiter = Limiter(
        key_func=get_remote_address, app=app, storage_uri="memory://", headers_enabled=True
    )
    app.view_functions["auth.login"] = limiter.limit(
        LOGIN_LIMIT,
        methods=["POST"],
        error_message="Too many sign-in attempts from your address; wait a minute and retry.",
    )(app.view_functions["auth.login"])

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
