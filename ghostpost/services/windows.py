"""Use cases for delegation windows, their notices and changes to an approved policy.

The principal's approval of a window's notice covers the policy as it then stands (the
approvals page shows it). After that, a change that weakens the disclosure, or replaces words
or choices the principal saw (ghostpost.domain.consent), is stored as a proposal unless the
principal makes it: the `windows` row, which the worker reads, keeps the approved policy until
the principal approves the proposal. Strengthening changes apply at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ghostpost.domain.consent import Effect, FieldChange, compare_policies, with_fields
from ghostpost.domain.disclosure import MAX_REASON, PLACEHOLDERS, expand, unknown_placeholders
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import (
    Account,
    NewPost,
    Post,
    Principal,
    ProposalStatus,
    Role,
    Source,
    User,
    Window,
    WindowProposal,
)
from ghostpost.domain.policy import (
    DEFAULT_REMINDER_EVERY,
    DEFAULT_TAG,
    MIN_REMINDER_EVERY,
    PostKind,
    ReminderMode,
    ReplyPolicy,
    TagMode,
    TagPosition,
    WindowKind,
    WindowPolicy,
)
from ghostpost.domain.states import PostState, transition
from ghostpost.services import delegation, notifications
from ghostpost.services.authz import (
    may_manage,
    may_oversee,
    require_manager,
    require_principal,
    require_user,
)
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.disclosure import disclosure_url
from ghostpost.services.errors import Conflict, NotFound, ValidationFailed, text_problem
from ghostpost.services.ports import UnitOfWork

_TAG = re.compile(r"^#\w{1,100}$")
MAX_REMINDER_EVERY = 1000
MAX_COMMENT = 2000
AWAITING_APPROVAL = "awaiting the principal's approval"

#: Words for the policy fields, for people reading proposals.
POLICY_LABELS = {
    "starts_at": "Starts",
    "ends_at": "Ends",
    "notice_text": "Notice text",
    "reminder_text": "Reminder text",
    "reminder_every": "Reminder every N posts",
    "reminder_mode": "Reminder mode",
    "tag": "Tag",
    "tag_mode": "Tag mode",
    "tag_position": "Tag position",
    "requires_approval": "Principal approves each delegated post",
    "alt_text_required": "Delegated posts' images need alt text",
    "tag_every_part": "Tag every part of a thread",
    "reason": "Reason (public)",
    "kind": "Kind",
    "reply_policy": "Replies through the API or the Mastodon face",
}
_TIME_FIELDS = ("starts_at", "ends_at")
_ENUM_FIELDS: dict[str, Any] = {
    "reminder_mode": ReminderMode,
    "tag_mode": TagMode,
    "tag_position": TagPosition,
    "kind": WindowKind,
    "reply_policy": ReplyPolicy,
}


@dataclass(frozen=True)
class WindowSpec:
    """What a manager fills in to open a delegation window."""

    account_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    notice_text: str
    reminder_text: str
    reminder_every: int = DEFAULT_REMINDER_EVERY
    reminder_mode: ReminderMode = ReminderMode.INLINE
    tag: str = DEFAULT_TAG
    tag_mode: TagMode = TagMode.WHEN_FITS
    tag_position: TagPosition = TagPosition.END
    requires_approval: bool = False
    #: Delegated posts' images need alt text (relaxing it needs the principal's consent).
    alt_text_required: bool = True
    tag_every_part: bool = False
    reply_policy: ReplyPolicy = ReplyPolicy.APPROVE
    #: When the notice goes out once approved; None: the configured lead before `starts_at`.
    notice_publish_at: datetime | None = None
    #: Why the account is handed over (required; public on the disclosure page).
    reason: str = ""
    #: An away notice has a notice and no delegated posting (no reminder text needed).
    kind: WindowKind = WindowKind.DELEGATION

    def policy(self) -> WindowPolicy:
        """Return the policy value the engine reads."""
        return WindowPolicy(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            notice_text=self.notice_text,
            reminder_text=self.reminder_text,
            reminder_every=self.reminder_every,
            reminder_mode=self.reminder_mode,
            tag=self.tag,
            tag_mode=self.tag_mode,
            tag_position=self.tag_position,
            requires_approval=self.requires_approval,
            alt_text_required=self.alt_text_required,
            tag_every_part=self.tag_every_part,
            reason=self.reason.strip(),
            kind=self.kind,
            reply_policy=self.reply_policy,
        )

    def notice_time(self, ctx: ServiceContext) -> datetime:
        """Return when the notice goes out: as given, or the configured lead before the start."""
        return self.notice_publish_at or self.starts_at - ctx.notice_lead


def _validate(spec: WindowSpec) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not spec.name.strip():
        errors["name"] = "required"
    if spec.starts_at.tzinfo is None:
        errors["starts_at"] = "needs a time zone"
    if spec.ends_at.tzinfo is None:
        errors["ends_at"] = "needs a time zone"
    if "starts_at" not in errors and "ends_at" not in errors and spec.ends_at <= spec.starts_at:
        errors["ends_at"] = "must be after starts_at"
    if spec.notice_publish_at is not None:
        if spec.notice_publish_at.tzinfo is None:
            errors["notice_publish_at"] = "needs a time zone"
        elif "ends_at" not in errors and spec.notice_publish_at > spec.ends_at:
            errors["notice_publish_at"] = "must not be after ends_at"
    if not spec.notice_text.strip():
        errors["notice_text"] = "required"
    away = spec.kind is WindowKind.AWAY
    if not spec.reminder_text.strip() and not away:
        errors["reminder_text"] = "required"
    if not spec.reason.strip():
        errors["reason"] = "required: say why others post for the principal (the public reads it)"
    elif len(spec.reason.strip()) > MAX_REASON:
        errors["reason"] = f"too long: keep it under {MAX_REASON} characters"
    if not MIN_REMINDER_EVERY <= spec.reminder_every <= MAX_REMINDER_EVERY:
        errors["reminder_every"] = f"must be between {MIN_REMINDER_EVERY} and {MAX_REMINDER_EVERY}"
    for name in ("name", "notice_text", "reminder_text", "tag", "reason"):
        problem = text_problem(getattr(spec, name))
        if problem is not None:
            errors[name] = problem
    for name in ("notice_text", "reminder_text"):
        unknown = unknown_placeholders(getattr(spec, name))
        if unknown and name not in errors:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            errors[name] = (
                "unknown placeholder "
                + ", ".join("{" + u + "}" for u in unknown)
                + f" (known: {known})"
            )
    if spec.tag_mode is not TagMode.OFF and not away and not _TAG.match(spec.tag):
        errors["tag"] = "must be one hashtag such as #team"
    return errors


def _check_comment(comment: str, *, required: bool) -> str:
    comment = comment.strip()
    if required and not comment:
        raise ValidationFailed(
            "Say why in a comment: the window's managers read it.", {"comment": "required"}
        )
    if len(comment) > MAX_COMMENT:
        raise ValidationFailed(
            f"Keep the comment under {MAX_COMMENT} characters.", {"comment": "too long"}
        )
    problem = text_problem(comment)
    if problem is not None:
        raise ValidationFailed(f"The comment {problem}.", {"comment": problem})
    return comment


def create_window(ctx: ServiceContext, actor: Actor, spec: WindowSpec) -> Window:
    """Open a delegation window and draft its notice, which awaits the principal's approval."""
    errors = _validate(spec)
    if errors:
        raise ValidationFailed("The window is not valid: " + ", ".join(errors) + ".", errors)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        account = uow.accounts.get(spec.account_id)
        if account is None:
            raise NotFound(f"No account {spec.account_id}.")
        user = require_manager(actor, account)
        _check_texts_fit(ctx, account, spec)
        if uow.windows.overlaps(account.id, spec.starts_at, spec.ends_at):
            raise Conflict(_overlap_message(uow, account.id, spec.starts_at, spec.ends_at, None))
        window = uow.windows.add(
            account_id=account.id,
            name=spec.name.strip(),
            policy=spec.policy(),
            created_by=user.id,
            notice_publish_at=spec.notice_time(ctx),
        )
        notice_text = expand(spec.notice_text, disclosure_url(ctx, account))
        notice = uow.posts.add(
            NewPost(
                public_id=str(uuid.uuid4()),
                account_id=account.id,
                kind=PostKind.NOTICE,
                state=PostState.PENDING_APPROVAL,
                author_id=user.id,
                submitter=actor.ref,
                source=Source.SYSTEM,
                submitted_text=notice_text,
                final_text=notice_text,
                idempotency_key=f"gp-{uuid.uuid4()}",
                created_at=now,
                window_id=window.id,
                state_reason=AWAITING_APPROVAL,
                decisions={"delegated": False, "kind": "notice"},
            )
        )
        window = uow.windows.attach_notice(window.id, notice.id)
        entry = uow.ledger.append(
            tag=LedgerTag.WINDOW_CREATED,
            actor=actor.ref,
            subject=f"window:{window.id}",
            data={
                "account_id": account.id,
                "name": window.name,
                "policy": _policy_record(window.policy),
                "notice_publish_at": _iso(window.notice_publish_at),
                "notice_post": notice.public_id,
                "drafted_by": user_summary(user),
            },
            occurred_at=now,
        )
        notifications.record_notice_awaits_approval(ctx, uow, entry, account, window)
        uow.commit()
    return window


def _check_texts_fit(ctx: ServiceContext, account: Account, spec: WindowSpec) -> None:
    budget = ctx.budget_for(account)
    away = spec.kind is WindowKind.AWAY
    if (
        spec.tag_mode is not TagMode.OFF
        and not away
        and not budget.finds_hashtag(spec.tag, spec.tag)
    ):
        # Refused here, where the manager can fix it, rather than on every delegated post later
        # (e.g. "#123" is no hashtag anywhere; Bluesky tags stop at 64 characters).
        raise ValidationFailed(
            f"The tag {spec.tag} is not a hashtag on {account.platform}: followers would not "
            "see it as one. Choose another tag.",
            {"tag": f"not a hashtag on {account.platform}"},
        )
    url = disclosure_url(ctx, account)
    for field_name, text in (
        ("notice_text", spec.notice_text),
        ("reminder_text", spec.reminder_text),
    ):
        # Measured as it goes out: the platform counts the page's URL its own way.
        measured = budget.measure(expand(text, url))
        over = measured.overflow()
        if over is not None:
            raise ValidationFailed(
                f"The {field_name.replace('_', ' ')} is {over.used} {over.unit}, over the "
                f"limit of {over.limit}.",
                {field_name: f"too long: {over.used} {over.unit}, the limit is {over.limit}"},
            )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _record_value(value: object) -> object:
    """A policy value as the ledger and proposals record it (JSON)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, ReminderMode | TagMode | TagPosition | ReplyPolicy):
        return value.value
    return value


def _typed_value(field: str, value: Any) -> object:
    """The reverse of `_record_value` for one policy field."""
    if field in _TIME_FIELDS:
        return datetime.fromisoformat(value)
    if field in _ENUM_FIELDS:
        return _ENUM_FIELDS[field](value)
    return value


def _policy_record(policy: WindowPolicy) -> dict[str, object]:
    return {name: _record_value(getattr(policy, name)) for name in POLICY_LABELS}


def _change_records(changes: tuple[FieldChange, ...]) -> dict[str, dict[str, object]]:
    return {
        c.field: {
            "old": _record_value(c.old),
            "new": _record_value(c.new),
            "effect": c.effect.value,
        }
        for c in changes
    }


def notice_fingerprint(window: Window) -> str:
    """Return a digest of everything the principal approves with a window's notice.

    The approvals page sends it back with the approval, so a policy edited after the page was
    opened is never approved unseen.
    """
    seen = {
        "policy": _policy_record(window.policy),
        "notice_publish_at": _iso(window.notice_publish_at),
        "name": window.name,
    }
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:32]


def _get_window(uow: UnitOfWork, window_id: int) -> Window:
    window = uow.windows.get(window_id)
    if window is None:
        raise NotFound(f"No window {window_id}.")
    return window


def _principal_window(
    uow: UnitOfWork, actor: Actor, window_id: int
) -> tuple[Window, Account, User]:
    window = _get_window(uow, window_id)
    account = uow.accounts.get(window.account_id)
    assert account is not None
    if actor.user is not None and not may_oversee(actor.user, account):
        # Another principal's window must look exactly like one that does not exist.
        raise NotFound(f"No window {window_id}.")
    return window, account, require_principal(actor, account)


def _notice_awaiting_decision(uow: UnitOfWork, window: Window) -> Post:
    if window.notice_approved_at is not None or window.notice_post_id is None:
        raise Conflict("This window's notice is already approved.")
    notice = uow.posts.get(window.notice_post_id)
    assert notice is not None
    if notice.state is not PostState.PENDING_APPROVAL:
        raise Conflict(f"This window's notice is {notice.state}; it can no longer be decided.")
    return notice


def approve_notice(
    ctx: ServiceContext, actor: Actor, window_id: int, seen: str | None = None
) -> Window:
    """The principal approves the window's notice and the policy as it stands.

    The notice is scheduled for the window's notice time, or at once when that has passed:
    never earlier. `seen` is the `notice_fingerprint` of the page the principal approved from;
    when the window changed since, nothing is approved.
    """
    now = ctx.clock.now()
    with ctx.uow() as uow:
        window, account, user = _principal_window(uow, actor, window_id)
        notice = _notice_awaiting_decision(uow, window)
        if seen is not None and seen != notice_fingerprint(window):
            raise Conflict(
                "The window changed after you opened this page; review it again before approving."
            )
        publish_at = max(window.notice_publish_at or now, now)
        uow.posts.approve(
            notice.id,
            state=transition(notice.state, PostState.SCHEDULED),
            approved_by=user.id,
            approved_at=now,
            publish_at=publish_at,
        )
        window = uow.windows.approve_notice(window.id, approved_by=user.id, approved_at=now)
        uow.ledger.append(
            tag=LedgerTag.NOTICE_APPROVED,
            actor=actor.ref,
            subject=f"post:{notice.public_id}",
            data={
                "window_id": window.id,
                "account_id": account.id,
                "approver": user_summary(user),
                "text": notice.final_text,
                "publish_at": publish_at.isoformat(),
                "policy": _policy_record(window.policy),
            },
            occurred_at=now,
        )
        uow.commit()
    return window


def reject_notice(ctx: ServiceContext, actor: Actor, window_id: int, comment: str) -> Window:
    """The principal rejects the window's notice with a comment for its managers.

    The notice stays unpublished (so no delegated post goes out in the window) and leaves the
    principal's approvals until the window is edited, which sends it back for approval.
    """
    comment = _check_comment(comment, required=True)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        window, account, user = _principal_window(uow, actor, window_id)
        notice = _notice_awaiting_decision(uow, window)
        if window.notice_rejected_at is not None:
            raise Conflict("This window's notice is already rejected; it waits for an edit.")
        uow.posts.set_reason(notice.id, f"rejected by {user.name}: {comment}")
        window = uow.windows.reject_notice(
            window.id, rejected_by=user.id, rejected_at=now, comment=comment
        )
        uow.ledger.append(
            tag=LedgerTag.NOTICE_REJECTED,
            actor=actor.ref,
            subject=f"post:{notice.public_id}",
            data={
                "window_id": window.id,
                "account_id": account.id,
                "approver": user_summary(user),
                "comment": comment,
                "text": notice.final_text,
            },
            occurred_at=now,
        )
        uow.commit()
    return window


@dataclass(frozen=True)
class WindowEdit:
    """What an edit did: the window as now in force, and what waits for the principal."""

    window: Window
    #: The fields (policy, name, notice time) that took effect.
    applied: tuple[str, ...]
    #: The pending proposal holding the changes that need the principal, if any.
    proposal: WindowProposal | None = None

    @property
    def changed(self) -> bool:
        """Tell whether anything was applied or proposed."""
        return bool(self.applied) or self.proposal is not None


def _send_queued_posts_to_approval(
    uow: UnitOfWork, actor: Actor, window: Window, now: datetime
) -> list[str]:
    """Approval was turned on: queued delegated posts nobody approved wait for the principal."""
    queued = uow.posts.search(
        account_ids=None,
        window_id=window.id,
        states=(PostState.SCHEDULED, PostState.HELD),
        offset=0,
        limit=1_000_000,
    )
    sent = []
    for post in queued:
        if post.kind is not PostKind.REGULAR or not post.is_delegated:
            continue
        if post.approved_by is not None:
            continue
        if delegation.withdrawn_hold(post) is not None:
            # Its grant was withdrawn: only a manager's release, after a re-check, moves it.
            continue
        reason = f"{AWAITING_APPROVAL} (its window now requires approval)"
        uow.posts.set_state(post.id, transition(post.state, PostState.PENDING_APPROVAL), reason)
        uow.ledger.append(
            tag=LedgerTag.POST_SENT_FOR_APPROVAL,
            actor=actor.ref,
            subject=f"post:{post.public_id}",
            data={"window_id": window.id, "was": post.state.value, "reason": reason},
            occurred_at=now,
        )
        sent.append(post.public_id)
    return sent


def _store_policy(
    uow: UnitOfWork,
    actor: Actor,
    window: Window,
    policy: WindowPolicy,
    now: datetime,
    *,
    name: str | None = None,
    notice_publish_at: datetime | None = None,
    clear_notice_rejection: bool = False,
) -> tuple[Window, list[str]]:
    """Write a policy into the windows row (what the worker reads) with its consequences;
    the name and notice time stay as they are unless given."""
    approval_turned_on = policy.requires_approval and not window.policy.requires_approval
    updated = uow.windows.set_policy(
        window.id,
        name=window.name if name is None else name,
        policy=policy,
        notice_publish_at=window.notice_publish_at
        if notice_publish_at is None
        else notice_publish_at,
        clear_notice_rejection=clear_notice_rejection,
    )
    sent = _send_queued_posts_to_approval(uow, actor, updated, now) if approval_turned_on else []
    return updated, sent


def _period_problem(
    uow: UnitOfWork, window: Window, policy: WindowPolicy, now: datetime
) -> str | None:
    old = window.policy
    if policy.starts_at != old.starts_at and old.starts_at <= now:
        return "The window has started; its start can no longer move."
    if policy.ends_at != old.ends_at and policy.ends_at < now:
        return "The end cannot be in the past."
    if uow.windows.overlaps(
        window.account_id, policy.starts_at, policy.ends_at, exclude_window_id=window.id
    ):
        return _overlap_message(uow, window.account_id, policy.starts_at, policy.ends_at, window.id)
    return None


def _overlap_message(
    uow: UnitOfWork, account_id: int, starts_at: datetime, ends_at: datetime, exclude: int | None
) -> str:
    """Say which window the period overlaps (read only on this error path)."""
    other = next(
        (
            w
            for w in uow.windows.list_for_account(account_id)
            if w.id != exclude and w.policy.starts_at < ends_at and w.policy.ends_at > starts_at
        ),
        None,
    )
    if other is None:
        return "This window overlaps another window of the same account."
    return (
        f"This window overlaps “{other.name}” ({utc_text(other.policy.starts_at)} – "
        f"{utc_text(other.policy.ends_at)}) on the same account; change the times or edit "
        "that window."
    )


def utc_text(at: datetime) -> str:
    """A time as the staff pages show it: UTC, to the minute."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def update_window(
    ctx: ServiceContext, actor: Actor, window_id: int, spec: WindowSpec
) -> WindowEdit:
    """Change a window's name, period, notice time or policy.

    Before the principal approves the notice, every change applies (the approval covers the
    policy as it then stands). After it, the principal's own changes apply, and so do changes
    that only strengthen the disclosure; those that weaken or replace part of it become one
    pending proposal (replacing an earlier pending one), and the approved policy stays in force.
    A mixed edit applies its strengthening part at once; when that part alone would not make a
    valid window, the whole policy change is proposed. The name and the notice time are not
    part of the disclosure and apply at once.

    The account never changes; a window that has started keeps its start and one that has
    ended is part of the record. The notice text changes only while the notice awaits
    approval, and its time only until it goes out. The ledger records each change.
    """
    errors = _validate(spec)
    if errors:
        raise ValidationFailed("The window is not valid: " + ", ".join(errors) + ".", errors)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        window = _get_window(uow, window_id)
        account = uow.accounts.get(window.account_id)
        assert account is not None
        user = require_user(actor)
        if not may_oversee(user, account):
            raise NotFound(f"No window {window_id}.")
        user = require_manager(actor, account)
        old = window.policy
        if spec.account_id != window.account_id:
            raise ValidationFailed(
                "A window's account cannot change; create a window on the other account.",
                {"account_id": "cannot change"},
            )
        if spec.kind is not old.kind:
            raise ValidationFailed(
                "A window's kind cannot change (an away notice promises nobody else posts); "
                "create another window.",
                {"kind": "cannot change"},
            )
        if old.ends_at <= now:
            raise Conflict("This window has ended; its policy stays on record as it was.")
        if spec.starts_at != old.starts_at and old.starts_at <= now:
            raise ValidationFailed(
                "The window has started; its start can no longer move.",
                {"starts_at": "cannot move: the window has started"},
            )
        if spec.ends_at != old.ends_at and spec.ends_at < now:
            raise ValidationFailed(
                "The end cannot be in the past; to end the window now, set its end to now.",
                {"ends_at": "cannot be in the past"},
            )
        if spec.notice_text != old.notice_text and window.notice_approved_at is not None:
            raise Conflict(
                "The notice is already approved; its text can no longer change. "
                "Create a new window for a different notice."
            )
        _check_texts_fit(ctx, account, spec)
        if uow.windows.overlaps(
            account.id, spec.starts_at, spec.ends_at, exclude_window_id=window.id
        ):
            raise Conflict(
                _overlap_message(uow, account.id, spec.starts_at, spec.ends_at, window.id)
            )
        notice = uow.posts.get(window.notice_post_id) if window.notice_post_id else None
        notice_movable = notice is not None and notice.state in (
            PostState.PENDING_APPROVAL,
            PostState.SCHEDULED,
        )

        comparison = compare_policies(old, spec.policy())
        consent_needed = (
            comparison.needs_consent
            and window.notice_approved_at is not None
            and not user.is_principal_of(account)
        )
        applied_changes: tuple[FieldChange, ...] = comparison.changes
        proposed: tuple[FieldChange, ...] = ()
        if consent_needed:
            applied_changes, proposed = comparison.strengthening, comparison.needing_consent
            try:
                partial = with_fields(old, applied_changes)
            except ValueError:
                partial = None
            if partial is None or _period_problem(uow, window, partial, now) is not None:
                # The stronger part alone is no valid window: nothing applies without consent.
                applied_changes, proposed = (), comparison.changes
        in_force = with_fields(old, applied_changes)
        # Not given: the lead before the start that will be in force (a proposed start has not
        # moved the window yet).
        notice_time = spec.notice_publish_at or in_force.starts_at - ctx.notice_lead
        if notice_time != window.notice_publish_at and not notice_movable:
            if spec.notice_publish_at is not None:
                raise ValidationFailed(
                    "The notice is already out; its time can no longer change.",
                    {"notice_publish_at": "cannot move: the notice is already out"},
                )
            notice_time = window.notice_publish_at or notice_time
        if notice_time > in_force.ends_at:
            raise ValidationFailed(
                "The notice time is after the end of the window in force "
                f"({in_force.ends_at.isoformat()}); the later end still waits for the "
                "principal.",
                {"notice_publish_at": "must not be after the end in force"},
            )

        name = spec.name.strip()
        applied = _change_records(applied_changes)
        if name != window.name:
            applied["name"] = {"old": window.name, "new": name}
        if notice_time != window.notice_publish_at:
            applied["notice_publish_at"] = {
                "old": _iso(window.notice_publish_at),
                "new": notice_time.isoformat(),
            }
        if not applied and not proposed:
            return WindowEdit(window, ())

        sent: list[str] = []
        resubmitted = False
        if applied:
            # An edit that answers the principal's rejection sends the notice back for approval.
            resubmitted = window.notice_rejected_at is not None
            window, sent = _store_policy(
                uow,
                actor,
                window,
                in_force,
                now,
                name=name,
                notice_publish_at=notice_time,
                clear_notice_rejection=resubmitted,
            )
            if notice is not None and notice_movable:
                publish_at = (
                    max(notice_time, now)
                    if notice.state is PostState.SCHEDULED
                    else notice.publish_at
                )
                reason = AWAITING_APPROVAL if resubmitted else notice.state_reason
                notice_text = expand(in_force.notice_text, disclosure_url(ctx, account))
                if (notice_text, publish_at, reason) != (
                    notice.final_text,
                    notice.publish_at,
                    notice.state_reason,
                ):
                    uow.posts.revise_notice(
                        notice.id, text=notice_text, publish_at=publish_at, reason=reason
                    )
            entry = uow.ledger.append(
                tag=LedgerTag.WINDOW_UPDATED,
                actor=actor.ref,
                subject=f"window:{window.id}",
                data={
                    "account_id": account.id,
                    "name": window.name,
                    "changes": {k: {"old": v["old"], "new": v["new"]} for k, v in applied.items()},
                    "notice_post": notice.public_id if notice else None,
                    "notice_resubmitted": resubmitted,
                    "sent_for_approval": sent,
                    "edited_by": user_summary(user),
                },
                occurred_at=now,
            )
            if resubmitted:
                notifications.record_notice_awaits_approval(ctx, uow, entry, account, window)
            for public_id in sent:  # approval turned on: queued posts now wait for it
                waiting = uow.posts.by_public_id(public_id)
                if waiting is not None:
                    key = f"{entry.seq}:post:{public_id}"
                    notifications.record_post_awaits_approval(ctx, uow, key, waiting)
        proposal = None
        if proposed:
            proposal = _propose(ctx, uow, actor, user, window, proposed, now)
        uow.commit()
    return WindowEdit(window, tuple(applied), proposal)


def _propose(
    ctx: ServiceContext,
    uow: UnitOfWork,
    actor: Actor,
    user: User,
    window: Window,
    changes: tuple[FieldChange, ...],
    now: datetime,
) -> WindowProposal:
    superseded = [
        p for p in uow.windows.proposals_of(window.id) if p.status is ProposalStatus.PENDING
    ]
    for earlier in superseded:
        uow.windows.decide_proposal(
            earlier.id,
            status=ProposalStatus.SUPERSEDED,
            decided_by=None,
            decided_at=now,
            comment=None,
        )
    records = _change_records(changes)
    proposal = uow.windows.add_proposal(
        window_id=window.id, proposed_by=user.id, proposed_at=now, changes=records
    )
    entry = uow.ledger.append(
        tag=LedgerTag.WINDOW_CHANGE_PROPOSED,
        actor=actor.ref,
        subject=f"window:{window.id}",
        data={
            "account_id": window.account_id,
            "proposal": proposal.id,
            "changes": records,
            "proposed_by": user_summary(user),
            "supersedes": [p.id for p in superseded],
        },
        occurred_at=now,
    )
    notifications.record_policy_change_proposed(ctx, uow, entry, window)
    return proposal


def _pending_proposal(
    uow: UnitOfWork, actor: Actor, proposal_id: int
) -> tuple[WindowProposal, Window, Account, User]:
    proposal = uow.windows.get_proposal(proposal_id)
    if proposal is None:
        raise NotFound(f"No proposal {proposal_id}.")
    try:
        window, account, user = _principal_window(uow, actor, proposal.window_id)
    except NotFound:
        raise NotFound(f"No proposal {proposal_id}.") from None
    if proposal.status is not ProposalStatus.PENDING:
        raise Conflict(f"This proposal is already {proposal.status}.")
    return proposal, window, account, user


def approve_proposal(
    ctx: ServiceContext, actor: Actor, proposal_id: int, comment: str = ""
) -> Window:
    """The principal approves a proposed change: it now applies to the window."""
    comment = _check_comment(comment, required=False)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        proposal, window, account, user = _pending_proposal(uow, actor, proposal_id)
        if window.policy.ends_at <= now:
            raise Conflict("This window has ended; its policy stays on record as it was.")
        values: dict[str, Any] = {
            name: _typed_value(name, change["new"]) for name, change in proposal.changes.items()
        }
        try:
            policy = replace(window.policy, **values)
        except ValueError as exc:
            raise Conflict(
                f"This change no longer makes a valid window ({exc}); reject it instead."
            ) from None
        problem = _period_problem(uow, window, policy, now)
        if problem is None and (window.notice_publish_at or now) > policy.ends_at:
            problem = "The window would end before its notice goes out."
        if problem is not None:
            raise Conflict(f"{problem} Reject this proposal instead.")
        changes = _change_records(compare_policies(window.policy, policy).changes)
        window, sent = _store_policy(uow, actor, window, policy, now)
        uow.windows.decide_proposal(
            proposal.id,
            status=ProposalStatus.APPROVED,
            decided_by=user.id,
            decided_at=now,
            comment=comment or None,
        )
        uow.ledger.append(
            tag=LedgerTag.WINDOW_CHANGE_APPROVED,
            actor=actor.ref,
            subject=f"window:{window.id}",
            data={
                "account_id": account.id,
                "proposal": proposal.id,
                "changes": changes,
                "approver": user_summary(user),
                "comment": comment,
                "sent_for_approval": sent,
            },
            occurred_at=now,
        )
        uow.commit()
    return window


def reject_proposal(
    ctx: ServiceContext, actor: Actor, proposal_id: int, comment: str = ""
) -> WindowProposal:
    """The principal rejects a proposed change; the approved policy stays, the comment is shown
    to the window's managers."""
    comment = _check_comment(comment, required=False)
    now = ctx.clock.now()
    with ctx.uow() as uow:
        proposal, window, account, user = _pending_proposal(uow, actor, proposal_id)
        proposal = uow.windows.decide_proposal(
            proposal.id,
            status=ProposalStatus.REJECTED,
            decided_by=user.id,
            decided_at=now,
            comment=comment or None,
        )
        uow.ledger.append(
            tag=LedgerTag.WINDOW_CHANGE_REJECTED,
            actor=actor.ref,
            subject=f"window:{window.id}",
            data={
                "account_id": account.id,
                "proposal": proposal.id,
                "changes": proposal.changes,
                "approver": user_summary(user),
                "comment": comment,
            },
            occurred_at=now,
        )
        uow.commit()
    return proposal


@dataclass(frozen=True)
class ChangeLine:
    """One proposed field change in words."""

    field: str
    label: str
    old: str
    new: str
    #: weakens | replaces | strengthens
    effect: str


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value.replace("_", " ") if value in _ENUM_WORDS else value
        if at.tzinfo is not None:
            return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return value
    return str(value)


_ENUM_WORDS = {m.value for enum in _ENUM_FIELDS.values() for m in enum}


def change_lines(proposal: WindowProposal) -> list[ChangeLine]:
    """Return a proposal's changes in words, in the order of the policy's fields."""
    return [
        ChangeLine(
            field=name,
            label=POLICY_LABELS.get(name, name),
            old=_shown(proposal.changes[name]["old"]),
            new=_shown(proposal.changes[name]["new"]),
            effect=str(proposal.changes[name].get("effect", Effect.WEAKENS.value)),
        )
        for name in POLICY_LABELS
        if name in proposal.changes
    ]


@dataclass(frozen=True)
class ProposalView:
    """A pending proposal as the principal reviews it."""

    proposal: WindowProposal
    window: Window
    account: Account
    proposer: User | None
    lines: list[ChangeLine]


def proposals_for(ctx: ServiceContext, actor: Actor) -> list[ProposalView]:
    """Return the pending policy changes on the principal's windows, oldest first."""
    user = require_user(actor)
    if user.principal_id is None:
        return []
    with ctx.uow(read_only=True) as uow:
        own = {a.id: a for a in uow.accounts.list() if user.is_principal_of(a)}
        views = []
        for proposal in uow.windows.pending_proposals(list(own)):
            window = _get_window(uow, proposal.window_id)
            views.append(
                ProposalView(
                    proposal=proposal,
                    window=window,
                    account=own[window.account_id],
                    proposer=uow.users.get(proposal.proposed_by),
                    lines=change_lines(proposal),
                )
            )
    return views


@dataclass(frozen=True)
class WindowView:
    """A window with its notice post and what the reader may do with it."""

    window: Window
    notice: Post | None
    notice_approver: User | None
    ended: bool
    started: bool
    may_edit: bool
    #: Changes waiting for the principal (the policy shown is the one in force).
    pending: WindowProposal | None = None
    pending_lines: tuple[ChangeLine, ...] = ()
    proposer: User | None = None
    #: The principal's latest decision on a proposal, when it was a rejection.
    rejected: WindowProposal | None = None
    rejected_lines: tuple[ChangeLine, ...] = ()
    notice_rejecter: User | None = None
    #: The reader's weakening edits become proposals (notice approved, reader not the principal).
    edits_need_consent: bool = False


@dataclass(frozen=True)
class AccountWindows:
    """One account on the windows page: its windows (latest first) and its writers."""

    account: Account
    principal: Principal | None
    windows: list[WindowView]
    writers: list[User]
    #: Active staff who could be assigned (not auditors, not already assigned).
    assignable: list[User]
    may_manage: bool


def _window_view(
    uow: UnitOfWork, window: Window, user: User, account: Account, now: datetime
) -> WindowView:
    notice = uow.posts.get(window.notice_post_id) if window.notice_post_id else None
    approver = uow.users.get(window.notice_approved_by) if window.notice_approved_by else None
    ended = window.policy.ends_at <= now
    proposals = uow.windows.proposals_of(window.id)
    pending = next((p for p in proposals if p.status is ProposalStatus.PENDING), None)
    decided = [
        p for p in proposals if p.status in (ProposalStatus.APPROVED, ProposalStatus.REJECTED)
    ]
    rejected = decided[0] if decided and decided[0].status is ProposalStatus.REJECTED else None
    return WindowView(
        window=window,
        notice=notice,
        notice_approver=approver,
        ended=ended,
        started=window.policy.starts_at <= now,
        may_edit=may_manage(user, account) and not ended,
        pending=pending,
        pending_lines=tuple(change_lines(pending)) if pending else (),
        proposer=uow.users.get(pending.proposed_by) if pending else None,
        rejected=rejected,
        rejected_lines=tuple(change_lines(rejected)) if rejected else (),
        notice_rejecter=uow.users.get(window.notice_rejected_by)
        if window.notice_rejected_by
        else None,
        edits_need_consent=window.notice_approved_at is not None
        and not user.is_principal_of(account),
    )


def windows_overview(ctx: ServiceContext, actor: Actor) -> list[AccountWindows]:
    """Return every account the reader oversees with its windows, notices and writers."""
    user = require_user(actor)
    now = ctx.clock.now()
    with ctx.uow(read_only=True) as uow:
        accounts = [a for a in uow.accounts.list() if may_oversee(user, a)]
        staff = uow.users.list()
        windows = uow.windows.list_for_accounts([a.id for a in accounts]) if accounts else []
        found = []
        for account in accounts:
            assigned = set(uow.assignments.users_of(account.id))
            found.append(
                AccountWindows(
                    account=account,
                    principal=uow.principals.get(account.principal_id),
                    windows=[
                        _window_view(uow, w, user, account, now)
                        for w in windows
                        if w.account_id == account.id
                    ],
                    writers=[u for u in staff if u.id in assigned],
                    assignable=[
                        u
                        for u in staff
                        if u.id not in assigned
                        and u.is_active
                        and u.role is not Role.AUDITOR
                        and not u.is_principal_of(account)
                    ],
                    may_manage=may_manage(user, account),
                )
            )
    return found


def manageable_accounts(ctx: ServiceContext, actor: Actor) -> list[Account]:
    """Return the accounts whose windows the reader may create and edit."""
    user = require_user(actor)
    with ctx.uow(read_only=True) as uow:
        return [a for a in uow.accounts.list() if may_manage(user, a)]


def window_for_editing(ctx: ServiceContext, actor: Actor, window_id: int) -> WindowView:
    """Return a window its reader may edit; unknown or unseen windows are NotFound."""
    user = require_user(actor)
    with ctx.uow(read_only=True) as uow:
        window = _get_window(uow, window_id)
        account = uow.accounts.get(window.account_id)
        assert account is not None
        if not may_oversee(user, account):
            raise NotFound(f"No window {window_id}.")
        require_manager(actor, account)
        view = _window_view(uow, window, user, account, ctx.clock.now())
    if view.ended:
        raise Conflict("This window has ended; its policy stays on record as it was.")
    return view
