"""No secret reaches the logs or the ledger: with every logger at DEBUG (SQLAlchemy's statements
and parameters included), sign in with a password, fail a sign-in, create an API client, fetch a
token, call the API with it, and let a post fail on the worker; then grep everything captured
for each known secret."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ghostpost.adapters.base import PermanentError, Receipt
from ghostpost.bootstrap import Container
from ghostpost.domain.model import Account
from ghostpost.domain.post_options import PLAIN, PostOptions
from ghostpost.domain.states import PostState
from tests.support.api import create_api_client, fetch_token
from tests.support.web import PASSWORD, csrf_from, sign_in
from tests.support.world import World


class RefusingPlatform:
    """A platform that refuses every post, as an expired platform token would."""

    platform = "local"

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        **sent: Any,
    ) -> Receipt:
        raise PermanentError("401 Unauthorized: the platform refused the credentials")

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        return None


def _pem_body(path: Path) -> list[str]:
    """The base64 lines of a PEM file (header and footer are not secret)."""
    lines = path.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("-----")]


def test_no_secret_appears_in_logs_or_in_the_ledger(
    app: Flask, container: Container, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("ghostpost", "sqlalchemy.engine", "werkzeug"):
        caplog.set_level(logging.DEBUG, logger=name)
    world.approve_notice(world.open_window())
    world.run_worker()  # the notice goes out, the signing key exists from here on

    web = app.test_client()
    assert sign_in(web, world.writer_a.email).status_code == 302
    stranger = app.test_client()
    wrong_password = "not-the-password-" + "9" * 12
    failed = stranger.post(
        "/login",
        data={
            "email": world.writer_b.email,
            "password": wrong_password,
            "csrf_token": csrf_from(stranger, "/login"),
        },
    )
    assert failed.status_code in (200, 401, 422)

    api_client, client_secret = create_api_client(world)
    http = app.test_client()
    token = fetch_token(http, api_client.client_id, client_secret)
    auth = {"Authorization": f"Bearer {token}"}
    body = {"account": world.account.id, "text": "Doors open at 9", "author": world.writer_a.email}
    created = http.post("/api/v1/posts", json=body, headers={**auth, "Idempotency-Key": "k-1"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert http.get("/api/v1/posts", headers=auth).status_code == 200
    assert http.get("/api/v1/posts", headers={"Authorization": "Bearer wrong"}).status_code == 401
    bad_basic = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + "eDp5"},
    )
    assert bad_basic.status_code == 401

    container.publishers["local"] = RefusingPlatform()
    world.run_worker()
    with world.ctx.uow() as uow:
        post = uow.posts.by_public_id(created.get_json()["id"])
        entries = [json.dumps(e.data, ensure_ascii=False) for e in uow.ledger.entries()]
    assert post is not None and post.state is PostState.FAILED

    secrets = {
        "password": PASSWORD,
        "wrong password": wrong_password,
        "client secret": client_secret,
        "access token": token,
        "secret key": container.settings.secret_key,
    }
    for number, line in enumerate(_pem_body(Path(container.settings.ledger_signing_key))):
        secrets[f"signing key line {number}"] = line
    logged = caplog.text
    assert "POST" in logged or "SELECT" in logged or "post" in logged  # something was captured
    for name, secret in secrets.items():
        assert secret not in logged, f"the {name} is in the logs"
        for entry in entries:
            assert secret not in entry, f"the {name} is in the ledger"
