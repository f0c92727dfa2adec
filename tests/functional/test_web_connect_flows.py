"""Connecting accounts from the web app, end to end over real HTTP to the platforms' servers,
then publishing through the connected account."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy import select

from ghostpost import create_app
from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.db.models import AccountRow
from ghostpost.domain.model import Account
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.bluesky_pds import BlueskyPds
from tests.support.consent import approve
from tests.support.fake_mastodon import FakeMastodon, make_fake_mastodon
from tests.support.fake_x import make_fake_x
from tests.support.http_server import serving
from tests.support.platforms import X_CLIENT_ID, X_CLIENT_SECRET
from tests.support.web import post_form, sign_in
from tests.support.world import NOTICE, World, build_world

pytestmark = pytest.mark.slow


@pytest.fixture
def mastodon() -> Iterator[tuple[str, FakeMastodon]]:
    fake = make_fake_mastodon(max_characters=520, characters_reserved_per_url=23)
    fake.create_user("avery")
    fake.approve_as("avery")
    with serving(fake.app) as url:
        yield url, fake


def follow_to_callback(client: FlaskClient, response) -> object:  # type: ignore[no-untyped-def]
    assert response.status_code == 302, response.get_data(as_text=True)
    callback = urlsplit(approve(response.headers["Location"]))
    return client.get(f"{callback.path}?{callback.query}")


def start_mastodon_connect(client: FlaskClient, world: World, instance: str):  # type: ignore[no-untyped-def]
    """Sign in as the manager and press "Continue to Mastodon" for the principal's account."""
    sign_in(client, world.manager.email)
    return post_form(
        client,
        "/accounts/connect/mastodon",
        {"principal_id": str(world.account.principal_id), "instance": instance},
        token_from="/accounts",
    )


def account_named(world: World, platform: str, handle: str) -> Account:
    with world.ctx.uow() as uow:
        found = uow.accounts.by_handle(platform, handle)
    assert found is not None
    return found


def publish_through(world: World, account: Account, text: str) -> None:
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=account.id
    )
    world.approve_notice(world.open_window(account=account))
    world.submit(world.writer_a, text, account=account)
    world.run_worker()


def test_a_manager_connects_mastodon_with_oauth_and_posts_go_out_through_it(
    client: FlaskClient,
    world: World,
    mastodon: tuple[str, FakeMastodon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url, fake = mastodon
    started = start_mastodon_connect(client, world, url)
    location = urlsplit(started.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == "/oauth/authorize"
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["scope"] == ["read:accounts read:statuses write:statuses write:media"]
    assert query["redirect_uri"] == ["http://ghostpost.test/accounts/connect/mastodon/callback"]
    done = follow_to_callback(client, started)
    assert done.status_code == 302 and "/accounts" in done.headers["Location"]  # type: ignore[attr-defined]
    host = urlsplit(url).netloc
    page = client.get("/accounts").get_data(as_text=True)
    assert f"Connected Mastodon account @avery@{host}" in page
    account = account_named(world, "mastodon", f"avery@{host}")
    assert account.max_chars == 520 and account.url_length == 23 and account.connected
    token = next(iter(fake.tokens))
    assert token not in page
    with world.container.sessions() as session:
        raw = session.scalar(select(AccountRow.credentials).where(AccountRow.id == account.id))
    assert raw is not None and token not in raw

    publish_through(world, account, "Hello from the team")
    assert [s["text"] for s in fake.statuses_of("avery")][-1] == "Hello from the team #team"
    app_secret = fake.apps[0].client_secret
    assert caplog.records, "DEBUG logging was captured"
    assert token not in caplog.text and app_secret not in caplog.text


def test_a_forged_or_replayed_callback_connects_nothing(
    client: FlaskClient, world: World, mastodon: tuple[str, FakeMastodon]
) -> None:
    url, _fake = mastodon
    started = start_mastodon_connect(client, world, url)
    callback = urlsplit(approve(started.headers["Location"]))
    query = parse_qs(callback.query)
    forged = client.get(f"{callback.path}?code={query['code'][0]}&state=not-the-state")
    assert forged.status_code == 400
    # The flow is spent: even the genuine callback is refused now.
    replay = client.get(f"{callback.path}?{callback.query}")
    assert replay.status_code == 400
    with world.ctx.uow() as uow:
        assert [a.platform for a in uow.accounts.list()] == ["local"]


def test_a_denied_authorization_says_so(
    client: FlaskClient, world: World, mastodon: tuple[str, FakeMastodon]
) -> None:
    url, _fake = mastodon
    started = start_mastodon_connect(client, world, url)
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    denied = client.get(
        f"/accounts/connect/mastodon/callback?error=access_denied&state={state}"
        "&error_description=The+resource+owner+denied+the+request."
    )
    assert denied.status_code == 400
    assert "did not authorize ghostpost" in denied.get_data(as_text=True)


def test_a_manager_connects_bluesky_with_an_app_password(
    client: FlaskClient, world: World, bluesky_pds: BlueskyPds
) -> None:
    handle = f"webexec{id(world) % 100_000}.test"
    created = bluesky_pds.create_account(handle, "account-password-1", f"{handle}@example.test")
    app_password = bluesky_pds.create_app_password(created["accessJwt"], "ghostpost")
    sign_in(client, world.manager.email)
    done = post_form(
        client,
        "/accounts/connect/bluesky",
        {
            "principal_id": str(world.account.principal_id),
            "pds": bluesky_pds.url,
            "identifier": handle,
            "app_password": app_password,
        },
        token_from="/accounts",
    )
    assert done.status_code == 302
    page = client.get("/accounts").get_data(as_text=True)
    assert f"Connected Bluesky account @{handle}" in page and app_password not in page
    account = account_named(world, "bluesky", handle)
    assert account.remote_id == created["did"]

    publish_through(world, account, "Hello Bluesky")
    records = bluesky_pds.list_records(created["did"], "app.bsky.feed.post")
    assert records[0]["value"]["text"] == "Hello Bluesky #team"


def test_a_manager_connects_x_with_oauth_pkce_and_posts_go_out_through_it(
    settings: Settings, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = make_fake_x(client_id=X_CLIENT_ID, client_secret=X_CLIENT_SECRET, now=clock.now)
    user_id = fake.create_user("averychen")
    with serving(fake.app) as url:
        container = bootstrap(
            settings.replace(
                x_api_url=url,
                x_authorize_url=f"{url}/i/oauth2/authorize",
                x_client_id=X_CLIENT_ID,
                x_client_secret=X_CLIENT_SECRET,
            ),
            clock=clock,
            password_hasher=PasswordHasher(1, 8, 1),
        )
        try:
            world = build_world(container)
            client = create_app(container=container).test_client()
            sign_in(client, world.manager.email)
            started = post_form(
                client,
                "/accounts/connect/x",
                {"principal_id": str(world.account.principal_id)},
                token_from="/accounts",
            )
            query = parse_qs(urlsplit(started.headers["Location"]).query)
            assert query["code_challenge_method"] == ["S256"]
            # media.write: posts with images upload them (POST /2/media/upload).
            assert query["scope"] == [
                "tweet.read tweet.write users.read offline.access media.write"
            ]
            done = follow_to_callback(client, started)
            assert done.status_code == 302  # type: ignore[attr-defined]
            page = client.get("/accounts").get_data(as_text=True)
            assert "Connected X account @averychen" in page
            account = account_named(world, "x", "averychen")
            assert account.remote_id == user_id
            stored = container.credentials.load(account)
            assert stored["refresh_token"] and stored["refresh_token"] not in page

            publish_through(world, account, "Hello X")
            assert [t["text"] for t in fake.tweets] == [NOTICE, "Hello X #team"]
            for secret in (stored["access_token"], stored["refresh_token"], X_CLIENT_SECRET):
                assert secret not in caplog.text
        finally:
            container.dispose()
