"""A principal's guards (watched hashtags and terms, first-use hashtags): a settings page for the
principal, managers and admins. Weakening them is the principal's alone (the service says so)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ghostpost.services.errors import Forbidden, NotFound, ValidationFailed
from ghostpost.services.guards import change_guards, guard_settings
from ghostpost.web.common import MAX_ID, current_actor, current_user, login_required, services

bp = Blueprint("guards", __name__)


@bp.get("/account/guards")
@login_required
def mine() -> Any:
    """The signed-in principal's own guards."""
    user = current_user()
    assert user is not None
    if user.principal_id is None:
        abort(404)
    return redirect(url_for("guards.settings", principal_id=user.principal_id))


@bp.route("/principals/<int:principal_id>/guards", methods=["GET", "POST"])
@login_required
def settings(principal_id: int) -> Any:
    """Show the guards; on POST, replace them (a weakening by anyone but the principal is
    refused with the reason, nothing changed)."""
    if principal_id > MAX_ID:
        abort(404)
    try:
        current = guard_settings(services(), current_actor(), principal_id)
    except NotFound:
        abort(404)
    except Forbidden as exc:
        abort(403, description=exc.message)
    watched = "\n".join(current.guards.watched)
    first_use = current.guards.first_use_hashtags
    error, status = None, 200
    if request.method == "POST":
        watched = request.form.get("watched", "")
        first_use = bool(request.form.get("first_use_hashtags"))
        try:
            change_guards(
                services(),
                current_actor(),
                principal_id,
                watched=watched,
                first_use_hashtags=first_use,
            )
        except ValidationFailed as exc:
            error, status = exc.message, 422
        except Forbidden as exc:
            error, status = exc.message, 403
        else:
            flash("Guards saved.", "ok")
            return redirect(url_for("guards.settings", principal_id=principal_id))
    return (
        render_template(
            "guards.html",
            current=current,
            watched=watched,
            first_use=first_use,
            error=error,
        ),
        status,
    )
