"""Signing in like Mastodon (issue 15): POST /api/v1/apps, GET/POST /oauth/authorize (staff
sign-in, then a consent page where the writer picks one of their accounts), POST /oauth/token
(authorization_code + PKCE S256, client_credentials), POST /oauth/revoke.

Each attack goes through the real routes with the Flask test client: forms carry real CSRF
tokens, tokens come from the real token endpoint. A refused request stores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ghostpost.bootstrap import bootstrap
from ghostpost.clock import FixedClock
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Account, User
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.web import PASSWORD, csrf_from, sign_in
from tests.support.world import World

REDIRECT = "https://tooter.example/callback"
OOB = "urn:ietf:wg:oauth:2.0:oob"
SYSTEM = Actor.system("test")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def register(http: FlaskClient, redirect_uris: str = REDIRECT, **extra: str) -> dict[str, Any]:
    response = http.post(
        "/api/v1/apps",
        data={
            "client_name": "Tooter",
            "redirect_uris": redirect_uris,
            "scopes": "read write follow push",
            "website": "https://tooter.example",
            **extra,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    app: dict[str, Any] = response.get_json()
    return app


def authorize_path(app: dict[str, Any], verifier: str | None, **overrides: str) -> str:
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uri"].split("\n")[0],
        "scope": "read write",
        "state": "xyz-state",
    }
    if verifier is not None:
        query |= {"code_challenge": s256(verifier), "code_challenge_method": "S256"}
    query |= overrides
    return "/oauth/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def consent(
    http: FlaskClient, path: str, account_id: int | str, *, decision: str = "approve"
) -> TestResponse:
    """Open the consent page (signed in), then submit it as the user would."""
    page = http.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return http.post(
        path,
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "account_id": str(account_id),
            "decision": decision,
        },
    )


def code_from(response: TestResponse) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["xyz-state"]
    return params["code"][0]


def exchange(
    http: FlaskClient,
    app: dict[str, Any],
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str = REDIRECT,
    secret: bool = True,
) -> TestResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "redirect_uri": redirect_uri,
    }
    if secret:
        form["client_secret"] = app["client_secret"]
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post("/oauth/token", data=form)


def sign_in_and_get_code(
    http: FlaskClient, app: dict[str, Any], user: User, account: Account, verifier: str
) -> str:
    sign_in(http, user.email)
    return code_from(consent(http, authorize_path(app, verifier), account.id))


def user_token(http: FlaskClient, world: World, user: User | None = None) -> tuple[dict, str]:  # type: ignore[type-arg]
    app = register(http)
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(http, app, user or world.writer_a, world.account, verifier)
    response = exchange(http, app, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access_token"]
    return app, token


def post_status(
    http: FlaskClient, account_id: int, token: str, text: str = "Hello from my own app"
) -> TestResponse:
    return http.post(
        f"/compat/mastodon/{account_id}/api/v1/statuses",
        data={"status": text},
        headers={"Authorization": f"Bearer {token}"},
    )


def submitted(world: World) -> list:  # type: ignore[type-arg]
    with world.ctx.uow(read_only=True) as uow:
        return [e for e in uow.ledger.entries() if e.tag == LedgerTag.POST_SUBMITTED]


def stored_codes_and_tokens(world: World) -> tuple[int, int]:
    with world.ctx.uow(read_only=True) as uow:
        return uow.mastodon_apps.counts()


@pytest.fixture
def live_window(world: World):  # type: ignore[no-untyped-def]
    return world.approve_notice(world.open_window(every=3))


# --- the whole flow ------------------------------------------------------------------------


def test_a_writer_signs_in_from_their_own_app_and_the_ledger_names_them(
    client: FlaskClient, world: World, live_window: object
) -> None:
    app = register(client, redirect_uris=f"{REDIRECT}\n{OOB}")
    assert app["redirect_uri"] == f"{REDIRECT}\n{OOB}"
    assert app["redirect_uris"] == [REDIRECT, OOB]
    assert app["name"] == "Tooter" and app["website"] == "https://tooter.example"
    assert app["id"].isdigit() and app["client_id"] and app["client_secret"]
    assert "vapid_key" in app

    verifier = secrets.token_urlsafe(48)
    path = authorize_path(app, verifier)
    first = client.get(path)
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/login?next=")
    login_page = client.get(first.headers["Location"]).get_data(as_text=True)
    next_field = re.search(r'name="next" value="([^"]*)"', login_page)
    assert next_field
    signed_in = client.post(
        "/login",
        data={
            "email": world.writer_a.email,
            "password": PASSWORD,
            "next": html_lib.unescape(next_field.group(1)),
            "csrf_token": csrf_of(login_page),
        },
    )
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == path, "the sign-in sends the writer back"

    page = client.get(path)
    html = page.get_data(as_text=True)
    assert "Tooter" in html and "@avery" in html
    code = code_from(consent(client, path, world.account.id))

    response = exchange(client, app, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    token = response.get_json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "read write"
    assert isinstance(token["created_at"], int)
    assert "expires_in" not in token, "Mastodon tokens last until revoked"

    posted = post_status(client, world.account.id, token["access_token"])
    assert posted.status_code == 200, posted.get_data(as_text=True)
    assert posted.get_json()["text"].endswith("#team"), "the window's disclosure applies"
    [entry] = submitted(world)
    assert entry.data["writer"]["email"] == world.writer_a.email
    assert entry.data["submitter"] == f"user:{world.writer_a.id}"
    assert entry.data["via"] == f"mastodon-app:{app['id']}"
    assert entry.data["source"] == "mastodon-compat"
    assert entry.data["delegated"] is True


def test_a_signed_in_apps_status_options_are_honoured_or_refused_never_dropped(
    client: FlaskClient, world: World, live_window: object
) -> None:
    """The signed-in path plans its own post: every option must reach it (a CW dropped on
    the way would publish the text without the warning the writer asked for)."""
    _, token = user_token(client, world)
    before = len(submitted(world))
    response = client.post(
        f"/compat/mastodon/{world.account.id}/api/v1/statuses",
        data={"status": "Behind a warning", "spoiler_text": "Spoilers", "language": "en"},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code == 422:
        assert "spoiler_text" in response.get_json()["error"]
        assert len(submitted(world)) == before, "nothing stored on a refusal"
        return
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["spoiler_text"].startswith("Spoilers") and body["language"] == "en"
    post = world.post(int(body["id"]))
    assert post.options.content_warning == "Spoilers" and post.options.language == "en"


def test_the_token_endpoint_takes_a_json_body_as_masto_js_sends_it(
    client: FlaskClient, world: World
) -> None:
    app = register(client)
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(client, app, world.writer_a, world.account, verifier)
    response = client.post(
        "/oauth/token",
        json={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["scope"] == "read write"


def test_oob_shows_the_code_instead_of_redirecting(client: FlaskClient, world: World) -> None:
    app = register(client, redirect_uris=OOB)
    verifier = secrets.token_urlsafe(48)
    sign_in(client, world.writer_a.email)
    shown = consent(client, authorize_path(app, verifier, redirect_uri=OOB), world.account.id)
    assert shown.status_code == 200
    code = re.search(r'id="oauth-code">([^<]+)<', shown.get_data(as_text=True))
    assert code, shown.get_data(as_text=True)
    assert exchange(client, app, code.group(1), verifier, redirect_uri=OOB).status_code == 200


def test_the_principal_signs_in_for_their_own_account_and_posts_as_themselves(
    client: FlaskClient, world: World, live_window: object
) -> None:
    _, token = user_token(client, world, world.principal)
    assert post_status(client, world.account.id, token).status_code == 200
    [entry] = submitted(world)
    assert entry.data["writer"]["email"] == world.principal.email
    assert entry.data["delegated"] is False


# --- codes ---------------------------------------------------------------------------------


def test_a_code_works_once(client: FlaskClient, world: World) -> None:
    app = register(client)
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(client, app, world.writer_a, world.account, verifier)
    assert exchange(client, app, code, verifier).status_code == 200
    again = exchange(client, app, code, verifier)
    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"
    assert stored_codes_and_tokens(world)[1] == 1


def test_a_code_expires(client: FlaskClient, world: World, clock: FixedClock) -> None:
    app = register(client)
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(client, app, world.writer_a, world.account, verifier)
    clock.advance(minutes=11)
    assert exchange(client, app, code, verifier).get_json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client_and_redirect_uri(client: FlaskClient, world: World) -> None:
    app = register(client)
    other = register(client, redirect_uris=f"{REDIRECT}\nhttps://tooter.example/other")
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(client, app, world.writer_a, world.account, verifier)

    stolen = exchange(client, other, code, verifier)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    moved = exchange(client, app, code, verifier, redirect_uri="https://tooter.example/other")
    assert moved.status_code == 400 and moved.get_json()["error"] == "invalid_grant"
    assert stored_codes_and_tokens(world)[1] == 0
    assert exchange(client, app, code, verifier).status_code == 200


def test_a_wrong_or_missing_verifier_gets_no_token(client: FlaskClient, world: World) -> None:
    app = register(client)
    verifier = secrets.token_urlsafe(48)
    code = sign_in_and_get_code(client, app, world.writer_a, world.account, verifier)
    wrong = exchange(client, app, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    missing = exchange(client, app, code, None)
    assert missing.status_code == 400
    assert stored_codes_and_tokens(world)[1] == 0


def test_the_plain_method_is_refused_before_any_code_exists(
    client: FlaskClient, world: World
) -> None:
    app = register(client)
    verifier = secrets.token_urlsafe(48)
    sign_in(client, world.writer_a.email)
    for method in ("plain", None):
        path = authorize_path(
            app, None, code_challenge=verifier, code_challenge_method=method or ""
        )
        page = client.get(path)
        # The redirect URI is registered, so the error goes back to the app (RFC 6749
        # §4.1.2.1), without a code.
        assert page.status_code == 302, page.get_data(as_text=True)
        location = page.headers["Location"]
        assert location.startswith(REDIRECT + "?error=invalid_request")
        assert "S256" in location and "code=" not in location
        # Submitting the form anyway gets no code either.
        refused = client.post(
            path,
            data={
                "csrf_token": csrf_from(client, "/account/apps"),
                "account_id": str(world.account.id),
                "decision": "approve",
            },
        )
        assert "code=" not in refused.headers.get("Location", "")
    assert stored_codes_and_tokens(world) == (0, 0)


def test_a_public_client_needs_pkce(client: FlaskClient, world: World) -> None:
    """A client that does not authenticate (no secret) may redeem only a code bound to a
    challenge; confidential clients (with their secret) may skip PKCE, as toot does."""
    app = register(client)
    sign_in(client, world.writer_a.email)
    code = code_from(consent(client, authorize_path(app, None), world.account.id))
    public = exchange(client, app, code, None, secret=False)
    assert public.status_code in (400, 401), public.get_data(as_text=True)
    assert stored_codes_and_tokens(world)[1] == 0
    assert exchange(client, app, code, None).status_code == 200

    verifier = secrets.token_urlsafe(48)
    code = code_from(consent(client, authorize_path(app, verifier), world.account.id))
    assert exchange(client, app, code, verifier, secret=False).status_code == 200


# --- the consent form ----------------------------------------------------------------------


def test_the_consent_form_needs_its_csrf_token(client: FlaskClient, world: World) -> None:
    app = register(client)
    sign_in(client, world.writer_a.email)
    path = authorize_path(app, secrets.token_urlsafe(48))
    forged = client.post(path, data={"account_id": str(world.account.id), "decision": "approve"})
    assert forged.status_code == 400
    assert "Location" not in forged.headers
    assert stored_codes_and_tokens(world) == (0, 0)


def test_a_forged_account_id_gets_no_code(client: FlaskClient, world: World) -> None:
    foreign = directory.create_account(
        world.ctx,
        SYSTEM,
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="avery_work",
    )
    app = register(client)
    sign_in(client, world.writer_a.email)
    path = authorize_path(app, secrets.token_urlsafe(48))
    page = client.get(path).get_data(as_text=True)
    assert "@avery_work" not in page, "only the writer's own accounts are offered"
    for forged in (foreign.id, 999999, "abc", ""):
        response = client.post(
            path,
            data={"csrf_token": csrf_of(page), "account_id": str(forged), "decision": "approve"},
        )
        assert response.status_code == 422, response.get_data(as_text=True)
        assert "Location" not in response.headers
    assert stored_codes_and_tokens(world) == (0, 0)


def test_denying_redirects_with_access_denied(client: FlaskClient, world: World) -> None:
    app = register(client)
    sign_in(client, world.writer_a.email)
    denied = consent(
        client, authorize_path(app, secrets.token_urlsafe(48)), world.account.id, decision="deny"
    )
    assert denied.status_code == 302
    assert denied.headers["Location"].startswith(REDIRECT + "?error=access_denied")
    assert stored_codes_and_tokens(world) == (0, 0)


def test_an_unregistered_redirect_uri_is_never_redirected_to(
    client: FlaskClient, world: World
) -> None:
    app = register(client)
    sign_in(client, world.writer_a.email)
    for evil in ("https://evil.example/cb", REDIRECT + "/../evil", "https://tooter.example"):
        path = authorize_path(app, secrets.token_urlsafe(48), redirect_uri=evil)
        page = client.get(path)
        assert page.status_code == 400, evil
        assert "Location" not in page.headers
        posted = client.post(
            path,
            data={
                "csrf_token": csrf_from(client, "/account/apps"),
                "account_id": str(world.account.id),
                "decision": "approve",
            },
        )
        assert posted.status_code == 400 and "Location" not in posted.headers
    assert stored_codes_and_tokens(world) == (0, 0)


def test_registration_refuses_dangerous_or_missing_redirect_uris(client: FlaskClient) -> None:
    for uris in (
        "",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://a.example/#frag",
        "not a uri",
    ):
        response = client.post("/api/v1/apps", data={"client_name": "X", "redirect_uris": uris})
        assert response.status_code == 422, uris
        assert "error" in response.get_json()
    assert client.post("/api/v1/apps", data={"redirect_uris": REDIRECT}).status_code == 422
    custom = client.post(
        "/api/v1/apps",
        json={
            "client_name": "Tusky",
            "redirect_uris": ["oauth2redirect://com.keylesspalace.tusky/"],
        },
    )
    assert custom.status_code == 200, custom.get_data(as_text=True)


def test_the_consent_page_cannot_be_framed(client: FlaskClient, world: World) -> None:
    app = register(client)
    sign_in(client, world.writer_a.email)
    page = client.get(authorize_path(app, secrets.token_urlsafe(48)))
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    # The redirect after the POST is the app's own (browsers apply form-action to it).
    assert page.headers["Content-Security-Policy"].endswith(
        "form-action 'self' https://tooter.example"
    )
    assert page.headers["X-Frame-Options"] == "DENY"


# --- tokens --------------------------------------------------------------------------------


def test_a_token_stops_working_when_the_writer_is_deactivated(
    client: FlaskClient, world: World, live_window: object
) -> None:
    _, token = user_token(client, world)
    directory.set_user_active(world.ctx, SYSTEM, world.writer_a.id, False)
    assert post_status(client, world.account.id, token).status_code == 401
    assert submitted(world) == []


def test_a_token_stops_working_when_the_writer_is_unassigned(
    client: FlaskClient, world: World, live_window: object
) -> None:
    _, token = user_token(client, world)
    directory.unassign_writer(
        world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=world.account.id
    )
    assert post_status(client, world.account.id, token).status_code == 401
    assert submitted(world) == []


def test_another_process_unassigning_is_honoured_within_the_cache_bound(
    client: FlaskClient,
    world: World,
    live_window: object,
    settings: Settings,
    clock: FixedClock,
) -> None:
    """The token cache (api_token_cache_seconds) may keep a grant a few seconds; the post is
    still refused at once (the create reads the assignment again), and the token itself
    stops resolving once the bound has passed."""
    _, token = user_token(client, world)
    assert post_status(client, world.account.id, token, "first").status_code == 200
    elsewhere = bootstrap(settings, clock=clock)
    try:
        directory.unassign_writer(
            elsewhere.services, SYSTEM, user_id=world.writer_a.id, account_id=world.account.id
        )
    finally:
        elsewhere.dispose()
    refused = post_status(client, world.account.id, token, "second")
    assert refused.status_code in (401, 403, 422), refused.get_data(as_text=True)
    clock.advance(seconds=settings.api_token_cache_seconds + 1)
    assert post_status(client, world.account.id, token, "third").status_code == 401
    assert len(submitted(world)) == 1


def test_a_revoked_token_stops_working(
    client: FlaskClient, world: World, live_window: object
) -> None:
    app, token = user_token(client, world)
    other = register(client)
    refused = client.post(
        "/oauth/revoke",
        data={
            "client_id": other["client_id"],
            "client_secret": other["client_secret"],
            "token": token,
        },
    )
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "unauthorized_client"
    assert post_status(client, world.account.id, token, "still mine").status_code == 200
    revoked = client.post(
        "/oauth/revoke",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "token": token},
    )
    assert revoked.status_code == 200 and revoked.get_json() == {}
    assert post_status(client, world.account.id, token).status_code == 401
    assert len(submitted(world)) == 1


def test_the_writer_sees_and_revokes_their_app_tokens_on_their_page(
    client: FlaskClient, world: World, live_window: object
) -> None:
    _, token = user_token(client, world)
    page = client.get("/account/apps")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Tooter" in html and "@avery" in html
    form = re.search(r'action="(/account/apps/\d+/revoke)"', html)
    assert form
    forged = client.post(form.group(1))
    assert forged.status_code == 400, "the revoke button needs its CSRF token"
    assert post_status(client, world.account.id, token, "one").status_code == 200
    done = client.post(form.group(1), data={"csrf_token": csrf_of(html)})
    assert done.status_code == 302
    assert post_status(client, world.account.id, token, "two").status_code == 401
    assert "Tooter" not in client.get("/account/apps").get_data(as_text=True)


def test_another_user_cannot_revoke_my_token_from_their_page(
    client: FlaskClient, world: World, live_window: object
) -> None:
    _, token = user_token(client, world)
    with world.ctx.uow(read_only=True) as uow:
        [mine] = uow.mastodon_apps.tokens_of_user(world.writer_a.id)
    client.post("/logout", data={"csrf_token": csrf_from(client, "/account/apps")})
    sign_in(client, world.writer_b.email)
    html = client.get("/account/apps").get_data(as_text=True)
    response = client.post(f"/account/apps/{mine.id}/revoke", data={"csrf_token": csrf_of(html)})
    assert response.status_code == 404
    assert post_status(client, world.account.id, token).status_code == 200


def test_a_writers_token_is_for_one_account_only(
    client: FlaskClient, world: World, live_window: object
) -> None:
    second = directory.create_account(
        world.ctx,
        SYSTEM,
        principal_id=world.principal.principal_id or 0,
        platform="local",
        handle="avery_work",
    )
    directory.assign_writer(world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=second.id)
    _, token = user_token(client, world)
    response = post_status(client, second.id, token)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert submitted(world) == []


def test_an_app_token_cannot_post_as_anyone(
    client: FlaskClient, world: World, live_window: object
) -> None:
    app = register(client)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    token = response.get_json()["access_token"]
    posted = post_status(client, world.account.id, token)
    assert posted.status_code == 422
    assert posted.get_json()["error"] == "This method requires an authenticated user"
    forged = client.post(
        f"/compat/mastodon/{world.account.id}/api/v1/statuses",
        data={"status": "as Sam"},
        headers={"Authorization": f"Bearer {token}", "X-Ghostpost-Author": world.writer_b.email},
    )
    assert forged.status_code == 422
    assert submitted(world) == []


def test_a_token_with_read_only_scope_cannot_post(
    client: FlaskClient, world: World, live_window: object
) -> None:
    app = register(client)
    verifier = secrets.token_urlsafe(48)
    sign_in(client, world.writer_a.email)
    code = code_from(consent(client, authorize_path(app, verifier, scope="read"), world.account.id))
    token = exchange(client, app, code, verifier).get_json()["access_token"]
    assert post_status(client, world.account.id, token).status_code == 403
    assert submitted(world) == []


def test_an_app_may_not_ask_for_more_than_it_registered(client: FlaskClient, world: World) -> None:
    response = client.post(
        "/api/v1/apps", data={"client_name": "Reader", "redirect_uris": REDIRECT, "scopes": "read"}
    )
    app = response.get_json()
    sign_in(client, world.writer_a.email)
    page = client.get(authorize_path(app, secrets.token_urlsafe(48), scope="read write"))
    assert page.status_code in (302, 400)
    if page.status_code == 302:
        assert "error=invalid_scope" in page.headers["Location"]
    assert stored_codes_and_tokens(world) == (0, 0)


def test_registering_apps_is_rate_limited_per_address(client: FlaskClient) -> None:
    form = {"client_name": "Spam", "redirect_uris": REDIRECT}
    answers = [client.post("/api/v1/apps", data=form).status_code for _ in range(31)]
    assert answers[:30] == [200] * 30
    assert answers[30] == 429
    limited = client.post("/api/v1/apps", data=form)
    assert limited.status_code == 429 and "error" in limited.get_json()


def test_the_oauth_metadata_lists_s256_only_and_ignores_the_host_header(
    client: FlaskClient,
) -> None:
    response = client.get(
        "/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    )
    assert response.status_code == 200
    metadata = response.get_json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_endpoint"] == "http://ghostpost.test/oauth/authorize"
    assert metadata["app_registration_endpoint"] == "http://ghostpost.test/api/v1/apps"
    assert "evil.example" not in response.get_data(as_text=True)
