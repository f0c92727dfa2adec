"""What /metrics reports from the database: queue depth, publish outcomes, notary lag."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ghostpost.domain.states import PostState
from ghostpost.services.context import ServiceContext
from ghostpost.services.ledger_integrity import parse_signed_at

#: The states that are the outcome of publishing (a failed post may still be retried).
PUBLISH_OUTCOMES = (PostState.PUBLISHED, PostState.FAILED)


@dataclass(frozen=True)
class OperationalSnapshot:
    """The numbers an operator watches, read in one read-only unit of work."""

    #: (platform, state) -> posts; every state of every platform with posts.
    posts: dict[tuple[str, str], int]
    ledger_entries: int
    #: Entries covered by the newest signed head (0 before the first signature).
    signed_entries: int
    #: Seconds since the newest signature (None before the first).
    seconds_since_signature: float | None

    def queue_depth(self) -> dict[str, int]:
        """Return posts by state, every state listed (0 when none)."""
        depth = dict.fromkeys((state.value for state in PostState), 0)
        for (_, state), count in self.posts.items():
            depth[state] += count
        return depth


def operational_snapshot(ctx: ServiceContext) -> OperationalSnapshot:
    """Read the queue, ledger and notary figures (one count query per account)."""
    posts: Counter[tuple[str, str]] = Counter()
    with ctx.uow(read_only=True) as uow:
        for account in uow.accounts.list():
            counts = uow.posts.count_by_state(account_ids=[account.id], window_id=None)
            for state, count in counts.items():
                posts[(account.platform, state.value)] += count
        size, _ = uow.ledger.head()
        checkpoint = uow.ledger.latest_checkpoint()
    if checkpoint is None:
        return OperationalSnapshot(dict(posts), size, 0, None)
    age = (ctx.clock.now() - parse_signed_at(checkpoint.signed_at)).total_seconds()
    return OperationalSnapshot(dict(posts), size, checkpoint.size, max(age, 0.0))
