"""Issue 12, "who may be the author" and "one principal, one person", attacked through the real
interfaces: /api/v1 and the Mastodon-compatible endpoint with OAuth tokens, the web app with
CSRF-protected forms, and the `ghostpost` command line.

A post is the principal's own only when the principal submits it (their own session, or an API
client their own user owns); an API client names only the authors it was granted, and every
other name gets one and the same 422. Exactly one user is linked to a principal: the operator
makes the first link, only the principal hands it over. Every refusal stores nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from ghostpost.cli import main
from ghostpost.domain.ledger import LedgerTag
from ghostpost.domain.model import Role, User
from ghostpost.services import clients, directory
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden
from tests.support.api import Scheduler, fetch_token
from tests.support.web import PASSWORD, post_form, sign_in
from tests.support.world import World

TEXT = "Keynote at 10, see you there"
#: What every author a client may not name gets, on /api/v1 (errors) and Mastodon (error).
NOT_ALLOWED = {"author": [clients.AUTHOR_NOT_ALLOWED]}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def live(world: World) -> World:
    """The world with a live window whose notice is out, so delegated posts go through."""
    world.approve_notice(world.open_window(every=10))
    world.run_worker()
    return world


def stored(world: World) -> tuple[int, int, int]:
    """(posts on the account, users, ledger size): what a refusal must leave unchanged."""
    with world.ctx.uow() as uow:
        return (
            len(uow.posts.list_for_account(world.account.id)),
            len(uow.users.list()),
            uow.ledger.head()[0],
        )


def ledger(world: World, tag: str) -> list[Any]:
    with world.ctx.uow() as uow:
        return [e for e in uow.ledger.entries() if e.tag == tag]


def scheduler(
    http: FlaskClient,
    world: World,
    *,
    owner: User,
    authors: Collection[User],
    default: User | None = None,
) -> Scheduler:
    api_client, secret = clients.create_client(
        world.ctx,
        Actor.system("test"),
        name=f"Scheduler {uuid.uuid4().hex[:6]}",
        owner_email=owner.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[world.account.id],
        author_emails=[a.email for a in authors],
        default_author_email=default.email if default else None,
    )
    return Scheduler(http, api_client, fetch_token(http, api_client.client_id, secret))


def managers_scheduler(http: FlaskClient, world: World) -> Scheduler:
    """A client owned by the manager that may name writer A only (like the demo's)."""
    return scheduler(http, world, owner=world.manager, authors=[world.writer_a])


def body(world: World, author: str) -> dict[str, Any]:
    return {"account": world.account.id, "text": TEXT, "author": author}


def toot(sched: Scheduler, world: World, author: str | None) -> Any:
    headers = {"X-Ghostpost-Author": author} if author is not None else {}
    return sched.post(
        f"/compat/mastodon/{world.account.id}/api/v1/statuses",
        {"status": TEXT},
        headers=headers,
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at the test database and nothing else."""
    for key in list(os.environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", database_url)
    return database_url


# --- who may be the author --------------------------------------------------------------------


def test_a_managers_client_naming_the_principal_gets_422_and_stores_nothing(
    client: FlaskClient, live: World
) -> None:
    world = live
    sched = managers_scheduler(client, world)
    before = stored(world)

    created = sched.create(body(world, world.principal.email))
    preview = sched.post("/api/v1/preview", body(world, world.principal.email))

    for response in (created, preview):
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["errors"] == NOT_ALLOWED
    assert stored(world) == before


def test_even_a_client_listing_the_principal_posts_as_them_only_if_the_principal_owns_it(
    client: FlaskClient, live: World
) -> None:
    """Lists are checked when written, and again at submission: a principal listed on someone
    else's client (e.g. before the link moved to them) is still refused."""
    world = live
    sched = scheduler(client, world, owner=world.manager, authors=[world.writer_a])
    with world.ctx.uow() as uow:  # a grant written around the service's check
        uow.api_clients.set_authors(sched.client.id, [world.writer_a.id, world.principal.id], None)
        uow.commit()
    before = stored(world)

    response = sched.create(body(world, world.principal.email))

    assert response.status_code == 422
    assert response.get_json()["errors"] == NOT_ALLOWED
    assert stored(world) == before


def test_every_author_a_client_may_not_name_gets_the_same_answer(
    client: FlaskClient, live: World
) -> None:
    world = live
    retired = directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="lee@example.test",
        name="Lee Retired",
        role=Role.WRITER,
        password=PASSWORD,
    )
    directory.assign_writer(
        world.ctx, Actor.system("test"), user_id=retired.id, account_id=world.account.id
    )
    sched = scheduler(
        client, world, owner=world.manager, authors=[world.writer_a, world.writer_b, retired]
    )
    # Writer B stays in the list but is no longer assigned; Lee is in the list but deactivated.
    directory.unassign_writer(
        world.ctx,
        Actor.for_user(world.manager),
        user_id=world.writer_b.id,
        account_id=world.account.id,
    )
    directory.set_user_active(world.ctx, Actor.system("test"), retired.id, False)
    not_in_list = scheduler(client, world, owner=world.manager, authors=[world.writer_a])
    before = stored(world)

    answers = {
        "the principal": sched.create(body(world, world.principal.email)),
        "a writer no longer assigned": sched.create(body(world, world.writer_b.email)),
        "an outsider, never assigned": sched.create(body(world, world.outsider.email)),
        "a deactivated writer": sched.create(body(world, retired.email)),
        "a writer not in the list": not_in_list.create(body(world, world.writer_b.email)),
        "an unknown email": sched.create(body(world, "nobody@example.test")),
        "the unknown email, in capitals": sched.create(body(world, "NOBODY@example.test")),
    }

    bodies = {name: (r.status_code, r.get_json()) for name, r in answers.items()}
    first = bodies["an unknown email"]
    assert first[0] == 422 and first[1]["errors"] == NOT_ALLOWED
    assert {name: answer == first for name, answer in bodies.items()} == dict.fromkeys(bodies, True)
    assert stored(world) == before
    # The writer it may name still gets through.
    assert sched.create(body(world, world.writer_a.email)).status_code == 201


def test_the_mastodon_endpoint_gives_one_answer_too(client: FlaskClient, live: World) -> None:
    world = live
    sched = scheduler(
        client, world, owner=world.manager, authors=[world.writer_a], default=world.writer_a
    )
    before = stored(world)

    answers = [
        toot(sched, world, email)
        for email in (
            world.principal.email,
            world.writer_b.email,  # assigned, not in the list
            world.outsider.email,  # not assigned
            "nobody@example.test",
        )
    ]

    first = answers[-1]
    assert first.status_code == 422
    assert first.get_json() == {
        "error": "Validation failed: The author is not one this client may name for this account."
    }
    assert all((r.status_code, r.get_json()) == (422, first.get_json()) for r in answers)
    assert stored(world) == before
    # The default author, and the author it may name, post as before.
    assert toot(sched, world, None).status_code == 200
    assert toot(sched, world, world.writer_a.email).status_code == 200


def test_a_principal_default_author_on_a_managers_client_cannot_be_set(
    client: FlaskClient, live: World
) -> None:
    world = live
    before = stored(world)
    with pytest.raises(Forbidden, match="principal"):
        clients.create_client(
            world.ctx,
            Actor.system("test"),
            name="Sneaky",
            owner_email=world.manager.email,
            scopes=["posts:write"],
            account_ids=[world.account.id],
            default_author_email=world.principal.email,
        )
    assert stored(world) == before


def test_the_principals_own_client_posts_as_the_principal(client: FlaskClient, live: World) -> None:
    world = live
    sched = scheduler(client, world, owner=world.principal, authors=[world.principal])

    response = sched.create(body(world, world.principal.email))
    preview = sched.post("/api/v1/preview", body(world, world.principal.email))

    assert response.status_code == 201, response.get_data(as_text=True)
    post = response.get_json()
    assert post["decisions"]["delegated"] is False
    assert post["text_if_published_now"] == TEXT  # no tag on the principal's own words
    assert preview.get_json()["decisions"]["delegated"] is False
    [entry] = ledger(world, LedgerTag.POST_SUBMITTED)[-1:]
    assert entry.data["delegated"] is False
    assert entry.data["submitter"] == f"client:{sched.client.client_id}"


def test_the_principals_client_naming_a_writer_submits_a_delegated_post(
    client: FlaskClient, live: World
) -> None:
    world = live
    sched = scheduler(
        client, world, owner=world.principal, authors=[world.principal, world.writer_a]
    )
    post = sched.create(body(world, world.writer_a.email)).get_json()
    assert post["decisions"]["delegated"] is True
    assert post["text_if_published_now"] == f"{TEXT} #team"


# --- granting authors on the command line -------------------------------------------------------


def test_clients_create_with_authors_and_set_authors_on_the_command_line(
    env: str, client: FlaskClient, live: World
) -> None:
    world = live
    created = invoke(
        "clients",
        "create",
        "--name",
        "Buffer",
        "--owner",
        world.manager.email,
        "--scopes",
        "posts:write",
        "--accounts",
        "@avery",
        "--authors",
        f"{world.writer_a.email},{world.writer_b.email}",
        "--author",
        world.writer_a.email,
    )
    assert created.exit_code == 0, created.output
    [entry] = ledger(world, LedgerTag.CLIENT_CREATED)[-1:]
    assert [a["email"] for a in entry.data["authors"]] == [
        world.writer_a.email,
        world.writer_b.email,
    ]
    client_id = entry.subject.removeprefix("client:")

    # The default author must stay in the list: refused by name, nothing stored.
    before = stored(world)
    dropped = invoke("clients", "set-authors", client_id, "--authors", world.writer_b.email)
    assert dropped.exit_code != 0
    assert "Jordan Park (the default author) is not among the authors" in dropped.output
    assert stored(world) == before

    narrowed = invoke(
        "clients",
        "set-authors",
        client_id,
        "--authors",
        world.writer_b.email,
        "--default-author",
        world.writer_b.email,
    )
    assert narrowed.exit_code == 0, narrowed.output
    [change] = ledger(world, LedgerTag.CLIENT_AUTHORS_CHANGED)
    assert [a["email"] for a in change.data["old"]["authors"]] == [
        world.writer_a.email,
        world.writer_b.email,
    ]
    assert change.data["new"]["default_author"]["email"] == world.writer_b.email
    assert change.actor == "system:cli"
    listed = invoke("clients", "list")
    assert f"may name {world.writer_b.email}" in listed.output


@pytest.mark.parametrize(
    ("authors", "default", "message"),
    [
        ("jordan@example.test", "sam@example.test", "Sam Rivera (the default author) is not"),
        ("avery@example.test", None, "only a client the principal's own user owns"),
        ("rita@example.test", None, "auditors never write"),
    ],
)
def test_clients_create_refuses_authors_it_may_not_grant(
    env: str, world: World, authors: str, default: str | None, message: str
) -> None:
    before = stored(world)
    args = ["clients", "create", "--name", "X", "--owner", world.manager.email]
    args += ["--scopes", "posts:write", "--accounts", "@avery", "--authors", authors]
    if default:
        args += ["--author", default]
    result = invoke(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert stored(world) == before


# --- one principal, one person -----------------------------------------------------------------


def test_an_admin_cannot_create_a_second_user_tied_to_the_principal(
    client: FlaskClient, world: World
) -> None:
    admin = directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="ada@example.test",
        name="Ada Admin",
        role=Role.ADMIN,
        password=PASSWORD,
    )
    sign_in(client, admin.email)
    before = stored(world)

    response = post_form(
        client,
        "/admin/users",
        {
            "email": "avery.too@example.test",
            "name": "Avery (assistant)",
            "role": "writer",
            "password": "long-enough-1",
            "principal_id": str(world.account.principal_id),
        },
        "/admin/users",
    )

    assert response.status_code == 403
    assert stored(world) == before
    with pytest.raises(Forbidden):  # nor through the service itself
        directory.create_user(
            world.ctx,
            Actor.for_user(admin),
            email="avery.too@example.test",
            name="Avery (assistant)",
            role=Role.WRITER,
            password="long-enough-1",
            principal_id=world.account.principal_id,
        )
    assert stored(world) == before


def test_the_operator_makes_the_first_link_and_only_the_first(env: str, world: World) -> None:
    system = Actor.system("test")
    blake = directory.create_principal(world.ctx, system, "Blake Novak")
    person = directory.create_user(
        world.ctx,
        system,
        email="blake@example.test",
        name="Blake Novak",
        role=Role.WRITER,
        password=PASSWORD,
    )

    linked = invoke("users", "link-principal", person.email, "Blake Novak")

    assert linked.exit_code == 0, linked.output
    [entry] = ledger(world, LedgerTag.PRINCIPAL_LINKED)[-1:]
    assert entry.subject == f"principal:{blake.id}"
    assert entry.data["user"]["email"] == person.email
    assert entry.actor == "system:cli"

    # A second person for a linked principal: refused by every operator path, nothing stored.
    before = stored(world)
    again = invoke("users", "link-principal", world.writer_a.email, "Blake Novak")
    assert again.exit_code != 0 and "already linked to blake@example.test" in again.output
    avery = invoke("users", "link-principal", world.writer_a.email, "Avery Chen")
    assert avery.exit_code != 0 and "already linked to avery@example.test" in avery.output
    created = invoke(
        *("users", "create", "--email", "b2@example.test", "--name", "B2", "--role", "writer"),
        *("--principal", "Blake Novak", "--password", "long-enough-1"),
    )
    assert created.exit_code != 0 and "one principal, one person" in created.output
    assert stored(world) == before


def test_the_database_refuses_a_second_user_for_a_principal(world: World) -> None:
    with world.ctx.uow() as uow, pytest.raises(IntegrityError):
        uow.users.set_principal(world.writer_a.id, world.account.principal_id)


def test_a_change_of_link_needs_the_principals_own_confirmation(
    client: FlaskClient, app: Any, world: World
) -> None:
    admin = directory.create_user(
        world.ctx,
        Actor.system("test"),
        email="ada@example.test",
        name="Ada Admin",
        role=Role.ADMIN,
        password=PASSWORD,
    )
    form = {"to_email": world.writer_a.email, "password": PASSWORD}
    before = stored(world)

    # An admin (or any other staff user) cannot move the link: the page is the principal's.
    sign_in(client, admin.email)
    assert client.get("/account/principal").status_code == 403
    assert post_form(client, "/account/principal", form).status_code == 403
    with pytest.raises(Forbidden):
        directory.hand_over_principal(
            world.ctx, Actor.for_user(admin), to_email=world.writer_a.email, password=PASSWORD
        )
    # Nor the principal's open session without the principal's password.
    avery = app.test_client()
    sign_in(avery, world.principal.email)
    wrong = post_form(avery, "/account/principal", {**form, "password": "guess-123"})
    assert wrong.status_code == 422
    assert stored(world) == before
    with world.ctx.uow() as uow:
        assert uow.users.linked_to_principal(world.account.principal_id) == world.principal

    # The principal confirms: the link moves, in the ledger, and the old user is staff again.
    done = post_form(avery, "/account/principal", form)
    assert done.status_code == 302
    with world.ctx.uow() as uow:
        now_linked = uow.users.linked_to_principal(world.account.principal_id)
        old = uow.users.get(world.principal.id)
    assert now_linked is not None and now_linked.id == world.writer_a.id
    assert old is not None and old.principal_id is None
    [entry] = ledger(world, LedgerTag.PRINCIPAL_LINK_CHANGED)
    assert entry.actor == f"user:{world.principal.id}"
    assert entry.data["from"]["email"] == world.principal.email
    assert entry.data["to"]["email"] == world.writer_a.email
    assert entry.data["confirmed_by"]["email"] == world.principal.email


def test_a_linked_principal_on_someone_elses_client_stays_refused_after_a_hand_over(
    client: FlaskClient, live: World
) -> None:
    """Writer A, granted to the manager's client as a writer, becomes the principal: the
    client's grant does not turn its posts into the principal's own."""
    world = live
    sched = managers_scheduler(client, world)
    directory.hand_over_principal(
        world.ctx,
        Actor.for_user(world.principal),
        to_email=world.writer_a.email,
        password=PASSWORD,
    )
    before = stored(world)

    response = sched.create(body(world, world.writer_a.email))

    assert response.status_code == 422
    assert response.get_json()["errors"] == NOT_ALLOWED
    assert stored(world) == before
