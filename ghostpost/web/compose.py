"""Compose: write a post with a live counter and a preview of what it would be if it went out now.

The server is the authority: the preview (JSON for the page's script, or a full page for the
"Preview" button when JavaScript is off) comes from `services.posts.plan_post`, the same policy
engine that publishes. It never calls the text final: the tag, the reminder and the notice hold
are decided again when the post goes out, and the preview says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for

from ghostpost.domain.media_rules import MAX_UPLOAD_BYTES, MediaUpload, image_refusals
from ghostpost.domain.model import Account, Post, Role, Source, User
from ghostpost.domain.policy import (
    PostKind,
    RefusalCode,
    decided_at_publication,
    describe_decided_at_publication,
)
from ghostpost.domain.states import PostState
from ghostpost.services import media
from ghostpost.services.auth import writable_accounts
from ghostpost.services.errors import PolicyRefused, ValidationFailed
from ghostpost.services.groups import plan_group, submit_group
from ghostpost.services.posts import (
    PAST_TOLERANCE,
    Plan,
    SubmitPost,
    alt_text_required,
    plan_post,
    plan_thread,
    submit_post,
)
from ghostpost.services.queue import rejected_post
from ghostpost.web.common import (
    MAX_ID,
    current_actor,
    current_user,
    parse_id,
    roles_required,
    services,
)
from ghostpost.web.decisions import BAD, PLAIN, WARN, counter, decision_lines, utc_time
from ghostpost.web.times import chosen_zone, local_label, viewer_zone

bp = Blueprint("compose", __name__)

DEFAULT_TIMEZONE = "UTC"
COMPOSERS = (Role.WRITER, Role.MANAGER, Role.ADMIN)


@functools.cache
def timezones() -> tuple[str, ...]:
    """Return the IANA time zone names offered, UTC first."""
    names = sorted(available_timezones() - {"UTC", "localtime"})
    return (DEFAULT_TIMEZONE, *names)


@dataclass(frozen=True)
class When:
    """When the writer asked the post to go out: None is 'as soon as possible'."""

    at: datetime | None
    text: str


@dataclass(frozen=True)
class Draft:
    """The compose form as submitted (raw strings kept, so the form re-renders as typed)."""

    account_id: int | None
    text: str
    publish_at: str
    timezone: str
    #: The other accounts ticked under "Also post to": one post each, made together with the
    #: first as a group (services.groups).
    also_account_ids: tuple[int, ...] = ()
    #: Images uploaded with this draft (the writer's own, not yet attached), in order.
    images: tuple[MediaUpload, ...] = ()
    #: A thread's later parts, in order (blank part fields are left out).
    thread: tuple[str, ...] = ()
    #: The blank part fields the form had ("Add a part" shows one more).
    blank_parts: int = 0
    #: The public id of the rejected post this draft edits (recorded with the new post).
    resubmits: str = ""

    @property
    def group_account_ids(self) -> list[int]:
        """The accounts of a group, the chosen one first; empty when only one is chosen."""
        if not self.also_account_ids or self.account_id is None:
            return []
        return [self.account_id, *self.also_account_ids]


#: Image slots on the form: one file input and one alt text field each (no script needed).
IMAGE_SLOTS = 4
#: Part fields read from one form: more than any window's thread takes.
MAX_PART_FIELDS = 25
#: A compose form's body may be this large: every slot's image at the largest size a
#: platform takes, and the text fields (every other form keeps the app's limit).
COMPOSE_MAX_BYTES = IMAGE_SLOTS * MAX_UPLOAD_BYTES + 1024 * 1024


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= MAX_ID else None
    return parse_id(value) if isinstance(value, str) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ids(data: Any, name: str) -> tuple[int, ...]:
    """The ids a form (repeated field) or a JSON object (list) gives under `name`; an id that
    is not one (0, text) is kept as 0, so the group is refused rather than silently smaller."""
    raw = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
    values = raw if isinstance(raw, list) else []
    return tuple(_int(value) or 0 for value in values)


def _parts(data: Any) -> list[str]:
    raw = data.getlist("thread") if hasattr(data, "getlist") else data.get("thread")
    values = raw if isinstance(raw, list) else []
    return [_str(value).replace("\r\n", "\n") for value in values[:MAX_PART_FIELDS]]


def read_draft(data: Any) -> Draft:
    """Read the compose fields from a form or a JSON object."""
    parts = _parts(data)
    return Draft(
        account_id=_int(data.get("account_id")),
        # Browsers send CRLF line breaks in forms; platforms count one character per break.
        text=_str(data.get("text")).replace("\r\n", "\n"),
        publish_at=_str(data.get("publish_at")).strip(),
        timezone=_str(data.get("timezone")).strip() or DEFAULT_TIMEZONE,
        also_account_ids=_ids(data, "also_account_ids"),
        thread=tuple(part for part in parts if part.strip()),
        blank_parts=sum(1 for part in parts if not part.strip()),
        resubmits=_str(data.get("resubmits")).strip(),
    )


def resolve_when(draft: Draft) -> When:
    """Turn the local date-time and the chosen zone into a UTC instant (ValidationFailed if not)."""
    if draft.timezone not in timezones():
        raise ValidationFailed(
            f"Unknown time zone {draft.timezone!r}.", {"timezone": "unknown time zone"}
        )
    if not draft.publish_at:
        return When(None, "As soon as possible")
    try:
        local = datetime.fromisoformat(draft.publish_at)
    except ValueError:
        raise ValidationFailed(
            "Publish at must be a date and time such as 2026-11-21T14:30.",
            {"publish_at": "not a date and time"},
        ) from None
    if local.tzinfo is not None:
        raise ValidationFailed(
            "Give the local date and time and choose its time zone separately.",
            {"publish_at": "has an offset"},
        )
    zone = ZoneInfo(draft.timezone)
    at = local.replace(tzinfo=zone)
    try:
        utc = at.astimezone(UTC)
        back = utc.astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise ValidationFailed(
            f"{local:%Y-%m-%d %H:%M} in {draft.timezone} is out of range.",
            {"publish_at": "out of range"},
        ) from None
    if back != local:
        raise ValidationFailed(
            f"{local:%Y-%m-%d %H:%M} does not exist in {draft.timezone}: the clocks skip it "
            "(daylight saving time). Choose another time.",
            {"publish_at": "does not exist in this time zone"},
        )
    if utc < services().clock.now() - PAST_TOLERANCE:
        # Said here in the form's words (the service names its API field, publish_at).
        raise ValidationFailed(
            "The time to publish has passed: choose a later time, or leave it empty to "
            "publish now.",
            {"publish_at": "in the past"},
        )
    text = utc_time(utc)
    if draft.timezone != DEFAULT_TIMEZONE:
        text = f"{local:%Y-%m-%d %H:%M} {draft.timezone} = {text}"
    if local.replace(tzinfo=zone, fold=1).utcoffset() != at.utcoffset():
        text += " (this local time happens twice; the first one is used)"
    return When(utc, text)


def _selected(accounts: list[Account], account_id: int | None) -> Account | None:
    if account_id is None:
        return accounts[0] if accounts else None
    found = next((a for a in accounts if a.id == account_id), None)
    if found is None:
        abort(403, description="You are not assigned to this account.")
    return found


def _command(user: User, account: Account, draft: Draft, when: When) -> SubmitPost:
    return SubmitPost(
        account_id=account.id,
        author_id=user.id,
        text=draft.text,
        source=Source.WEB,
        publish_at=when.at,
        media_ids=tuple(image.public_id for image in draft.images),
        thread=draft.thread,
    )


def read_images(draft: Draft) -> Draft:
    """The draft with its images: those carried from an earlier preview (their alt text as
    edited now) and the files chosen in the slots (uploaded, cleaned, stored). Raises
    ValidationFailed naming the file refused."""
    actor = current_actor()
    images: list[MediaUpload] = []
    for media_id in request.form.getlist("media_ids")[:IMAGE_SLOTS]:
        upload = media.get_media(services(), actor, media_id)
        alt = _str(request.form.get(f"alt_{media_id}")).replace("\r\n", "\n")
        if alt.strip() != upload.alt_text:
            upload = media.describe_media(services(), actor, media_id, alt)
        images.append(upload)
    for slot in range(1, IMAGE_SLOTS + 1):
        file = request.files.get(f"image_{slot}")
        if file is None or not file.filename:
            continue
        alt = _str(request.form.get(f"image_{slot}_alt")).replace("\r\n", "\n")
        try:
            images.append(media.upload_media(services(), actor, file.read(), alt))
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"Image {slot} ({file.filename}): {exc.message}", {f"image_{slot}": "refused"}
            ) from None
    return replace(draft, images=tuple(images))


def image_lines(plan: Plan, draft: Draft) -> list[dict[str, str]]:
    """The preview's lines about the draft's images: what the account's platform refuses."""
    if not draft.images:
        return []
    refused = image_refusals(
        plan.account.platform,
        [image.facts() for image in draft.images],
        alt_text_required=alt_text_required(plan),
    )
    if refused:
        return [{"label": "Images", "text": "; ".join(refused.values()), "tone": BAD}]
    count = len(draft.images)
    return [
        {
            "label": "Images",
            "text": f"{count} image{'s' if count > 1 else ''}, alt text "
            "included; sent with the post, without their metadata",
            "tone": PLAIN,
        }
    ]


def preview_payload(plan: Plan, when: When, draft: Draft) -> dict[str, Any]:
    """Return what the page shows for a preview: counter, the text if it went out now, the
    decisions and what waits for publication, time."""
    decision = plan.decision
    empty = not draft.text.strip()
    record = decision.to_record()
    items: list[dict[str, str]] = []

    def add(label: str, text: str, tone: str = PLAIN) -> None:
        items.append({"label": label, "text": text, "tone": tone})

    if plan.delegated:
        add("Posting as", f"{plan.author.name} for @{plan.account.handle} — a delegated post")
    else:
        add("Posting as", "You, the principal — your own post: not delegated, never tagged")
    window = plan.window
    if window is not None:
        if window.notice_published_at is not None:
            notice = "notice published"
        elif window.notice_approved_at is not None:
            notice = "notice approved, going out"
        else:
            notice = "notice awaiting the principal's approval"
        policy = window.policy
        add(
            "Window",
            f"{window.name}, {local_label(policy.starts_at)} – "
            f"{local_label(policy.ends_at)}; {notice}",
        )
    elif plan.delegated:
        add("Window", "No delegation window covers this time", BAD)
    else:
        add("Window", "None needed for your own posts")
    add("Publish", when.text)
    if not empty:
        # The counter shows the length and the banner the refusal; the rest is listed here.
        items.extend(
            line for line in decision_lines(record) if line["label"] not in ("Length", "Refused")
        )
        if plan.delegated and window is not None and window.policy.requires_approval:
            add("Approval", "The principal approves it before it goes out", WARN)
    refusal = None
    if decision.refusal is not None and decision.refusal.code is not RefusalCode.EMPTY_TEXT:
        refusal = decision.refusal.message
    items.extend(image_lines(plan, draft))
    later = decided_at_publication(PostKind.REGULAR, plan.delegated)
    notes = [] if empty else [describe_decided_at_publication(later)]
    untagged = untagged_tag(plan) if not empty and refusal is None else None
    return {
        "counter": counter(decision),
        "text_if_published_now": "" if empty or decision.refused else decision.final_text,
        "decided_at_publication": [d.value for d in later],
        "items": items,
        "refusal": refusal,
        "notes": notes,
        "outcome": decision.outcome.value,
        "publish_at_utc": when.at.isoformat() if when.at else None,
        "empty": empty,
        #: The tag a delegated post would go out without (no room): the writer must say yes.
        "untagged": untagged,
    }


def untagged_tag(plan: Plan) -> str | None:
    """The window's tag when this delegated post would go out without it (no room), else None."""
    tag = plan.decision.to_record()["tag"]
    if plan.delegated and not plan.decision.refused and tag["outcome"] == "skipped":
        return str(tag["tag"])
    return None


def _render(
    accounts: list[Account],
    draft: Draft,
    *,
    preview: dict[str, Any] | None = None,
    parts: list[dict[str, Any]] | None = None,
    group_previews: list[tuple[Account, list[dict[str, Any]]]] | None = None,
    error: str | None = None,
    fields: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    return (
        render_template(
            "compose.html",
            accounts=accounts,
            draft=draft,
            preview=preview,
            parts=parts or [],
            group_previews=group_previews,
            error=error,
            fields=fields or {},
            timezones=timezones(),
            auto_timezone=request.method == "GET" and chosen_zone() is None,
            image_slots=range(1, IMAGE_SLOTS + 1 - len(draft.images)),
            # The filled parts, then at least one blank field (a thread starts by typing).
            part_fields=[*draft.thread, *[""] * max(1, draft.blank_parts)],
        ),
        status,
    )


@bp.get("/compose")
@roles_required(*COMPOSERS, allow_principal=True)
def compose() -> Any:
    """Show the compose form; `?account=<id>` preselects one of the user's accounts."""
    user = current_user()
    assert user is not None
    accounts = writable_accounts(services(), user)
    requested = request.args.get("account")
    account = _selected(accounts, _int(requested) if requested is not None else None)
    if requested is not None and account is None:
        abort(403, description="You are not assigned to this account.")
    # Scheduled in the user's own zone (UTC until they have one: then the browser's script picks).
    draft = Draft(account.id if account else None, "", "", viewer_zone().key)
    rejected = request.args.get("from")
    if rejected:
        # Edit a rejected post: its text, to be submitted again as a new post.
        view = rejected_post(services(), current_actor(), rejected)
        draft = replace(draft, text=view.post.submitted_text, resubmits=view.post.public_id)
    return _render(accounts, draft)


@bp.post("/compose")
@roles_required(*COMPOSERS, allow_principal=True)
def submit() -> Any:
    """Preview (the no-JavaScript path) or submit the post."""
    user = current_user()
    assert user is not None
    accounts = writable_accounts(services(), user)
    draft = read_draft(request.form)
    if draft.account_id is None:
        return _render(
            accounts,
            draft,
            error="Choose an account.",
            fields={"account_id": "required"},
            status=422,
        )
    account = _selected(accounts, draft.account_id)
    assert account is not None
    if request.form.get("action") == "add_part":
        return _add_part(accounts, draft)
    if draft.group_account_ids:
        return _submit_group(user, accounts, account, draft)
    try:
        draft = read_images(draft)
        when = resolve_when(draft)
        command = _command(user, account, draft, when)
        if draft.resubmits:
            # Only a rejected post the writer may change is named in the ledger as edited.
            rejected_post(services(), current_actor(), draft.resubmits)
            command = replace(command, extra={"resubmits": draft.resubmits})
        if request.form.get("action") == "preview":
            return _render_thread(accounts, draft, command, when)
        if not request.form.get("untagged_ok"):
            # A delegated post that would not carry the tag goes out only on an explicit yes.
            plans = plan_thread(services(), current_actor(), command)
            missing = next((tag for tag in map(untagged_tag, plans) if tag), None)
            if missing:
                return _render_thread(
                    accounts,
                    draft,
                    command,
                    when,
                    error=f"It would go out without {missing}: there is no room for it, so "
                    "readers are not told a team member wrote it. Shorten it, or tick "
                    f"“Send without {missing}” and submit again.",
                )
        post = submit_post(services(), current_actor(), command)
    except PolicyRefused as exc:
        return _render_thread(accounts, draft, command, when, error=exc.message)
    except ValidationFailed as exc:
        return _render(accounts, draft, error=exc.message, fields=exc.fields, status=422)
    flash(_submitted_message(post, now=when.at is None), "ok")
    return redirect(url_for("posts.detail", public_id=post.public_id))


def _add_part(accounts: list[Account], draft: Draft) -> Any:
    """The form again with one more blank part field (the images chosen are kept: uploaded
    now, carried by id)."""
    try:
        draft = read_images(draft)
    except ValidationFailed as exc:
        return _render(accounts, draft, error=exc.message, fields=exc.fields, status=422)
    return _render(accounts, replace(draft, blank_parts=max(1, draft.blank_parts) + 1))


def part_payloads(plans: list[Plan], when: When, draft: Draft) -> list[dict[str, Any]]:
    """Each part's preview, first part first (the images go with the first part)."""
    texts = (draft.text, *draft.thread)
    payloads = []
    for position, (plan, text) in enumerate(zip(plans, texts, strict=True), start=1):
        part = replace(draft, text=text, images=draft.images if position == 1 else ())
        payloads.append(preview_payload(plan, when, part))
    return payloads


def _render_thread(
    accounts: list[Account],
    draft: Draft,
    command: SubmitPost,
    when: When,
    *,
    error: str | None = None,
) -> Any:
    """The form with the preview of the post, or of each part of its thread."""
    payloads = part_payloads(plan_thread(services(), current_actor(), command), when, draft)
    return _render(
        accounts,
        draft,
        preview=payloads[0],
        parts=payloads if len(payloads) > 1 else [],
        error=error,
        status=422 if error else 200,
    )


def _submit_group(user: User, accounts: list[Account], account: Account, draft: Draft) -> Any:
    """Preview or submit one post (or thread) per ticked account, all or nothing
    (services.groups)."""
    for account_id in draft.also_account_ids:
        _selected(accounts, account_id)  # 403 for an account the writer is not assigned to
    account_ids = draft.group_account_ids
    try:
        draft = read_images(draft)
        when = resolve_when(draft)
        command = _command(user, account, draft, when)
        error = None
        if request.form.get("action") != "preview":
            missing = None
            if not request.form.get("untagged_ok"):
                planned = plan_group(services(), current_actor(), command, account_ids)
                missing = next(
                    (
                        (plan.account.handle, tag)
                        for parts in planned
                        for plan in parts
                        if (tag := untagged_tag(plan))
                    ),
                    None,
                )
            if missing is None:
                group = submit_group(services(), current_actor(), command, account_ids)
                flash(
                    f"Submitted to {len(group.posts)} accounts, one "
                    f"{'thread' if draft.thread else 'post'} each: "
                    + _submitted_message(group.posts[0], now=when.at is None),
                    "ok",
                )
                return redirect(url_for("posts.detail", public_id=group.posts[0].public_id))
            handle, tag = missing
            error = (
                f"On @{handle} it would go out without {tag}: there is no room for it, so "
                "readers are not told a team member wrote it. Shorten it, or tick "
                f"“Send without {tag}” and submit again."
            )
    except PolicyRefused as exc:
        error = exc.message
    except ValidationFailed as exc:
        return _render(accounts, draft, error=exc.message, fields=exc.fields, status=422)
    try:
        plans = plan_group(services(), current_actor(), command, account_ids)
    except ValidationFailed as exc:
        return _render(accounts, draft, error=exc.message, fields=exc.fields, status=422)
    previews = [(parts[0].account, part_payloads(parts, when, draft)) for parts in plans]
    # The "Send without the tag" box shows when any account's post would go out untagged.
    untagged = next((p["untagged"] for _, ps in previews for p in ps if p["untagged"]), None)
    return _render(
        accounts,
        draft,
        preview={**previews[0][1][0], "untagged": untagged},
        group_previews=previews,
        error=error,
        status=422 if error else 200,
    )


def _submitted_message(post: Post, *, now: bool) -> str:
    """Say what happens next: publishing now (no time given), or at the time chosen."""
    held = bool(post.decisions.get("submission", {}).get("held_reason"))
    if post.state is PostState.PENDING_APPROVAL:
        message = "Submitted: it waits for the principal's approval before it can go out."
        reasons = post.decisions.get("approval_reasons") or []
        if reasons:
            message += " Why: " + "; ".join(reasons) + "."
    elif now and held:
        return (
            "Submitted: it is held until the window's notice is published, then goes out at once."
        )
    elif now:
        message = "Submitted: publishing now."
    else:
        message = f"Submitted: scheduled for {local_label(post.publish_at)}."
    if held:
        message += " It will be held until the window's notice is published."
    return message


@bp.post("/compose/preview")
def preview() -> Any:
    """Return the preview as JSON for the page's script (same session, CSRF header)."""
    user = current_user()
    if user is None:
        abort(401, description="Your session has ended; sign in again.")
    if user.role not in COMPOSERS and user.principal_id is None:
        abort(403, description="Your role does not allow composing posts.")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested too deeply for json.loads: not a draft either
        data = None
    if not isinstance(data, dict):
        abort(400, description="Send the draft as a JSON object.")
    draft = read_draft(data)
    accounts = writable_accounts(services(), user)
    account = _selected(accounts, draft.account_id)
    if account is None:
        abort(403, description="You are not assigned to any account.")
    when = resolve_when(draft)
    plan = plan_post(services(), current_actor(), _command(user, account, draft, when))
    return jsonify(preview_payload(plan, when, draft))
