"""Each user's email notifications: which kinds they get, and their latest emails."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ghostpost.services import notifications
from ghostpost.web.common import container, current_user, login_required, services

bp = Blueprint("notifications", __name__)


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def preferences() -> Any:
    """Show and save the signed-in user's choices; the form names no user: it can only ever
    change the choices of whoever is signed in."""
    user = current_user()
    assert user is not None
    if request.method == "POST":
        notifications.set_preferences(services(), user, set(request.form.getlist("kind")))
        flash("Notification settings saved.", "ok")
        return redirect(url_for("notifications.preferences"))
    return render_template(
        "notifications.html",
        page=notifications.preferences_of(services(), user),
        sending=container().mailer is not None,
        email=user.email,
    )
