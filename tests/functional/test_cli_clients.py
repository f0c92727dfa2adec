"""`ghostpost clients create|list|revoke`, and the demo's fixed API client, as a user runs them."""

from __future__ import annotations

import os
import re

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from ghostpost import create_app
from ghostpost.bootstrap import bootstrap
from ghostpost.cli import main
from ghostpost.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from ghostpost.settings import Settings
from tests.support.world import World


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at the test database (SQLite or PostgreSQL) and nothing else."""
    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", database_url)
    return database_url


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def token_response(http: FlaskClient, client_id: str, secret: str) -> int:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "posts:write"},
        auth=(client_id, secret),
    )
    return response.status_code


def created_credentials(output: str) -> tuple[str, str]:
    client_id = re.search(r"^client_id:\s+(\S+)$", output, re.M)
    secret = re.search(r"^client_secret:\s+(\S+)$", output, re.M)
    assert client_id and secret, output
    return client_id.group(1), secret.group(1)


def test_create_prints_the_secret_once_then_list_and_revoke(
    env: str, world: World, app: Flask
) -> None:
    created = invoke(
        "clients",
        "create",
        "--name",
        "Buffer",
        "--owner",
        world.manager.email,
        "--scopes",
        "posts:write posts:read",
        "--accounts",
        "@avery",
        "--author",
        world.writer_a.email,
    )
    assert created.exit_code == 0, created.output
    assert "not shown again" in created.output
    client_id, secret = created_credentials(created.output)
    # Hex: an id never starts with "-", which the command line would read as an option (a
    # URL-safe base64 id did, once in 64 runs, and `clients revoke` below refused it).
    assert re.fullmatch(r"[0-9a-f]{32}", client_id), client_id
    http = app.test_client()
    assert token_response(http, client_id, secret) == 200

    listed = invoke("clients", "list")
    assert listed.exit_code == 0, listed.output
    assert client_id in listed.output and "active" in listed.output
    assert world.manager.email in listed.output and world.writer_a.email in listed.output
    assert "local:avery" in listed.output
    assert secret not in listed.output

    revoked = invoke("clients", "revoke", client_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked API client 'Buffer' ({client_id})" in revoked.output
    assert "revoked" in invoke("clients", "list").output
    assert token_response(http, client_id, secret) == 401


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--accounts": "nobody"}, "No account 'nobody'"),
        ({"--owner": "jordan@example.test"}, "may not manage @avery"),
        ({"--scopes": "posts:write posts:delete"}, "Unknown scope(s): posts:delete"),
        ({"--author": "casey@example.test"}, "not assigned to @avery"),
    ],
)
def test_create_explains_what_is_wrong(
    env: str, world: World, change: dict[str, str], message: str
) -> None:
    options = {
        "--name": "Buffer",
        "--owner": world.manager.email,
        "--scopes": "posts:write",
        "--accounts": "avery",
        **change,
    }
    result = invoke("clients", "create", *[part for pair in options.items() for part in pair])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert invoke("clients", "list").output.strip() == "no API clients"


def test_revoking_an_unknown_client_fails_cleanly(env: str, world: World) -> None:
    result = invoke("clients", "revoke", "no-such-client")
    assert result.exit_code == 1
    assert "No API client no-such-client" in result.output


def test_the_demo_client_works_with_the_printed_credentials(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", fresh_database_url)
    assert invoke("db", "upgrade").exit_code == 0
    seeded = invoke("demo")
    assert seeded.exit_code == 0, seeded.output
    assert DEMO_CLIENT_ID in seeded.output and DEMO_CLIENT_SECRET in seeded.output
    again = invoke("demo")
    assert again.exit_code == 0 and DEMO_CLIENT_ID in again.output
    listed = invoke("clients", "list").output
    assert listed.count(DEMO_CLIENT_ID) == 1
    assert "morgan@demo.ghostpost.test" in listed and "jordan@demo.ghostpost.test" in listed

    container = bootstrap(Settings.load())
    try:
        http = create_app(container=container).test_client()
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["scope"] == "audit:read posts:read posts:write windows:read"
    finally:
        container.dispose()
