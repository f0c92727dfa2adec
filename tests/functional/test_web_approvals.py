"""The principal's approvals page: window notices and delegated posts, approve and reject."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from ghostpost.bootstrap import Container
from ghostpost.db.models import PostRow
from ghostpost.domain.model import Post, User
from ghostpost.domain.states import PostState
from tests.support.web import csrf_from, post_form, sign_in
from tests.support.world import NOTICE, World


def ledger(world: World, subject: str) -> list[tuple[str, dict[str, object]]]:
    with world.ctx.uow() as uow:
        return [(e.tag, dict(e.data)) for e in uow.ledger.entries() if e.subject == subject]


def pending_post(world: World, text: str = "Backstage with the speakers") -> Post:
    window = world.open_window(requires_approval=True)
    world.approve_notice(window)
    world.run_worker()
    post = world.submit(world.writer_a, text)
    assert post.state is PostState.PENDING_APPROVAL
    return post


@pytest.mark.parametrize("who", ["manager", "writer_a", "auditor", "outsider"])
def test_only_a_principal_opens_approvals(world: World, client: FlaskClient, who: str) -> None:
    window = world.open_window()
    user: User = getattr(world, who)
    sign_in(client, user.email)
    assert client.get("/approvals").status_code == 403
    response = post_form(client, f"/approvals/notices/{window.id}", {}, "/queue")
    assert response.status_code == 403
    home = client.get("/queue").get_data(as_text=True)
    assert 'href="/approvals"' not in home  # not offered in the navigation either


def test_the_principal_approves_a_window_notice(world: World, client: FlaskClient) -> None:
    window = world.open_window()
    sign_in(client, world.principal.email)
    assert client.get("/home").headers["Location"].endswith("/approvals")
    html = client.get("/approvals").get_data(as_text=True)
    assert "Conference · @avery" in html
    assert NOTICE in html
    assert "2026-11-21 09:00 UTC</time> – <time" in html and ">2026-11-21 17:00 UTC</time>" in html
    assert "drafted by Morgan Lee" in html
    assert ">Approve notice</button>" in html
    assert 'name="csrf_token"' in html
    response = post_form(client, f"/approvals/notices/{window.id}", {}, "/approvals")
    assert response.status_code == 302
    after = client.get("/approvals").get_data(as_text=True)
    assert "Notice of “Conference” approved; it goes out now." in after
    assert "No notice awaits your approval." in after
    with world.ctx.uow() as uow:
        stored = uow.windows.get(window.id)
        assert stored is not None and stored.notice_approved_by == world.principal.id
        assert stored.notice_post_id is not None
        notice = uow.posts.get(stored.notice_post_id)
    assert notice is not None and notice.state is PostState.SCHEDULED
    assert [tag for tag, _ in ledger(world, f"post:{notice.public_id}")] == ["notice:approved"]
    # Approving twice (a stale page) is a conflict shown on the page, not a crash.
    again = post_form(client, f"/approvals/notices/{window.id}", {}, "/approvals")
    assert again.status_code == 409
    assert "already approved" in again.get_data(as_text=True)


def test_the_principal_approves_a_delegated_post_with_a_comment(
    world: World, client: FlaskClient
) -> None:
    post = pending_post(world)
    sign_in(client, world.principal.email)
    html = client.get("/approvals").get_data(as_text=True)
    assert "By Jordan Park for @avery" in html
    assert "Backstage with the speakers #team" in html  # the final text, tag included
    assert "#team will be added" in html
    assert f'<label for="comment-{post.public_id}">' in html
    assert ">Approve</button>" in html and ">Reject</button>" in html
    response = post_form(
        client,
        f"/approvals/posts/{post.public_id}",
        {"decision": "approve", "comment": "Nice one"},
        "/approvals",
    )
    assert response.status_code == 302
    approved = world.post(post.id)
    assert approved.state is PostState.SCHEDULED
    assert approved.approved_by == world.principal.id
    tag, data = ledger(world, f"post:{post.public_id}")[-1]
    assert tag == "post:approved" and data["comment"] == "Nice one"
    after = client.get("/approvals").get_data(as_text=True)
    assert "Approved the post by Jordan Park; it is scheduled." in after
    assert "No delegated post awaits your approval." in after


def test_the_principal_rejects_a_post_with_a_comment(world: World, client: FlaskClient) -> None:
    post = pending_post(world, "A joke that will not land")
    sign_in(client, world.principal.email)
    response = post_form(
        client,
        f"/approvals/posts/{post.public_id}",
        {"decision": "reject", "comment": "Not on brand"},
        "/approvals",
    )
    assert response.status_code == 302
    rejected = world.post(post.id)
    assert rejected.state is PostState.REFUSED
    assert rejected.state_reason == "rejected by Avery Chen: Not on brand"
    assert ledger(world, f"post:{post.public_id}")[-1][0] == "post:rejected"
    # The writer sees why in the queue.
    client.post("/logout", data={"csrf_token": csrf_from(client, "/approvals")})
    sign_in(client, world.writer_a.email)
    assert "rejected by Avery Chen: Not on brand" in client.get("/queue").get_data(as_text=True)


def test_nobody_approves_their_own_post_and_the_page_says_so(
    world: World, client: FlaskClient, container: Container
) -> None:
    post = pending_post(world)
    with container.sessions() as db:  # a post the principal wrote that still awaits approval
        db.execute(
            update(PostRow).where(PostRow.id == post.id).values(author_id=world.principal.id)
        )
        db.commit()
    sign_in(client, world.principal.email)
    response = post_form(
        client,
        f"/approvals/posts/{post.public_id}",
        {"decision": "approve", "comment": "keep me"},
        "/approvals",
    )
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Nobody approves their own post." in html
    assert 'id="approvals-error"' in html
    assert ">\nkeep me</textarea>" in html  # the comment is kept
    assert world.post(post.id).state is PostState.PENDING_APPROVAL


def test_approval_forms_are_checked(world: World, client: FlaskClient) -> None:
    post = pending_post(world)
    sign_in(client, world.principal.email)
    path = f"/approvals/posts/{post.public_id}"
    assert client.post(path, data={"decision": "approve"}).status_code == 400  # no CSRF token
    assert post_form(client, path, {"decision": "maybe"}, "/approvals").status_code == 400
    long = post_form(client, path, {"decision": "reject", "comment": "x" * 2001}, "/approvals")
    assert long.status_code == 422
    assert post_form(client, "/approvals/posts/nope", {"decision": "approve"}).status_code == 404
    assert world.post(post.id).state is PostState.PENDING_APPROVAL
    # Deciding twice: the second answer is a conflict with the reason.
    assert post_form(client, path, {"decision": "approve"}, "/approvals").status_code == 302
    again = post_form(client, path, {"decision": "reject"}, "/approvals")
    assert again.status_code == 409
    assert "Only posts awaiting approval can be rejected" in again.get_data(as_text=True)


def test_the_principals_comments_reach_the_writer(world: World, client: FlaskClient) -> None:
    approved = pending_post(world, "Approve me")
    rejected = world.submit(world.writer_a, "Reject me")
    sign_in(client, world.principal.email)
    for post, decision, comment in (
        (approved, "approve", "Nice, shorter next time"),
        (rejected, "reject", "Not on brand"),
    ):
        data = {"decision": decision, "comment": comment}
        assert (
            post_form(client, f"/approvals/posts/{post.public_id}", data, "/approvals").status_code
            == 302
        )
    client.post("/logout", data={"csrf_token": csrf_from(client, "/queue")})
    sign_in(client, world.writer_a.email)
    html = client.get(f"/posts/{approved.public_id}").get_data(as_text=True)
    assert "Approved by Avery Chen" in html and "Nice, shorter next time" in html
    html = client.get(f"/posts/{rejected.public_id}").get_data(as_text=True)
    assert "Rejected by Avery Chen" in html and "Not on brand" in html
    assert "Not on brand" in client.get("/queue?state=closed").get_data(as_text=True)


def test_a_rejected_post_is_edited_and_resubmitted(world: World, client: FlaskClient) -> None:
    post = pending_post(world, "First try")
    sign_in(client, world.principal.email)
    data = {"decision": "reject", "comment": "Say it warmer"}
    post_form(client, f"/approvals/posts/{post.public_id}", data, "/approvals")
    client.post("/logout", data={"csrf_token": csrf_from(client, "/queue")})
    sign_in(client, world.writer_a.email)
    html = client.get(f"/posts/{post.public_id}").get_data(as_text=True)
    link = f"/compose?account={world.account.id}&amp;from={post.public_id}"
    assert f'href="{link}"' in html and "Edit and resubmit" in html
    form = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "First try</textarea>" in form and f'name="resubmits" value="{post.public_id}"' in form
    sent = {
        "csrf_token": csrf_from(client, "/compose"),
        "account_id": str(world.account.id),
        "text": "Second, warmer try",
        "publish_at": "",
        "timezone": "UTC",
        "action": "submit",
        "resubmits": post.public_id,
    }
    response = client.post("/compose", data=sent)
    assert response.status_code == 302
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    assert world.post(post.id).state is PostState.REFUSED  # the rejected one stays on record
    [(tag, entry)] = ledger(world, f"post:{new_id}")
    assert tag == "post:submitted" and entry["extra"] == {"resubmits": post.public_id}
    assert entry["state"] == "pending_approval"  # the principal decides again
    # Only a rejected post the writer can see may be named.
    other = world.submit(world.writer_b, "Not rejected")
    forged = {**sent, "resubmits": other.public_id, "csrf_token": csrf_from(client, "/compose")}
    assert client.post("/compose", data=forged).status_code == 409
    unknown = {**forged, "resubmits": "nope"}
    assert client.post("/compose", data=unknown).status_code == 404
