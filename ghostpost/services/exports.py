"""Audit exports, streamed in constant memory: the one service behind the CLI, the API and the web.

Two reports:

- **authorship**: one row per post (regular, notice, reminder) naming who wrote it, who handed
  it to ghostpost, who approved it and which disclosure it carried; CSV (RFC 4180, UTF-8, a
  header row, spreadsheet formulas neutralised) or JSON Lines (one object per post).
- **ledger**: the raw ledger as `ghostpost-ledger/v1` JSON Lines (ghostpost.audit.format): a
  header (with the public keys), the entries, the signed checkpoints. Only an export of the
  whole ledger (no filter, by a reader who sees every account) is `complete` and verifiable.

Both read one snapshot through a server-side cursor (ports.ExportReader), so memory stays flat
however many rows there are: only the directory (accounts, people, windows, API clients) is
held, never the posts or the entries. Filters: account, window, author (email) and a time range
[since, until) — a post's publishing time (its submission time while unpublished), an entry's
`occurred_at`. Readers: the CLI (everything), admins, managers and auditors (everything),
principals (their accounts), API clients (their accounts; a ledger export is then never
complete).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol

from ghostpost.audit import format as ledger_format
from ghostpost.domain.checkpoint import LedgerKey
from ghostpost.domain.coverage import Coverage
from ghostpost.domain.model import Account, ApiClient, User, Window
from ghostpost.domain.policy import PostKind
from ghostpost.services.authz import OVERSEEING_ROLES, is_system, may_oversee, require_user
from ghostpost.services.context import SYSTEM_WORKER, Actor, ServiceContext
from ghostpost.services.coverage import window_coverage
from ghostpost.services.errors import (
    Forbidden,
    NotFound,
    ServiceError,
    ValidationFailed,
    text_problem,
)
from ghostpost.services.ports import ExportScope, UnitOfWork

#: Rows fetched per database round trip (the server-side cursor's batch).
FETCH_ROWS = 1000
#: Rows serialised into one chunk of output (one write, one HTTP chunk).
CHUNK_ROWS = 500


class Report(StrEnum):
    """What an export holds."""

    AUTHORSHIP = "authorship"
    LEDGER = "ledger"


class ExportFormat(StrEnum):
    """How an export is written."""

    CSV = "csv"
    JSONL = "jsonl"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8; header=present",
    ExportFormat.JSONL: "application/x-ndjson; charset=utf-8",
}

#: The authorship report's columns, in order (CSV header row; the keys of each JSONL object).
AUTHORSHIP_COLUMNS: tuple[str, ...] = (
    "post_id",
    "kind",
    "state",
    "state_reason",
    "published_at",
    "submitted_at",
    "account_id",
    "platform",
    "handle",
    "platform_url",
    "final_text",
    "writer_name",
    "writer_email",
    "submitter",
    "submitter_name",
    "approver_name",
    "approver_email",
    "approved_at",
    "source",
    "delegated",
    "window_id",
    "window_name",
    "decision_stage",
    "tag",
    "tag_outcome",
    "tag_needs",
    "tag_has",
    "tag_unit",
    "reminder",
    "disclosure",
    # Appended (older spreadsheets keep their columns): the content warning as sent, which
    # readers see before the text, and who could see the post at all.
    "content_warning",
    "visibility",
    # Appended: a published post the principal took back stays published by its writer in
    # the report; these say when the platform confirmed it gone and who asked.
    "deleted_at",
    "deleted_by_name",
    "deleted_by_email",
    # Appended: the group of posts one compose made for several accounts (empty: alone).
    "group_id",
    # Appended: the post's images, "<count>: <sha256> <sha256> ..." (the stored bytes' hashes,
    # as the ledger names them); empty for a post without images.
    "images",
)

#: A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
#: (tab and carriage return too, per OWASP's CSV injection advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilters:
    """What the reader restricts an export to; every field is optional."""

    account_id: int | None = None
    window_id: int | None = None
    author_email: str | None = None
    #: Inclusive start of the time range (aware).
    since: datetime | None = None
    #: Exclusive end of the time range (aware).
    until: datetime | None = None

    def is_empty(self) -> bool:
        """Tell whether no filter is set."""
        return all(value is None for value in vars(self).values())


def parse_time(raw: str, *, end: bool = False, name: str = "since") -> datetime:
    """Read a time-range bound: `YYYY-MM-DD` (a UTC day) or an RFC 3339 date-time.

    A day as the start means its first instant; as the end (`end=True`) the whole day is
    included, so the bound is the next day's first instant. A date-time without an offset is
    taken as UTC. Raises ValidationFailed naming `name`.
    """
    text = raw.strip()
    try:
        if _DAY.match(text):
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        if len(text) > 40:
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        # Inside the try: 9999-12-31T23:59:59-12:00 is a valid text whose UTC instant lies
        # beyond the calendar (OverflowError), as 0001-01-01T00:00:00+01:00 lies before it.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            f"{name} is not a date (YYYY-MM-DD) or an RFC 3339 date-time within years 1-9999 "
            "(UTC).",
            {name: "not a date or date-time"},
        ) from None


# --- how many may run at once -------------------------------------------------------------------


class ExportLease(Protocol):
    """A running export's hold on its slots (ghostpost.export_slots.Lease)."""

    def renew(self) -> None:
        """Say the export is still sending (a lease not renewed expires)."""

    def release(self) -> None:
        """Give the slots back (idempotent)."""


class ExportSlots(Protocol):
    """Counters of the exports running now (ghostpost.export_slots): per process, or shared."""

    def acquire(self, limits: Sequence[tuple[str, int]]) -> ExportLease | None:
        """Take a slot in every (counter, cap), or none and return None if one is full."""


@dataclass(frozen=True)
class ExportLimits:
    """How many exports may stream at once: in total, and per reader (user or API client)."""

    total: int
    per_reader: int
    #: What a refused reader is told to wait (seconds).
    retry_after: int = 10


class ExportLimitReached(ServiceError):
    """Too many exports are streaming now (in total or for this reader); retry later."""

    code = "export_limit_reached"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def admit(export: Export, slots: ExportSlots, limits: ExportLimits) -> ExportLease:
    """Reserve the export's slots before anything is streamed (raises ExportLimitReached).

    Each download holds one database connection while it streams; capping them keeps the
    connection pool (sized as requests + `limits.total`, see ghostpost.db.engine) for everyone
    else. The caller releases the lease when the download ends, however it ends.
    """
    lease = slots.acquire(
        [("all", limits.total), (f"reader:{export.actor_ref}", limits.per_reader)]
    )
    if lease is None:
        raise ExportLimitReached(
            f"Too many exports are running (at most {limits.per_reader} per reader and "
            f"{limits.total} in all); retry in {limits.retry_after} seconds.",
            limits.retry_after,
        )
    return lease


# --- the export -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Directory:
    """The small tables the rows refer to, loaded once per export."""

    users: Mapping[int, User]
    accounts: Mapping[int, Account]
    windows: Mapping[int, Window]
    clients: Mapping[str, ApiClient]
    #: notice post id -> its window
    notice_windows: Mapping[int, Window]
    #: post id -> the content hashes of its images, in order (posts with images only)
    images: Mapping[int, tuple[str, ...]]


def _load_directory(uow: UnitOfWork) -> _Directory:
    accounts = {a.id: a for a in uow.accounts.list()}
    windows = {w.id: w for w in uow.windows.list_for_accounts(list(accounts))} if accounts else {}
    return _Directory(
        users={u.id: u for u in uow.users.list()},
        accounts=accounts,
        windows=windows,
        clients={c.client_id: c for c in uow.api_clients.list()},
        notice_windows={w.notice_post_id: w for w in windows.values() if w.notice_post_id},
        images=uow.media.image_hashes(),
    )


def _iso(at: datetime | str | None) -> str | None:
    """Format a time as RFC 3339 UTC ('Z', microseconds only when there are any); `at` is an
    aware datetime or naive UTC ISO 8601 text (how SQLite stores one: see `iso_from_text`)."""
    if at is None:
        return None
    if isinstance(at, str):
        return iso_from_text(at)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_from_text(text: str) -> str:
    """Return `_iso` of a time given as naive UTC ISO 8601 text.

    The stored form 'YYYY-MM-DD HH:MM:SS.ffffff' is rearranged as text (no datetime parsed and
    formatted per cell: about a sixth of an authorship export's CPU on SQLite); any other form is
    parsed.
    """
    if len(text) == 26 and text[10] == " " and text[19] == "." and text[13] == ":":
        if text.endswith("000000"):
            return f"{text[:10]}T{text[11:19]}Z"
        return f"{text[:10]}T{text[11:]}Z"
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ledger_time(at: datetime) -> str:
    """Format a time as the ledger does: RFC 3339 UTC, microseconds, 'Z'."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _person(user: User | None) -> str | None:
    return f"{user.name} <{user.email}>" if user else None


def _submitter_name(ref: str, directory: _Directory) -> str | None:
    kind, _, ident = ref.partition(":")
    if kind == "user" and ident.isdigit():
        return _person(directory.users.get(int(ident)))
    if kind == "client":
        client = directory.clients.get(ident)
        return f"API client {client.name}" if client else None
    if ref == SYSTEM_WORKER:
        return "ghostpost publishing worker"
    if kind == "system":
        return f"ghostpost ({ident})"
    return None


_REMINDER_WORDS = {
    "inline": "inline",
    "standalone": "standalone_before",
    "none": "none",
    "not_applicable": "not_applicable",
}


def _disclosure(
    kind: str,
    delegated: bool,
    stage: str | None,
    tag: str | None,
    outcome: str | None,
    needs: int | None,
    has: int | None,
    unit: str | None,
    reminder: str,
) -> str:
    """Say in words which disclosure the post carried (or will carry, while unpublished)."""
    if kind == PostKind.NOTICE:
        return "the window's notice"
    if kind == PostKind.REMINDER:
        return "a standalone reminder"
    if stage is None:
        return "no decision recorded"
    if not delegated:
        return "the principal's own post: no disclosure needed"
    name = tag or "the tag"
    if outcome == "applied":
        parts = [f"{name} added"]
    elif outcome == "already_present":
        parts = [f"{name} already in the text"]
    elif outcome == "skipped":
        parts = [f"{name} skipped: needs {needs}, has {has} {unit}"]
    elif outcome == "off":
        parts = ["tag off for the window"]
    else:
        parts = ["no tag (no window)"]
    if reminder == "inline":
        parts.append("reminder inline")
    elif reminder == "standalone_before":
        parts.append("standalone reminder just before")
    elif reminder == "none":
        parts.append("no reminder due")
    text = "; ".join(parts)
    return text if stage == "publication" else f"planned at submission: {text}"


#: An account or person not in the directory: every cell about it empty.
_NOBODY = (None, None)
#: The authorship cells whose text comes from the post row or its decisions (any text).
_ROW_TEXT_CELLS = tuple(
    AUTHORSHIP_COLUMNS.index(name)
    for name in (
        "post_id",
        "kind",
        "state",
        "state_reason",
        "platform_url",
        "final_text",
        "submitter",
        "source",
        "tag",
        "tag_outcome",
        "tag_unit",
        "disclosure",  # names the tag
        "content_warning",  # the writer's words
        "visibility",
        "group_id",  # ghostpost's hex, unless someone wrote the column by hand
        "images",
    )
)
_DELEGATED = AUTHORSHIP_COLUMNS.index("delegated")
_FORMULA_FIRST = "".join(FORMULA_STARTS)


def _images_cell(hashes: tuple[str, ...] | None) -> str | None:
    return f"{len(hashes)}: {' '.join(hashes)}" if hashes else None


def _defused(cell: str | None) -> str | None:
    return None if cell is None else neutralise(cell)


def _as_is(cell: str | None) -> str | None:
    return cell


class _AuthorshipRows:
    """Turns post column tuples (ports.ExportReader.post_rows) into authorship rows.

    Works on the columns directly (no Post per row; the decisions already summarised by the
    reader) and looks the directory up in plain tuples built once: this runs for every post.
    """

    def __init__(self, directory: _Directory, *, for_csv: bool = False) -> None:
        """`for_csv`: the directory's words come defused (`neutralise`), as `csv_values`
        needs them; JSONL takes them as they are."""
        self.directory = directory
        self._submitters: dict[str, str | None] = {}
        text = _defused if for_csv else _as_is
        self._accounts = {
            i: (text(a.platform), text(a.handle)) for i, a in directory.accounts.items()
        }
        self._people = {i: (text(u.name), text(u.email)) for i, u in directory.users.items()}
        self._window_names = {i: text(w.name) for i, w in directory.windows.items()}
        self._text = text

    def values(self, row: Sequence[Any]) -> list[Any]:
        """Return one post's row of the report, in AUTHORSHIP_COLUMNS order (typed values;
        None when empty)."""
        (
            post_id,
            public_id,
            account_id,
            window_id,
            kind,
            state,
            state_reason,
            author_id,
            submitter,
            source,
            final_text,
            published_at,
            platform_url,
            approved_by,
            approved_at,
            created_at,
            content_warning,
            visibility,
            deleted_at,
            deletion_requested_by,
            group_id,
            delegated,
            stage,
            tag,
            tag_outcome,
            tag_needs,
            tag_has,
            tag_unit,
            reminder_outcome,
        ) = row
        platform, handle = self._accounts.get(account_id, _NOBODY)
        writer_name, writer_email = self._people.get(author_id, _NOBODY)
        approver_name = approver_email = approved = None
        if kind == PostKind.NOTICE:
            directory = self.directory
            notice_window = directory.notice_windows.get(post_id) or (
                directory.windows.get(window_id) if window_id else None
            )
            if notice_window is not None and notice_window.notice_approved_by is not None:
                approver_name, approver_email = self._people.get(
                    notice_window.notice_approved_by, _NOBODY
                )
                approved = notice_window.notice_approved_at
        elif approved_by is not None:
            approver_name, approver_email = self._people.get(approved_by, _NOBODY)
            approved = approved_at
        regular = kind == PostKind.REGULAR
        if regular and stage:
            reminder = _REMINDER_WORDS.get(reminder_outcome, "not_applicable")
        else:
            stage = tag = tag_outcome = tag_needs = tag_has = tag_unit = None
            reminder = "not_applicable"
        delegated = bool(delegated)
        deleter_name, deleter_email = (
            self._people.get(deletion_requested_by, _NOBODY)
            if deletion_requested_by
            else (None, None)
        )
        if submitter in self._submitters:
            submitter_name = self._submitters[submitter]
        else:
            submitter_name = self._submitters[submitter] = self._text(
                _submitter_name(submitter, self.directory)
            )
        return [
            public_id,
            kind,
            state,
            state_reason,
            _iso(published_at),
            _iso(created_at),
            account_id,
            platform,
            handle,
            platform_url,
            final_text,
            writer_name,
            writer_email,
            submitter,
            submitter_name,
            approver_name,
            approver_email,
            _iso(approved) if approved is not None else None,
            source,
            delegated if regular else None,
            window_id,
            self._window_names.get(window_id) if window_id else None,
            stage,
            tag or None,
            tag_outcome,
            tag_needs,
            tag_has,
            tag_unit,
            reminder,
            _disclosure(
                kind, delegated, stage, tag, tag_outcome, tag_needs, tag_has, tag_unit, reminder
            ),
            content_warning or None,
            visibility,
            _iso(deleted_at),
            deleter_name if deleted_at else None,
            deleter_email if deleted_at else None,
            group_id,
            _images_cell(self.directory.images.get(post_id)),
        ]

    def csv_values(self, row: Sequence[Any]) -> list[Any]:
        """Return `values(row)` as csv.writer must be given them to write `csv_line`'s bytes
        (`csv_cell` per cell: text defused, booleans as true/false; None and integers as
        csv.writer writes them): the cells from the post's own columns and its decisions are
        defused here, the directory's already are (`for_csv`); the others are ghostpost's own
        words, times and integers."""
        cells = self.values(row)
        for i in _ROW_TEXT_CELLS:
            cell = cells[i]
            if cell and cell[0] in _FORMULA_FIRST:
                cells[i] = "'" + cell
        delegated = cells[_DELEGATED]
        if delegated is not None:
            cells[_DELEGATED] = "true" if delegated else "false"
        return cells


def neutralise(cell: str) -> str:
    """Return a CSV cell a spreadsheet shows as text: a leading = + - @ (or tab, CR) gets a '."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def csv_cell(value: Any) -> str:
    """Render one typed value as a CSV cell (None empty, booleans true/false, formulas defused)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


#: What makes a CSV field need quotes (RFC 4180; as csv.writer's QUOTE_MINIMAL with "\r\n").
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def csv_line(values: Iterable[Any]) -> str:
    """Return one CSV record (CRLF-terminated) of typed values: byte for byte what
    `csv.writer(out, lineterminator="\r\n").writerow(csv_cell(v) for v in values)` writes
    (for two or more fields), without a writer and a buffer per line."""
    cells: list[str] = []
    append = cells.append
    search = _NEEDS_QUOTES.search
    for value in values:
        # csv_cell inlined for the common types (this runs once per cell of every row).
        if value is None:
            append("")
            continue
        if value.__class__ is str:
            cell = "'" + value if value.startswith(FORMULA_STARTS) else value
        elif value is True or value is False or isinstance(value, int):
            append(csv_cell(value))  # never quoted: digits, a sign, true or false
            continue
        else:
            cell = csv_cell(value)
        append('"' + cell.replace('"', '""') + '"' if search(cell) else cell)
    return ",".join(cells) + "\r\n"


@dataclass(frozen=True)
class _Lines:
    """A file for csv.writer whose every write (one record) goes to `write`."""

    write: Callable[[str], Any]


def _close(iterator: Iterator[Any]) -> None:
    """Close a generator (its database cursor with it); other iterators need nothing."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _jsonl(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class ExportRun:
    """One export being written: a snapshot held open until the last chunk is out."""

    export: Export
    uow: UnitOfWork
    ledger_size: int
    ledger_head_hash: str
    #: Rows (posts, or ledger entries) written so far.
    rows_written: int = 0
    _total: int | None = field(default=None, repr=False)
    _scope: ExportScope | None = field(default=None, repr=False)

    @property
    def scope(self) -> ExportScope:
        """The export's scope, for a filtered ledger export widened by the entries its subjects
        name but stored under another account (tampering: `ghostpost audit check` names them
        too), so filtering by the derived columns never silently leaves an entry out."""
        if self._scope is None:
            export = self.export
            self._scope = export.scope
            if export.report is Report.LEDGER and not export.complete:
                misfiled = self.uow.exports.misfiled_entries(export.scope, self.ledger_size)
                if misfiled:
                    seqs = frozenset(m.seq for m in misfiled)
                    self._scope = replace(export.scope, misfiled_seqs=seqs)
        return self._scope

    def count(self) -> int:
        """Return how many rows the export writes (same snapshot as the rows)."""
        if self._total is None:
            export, exports = self.export, self.uow.exports
            if export.report is Report.AUTHORSHIP:
                self._total = exports.count_posts(export.scope)
            elif export.complete:
                self._total = self.ledger_size
            else:
                self._total = exports.count_entries(self.scope, self.ledger_size)
        return self._total

    def chunks(self, rows_per_chunk: int = CHUNK_ROWS) -> Iterator[str]:
        """Yield the export's text, a header and then `rows_per_chunk` lines at a time."""
        if self.export.report is Report.AUTHORSHIP:
            parts = self._authorship_lines()
        else:
            parts = self._ledger_lines()
        buffer: list[str] = []
        try:
            # Lines come a database batch at a time (one list per batch, not a generator
            # step per line); a chunk may cut across batches.
            for lines, are_rows in parts:
                start, end = 0, len(lines)
                while start < end:
                    take = min(rows_per_chunk - len(buffer), end - start)
                    buffer += lines[start : start + take]
                    if are_rows:
                        self.rows_written += take
                    start += take
                    if len(buffer) >= rows_per_chunk:
                        yield "".join(buffer)
                        buffer.clear()
        finally:
            # A consumer that stops early (a client hanging up) closes the chain of
            # generators down to the database cursor, before the snapshot ends.
            _close(parts)
        if buffer:
            yield "".join(buffer)

    def _authorship_lines(self) -> Iterator[tuple[list[str], bool]]:
        """Yield the report's lines, a list per database batch, and whether they are rows."""
        csv_format = self.export.format is ExportFormat.CSV
        rows = _AuthorshipRows(_load_directory(self.uow), for_csv=csv_format)
        values, csv_values = rows.values, rows.csv_values
        batches = self.uow.exports.post_rows(self.export.scope, FETCH_ROWS)
        try:
            if self.export.format is ExportFormat.JSONL:
                columns = AUTHORSHIP_COLUMNS
                for batch in batches:
                    yield (
                        [_jsonl(dict(zip(columns, values(row), strict=True))) for row in batch],
                        True,
                    )
            else:
                yield [csv_line(AUTHORSHIP_COLUMNS)], False
                # csv.writer (C) writes each record as one string; `lines` collects them.
                lines: list[str] = []
                writerows = csv.writer(_Lines(lines.append), lineterminator="\r\n").writerows
                for batch in batches:
                    writerows([csv_values(row) for row in batch])
                    yield lines, True
                    lines = []
                    writerows = csv.writer(_Lines(lines.append), lineterminator="\r\n").writerows
        finally:
            _close(batches)

    def _ledger_lines(self) -> Iterator[tuple[list[str], bool]]:
        """Yield the export's lines, a list per database batch, and whether they are rows
        (entries)."""
        export = self.export
        size = self.ledger_size
        scope = self.scope
        misfiled: dict[str, Any] = {}
        if scope.misfiled_seqs:
            misfiled = {
                "misfiled_entries": sorted(scope.misfiled_seqs),
                "warning": (
                    "The entries named in misfiled_entries are about what this export is "
                    "filtered to but stored under another account or post: the database was "
                    "changed outside ghostpost (or a bug). They are listed; run `ghostpost "
                    "audit check`."
                ),
            }
        yield (
            [
                ledger_format.header_line(
                    exported_at=export.exported_at,
                    complete=export.complete,
                    filters=export.header_filters,
                    keys=export.public_keys,
                    extra={
                        "exported_by": export.actor_ref,
                        "ledger_size": size,
                        "ledger_head_hash": self.ledger_head_hash,
                        **({"note": export.note} if export.note else {}),
                        **misfiled,
                    },
                )
            ],
            False,
        )
        batches = self.uow.exports.entry_rows(scope, size, FETCH_ROWS)
        entry_line = ledger_format.stored_entry_line
        try:
            for batch in batches:
                yield [entry_line(*row) for row in batch], True
        finally:
            _close(batches)
        if export.complete:
            checkpoints = self.uow.exports.checkpoint_rows(size, FETCH_ROWS)
            checkpoint_line = ledger_format.stored_checkpoint_line
            try:
                for batch in checkpoints:
                    yield [checkpoint_line(*row) for row in batch], False
            finally:
                _close(checkpoints)
            return
        # A partial export cannot be verified; the newest checkpoint (same snapshot) still
        # attests the ledger size and head its header names.
        newest = self.uow.ledger.latest_checkpoint()
        if newest is not None:
            yield [ledger_format.checkpoint_line(newest)], False


@dataclass
class Export:
    """A checked export request: who reads what, resolved to one scope. Nothing is read yet."""

    ctx: ServiceContext
    report: Report
    format: ExportFormat
    scope: ExportScope
    #: What the export was restricted to, as the ledger header records it.
    header_filters: dict[str, str | int]
    complete: bool
    exported_at: str
    actor_ref: str
    filename: str
    note: str | None = None
    #: The ledger's public keys (current and retired), written into the ledger header.
    public_keys: tuple[LedgerKey, ...] = ()

    @property
    def media_type(self) -> str:
        """Return the Content-Type of the export."""
        return MEDIA_TYPES[self.format]

    @contextmanager
    def open(self) -> Iterator[ExportRun]:
        """Open the export's read-only snapshot (released when the block ends)."""
        with self.ctx.uow() as uow:
            uow.exports.use_snapshot()
            size, head = uow.ledger.head()
            yield ExportRun(self, uow, size, head)

    def stream(self, rows_per_chunk: int = CHUNK_ROWS) -> Iterator[str]:
        """Yield the whole export; the snapshot opens on the first chunk and closes after the
        last one (or when the consumer stops early)."""
        with self.open() as run:
            yield from run.chunks(rows_per_chunk)


def _reader_accounts(uow: UnitOfWork, actor: Actor) -> frozenset[int] | None:
    """Return the accounts the actor may export (None: every account, the ledger included)."""
    if is_system(actor):
        return None
    if actor.user is None and actor.account_ids is not None:
        return actor.account_ids  # an API client: its accounts only
    user = require_user(actor)
    if user.role in OVERSEEING_ROLES:
        return None
    visible = frozenset(a.id for a in uow.accounts.list() if may_oversee(user, a))
    if not visible:
        raise Forbidden("Only admins, managers, auditors and principals export the ledger.")
    return visible


def prepare_export(
    ctx: ServiceContext,
    actor: Actor,
    report: Report | str,
    export_format: ExportFormat | str,
    filters: ExportFilters | None = None,
    *,
    public_keys: Iterable[LedgerKey] = (),
) -> Export:
    """Check an export request and resolve its filters (raises NotFound, Forbidden,
    ValidationFailed before anything is written); the rows are read later, streamed."""
    filters = filters or ExportFilters()
    try:
        report = Report(report)
    except ValueError:
        raise ValidationFailed(
            f"report must be one of {', '.join(Report)}.", {"report": "unknown report"}
        ) from None
    try:
        export_format = ExportFormat(export_format)
    except ValueError:
        raise ValidationFailed(
            f"format must be one of {', '.join(ExportFormat)}.", {"format": "unknown format"}
        ) from None
    if report is Report.LEDGER and export_format is not ExportFormat.JSONL:
        raise ValidationFailed(
            "The raw ledger is exported as JSONL only (the authorship report has CSV).",
            {"format": "the ledger is JSONL only"},
        )
    if filters.since and filters.until and filters.until <= filters.since:
        raise ValidationFailed("until must be after since.", {"until": "not after since"})
    if filters.author_email is not None and (problem := text_problem(filters.author_email)):
        # NUL cannot even be a PostgreSQL query parameter.
        raise ValidationFailed(f"author {problem}.", {"author": problem})
    client = actor.user is None and actor.account_ids is not None
    header_filters: dict[str, str | int] = {}
    with ctx.uow() as uow:
        allowed = _reader_accounts(uow, actor)
        account_ids = allowed
        # Looked up among what the reader may see (small lists), never by querying an id as
        # given: an id beyond the database's integers must be a plain 404, not an error.
        visible = [a.id for a in uow.accounts.list() if allowed is None or a.id in allowed]
        if filters.account_id is not None:
            if filters.account_id not in visible:
                raise NotFound(f"No account {filters.account_id}.")
            account_ids = frozenset({filters.account_id})
            header_filters["account"] = filters.account_id
        if filters.window_id is not None:
            windows = uow.windows.list_for_accounts(visible) if visible else []
            if all(w.id != filters.window_id for w in windows):
                raise NotFound(f"No window {filters.window_id}.")
            header_filters["window"] = filters.window_id
        author_id: int | None = None
        if filters.author_email is not None:
            email = filters.author_email.strip()
            author = uow.users.by_email(email)
            if author is None and not client:
                raise NotFound(f"No staff user with the email {email!r}.")
            # A client learns nothing about who exists: an unknown email just matches no post.
            author_id = author.id if author is not None else 0
            header_filters["author"] = email.lower()
    if filters.since is not None:
        header_filters["since"] = ledger_time(filters.since)
    if filters.until is not None:
        header_filters["until"] = ledger_time(filters.until)
    note = None
    if allowed is not None:
        header_filters["accounts"] = ",".join(str(i) for i in sorted(allowed))
        note = (
            "Limited to the reader's accounts: the entries about other accounts, people and "
            "API clients are left out, so this export cannot be verified on its own. Only a "
            "complete export (the CLI, or an admin, manager or auditor without filters) is."
        )
    elif header_filters:
        note = (
            "Filtered: only the matching entries are listed, so this export cannot be "
            "verified on its own. Export without filters to verify the chain."
        )
    now = ctx.clock.now()
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    extension = "csv" if export_format is ExportFormat.CSV else "jsonl"
    return Export(
        ctx=ctx,
        report=report,
        format=export_format,
        scope=ExportScope(
            account_ids=account_ids,
            window_id=filters.window_id,
            author_id=author_id,
            since=filters.since,
            until=filters.until,
        ),
        header_filters=header_filters,
        complete=not header_filters,
        exported_at=ledger_time(now),
        actor_ref=actor.ref,
        filename=f"ghostpost-{report.value}-{stamp}.{extension}",
        note=note if report is Report.LEDGER else None,
        public_keys=tuple(public_keys),
    )


# --- coverage ---------------------------------------------------------------------------------


def _coverage_data(
    window: Window,
    account: Account,
    coverage: Coverage,
    notice_approver: User | None,
    generated_at: datetime,
) -> dict[str, Any]:
    policy = window.policy
    lead = coverage.notice_lead
    return {
        "generated_at": _iso(generated_at),
        "window": {
            "id": window.id,
            "name": window.name,
            "account": {"id": account.id, "platform": account.platform, "handle": account.handle},
            "starts_at": _iso(policy.starts_at),
            "ends_at": _iso(policy.ends_at),
            "reminder_every": policy.reminder_every,
            "reminder_mode": policy.reminder_mode.value,
            "tag": policy.tag,
            "tag_mode": policy.tag_mode.value,
            "tag_position": policy.tag_position.value,
            "requires_approval": policy.requires_approval,
        },
        "notice": {
            "approved_at": _iso(window.notice_approved_at),
            "approved_by": (
                {"name": notice_approver.name, "email": notice_approver.email}
                if notice_approver
                else None
            ),
            "published_at": _iso(coverage.notice_published_at),
            "lead_seconds": int(lead.total_seconds()) if lead is not None else None,
        },
        "published": coverage.published,
        "principal_posts": coverage.principal_posts,
        "delegated_posts": coverage.delegated_posts,
        "notices": coverage.notices,
        "tagged": coverage.tagged,
        "tagged_percent": coverage.tagged_percent,
        "tag_skipped": coverage.tag_skipped,
        "untagged": coverage.untagged,
        "reminders": {
            "due": coverage.reminders_due,
            "sent": coverage.reminders_sent,
            "inline": coverage.reminders_inline,
            "standalone": coverage.reminders_standalone,
            "missed": coverage.reminders_missed,
        },
        "longest_run": coverage.longest_run,
        "longest_run_ends_at": coverage.longest_run_ends_at,
        "cadence_kept": coverage.cadence_kept,
        "skipped_tags": [
            {
                "position": s.position,
                "post_id": s.public_id,
                "published_at": _iso(s.published_at),
                "needs": s.needs,
                "has": s.has,
                "unit": s.unit,
            }
            for s in coverage.skipped_tags
        ],
        "timeline": [
            {
                "position": m.position,
                "post_id": m.public_id,
                "published_at": _iso(m.published_at),
                "kind": m.kind.value,
                "run": m.run,
                "missed_reminder": m.missed_reminder,
            }
            for m in coverage.marks
        ],
    }


def coverage_report(ctx: ServiceContext, actor: Actor, window_id: int) -> dict[str, Any]:
    """Return a window's disclosure coverage (the dashboard's numbers) as JSON-ready data."""
    selected = window_coverage(ctx, actor, window_id).selected
    assert selected is not None  # a window id was asked for: found, or NotFound raised
    return _coverage_data(
        selected.window,
        selected.account,
        selected.coverage,
        selected.notice_approver,
        ctx.clock.now(),
    )
