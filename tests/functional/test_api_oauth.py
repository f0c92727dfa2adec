"""OAuth 2.0 client credentials: tokens, scopes, expiry, revocation, storage and rate limits."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

import pytest
from flask import Blueprint, Flask, jsonify
from flask.testing import FlaskClient
from sqlalchemy import MetaData, select
from werkzeug.test import TestResponse

from ghostpost import create_app
from ghostpost.api.oauth import (
    client_rate_limit,
    current_api_actor,
    current_client,
    require_scope,
)
from ghostpost.api.scopes import AUDIT_READ, POSTS_READ, POSTS_WRITE, SCOPES, WINDOWS_READ
from ghostpost.bootstrap import Container
from ghostpost.clock import FixedClock
from ghostpost.db.models import OAuthClientRow, OAuthTokenRow
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import ApiClient
from ghostpost.services import clients, directory
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ghostpost.settings import Settings, SettingsError
from tests.support.web import sign_in
from tests.support.world import World

# --- a probe API the tests call (registered on the app like any API blueprint) ---------------

probe = Blueprint("api_probe", __name__, url_prefix="/api/probe")


@probe.get("/read")
@require_scope(POSTS_READ)
def probe_read() -> Any:
    client = current_client()
    actor = current_api_actor()
    return jsonify(
        client_id=client.client_id,
        actor=actor.ref,
        accounts=sorted(actor.account_ids or ()),
    )


@probe.post("/write")
@require_scope(POSTS_WRITE)
@client_rate_limit
def probe_write() -> Any:
    return jsonify(ok=True)


@probe.get("/audit")
@require_scope(AUDIT_READ)
def probe_audit() -> Any:
    return jsonify(ok=True)


@probe.get("/public")
@client_rate_limit
def probe_public() -> Any:
    return jsonify(ok=True)


@probe.get("/tight")
@require_scope(POSTS_READ)
@client_rate_limit("2 per minute")
def probe_tight() -> Any:
    return jsonify(ok=True)


def build_app(container: Container, **settings: Any) -> Flask:
    if settings:
        container = dataclasses.replace(container, settings=container.settings.replace(**settings))
    app = create_app(container=container)
    app.register_blueprint(probe)
    return app


@pytest.fixture
def app(container: Container) -> Flask:
    return build_app(container)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- helpers -------------------------------------------------------------------------------


def make_client(
    world: World,
    scopes: str = "posts:write posts:read",
    name: str = "Scheduler",
) -> tuple[ApiClient, str]:
    return clients.create_client(
        world.ctx,
        Actor.system("test"),
        name=name,
        owner_email=world.manager.email,
        scopes=scopes,
        account_ids=[world.account.id],
        default_author_email=world.writer_a.email,
    )


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_token(
    http: FlaskClient, api_client: ApiClient, secret: str, scope: str | None = None
) -> TestResponse:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return http.post("/oauth/token", data=data, headers=basic(api_client.client_id, secret))


def token_for(
    http: FlaskClient, api_client: ApiClient, secret: str, scope: str | None = None
) -> str:
    response = request_token(http, api_client, secret, scope)
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access_token"]
    return token


#: A problem type has one title wherever it is answered: the OAuth layer's `rate_limited` is
#: titled as the API's own 429, its `unauthorized` as the web's live-status poll's.
PROBLEM_TITLES = {
    "unauthorized": "Unauthorized",
    "invalid_token": "Access token invalid",
    "insufficient_scope": "Scope missing",
    "insecure_transport": "HTTPS required",
    "rate_limited": "Too many requests",
}


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"] == f"urn:ghostpost:problem:{code}"
    # The members every /api/v1 problem carries (tests/functional/test_api_errors.py), and
    # `error`, which OAuth clients (RFC 6749 section 5.2) and Mastodon apps read.
    assert body["code"] == body["error"] == code
    assert body["title"] == PROBLEM_TITLES[code]
    assert body["detail"]
    assert response.headers["Cache-Control"] == "no-store"
    return body


# --- the token endpoint ----------------------------------------------------------------------


def test_client_secret_basic_gets_a_short_lived_bearer_token_that_opens_the_api(
    world: World, client: FlaskClient
) -> None:
    api_client, secret = make_client(world)
    response = request_token(client, api_client, secret, "posts:read posts:write")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "posts:read posts:write"
    assert "refresh_token" not in body
    assert response.headers["Cache-Control"] == "no-store"

    seen = client.get("/api/probe/read", headers=bearer(body["access_token"]))
    assert seen.status_code == 200
    assert seen.get_json() == {
        "client_id": api_client.client_id,
        "actor": f"client:{api_client.client_id}",
        "accounts": [world.account.id],
    }


def test_client_secret_post_works_too(world: World, client: FlaskClient) -> None:
    api_client, secret = make_client(world)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": secret,
            "scope": "posts:read",
        },
    )
    assert response.status_code == 200
    assert response.get_json()["scope"] == "posts:read"


def test_no_scope_asked_means_every_scope_of_the_client(world: World, client: FlaskClient) -> None:
    api_client, secret = make_client(world, scopes="posts:read windows:read")
    body = request_token(client, api_client, secret).get_json()
    assert body["scope"] == "posts:read windows:read"


def test_credentials_are_ids_and_secrets_of_at_least_128_bits(world: World) -> None:
    api_client, secret = make_client(world)
    # token_urlsafe(n) gives ceil(4n/3) characters of 6 bits each.
    assert len(api_client.client_id) >= 22
    assert len(secret) >= 43


@pytest.mark.parametrize(
    "credentials",
    [
        "wrong-secret",
        "unknown-client",
        "no-credentials",
        "garbage-basic-header",
        "post-wrong-secret",
    ],
)
def test_bad_client_credentials_get_401_invalid_client(
    world: World, client: FlaskClient, credentials: str
) -> None:
    api_client, secret = make_client(world)
    data = {"grant_type": "client_credentials"}
    headers: dict[str, str] = {}
    if credentials == "wrong-secret":
        headers = basic(api_client.client_id, secret + "x")
    elif credentials == "unknown-client":
        headers = basic("no-such-client", secret)
    elif credentials == "garbage-basic-header":
        headers = {"Authorization": "Basic //8=="}  # not UTF-8 once decoded
    elif credentials == "post-wrong-secret":
        data |= {"client_id": api_client.client_id, "client_secret": "nope"}
    response = client.post("/oauth/token", data=data, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "authentication failed" in response.get_json()["error_description"]


@pytest.mark.parametrize(
    ("scope", "why"),
    [("audit:read", "not allowed"), ("posts:read posts:delete", "unknown"), ("admin", "unknown")],
)
def test_a_scope_that_is_unknown_or_not_allowed_is_refused_not_dropped(
    world: World, client: FlaskClient, container: Container, scope: str, why: str
) -> None:
    api_client, secret = make_client(world)
    response = request_token(client, api_client, secret, scope)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_scope"
    assert why in body["error_description"].lower()
    with container.sessions() as session:
        assert session.scalars(select(OAuthTokenRow)).all() == []


def test_other_grant_types_are_unsupported(world: World, client: FlaskClient) -> None:
    api_client, secret = make_client(world)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "x", "password": "y"},
        headers=basic(api_client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_tokens_are_only_handed_out_over_https_or_loopback(
    world: World, client: FlaskClient
) -> None:
    api_client, secret = make_client(world)
    data = {"grant_type": "client_credentials"}
    headers = basic(api_client.client_id, secret)
    plain = client.post("/oauth/token", data=data, headers=headers, base_url="http://gp.example")
    assert_problem(plain, 400, "insecure_transport")
    tls = client.post("/oauth/token", data=data, headers=headers, base_url="https://gp.example")
    assert tls.status_code == 200


def test_issuing_a_token_is_recorded_in_the_ledger_without_the_token(
    world: World, client: FlaskClient
) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret, "posts:write")
    with world.ctx.uow() as uow:
        entries = [e for e in uow.ledger.entries() if e.subject == f"client:{api_client.client_id}"]
    assert [e.tag for e in entries] == [LedgerTag.CLIENT_CREATED, LedgerTag.TOKEN_ISSUED]
    created, issued = entries
    assert created.actor == "system:test"
    assert created.data["scopes"] == ["posts:read", "posts:write"]
    assert created.data["owner"]["email"] == world.manager.email
    assert created.data["default_author"]["email"] == world.writer_a.email
    assert issued.actor == f"client:{api_client.client_id}"
    assert issued.data["scopes"] == ["posts:write"]
    for entry in entries:
        assert secret not in str(entry.data) and token not in str(entry.data)


# --- protected views ---------------------------------------------------------------------------


def test_no_token_is_401_problem_with_a_bearer_challenge(client: FlaskClient) -> None:
    response = client.get("/api/probe/read")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token", "Bearer", "Basic dXNlcjpwYXNz", "Token abc"]
)
def test_an_invalid_token_is_401_invalid_token(client: FlaskClient, authorization: str) -> None:
    response = client.get("/api/probe/read", headers={"Authorization": authorization})
    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_the_scope_is_403_insufficient_scope(
    world: World, client: FlaskClient
) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret, "posts:write")
    response = client.get("/api/probe/read", headers=bearer(token))
    body = assert_problem(response, 403, "insufficient_scope")
    assert "posts:read" in body["detail"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert client.post("/api/probe/write", headers=bearer(token)).status_code == 200


def test_a_token_expires_after_api_token_seconds(
    world: World, client: FlaskClient, clock: FixedClock, container: Container
) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    lifetime = container.settings.api_token_seconds
    clock.advance(seconds=lifetime - 1)
    assert client.get("/api/probe/read", headers=bearer(token)).status_code == 200
    clock.advance(seconds=1)
    assert_problem(client.get("/api/probe/read", headers=bearer(token)), 401, "invalid_token")


def test_the_token_lifetime_is_a_setting(world: World, container: Container) -> None:
    http = build_app(container, api_token_seconds=60).test_client()
    api_client, secret = make_client(world)
    assert request_token(http, api_client, secret).get_json()["expires_in"] == 60


def test_a_revoked_token_stops_working(world: World, client: FlaskClient) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    other = token_for(client, api_client, secret)
    response = client.post(
        "/oauth/revoke", data={"token": token}, headers=basic(api_client.client_id, secret)
    )
    assert response.status_code == 200
    assert_problem(client.get("/api/probe/read", headers=bearer(token)), 401, "invalid_token")
    assert client.get("/api/probe/read", headers=bearer(other)).status_code == 200
    # Revoking again, or revoking something unknown, is fine (RFC 7009 §2.2).
    for again in (token, "never-issued"):
        response = client.post(
            "/oauth/revoke", data={"token": again}, headers=basic(api_client.client_id, secret)
        )
        assert response.status_code == 200
    with world.ctx.uow() as uow:
        revoked = [e for e in uow.ledger.entries() if e.tag == LedgerTag.TOKEN_REVOKED]
    assert len(revoked) == 1


def test_a_client_cannot_revoke_another_clients_token(world: World, client: FlaskClient) -> None:
    first, first_secret = make_client(world, name="First")
    second, second_secret = make_client(world, name="Second")
    token = token_for(client, first, first_secret)
    response = client.post(
        "/oauth/revoke", data={"token": token}, headers=basic(second.client_id, second_secret)
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert client.get("/api/probe/read", headers=bearer(token)).status_code == 200
    unauthenticated = client.post("/oauth/revoke", data={"token": token})
    assert unauthenticated.status_code == 401


def test_revoking_a_client_ends_its_tokens_and_its_logins(
    world: World, client: FlaskClient
) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    revoked = clients.revoke_client(world.ctx, Actor.for_user(world.manager), api_client.client_id)
    assert not revoked.is_active
    assert_problem(client.get("/api/probe/read", headers=bearer(token)), 401, "invalid_token")
    assert request_token(client, api_client, secret).status_code == 401
    again = clients.revoke_client(world.ctx, Actor.system("test"), api_client.client_id)
    assert not again.is_active
    with world.ctx.uow() as uow:
        entries = [e for e in uow.ledger.entries() if e.tag == LedgerTag.CLIENT_REVOKED]
    assert len(entries) == 1, "revoking twice records once"
    assert entries[0].data["tokens_revoked"] == 1


def test_a_deactivated_owner_takes_the_client_down_with_them(
    world: World, client: FlaskClient
) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    directory.set_user_active(world.ctx, Actor.system("test"), world.manager.id, False)
    assert client.get("/api/probe/read", headers=bearer(token)).status_code == 401
    assert request_token(client, api_client, secret).status_code == 401


def test_the_session_cookie_never_opens_the_api_and_the_api_needs_no_csrf_token(
    world: World, client: FlaskClient
) -> None:
    assert sign_in(client, world.manager.email).status_code == 302
    assert_problem(client.get("/api/probe/read"), 401, "unauthorized")
    assert_problem(client.post("/api/probe/write"), 401, "unauthorized")
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    # No CSRF token: the API blueprints are exempt, since only a Bearer token authenticates.
    assert client.post("/api/probe/write", headers=bearer(token)).status_code == 200


# --- storage ---------------------------------------------------------------------------------


def test_secrets_and_tokens_are_stored_only_as_sha256(
    world: World, client: FlaskClient, container: Container
) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    with container.sessions() as session:
        row = session.scalars(select(OAuthClientRow)).one()
        tokens = session.scalars(select(OAuthTokenRow)).all()
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert [t.token_hash for t in tokens] == [hashlib.sha256(token.encode()).hexdigest()]
        # Nowhere in the database, in any table or column, is either in clear.
        metadata = MetaData()
        metadata.reflect(bind=session.connection())
        for table in metadata.tables.values():
            for values in session.execute(select(table)):
                text = " ".join(str(v) for v in values)
                assert secret not in text, table.name
                assert token not in text, table.name


# --- rate limits -------------------------------------------------------------------------------


def test_each_client_has_its_own_request_budget(world: World, container: Container) -> None:
    http = build_app(container, api_rate_limit="3 per minute").test_client()
    first, first_secret = make_client(world, name="First")
    second, second_secret = make_client(world, name="Second")
    first_token = token_for(http, first, first_secret)
    second_token = token_for(http, second, second_secret)
    for _ in range(3):
        assert http.get("/api/probe/read", headers=bearer(first_token)).status_code == 200
    limited = http.get("/api/probe/read", headers=bearer(first_token))
    body = assert_problem(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "3 request(s) per 1 minute" in body["detail"]
    # The second client's budget is untouched, whichever view it calls.
    assert http.get("/api/probe/read", headers=bearer(second_token)).status_code == 200
    for _ in range(2):
        assert http.post("/api/probe/write", headers=bearer(second_token)).status_code == 200
    assert http.post("/api/probe/write", headers=bearer(second_token)).status_code == 429


def test_stacking_client_rate_limit_under_require_scope_charges_once(
    world: World, container: Container
) -> None:
    http = build_app(container, api_rate_limit="4 per minute").test_client()
    api_client, secret = make_client(world)
    token = token_for(http, api_client, secret)
    codes = [http.post("/api/probe/write", headers=bearer(token)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]


def test_a_view_can_add_a_budget_of_its_own(world: World, client: FlaskClient) -> None:
    api_client, secret = make_client(world)
    token = token_for(client, api_client, secret)
    codes = [client.get("/api/probe/tight", headers=bearer(token)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.get("/api/probe/read", headers=bearer(token)).status_code == 200


def test_public_api_views_are_limited_per_address(container: Container) -> None:
    http = build_app(container, api_rate_limit="2 per minute").test_client()
    codes = [http.get("/api/probe/public").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_the_token_endpoint_slows_down_secret_guessing(world: World, client: FlaskClient) -> None:
    api_client, secret = make_client(world)
    codes = {request_token(client, api_client, f"guess-{n}").status_code for n in range(30)}
    assert codes == {401}
    limited = request_token(client, api_client, secret)
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1


# --- the service's rules for creating clients ------------------------------------------------


def test_creating_a_client_checks_owner_author_scopes_and_accounts(world: World) -> None:
    system = Actor.system("test")
    base: dict[str, Any] = {
        "name": "Scheduler",
        "owner_email": world.manager.email,
        "scopes": ["posts:write"],
        "account_ids": [world.account.id],
    }
    with pytest.raises(Forbidden, match="may not manage"):
        clients.create_client(world.ctx, system, **{**base, "owner_email": world.writer_a.email})
    with pytest.raises(Conflict, match="not assigned"):
        clients.create_client(world.ctx, system, **base, default_author_email=world.outsider.email)
    with pytest.raises(clients.InvalidScope):
        clients.create_client(world.ctx, system, **{**base, "scopes": "posts:write posts:nuke"})
    with pytest.raises(ValidationFailed):
        clients.create_client(world.ctx, system, **{**base, "account_ids": []})
    with pytest.raises(ValidationFailed):
        clients.create_client(world.ctx, system, **{**base, "scopes": ""})
    with pytest.raises(NotFound):
        clients.create_client(world.ctx, system, **{**base, "owner_email": "nobody@x.test"})
    with pytest.raises(NotFound):
        clients.create_client(world.ctx, system, **{**base, "account_ids": [999]})
    # A manager may create their own client; only admins create one for someone else.
    mine, _ = clients.create_client(world.ctx, Actor.for_user(world.manager), **base)
    assert mine.owner_id == world.manager.id
    with pytest.raises(Forbidden):
        clients.create_client(
            world.ctx, Actor.for_user(world.principal), **base
        )  # the principal, for the manager
    with pytest.raises(Forbidden):
        clients.create_client(
            world.ctx, Actor.for_client("x" * 22, frozenset({world.account.id})), **base
        )
    # The principal may own a client of their own account, and may be its default author.
    own, _ = clients.create_client(
        world.ctx,
        Actor.for_user(world.principal),
        **{**base, "owner_email": world.principal.email},
        default_author_email=world.principal.email,
    )
    assert own.default_author_id == world.principal.id


def test_only_admins_and_the_owner_revoke_a_client(world: World) -> None:
    api_client, _ = make_client(world)
    with pytest.raises(Forbidden):
        clients.revoke_client(world.ctx, Actor.for_user(world.writer_a), api_client.client_id)
    with pytest.raises(NotFound):
        clients.revoke_client(world.ctx, Actor.system("test"), "no-such-client")
    assert not clients.revoke_client(
        world.ctx, Actor.for_user(world.manager), api_client.client_id
    ).is_active


def test_accounts_are_found_by_id_handle_or_platform_handle(world: World) -> None:
    found = clients.find_accounts(
        world.ctx, ["avery", "@avery", "local:avery", str(world.account.id)]
    )
    assert found == [world.account.id]
    with pytest.raises(NotFound):
        clients.find_accounts(world.ctx, ["nobody"])


def test_scopes_are_the_four_of_the_issue_and_the_guards() -> None:
    # guards:write (issue 18): changing a principal's watched hashtags and terms.
    assert set(SCOPES) == {POSTS_WRITE, POSTS_READ, WINDOWS_READ, AUDIT_READ, "guards:write"}
    assert all(SCOPES.values())
    with pytest.raises(ValueError, match="unknown scope"):
        require_scope("posts:everything")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api_token_seconds", 0),
        ("api_token_seconds", 86400),
        ("api_rate_limit", "lots"),
        ("api_rate_limit", "0 per minute"),
    ],
)
def test_bad_api_settings_are_refused_at_boot(settings: Settings, key: str, value: Any) -> None:
    with pytest.raises(SettingsError, match=key):
        settings.replace(**{key: value})
