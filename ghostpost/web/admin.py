"""User administration (admins only): list, create, deactivate and reactivate staff users; and
the principal's own hand-over of the principal link to another user (the principal only).

Admins never link a user to a principal: the first link is the operator's (`ghostpost users
link-principal`), any later change the principal's own, confirmed with their password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ghostpost.domain.model import Role
from ghostpost.services import directory
from ghostpost.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ghostpost.web.common import (
    MAX_ID,
    current_actor,
    current_user,
    login_required,
    parse_id,
    roles_required,
    services,
)
from ghostpost.web.confirm import confirm_page, confirmed

bp = Blueprint("admin", __name__)

ROLE_LABELS = {
    Role.WRITER.value: "Writer — composes for assigned accounts",
    Role.MANAGER.value: "Manager — manages windows and writers",
    Role.AUDITOR.value: "Auditor — reads everything, changes nothing",
    Role.ADMIN.value: "Admin — also manages users",
}
FIELDS = ("email", "name", "role", "password")
FIELD_MESSAGES = {
    "not an email address": "Not an email address.",
    "required": "Required.",
}


def _render(
    values: dict[str, str], errors: dict[str, str], message: str | None, status: int
) -> Any:
    users, principals = directory.staff_directory(services(), current_actor())
    names = {p.id: p.name for p in principals}
    return (
        render_template(
            "users.html",
            users=users,
            principals=principals,
            principal_names=names,
            roles=ROLE_LABELS,
            values=values,
            errors=errors,
            message=message,
            me=current_user(),
        ),
        status,
    )


@bp.get("/admin/users")
@roles_required(Role.ADMIN)
def users() -> Any:
    """List every staff user, with the form to create one."""
    blank = {"email": "", "name": "", "role": Role.WRITER.value, "password": ""}
    return _render(blank, {}, None, 200)


@bp.post("/admin/users")
@roles_required(Role.ADMIN)
def create_user() -> Any:
    """Create a staff user (never a principal: see the module's docstring)."""
    values = {name: request.form.get(name, "") for name in FIELDS}
    errors: dict[str, str] = {}
    if values["role"] not in ROLE_LABELS:
        errors["role"] = "Pick a role."
    # The form has no principal field; a crafted one, whatever its value, goes to the service,
    # which refuses it (403) before storing anything.
    raw_principal = request.form.get("principal_id", "").strip()
    principal_id = (parse_id(raw_principal) or 0) if raw_principal else None
    if errors:
        return _render({**values, "password": ""}, errors, "Some fields need attention.", 422)
    try:
        user = directory.create_user(
            services(),
            current_actor(),
            email=values["email"],
            name=values["name"],
            role=Role(values["role"]),
            password=values["password"],
            principal_id=principal_id,
        )
    except ValidationFailed as exc:
        errors = {
            name: FIELD_MESSAGES.get(text, text[:1].upper() + text[1:] + ".")
            for name, text in exc.fields.items()
        }
        return _render({**values, "password": ""}, errors, exc.message, 422)
    except Forbidden as exc:
        return _render({**values, "password": ""}, {}, exc.message, 403)
    except Conflict as exc:
        return _render({**values, "password": ""}, {"email": exc.message}, exc.message, 409)
    except NotFound as exc:
        return _render({**values, "password": ""}, {}, exc.message, 422)
    flash(f"{user.name} <{user.email}> can now sign in as {user.role.value}.", "ok")
    return redirect(url_for("admin.users", _anchor=f"user-{user.id}"))


def _confirm_deactivation(user_id: int) -> Any:
    users, principals = directory.staff_directory(services(), current_actor())
    user = next((u for u in users if u.id == user_id), None)
    if user is None:
        abort(404, description=f"No user {user_id}.")
    consequences = [
        f"{user.name} <{user.email}> is signed out everywhere and cannot sign in.",
        "Their posts not yet published are held (see the queue).",
    ]
    principal = next((p for p in principals if p.id == user.principal_id), None)
    if principal is not None:
        consequences.insert(0, f"{user.name} is the principal of {principal.name}'s accounts.")
    return confirm_page(
        heading=f"Deactivate {user.name}?",
        consequences=consequences,
        undo="You can undo this: press Reactivate on their row of the users page.",
        button=f"Deactivate {user.name}",
        back=url_for("admin.users", _anchor=f"user-{user.id}"),
    )


@bp.post("/admin/users/<int:user_id>/active")
@roles_required(Role.ADMIN)
def set_active(user_id: int) -> Any:
    """Deactivate (their session ends at once) or reactivate a user."""
    if user_id > MAX_ID:
        abort(404, description=f"No user {user_id}.")
    wanted = request.form.get("active", "")
    if wanted not in ("0", "1"):
        abort(400, description="Say whether the user should be active (active=1) or not (0).")
    if wanted == "0" and not confirmed():
        return _confirm_deactivation(user_id)
    user = directory.set_user_active(services(), current_actor(), user_id, wanted == "1")
    if user.is_active:
        flash(f"{user.name} is active again and can sign in.", "ok")
    else:
        flash(
            f"{user.name} is deactivated: signed out everywhere, cannot sign in, and their "
            "posts not yet published are held (see the queue). To undo, press Reactivate "
            "on their row.",
            "ok",
        )
    return redirect(url_for("admin.users", _anchor=f"user-{user.id}"))


@bp.route("/account/principal", methods=["GET", "POST"])
@login_required
def principal_handover() -> Any:
    """The principal hands the principal link over to another user, confirming with their
    password (the only way a linked principal changes hands)."""
    user = current_user()
    assert user is not None
    if user.principal_id is None:
        abort(403, description="Only the principal's own user can hand the principal over.")
    values = {"to_email": request.form.get("to_email", "")}
    error, errors, status = None, {}, 200
    if request.method == "POST":
        try:
            new_user = directory.hand_over_principal(
                services(),
                current_actor(),
                to_email=values["to_email"],
                password=request.form.get("password", ""),
            )
        except ValidationFailed as exc:
            error, errors, status = exc.message, dict(exc.fields), 422
        except Conflict as exc:
            error, status = exc.message, 409
        else:
            flash(
                f"{new_user.name} <{new_user.email}> is now the principal; you no longer are.",
                "ok",
            )
            return redirect(url_for("staff.home"))
    return (
        render_template(
            "principal_handover.html", values=values, error=error, errors=errors, me=user
        ),
        status,
    )
