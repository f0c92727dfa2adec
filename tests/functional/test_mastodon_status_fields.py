"""Every parameter of Mastodon's POST /api/v1/statuses, through the Mastodon face: honoured end
to end (stored on the post, in the ledger, sent to the platform) or refused with a 422 that
names it, storing nothing. Honoured ones are checked on a protocol-faithful fake Mastodon over
real HTTP, after the real worker has published them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from ghostpost.adapters.base import Connection
from ghostpost.adapters.mastodon import SCOPES
from ghostpost.api.mastodon import HONOURED_PARAMETERS, REFUSED_PARAMETERS, SCHEDULING_PARAMETERS
from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.db.models import LedgerEntryRow, PostRow
from ghostpost.domain.length import count_mastodon
from ghostpost.domain.model import Account
from ghostpost.domain.post_options import PostOptions
from ghostpost.services import clients, directory
from ghostpost.services.context import Actor
from ghostpost.textseg import default_segmenter
from tests.functional.test_exports import jsonl_rows, run_export
from tests.functional.test_mastodon_adapter import store_connection
from tests.support.api import fetch_token
from tests.support.fake_mastodon import FakeMastodon, make_fake_mastodon
from tests.support.http_server import serving
from tests.support.world import World

#: POST /api/v1/statuses's parameters as Mastodon 4.5 documents them (docs: methods/statuses,
#: "Post a new status") plus those its controller permits (status_params): the list the face
#: must answer for, written out here so that a parameter the face forgets fails this test.
MASTODON_STATUS_PARAMETERS = (
    "status",
    "media_ids",
    "poll",  # poll[options][], poll[expires_in], poll[multiple], poll[hide_totals]
    "in_reply_to_id",
    "sensitive",
    "spoiler_text",
    "visibility",
    "language",
    "scheduled_at",
    "quoted_status_id",
    "quote_approval_policy",
    "allowed_mentions",
    "media_attributes",
)

SYSTEM = Actor.system("test")


@pytest.fixture
def fake(clock: FixedClock) -> FakeMastodon:
    return make_fake_mastodon(max_characters=500, characters_reserved_per_url=23, now=clock.now)


@pytest.fixture
def instance(fake: FakeMastodon) -> Iterator[str]:
    with serving(fake.app) as base_url:
        yield base_url


@pytest.fixture
def masto(world: World, fake: FakeMastodon, instance: str) -> Account:
    """A Mastodon account on the fake, writer A assigned, inside an open window."""
    account = directory.create_account(
        world.ctx,
        SYSTEM,
        principal_id=world.account.principal_id,
        platform="mastodon",
        handle="avery-masto",
    )
    connection = Connection(
        platform="mastodon",
        handle=f"avery@{urlsplit(instance).netloc}",
        remote_id=fake.create_user("avery"),
        base_url=instance,
        credentials={"access_token": fake.issue_token("avery", SCOPES)},
        max_chars=fake.max_characters,
        url_length=fake.characters_reserved_per_url,
    )
    account = store_connection(world.container, account, connection)
    directory.assign_writer(world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=account.id)
    world.approve_notice(world.open_window(account=account))
    world.run_worker()  # the window's notice goes out first
    return account


def face(client: FlaskClient, world: World, account: Account) -> tuple[dict[str, str], str]:
    """A scheduler's token for `account` (default author: writer A) and its statuses path."""
    record, secret = clients.create_client(
        world.ctx,
        SYSTEM,
        name=f"Compat {account.id}",
        owner_email=world.manager.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[account.id],
        default_author_email=world.writer_a.email,
    )
    token = fetch_token(client, record.client_id, secret)
    return {"Authorization": f"Bearer {token}"}, f"/compat/mastodon/{account.id}/api/v1/statuses"


def stored(container: Container) -> tuple[int, int]:
    with container.sessions() as session:
        posts = session.scalar(select(func.count()).select_from(PostRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(posts or 0), int(entries or 0)


def entry(container: Container, public_id: str, tag: str) -> dict[str, Any]:
    with container.sessions() as session:
        data = session.scalars(
            select(LedgerEntryRow.data)
            .where(LedgerEntryRow.subject == f"post:{public_id}", LedgerEntryRow.tag == tag)
            .order_by(LedgerEntryRow.seq.desc())
        ).first()
    assert data is not None, tag
    found: dict[str, Any] = json.loads(data)
    return found


def post_row(container: Container, post_id: str) -> PostRow:
    with container.sessions() as session:
        row = session.get(PostRow, int(post_id))
        assert row is not None
        session.expunge(row)
    return row


def test_the_parameter_list_is_answered_whole() -> None:
    answered = set(HONOURED_PARAMETERS) | set(SCHEDULING_PARAMETERS) | set(REFUSED_PARAMETERS)
    assert set(MASTODON_STATUS_PARAMETERS) == answered
    assert not set(HONOURED_PARAMETERS) & set(REFUSED_PARAMETERS)


def test_a_status_with_every_honoured_field_reaches_mastodon_as_sent_and_the_ledger_says_so(
    client: FlaskClient, world: World, masto: Account, fake: FakeMastodon
) -> None:
    headers, path = face(client, world, masto)
    # A form body as Mastodon.py sends it: booleans as '1', a language in any case.
    form = {
        "status": "The finale was worth the wait",
        "spoiler_text": "Season finale",
        "visibility": "unlisted",
        "language": "pt-br",
        "sensitive": "1",
    }
    response = client.post(path, data=form, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    status = response.get_json()
    # The disclosure shows in front of the warning's click, and the text keeps its hashtag.
    assert status["spoiler_text"] == "Season finale #team"
    assert (status["visibility"], status["language"], status["sensitive"]) == (
        "unlisted",
        "pt-BR",
        True,
    )

    world.run_worker()

    sent = fake.statuses_of("avery")[-1]
    assert sent["text"] == "The finale was worth the wait #team"
    assert sent["spoiler_text"] == "Season finale #team"
    assert (sent["visibility"], sent["language"], sent["sensitive"]) == ("unlisted", "pt-BR", True)
    row = post_row(world.container, status["id"])
    assert row.state == "published"
    assert (row.content_warning, row.final_content_warning) == (
        "Season finale",
        "Season finale #team",
    )
    assert (row.visibility, row.language, row.sensitive) == ("unlisted", "pt-BR", True)
    asked = {
        "content_warning": "Season finale",
        "visibility": "unlisted",
        "language": "pt-BR",
        "sensitive": True,
    }
    submitted = entry(world.container, row.public_id, "post:submitted")
    assert submitted["options"] == asked
    assert submitted["source"] == "mastodon-compat"
    assert submitted["writer"]["email"] == world.writer_a.email
    published = entry(world.container, row.public_id, "post:published")
    assert published["options"] == {**asked, "content_warning": "Season finale #team"}
    assert published["final_text"] == sent["text"]
    report = jsonl_rows(run_export(world, "authorship", "jsonl"))
    (exported,) = [r for r in report if r["post_id"] == row.public_id]
    assert (exported["content_warning"], exported["visibility"]) == (
        "Season finale #team",
        "unlisted",
    )


def test_attack_a_writer_uses_a_content_warning_to_bury_the_disclosure(
    client: FlaskClient, world: World, masto: Account, fake: FakeMastodon
) -> None:
    # The tag typed at the end of the text, the text behind a bland warning: followers would
    # see "Quick update" and nothing else. The warning must show the tag.
    headers, path = face(client, world, masto)
    body = {"status": "Record quarter, thanks all #team", "spoiler_text": "Quick update"}
    assert client.post(path, json=body, headers=headers).status_code == 200
    world.run_worker()
    sent = fake.statuses_of("avery")[-1]
    assert sent["spoiler_text"] == "Quick update #team"
    assert sent["text"] == "Record quarter, thanks all #team"


def test_a_content_warning_counts_toward_the_limit_as_mastodon_counts_it(
    client: FlaskClient, world: World, masto: Account, fake: FakeMastodon
) -> None:
    headers, path = face(client, world, masto)
    warning = "CW 👨‍👩‍👧‍👦"
    seg = default_segmenter()
    # Room for the text, its tag and the warning's tag: the post is exactly at the limit.
    room = 500 - seg.grapheme_count(warning) - 2 * len(" #team")
    text = "a" * room
    posts, entries = stored(world.container)
    over = client.post(path, json={"status": text + "b", "spoiler_text": warning}, headers=headers)
    assert over.status_code == 422, over.get_data(as_text=True)
    assert stored(world.container) == (posts, entries)
    ok = client.post(path, json={"status": text, "spoiler_text": warning}, headers=headers)
    assert ok.status_code == 200, ok.get_data(as_text=True)
    world.run_worker()
    sent = fake.statuses_of("avery")[-1]  # the fake refuses what Mastodon's validator refuses
    assert count_mastodon(sent["text"], seg, spoiler_text=sent["spoiler_text"]) == 500


def test_scheduled_at_keeps_the_fields_until_the_post_goes_out(
    client: FlaskClient, world: World, masto: Account, fake: FakeMastodon, clock: FixedClock
) -> None:
    headers, path = face(client, world, masto)
    at = clock.now() + timedelta(hours=1)
    body = {
        "status": "Later",
        "spoiler_text": "Soon",
        "visibility": "private",
        "scheduled_at": at.isoformat(),
    }
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    params = response.get_json()["params"]
    assert (params["spoiler_text"], params["visibility"]) == ("Soon", "private")
    clock.advance(hours=1, minutes=1)
    world.run_worker()
    sent = fake.statuses_of("avery")[-1]
    assert (sent["text"], sent["spoiler_text"], sent["visibility"]) == (
        "Later #team",
        "Soon #team",
        "private",
    )


#: Each refused parameter, as JSON clients and as form clients (Mastodon.py) send it.
REFUSED_BODIES: list[tuple[str, dict[str, Any] | list[tuple[str, str]]]] = [
    ("poll", {"poll": {"options": ["yes", "no"], "expires_in": 3600}}),
    ("poll", [("poll[options][]", "yes"), ("poll[options][]", "no")]),
    ("poll", [("poll[expires_in]", "3600")]),
    ("poll", [("poll[multiple]", "1")]),
    ("poll", [("poll[hide_totals]", "1")]),
    ("in_reply_to_id", {"in_reply_to_id": 1.5}),
    ("quoted_status_id", {"quoted_status_id": "1"}),
    ("quote_approval_policy", {"quote_approval_policy": "public"}),
    ("allowed_mentions", {"allowed_mentions": ["1"]}),
    ("media_attributes", {"media_attributes": [{"id": "1", "description": "x"}]}),
    ("visibility", {"visibility": "direct"}),
    ("visibility", {"visibility": "everyone"}),
    ("language", {"language": "english"}),
    ("language", {"language": ["en"]}),
    ("sensitive", {"sensitive": "maybe"}),
    ("spoiler_text", {"spoiler_text": ["a", "b"]}),
    ("spoiler_text", {"spoiler_text": "bad \u0000 warning"}),
    ("content_type", {"content_type": "text/markdown"}),
    ("scheduled_at", {"scheduled_at": "tomorrow"}),
]


@pytest.mark.parametrize(("name", "extra"), REFUSED_BODIES, ids=[n for n, _ in REFUSED_BODIES])
def test_a_parameter_ghostpost_would_drop_is_refused_by_name_and_nothing_is_stored(
    client: FlaskClient,
    world: World,
    masto: Account,
    fake: FakeMastodon,
    name: str,
    extra: dict[str, Any] | list[tuple[str, str]],
) -> None:
    headers, path = face(client, world, masto)
    before, sent_before = stored(world.container), len(fake.statuses)
    if isinstance(extra, dict):
        response = client.post(path, json={"status": "Hello", **extra}, headers=headers)
    else:
        form = MultiDict([("status", "Hello"), *extra])
        response = client.post(path, data=form, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert set(response.get_json()) == {"error"}
    assert name in response.get_json()["error"]
    assert stored(world.container) == before
    world.run_worker()
    assert len(fake.statuses) == sent_before


@pytest.mark.parametrize(
    ("platform", "body", "refused"),
    [
        ("local", {"visibility": "private"}, "visibility"),
        ("bluesky", {"spoiler_text": "CW"}, "spoiler_text"),
        ("bluesky", {"visibility": "private"}, "visibility"),
        ("bluesky", {"sensitive": "true"}, "sensitive"),
        ("x", {"spoiler_text": "CW"}, "spoiler_text"),
        ("x", {"visibility": "unlisted"}, "visibility"),
        ("x", {"language": "en"}, "language"),
    ],
)
def test_platforms_that_cannot_honour_a_field_refuse_it_by_name(
    client: FlaskClient, world: World, platform: str, body: dict[str, Any], refused: str
) -> None:
    account = world.account
    if platform != "local":
        account = directory.create_account(
            world.ctx,
            SYSTEM,
            principal_id=world.account.principal_id,
            platform=platform,
            handle=f"avery-{platform}",
        )
        directory.assign_writer(world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=account.id)
    world.approve_notice(world.open_window(account=account))
    headers, path = face(client, world, account)
    before = stored(world.container)
    response = client.post(path, json={"status": "Hello", **body}, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert refused in response.get_json()["error"]
    assert stored(world.container) == before


def test_bluesky_takes_a_language_and_keeps_it_for_its_langs(
    client: FlaskClient, world: World
) -> None:
    account = directory.create_account(
        world.ctx,
        SYSTEM,
        principal_id=world.account.principal_id,
        platform="bluesky",
        handle="avery-bsky",
    )
    directory.assign_writer(world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=account.id)
    world.approve_notice(world.open_window(account=account))
    headers, path = face(client, world, account)
    response = client.post(path, json={"status": "Olá", "language": "PT"}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    row = post_row(world.container, response.get_json()["id"])
    assert (row.language, row.visibility, row.content_warning) == ("pt", "public", "")


# --- the local platform: ghostpost's own server, by Mastodon's rules ----------------------------


def local_status_path(world: World, post_id: str) -> str:
    """The public page of the local status a published post became."""
    row = post_row(world.container, post_id)
    assert row.state == "published", row.state_reason
    return f"/@{world.account.handle}/{row.platform_post_id}"


def article(html: str, status_id: str) -> str:
    """The <article> of one status on a public page."""
    found = re.search(rf'<article [^>]*id="status-{status_id}".*?</article>', html, re.S)
    assert found is not None, html
    return found.group(0)


@pytest.fixture
def local(world: World) -> Account:
    """The local account (writer A assigned) inside an open window, its notice out."""
    world.approve_notice(world.open_window(account=world.account))
    world.run_worker()
    return world.account


def test_local_shows_a_delegated_posts_warning_with_its_disclosure_in_front_of_the_click(
    client: FlaskClient, world: World, local: Account
) -> None:
    headers, path = face(client, world, local)
    body = {
        "status": "The finale was worth the wait",
        "spoiler_text": "Season finale",
        "language": "pt-br",
        "sensitive": True,
    }
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    post_id = response.get_json()["id"]
    world.run_worker()

    row = post_row(world.container, post_id)
    on_platform = world.container.local_store.timeline(local.handle)
    (status,) = [s for s in on_platform if str(s.id) == row.platform_post_id]
    # The local platform keeps what was sent: the warning with the tag the policy added.
    assert (status.content_warning, status.language, status.sensitive, status.visibility) == (
        "Season finale #team",
        "pt-BR",
        True,
        "public",
    )
    page = client.get(local_status_path(world, post_id))
    assert page.status_code == 200
    html = article(page.get_data(as_text=True), str(status.id))
    # The warning is what a reader sees before any click, the disclosure in it; the text
    # (with its own tag) waits behind the <details>, opened without JavaScript.
    summary = re.search(r"<summary[^>]*>(.*?)</summary>", html, re.S)
    assert summary is not None and summary.group(1).strip() == "Season finale #team"
    details = re.search(r"<details[^>]*>(.*?)</details>", html, re.S)
    assert details is not None
    assert "The finale was worth the wait #team" in details.group(1)
    assert "<details open" not in html
    assert 'lang="pt-BR"' in html.split(">", 1)[0]
    assert page.headers["Content-Security-Policy"].count("script-src 'self'") == 1
    assert "<script" not in page.get_data(as_text=True)

    # What the Mastodon face answers about the post is what the local platform shows.
    shown = client.get(f"{path}/{post_id}", headers=headers).get_json()
    assert (shown["spoiler_text"], shown["language"], shown["sensitive"], shown["visibility"]) == (
        "Season finale #team",
        "pt-BR",
        True,
        "public",
    )


def test_attack_markup_in_a_local_warning_is_shown_as_text(
    client: FlaskClient, world: World, local: Account
) -> None:
    headers, path = face(client, world, local)
    warning = '<script>alert(1)</script><b onclick="x()">bold</b>'
    response = client.post(path, json={"status": "Hi", "spoiler_text": warning}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    world.run_worker()
    html = client.get(local_status_path(world, response.get_json()["id"])).get_data(as_text=True)
    assert "<script>alert" not in html and "<b onclick" not in html
    assert str(escape(warning + " #team")) in html


@pytest.mark.parametrize("language", ['en"><script>alert(1)</script>', "en onmouseover=x"])
def test_attack_markup_in_a_local_language_is_refused_by_name(
    client: FlaskClient, world: World, local: Account, language: str
) -> None:
    headers, path = face(client, world, local)
    before = stored(world.container)
    response = client.post(path, json={"status": "Hi", "language": language}, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "language" in response.get_json()["error"]
    assert stored(world.container) == before


def test_attack_a_followers_only_post_on_local_is_refused_by_name_and_nothing_is_stored(
    client: FlaskClient, world: World, local: Account
) -> None:
    # Nobody follows a local account: "followers only" would publish to no reader, or, worse,
    # be shown publicly as if private. Refused, like Mastodon refuses what it cannot do.
    headers, path = face(client, world, local)
    before = stored(world.container)
    on_platform = len(world.container.local_store.timeline(local.handle))
    response = client.post(
        path, json={"status": "Just for you", "visibility": "private"}, headers=headers
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert "visibility" in error and "followers" in error
    assert stored(world.container) == before
    world.run_worker()
    assert len(world.container.local_store.timeline(local.handle)) == on_platform


def test_an_unlisted_local_post_is_marked_on_the_accounts_page(
    client: FlaskClient, world: World, local: Account
) -> None:
    headers, path = face(client, world, local)
    quiet = client.post(path, json={"status": "Quiet", "visibility": "unlisted"}, headers=headers)
    loud = client.post(path, json={"status": "Loud"}, headers=headers)
    assert (quiet.status_code, loud.status_code) == (200, 200)
    world.run_worker()
    quiet_id = post_row(world.container, quiet.get_json()["id"]).platform_post_id
    loud_id = post_row(world.container, loud.get_json()["id"]).platform_post_id
    html = client.get(f"/@{local.handle}").get_data(as_text=True)
    # Shown on the account's page, as Mastodon's profile shows unlisted posts, and said so.
    assert "Unlisted" in article(html, str(quiet_id))
    assert "Unlisted" not in article(html, str(loud_id))
    assert 'lang="' not in article(html, str(loud_id)).split(">", 1)[0]
    shown = client.get(f"{path}/{quiet.get_json()['id']}", headers=headers).get_json()
    assert shown["visibility"] == "unlisted"


def test_a_local_retry_under_the_same_key_answers_the_status_already_out(
    world: World, local: Account
) -> None:
    # The worker retries with the post's key after a crash: one status, as first stored.
    publisher = world.container.publishers["local"]
    first = PostOptions("Spoilers #team", "unlisted", "en", sensitive=True)
    receipt = publisher.publish(local, "Once #team", idempotency_key="k-1", options=first)
    again = publisher.publish(local, "Once #team", idempotency_key="k-1")
    assert again == receipt
    status = world.container.local_store.find("k-1")
    assert status is not None
    assert (status.content_warning, status.visibility, status.language, status.sensitive) == (
        "Spoilers #team",
        "unlisted",
        "en",
        True,
    )
