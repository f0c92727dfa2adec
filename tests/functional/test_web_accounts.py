"""The Accounts page: who sees it, and how bad input to the connect forms is answered."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from ghostpost.services import connections
from ghostpost.services.context import Actor
from tests.support.web import post_form, sign_in
from tests.support.world import World


@pytest.mark.parametrize(
    ("who", "status"),
    [("manager", 200), ("writer_a", 403), ("auditor", 403), ("outsider", 403)],
)
def test_only_managers_and_admins_see_the_accounts_page(
    client: FlaskClient, world: World, who: str, status: int
) -> None:
    sign_in(client, getattr(world, who).email)
    assert client.get("/accounts").status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, world: World) -> None:
    response = client.get("/accounts")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_page_lists_accounts_without_any_secret(client: FlaskClient, world: World) -> None:
    connections.save_connection(
        world.ctx,
        Actor.for_user(world.manager),
        principal_id=world.account.principal_id,
        platform="mastodon",
        handle="avery@social.example",
        remote_id="1",
        base_url="https://social.example",
        credentials={"access_token": "never-shown-token"},
        max_chars=520,
    )
    sign_in(client, world.manager.email)
    page = client.get("/accounts").get_data(as_text=True)
    assert "@avery@social.example" in page and "connected" in page and "520" in page
    assert "never-shown-token" not in page
    assert "X is not configured" in page


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ("https://social.example:99999", "The port must be a number from 1 to 65535."),
        ("https://social.example:0", "The port must be a number from 1 to 65535."),
        ("https://social.example/path", "without a path"),
        ("", "Enter the server address"),
        ("ftp://social.example", "Only https:// servers"),
    ],
)
def test_a_bad_mastodon_instance_gets_a_form_message(
    client: FlaskClient, world: World, instance: str, message: str
) -> None:
    sign_in(client, world.manager.email)
    response = post_form(
        client,
        "/accounts/connect/mastodon",
        {"principal_id": str(world.account.principal_id), "instance": instance},
        token_from="/accounts",
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_an_account_password_is_refused_for_bluesky(client: FlaskClient, world: World) -> None:
    sign_in(client, world.manager.email)
    response = post_form(
        client,
        "/accounts/connect/bluesky",
        {
            "principal_id": str(world.account.principal_id),
            "pds": "https://bsky.social",
            "identifier": "avery.bsky.social",
            "app_password": "my-real-password",
        },
        token_from="/accounts",
    )
    assert response.status_code == 422
    assert "not an app password" in response.get_data(as_text=True)


def test_x_without_client_settings_is_a_clear_error(client: FlaskClient, world: World) -> None:
    sign_in(client, world.manager.email)
    response = post_form(
        client,
        "/accounts/connect/x",
        {"principal_id": str(world.account.principal_id)},
        token_from="/accounts",
    )
    assert response.status_code == 422
    assert "X is not configured" in response.get_data(as_text=True)


def test_a_callback_without_a_flow_in_progress_is_refused(
    client: FlaskClient, world: World
) -> None:
    sign_in(client, world.manager.email)
    response = client.get("/accounts/connect/mastodon/callback?code=abc&state=forged")
    assert response.status_code == 400
    assert "stale or was not started here" in response.get_data(as_text=True)


def test_an_unreachable_instance_is_a_502_with_a_message(client: FlaskClient, world: World) -> None:
    sign_in(client, world.manager.email)
    response = post_form(
        client,
        "/accounts/connect/mastodon",
        # Port 9 (discard) on loopback: nothing listens, the connection is refused.
        {"principal_id": str(world.account.principal_id), "instance": "http://127.0.0.1:9"},
        token_from="/accounts",
    )
    assert response.status_code == 502
    assert "did not answer" in response.get_data(as_text=True)


def test_disconnect_is_for_managers_and_unknown_accounts_are_404(
    client: FlaskClient, world: World
) -> None:
    sign_in(client, world.writer_a.email)
    response = post_form(client, "/accounts/1/disconnect", {}, token_from="/compose")
    assert response.status_code == 403
    client.get("/logout")
    sign_in(client, world.manager.email)
    assert post_form(client, "/accounts/999/disconnect", {}, "/accounts").status_code == 404
    local = post_form(client, f"/accounts/{world.account.id}/disconnect", {}, "/accounts")
    assert local.status_code == 422
