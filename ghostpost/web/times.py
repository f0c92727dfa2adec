"""How staff pages show times: in the viewer's time zone, with UTC on hover.

Contract for issue 17's parts (calendar, live status, per-user zones): every page renders a
moment with the `local_time` filter, and code that needs the zone itself (the calendar's day
boundaries) calls `viewer_zone()`. The zone is the signed-in user's own (users.time_zone, taken
from the browser at the first sign-in, changed on /account/time-zone); anonymous visitors and
users who have none read UTC. Exports never use it: they stay in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, flash, has_request_context, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from ghostpost.services import time_zones
from ghostpost.services.errors import ValidationFailed
from ghostpost.web.common import current_user, login_required, services

bp = Blueprint("times", __name__)

UTC_ZONE = ZoneInfo("UTC")


def viewer_zone() -> ZoneInfo:
    """The zone the signed-in user reads times in (UTC outside a request, for anonymous
    visitors and for users who have not chosen one)."""
    if not has_request_context():
        return UTC_ZONE
    user = current_user()
    if user is None or user.time_zone is None:
        return UTC_ZONE
    try:
        return ZoneInfo(user.time_zone)
    except (ZoneInfoNotFoundError, ValueError):  # the zone database lost a name: read UTC
        return UTC_ZONE


def chosen_zone() -> str | None:
    """The signed-in user's zone name, or None when they have not chosen one (forms then
    let the browser's script pick theirs)."""
    user = current_user() if has_request_context() else None
    return user.time_zone if user is not None else None


def local_label(at: datetime) -> str:
    """A moment in words for flashes and messages: in the viewer's zone with the UTC time
    beside it ('2027-02-01 10:00 CET (09:00 UTC)'), or the UTC spelling for UTC viewers."""
    zone = viewer_zone()
    if zone.key == "UTC":
        return utc_label(at)
    return f"{zone_label(at, zone)} ({utc_label(at)})"


def utc_label(at: datetime, *, seconds: bool = False) -> str:
    """'2027-02-01 09:00 UTC': how exports, hovers and errors spell a moment."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def zone_label(at: datetime, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """'2027-02-01 10:00 CET' in `zone` (the abbreviation the zone uses on that day)."""
    local = at.astimezone(zone)
    clock = "%Y-%m-%d %H:%M:%S " if seconds else "%Y-%m-%d %H:%M "
    return local.strftime(clock) + (local.tzname() or zone.key)


@bp.app_template_filter("local_time")
def local_time(at: datetime | str | None, seconds: bool = False) -> Markup:
    """A `<time>` element: the moment in the viewer's zone, its UTC spelling on hover, and
    the exact instant in `datetime` for scripts (empty for None). An ISO 8601 string with
    an offset (ledger data) is read as that moment; any other string is shown as it is.
    `seconds=True` shows the seconds too (the ledger, where order within a minute matters)."""
    if at is None:
        return Markup("")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return Markup(escape(at))
        if at.tzinfo is None:
            return Markup(escape(at.isoformat()))
    instant = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        instant,
        utc_label(at, seconds=seconds),
        escape(zone_label(at, viewer_zone(), seconds=seconds)),
    )


@bp.route("/account/time-zone", methods=["GET", "POST"])
@login_required
def account_time_zone() -> Any:
    """Show and change the signed-in user's time zone; the form names no user: it can only
    ever change the zone of whoever is signed in."""
    user = current_user()
    assert user is not None
    error = None
    chosen = user.time_zone
    if request.method == "POST":
        chosen = request.form.get("time_zone", "")
        try:
            updated = time_zones.set_time_zone(services(), user, chosen)
        except ValidationFailed as exc:
            error = exc.message
        else:
            flash(f"Times are now shown in {updated.time_zone}.", "ok")
            return redirect(url_for("times.account_time_zone"))
    return (
        render_template(
            "account_time_zone.html",
            zones=time_zones.zone_names(),
            chosen=chosen if chosen in time_zones.zone_names() else user.time_zone,
            has_zone=user.time_zone is not None,
            now=services().clock.now(),
            error=error,
        ),
        422 if error else 200,
    )
