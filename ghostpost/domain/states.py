"""The post state machine: which state may follow which."""

from __future__ import annotations

from enum import StrEnum

from ghostpost.domain.errors import InvalidTransition


class PostState(StrEnum):
    """Where a post is in its life."""

    PENDING_APPROVAL = "pending_approval"
    SCHEDULED = "scheduled"
    HELD = "held"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"


S = PostState

#: Legal moves. `publishing -> scheduled` is a retry after a retryable platform error or a
#: crash reconciled as "not on the platform"; `failed -> scheduled` is a human's retry.
ALLOWED_TRANSITIONS: dict[PostState, frozenset[PostState]] = {
    # pending_approval -> held: the writer's or client's grant was withdrawn before approval.
    S.PENDING_APPROVAL: frozenset({S.SCHEDULED, S.HELD, S.CANCELLED, S.REFUSED}),
    # scheduled -> failed: the standalone reminder it needed could not be published.
    # -> pending_approval: rescheduled into a window that requires approval.
    S.SCHEDULED: frozenset(
        {S.PENDING_APPROVAL, S.HELD, S.PUBLISHING, S.FAILED, S.CANCELLED, S.REFUSED}
    ),
    S.HELD: frozenset({S.PENDING_APPROVAL, S.SCHEDULED, S.PUBLISHING, S.CANCELLED, S.REFUSED}),
    S.PUBLISHING: frozenset({S.PUBLISHED, S.FAILED, S.SCHEDULED}),
    S.FAILED: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.PUBLISHED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUSED: frozenset(),
}

TERMINAL_STATES = frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt)
#: States in which a post still waits to go out (and so may be cancelled or refused).
QUEUED_STATES = frozenset({S.PENDING_APPROVAL, S.SCHEDULED, S.HELD})
#: The states a post is stored in (a refused submission stores nothing).
INITIAL_STATES = frozenset({S.PENDING_APPROVAL, S.SCHEDULED})


def can_transition(current: PostState, target: PostState) -> bool:
    """Tell whether `current -> target` is a legal move."""
    return target in ALLOWED_TRANSITIONS[current]


def transition(current: PostState, target: PostState) -> PostState:
    """Return `target` if the move is legal, else raise InvalidTransition."""
    if not can_transition(current, target):
        raise InvalidTransition(f"a {current.value} post cannot become {target.value}")
    return target
