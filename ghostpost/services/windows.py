"""Use cases for delegation windows and their notices."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import NewPost, Source, Window
from ghostpost.domain.policy import (
    DEFAULT_REMINDER_EVERY,
    DEFAULT_TAG,
    MIN_REMINDER_EVERY,
    PostKind,
    ReminderMode,
    TagMode,
    TagPosition,
    WindowPolicy,
)
from ghostpost.domain.states import PostState, transition
from ghostpost.services.authz import require_manager, require_principal
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Conflict, NotFound, ValidationFailed, is_encodable
from ghostpost.services.ports import UnitOfWork

_TAG = re.compile(r"^#\w{1,100}$")
MAX_REMINDER_EVERY = 1000


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
        )


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
    if not spec.notice_text.strip():
        errors["notice_text"] = "required"
    if not spec.reminder_text.strip():
        errors["reminder_text"] = "required"
    if not MIN_REMINDER_EVERY <= spec.reminder_every <= MAX_REMINDER_EVERY:
        errors["reminder_every"] = f"must be between {MIN_REMINDER_EVERY} and {MAX_REMINDER_EVERY}"
    for name in ("name", "notice_text", "reminder_text", "tag"):
        if not is_encodable(getattr(spec, name)):
            errors[name] = "contains invalid Unicode (a lone surrogate)"
    if spec.tag_mode is not TagMode.OFF and not _TAG.match(spec.tag):
        errors["tag"] = "must be one hashtag such as #team"
    return errors


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
        budget = ctx.budget_for(account)
        for field_name, text in (
            ("notice_text", spec.notice_text),
            ("reminder_text", spec.reminder_text),
        ):
            measured = budget.measure(text)
            over = measured.overflow()
            if over is not None:
                raise ValidationFailed(
                    f"The {field_name.replace('_', ' ')} is {over.used} {over.unit}, over the "
                    f"limit of {over.limit}.",
                    {field_name: "too long"},
                )
        if uow.windows.overlaps(account.id, spec.starts_at, spec.ends_at):
            raise Conflict("This window overlaps another window of the same account.")
        window = uow.windows.add(
            account_id=account.id, name=spec.name.strip(), policy=spec.policy(), created_by=user.id
        )
        notice = uow.posts.add(
            NewPost(
                public_id=str(uuid.uuid4()),
                account_id=account.id,
                kind=PostKind.NOTICE,
                state=PostState.PENDING_APPROVAL,
                author_id=user.id,
                submitter=actor.ref,
                source=Source.SYSTEM,
                submitted_text=spec.notice_text,
                final_text=spec.notice_text,
                idempotency_key=f"gp-{uuid.uuid4()}",
                created_at=now,
                window_id=window.id,
                state_reason="awaiting the principal's approval",
                decisions={"delegated": False, "kind": "notice"},
            )
        )
        window = uow.windows.update(window.id, notice_post_id=notice.id)
        uow.ledger.append(
            tag=LedgerTag.WINDOW_CREATED,
            actor=actor.ref,
            subject=f"window:{window.id}",
            data={
                "account_id": account.id,
                "name": window.name,
                "policy": _policy_record(window.policy),
                "notice_post": notice.public_id,
                "drafted_by": user_summary(user),
            },
            occurred_at=now,
        )
        uow.commit()
    return window


def _policy_record(policy: WindowPolicy) -> dict[str, object]:
    return {
        "starts_at": policy.starts_at.isoformat(),
        "ends_at": policy.ends_at.isoformat(),
        "notice_text": policy.notice_text,
        "reminder_text": policy.reminder_text,
        "reminder_every": policy.reminder_every,
        "reminder_mode": policy.reminder_mode.value,
        "tag": policy.tag,
        "tag_mode": policy.tag_mode.value,
        "tag_position": policy.tag_position.value,
        "requires_approval": policy.requires_approval,
    }


def _get_window(uow: UnitOfWork, window_id: int) -> Window:
    window = uow.windows.get(window_id)
    if window is None:
        raise NotFound(f"No window {window_id}.")
    return window


def approve_notice(ctx: ServiceContext, actor: Actor, window_id: int) -> Window:
    """The principal approves the window's notice; it is then scheduled to go out at once."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        window = _get_window(uow, window_id)
        account = uow.accounts.get(window.account_id)
        assert account is not None
        user = require_principal(actor, account)
        if window.notice_approved_at is not None or window.notice_post_id is None:
            raise Conflict("This window's notice is already approved.")
        notice = uow.posts.get(window.notice_post_id)
        assert notice is not None
        uow.posts.update(
            notice.id,
            state=transition(notice.state, PostState.SCHEDULED),
            state_reason=None,
            publish_at=now,
            approved_by=user.id,
            approved_at=now,
        )
        window = uow.windows.update(window.id, notice_approved_at=now, notice_approved_by=user.id)
        uow.ledger.append(
            tag=LedgerTag.NOTICE_APPROVED,
            actor=actor.ref,
            subject=f"post:{notice.public_id}",
            data={
                "window_id": window.id,
                "account_id": account.id,
                "approver": user_summary(user),
                "text": notice.final_text,
            },
            occurred_at=now,
        )
        uow.commit()
    return window
