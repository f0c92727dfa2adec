"""Sign in and out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from ghostpost.services.auth import AuthenticationFailed, authenticate
from ghostpost.web.common import current_user, services
from ghostpost.web.sessions import regenerate

bp = Blueprint("auth", __name__)


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
            user = authenticate(services(), email, request.form.get("password", ""))
        except AuthenticationFailed as exc:
            error = exc.message
        else:
            # A new session on sign-in: nothing from before (e.g. a planted id) carries over;
            # the pre-login session is revoked server-side and the CSRF token is new.
            session.clear()
            regenerate()
            session["user_id"] = user.id
            session.permanent = True
            flash(f"Signed in as {user.name}.", "ok")
            return redirect(_safe_next(request.form.get("next")))
    status = 401 if error else 200
    return (
        render_template("login.html", error=error, email=email, next=request.args.get("next", "")),
        status,
    )


@bp.post("/logout")
def logout() -> Any:
    """End the session server-side (a copied cookie stops working too)."""
    session.clear()
    regenerate()  # the "Signed out." flash lives in a fresh anonymous session
    flash("Signed out.", "ok")
    return redirect(url_for("auth.login"))
