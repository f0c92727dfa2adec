"""Signing in: one answer for every failure, so nobody learns which emails exist."""

from __future__ import annotations

from ghostpost.domain.model import Account, Role, User
from ghostpost.services.context import ServiceContext
from ghostpost.services.errors import ServiceError
from ghostpost.services.time_zones import adopt_browser_zone

#: Verified against when the email is unknown, so both failures take the same time.
_DUMMY_PASSWORD = "not-a-real-password-0"
_dummy_hashes: dict[int, str] = {}


class AuthenticationFailed(ServiceError):
    """Wrong email or password (deliberately not saying which)."""

    code = "authentication_failed"

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


def authenticate(
    ctx: ServiceContext, email: str, password: str, browser_zone: object = None
) -> User:
    """Return the active user with these credentials, re-hashing outdated hashes on the way.

    A user without a second factor is signed in here, so a user without a time zone takes
    `browser_zone` (what the sign-in form's script read from the browser) if it is a known
    zone; a user with one is signed in by `two_factor.check_totp`, which does the same."""
    with ctx.uow() as uow:
        user = uow.users.by_email(email.strip().lower())
        stored = uow.users.password_hash(user.id) if user is not None else None
        if user is None or stored is None or not user.is_active:
            dummy = _dummy_hashes.setdefault(id(ctx), ctx.hash_password(_DUMMY_PASSWORD))
            ctx.check_password(dummy, password)
            raise AuthenticationFailed()
        matches, needs_rehash = ctx.check_password(stored, password)
        if not matches:
            raise AuthenticationFailed()
        if needs_rehash:
            uow.users.set_password_hash(user.id, ctx.hash_password(password))
        zoned = user if user.totp_enabled else adopt_browser_zone(uow, user, browser_zone)
        if needs_rehash or zoned is not user:
            uow.commit()
        user = zoned
    return user


def load_user(ctx: ServiceContext, user_id: int) -> User | None:
    """Return the active user behind a session, or None (deactivated users lose access at once)."""
    with ctx.uow(read_only=True) as uow:
        user = uow.users.get(user_id)
    return user if user is not None and user.is_active else None


def writable_accounts(ctx: ServiceContext, user: User) -> list[Account]:
    """Return the accounts a user may write for: their own (as principal) and assigned ones."""
    if user.role is Role.AUDITOR and user.principal_id is None:
        return []
    with ctx.uow(read_only=True) as uow:
        assigned = set(uow.assignments.accounts_of(user.id))
        return [a for a in uow.accounts.list() if a.id in assigned or user.is_principal_of(a)]
