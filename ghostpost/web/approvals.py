"""The principal's approvals: window notices (with the policy they approve) before they go
out, changes to an approved window's policy, and delegated posts when a window asks for
approval. Nobody approves their own post (the service says so; we show it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ghostpost.services.errors import Conflict, Forbidden, ValidationFailed
from ghostpost.services.posts import approve_post, reject_post
from ghostpost.services.queue import approvals_for, post_detail
from ghostpost.services.windows import (
    approve_notice,
    approve_proposal,
    notice_fingerprint,
    proposals_for,
    reject_notice,
    reject_proposal,
)
from ghostpost.web.common import MAX_ID, current_actor, roles_required, services
from ghostpost.web.decisions import decision_lines, utc_time
from ghostpost.web.errors import STATUS_FOR
from ghostpost.web.times import local_label

bp = Blueprint("approvals", __name__)
bp.add_app_template_filter(utc_time, "utc_time")

MAX_COMMENT = 2000


def _page(error: str | None = None, status: int = 200, failed_post: str | None = None) -> Any:
    approvals = approvals_for(services(), current_actor())
    # The tag and the length are settled at submission; the reminder and the notice gate are
    # decided again when the post goes out, so the stored guesses would only mislead here.
    lines = {
        view.post.public_id: [
            line
            for line in decision_lines(view.post.decisions.get("submission"))
            if line["label"] in ("Tag", "Length")
        ]
        for view in approvals.posts
    }
    comment = request.form.get("comment", "") if failed_post else ""
    return (
        render_template(
            "approvals.html",
            approvals=approvals,
            proposals=proposals_for(services(), current_actor()),
            fingerprints={n.window.id: notice_fingerprint(n.window) for n in approvals.notices},
            lines=lines,
            error=error,
            failed_post=failed_post,
            comment=comment,
        ),
        status,
    )


@bp.get("/approvals")
@roles_required(allow_principal=True)
def approvals() -> Any:
    """List what waits for the principal's decision."""
    return _page()


@bp.post("/approvals/notices/<int:window_id>")
@roles_required(allow_principal=True)
def notice(window_id: int) -> Any:
    """Approve a window's notice and its policy as shown: the notice is scheduled for its time."""
    try:
        window = approve_notice(
            services(), current_actor(), window_id, seen=request.form.get("policy")
        )
    except (Conflict, Forbidden) as exc:
        return _page(exc.message, STATUS_FOR[type(exc)])
    when = window.notice_publish_at
    if when is None or when <= services().clock.now():
        flash(f"Notice of “{window.name}” approved; it goes out now.", "ok")
    else:
        flash(
            f"Notice of “{window.name}” approved; it goes out {local_label(when)}, "
            "and delegated posts wait for it.",
            "ok",
        )
    return redirect(url_for("approvals.approvals"))


@bp.post("/approvals/notices/<int:window_id>/reject")
@roles_required(allow_principal=True)
def reject_window_notice(window_id: int) -> Any:
    """Reject a window's notice with a comment the window's managers see; it stays unpublished."""
    if window_id > MAX_ID:
        abort(404, description=f"No window {window_id}.")
    comment = request.form.get("comment", "")
    try:
        window = reject_notice(services(), current_actor(), window_id, comment)
    except (Conflict, Forbidden) as exc:
        return _page(exc.message, STATUS_FOR[type(exc)], f"notice-{window_id}")
    except ValidationFailed as exc:
        return _page(exc.message, 422, f"notice-{window_id}")
    flash(
        f"Notice of “{window.name}” rejected; its managers see your comment. "
        "It comes back here when they edit the window.",
        "ok",
    )
    return redirect(url_for("approvals.approvals"))


@bp.post("/approvals/proposals/<int:proposal_id>")
@roles_required(allow_principal=True)
def decide_proposal(proposal_id: int) -> Any:
    """Approve or reject a proposed change to an approved window's policy."""
    if proposal_id > MAX_ID:
        abort(404, description=f"No proposal {proposal_id}.")
    choice = request.form.get("decision")
    if choice not in ("approve", "reject"):
        abort(400, description="Choose Approve or Reject.")
    comment = request.form.get("comment", "")
    failed = f"proposal-{proposal_id}"
    try:
        if choice == "approve":
            window = approve_proposal(services(), current_actor(), proposal_id, comment)
            flash(f"Change to “{window.name}” approved; it applies from now on.", "ok")
        else:
            reject_proposal(services(), current_actor(), proposal_id, comment)
            flash("Change rejected; the approved policy stays in force.", "ok")
    except (Conflict, Forbidden) as exc:
        return _page(exc.message, STATUS_FOR[type(exc)], failed)
    except ValidationFailed as exc:
        return _page(exc.message, 422, failed)
    return redirect(url_for("approvals.approvals"))


@bp.post("/approvals/posts/<public_id>")
@roles_required(allow_principal=True)
def decide(public_id: str) -> Any:
    """Approve or reject a delegated post, with an optional comment for its author."""
    choice = request.form.get("decision")
    if choice not in ("approve", "reject"):
        abort(400, description="Choose Approve or Reject.")
    comment = request.form.get("comment", "").strip()
    if len(comment) > MAX_COMMENT:
        return _page(f"Keep the comment under {MAX_COMMENT} characters.", 422, public_id)
    view = post_detail(services(), current_actor(), public_id)
    try:
        if choice == "approve":
            approve_post(services(), current_actor(), view.post.id, comment)
        else:
            reject_post(services(), current_actor(), view.post.id, comment)
    except (Conflict, Forbidden) as exc:
        return _page(exc.message, STATUS_FOR[type(exc)], public_id)
    except ValidationFailed as exc:
        return _page(exc.message, 422, public_id)
    author = view.author.name if view.author else "the author"
    what = "the thread" if view.post.thread_id is not None else "the post"
    if choice == "approve":
        flash(f"Approved {what} by {author}; it is scheduled.", "ok")
    else:
        flash(f"Rejected {what} by {author}; it will not be published.", "ok")
    return redirect(url_for("approvals.approvals"))
