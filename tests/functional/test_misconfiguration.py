"""Configuration mistakes fail one post loudly, never the worker or a window."""

from __future__ import annotations

import pytest

from ghostpost.domain.states import PostState
from ghostpost.services import directory, posts
from ghostpost.services.context import Actor
from ghostpost.services.errors import Conflict
from tests.support.world import World


def test_an_account_never_connected_fails_its_post_and_the_worker_goes_on(
    world: World,
) -> None:
    system = Actor.system("test")
    x_account = directory.create_account(
        world.ctx, system, principal_id=world.account.principal_id, platform="x", handle="avery_x"
    )
    directory.assign_writer(world.ctx, system, user_id=world.writer_a.id, account_id=x_account.id)
    principal_post = world.submit(world.principal, "Hello from X", account=x_account)
    local_post = world.submit(world.principal, "Hello locally")
    world.run_worker()
    failed = world.post(principal_post.id)
    assert failed.state is PostState.FAILED
    assert (
        failed.state_reason
    ) == "x account @avery_x is not connected; a manager connects it on the Accounts page"
    assert world.post(local_post.id).state is PostState.PUBLISHED


def test_a_platform_without_any_publisher_fails_its_post_clearly(world: World) -> None:
    del world.container.publishers["x"]  # e.g. an adapters override naming a missing module
    system = Actor.system("test")
    x_account = directory.create_account(
        world.ctx, system, principal_id=world.account.principal_id, platform="x", handle="avery_x"
    )
    post = world.submit(world.principal, "Hello from X", account=x_account)
    world.run_worker()
    failed = world.post(post.id)
    assert failed.state is PostState.FAILED
    assert "no publisher configured for platform 'x'" in (failed.state_reason or "")


def test_a_windows_notice_cannot_be_cancelled_or_rejected_on_its_own(world: World) -> None:
    window = world.open_window()
    assert window.notice_post_id is not None
    with pytest.raises(Conflict):
        posts.cancel_post(world.ctx, Actor.for_user(world.manager), window.notice_post_id)
    with pytest.raises(Conflict):
        posts.reject_post(world.ctx, Actor.for_user(world.principal), window.notice_post_id, "no")
