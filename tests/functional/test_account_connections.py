"""Connecting accounts: who may, what is stored (sealed), what the ledger says, key rotation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from ghostpost.adapters.base import NotConnected, PlatformApp
from ghostpost.bootstrap import Container, bootstrap
from ghostpost.db.models import AccountRow, LedgerEntryRow
from ghostpost.domain.model import Account
from ghostpost.secretbox import generate_key
from ghostpost.services import connections, directory
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict, Forbidden
from tests.support.world import World

SECRET = "super-secret-access-token-value"


def connect(world: World, actor: Actor | None = None, **changes: object) -> Account:
    values: dict[str, object] = {
        "principal_id": world.account.principal_id,
        "platform": "mastodon",
        "handle": "avery@social.example",
        "remote_id": "10923",
        "base_url": "https://social.example",
        "credentials": {"access_token": SECRET},
        "max_chars": 520,
        "url_length": 23,
    }
    values.update(changes)
    return connections.save_connection(
        world.ctx,
        actor or Actor.for_user(world.manager),
        **values,  # type: ignore[arg-type]
    )


def raw_credentials(container: Container, account_id: int) -> str | None:
    with container.sessions() as session:
        return session.scalar(select(AccountRow.credentials).where(AccountRow.id == account_id))


def test_a_manager_connects_an_account_with_sealed_tokens_and_a_ledger_entry(world: World) -> None:
    account = connect(world)
    assert account.connected and account.remote_id == "10923"
    assert account.max_chars == 520 and account.base_url == "https://social.example"
    sealed = raw_credentials(world.container, account.id)
    assert sealed is not None and SECRET not in sealed and sealed.startswith("gp1.dev.")
    assert world.container.credentials.load(account) == {"access_token": SECRET}
    with world.container.sessions() as session:
        entries = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.subject == f"account:{account.id}")
        ).all()
    assert [e.tag for e in entries] == ["account:created", "account:connected"]
    assert SECRET not in json.dumps([e.data for e in entries])
    assert json.loads(entries[1].data)["by"] == world.manager.email


@pytest.mark.parametrize("who", ["writer_a", "auditor", "outsider"])
def test_only_managers_and_admins_connect(world: World, who: str) -> None:
    with pytest.raises(Forbidden):
        connect(world, Actor.for_user(getattr(world, who)))


def test_reconnecting_replaces_the_tokens_but_never_moves_or_swaps_the_account(
    world: World,
) -> None:
    first = connect(world)
    again = connect(world, credentials={"access_token": "second"}, max_chars=600)
    assert again.id == first.id and again.max_chars == 600
    assert world.container.credentials.load(again) == {"access_token": "second"}
    # A second principal may not take it over, nor may the handle now mean another account.
    stranger = directory.create_principal(world.ctx, Actor.system("test"), "Someone Else")
    with pytest.raises(Conflict, match="another principal"):
        connect(world, principal_id=stranger.id)
    with pytest.raises(Conflict, match="different mastodon account"):
        connect(world, remote_id="999")


def test_disconnecting_deletes_the_tokens(world: World) -> None:
    account = connect(world)
    gone = connections.disconnect_account(world.ctx, Actor.for_user(world.manager), account.id)
    assert not gone.connected
    assert raw_credentials(world.container, account.id) is None
    with pytest.raises(NotConnected, match="not connected"):
        world.container.credentials.load(gone)


def test_a_sealed_value_copied_to_another_account_does_not_open(world: World) -> None:
    first = connect(world)
    second = connect(world, handle="other@social.example", remote_id="2")
    with world.container.sessions() as session, session.begin():
        session.execute(
            text("UPDATE accounts SET credentials = :c WHERE id = :id"),
            {"c": raw_credentials(world.container, first.id), "id": second.id},
        )
    with pytest.raises(NotConnected, match="were sealed for another mastodon server, account"):
        world.container.credentials.load(second)


def test_rotating_the_token_key_reseals_everything_under_the_new_key(world: World) -> None:
    account = connect(world)  # sealed with the development key derived from secret_key
    world.container.platform_apps.add(
        PlatformApp("mastodon", "https://social.example", "cid", "app-secret", "https://cb")
    )
    new = generate_key("k2")
    settings = world.container.settings
    rotated = bootstrap(settings.replace(token_keys=new), clock=world.container.clock)
    try:
        counts = connections.rotate_token_key(rotated.services, Actor.system("cli"))
        assert counts == {"accounts": 1, "platform_apps": 1}
        sealed = raw_credentials(rotated, account.id)
        assert sealed is not None and sealed.startswith("gp1.k2.")
        assert rotated.credentials.load(account) == {"access_token": SECRET}
        again = connections.rotate_token_key(rotated.services, Actor.system("cli"))
        assert again == {"accounts": 0, "platform_apps": 0}
    finally:
        rotated.dispose()
    # In production only the listed keys open: nothing is left under the old key. (Production
    # also needs the ledger signing key, which development makes on the notary's first pass.)
    world.run_notary()
    production = bootstrap(
        settings.replace(environment="production", token_keys=new, secret_key="p" * 32),
        clock=world.container.clock,
    )
    try:
        assert production.credentials.load(account) == {"access_token": SECRET}
        app = production.platform_apps.find("mastodon", "https://social.example")
        assert app is not None and app.client_secret == "app-secret"
    finally:
        production.dispose()
    with world.container.sessions() as session:
        tags = session.scalars(select(LedgerEntryRow.tag)).all()
    assert tags.count("tokens:resealed") == 2


def test_without_the_old_key_a_sealed_value_does_not_open(world: World) -> None:
    account = connect(world)
    world.run_notary()  # development makes the ledger signing key production insists on
    stranger = bootstrap(
        world.container.settings.replace(
            environment="production", token_keys=generate_key("k9"), secret_key="q" * 32
        ),
        clock=world.container.clock,
    )
    try:
        with pytest.raises(NotConnected, match=r"which token_keys does not list.*reconnect"):
            stranger.credentials.load(account)
    finally:
        stranger.dispose()
