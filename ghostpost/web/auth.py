"""Sign in and out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from ghostpost.domain.model import User
from ghostpost.secretbox import SecretBoxError
from ghostpost.services import two_factor
from ghostpost.services.auth import AuthenticationFailed, authenticate, load_user
from ghostpost.services.errors import Conflict, ValidationFailed
from ghostpost.web.common import container, current_actor, current_user, login_required, services
from ghostpost.web.sessions import regenerate

bp = Blueprint("auth", __name__)

#: After the password, the code must follow within this time, or the password is asked again.
PENDING_LIFETIME = timedelta(minutes=5)
#: Pages a user who must enroll may still open (the rest send them to enrollment).
_BEFORE_ENROLLMENT = {
    "auth.login",
    "auth.logout",
    "auth.second_factor",
    "auth.account_two_factor",
    "ledger_keys.well_known",
    "static",
}


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an attacker-chosen absolute URL would make this an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("staff.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form; on POST, check the credentials and start a fresh session."""
    if request.method == "GET" and current_user() is not None:
        return redirect(_safe_next(request.args.get("next")))
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")
        try:
            user = authenticate(
                services(),
                email,
                request.form.get("password", ""),
                # The browser's zone (static/sign_in.js); a user who has none yet keeps it.
                browser_zone=request.form.get("time_zone"),
            )
        except AuthenticationFailed as exc:
            error = exc.message
        else:
            if user.totp_enabled:
                # Half signed in: the session names the user only as pending, which no page
                # but the code form reads; a fresh id here too, so nothing planted carries on.
                session.clear()
                regenerate()
                session["pending_user_id"] = user.id
                session["pending_since"] = int(container().clock.now().timestamp())
                session["pending_next"] = request.form.get("next", "")
                # Kept short and only as a string: checked against the zone list at the code.
                zone = request.form.get("time_zone", "")
                session["pending_time_zone"] = zone[:64] if isinstance(zone, str) else ""
                return redirect(url_for("auth.second_factor"))
            return _complete_sign_in(user, request.form.get("next"))
    status = 401 if error else 200
    return (
        render_template("login.html", error=error, email=email, next=request.args.get("next", "")),
        status,
    )


def _complete_sign_in(user: User, next_target: str | None) -> Any:
    # A new session on sign-in: nothing from before (e.g. a planted id) carries over;
    # the pre-login session is revoked server-side and the CSRF token is new.
    session.clear()
    regenerate()
    session["user_id"] = user.id
    session.permanent = True
    flash(f"Signed in as {user.name}.", "ok")
    settings = container().settings
    if two_factor.must_enroll(user, settings.totp_required_for_admins_and_principals):
        flash("Set up two-factor sign-in to continue.", "error")
        return redirect(url_for("auth.account_two_factor"))
    return redirect(_safe_next(next_target))


def _pending_user_id() -> int | None:
    pending = session.get("pending_user_id")
    since = session.get("pending_since")
    if not isinstance(pending, int) or not isinstance(since, int):
        return None
    if container().clock.now().timestamp() - since > PENDING_LIFETIME.total_seconds():
        return None
    return pending


@bp.route("/login/two-factor", methods=["GET", "POST"])
def second_factor() -> Any:
    """Ask a user who gave the right password for the current code of their authenticator."""
    if current_user() is not None:
        return redirect(url_for("staff.home"))
    pending = _pending_user_id()
    if pending is None:
        session.pop("pending_user_id", None)
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        if two_factor.check_totp(
            services(),
            pending,
            request.form.get("code", ""),
            browser_zone=session.get("pending_time_zone"),
        ):
            user = load_user(services(), pending)
            if user is not None:
                return _complete_sign_in(user, session.get("pending_next"))
            session.clear()  # deactivated meanwhile
            return redirect(url_for("auth.login"))
        # The same answer for a wrong, an old and a replayed code.
        error = two_factor.WRONG_CODE
    return render_template("two_factor.html", error=error), 401 if error else 200


def _enrollment_binding(user: User) -> str:
    # Not `user:<id>`: a sealed enrollment copied from a session is no stored secret.
    return f"totp-enrollment:user:{user.id}"


def _enrollment(user: User) -> two_factor.Enrollment:
    """Return the secret being enrolled (kept sealed in the session across reloads)."""
    sealed = session.get("totp_enrollment")
    if isinstance(sealed, str):
        try:
            secret = str(services().open_secret(_enrollment_binding(user), sealed)["totp"])
        except (SecretBoxError, KeyError):
            pass
        else:
            return two_factor.Enrollment(secret, two_factor.uri_for(user, secret))
    enrollment = two_factor.new_enrollment(user)
    session["totp_enrollment"] = services().seal_secret(
        _enrollment_binding(user), {"totp": enrollment.secret}
    )
    return enrollment


def qr_data_uri(uri: str) -> str:
    """The otpauth:// link as a QR code: an SVG data: URI, which the CSP's `img-src 'self'
    data:` allows (no inline SVG, no script)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def account_two_factor() -> Any:
    """Turn the TOTP second factor on (confirming a code) or off (unless it is required)."""
    user = current_user()
    assert user is not None
    required = two_factor.totp_required(
        user, container().settings.totp_required_for_admins_and_principals
    )
    error = None
    status = 200
    if request.method == "POST":
        action = request.form.get("action", "")
        code = request.form.get("code", "")
        try:
            if action == "enable" and not user.totp_enabled:
                two_factor.enable_totp(services(), current_actor(), _enrollment(user).secret, code)
                session.pop("totp_enrollment", None)
                flash("Two-factor sign-in is on.", "ok")
                return redirect(url_for("staff.home"))
            if action == "disable" and user.totp_enabled:
                two_factor.disable_totp(
                    services(),
                    current_actor(),
                    code,
                    container().settings.totp_required_for_admins_and_principals,
                )
                flash("Two-factor sign-in is off.", "ok")
                return redirect(url_for("auth.account_two_factor"))
            error, status = "Choose to turn two-factor sign-in on or off.", 422
        except ValidationFailed as exc:
            error, status = exc.message, 422
        except Conflict as exc:
            error, status = exc.message, 409
    enrollment = None if user.totp_enabled else _enrollment(user)
    return (
        render_template(
            "account_two_factor.html",
            enrollment=enrollment,
            qr=qr_data_uri(enrollment.uri) if enrollment else None,
            required=required,
            error=error,
        ),
        status,
    )


@bp.before_app_request
def _enrollment_first() -> Any:
    """Send an admin or principal who must enroll to enrollment from every staff page."""
    from ghostpost.web import BLUEPRINTS  # the staff and public pages, never the API

    if "user_id" not in session or request.endpoint in _BEFORE_ENROLLMENT:
        return None
    if request.blueprint == "public" or request.blueprint not in {b.name for b in BLUEPRINTS}:
        return None
    user = current_user()
    settings = container().settings
    if user is not None and two_factor.must_enroll(
        user, settings.totp_required_for_admins_and_principals
    ):
        return redirect(url_for("auth.account_two_factor"))
    return None


@bp.post("/logout")
def logout() -> Any:
    """End the session server-side (a copied cookie stops working too)."""
    session.clear()
    regenerate()  # the "Signed out." flash lives in a fresh anonymous session
    flash("Signed out.", "ok")
    return redirect(url_for("auth.login"))
