"""How staff pages show times: in the viewer's time zone, with UTC on hover.

Contract for issue 17's parts (calendar, live status, per-user zones): every page renders a
moment with the `local_time` filter, and code that needs the zone itself (the calendar's day
boundaries) calls `viewer_zone()`. Until the per-user zone lands, the zone is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint
from markupsafe import Markup, escape

bp = Blueprint("times", __name__)

UTC_ZONE = ZoneInfo("UTC")


def viewer_zone() -> ZoneInfo:
    """The zone the signed-in user reads times in."""
    return UTC_ZONE


def utc_label(at: datetime) -> str:
    """'2027-02-01 09:00 UTC': how exports, hovers and errors spell a moment."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def zone_label(at: datetime, zone: ZoneInfo) -> str:
    """'2027-02-01 10:00 CET' in `zone` (the abbreviation the zone uses on that day)."""
    local = at.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone.key)


@bp.app_template_filter("local_time")
def local_time(at: datetime | None) -> Markup:
    """A `<time>` element: the moment in the viewer's zone, its UTC spelling on hover, and
    the exact instant in `datetime` for scripts (empty for None)."""
    if at is None:
        return Markup("")
    instant = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        instant, utc_label(at), escape(zone_label(at, viewer_zone()))
    )
