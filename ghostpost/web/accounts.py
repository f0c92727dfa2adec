"""Accounts (managers and admins): connect a principal's Mastodon, Bluesky and X accounts.

Mastodon and X use the OAuth authorization-code flow with PKCE: the verifier and state live in
the signed session until the platform redirects back. Bluesky uses an app password. Tokens go
straight from the platform to the sealed column; they are never rendered, flashed or logged.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for

from ghostpost.adapters.base import Connection, PublishError, RetryableError
from ghostpost.adapters.http import BadBaseUrl, PlatformHttp, normalize_base_url
from ghostpost.domain.model import Role
from ghostpost.services import connections
from ghostpost.services.errors import Conflict, NotFound, ValidationFailed
from ghostpost.web.common import container, current_actor, parse_id, roles_required, services

bp = Blueprint("accounts", __name__)

#: Session key of an OAuth flow in progress (one at a time per browser session).
PENDING = "gp_connect"
PLATFORM_LABELS = {
    "local": "ghostpost local",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "x": "X",
}


def _http() -> PlatformHttp:
    return PlatformHttp(container().settings.platform_timeout_seconds, container().outbound)


def _mastodon() -> Any:
    from ghostpost.adapters.mastodon import MastodonConnector

    return MastodonConnector(_http(), container().platform_apps)


def _x() -> Any:
    from ghostpost.adapters.x import XConnector

    settings = container().settings
    return XConnector(
        _http(),
        api_url=settings.x_api_url,
        authorize_url=settings.x_authorize_url,
        client_id=settings.x_client_id,
        client_secret=settings.x_client_secret,
        clock=container().clock,
    )


def _bluesky() -> Any:
    from ghostpost.adapters.bluesky import BlueskyConnector

    return BlueskyConnector(_http())


def _callback_url(platform: str) -> str:
    # The URL registered with the platform must be the public one, not whatever Host was used.
    base = container().settings.public_url.rstrip("/")
    return base + url_for("accounts.callback", platform=platform)


def _render(
    message: str | None = None, status: int = 200, values: dict[str, str] | None = None
) -> Any:
    principals, accounts = connections.connectable_principals(services(), current_actor())
    settings = container().settings
    return (
        render_template(
            "accounts.html",
            principals=principals,
            principal_names={p.id: p.name for p in principals},
            accounts=accounts,
            labels=PLATFORM_LABELS,
            x_configured=bool(settings.x_client_id and settings.x_client_secret),
            values=values or {},
            message=message,
        ),
        status,
    )


def _principal_id() -> int:
    principal_id = parse_id(request.form.get("principal_id"))
    if principal_id is None:
        abort(422, description="Pick the principal the account belongs to.")
    return principal_id


def _failure(exc: Exception, values: dict[str, str]) -> Any:
    if isinstance(exc, RetryableError):
        return _render(f"The platform did not answer: {exc}. Try again in a moment.", 502, values)
    if isinstance(exc, Conflict):
        return _render(str(exc), 409, values)
    if isinstance(exc, NotFound):
        return _render(str(exc), 404, values)
    return _render(f"Could not connect: {exc}", 422, values)


def _save(principal_id: int, connection: Connection) -> Any:
    account = connections.save_connection(
        services(),
        current_actor(),
        principal_id=principal_id,
        platform=connection.platform,
        handle=connection.handle,
        remote_id=connection.remote_id,
        base_url=connection.base_url,
        credentials=connection.credentials,
        max_chars=connection.max_chars,
        url_length=connection.url_length,
    )
    label = PLATFORM_LABELS[account.platform]
    flash(f"Connected {label} account @{account.handle}.", "success")
    return redirect(url_for("accounts.accounts") + f"#account-{account.id}")


@bp.get("/accounts")
@roles_required(Role.MANAGER, Role.ADMIN)
def accounts() -> Any:
    """List every principal's accounts and how each is connected."""
    return _render()


@bp.post("/accounts/connect/<any(mastodon, x):platform>")
@roles_required(Role.MANAGER, Role.ADMIN)
def start(platform: str) -> Any:
    """Begin an OAuth connection: keep state and PKCE verifier, send the user to the platform."""
    principal_id = _principal_id()
    values = {"principal_id": str(principal_id), "instance": request.form.get("instance", "")}
    try:
        if platform == "mastodon":
            base_url = normalize_base_url(values["instance"], container().outbound)
            started = _mastodon().start(base_url, _callback_url(platform))
        else:
            started = _x().start(_callback_url(platform))
    except BadBaseUrl as exc:
        return _render(str(exc), 422, values)
    except PublishError as exc:
        return _failure(exc, values)
    session[PENDING] = {
        "platform": platform,
        "principal_id": principal_id,
        "user_id": session.get("user_id"),
        **started,
    }
    return redirect(started["authorize_url"])


@bp.get("/accounts/connect/<any(mastodon, x):platform>/callback")
@roles_required(Role.MANAGER, Role.ADMIN)
def callback(platform: str) -> Any:
    """Finish an OAuth connection: check state, exchange the code, store the sealed tokens."""
    pending = session.pop(PENDING, None)
    state = request.args.get("state", "")
    if (
        not isinstance(pending, dict)
        or pending.get("platform") != platform
        or pending.get("user_id") != session.get("user_id")
        or not secrets.compare_digest(str(pending.get("state", "")), state)
    ):
        return _render(
            "That sign-in link is stale or was not started here. Start connecting again.", 400
        )
    if "error" in request.args:
        reason = request.args.get("error_description") or request.args["error"]
        return _render(f"The platform did not authorize ghostpost: {reason[:200]}", 400)
    code = request.args.get("code", "")
    if not code:
        return _render("The platform sent no authorization code. Start connecting again.", 400)
    connector = _mastodon() if platform == "mastodon" else _x()
    try:
        connection = connector.finish(pending, code)
        return _save(int(pending["principal_id"]), connection)
    except (PublishError, Conflict, NotFound, ValidationFailed) as exc:
        return _failure(exc, {})


@bp.post("/accounts/connect/bluesky")
@roles_required(Role.MANAGER, Role.ADMIN)
def connect_bluesky() -> Any:
    """Connect a Bluesky account with an app password (never the account password)."""
    principal_id = _principal_id()
    values = {
        "principal_id": str(principal_id),
        "pds": request.form.get("pds", "").strip() or "https://bsky.social",
        "identifier": request.form.get("identifier", "").strip(),
    }
    app_password = request.form.get("app_password", "")
    if not values["identifier"] or not app_password:
        return _render("Enter the Bluesky handle and an app password.", 422, values)
    try:
        pds = normalize_base_url(values["pds"], container().outbound)
        connection = _bluesky().connect(pds, values["identifier"].lstrip("@"), app_password)
        return _save(principal_id, connection)
    except BadBaseUrl as exc:
        return _render(str(exc), 422, values)
    except (PublishError, Conflict, NotFound, ValidationFailed) as exc:
        return _failure(exc, values)


@bp.post("/accounts/<int:account_id>/disconnect")
@roles_required(Role.MANAGER, Role.ADMIN)
def disconnect(account_id: int) -> Any:
    """Forget an account's platform tokens (its queued posts fail as 'not connected')."""
    try:
        account = connections.disconnect_account(services(), current_actor(), account_id)
    except NotFound:
        abort(404)
    except ValidationFailed as exc:
        return _render(str(exc), 422)
    flash(f"Disconnected @{account.handle}; its tokens are deleted.", "success")
    return redirect(url_for("accounts.accounts"))


__all__ = ["bp"]
