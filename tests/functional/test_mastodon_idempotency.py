"""The Mastodon-compatible face's Idempotency-Key: its fingerprint is the post as the service
understands it (account, author, text, time, visibility, reply), hashed like /api/v1's."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ghostpost.bootstrap import Container
from ghostpost.db.models import LedgerEntryRow, PostRow
from ghostpost.services import clients
from ghostpost.services.context import Actor
from tests.support.api import fetch_token
from tests.support.world import World


def stored(container: Container) -> tuple[int, int]:
    with container.sessions() as session:
        posts = session.scalar(select(func.count()).select_from(PostRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(posts or 0), int(entries or 0)


@pytest.fixture
def compat(client: FlaskClient, world: World) -> tuple[FlaskClient, dict[str, str], str]:
    world.approve_notice(world.open_window())
    client_record, secret = clients.create_client(
        world.ctx,
        Actor.system("test"),
        name="Compat",
        owner_email=world.manager.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[world.account.id],
        default_author_email=world.writer_a.email,
        author_emails=[world.writer_a.email, world.writer_b.email],
    )
    token = fetch_token(client, client_record.client_id, secret)
    path = f"/compat/mastodon/{world.account.id}/api/v1/statuses"
    return client, {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"}, path


def test_the_same_key_for_another_author_is_refused_not_replayed(
    compat: tuple[FlaskClient, dict[str, str], str], container: Container, world: World
) -> None:
    # The attack: replay a key with another author, to be answered with a post attributed to
    # someone else (the header was not part of the fingerprint).
    http, headers, path = compat
    first = http.post(path, json={"status": "Great keynote"}, headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    before = stored(container)
    other = {**headers, "X-Ghostpost-Author": world.writer_b.email}
    again = http.post(path, json={"status": "Great keynote"}, headers=other)
    assert again.status_code == 422, again.get_data(as_text=True)
    assert "different request" in again.get_json()["error"]
    assert "Idempotent-Replayed" not in again.headers
    assert stored(container) == before


def test_the_same_key_for_another_text_is_refused(
    compat: tuple[FlaskClient, dict[str, str], str], container: Container
) -> None:
    http, headers, path = compat
    assert http.post(path, json={"status": "Great keynote"}, headers=headers).status_code == 200
    before = stored(container)
    again = http.post(path, json={"status": "Another text"}, headers=headers)
    assert again.status_code == 422, again.get_data(as_text=True)
    assert stored(container) == before


def test_the_same_post_sent_again_is_replayed_however_it_is_spelled(
    compat: tuple[FlaskClient, dict[str, str], str], container: Container
) -> None:
    # A form and a JSON body, a numeric and a string reply id, a field ghostpost ignores: the
    # same post, so the same answer.
    http, headers, path = compat
    first = http.post(
        path, data={"status": "Great keynote", "in_reply_to_id": "42"}, headers=headers
    )
    assert first.status_code == 200, first.get_data(as_text=True)
    before = stored(container)
    body = {"status": "Great keynote", "in_reply_to_id": 42, "language": "en"}
    again = http.post(path, json=body, headers=headers)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert stored(container) == before
