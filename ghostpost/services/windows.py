"""Use cases for delegation windows and their notices."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, NewPost, Post, Principal, Role, Source, User, Window
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
from ghostpost.services.authz import (
    may_manage,
    may_oversee,
    require_manager,
    require_principal,
    require_user,
)
from ghostpost.services.context import Actor, ServiceContext, user_summary
from ghostpost.services.errors import Conflict, NotFound, ValidationFailed, text_problem
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
        problem = text_problem(getattr(spec, name))
        if problem is not None:
            errors[name] = problem
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
        _check_texts_fit(ctx, account, spec)
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


def _check_texts_fit(ctx: ServiceContext, account: Account, spec: WindowSpec) -> None:
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
                {field_name: f"too long: {over.used} {over.unit}, the limit is {over.limit}"},
            )


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
        if actor.user is not None and not may_oversee(actor.user, account):
            # Another principal's window must look exactly like one that does not exist.
            raise NotFound(f"No window {window_id}.")
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


def update_window(ctx: ServiceContext, actor: Actor, window_id: int, spec: WindowSpec) -> Window:
    """Change a window's name, period or policy; later publish decisions follow the new policy.

    The account never changes; a window that has started keeps its start and one that has
    ended is part of the record. The notice text changes only while the notice awaits
    approval (the principal approves the words they see). The ledger records each change.
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
        notice_changed = spec.notice_text != old.notice_text
        if notice_changed and window.notice_approved_at is not None:
            raise Conflict(
                "The notice is already approved; its text can no longer change. "
                "Create a new window for a different notice."
            )
        _check_texts_fit(ctx, account, spec)
        if uow.windows.overlaps(
            account.id, spec.starts_at, spec.ends_at, exclude_window_id=window.id
        ):
            raise Conflict("This window overlaps another window of the same account.")
        before = {"name": window.name, **_policy_record(old)}
        after = {"name": spec.name.strip(), **_policy_record(spec.policy())}
        changes = {
            key: {"old": before[key], "new": value}
            for key, value in after.items()
            if before[key] != value
        }
        if not changes:
            return window
        policy = spec.policy()
        window = uow.windows.update(
            window.id,
            name=spec.name.strip(),
            starts_at=policy.starts_at,
            ends_at=policy.ends_at,
            notice_text=policy.notice_text,
            reminder_text=policy.reminder_text,
            reminder_every=policy.reminder_every,
            reminder_mode=policy.reminder_mode,
            tag=policy.tag,
            tag_mode=policy.tag_mode,
            tag_position=policy.tag_position,
            requires_approval=policy.requires_approval,
        )
        notice = uow.posts.get(window.notice_post_id) if window.notice_post_id else None
        if notice_changed and notice is not None:
            uow.posts.update(
                notice.id, submitted_text=spec.notice_text, final_text=spec.notice_text
            )
        uow.ledger.append(
            tag=LedgerTag.WINDOW_UPDATED,
            actor=actor.ref,
            subject=f"window:{window.id}",
            data={
                "account_id": account.id,
                "name": window.name,
                "changes": changes,
                "notice_post": notice.public_id if notice else None,
                "edited_by": user_summary(user),
            },
            occurred_at=now,
        )
        uow.commit()
    return window


@dataclass(frozen=True)
class WindowView:
    """A window with its notice post and what the reader may do with it."""

    window: Window
    notice: Post | None
    notice_approver: User | None
    ended: bool
    started: bool
    may_edit: bool


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
    return WindowView(
        window=window,
        notice=notice,
        notice_approver=approver,
        ended=ended,
        started=window.policy.starts_at <= now,
        may_edit=may_manage(user, account) and not ended,
    )


def windows_overview(ctx: ServiceContext, actor: Actor) -> list[AccountWindows]:
    """Return every account the reader oversees with its windows, notices and writers."""
    user = require_user(actor)
    now = ctx.clock.now()
    with ctx.uow() as uow:
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
    with ctx.uow() as uow:
        return [a for a in uow.accounts.list() if may_manage(user, a)]


def window_for_editing(ctx: ServiceContext, actor: Actor, window_id: int) -> WindowView:
    """Return a window its reader may edit; unknown or unseen windows are NotFound."""
    user = require_user(actor)
    with ctx.uow() as uow:
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
