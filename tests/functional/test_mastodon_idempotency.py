"""The Mastodon-compatible face's Idempotency-Key: its fingerprint is the post as the service
understands it (account, author, text, time, the options it is sent with), hashed like /api/v1's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ghostpost.bootstrap import Container, bootstrap
from ghostpost.clock import FixedClock
from ghostpost.db.models import LedgerEntryRow, PostRow
from ghostpost.domain.model import Window
from ghostpost.services import clients
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.api import fetch_token
from tests.support.statements import counted, create_write_statements
from tests.support.world import World


def stored(container: Container) -> tuple[int, int]:
    with container.sessions() as session:
        posts = session.scalar(select(func.count()).select_from(PostRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(posts or 0), int(entries or 0)


@pytest.fixture
def compat(
    client: FlaskClient, world: World, opened_window: Window
) -> tuple[FlaskClient, dict[str, str], str]:
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
    # A form and a JSON body, Mastodon.py's '0' and JSON's false, defaults spelled out or left
    # out, a blank reply id: the same post, so the same answer.
    http, headers, path = compat
    first = http.post(
        path,
        data={"status": "Great keynote", "sensitive": "0", "in_reply_to_id": ""},
        headers=headers,
    )
    assert first.status_code == 200, first.get_data(as_text=True)
    before = stored(container)
    body = {
        "status": "Great keynote",
        "sensitive": False,
        "visibility": "public",
        "spoiler_text": "",
    }
    again = http.post(path, json=body, headers=headers)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert stored(container) == before


@pytest.fixture
def elsewhere(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    """Another process on the same database, whose changes this process's token cache misses."""
    other = bootstrap(settings, clock=clock)
    yield other
    other.dispose()


def test_an_author_grant_withdrawn_elsewhere_applies_to_the_very_next_mastodon_create(
    compat: tuple[FlaskClient, dict[str, str], str],
    container: Container,
    world: World,
    elsewhere: Container,
) -> None:
    # The attack: the token is cached in this process; another process withdraws the default
    # author's grant; the next create must not be attributed to that author.
    http, headers, path = compat
    assert http.post(path, json={"status": "First"}, headers=headers).status_code == 200
    (record,) = [
        c
        for c in clients.list_clients(world.ctx, Actor.system("test"))
        if c.client.name == "Compat"
    ]
    clients.set_client_authors(
        elsewhere.services,
        Actor.system("test"),
        record.client.client_id,
        author_emails=[world.writer_b.email],
        keep_default=False,
    )
    before = stored(container)
    answer = http.post(
        path, json={"status": "Second"}, headers={**headers, "Idempotency-Key": "k-2"}
    )
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert stored(container) == before


@pytest.mark.parametrize("key", ["counted", None])
def test_one_mastodon_create_is_one_transaction_of_a_few_statements(
    compat: tuple[FlaskClient, dict[str, str], str], container: Container, key: str | None
) -> None:
    http, headers, path = compat
    headers = {k: v for k, v in headers.items() if k != "Idempotency-Key"}
    if key is not None:
        headers["Idempotency-Key"] = key
    account = path.split("/")[3]
    warm = http.get(
        f"/compat/mastodon/{account}/api/v1/accounts/verify_credentials", headers=headers
    )
    assert warm.status_code == 200  # token read and cached
    before = stored(container)
    with counted(container.engine) as (begins, statements):
        answer = http.post(path, json={"status": "Counted"}, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    written = create_write_statements(container.engine, begins, statements)
    # SQLite: [claim the key,] one read, post, ledger head, entry, head update[, complete the
    # key]. PostgreSQL: [the claim with] the read, the post, the head's lock, the entry with
    # the head's move [and the key's completion]. No claim sets a lock_timeout.
    assert "SET" not in written, statements
    sqlite_budget = 7 if key is not None else 5
    budget = 4 if container.engine.dialect.name == "postgresql" else sqlite_budget
    assert len(written) <= budget, statements
    # The post and its entry are both stored (a held append is never dropped at commit).
    assert stored(container) == (before[0] + 1, before[1] + 1)
    body = answer.get_json()
    assert body["account"]["display_name"] and body["content"]
    if key is not None:
        replay = http.post(path, json={"status": "Counted"}, headers=headers)
        assert replay.status_code == 200
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.get_json() == body
