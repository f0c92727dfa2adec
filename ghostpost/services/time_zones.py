"""Each staff user's time zone: taken from the browser at the first sign-in, changed on the
account page. A display preference, like the notification choices: it changes how times are
shown, never what is stored or decided, so (like them) it is not written to the ledger."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from ghostpost.domain.model import User
from ghostpost.services.context import ServiceContext
from ghostpost.services.errors import NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork

#: Longer than any IANA name ("America/Argentina/ComodRivadavia" is 32): longer input is junk.
MAX_ZONE_NAME = 64


@cache
def zone_names() -> tuple[str, ...]:
    """The IANA zones a user may choose, UTC first (no posix/ or right/ aliases, no
    'localtime' or 'Factory': names of this machine's set-up, not places)."""
    names = {
        name
        for name in available_timezones()
        if not name.startswith(("posix/", "right/")) and name not in ("localtime", "Factory")
    }
    names.discard("UTC")
    return ("UTC", *sorted(names))


@cache
def _known() -> frozenset[str]:
    return frozenset(zone_names())


def known_zone(raw: object) -> str | None:
    """`raw` if it is the exact name of a zone users may choose, else None (never raises)."""
    if not isinstance(raw, str) or len(raw) > MAX_ZONE_NAME:
        return None
    return raw if raw in _known() else None


def adopt_browser_zone(uow: UnitOfWork, user: User, browser_zone: object) -> User:
    """Inside the caller's sign-in transaction: store the browser's zone if the user has none
    yet and it is a known zone; anything else (a chosen zone, junk, nothing) changes nothing.
    The caller commits."""
    if user.time_zone is not None:
        return user
    zone = known_zone(browser_zone)
    if zone is None:
        return user
    return uow.users.set_time_zone(user.id, zone)


def set_time_zone(ctx: ServiceContext, user: User, name: str) -> User:
    """Set the signed-in user's own zone (the account page names no user: nobody changes
    another's zone); an unknown name is refused by name and nothing changes."""
    zone = known_zone(name)
    if zone is None:
        shown = name if len(name) <= MAX_ZONE_NAME else name[:MAX_ZONE_NAME] + "…"
        message = f"“{shown}” is not a time zone: choose one from the list."
        raise ValidationFailed(message, {"time_zone": "unknown time zone"})
    with ctx.uow() as uow:
        if uow.users.get(user.id) is None:
            raise NotFound("No such user.")
        updated = uow.users.set_time_zone(user.id, zone)
        uow.commit()
    return updated
