"""Checks of a published timeline against DESIGN.md §3, read from the platform and the ledger."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ghostpost.bootstrap import Container
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.domain.model import Account, Post, Window
from ghostpost.domain.policy import PostKind, has_tag
from ghostpost.domain.states import PostState


def published_in_order(
    container: Container, account: Account, posts: Iterable[Post] | None = None
) -> list[Post]:
    """The account's posts in the order the platform shows them (oldest first). `posts`: the
    account's posts as the caller just read them (else they are read here)."""
    statuses = list(reversed(container.local_store.timeline(account.handle, limit=10_000)))
    if posts is None:
        with container.services.uow(read_only=True) as uow:
            posts = uow.posts.list_for_account(account.id)
    by_platform_id = {p.platform_post_id: p for p in posts if p.platform_post_id is not None}
    ordered = []
    for status in statuses:
        post = by_platform_id[str(status.id)]
        assert status.text == post.final_text, "the platform shows exactly the final text"
        ordered.append(post)
    return ordered


def assert_policy_kept(
    container: Container,
    account: Account,
    window: Window,
    *,
    read: tuple[list[Post], list[Post], Window] | None = None,
) -> list[Post]:
    """Assert every rule of §3 on the account's timeline; return it. `read`: the timeline
    (`published_in_order`), the account's posts and the window as the caller just read them
    from the database, nothing having changed since (else they are read here)."""
    if read is not None:
        timeline, all_posts, refreshed = read
        assert refreshed.id == window.id
    else:
        timeline = published_in_order(container, account)
        with container.services.uow(read_only=True) as uow:
            all_posts = uow.posts.list_for_account(account.id)
            found = uow.windows.get(window.id)
        assert found is not None
        refreshed = found
    policy = refreshed.policy
    # Published exactly once: one status per post, one post per status.
    assert len({p.id for p in timeline}) == len(timeline)
    assert Counter(p.state for p in all_posts if p in timeline) == Counter(
        {PostState.PUBLISHED: len(timeline)}
    )
    assert {p.id for p in all_posts if p.state is PostState.PUBLISHED} == {p.id for p in timeline}

    budget = container.services.budget_for(account)
    notice_seen = False
    run = 0
    for post in timeline:
        delegated_regular = post.kind is PostKind.REGULAR and post.is_delegated
        if post.kind is PostKind.NOTICE and post.window_id == window.id:
            notice_seen = True
        if delegated_regular and post.window_id == window.id:
            assert notice_seen, f"delegated post {post.id} went out before the notice"
        assert post.published_at is not None
        if not policy.contains(post.published_at):
            continue
        reminder = post.decisions.get("publication", {}).get("reminder", {}).get("outcome")
        disclosure = post.kind in (PostKind.NOTICE, PostKind.REMINDER) or reminder == "inline"
        run = 0 if disclosure else run + 1
        assert run < policy.reminder_every, (
            f"{policy.reminder_every} consecutive posts without a disclosure ending at {post.id}"
        )
        if post.kind is not PostKind.REGULAR:
            continue
        tag = post.decisions["publication"]["tag"]
        if delegated_regular:
            if tag["outcome"] == "skipped":
                assert tag["needs"] > tag["has"] >= 0
                assert not has_tag(post.final_text, policy.tag, budget)
            else:
                assert tag["outcome"] in ("applied", "already_present"), tag
                assert has_tag(post.final_text, policy.tag, budget)
        else:
            assert tag["outcome"] == "not_delegated"
            assert post.final_text == post.submitted_text, "the principal's words are unchanged"
    return timeline


def assert_ledger_names_writers(container: Container, posts: list[Post]) -> None:
    """Every published post has a submission and a publication entry naming its writer."""
    with container.services.uow(read_only=True) as uow:
        entries = list(uow.ledger.entries())
        writers = {p.id: uow.users.get(p.author_id) for p in posts}
    assert first_broken_entry(entries) is None, "the ledger chain verifies"
    by_subject: dict[str, list[dict]] = {}
    for entry in entries:
        by_subject.setdefault(entry.subject, []).append({"tag": entry.tag, **entry.data})
    for post in posts:
        events = by_subject[f"post:{post.public_id}"]
        published = [e for e in events if e["tag"] == "post:published"]
        assert len(published) == 1, f"post {post.id} has {len(published)} publish entries"
        writer = writers[post.id]
        assert writer is not None
        assert published[0]["writer"]["email"] == writer.email
        assert published[0]["final_text"] == post.final_text
        if post.kind is PostKind.REGULAR:
            submitted = [e for e in events if e["tag"] == "post:submitted"]
            assert len(submitted) == 1
            assert submitted[0]["writer"]["email"] == writer.email
            assert submitted[0]["submitted_text"] == post.submitted_text
