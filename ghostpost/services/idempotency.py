"""Idempotent creates: the same Idempotency-Key and body create one post, however often sent.

A key belongs to its submitter (`actor.ref`, e.g. "client:<client_id>"), so two clients never
see each other's keys. The key's record, the post, its `post:submitted` ledger entry and the
response body are written in ONE transaction: either all of them exist or none does. A request
that fails (invalid, refused by the policy) stores nothing, so its key stays unused.

Repeats of a key: same fingerprint -> the stored status and body are replayed; another
fingerprint -> IdempotencyMismatch; the first request still running -> RequestInFlight. Keys
are kept at least KEY_RETENTION; `purge_keys` removes older ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ghostpost.domain.ledger import canonical_json
from ghostpost.domain.model import IdempotencyRecord, Post
from ghostpost.services.api_queries import PostDetails
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Forbidden, NotFound, ServiceError, ValidationFailed
from ghostpost.services.ports import KeyStillLocked, UnitOfWork
from ghostpost.services.posts import (
    ClientPlan,
    ClientPost,
    SubmitPost,
    _submit,
    client_read,
    plan_client_post_ahead,
    submit_client_post,
)

#: Keys are remembered at least this long (the purge removes only older ones).
KEY_RETENTION = timedelta(hours=24)
#: What clients may send: 1-255 printable ASCII characters (is_valid_key).
MAX_KEY_LENGTH = 255
#: What the table stores: room for a surface's prefix such as "mastodon:".
MAX_STORED_KEY_LENGTH = 300
#: Seconds a client is told to wait before retrying a key that is still in flight.
IN_FLIGHT_RETRY_AFTER = 1

#: Turns the created post into (HTTP status, JSON body); runs inside the transaction.
Render = Callable[[Post], tuple[int, dict[str, Any]]]
#: Turns the created post, its account and author into (HTTP status, JSON body) from plain
#: data; runs inside the transaction, so it reads nothing and needs no request context.
RenderDetails = Callable[[PostDetails], tuple[int, dict[str, Any]]]


class IdempotencyMismatch(ServiceError):
    """The key was already used with a different request body."""

    code = "idempotency_key_reused"


class RequestInFlight(ServiceError):
    """The first request with this key has not finished yet; retry after `retry_after` s."""

    code = "idempotency_key_in_flight"

    def __init__(self, message: str, retry_after: int = IN_FLIGHT_RETRY_AFTER) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_valid_key(key: str) -> bool:
    """Tell whether `key` is 1-255 printable ASCII characters, without a space at either end
    (HTTP trims those, so they could never arrive)."""
    return (
        0 < len(key) <= MAX_KEY_LENGTH
        and all(" " <= char <= "~" for char in key)
        and key == key.strip(" ")
    )


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of the canonical JSON of a parsed request body."""
    return hashlib.sha256(canonical_json(dict(body)).encode("utf-8")).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> tuple[int, dict[str, Any]]:
    if record.fingerprint != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request."
        )
    if record.status != "completed" or record.response_status is None:
        raise RequestInFlight("A request with this Idempotency-Key is still being processed.")
    return record.response_status, dict(record.response_body or {})


def _check_stored_key(key: str) -> None:
    if not 0 < len(key) <= MAX_STORED_KEY_LENGTH:
        raise ValidationFailed(
            f"An idempotency key has 1 to {MAX_STORED_KEY_LENGTH} characters.",
            {"Idempotency-Key": "bad length"},
        )


def _claim(
    uow: UnitOfWork, actor: Actor, key: str, fingerprint: str, now: datetime
) -> IdempotencyRecord | None:
    try:
        return uow.idempotency_keys.claim_or_get(actor.ref, key, fingerprint, now)
    except KeyStillLocked:
        raise RequestInFlight(
            "A request with this Idempotency-Key is still being processed."
        ) from None


def submit_post_once(
    ctx: ServiceContext,
    actor: Actor,
    cmd: SubmitPost,
    *,
    key: str,
    fingerprint: str,
    render: Render,
) -> tuple[int, dict[str, Any], bool]:
    """Submit the post unless this actor already did under `key`: return (status, body,
    replayed). The key record, post, ledger entry and rendered response commit together."""
    _check_stored_key(key)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        record = _claim(uow, actor, key, fingerprint, now)
        if record is None:
            post = _submit(uow, ctx, actor, cmd)
            status, body = render(post)
            uow.idempotency_keys.complete(actor.ref, key, status, body)
            uow.commit()
            return status, body, False
    status, body = _replay(record, fingerprint)
    return status, body, True


def _announce_client_read(
    uow: UnitOfWork, actor: Actor, request: ClientPost, now: datetime
) -> None:
    """The create's one read comes right after the claim: announced, it may travel with the
    claim (PostgreSQL: one round trip for both). A request failing the checks made before the
    read announces nothing: it fails after the claim, as it always did (a replay first)."""
    try:
        _, read = client_read(actor, request, now)
    except (Forbidden, NotFound):
        return
    uow.submissions.expect_client_read(*read)


def _answer_ahead(
    ahead: ClientPlan | None, render: RenderDetails
) -> tuple[str, tuple[int, dict[str, Any]]] | None:
    """The answer to a lone post planned ahead (its row built: `ClientPlan.record`), rendered
    before the write transaction, with the public id of that row: the transaction takes it
    only when it stores that very row (the row built ahead, and only it, has that id), whose
    plan, account, author and principal are the ones rendered here, and which has no images."""
    if ahead is None or ahead.record is None:
        return None
    # Row id 0: a render passed as render_ahead names the post by its public id only.
    post = ahead.record.post.stored_as(0)
    plan = ahead.plan
    details = PostDetails(post, plan.account, plan.author, principal_name=plan.principal_name)
    return post.public_id, render(details)


def submit_client_post_once(
    ctx: ServiceContext,
    actor: Actor,
    request: ClientPost,
    *,
    key: str | None,
    fingerprint: str,
    render: RenderDetails,
    render_ahead: bool = False,
) -> tuple[int, dict[str, Any], bool]:
    """An API client's create, one write transaction: claim the key (or replay what it got),
    read the account, author, grants and window at once, decide, store the post and its
    ledger entry, and the response `render` builds from plain data (it must not need a
    request or an application context). Return (status, body, replayed).

    `render_ahead`: `render` uses nothing the insert gives the post (its row id), so a lone
    post planned ahead of the write transaction (SQLite) is rendered ahead too, out of the
    time other writers wait; its answer is taken only if that planned row is what is stored.

    Without a key (the Mastodon face makes it optional) the same transaction stores the post
    and claims nothing: the request is not idempotent, as its client asked."""
    if key is not None:
        _check_stored_key(key)
    now = ctx.clock.now()
    ahead = plan_client_post_ahead(ctx, actor, request, now)
    answered = _answer_ahead(ahead, render) if render_ahead else None
    # Lean: the create's statements run on the connection (no ORM unit of work to keep).
    with ctx.uow(lean=True) as uow:
        if key is not None:
            _announce_client_read(uow, actor, request, now)
        record = None if key is None else _claim(uow, actor, key, fingerprint, now)
        if record is None:
            post, plan = submit_client_post(uow, ctx, actor, request, now, ahead)
            if answered is not None and answered[0] == post.public_id:
                status, body = answered[1]
            else:
                details = PostDetails(
                    post,
                    plan.account,
                    plan.author,
                    principal_name=plan.principal_name,
                    images=uow.media.images_of(post.id) if request.media_ids else (),
                )
                status, body = render(details)
            if key is not None:
                uow.idempotency_keys.complete(actor.ref, key, status, body)
            uow.commit()
            return status, body, False
    status, body = _replay(record, fingerprint)
    return status, body, True


def purge_keys(ctx: ServiceContext, *, older_than: timedelta = KEY_RETENTION) -> int:
    """Delete idempotency keys older than `older_than` (never less than KEY_RETENTION)."""
    if older_than < KEY_RETENTION:
        raise ValidationFailed(
            f"Keys are kept at least {KEY_RETENTION}.", {"older_than": "below the retention"}
        )
    with ctx.uow() as uow:
        removed = uow.idempotency_keys.purge(ctx.clock.now() - older_than)
        uow.commit()
    return removed
