"""A real Mastodon client library posts through ghostpost's Mastodon-compatible endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError

from ghostpost.domain.states import PostState
from ghostpost.services import clients
from ghostpost.services.context import Actor
from tests.support.live import LiveServer, live_server

#: The live server (tests/support/live.py) migrates and serves its own SQLite database, whatever
#: backend the run is on: on PostgreSQL these tests would repeat the SQLite run exactly.
LIVE_SERVER_ON_SQLITE = pytest.mark.backend_independent(
    "the live server runs on its own SQLite database"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as running:
        world = running.world
        window = world.open_window(every=3)
        world.approve_notice(window)
        yield running


def mastodon_client(server: LiveServer, *, default_author: str | None) -> Mastodon:
    world = server.world
    client, secret = clients.create_client(
        world.ctx,
        Actor.system("test"),
        name="Buffer-like scheduler",
        owner_email=world.manager.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[world.account.id],
        default_author_email=default_author,
        author_emails=[world.writer_a.email, world.writer_b.email],
    )
    token = requests.post(
        server.url + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "posts:write posts:read"},
        auth=(client.client_id, secret),
        timeout=10,
    ).json()["access_token"]
    return Mastodon(
        access_token=token,
        api_base_url=f"{server.url}/compat/mastodon/{world.account.id}",
        request_timeout=10,
    )


def wait_for_state(api: Mastodon, status_id: str, state: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 15
    while True:
        status = api.status(status_id)
        if status["ghostpost"]["state"] == state or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


@pytest.mark.slow
@LIVE_SERVER_ON_SQLITE
def test_a_mastodon_client_posts_through_ghostpost_tagged_and_attributed(
    server: LiveServer,
) -> None:
    world = server.world
    api = mastodon_client(server, default_author=world.writer_a.email)

    me = api.account_verify_credentials()
    assert me["username"] == world.account.handle

    status = api.status_post("Hello from our scheduler", idempotency_key="sched-0001")
    assert status["text"] == "Hello from our scheduler #team"
    assert "#team" in status["content"]
    again = api.status_post("Hello from our scheduler", idempotency_key="sched-0001")
    assert str(again["id"]) == str(status["id"]), "the same Idempotency-Key replays the status"

    published = wait_for_state(api, status["id"], PostState.PUBLISHED.value)
    assert published["ghostpost"]["state"] == "published"
    assert published["url"].startswith(f"{server.url}/@{world.account.handle}/")

    with world.ctx.uow() as uow:
        post = uow.posts.get(int(status["id"]))
        assert post is not None
        entries = [e for e in uow.ledger.entries() if e.subject == f"post:{post.public_id}"]
    submitted = [e for e in entries if e.tag == "post:submitted"]
    assert len(submitted) == 1
    assert submitted[0].data["writer"]["email"] == world.writer_a.email
    assert submitted[0].data["source"] == "mastodon-compat"
    assert submitted[0].actor.startswith("client:")
    assert [e.data["writer"]["email"] for e in entries if e.tag == "post:published"] == [
        world.writer_a.email
    ]


@pytest.mark.slow
@LIVE_SERVER_ON_SQLITE
def test_mastodon_clients_get_mastodon_shaped_errors(server: LiveServer) -> None:
    world = server.world
    api = mastodon_client(server, default_author=None)
    with pytest.raises(MastodonAPIError, match="X-Ghostpost-Author"):
        api.status_post("Nobody wrote this")
    session = requests.Session()
    session.headers["X-Ghostpost-Author"] = world.writer_b.email
    api.session = session
    status = api.status_post("Written by Sam", visibility="public")
    assert status["text"] == "Written by Sam #team"
    with pytest.raises(MastodonAPIError, match="Text can't be blank"):
        api.status_post("   ")
    with pytest.raises(MastodonAPIError):
        api.status_post("too long " * 100)


def test_an_account_id_beyond_any_column_is_simply_not_found(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/compat/mastodon/99999999999999/api/v1/instance")
    assert response.status_code == 404
    assert response.get_json() == {"error": "Record not found"}
