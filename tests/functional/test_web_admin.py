"""User administration: admins list, create, deactivate and reactivate users; nobody else."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.model import Role, User
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict, Forbidden
from tests.support.web import PASSWORD, post_form, sign_in
from tests.support.world import World


@pytest.fixture
def admin(world: World) -> User:
    return directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="ada@example.test",
        name="Ada Admin",
        role=Role.ADMIN,
        password=PASSWORD,
    )


def new_user(**changes: str) -> dict[str, str]:
    return {
        "email": "Nia@Example.test",
        "name": "Nia Brooks",
        "role": "writer",
        "password": "long-enough-1",
        **changes,
    }


def ledger(world: World, tag: str) -> list[dict]:
    with world.ctx.uow() as uow:
        return [dict(e.data) | {"_actor": e.actor} for e in uow.ledger.entries() if e.tag == tag]


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/admin/users")


@pytest.mark.parametrize("who", ["writer_a", "manager", "auditor", "principal"])
def test_only_admins_manage_users(world: World, client: FlaskClient, who: str) -> None:
    sign_in(client, getattr(world, who).email)
    assert client.get("/admin/users").status_code == 403
    assert post_form(client, "/admin/users", new_user()).status_code == 403
    target = f"/admin/users/{world.writer_b.id}/active"
    assert post_form(client, target, {"active": "0"}).status_code == 403
    assert "/admin/users" not in client.get("/home", follow_redirects=True).get_data(as_text=True)


def test_the_list_shows_role_principal_and_status(
    world: World, client: FlaskClient, admin: User
) -> None:
    directory.set_user_active(world.ctx, Actor.system("t"), world.outsider.id, False)
    sign_in(client, admin.email)
    html = client.get("/admin/users").get_data(as_text=True)
    avery = html.split(f'id="user-{world.principal.id}"')[1].split("</tr>")[0]
    assert "avery@example.test" in avery and "<td>principal</td>" in avery
    assert "<td>Avery Chen</td>" in avery  # the principal this user is
    casey = html.split(f'id="user-{world.outsider.id}"')[1].split("</tr>")[0]
    assert "deactivated" in casey and ">Reactivate<" in casey
    jordan = html.split(f'id="user-{world.writer_a.id}"')[1].split("</tr>")[0]
    assert ">active<" in jordan and ">Deactivate<" in jordan
    me = html.split(f'id="user-{admin.id}"')[1].split("</tr>")[0]
    assert "Deactivate" not in me and ">you<" in me
    assert 'href="/admin/users"' in html  # in the navigation
    for field, label in (
        ("user-email", "Email"),
        ("user-name", "Name"),
        ("user-role", "Role"),
        ("user-password", "Password"),
    ):
        assert f'<label for="{field}">{label}</label>' in html
    # Admins no longer link users to principals (issue 12): no such field.
    assert 'name="principal_id"' not in html
    assert ">Create user<" in html


def test_an_admin_creates_a_user_who_can_then_sign_in(
    world: World, client: FlaskClient, admin: User, app
) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, admin.email)
    response = post_form(
        client,
        "/admin/users",
        new_user(role="manager"),
        "/admin/users",
    )
    assert response.status_code == 302
    with world.ctx.uow() as uow:
        created = uow.users.by_email("nia@example.test")
    assert created is not None
    assert (created.name, created.role, created.principal_id) == ("Nia Brooks", Role.MANAGER, None)
    [entry] = [e for e in ledger(world, "user:created") if e["email"] == "nia@example.test"]
    assert entry["_actor"] == f"user:{admin.id}"
    assert "Nia Brooks &lt;nia@example.test&gt; can now sign in" in client.get(
        "/admin/users"
    ).get_data(as_text=True)
    other = app.test_client()
    assert sign_in(other, "nia@example.test", "long-enough-1").status_code == 302


@pytest.mark.parametrize(
    ("changes", "field", "message", "status"),
    [
        ({"email": "not-an-email"}, "email", "Not an email address.", 422),
        ({"name": " "}, "name", "Required.", 422),
        ({"password": "short"}, "password", "At least 8 characters.", 422),
        ({"role": "owner"}, "role", "Pick a role.", 422),
        ({"email": "jordan@example.test"}, "email", "already exists", 409),
    ],
)
def test_create_user_errors_are_shown_by_their_field(
    world: World,
    client: FlaskClient,
    admin: User,
    changes: dict[str, str],
    field: str,
    message: str,
    status: int,
) -> None:
    sign_in(client, admin.email)
    response = post_form(client, "/admin/users", new_user(**changes), "/admin/users")
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert f'<p class="field-error" id="user-{field}-error">' in html
    assert message in html.split(f'id="user-{field}-error">')[1].split("</p>")[0]
    assert 'value="long-enough-1"' not in html  # the password is never sent back
    with world.ctx.uow() as uow:
        assert uow.users.by_email("nia@example.test") is None


def test_deactivating_ends_the_session_at_the_next_request_and_reactivating_restores_access(
    world: World, client: FlaskClient, admin: User, app
) -> None:  # type: ignore[no-untyped-def]
    writer = app.test_client()
    sign_in(writer, world.writer_a.email)
    assert writer.get("/queue").status_code == 200

    sign_in(client, admin.email)
    target = f"/admin/users/{world.writer_a.id}/active"
    response = post_form(client, target, {"active": "0", "confirm": "yes"}, "/admin/users")
    assert response.status_code == 302
    assert "Jordan Park is deactivated" in client.get("/admin/users").get_data(as_text=True)

    response = writer.get("/queue")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert sign_in(writer, world.writer_a.email).status_code == 401
    [entry] = ledger(world, "user:deactivated")
    assert entry["user"]["email"] == world.writer_a.email
    assert entry["_actor"] == f"user:{admin.id}"

    post_form(client, target, {"active": "1"}, "/admin/users")
    assert sign_in(writer, world.writer_a.email).status_code == 302
    assert len(ledger(world, "user:reactivated")) == 1
    # Asking for the state a user is already in changes nothing and records nothing.
    post_form(client, target, {"active": "1"}, "/admin/users")
    assert len(ledger(world, "user:reactivated")) == 1


def test_an_admin_cannot_deactivate_themself(
    world: World, client: FlaskClient, admin: User
) -> None:
    sign_in(client, admin.email)
    yourself = {"active": "0", "confirm": "yes"}
    response = post_form(client, f"/admin/users/{admin.id}/active", yourself, "/admin/users")
    assert response.status_code == 409
    assert "cannot deactivate yourself" in response.get_data(as_text=True)
    assert client.get("/admin/users").status_code == 200
    with pytest.raises(Conflict):
        directory.set_user_active(world.ctx, Actor.for_user(admin), admin.id, False)


def test_bad_activation_requests(world: World, client: FlaskClient, admin: User) -> None:
    sign_in(client, admin.email)
    assert post_form(client, "/admin/users/999/active", {"active": "0"}).status_code == 404
    huge = f"/admin/users/{10**25}/active"
    assert post_form(client, huge, {"active": "0"}).status_code == 404
    target = f"/admin/users/{world.writer_a.id}/active"
    assert post_form(client, target, {"active": "maybe"}).status_code == 400
    assert client.post(target, data={"active": "0"}).status_code == 400  # no CSRF token
    assert client.post("/admin/users", data=new_user()).status_code == 400


def test_the_services_refuse_non_admins(world: World) -> None:
    manager = Actor.for_user(world.manager)
    with pytest.raises(Forbidden):
        directory.set_user_active(world.ctx, manager, world.writer_a.id, False)
    with pytest.raises(Forbidden):
        directory.create_user(
            world.ctx,
            manager,
            email="x@example.test",
            name="X",
            role=Role.ADMIN,
            password=PASSWORD,
        )
    with pytest.raises(Forbidden):
        directory.staff_directory(world.ctx, manager)


def test_deactivated_users_are_not_offered_for_assignment(
    world: World, client: FlaskClient
) -> None:
    directory.set_user_active(world.ctx, Actor.system("t"), world.outsider.id, False)
    sign_in(client, world.manager.email)
    html = client.get("/windows").get_data(as_text=True)
    assert "Casey Doe (writer)" not in html
    ids = {"account_id": str(world.account.id), "user_id": str(world.outsider.id)}
    assert post_form(client, "/windows/assignments", ids, "/windows").status_code == 409


@pytest.mark.parametrize("value", ["1", "999", "²"])
def test_a_crafted_principal_field_is_refused_and_nothing_is_stored(
    world: World, client: FlaskClient, admin: User, value: str
) -> None:
    # The form used to offer a principal; any principal_id an admin still sends is refused.
    sign_in(client, admin.email)
    with world.ctx.uow() as uow:
        before = (len(uow.users.list()), uow.ledger.head()[0])
    response = post_form(client, "/admin/users", new_user(principal_id=value), "/admin/users")
    assert response.status_code == 403
    assert "ghostpost users link-principal" in response.get_data(as_text=True)
    with world.ctx.uow() as uow:
        assert (len(uow.users.list()), uow.ledger.head()[0]) == before
        assert uow.users.by_email("nia@example.test") is None


def test_deactivating_asks_first_and_says_what_happens_and_how_to_undo(
    world: World, client: FlaskClient, admin: User
) -> None:
    sign_in(client, admin.email)
    target = f"/admin/users/{world.principal.id}/active"
    # The row's one click only asks: nothing changes yet.
    response = post_form(client, target, {"active": "0"}, "/admin/users")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Deactivate Avery Chen?" in html and "cannot sign in" in html
    assert "the principal" in html and "Reactivate" in html  # who it is, and the undo
    assert 'name="confirm" value="yes"' in html
    assert ledger(world, "user:deactivated") == []
    response = post_form(client, target, {"active": "0", "confirm": "yes"}, "/admin/users")
    assert response.status_code == 302
    assert len(ledger(world, "user:deactivated")) == 1
    assert "Reactivate" in client.get("/admin/users").get_data(as_text=True)


def test_words_the_principal_is_the_principal_and_errors_are_plain(
    world: World, client: FlaskClient, admin: User
) -> None:
    sign_in(client, admin.email)
    html = client.get("/admin/users").get_data(as_text=True)
    row = html.split(f'id="user-{world.principal.id}"')[1].split("</tr>")[0]
    assert "<td>principal</td>" in row and "manager" not in row
    response = post_form(client, "/admin/users", new_user(password="short"), "/admin/users")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "The user cannot be created: password: at least" in text
    assert "created: password.</" not in text
    windows = client.get("/windows").get_data(as_text=True)
    assert "Avery Chen (manager)" not in windows
    assert "avery@example.test · manager" not in windows
    missing = client.get("/posts/nope")
    assert missing.status_code == 404
    assert "404 Not found" in missing.get_data(as_text=True)
    assert "NotFound" not in missing.get_data(as_text=True)


def test_an_admin_lands_on_the_queue_not_an_empty_compose(client: FlaskClient, admin: User) -> None:
    sign_in(client, admin.email)
    response = client.get("/home")
    assert response.status_code == 302 and response.headers["Location"] == "/queue"
