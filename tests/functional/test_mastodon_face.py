"""The Mastodon client API at the root of the Mastodon host (`mastodon_host`): attacks first,
then what clients need (JSON errors, CORS, instance limits, paging), then a real server."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from mastodon import Mastodon, MastodonNotFoundError
from werkzeug.test import TestResponse

from ghostpost import create_app
from ghostpost.api.mastodon_face import HostDispatcher, face_of
from ghostpost.api.mastodon_reads import PUBLIC_ENDPOINTS
from ghostpost.bootstrap import bootstrap
from ghostpost.domain.model import Account, ApiClient, Window
from ghostpost.domain.states import PostState
from ghostpost.services import directory, posts
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden, NotFound
from ghostpost.settings import Settings
from tests.support.api import create_api_client, fetch_token
from tests.support.live import free_port, live_server
from tests.support.world import World

FACE_HOST = "social.example.test"
FACE_URL = f"http://{FACE_HOST}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, mastodon_host=FACE_HOST)


@dataclass
class App:
    """A Mastodon app calling the face's host with a token (or none)."""

    http: FlaskClient
    token: str | None
    client: ApiClient | None = None
    #: The writer a scheduler's token names (a signed-in app's token would carry its user).
    author: str | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.author is not None:
            headers["X-Ghostpost-Author"] = self.author
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.open(path, method=method, base_url=FACE_URL, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)


def app_for(http: FlaskClient, world: World, account: Account, name: str = "Ivory") -> App:
    client, secret = create_api_client(world, name=name, account_ids=[account.id])
    return App(http, fetch_token(http, client.client_id, secret), client, world.writer_a.email)


@pytest.fixture
def second_account(world: World) -> Account:
    """Another account of the same principal, with the same writers, its window open."""
    system = Actor.system("test")
    account = directory.create_account(
        world.ctx, system, principal_id=world.account.principal_id, platform="local", handle="ceo2"
    )
    for writer in (world.writer_a, world.writer_b):
        directory.assign_writer(world.ctx, system, user_id=writer.id, account_id=account.id)
    world.approve_notice(world.open_window(account=account))
    return account


@pytest.fixture
def opened(world: World, opened_window: Window) -> World:
    return world


def create(app: App, text: str, **form: str) -> dict[str, Any]:
    response = app.call("POST", "/api/v1/statuses", data={"status": text, **form})
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def later(world: World, hours: float = 1) -> str:
    return (world.container.clock.now() + timedelta(hours=hours)).isoformat()


def snapshot(world: World) -> tuple[list[tuple[int, str, Any]], int]:
    with world.ctx.uow() as uow:
        every = uow.posts.page(
            account_ids=[a.id for a in uow.accounts.list()],
            window_id=None,
            author_id=None,
            state=None,
            before_id=None,
            limit=1000,
        )
        return [(p.id, p.state.value, p.publish_at) for p in every], len(list(uow.ledger.entries()))


# --- attacks ------------------------------------------------------------------------------


def test_a_token_for_one_account_cannot_read_or_change_another_accounts_statuses(
    client: FlaskClient, opened: World, second_account: Account
) -> None:
    world = opened
    mine = app_for(client, world, world.account, "A's app")
    theirs = app_for(client, world, second_account, "B's app")
    their_scheduled = create(theirs, "B later", scheduled_at=later(world))["id"]
    their_now = create(theirs, "B now")["id"]
    world.run_worker()
    before = snapshot(world)

    for method, path, form in [
        ("GET", f"/api/v1/statuses/{their_now}", None),
        ("GET", f"/api/v1/statuses/{their_now}/context", None),
        ("DELETE", f"/api/v1/statuses/{their_scheduled}", None),
        ("GET", f"/api/v1/scheduled_statuses/{their_scheduled}", None),
        ("PUT", f"/api/v1/scheduled_statuses/{their_scheduled}", {"scheduled_at": later(world, 2)}),
        ("DELETE", f"/api/v1/scheduled_statuses/{their_scheduled}", None),
        ("GET", f"/api/v1/accounts/{second_account.id}/statuses", None),
    ]:
        response = mine.call(method, path, data=form)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True))
        assert response.get_json() == {"error": "Record not found"}, (method, path)

    assert mine.get("/api/v1/scheduled_statuses").get_json() == []
    home = mine.get("/api/v1/timelines/home").get_json()
    assert home and {s["account"]["id"] for s in home} == {str(world.account.id)}
    assert snapshot(world) == before, "nothing changed"


def test_lookup_finds_the_tokens_own_account_and_no_other(
    client: FlaskClient, opened: World, second_account: Account
) -> None:
    """`toot timelines account NAME` looks the account up by name first. A token finds its
    own account (as `name`, `@name` or `name@this-host`) and learns nothing of any other."""
    world = opened
    mine = app_for(client, world, world.account, "toot")
    for acct in ("avery", "@Avery", f"avery@{FACE_HOST}", f"@avery@{FACE_HOST.upper()}"):
        response = mine.get("/api/v1/accounts/lookup", query_string={"acct": acct})
        assert response.status_code == 200, (acct, response.get_data(as_text=True))
        assert response.get_json()["id"] == str(world.account.id)
        assert response.get_json()["acct"] == "avery"
    for acct in (second_account.handle, "avery@elsewhere.example", "nobody", "", "@", "a" * 5000):
        response = mine.get("/api/v1/accounts/lookup", query_string={"acct": acct})
        assert response.status_code == 404, acct
        assert response.get_json() == {"error": "Record not found"}, acct
    assert mine.get("/api/v1/accounts/lookup").status_code == 404


def test_a_client_cannot_cancel_or_reschedule_a_post_it_did_not_submit(
    client: FlaskClient, opened: World
) -> None:
    world = opened
    submitter = app_for(client, world, world.account, "Buffer")
    other = app_for(client, world, world.account, "Hootsuite")
    post_id = create(submitter, "Ours, later", scheduled_at=later(world))["id"]
    before = snapshot(world)

    # The other client sees the account's queue, but may not change what it did not submit.
    assert other.get(f"/api/v1/scheduled_statuses/{post_id}").status_code == 200
    for method, path, form in [
        ("DELETE", f"/api/v1/statuses/{post_id}", None),
        ("DELETE", f"/api/v1/scheduled_statuses/{post_id}", None),
        ("PUT", f"/api/v1/scheduled_statuses/{post_id}", {"scheduled_at": later(world, 2)}),
    ]:
        response = other.call(method, path, data=form)
        assert response.status_code == 403, (method, path, response.get_data(as_text=True))
        assert "only the posts it submitted" in response.get_json()["error"]
    assert snapshot(world) == before

    moved = submitter.call(
        "PUT", f"/api/v1/scheduled_statuses/{post_id}", json={"scheduled_at": later(world, 2)}
    )
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert world.post(int(post_id)).publish_at == world.container.clock.now() + timedelta(hours=2)
    gone = submitter.call("DELETE", f"/api/v1/scheduled_statuses/{post_id}")
    assert (gone.status_code, gone.get_json()) == (200, {})
    assert world.post(int(post_id)).state is PostState.CANCELLED


def test_a_reschedule_through_the_face_cannot_move_a_delegated_post_out_of_its_window(
    client: FlaskClient, opened: World
) -> None:
    """PUT /scheduled_statuses/:id goes through reschedule_post's window rules: a delegated
    post moved past the window's end (where no disclosure covers it) is refused, unchanged."""
    world = opened
    app = app_for(client, world, world.account)
    post_id = create(app, "Panel at two", scheduled_at=later(world))["id"]
    before = snapshot(world)
    moved = app.call(
        "PUT", f"/api/v1/scheduled_statuses/{post_id}", data={"scheduled_at": later(world, 9)}
    )
    assert moved.status_code == 422, moved.get_data(as_text=True)
    assert moved.get_json()["error"].startswith("Validation failed")
    assert snapshot(world) == before


def test_a_person_through_an_account_bound_token_changes_only_what_they_may(
    opened: World, second_account: Account
) -> None:
    """The actor a signed-in Mastodon app's token carries (user + its one account): a writer
    may not cancel a colleague's post, nor anyone a post of an account the token is not for."""
    world = opened
    post = world.submit(
        world.writer_a, "Jordan's", world.container.clock.now() + timedelta(hours=1)
    )
    colleague = dataclasses.replace(
        Actor.for_user(world.writer_b), account_ids=frozenset({world.account.id})
    )
    elsewhere = dataclasses.replace(
        Actor.for_user(world.manager), account_ids=frozenset({second_account.id})
    )
    before = snapshot(world)
    with pytest.raises(Forbidden):
        posts.cancel_post(world.ctx, colleague, post.id)
    with pytest.raises(NotFound):
        posts.cancel_post(world.ctx, elsewhere, post.id)
    with pytest.raises(NotFound):
        posts.reschedule_post(
            world.ctx, elsewhere, post.id, world.container.clock.now() + timedelta(hours=2)
        )
    assert snapshot(world) == before
    author = dataclasses.replace(
        Actor.for_user(world.writer_a), account_ids=frozenset({world.account.id})
    )
    assert posts.cancel_post(world.ctx, author, post.id).state is PostState.CANCELLED


def _example_path(rule: Any) -> str:
    return rule.build({name: "1" for name in rule.arguments})[1]


def test_every_face_route_answers_an_unauthenticated_call_with_a_mastodon_401(
    app: Flask, client: FlaskClient, world: World
) -> None:
    face = face_of(app)
    anonymous = App(client, None)
    forged = App(client, "not-a-token")
    checked = 0
    for rule in face.url_map.iter_rules():
        # Signing in is public, as on Mastodon: registering an app, the OAuth endpoints and
        # their metadata (test_mastodon_signin attacks them).
        if (
            rule.endpoint in PUBLIC_ENDPOINTS
            or rule.endpoint.startswith(("oauth.", "mastodon_oauth."))
            or rule.endpoint == "authorize"
        ):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for caller in (anonymous, forged):
                response = caller.call(method, _example_path(rule))
                assert response.status_code == 401, (method, rule.rule)
                assert response.mimetype == "application/json", (method, rule.rule)
                assert response.get_json()["error"] == "The access token is invalid"
                assert response.headers["WWW-Authenticate"].startswith("Bearer ")
            checked += 1
    assert checked >= 20
    # The public ones answer anyone, as on Mastodon; a bad token is still refused.
    for rule in face.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            assert anonymous.get(rule.rule).status_code == 200, rule.rule
            assert forged.get(rule.rule).status_code == 401, rule.rule


def test_the_face_and_ghostpost_do_not_reach_each_other(client: FlaskClient, opened: World) -> None:
    world = opened
    face_app = app_for(client, world, world.account)
    bearer = {"Authorization": f"Bearer {face_app.token}"}
    # On ghostpost's host: none of the face's root routes (the /compat prefix stays, on purpose).
    for path in ("/api/v2/instance", "/api/v1/scheduled_statuses", "/api/v1/timelines/home"):
        assert client.get(path, headers=bearer).status_code == 404, path
    compat = client.get(f"/compat/mastodon/{world.account.id}/api/v1/instance")
    assert compat.status_code == 200
    # On the Mastodon host: none of ghostpost's own API, pages, health or legacy prefix.
    for path in (
        "/api/v1/posts",
        "/api/v1/accounts",
        "/healthz",
        "/login",
        "/",
        f"/compat/mastodon/{world.account.id}/api/v1/instance",
    ):
        response = face_app.get(path)
        assert response.status_code == 404, path
        assert response.get_json() == {"error": "Record not found"}, path
    assert face_app.call("POST", "/api/v1/posts", json={"text": "x"}).status_code == 404
    assert "Set-Cookie" not in face_app.get("/api/v2/instance").headers


def test_the_host_is_matched_whole_with_or_without_a_port() -> None:
    def environ(host: str, scheme: str = "http") -> dict[str, Any]:
        return {"HTTP_HOST": host, "wsgi.url_scheme": scheme}

    any_port = HostDispatcher(lambda *a: [], lambda *a: [], "Social.Example.Test")
    assert any_port.is_face(environ("social.example.test"))
    assert any_port.is_face(environ("SOCIAL.example.test:8443"))
    assert not any_port.is_face(environ("evil.social.example.test"))
    assert not any_port.is_face(environ("social.example.test.evil"))
    one_port = HostDispatcher(lambda *a: [], lambda *a: [], "127.0.0.1:8001")
    assert one_port.is_face(environ("127.0.0.1:8001"))
    assert not one_port.is_face(environ("127.0.0.1:8000"))
    assert not one_port.is_face(environ("127.0.0.1"))
    assert HostDispatcher(lambda *a: [], lambda *a: [], "s.test:443").is_face(
        environ("s.test", "https")
    )


# --- what clients need --------------------------------------------------------------------


def test_every_error_is_mastodon_json_with_cors(
    app: Flask, client: FlaskClient, opened: World
) -> None:
    face = face_of(app)

    def boom() -> None:
        raise RuntimeError("a bug")

    face.add_url_rule("/api/v1/boom", "boom", boom)
    world = opened
    caller = app_for(client, world, world.account)

    unknown = caller.get("/api/v1/nothing/here")
    assert (unknown.status_code, unknown.get_json()) == (404, {"error": "Record not found"})
    wrong_method = caller.call("PATCH", "/api/v1/instance")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"] == "Method not allowed"
    assert "GET" in wrong_method.headers["Allow"]
    late = caller.call("POST", "/api/v1/statuses", data={"status": "x", "scheduled_at": "soon"})
    assert late.status_code == 422
    assert late.get_json()["error"].startswith("Validation failed:")
    crashed = caller.get("/api/v1/boom")
    assert (crashed.status_code, crashed.get_json()) == (500, {"error": "Internal server error"})
    write_only = App(
        client,
        fetch_token(client, *_client_with(world, ["posts:write"])),
    )
    scoped = write_only.get("/api/v1/timelines/home")
    assert scoped.status_code == 403
    assert scoped.get_json()["error"] == "This action is outside the authorized scopes"

    slashed = caller.get("/api/v1/instance/")
    assert slashed.status_code == 200, "Mastodon.py asks with a trailing slash"
    assert slashed.headers["Access-Control-Allow-Origin"] == "*"
    assert "Link" in slashed.headers["Access-Control-Expose-Headers"]
    assert unknown.headers["Access-Control-Allow-Origin"] == "*"
    preflight = App(client, None).call(
        "OPTIONS",
        "/api/v1/statuses",
        headers={
            "Origin": "https://elk.zone",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, idempotency-key"
    assert "Access-Control-Allow-Credentials" not in preflight.headers


def _client_with(world: World, scopes: list[str]) -> tuple[str, str]:
    client, secret = create_api_client(world, name="narrow", scopes=scopes)
    return client.client_id, secret


def test_over_the_budget_is_a_mastodon_429(settings: Settings, world: World) -> None:
    container = bootstrap(dataclasses.replace(settings, api_rate_limit="3 per minute"))
    try:
        http = create_app(container=container).test_client()
        caller = app_for(http, world, world.account)
        answers = [caller.get("/api/v1/markers") for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        limited = answers[-1]
        assert limited.get_json()["error"] == "Too many requests"
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert int(limited.headers["Retry-After"]) > 0
    finally:
        container.dispose()


def test_instance_tells_the_accounts_real_limits(client: FlaskClient, world: World) -> None:
    budget = world.ctx.budget_for(world.account).measure("").primary.limit
    for path in ("/api/v1/instance", "/api/v2/instance"):
        anonymous = App(client, None).get(path).get_json()
        assert anonymous["version"] == "4.3.0+ghostpost"
        statuses = anonymous["configuration"]["statuses"]
        assert statuses["max_characters"] == budget
        assert statuses["characters_reserved_per_url"] == (world.account.url_length or 23)
        signed = app_for(client, world, world.account).get(path).get_json()
        assert signed["configuration"]["statuses"]["max_characters"] == budget
    v2 = App(client, None).get("/api/v2/instance").get_json()
    assert v2["domain"] == FACE_HOST
    assert v2["registrations"]["enabled"] is False
    assert set(v2["configuration"]["polls"]) == {
        "max_options",
        "max_characters_per_option",
        "min_expiration",
        "max_expiration",
    }


def test_a_client_token_reaching_several_accounts_is_told_why(
    client: FlaskClient, world: World, second_account: Account
) -> None:
    both = App(
        client,
        fetch_token(
            client,
            *(lambda c: (c[0].client_id, c[1]))(
                create_api_client(world, account_ids=[world.account.id, second_account.id])
            ),
        ),
    )
    response = both.get("/api/v1/accounts/verify_credentials")
    assert response.status_code == 403
    assert "reaches 2 accounts" in response.get_json()["error"]


def test_the_accounts_statuses_page_like_mastodon(client: FlaskClient, opened: World) -> None:
    world = opened
    caller = app_for(client, world, world.account)
    me = caller.get("/api/v1/accounts/verify_credentials").get_json()
    assert me["id"] == str(world.account.id) and me["source"]["privacy"] == "public"
    created = [create(caller, f"Post number {n}")["id"] for n in range(3)]
    queued = create(caller, "Not yet", scheduled_at=later(world))["id"]
    world.run_worker()
    path = f"/api/v1/accounts/{world.account.id}/statuses"
    everything = [s["id"] for s in caller.get(path).get_json()]
    assert set(created) <= set(everything) and queued not in everything
    assert everything == sorted(everything, key=int, reverse=True)
    assert [s["id"] for s in caller.get("/api/v1/timelines/home").get_json()] == everything

    first = caller.get(path, query_string={"limit": 2})
    assert [s["id"] for s in first.get_json()] == everything[:2]
    links = {
        part.split(";")[1].strip(): part.split(";")[0].strip(" <>")
        for part in first.headers["Link"].split(",")
    }
    following = urlsplit(links['rel="next"'])
    assert f"{following.scheme}://{following.netloc}" == FACE_URL
    assert parse_qs(following.query) == {"limit": ["2"], "max_id": [everything[1]]}
    second = caller.get(following.path, query_string=following.query)
    assert [s["id"] for s in second.get_json()] == everything[2:4]
    newer = caller.get(path, query_string={"min_id": everything[2], "limit": 1})
    assert [s["id"] for s in newer.get_json()] == [everything[1]]
    since = caller.get(path, query_string={"since_id": everything[2], "limit": 1})
    assert [s["id"] for s in since.get_json()] == [everything[0]]
    assert caller.get(path, query_string={"max_id": "x"}).status_code == 422
    assert caller.get(path, query_string={"max_id": "9" * 25}).status_code == 200

    scheduled = caller.get("/api/v1/scheduled_statuses").get_json()
    assert [s["id"] for s in scheduled] == [queued]
    context = caller.get(f"/api/v1/statuses/{created[0]}/context")
    assert context.get_json() == {"ancestors": [], "descendants": []}
    for path, body in [
        ("/api/v1/custom_emojis", []),
        ("/api/v1/notifications", []),
        ("/api/v1/markers", {}),
        ("/api/v2/notifications", {"accounts": [], "statuses": [], "notification_groups": []}),
    ]:
        assert caller.get(path).get_json() == body, path


def test_delete_cancels_what_has_not_gone_out_and_refuses_a_client_what_has(
    client: FlaskClient, opened: World
) -> None:
    """A scheduler's token may cancel its queued post; deleting a published one is the
    principal's alone (tests/functional/test_post_deletion.py), so it is refused here."""
    world = opened
    caller = app_for(client, world, world.account)
    published = create(caller, "Out already")["id"]
    world.run_worker()
    assert world.post(int(published)).state is PostState.PUBLISHED
    queued = create(caller, "Not yet", scheduled_at=later(world))["id"]
    before = snapshot(world)

    refused = caller.call("DELETE", f"/api/v1/statuses/{published}")
    assert refused.status_code == 403
    assert "Only the principal" in refused.get_json()["error"]
    assert snapshot(world) == before

    deleted = caller.call("DELETE", f"/api/v1/statuses/{queued}")
    assert deleted.status_code == 200
    assert deleted.get_json()["text"].startswith("Not yet")
    assert world.post(int(queued)).state is PostState.CANCELLED
    with world.ctx.uow() as uow:
        tags = [e.tag for e in list(uow.ledger.entries())[before[1] :]]
    assert tags == ["post:cancelled"]


# --- a real server ------------------------------------------------------------------------


#: The live server (tests/support/live.py) migrates and serves its own SQLite database, whatever
#: backend the run is on: on PostgreSQL these tests would repeat the SQLite run exactly.
LIVE_SERVER_ON_SQLITE = pytest.mark.backend_independent(
    "the live server runs on its own SQLite database"
)


@pytest.fixture
def served_face(tmp_path: Path) -> Iterator[tuple[str, World]]:
    port = free_port()
    with live_server(tmp_path, serve_args=["--mastodon-port", str(port)]) as running:
        yield f"http://127.0.0.1:{port}", running.world


@pytest.mark.slow
@LIVE_SERVER_ON_SQLITE
def test_a_client_given_only_the_base_url_finds_the_instance(
    served_face: tuple[str, World],
) -> None:
    base, world = served_face
    with urllib.request.urlopen(base + "/api/v2/instance", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        instance = json.load(response)
    assert instance["version"].startswith("4.3.0")
    assert instance["domain"] == base.removeprefix("http://")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "/api/v1/nothing", timeout=10)
    assert missing.value.code == 404
    assert json.load(missing.value) == {"error": "Record not found"}

    client, secret = create_api_client(world, name="Mastodon.py")
    request = urllib.request.Request(
        base + "/oauth/token",
        data=f"grant_type=client_credentials&client_id={client.client_id}"
        f"&client_secret={secret}&scope=posts:read".encode(),
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.load(response)["access_token"]
    me = urllib.request.Request(
        base + "/api/v1/accounts/verify_credentials/",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(me, timeout=10) as response:
        assert json.load(response)["username"] == world.account.handle


@pytest.mark.slow
@LIVE_SERVER_ON_SQLITE
def test_mastodon_py_given_only_the_base_url_posts_schedules_lists_and_cancels(
    served_face: tuple[str, World],
) -> None:
    base, world = served_face
    world.approve_notice(world.open_window())
    client, secret = create_api_client(world, name="Mastodon.py")
    api = Mastodon(api_base_url=base, request_timeout=10)
    token = api.session.post(
        base + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "posts:read posts:write"},
        auth=(client.client_id, secret),
        timeout=10,
    ).json()["access_token"]
    api = Mastodon(access_token=token, api_base_url=base, request_timeout=10)
    api.session.headers["X-Ghostpost-Author"] = world.writer_a.email

    assert api.account_verify_credentials()["username"] == world.account.handle
    now = api.status_post("Hello from a Mastodon app")
    assert now["text"] == "Hello from a Mastodon app #team"
    later_at = world.container.clock.now() + timedelta(hours=1)
    scheduled = api.status_post("Later from a Mastodon app", scheduled_at=later_at)
    # (The first post may still wait for the worker: it is queued too until it goes out.)
    assert str(scheduled["id"]) in [str(s["id"]) for s in api.scheduled_statuses()]
    api.scheduled_status_delete(scheduled["id"])
    assert str(scheduled["id"]) not in [str(s["id"]) for s in api.scheduled_statuses()]
    with pytest.raises(MastodonNotFoundError):
        api.status(999999)
    with world.ctx.uow() as uow:
        entries = [e for e in uow.ledger.entries() if e.tag == "post:submitted"]
    assert {e.data["writer"]["email"] for e in entries} == {world.writer_a.email}
    assert {e.data["source"] for e in entries} == {"mastodon-compat"}


# --- a signed-in app's token (sign-in like Mastodon) on the face ---------------------------


def test_an_app_signs_in_through_the_face_host_and_its_token_works_on_the_face(
    client: FlaskClient, opened: World, settings: Settings
) -> None:
    """The whole Mastodon sign-in as an app given only the face's host: register, authorize
    (sent to ghostpost's host for the staff sign-in and consent), token; then the token reads
    and posts on the face as the signed-in writer, and a forged one of its kind gets 401."""
    from tests.functional.test_mastodon_signin import REDIRECT, consent, s256
    from tests.support.web import sign_in

    world = opened
    registered = App(client, None).call(
        "POST",
        "/api/v1/apps",
        data={"client_name": "Ivory", "redirect_uris": REDIRECT, "scopes": "read write"},
    )
    assert registered.status_code == 200, registered.get_data(as_text=True)
    app = registered.get_json()
    verifier = "v" * 64
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read write",
        "state": "xyz-state",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    sent = App(client, None).get("/oauth/authorize/", query_string=query)
    assert sent.status_code == 302
    target = urlsplit(sent.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == settings.public_url.rstrip("/")
    assert target.path == "/oauth/authorize" and parse_qs(target.query)["client_id"] == [
        app["client_id"]
    ]
    sign_in(client, world.writer_a.email)
    approved = consent(client, f"{target.path}?{target.query}", world.account.id)
    assert approved.status_code == 302, approved.get_data(as_text=True)
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    exchanged = client.post(
        "/oauth/token",
        base_url=f"https://{FACE_HOST}",  # OAuth needs https off loopback
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert exchanged.status_code == 200, exchanged.get_data(as_text=True)
    me = App(client, exchanged.get_json()["access_token"])

    assert me.get("/api/v1/accounts/verify_credentials").get_json()["id"] == str(world.account.id)
    budget = world.ctx.budget_for(world.account).measure("").primary.limit
    limits = me.get("/api/v2/instance").get_json()["configuration"]["statuses"]
    assert limits["max_characters"] == budget
    status = create(me, "Written in my own app")
    assert me.get(f"/api/v1/statuses/{status['id']}").status_code == 200
    assert me.get("/api/v1/timelines/home").status_code == 200
    assert me.get("/api/v1/scheduled_statuses").status_code == 200
    post = world.post(int(status["id"]))
    assert post.author_id == world.writer_a.id

    forged = App(client, "gpm." + "x" * 40)
    for path in ("/api/v1/accounts/verify_credentials", "/api/v2/instance"):
        refused = forged.get(path)
        assert refused.status_code == 401, path
        assert refused.get_json()["error"] == "The access token is invalid"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
