"""The coverage dashboard: exact numbers for a scripted window, the SVG chart, who may see it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.model import Role, Window
from ghostpost.services import directory, windows
from ghostpost.services.context import Actor
from ghostpost.services.coverage import window_coverage
from tests.support.web import PASSWORD, sign_in
from tests.support.world import REMINDER, World

LONG = "Backstage notes: " + "x" * 480  # 497 characters: " #team" (6) no longer fits in 500


def scripted_window(world: World) -> Window:
    """N = 3, inline reminders, #team when it fits; nine posts with every kind of mark."""
    clock = world.container.clock
    window = world.open_window(every=3)

    def step(author, text: str) -> None:  # type: ignore[no-untyped-def]
        world.submit(author, text)
        world.run_worker()
        clock.advance(minutes=5)

    step(world.principal, "Good morning from the venue!")  # 1 principal (before the notice)
    world.submit(world.writer_a, "Doors open at nine")  # held until the notice is out
    world.run_worker()
    clock.advance(minutes=5)
    world.approve_notice(window)
    world.run_worker()  # 2 notice, 3 the held post (tagged)
    clock.advance(minutes=5)
    step(world.principal, "Thanks for coming, everyone.")  # 4 principal
    step(world.writer_b, LONG)  # 5 standalone reminder (inline does not fit), 6 tag skipped
    step(world.writer_a, "Panel on trust starts now")  # 7 tagged
    step(world.writer_a, "Q&A is open")  # 8 tagged + inline reminder
    step(world.principal, "See you tomorrow.")  # 9 principal
    clock.advance(hours=9)  # past the end: this one is not the window's
    world.submit(world.principal, "After the show")
    world.run_worker()
    refreshed = world.ctx.uow
    with refreshed() as uow:
        found = uow.windows.get(window.id)
    assert found is not None
    return found


def number(html: str, label: str) -> str:
    found = re.search(
        r'<tr><th scope="row">' + re.escape(label) + r'</th><td class="num[^"]*">([^<]*)', html
    )
    assert found, label
    return found.group(1).strip()


def test_the_numbers_of_a_scripted_window_are_exact(world: World) -> None:
    window = scripted_window(world)
    page = window_coverage(world.ctx, Actor.for_user(world.auditor), window.id)
    assert page.selected is not None
    cov = page.selected.coverage
    assert [m.kind.value for m in cov.marks] == [
        "principal",
        "notice",
        "tagged",
        "principal",
        "reminder",
        "tag_skipped",
        "tagged",
        "inline_reminder",
        "principal",
    ]
    assert [m.run for m in cov.marks] == [1, 0, 1, 2, 0, 1, 2, 0, 1]
    assert (cov.published, cov.principal_posts, cov.delegated_posts, cov.notices) == (9, 3, 4, 1)
    assert (cov.tagged, cov.tag_skipped, cov.untagged, cov.tagged_percent) == (3, 1, 0, 75.0)
    [skipped] = cov.skipped_tags
    assert (skipped.position, skipped.needs, skipped.has, skipped.unit) == (6, 6, 3, "characters")
    assert (cov.reminders_due, cov.reminders_inline, cov.reminders_standalone) == (2, 1, 1)
    assert cov.reminders_missed == 0
    assert (cov.longest_run, cov.longest_run_ends_at) == (2, 4)
    assert cov.cadence_kept
    assert window.notice_published_at is not None
    assert cov.notice_published_at == window.notice_published_at
    assert cov.notice_lead == -timedelta(minutes=10)


def test_the_dashboard_shows_the_numbers_the_chart_and_the_skipped_tags(
    world: World, client: FlaskClient
) -> None:
    window = scripted_window(world)
    sign_in(client, world.manager.email)
    response = client.get(f"/coverage?window={window.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert number(html, "Published posts (incl. notice and reminders)") == "9"
    assert number(html, "By the principal") == "3"
    assert number(html, "Delegated") == "4"
    assert number(html, "Delegated and tagged") == "3 (75%)"
    assert number(html, "Tag skipped (did not fit)") == "1"
    assert number(html, "Reminders due") == "2"
    assert number(html, "Reminders sent inline") == "1"
    assert number(html, "Reminders sent standalone") == "1"
    assert number(html, "Reminders missed") == "0"
    assert number(html, "Longest run without a disclosure") == "2"
    assert number(html, "N (reminder every)") == "3"
    assert "10 min after the start" in html
    assert "by Avery Chen" in html
    # The skipped tag: needs 6, has 3, with a link to the post.
    skipped = html.split('id="skipped-title"')[1].split("</table>")[0]
    assert '<td class="num">6</td>' in skipped and "3 <span" in skipped
    assert 'href="/posts/' in skipped

    svg = html.split("<svg")[1].split("</svg>")[0]
    assert 'role="img"' in svg
    assert 'aria-labelledby="coverage-chart-title coverage-chart-desc"' in svg
    assert '<title id="coverage-chart-title">Published timeline of Conference' in svg
    assert "style=" not in svg
    marks = re.findall(r'<rect class="mark mark-([a-z_]+)" x="[\d.]+" y="24"', svg)
    assert marks == [
        "principal",
        "notice",
        "tagged",
        "principal",
        "reminder",
        "tag_skipped",
        "tagged",
        "inline_reminder",
        "principal",
    ]
    assert svg.count("<title>#") == 9
    assert "#6 · 2026-11-21" in svg and "Delegated, tag skipped" in svg
    legend = re.findall(r'<text class="legend-label"[^>]*>([^<]+)</text>', svg)
    assert legend == [
        "Notice (1)",
        "Standalone reminder (1)",
        "Inline reminder (1)",
        "Delegated, tagged (2)",
        "Delegated, tag skipped (1)",
        "Delegated, tag off (0)",
        "Principal (3)",
    ]
    assert 'class="threshold"' in svg
    # The same legend as text under the chart (shown on phones, where the chart's is tiny), and
    # a caption that does not ask a phone to hover.
    text_legend = re.search(r'<ul class="chart-legend"[^>]*>(.*?)</ul>', html, re.S)
    assert text_legend is not None
    assert re.findall(r"</span> ([^<]+)</li>", text_legend.group(1)) == legend
    assert "Hover" not in html and "on a phone or from the keyboard" in html


def test_the_chart_escapes_what_people_typed(world: World, client: FlaskClient) -> None:
    start = world.container.clock.now()
    window = windows.create_window(
        world.ctx,
        Actor.for_user(world.manager),
        windows.WindowSpec(
            reason="The principal is at a conference; the team posts.",
            account_id=world.account.id,
            name='<script>alert("x")</script>',
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            notice_text="Notice",
            reminder_text=REMINDER,
        ),
    )
    world.approve_notice(window)
    world.run_worker()
    sign_in(client, world.manager.email)
    html = client.get("/coverage").get_data(as_text=True)
    assert "<script>" not in html
    assert "Published timeline of &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_a_missed_reminder_is_flagged(world: World, client: FlaskClient) -> None:
    # A window whose N was raised after posts went out, then lowered: measured against the
    # current N, the run is longer than allowed and the dashboard says so.
    window = world.open_window(every=10)
    world.approve_notice(window)
    world.run_worker()
    for i in range(4):
        world.submit(world.writer_a, f"Post {i}")
        world.run_worker()
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
            reminder_every=3,
        ),
    )
    sign_in(client, world.auditor.email)
    html = client.get(f"/coverage?window={window.id}").get_data(as_text=True)
    assert number(html, "Reminders missed") == "2"
    assert number(html, "Longest run without a disclosure").startswith("4")
    assert "broken: N = 3" in html
    assert html.count('<circle class="missed"') == 2


def test_the_default_is_the_latest_window_that_has_begun(world: World, client: FlaskClient) -> None:
    clock = world.container.clock
    first = world.open_window(hours=2)
    current = world.open_window(starts_at=clock.now() + timedelta(hours=3), hours=2)
    future = world.open_window(starts_at=clock.now() + timedelta(days=2), hours=2)
    clock.advance(hours=4)
    sign_in(client, world.manager.email)
    html = client.get("/coverage").get_data(as_text=True)
    assert f'<option value="{current.id}" selected>' in html
    assert f'<option value="{first.id}">' in html and f'<option value="{future.id}">' in html
    html = client.get(f"/coverage?window={future.id}").get_data(as_text=True)
    assert "Nothing published in this window yet." in html
    assert "<svg" not in html


def test_without_windows_the_page_says_so(world: World, client: FlaskClient) -> None:
    sign_in(client, world.manager.email)
    response = client.get("/coverage")
    assert response.status_code == 200
    assert "No delegation windows yet" in response.get_data(as_text=True)


def test_who_may_see_coverage(world: World, client: FlaskClient) -> None:
    window = world.open_window()
    assert client.get("/coverage").status_code == 302
    admin = directory.create_user(
        world.ctx,
        Actor.system("t"),
        email="ada@example.test",
        name="Ada",
        role=Role.ADMIN,
        password=PASSWORD,
    )
    for user, status in (
        (world.writer_a, 403),
        (world.outsider, 403),
        (world.auditor, 200),
        (world.manager, 200),
        (world.principal, 200),
        (admin, 200),
    ):
        sign_in(client, user.email)
        assert client.get(f"/coverage?window={window.id}").status_code == status, user.email
        client.get("/home")
        with client.session_transaction() as session:
            session.clear()


@pytest.mark.parametrize(
    "query", ["window=999", "window=abc", "window=%C2%B2", "window=99999999999999999999999"]
)
def test_unknown_windows_are_404(world: World, client: FlaskClient, query: str) -> None:
    world.open_window()
    sign_in(client, world.manager.email)
    assert client.get(f"/coverage?{query}").status_code == 404


def test_another_principals_window_does_not_exist_for_a_principal(
    world: World, client: FlaskClient
) -> None:
    system = Actor.system("test")
    other = directory.create_principal(world.ctx, system, "Blake Stone")
    directory.create_account(world.ctx, system, principal_id=other.id, platform="local", handle="b")
    blake = directory.create_user(
        world.ctx,
        system,
        email="blake@example.test",
        name="Blake",
        role=Role.WRITER,
        password=PASSWORD,
        principal_id=other.id,
    )
    avery_window = world.open_window()
    sign_in(client, blake.email)
    assert client.get(f"/coverage?window={avery_window.id}").status_code == 404
    html = client.get("/coverage").get_data(as_text=True)
    assert "No delegation windows yet" in html
