"""Use cases for posts before they go out: preview, submit, approve, reject, reschedule, cancel,
retry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ghostpost.domain import threads
from ghostpost.domain.guards import PrincipalGuards, fold, guard_reasons, post_hashtags
from ghostpost.domain.hashtags import hashtag_name
from ghostpost.domain.ledger import CanonicalData, LedgerTag
from ghostpost.domain.media_rules import MediaUpload, image_refusals
from ghostpost.domain.model import Account, ApiClient, NewPost, Post, Source, User, Window
from ghostpost.domain.policy import (
    Decision,
    Outcome,
    PostDraft,
    PostKind,
    Refusal,
    RefusalCode,
    ReplyPolicy,
    Stage,
    decide,
)
from ghostpost.domain.post_options import (
    MAX_CONTENT_WARNING_LENGTH,
    PLAIN,
    PostOptions,
    refusals,
)
from ghostpost.domain.states import QUEUED_STATES, PostState, transition
from ghostpost.services import notifications
from ghostpost.services.authz import MANAGING_ROLES, may_author, require_principal, require_user
from ghostpost.services.clients import (
    author_not_allowed,
    client_of,
    may_name_author,
    may_name_author_if,
)
from ghostpost.services.context import Actor, FactsKey, ServiceContext, user_summary
from ghostpost.services.disclosure import disclosure_url
from ghostpost.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PolicyRefused,
    ServiceError,
    ValidationFailed,
    text_problem,
)
from ghostpost.services.ports import ClientSubmission, UnitOfWork, WithdrawnGrant
from ghostpost.services.publishing import SUBMISSION_TEXT_KEY

#: A publish_at this far in the past is a mistake, not "now" (clock skew between clients is less).
PAST_TOLERANCE = timedelta(minutes=5)
MAX_TEXT_CODE_POINTS = 50_000
#: More ids than this are refused before any is read (no platform takes more than 4).
MAX_IMAGES_NAMED = 10


@dataclass(frozen=True)
class SubmitPost:
    """A request to publish `text` on an account, written by `author_id`."""

    account_id: int
    author_id: int
    text: str
    source: Source
    publish_at: datetime | None = None
    #: Request details kept with the post's decisions and in its ledger entry, e.g.
    #: {"in_reply_to": ...} as the client named it. JSON values, no floats.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Content warning, visibility, language, sensitive: stored, sent and in the ledger, or
    #: refused when the account's platform cannot honour them (post_options.refusals).
    options: PostOptions = PLAIN
    #: Uploads (their public ids, in order) to attach: the submitter's own, unattached.
    media_ids: tuple[str, ...] = ()
    #: The post this one answers (see `resolve_reply`): a ghostpost post's public id, or a
    #: post id on the account's own platform.
    in_reply_to: str | None = None
    #: A thread's later parts, in order (`text` is its first part): each becomes its own post,
    #: a reply to the part before (domain.threads).
    thread: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What the policy says about a post before it is stored."""

    account: Account
    author: User
    window: Window | None
    delegated: bool
    decision: Decision
    #: The account's principal's name, when the plan's read had it (an API client's create).
    principal_name: str | None = None
    #: The principal's guards, when the plan's read had them (an API client's create).
    guards: PrincipalGuards | None = None


def _check_request(ctx: ServiceContext, cmd: SubmitPost) -> datetime:
    """Refuse text and times no account takes; return now."""
    if len(cmd.text) > MAX_TEXT_CODE_POINTS:
        raise ValidationFailed(
            "The text is far longer than any platform allows.", {"text": "too long"}
        )
    problem = text_problem(cmd.text)
    if problem is not None:
        raise ValidationFailed(f"The text {problem}.", {"text": problem})
    warning = cmd.options.content_warning
    if len(warning) > MAX_CONTENT_WARNING_LENGTH:
        raise ValidationFailed(
            "The content warning is far longer than any platform allows.",
            {"spoiler_text": "too long"},
        )
    problem = text_problem(warning) if warning else None
    if problem is not None:
        raise ValidationFailed(
            f"The content warning (spoiler_text) {problem}.", {"spoiler_text": problem}
        )
    if cmd.publish_at is not None and cmd.publish_at.tzinfo is None:
        raise ValidationFailed("publish_at needs a time zone.", {"publish_at": "no time zone"})
    now = ctx.clock.now()
    if cmd.publish_at is not None and cmd.publish_at < now - PAST_TOLERANCE:
        raise ValidationFailed("publish_at is in the past.", {"publish_at": "in the past"})
    return now


def _decision_time(cmd: SubmitPost, now: datetime) -> datetime:
    """The time the policy is applied at (and whose window counts): publish_at, or now."""
    publish_at = cmd.publish_at
    if publish_at is not None and publish_at.tzinfo is not None and publish_at > now:
        return publish_at
    return now


def _plan(uow: UnitOfWork, ctx: ServiceContext, actor: Actor, cmd: SubmitPost) -> Plan:
    now = _check_request(ctx, cmd)
    account = uow.accounts.get(cmd.account_id)
    if account is None:
        raise NotFound(f"No account {cmd.account_id}.")
    if not actor.may_use_account(account.id):
        # The client may not know this account exists.
        raise NotFound(f"No account {cmd.account_id}.")
    author = uow.users.get(cmd.author_id)
    client = client_of(uow, actor)
    if client is not None:
        # Schedulers name the author, but only one they were granted: one answer for every
        # other name, so that nobody learns which staff emails exist.
        if author is None or not may_name_author(uow, client, author, account):
            raise author_not_allowed()
    elif actor.account_ids is not None and actor.user is None:
        raise Forbidden("This needs a known API client.")
    if author is None or not author.is_active:
        raise NotFound(f"No active user {cmd.author_id}.")
    if actor.user is not None and actor.user.id != author.id:
        # A person submits only their own words; schedulers (API clients) name the author.
        raise Forbidden("Staff users submit posts as themselves.")
    if not may_author(uow, author, account):
        raise Forbidden(f"{author.email} is not assigned to @{account.handle}.")
    window = uow.windows.covering(account.id, _decision_time(cmd, now))
    return _decide_plan(ctx, actor, cmd, account, author, client, window, now)


def _decide_plan(
    ctx: ServiceContext,
    actor: Actor,
    cmd: SubmitPost,
    account: Account,
    author: User,
    client: ApiClient | None,
    window: Window | None,
    now: datetime,
) -> Plan:
    """Apply the policy to a request whose account, author and submitter are allowed."""
    refused = refusals(account.platform, cmd.options)
    if refused:
        raise ValidationFailed(
            "; ".join(f"{name}: {why}" for name, why in refused.items()) + ".", refused
        )
    # A post is the principal's own only when the principal submits it: from their own
    # session, or through an API client their own user owns. Anyone else naming the principal
    # (the system included) submits a delegated post.
    submitted_by_principal = (actor.user is not None and actor.user.id == author.id) or (
        client is not None and client.owner_id == author.id
    )
    delegated = not (author.is_principal_of(account) and submitted_by_principal)
    decision = decide(
        PostDraft(
            text=cmd.text,
            kind=PostKind.REGULAR,
            is_delegated=delegated,
            publish_at=_decision_time(cmd, now),
            content_warning=cmd.options.content_warning,
            has_media=bool(cmd.media_ids),
        ),
        window=window.state(disclosure_url(ctx, account)) if window else None,
        budget=ctx.budget_for(account),
        now=now,
        stage=Stage.SUBMISSION,
    )
    return Plan(account, author, window, delegated, decision)


@dataclass(frozen=True)
class ClientPost:
    """A scheduler's request to publish `text` on an account, written by the author it names
    by email (None: the client's default author)."""

    account_id: int
    author_email: str | None
    text: str
    source: Source
    publish_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    options: PostOptions = PLAIN
    media_ids: tuple[str, ...] = ()
    in_reply_to: str | None = None
    thread: tuple[str, ...] = ()

    def submission(self, author_id: int) -> SubmitPost:
        """This request as the post `author_id` submits: every field carried, in one place
        (whichever path resolves the author)."""
        return SubmitPost(
            account_id=self.account_id,
            author_id=author_id,
            text=self.text,
            source=self.source,
            publish_at=self.publish_at,
            extra=self.extra,
            options=self.options,
            media_ids=self.media_ids,
            in_reply_to=self.in_reply_to,
            thread=self.thread,
        )


def client_read(
    actor: Actor, request: ClientPost, now: datetime
) -> tuple[SubmitPost, tuple[str, int, str | None, datetime]]:
    """A client's account rules checked before any read (the account one of the client's),
    then the draft and the arguments of the create's one read (uow.submissions.for_client)."""
    if actor.account_ids is None or actor.user is not None or not actor.ref.startswith("client:"):
        raise Forbidden("This needs an API client's credentials.")
    if request.account_id not in actor.account_ids:
        raise NotFound(f"No account {request.account_id}.")
    email = (request.author_email or "").strip().lower() or None
    draft = request.submission(author_id=0)  # the author is resolved by the read
    at = _decision_time(draft, now)
    return draft, (actor.ref.removeprefix("client:"), request.account_id, email, at)


@dataclass(frozen=True)
class ClientPlan:
    """A client's create as planned at `now` on one read (`facts`); planned ahead of the write
    transaction, a lone post's `record` too (`_lone_record_ahead`)."""

    facts: ClientSubmission
    cmd: SubmitPost
    plan: Plan
    record: PostRecord | None = None


def _plan_client_post(
    uow: UnitOfWork, ctx: ServiceContext, actor: Actor, request: ClientPost, now: datetime
) -> tuple[SubmitPost, Plan]:
    """A client's account and author rules (the account one of the client's; the author named,
    else its default, one it may name: one answer for all others), then those of _plan, on one
    read of the account, the author, the client's grants, the assignment and the window
    (uow.submissions)."""
    if actor.user is not None and actor.account_ids is not None:
        return _plan_signed_in_app_post(uow, ctx, actor, request)
    planned = _plan_on_client_read(uow, ctx, actor, request, now)
    return planned.cmd, planned.plan


def plan_client_post_ahead(
    ctx: ServiceContext, actor: Actor, request: ClientPost, now: datetime
) -> ClientPlan | None:
    """An API client's create planned before its write transaction, without the lock, when
    writers are serialised for the whole of their transaction (SQLite:
    ctx.decide_before_write_lock): the write transaction reads again and takes this plan only
    if it finds exactly the same facts (uow.submissions.for_client's `same_as`), so what it
    stores was decided on what it read under the lock, as without this plan; only the
    deciding moves out of the time every other writer waits. The facts planned on are the
    ones this client's last create on the account, naming the same author, read in this
    process (ctx.last_client_facts), else a read that takes no lock. None when nothing is
    planned ahead (another backend, a signed-in app's post, or a request the plan refuses:
    the write transaction then refuses it, after the idempotency key's replay)."""
    if not ctx.decide_before_write_lock or actor.user is not None:
        return None
    try:
        draft, read = client_read(actor, request, now)
    except ServiceError:
        return None
    key = _facts_key(read)
    kept = facts = ctx.last_client_facts.get(key)
    try:
        if facts is None:
            with ctx.uow(single_read=True) as uow:
                facts = uow.submissions.for_client(*read)
        planned = _plan_on_facts(ctx, actor, draft, read[2], facts, now)
    except ServiceError:
        ctx.last_client_facts.forget(key)
        return None
    if kept is None:
        ctx.last_client_facts.put(key, planned.facts)  # read just now: the next guess
    # The rows too: the write transaction then only writes them (`_store`'s `ahead`).
    return replace(planned, record=_lone_record_ahead(actor, planned.cmd, planned.plan, now))


def _facts_key(read: tuple[str, int, str | None, datetime]) -> FactsKey:
    """Whose facts a client read asks for (client, account, author named), not when."""
    return read[0], read[1], read[2]


def _plan_on_client_read(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor,
    request: ClientPost,
    now: datetime,
    ahead: ClientPlan | None = None,
) -> ClientPlan:
    """_plan_client_post for an API client's own credentials, with the facts it read. `ahead`:
    the same request planned at the same `now` (plan_client_post_ahead), taken as it is when
    this read finds the facts it was planned on; else this read's facts are what the next
    create plans ahead on (ctx.last_client_facts).

    Without `ahead` (a preview; a create on PostgreSQL, or one not planned ahead), a read that
    finds the very row the kept facts were built from (uow.submissions.for_client's `same_as`
    compares the whole row) answers with those facts instead of building them again, on either
    backend (4-24% of a PostgreSQL preview's CPU in process, bench/request_cpu.py). The
    decision is still taken here, on what this read found."""
    draft, read = client_read(actor, request, now)
    key = _facts_key(read)
    kept = ahead.facts if ahead is not None else ctx.last_client_facts.get(key)
    facts = uow.submissions.for_client(*read, same_as=kept)
    if kept is not None and facts is kept:  # the very row the kept facts were built from
        if ahead is not None:
            return ahead  # decided on exactly what this read found
        return _plan_on_facts(ctx, actor, draft, read[2], facts, now)
    ctx.last_client_facts.forget(key)  # the guess was wrong, and these facts may be refused
    planned = _plan_on_facts(ctx, actor, draft, read[2], facts, now)
    ctx.last_client_facts.put(key, planned.facts)
    return planned


def _plan_on_facts(
    ctx: ServiceContext,
    actor: Actor,
    draft: SubmitPost,
    email: str | None,
    facts: ClientSubmission | None,
    now: datetime,
) -> ClientPlan:
    """An API client's create (`draft`, naming the author by `email` or not) planned on
    `facts`: the account, author and grant rules, then _decide_plan's."""
    if facts is None:
        raise Forbidden("This needs an API client's credentials.")
    if facts.account is None:
        raise NotFound(f"No account {draft.account_id}.")
    client, account, author = facts.client, facts.account, facts.author
    if not client.is_active or not facts.owner_active:
        # Its token may still be in a process's cache (for at most a few seconds): refused.
        raise Forbidden("This API client is revoked.")
    if email is None and client.default_author_id is None:
        raise ValidationFailed(
            "Name the post's author: this client has no default author.",
            {"author": "required: this client has no default author"},
        )
    if author is None or not may_name_author_if(
        client, author, account, assigned=lambda: facts.author_assigned
    ):
        raise author_not_allowed()
    cmd = replace(draft, author_id=author.id)
    _check_request(ctx, cmd)
    plan = _decide_plan(ctx, actor, cmd, account, author, client, facts.window, now)
    guards = facts.guards or PrincipalGuards()
    return ClientPlan(facts, cmd, replace(plan, principal_name=facts.principal_name, guards=guards))


def _plan_signed_in_app_post(
    uow: UnitOfWork, ctx: ServiceContext, actor: Actor, request: ClientPost
) -> tuple[SubmitPost, Plan]:
    """A post through an app a staff user signed in to (services.mastodon_apps): the author is
    that user, on the token's one account (actor.account_ids); _plan reads the user, the
    assignment and the window again in this transaction."""
    assert actor.user is not None
    email = (request.author_email or "").strip().lower()
    if email and email != actor.user.email.lower():
        raise author_not_allowed()
    cmd = request.submission(author_id=actor.user.id)
    plan = _plan(uow, ctx, actor, cmd)
    principal = uow.principals.get(plan.account.principal_id)
    return cmd, replace(plan, principal_name=principal.name if principal else None)


def plan_post(ctx: ServiceContext, actor: Actor, cmd: SubmitPost) -> Plan:
    """Dry run with its context: the decision plus the account, author and window it applies to."""
    with ctx.uow(read_only=True) as uow:
        return _plan(uow, ctx, actor, cmd)


def plan_client_post(ctx: ServiceContext, actor: Actor, request: ClientPost) -> Plan:
    """An API client's dry run: what a create would get. One read-only statement (a single
    read) for text alone; with images, one read-only transaction that also checks them."""
    if not request.media_ids:
        with ctx.uow(single_read=True) as uow:
            return _plan_client_post(uow, ctx, actor, request, ctx.clock.now())[1]
    with ctx.uow(read_only=True) as uow:
        cmd, plan = _plan_client_post(uow, ctx, actor, request, ctx.clock.now())
        _uploads(uow, actor, cmd, plan)  # the images a create would refuse, refused here too
        return plan


def plan_client_thread(ctx: ServiceContext, actor: Actor, request: ClientPost) -> list[Plan]:
    """An API client's dry run of a post or a thread: each part's plan, first part first.
    A lone text-only post is one read-only statement (`plan_client_post`)."""
    if not request.thread and not request.media_ids:
        return [plan_client_post(ctx, actor, request)]
    with ctx.uow(read_only=True) as uow:
        now = ctx.clock.now()
        cmd, plan = _plan_client_post(uow, ctx, actor, request, now)
        _uploads(uow, actor, cmd, plan)  # the images a create would refuse, refused here too
        return thread_plans(ctx, cmd, plan, now)


def plan_thread(ctx: ServiceContext, actor: Actor, cmd: SubmitPost) -> list[Plan]:
    """A person's dry run of a post or a thread (one read-only transaction): each part's
    plan, first part first (the images are not checked: see `alt_text_required`)."""
    with ctx.uow(read_only=True) as uow:
        plan = _plan(uow, ctx, actor, cmd)
        return thread_plans(ctx, cmd, plan, ctx.clock.now())


def submit_post(ctx: ServiceContext, actor: Actor, cmd: SubmitPost) -> Post:
    """Queue a post under the policy; refused posts raise PolicyRefused and store nothing."""
    with ctx.uow() as uow:
        post = _submit(uow, ctx, actor, cmd)
        uow.commit()
    return post


def _submit(uow: UnitOfWork, ctx: ServiceContext, actor: Actor, cmd: SubmitPost) -> Post:
    """Store the post and its `post:submitted` entry in the caller's transaction (no commit)."""
    now = ctx.clock.now()
    return _store_all(uow, ctx, actor, cmd, _plan(uow, ctx, actor, cmd), now)


class AssignmentWithdrawn(Forbidden):
    """The author's assignment the decision relied on, or the author's account itself
    (deactivated), was withdrawn (committed) before the post's insert locked it: the post is
    refused as if the read had seen it gone."""


def submit_client_post(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor,
    request: ClientPost,
    now: datetime,
    ahead: ClientPlan | None = None,
) -> tuple[Post, Plan]:
    """An API client's create at `now` in the caller's transaction (no commit): one read
    decides (or finds the facts `ahead` was decided on), then the post and its
    `post:submitted` entry are stored."""
    record = None
    if ahead is None:
        cmd, plan = _plan_client_post(uow, ctx, actor, request, now)
    else:  # only planned for a client's own credentials (plan_client_post_ahead)
        planned = _plan_on_client_read(uow, ctx, actor, request, now, ahead)
        cmd, plan = planned.cmd, planned.plan
        # Its rows only when the plan is the one they were built for (the same facts).
        record = ahead.record if planned is ahead else None
    try:
        return _store_all(uow, ctx, actor, cmd, plan, now, ahead=record), plan
    except AssignmentWithdrawn:
        raise author_not_allowed() from None  # the client's one answer for such an author


def alt_text_required(plan: Plan) -> bool:
    """Whether this post's images need alt text: always for the principal's own posts and
    outside windows; for delegated posts unless their window relaxes it."""
    if not plan.delegated or plan.window is None:
        return True
    return plan.window.policy.alt_text_required


def _uploads(uow: UnitOfWork, actor: Actor, cmd: SubmitPost, plan: Plan) -> list[MediaUpload]:
    """The uploads `cmd` attaches, refused by name unless each is the submitter's own, still
    unattached, and all of them within the account's platform rules."""
    if not cmd.media_ids:
        return []
    if len(set(cmd.media_ids)) != len(cmd.media_ids):
        raise ValidationFailed("media_ids: an image is named twice.", {"media_ids": "duplicate id"})
    if len(cmd.media_ids) > MAX_IMAGES_NAMED:
        raise ValidationFailed("media_ids: too many images.", {"media_ids": "too many"})
    uploads = []
    for position, public_id in enumerate(cmd.media_ids):
        upload = uow.media.get_upload(public_id) if isinstance(public_id, str) else None
        key = f"media_ids[{position}]"
        # Another uploader's image answers as a missing one: ids are not confirmed to others.
        if upload is None or upload.uploaded_by != actor.ref:
            raise ValidationFailed(
                f"media_ids: No image {public_id!r} of yours.", {key: "no such image"}
            )
        if upload.post_id is not None:
            raise ValidationFailed(
                f"media_ids: image {public_id!r} is already attached to a post.",
                {key: "already attached"},
            )
        uploads.append(upload)
    refused = image_refusals(
        plan.account.platform,
        [upload.facts() for upload in uploads],
        alt_text_required=alt_text_required(plan),
    )
    if refused:
        raise ValidationFailed(
            "; ".join(f"{name}: {why}" for name, why in refused.items()) + ".", refused
        )
    return uploads


def thread_plans(ctx: ServiceContext, cmd: SubmitPost, plan: Plan, now: datetime) -> list[Plan]:
    """Each part's plan, first part first: the policy applied to each part's text with the
    thread rules (domain.threads: the tag on the first part or every part, the reminder
    decided once, before the thread). A lone post's list is its own plan. A thread longer
    than its window allows is refused (ValidationFailed)."""
    if not cmd.thread:
        return [plan]
    texts = (cmd.text, *cmd.thread)
    state = plan.window.state(disclosure_url(ctx, plan.account)) if plan.window else None
    most = threads.max_parts(state)
    if len(texts) > most:
        raise ValidationFailed(
            f"A thread may have at most {most} parts here: the window's reminder goes before "
            "the thread, never between its parts, and comes every "
            f"{state.policy.reminder_every if state else '-'} posts.",
            {"thread": f"at most {most} parts"},
        )
    plans = []
    for position, text in enumerate(texts, start=1):
        if position > 1:
            problem = text_problem(text)
            if problem is not None or not text.strip():
                why = problem or "is blank"
                raise ValidationFailed(f"Part {position} {why}.", {"thread": f"part {position}"})
        decision = decide(
            PostDraft(
                text=text,
                kind=PostKind.REGULAR,
                is_delegated=plan.delegated,
                publish_at=_decision_time(cmd, now),
                content_warning=cmd.options.content_warning,
                has_media=position == 1 and bool(cmd.media_ids),  # images go on the first part
            ),
            window=threads.part_window(state, position, len(texts)),
            budget=ctx.budget_for(plan.account),
            now=now,
            stage=Stage.SUBMISSION,
        )
        plans.append(replace(plan, decision=decision))
    return plans


def _store_all(
    uow: UnitOfWork,
    ctx: ServiceContext,
    actor: Actor,
    cmd: SubmitPost,
    plan: Plan,
    now: datetime,
    *,
    group: GroupShare | None = None,
    ahead: PostRecord | None = None,
) -> Post:
    """Store a post, or each part of a thread (each its own post and ledger entry, linked by
    the thread's id and position, each a reply to the part before); return the (first) post.
    Any part refused refuses the whole thread, before anything is stored. In a group, every
    part carries the group's id and the first part takes the group's images. `ahead`: a lone
    post's record built for `plan` (`_store`)."""
    plans = thread_plans(ctx, cmd, plan, now)
    for position, part in enumerate(plans, start=1):
        if part.decision.refused:
            if len(plans) > 1:
                raise PolicyRefused(_for_part(part.decision, position))
            raise PolicyRefused(part.decision)
    held_for = approval_reasons(uow, ctx, cmd, plan)
    group_id = group.id if group else None
    first_uploads = group.uploads if group else None
    claim = group.claims if group else True
    if len(plans) == 1:
        post = _store(
            uow,
            actor,
            cmd,
            plan,
            now,
            group_id,
            uploads=first_uploads,
            claim=claim,
            held_for=held_for,
            ahead=ahead,
        )
        return _tell_approver(ctx, uow, post)
    first_id = str(uuid.uuid4())
    first = previous = None
    texts = (cmd.text, *cmd.thread)
    for position, (text, part) in enumerate(zip(texts, plans, strict=True), start=1):
        # Images go with the first part (an upload attaches to one post).
        part_cmd = (
            cmd
            if position == 1
            else replace(cmd, text=text, in_reply_to=None, extra={}, media_ids=())
        )
        thread = ThreadPlace(first_id, position, len(plans), previous.id if previous else None)
        previous = _store(
            uow,
            actor,
            part_cmd,
            part,
            now,
            group_id,
            thread=thread,
            uploads=first_uploads if position == 1 else None,
            claim=claim,
            held_for=held_for,
        )
        first = first or previous
    assert first is not None
    return _tell_approver(ctx, uow, first)


def _tell_approver(ctx: ServiceContext, uow: UnitOfWork, post: Post) -> Post:
    """A post that waits for approval is the principal's email (one per post or thread)."""
    if post.state is PostState.PENDING_APPROVAL:
        notifications.record_post_awaits_approval(ctx, uow, f"post:{post.public_id}", post)
    return post


#: Surfaces whose replies may be automated (issue 18: "no automated replies"). A reply a staff
#: user types into the web form is a person's answer, and goes out as any post.
_AUTOMATABLE_SOURCES = frozenset({Source.API, Source.MASTODON_COMPAT})


def approval_reasons(
    uow: UnitOfWork, ctx: ServiceContext, cmd: SubmitPost, plan: Plan
) -> tuple[str, ...]:
    """Why a delegated post (every part of its thread) waits for the principal although its
    window does not ask it of every post (domain.guards; the window's reply policy), or
    refuse it (PolicyRefused) when the window refuses automated replies. The principal's own
    posts and posts outside windows (refused anyway) are never held. One read of the
    principal's guards (none for an API client's create: its one read had them); a post
    carrying new-looking hashtags also reads, in one indexed query, which the account used."""
    if not plan.delegated or plan.window is None:
        return ()
    reasons: list[str] = []
    policy = plan.window.policy
    if cmd.in_reply_to is not None and cmd.source in _AUTOMATABLE_SOURCES:
        if policy.reply_policy is ReplyPolicy.REFUSE:
            refusal = Refusal(
                RefusalCode.REPLIES_REFUSED,
                "This window refuses replies submitted through the API or the Mastodon face "
                "(reply_policy: refuse); a person answers from the web app.",
            )
            raise PolicyRefused(replace(plan.decision, outcome=Outcome.REFUSE, refusal=refusal))
        if policy.reply_policy is ReplyPolicy.APPROVE:
            reasons.append("a reply through the API or the Mastodon face: a person approves it")
    texts = (cmd.text, *cmd.thread)
    budget = ctx.budget_for(plan.account)
    names = {fold(tag.name) for text in texts if "#" in text for tag in budget.hashtags(text)}
    guards = plan.guards or uow.guards.of(plan.account.principal_id)
    tag_name = hashtag_name(policy.tag)
    candidates = post_hashtags(names, [tag_name] if tag_name else [])
    used = (
        uow.guards.used_hashtags(plan.account.id, candidates)
        if guards.first_use_hashtags and candidates
        else frozenset(names)
    )
    disclosure = [tag_name] if tag_name else []
    reasons.extend(guard_reasons(texts, names, guards, used, disclosure))
    return tuple(reasons)


def _for_part(decision: Decision, position: int) -> Decision:
    """The refusal of one part, saying which part it is."""
    assert decision.refusal is not None
    refusal = replace(decision.refusal, message=f"Part {position}: {decision.refusal.message}")
    return replace(decision, refusal=refusal)


@dataclass(frozen=True)
class GroupShare:
    """What a post of a group shares with the others: the group's id and its images (checked
    against this post's account already); the group's first post `claims` them (they become
    attached), the others show the same images."""

    id: str
    uploads: tuple[MediaUpload, ...]
    claims: bool


@dataclass(frozen=True)
class ThreadPlace:
    """Where a part goes in its thread: the thread's id (its first part's public id), its
    position (1-based) of `parts`, and the part before it (None for the first)."""

    thread_id: str
    position: int
    parts: int
    previous_id: int | None

    def record(self) -> dict[str, Any]:
        """The place as kept in the part's decisions and its `post:submitted` entry."""
        return {"id": self.thread_id, "position": self.position, "parts": self.parts}


@dataclass(frozen=True)
class Reply:
    """Whom a post answers: a ghostpost post on the same account, or a platform post id."""

    post_id: int | None = None
    platform_id: str | None = None


#: States of a ghostpost post that a reply may name (its platform id is known).
_ANSWERABLE = frozenset({PostState.PUBLISHED})
#: The largest posts.id (a 32-bit integer column).
_LARGEST_ROW_ID = 2**31 - 1
#: How the Mastodon face names a status it showed (its id is ghostpost's post id).
_FACE_STATUS = "face-status:"


def face_reply_ref(status_id: str) -> str:
    """`in_reply_to` for a status id the Mastodon face showed (ghostpost's own post id)."""
    return _FACE_STATUS + status_id


def _named_post(uow: UnitOfWork, in_reply_to: str) -> Post | None:
    if not in_reply_to.startswith(_FACE_STATUS):
        return uow.posts.by_public_id(in_reply_to)
    number = in_reply_to.removeprefix(_FACE_STATUS)
    # Row ids are 32-bit integers on PostgreSQL: a larger number names no status (asking the
    # database would be refused as out of range, a 500 instead of Mastodon's 404).
    valid = number.isascii() and number.isdigit() and len(number) <= 18
    valid = valid and int(number) <= _LARGEST_ROW_ID
    found = uow.posts.get(int(number)) if valid else None
    if found is None:
        # As Mastodon answers a reply to a status it does not have (404).
        raise NotFound("The post you are trying to reply to does not appear to exist.")
    return found


def resolve_reply(uow: UnitOfWork, account: Account, in_reply_to: str | None) -> Reply | None:
    """What `in_reply_to` names, or refuse it (ValidationFailed, nothing stored).

    Two forms, tried in this order:
    - the public id of a ghostpost post *published on the same account*: the worker then knows
      its platform id (and its thread's root) from the receipt;
    - a post id on the account's own platform (answering someone else's post, or one published
      outside ghostpost): sent as it is; the platform checks it exists (a reply to nothing fails).
    Either form naming a post ghostpost published on *another* account is refused by name: a
    reply goes out on the account of the conversation, never across the principal's accounts.
    """
    if in_reply_to is None:
        return None
    named = _named_post(uow, in_reply_to)
    if named is None:
        on_platform = uow.posts.by_platform_post_id(account.platform, in_reply_to)
        if any(p.account_id != account.id for p in on_platform):
            raise _other_account()
        return Reply(platform_id=in_reply_to)
    if named.account_id != account.id:
        raise _other_account()
    if named.state not in _ANSWERABLE or named.platform_post_id is None:
        raise ValidationFailed(
            f"in_reply_to names a post that is not published ({named.state.value}); "
            "a reply answers a published post.",
            {"in_reply_to": "not published"},
        )
    return Reply(post_id=named.id)


def _other_account() -> ValidationFailed:
    return ValidationFailed(
        "in_reply_to names a post on another account; a reply is published on the account "
        "of the post it answers.",
        {"in_reply_to": "another account's post"},
    )


@dataclass(frozen=True)
class PostRecord:
    """What storing a post writes besides its images: the new post's row and the data of its
    `post:submitted` entry (images, attached to the stored post, are added then)."""

    post: NewPost
    entry_data: Mapping[str, Any] | CanonicalData


def _post_record(
    actor: Actor,
    cmd: SubmitPost,
    plan: Plan,
    now: datetime,
    group_id: str | None,
    *,
    thread: ThreadPlace | None,
    reply: Reply | None,
    held_for: tuple[str, ...],
) -> PostRecord:
    """The post's row and its entry's data, from the plan alone (no read)."""
    needs_approval = bool(held_for) or (
        plan.delegated and plan.window is not None and plan.window.policy.requires_approval
    )
    state = PostState.PENDING_APPROVAL if needs_approval else PostState.SCHEDULED
    # One record for the post's decisions and its entry (both only serialise it).
    record = plan.decision.to_record()
    decisions: dict[str, Any] = {
        "delegated": plan.delegated,
        "submission": record,
        SUBMISSION_TEXT_KEY: plan.decision.final_text,
    }
    extra: dict[str, Any] = {"extra": dict(cmd.extra)} if cmd.extra else {}
    if held_for:
        extra[APPROVAL_REASONS_KEY] = list(held_for)
    if thread is not None:
        extra["thread"] = thread.record()
    post = NewPost(
        public_id=thread.thread_id if thread and thread.position == 1 else str(uuid.uuid4()),
        account_id=plan.account.id,
        kind=PostKind.REGULAR,
        state=state,
        author_id=plan.author.id,
        submitter=actor.ref,
        source=cmd.source,
        submitted_text=cmd.text,
        # Not the preview's text: the inline reminder (and the tag again) are decided when the
        # post goes out, and the worker then stores exactly what it sends.
        final_text=plan.decision.tagged_text,
        idempotency_key=f"gp-{uuid.uuid4()}",
        created_at=now,
        window_id=plan.window.id if plan.window else None,
        state_reason=_awaiting(held_for) if needs_approval else None,
        publish_at=cmd.publish_at or now,
        decisions={**decisions, **extra},
        options=cmd.options,
        final_content_warning=plan.decision.content_warning,
        group_id=group_id,
        reply_to_post_id=reply.post_id if reply else None,
        reply_to_platform_id=reply.platform_id if reply else None,
        thread_id=thread.thread_id if thread else None,
        thread_position=thread.position if thread else None,
    )
    # Only grouped posts (posts with options, with images) say so: a plain post's entry
    # reads as it always has.
    group = {"group_id": group_id} if group_id is not None else {}
    options = {} if cmd.options.is_plain else {"options": cmd.options.to_record()}
    entry_data = {
        "account_id": plan.account.id,
        "principal_id": plan.account.principal_id,
        "window_id": post.window_id,
        "writer": user_summary(plan.author),
        "submitter": actor.ref,
        # The app a signed-in writer posted through (absent for every other submitter).
        **({"via": actor.via} if actor.via else {}),
        "source": cmd.source.value,
        "delegated": plan.delegated,
        "submitted_text": cmd.text,
        "publish_at": post.publish_at.isoformat() if post.publish_at else None,
        "state": state.value,
        "decision": record,
        **extra,
        **options,
        **group,
    }
    return PostRecord(post, entry_data)


def _lone_record_ahead(
    actor: Actor, cmd: SubmitPost, plan: Plan, now: datetime
) -> PostRecord | None:
    """The record of a lone post (no images, no reply, no thread or group) that nothing holds
    for approval but its window's rule, with its entry's data serialised: what `_store` writes
    for such a post when its plan holds, built before the write transaction. None for any
    other post, and for one the plan refuses (nothing is written)."""
    if cmd.media_ids or cmd.in_reply_to is not None or cmd.thread or plan.decision.refused:
        return None
    record = _post_record(actor, cmd, plan, now, None, thread=None, reply=None, held_for=())
    assert not isinstance(record.entry_data, CanonicalData)
    return replace(record, entry_data=CanonicalData.of(record.entry_data))


def _store(
    uow: UnitOfWork,
    actor: Actor,
    cmd: SubmitPost,
    plan: Plan,
    now: datetime,
    group_id: str | None = None,
    *,
    thread: ThreadPlace | None = None,
    uploads: Sequence[MediaUpload] | None = None,
    claim: bool = True,
    held_for: tuple[str, ...] = (),
    ahead: PostRecord | None = None,
) -> Post:
    """Store the post (in the group `group_id`, at its place in `thread`, if any), its images
    (`uploads` already checked, else those `cmd` names) and its `post:submitted` entry;
    `claim` as in MediaRepository.attach. `held_for`: why it waits for the principal's
    approval although its window does not ask it of every post (`approval_reasons`).
    `ahead`: the record `_lone_record_ahead` built for this very plan, written as it is when
    the post is such a lone post (else built here)."""
    if plan.decision.refused:
        raise PolicyRefused(plan.decision)
    if uploads is None:
        uploads = _uploads(uow, actor, cmd, plan)
    reply = resolve_reply(uow, plan.account, cmd.in_reply_to)
    if thread is not None and thread.previous_id is not None:
        reply = Reply(post_id=thread.previous_id)
    lone = not (uploads or reply or thread or group_id is not None or held_for)
    record = (
        ahead
        if ahead is not None and lone
        else _post_record(
            actor, cmd, plan, now, group_id, thread=thread, reply=reply, held_for=held_for
        )
    )
    stored = uow.submissions.add_post(
        record.post,
        assigned_author=not plan.author.is_principal_of(plan.account),
        client_id=_client_id(actor),
    )
    if stored is WithdrawnGrant.CLIENT:
        raise Forbidden("This API client is revoked.")  # the read's answer, had it seen it
    if stored is WithdrawnGrant.AUTHOR:
        raise AssignmentWithdrawn(f"{plan.author.email} is deactivated.")
    if stored is WithdrawnGrant.ASSIGNMENT:
        raise AssignmentWithdrawn(f"{plan.author.email} is not assigned to @{plan.account.handle}.")
    assert isinstance(stored, Post)
    post = stored
    data = record.entry_data
    images = uow.media.attach(post.id, uploads, claim=claim) if uploads else ()
    if images:
        assert not isinstance(data, CanonicalData)  # only a lone post's record is serialised
        data = {**data, "images": [image.to_record() for image in images]}
    uow.ledger.append(
        tag=LedgerTag.POST_SUBMITTED,
        actor=actor.ref,
        subject=f"post:{post.public_id}",
        data=data,
        occurred_at=now,
    )
    return post


def _client_id(actor: Actor) -> str | None:
    """The API client acting (its client_id), or None for anyone else."""
    if actor.user is None and actor.ref.startswith("client:"):
        return actor.ref.removeprefix("client:")
    return None


#: A post's decisions key (and its `post:submitted` entry's) for why it waits for approval.
APPROVAL_REASONS_KEY = "approval_reasons"


def _awaiting(reasons: Sequence[str]) -> str:
    """A held post's state reason: the approval it waits for, and why."""
    why = "; ".join(reasons)
    return "awaiting the principal's approval" + (f": {why}" if why else "")


def _get_post(uow: UnitOfWork, post_id: int) -> tuple[Post, Account]:
    post = uow.posts.get(post_id)
    if post is None:
        raise NotFound(f"No post {post_id}.")
    account = uow.accounts.get(post.account_id)
    assert account is not None
    return post, account


def _check_comment(comment: str) -> None:
    problem = text_problem(comment)
    if problem is not None:
        raise ValidationFailed(f"The comment {problem}.", {"comment": problem})


def _decided_together(uow: UnitOfWork, post: Post) -> list[Post]:
    """The posts one approval decides: `post`, or every part of its thread.

    A thread goes out whole, never interleaved with the account's other posts, so approving
    part of it would leave the account waiting on the rest; the principal decides on the thread
    as one item, whichever part the decision names.
    """
    if post.thread_id is None:
        return [post]
    return uow.posts.in_thread(post.thread_id)


def approve_post(ctx: ServiceContext, actor: Actor, post_id: int, comment: str = "") -> Post:
    """The principal approves a delegated post that its window holds for approval: for a thread
    part, every part of the thread that awaits approval (one ledger entry each)."""
    _check_comment(comment)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post, account = _get_post(uow, post_id)
        user = require_principal(actor, account)
        if post.kind is not PostKind.REGULAR:
            raise Conflict("Notices are approved through their window.")
        if post.author_id == user.id:
            raise Forbidden("Nobody approves their own post.")
        if post.state is not PostState.PENDING_APPROVAL:
            raise Conflict(
                f"Only posts awaiting approval can be approved; this one is {post.state}."
            )
        approved = post
        for part in _decided_together(uow, post):
            if part.state is not PostState.PENDING_APPROVAL:
                continue  # published, cancelled, or approved before decisions took threads whole
            if part.author_id == user.id:
                raise Forbidden("Nobody approves their own post.")
            changed = uow.posts.approve(
                part.id,
                state=transition(part.state, PostState.SCHEDULED),
                approved_by=user.id,
                approved_at=now,
                publish_at=part.publish_at,
            )
            uow.ledger.append(
                tag=LedgerTag.POST_APPROVED,
                actor=actor.ref,
                subject=f"post:{part.public_id}",
                data={
                    "approver": user_summary(user),
                    "comment": comment,
                    **_thread_data(part),
                },
                occurred_at=now,
            )
            if part.id == post.id:
                approved = changed
        uow.commit()
    return approved


def _thread_data(post: Post) -> dict[str, object]:
    """The thread a decision on a part was taken for, for its ledger entry (nothing for a lone
    post, so that its entries stay as they were)."""
    thread = post.decisions.get("thread")
    return {"thread": thread} if post.thread_id is not None and thread else {}


#: States of a thread part that a rejection of its thread refuses: not out yet.
_REJECTABLE_PARTS = (PostState.PENDING_APPROVAL, PostState.SCHEDULED, PostState.HELD)


def reject_post(ctx: ServiceContext, actor: Actor, post_id: int, comment: str) -> Post:
    """The principal rejects a post awaiting approval; it becomes refused with the comment. For
    a thread part, every part of the thread not out yet is refused (one ledger entry each)."""
    _check_comment(comment)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post, account = _get_post(uow, post_id)
        user = require_principal(actor, account)
        if post.kind is not PostKind.REGULAR:
            raise Conflict("Notices and reminders are not rejected one by one.")
        if post.state is not PostState.PENDING_APPROVAL:
            raise Conflict(
                f"Only posts awaiting approval can be rejected; this one is {post.state}."
            )
        reason = f"rejected by {user.name}" + (f": {comment}" if comment else "")
        rejected = post
        for part in _decided_together(uow, post):
            if part.state not in _REJECTABLE_PARTS:
                continue
            changed = uow.posts.set_state(
                part.id, transition(part.state, PostState.REFUSED), reason
            )
            entry = uow.ledger.append(
                tag=LedgerTag.POST_REJECTED,
                actor=actor.ref,
                subject=f"post:{part.public_id}",
                data={
                    "approver": user_summary(user),
                    "comment": comment,
                    **_thread_data(part),
                },
                occurred_at=now,
            )
            if part.id == post.id:
                rejected = changed
                notifications.record_to_writer(
                    ctx, uow, notifications.K.POST_REJECTED, entry, changed, reason
                )
        uow.commit()
    return rejected


def may_change_post(user: User, post: Post, account: Account) -> bool:
    """Tell whether `user` may cancel, reschedule or retry `post`: its author, a manager, the
    principal."""
    if not user.is_active:
        return False
    return user.id == post.author_id or user.is_principal_of(account) or user.role in MANAGING_ROLES


def _require_editor(uow: UnitOfWork, actor: Actor, post: Post, account: Account) -> User:
    user = require_user(actor)
    if may_change_post(user, post, account):
        return user
    raise Forbidden("Only the author, a manager or the principal may change this post.")


def _require_changer(uow: UnitOfWork, actor: Actor, post: Post, account: Account) -> None:
    """Refuse anyone but who may cancel or reschedule `post`: an API client, only the posts it
    submitted; a person, also through a token limited to some accounts (a Mastodon app's),
    only within those accounts and as its author, a manager or the principal."""
    if not actor.may_use_account(post.account_id):
        raise NotFound(f"No post {post.id}.")
    if actor.user is None and actor.account_ids is not None:
        _require_submitting_client(actor, post)
    else:
        _require_editor(uow, actor, post, account)


def reschedule_post(ctx: ServiceContext, actor: Actor, post_id: int, publish_at: datetime) -> Post:
    """Move a queued post to another time; the window rules are checked again (an API client:
    one it submitted)."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post, account = _get_post(uow, post_id)
        _require_changer(uow, actor, post, account)
        if post.state not in (PostState.SCHEDULED, PostState.PENDING_APPROVAL, PostState.HELD):
            raise Conflict(f"A {post.state} post cannot be rescheduled.")
        if post.kind is not PostKind.REGULAR:
            raise Conflict("Notices and reminders are not rescheduled by hand.")
        if post.thread_id is not None:
            # Moving one part would put other posts inside the thread, or a part before the
            # one it answers.
            raise Conflict(
                "A thread's parts go out together: cancel the thread and submit it again "
                "to move it."
            )
        if publish_at.tzinfo is None:
            raise ValidationFailed("publish_at needs a time zone.", {"publish_at": "no time zone"})
        if publish_at < now - PAST_TOLERANCE:
            raise ValidationFailed("publish_at is in the past.", {"publish_at": "in the past"})
        author = uow.users.get(post.author_id)
        assert author is not None
        window = uow.windows.covering(account.id, max(publish_at, now))
        decision = decide(
            PostDraft(
                post.submitted_text,
                PostKind.REGULAR,
                post.is_delegated,
                publish_at,
                content_warning=post.options.content_warning,
                has_media=bool(uow.media.images_of(post.id)),
            ),
            window=window.state(disclosure_url(ctx, account)) if window else None,
            budget=ctx.budget_for(account),
            now=now,
            stage=Stage.SUBMISSION,
        )
        if decision.refused:
            raise PolicyRefused(decision)
        same_window = window is not None and window.id == post.window_id
        held_for = post.decisions.get(APPROVAL_REASONS_KEY) or []
        needs_approval = (
            post.is_delegated
            and window is not None
            and (window.policy.requires_approval or bool(held_for))
            and not (same_window and post.approved_by is not None)
        )
        state = PostState.PENDING_APPROVAL if needs_approval else PostState.SCHEDULED
        newly_pending = needs_approval and post.state is not PostState.PENDING_APPROVAL
        post = uow.posts.reschedule(
            post.id,
            state=post.state if state is post.state else transition(post.state, state),
            reason=_awaiting(held_for) if needs_approval else None,
            publish_at=publish_at,
            window_id=window.id if window else None,
            final_text=decision.tagged_text,
            final_content_warning=decision.content_warning,
            # An approval holds for the window it was given in only.
            approved_by=post.approved_by if same_window else None,
            approved_at=post.approved_at if same_window else None,
            decisions={
                **post.decisions,
                "submission": decision.to_record(),
                SUBMISSION_TEXT_KEY: decision.final_text,
            },
        )
        entry = uow.ledger.append(
            tag=LedgerTag.POST_RESCHEDULED,
            actor=actor.ref,
            subject=f"post:{post.public_id}",
            data={"publish_at": publish_at.isoformat(), "decision": decision.to_record()},
            occurred_at=now,
        )
        if newly_pending:
            notifications.record_post_awaits_approval(ctx, uow, entry, post)
        uow.commit()
    return post


def _require_submitting_client(actor: Actor, post: Post) -> None:
    if not actor.may_use_account(post.account_id):
        raise NotFound(f"No post {post.id}.")
    if post.submitter != actor.ref:
        raise Forbidden("An API client may change only the posts it submitted.")


def cancel_post(ctx: ServiceContext, actor: Actor, post_id: int) -> Post:
    """Cancel a post that has not gone out yet (an API client: one it submitted)."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post, account = _get_post(uow, post_id)
        _require_changer(uow, actor, post, account)
        if post.kind is not PostKind.REGULAR:
            # A window's notice (or reminder) going missing would block or break its window.
            raise Conflict("Notices and reminders cannot be cancelled on their own.")
        if post.state is PostState.PUBLISHED:
            raise Conflict(
                "A published post cannot be cancelled: it is already on the platform, and "
                "ghostpost does not take published posts back."
            )
        if post.state not in QUEUED_STATES and post.state is not PostState.FAILED:
            raise Conflict(f"A {post.state} post cannot be cancelled.")
        post = uow.posts.set_state(
            post.id, transition(post.state, PostState.CANCELLED), "cancelled"
        )
        uow.ledger.append(
            tag=LedgerTag.POST_CANCELLED,
            actor=actor.ref,
            subject=f"post:{post.public_id}",
            data={},
            occurred_at=now,
        )
        uow.commit()
    return post


def retry_post(ctx: ServiceContext, actor: Actor, post_id: int) -> Post:
    """Send a failed post back to the queue at once; its attempts keep counting."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        post, account = _get_post(uow, post_id)
        user = _require_editor(uow, actor, post, account)
        if post.state is not PostState.FAILED:
            raise Conflict(f"Only failed posts can be retried; this one is {post.state}.")
        if post.kind is PostKind.REMINDER:
            # The worker decides the reminder again when the post it preceded goes out.
            raise Conflict("A reminder is not retried on its own; retry the post it preceded.")
        error = post.state_reason
        post = uow.posts.end_attempt(
            post.id,
            state=transition(post.state, PostState.SCHEDULED),
            reason=f"retry requested by {user.name}",
            next_attempt_at=None,
        )
        uow.ledger.append(
            tag=LedgerTag.POST_RETRY_REQUESTED,
            actor=actor.ref,
            subject=f"post:{post.public_id}",
            data={"requested_by": user_summary(user), "attempts": post.attempts, "error": error},
            occurred_at=now,
        )
        uow.commit()
    return post
