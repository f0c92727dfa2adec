"""TOTP second factor (RFC 6238) for staff: enrollment, sign-in codes, removal.

The secret is stored sealed with the SecretBox and bound to `user:<id>`, so a copy pasted onto
another user's row does not open. Each accepted code's 30-second step is recorded and only a
later step is accepted next time: a code seen over someone's shoulder cannot be used again.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from pyotp.utils import strings_equal

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import User
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Conflict, NotFound, ValidationFailed
from ghostpost.services.time_zones import adopt_browser_zone

ISSUER = "ghostpost"
#: Codes of the previous and next 30-second step are accepted too (clock drift on phones).
VALID_WINDOW = 1
WRONG_CODE = "The code is incorrect."


@dataclass(frozen=True)
class Enrollment:
    """A fresh secret to show the user, as text and as an otpauth:// URI for their app."""

    secret: str
    uri: str


def binding(user_id: int) -> str:
    """Return the SecretBox binding of a user's TOTP secret."""
    return f"user:{user_id}"


def totp_required(user: User, required_for_admins_and_principals: bool) -> bool:
    """Tell whether this user must have a second factor under the current settings."""
    return required_for_admins_and_principals and user.may_be_required_totp


def must_enroll(user: User, required_for_admins_and_principals: bool) -> bool:
    """Tell whether the user must enroll before reaching any other staff page."""
    return totp_required(user, required_for_admins_and_principals) and not user.totp_enabled


def uri_for(user: User, secret: str) -> str:
    """Return the otpauth:// URI authenticator apps read (scanned as a QR code, typed or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def new_enrollment(user: User) -> Enrollment:
    """Return a new random secret (160 bits) for the user to add to an authenticator app."""
    secret = pyotp.random_base32(32)
    return Enrollment(secret, uri_for(user, secret))


def _matching_steps(ctx: ServiceContext, secret: str, code: str) -> list[int]:
    """Return the time steps (within the window) whose code is `code`, newest first."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return []
    totp = pyotp.TOTP(secret)
    now = ctx.clock.now()
    if not totp.verify(code, for_time=now, valid_window=VALID_WINDOW):
        return []
    # verify() says only yes or no; the matching step is needed to refuse its replay.
    steps = []
    for offset in range(VALID_WINDOW, -VALID_WINDOW - 1, -1):
        if strings_equal(totp.at(now, counter_offset=offset), code):
            steps.append(totp.timecode(now) + offset)
    return steps


def enable_totp(ctx: ServiceContext, actor: Actor, secret: str, code: str) -> User:
    """Store the secret (sealed) once a current code from it proves the app has it."""
    user = actor.user
    if user is None:
        raise NotFound("No such user.")
    steps = _matching_steps(ctx, secret, code)
    if not steps:
        raise ValidationFailed(WRONG_CODE, {"code": WRONG_CODE})
    with ctx.uow() as uow:
        current = uow.users.get(user.id)
        if current is None:
            raise NotFound("No such user.")
        if current.totp_enabled:
            raise Conflict("Two-factor sign-in is already on; turn it off first to replace it.")
        sealed = ctx.seal_secret(binding(user.id), {"totp": secret})
        # The confirming code's step counts as used: it cannot also complete a sign-in.
        uow.users.set_totp(user.id, sealed, steps[0])
        uow.ledger.append(
            tag=LedgerTag.USER_TOTP_ENABLED,
            actor=actor.ref,
            subject=f"user:{user.id}",
            data={"user": user_summary(current)},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
        updated = uow.users.get(user.id)
    assert updated is not None
    return updated


def check_totp(ctx: ServiceContext, user_id: int, code: str, browser_zone: object = None) -> bool:
    """Tell whether `code` is a current, not yet used code of the user; if so it is used up,
    and (the sign-in being complete) a user without a time zone takes `browser_zone` if it
    is a known zone."""
    with ctx.uow() as uow:
        sealed, _ = uow.users.totp(user_id)
        if sealed is None:
            return False
        secret = str(ctx.open_secret(binding(user_id), sealed)["totp"])
        for step in _matching_steps(ctx, secret, code):
            if uow.users.advance_totp_step(user_id, step):
                user = uow.users.get(user_id)
                if user is not None:
                    adopt_browser_zone(uow, user, browser_zone)
                uow.commit()
                return True
    return False


def disable_totp(
    ctx: ServiceContext, actor: Actor, code: str, required_for_admins_and_principals: bool
) -> User:
    """Remove the user's second factor, given a current code, unless the settings require it."""
    user = actor.user
    if user is None:
        raise NotFound("No such user.")
    if totp_required(user, required_for_admins_and_principals):
        raise Conflict("Two-factor sign-in is required for your role; it cannot be turned off.")
    if not check_totp(ctx, user.id, code):
        raise ValidationFailed(WRONG_CODE, {"code": WRONG_CODE})
    with ctx.uow() as uow:
        uow.users.set_totp(user.id, None, None)
        uow.ledger.append(
            tag=LedgerTag.USER_TOTP_DISABLED,
            actor=actor.ref,
            subject=f"user:{user.id}",
            data={"user": user_summary(user)},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
        updated = uow.users.get(user.id)
    assert updated is not None
    return updated


def reset_totp(ctx: ServiceContext, actor: Actor, email: str) -> User:
    """Remove a user's second factor for them (a lost device); only ghostpost itself (the CLI
    run by an operator) may, and the ledger records who did it."""
    if actor.user is not None:
        raise Conflict("Only an operator resets two-factor sign-in, with `ghostpost users`.")
    with ctx.uow() as uow:
        user = uow.users.by_email(email.strip().lower())
        if user is None:
            raise NotFound(f"No user {email!r}.")
        uow.users.set_totp(user.id, None, None)
        uow.ledger.append(
            tag=LedgerTag.USER_TOTP_DISABLED,
            actor=actor.ref,
            subject=f"user:{user.id}",
            data={"user": user_summary(user), "reset": True},
            occurred_at=ctx.clock.now(),
        )
        uow.commit()
        updated = uow.users.get(user.id)
    assert updated is not None
    return updated
