"""The guards of issue 18 part 3, attacked through the real interfaces: watched hashtags and terms
and first-use hashtags hold a delegated post for the principal (also in a thread's later part
and in a group); only the principal weakens the guards; a window's reply_policy holds or refuses
delegated replies through the API and the Mastodon face."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select

from ghostpost.db.models import AccountHashtagRow, LedgerEntryRow, PostRow
from ghostpost.domain.policy import ReplyPolicy
from ghostpost.services import clients, directory, posts
from ghostpost.services.context import Actor
from tests.support.api import Scheduler, create_api_client, fetch_token, scheduler_for
from tests.support.web import post_form, sign_in
from tests.support.world import World

SYSTEM = Actor.system("test")
FIRST_USE = "first use of #{}: check what it is about before it goes out"


def stored(world: World) -> tuple[int, int]:
    with world.container.sessions() as session:
        posts = session.scalar(select(func.count()).select_from(PostRow))
        entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    return int(posts or 0), int(entries or 0)


def body(world: World, text: str, **extra: object) -> dict:  # type: ignore[type-arg]
    return {"account": world.account.id, "text": text, "author": world.writer_a.email, **extra}


def created(scheduler: Scheduler, payload: dict) -> dict:  # type: ignore[type-arg]
    response = scheduler.create(payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def state(scheduler: Scheduler, public_id: str) -> dict:  # type: ignore[type-arg]
    return scheduler.get(f"/api/v1/posts/{public_id}").get_json()  # type: ignore[no-any-return]


def guards_path(world: World) -> str:
    return f"/principals/{world.account.principal_id}/guards"


def set_guards(client: FlaskClient, world: World, watched: str, first_use: bool = True) -> int:
    data = {"watched": watched, **({"first_use_hashtags": "1"} if first_use else {})}
    return post_form(client, guards_path(world), data, guards_path(world)).status_code


def test_attack_watched_terms_and_hashtags_hold_even_a_threads_later_part(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.principal.email)
    assert set_guards(client, world, "layoffs\n#Strike, pay cut") == 302
    scheduler = scheduler_for(client, world)

    thread = created(
        scheduler, body(world, "Day two starts at 10", thread=["More on LAYOFFS later."])
    )
    phrase = created(scheduler, body(world, "No pay\ncut this year"))
    hashtag = created(scheduler, body(world, "Solidarity #STRIKE"))
    inside_a_word = created(scheduler, body(world, "Relayoffsville is a place"))
    world.run_worker()

    first = state(scheduler, thread["id"])
    assert first["state"] == "pending_approval"
    assert first["approval_reasons"] == ["watched term 'layoffs'"]
    assert "watched term 'layoffs'" in first["state_reason"]
    with world.ctx.uow() as uow:
        parts = uow.posts.in_thread(thread["id"])
    assert [p.state.value for p in parts] == ["pending_approval", "pending_approval"]
    assert state(scheduler, phrase["id"])["approval_reasons"] == ["watched term 'pay cut'"]
    assert state(scheduler, hashtag["id"])["approval_reasons"][0] == "watched hashtag #strike"
    assert state(scheduler, inside_a_word["id"])["state"] == "published"

    page = client.get("/approvals").get_data(as_text=True)
    assert "watched term &#39;layoffs&#39;" in page and "watched hashtag #strike" in page

    # The compose form (a writer's session, CSRF): held too, and the writer is told why.
    sign_in(client, world.writer_a.email)
    composed = post_form(
        client,
        "/compose",
        {
            "account_id": str(world.account.id),
            "text": "Layoffs?",
            "publish_at": "",
            "timezone": "UTC",
            "action": "submit",
        },
        "/compose",
    )
    assert composed.status_code == 302
    told = client.get(composed.headers["Location"]).get_data(as_text=True)
    assert "Why: watched term &#39;layoffs&#39;." in told
    with world.container.sessions() as session:
        states = session.scalars(select(PostRow.state).where(PostRow.submitted_text == "Layoffs?"))
        assert list(states) == ["pending_approval"]


def test_attack_a_first_use_hashtag_waits_for_the_principal_also_in_a_group(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    second = directory.create_account(
        world.ctx, SYSTEM, principal_id=world.account.principal_id, platform="local", handle="av2"
    )
    directory.assign_writer(world.ctx, SYSTEM, user_id=world.writer_a.id, account_id=second.id)
    world.approve_notice(world.open_window(account=second))
    scheduler = scheduler_for(client, world, account_ids=[world.account.id, second.id])
    # The cast's principal turned first use off (tests.support.world); turning it on is
    # stronger, and a new principal has it on.
    sign_in(client, world.principal.email)
    assert set_guards(client, world, "") == 302
    blake = directory.create_principal(world.ctx, SYSTEM, "Blake Stone")
    page = client.get(f"/principals/{blake.id}/guards").get_data(as_text=True)
    assert 'name="first_use_hashtags" value="1" checked' in page

    post = created(scheduler, body(world, "See you at the #Keynote #team"))
    group = scheduler.create(
        {
            "accounts": [world.account.id, second.id],
            "text": "#Fresh",
            "author": world.writer_a.email,
        }
    )
    assert group.status_code == 201, group.get_json()
    world.run_worker()
    held = state(scheduler, post["id"])
    assert held["state"] == "pending_approval"
    assert held["approval_reasons"] == [FIRST_USE.format("keynote")]  # never #team
    for member in group.get_json()["posts"]:
        assert state(scheduler, member["id"])["approval_reasons"] == [FIRST_USE.format("fresh")]

    # The principal approves it (web form); once published, #keynote is no first use.
    decided = post_form(
        client, f"/approvals/posts/{post['id']}", {"decision": "approve"}, "/approvals"
    )
    assert decided.status_code == 302
    world.run_worker()
    assert state(scheduler, post["id"])["state"] == "published"
    with world.container.sessions() as session:
        names = set(session.scalars(select(AccountHashtagRow.name)))
    assert {"keynote", "team"} <= names
    again = created(scheduler, body(world, "Back at the #keynote"))
    assert state(scheduler, again["id"])["state"] == "scheduled"

    # The principal (only) turns first use off: the group's hashtag then goes straight out.
    assert set_guards(client, world, "", first_use=False) == 302
    later = created(scheduler, body(world, "More #Fresh news"))
    assert state(scheduler, later["id"])["state"] == "scheduled"


def test_attack_nobody_but_the_principal_weakens_the_guards(
    client: FlaskClient, world: World
) -> None:
    world.approve_notice(world.open_window())
    sign_in(client, world.writer_a.email)
    assert client.get(guards_path(world)).status_code == 403
    assert set_guards(client, world, "", first_use=False) == 403

    sign_in(client, world.manager.email)
    assert set_guards(client, world, "layoffs") == 302  # stronger: at once
    before = stored(world)
    response = post_form(client, guards_path(world), {"watched": ""}, guards_path(world))
    assert response.status_code == 403
    assert "Only Avery Chen can weaken" in response.get_data(as_text=True)
    assert stored(world) == before

    # Through the API: a client owned by the manager cannot; the principal's own client can.
    manager_client = scheduler_for(client, world, scopes=("windows:read", "guards:write"))
    path = f"/api/v1/accounts/{world.account.id}/guards"
    weaker = {"watched": [], "first_use_hashtags": False}
    refused = manager_client.http.put(path, json=weaker, headers=manager_client.auth)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert manager_client.get(path).get_json() == {
        "principal": world.account.principal_id,
        "watched": ["layoffs"],
        "first_use_hashtags": True,
    }
    reader = scheduler_for(client, world, scopes=("windows:read",))
    assert reader.http.put(path, json=weaker, headers=reader.auth).status_code == 403
    record, secret = create_api_client(
        world, name="Own", scopes=("guards:write",), owner=world.principal
    )
    own = {"Authorization": f"Bearer {fetch_token(client, record.client_id, secret)}"}
    assert client.put(path, json=weaker, headers=own).status_code == 200
    assert manager_client.get(path).get_json()["watched"] == []

    # A writer's post with the term now goes out (the principal chose so).
    scheduler = scheduler_for(client, world)
    post = created(scheduler, body(world, "On layoffs and #newthings"))
    assert state(scheduler, post["id"])["state"] == "scheduled"


def test_attack_replies_through_the_api_and_the_mastodon_face(
    client: FlaskClient, world: World
) -> None:
    window = world.approve_notice(world.open_window())
    scheduler = scheduler_for(client, world)
    parent = created(scheduler, body(world, "Keynote at 10"))
    world.run_worker()

    # approve (the default): held for the principal, never published before.
    reply = created(scheduler, body(world, "Thanks!", in_reply_to=parent["id"]))
    world.run_worker()
    held = state(scheduler, reply["id"])
    assert held["state"] == "pending_approval"
    assert held["approval_reasons"] == [
        "a reply through the API or the Mastodon face: a person approves it"
    ]

    record, secret = clients.create_client(
        world.ctx,
        SYSTEM,
        name="Compat",
        owner_email=world.manager.email,
        scopes=["posts:write", "posts:read"],
        account_ids=[world.account.id],
        default_author_email=world.writer_a.email,
    )
    headers = {"Authorization": f"Bearer {fetch_token(client, record.client_id, secret)}"}
    statuses = f"/compat/mastodon/{world.account.id}/api/v1/statuses"
    face_parent = client.post(statuses, json={"status": "Doors open"}, headers=headers)
    assert face_parent.status_code == 200, face_parent.get_json()
    world.run_worker()
    face = client.post(
        statuses,
        json={"status": "Sorry to hear", "in_reply_to_id": face_parent.get_json()["id"]},
        headers=headers,
    )
    assert face.status_code == 200, face.get_json()
    world.run_worker()
    face_reply = face.get_json()["ghostpost"]["id"]
    assert state(scheduler, face_reply)["state"] == "pending_approval"
    # Moving it (as the face's scheduled_statuses PUT does, for the client that sent it)
    # keeps it waiting for the principal.
    moved = posts.reschedule_post(
        world.ctx,
        Actor.for_client(record.client_id, frozenset({world.account.id})),
        int(face.get_json()["id"]),
        world.container.clock.now() + timedelta(hours=1),
    )
    assert moved.state.value == "pending_approval"
    assert "a person approves it" in (moved.state_reason or "")

    # A manager turns replies to refuse (stronger: at once); a reply then stores nothing.
    sign_in(client, world.manager.email)
    edit = f"/windows/{window.id}/edit"
    page = client.get(edit).get_data(as_text=True)
    assert 'name="reply_policy"' in page
    form = _window_form(world, reply_policy="refuse")
    assert post_form(client, edit, form, edit).status_code == 302
    before = stored(world)
    refused = scheduler.create(body(world, "Thanks again!", in_reply_to=parent["id"]))
    assert refused.status_code == 422
    assert refused.get_json()["refusal"]["code"] == "replies_refused"
    face_refused = client.post(
        statuses,
        json={"status": "x", "in_reply_to_id": face_parent.get_json()["id"]},
        headers=headers,
    )
    assert face_refused.status_code == 422
    assert stored(world) == before

    # Allowing them weakens the policy: a proposal for the principal, not in force.
    assert (
        post_form(client, edit, _window_form(world, reply_policy="allow"), edit).status_code == 302
    )
    assert scheduler.create(body(world, "Hm", in_reply_to=parent["id"])).status_code == 422
    windows = scheduler.get(f"/api/v1/windows?account={world.account.id}").get_json()["items"]
    [shown] = [w for w in windows if w["id"] == window.id]
    assert shown["reply_policy"] == "refuse"
    assert shown["pending_change"]["changes"]["reply_policy"]["new"] == "allow"


def _window_form(world: World, **changes: str) -> dict[str, str]:
    """The edit form of the world's window as it stands, with `changes`."""
    with world.ctx.uow() as uow:
        [window] = uow.windows.list_for_account(world.account.id)
    policy = window.policy
    data = {
        "name": window.name,
        "account_id": str(window.account_id),
        "starts_at": policy.starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": policy.ends_at.strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "notice_text": policy.notice_text,
        "reminder_text": policy.reminder_text,
        "reminder_every": str(policy.reminder_every),
        "reminder_mode": policy.reminder_mode.value,
        "tag": policy.tag,
        "tag_mode": policy.tag_mode.value,
        "tag_position": policy.tag_position.value,
        "reply_policy": policy.reply_policy.value,
        "reason": policy.reason,
    }
    data.update(changes)
    return data


def test_a_window_that_allows_replies_lets_them_out(client: FlaskClient, world: World) -> None:
    world.approve_notice(world.open_window(reply_policy=ReplyPolicy.ALLOW))
    scheduler = scheduler_for(client, world)
    parent = created(scheduler, body(world, "Keynote at 10"))
    world.run_worker()
    reply = created(scheduler, body(world, "Thanks!", in_reply_to=parent["id"]))
    world.run_worker()
    assert state(scheduler, reply["id"])["state"] == "published"
