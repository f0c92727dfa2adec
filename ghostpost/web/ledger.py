"""The ledger viewer: every entry, newest first, filtered in the database, 50 to a page."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for

from ghostpost.domain.ledger import LedgerEntry, LedgerTag
from ghostpost.domain.model import Role, User, Window
from ghostpost.services.audit import (
    LEDGER_PAGE_SIZE,
    LedgerChoices,
    LedgerFilters,
    LedgerPage,
    ledger_choices,
    read_ledger,
)
from ghostpost.services.errors import ValidationFailed
from ghostpost.web.common import current_actor, parse_id, roles_required, services
from ghostpost.web.decisions import decision_lines, utc_time
from ghostpost.web.times import local_label

bp = Blueprint("ledger", __name__)
bp.add_app_template_filter(utc_time, "utc_time")

READERS = (Role.ADMIN, Role.MANAGER, Role.AUDITOR)
#: Query parameter -> LedgerFilters field.
PARAMS = {
    "account": "account_id",
    "window": "window_id",
    "author": "author_id",
    "action": "tag",
    "subject": "subject",
    "from": "date_from",
    "to": "date_to",
}
FIELD_OF_ERROR = {"action": "action", "subject": "subject", "date_to": "to"}
POLICY_WORDS = {
    "starts_at": "starts",
    "ends_at": "ends",
    "notice_text": "notice text",
    "reminder_text": "reminder text",
    "reason": "reason",
    "kind": "kind",
    "reminder_every": "reminder every N",
    "reminder_mode": "reminder mode",
    "tag": "tag",
    "tag_mode": "tag mode",
    "tag_position": "tag position",
    "requires_approval": "approval required",
    "reply_policy": "replies through the API",
    "name": "name",
}


@dataclass(frozen=True)
class Line:
    """One line of an entry's summary: a label and a value shown as plain, text block or link."""

    label: str
    value: str
    style: str = "plain"  # plain | text | link | post | ok | warn | bad
    href: str | None = None
    #: Shown in the row; the others wait behind "More".
    primary: bool = True


def post_url(public_id: str) -> str:
    """Return the post page's address (the posts blueprint may be absent in a stripped build)."""
    if "posts.detail" in current_app.view_functions:
        return url_for("posts.detail", public_id=public_id)
    return f"/posts/{public_id}"


def _person(value: Any) -> str:
    if not isinstance(value, Mapping):
        return str(value)
    name, email = value.get("name"), value.get("email")
    role = value.get("role")
    text = f"{name} <{email}>" if name and email else str(name or email or value.get("id"))
    return f"{text} · {role}" if role else text


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
        # A moment (with its offset) in the reader's zone, UTC beside it; anything else as is.
        return local_label(at) if at.tzinfo is not None else value
    return str(value)


class Summary:
    """Turns an entry's data into readable lines, naming people, accounts and windows."""

    def __init__(self, choices: LedgerChoices) -> None:
        self.users = choices.users_by_ref
        self.accounts = {a.id: a for a in choices.accounts}
        self.windows: dict[int, Window] = {w.id: w for w in choices.windows}

    def actor(self, ref: str) -> str:
        """Name the actor of an entry."""
        user = self.users.get(ref)
        if user is not None:
            return user.name
        if ref == "system:worker":
            return "Publishing worker"
        return ref

    def subject(self, subject: str) -> Line:
        """Describe the subject of an entry, linking posts to their page."""
        kind, _, ident = subject.partition(":")
        if kind == "post":
            return Line("Post", ident, "post", post_url(ident))
        here = url_for("ledger.ledger", subject=subject)
        number = int(ident) if ident.isdigit() else None
        if kind == "window" and number in self.windows:
            return Line("Window", self.windows[number].name, "link", here)
        if kind == "account" and number in self.accounts:
            return Line("Account", "@" + self.accounts[number].handle, "link", here)
        if kind == "user" and subject in self.users:
            return Line("User", self.users[subject].name, "link", here)
        return Line(kind.capitalize() or "Subject", subject, "link", here)

    def _account(self, value: Any) -> str:
        account = self.accounts.get(value) if isinstance(value, int) else None
        return f"@{account.handle}" if account else f"account {value}"

    def _window(self, value: Any) -> str:
        window = self.windows.get(value) if isinstance(value, int) else None
        return window.name if window else f"window {value}"

    def _submitter(self, value: Any) -> str:
        user = self.users.get(value) if isinstance(value, str) else None
        return user.name if user else str(value)

    def lines(self, entry: LedgerEntry) -> list[Line]:
        """Return the readable lines of the entry's data (the raw JSON is shown beside)."""
        data = entry.data
        out: list[Line] = []
        # A worker's attempt repeats the text and decision the publish entry records.
        attempt = entry.tag == LedgerTag.POST_PUBLISHING.value
        formatters: list[tuple[str, str, Callable[[Any], str], str, bool]] = [
            ("writer", "Writer", _person, "plain", True),
            ("approver", "Approver", _person, "plain", True),
            ("user", "User", _person, "plain", True),
            ("drafted_by", "Drafted by", _person, "plain", True),
            ("edited_by", "Edited by", _person, "plain", True),
            ("submitter", "Submitted by", self._submitter, "plain", False),
            ("source", "Source", str, "plain", False),
            ("account_id", "Account", self._account, "plain", False),
            ("window_id", "Window", self._window, "plain", False),
            ("kind", "Kind", str, "plain", False),
            ("state", "State", lambda v: str(v).replace("_", " "), "plain", False),
            ("publish_at", "Scheduled for", _show, "plain", False),
            ("submitted_text", "Submitted text", str, "text", True),
            ("final_text", "Text sent", str, "text", not attempt),
            ("text", "Text", str, "text", True),
            ("reason", "Reason", str, "warn", True),
            ("error", "Error", str, "bad", True),
            ("comment", "Comment", str, "plain", True),
            ("attempt", "Attempt", str, "plain", True),
            ("worker", "Worker", str, "plain", False),
        ]
        if entry.tag == LedgerTag.USER_CREATED.value:
            out.append(Line("User", _person(data)))
        window_entry = entry.tag in (LedgerTag.WINDOW_CREATED.value, LedgerTag.WINDOW_UPDATED.value)
        if window_entry and data.get("name"):
            out.append(Line("Window", str(data["name"])))
        for key, label, show, style, primary in formatters:
            value = data.get(key)
            if value is None or value == "":
                continue
            out.append(Line(label, show(value), style, primary=primary))
        if "delegated" in data:
            who = "delegated" if data["delegated"] else "the principal's own"
            out.append(Line("Authorship", who, primary=False))
        if isinstance(data.get("policy"), Mapping):
            out.append(Line("Policy", _policy(data["policy"])))
        if isinstance(data.get("changes"), Mapping):
            for name, change in data["changes"].items():
                if isinstance(change, Mapping):
                    words = POLICY_WORDS.get(name, name)
                    out.append(
                        Line(
                            f"Changed {words}",
                            f"{_show(change.get('old'))} → {_show(change.get('new'))}",
                        )
                    )
        decision = data.get("decision")
        if isinstance(decision, Mapping):
            for line in decision_lines(dict(decision)):
                primary = not attempt and line["label"] in ("Tag", "Reminder", "Refused", "Notice")
                out.append(Line(line["label"], line["text"], _tone(line["tone"]), primary=primary))
        if data.get("reminder_first"):
            out.append(Line("Reminder", "A standalone reminder went out just before it", "ok"))
        for key, label in (("before_post", "Goes out before"), ("notice_post", "Notice post")):
            if isinstance(data.get(key), str):
                out.append(Line(label, data[key], "post", post_url(data[key]), primary=False))
        url = data.get("platform_url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            out.append(Line("On the platform", url, "link", url))
        if data.get("reconciled"):
            out.append(Line("Reconciled", "found on the platform after a worker crash", "warn"))
        released = data.get("released")
        if isinstance(released, list) and released:
            out.append(Line("Released", f"{len(released)} held post(s) after the notice"))
        return out


def _tone(tone: str) -> str:
    return tone if tone in ("ok", "warn", "bad") else "plain"


def _policy(policy: Mapping[str, Any]) -> str:
    tag = (
        "tag off"
        if policy.get("tag_mode") == "off"
        else f"{policy.get('tag')} {str(policy.get('tag_mode')).replace('_', ' ')}, "
        f"at the {policy.get('tag_position')}"
    )
    approval = "approval required" if policy.get("requires_approval") else "no approval"
    return (
        f"{_show(policy.get('starts_at'))} – {_show(policy.get('ends_at'))}; reminder every "
        f"{policy.get('reminder_every')} ({policy.get('reminder_mode')}); {tag}; {approval}"
    )


def _number(name: str, errors: dict[str, str]) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    number = parse_id(raw)
    if number is None:
        errors[name] = "Not a valid choice."
    return number


def _day(name: str, errors: dict[str, str]) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Not a date (YYYY-MM-DD)."
        return None


def _parse() -> tuple[LedgerFilters, dict[str, str]]:
    errors: dict[str, str] = {}
    filters = LedgerFilters(
        account_id=_number("account", errors),
        window_id=_number("window", errors),
        author_id=_number("author", errors),
        tag=request.args.get("action", "").strip() or None,
        subject=request.args.get("subject", "").strip() or None,
        date_from=_day("from", errors),
        date_to=_day("to", errors),
    )
    return filters, errors


@bp.get("/ledger")
@roles_required(*READERS, allow_principal=True)
def ledger() -> Any:
    """Show one page of the ledger; filters and cursors are plain GET parameters."""
    actor = current_actor()
    filters, errors = _parse()
    before = _number("before", errors)
    after = _number("after", errors)
    page: LedgerPage | None = None
    if not errors:
        try:
            page = read_ledger(services(), actor, filters, before=before, after=after)
        except ValidationFailed as exc:
            errors = {
                FIELD_OF_ERROR.get(k, k): v[:1].upper() + v[1:] + "." for k, v in exc.fields.items()
            }
    choices = page.choices if page else ledger_choices(services(), actor)
    params = {
        param: request.args.get(param, "").strip()
        for param in PARAMS
        if request.args.get(param, "").strip()
    }
    newer_url = older_url = newest_url = None
    if page is not None:
        if page.newer_cursor is not None:
            newer_url = url_for("ledger.ledger", **params, after=page.newer_cursor)
            newest_url = url_for("ledger.ledger", **params)
        if page.older_cursor is not None:
            older_url = url_for("ledger.ledger", **params, before=page.older_cursor)
    summary = Summary(choices)
    rows = [
        {
            "entry": entry,
            "actor": summary.actor(entry.actor),
            "subject": summary.subject(entry.subject),
            "lines": summary.lines(entry),
            "raw": json.dumps(dict(entry.data), indent=2, ensure_ascii=False, sort_keys=True),
        }
        for entry in (page.entries if page else [])
    ]
    return (
        render_template(
            "ledger.html",
            choices=choices,
            filters=filters,
            params=params,
            errors=errors,
            page=page,
            rows=rows,
            tags=[t.value for t in LedgerTag],
            page_size=LEDGER_PAGE_SIZE,
            authors=_authors(choices.authors),
            newer_url=newer_url,
            older_url=older_url,
            newest_url=newest_url,
        ),
        422 if errors else 200,
    )


def _authors(users: list[User]) -> list[User]:
    # Writers first: they are who the filter is usually for.
    return sorted(users, key=lambda u: (u.role is not Role.WRITER, u.name.lower()))
