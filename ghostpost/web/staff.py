"""The staff app's shell: home (by role) and the navigation every page shows."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, redirect, url_for

from ghostpost.domain.model import Role, User
from ghostpost.web.common import current_user, login_required

bp = Blueprint("staff", __name__)

#: (endpoint, label, who sees it). "principal" means a user who is a principal.
NAV = (
    ("compose.compose", "Compose", {"writer", "manager", "admin", "principal"}),
    ("queue.queue", "Queue", {"writer", "manager", "admin", "auditor", "principal"}),
    ("calendar.calendar", "Calendar", {"writer", "manager", "admin", "auditor", "principal"}),
    ("approvals.approvals", "Approvals", {"principal"}),
    ("windows.windows", "Windows", {"manager", "admin", "auditor", "principal"}),
    ("ledger.ledger", "Ledger", {"manager", "admin", "auditor", "principal"}),
    ("coverage.coverage", "Coverage", {"manager", "admin", "auditor", "principal"}),
    ("accounts.accounts", "Accounts", {"manager", "admin"}),
    ("admin.users", "Users", {"admin"}),
)


def audiences(user: User) -> set[str]:
    """Return the audiences a user belongs to (their role, plus "principal" when they are one)."""
    found = {user.role.value}
    if user.principal_id is not None:
        found.add("principal")
    return found


def nav_items(user: User | None) -> list[tuple[str, str]]:
    """Return the navigation entries this user may use, for the pages that exist."""
    if user is None:
        return []
    mine = audiences(user)
    return [
        (endpoint, label)
        for endpoint, label, who in NAV
        if who & mine and endpoint in current_app.view_functions
    ]


@bp.get("/home")
@login_required
def home() -> Any:
    """Send each user to where their day starts."""
    user = current_user()
    assert user is not None
    items = dict(nav_items(user))
    if user.principal_id is not None and "approvals.approvals" in items:
        return redirect(url_for("approvals.approvals"))
    if user.role is Role.AUDITOR and "ledger.ledger" in items:
        return redirect(url_for("ledger.ledger"))
    if user.role is Role.ADMIN and "queue.queue" in items:
        # An admin oversees; Compose would be empty for one who writes for no account.
        return redirect(url_for("queue.queue"))
    for endpoint in items:
        return redirect(url_for(endpoint))
    return redirect(url_for("public.index"))


def init_app(app: Flask) -> None:
    """Make the signed-in user and the navigation available to every template."""

    @app.context_processor
    def _inject() -> dict[str, Any]:
        user = current_user()
        return {"current_user": user, "nav_items": nav_items(user)}
