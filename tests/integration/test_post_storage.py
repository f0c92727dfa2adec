"""A new post comes back from either way of storing it exactly as it is read afterwards."""

from __future__ import annotations

from datetime import timedelta

from ghostpost.domain.model import NewPost, Source
from ghostpost.domain.policy import PostKind
from ghostpost.domain.states import PostState
from tests.conftest import START
from tests.support.world import World


def _new_post(world: World, key: str) -> NewPost:
    return NewPost(
        public_id=f"public-{key}",
        account_id=world.account.id,
        kind=PostKind.REGULAR,
        state=PostState.PENDING_APPROVAL,
        state_reason="awaiting the principal's approval",
        author_id=world.writer_a.id,
        submitter=f"user:{world.writer_a.id}",
        source=Source.API,
        submitted_text="Backstage",
        final_text="Backstage #team",
        idempotency_key=key,
        created_at=START,
        publish_at=START + timedelta(hours=1),
        decisions={"delegated": True, "submission": {"outcome": "publish"}},
    )


def test_the_orm_and_the_core_insert_return_the_post_as_stored(world: World) -> None:
    with world.ctx.uow() as uow:
        through_orm = uow.posts.add(_new_post(world, "orm"))
        through_core = uow.submissions.add_post(_new_post(world, "core"))
        uow.commit()
    with world.ctx.uow(read_only=True) as uow:
        assert uow.posts.get(through_orm.id) == through_orm
        assert uow.posts.get(through_core.id) == through_core
    assert through_core.attempts == 0 and through_core.published_at is None
