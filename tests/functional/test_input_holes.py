"""Inputs that used to answer 500 or store what they should not (issue 13, point 5): each is
sent through the real interface and must get a clear 4xx (or a plain page), storing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ghostpost.bootstrap import Container
from ghostpost.cli import main
from ghostpost.db.models import LedgerEntryRow, PostRow, WebSessionRow
from ghostpost.domain.model import Window
from ghostpost.services import clients
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.api import Scheduler, fetch_token, scheduler_for
from tests.support.web import csrf_from, sign_in
from tests.support.world import World


def count(container: Container, table: type) -> int:
    with container.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


# --- public timelines ------------------------------------------------------------------------


def test_a_before_cursor_beyond_the_databases_integers_is_no_500(
    client: FlaskClient, world: World
) -> None:
    response = client.get("/@avery?before=99999999999999999999")
    assert response.status_code == 200  # no such cursor: the newest page


def test_a_status_id_beyond_the_databases_integers_is_404(
    client: FlaskClient, world: World
) -> None:
    assert client.get("/@avery/9223372036854775808").status_code == 404
    assert client.get("/@avery/99999999999999999999999").status_code == 404


# --- the ledger page and the exports ---------------------------------------------------------


def test_the_ledger_up_to_the_last_representable_day_is_no_500(
    client: FlaskClient, world: World
) -> None:
    sign_in(client, world.auditor.email)
    response = client.get("/ledger?to=9999-12-31")
    assert response.status_code == 200
    assert client.get("/ledger?from=9999-12-31&to=9999-12-31").status_code == 200


@pytest.mark.parametrize(
    "bound", ["from=9999-12-31T23:59:59-12:00", "to=0001-01-01T00:00:00+01:00", "to=9999-12-31"]
)
def test_a_web_export_bound_beyond_the_calendar_is_a_form_message(
    client: FlaskClient, world: World, bound: str
) -> None:
    sign_in(client, world.auditor.email)
    response = client.get(f"/ledger/export?report=authorship&{bound}")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Export not started" in page


@pytest.fixture
def reader(client: FlaskClient, world: World) -> Scheduler:
    return scheduler_for(client, world, scopes=("posts:read", "audit:read"))


@pytest.mark.parametrize(
    "bound", ["from=9999-12-31T23:59:59-12:00", "to=0001-01-01T00:00:00%2B01:00", "to=9999-12-31"]
)
def test_an_api_export_bound_beyond_the_calendar_is_422(reader: Scheduler, bound: str) -> None:
    response = reader.get(f"/api/v1/audit/export?{bound}")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    name = bound.partition("=")[0]
    assert name in response.get_json()["errors"]


# --- the Mastodon-compatible in_reply_to_id --------------------------------------------------


@pytest.fixture
def compat(
    client: FlaskClient, world: World, opened_window: Window
) -> tuple[FlaskClient, dict[str, str], str]:
    client_record, secret = clients.create_client(
        world.ctx,
        Actor.system("test"),
        name="Compat",
        owner_email=world.manager.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[world.account.id],
        default_author_email=world.writer_a.email,
    )
    token = fetch_token(client, client_record.client_id, secret)
    path = f"/compat/mastodon/{world.account.id}/api/v1/statuses"
    return client, {"Authorization": f"Bearer {token}"}, path


@pytest.mark.parametrize(
    "raw",
    [
        '{"status": "hi", "in_reply_to_id": 1.5}',
        '{"status": "hi", "in_reply_to_id": NaN}',
        '{"status": "hi", "in_reply_to_id": true}',
        '{"status": "hi", "in_reply_to_id": ["1"]}',
        json.dumps({"status": "hi", "in_reply_to_id": {"x": "y" * 900_000}}),
        json.dumps({"status": "hi", "in_reply_to_id": "9" * 201}),
        json.dumps({"status": "hi", "in_reply_to_id": "12\u000034"}),
    ],
    ids=["float", "nan", "bool", "list", "900kb-object", "too-long", "nul"],
)
def test_a_bad_in_reply_to_id_is_refused_by_name_and_nothing_is_stored(
    compat: tuple[FlaskClient, dict[str, str], str], container: Container, raw: str
) -> None:
    http, headers, path = compat
    posts, entries = count(container, PostRow), count(container, LedgerEntryRow)
    response = http.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "in_reply_to_id" in response.get_json()["error"]
    assert (count(container, PostRow), count(container, LedgerEntryRow)) == (posts, entries)


def test_a_well_formed_in_reply_to_id_naming_no_status_is_not_found_and_stores_nothing(
    compat: tuple[FlaskClient, dict[str, str], str], container: Container
) -> None:
    # It used to be kept in the post's decisions and never sent: a reply published as a
    # top-level post. Replies are published now; one to a status the face never showed is
    # answered as Mastodon answers it (404), and nothing is stored.
    http, headers, path = compat
    posts, entries = count(container, PostRow), count(container, LedgerEntryRow)
    for given in (109876543210, "109876543211"):
        body = {"status": f"hi {given}", "in_reply_to_id": given}
        response = http.post(path, json=body, headers=headers)
        assert response.status_code == 404, response.get_data(as_text=True)
    assert (count(container, PostRow), count(container, LedgerEntryRow)) == (posts, entries)


# --- anonymous visitors store nothing --------------------------------------------------------


def test_cookieless_visits_to_the_sign_in_form_store_no_session(
    app, container: Container, world: World
) -> None:  # type: ignore[no-untyped-def]
    before = count(container, WebSessionRow)
    for _ in range(5):
        page = app.test_client().get("/login")
        assert page.status_code == 200
        assert 'name="csrf_token"' in page.get_data(as_text=True)
    assert count(container, WebSessionRow) == before


def test_the_sign_in_form_still_checks_csrf_without_a_stored_session(
    app, container: Container, world: World
) -> None:  # type: ignore[no-untyped-def]
    browser = app.test_client()
    form = {"email": world.writer_a.email, "password": "password-123"}
    # No token at all, and a token from another browser (double submit: it must match *this*
    # browser's signed cookie).
    assert browser.post("/login", data=form).status_code == 400
    other_token = csrf_from(app.test_client(), "/login")
    csrf_from(browser, "/login")
    assert browser.post("/login", data={**form, "csrf_token": other_token}).status_code == 400
    assert count(container, WebSessionRow) == 0
    # The real form signs in, and only then is a session stored.
    assert sign_in(browser, world.writer_a.email).status_code == 302
    assert count(container, WebSessionRow) == 1
    assert browser.get("/compose").status_code == 200


def test_signing_out_leaves_no_anonymous_session_behind(
    client: FlaskClient, container: Container, world: World
) -> None:
    sign_in(client, world.writer_a.email)
    token = csrf_from(client, "/home")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=True)
    assert "Signed out." in response.get_data(as_text=True)
    with container.sessions() as session:
        live = session.scalar(
            select(func.count())
            .select_from(WebSessionRow)
            .where(WebSessionRow.revoked_at.is_(None))
        )
    assert live == 0


# --- the documented GHOSTPOST_NEW_USER_PASSWORD ----------------------------------------------


def test_users_create_reads_the_documented_password_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GHOSTPOST_NEW_USER_PASSWORD", "long-password-from-env")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    created = runner.invoke(
        main,
        ["users", "create", "--email", "lee@example.test", "--name", "Lee", "--role", "writer"],
        catch_exceptions=False,
    )
    assert created.exit_code == 0, created.output
    assert "created writer lee@example.test" in created.output
    # It is no setting: Settings.load accepts it and keeps no trace of the password.
    settings = Settings.load()
    assert "long-password-from-env" not in repr(settings)
