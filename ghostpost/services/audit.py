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
from ghostpost.services.ports import ExportScope, UnitOfWork

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
    # The ledger's time format (db.repositories.ledger.format_timestamp), so text order works.
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
    with ctx.uow(read_only=True) as uow:
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
    with ctx.uow(read_only=True) as uow:
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


# --- posts against the ledger ("one source of truth for authorship") ---------------------------

#: The states a post can be in right after each kind of ledger entry about it. Tags missing here
#: (late result, notice rejected...) leave the state as it was.
STATE_AFTER: dict[str, frozenset[str]] = {
    #: A new time may fall in a window that needs the principal's approval.
    LedgerTag.POST_RESCHEDULED: frozenset({"scheduled", "pending_approval"}),
    LedgerTag.POST_APPROVED: frozenset({"scheduled"}),
    LedgerTag.POST_REJECTED: frozenset({"refused"}),
    LedgerTag.POST_CANCELLED: frozenset({"cancelled"}),
    LedgerTag.POST_HELD: frozenset({"held"}),
    LedgerTag.POST_WITHDRAWN: frozenset({"held"}),
    LedgerTag.POST_SENT_FOR_APPROVAL: frozenset({"pending_approval"}),
    LedgerTag.POST_RELEASED: frozenset({"scheduled", "pending_approval"}),
    LedgerTag.POST_REFUSED: frozenset({"refused"}),
    LedgerTag.POST_PUBLISHING: frozenset({"publishing"}),
    LedgerTag.POST_PUBLISHED: frozenset({"published"}),
    LedgerTag.POST_RETRY: frozenset({"scheduled"}),
    LedgerTag.POST_RETRY_REQUESTED: frozenset({"scheduled"}),
    LedgerTag.POST_FAILED: frozenset({"failed"}),
    LedgerTag.POST_REQUEUED: frozenset({"scheduled"}),
    LedgerTag.NOTICE_APPROVED: frozenset({"scheduled"}),
    LedgerTag.REMINDER_CREATED: frozenset({"scheduled"}),
}


#: The derived (unhashed) columns of a ledger entry, checked against its hashed subject.
_ENTRY_FIELDS = ("account_id", "post_id")


@dataclass(frozen=True)
class Mismatch:
    """One fact about a post on which the posts table and the ledger disagree."""

    post: str
    field: str
    table: object
    ledger: object
    #: The ledger entry that says otherwise (None: no entry at all).
    seq: int | None
    tag: str | None

    def line(self) -> str:
        """Return the mismatch as one line of `ghostpost audit check`."""
        if self.field in _ENTRY_FIELDS:
            return (
                f"entry {self.seq} {self.tag} about {self.post}: ledger_entries.{self.field}: "
                f"stored {self.table!r}, the subject says {self.ledger!r}"
            )
        where = f" (entry {self.seq} {self.tag})" if self.seq is not None else ""
        return (
            f"post {self.post}: {self.field}: table {self.table!r}, ledger {self.ledger!r}{where}"
        )


@dataclass(frozen=True)
class AgreementReport:
    """The result of comparing every post with the ledger."""

    posts: int
    entries: int
    mismatches: list[Mismatch]

    @property
    def ok(self) -> bool:
        """Tell whether the posts table and the ledger agree on everything checked."""
        return not self.mismatches


@dataclass
class _Said:
    """What the ledger says about one post: field -> every (value, seq, tag) stating it (the
    state: only the latest, as states change)."""

    facts: dict[str, list[tuple[object, int, str]]]
    seen: bool = False


def _writer_id(value: object) -> object:
    return value.get("id") if isinstance(value, dict) else None


def check_ledger_agreement(ctx: ServiceContext) -> AgreementReport:
    """Compare every post (author, submitter, source, submitted and published text, state,
    platform post id) with what the ledger's entries say about it, in one read-only snapshot.

    The ledger is the source of truth: a post whose row disagrees was changed behind the
    application's back (or the application has a bug); both are reported, one line per field.
    So is every entry whose derived account_id / post_id columns (the index the filtered
    exports and the ledger viewer use; not hashed) disagree with its subject: moved, it would
    drop out of its account's filtered views.
    """
    said: dict[str, _Said] = {}
    window_authors: dict[int, object] = {}

    def note(post: str, field_name: str, value: object, entry: LedgerEntry) -> None:
        facts = said.setdefault(post, _Said({})).facts
        if field_name == "state":
            facts[field_name] = [(value, entry.seq, entry.tag)]
        else:
            facts.setdefault(field_name, []).append((value, entry.seq, entry.tag))

    with ctx.uow(read_only=True) as uow:
        uow.exports.use_snapshot()
        size, _ = uow.ledger.head()
        for entry in uow.exports.entries(ExportScope(), size, 1000):
            data = entry.data
            subject = entry.subject
            if entry.tag == LedgerTag.WINDOW_CREATED and isinstance(data.get("notice_post"), str):
                notice = str(data["notice_post"])
                author = _writer_id(data.get("drafted_by"))
                window_authors[int(subject.split(":", 1)[1])] = author
                note(notice, "author_id", author, entry)
                note(notice, "submitter", entry.actor, entry)
                note(notice, "source", "system", entry)
                note(notice, "state", frozenset({"pending_approval"}), entry)
                continue
            if not subject.startswith("post:"):
                continue
            target = subject.split(":", 1)[1]
            if entry.tag == LedgerTag.POST_SUBMITTED:
                note(target, "author_id", _writer_id(data.get("writer")), entry)
                note(target, "submitter", data.get("submitter"), entry)
                note(target, "source", data.get("source"), entry)
                note(target, "submitted_text", data.get("submitted_text"), entry)
                note(target, "state", frozenset({str(data.get("state"))}), entry)
            elif entry.tag == LedgerTag.REMINDER_CREATED:
                window_id = data.get("window_id")
                if isinstance(window_id, int) and window_id in window_authors:
                    note(target, "author_id", window_authors[window_id], entry)
                note(target, "submitter", "system:worker", entry)
                note(target, "source", "system", entry)
                note(target, "submitted_text", data.get("text"), entry)
            elif entry.tag == LedgerTag.POST_PUBLISHED:
                if data.get("writer") is not None:
                    note(target, "author_id", _writer_id(data.get("writer")), entry)
                note(target, "submitter", data.get("submitter"), entry)
                note(target, "source", data.get("source"), entry)
                note(target, "final_text", data.get("final_text"), entry)
                note(target, "platform_post_id", data.get("platform_post_id"), entry)
            if entry.tag in STATE_AFTER:
                note(target, "state", STATE_AFTER[entry.tag], entry)
        mismatches: list[Mismatch] = []
        posts = 0
        for post in uow.exports.posts(ExportScope(), 1000):
            posts += 1
            found = said.get(post.public_id)
            if found is None or "author_id" not in found.facts:
                mismatches.append(
                    Mismatch(post.public_id, "ledger entry", "post exists", "none", None, None)
                )
                continue
            found.seen = True
            table: dict[str, object] = {
                "author_id": post.author_id,
                "submitter": post.submitter,
                "source": post.source.value,
                "submitted_text": post.submitted_text,
                "final_text": post.final_text,
                "platform_post_id": post.platform_post_id,
            }
            stated = [(n, *fact) for n, facts in found.facts.items() for fact in facts]
            for name, value, seq, tag in sorted(stated, key=lambda f: (f[2], f[0])):
                if name == "state":
                    assert isinstance(value, frozenset)
                    if post.state.value not in value:
                        shown = next(iter(value)) if len(value) == 1 else sorted(value)
                        mismatches.append(
                            Mismatch(post.public_id, "state", post.state.value, shown, seq, tag)
                        )
                elif table[name] != value:
                    mismatches.append(Mismatch(post.public_id, name, table[name], value, seq, tag))
        for public_id, found in said.items():
            if not found.seen and "author_id" in found.facts:
                _, seq, tag = found.facts["author_id"][0]
                mismatches.append(Mismatch(public_id, "row", "missing", "post exists", seq, tag))
        for misfiled in uow.exports.misfiled_entries(ExportScope(), size):
            stored = {"account_id": misfiled.stored_account_id, "post_id": misfiled.stored_post_id}
            said_by_subject = {"account_id": misfiled.account_id, "post_id": misfiled.post_id}
            for name in _ENTRY_FIELDS:
                if stored[name] != said_by_subject[name]:
                    mismatches.append(
                        Mismatch(
                            misfiled.subject,
                            name,
                            stored[name],
                            said_by_subject[name],
                            misfiled.seq,
                            misfiled.tag,
                        )
                    )
    return AgreementReport(posts=posts, entries=size, mismatches=mismatches)
