"""Issue 18, part 1 and "say why": a window's reason, the away notice, `{disclosure_url}` and the
public disclosure page, through the web app (forms with CSRF) and the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from ghostpost.domain.model import PostKind
from ghostpost.domain.policy import WindowKind
from ghostpost.services import windows
from ghostpost.services.context import Actor
from ghostpost.services.coverage import window_coverage
from ghostpost.services.errors import PolicyRefused, ValidationFailed
from tests.support.api import scheduler_for
from tests.support.web import post_form, sign_in
from tests.support.world import NOTICE, REMINDER, World, row_counts

PAGE_URL = "http://ghostpost.test/@avery/disclosure"
REASON = "Avery is on stage at DevSummit all week; the team posts the talks."


def window_form(world: World, **changes: str) -> dict[str, str]:
    start = world.container.clock.now() + timedelta(hours=2)
    data = {
        "name": "DevSummit",
        "kind": "delegation",
        "reason": REASON,
        "account_id": str(world.account.id),
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "notice_text": NOTICE,
        "reminder_text": REMINDER,
        "reminder_every": "10",
        "reminder_mode": "inline",
        "tag": "#team",
        "tag_mode": "when_fits",
        "tag_position": "end",
    }
    data.update(changes)
    return data


def counts(world: World) -> tuple[int, ...]:
    return row_counts(world.container.settings.database_url)


def all_posts(world: World) -> list[Any]:
    with world.ctx.uow(read_only=True) as uow:
        return uow.posts.list_for_account(world.account.id)


# --- say why: the reason is required ----------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "says"),
    [("", "required"), ("   \n ", "required"), ("x" * 501, "too long")],
)
def test_a_window_without_a_reason_is_refused_by_name_and_nothing_is_stored(
    world: World, client: FlaskClient, reason: str, says: str
) -> None:
    sign_in(client, world.manager.email)
    before = counts(world)
    response = post_form(client, "/windows/new", window_form(world, reason=reason), "/windows")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'href="#reason">Reason (public)</a>' in html
    assert says in html.lower()
    assert counts(world) == before


def test_every_other_way_of_creating_a_window_needs_a_reason_too(world: World) -> None:
    # The CLI, the demo seed and the tests all create windows through this one service.
    start = world.container.clock.now()
    spec = windows.WindowSpec(
        account_id=world.account.id,
        name="No reason",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        notice_text=NOTICE,
        reminder_text=REMINDER,
    )
    before = counts(world)
    with pytest.raises(ValidationFailed) as refused:
        windows.create_window(world.ctx, Actor.for_user(world.manager), spec)
    assert "reason" in refused.value.fields
    assert counts(world) == before


def test_the_reason_is_shown_to_staff_and_a_new_one_waits_for_the_principal(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window()
    world.approve_notice(window)
    sign_in(client, world.manager.email)
    assert "The principal is at a conference; the team posts." in client.get("/windows").get_data(
        as_text=True
    )
    edit = window_form(world, reason="Other words the principal never saw.")
    edit.update(
        starts_at=window.policy.starts_at.strftime("%Y-%m-%dT%H:%M"),
        ends_at=window.policy.ends_at.strftime("%Y-%m-%dT%H:%M"),
        name=window.name,
        notice_publish_at=window.notice_publish_at.strftime("%Y-%m-%dT%H:%M")
        if window.notice_publish_at
        else "",
    )
    response = post_form(client, f"/windows/{window.id}/edit", edit, "/windows")
    assert response.status_code == 302
    with world.ctx.uow(read_only=True) as uow:
        stored = uow.windows.get(window.id)
        proposals = uow.windows.proposals_of(window.id)
    assert stored is not None
    assert stored.policy.reason == "The principal is at a conference; the team posts."
    assert [p.changes["reason"]["new"] for p in proposals] == [
        "Other words the principal never saw."
    ]


# --- the away notice -------------------------------------------------------------------------


def test_an_away_notice_goes_out_and_no_delegated_post_does(
    world: World, client: FlaskClient
) -> None:
    sign_in(client, world.manager.email)
    start = world.container.clock.now()
    form = window_form(
        world,
        kind="away",
        reminder_text="",
        notice_text="I'm at the conference this week and will reply next week. {disclosure_url}",
        reason="Conference week: Avery reads nothing until Monday.",
        starts_at=start.strftime("%Y-%m-%dT%H:%M"),
        ends_at=(start + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"),
    )
    assert post_form(client, "/windows/new", form, "/windows").status_code == 302
    with world.ctx.uow(read_only=True) as uow:
        (window,) = uow.windows.list_for_account(world.account.id)
    assert window.policy.kind is WindowKind.AWAY
    world.approve_notice(window)
    world.run_worker()

    # Through the API: refused by name, nothing stored.
    scheduler = scheduler_for(client, world)
    before = counts(world)
    body = {"account": world.account.id, "text": "Great talk!", "author": world.writer_a.email}
    response = scheduler.create(body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["refusal"]["code"] == "away_window"
    assert "away notice" in response.get_json()["detail"]
    assert counts(world) == before
    # Through the web app's compose form as well.
    sign_in(client, world.writer_a.email)
    before = counts(world)  # signing in stored a session
    composed = post_form(
        client, "/compose", {"account_id": str(world.account.id), "text": "Great talk!"}
    )
    assert composed.status_code == 422
    assert "away notice" in composed.get_data(as_text=True)
    assert counts(world) == before

    # The principal's own posts go out, and no reminder ever does (N = 10).
    for n in range(12):
        world.submit(world.principal, f"Own post {n}")
    world.run_worker()
    published = [p for p in all_posts(world) if p.published_at is not None]
    assert [p.kind for p in published].count(PostKind.REMINDER) == 0
    assert sum(p.kind is PostKind.REGULAR for p in published) == 12
    (notice,) = [p for p in published if p.kind is PostKind.NOTICE]
    assert notice.final_text.endswith(PAGE_URL)
    # The coverage dashboard misses no reminder in it, and the public page says what it is.
    measured = window_coverage(world.ctx, Actor.system("test"), window.id).selected
    assert measured is not None and measured.coverage.reminders_missed == 0
    shown = client.get("/@avery/disclosure.json").get_json()["current"][0]
    assert shown["kind"] == "away" and shown["policy"].startswith("an away notice")
    assert shown["counts"]["posts_by_principal"] == 12 and shown["counts"]["reminders"] == 0


def test_a_delegated_post_queued_when_the_window_turns_away_does_not_go_out(
    world: World,
) -> None:
    # The app never changes a window's kind; someone writing to the database might. The worker
    # decides again at publication, with the window as it then is.
    window = world.open_window()
    world.approve_notice(window)
    world.run_worker()
    queued = world.submit(
        world.writer_a, "Queued", publish_at=world.container.clock.now() + timedelta(minutes=5)
    )
    with world.container.engine.begin() as db:
        db.execute(text("UPDATE windows SET kind = 'away' WHERE id = :id"), {"id": window.id})
    before = len(all_posts(world))
    world.container.clock.advance(minutes=10)
    world.run_worker()
    post = world.post(queued.id)
    assert post.published_at is None
    assert post.state.value == "refused" and "away notice" in (post.state_reason or "")
    assert len(all_posts(world)) == before
    with pytest.raises(PolicyRefused) as refused:
        world.submit(world.writer_a, "Another")
    assert refused.value.refusal_code == "away_window"


# --- {disclosure_url} -------------------------------------------------------------------------


def test_disclosure_url_is_filled_in_and_counted_as_it_goes_out(
    world: World, client: FlaskClient
) -> None:
    sign_in(client, world.manager.email)
    before = counts(world)
    unknown = window_form(world, notice_text="Details: {disclosure_link}")
    response = post_form(client, "/windows/new", unknown, "/windows")
    assert response.status_code == 422
    assert "unknown placeholder {disclosure_link}" in response.get_data(as_text=True).lower()
    # 500 characters as typed, over the limit once the page's URL replaces the placeholder.
    fits_only_unexpanded = "a" * 483 + " {disclosure_url}"
    response = post_form(
        client, "/windows/new", window_form(world, notice_text=fits_only_unexpanded), "/windows"
    )
    assert response.status_code == 422
    # The test host's `.test` URL is no link to Mastodon's counter: counted as written (39).
    assert "523 characters, the limit is 500" in response.get_data(as_text=True)
    assert counts(world) == before

    window = world.open_window(every=2, reminder_text="Some posts are my team's: {disclosure_url}")
    world.approve_notice(window)
    world.run_worker()
    world.submit(world.writer_a, "One")
    world.submit(world.writer_a, "Two")
    world.run_worker()
    texts = [p.final_text for p in all_posts(world) if p.published_at is not None]
    assert any(t.endswith(f"Some posts are my team's: {PAGE_URL}") for t in texts), texts
    assert not any("{disclosure_url}" in t for t in texts)


# --- the public page -------------------------------------------------------------------------


def ledger_counts(world: World, window_id: int) -> dict[str, int]:
    """The page's numbers as the ledger tells them (post:published entries of the window)."""
    found = {"posts_by_principal": 0, "posts_by_team": 0, "tagged": 0, "reminders": 0}
    with world.ctx.uow(read_only=True) as uow:
        for entry in uow.ledger.entries():
            data = entry.data
            if entry.tag != "post:published" or window_id not in data["counted_in_windows"]:
                continue
            decision = data.get("decision") or {}
            if (
                data["kind"] == "reminder"
                or decision.get("reminder", {}).get("outcome") == "inline"
            ):
                found["reminders"] += 1
            if data["kind"] != "regular":
                continue
            if data["writer"]["id"] == world.principal.id and data["submitter"] == (
                f"user:{world.principal.id}"
            ):
                found["posts_by_principal"] += 1
            else:
                found["posts_by_team"] += 1
                if decision["tag"]["outcome"] in ("applied", "already_present"):
                    found["tagged"] += 1
    return found


def test_the_disclosure_page_shows_windows_never_writers_and_counts_match_the_ledger(
    world: World, client: FlaskClient
) -> None:
    now = world.container.clock.now()
    window = world.open_window(every=3, hours=0.25)
    world.approve_notice(window)
    # Its notice goes out at once (the start is within the notice lead): listed as upcoming.
    soon = world.open_window(starts_at=now + timedelta(minutes=30))
    world.approve_notice(soon)
    # Approved, but its notice waits for its time: the page must not announce it before that.
    later = world.open_window(starts_at=now + timedelta(days=2))
    world.approve_notice(later)
    world.run_worker()
    world.submit(world.writer_a, "Keynote starts")
    world.submit(world.writer_b, "x" * 497)  # no room for the tag
    world.submit(world.principal, "My own words")
    world.submit(world.writer_a, "Demo time")
    world.run_worker()

    page = client.get("/@avery/disclosure")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    data = client.get("/@avery/disclosure.json").get_json()
    assert [w["reason"] for w in data["current"]] == [window.policy.reason]
    assert [w["starts_at"] for w in data["upcoming"]] == [soon.policy.starts_at.isoformat()]
    assert data["past"] == []
    current = data["current"][0]
    assert (
        current["policy"] == "a reminder every 3 posts; delegated posts carry #team when they fit"
    )
    assert current["notice"]["text"] == NOTICE
    assert current["notice"]["url"] and current["notice"]["url"] in html
    assert current["counts"] == ledger_counts(world, window.id)
    assert current["counts"]["posts_by_team"] == 3 and current["counts"]["posts_by_principal"] == 1
    assert data["url"] == PAGE_URL
    for shown in (html, str(data)):
        assert window.policy.reason in shown
        for writer in (world.writer_a, world.writer_b, world.manager):
            assert writer.name not in shown
            assert writer.email not in shown
    assert "a reminder every 3 posts; delegated posts carry #team when they fit" in html
    assert "3 by the team (2 tagged)" in html
    # Linked from the public timeline.
    assert 'href="/@avery/disclosure"' in client.get("/@avery").get_data(as_text=True)


def test_an_unknown_handle_is_a_404_page_and_problem(client: FlaskClient, world: World) -> None:
    page = client.get("/@nobody/disclosure")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    problem = client.get("/@nobody/disclosure.json")
    assert problem.status_code == 404
    assert problem.mimetype == "application/problem+json"
    assert problem.get_json()["code"] == "not_found"
