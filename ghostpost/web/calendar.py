"""The calendar: a week or a month of posts per account, delegation windows shaded, the notice
marked. Days are the viewer's (times.viewer_zone()); moving a post is posts.reschedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request, url_for

from ghostpost.services.calendar import Calendar, CalendarPost, CalendarQuery, read_calendar
from ghostpost.web.common import current_actor, login_required, parse_id, services
from ghostpost.web.times import viewer_zone

bp = Blueprint("calendar", __name__)

VIEWS = ("week", "month")
STATE_LABELS = {
    "scheduled": "Scheduled",
    "pending_approval": "Awaiting approval",
    "held": "Held",
    "publishing": "Publishing",
    "published": "Published",
    "failed": "Failed",
}


@dataclass
class Slot:
    """One hour of a week day: the posts due in it, and whether a window covers it."""

    hour: int
    posts: list[CalendarPost] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)


@dataclass
class Day:
    """One day of the grid, in the viewer's zone."""

    day: date
    in_period: bool
    is_today: bool
    posts: list[CalendarPost] = field(default_factory=list)
    #: The names of the windows covering some of the day.
    windows: list[str] = field(default_factory=list)
    #: The names of the windows whose notice is due (or went out) this day.
    notices: list[str] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


#: The days a calendar opens on: far enough for any post, and far from the ends of `date`
#: (a month grid or "next month" past year 9999 would not exist).
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def _chosen_day(raw: str | None, today: date) -> date:
    try:
        chosen = date.fromisoformat(raw or "")
    except ValueError:
        return today
    return chosen if EARLIEST_DAY <= chosen <= LATEST_DAY else today


def period(view: str, day: date) -> tuple[date, date]:
    """The first and the day after the last day shown: a Monday-to-Sunday week, or the weeks
    holding the month."""
    if view == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=7)
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    first = start - timedelta(days=start.weekday())
    last = following + timedelta(days=(7 - following.weekday()) % 7)
    return first, last


def shifted(view: str, day: date, step: int) -> date:
    """The day a week or a month away from `day` (the 1st, for a month)."""
    if view == "week":
        return day + timedelta(days=7 * step)
    month = day.month - 1 + step
    return date(day.year + month // 12, month % 12 + 1, 1)


def _days(
    view: str, day: date, span: tuple[date, date], today: date, found: Calendar, zone: ZoneInfo
) -> list[Day]:
    first, last = span
    days = []
    current = first
    while current < last:
        in_period = view == "week" or current.month == day.month
        days.append(Day(current, in_period, current == today))
        current += timedelta(days=1)
    index = {d.day: d for d in days}
    for item in found.posts:
        local = item.at.astimezone(zone)
        target = index.get(local.date())
        if target is not None:
            target.posts.append(item)
    for target in days:
        starts = _midnight(target.day, zone)
        ends = _midnight(target.day + timedelta(days=1), zone)
        for window in found.windows:
            if window.starts_at < ends and window.ends_at > starts:
                target.windows.append(window.window.name)
            if window.notice_at is not None and starts <= window.notice_at < ends:
                target.notices.append(window.window.name)
        if view == "week":
            for hour in range(24):
                slot = Slot(hour)
                slot_start = datetime.combine(target.day, time(hour), tzinfo=zone)
                slot_end = slot_start + timedelta(hours=1)
                slot.posts = [p for p in target.posts if p.at.astimezone(zone).hour == hour]
                slot.windows = [
                    w.window.name
                    for w in found.windows
                    if w.starts_at < slot_end and w.ends_at > slot_start
                ]
                target.slots.append(slot)
    return days


@bp.get("/calendar")
@login_required
def calendar() -> Any:
    """Show a week (hour by hour) or a month of posts; plain GET parameters, so it works
    without JavaScript."""
    zone = viewer_zone()
    view = request.args.get("view", "week")
    if view not in VIEWS:
        view = "week"
    ctx = services()
    today = ctx.clock.now().astimezone(zone).date()
    day = _chosen_day(request.args.get("date"), today)
    account_id = parse_id(request.args.get("account"))
    first, last = period(view, day)
    found = read_calendar(
        ctx,
        current_actor(),
        CalendarQuery(_midnight(first, zone), _midnight(last, zone), account_id),
    )
    filters: dict[str, Any] = {"view": view}
    if account_id is not None:
        filters["account"] = account_id

    def link(**changes: Any) -> str:
        return url_for("calendar.calendar", **{**filters, **changes})

    title = f"Week of {first:%-d %B %Y}" if view == "week" else f"{day:%B %Y}"
    return render_template(
        "calendar.html",
        view=view,
        title=title,
        day=day,
        days=_days(view, day, (first, last), today, found, zone),
        found=found,
        account_id=account_id,
        zone=zone.key,
        clock_time=lambda at: f"{at.astimezone(zone):%H:%M}",
        link=link,
        previous=shifted(view, day, -1).isoformat(),
        following=shifted(view, day, 1).isoformat(),
        today=today.isoformat(),
        state_labels=STATE_LABELS,
        here=request.full_path.rstrip("?"),
    )
