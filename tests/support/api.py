"""Helpers for driving /api/v1 as a scheduler does: a client, a real token, JSON requests."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ghostpost.domain.model import ApiClient, User
from ghostpost.services import clients
from ghostpost.services.context import Actor
from tests.support.world import World

ALL_SCOPES = ("posts:write", "posts:read", "windows:read")


def basic_auth(client_id: str, secret: str) -> str:
    """Return an HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def assigned_writers(world: World, account_ids: Collection[int]) -> list[str]:
    """Return the emails of the staff assigned to these accounts (never their principals)."""
    with world.ctx.uow() as uow:
        ids = {user_id for a in account_ids for user_id in uow.assignments.users_of(a)}
        return sorted(u.email for u in uow.users.list() if u.id in ids and u.principal_id is None)


def create_api_client(
    world: World,
    *,
    name: str = "Scheduler",
    scopes: Collection[str] = ALL_SCOPES,
    account_ids: Collection[int] | None = None,
    author_emails: Collection[str] | None = None,
    owner: User | None = None,
) -> tuple[ApiClient, str]:
    """Create an API client owned by the world's manager (or `owner`), limited to the world's
    account, that may name the writers assigned to its accounts (or `author_emails`)."""
    accounts = list(account_ids) if account_ids is not None else [world.account.id]
    return clients.create_client(
        world.ctx,
        Actor.system("test"),
        name=name,
        owner_email=(owner or world.manager).email,
        scopes=list(scopes),
        account_ids=accounts,
        author_emails=list(author_emails)
        if author_emails is not None
        else assigned_writers(world, accounts),
    )


def fetch_token(http: FlaskClient, client_id: str, secret: str, scope: str | None = None) -> str:
    """Get an access token at POST /oauth/token (client credentials, HTTP Basic)."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    response = http.post(
        "/oauth/token", data=form, headers={"Authorization": basic_auth(client_id, secret)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access_token"]
    return token


@dataclass
class Scheduler:
    """An API client with a live token, calling the app through Flask's test client."""

    http: FlaskClient
    client: ApiClient
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.http.get(path, headers={**self.auth, **kwargs.pop("headers", {})}, **kwargs)

    def post(
        self, path: str, body: Any = None, *, key: str | None = None, **kwargs: Any
    ) -> TestResponse:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        if key is not None:
            headers["Idempotency-Key"] = key
        if body is not None:
            kwargs["json"] = body
        return self.http.post(path, headers=headers, **kwargs)

    def create(self, body: dict[str, Any], key: str | None = None) -> TestResponse:
        """POST /api/v1/posts with a fresh Idempotency-Key unless one is given."""
        return self.post("/api/v1/posts", body, key=key or str(uuid.uuid4()))


def scheduler_for(
    http: FlaskClient, world: World, *, scopes: Collection[str] = ALL_SCOPES, **kwargs: Any
) -> Scheduler:
    """Create an API client for the world's account and return it with a token."""
    client, secret = create_api_client(world, scopes=scopes, **kwargs)
    return Scheduler(http, client, fetch_token(http, client.client_id, secret))
