"""Issue 12, points 3a and 4: policy changes need the principal; the notice goes out on time.

Attacks through the real web forms (CSRF and all) and, where no form exists, the services;
the worker publishes, so what followers would see is checked, not only what is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from ghostpost.domain.model import Post, ProposalStatus, Window
from ghostpost.domain.policy import PostKind, TagMode
from ghostpost.domain.states import PostState
from ghostpost.services import directory, posts, windows
from ghostpost.services.context import Actor
from ghostpost.services.errors import Forbidden, NotFound
from tests.support.web import csrf_from, post_form, sign_in
from tests.support.world import NOTICE, REMINDER, World


def form_of(window: Window, **changes: str) -> dict[str, str]:
    """The edit form as the browser sends it for `window`, with some fields changed."""
    p = window.policy
    data = {
        "name": window.name,
        "starts_at": p.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": p.ends_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "notice_text": p.notice_text,
        "notice_publish_at": window.notice_publish_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        if window.notice_publish_at
        else "",
        "reminder_text": p.reminder_text,
        "reminder_every": str(p.reminder_every),
        "reminder_mode": p.reminder_mode.value,
        "tag": p.tag,
        "tag_mode": p.tag_mode.value,
        "tag_position": p.tag_position.value,
    }
    if p.requires_approval:
        data["requires_approval"] = "1"
    data.update(changes)
    return data


def edit(client: FlaskClient, window: Window, data: dict[str, str]):  # type: ignore[no-untyped-def]
    path = f"/windows/{window.id}/edit"
    return post_form(client, path, data, path)


def stored(world: World, window: Window) -> Window:
    with world.ctx.uow() as uow:
        found = uow.windows.get(window.id)
    assert found is not None
    return found


def tags(world: World) -> list[str]:
    with world.ctx.uow() as uow:
        return [e.tag for e in uow.ledger.entries()]


def entries(world: World, tag: str) -> list[dict]:
    with world.ctx.uow() as uow:
        return [dict(e.data) for e in uow.ledger.entries() if e.tag == tag]


def post_count(world: World) -> int:
    with world.ctx.uow() as uow:
        return len(uow.posts.list_for_account(world.account.id))


def approve(world: World, post: Post) -> None:
    posts.approve_post(world.ctx, Actor.for_user(world.principal), post.id)


def live_approved_window(world: World, **options: object) -> Window:
    window = world.open_window(**options)  # type: ignore[arg-type]
    world.approve_notice(window)
    world.run_worker()  # the notice goes out (the window is live: at once)
    window = stored(world, window)
    assert window.notice_published_at is not None
    return window


def sign_out(client: FlaskClient) -> None:
    client.post("/logout", data={"csrf_token": csrf_from(client, "/home")})


def test_a_managers_weakening_edit_after_notice_approval_waits_for_the_principal(
    world: World, client: FlaskClient
) -> None:
    clock = world.container.clock
    window = live_approved_window(world, every=3, requires_approval=True)
    approved_policy = window.policy

    # The attack: tag off, N 1000, approval off, end in 2099 - through the real form.
    sign_in(client, world.manager.email)
    weakened = form_of(
        window,
        tag_mode="off",
        reminder_every="1000",
        requires_approval="",  # the checkbox unticked
        ends_at="2099-12-31T23:00",
    )
    response = edit(client, window, weakened)
    assert response.status_code == 302
    page = client.get("/windows").get_data(as_text=True)
    assert "Pending the principal&#39;s approval" in page
    assert "Change pending the principal" in page
    assert "Reminder every N posts: 3 → 1000" in page

    # Still in force: the approved policy, in the row the worker reads.
    assert stored(world, window).policy == approved_policy
    with world.ctx.uow() as uow:
        [proposal] = uow.windows.proposals_of(window.id)
    assert proposal.status is ProposalStatus.PENDING
    assert proposal.proposed_by == world.manager.id
    assert set(proposal.changes) == {"ends_at", "reminder_every", "tag_mode", "requires_approval"}
    [proposed] = entries(world, "window:change_proposed")
    assert proposed["changes"]["tag_mode"] == {
        "old": "when_fits",
        "new": "off",
        "effect": "weakens",
    }
    assert proposed["changes"]["reminder_every"]["old"] == 3
    assert proposed["changes"]["reminder_every"]["new"] == 1000
    assert proposed["proposed_by"]["email"] == world.manager.email
    assert "window:updated" not in tags(world)

    # The worker keeps the approved policy: approval still needed, tagged, reminder every 3.
    published = []
    for i in range(3):
        clock.advance(minutes=1)
        post = world.submit(world.writer_a, f"Live from the floor {i}")
        assert post.state is PostState.PENDING_APPROVAL
        approve(world, post)
        world.run_worker()
        published.append(world.post(post.id))
    assert all(p.state is PostState.PUBLISHED for p in published)
    assert all("#team" in p.final_text for p in published)
    assert published[2].final_text.endswith(REMINDER)  # the 3rd after the notice: old cadence

    # The principal sees old -> new on the Approvals page and approves through the form.
    sign_out(client)
    sign_in(client, world.principal.email)
    html = client.get("/approvals").get_data(as_text=True)
    assert f'id="proposal-{proposal.id}"' in html
    assert "Proposed by Morgan Lee" in html
    assert "<td>when fits</td><td>off</td><td>weakens the disclosure</td>" in html
    assert "<td>3</td><td>1000</td>" in html
    response = post_form(
        client, f"/approvals/proposals/{proposal.id}", {"decision": "approve"}, "/approvals"
    )
    assert response.status_code == 302
    now_in_force = stored(world, window).policy
    assert now_in_force.tag_mode is TagMode.OFF
    assert now_in_force.reminder_every == 1000
    assert now_in_force.requires_approval is False
    assert now_in_force.ends_at == datetime(2099, 12, 31, 23, 0, tzinfo=UTC)
    [approved] = entries(world, "window:change_approved")
    assert approved["approver"]["email"] == world.principal.email
    assert approved["changes"]["tag_mode"]["new"] == "off"

    # From now on the new policy applies: no approval, no tag.
    clock.advance(minutes=1)
    after = world.submit(world.writer_a, "After the principal agreed")
    assert after.state is PostState.SCHEDULED
    world.run_worker()
    assert world.post(after.id).final_text == "After the principal agreed"


def test_only_the_principal_decides_a_proposal_and_a_refusal_stores_nothing(
    world: World, client: FlaskClient
) -> None:
    window = live_approved_window(world)
    sign_in(client, world.manager.email)
    edit(client, window, form_of(window, tag_mode="off"))
    with world.ctx.uow() as uow:
        [proposal] = uow.windows.proposals_of(window.id)
    before = (len(tags(world)), post_count(world))
    answer = post_form(
        client, f"/approvals/proposals/{proposal.id}", {"decision": "approve"}, "/windows"
    )
    assert answer.status_code == 403
    # A service call by the manager (no form) is refused too; to a writer, who may not see
    # the window, the proposal does not exist.
    for someone, refusal in ((world.manager, Forbidden), (world.writer_a, NotFound)):
        with pytest.raises(refusal):
            windows.approve_proposal(world.ctx, Actor.for_user(someone), proposal.id)
        with pytest.raises(refusal):
            windows.reject_proposal(world.ctx, Actor.for_user(someone), proposal.id, "no")
    assert (len(tags(world)), post_count(world)) == before
    assert stored(world, window).policy.tag_mode is TagMode.WHEN_FITS
    # Without a CSRF token even the principal's form is refused.
    sign_out(client)
    sign_in(client, world.principal.email)
    answer = client.post(f"/approvals/proposals/{proposal.id}", data={"decision": "approve"})
    assert answer.status_code == 400
    assert stored(world, window).policy.tag_mode is TagMode.WHEN_FITS


def test_the_principal_rejects_a_proposal_with_a_comment_the_managers_see(
    world: World, client: FlaskClient
) -> None:
    window = live_approved_window(world)
    sign_in(client, world.manager.email)
    edit(client, window, form_of(window, reminder_every="50"))
    with world.ctx.uow() as uow:
        [proposal] = uow.windows.proposals_of(window.id)
    sign_out(client)
    sign_in(client, world.principal.email)
    response = post_form(
        client,
        f"/approvals/proposals/{proposal.id}",
        {"decision": "reject", "comment": "Keep it at 10 during the keynote"},
        "/approvals",
    )
    assert response.status_code == 302
    assert stored(world, window).policy.reminder_every == 10
    [rejected] = entries(world, "window:change_rejected")
    assert rejected["comment"] == "Keep it at 10 during the keynote"
    # Deciding twice is a conflict.
    again = post_form(
        client, f"/approvals/proposals/{proposal.id}", {"decision": "approve"}, "/approvals"
    )
    assert again.status_code == 409
    sign_out(client)
    sign_in(client, world.manager.email)
    page = client.get("/windows").get_data(as_text=True)
    assert "Change rejected" in page
    assert "Keep it at 10 during the keynote" in page


def test_strengthening_changes_apply_at_once(world: World, client: FlaskClient) -> None:
    window = live_approved_window(world)
    sign_in(client, world.manager.email)
    stronger = form_of(
        window, reminder_every="4", tag_mode="required", requires_approval="1", ends_at=""
    )
    stronger["ends_at"] = (window.policy.ends_at - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = edit(client, window, stronger)
    assert response.status_code == 302
    policy = stored(world, window).policy
    assert (policy.reminder_every, policy.tag_mode, policy.requires_approval) == (
        4,
        TagMode.REQUIRED,
        True,
    )
    assert policy.ends_at == window.policy.ends_at - timedelta(hours=2)
    with world.ctx.uow() as uow:
        assert uow.windows.proposals_of(window.id) == []
    [updated] = entries(world, "window:updated")
    assert updated["changes"]["reminder_every"] == {"old": 10, "new": 4}


def test_a_mixed_edit_applies_the_stronger_part_and_proposes_the_rest(
    world: World, client: FlaskClient
) -> None:
    window = live_approved_window(world)
    sign_in(client, world.manager.email)
    response = edit(client, window, form_of(window, reminder_every="5", tag_mode="off"))
    assert response.status_code == 302
    flashed = client.get("/windows").get_data(as_text=True)
    assert "applied at once: Reminder every N posts" in flashed
    policy = stored(world, window).policy
    assert (policy.reminder_every, policy.tag_mode) == (5, TagMode.WHEN_FITS)
    with world.ctx.uow() as uow:
        [proposal] = uow.windows.proposals_of(window.id)
    assert set(proposal.changes) == {"tag_mode"}


def test_a_shorter_window_moved_later_is_proposed_whole(world: World) -> None:
    # Later start (stronger) with a much later end (weaker): the start alone would end the
    # window before it starts, so nothing applies until the principal agrees.
    start = world.container.clock.now() + timedelta(days=2)
    window = world.open_window(starts_at=start, hours=4)
    world.approve_notice(window)
    edit_result = windows.update_window(
        world.ctx,
        Actor.for_user(world.manager),
        window.id,
        windows.WindowSpec(
            account_id=world.account.id,
            name="Conference",
            starts_at=start + timedelta(days=1),
            ends_at=start + timedelta(days=1, hours=4),
            notice_text=NOTICE,
            reminder_text=REMINDER,
        ),
    )
    assert edit_result.proposal is not None
    assert set(edit_result.proposal.changes) == {"starts_at", "ends_at"}
    assert stored(world, window).policy == window.policy


def test_the_principals_own_edit_applies_at_once(world: World, client: FlaskClient) -> None:
    window = live_approved_window(world)
    sign_in(client, world.principal.email)
    response = edit(client, window, form_of(window, tag_mode="off", reminder_every="20"))
    assert response.status_code == 302
    policy = stored(world, window).policy
    assert (policy.tag_mode, policy.reminder_every) == (TagMode.OFF, 20)
    assert "window:change_proposed" not in tags(world)


def test_before_the_notice_is_approved_edits_apply_and_the_principal_sees_the_policy(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window()
    sign_in(client, world.manager.email)
    edit(client, window, form_of(window, tag_mode="off", reminder_every="40"))
    assert stored(world, window).policy.tag_mode is TagMode.OFF
    sign_out(client)
    sign_in(client, world.principal.email)
    html = client.get("/approvals").get_data(as_text=True)
    policy_block = html[html.index(f'id="notice-policy-{window.id}"') :]
    assert "every 40 posts" in policy_block
    assert "<dt>Tag</dt><dd>off</dd>" in policy_block
    assert "Notice goes out" in policy_block


def test_approving_a_notice_from_a_stale_page_is_refused(world: World, client: FlaskClient) -> None:
    window = world.open_window()
    sign_in(client, world.principal.email)
    token = csrf_from(client, "/approvals")
    seen = re.search(r'name="policy" value="([0-9a-f]+)"', client.get("/approvals").text)
    assert seen
    # Meanwhile a manager loosens the tag (allowed: the notice is not yet approved).
    windows.update_window(
        world.ctx,
        Actor.for_user(world.manager),
        window.id,
        windows.WindowSpec(
            account_id=world.account.id,
            name="Conference",
            starts_at=window.policy.starts_at,
            ends_at=window.policy.ends_at,
            notice_text=NOTICE,
            reminder_text=REMINDER,
            tag_mode=TagMode.OFF,
        ),
    )
    before = len(tags(world))
    answer = client.post(
        f"/approvals/notices/{window.id}", data={"csrf_token": token, "policy": seen.group(1)}
    )
    assert answer.status_code == 409
    assert "changed after you opened this page" in answer.get_data(as_text=True)
    assert stored(world, window).notice_approved_at is None
    assert len(tags(world)) == before


def test_turning_on_approval_sends_queued_delegated_posts_to_the_principal(
    world: World, client: FlaskClient
) -> None:
    clock = world.container.clock
    window = world.open_window()
    # Held: submitted before the notice is out.
    held = world.submit(world.writer_a, "Held for the notice")
    world.run_worker()
    assert world.post(held.id).state is PostState.HELD
    world.approve_notice(window)
    world.run_worker()  # notice out; the held post is released and published
    later = world.submit(world.writer_b, "Scheduled for later", clock.now() + timedelta(hours=1))
    own = world.submit(world.principal, "My own words", clock.now() + timedelta(hours=1))
    assert world.post(later.id).state is PostState.SCHEDULED

    sign_in(client, world.manager.email)
    response = edit(client, stored(world, window), form_of(window, requires_approval="1"))
    assert response.status_code == 302
    assert stored(world, window).policy.requires_approval is True
    assert world.post(later.id).state is PostState.PENDING_APPROVAL
    assert world.post(own.id).state is PostState.SCHEDULED  # the principal's own post
    [sent] = entries(world, "post:sent_for_approval")
    assert sent["window_id"] == window.id and sent["was"] == "scheduled"
    clock.advance(hours=2)
    world.run_worker()
    assert world.post(later.id).state is PostState.PENDING_APPROVAL  # never published unseen
    assert world.post(own.id).state is PostState.PUBLISHED


def test_turning_on_approval_leaves_a_post_held_for_a_withdrawn_grant_held(
    world: World, client: FlaskClient
) -> None:
    clock = world.container.clock
    window = live_approved_window(world)
    later = world.submit(
        world.writer_a, "Written before Jordan left", clock.now() + timedelta(hours=1)
    )
    directory.unassign_writer(
        world.ctx,
        Actor.for_user(world.manager),
        user_id=world.writer_a.id,
        account_id=world.account.id,
    )
    assert world.post(later.id).decisions["hold"]["kind"] == "grant_withdrawn"

    sign_in(client, world.manager.email)
    response = edit(
        client, stored(world, window), form_of(stored(world, window), requires_approval="1")
    )
    assert response.status_code == 302
    # The principal never sees it as approvable: only a manager's release (after the grant is
    # back) may move it, and the release then sends it to the principal.
    held = world.post(later.id)
    assert held.state is PostState.HELD and held.decisions["hold"]["kind"] == "grant_withdrawn"
    assert entries(world, "post:sent_for_approval") == []


def test_a_notice_approved_34_days_ahead_goes_out_at_its_notice_time(
    world: World, client: FlaskClient
) -> None:
    clock = world.container.clock
    current = live_approved_window(world, hours=24 * 40)  # another window is live meanwhile
    start = clock.now() + timedelta(days=41)
    far = world.open_window(starts_at=start, hours=8)
    assert far.notice_publish_at == start - timedelta(minutes=60)  # the default lead
    sign_in(client, world.principal.email)
    response = post_form(client, f"/approvals/notices/{far.id}", {}, "/approvals")
    assert response.status_code == 302
    flashed = client.get("/approvals").get_data(as_text=True)
    assert "goes out 2027-01-01 08:00 UTC" in flashed
    notice = world.post(stored(world, far).notice_post_id or 0)
    assert notice.state is PostState.SCHEDULED
    assert notice.publish_at == start - timedelta(minutes=60)

    world.run_worker()
    assert world.post(notice.id).state is PostState.SCHEDULED  # not in the middle of `current`
    clock.advance(days=40)
    world.run_worker()
    assert stored(world, current).notice_published_at is not None
    clock.set(start - timedelta(minutes=61))
    world.run_worker()
    assert world.post(notice.id).state is PostState.SCHEDULED
    clock.advance(minutes=2)
    world.run_worker()
    assert world.post(notice.id).state is PostState.PUBLISHED
    assert stored(world, far).notice_published_at is not None


def test_the_notice_time_is_set_in_the_form_moves_the_scheduled_notice_and_not_past_the_end(
    world: World, client: FlaskClient
) -> None:
    clock = world.container.clock
    start = clock.now() + timedelta(days=3)
    sign_in(client, world.manager.email)
    data = form_of(world.open_window(starts_at=start, hours=8), notice_publish_at="")
    data.update(name="Summit", account_id=str(world.account.id))
    data["starts_at"] = (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data["ends_at"] = (start + timedelta(days=2, hours=8)).strftime("%Y-%m-%dT%H:%M")
    data["notice_publish_at"] = (start + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    refused = post_form(client, "/windows/new", data, "/windows/new")
    assert refused.status_code == 422
    assert 'id="notice_publish_at-error">Must not be after the end.' in refused.text

    data["notice_publish_at"] = (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert post_form(client, "/windows/new", data, "/windows/new").status_code == 302
    with world.ctx.uow() as uow:
        window = uow.windows.list_for_account(world.account.id)[-1]
    assert window.notice_publish_at == start + timedelta(days=1)
    world.approve_notice(window)
    notice = world.post(window.notice_post_id or 0)
    assert notice.publish_at == start + timedelta(days=1)

    # Moving the notice time after approval moves the scheduled notice.
    moved = form_of(
        stored(world, window),
        notice_publish_at=(start + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"),
    )
    assert edit(client, window, moved).status_code == 302
    assert world.post(notice.id).publish_at == start + timedelta(hours=5)
    [updated] = entries(world, "window:updated")
    assert set(updated["changes"]) == {"notice_publish_at"}


def test_the_principal_rejects_a_notice_with_a_comment_and_an_edit_sends_it_back(
    world: World, client: FlaskClient
) -> None:
    window = world.open_window()
    early = world.submit(world.writer_a, "Too early")
    sign_in(client, world.principal.email)
    path = f"/approvals/notices/{window.id}/reject"
    before = len(tags(world))
    empty = post_form(client, path, {"comment": "  "}, "/approvals")
    assert empty.status_code == 422 and len(tags(world)) == before
    response = post_form(client, path, {"comment": "Say “my team”, not “my staff”"}, "/approvals")
    assert response.status_code == 302
    assert "No notice awaits your approval." in client.get("/approvals").text
    [rejected] = entries(world, "notice:rejected")
    assert rejected["comment"] == "Say “my team”, not “my staff”"
    world.run_worker()
    notice = world.post(stored(world, window).notice_post_id or 0)
    assert notice.state is PostState.PENDING_APPROVAL  # never published
    assert world.post(early.id).state is PostState.HELD  # and nothing delegated goes out

    sign_out(client)
    sign_in(client, world.manager.email)
    page = client.get("/windows").text
    assert "Rejected by Avery Chen" in page
    assert "Say “my team”, not “my staff”" in page
    assert (
        edit(
            client,
            stored(world, window),
            form_of(window, notice_text="During the show my team writes some posts."),
        ).status_code
        == 302
    )
    sign_out(client)
    sign_in(client, world.principal.email)
    html = client.get("/approvals").text
    assert "During the show my team writes some posts." in html
    assert post_form(client, f"/approvals/notices/{window.id}", {}, "/approvals").status_code == 302
    world.run_worker()
    assert world.post(notice.id).state is PostState.PUBLISHED
    assert world.post(notice.id).kind is PostKind.NOTICE
