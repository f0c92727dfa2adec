"""Deleting a published post (issue 15): the principal only, in person, through the Mastodon
face (`DELETE /api/v1/statuses/:id` with their own signed-in app's token) or the staff post page
(a confirmation step, CSRF). Attacks first, through the real routes: tokens come from the real
sign-in and token endpoints, forms carry real CSRF tokens. A refusal changes nothing: not the
platform, not the post, not the ledger.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ghostpost import deletion
from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerEntry, LedgerTag
from ghostpost.domain.model import Account, Role, User
from ghostpost.domain.states import PostState
from ghostpost.services import audit, directory
from ghostpost.services import deletion as deletion_service
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict
from ghostpost.settings import Settings
from tests.functional.test_exports import jsonl_rows, run_export
from tests.functional.test_mastodon_signin import exchange, register, sign_in_and_get_code
from tests.support.api import create_api_client, fetch_token
from tests.support.fault_proxy import Fault
from tests.support.platforms import platform_case
from tests.support.web import csrf_from, sign_in
from tests.support.world import World

FACE_HOST = "social.example.test"
FACE_URL = f"http://{FACE_HOST}"
SYSTEM = Actor.system("test")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, mastodon_host=FACE_HOST)


@pytest.fixture
def opened(world: World) -> World:
    world.approve_notice(world.open_window(every=3))
    return world


def signed_in_token(app: Flask, user: User, account: Account) -> str:
    """A Mastodon app's token, signed in by `user` for `account` (a browser of their own)."""
    browser = app.test_client()
    registered = register(browser)
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(browser, registered, user, account, verifier)
    response = exchange(browser, registered, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access_token"]
    return token


def face(http: FlaskClient, method: str, path: str, token: str, **kwargs: Any) -> TestResponse:
    return http.open(
        path,
        method=method,
        base_url=FACE_URL,
        headers={"Authorization": f"Bearer {token}"},
        **kwargs,
    )


def publish(http: FlaskClient, world: World, token: str, text: str) -> int:
    response = face(http, "POST", "/api/v1/statuses", token, data={"status": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    world.run_worker()
    post_id = int(response.get_json()["id"])
    assert world.post(post_id).state is PostState.PUBLISHED
    return post_id


def ledger(world: World) -> list[LedgerEntry]:
    with world.ctx.uow(read_only=True) as uow:
        return list(uow.ledger.entries())


def public_page(http: FlaskClient, world: World) -> str:
    return http.get(f"/@{world.account.handle}").get_data(as_text=True)


def everything(http: FlaskClient, world: World, post_id: int) -> tuple[object, ...]:
    """What a refused deletion must leave as it was: the post, the ledger, the platform."""
    post = world.post(post_id)
    with world.ctx.uow(read_only=True) as uow:
        window = uow.windows.covering(world.account.id, world.container.clock.now())
    assert window is not None
    return (
        post,
        len(ledger(world)),
        public_page(http, world),
        window.posts_since_disclosure,
    )


@pytest.fixture
def another_principal(world: World) -> tuple[User, Account]:
    principal = directory.create_principal(world.ctx, SYSTEM, "Blake Moss")
    account = directory.create_account(
        world.ctx, SYSTEM, principal_id=principal.id, platform="local", handle="blake"
    )
    user = directory.create_user(
        world.ctx,
        SYSTEM,
        email="blake@example.test",
        name="Blake Moss",
        role=Role.MANAGER,
        password="password-123",
        principal_id=principal.id,
    )
    return user, account


# --- attacks ------------------------------------------------------------------------------


def test_nobody_but_the_principal_deletes_a_published_post_through_the_face(
    app: Flask,
    client: FlaskClient,
    opened: World,
    another_principal: tuple[User, Account],
) -> None:
    world = opened
    # The manager may post for the account (assigned): still not take a post back.
    directory.assign_writer(
        world.ctx, SYSTEM, user_id=world.manager.id, account_id=world.account.id
    )
    writer_token = signed_in_token(app, world.writer_a, world.account)
    post_id = publish(client, world, writer_token, "Written by Jordan for Avery")
    assert "Written by Jordan" in public_page(client, world)

    manager_token = signed_in_token(app, world.manager, world.account)
    # A scheduler's client owned by the principal's own user acts for nobody in person.
    scheduler, secret = create_api_client(world, owner=world.principal)
    scheduler_token = fetch_token(client, scheduler.client_id, secret)
    other_user, other_account = another_principal
    other_token = signed_in_token(app, other_user, other_account)
    before = everything(client, world, post_id)

    for who, token, status in [
        ("the writer who wrote it", writer_token, 403),
        ("a manager", manager_token, 403),
        ("a scheduler's client token", scheduler_token, 403),
        # Another account's token does not even learn the post exists.
        ("another principal", other_token, 404),
    ]:
        for _ in range(2):
            response = face(client, "DELETE", f"/api/v1/statuses/{post_id}", token)
            assert response.status_code == status, (who, response.get_data(as_text=True))
            assert response.mimetype == "application/json"
            assert set(response.get_json()) <= {"error", "error_description"}, who
            if status == 403:
                assert "Only the principal" in response.get_json()["error"], who
        assert everything(client, world, post_id) == before, who


def test_nobody_but_the_principal_deletes_a_published_post_on_the_staff_pages(
    app: Flask, client: FlaskClient, opened: World
) -> None:
    world = opened
    post = world.submit(world.writer_a, "Written on the web")
    world.run_worker()
    before = everything(client, world, post.id)
    page = f"/posts/{post.public_id}"

    for user in (world.writer_a, world.manager):
        browser = app.test_client()
        sign_in(browser, user.email)
        shown = browser.get(page).get_data(as_text=True)
        assert "delete-link" not in shown, user.email
        # Forging the confirmed form with a valid CSRF token of their own session.
        refused = browser.post(
            f"{page}/delete", data={"csrf_token": csrf_from(browser, page), "confirm": "delete"}
        )
        assert refused.status_code == 403, user.email
        assert everything(client, world, post.id) == before, user.email

    principal = app.test_client()
    sign_in(principal, world.principal.email)
    # No CSRF token: refused before anything is read or changed.
    forged = principal.post(f"{page}/delete", data={"confirm": "delete"})
    assert forged.status_code in (400, 403)
    # No confirmation: nothing happens either (no one-click destruction).
    unconfirmed = principal.post(f"{page}/delete", data={"csrf_token": csrf_from(principal, page)})
    assert unconfirmed.status_code == 302
    assert everything(client, world, post.id) == before


def test_a_delegated_post_stays_the_writers_in_the_record_when_the_principal_deletes_it(
    app: Flask, client: FlaskClient, opened: World
) -> None:
    world = opened
    writer_token = signed_in_token(app, world.writer_a, world.account)
    post_id = publish(client, world, writer_token, "Delegated words")
    with world.ctx.uow(read_only=True) as uow:
        window = uow.windows.covering(world.account.id, world.container.clock.now())
    assert window is not None
    count = window.posts_since_disclosure
    principal_token = signed_in_token(app, world.principal, world.account)
    size = len(ledger(world))
    response = face(client, "DELETE", f"/api/v1/statuses/{post_id}", principal_token)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["text"].startswith("Delegated words")

    # Gone from the platform (the local public page) and from the face's timeline.
    assert "Delegated words" not in public_page(client, world)
    statuses = face(
        client, "GET", f"/api/v1/accounts/{world.account.id}/statuses", principal_token
    ).get_json()
    assert all(s["id"] != str(post_id) for s in statuses)
    gone = face(client, "GET", f"/api/v1/statuses/{post_id}", principal_token)
    assert (gone.status_code, gone.get_json()) == (404, {"error": "Record not found"})

    # The record: still published, still the writer's, delegated; deleted at the principal's
    # request. Nothing in it says the principal wrote it.
    post = world.post(post_id)
    assert post.state is PostState.PUBLISHED
    assert post.author_id == world.writer_a.id and post.is_delegated
    assert post.deleted_at is not None and post.deletion_requested_by == world.principal.id
    requested, deleted = ledger(world)[size:]
    assert requested.tag == LedgerTag.POST_DELETION_REQUESTED
    assert requested.actor == f"user:{world.principal.id}"
    assert requested.data["requested_by"]["email"] == world.principal.email
    assert requested.data["writer"]["email"] == world.writer_a.email
    assert requested.data["delegated"] is True
    assert requested.data["via"].startswith("mastodon-app:")
    assert deleted.tag == LedgerTag.POST_DELETED
    assert deleted.data["answer"] == "deleted"
    assert deleted.data["writer"]["email"] == world.writer_a.email
    assert deleted.data["requested_by"]["email"] == world.principal.email
    [published] = [
        e
        for e in ledger(world)
        if e.tag == LedgerTag.POST_PUBLISHED and e.subject == f"post:{post.public_id}"
    ]
    assert published.data["writer"]["email"] == world.writer_a.email

    # It was seen: the window's reminder count does not move back.
    with world.ctx.uow(read_only=True) as uow:
        after = uow.windows.get(window.id)
    assert after is not None and after.posts_since_disclosure == count

    # The authorship export: published, by whom, then deleted, when, at whose request.
    report = jsonl_rows(run_export(world, "authorship", "jsonl"))
    [row] = [r for r in report if r["post_id"] == post.public_id]
    assert row["state"] == "published" and row["published_at"]
    assert (row["writer_email"], row["delegated"]) == (world.writer_a.email, True)
    assert row["deleted_at"] and row["deleted_by_email"] == world.principal.email

    # The posts table and the ledger still agree; the chain verifies.
    assert audit.check_ledger_agreement(world.ctx).ok
    assert world.run_notary().outcome.value == "signed"


def test_replaying_the_delete_is_harmless(app: Flask, client: FlaskClient, opened: World) -> None:
    world = opened
    principal_token = signed_in_token(app, world.principal, world.account)
    post_id = publish(client, world, principal_token, "Mine, then not")
    first = face(client, "DELETE", f"/api/v1/statuses/{post_id}", principal_token)
    assert first.status_code == 200
    after_first = everything(client, world, post_id)
    for _ in range(2):
        again = face(client, "DELETE", f"/api/v1/statuses/{post_id}", principal_token)
        assert again.status_code == 200
        assert again.get_json()["id"] == str(post_id)
    assert everything(client, world, post_id) == after_first


def test_the_principal_deletes_on_the_staff_post_page_after_confirming(
    app: Flask, client: FlaskClient, opened: World
) -> None:
    world = opened
    post = world.submit(world.writer_b, "Sam's words")
    world.run_worker()
    page = f"/posts/{post.public_id}"
    browser = app.test_client()
    sign_in(browser, world.principal.email)
    assert "delete-link" in browser.get(page).get_data(as_text=True)
    confirm = browser.get(f"{page}/delete").get_data(as_text=True)
    assert "cannot be undone" in confirm and "Sam Rivera" in confirm
    done = browser.post(
        f"{page}/delete",
        data={"csrf_token": csrf_from(browser, f"{page}/delete"), "confirm": "delete"},
    )
    assert done.status_code == 302
    shown = browser.get(page).get_data(as_text=True)
    assert 'id="post-deleted"' in shown and "delete-link" not in shown
    assert "Sam&#39;s words" not in public_page(client, world)
    assert world.post(post.id).author_id == world.writer_b.id
    tags = [e.tag for e in ledger(world)[-2:]]
    assert tags == [LedgerTag.POST_DELETION_REQUESTED, LedgerTag.POST_DELETED]


def test_notices_and_queued_posts_are_not_deleted(
    app: Flask, client: FlaskClient, opened: World
) -> None:
    world = opened
    world.run_worker()
    notice = next(p for p in _posts(world) if p.kind.value == "notice")
    assert notice.state is PostState.PUBLISHED
    size = len(ledger(world))
    principal = Actor.for_user(world.principal)
    with pytest.raises(Conflict):
        deletion.delete_published_post(world.container, principal, notice.id)
    queued = world.submit(
        world.writer_a, "Later", publish_at=world.container.clock.now() + timedelta(hours=1)
    )
    with pytest.raises(deletion_service.NotPublished):
        deletion.delete_published_post(world.container, principal, queued.id)
    assert len(ledger(world)) == size + 1  # the queued post's submission only


# --- crash safety -------------------------------------------------------------------------


def _posts(world: World) -> list[Any]:
    with world.ctx.uow(read_only=True) as uow:
        return uow.posts.list_for_account(world.account.id)


def test_a_crash_before_the_platform_call_is_finished_by_the_worker(
    client: FlaskClient, opened: World, clock: FixedClock
) -> None:
    world = opened
    post = world.submit(world.writer_a, "Crash before the call")
    world.run_worker()
    claim = deletion_service.request_deletion(world.ctx, Actor.for_user(world.principal), post.id)
    assert isinstance(claim, deletion_service.DeletionClaim)
    # The request process dies here: the post is being deleted, still on the platform.
    assert world.post(post.id).is_being_deleted
    assert "Crash before the call" in public_page(client, world)
    world.run_worker()  # the lease has not run out: left to the request
    assert world.post(post.id).deleted_at is None

    clock.advance(seconds=deletion_service.DELETION_LEASE.total_seconds() + 1)
    world.run_worker()
    assert world.post(post.id).is_deleted
    assert "Crash before the call" not in public_page(client, world)
    last = ledger(world)[-1]
    assert (last.tag, last.actor, last.data["answer"], last.data["reconciled"]) == (
        LedgerTag.POST_DELETED,
        "system:worker",
        "deleted",
        True,
    )
    assert last.data["requested_by"]["email"] == world.principal.email


def test_a_crash_after_the_platform_call_records_it_as_already_gone(
    opened: World, clock: FixedClock
) -> None:
    world = opened
    post = world.submit(world.writer_a, "Crash after the call")
    world.run_worker()
    claim = deletion_service.request_deletion(world.ctx, Actor.for_user(world.principal), post.id)
    assert isinstance(claim, deletion_service.DeletionClaim)
    publisher = world.container.publisher_for(world.account)
    assert claim.post.platform_post_id is not None
    assert publisher.delete(world.account, claim.post.platform_post_id) is True
    # ...and dies before recording. The worker deletes again: already gone is deleted.
    clock.advance(seconds=deletion_service.DELETION_LEASE.total_seconds() + 1)
    world.run_worker()
    assert world.post(post.id).is_deleted
    assert ledger(world)[-1].data["answer"] == "already gone"
    assert audit.check_ledger_agreement(world.ctx).ok


# --- a real platform's refusals -----------------------------------------------------------


def test_on_mastodon_a_refusal_keeps_the_post_out_and_an_outage_is_finished_by_the_worker(
    settings: Settings, clock: FixedClock
) -> None:
    def no_pds() -> Any:
        raise AssertionError("no Bluesky here")

    with platform_case("mastodon", settings, clock, no_pds) as case:
        world = case.world
        principal = Actor.for_user(world.principal)
        post = world.submit(world.principal, "On Mastodon", account=case.account)
        world.run_worker()
        assert case.texts() == ["On Mastodon"]
        size = len(ledger(world))

        case.proxy.inject(
            Fault("DELETE", "/api/v1/statuses/", status=403, body='{"error":"not allowed"}')
        )
        refused = deletion.delete_published_post(world.container, principal, post.id)
        assert refused.refused is not None and "refused" in refused.refused
        assert not refused.post.is_being_deleted and refused.post.state is PostState.PUBLISHED
        assert case.texts() == ["On Mastodon"]
        tags = [e.tag for e in ledger(world)[size:]]
        assert tags == [LedgerTag.POST_DELETION_REQUESTED, LedgerTag.POST_DELETION_FAILED]

        case.proxy.inject(Fault("DELETE", "/api/v1/statuses/", status=503, body="{}"))
        pending = deletion.delete_published_post(world.container, principal, post.id)
        assert pending.pending and pending.post.is_being_deleted
        assert case.texts() == ["On Mastodon"]
        clock.advance(seconds=deletion_service.DELETION_LEASE.total_seconds() + 1)
        world.run_worker()
        assert world.post(post.id).is_deleted
        assert case.texts() == []
        assert ledger(world)[-1].tag == LedgerTag.POST_DELETED
        assert audit.check_ledger_agreement(world.ctx).ok
