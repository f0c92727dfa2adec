"""Signing in like Mastodon, the web half: GET/POST /oauth/authorize (the consent page, after
the staff sign-in with its second factor) and the user's own list of signed-in apps.

The OAuth checks (client, exact redirect URI, scopes, PKCE S256) are Authlib's, on the app's
one authorization server (api.mastodon_oauth registers the grant on it); this surface reaches
it through the app's extensions, never by importing the API surface. Errors before the redirect
URI is known to be registered are shown here and never redirected (no open redirect).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2 import OAuth2Error
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import make_response as app_response

from ghostpost.services import mastodon_apps
from ghostpost.services.errors import NotFound, ValidationFailed
from ghostpost.web.common import current_actor, login_required, parse_id, services
from ghostpost.web.security import CONTENT_SECURITY_POLICY

bp = Blueprint("authorize", __name__)

_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]{0,40}$")
#: The Authlib server api.oauth keeps on the app.
_SERVER = "ghostpost.oauth_server"


def _server() -> Any:
    return current_app.extensions[_SERVER]


def _form_action(redirect_uri: str) -> str:
    """Where the consent form may lead: here, and the app's registered redirect target (a
    browser applies form-action to the redirect that follows the POST)."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        try:
            port = parts.port
        except ValueError:
            port = None
        host = parts.hostname or ""
        # Only a plain host name goes into the header: nothing a URI could smuggle (";").
        if _HOST.match(host):
            return f"'self' {parts.scheme}://{host}" + (f":{port}" if port else "")
        return "'self'"
    if redirect_uri != mastodon_apps.OOB and _SCHEME.match(parts.scheme):
        return f"'self' {parts.scheme}:"
    return "'self'"


def _page(body: str, status: int, redirect_uri: str | None = None) -> Response:
    response = app_response(body, status)
    policy = CONTENT_SECURITY_POLICY
    if redirect_uri:
        policy = policy.replace("form-action 'self'", f"form-action {_form_action(redirect_uri)}")
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _refused(message: str, status: int = 400) -> Response:
    html = render_template(
        "authorize_result.html", title="This sign-in request is not valid", message=message
    )
    return _page(html, status)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@login_required
def authorize() -> Any:
    """Ask the signed-in user whether the app may post for them, and to which account."""
    server = _server()
    try:
        grant = server.get_consent_grant(end_user=current_actor().user)
    except OAuth2Error as error:
        if error.redirect_uri and error.redirect_uri != mastodon_apps.OOB:
            # The redirect URI is registered: RFC 6749 §4.1.2.1 sends the error there.
            return server.handle_error_response(None, error)
        return _refused(error.description or error.error)
    app = grant.request.client.app
    redirect_uri: str = grant.redirect_uri
    scopes = sorted(grant.request.scope.split())
    accounts = mastodon_apps.accounts_to_offer(services(), current_actor())
    error = None
    if request.method == "POST":
        approval = None
        if request.form.get("decision") == "approve":
            approval = mastodon_apps.Approval(
                current_actor(), parse_id(request.form.get("account_id"))
            )
        try:
            response = server.create_authorization_response(grant_user=approval, grant=grant)
        except ValidationFailed as exc:
            error = exc.message
        else:
            if redirect_uri != mastodon_apps.OOB:
                return response
            query = parse_qs(urlsplit(response.headers.get("Location", "")).query)
            code = query.get("code", [None])[0]
            html = render_template(
                "authorize_result.html",
                title="Allowed" if code else "Denied",
                code=code,
                app_name=app.name,
                message=f"{app.name} may not post for you.",
            )
            return _page(html, 200)
    html = render_template(
        "authorize.html",
        app=app,
        scopes=scopes,
        accounts=accounts,
        error=error,
        action=request.full_path.rstrip("?"),
    )
    return _page(html, 422 if error else 200, redirect_uri)


@bp.get("/account/apps")
@login_required
def signed_in_apps() -> Any:
    """The user's own page of apps signed in as them, each with a revoke button."""
    apps = mastodon_apps.signed_in_apps(services(), current_actor())
    return render_template("signed_in_apps.html", apps=apps)


@bp.post("/account/apps/<int:token_id>/revoke")
@login_required
def revoke_app(token_id: int) -> Any:
    """Revoke one of the user's app tokens; it stops working at once."""
    try:
        mastodon_apps.revoke_own_token(services(), current_actor(), token_id)
    except NotFound:
        abort(404)
    flash("Revoked: the app can no longer post for you.", "ok")
    return redirect(url_for("authorize.signed_in_apps"))
