"""Delegation windows: the list per account, the create/edit form, and writer assignments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ghostpost.domain.model import Role, Window
from ghostpost.domain.policy import (
    DEFAULT_REMINDER_EVERY,
    DEFAULT_TAG,
    ReminderMode,
    ReplyPolicy,
    TagMode,
    TagPosition,
    WindowKind,
)
from ghostpost.services import directory
from ghostpost.services.errors import Conflict, ValidationFailed
from ghostpost.services.windows import (
    WindowSpec,
    WindowView,
    create_window,
    manageable_accounts,
    update_window,
    window_for_editing,
    windows_overview,
)
from ghostpost.web.common import (
    MAX_ID,
    current_actor,
    parse_id,
    role_label,
    roles_required,
    services,
)
from ghostpost.web.confirm import confirm_page, confirmed
from ghostpost.web.decisions import utc_time
from ghostpost.web.times import viewer_zone

bp = Blueprint("windows", __name__)
bp.add_app_template_filter(utc_time, "utc_time")
bp.add_app_template_filter(role_label, "role_label")

READERS = (Role.ADMIN, Role.MANAGER, Role.AUDITOR)
MANAGERS = (Role.ADMIN, Role.MANAGER)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"

#: The form's fields and their labels (also used to word service messages about them).
LABELS = {
    "name": "Name",
    "kind": "Kind",
    "reason": "Reason (public)",
    "account_id": "Account",
    "starts_at": "Starts",
    "ends_at": "Ends",
    "timezone": "Time zone",
    "notice_text": "Notice text",
    "notice_publish_at": "Notice goes out",
    "reminder_text": "Reminder text",
    "reminder_every": "Reminder every N posts",
    "reminder_mode": "Reminder mode",
    "tag": "Tag",
    "tag_mode": "Tag mode",
    "tag_position": "Tag position",
    "requires_approval": "Delegated posts need the principal's approval",
    # Unchecked (absent) keeps alt text required: a form without it never weakens a window.
    "alt_text_optional": "Delegated posts' images may go without alt text",
    "tag_every_part": "Tag every part of a thread",
    "reply_policy": "Replies through the API or the Mastodon face",
}
#: The form's checkboxes ("1" when ticked, "" when not).
CHECKBOXES = ("requires_approval", "alt_text_optional", "tag_every_part")
REMINDER_MODES = {
    ReminderMode.INLINE.value: "Inline, when it fits",
    ReminderMode.STANDALONE.value: "Standalone post",
}
TAG_MODES = {
    TagMode.WHEN_FITS.value: "When it fits",
    TagMode.REQUIRED.value: "Required",
    TagMode.OFF.value: "Off",
}
TAG_POSITIONS = {TagPosition.END.value: "At the end", TagPosition.START.value: "At the start"}
WINDOW_KINDS = {
    WindowKind.DELEGATION.value: "Delegation window: the team posts, with disclosure",
    WindowKind.AWAY.value: "Away notice: a notice and no delegated posting",
}
REPLY_POLICIES = {
    ReplyPolicy.APPROVE.value: "The principal approves each one",
    ReplyPolicy.ALLOW.value: "Allowed, like any post",
    ReplyPolicy.REFUSE.value: "Refused",
}


@cache
def time_zones() -> list[str]:
    """Return the IANA time zones for the select, UTC first."""
    names = {
        name
        for name in available_timezones()
        if not name.startswith(("posix/", "right/")) and name not in ("localtime", "Factory")
    }
    names.discard("UTC")
    return ["UTC", *sorted(names)]


@dataclass
class WindowForm:
    """The window form's raw values and its field errors."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    def error(self, name: str, text: str) -> None:
        """Record the first error of a field."""
        self.errors.setdefault(name, text)


def _blank_form(account_id: int | None, now: datetime, zone: ZoneInfo) -> WindowForm:
    """An empty form in the viewer's zone, starting at the next full hour there."""
    start = (now.astimezone(zone) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return WindowForm(
        {
            "name": "",
            "kind": WindowKind.DELEGATION.value,
            "reason": "",
            "account_id": str(account_id or ""),
            "starts_at": start.strftime(LOCAL_FORMAT),
            "ends_at": (start + timedelta(hours=8)).strftime(LOCAL_FORMAT),
            "timezone": zone.key,
            "notice_text": "",
            "notice_publish_at": "",
            "reminder_text": "",
            "reminder_every": str(DEFAULT_REMINDER_EVERY),
            "reminder_mode": ReminderMode.INLINE.value,
            "tag": DEFAULT_TAG,
            "tag_mode": TagMode.WHEN_FITS.value,
            "tag_position": TagPosition.END.value,
            "requires_approval": "",
            "alt_text_optional": "",
            "tag_every_part": "",
            "reply_policy": ReplyPolicy.APPROVE.value,
        }
    )


def _form_of(window: Window, zone: ZoneInfo) -> WindowForm:
    """The window's values, its times shown in the viewer's zone (and that zone selected)."""
    policy = window.policy
    return WindowForm(
        {
            "name": window.name,
            "kind": policy.kind.value,
            "reason": policy.reason,
            "account_id": str(window.account_id),
            "starts_at": policy.starts_at.astimezone(zone).strftime(LOCAL_FORMAT),
            "ends_at": policy.ends_at.astimezone(zone).strftime(LOCAL_FORMAT),
            "timezone": zone.key,
            "notice_text": policy.notice_text,
            "notice_publish_at": window.notice_publish_at.astimezone(zone).strftime(LOCAL_FORMAT)
            if window.notice_publish_at
            else "",
            "reminder_text": policy.reminder_text,
            "reminder_every": str(policy.reminder_every),
            "reminder_mode": policy.reminder_mode.value,
            "tag": policy.tag,
            "tag_mode": policy.tag_mode.value,
            "tag_position": policy.tag_position.value,
            "requires_approval": "1" if policy.requires_approval else "",
            "alt_text_optional": "" if policy.alt_text_required else "1",
            "tag_every_part": "1" if policy.tag_every_part else "",
            "reply_policy": policy.reply_policy.value,
        }
    )


def _local_time(form: WindowForm, name: str, zone: ZoneInfo | None) -> datetime | None:
    raw = form.values[name].strip()
    if not raw:
        form.error(name, "Required.")
        return None
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        form.error(name, "Not a date and time (YYYY-MM-DD HH:MM).")
        return None
    if naive.tzinfo is not None:
        form.error(name, "Give the local time and pick its time zone below.")
        return None
    if zone is None:
        return None
    local = naive.replace(tzinfo=zone)
    try:
        utc = local.astimezone(UTC)
        round_trip = utc.astimezone(zone).replace(tzinfo=None)
    except (OverflowError, ValueError):  # year 1 or 9999 pushed past the calendar
        form.error(name, "Out of range.")
        return None
    # A wall time skipped by a daylight-saving change does not exist; say so, never guess.
    if round_trip != naive:
        form.error(name, f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key} (clock change).")
        return None
    return utc


def _parse(form: WindowForm, account_id: int | None) -> WindowSpec | None:
    """Turn the submitted strings into a WindowSpec, or record why not."""
    v = form.values
    zone: ZoneInfo | None = None
    if v["timezone"] not in time_zones():
        form.error("timezone", "Pick a time zone from the list.")
    else:
        try:
            zone = ZoneInfo(v["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            form.error("timezone", "Pick a time zone from the list.")
    starts_at = _local_time(form, "starts_at", zone)
    ends_at = _local_time(form, "ends_at", zone)
    # Empty: the configured lead before the start.
    notice_at = (
        _local_time(form, "notice_publish_at", zone) if v["notice_publish_at"].strip() else None
    )
    if account_id is None:
        account_id = parse_id(v["account_id"])
        if account_id is None:
            form.error("account_id", "Pick an account.")
    every = parse_id(v["reminder_every"])
    if every is None:
        form.error("reminder_every", "A whole number of posts, such as 10.")
    choices = (
        ("reminder_mode", REMINDER_MODES),
        ("tag_mode", TAG_MODES),
        ("tag_position", TAG_POSITIONS),
        ("reply_policy", REPLY_POLICIES),
    )
    if v["kind"] not in WINDOW_KINDS:
        form.error("kind", "Pick one of the options.")
    for name, allowed in choices:
        if v[name] not in allowed:
            form.error(name, "Pick one of the options.")
    if form.errors or starts_at is None or ends_at is None or every is None or not account_id:
        return None
    return WindowSpec(
        account_id=account_id,
        name=v["name"],
        starts_at=starts_at,
        ends_at=ends_at,
        notice_text=v["notice_text"].replace("\r\n", "\n"),
        reminder_text=v["reminder_text"].replace("\r\n", "\n"),
        reminder_every=every,
        reminder_mode=ReminderMode(v["reminder_mode"]),
        tag=v["tag"].strip(),
        tag_mode=TagMode(v["tag_mode"]),
        tag_position=TagPosition(v["tag_position"]),
        requires_approval=bool(v["requires_approval"]),
        alt_text_required=not v["alt_text_optional"],
        tag_every_part=bool(v["tag_every_part"]),
        reply_policy=ReplyPolicy(v["reply_policy"]),
        notice_publish_at=notice_at,
        reason=v["reason"].replace("\r\n", "\n"),
        kind=WindowKind(v["kind"]),
    )


def _at_form_precision(spec: WindowSpec, window: Window) -> WindowSpec:
    """Keep the stored times the form shows unchanged.

    The form shows whole minutes; a stored time with seconds (the demo's window) comes back
    truncated, and comparing it at full precision would read as a move ("the window has started").
    """

    def kept(submitted: datetime | None, stored: datetime | None) -> datetime | None:
        if submitted is None or stored is None:
            return submitted
        shown = stored.astimezone(UTC).replace(second=0, microsecond=0)
        return stored if submitted == shown else submitted

    policy = window.policy
    return replace(
        spec,
        starts_at=kept(spec.starts_at, policy.starts_at) or spec.starts_at,
        ends_at=kept(spec.ends_at, policy.ends_at) or spec.ends_at,
        notice_publish_at=kept(spec.notice_publish_at, window.notice_publish_at),
    )


def _submitted(data: Mapping[str, str]) -> WindowForm:
    names = [n for n in LABELS if n not in CHECKBOXES]
    values = {name: data.get(name, "") for name in names}
    for name in CHECKBOXES:
        values[name] = "1" if data.get(name) else ""
    # A form without the select (older pages, scripts) opens a delegation window, as before.
    values["kind"] = data.get("kind", WindowKind.DELEGATION.value)
    # A form from before the setting existed asks for the default (approval).
    values["reply_policy"] = values["reply_policy"] or ReplyPolicy.APPROVE.value
    return WindowForm(values)


def _humane(text: str) -> str:
    # Service messages name fields by their keys ("must be after starts_at"): use the words.
    text = text.replace("starts_at", "the start").replace("ends_at", "the end")
    text = text.replace("notice_publish_at", "the notice time")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _absorb(form: WindowForm, exc: ValidationFailed | Conflict) -> None:
    form.message = exc.message
    if isinstance(exc, ValidationFailed) and exc.fields:
        form.message = "Some fields need attention."
        for name, text in exc.fields.items():
            form.error(name if name in LABELS else "name", _humane(text))


def _render_form(form: WindowForm, *, view: WindowView | None, status: int = 200) -> Any:
    accounts = manageable_accounts(services(), current_actor())
    return (
        render_template(
            "window_form.html",
            form=form,
            view=view,
            accounts=accounts,
            labels=LABELS,
            zones=time_zones(),
            reminder_modes=REMINDER_MODES,
            tag_modes=TAG_MODES,
            tag_positions=TAG_POSITIONS,
            window_kinds=WINDOW_KINDS,
            reply_policies=REPLY_POLICIES,
            notice_lead_minutes=int(services().notice_lead.total_seconds() // 60),
        ),
        status,
    )


@bp.get("/windows")
@roles_required(*READERS, allow_principal=True)
def windows() -> Any:
    """List the windows of every account the reader oversees, with notices and writers."""
    accounts = windows_overview(services(), current_actor())
    return render_template(
        "windows.html",
        accounts=accounts,
        may_create=any(a.may_manage for a in accounts),
        reminder_modes=REMINDER_MODES,
        tag_modes=TAG_MODES,
        tag_positions=TAG_POSITIONS,
    )


@bp.route("/windows/new", methods=["GET", "POST"])
@roles_required(*MANAGERS, allow_principal=True)
def new_window() -> Any:
    """Show the form for a new window; on POST, open it (its notice then awaits approval)."""
    if not manageable_accounts(services(), current_actor()):
        abort(403, description="You do not manage any account.")
    if request.method == "GET":
        account = parse_id(request.args.get("account"))
        form = _blank_form(account, services().clock.now(), viewer_zone())
        return _render_form(form, view=None)
    form = _submitted(request.form)
    spec = _parse(form, None)
    if spec is None:
        form.message = "Some fields need attention."
        return _render_form(form, view=None, status=422)
    try:
        window = create_window(services(), current_actor(), spec)
    except ValidationFailed as exc:
        _absorb(form, exc)
        return _render_form(form, view=None, status=422)
    except Conflict as exc:
        _absorb(form, exc)
        return _render_form(form, view=None, status=409)
    flash(f"Window “{window.name}” created. Its notice now awaits the principal's approval.", "ok")
    return redirect(url_for("windows.windows", _anchor=f"window-{window.id}"))


@bp.route("/windows/<int:window_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS, allow_principal=True)
def edit_window(window_id: int) -> Any:
    """Show a window's form filled in (times in the viewer's zone); on POST, save the changes."""
    if window_id > MAX_ID:
        abort(404, description=f"No window {window_id}.")
    view = window_for_editing(services(), current_actor(), window_id)
    if request.method == "GET":
        return _render_form(_form_of(view.window, viewer_zone()), view=view)
    form = _submitted(request.form)
    form.values["account_id"] = str(view.window.account_id)
    # Shown disabled (a window's kind never changes), so not sent.
    form.values["kind"] = view.window.policy.kind.value
    if "notice_text" not in request.form:
        # Read-only fields are still sent; a form without one keeps the current text.
        form.values["notice_text"] = view.window.policy.notice_text
    spec = _parse(form, view.window.account_id)
    if spec is None:
        form.message = "Some fields need attention."
        return _render_form(form, view=view, status=422)
    spec = _at_form_precision(spec, view.window)
    try:
        edit = update_window(services(), current_actor(), window_id, spec)
    except ValidationFailed as exc:
        _absorb(form, exc)
        return _render_form(form, view=view, status=422)
    except Conflict as exc:
        _absorb(form, exc)
        return _render_form(form, view=view, status=409)
    window = edit.window
    if not edit.changed:
        flash("Nothing changed.", "ok")
    elif edit.proposal is None:
        flash(f"Window “{window.name}” saved. Posts decided from now on follow it.", "ok")
    else:
        waiting = ", ".join(LABELS.get(name, name) for name in edit.proposal.changes)
        applied = ", ".join(LABELS.get(name, name) for name in edit.applied)
        flash(
            f"Window “{window.name}”: "
            + (f"applied at once: {applied}. " if applied else "")
            + f"Pending the principal's approval: {waiting}. "
            "Until the principal approves, the approved policy stays in force.",
            "ok",
        )
    return redirect(url_for("windows.windows", _anchor=f"window-{window.id}"))


def _ids() -> tuple[int, int]:
    account, user = parse_id(request.form.get("account_id")), parse_id(request.form.get("user_id"))
    if account is None or user is None:
        abort(400, description="Pick an account and a person.")
    return account, user


@bp.post("/windows/assignments")
@roles_required(*MANAGERS, allow_principal=True)
def assign() -> Any:
    """Let a staff user write for an account."""
    account_id, user_id = _ids()
    directory.assign_writer(services(), current_actor(), user_id=user_id, account_id=account_id)
    flash("Writer assigned: they can now compose for this account.", "ok")
    return redirect(url_for("windows.windows", _anchor=f"account-{account_id}"))


def _confirm_unassign(account_id: int, user_id: int) -> Any:
    item = next(
        (a for a in windows_overview(services(), current_actor()) if a.account.id == account_id),
        None,
    )
    if item is None:
        abort(404, description=f"No account {account_id}.")
    if not item.may_manage:
        abort(403, description="You do not manage this account.")
    writer = next((w for w in item.writers if w.id == user_id), None)
    if writer is None:  # not assigned: unassigning changes nothing, so nothing to confirm
        return redirect(url_for("windows.windows", _anchor=f"account-{account_id}"))
    return confirm_page(
        heading=f"Unassign {writer.name} from @{item.account.handle}?",
        consequences=[
            f"{writer.name} can no longer compose for @{item.account.handle}.",
            "Their posts not yet published there are held (see the queue).",
        ],
        undo="You can undo this: assign them again on the windows page.",
        button=f"Unassign {writer.name}",
        back=url_for("windows.windows", _anchor=f"account-{account_id}"),
    )


@bp.post("/windows/assignments/remove")
@roles_required(*MANAGERS, allow_principal=True)
def unassign() -> Any:
    """Withdraw a staff user's permission to write for an account."""
    account_id, user_id = _ids()
    if not confirmed():
        return _confirm_unassign(account_id, user_id)
    directory.unassign_writer(services(), current_actor(), user_id=user_id, account_id=account_id)
    flash(
        "Writer unassigned: they can no longer compose for this account, and their posts "
        "not yet published there are held (see the queue). To undo, assign them again below.",
        "ok",
    )
    return redirect(url_for("windows.windows", _anchor=f"account-{account_id}"))
