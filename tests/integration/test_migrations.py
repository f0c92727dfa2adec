"""Alembic: the migrations build the schema the models describe, up and down."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from ghostpost.cli import alembic_config
from ghostpost.settings import Settings
from tests.support.world import World


def test_upgrading_an_empty_database_matches_the_models_exactly(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "head")
    command.check(config)  # raises when models and migrations disagree


def test_the_schema_downgrades_to_nothing_and_upgrades_again(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)


def _seed_before_authorship(url: str, *, second_principal_user: bool) -> None:
    """Rows as 0007 left them: a principal with its user, a manager, a writer, and clients
    whose default authors are the writer, the principal (on the manager's client) and nobody."""
    engine = sa.create_engine(url)
    now = "2026-11-21 09:00:00+00:00"
    with engine.begin() as db:
        db.execute(
            sa.text(f"INSERT INTO principals (id, name, created_at) VALUES (1, 'A', '{now}')")
        )
        users = [(1, "avery@x.test", 1), (2, "morgan@x.test", None), (3, "jordan@x.test", None)]
        if second_principal_user:
            users.append((4, "avery.too@x.test", 1))
        for user_id, email, principal_id in users:
            db.execute(
                sa.text(
                    "INSERT INTO users (id, email, name, role, principal_id, password_hash,"
                    " is_active, created_at) VALUES (:id, :email, :email, 'writer', :p, 'x',"
                    f" :active, '{now}')"
                ),
                {"id": user_id, "email": email, "p": principal_id, "active": True},
            )
        for row_id, default in ((1, 3), (2, 1), (3, None)):
            db.execute(
                sa.text(
                    "INSERT INTO oauth_clients (id, client_id, secret_hash, name, owner_id, scopes,"
                    " default_author_id, is_active, created_at) VALUES (:id, :cid, 'h', 'c', 2,"
                    f" 'posts:write', :d, :active, '{now}')"
                ),
                {"id": row_id, "cid": f"client-{row_id}", "d": default, "active": True},
            )
    engine.dispose()


def test_0008_grants_each_client_its_default_author_only(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "0007_user_totp")
    _seed_before_authorship(fresh_database_url, second_principal_user=False)
    command.upgrade(config, "0008_authorship")

    engine = sa.create_engine(fresh_database_url)
    with engine.connect() as db:
        granted = db.execute(
            sa.text("SELECT client_row_id, user_id FROM oauth_client_authors ORDER BY 1")
        ).all()
        defaults = db.execute(
            sa.text("SELECT id, default_author_id FROM oauth_clients ORDER BY id")
        ).all()
    engine.dispose()
    # The writer default stays and is the only grant; the principal, default author of the
    # manager's client, is neither granted nor the default any more; no default, no grant.
    assert [tuple(r) for r in granted] == [(1, 3)]
    assert [tuple(r) for r in defaults] == [(1, 3), (2, None), (3, None)]


def test_0008_refuses_to_guess_which_of_two_users_is_the_principal(
    fresh_database_url: str,
) -> None:
    config = alembic_config(fresh_database_url)
    command.upgrade(config, "0007_user_totp")
    _seed_before_authorship(fresh_database_url, second_principal_user=True)
    with pytest.raises(RuntimeError, match=r"principal 1: avery.too@x.test, avery@x.test"):
        command.upgrade(config, "0008_authorship")


def test_0011_backfills_each_entrys_account_and_post_as_the_append_fills_them(
    world: World, settings: Settings
) -> None:
    """Entries about an account, a window and posts (regular and the window's notice), made
    through the services; downgraded to 0010 and upgraded again, the backfill derives the same
    account_id and post_id from the subjects."""
    world.approve_notice(world.open_window())
    world.submit(world.writer_a, "A post, before the columns existed.")
    world.run_worker()
    query = sa.text("SELECT seq, subject, account_id, post_id FROM ledger_entries ORDER BY seq")
    engine = world.container.engine
    with engine.connect() as db:
        appended = db.execute(query).all()
    subjects = {row.subject.split(":")[0] for row in appended if row.account_id is not None}
    assert subjects == {"account", "window", "post"}, appended
    assert any(row.post_id is not None for row in appended)
    engine.dispose()
    config = alembic_config(settings.database_url)
    command.downgrade(config, "0010_bound_tokens")
    command.upgrade(config, "head")
    with engine.connect() as db:
        assert db.execute(query).all() == appended
    # The append-only trigger is back after the backfill.
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as db:
        db.execute(sa.text("UPDATE ledger_entries SET account_id = NULL"))


def test_0023_backfills_the_hashtags_each_account_published(
    world: World, settings: Settings
) -> None:
    """A post published before the table existed: downgraded to 0020 and upgraded again, its
    hashtags (as the platform extracts them, folded) are no first use; the window keeps its
    reply policy's default."""
    world.approve_notice(world.open_window())
    world.submit(world.principal, "Live from the #Keynote, see https://example.com/#not")
    world.run_worker()
    engine = world.container.engine
    engine.dispose()
    config = alembic_config(settings.database_url)
    command.downgrade(config, "0020_platform_app_scopes")
    command.upgrade(config, "head")
    with engine.connect() as db:
        names = db.execute(sa.text("SELECT account_id, name FROM account_hashtags")).all()
        policies = db.execute(sa.text("SELECT reply_policy FROM windows")).scalars().all()
    assert names == [(world.account.id, "keynote")]
    assert policies == ["approve"]
