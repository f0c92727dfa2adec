"""The ledger viewer: who reads it, what each row says, filters done in SQL, keyset pages."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.model import Account, Role, User
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.support.postgres import PostgresServer
from tests.support.web import PASSWORD, sign_in
from tests.support.world import (
    SEEDED_FROM,
    World,
    WorldTemplate,
    derive_template,
    row_counts,
)

ROW = re.compile(r'<tr id="entry-(\d+)">')


def seqs(html: str) -> list[int]:
    return [int(s) for s in ROW.findall(html)]


def all_entries(world: World) -> list:
    with world.ctx.uow() as uow:
        return list(uow.ledger.entries())


def get(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    return response.get_data(as_text=True)


def link(html: str, label: str) -> str | None:
    found = re.search(r'<a href="([^"]+)"[^>]*>' + re.escape(label) + "</a>", html)
    return found.group(1).replace("&amp;", "&") if found else None


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


def busy_world(world: World, posts: int = 30, first: int = 0) -> None:
    """A window, its notice approved, and `posts` posts submitted a minute apart, then
    published; from `first` on: the same posts more, in the window a busy world opened."""
    if first == 0:
        window = world.open_window()
        world.approve_notice(window)
    for i in range(first, first + posts):
        world.submit(world.writer_a if i % 2 else world.writer_b, f"Post number {i}")
        world.container.clock.advance(minutes=1)
    world.run_worker()


@dataclasses.dataclass(frozen=True)
class BusyTemplate:
    """`busy_world(world, posts=30)` built once into a copy of the world's template (database,
    signing key, witness and notary state), with the clock where it left it."""

    seeded: WorldTemplate
    now: datetime


#: A test asking for `busy_30` starts on a copy of the busy template (tests/conftest.py): the
#: two paging tests built 30 and 60 posts of it, one by one, each.
pytestmark = pytest.mark.seeded_template("busy_30", "busy_world_template")


@pytest.fixture(scope="session")
def busy_template(
    tmp_path_factory: pytest.TempPathFactory,
    world_template: WorldTemplate,
    postgres: PostgresServer | None,
) -> BusyTemplate:
    """`busy_world(world, posts=30)` on a copy of the world's template, once per session."""
    seeded, _, now = derive_template(
        tmp_path_factory,
        world_template,
        postgres,
        "ledger_busy",
        lambda world: busy_world(world, posts=30),
    )
    return BusyTemplate(seeded, now)


@pytest.fixture(scope="session")
def busy_world_template(busy_template: BusyTemplate) -> WorldTemplate:
    return busy_template.seeded


@pytest.fixture
def busy_30(request: pytest.FixtureRequest, world: World) -> None:
    """`busy_world(world, posts=30)`: the template's when the test started on its copy."""
    template: BusyTemplate = request.getfixturevalue("busy_template")
    if request.node.stash.get(SEEDED_FROM, None) is template.seeded:
        if row_counts(world.container.settings.database_url) != template.seeded.counts:
            raise RuntimeError("the database changed between the world and busy fixtures")
        world.container.clock.set(template.now)  # type: ignore[attr-defined]
        return
    busy_world(world, posts=30)


# --- who reads it -----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/ledger?action=post:submitted")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/ledger")


def test_writers_get_403(world: World, client: FlaskClient) -> None:
    sign_in(client, world.writer_a.email)
    get(client, "/ledger", 403)


@pytest.mark.parametrize("who", ["manager", "auditor", "principal", "admin"])
def test_staff_who_oversee_read_the_ledger(world: World, client: FlaskClient, who: str) -> None:
    if who == "admin":
        user = directory.create_user(
            world.ctx,
            Actor.system("t"),
            email="ada@example.test",
            name="Ada",
            role=Role.ADMIN,
            password=PASSWORD,
        )
    else:
        user = getattr(world, who)
    sign_in(client, user.email)
    html = get(client, "/ledger")
    assert seqs(html) == sorted((e.seq for e in all_entries(world)), reverse=True)
    assert "<form" in html and 'method="post"' not in html.split("</header>")[1]


def test_a_principal_who_is_not_staff_reads_only_their_accounts(
    world: World, client: FlaskClient
) -> None:
    busy_world(world, posts=2)
    account, blake = second_account(world)
    window = world.open_window(account=account)
    world.submit(world.writer_b, "For Blake", account=account)
    sign_in(client, blake.email)
    html = get(client, "/ledger")
    mine = {f"account:{account.id}", f"window:{window.id}", *_post_subjects(world, account)}
    expected = [e.seq for e in all_entries(world) if e.subject in mine]
    # account:created, assignment:created, window:created, post:submitted
    assert len(expected) == 4
    assert seqs(html) == sorted(expected, reverse=True)
    assert "@avery" not in html
    get(client, f"/ledger?account={world.account.id}", 404)


def _post_subjects(world: World, account: Account) -> set[str]:
    with world.ctx.uow() as uow:
        return {f"post:{p.public_id}" for p in uow.posts.list_for_account(account.id)}


# --- what a row says --------------------------------------------------------------------------


def test_each_row_shows_seq_time_action_actor_subject_summary_and_hash(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window()
    world.approve_notice(window)
    world.run_worker()
    post = world.submit(world.writer_a, "Hello from the <b>keynote</b> stage")
    world.run_worker()
    sign_in(client, world.auditor.email)
    html = get(client, "/ledger?action=post:submitted")
    [entry] = [e for e in all_entries(world) if e.tag == "post:submitted"]
    assert seqs(html) == [entry.seq]
    row = html.split(f'<tr id="entry-{entry.seq}">')[1].split("</tr>")[0]
    assert f'<td class="num">{entry.seq}</td>' in row
    assert (
        '<time datetime="2026-11-21T09:00:00Z" title="2026-11-21 09:00:00 UTC">'
        "2026-11-21 09:00:00 UTC</time>"
    ) in row
    assert '<span class="badge tag">post:submitted</span>' in row
    assert "Jordan Park" in row  # the actor, by name
    assert f'href="/posts/{post.public_id}"' in row
    assert "Hello from the &lt;b&gt;keynote&lt;/b&gt; stage" in row
    assert "<b>keynote</b>" not in row
    assert "#team will be added" in row
    assert f'<code class="hash" title="{entry.entry_hash}">{entry.entry_hash[:12]}</code>' in row

    published = get(client, f"/ledger?subject=post:{post.public_id}&action=post:published")
    assert "Hello from the &lt;b&gt;keynote&lt;/b&gt; stage #team" in published
    assert "#team added" in published
    assert "Publishing worker" in published


def test_window_updates_show_old_and_new_values(world: World, client: FlaskClient) -> None:
    from ghostpost.services import windows

    window = world.open_window(starts_at=datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    windows.update_window(
        world.ctx,
        Actor.for_user(world.manager),
        window.id,
        windows.WindowSpec(
            reason="The principal is at a conference; the team posts.",
            account_id=world.account.id,
            name=window.name,
            starts_at=window.policy.starts_at,
            ends_at=window.policy.ends_at,
            notice_text=window.policy.notice_text,
            reminder_text=window.policy.reminder_text,
            reminder_every=4,
        ),
    )
    sign_in(client, world.manager.email)
    html = get(client, f"/ledger?subject=window:{window.id}")
    assert "window:updated" in html and "window:created" in html
    assert "Changed reminder every N" in html and "10 → 4" in html


# --- filters ----------------------------------------------------------------------------------


def test_the_subject_filter_shows_one_posts_entries(world: World, client: FlaskClient) -> None:
    busy_world(world, posts=3)
    with world.ctx.uow() as uow:
        post = uow.posts.list_for_account(world.account.id)[-1]
    sign_in(client, world.manager.email)
    html = get(client, f"/ledger?subject=post:{post.public_id}")
    expected = [e.seq for e in all_entries(world) if e.subject == f"post:{post.public_id}"]
    assert seqs(html) == sorted(expected, reverse=True)
    assert [e.tag for e in all_entries(world) if e.seq in expected] == [
        "post:submitted",
        "post:publishing",
        "post:published",
    ]
    assert f'value="post:{post.public_id}"' in html
    assert ">Clear filters<" in html


def test_account_window_author_and_action_filters(world: World, client: FlaskClient) -> None:
    busy_world(world, posts=4)
    account, _ = second_account(world)
    other_window = world.open_window(account=account)
    post_b = world.submit(world.writer_b, "On Blake's account", account=account)
    entries = all_entries(world)
    with world.ctx.uow() as uow:
        posts = {
            f"post:{p.public_id}": p
            for a in (world.account, account)
            for p in uow.posts.list_for_account(a.id)
        }
    sign_in(client, world.manager.email)

    html = get(client, f"/ledger?account={account.id}")
    expected = [
        e.seq
        for e in entries
        if e.subject in (f"account:{account.id}", f"window:{other_window.id}")
        or (e.subject in posts and posts[e.subject].account_id == account.id)
    ]
    assert seqs(html) == sorted(expected, reverse=True)
    assert f"post:{post_b.public_id}" in {e.subject for e in entries if e.seq in seqs(html)}

    html = get(client, f"/ledger?window={other_window.id}")
    expected = [
        e.seq
        for e in entries
        if e.subject == f"window:{other_window.id}"
        or (e.subject in posts and posts[e.subject].window_id == other_window.id)
    ]
    assert seqs(html) == sorted(expected, reverse=True)

    html = get(client, f"/ledger?author={world.writer_a.id}")
    expected = [
        e.seq
        for e in entries
        if e.subject in posts and posts[e.subject].author_id == world.writer_a.id
    ]
    assert len(expected) == 2 * 3  # two posts, submitted + publishing + published
    assert seqs(html) == sorted(expected, reverse=True)

    html = get(
        client, f"/ledger?author={world.writer_b.id}&account={account.id}&action=post:submitted"
    )
    [only] = [e for e in entries if e.seq in seqs(html)]
    assert only.subject == f"post:{post_b.public_id}"


def test_the_time_range_filter_takes_utc_days_inclusive(world: World, client: FlaskClient) -> None:
    clock = world.container.clock
    window = world.open_window(hours=72)
    world.approve_notice(window)
    world.run_worker()
    clock.set(datetime(2026, 11, 22, 23, 59, tzinfo=UTC))
    late = world.submit(world.writer_a, "Late on the 22nd")
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    early = world.submit(world.writer_a, "Early on the 23rd")
    sign_in(client, world.manager.email)
    by_subject = {e.subject: e.seq for e in all_entries(world) if e.tag == "post:submitted"}

    html = get(client, "/ledger?action=post:submitted&from=2026-11-22&to=2026-11-22")
    assert seqs(html) == [by_subject[f"post:{late.public_id}"]]
    html = get(client, "/ledger?action=post:submitted&from=2026-11-23")
    assert seqs(html) == [by_subject[f"post:{early.public_id}"]]
    html = get(client, "/ledger?to=2026-11-21")
    assert seqs(html) and all(
        e.occurred_at.startswith("2026-11-21") for e in all_entries(world) if e.seq in seqs(html)
    )


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("from=21/11/2026", "from", "Not a date (YYYY-MM-DD)."),
        ("from=2026-11-23&to=2026-11-22", "to", "Is before the start date."),
        ("action=post:vanished", "action", "Unknown action."),
        ("account=abc", "account", "Not a valid choice."),
        ("before=x", "before", "Not a valid choice."),
        ("before=99999999999999999999999", "before", "Not a valid choice."),
        ("after=%C2%B2", "after", "Not a valid choice."),  # "²" is a digit to str.isdigit
        ("window=-1", "window", "Not a valid choice."),
    ],
)
def test_bad_filters_are_explained(
    world: World, client: FlaskClient, query: str, field: str, message: str
) -> None:
    sign_in(client, world.manager.email)
    response = client.get(f"/ledger?{query}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert seqs(html) == []


@pytest.mark.parametrize("query", ["account=999", "window=999", "author=999"])
def test_filters_naming_unknown_objects_are_404(
    world: World, client: FlaskClient, query: str
) -> None:
    sign_in(client, world.manager.email)
    get(client, f"/ledger?{query}", 404)


# --- pages ------------------------------------------------------------------------------------


def test_pages_of_50_newest_first_walk_the_whole_ledger_both_ways(
    world: World, client: FlaskClient, busy_30: None
) -> None:
    total = sorted((e.seq for e in all_entries(world)), reverse=True)
    assert len(total) > 100
    sign_in(client, world.auditor.email)

    first = get(client, "/ledger")
    assert seqs(first) == total[:50]
    assert link(first, "Newer entries") is None
    pages = [seqs(first)]
    html = first
    while (older := link(html, "Older entries")) is not None:
        assert parse_qs(urlsplit(older).query)["before"] == [str(pages[-1][-1])]
        html = get(client, older)
        pages.append(seqs(html))
    assert [len(p) for p in pages] == [50, 50, len(total) - 100]
    assert [s for p in pages for s in p] == total

    # Back up from the last page, one page at a time.
    newer = link(html, "Newer entries")
    assert newer is not None and link(html, "Newest") is not None
    middle = get(client, newer)
    assert seqs(middle) == pages[1]
    back = get(client, link(middle, "Newer entries") or "")
    assert seqs(back) == pages[0]
    assert link(back, "Newer entries") is None


def test_filters_survive_paging(world: World, client: FlaskClient, busy_30: None) -> None:
    busy_world(world, posts=30, first=30)  # 60 posts in all
    sign_in(client, world.manager.email)
    html = get(client, "/ledger?action=post:published")
    published = sorted(
        (e.seq for e in all_entries(world) if e.tag == "post:published"), reverse=True
    )
    assert len(published) == 61
    assert seqs(html) == published[:50]
    older = link(html, "Older entries")
    assert older is not None and "action=post:published" in older
    assert seqs(get(client, older)) == published[50:]
