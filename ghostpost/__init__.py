"""ghostpost: the honest way to let other people post as an executive."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from ghostpost.bootstrap import Container
    from ghostpost.settings import Settings

__all__ = ["create_app", "mastodon_face"]


def create_app(settings: Settings | None = None, container: Container | None = None) -> Flask:
    """Build the Flask app from Settings (loaded from config + environment when not given)."""
    from ghostpost.bootstrap import bootstrap
    from ghostpost.settings import Settings as _Settings
    from ghostpost.web import BLUEPRINTS, errors, security, staff
    from ghostpost.web import sessions as server_sessions

    if container is None:
        container = bootstrap(settings or _Settings.load())
    settings = container.settings
    https = settings.public_url.startswith("https://")
    from ghostpost.http_surface import App

    app = App(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.environment == "test",
        # Over HTTPS the `__Host-` prefix makes browsers refuse the cookie unless it is Secure,
        # host-only and for path /: a sibling subdomain cannot plant or overwrite it.
        SESSION_COOKIE_NAME="__Host-ghostpost" if https else "ghostpost",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        MAX_CONTENT_LENGTH=1024 * 1024,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_absolute_hours),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    app.extensions["ghostpost"] = container
    # Server-side sessions (ghostpost.web.sessions): revocable, with idle/absolute timeouts.
    server_sessions.init_app(app)
    errors.register(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    staff.init_app(app)
    security.init_app(app)
    from ghostpost.api import oauth  # /oauth, CSRF exemption of API blueprints, client limits

    oauth.init_app(app)
    from ghostpost.api import v1  # /api/v1, its OpenAPI document and docs page

    v1.init_app(app)
    from ghostpost.api import mastodon  # /compat/mastodon/<account id>/api/v1/...

    app.register_blueprint(mastodon.bp)
    from ghostpost.api import mastodon_oauth  # /api/v1/apps; Mastodon apps on /oauth/token

    mastodon_oauth.init_app(app)
    from ghostpost.api import mastodon_face  # the Mastodon API at the root of mastodon_host

    mastodon_face.install(app, container)
    from ghostpost import metrics  # /metrics for the operator's scraper, request timing

    metrics.init_app(app, container)
    return app


def mastodon_face(app: Flask) -> Flask:
    """Return the Mastodon client API built with `app` by create_app: served by itself on a
    port of its own (`ghostpost serve --mastodon-port`), or by Host through `app`."""
    from ghostpost.api.mastodon_face import face_of

    return face_of(app)
