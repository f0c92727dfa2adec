"""The X adapter against the fake X over real HTTP: connect (PKCE), publish, refresh, dedupe."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from ghostpost.adapters.base import Connection, PermanentError, RetryableError
from ghostpost.adapters.http import PlatformHttp
from ghostpost.adapters.x import SCOPES, XConnector, XPublisher, from_container
from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.db.models import AccountRow
from ghostpost.domain.model import Account
from ghostpost.services.context import Actor
from ghostpost.services.directory import create_account, create_principal
from tests.support.fake_x import FakeX, make_fake_x
from tests.support.http_server import serving

CLIENT_ID = "Z2hvc3Rwb3N0LWNsaWVudA"
CLIENT_SECRET = "s3cr3t-Xk9_qLw2ZbYp"
CALLBACK = "https://ghostpost.test/accounts/connect/x/callback"
# Each X counts 1; "日本" weighs 4, the emoji 2, the URL 23 (not its 38 characters).
MIXED_TEXT = "Keynote 日本 🎉 slides: https://example.com/talks/2026/keynote"


@pytest.fixture
def fake(container: Container) -> FakeX:
    # The fake shares the container's FixedClock, so token expiry follows clock.advance().
    return make_fake_x(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        now=container.clock.now,
        redirect_uris=[CALLBACK],
    )


@pytest.fixture
def x_url(fake: FakeX) -> Iterator[str]:
    with serving(fake.app) as url:
        yield url


@pytest.fixture
def http(container: Container) -> Iterator[PlatformHttp]:
    platform_http = PlatformHttp(5.0, container.outbound)
    yield platform_http
    platform_http.session.close()


def make_connector(container: Container, http: PlatformHttp, x_url: str) -> XConnector:
    return XConnector(
        http,
        api_url=x_url,
        authorize_url=f"{x_url}/i/oauth2/authorize",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        clock=container.clock,
    )


def make_publisher(container: Container, http: PlatformHttp, x_url: str) -> XPublisher:
    return XPublisher(
        container.credentials,
        container.attempts,
        http,
        container.clock,
        api_url=x_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )


def approve_on_x(authorize_url: str, decision: str = "allow") -> tuple[requests.Response, str]:
    """Open X's consent page as a browser would and submit its form; return (page, Location)."""
    with requests.Session() as browser:
        page = browser.get(authorize_url, timeout=5)
        assert page.status_code == 200, page.text
        found = re.search(r'name="consent" value="([^"]+)"', page.text)
        assert found is not None, page.text
        action = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
        answer = browser.post(
            f"{action}/i/oauth2/authorize",
            data={"consent": found.group(1), "decision": decision},
            allow_redirects=False,
            timeout=5,
        )
        assert answer.status_code == 302, answer.text
        return page, answer.headers["Location"]


def connect(container: Container, http: PlatformHttp, x_url: str) -> Connection:
    """Run the whole connect flow for the fake's signed-in user."""
    connector = make_connector(container, http, x_url)
    started = connector.start(CALLBACK)
    _, location = approve_on_x(started["authorize_url"])
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [started["state"]]
    return connector.finish(started, query["code"][0])


def register_account(container: Container, connection: Connection) -> Account:
    """Store a connection the way the connect service will (that service is not under test)."""
    actor = Actor.system("test")
    principal = create_principal(container.services, actor, "Dana Exec")
    account = create_account(
        container.services,
        actor,
        principal_id=principal.id,
        platform="x",
        handle=connection.handle,
    )
    with container.sessions() as session, session.begin():
        row = session.get(AccountRow, account.id)
        assert row is not None
        row.remote_id = connection.remote_id
    # Sealed for the account as now stored: the remote id is part of the binding.
    located = dataclasses.replace(account, remote_id=connection.remote_id, connected=True)
    container.credentials.save(located, connection.credentials)
    return located


@pytest.fixture
def account(container: Container, fake: FakeX, http: PlatformHttp, x_url: str) -> Account:
    fake.create_user("dana_exec", "Dana Exec")
    return register_account(container, connect(container, http, x_url))


@pytest.fixture
def publisher(container: Container, http: PlatformHttp, x_url: str) -> XPublisher:
    return make_publisher(container, http, x_url)


def raw_credentials_column(container: Container, account: Account) -> str:
    with container.sessions() as session:
        value = session.scalar(select(AccountRow.credentials).where(AccountRow.id == account.id))
    assert value is not None
    return value


# ---- connecting --------------------------------------------------------------------------


def test_connect_uses_pkce_s256_basic_client_auth_and_the_requested_scopes(
    container: Container, fake: FakeX, http: PlatformHttp, x_url: str
) -> None:
    user_id = fake.create_user("dana_exec", "Dana Exec")
    connection = connect(container, http, x_url)

    [authorize] = fake.authorize_requests
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["scope"] == SCOPES
    assert authorize["client_id"] == CLIENT_ID
    assert authorize["redirect_uri"] == CALLBACK
    [exchange] = fake.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["client_auth"] == "basic"
    assert "code_verifier" in exchange["fields"].split()
    assert "client_secret" not in exchange["fields"].split()

    assert connection.platform == "x"
    assert (connection.handle, connection.remote_id) == ("dana_exec", user_id)
    assert connection.base_url is None
    assert connection.max_chars is None and connection.url_length is None
    credentials = connection.credentials
    assert set(credentials) == {"access_token", "refresh_token", "expires_at", "scope"}
    assert credentials["access_token"] in fake.tokens
    assert credentials["refresh_token"] in fake.refresh_tokens
    assert credentials["expires_at"] == int(container.clock.now().timestamp()) + 7200
    assert set(credentials["scope"].split()) == set(SCOPES.split())
    assert credentials["access_token"] not in repr(connection)


def test_an_authorization_code_works_once(
    container: Container, fake: FakeX, http: PlatformHttp, x_url: str
) -> None:
    fake.create_user("dana_exec")
    connector = make_connector(container, http, x_url)
    started = connector.start(CALLBACK)
    _, location = approve_on_x(started["authorize_url"])
    code = parse_qs(urlsplit(location).query)["code"][0]
    connector.finish(started, code)

    with pytest.raises(PermanentError, match="start connecting again"):
        connector.finish(started, code)


def test_a_wrong_code_verifier_is_refused(
    container: Container, fake: FakeX, http: PlatformHttp, x_url: str
) -> None:
    fake.create_user("dana_exec")
    connector = make_connector(container, http, x_url)
    started = connector.start(CALLBACK)
    _, location = approve_on_x(started["authorize_url"])
    code = parse_qs(urlsplit(location).query)["code"][0]

    with pytest.raises(PermanentError, match="authorization code was invalid"):
        connector.finish({**started, "code_verifier": "x" * 64}, code)


def test_denied_consent_redirects_with_access_denied(
    container: Container, fake: FakeX, http: PlatformHttp, x_url: str
) -> None:
    fake.create_user("dana_exec")
    started = make_connector(container, http, x_url).start(CALLBACK)
    _, location = approve_on_x(started["authorize_url"], decision="deny")
    assert parse_qs(urlsplit(location).query) == {
        "error": ["access_denied"],
        "state": [started["state"]],
    }


def test_start_refuses_when_x_is_not_configured(
    container: Container, http: PlatformHttp, x_url: str
) -> None:
    connector = XConnector(
        http,
        api_url=x_url,
        authorize_url=f"{x_url}/i/oauth2/authorize",
        client_id="",
        client_secret="",
        clock=container.clock,
    )
    with pytest.raises(PermanentError, match="set x_client_id and x_client_secret"):
        connector.start(CALLBACK)


def test_wrong_client_secret_is_a_configuration_error(
    container: Container, fake: FakeX, http: PlatformHttp, x_url: str
) -> None:
    fake.create_user("dana_exec")
    connector = XConnector(
        http,
        api_url=x_url,
        authorize_url=f"{x_url}/i/oauth2/authorize",
        client_id=CLIENT_ID,
        client_secret="not-the-secret",
        clock=container.clock,
    )
    started = connector.start(CALLBACK)
    _, location = approve_on_x(started["authorize_url"])
    with pytest.raises(PermanentError, match="x_client_secret") as caught:
        connector.finish(started, parse_qs(urlsplit(location).query)["code"][0])
    assert "not-the-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"client_id": "someone-else"}, "unknown client"),
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge is required"),
        ({"code_challenge_method": "S512"}, "must be S256 or plain"),
        ({"redirect_uri": "https://evil.test/cb"}, "registered callback"),
        ({"scope": "tweet.write everything"}, "invalid scope"),
    ],
)
def test_fake_x_refuses_bad_authorize_requests(
    container: Container,
    fake: FakeX,
    http: PlatformHttp,
    x_url: str,
    change: dict[str, str | None],
    reason: str,
) -> None:
    started = make_connector(container, http, x_url).start(CALLBACK)
    parts = urlsplit(started["authorize_url"])
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    for key, value in change.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = value
    page = requests.get(f"{x_url}{parts.path}", params=query, timeout=5, allow_redirects=False)
    with page:
        assert page.status_code == 400
        assert reason in page.text


# ---- publishing --------------------------------------------------------------------------


def test_publish_sends_the_exact_text_and_returns_the_receipt(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    receipt = publisher.publish(account, MIXED_TEXT, idempotency_key="gp-1")

    [tweet] = fake.tweets
    assert tweet["text"] == MIXED_TEXT
    assert tweet["author_id"] == account.remote_id
    assert receipt.platform_post_id == tweet["id"]
    assert receipt.url == f"https://x.com/dana_exec/status/{tweet['id']}"


def test_weighted_length_280_is_accepted_and_281_refused(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    # 2 * 139 CJK characters = 278, plus "ab" = 280; one more "c" makes it 281.
    exactly = "日" * 139 + "ab"
    publisher.publish(account, exactly, idempotency_key="gp-280")
    assert [t["text"] for t in fake.tweets] == [exactly]

    with pytest.raises(PermanentError, match="too long"):
        publisher.publish(account, exactly + "c", idempotency_key="gp-281")
    assert len(fake.tweets) == 1


def test_an_expiring_token_is_refreshed_and_the_rotated_one_stored_sealed(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    before = container.credentials.load(account)
    # 30 s before expiry: inside the 60 s margin, so the adapter refreshes before posting.
    clock.advance(seconds=7200 - 30)

    publisher.publish(account, "after a long keynote", idempotency_key="gp-refresh")

    after = container.credentials.load(account)
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    assert after["expires_at"] == int(container.clock.now().timestamp()) + 7200
    # The old refresh token is dead on X; the new one is the live one.
    assert before["refresh_token"] not in fake.refresh_tokens
    assert after["refresh_token"] in fake.refresh_tokens
    [refresh] = [r for r in fake.token_requests if r["grant_type"] == "refresh_token"]
    assert refresh["client_auth"] == "basic"
    # Sealed at rest: the raw column holds neither token.
    raw = raw_credentials_column(container, account)
    assert after["refresh_token"] not in raw
    assert after["access_token"] not in raw


def test_an_expired_token_is_refreshed_too(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    clock.advance(hours=5)
    publisher.publish(account, "still here", idempotency_key="gp-late")
    assert [t["text"] for t in fake.tweets] == ["still here"]


def test_a_401_refreshes_once_and_retries(
    container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    credentials = container.credentials.load(account)
    # X revoked the access token early (the user changed their password, say).
    del fake.tokens[credentials["access_token"]]

    receipt = publisher.publish(account, "revoked, then renewed", idempotency_key="gp-401")

    assert receipt.platform_post_id == fake.tweets[0]["id"]
    assert container.credentials.load(account)["refresh_token"] in fake.refresh_tokens


def test_a_failed_refresh_is_permanent_and_asks_for_a_reconnect(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    credentials = container.credentials.load(account)
    fake.refresh_tokens.clear()  # X forgot the grant (revoked in the user's settings)
    clock.advance(hours=3)

    with pytest.raises(PermanentError, match="reconnects the account") as caught:
        publisher.publish(account, "will not go", idempotency_key="gp-dead")

    message = str(caught.value)
    assert credentials["refresh_token"] not in message
    assert credentials["access_token"] not in message
    assert fake.tweets == []


def test_a_retry_after_a_lost_response_finds_the_tweet_instead_of_reposting(
    clock: FixedClock,
    container: Container,
    fake: FakeX,
    account: Account,
    http: PlatformHttp,
    x_url: str,
) -> None:
    first = make_publisher(container, http, x_url).publish(
        account, "we are live", idempotency_key="gp-lost"
    )
    # A new process (the worker restarted) publishes again under the same key.
    clock.advance(minutes=2)
    second = make_publisher(container, http, x_url).publish(
        account, "we are live", idempotency_key="gp-lost"
    )

    assert second == first
    assert len(fake.tweets) == 1


def test_a_5xx_after_x_accepted_is_retryable_and_the_retry_returns_the_tweet(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    fake.fail_next("POST", "/2/tweets", 503, after=True)

    with pytest.raises(RetryableError) as caught:
        publisher.publish(account, "gateway hiccup", idempotency_key="gp-503")
    # A 5xx says nothing about X's rate window, so there is no long wait.
    assert caught.value.retry_after is None

    receipt = publisher.publish(account, "gateway hiccup", idempotency_key="gp-503")
    [tweet] = fake.tweets
    assert receipt.platform_post_id == tweet["id"]


def test_same_text_under_another_key_is_a_permanent_duplicate(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    first = publisher.publish(account, "Thank you, Lisbon!", idempotency_key="gp-a")

    with pytest.raises(PermanentError, match="duplicate of an earlier one"):
        publisher.publish(account, "Thank you, Lisbon!", idempotency_key="gp-b")
    assert len(fake.tweets) == 1
    # The tweet is gp-a's: gp-b's lookup must not report it as its own.
    assert publisher.lookup(account, idempotency_key="gp-b") is None
    assert publisher.lookup(account, idempotency_key="gp-a") == first


def test_a_retry_never_takes_another_posts_tweet_with_the_same_text(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    publisher.publish(account, "Same words", idempotency_key="gp-a")
    fake.fail_next("POST", "/2/tweets", 503)  # gp-b's attempt is recorded, nothing is sent
    with pytest.raises(RetryableError):
        publisher.publish(account, "Same words", idempotency_key="gp-b")

    # The retry searches, sees gp-a's tweet (claimed by gp-a), sends, and X calls it a duplicate.
    with pytest.raises(PermanentError, match="duplicate of an earlier one"):
        publisher.publish(account, "Same words", idempotency_key="gp-b")
    assert len(fake.tweets) == 1


def test_a_retry_still_posts_when_the_timeline_cannot_be_read(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    assert account.remote_id is not None
    fake.fail_next("POST", "/2/tweets", 503)
    with pytest.raises(RetryableError):
        publisher.publish(account, "tier without reads", idempotency_key="gp-tier")
    fake.fail_next(
        "GET",
        f"/2/users/{account.remote_id}/tweets",
        403,
        body={"title": "Client Forbidden", "detail": "This endpoint is not in your tier."},
    )

    receipt = publisher.publish(account, "tier without reads", idempotency_key="gp-tier")
    [tweet] = fake.tweets
    assert receipt.platform_post_id == tweet["id"]


def test_a_tweet_typed_on_x_is_not_taken_for_a_new_post(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    assert account.remote_id is not None
    fake.add_tweet(account.remote_id, "Great panel!")  # the exec posted it by hand on x.com

    with pytest.raises(PermanentError, match="duplicate of an earlier one"):
        publisher.publish(account, "Great panel!", idempotency_key="gp-new")
    assert len(fake.tweets) == 1


def test_a_key_reused_for_other_text_is_refused(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    publisher.publish(account, "first text", idempotency_key="gp-same")
    with pytest.raises(PermanentError, match="different post"):
        publisher.publish(account, "second text", idempotency_key="gp-same")
    assert len(fake.tweets) == 1


def test_lookup_of_a_key_never_sent_is_none(account: Account, publisher: XPublisher) -> None:
    assert publisher.lookup(account, idempotency_key="gp-never") is None


def test_lookup_matches_despite_tco_links_and_html_escaping(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    text = "Q&A <today> at example.com/qa?x=1&y=2 — literal &amp; stays; see https://x.com/a"
    receipt = publisher.publish(account, text, idempotency_key="gp-url")

    [tweet] = fake.tweets
    assert "t.co/" in tweet["api_text"] and "&amp;amp;" in tweet["api_text"]
    assert "example.com" not in tweet["api_text"]
    assert publisher.lookup(account, idempotency_key="gp-url") == receipt


def test_lookup_ignores_other_tweets_and_pages_through_the_timeline(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    assert account.remote_id is not None
    receipt = publisher.publish(account, "needle", idempotency_key="gp-needle")
    # 150 newer tweets push it to the second page (100 per page).
    for number in range(150):
        clock.advance(seconds=1)
        fake.add_tweet(account.remote_id, f"later tweet {number}")

    assert publisher.lookup(account, idempotency_key="gp-needle") == receipt


def test_a_tweet_from_before_the_attempt_window_is_not_matched(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    assert account.remote_id is not None
    fake.add_tweet(account.remote_id, "old news", at=container.clock.now())
    clock.advance(hours=1)
    fake.fail_next("POST", "/2/tweets", 503)  # the attempt is recorded, nothing is posted
    with pytest.raises(RetryableError):
        publisher.publish(account, "old news", idempotency_key="gp-old")

    assert publisher.lookup(account, idempotency_key="gp-old") is None


def test_rate_limit_is_retryable_until_the_reset(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    fake.tweets_per_window = 1
    publisher.publish(account, "one", idempotency_key="gp-r1")
    clock.advance(minutes=5)

    with pytest.raises(RetryableError) as caught:
        publisher.publish(account, "two", idempotency_key="gp-r2")
    assert "Too Many Requests" in str(caught.value)
    # The 15-minute window opened 5 minutes ago (x-rate-limit-reset, read with our clock).
    assert caught.value.retry_after == pytest.approx(600)

    clock.advance(minutes=10)
    publisher.publish(account, "two", idempotency_key="gp-r2")
    assert [t["text"] for t in fake.tweets] == ["one", "two"]


def test_the_daily_user_cap_waits_for_its_own_reset(
    clock: FixedClock, container: Container, fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    fake.tweets_per_day = 1
    publisher.publish(account, "one", idempotency_key="gp-d1")
    clock.advance(hours=1)

    with pytest.raises(RetryableError) as caught:
        publisher.publish(account, "two", idempotency_key="gp-d2")
    assert caught.value.retry_after == pytest.approx(23 * 3600)


def test_other_client_errors_are_permanent_with_x_detail(
    fake: FakeX, account: Account, publisher: XPublisher
) -> None:
    fake.fail_next(
        "POST",
        "/2/tweets",
        403,
        body={
            "title": "Forbidden",
            "type": "about:blank",
            "status": 403,
            "detail": "You are not permitted to perform this action.",
        },
    )
    with pytest.raises(PermanentError, match="not permitted to perform this action"):
        publisher.publish(account, "blocked", idempotency_key="gp-403")


def test_from_container_reads_the_settings(container: Container) -> None:
    built = from_container(container)
    assert isinstance(built, XPublisher)
    assert built.platform == "x"
