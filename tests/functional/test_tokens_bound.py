"""Sealed platform credentials are bound to where they go: a database writer who points an
account row at another host, platform or remote identity gets a post that fails with the
reason, and the host they chose receives nothing (issue 13, "tokens bound to where they go").

The attacker here can write the database but has neither the token keys nor the app: the
listener on 127.0.0.1 stands in for their server and records every request it gets.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from argon2 import PasswordHasher
from sqlalchemy import select, text

from ghostpost.bootstrap import bootstrap
from ghostpost.cli import alembic_config
from ghostpost.clock import FixedClock
from ghostpost.db.models import AccountRow, PostRow
from ghostpost.db.platform_store import account_binding
from ghostpost.domain.model import Account
from ghostpost.domain.states import PostState
from ghostpost.services import connections, directory
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.fake_mastodon import FakeMastodon, make_fake_mastodon
from tests.support.http_server import serving
from tests.support.world import World, build_world

MASTODON_TOKEN = "mastodon-access-token-0123456789"
BLUESKY_SECRETS = {
    "identifier": "avery.bsky.social",
    "app_password": "abcd-efgh-ijkl-mnop",
    "did": "did:plc:avery",
    "handle": "avery.bsky.social",
    "access_jwt": "bluesky-access-jwt-secret",
    "refresh_jwt": "bluesky-refresh-jwt-secret",
}
X_SECRETS = {
    "access_token": "x-access-token-secret",
    "refresh_token": "x-refresh-token-secret",
    "expires_at": 4_000_000_000,
    "scope": "tweet.read tweet.write users.read offline.access",
}


class Listener:
    """A WSGI app recording every request (the attacker's server); answers 200 `{}`."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode(errors="replace")
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        with self._lock:
            self.requests.append(
                f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {json.dumps(headers)} {body}"
            )
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def saw(self, secret: str) -> bool:
        return any(secret in request for request in self.requests)


@pytest.fixture
def listener() -> Iterator[tuple[str, Listener]]:
    recorder = Listener()
    with serving(recorder) as url:
        yield url, recorder


@pytest.fixture
def mastodon() -> Iterator[tuple[str, FakeMastodon]]:
    fake = make_fake_mastodon()
    fake.create_user("avery")
    with serving(fake.app) as url:
        yield url, fake


def connect(world: World, **values: Any) -> Account:
    return connections.save_connection(
        world.ctx,
        Actor.for_user(world.manager),
        principal_id=world.account.principal_id,
        **values,
    )


def publish(world: World, account: Account, text_: str) -> int:
    """Submit a post in an open window (notice approved) and run the worker; return its id."""
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=world.writer_a.id, account_id=account.id
    )
    world.approve_notice(world.open_window(account=account))
    post = world.submit(world.writer_a, text_, account=account)
    world.run_worker()
    return post.id


def states(world: World, account_id: int) -> list[tuple[str, str | None]]:
    with world.container.sessions() as session:
        rows = session.execute(
            select(PostRow.state, PostRow.state_reason)
            .where(PostRow.account_id == account_id)
            .order_by(PostRow.id)
        ).all()
    return [(row[0], row[1]) for row in rows]


def tamper(world: World, account_id: int, **columns: str) -> None:
    """What a leaked database password allows: a raw UPDATE, no app code involved."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    with world.container.sessions() as session, session.begin():
        session.execute(
            text(f"UPDATE accounts SET {assignments} WHERE id = :id"),
            {**columns, "id": account_id},
        )


def assert_failed_with_the_reason(world: World, account_id: int) -> None:
    found = states(world, account_id)
    assert found, "the posts exist"
    assert all(state != PostState.PUBLISHED for state, _ in found[-2:])
    reasons = [reason or "" for state, reason in found if state == PostState.FAILED]
    assert reasons and all("were sealed for another" in reason for reason in reasons), found
    assert all("reconnects the account" in reason for reason in reasons)


def test_moving_a_mastodon_row_to_another_host_sends_the_token_nowhere(
    world: World, mastodon: tuple[str, FakeMastodon], listener: tuple[str, Listener]
) -> None:
    instance, fake = mastodon
    attacker_url, attacker = listener
    remote_id = fake.create_user("exec")
    token = fake.issue_token("exec", "read write")
    account = connect(
        world,
        platform="mastodon",
        handle="exec@social.example",
        remote_id=remote_id,
        base_url=instance,
        credentials={"access_token": token},
    )
    publish(world, account, "Before the attack")
    assert [s["text"] for s in fake.statuses_of("exec")][-1] == "Before the attack #team"

    tamper(world, account.id, base_url=attacker_url)
    post = world.submit(world.writer_a, "After the attack", account=account)
    world.run_worker()

    assert attacker.requests == []  # not the token, not even a connection attempt with it
    assert world.post(post.id).state == PostState.FAILED
    reason = world.post(post.id).state_reason or ""
    assert "were sealed for another mastodon server" in reason and token not in reason
    assert [s["text"] for s in fake.statuses_of("exec")][-1] == "Before the attack #team"


def test_moving_a_bluesky_row_to_another_pds_leaks_neither_session_nor_app_password(
    world: World, listener: tuple[str, Listener]
) -> None:
    attacker_url, attacker = listener
    account = connect(
        world,
        platform="bluesky",
        handle="avery.bsky.social",
        remote_id="did:plc:avery",
        base_url="https://pds.example",
        credentials=BLUESKY_SECRETS,
    )
    tamper(world, account.id, base_url=attacker_url)
    publish(world, account, "Hello")
    assert attacker.requests == []
    for secret in BLUESKY_SECRETS.values():
        assert not attacker.saw(secret)
    assert_failed_with_the_reason(world, account.id)


@pytest.mark.parametrize(
    "columns",
    [
        {"base_url": "HTTPS://pds.example:8443"},  # another port on the same host
        {"base_url": "http://pds.example"},  # the same host without TLS
        {"remote_id": "did:plc:someone-else"},  # another identity on the same PDS
    ],
    ids=["port", "scheme", "remote-id"],
)
def test_any_change_of_server_or_identity_closes_the_credentials(
    world: World, columns: dict[str, str]
) -> None:
    account = connect(
        world,
        platform="bluesky",
        handle="avery.bsky.social",
        remote_id="did:plc:avery",
        base_url="https://pds.example",
        credentials=BLUESKY_SECRETS,
    )
    tamper(world, account.id, **columns)
    with world.ctx.uow() as uow:
        moved = uow.accounts.get(account.id)
    assert moved is not None
    with pytest.raises(Exception, match="were sealed for another bluesky server"):
        world.container.credentials.load(moved)


def test_the_same_server_spelled_differently_still_opens(world: World) -> None:
    account = connect(
        world,
        platform="bluesky",
        handle="avery.bsky.social",
        remote_id="did:plc:avery",
        base_url="https://pds.example",
        credentials=BLUESKY_SECRETS,
    )
    tamper(world, account.id, base_url="HTTPS://PDS.example:443/")
    with world.ctx.uow() as uow:
        same = uow.accounts.get(account.id)
    assert same is not None
    assert world.container.credentials.load(same) == BLUESKY_SECRETS


def test_relabelling_a_row_as_another_platform_opens_nothing(
    world: World, listener: tuple[str, Listener]
) -> None:
    attacker_url, attacker = listener
    account = connect(
        world,
        platform="mastodon",
        handle="exec@social.example",
        remote_id="7",
        base_url="https://social.example",
        credentials={"access_token": MASTODON_TOKEN},
    )
    tamper(world, account.id, platform="bluesky", base_url=attacker_url)
    publish(world, account, "Hello")
    assert attacker.requests == []
    found = states(world, account.id)
    assert any("were sealed for another bluesky server" in (r or "") for _, r in found), found


def test_x_credentials_follow_no_other_x_identity(
    settings: Settings, clock: FixedClock, listener: tuple[str, Listener]
) -> None:
    # Even X's API URL is the attacker's here: the point is that nothing is sent at all.
    attacker_url, attacker = listener
    container = bootstrap(
        settings.replace(x_api_url=attacker_url, x_client_id="cid", x_client_secret="csecret"),
        clock=clock,
        password_hasher=PasswordHasher(1, 8, 1),
    )
    try:
        world = build_world(container)
        account = connect(
            world,
            platform="x",
            handle="averychen",
            remote_id="1001",
            base_url=None,
            credentials=X_SECRETS,
        )
        tamper(world, account.id, remote_id="2002")
        publish(world, account, "Hello")
        assert attacker.requests == []
        assert_failed_with_the_reason(world, account.id)
    finally:
        container.dispose()


def test_migration_0010_reseals_old_rows_under_the_new_binding_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, clock: FixedClock
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    # Today's services write today's schema (the ledger's derived columns, 0011): set up there,
    # then go back to 0007, the schema the legacy rows were written under.
    command.upgrade(alembic_config(url), "head")
    old = settings.replace(database_url=url)
    container = bootstrap(old, clock=clock, password_hasher=PasswordHasher(1, 8, 1))
    try:
        account = directory.create_account(
            container.services,
            Actor.system("test"),
            principal_id=directory.create_principal(
                container.services, Actor.system("test"), "Avery"
            ).id,
            platform="mastodon",
            handle="exec@social.example",
        )
        # A row as the code before 0010 left it: sealed for `account:<id>` alone.
        legacy = container.secretbox.seal(
            {"access_token": MASTODON_TOKEN}, bound_to=f"account:{account.id}"
        )
    finally:
        container.dispose()
    command.downgrade(alembic_config(url), "0007_user_totp")
    with sqlite3.connect(tmp_path / "old.db") as raw:
        raw.execute(
            "UPDATE accounts SET base_url = ?, remote_id = ?, credentials = ? WHERE id = ?",
            ("https://social.example", "7", legacy, account.id),
        )

    # `ghostpost db upgrade` runs with the service's environment: that is where the keys are.
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", url)
    monkeypatch.setenv("GHOSTPOST_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("GHOSTPOST_ENVIRONMENT", "test")
    command.upgrade(alembic_config(url), "0010_bound_tokens")

    container = bootstrap(old, clock=clock, password_hasher=PasswordHasher(1, 8, 1))
    try:
        with container.services.uow() as uow:
            stored = uow.accounts.get(account.id)
        assert stored is not None
        assert container.credentials.load(stored) == {"access_token": MASTODON_TOKEN}
        with container.sessions() as session:
            resealed = session.scalar(
                select(AccountRow.credentials).where(AccountRow.id == account.id)
            )
        assert resealed is not None and resealed != legacy
        box = container.secretbox
        assert box.open(resealed, bound_to=account_binding(stored)) == {
            "access_token": MASTODON_TOKEN
        }
        with pytest.raises(Exception, match="does not open"):
            box.open(resealed, bound_to=f"account:{account.id}")
    finally:
        container.dispose()
