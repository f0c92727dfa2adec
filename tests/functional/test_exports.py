"""Audit exports (services.exports) from the service, the CLI and the web app: the authorship
report matches the posts exactly (CSV and JSONL), the raw ledger is the ledger, filters and the
time range select the right rows, output is streamed from one snapshot."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from ghostpost.audit.format import Header, read_export
from ghostpost.cli import main
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import LedgerEntry, first_broken_entry
from ghostpost.domain.model import Account, ApiClient, Post, Role, Source, User, Window
from ghostpost.domain.policy import ReminderMode
from ghostpost.domain.post_options import PostOptions
from ghostpost.services import directory, exports, posts
from ghostpost.services.context import Actor
from ghostpost.services.coverage import window_coverage
from ghostpost.services.errors import Forbidden, NotFound, ValidationFailed
from ghostpost.settings import Settings
from tests.conftest import START
from tests.support.api import create_api_client
from tests.support.postgres import PostgresServer
from tests.support.web import PASSWORD, sign_in
from tests.support.world import (
    SEEDED_FROM,
    World,
    WorldTemplate,
    derive_template,
    row_counts,
)

#: The authorship report's header, written out: the contract auditors' spreadsheets rely on (a
#: renamed, dropped or reordered column must fail here, not follow the code silently).
COLUMNS = [
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
    "content_warning",
    "visibility",
    # Appended for deleted posts (issue 15): empty unless the principal deleted it.
    "deleted_at",
    "deleted_by_name",
    "deleted_by_email",
    # Appended for one compose to several accounts (issue 16): empty for a post made alone.
    "group_id",
    # Appended for images (issue 16): "<count>: <hash> ..." or empty.
    "images",
]
#: Texts that would be formulas in a spreadsheet.
FORMULAS = ["=SUM(A1:A9)", "+1 555 0100 call now", "-2 degrees outside", "@here lunch", "\tx"]
UNICODE = "Grüße aus Zürich — 東京 👋🏽 مرحبا \u200f"
TRICKY = 'She said "hi", then left,\nand a second line'


# --- building a realistic history -------------------------------------------------------------


def second_account(world: World) -> tuple[Account, User]:
    system = Actor.system("test")
    principal = directory.create_principal(world.ctx, system, "Blake Stone")
    account = directory.create_account(
        world.ctx, system, principal_id=principal.id, platform="local", handle="blake"
    )
    blake = directory.create_user(
        world.ctx,
        system,
        email="blake@example.test",
        name="Blake Stone",
        role=Role.WRITER,
        password=PASSWORD,
        principal_id=principal.id,
    )
    directory.assign_writer(world.ctx, system, user_id=world.writer_b.id, account_id=account.id)
    return account, blake


def submit(world: World, author: User, text: str, account: Account | None = None) -> Post:
    post = world.submit(author, text, account=account)
    world.container.clock.advance(minutes=1)
    return post


@dataclass(frozen=True)
class History:
    window: Window
    own: Post
    client: ApiClient
    api_post: Post
    scheduled: Post
    blake_account: Account
    blake: User
    blake_post: Post


@dataclass(frozen=True)
class HistoryTemplate:
    """The history built once into a copy of the world's template (database, signing key,
    witness and notary state), with the clock where building it left it."""

    seeded: WorldTemplate
    history: History
    now: datetime


#: A test asking for `history` starts on a copy of the history's template (tests/conftest.py).
pytestmark = pytest.mark.seeded_template("history", "history_world_template")


@pytest.fixture(scope="session")
def history_template(
    tmp_path_factory: pytest.TempPathFactory,
    world_template: WorldTemplate,
    postgres: PostgresServer | None,
) -> HistoryTemplate:
    """`build_history` on a copy of the world's template, once per session."""
    seeded, history, now = derive_template(
        tmp_path_factory, world_template, postgres, "history", build_history
    )
    return HistoryTemplate(seeded, history, now)


@pytest.fixture(scope="session")
def history_world_template(history_template: HistoryTemplate) -> WorldTemplate:
    return history_template.seeded


@pytest.fixture
def history(request: pytest.FixtureRequest, world: World) -> History:
    """The history of `build_history`: the template's when the test started on its copy."""
    if request.node.stash.get(SEEDED_FROM, None) is request.getfixturevalue(
        "history_world_template"
    ):
        template: HistoryTemplate = request.getfixturevalue("history_template")
        if row_counts(world.container.settings.database_url) != template.seeded.counts:
            raise RuntimeError("the database changed between the world and history fixtures")
        world.container.clock.set(template.now)  # type: ignore[attr-defined]
        return template.history
    return build_history(world)


def build_history(world: World) -> History:
    """Avery's window (reminder every 3, inline): posts by two writers (formulas, unicode,
    quotes, a skipped tag), the principal's own, one by an API client, one still scheduled;
    Blake's account with a post of its own."""
    window = world.approve_notice(world.open_window(every=3, reminder_mode=ReminderMode.INLINE))
    world.run_worker()  # the notice goes out
    texts = [*FORMULAS, UNICODE, TRICKY, "x" * 497]
    for i, text in enumerate(texts):
        submit(world, world.writer_a if i % 2 else world.writer_b, text)
    own = submit(world, world.principal, "My own words, no tag needed")
    api_client, _ = create_api_client(world, name="Buffer")
    api_post = posts.submit_post(
        world.ctx,
        Actor.for_client(api_client.client_id, frozenset({world.account.id})),
        posts.SubmitPost(
            account_id=world.account.id,
            author_id=world.writer_a.id,
            text="Sent by the scheduler",
            source=Source.API,
        ),
    )
    world.container.clock.advance(minutes=1)
    world.run_worker()
    scheduled = world.submit(
        world.writer_a, "Later today", publish_at=world.container.clock.now() + timedelta(hours=2)
    )
    blake_account, blake = second_account(world)
    blake_post = submit(world, blake, "Blake's own post", account=blake_account)
    world.run_worker()
    return History(window, own, api_client, api_post, scheduled, blake_account, blake, blake_post)


def all_posts(world: World) -> list[Post]:
    with world.ctx.uow() as uow:
        found = [p for a in uow.accounts.list() for p in uow.posts.list_for_account(a.id)]
    return sorted(found, key=lambda p: p.id)


def all_entries(world: World) -> list[LedgerEntry]:
    with world.ctx.uow() as uow:
        return list(uow.ledger.entries())


def run_export(world: World, report: str, fmt: str, actor: Actor | None = None, **filters) -> str:  # type: ignore[no-untyped-def]
    export = exports.prepare_export(
        world.ctx,
        actor or Actor.for_user(world.auditor),
        report,
        fmt,
        exports.ExportFilters(**filters),
        public_keys=world.container.keyring.public_keys(),
    )
    return "".join(export.stream())


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == COLUMNS
    return list(reader)


def jsonl_rows(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def ledger_records(text: str) -> tuple[Header, list[LedgerEntry], list[Checkpoint]]:
    records = list(read_export(io.BytesIO(text.encode())))
    header = records[0]
    assert isinstance(header, Header)
    entries = [r for r in records if isinstance(r, LedgerEntry)]
    checkpoints = [r for r in records if isinstance(r, Checkpoint)]
    return header, entries, checkpoints


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


# --- the authorship report --------------------------------------------------------------------


def test_the_authorship_report_has_one_row_per_post_with_who_wrote_submitted_and_approved_it(
    world: World, history: History
) -> None:
    rows = jsonl_rows(run_export(world, "authorship", "jsonl"))
    stored = all_posts(world)

    assert [r["post_id"] for r in rows] == [p.public_id for p in stored]
    assert all(list(r) == COLUMNS for r in rows)
    users = {u.id: u for u in (world.principal, world.manager, world.writer_a, world.writer_b)}
    users[history.blake.id] = history.blake
    for row, post in zip(rows, stored, strict=True):
        writer = users[post.author_id]
        assert row["kind"] == post.kind.value
        assert row["state"] == post.state.value
        assert row["final_text"] == post.final_text
        assert (row["writer_name"], row["writer_email"]) == (writer.name, writer.email)
        assert row["submitter"] == post.submitter
        assert row["source"] == post.source.value
        assert row["published_at"] == iso(post.published_at)
        assert row["submitted_at"] == iso(post.created_at)
        assert row["platform_url"] == post.platform_url
    by_id = {r["post_id"]: r for r in rows}

    notice = by_id[stored[0].public_id]
    assert notice["kind"] == "notice"
    assert notice["approver_email"] == world.principal.email
    assert notice["disclosure"] == "the window's notice"
    assert notice["writer_email"] == world.manager.email  # who created the window

    api_row = by_id[history.api_post.public_id]
    assert api_row["submitter"] == f"client:{history.client.client_id}"
    assert api_row["submitter_name"] == "API client Buffer"
    assert api_row["writer_email"] == world.writer_a.email
    assert api_row["source"] == "api"

    own = by_id[history.own.public_id]
    assert own["delegated"] is False
    assert own["disclosure"] == "the principal's own post: no disclosure needed"
    assert own["submitter_name"] == f"{world.principal.name} <{world.principal.email}>"

    scheduled = by_id[history.scheduled.public_id]
    assert scheduled["state"] == "scheduled"
    assert scheduled["published_at"] is None
    assert scheduled["decision_stage"] == "submission"
    assert scheduled["disclosure"].startswith("planned at submission: #team added")

    blake = by_id[history.blake_post.public_id]
    assert (blake["platform"], blake["handle"]) == ("local", "blake")
    assert blake["window_id"] is None and blake["tag_outcome"] == "not_delegated"
    assert blake["delegated"] is False and blake["writer_email"] == "blake@example.test"


def test_the_disclosure_columns_say_tag_added_skipped_with_numbers_and_reminders(
    world: World, history: History
) -> None:
    rows = jsonl_rows(run_export(world, "authorship", "jsonl"))
    regular = [r for r in rows if r["kind"] == "regular" and r["state"] == "published"]
    skipped = next(r for r in rows if r["final_text"] == "x" * 497)

    assert skipped["tag_outcome"] == "skipped"
    assert (skipped["tag_needs"], skipped["tag_has"], skipped["tag_unit"]) == (6, 3, "characters")
    assert skipped["disclosure"].startswith("#team skipped: needs 6, has 3 characters")
    tagged = next(r for r in rows if r["final_text"].startswith("@here lunch"))
    assert tagged["tag"] == "#team" and tagged["tag_outcome"] == "applied"
    assert tagged["decision_stage"] == "publication"
    # Every third post in the window carries the reminder inline (N = 3).
    reminders = [r["reminder"] for r in regular if r["window_id"]]
    assert "inline" in reminders and "none" in reminders
    assert set(reminders) <= {"inline", "none"}
    inline = next(r for r in regular if r["reminder"] == "inline")
    assert "reminder inline" in inline["disclosure"]
    assert "Reminder: my team helps run this account." in inline["final_text"]


def test_csv_is_rfc4180_utf8_with_a_header_and_formulas_neutralised(
    world: World, history: History
) -> None:
    text = run_export(world, "authorship", "csv")
    raw = text.encode("utf-8")
    rows = csv_rows(text)
    as_json = jsonl_rows(run_export(world, "authorship", "jsonl"))

    assert raw.startswith(b"post_id,kind,state,")
    assert raw.endswith(b"\r\n")
    assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM
    assert len(rows) == len(as_json) == len(all_posts(world))
    assert_same_as_jsonl_defused(rows, as_json)
    texts = [r["final_text"] for r in rows]
    assert "'=SUM(A1:A9) #team" in texts
    assert "'+1 555 0100 call now #team" in texts
    assert any(t.startswith("'-2 degrees outside") for t in texts)
    assert any(t.startswith("'@here lunch") for t in texts)
    assert any(t.startswith("'\tx") for t in texts)
    # Quotes doubled inside a quoted cell, the line break kept, unicode as UTF-8 bytes.
    assert b'"She said ""hi"", then left,\nand a second line' in raw
    assert UNICODE.encode("utf-8") in raw
    assert any(t.startswith(UNICODE) for t in texts)


def assert_same_as_jsonl_defused(rows: list[dict[str, str]], as_json: list[dict]) -> None:  # type: ignore[type-arg]
    """Same data as JSONL; strings that start like a formula get one leading apostrophe."""
    for row, item in zip(rows, as_json, strict=True):
        for name in COLUMNS:
            value = item[name]
            if value is None:
                expected = ""
            elif isinstance(value, bool):
                expected = "true" if value else "false"
            elif isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
                expected = "'" + value
            else:
                expected = str(value)
            assert row[name] == expected, (name, row[name], value)


def test_names_from_the_directory_that_start_like_formulas_are_neutralised_too(
    world: World,
) -> None:
    """The CSV defuses the directory's words once per export, not per row: a writer, an
    approver or an API client whose name is a formula still reaches the sheet as text."""
    world.approve_notice(world.open_window())
    world.run_worker()  # the notice goes out
    system = Actor.system("test")
    mallory = directory.create_user(
        world.ctx,
        system,
        email="mallory@example.test",
        name='=HYPERLINK("http://evil.test","click")',
        role=Role.WRITER,
        password=PASSWORD,
        principal_id=None,
    )
    directory.assign_writer(world.ctx, system, user_id=mallory.id, account_id=world.account.id)
    submit(world, mallory, "Hello from the booth")
    api_client, _ = create_api_client(world, name="@everyone")
    posts.submit_post(
        world.ctx,
        Actor.for_client(api_client.client_id, frozenset({world.account.id})),
        posts.SubmitPost(
            account_id=world.account.id,
            author_id=mallory.id,
            text="+1 via the scheduler",
            source=Source.API,
        ),
    )
    # A content warning is the writer's words too (a Mastodon app sends one; local keeps it).
    posts.submit_post(
        world.ctx,
        Actor.for_user(mallory),
        posts.SubmitPost(
            account_id=world.account.id,
            author_id=mallory.id,
            text="Behind the warning",
            source=Source.WEB,
            options=PostOptions(content_warning="=cmd|' /C calc'!A0"),
        ),
    )
    world.run_worker()

    rows = csv_rows(run_export(world, "authorship", "csv"))
    as_json = jsonl_rows(run_export(world, "authorship", "jsonl"))

    assert_same_as_jsonl_defused(rows, as_json)
    assert {r["writer_name"] for r in rows} >= {'\'=HYPERLINK("http://evil.test","click")'}
    assert "API client @everyone" in {r["submitter_name"] for r in rows}
    assert any(r["final_text"].startswith("'+1 via the scheduler") for r in rows)
    assert any(r["content_warning"].startswith("'=cmd|") for r in rows)


def test_jsonl_keeps_the_text_exactly_and_types_the_values(world: World, history: History) -> None:
    text = run_export(world, "authorship", "jsonl")
    rows = jsonl_rows(text)

    assert text.endswith("\n") and "\r" not in text.replace("\\r", "")
    assert UNICODE in text  # not \u-escaped
    assert any(r["final_text"] == "=SUM(A1:A9) #team" for r in rows)
    assert any(r["final_text"].startswith("\tx") for r in rows)
    skipped = next(r for r in rows if r["tag_outcome"] == "skipped")
    assert isinstance(skipped["tag_needs"], int) and isinstance(skipped["account_id"], int)
    assert isinstance(skipped["delegated"], bool)


def test_an_empty_export_is_just_the_header_row(world: World) -> None:
    assert run_export(world, "authorship", "csv") == ",".join(COLUMNS) + "\r\n"
    assert run_export(world, "authorship", "jsonl") == ""


# --- filters ------------------------------------------------------------------------------------


def test_filters_select_by_account_window_and_author(world: World, history: History) -> None:
    stored = all_posts(world)
    blake_account = history.blake_account
    window = history.window

    def ids(**filters: object) -> list[str]:
        rows = jsonl_rows(run_export(world, "authorship", "jsonl", **filters))
        return [str(r["post_id"]) for r in rows]

    assert ids(account_id=blake_account.id) == [
        p.public_id for p in stored if p.account_id == blake_account.id
    ]
    assert ids(window_id=window.id) == [p.public_id for p in stored if p.window_id == window.id]
    assert ids(author_email=world.writer_a.email.upper()) == [
        p.public_id for p in stored if p.author_id == world.writer_a.id
    ]
    assert ids(author_email=world.writer_a.email, account_id=blake_account.id) == []
    assert len(ids(author_email=world.writer_a.email)) >= 4


def test_the_time_range_uses_publishing_time_or_submission_time(
    world: World, history: History
) -> None:
    stored = all_posts(world)

    def moment(post: Post) -> datetime:
        return post.published_at or post.created_at

    middle = sorted(moment(p) for p in stored)[len(stored) // 2]
    later = [p.public_id for p in stored if moment(p) >= middle]
    earlier = [p.public_id for p in stored if moment(p) < middle]
    assert later and earlier

    def ids(**filters: object) -> list[str]:
        rows = jsonl_rows(run_export(world, "authorship", "jsonl", **filters))
        return [str(r["post_id"]) for r in rows]

    assert ids(since=middle) == later
    assert ids(until=middle) == earlier
    day = exports.parse_time(START.date().isoformat())
    assert ids(since=day, until=exports.parse_time(START.date().isoformat(), end=True)) == [
        p.public_id for p in stored
    ]
    assert ids(since=day + timedelta(days=1)) == []


def test_time_bounds_read_days_and_rfc3339_times() -> None:
    assert exports.parse_time("2026-11-21") == datetime(2026, 11, 21, tzinfo=UTC)
    assert exports.parse_time("2026-11-21", end=True) == datetime(2026, 11, 22, tzinfo=UTC)
    assert exports.parse_time("2026-11-21T10:30:00+01:00") == datetime(
        2026, 11, 21, 9, 30, tzinfo=UTC
    )
    assert exports.parse_time("2026-11-21T09:30:00Z", end=True) == datetime(
        2026, 11, 21, 9, 30, tzinfo=UTC
    )
    assert exports.parse_time("2026-11-21T09:30:00") == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    for bad in ("yesterday", "2026-13-01", "2026-11-21T25:00:00", "9" * 50, ""):
        with pytest.raises(ValidationFailed):
            exports.parse_time(bad)


def test_bad_requests_are_refused_before_anything_is_written(
    world: World, history: History
) -> None:
    auditor = Actor.for_user(world.auditor)
    with pytest.raises(ValidationFailed, match="JSONL only"):
        exports.prepare_export(world.ctx, auditor, "ledger", "csv")
    with pytest.raises(ValidationFailed):
        exports.prepare_export(world.ctx, auditor, "everything", "csv")
    with pytest.raises(ValidationFailed):
        exports.prepare_export(world.ctx, auditor, "authorship", "xlsx")
    with pytest.raises(NotFound):
        exports.prepare_export(
            world.ctx, auditor, "authorship", "csv", exports.ExportFilters(account_id=999)
        )
    with pytest.raises(NotFound):
        exports.prepare_export(
            world.ctx, auditor, "authorship", "csv", exports.ExportFilters(window_id=999)
        )
    with pytest.raises(NotFound, match=r"nobody@example\.test"):
        exports.prepare_export(
            world.ctx,
            auditor,
            "authorship",
            "csv",
            exports.ExportFilters(author_email="nobody@example.test"),
        )
    with pytest.raises(ValidationFailed, match="until"):
        exports.prepare_export(
            world.ctx,
            auditor,
            "authorship",
            "csv",
            exports.ExportFilters(since=START, until=START - timedelta(days=1)),
        )


# --- who may export ----------------------------------------------------------------------------


def test_writers_may_not_export_and_principals_see_only_their_accounts(
    world: World, history: History
) -> None:
    with pytest.raises(Forbidden):
        exports.prepare_export(world.ctx, Actor.for_user(world.writer_a), "authorship", "csv")
    blake = Actor.for_user(history.blake)
    rows = jsonl_rows(run_export(world, "authorship", "jsonl", actor=blake))
    assert [r["handle"] for r in rows] == ["blake"]
    with pytest.raises(NotFound):
        only_avery = exports.ExportFilters(account_id=world.account.id)
        exports.prepare_export(world.ctx, blake, "authorship", "csv", only_avery)
    header, entries, _ = ledger_records(run_export(world, "ledger", "jsonl", actor=blake))
    assert header.complete is False
    assert header.filters == {"accounts": str(history.blake_account.id)}
    about_blake = {f"account:{history.blake_account.id}", f"post:{history.blake_post.public_id}"}
    assert entries and {e.subject for e in entries} == about_blake


# --- the raw ledger -------------------------------------------------------------------------------


def test_the_ledger_export_is_the_whole_chain_with_its_checkpoints_and_keys(
    world: World, history: History
) -> None:
    text = run_export(world, "ledger", "jsonl")
    header, entries, checkpoints = ledger_records(text)
    stored = all_entries(world)

    assert header.complete is True and header.filters == {}
    assert header.extra["exported_by"] == f"user:{world.auditor.id}"
    assert header.extra["ledger_size"] == len(stored)
    assert header.extra["ledger_head_hash"] == stored[-1].entry_hash
    assert [k.key_id for k in header.keys] == [
        k.key_id for k in world.container.keyring.public_keys()
    ]
    assert entries == stored
    assert first_broken_entry(entries) is None
    with world.ctx.uow() as uow:
        assert checkpoints == list(uow.ledger.checkpoints())
    assert checkpoints[-1].size == len(stored)
    assert checkpoints[-1].head_hash == stored[-1].entry_hash
    # The lines are exactly the shared format's (ghostpost.audit.format).
    from ghostpost.audit.format import entry_line

    lines = text.splitlines(keepends=True)
    assert lines[1 : 1 + len(stored)] == [entry_line(e) for e in stored]


def test_a_filtered_ledger_export_says_it_is_incomplete_and_lists_only_matching_entries(
    world: World, history: History
) -> None:
    window = history.window
    header, entries, checkpoints = ledger_records(
        run_export(world, "ledger", "jsonl", window_id=window.id)
    )
    with world.ctx.uow() as uow:
        expected = uow.ledger.search(window_id=window.id, oldest_first=True, limit=10_000)

    assert header.complete is False
    assert header.filters == {"window": window.id}
    assert "cannot be verified" in header.extra["note"]
    assert entries == expected
    assert len(checkpoints) == 1  # the newest: it attests the size and head in the header
    assert checkpoints[0].size == header.extra["ledger_size"]

    since = START + timedelta(minutes=5)
    _, timed, _ = ledger_records(run_export(world, "ledger", "jsonl", since=since))
    stamp = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert timed == [e for e in all_entries(world) if e.occurred_at >= stamp]
    _, by_author, _ = ledger_records(
        run_export(world, "ledger", "jsonl", author_email=world.writer_b.email)
    )
    with world.ctx.uow() as uow:
        assert by_author == uow.ledger.search(
            author_id=world.writer_b.id, oldest_first=True, limit=10_000
        )


# --- streaming ------------------------------------------------------------------------------


def test_exports_are_generators_that_read_only_when_consumed(
    world: World, history: History
) -> None:
    export = exports.prepare_export(world.ctx, Actor.for_user(world.auditor), "authorship", "csv")
    stream = export.stream(rows_per_chunk=2)
    assert inspect.isgenerator(stream)
    # Nothing was read yet: a post submitted now is in the export.
    late = submit(world, world.writer_a, "Submitted after the export was prepared")
    chunks = list(stream)
    assert len(chunks) > 5  # header + rows, two rows a chunk
    assert late.public_id in "".join(chunks)


def test_an_export_reads_one_snapshot_while_writers_go_on(world: World, history: History) -> None:
    export = exports.prepare_export(world.ctx, Actor.for_user(world.auditor), "ledger", "jsonl")
    with export.open() as run:
        total = run.count()
        chunks = run.chunks(rows_per_chunk=1)
        first = next(chunks)
        # A writer commits while the export is open (SQLite: not blocked by the reader).
        late = submit(world, world.writer_a, "Written during the export")
        text = first + "".join(chunks)
        assert run.rows_written == total
    header, entries, checkpoints = ledger_records(text)
    assert len(entries) == total == header.extra["ledger_size"]
    assert all(late.public_id not in e.subject for e in entries)
    assert checkpoints[-1].size == total
    assert len(all_entries(world)) > total


def test_a_consumer_that_stops_early_closes_the_cursor_and_the_snapshot(
    world: World, history: History
) -> None:
    # A client hanging up mid-download: the response closes the generator; the chain of
    # generators closes down to the server-side cursor before the transaction ends (on
    # PostgreSQL a cursor left open would warn, and warnings are errors here).
    export = exports.prepare_export(world.ctx, Actor.for_user(world.auditor), "ledger", "jsonl")
    stream = export.stream(rows_per_chunk=1)
    assert next(stream).startswith('{"complete":true')
    next(stream)
    stream.close()
    # Hanging up among the checkpoints closes their cursor too.
    stream = export.stream(rows_per_chunk=1)
    while '"type":"checkpoint"' not in next(stream):
        pass
    stream.close()
    # The snapshot is gone: writers carry on, and a new export sees their entries.
    submit(world, world.writer_a, "After the abandoned export")
    _, entries, _ = ledger_records(run_export(world, "ledger", "jsonl"))
    assert entries == all_entries(world)


# --- coverage --------------------------------------------------------------------------------


def test_coverage_json_has_the_dashboards_numbers(world: World, history: History) -> None:
    window = history.window
    data = exports.coverage_report(world.ctx, Actor.system("cli"), window.id)
    page = window_coverage(world.ctx, Actor.for_user(world.auditor), window.id)
    assert page.selected is not None
    cov = page.selected.coverage

    assert data == exports.coverage_report(world.ctx, Actor.for_user(world.auditor), window.id)
    assert data["window"]["id"] == window.id
    assert data["published"] == cov.published
    assert data["delegated_posts"] == cov.delegated_posts
    assert data["principal_posts"] == cov.principal_posts == 1
    assert data["tagged"] == cov.tagged and data["tagged_percent"] == cov.tagged_percent
    assert data["tag_skipped"] == cov.tag_skipped == 1
    assert data["reminders"] == {
        "due": cov.reminders_due,
        "sent": cov.reminders_sent,
        "inline": cov.reminders_inline,
        "standalone": cov.reminders_standalone,
        "missed": cov.reminders_missed,
    }
    assert data["longest_run"] == cov.longest_run and data["cadence_kept"] is cov.cadence_kept
    assert data["notice"]["approved_by"]["email"] == world.principal.email
    assert [m["post_id"] for m in data["timeline"]] == [m.public_id for m in cov.marks]
    assert data["skipped_tags"][0]["needs"] == 6
    json.dumps(data)  # JSON-ready
    with pytest.raises(NotFound):
        exports.coverage_report(world.ctx, Actor.system("cli"), 999)


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("database_url", "ledger_signing_key", "ledger_public_keys", "ledger_witness_file"):
        monkeypatch.setenv(f"GHOSTPOST_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("GHOSTPOST_SECRET_KEY", settings.secret_key)


def cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_exports_the_authorship_report_and_says_how_many_rows(
    world: World, history: History, cli_env: None, tmp_path: Path
) -> None:
    out = tmp_path / "authorship.csv"
    result = cli("audit", "export", "--format", "csv", "--report", "authorship", "--out", str(out))

    assert result.exit_code == 0, result.output
    count = len(all_posts(world))
    assert result.output == f"wrote {count} rows to {out}\n"  # no progress bar: not a TTY
    data = out.read_bytes()
    assert data == run_export(world, "authorship", "csv").encode("utf-8")
    assert len(csv_rows(data.decode("utf-8"))) == count
    assert not (tmp_path / "authorship.csv.partial").exists()


def test_cli_writes_to_standard_output_with_the_count_on_stderr(
    world: World, history: History, cli_env: None
) -> None:
    result = cli("audit", "export", "--format", "jsonl", "--account", "blake", "--out", "-")
    assert result.exit_code == 0
    [row] = jsonl_rows(result.stdout)
    assert row["post_id"] == history.blake_post.public_id
    assert result.stderr == "wrote 1 rows to standard output\n"


def test_cli_filters_by_handle_author_and_days(
    world: World, history: History, cli_env: None, tmp_path: Path
) -> None:
    out = tmp_path / "blake.jsonl"
    result = cli(
        "audit", "export", "--format", "jsonl", "--out", str(out), "--account", "@blake",
        "--since", START.date().isoformat(), "--until", START.date().isoformat(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote 1 rows to {out}\n"
    [row] = jsonl_rows(out.read_text(encoding="utf-8"))
    assert row["post_id"] == history.blake_post.public_id

    result = cli(
        "audit", "export", "--out", str(out), "--author", world.writer_b.email,
        "--window", str(history.window.id),
    )  # fmt: skip
    rows = csv_rows(out.read_text(encoding="utf-8"))
    assert result.output == f"wrote {len(rows)} rows to {out}\n"
    assert rows and {r["writer_email"] for r in rows} == {world.writer_b.email}


def test_cli_exports_the_ledger_complete_and_ships_the_head_to_the_witness(
    world: World, history: History, cli_env: None, tmp_path: Path, settings: Settings
) -> None:
    out = tmp_path / "ledger.jsonl"
    result = cli("audit", "export", "--report", "ledger", "--out", str(out))

    assert result.exit_code == 0, result.output
    stored = all_entries(world)
    assert result.output == f"wrote {len(stored)} rows to {out}\n"
    header, entries, checkpoints = ledger_records(out.read_text(encoding="utf-8"))
    assert header.complete is True and entries == stored
    assert header.extra["exported_by"] == "system:cli"
    witness = Path(settings.ledger_witness_file).read_text(encoding="utf-8").splitlines()
    assert json.loads(witness[-1])["size"] == len(stored) == checkpoints[-1].size


def test_a_cli_ledger_export_verifies_offline_against_the_witness(
    world: World, history: History, cli_env: None, tmp_path: Path, settings: Settings
) -> None:
    out = tmp_path / "ledger.jsonl"
    assert cli("audit", "export", "--report", "ledger", "--out", str(out)).exit_code == 0
    verified = CliRunner().invoke(
        main,
        ["audit", "verify", str(out), "--key", settings.ledger_public_keys,
         "--trusted-checkpoint", settings.ledger_witness_file],
    )  # fmt: skip
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith(f"OK: {len(all_entries(world))} entries")
    # A filtered export says plainly that it cannot be verified.
    partial = tmp_path / "partial.jsonl"
    cli("audit", "export", "--report", "ledger", "--account", "blake", "--out", str(partial))
    refused = CliRunner().invoke(
        main, ["audit", "verify", str(partial), "--key", settings.ledger_public_keys]
    )
    assert refused.exit_code == 2


def test_cli_refuses_bad_options_with_a_message(
    world: World, history: History, cli_env: None, tmp_path: Path
) -> None:
    out = tmp_path / "x.csv"
    for args, message in [
        (("--account", "nobody"), "No account 'nobody'"),
        (("--report", "ledger", "--format", "csv"), "JSONL only"),
        (("--since", "soon"), "since is not a date"),
        (("--author", "ghost@example.test"), "No staff user"),
        (("--window", "2147483648"), "No window 2147483648"),
    ]:
        result = CliRunner().invoke(main, ["audit", "export", "--out", str(out), *args])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output
        assert not out.exists() and not (tmp_path / "x.csv.partial").exists()


def test_cli_shows_a_progress_bar_on_a_terminal(
    world: World, history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ghostpost import cli as cli_module

    lengths: list[int] = []
    real = cli_module.click.progressbar

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        lengths.append(kwargs["length"])
        kwargs["file"] = io.StringIO()
        return real(**kwargs)

    monkeypatch.setattr(cli_module.click, "progressbar", spy)
    monkeypatch.setattr(cli_module.sys.stderr, "isatty", lambda: True, raising=False)
    export = exports.prepare_export(world.ctx, Actor.system("cli"), "authorship", "csv")
    out = tmp_path / "bar.csv"
    rows = cli_module._write_export(export, str(out), quiet=False)
    assert lengths == [rows] and rows == len(all_posts(world))
    lengths.clear()
    cli_module._write_export(export, str(out), quiet=True)
    assert lengths == []


def test_cli_writes_coverage_json(
    world: World, history: History, cli_env: None, tmp_path: Path
) -> None:
    window = history.window
    out = tmp_path / "coverage.json"
    result = cli("audit", "coverage", "--window", str(window.id), "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    expected = exports.coverage_report(world.ctx, Actor.system("cli"), window.id)
    data.pop("generated_at"), expected.pop("generated_at")
    assert data == expected
    printed = cli("audit", "coverage", "--window", str(window.id))
    assert json.loads(printed.output)["published"] == expected["published"]
    for number in ("999", "2147483648"):
        missing = CliRunner().invoke(main, ["audit", "coverage", "--window", number])
        assert missing.exit_code == 1 and f"No window {number}" in missing.output


# --- the web app ---------------------------------------------------------------------------


def test_the_ledger_page_offers_the_export_form(world: World, client: FlaskClient) -> None:
    sign_in(client, world.auditor.email)
    page = client.get("/ledger").get_data(as_text=True)
    assert 'action="/ledger/export"' in page
    assert f'<option value="{world.writer_a.email}">' in page


def test_an_auditor_downloads_the_authorship_csv_streamed(
    world: World, history: History, client: FlaskClient
) -> None:
    sign_in(client, world.auditor.email)
    response = client.get(
        f"/ledger/export?report=authorship&format=csv&account={world.account.id}"
        "&window=&author=&from=&to="
    )
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="ghostpost-authorship-'
    )
    rows = csv_rows(response.get_data(as_text=True))
    assert [r["post_id"] for r in rows] == [
        p.public_id for p in all_posts(world) if p.account_id == world.account.id
    ]


def test_an_auditor_downloads_the_whole_ledger(
    world: World, history: History, client: FlaskClient
) -> None:
    sign_in(client, world.auditor.email)
    response = client.get("/ledger/export?report=ledger&format=&account=&from=&to=")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    header, entries, _ = ledger_records(response.get_data(as_text=True))
    assert header.complete is True
    # Signing in appends nothing; the export holds every entry at the time of the download.
    assert entries == all_entries(world)


def test_writers_get_403(world: World, history: History, client: FlaskClient) -> None:
    sign_in(client, world.writer_a.email)
    assert client.get("/ledger/export?report=authorship").status_code == 403
    assert client.get("/ledger/export?report=ledger").status_code == 403


def test_bad_forms_come_back_with_a_message(
    world: World, history: History, client: FlaskClient
) -> None:
    sign_in(client, world.manager.email)
    response = client.get("/ledger/export?report=ledger&format=csv")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/ledger#export")
    page = client.get("/ledger").get_data(as_text=True)
    assert "Export not started" in page and "JSONL only" in page
    bad_day = client.get("/ledger/export?from=21/11/2026")
    assert bad_day.status_code == 302
    assert client.get("/ledger/export?account=999").status_code == 404
    assert client.get("/ledger/export?account=2147483648").status_code == 404
    assert client.get("/ledger/export?window=9223372036854775807").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/ledger/export?report=ledger")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_a_principal_downloads_only_their_accounts(
    world: World, history: History, client: FlaskClient
) -> None:
    sign_in(client, "blake@example.test")
    response = client.get("/ledger/export?report=authorship&format=jsonl")
    assert response.status_code == 200
    assert [r["handle"] for r in jsonl_rows(response.get_data(as_text=True))] == ["blake"]


def test_the_history_template_holds_the_history_a_test_builds_itself(
    world: World, request: pytest.FixtureRequest
) -> None:
    # This test does not ask for `history`: it starts on the world's copy and builds it here.
    template: HistoryTemplate = request.getfixturevalue("history_template")
    built = build_history(world)

    assert world.container.clock.now() == template.now
    assert row_counts(world.container.settings.database_url) == template.seeded.counts
    assert without_random_ids(built) == without_random_ids(template.history)


def without_random_ids(history: History) -> History:
    """The history with the identifiers drawn at random (public ids, idempotency keys, the
    client id, also in a post's submitter) blanked: the rest is the same whoever builds it."""

    def blank(value: object) -> object:
        if isinstance(value, Post):
            submitter = "client:" if value.submitter.startswith("client:") else value.submitter
            return dataclasses.replace(value, public_id="", idempotency_key="", submitter=submitter)
        if isinstance(value, ApiClient):
            return dataclasses.replace(value, client_id="")
        return value

    return History(*(blank(getattr(history, f.name)) for f in dataclasses.fields(History)))  # type: ignore[arg-type]
