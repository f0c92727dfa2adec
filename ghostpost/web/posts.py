"""One post: what was submitted, what went out, every disclosure decision; cancel, retry,
release (a post held because its grant was withdrawn), and the principal's deletion of a
published post (a confirmation page first: never one click)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from ghostpost import deletion
from ghostpost.services.calendar import may_move
from ghostpost.services.delegation import may_release, release_withdrawn_post
from ghostpost.services.deletion import may_delete
from ghostpost.services.errors import Conflict, Forbidden, PolicyRefused, ValidationFailed
from ghostpost.services.posts import cancel_post, reschedule_post, retry_post
from ghostpost.services.queue import PostView, post_detail
from ghostpost.web import staff
from ghostpost.web.calendar import STATE_LABELS
from ghostpost.web.common import (
    container,
    current_actor,
    current_user,
    login_required,
    services,
)
from ghostpost.web.confirm import confirm_page, confirmed
from ghostpost.web.decisions import decision_lines, decision_notes, utc_time
from ghostpost.web.times import utc_label, viewer_zone, zone_label

bp = Blueprint("posts", __name__)
bp.add_app_template_filter(utc_time, "utc_time")

SOURCE_LABELS = {
    "web": "web app",
    "api": "API",
    "mastodon-compat": "Mastodon-compatible API",
    "cli": "command line",
    "system": "ghostpost itself",
}


def submitter_label(ref: str) -> str:
    """Say who handed a post to ghostpost when it was not a staff user ("system:worker"...)."""
    kind, _, name = ref.partition(":")
    if kind == "system":
        return f"ghostpost ({name})"
    if kind == "client":
        return f"API client {name}"
    return ref


def _back(default: str) -> str:
    # Same-site paths only: a crafted "next" must not turn the form into an open redirect.
    target = request.form.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc:
        return target
    return default


def ledger_link(public_id: str) -> str | None:
    """Return the link to the post's ledger entries, for users who may read the ledger."""
    user = current_user()
    who = next((who for endpoint, _, who in staff.NAV if endpoint == "ledger.ledger"), set())
    if user is None or not staff.audiences(user) & who:
        return None
    base = url_for("ledger.ledger") if "ledger.ledger" in current_app.view_functions else "/ledger"
    return f"{base}?subject=post:{public_id}"


@bp.get("/posts/<public_id>")
@login_required
def detail(public_id: str) -> Any:
    """Show a post the reader may see (others' posts are 404)."""
    return _detail_page(post_detail(services(), current_actor(), public_id))


def _detail_page(
    view: PostView, *, reschedule_error: str = "", reschedule_value: str = "", status: int = 200
) -> Any:
    public_id = view.post.public_id
    decisions = view.post.decisions
    stages = [
        (title, decision_lines(decisions.get(key)), decision_notes(decisions.get(key)))
        for key, title in (
            ("submission", "At submission"),
            ("reminder_first", "Before it went out: a reminder first"),
            ("publication", "At publication"),
        )
        if decisions.get(key)
    ]
    return render_template(
        "post.html",
        view=view,
        post=view.post,
        stages=stages,
        source_label=SOURCE_LABELS.get(view.post.source.value, view.post.source.value),
        submitter=view.submitter.name if view.submitter else submitter_label(view.post.submitter),
        ledger_url=ledger_link(view.post.public_id),
        may_release=may_release(current_user(), view.post, view.account),
        may_delete=may_delete(current_user(), view.post, view.account),
        here=url_for("posts.detail", public_id=public_id),
        may_reschedule=may_move(view.may_change, view.post),
        reschedule_value=reschedule_value or _local_input(view.post.publish_at),
        reschedule_error=reschedule_error,
        zone=viewer_zone().key,
    ), status


#: What the principal types to confirm a deletion (the confirmation page says so).
CONFIRMATION_WORD = "delete"


@bp.get("/posts/<public_id>/delete")
@login_required
def confirm_delete(public_id: str) -> Any:
    """The confirmation step before the principal deletes a published post from its platform."""
    view = post_detail(services(), current_actor(), public_id)
    if not may_delete(current_user(), view.post, view.account):
        flash("Only the principal deletes a published post, and only once.", "error")
        return redirect(url_for("posts.detail", public_id=public_id))
    return render_template("post_delete.html", view=view, post=view.post, word=CONFIRMATION_WORD)


@bp.post("/posts/<public_id>/delete")
@login_required
def delete(public_id: str) -> Any:
    """Delete a published post from its platform (the principal only, confirmed by typing the
    word). The record keeps it: published, by its writer, then deleted by the principal."""
    view = post_detail(services(), current_actor(), public_id)
    if request.form.get("confirm", "").strip().lower() != CONFIRMATION_WORD:
        # Checked after the reader may see the post and before anything else: a missing
        # confirmation changes nothing, whoever sends it.
        flash(f'Type "{CONFIRMATION_WORD}" to confirm; nothing was deleted.', "error")
        return redirect(url_for("posts.confirm_delete", public_id=public_id))
    outcome = deletion.delete_published_post(container(), current_actor(), view.post.id)
    if outcome.refused is not None:
        flash(f"The platform refused to delete it; it is still out: {outcome.refused}", "error")
    elif outcome.pending:
        flash("The platform did not answer; ghostpost will finish deleting it.", "warn")
    else:
        flash(
            "Deleted from the platform. The record keeps who wrote it and when it went out.", "ok"
        )
    return redirect(url_for("posts.detail", public_id=public_id))


@bp.post("/posts/<public_id>/cancel")
@login_required
def cancel(public_id: str) -> Any:
    """Cancel a post that has not gone out (author, manager or principal)."""
    view = post_detail(services(), current_actor(), public_id)
    if not confirmed() and view.may_cancel:
        return confirm_page(
            heading="Cancel this post?",
            quote=view.post.submitted_text,
            consequences=[
                f"It will not be published on @{view.account.handle}.",
                "This cannot be undone: to post it later, compose it again.",
            ],
            button="Cancel post",
            back=_back(url_for("posts.detail", public_id=public_id)),
        )
    cancel_post(services(), current_actor(), view.post.id)
    flash("Post cancelled; it will not be published.", "ok")
    return redirect(_back(url_for("posts.detail", public_id=public_id)))


@bp.post("/posts/<public_id>/retry")
@login_required
def retry(public_id: str) -> Any:
    """Send a failed post back to the queue (author, manager or principal)."""
    view = post_detail(services(), current_actor(), public_id)
    retry_post(services(), current_actor(), view.post.id)
    flash("Post queued again; the worker will try it shortly.", "ok")
    return redirect(_back(url_for("posts.detail", public_id=public_id)))


@bp.post("/posts/<public_id>/release")
@login_required
def release(public_id: str) -> Any:
    """Release a post held because its grant was withdrawn, once restored (manager, principal)."""
    view = post_detail(services(), current_actor(), public_id)
    post = release_withdrawn_post(services(), current_actor(), view.post.id)
    if post.state.value == "pending_approval":
        flash("Post released: it waits for the principal's approval again.", "ok")
    else:
        flash("Post released: the worker will publish it when it is due.", "ok")
    return redirect(_back(url_for("posts.detail", public_id=public_id)))


def _local_input(at: datetime | None) -> str:
    """A moment as a datetime-local field shows it, in the viewer's zone."""
    return f"{at.astimezone(viewer_zone()):%Y-%m-%dT%H:%M}" if at else ""


def _parse_local(raw: str) -> datetime:
    """The form's local date and time, in the viewer's zone, as an aware moment."""
    zone = viewer_zone()
    try:
        naive = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(
            "Give a date and time, such as 2026-11-21 14:30.", {"publish_at": "not a time"}
        ) from None
    if naive.tzinfo is not None:
        raise ValidationFailed(
            f"Give the time as a clock in {zone.key} shows it.", {"publish_at": "has an offset"}
        )
    try:
        at = naive.replace(tzinfo=zone).astimezone(UTC)
        back = at.astimezone(zone).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise ValidationFailed(
            "That date is out of range.", {"publish_at": "out of range"}
        ) from None
    if back != naive:
        raise ValidationFailed(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip it. "
            "Choose another time.",
            {"publish_at": "does not exist"},
        )
    return at


#: Why reschedule_post refused bad input, in the words of someone choosing a time on a page.
_PLAIN_FIELD_ERRORS = {
    "in the past": "That time has passed: choose a later one.",
}
_REFUSAL_STATUS = {Forbidden: 403, Conflict: 409, ValidationFailed: 422, PolicyRefused: 422}


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


@bp.post("/posts/<public_id>/reschedule")
@login_required
def reschedule(public_id: str) -> Any:
    """Move a waiting post to another time (author, manager or principal), through
    reschedule_post and all its checks: from the post page's form, or dropped on the calendar
    (which asks for JSON). A refusal changes nothing and says why."""
    view = post_detail(services(), current_actor(), public_id)
    raw = request.form.get("publish_at", "")
    try:
        post = reschedule_post(services(), current_actor(), view.post.id, _parse_local(raw))
    except (Forbidden, Conflict, ValidationFailed, PolicyRefused) as exc:
        message = exc.message
        if isinstance(exc, ValidationFailed):
            reason = next(iter(exc.fields.values()), "") if exc.fields else ""
            message = _PLAIN_FIELD_ERRORS.get(reason, message)
        status = next(code for kind, code in _REFUSAL_STATUS.items() if isinstance(exc, kind))
        if _wants_json():
            return jsonify(ok=False, message=f"Not moved: {message}"), status
        return _detail_page(view, reschedule_error=message, reschedule_value=raw, status=status)
    assert post.publish_at is not None
    message = f"Moved to {zone_label(post.publish_at, viewer_zone())}."
    if post.state.value == "pending_approval":
        message += " It waits for the principal's approval."
    if _wants_json():
        return jsonify(
            ok=True,
            message=message,
            publish_at=post.publish_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            utc=utc_label(post.publish_at),
            local=zone_label(post.publish_at, viewer_zone()),
            time=f"{post.publish_at.astimezone(viewer_zone()):%H:%M}",
            state=post.state.value,
            state_label=STATE_LABELS.get(post.state.value, post.state.value),
        )
    flash(message, "ok")
    return redirect(_back(url_for("posts.detail", public_id=public_id)))
