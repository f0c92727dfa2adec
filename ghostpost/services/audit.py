"""Reading the ledger: filtered in the database and paginated by sequence number, newest first.

Admins, managers and auditors read every entry. A principal who holds none of those roles reads
the entries about their own accounts (the account, its windows and its posts). Others read none.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from ghostpost.domain.ledger import LedgerEntry, LedgerTag
from ghostpost.domain.model import Account, User, Window
from ghostpost.services.authz import OVERSEEING_ROLES, may_oversee, require_user
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Forbidden, NotFound, ValidationFailed, text_problem
from ghostpost.services.ports import UnitOfWork

LEDGER_PAGE_SIZE = 50
MAX_SUBJECT_LENGTH = 100


@dataclass(frozen=True)
class LedgerFilters:
    """What the ledger viewer filters on; every field is optional and they all apply together."""

    account_id: int | None = None
    window_id: int | None = None
    author_id: int | None = None
    tag: str | None = None
    subject: str | None = None
    #: First and last day (UTC, both included).
    date_from: date | None = None
    date_to: date | None = None

    def is_empty(self) -> bool:
        """Tell whether no filter is set."""
        return all(value is None for value in vars(self).values())


@dataclass(frozen=True)
class LedgerChoices:
    """What the reader may filter on, and the people the entries name."""

    accounts: list[Account]
    windows: list[Window]
    authors: list[User]
    #: "user:<id>" -> user, to name the people in actors and data.
    users_by_ref: dict[str, User]
    #: None: every entry; else only entries about these accounts.
    scope: frozenset[int] | None


@dataclass(frozen=True)
class LedgerPage:
    """One page of entries, newest first, with the cursors to its neighbours."""

    entries: list[LedgerEntry]
    #: `after` cursor of the page of newer entries, None on the newest page.
    newer_cursor: int | None
    #: `before` cursor of the page of older entries, None on the oldest page.
    older_cursor: int | None
    choices: LedgerChoices


def _day_start(day: date) -> str:
    # The ledger's own time format (see db.repositories.format_timestamp), so text order works.
    return f"{day.isoformat()}T00:00:00.000000Z"


def _check(filters: LedgerFilters) -> None:
    errors: dict[str, str] = {}
    if filters.tag is not None and filters.tag not in {t.value for t in LedgerTag}:
        errors["action"] = "unknown action"
    if filters.subject is not None and len(filters.subject) > MAX_SUBJECT_LENGTH:
        errors["subject"] = f"at most {MAX_SUBJECT_LENGTH} characters"
    elif filters.subject is not None and (problem := text_problem(filters.subject)) is not None:
        errors["subject"] = problem  # NUL cannot even be a PostgreSQL query parameter
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["date_to"] = "is before the start date"
    if errors:
        raise ValidationFailed("The filters are not valid: " + ", ".join(errors) + ".", errors)


def _choices(uow: UnitOfWork, user: User) -> LedgerChoices:
    visible = [a for a in uow.accounts.list() if may_oversee(user, a)]
    reads_all = user.role in OVERSEEING_ROLES
    if not reads_all and not visible:
        raise Forbidden("Only admins, managers, auditors and principals read the ledger.")
    ids = frozenset(a.id for a in visible)
    users = uow.users.list()
    if reads_all:
        authors = users
    else:
        assigned = {u for a in ids for u in uow.assignments.users_of(a)}
        authors = [u for u in users if u.id in assigned or u.id == user.id]
    return LedgerChoices(
        accounts=visible,
        windows=uow.windows.list_for_accounts(ids) if ids else [],
        authors=authors,
        users_by_ref={f"user:{u.id}": u for u in users},
        scope=None if reads_all else ids,
    )


def ledger_choices(ctx: ServiceContext, actor: Actor) -> LedgerChoices:
    """Return the accounts, windows and authors the reader may filter the ledger on."""
    user = require_user(actor)
    with ctx.uow() as uow:
        return _choices(uow, user)


def read_ledger(
    ctx: ServiceContext,
    actor: Actor,
    filters: LedgerFilters,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = LEDGER_PAGE_SIZE,
) -> LedgerPage:
    """Return one page of ledger entries matching the filters, newest first."""
    user = require_user(actor)
    _check(filters)
    with ctx.uow() as uow:
        choices = _choices(uow, user)
        scope: Collection[int] | None = choices.scope
        if filters.account_id is not None:
            if all(a.id != filters.account_id for a in choices.accounts):
                raise NotFound(f"No account {filters.account_id}.")
            scope = [filters.account_id]
        if filters.window_id is not None and all(
            w.id != filters.window_id for w in choices.windows
        ):
            raise NotFound(f"No window {filters.window_id}.")
        if filters.author_id is not None and all(
            u.id != filters.author_id for u in choices.authors
        ):
            raise NotFound(f"No author {filters.author_id}.")

        def search(
            *,
            limit: int,
            before_seq: int | None = None,
            after_seq: int | None = None,
            oldest_first: bool = False,
        ) -> list[LedgerEntry]:
            return uow.ledger.search(
                account_ids=scope,
                window_id=filters.window_id,
                author_id=filters.author_id,
                tag=filters.tag,
                subject=filters.subject,
                occurred_from=_day_start(filters.date_from) if filters.date_from else None,
                # The calendar's last day has no next day: up to it means no upper bound.
                occurred_before=_day_start(filters.date_to + timedelta(days=1))
                if filters.date_to and filters.date_to < date.max
                else None,
                before_seq=before_seq,
                after_seq=after_seq,
                oldest_first=oldest_first,
                limit=limit,
            )

        if after is not None:
            found = search(after_seq=after, oldest_first=True, limit=limit + 1)
            entries = list(reversed(found[:limit]))
            newer = entries[0].seq if len(found) > limit else None
            older = (
                entries[-1].seq if entries and search(before_seq=entries[-1].seq, limit=1) else None
            )
        else:
            found = search(before_seq=before, limit=limit + 1)
            entries = found[:limit]
            older = entries[-1].seq if len(found) > limit else None
            newer = (
                entries[0].seq
                if entries
                and before is not None
                and search(after_seq=entries[0].seq, oldest_first=True, limit=1)
                else None
            )
    return LedgerPage(entries=entries, newer_cursor=newer, older_cursor=older, choices=choices)
