"""What every staff page shares: the signed-in user, role checks, the container."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for

from ghostpost.domain.model import Role, User

# Re-exported: the page modules take them from here with the rest of what pages share.
from ghostpost.http_surface import container as container
from ghostpost.http_surface import services as services
from ghostpost.services.auth import load_user
from ghostpost.services.context import Actor

F = TypeVar("F", bound=Callable[..., Any])


#: Ids above this do not fit the databases' integers (SQLite raises on them): no such object.
MAX_ID = 2**63 - 1


def parse_id(raw: str | None) -> int | None:
    """Return a form or query value as a database id, or None when it is not one."""
    raw = (raw or "").strip()
    # ASCII only: "²".isdigit() is true, and int() refuses it.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_ID:
        return None
    return int(raw)


def role_label(user: User) -> str:
    """What a user is, in DESIGN.md's words: the principal is "principal", whatever their role."""
    return "principal" if user.principal_id else user.role.value


def current_user() -> User | None:
    """Return the signed-in user (loaded once per request), or None."""
    if "user" not in g:
        user_id = session.get("user_id")
        g.user = load_user(services(), user_id) if isinstance(user_id, int) else None
        if g.user is None and user_id is not None:
            session.clear()  # deactivated or deleted: the session dies now
    user: User | None = g.user
    return user


def current_actor() -> Actor:
    """Return the actor for the signed-in user (the caller made sure there is one)."""
    user = current_user()
    assert user is not None
    return Actor.for_user(user)


def login_required(view: F) -> F:
    """Send anonymous visitors to the login page, then back."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def roles_required(*roles: Role, allow_principal: bool = False) -> Callable[[F], F]:
    """Allow only users with one of `roles` (or any principal, when allowed); others get 403."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            assert user is not None
            if user.role not in roles and not (allow_principal and user.principal_id):
                abort(403, description="Your role does not allow this page.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
