"""Delegation ends when it is withdrawn (issue 12), attacked through the real interfaces.

A writer unassigned from the account or deactivated, or an API client revoked: their posts not
yet published go back to `held` with the reason shown (post page, queue, API) and never publish
under the withdrawn grant, not even when a database writer flips them back to `scheduled`. A
manager (or the principal) may restore the grant and release them, or cancel them; the ledger
records every step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text, update

from ghostpost.adapters.base import Receipt, RetryableError
from ghostpost.adapters.local import LocalPublisher
from ghostpost.bootstrap import Container
from ghostpost.cli import main
from ghostpost.db.models import PostRow
from ghostpost.domain.model import Account, Post, Role, User
from ghostpost.domain.states import PostState
from ghostpost.services import directory
from ghostpost.services.context import Actor
from tests.conftest import START
from tests.support.api import Scheduler, scheduler_for
from tests.support.web import PASSWORD, csrf_from, post_form, sign_in
from tests.support.world import NOTICE, World

DUE = START + timedelta(hours=1)
TEXT = "Panel on AI governance at 10, come by booth 12"


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def live(world: World) -> None:
    """A live window whose notice is already out, so delegated posts publish when due."""
    world.approve_notice(world.open_window(every=10))
    world.run_worker()


@pytest.fixture
def admin(world: World) -> User:
    return directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="ada@example.test",
        name="Ada Admin",
        role=Role.ADMIN,
        password=PASSWORD,
    )


def signed_in(app: Flask, user: User) -> FlaskClient:
    browser = app.test_client()
    assert sign_in(browser, user.email).status_code == 302
    return browser


def compose(browser: FlaskClient, world: World, text_: str = TEXT) -> Post:
    """The writer schedules a post for DUE through the compose form."""
    response = browser.post(
        "/compose",
        data={
            "csrf_token": csrf_from(browser, "/compose"),
            "account_id": str(world.account.id),
            "text": text_,
            "publish_at": DUE.strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "action": "submit",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    public_id = response.headers["Location"].rsplit("/", 1)[1]
    return by_public_id(world, public_id)


def by_public_id(world: World, public_id: str) -> Post:
    with world.ctx.uow() as uow:
        post = uow.posts.by_public_id(public_id)
    assert post is not None
    return post


def fresh(world: World, post: Post) -> Post:
    return world.post(post.id)


def entries(world: World, post: Post | None = None, tag: str | None = None) -> list[Any]:
    with world.ctx.uow() as uow:
        return [
            e
            for e in uow.ledger.entries()
            if (post is None or e.subject == f"post:{post.public_id}")
            and (tag is None or e.tag == tag)
        ]


def ledger_size(world: World) -> int:
    with world.ctx.uow() as uow:
        return uow.ledger.head()[0]


def done(response: Any) -> Any:
    """A form post that worked: redirected back, not to the sign-in page (sessions time out)."""
    assert response.status_code == 302, response.get_data(as_text=True)
    assert not response.headers["Location"].startswith("/login")
    return response


def unassign(browser: FlaskClient, world: World, user: User) -> None:
    ids = {"account_id": str(world.account.id), "user_id": str(user.id)}
    done(post_form(browser, "/windows/assignments/remove", ids, "/windows"))


def reassign(browser: FlaskClient, world: World, user: User) -> None:
    ids = {"account_id": str(world.account.id), "user_id": str(user.id)}
    done(post_form(browser, "/windows/assignments", ids, "/windows"))


def set_active(browser: FlaskClient, user: User, active: bool) -> None:
    target = f"/admin/users/{user.id}/active"
    data = {"active": "1" if active else "0"}
    done(post_form(browser, target, data, "/admin/users"))


def release(browser: FlaskClient, post: Post) -> Any:
    page = f"/posts/{post.public_id}"
    return post_form(browser, f"{page}/release", {"next": page}, page)


def run_worker_past_due(world: World) -> None:
    world.container.clock.set(DUE + timedelta(minutes=5))
    world.run_worker()


def assert_withdrawn(world: World, post: Post, *, grant: str, says: str) -> Post:
    held = fresh(world, post)
    assert held.state is PostState.HELD
    assert held.published_at is None and held.platform_post_id is None
    assert held.state_reason is not None and says in held.state_reason
    assert held.decisions["hold"]["kind"] == "grant_withdrawn"
    assert held.decisions["hold"]["grant"] == grant
    return held


def timeline_texts(world: World) -> list[str]:
    with world.ctx.uow() as uow:
        return [
            p.final_text
            for p in uow.posts.list_for_account(world.account.id)
            if p.state is PostState.PUBLISHED
        ]


# --- unassignment -----------------------------------------------------------------------------


def test_an_unassigned_writers_post_is_held_never_published_and_released_after_reassignment(
    world: World, app: Flask, live: None
) -> None:
    writer = signed_in(app, world.writer_a)
    post = compose(writer, world)
    others = compose(signed_in(app, world.writer_b), world, "Sam's post goes out as planned")
    manager = signed_in(app, world.manager)

    unassign(manager, world, world.writer_a)

    reason = "Jordan Park was unassigned from @avery"
    held = assert_withdrawn(world, post, grant="assignment", says=reason)
    [withdrawn] = entries(world, post, "post:withdrawn")
    assert withdrawn.actor == f"user:{world.manager.id}"
    assert withdrawn.data["was"] == "scheduled"
    assert withdrawn.data["grant"] == "assignment"
    assert withdrawn.data["writer"]["email"] == world.writer_a.email
    # The reason is shown where people look: the post page, the queue, the API.
    page = manager.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert reason in page and ">Release<" in page
    queue = manager.get("/queue?state=held").get_data(as_text=True)
    assert reason in queue and f"/posts/{post.public_id}/release" in queue
    api = scheduler_for(app.test_client(), world).get(f"/api/v1/posts/{post.public_id}")
    assert api.get_json()["state"] == "held" and reason in api.get_json()["state_reason"]

    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.HELD
    assert TEXT not in " ".join(timeline_texts(world))
    assert fresh(world, others).state is PostState.PUBLISHED  # other writers are untouched
    manager = signed_in(app, world.manager)  # an hour went by: the old session timed out

    # Releasing while the grant is still withdrawn is refused, and stores nothing.
    size = ledger_size(world)
    refused = release(manager, held)
    assert refused.status_code == 409
    assert "not assigned to @avery" in refused.get_data(as_text=True)
    assert ledger_size(world) == size and fresh(world, post).state is PostState.HELD

    reassign(manager, world, world.writer_a)
    assert fresh(world, post).state is PostState.HELD  # reassigning alone releases nothing
    done(release(manager, held))
    released = fresh(world, post)
    assert released.state is PostState.SCHEDULED and "hold" not in released.decisions
    [entry] = entries(world, post, "post:released")
    assert entry.actor == f"user:{world.manager.id}" and entry.data["grant"] == "assignment"

    world.run_worker()
    published = fresh(world, post)
    assert published.state is PostState.PUBLISHED
    assert published.final_text.endswith("#team")


def test_a_writer_may_not_release_their_own_withdrawn_post_and_the_form_needs_csrf(
    world: World, app: Flask, live: None
) -> None:
    post = compose(signed_in(app, world.writer_a), world)
    manager = signed_in(app, world.manager)
    unassign(manager, world, world.writer_a)
    reassign(manager, world, world.writer_a)
    size = ledger_size(world)

    writer = signed_in(app, world.writer_a)
    assert ">Release<" not in writer.get(f"/posts/{post.public_id}").get_data(as_text=True)
    assert "/release" not in writer.get("/queue").get_data(as_text=True)
    assert release(writer, post).status_code == 403
    assert release(signed_in(app, world.auditor), post).status_code in (403, 404)
    no_token = manager.post(f"/posts/{post.public_id}/release", data={})
    assert no_token.status_code == 400
    assert ledger_size(world) == size and fresh(world, post).state is PostState.HELD


def test_a_post_held_for_another_reason_is_not_released_by_hand(world: World, app: Flask) -> None:
    window = world.open_window(every=10)  # notice not approved: delegated posts wait for it
    post = compose(signed_in(app, world.writer_a), world)
    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.HELD
    size = ledger_size(world)

    response = release(signed_in(app, world.manager), post)

    assert response.status_code == 409
    assert "withdrawn" in response.get_data(as_text=True)
    assert ledger_size(world) == size
    assert window.id == fresh(world, post).window_id


def test_the_notice_going_out_does_not_release_a_post_whose_grant_was_withdrawn(
    world: World, app: Flask
) -> None:
    window = world.open_window(every=10)
    post = compose(signed_in(app, world.writer_a), world)
    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.HELD  # waiting for the notice
    unassign(signed_in(app, world.manager), world, world.writer_a)
    assert_withdrawn(world, post, grant="assignment", says="unassigned")

    world.approve_notice(window)
    world.run_worker()
    world.run_worker()

    assert assert_withdrawn(world, post, grant="assignment", says="unassigned")
    assert not entries(world, post, "post:released")
    assert TEXT not in " ".join(timeline_texts(world))


def test_a_post_awaiting_approval_is_held_then_released_back_to_the_principal(
    world: World, app: Flask
) -> None:
    world.approve_notice(world.open_window(every=10, requires_approval=True))
    world.run_worker()
    post = compose(signed_in(app, world.writer_a), world)
    assert post.state is PostState.PENDING_APPROVAL
    manager = signed_in(app, world.manager)

    unassign(manager, world, world.writer_a)
    assert_withdrawn(world, post, grant="assignment", says="unassigned")
    principal = signed_in(app, world.principal)
    assert post.public_id not in principal.get("/approvals").get_data(as_text=True)

    reassign(manager, world, world.writer_a)
    done(release(manager, post))
    # Released to where it was: the principal never approved it.
    assert fresh(world, post).state is PostState.PENDING_APPROVAL


# --- deactivation -----------------------------------------------------------------------------


def test_a_deactivated_writers_posts_are_held_until_reactivated_and_released(
    world: World, app: Flask, live: None, admin: User
) -> None:
    post = compose(signed_in(app, world.writer_a), world)
    boss = signed_in(app, admin)

    set_active(boss, world.writer_a, False)

    held = assert_withdrawn(world, post, grant="user", says="Jordan Park was deactivated")
    [withdrawn] = entries(world, post, "post:withdrawn")
    assert withdrawn.actor == f"user:{admin.id}" and withdrawn.data["grant"] == "user"
    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.HELD

    manager = signed_in(app, world.manager)
    refused = release(manager, held)
    assert refused.status_code == 409 and "deactivated" in refused.get_data(as_text=True)

    set_active(signed_in(app, admin), world.writer_a, True)
    assert fresh(world, post).state is PostState.HELD  # reactivation alone releases nothing
    done(release(manager, held))
    world.run_worker()
    published = fresh(world, post)
    assert published.state is PostState.PUBLISHED and published.final_text.endswith("#team")


def test_the_manager_may_cancel_a_withdrawn_post_instead(
    world: World, app: Flask, live: None, admin: User
) -> None:
    post = compose(signed_in(app, world.writer_a), world)
    set_active(signed_in(app, admin), world.writer_a, False)
    manager = signed_in(app, world.manager)
    page = f"/posts/{post.public_id}"
    done(post_form(manager, f"{page}/cancel", {"next": page}, page))
    assert fresh(world, post).state is PostState.CANCELLED
    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.CANCELLED


# --- revoked API clients ----------------------------------------------------------------------


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", database_url)


def api_post(scheduler: Scheduler, world: World, author: User) -> Post:
    response = scheduler.create(
        {
            "account": world.account.id,
            "text": TEXT,
            "author": author.email,
            "publish_at": DUE.isoformat(),
        }
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return by_public_id(world, response.get_json()["id"])


def test_a_revoked_clients_posts_are_held_and_can_only_be_cancelled(
    world: World, app: Flask, live: None, cli_env: None
) -> None:
    scheduler = scheduler_for(app.test_client(), world)
    post = api_post(scheduler, world, world.writer_a)
    by_hand = compose(signed_in(app, world.writer_a), world, "Written in the web app")

    revoked = CliRunner().invoke(main, ["clients", "revoke", scheduler.client.client_id])
    assert revoked.exit_code == 0, revoked.output

    reason = f"API client {scheduler.client.name!r} was revoked"
    held = assert_withdrawn(world, post, grant="client", says=reason)
    assert held.decisions["hold"]["client_id"] == scheduler.client.client_id
    [withdrawn] = entries(world, post, "post:withdrawn")
    assert withdrawn.actor == "system:cli"
    assert fresh(world, by_hand).state is PostState.SCHEDULED  # the writer keeps their grant

    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.HELD
    assert fresh(world, by_hand).state is PostState.PUBLISHED

    manager = signed_in(app, world.manager)
    refused = release(manager, held)
    assert refused.status_code == 409 and "revoked" in refused.get_data(as_text=True)
    page = f"/posts/{post.public_id}"
    done(post_form(manager, f"{page}/cancel", {"next": page}, page))
    assert fresh(world, post).state is PostState.CANCELLED


# --- a database writer ------------------------------------------------------------------------


def behind_the_apps_back(world: World, statement: Any, **params: Any) -> None:
    """Write to the database directly, as a database writer would: no use case, no ledger."""
    engine = create_engine(world.container.settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement) if isinstance(statement, str) else statement, params)
    finally:
        engine.dispose()


def test_a_database_writer_flipping_a_withdrawn_post_back_to_scheduled_gets_nothing_published(
    world: World, app: Flask, live: None
) -> None:
    post = compose(signed_in(app, world.writer_a), world)
    unassign(signed_in(app, world.manager), world, world.writer_a)
    assert_withdrawn(world, post, grant="assignment", says="unassigned")

    # The marker goes too: the worker must not rely on anything the attacker can erase.
    behind_the_apps_back(
        world,
        update(PostRow.__table__)
        .where(PostRow.__table__.c.id == post.id)
        .values(state="scheduled", state_reason=None, decisions={"delegated": True}),
    )
    run_worker_past_due(world)

    held = assert_withdrawn(world, post, grant="assignment", says="not assigned to @avery")
    assert TEXT not in " ".join(timeline_texts(world))
    [again] = [e for e in entries(world, post, "post:withdrawn") if e.actor == "system:worker"]
    assert again.data["was"] == "scheduled"
    assert held.decisions["hold"]["by"] == "system:worker"


def test_the_worker_rechecks_every_grant_withdrawn_behind_the_apps_back(
    world: World, app: Flask, live: None
) -> None:
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.outsider.id, account_id=world.account.id
    )
    unassigned = compose(signed_in(app, world.writer_a), world)
    deactivated = compose(signed_in(app, world.writer_b), world, "Sam's view of the panel")
    scheduler = scheduler_for(app.test_client(), world)
    by_client = api_post(scheduler, world, world.outsider)
    size = len(entries(world, tag="post:withdrawn"))
    # None of the app's use cases run: each grant disappears straight from the database.
    behind_the_apps_back(world, "DELETE FROM assignments WHERE user_id = :u", u=world.writer_a.id)
    behind_the_apps_back(
        world, "UPDATE users SET is_active = :f WHERE id = :u", f=False, u=world.writer_b.id
    )
    behind_the_apps_back(
        world,
        "UPDATE oauth_clients SET is_active = :f WHERE client_id = :c",
        f=False,
        c=scheduler.client.client_id,
    )
    assert size == 0

    run_worker_past_due(world)
    world.run_worker()

    assert_withdrawn(world, unassigned, grant="assignment", says="not assigned to @avery")
    assert_withdrawn(world, deactivated, grant="user", says="Sam Rivera is deactivated")
    assert_withdrawn(world, by_client, grant="client", says="is revoked")
    assert timeline_texts(world) == [NOTICE]
    assert len(entries(world, tag="post:withdrawn")) == 3


# --- a post in flight -------------------------------------------------------------------------


class WithdrawingPlatform:
    """The local platform, except that the first publish withdraws the grant while the post is
    in flight (a manager acting at that moment) and then fails with a retryable error."""

    platform = "local"

    def __init__(self, container: Container, withdraw: Callable[[], None]) -> None:
        self._inner = LocalPublisher(container.local_store, container.settings.public_url)
        self._withdraw: Callable[[], None] | None = withdraw
        self.sent: list[str] = []

    def publish(self, account: Account, text_: str, *, idempotency_key: str) -> Receipt:
        self.sent.append(text_)
        if self._withdraw is not None:
            withdraw, self._withdraw = self._withdraw, None
            withdraw()
            raise RetryableError("503 Service Unavailable")
        return self._inner.publish(account, text_, idempotency_key=idempotency_key)

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        return self._inner.lookup(account, idempotency_key=idempotency_key)


def test_a_post_in_flight_when_its_grant_is_withdrawn_is_held_before_any_retry(
    world: World, app: Flask, live: None
) -> None:
    post = compose(signed_in(app, world.writer_a), world)
    world.container.clock.set(DUE + timedelta(minutes=5))
    manager = signed_in(app, world.manager)
    fake = WithdrawingPlatform(world.container, lambda: unassign(manager, world, world.writer_a))
    world.container.publishers["local"] = fake

    world.run_worker()
    # The unassignment left it alone while in flight; the failure sent it back to the queue.
    assert fresh(world, post).state is PostState.SCHEDULED
    assert not entries(world, post, "post:withdrawn")

    world.container.clock.advance(minutes=10)  # past the back-off
    world.run_worker()

    assert_withdrawn(world, post, grant="assignment", says="not assigned to @avery")
    assert len([t for t in fake.sent if TEXT in t]) == 1  # never sent again


def test_a_client_whose_owner_is_deactivated_stops_until_the_owner_is_back(
    world: World, app: Flask, live: None, admin: User
) -> None:
    scheduler = scheduler_for(app.test_client(), world)  # owned by the manager
    post = api_post(scheduler, world, world.writer_a)

    set_active(signed_in(app, admin), world.manager, False)

    assert_withdrawn(world, post, grant="client", says="belongs to Morgan Lee")
    run_worker_past_due(world)
    assert fresh(world, post).state is PostState.HELD
    principal = signed_in(app, world.principal)
    refused = release(principal, post)
    assert refused.status_code == 409 and "Morgan Lee" in refused.get_data(as_text=True)

    set_active(signed_in(app, admin), world.manager, True)
    done(release(principal, post))  # the principal may release too
    world.run_worker()
    assert fresh(world, post).state is PostState.PUBLISHED
