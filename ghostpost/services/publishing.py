"""Use cases of the publishing worker: claim (short txn) -> publish (no txn) -> record (short txn).

The platform call happens between two of these functions, never inside one: a crash can then only
leave a post `publishing` with an idempotency key, which `adopt_stale` and `requeue_unpublished` /
`record_published` resolve by asking the platform, never by blindly sending again.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ghostpost.domain.coverage import timeline_post
from ghostpost.domain.guards import fold
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, MediaItem, NewPost, Post, ReplyTarget, Source, Window
from ghostpost.domain.policy import (
    CadencePost,
    Deferred,
    Outcome,
    PostDraft,
    PostKind,
    Stage,
    cadence_step,
    counts_in_window,
    decide,
    decided_at_publication,
    describe_decided_at_publication,
    policy_record,
)
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState, transition
from ghostpost.domain.threads import part_window
from ghostpost.services import notifications
from ghostpost.services.context import SYSTEM_WORKER, MediaFiles, ServiceContext
from ghostpost.services.delegation import hold_withdrawn, withdrawn_grant_of, withdrawn_hold
from ghostpost.services.disclosure import disclosure_url
from ghostpost.services.errors import MediaUnavailable
from ghostpost.services.ports import ClaimView, UnitOfWork

#: States in which a post may still be claimed (a failed post can be retried).
_OPEN_STATES = frozenset(
    {PostState.SCHEDULED, PostState.PENDING_APPROVAL, PostState.HELD, PostState.FAILED}
)
#: Where a post keeps the text it would have gone out with at submission (had it gone out then).
SUBMISSION_TEXT_KEY = "text_if_published_at_submission"
MAX_ATTEMPTS = 5
CLAIM_SCAN_LIMIT = 50


@dataclass(frozen=True)
class Claim:
    """A post this worker now owns until `lease_until`, with the exact text to send."""

    post: Post
    account: Account
    text: str
    idempotency_key: str
    worker_id: str
    #: How to show it besides the text; its content warning is exactly the one to send.
    options: PostOptions = PLAIN
    #: The images to send with it, in order, loaded from the media store.
    media: tuple[MediaItem, ...] = ()
    #: The platform post it answers (a reply, or a thread's next part), or None.
    reply_to: ReplyTarget | None = None


@dataclass(frozen=True)
class Receipt:
    """What the platform said when it accepted a post."""

    platform_post_id: str
    url: str


def _window_for(uow: UnitOfWork, post: Post, at: datetime) -> Window | None:
    # The window whose policy (and run) is applied when the post is claimed: delegated posts
    # the window they were accepted into (the policy refuses them outside its period, so it is
    # the window covering `at`), a notice its own window, anything else the window covering
    # `at`. Which runs a publish moves is decided at confirmation (`_windows_counting`).
    if post.kind is PostKind.REGULAR and post.is_delegated and post.window_id is not None:
        return uow.windows.get(post.window_id)
    if post.kind is PostKind.NOTICE and post.window_id is not None:
        return uow.windows.get(post.window_id)
    return uow.windows.covering(post.account_id, at)


def _window_in(view: ClaimView) -> Window | None:
    """_window_for(post, at), from the windows the claim's read found (see ClaimView)."""
    post = view.post
    if post.kind is PostKind.REGULAR and post.is_delegated and post.window_id is not None:
        return view.own_window
    if post.kind is PostKind.NOTICE and post.window_id is not None:
        return view.own_window
    return view.covering_window


@dataclass(frozen=True)
class Outlook:
    """What a post would go out as if it were published now, and what waits for publication.

    No text is called final before the worker sends it: `text_if_published_now` is the policy's
    answer for now (as the next post on the account), `decided_at_publication` lists what the
    worker decides again when it goes out, and `published_text` is set only once it is out.
    """

    text_if_published_now: str | None
    decided_at_publication: tuple[Deferred, ...]
    note: str
    published_text: str | None = None


def _fixed_outlook(post: Post) -> Outlook | None:
    if post.state is PostState.PUBLISHED:
        return Outlook(None, (), "Published: this is exactly the text sent.", post.final_text)
    if post.state is PostState.PUBLISHING:
        return Outlook(post.final_text, (), "Being sent now: every decision is taken.")
    if post.state not in _OPEN_STATES:
        return Outlook(None, (), f"It will not go out ({post.state.value}).")
    if post.kind is not PostKind.REGULAR:
        return Outlook(post.final_text, (), describe_decided_at_publication(()))
    return None


def _open_outlook(post: Post, text: str | None) -> Outlook:
    deferred = decided_at_publication(post.kind, post.is_delegated)
    return Outlook(text, deferred, describe_decided_at_publication(deferred))


def stored_outlook(post: Post) -> Outlook:
    """The outlook a post was given when it was last submitted or rescheduled (no reading)."""
    fixed = _fixed_outlook(post)
    if fixed is not None:
        return fixed
    text = post.decisions.get(SUBMISSION_TEXT_KEY)
    return _open_outlook(post, text if isinstance(text, str) else None)


def publication_outlook(
    uow: UnitOfWork, ctx: ServiceContext, post: Post, account: Account, now: datetime
) -> Outlook:
    """The outlook of a stored post now: the policy applied as the worker would, were it next."""
    fixed = _fixed_outlook(post)
    if fixed is not None:
        return fixed
    at = max(post.publish_at or now, now)
    window = _window_for(uow, post, at)
    decision = decide(
        PostDraft(
            post.submitted_text,
            post.kind,
            post.is_delegated,
            publish_at=at,
            content_warning=post.options.content_warning,
            has_media=bool(uow.media.images_of(post.id)),
        ),
        window=part_window(
            window.state(disclosure_url(ctx, account)) if window else None, *_thread_size(post)
        ),
        budget=ctx.budget_for(account),
        now=now,
        stage=Stage.SUBMISSION,
    )
    return _open_outlook(post, None if decision.refused else decision.final_text)


def _take(
    uow: UnitOfWork,
    post: Post,
    account: Account,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    text: str,
    decision: dict[str, Any] | None,
    window: Window | None,
    content_warning: str | None = None,
    media: tuple[MediaItem, ...] = (),
) -> Claim:
    """Claim `post` to send `text` (and `content_warning`; None: the one it has) with `media`."""
    decisions = dict(post.decisions)
    if decision is not None:
        decisions["publication"] = decision
    # Which policy was in force when the post was decided, for auditors (DESIGN.md §3).
    decisions["policy_in_force"] = (
        None if window is None else {"window_id": window.id, **policy_record(window.policy)}
    )
    warning = post.final_content_warning if content_warning is None else content_warning
    post = uow.posts.start_publishing(
        post.id,
        state=transition(post.state, PostState.PUBLISHING),
        final_text=text,
        final_content_warning=warning,
        attempts=post.attempts + 1,
        claimed_by=worker_id,
        lease_until=now + lease,
        decisions=decisions,
    )
    reply_to = reply_target(uow, post)
    uow.ledger.append(
        tag=LedgerTag.POST_PUBLISHING,
        actor=SYSTEM_WORKER,
        subject=f"post:{post.public_id}",
        data={
            "worker": worker_id,
            "attempt": post.attempts,
            "final_text": text,
            "decision": decision,
            "idempotency_key": post.idempotency_key,
            # Only posts with options say so (as at submission).
            **({} if post.options.is_plain else {"options": _sent_options(post)}),
            # The exact images sent (verified against their hashes just now), as submitted.
            **({"images": [_image_record(item) for item in media]} if media else {}),
            # Only replies (and later thread parts) say what they answer, by platform ids.
            **(
                {}
                if reply_to is None
                else {"reply_to": {"parent_id": reply_to.parent_id, "root_id": reply_to.root_id}}
            ),
        },
        occurred_at=now,
    )
    return Claim(
        post,
        account,
        text,
        post.idempotency_key,
        worker_id,
        _sent(post),
        media,
        reply_to=reply_to,
    )


def _image_record(item: MediaItem) -> dict[str, Any]:
    return {"hash": item.content_hash, "alt_text": item.alt_text}


def _load_images(uow: UnitOfWork, files: MediaFiles | None, post: Post) -> tuple[MediaItem, ...]:
    """The post's images with their bytes, each verified against its content hash; raise
    MediaUnavailable when one is missing or altered (then nothing may be sent)."""
    images = uow.media.images_of(post.id)
    if not images:
        return ()
    if files is None:
        raise MediaUnavailable("this process has no media store")
    return tuple(
        MediaItem(
            content_hash=image.content_hash,
            mime_type=image.mime_type,
            data=files.read(image.content_hash),
            alt_text=image.alt_text,
            width=image.width,
            height=image.height,
        )
        for image in images
    )


def reply_target(uow: UnitOfWork, post: Post) -> ReplyTarget | None:
    """The platform post `post` answers, by the ids its receipts gave: the parent, and the root
    of its conversation (the first ghostpost post up the chain, or the platform post that one
    answers; Bluesky's adapter reads the true root from the parent's record)."""
    if post.reply_to_platform_id is not None:
        return ReplyTarget(post.reply_to_platform_id, post.reply_to_platform_id)
    if post.reply_to_post_id is None:
        return None
    parent = uow.posts.get(post.reply_to_post_id)
    assert parent is not None and parent.platform_post_id is not None
    root = parent
    for _ in range(1000):  # a chain of replies is finite; this bounds a corrupted one
        if root.reply_to_platform_id is not None:
            return ReplyTarget(parent.platform_post_id, root.reply_to_platform_id)
        up = uow.posts.get(root.reply_to_post_id) if root.reply_to_post_id else None
        if up is None or up.platform_post_id is None:
            break
        root = up
    return ReplyTarget(parent.platform_post_id, root.platform_post_id or parent.platform_post_id)


def _sent(post: Post) -> PostOptions:
    """The options the adapter sends: the writer's, with the content warning as decided."""
    return replace(post.options, content_warning=post.final_content_warning)


def _sent_options(post: Post) -> dict[str, Any]:
    return _sent(post).to_record()


def expire_ended_windows(ctx: ServiceContext) -> list[Post]:
    """Refuse posts still held or awaiting approval when their window has ended."""
    now = ctx.clock.now()
    refused: list[Post] = []
    # The answer is almost always "none": one read-only statement then, not a write
    # transaction (on SQLite, the writers' lock and an fsync). The write transaction reads
    # them again, so a post moved meanwhile is not refused. (The worker asks in its claim's
    # transaction instead, and comes here only when there is something to refuse.)
    with ctx.uow(single_read=True) as probe:
        if not probe.posts.any_waiting_in_ended_windows(now):
            return refused
    with ctx.uow() as uow:
        for post in uow.posts.waiting_in_ended_windows(now):
            reason = "its delegation window ended before it could be published"
            changed = uow.posts.set_state(
                post.id, transition(post.state, PostState.REFUSED), reason
            )
            refused.append(changed)
            entry = uow.ledger.append(
                tag=LedgerTag.POST_REFUSED,
                actor=SYSTEM_WORKER,
                subject=f"post:{post.public_id}",
                data={"reason": reason, "was": post.state.value, "window_id": post.window_id},
                occurred_at=now,
            )
            notifications.record_to_writer(
                ctx, uow, notifications.K.POST_REFUSED_AT_WINDOW_END, entry, changed, reason
            )
        uow.commit()
    return refused


def anything_to_claim(ctx: ServiceContext) -> bool:
    """Whether claim_next has anything to look at now: a due post of an account with nothing
    in flight, or a post waiting in an ended window. One read-only statement: an idle worker
    asks it at every poll instead of opening the claim's write transaction (on SQLite, a turn
    of the writers' lock) to find nothing. The claim reads everything again."""
    with ctx.uow(single_read=True) as probe:
        return probe.posts.any_claimable(ctx.clock.now())


def claim_next(ctx: ServiceContext, worker_id: str, lease: timedelta) -> Claim | None:
    """Refuse what waits in ended windows (expire_ended_windows), then claim the next due post
    of an account with nothing in flight, applying the policy now."""
    expired = False
    while True:
        now = ctx.clock.now()
        with ctx.uow() as uow:
            # Asked in the claim's own transaction (almost always "none": one statement, not
            # a transaction of its own). When there is something to refuse, the refusals go
            # first in their own transaction, as expire_ended_windows does, and the claim
            # starts again: a claim never holds the ledger head while it waits for a row.
            if expired or not uow.posts.any_waiting_in_ended_windows(now):
                return _claim_in(uow, ctx, worker_id, now, lease)
        expire_ended_windows(ctx)
        expired = True


def _claim_in(
    uow: UnitOfWork, ctx: ServiceContext, worker_id: str, now: datetime, lease: timedelta
) -> Claim | None:
    busy: set[int] = set()
    # Accounts with a post in flight are left out by the read itself.
    for candidate in uow.posts.due_on_idle_accounts(now, CLAIM_SCAN_LIMIT):
        if candidate.account_id in busy:
            continue
        if candidate.next_attempt_at is not None and candidate.next_attempt_at > now:
            # Backing off after a retryable error: the account's later posts wait behind it,
            # because an account's posts go out in order.
            busy.add(candidate.account_id)
            continue
        if not uow.accounts.try_lock(candidate.account_id):
            # Another worker is deciding for this account right now (SKIP LOCKED): leave
            # the account to it and look at the next account's posts.
            busy.add(candidate.account_id)
            continue
        # Read again under the account lock, in one statement after it: another worker may
        # have moved the post or the account meanwhile.
        view = uow.posts.claim_view(candidate.id, now)
        if view is None:
            continue
        if view.account_busy:
            busy.add(candidate.account_id)
            continue
        post, account = view.post, view.account
        if post.state is not PostState.SCHEDULED:
            continue
        turn = _thread_turn(uow, post, now, view.thread_in_progress_id)
        if turn is not _Turn.GO:
            if turn is _Turn.WAIT:
                # A thread in progress goes out whole before anything else of the account.
                busy.add(post.account_id)
            continue
        reminder = (
            None if view.pending_reminder_id is None else uow.posts.get(view.pending_reminder_id)
        )
        if reminder is not None:
            # Its standalone reminder is being retried: send that one again (same key),
            # never a second reminder.
            if reminder.next_attempt_at is not None and reminder.next_attempt_at > now:
                busy.add(post.account_id)
                continue
            window = uow.windows.get(reminder.window_id) if reminder.window_id else None
            retry = _take(
                uow, reminder, account, worker_id, now, lease, reminder.final_text, None, window
            )
            uow.commit()
            return retry
        claim = _decide_and_claim(uow, ctx, view, worker_id, now, lease)
        if claim is not None:
            uow.commit()
            return claim
    uow.commit()  # keeps the holds and refusals decided on the way
    return None


#: The start of the reason a thread part waits behind a part that did not go out.
THREAD_HOLD = "held: part"


class _Turn(enum.Enum):
    GO = "go"
    #: The account waits (a thread in progress, or the part before this one goes out first).
    WAIT = "wait"
    #: This part was just held, or its thread does not start yet; the account's other posts
    #: may go.
    HELD = "held"


def _thread_turn(uow: UnitOfWork, post: Post, now: datetime, in_progress_id: int | None) -> _Turn:
    """Whether `post` may go out now as far as threads go: no other post of the account
    lands inside a thread in progress (`in_progress_id`: the account's thread_in_progress),
    and a part goes out only after the part before it. A part whose previous part will not
    go out (failed, refused, cancelled, held) is held with the reason, so that a broken thread
    never blocks the account."""
    if in_progress_id is not None and in_progress_id != post.id:
        return _Turn.WAIT
    if post.thread_id is None:
        return _Turn.GO
    # A thread starts only once every part may follow: a part still awaiting approval would
    # stop the account in the middle of it (parts approved one by one before approval took
    # threads whole, or approval turned on for part of a thread).
    if post.thread_position == 1 and any(
        p.state is PostState.PENDING_APPROVAL for p in uow.posts.in_thread(post.thread_id)
    ):
        return _Turn.HELD
    if post.reply_to_post_id is None:
        return _Turn.GO
    previous = uow.posts.get(post.reply_to_post_id)
    assert previous is not None
    if previous.state is PostState.PUBLISHED:
        return _Turn.GO
    if previous.state in (PostState.SCHEDULED, PostState.PUBLISHING, PostState.PENDING_APPROVAL):
        return _Turn.WAIT  # it goes out first
    _hold_part(uow, post, previous, now)
    return _Turn.HELD


def _hold_part(uow: UnitOfWork, post: Post, previous: Post, now: datetime) -> None:
    position = previous.thread_position or 0
    reason = (
        f"{THREAD_HOLD} {position} of its thread did not go out ({previous.state.value}"
        + (f": {previous.state_reason}" if previous.state_reason else "")
        + "); it goes out once that part is published"
    )
    uow.posts.set_state(post.id, transition(post.state, PostState.HELD), reason)
    uow.ledger.append(
        tag=LedgerTag.POST_HELD,
        actor=SYSTEM_WORKER,
        subject=f"post:{post.public_id}",
        data={"reason": reason, "thread": post.decisions.get("thread")},
        occurred_at=now,
    )


def _hold_later_parts(uow: UnitOfWork, post: Post, now: datetime) -> None:
    """A part that will not go out holds the part after it (and that one the next, when
    its turn comes), with the reason."""
    following = uow.posts.next_part(post)
    if following is not None and following.state is PostState.SCHEDULED:
        _hold_part(uow, following, uow.posts.get(post.id) or post, now)


def _release_next_part(uow: UnitOfWork, post: Post, now: datetime) -> None:
    """A part published at last (a retry) releases the part held behind it."""
    following = uow.posts.next_part(post)
    if (
        following is None
        or following.state is not PostState.HELD
        or not (following.state_reason or "").startswith(THREAD_HOLD)
    ):
        return
    uow.posts.set_state(following.id, transition(following.state, PostState.SCHEDULED), None)
    uow.ledger.append(
        tag=LedgerTag.POST_RELEASED,
        actor=SYSTEM_WORKER,
        subject=f"post:{following.public_id}",
        data={"thread": following.decisions.get("thread")},
        occurred_at=now,
    )


def _thread_size(post: Post) -> tuple[int, int]:
    """(position, parts) of a thread part; (1, 1) for a lone post."""
    place = post.decisions.get("thread")
    if not isinstance(place, dict):
        return 1, 1
    return int(place.get("position", 1)), int(place.get("parts", 1))


def _decide_and_claim(
    uow: UnitOfWork,
    ctx: ServiceContext,
    view: ClaimView,
    worker_id: str,
    now: datetime,
    lease: timedelta,
) -> Claim | None:
    post, account = view.post, view.account
    window = _window_in(view)
    if post.kind is PostKind.NOTICE or post.kind is PostKind.REMINDER:
        return _take(uow, post, account, worker_id, now, lease, post.final_text, None, window)
    # Checked again here, under the account lock, whatever the post's state says: a grant may
    # have been withdrawn behind the app's back, or while the post was in flight (a retry).
    withdrawal = withdrawn_grant_of(
        post, account, view.author, assigned=lambda: view.author_assigned, client=view.client
    )
    if withdrawal is not None:
        hold_withdrawn(uow, post, withdrawal, actor_ref=SYSTEM_WORKER, now=now)
        return None
    try:
        media = _load_images(uow, ctx.media_files, post) if view.has_images else ()
    except MediaUnavailable as unavailable:
        # Never sent without (or with other) images than those approved: failed for good.
        reason = f"not sent: {unavailable}"
        failed = uow.posts.set_state(post.id, transition(post.state, PostState.FAILED), reason)
        entry = uow.ledger.append(
            tag=LedgerTag.POST_FAILED,
            actor=SYSTEM_WORKER,
            subject=f"post:{post.public_id}",
            data={"error": reason},
            occurred_at=now,
        )
        notifications.record_to_writer(ctx, uow, notifications.K.POST_FAILED, entry, failed, reason)
        return None
    decision = decide(
        PostDraft(
            post.submitted_text,
            post.kind,
            post.is_delegated,
            content_warning=post.options.content_warning,
            has_media=bool(media),
        ),
        window=part_window(
            window.state(disclosure_url(ctx, account)) if window else None, *_thread_size(post)
        ),
        budget=ctx.budget_for(account),
        now=now,
        stage=Stage.PUBLICATION,
    )
    record = decision.to_record()
    subject = f"post:{post.public_id}"
    if decision.outcome is Outcome.REFUSE:
        assert decision.refusal is not None
        uow.posts.set_state(
            post.id,
            transition(post.state, PostState.REFUSED),
            decision.refusal.message,
            decisions={**post.decisions, "publication": record},
        )
        _hold_later_parts(uow, post, now)
        uow.ledger.append(
            tag=LedgerTag.POST_REFUSED,
            actor=SYSTEM_WORKER,
            subject=subject,
            data={"decision": record},
            occurred_at=now,
        )
        return None
    if decision.outcome is Outcome.HOLD:
        uow.posts.set_state(
            post.id,
            transition(post.state, PostState.HELD),
            decision.held_reason,
            decisions={**post.decisions, "publication": record},
        )
        uow.ledger.append(
            tag=LedgerTag.POST_HELD,
            actor=SYSTEM_WORKER,
            subject=subject,
            data={"reason": decision.held_reason},
            occurred_at=now,
        )
        return None
    if decision.outcome is Outcome.REMINDER_FIRST:
        assert window is not None
        uow.posts.set_decisions(post.id, {**post.decisions, "reminder_first": record})
        reminder = uow.posts.add(
            NewPost(
                public_id=str(uuid.uuid4()),
                account_id=account.id,
                kind=PostKind.REMINDER,
                state=PostState.SCHEDULED,
                author_id=window.created_by,
                submitter=SYSTEM_WORKER,
                source=Source.SYSTEM,
                submitted_text=decision.reminder.text,
                final_text=decision.reminder.text,
                idempotency_key=f"gp-{uuid.uuid4()}",
                created_at=now,
                window_id=window.id,
                publish_at=now,
                decisions={
                    "delegated": False,
                    "kind": "reminder",
                    "reason": decision.reminder.reason,
                },
                precedes_post_id=post.id,
            )
        )
        uow.ledger.append(
            tag=LedgerTag.REMINDER_CREATED,
            actor=SYSTEM_WORKER,
            subject=f"post:{reminder.public_id}",
            data={
                "window_id": window.id,
                "before_post": post.public_id,
                "reason": decision.reminder.reason,
                "text": reminder.final_text,
            },
            occurred_at=now,
        )
        return _take(
            uow, reminder, account, worker_id, now, lease, reminder.final_text, None, window
        )
    return _take(
        uow,
        post,
        account,
        worker_id,
        now,
        lease,
        decision.final_text,
        record,
        window,
        content_warning=decision.content_warning,
        media=media,
    )


def _owned(uow: UnitOfWork, post_id: int, worker_id: str) -> Post | None:
    post = uow.posts.get(post_id)
    if post is None or post.state is not PostState.PUBLISHING or post.claimed_by != worker_id:
        return None
    return post


def _windows_counting(uow: UnitOfWork, account_id: int, published: CadencePost) -> list[Window]:
    """The windows whose timeline a confirmed publish is on (the coverage dashboard's rule)."""
    candidates = [uow.windows.covering(account_id, published.published_at)]
    if published.notice_of is not None:
        candidates.append(uow.windows.get(published.notice_of))
    counted: list[Window] = []
    for window in candidates:
        if window is None or any(w.id == window.id for w in counted):
            continue
        if counts_in_window(window.id, window.policy, published):
            counted.append(window)
    return counted


def record_published(
    ctx: ServiceContext, claim: Claim, receipt: Receipt, *, reconciled: bool = False
) -> Post | None:
    """Record a confirmed publish: the only event that moves the reminder count."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post = _owned(uow, claim.post.id, claim.worker_id)
        if post is None:
            # Lost the lease and someone else resolved it; keep the platform id on record anyway.
            uow.ledger.append(
                tag=LedgerTag.POST_LATE_RESULT,
                actor=SYSTEM_WORKER,
                subject=f"post:{claim.post.public_id}",
                data={
                    "late_result": True,
                    "platform_post_id": receipt.platform_post_id,
                    "platform_url": receipt.url,
                    "worker": claim.worker_id,
                },
                occurred_at=now,
            )
            uow.commit()
            return None
        post = uow.posts.mark_published(
            post.id,
            state=transition(post.state, PostState.PUBLISHED),
            platform_post_id=receipt.platform_post_id,
            url=receipt.url,
            at=now,
        )
        # Read as the coverage dashboard reads it, so the worker counts what the dashboard shows.
        published = timeline_post(post).cadence
        counted = _windows_counting(uow, post.account_id, published)
        released: list[str] = []
        for window in counted:
            notice_published_at = window.notice_published_at
            if post.kind is PostKind.NOTICE and post.window_id == window.id:
                notice_published_at = now
                released = _release_held(uow, window.id, now)
            uow.windows.record_disclosures(
                window.id,
                posts_since_disclosure=cadence_step(window.posts_since_disclosure, published),
                notice_published_at=notice_published_at,
            )
        _release_next_part(uow, post, now)
        _remember_hashtags(ctx, uow, post, claim.account, now)
        in_force = post.decisions.get("policy_in_force")
        author = uow.users.get(post.author_id)
        uow.ledger.append(
            tag=LedgerTag.POST_PUBLISHED,
            actor=SYSTEM_WORKER,
            subject=f"post:{post.public_id}",
            data={
                "account_id": post.account_id,
                "kind": post.kind.value,
                "writer": None
                if author is None
                else {"id": author.id, "email": author.email, "name": author.name},
                "submitter": post.submitter,
                "source": post.source.value,
                "approved_by": post.approved_by,
                "final_text": post.final_text,
                "platform_post_id": receipt.platform_post_id,
                "platform_url": receipt.url,
                "window_id": in_force.get("window_id") if isinstance(in_force, dict) else None,
                "policy_in_force": in_force,
                "counted_in_windows": [w.id for w in counted],
                "disclosure": published.is_disclosure,
                # Public: the leaf says "team" or "principal" (domain.public_leaf).
                "delegated": post.is_delegated,
                "decision": post.decisions.get("publication"),
                "reminder_first": post.decisions.get("reminder_first"),
                "reconciled": reconciled,
                "released": released,
                **({} if post.options.is_plain else {"options": _sent_options(post)}),
            },
            occurred_at=now,
        )
        uow.commit()
    return post


def _remember_hashtags(
    ctx: ServiceContext, uow: UnitOfWork, post: Post, account: Account, now: datetime
) -> None:
    """Keep the hashtags the account has now used (as its platform extracts them from what was
    sent to `account`, the claim's: its platform does not change), so that they are no longer
    first uses (domain.guards)."""
    if "#" not in post.final_text and "\uff03" not in post.final_text:
        return
    names = {fold(tag.name) for tag in ctx.budget_for(account).hashtags(post.final_text)}
    if names:
        uow.guards.record_used(account.id, names, now)


def _release_held(uow: UnitOfWork, window_id: int, now: datetime) -> list[str]:
    released = []
    for held in uow.posts.held_in_window(window_id):
        if withdrawn_hold(held) is not None:
            continue  # its grant was withdrawn: only a person releases it, once restored
        uow.posts.set_state(held.id, transition(held.state, PostState.SCHEDULED), None)
        uow.ledger.append(
            tag=LedgerTag.POST_RELEASED,
            actor=SYSTEM_WORKER,
            subject=f"post:{held.public_id}",
            data={"window_id": window_id},
            occurred_at=now,
        )
        released.append(held.public_id)
    return released


def record_failure(
    ctx: ServiceContext,
    claim: Claim,
    error: str,
    *,
    retryable: bool,
    retry_after: float | None = None,
) -> Post | None:
    """Record a failed attempt: retry later with the same key, or fail for good with the reason."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post = _owned(uow, claim.post.id, claim.worker_id)
        if post is None:
            return None
        subject = f"post:{post.public_id}"
        if retryable and post.attempts < MAX_ATTEMPTS:
            delay = retry_after if retry_after is not None else 2**post.attempts
            post = uow.posts.end_attempt(
                post.id,
                state=transition(post.state, PostState.SCHEDULED),
                reason=f"retrying after: {error}",
                next_attempt_at=now + timedelta(seconds=delay),
            )
            uow.ledger.append(
                tag=LedgerTag.POST_RETRY,
                actor=SYSTEM_WORKER,
                subject=subject,
                data={"error": error, "attempt": post.attempts, "retry_in_s": int(delay)},
                occurred_at=now,
            )
        else:
            post = uow.posts.end_attempt(
                post.id,
                state=transition(post.state, PostState.FAILED),
                reason=error,
                next_attempt_at=None,
            )
            entry = uow.ledger.append(
                tag=LedgerTag.POST_FAILED,
                actor=SYSTEM_WORKER,
                subject=subject,
                data={"error": error, "attempt": post.attempts},
                occurred_at=now,
            )
            notifications.record_to_writer(
                ctx, uow, notifications.K.POST_FAILED, entry, post, error
            )
            if post.kind is PostKind.REMINDER and post.precedes_post_id is not None:
                _fail_waiting_post(ctx, uow, post, now)
            _hold_later_parts(uow, post, now)
        uow.commit()
    return post


def _fail_waiting_post(ctx: ServiceContext, uow: UnitOfWork, reminder: Post, now: datetime) -> None:
    # Publishing the post without its reminder would break the cadence; a human retries both.
    assert reminder.precedes_post_id is not None
    waiting = uow.posts.get(reminder.precedes_post_id)
    if waiting is None or waiting.state is not PostState.SCHEDULED:
        return
    reason = f"the reminder due before it could not be published: {reminder.state_reason}"
    failed = uow.posts.set_state(waiting.id, transition(waiting.state, PostState.FAILED), reason)
    entry = uow.ledger.append(
        tag=LedgerTag.POST_FAILED,
        actor=SYSTEM_WORKER,
        subject=f"post:{waiting.public_id}",
        data={"error": reason},
        occurred_at=now,
    )
    notifications.record_to_writer(ctx, uow, notifications.K.POST_FAILED, entry, failed, reason)


def anything_stale(ctx: ServiceContext) -> bool:
    """Whether adopt_stale or deletion.adopt_stale_deletions would find anything now. The
    worker asks before them at every idle poll, and the answer is almost always "no": one
    read-only statement then, not two write transactions (on SQLite, two turns of the
    writers' lock). They read again, so what moved meanwhile is not adopted."""
    with ctx.uow(single_read=True) as probe:
        return probe.posts.any_stale(ctx.clock.now())


def adopt_stale(ctx: ServiceContext, worker_id: str, lease: timedelta) -> list[Claim]:
    """Take over posts left `publishing` by a worker whose lease ran out, to reconcile them."""
    now = ctx.clock.now()
    claims = []
    with ctx.uow() as uow:
        for post in uow.posts.stale_publishing(now):
            account = uow.accounts.get(post.account_id)
            assert account is not None
            post = uow.posts.reclaim(post.id, claimed_by=worker_id, lease_until=now + lease)
            claims.append(
                Claim(
                    post,
                    account,
                    post.final_text,
                    post.idempotency_key,
                    worker_id,
                    _sent(post),
                    reply_to=reply_target(uow, post),
                )
            )
        uow.commit()
    return claims


def requeue_unpublished(ctx: ServiceContext, claim: Claim) -> Post | None:
    """After a crash, the platform has no post under the key: queue it again with the same key."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post = _owned(uow, claim.post.id, claim.worker_id)
        if post is None:
            return None
        post = uow.posts.end_attempt(
            post.id,
            state=transition(post.state, PostState.SCHEDULED),
            reason="requeued: not found on the platform after a crash",
            next_attempt_at=None,
        )
        uow.ledger.append(
            tag=LedgerTag.POST_REQUEUED,
            actor=SYSTEM_WORKER,
            subject=f"post:{post.public_id}",
            data={"idempotency_key": post.idempotency_key},
            occurred_at=now,
        )
        uow.commit()
    return post
