"""Live status: the state of the posts a staff page shows, as JSON, for static/live.js.

Short polling, not server-sent events. Production runs gunicorn with sync workers, where an
open event stream holds a whole worker per viewer for as long as the page stays open; a poll
holds one for a single indexed query. The state changes happen in another process (the
publishing worker), so a stream would itself have to poll the database (SQLite has no
LISTEN/NOTIFY). live.js polls only while the tab is visible and stops once every post shown is
final, so an idle page costs nothing.

Pages mark each post `data-live-post="<public id>"`, with a child `[data-live-state]` holding
the state label, an optional `[data-live-reason]` and an optional `[data-live-link]`.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ghostpost.domain.model import Post
from ghostpost.domain.states import PostState
from ghostpost.http_surface import problem_response
from ghostpost.services.queue import MAX_STATUS_IDS, post_statuses
from ghostpost.web.common import container, current_actor, current_user, services
from ghostpost.web.sessions import not_activity
from ghostpost.web.times import viewer_zone, zone_label

bp = Blueprint("live", __name__)

#: States in which a post stays until a person acts: live.js stops asking about it.
FINAL_STATES = frozenset(
    {PostState.PUBLISHED, PostState.FAILED, PostState.CANCELLED, PostState.REFUSED}
)
#: What a public id looks like (UUIDs today); anything else cannot name a post and is skipped.
PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def state_label(state: PostState) -> str:
    """The state as the queue and post pages word it ("pending approval")."""
    return state.value.replace("_", " ")


def reason_text(post: Post) -> str | None:
    """Why the post is in its state, as the pages say it (None when there is nothing to say)."""
    if not post.state_reason:
        return None
    if post.state is PostState.FAILED:
        return f"Platform error: {post.state_reason}"
    return post.state_reason


def status_of(post: Post) -> dict[str, Any]:
    """One post's entry in the answer."""
    published = post.published_at
    return {
        "id": post.public_id,
        "state": post.state.value,
        "label": state_label(post.state),
        "final": post.state in FINAL_STATES,
        "reason": reason_text(post),
        # A post the principal deleted from its platform links nowhere (as its page shows).
        "platform_url": post.platform_url if post.deleted_at is None else None,
        "published_at": (
            published.astimezone(UTC).isoformat().replace("+00:00", "Z") if published else None
        ),
        "published_label": zone_label(published, viewer_zone()) if published else None,
    }


@bp.get("/posts/status")
def statuses() -> Any:
    """Answer `?id=<public id>&id=...` with the state of each post the reader may see.

    Posts the reader may not see are absent, exactly like unknown or malformed ids. Anonymous
    callers get 401 JSON (a script cannot follow a login page). Polls do not count as activity:
    they neither keep the session alive nor write to it.
    """
    not_activity()
    if current_user() is None:
        return problem_response(401, "unauthorized", "Sign in again to see live status.")
    ids = request.args.getlist("id")
    if len(ids) > MAX_STATUS_IDS:
        return problem_response(
            400, "too_many_ids", f"Ask about at most {MAX_STATUS_IDS} posts at once."
        )
    wanted = [raw for raw in ids if PUBLIC_ID.fullmatch(raw)]
    posts = post_statuses(services(), current_actor(), wanted)
    return jsonify(posts=[status_of(post) for post in posts])


@bp.after_request
def _never_cached(response: Response) -> Response:
    # A state read from a cache would show a post as scheduled after it went out.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _poll_interval() -> dict[str, Any]:
    """How often live.js asks, in milliseconds (base.html puts it on <body>)."""
    return {"live_poll_ms": int(container().settings.live_status_poll_seconds * 1000)}
