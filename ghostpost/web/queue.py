"""The queue: every post the reader may see, grouped by state, filterable by account and window."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for

from ghostpost.services.delegation import may_release
from ghostpost.services.queue import QUEUE_GROUPS, QUEUE_PAGE_SIZE, QueueQuery, list_queue
from ghostpost.web.common import current_actor, current_user, login_required, parse_id, services

bp = Blueprint("queue", __name__)

#: The state filter's choices, in queue order, with the words people use.
GROUP_LABELS = {
    "failed": "Failed",
    "held": "Held",
    "pending_approval": "Pending approval",
    "publishing": "Publishing",
    "scheduled": "Scheduled",
    "published": "Published",
    "closed": "Refused / cancelled",
}
GROUP_OF_STATE = {state.value: group for group, states in QUEUE_GROUPS.items() for state in states}


MAX_PAGE = 1_000_000


def _number(name: str) -> int | None:
    return parse_id(request.args.get(name))


@bp.get("/queue")
@login_required
def queue() -> Any:
    """Show one page of the queue; filters are plain GET parameters, so they work without JS."""
    group = request.args.get("state") or None
    query = QueueQuery(
        account_id=_number("account"),
        window_id=_number("window"),
        group=group,
        # Clamped: a huge page number would overflow the SQL OFFSET.
        page=min(_number("page") or 1, MAX_PAGE),
    )
    page = list_queue(services(), current_actor(), query)
    filters = {
        key: value
        for key, value in (
            ("account", query.account_id),
            ("window", query.window_id),
            ("state", query.group),
        )
        if value is not None
    }

    def page_url(number: int) -> str:
        return url_for("queue.queue", **filters, page=number)

    def state_url(group: str | None) -> str:
        chosen = {k: v for k, v in filters.items() if k != "state"}
        return url_for("queue.queue", **chosen, **({"state": group} if group else {}))

    sections: list[tuple[str, list[Any]]] = []
    for item in page.items:
        group = GROUP_OF_STATE[item.post.state.value]
        if not sections or sections[-1][0] != group:
            sections.append((group, []))
        sections[-1][1].append(item)
    return render_template(
        "queue.html",
        page=page,
        query=query,
        filters=filters,
        page_url=page_url,
        state_url=state_url,
        group_labels=GROUP_LABELS,
        group_of_state=GROUP_OF_STATE,
        sections=sections,
        may_release=lambda view: may_release(current_user(), view.post, view.account),
        first=(query.page - 1) * QUEUE_PAGE_SIZE + 1,
        here=request.full_path.rstrip("?"),
    )
