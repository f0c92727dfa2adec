"""The Mastodon adapter against a protocol-faithful fake instance over real HTTP (127.0.0.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from ghostpost.adapters.base import (
    Connection,
    NotConnected,
    PermanentError,
    PlatformApp,
    RetryableError,
)
from ghostpost.adapters.http import PlatformHttp
from ghostpost.adapters.mastodon import (
    SCOPES,
    MastodonConnector,
    MastodonPublisher,
    from_container,
    text_fingerprint,
)
from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.db.models import AccountRow, PlatformAppRow
from ghostpost.domain.length import budget_for
from ghostpost.domain.model import Account
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.textseg import default_segmenter
from tests.support.fake_mastodon import FakeMastodon, make_fake_mastodon
from tests.support.http_server import serving

CALLBACK = "http://ghostpost.test/accounts/mastodon/callback"
#: Not Mastodon's default, so a test passing proves the limit was read from the instance.
LIMIT = 520


@pytest.fixture
def fake(clock: FixedClock) -> FakeMastodon:
    return make_fake_mastodon(max_characters=LIMIT, characters_reserved_per_url=23, now=clock.now)


@pytest.fixture
def instance(fake: FakeMastodon) -> Iterator[str]:
    with serving(fake.app) as base_url:
        yield base_url


@pytest.fixture
def http(container: Container) -> Iterator[PlatformHttp]:
    client = PlatformHttp(container.settings.platform_timeout_seconds, container.outbound)
    yield client
    client.session.close()


@pytest.fixture
def connector(container: Container, http: PlatformHttp) -> MastodonConnector:
    return MastodonConnector(http, container.platform_apps)


@pytest.fixture
def publisher(container: Container) -> Iterator[MastodonPublisher]:
    built = from_container(container)
    yield built
    built.close()


# -- helpers --------------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Collects each form's action and its inputs, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1][1][values["name"]] = values.get("value", "")


def consent(base_url: str, authorize_url: str) -> dict[str, str]:
    """Open the consent page like a browser, press Authorize, return the callback's query."""
    with requests.Session() as browser:
        page = browser.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text
        parser = _Forms()
        parser.feed(page.text)
        action, fields = parser.forms[0]  # the first form is "Authorize"
        answer = browser.post(base_url + action, data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(location).query))


def store_connection(container: Container, account: Account, connection: Connection) -> Account:
    """Persist what connecting established (the real connect service is written elsewhere)."""
    with container.sessions() as session, session.begin():
        row = session.get(AccountRow, account.id)
        assert row is not None
        row.base_url = connection.base_url
        row.remote_id = connection.remote_id
        row.max_chars = connection.max_chars
        row.url_length = connection.url_length
        row.connected_at = container.clock.now()
    # Sealed for the account as now stored: its instance and remote id are part of the binding.
    located = dataclasses.replace(
        account, base_url=connection.base_url, remote_id=connection.remote_id
    )
    container.credentials.save(located, connection.credentials)
    with container.services.uow() as uow:
        stored = uow.accounts.get(account.id)
    assert stored is not None and stored.connected
    return stored


def new_account(container: Container, handle: str) -> Account:
    system = Actor.system("test")
    principal = directory.create_principal(container.services, system, f"Principal {handle}")
    return directory.create_account(
        container.services, system, principal_id=principal.id, platform="mastodon", handle=handle
    )


def connected_account(
    container: Container,
    fake: FakeMastodon,
    base_url: str,
    username: str = "avery",
    *,
    scopes: str = SCOPES,
) -> tuple[Account, str]:
    """A mastodon account with a user token minted on the fake; returns it and the token."""
    account = new_account(container, username)
    remote_id = fake.create_user(username)
    token = fake.issue_token(username, scopes)
    connection = Connection(
        platform="mastodon",
        handle=f"{username}@{urlsplit(base_url).netloc}",
        remote_id=remote_id,
        base_url=base_url,
        credentials={"access_token": token},
        max_chars=fake.max_characters,
        url_length=fake.characters_reserved_per_url,
    )
    return store_connection(container, account, connection), token


def post_directly(base_url: str, token: str, text: str, key: str | None = None) -> dict[str, Any]:
    """Post as another client of the same account would (not through ghostpost)."""
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    with requests.Session() as client:
        response = client.post(
            f"{base_url}/api/v1/statuses", data={"status": text}, headers=headers, timeout=10
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- connecting -----------------------------------------------------------------------------------


def test_connect_flow_reads_the_instance_limits_and_yields_a_working_connection(
    container: Container,
    fake: FakeMastodon,
    instance: str,
    connector: MastodonConnector,
    publisher: MastodonPublisher,
) -> None:
    remote_id = fake.create_user("avery")
    fake.approve_as("avery")

    started = connector.start(instance, CALLBACK)

    assert set(started) == {"authorize_url", "state", "code_verifier", "base_url", "redirect_uri"}
    query = parse_qs(urlsplit(started["authorize_url"]).query)
    assert started["authorize_url"].startswith(f"{instance}/oauth/authorize?")
    assert query["response_type"] == ["code"]
    assert query["scope"] == [SCOPES]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["state"] == [started["state"]]
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [fake.apps[0].client_id]
    assert fake.apps[0].client_secret not in repr(started)

    callback = consent(instance, started["authorize_url"])
    assert callback["state"] == started["state"]
    connection = connector.finish(started, callback["code"], state=callback["state"])

    host = urlsplit(instance).netloc
    assert connection.platform == "mastodon"
    assert connection.handle == f"avery@{host}"
    assert connection.remote_id == remote_id
    assert connection.base_url == instance
    assert connection.max_chars == LIMIT
    assert connection.url_length == 23
    token = connection.credentials["access_token"]
    assert set(connection.credentials) == {"access_token"}
    assert fake.tokens[token].account_id == remote_id
    assert fake.tokens[token].scopes == SCOPES.split()
    assert token not in repr(connection)

    # The token works: a post lands on the timeline of the user who authorized.
    account = store_connection(container, new_account(container, "avery"), connection)
    receipt = publisher.publish(account, "Hello from ghostpost", idempotency_key="gp-connect-1")
    assert [s["text"] for s in fake.statuses_of("avery")] == ["Hello from ghostpost"]
    assert receipt.url == f"{instance}/@avery/{receipt.platform_post_id}"


def test_the_app_is_registered_once_per_instance_and_its_secret_is_stored_sealed(
    container: Container, fake: FakeMastodon, instance: str, connector: MastodonConnector
) -> None:
    first = connector.start(instance, CALLBACK)
    second = connector.start(instance, CALLBACK)

    assert fake.calls.count(("POST", "/api/v1/apps")) == 1
    assert len(fake.apps) == 1
    registered = fake.apps[0]
    assert registered.name == "ghostpost"
    assert registered.redirect_uris == [CALLBACK]
    assert registered.scopes == SCOPES.split()
    assert registered.website
    # Each connection attempt gets its own state and PKCE verifier.
    assert first["state"] != second["state"]
    assert first["code_verifier"] != second["code_verifier"]
    assert len(first["code_verifier"]) >= 43

    stored = container.platform_apps.find("mastodon", instance)
    assert stored is not None
    assert stored.client_id == registered.client_id
    assert stored.client_secret == registered.client_secret
    with container.sessions() as session:
        column = session.scalar(select(PlatformAppRow.client_secret))
    assert column is not None
    assert registered.client_secret not in column

    with pytest.raises(PermanentError, match="redirect URI"):
        connector.start(instance, "http://elsewhere.test/callback")


def test_finish_refuses_a_foreign_state_a_wrong_verifier_and_a_reused_code(
    fake: FakeMastodon, instance: str, connector: MastodonConnector
) -> None:
    fake.create_user("avery")
    fake.approve_as("avery")
    started = connector.start(instance, CALLBACK)
    code = consent(instance, started["authorize_url"])["code"]

    with pytest.raises(PermanentError, match="does not belong to this connection"):
        connector.finish(started, code, state="forged")

    verifier = started["code_verifier"]
    tampered = {**started, "code_verifier": verifier[:-1] + ("x" if verifier[-1] != "x" else "y")}
    with pytest.raises(PermanentError, match="invalid_grant") as refused:
        connector.finish(tampered, code)
    assert fake.apps[0].client_secret not in str(refused.value)
    assert not fake.tokens  # nothing was issued

    assert connector.finish(started, code).remote_id
    with pytest.raises(PermanentError, match="invalid_grant"):
        connector.finish(started, code)  # codes are single-use


def test_connect_reads_the_limits_from_v1_on_servers_without_v2(
    clock: FixedClock, http: PlatformHttp, container: Container
) -> None:
    old = make_fake_mastodon(max_characters=1000, characters_reserved_per_url=0, now=clock.now)
    old.instance_v2 = False
    old.create_user("avery")
    old.approve_as("avery")
    with serving(old.app) as base_url:
        connector = MastodonConnector(http, container.platform_apps)
        started = connector.start(base_url, CALLBACK)
        connection = connector.finish(started, consent(base_url, started["authorize_url"])["code"])
    assert ("GET", "/api/v2/instance") in old.calls
    assert connection.max_chars == 1000
    assert connection.url_length == 0


def test_connect_failures_are_mapped_to_retryable_and_permanent_errors(
    fake: FakeMastodon, instance: str, connector: MastodonConnector
) -> None:
    fake.fail_next("POST", "/api/v1/apps", 503, {"error": "busy"}, headers={"Retry-After": "7"})
    with pytest.raises(RetryableError) as busy:
        connector.start(instance, CALLBACK)
    assert busy.value.retry_after == 7

    fake.create_user("avery")
    fake.approve_as("avery")
    started = connector.start(instance, CALLBACK)
    code = consent(instance, started["authorize_url"])["code"]
    fake.fail_next("POST", "/oauth/token", 502, "<html>Bad gateway</html>")
    with pytest.raises(RetryableError, match="HTTP 502"):
        connector.finish(started, code)


def test_the_fake_authorize_endpoint_refuses_what_mastodon_refuses(
    fake: FakeMastodon, instance: str, connector: MastodonConnector
) -> None:
    fake.create_user("avery")
    fake.approve_as("avery")
    started = connector.start(instance, CALLBACK)
    good = dict(parse_qsl(urlsplit(started["authorize_url"]).query))

    def status_of(**changes: str) -> int:
        query = urlencode({**good, **changes})
        with requests.Session() as browser:
            return browser.get(f"{instance}/oauth/authorize?{query}", timeout=10).status_code

    assert status_of() == 200
    assert status_of(code_challenge_method="plain") == 400
    assert status_of(scope=SCOPES + " follow") == 400  # not registered for the app
    assert status_of(redirect_uri="http://evil.test/cb") == 400
    assert status_of(client_id="unknown") == 401  # Doorkeeper: invalid_client is 401


# -- publishing -----------------------------------------------------------------------------------


def test_publish_sends_the_exact_text_and_returns_the_status_url(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, token = connected_account(container, fake, instance)
    text = (
        "Our keynote 🎤👩🏽‍💻 is live: https://example.com/talks/2026?utm=x — "
        "thanks @jo@mastodon.example #team"
    )

    receipt = publisher.publish(account, text, idempotency_key="gp-post-1")

    [status] = fake.statuses
    assert status["text"] == text
    assert status["visibility"] == "public"
    assert receipt.platform_post_id == status["id"]
    assert receipt.url == f"{instance}/@avery/{status['id']}"
    sent = next(r for r in fake.received if r.path == "/api/v1/statuses")
    assert sent.json() == {"status": text, "visibility": "public"}
    assert sent.headers["Authorization"] == f"Bearer {token}"
    assert sent.headers["Idempotency-Key"] == "gp-post-1"


def test_a_post_exactly_at_the_instance_limit_is_accepted_and_one_more_is_refused(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, _ = connected_account(container, fake, instance)
    url = "https://example.com/" + "long-path/" * 30  # 320 characters, counts 23
    text = f"{url} " + "a" * (LIMIT - 24)
    budget = budget_for("mastodon", default_segmenter(), limit=LIMIT, url_length=23)
    assert budget.measure(text).primary.used == LIMIT
    assert len(text) > LIMIT + 250

    assert publisher.publish(account, text, idempotency_key="gp-at-limit").platform_post_id

    with pytest.raises(PermanentError, match=f"character limit of {LIMIT} exceeded"):
        publisher.publish(account, text + "b", idempotency_key="gp-over-limit")
    assert [s["text"] for s in fake.statuses] == [text]


def test_the_same_idempotency_key_twice_makes_one_status(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, _ = connected_account(container, fake, instance)
    first = publisher.publish(account, "Once only", idempotency_key="gp-twice")
    again = publisher.publish(account, "Once only", idempotency_key="gp-twice")
    assert again == first
    assert len(fake.statuses) == 1
    assert fake.calls.count(("POST", "/api/v1/statuses")) == 2


def test_a_revoked_token_is_permanent_and_asks_for_a_reconnect(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, token = connected_account(container, fake, instance)
    fake.revoke(token)
    with pytest.raises(PermanentError, match="reconnect the account") as refused:
        publisher.publish(account, "Hello", idempotency_key="gp-revoked")
    assert "revoked" in str(refused.value)
    assert token not in str(refused.value)
    assert not fake.statuses


def test_rate_limits_and_server_errors_are_retryable_and_the_retry_posts_once(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, _ = connected_account(container, fake, instance)
    fake.fail_next(
        "POST",
        "/api/v1/statuses",
        429,
        {"error": "Too many requests"},
        headers={"Retry-After": "30"},
    )
    with pytest.raises(RetryableError) as limited:
        publisher.publish(account, "Busy day", idempotency_key="gp-busy")
    assert limited.value.retry_after == 30

    fake.fail_next("POST", "/api/v1/statuses", 503, "<h1>Service Unavailable</h1>")
    with pytest.raises(RetryableError, match="HTTP 503"):
        publisher.publish(account, "Busy day", idempotency_key="gp-busy")

    publisher.publish(account, "Busy day", idempotency_key="gp-busy")
    assert [s["text"] for s in fake.statuses] == ["Busy day"]


def test_an_account_without_an_instance_or_token_is_not_connected(
    container: Container, publisher: MastodonPublisher
) -> None:
    account = new_account(container, "nobody")
    with pytest.raises(NotConnected):
        publisher.publish(account, "Hello", idempotency_key="gp-nowhere")


# -- reconciliation -------------------------------------------------------------------------------


def test_lookup_on_a_new_publisher_finds_a_status_accepted_before_a_crash(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, token = connected_account(container, fake, instance)
    post_directly(instance, token, "Something else first")
    # Mastodon strips the text and rewrites "@Avery@<its own domain>" to "@avery": the stored
    # text differs from the text sent, and lookup must still recognise it.
    text = "\nThanks @Avery@127.0.0.1 and @jo@mastodon.example! #team"
    receipt = publisher.publish(account, text, idempotency_key="gp-crash")
    assert fake.statuses[-1]["text"] == "Thanks @avery and @jo@mastodon.example! #team"
    post_directly(instance, token, "Something else afterwards")

    after_restart = from_container(container)
    try:
        found = after_restart.lookup(account, idempotency_key="gp-crash")
    finally:
        after_restart.close()
    assert found == receipt


def test_lookup_for_a_key_never_sent_is_none(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    account, token = connected_account(container, fake, instance)
    post_directly(instance, token, "Unrelated")
    assert publisher.lookup(account, idempotency_key="gp-never") is None
    # Recorded but the send never reached the instance: still nothing to find.
    container.attempts.record(account, "gp-lost", ref=text_fingerprint("Lost in transit"))
    assert publisher.lookup(account, idempotency_key="gp-lost") is None


def test_lookup_pages_back_through_newer_statuses(
    container: Container,
    clock: FixedClock,
    fake: FakeMastodon,
    instance: str,
    publisher: MastodonPublisher,
) -> None:
    account, token = connected_account(container, fake, instance)
    receipt = publisher.publish(account, "The one we sent", idempotency_key="gp-deep")
    for number in range(45):
        clock.advance(seconds=10)
        post_directly(instance, token, f"Newer post {number}")
    assert publisher.lookup(account, idempotency_key="gp-deep") == receipt
    listed = [r for r in fake.received if r.path.endswith(f"/{account.remote_id}/statuses")]
    assert len(listed) == 2  # the second page asked with max_id


def test_lookup_does_not_take_an_older_status_with_the_same_text(
    container: Container,
    clock: FixedClock,
    fake: FakeMastodon,
    instance: str,
    publisher: MastodonPublisher,
) -> None:
    account, token = connected_account(container, fake, instance)
    post_directly(instance, token, "Good morning!")
    clock.advance(days=1)
    container.attempts.record(account, "gp-morning", ref=text_fingerprint("Good morning!"))
    assert publisher.lookup(account, idempotency_key="gp-morning") is None


def test_the_fake_forgets_an_idempotency_key_after_an_hour(
    container: Container, clock: FixedClock, fake: FakeMastodon, instance: str
) -> None:
    _, token = connected_account(container, fake, instance)
    first = post_directly(instance, token, "Hi", key="k")
    assert post_directly(instance, token, "Hi", key="k")["id"] == first["id"]
    clock.advance(hours=2)
    assert post_directly(instance, token, "Hi", key="k")["id"] != first["id"]


def test_after_the_idempotency_window_publish_looks_before_sending_again(
    container: Container,
    clock: FixedClock,
    fake: FakeMastodon,
    instance: str,
    publisher: MastodonPublisher,
) -> None:
    account, _ = connected_account(container, fake, instance)
    receipt = publisher.publish(account, "Sent before the crash", idempotency_key="gp-late")
    clock.advance(hours=2)  # the fake has forgotten the key by now

    assert publisher.lookup(account, idempotency_key="gp-late") == receipt
    again = publisher.publish(account, "Sent before the crash", idempotency_key="gp-late")

    assert again == receipt
    assert len(fake.statuses) == 1
    assert fake.calls.count(("POST", "/api/v1/statuses")) == 1


def test_a_late_retry_of_a_post_that_never_arrived_is_sent(
    container: Container,
    clock: FixedClock,
    fake: FakeMastodon,
    instance: str,
    publisher: MastodonPublisher,
) -> None:
    account, _ = connected_account(container, fake, instance)
    fake.fail_next("POST", "/api/v1/statuses", 503, {"error": "down"})
    with pytest.raises(RetryableError):
        publisher.publish(account, "Try again later", idempotency_key="gp-retry")
    clock.advance(hours=3)
    receipt = publisher.publish(account, "Try again later", idempotency_key="gp-retry")
    assert [s["id"] for s in fake.statuses] == [receipt.platform_post_id]


def test_lookup_needs_read_statuses_and_says_so(
    container: Container, fake: FakeMastodon, instance: str, publisher: MastodonPublisher
) -> None:
    # A token without read:statuses can post but cannot list or read sources (Mastodon 403s).
    account, _ = connected_account(container, fake, instance, scopes="read:accounts write:statuses")
    publisher.publish(account, "Posted", idempotency_key="gp-scopes")
    with pytest.raises(PermanentError, match="reconnect the account to grant"):
        publisher.lookup(account, idempotency_key="gp-scopes")


def test_an_app_registered_before_a_scope_was_added_is_registered_again_and_connecting_works(
    container: Container, fake: FakeMastodon, instance: str, connector: MastodonConnector
) -> None:
    # The attack on the user, not by one: an instance's app stored by an older ghostpost (its
    # scopes lacked `write:media`) makes every reconnect fail with invalid_scope, because
    # Mastodon refuses a scope the app was not registered with, and images never go out.
    old_scopes = "read:accounts read:statuses write:statuses"
    response = requests.post(
        f"{instance}/api/v1/apps",
        data={"client_name": "ghostpost", "redirect_uris": CALLBACK, "scopes": old_scopes},
        timeout=5,
    )
    old = response.json()
    container.platform_apps.add(
        PlatformApp("mastodon", instance, old["client_id"], old["client_secret"], CALLBACK)
    )
    fake.create_user("avery")
    fake.approve_as("avery")

    started = connector.start(instance, CALLBACK)
    connection = connector.finish(started, consent(instance, started["authorize_url"])["code"])

    assert connection.remote_id
    assert [app.scopes for app in fake.apps] == [old_scopes.split(), SCOPES.split()]
    stored = container.platform_apps.find("mastodon", instance)
    assert stored is not None
    assert stored.client_id == fake.apps[1].client_id
    assert stored.scopes == SCOPES
    # The new app is kept: the next connection registers nothing.
    connector.start(instance, CALLBACK)
    assert fake.calls.count(("POST", "/api/v1/apps")) == 2
