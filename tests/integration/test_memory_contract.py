"""The in-memory unit of work (tests/support/memory_uow.py) against the SQL one.

tests/unit/services trusts the in-memory repositories to behave as the SQL ones do. Each
scenario here runs the same repository calls on both, on a fresh store, and the two must give
the same answers (the same ids, records, orders and ledger hashes); the scenarios also pin the
answers the services depend on, so both agreeing on a wrong answer fails too. Transactions and
unique constraints are checked on each backend with the same test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from ghostpost.bootstrap import Container
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import CanonicalData, LedgerTag, chain_entry, first_broken_entry
from ghostpost.domain.model import NewPost, ProposalStatus, Role, Source
from ghostpost.domain.policy import PostKind, ReminderMode, TagMode, WindowPolicy
from ghostpost.domain.states import PostState
from ghostpost.services.context import UnitOfWorkFactory
from ghostpost.services.ports import ExportScope, UnitOfWork
from tests.support.memory_uow import MemoryUnitsOfWork, UniqueViolation

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
Scenario = Callable[[UnitOfWorkFactory], list[Any]]


@pytest.fixture(params=["memory", "sql"])
def backend(request: pytest.FixtureRequest) -> tuple[UnitOfWorkFactory, type[Exception]]:
    """One unit-of-work factory on an empty store, and what it raises on a duplicate."""
    if request.param == "memory":
        return MemoryUnitsOfWork(), UniqueViolation
    container: Container = request.getfixturevalue("container")
    return container.services.uow, IntegrityError


@pytest.fixture
def both(container: Container) -> dict[str, UnitOfWorkFactory]:
    return {"memory": MemoryUnitsOfWork(), "sql": container.services.uow}


def _cast(uow: UnitOfWork) -> dict[str, int]:
    """A principal, two accounts, the principal's user, two writers; writer 1 on account 1."""
    principal = uow.principals.add("Avery")
    account = uow.accounts.add(
        principal_id=principal.id, platform="local", handle="avery", max_chars=None, url_length=None
    )
    other = uow.accounts.add(
        principal_id=principal.id, platform="mastodon", handle="avery", max_chars=500, url_length=23
    )
    owner = uow.users.add(
        email="avery@x.test",
        name="Avery",
        role=Role.MANAGER,
        password_hash="h0",
        principal_id=principal.id,
    )
    writer = uow.users.add(
        email="jo@x.test", name="Jo", role=Role.WRITER, password_hash="h1", principal_id=None
    )
    second = uow.users.add(
        email="al@x.test", name="Al", role=Role.WRITER, password_hash="h2", principal_id=None
    )
    uow.assignments.add(writer.id, account.id)
    return {
        "principal": principal.id,
        "account": account.id,
        "other": other.id,
        "owner": owner.id,
        "writer": writer.id,
        "second": second.id,
    }


def _policy(start: datetime, hours: int = 8, **options: Any) -> WindowPolicy:
    return WindowPolicy(
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        notice_text="notice",
        reminder_text="reminder",
        **options,
    )


def _post(ids: dict[str, int], n: int, **fields: Any) -> NewPost:
    values: dict[str, Any] = {
        "public_id": f"00000000-0000-0000-0000-{n:012d}",
        "account_id": ids["account"],
        "kind": PostKind.REGULAR,
        "state": PostState.SCHEDULED,
        "author_id": ids["writer"],
        "submitter": f"user:{ids['writer']}",
        "source": Source.WEB,
        "submitted_text": f"post {n}",
        "final_text": f"post {n} #team",
        "idempotency_key": f"gp-{n}",
        "created_at": T0,
        "publish_at": T0 + timedelta(minutes=n),
        "decisions": {"delegated": True, "n": n, "nested": {"list": [1, 2]}},
    }
    values.update(fields)
    return NewPost(**values)


def people_and_accounts(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        uow.principals.add("Bea")
        seen.append([p.name for p in uow.principals.list()])
        seen.append(uow.principals.by_name("Bea"))
        seen.append([u.name for u in uow.users.list()])
        seen.append(uow.users.by_email("JO@X.TEST"))
        seen.append(uow.users.linked_to_principal(ids["principal"]))
        seen.append(uow.users.set_active(ids["writer"], False))
        seen.append(uow.users.set_principal(ids["owner"], None))
        seen.append(uow.users.set_principal(ids["second"], ids["principal"]))
        seen.append(uow.users.password_hash(ids["second"]))
        uow.users.set_password_hash(ids["second"], "h9")
        seen.append(uow.users.password_hash(ids["second"]))
        uow.users.set_totp(ids["second"], "sealed", None)
        seen.append(uow.users.get(ids["second"]))
        seen.append([uow.users.advance_totp_step(ids["second"], s) for s in (5, 5, 4, 6)])
        seen.append(uow.users.advance_totp_step(ids["writer"], 1))  # no TOTP: never
        seen.append(uow.users.totp(ids["second"]))
        uow.assignments.add(ids["second"], ids["account"])
        uow.assignments.add(ids["second"], ids["other"])
        seen.append(uow.assignments.accounts_of(ids["second"]))
        seen.append(uow.assignments.users_of(ids["account"]))
        uow.assignments.remove(ids["second"], ids["account"])
        uow.assignments.remove(ids["second"], ids["account"])  # gone already: nothing happens
        seen.append(uow.assignments.exists(ids["second"], ids["account"]))
        seen.append(uow.accounts.list())
        seen.append(uow.accounts.by_handle("mastodon", "avery"))
        seen.append(
            uow.accounts.store_connection(
                ids["other"],
                remote_id="109",
                base_url="https://m.test",
                sealed_credentials="sealed",
                max_chars=400,
                url_length=None,
                connected_at=T0,
            )
        )
        seen.append(uow.accounts.try_lock(ids["account"]))
        uow.commit()
    assert seen[0] == ["Avery", "Bea"]
    assert seen[3] is not None and seen[3].email == "jo@x.test"
    assert seen[11] == [True, False, False, True]
    assert seen[12] is False
    return seen


def windows_and_proposals(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        late = uow.windows.add(
            account_id=ids["account"],
            name="Late",
            policy=_policy(T0 + timedelta(days=2)),
            created_by=ids["owner"],
        )
        early = uow.windows.add(
            account_id=ids["account"],
            name="Early",
            policy=_policy(T0),
            created_by=ids["owner"],
            notice_publish_at=T0 - timedelta(hours=1),
        )
        uow.windows.add(
            account_id=ids["other"], name="Other", policy=_policy(T0), created_by=ids["owner"]
        )
        seen.append(uow.windows.covering(ids["account"], T0))
        seen.append(uow.windows.covering(ids["account"], T0 + timedelta(hours=8)))  # end: out
        seen.append(
            [
                uow.windows.overlaps(
                    ids["account"], T0 + timedelta(hours=7), T0 + timedelta(days=1)
                ),
                uow.windows.overlaps(
                    ids["account"], T0 + timedelta(hours=8), T0 + timedelta(days=1)
                ),
                uow.windows.overlaps(ids["account"], T0, T0 + timedelta(hours=1), early.id),
            ]
        )
        notice = uow.posts.add(
            _post(
                ids, 1, kind=PostKind.NOTICE, state=PostState.PENDING_APPROVAL, window_id=early.id
            )
        )
        changes: list[Any] = [uow.windows.attach_notice(early.id, notice.id)]
        changes.append(
            uow.windows.set_policy(
                early.id,
                name=early.name,
                policy=replace(
                    early.policy,
                    reminder_mode=ReminderMode.STANDALONE,
                    tag_mode=TagMode.REQUIRED,
                    reminder_every=3,
                    ends_at=T0 + timedelta(hours=9),
                ),
                notice_publish_at=T0 - timedelta(minutes=30),
                clear_notice_rejection=False,
            )
        )
        seen.append(
            uow.windows.record_disclosures(
                early.id, posts_since_disclosure=2, notice_published_at=T0 - timedelta(minutes=20)
            )
        )
        seen.append(uow.windows.get(early.id))
        seen.append([w.name for w in uow.windows.list_for_account(ids["account"])])
        seen.append([w.name for w in uow.windows.list_for_accounts([ids["account"], ids["other"]])])
        seen.append(uow.windows.notices_awaiting_approval([ids["account"]], T0))
        seen.append(uow.windows.notices_awaiting_approval([ids["account"]], T0 + timedelta(days=1)))
        first = uow.windows.add_proposal(
            window_id=early.id,
            proposed_by=ids["owner"],
            proposed_at=T0,
            changes={"tag_mode": {"old": "required", "new": "off"}},
        )
        second = uow.windows.add_proposal(
            window_id=late.id,
            proposed_by=ids["owner"],
            proposed_at=T0 - timedelta(minutes=1),
            changes={"reminder_every": {"old": 10, "new": 20}},
        )
        third = uow.windows.add_proposal(
            window_id=early.id,
            proposed_by=ids["owner"],
            proposed_at=T0 + timedelta(minutes=1),
            changes={"tag": {"old": "#team", "new": "#staff"}},
        )
        seen.append(
            uow.windows.decide_proposal(
                first.id,
                status=ProposalStatus.SUPERSEDED,
                decided_by=None,
                decided_at=T0,
                comment=None,
            )
        )
        seen.append(uow.windows.get_proposal(second.id))
        seen.append([p.id for p in uow.windows.proposals_of(early.id)])
        seen.append([p.id for p in uow.windows.pending_proposals([ids["account"]])])
        seen.append(third.changes)
        uow.commit()
    assert seen[0] is not None and seen[0].name == "Early"
    assert seen[1] is None
    assert seen[2] == [True, False, False]
    assert seen[5] == ["Early", "Late"]
    assert seen[6] == ["Late", "Other", "Early"]
    assert [w.name for w in seen[7]] == ["Early"] and seen[8] == []
    seen.append(changes)
    return seen


def posts_and_queues(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        window = uow.windows.add(
            account_id=ids["account"],
            name="W",
            policy=_policy(T0 - timedelta(hours=9)),
            created_by=ids["owner"],
        )
        s = PostState
        made = [
            uow.posts.add(_post(ids, 1)),
            uow.posts.add(_post(ids, 2, state=s.HELD, window_id=window.id)),
            uow.posts.add(_post(ids, 3, state=s.PENDING_APPROVAL, window_id=window.id)),
            uow.posts.add(_post(ids, 4, account_id=ids["other"], author_id=ids["second"])),
            uow.posts.add(_post(ids, 5, publish_at=T0 + timedelta(days=1))),
            uow.posts.add(_post(ids, 6, state=s.HELD, window_id=window.id, publish_at=T0)),
            uow.submissions.add_post(_post(ids, 7, submitter="client:c1")),
        ]
        made.append(
            uow.posts.add(_post(ids, 8, kind=PostKind.REMINDER, precedes_post_id=made[0].id))
        )
        seen.append(made)
        ids_ = [p.id for p in made]
        transitions: list[Any] = []
        transitions.append(
            uow.posts.start_publishing(
                ids_[3],
                state=s.PUBLISHING,
                final_text="claimed text",
                attempts=1,
                claimed_by="w",
                lease_until=T0 - timedelta(seconds=1),
                decisions={"claimed": True},
            )
        )
        for n in (0, 6):
            transitions.append(
                uow.posts.mark_published(
                    ids_[n],
                    state=s.PUBLISHED,
                    platform_post_id=f"remote-{n}",
                    url=f"https://example.test/{n}",
                    at=T0 + timedelta(minutes=n),
                )
            )
            uow.ledger.append(
                tag=LedgerTag.POST_PUBLISHED,
                actor="system:worker",
                subject=f"post:{made[n].public_id}",
                data={},
                occurred_at=T0,
            )
        uow.posts.set_state(
            ids_[4], s.CANCELLED, "by the author", decisions={"changed": [1, "two"]}
        )
        transitions.append(uow.posts.set_reason(ids_[1], "held: the writer was unassigned"))
        seen.append(uow.posts.get(ids_[4]))
        seen.append(uow.posts.by_public_id(made[2].public_id))
        seen.append([p.id for p in uow.posts.stale_publishing(T0)])
        seen.append([p.id for p in uow.posts.waiting_in_ended_windows(T0)])
        seen.append([p.id for p in uow.posts.held_in_window(window.id)])
        seen.append([p.id for p in uow.posts.waiting_regular()])
        seen.append([p.id for p in uow.posts.waiting_regular(account_id=ids["account"])])
        seen.append([p.id for p in uow.posts.waiting_regular(submitters=["client:c1"])])
        seen.append([p.id for p in uow.posts.waiting_regular(author_id=ids["second"])])
        seen.append([p.id for p in uow.posts.list_for_account(ids["account"])])
        seen.append(
            [
                p.id
                for p in uow.posts.published_timeline(
                    ids["account"], T0, T0 + timedelta(hours=1), None
                )
            ]
        )
        seen.append(
            [
                p.id
                for p in uow.posts.published_timeline(
                    ids["account"], T0, T0 + timedelta(minutes=1), ids_[6]
                )
            ]
        )
        for offset, limit in ((0, 50), (2, 3)):
            seen.append(
                [
                    p.id
                    for p in uow.posts.search(
                        account_ids=None, window_id=None, states=None, offset=offset, limit=limit
                    )
                ]
            )
        seen.append(
            [
                p.id
                for p in uow.posts.search(
                    account_ids=[ids["account"]],
                    window_id=window.id,
                    states=[s.HELD],
                    offset=0,
                    limit=50,
                )
            ]
        )
        seen.append(uow.posts.count_by_state(account_ids=None, window_id=None))
        seen.append(uow.posts.count_by_state(account_ids=[ids["other"]], window_id=None))
        seen.append([p.id for p in uow.posts.awaiting_approval([ids["account"]])])
        for states, ends, limit in (
            ((s.SCHEDULED, s.HELD, s.PUBLISHED, s.FAILED), T0 + timedelta(days=2), 50),
            ((s.PUBLISHED,), T0 + timedelta(minutes=3), 50),
            ((s.SCHEDULED, s.PUBLISHED), T0 + timedelta(days=2), 1),
        ):
            found = uow.posts.in_period(
                account_ids=[ids["account"], ids["other"]],
                states=states,
                starts_at=T0 - timedelta(days=1),
                ends_at=ends,
                limit=limit,
            )
            seen.append([p.id for p in found])
        seen.append(
            [
                p.id
                for p in uow.posts.page(
                    account_ids=[ids["account"]],
                    window_id=None,
                    author_id=ids["writer"],
                    state=None,
                    before_id=ids_[6],
                    limit=3,
                )
            ]
        )
        for paging in (
            {"max_id": None, "since_id": None, "min_id": None, "limit": 2},
            {"max_id": ids_[6], "since_id": ids_[0], "min_id": None, "limit": 5},
            {"max_id": None, "since_id": None, "min_id": ids_[0], "limit": 2},
        ):
            for states, regular_only in (({s.PUBLISHED}, False), ({s.SCHEDULED, s.HELD}, True)):
                seen.append(
                    [
                        p.id
                        for p in uow.posts.feed(
                            account_id=ids["account"],
                            states=states,
                            regular_only=regular_only,
                            **paging,
                        )
                    ]
                )
        idle_due = [p.id for p in uow.posts.due_on_idle_accounts(T0 + timedelta(hours=1), 10)]
        seen.append(idle_due)
        ended = [uow.posts.any_waiting_in_ended_windows(T0 + timedelta(days=n)) for n in (-30, 30)]
        seen.append(ended)
        stale = [uow.posts.any_stale(T0 + timedelta(days=n)) for n in (-1, 0)]
        seen.append(stale)
        claimable = [uow.posts.any_claimable(T0 + timedelta(days=n)) for n in (-30, 0, 30)]
        seen.append(claimable)
        # The worker's claim read: the answers of the repositories asked one by one.
        views = [uow.posts.claim_view(ids_[n], T0) for n in (0, 1, 3, 6)]
        seen.append(views)
        seen.append(uow.posts.claim_view(10_000, T0))
        transitions.append(
            uow.posts.end_attempt(
                ids_[3], state=s.SCHEDULED, reason="platform timeout", next_attempt_at=T0
            )
        )
        transitions.append(uow.posts.reclaim(ids_[5], claimed_by="w2", lease_until=T0))
        uow.commit()
    i = [p.id for p in seen[0]]
    assert seen[5] == [i[5], i[1]], "held: by publish_at"
    assert seen[11] == [i[0], i[6]], "as published: by the seq of post:published"
    assert seen[13][:4] == [i[5], i[1], i[2], i[3]], "attention first"
    assert idle_due == [i[7]], "scheduled, due and on an account with nothing in flight only"
    assert ended == [False, True]
    assert stale == [False, True], "the lease of the post in flight ran out at T0 - 1 s"
    assert claimable == [False, True, True], "none due yet; the reminder due; ended windows"
    assert [v.post.id for v in views] == [i[0], i[1], i[3], i[6]]
    assert [v.account_busy for v in views] == [False, False, True, False]
    assert [v.pending_reminder_id for v in views] == [i[7], None, None, None]
    assert [v.own_window is not None for v in views] == [False, True, False, False]
    assert [v.author_assigned for v in views] == [True, True, False, True]
    assert views[3].client is None, "client:c1 is not stored"
    seen.append(transitions)
    return seen


def ledger_and_checkpoints(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        window = uow.windows.add(
            account_id=ids["account"], name="W", policy=_policy(T0), created_by=ids["owner"]
        )
        post = uow.posts.add(_post(ids, 1, window_id=window.id))
        other = uow.posts.add(_post(ids, 2, account_id=ids["other"], author_id=ids["second"]))
        subjects = [
            f"account:{ids['account']}",
            f"window:{window.id}",
            f"post:{post.public_id}",
            f"post:{other.public_id}",
            f"account:{ids['other']}",
            "user:1",
        ]
        for n, subject in enumerate(subjects):
            seen.append(
                uow.ledger.append(
                    tag="post:submitted" if subject.startswith("post") else "thing:done",
                    actor="system:test",
                    subject=subject,
                    data={"n": n, "text": "é ✓", "nested": {"b": [1, None, True], "a": "x"}},
                    occurred_at=T0 + timedelta(minutes=n, microseconds=n),
                )
            )
        seen.append(uow.ledger.head())
        uow.ledger.add_checkpoint(
            Checkpoint(3, seen[2].entry_hash, "2026-11-21T09:00:00.000000Z", "k" * 16, "sig")
        )
        uow.ledger.add_checkpoint(
            Checkpoint(
                6, seen[5].entry_hash, "2026-11-21T09:05:00.000000Z", "k" * 16, "sig", "heartbeat"
            )
        )
        uow.commit()
    with units(read_only=True) as uow:
        seen.append(list(uow.ledger.entries(after_seq=2, up_to_seq=4)))
        seen.append(uow.ledger.entry(3))
        seen.append(uow.ledger.entry(99))
        search = uow.ledger.search
        seen.append([e.seq for e in search(account_ids=[ids["account"]])])
        seen.append([e.seq for e in search(window_id=window.id, oldest_first=True)])
        seen.append([e.seq for e in search(author_id=ids["second"])])
        seen.append([e.seq for e in search(tag="thing:done", before_seq=6, limit=2)])
        seen.append([e.seq for e in search(subject="user:1")])
        seen.append(
            [
                e.seq
                for e in search(
                    occurred_from="2026-11-21T09:01:00.000001Z",
                    occurred_before="2026-11-21T09:03:00Z",
                    after_seq=1,
                )
            ]
        )
        seen.append(uow.ledger.latest_checkpoint())
        seen.append(list(uow.ledger.checkpoints(max_size=5)))
        assert first_broken_entry(uow.ledger.entries()) is None
    assert seen[10] == [3, 2, 1], "the account, its window, its post"
    assert seen[11] == [2, 3]
    return seen


def clients_tokens_and_submissions(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        uow.windows.add(
            account_id=ids["account"], name="W", policy=_policy(T0), created_by=ids["owner"]
        )
        client = uow.api_clients.add(
            client_id="c1",
            secret_hash="s",
            name="Zed",
            owner_id=ids["owner"],
            scopes=["posts:write", "posts:read", "posts:read"],
            account_ids=[ids["account"]],
            default_author_id=ids["writer"],
            author_ids=[ids["writer"], ids["second"]],
            created_at=T0,
        )
        seen.append(client)
        uow.api_clients.add(
            client_id="c2",
            secret_hash="s2",
            name="Amy",
            owner_id=ids["owner"],
            scopes=[],
            account_ids=[],
            default_author_id=None,
            author_ids=[],
            created_at=T0,
        )
        seen.append(uow.api_clients.set_authors(client.id, [ids["second"]], ids["second"]))
        seen.append(uow.api_clients.by_client_id("c1"))
        seen.append(uow.api_clients.secret_hash("c2"))
        standings = [uow.api_clients.standing("c1"), uow.api_clients.standing("nope")]
        seen.append([c.client_id for c in uow.api_clients.list()])
        token = uow.api_tokens.add(
            token_hash="t1",
            client_row_id=client.id,
            scopes=["posts:read"],
            issued_at=T0,
            expires_at=T0 + timedelta(hours=1),
        )
        uow.api_tokens.add(
            token_hash="t2",
            client_row_id=client.id,
            scopes=["posts:read"],
            issued_at=T0,
            expires_at=T0 - timedelta(hours=1),
        )
        seen.append(uow.api_tokens.by_hash("t1"))
        seen.append(uow.submissions.token("t1"))
        seen.append(uow.submissions.token("nope"))
        uow.api_tokens.revoke(token.id, T0)
        uow.api_tokens.revoke(token.id, T0 + timedelta(hours=1))  # the first revocation stays
        seen.append(uow.api_tokens.by_hash("t1"))
        seen.append(uow.api_tokens.revoke_all(client.id, T0 + timedelta(minutes=1)))
        seen.append(uow.api_tokens.purge_expired(client.id, T0))
        seen.append(uow.submissions.for_client("c1", ids["account"], None, T0))
        seen.append(uow.submissions.for_client("c1", ids["account"], "jo@x.test", T0))
        # Read again with nothing changed: the very facts asked about (a plan decided on them
        # holds); another author asked: new facts.
        again = uow.submissions.for_client("c1", ids["account"], "jo@x.test", T0, same_as=seen[-1])
        assert again is seen[-1]
        other = uow.submissions.for_client("c1", ids["account"], None, T0, same_as=seen[-1])
        assert other is not seen[-1] and other == seen[-2]
        seen.append(
            uow.submissions.for_client("c1", ids["account"], "al@x.test", T0 - timedelta(hours=1))
        )
        seen.append(uow.submissions.for_client("c1", 999, "nobody@x.test", T0))
        seen.append(uow.submissions.for_client("c9", ids["account"], None, T0))
        uow.users.set_active(ids["owner"], False)
        seen.append(uow.api_clients.set_active(client.id, False))
        standings.append(uow.api_clients.standing("c1"))  # revoked, its owner deactivated
        changed = uow.submissions.for_client("c1", ids["account"], None, T0, same_as=seen[11])
        assert changed is not seen[11] and changed is not None and changed.owner_active is False
        seen.append(uow.submissions.for_client("c1", ids["other"], None, T0))
        # The read leaves secrets out but keeps what they mean (a connected account, an
        # author with two-factor sign-in): the same as the repositories' own reads.
        uow.accounts.store_connection(
            ids["other"],
            remote_id="r1",
            base_url="https://m.x.test",
            sealed_credentials="sealed",
            max_chars=500,
            url_length=23,
            connected_at=T0,
        )
        uow.users.set_totp(ids["second"], "sealed-totp", 7)
        connected = uow.submissions.for_client("c1", ids["other"], "al@x.test", T0)
        seen.append(connected)
        assert connected is not None and connected.account is not None
        assert connected.account == uow.accounts.get(ids["other"]) and connected.account.connected
        assert connected.author == uow.users.get(ids["second"])
        assert connected.author is not None and connected.author.totp_enabled
        assert seen[17].account is not None and seen[17].account.connected is False
        uow.commit()
    assert seen[4] == ["c2", "c1"]
    assert seen[9] == 1 and seen[10] == 1
    assert seen[11].author_assigned is False and seen[12].author_assigned is True
    assert seen[11].window is not None and seen[13].window is None
    assert seen[14].account is None and seen[14].author is None and seen[15] is None
    assert seen[17].owner_active is False
    assert standings[0] is not None and standings[0].is_active and standings[0].owner_active
    assert standings[1] is None
    assert standings[2] is not None and not standings[2].is_active
    assert not standings[2].owner_active
    return [*seen, standings]


def idempotency_and_sessions(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    keys = "client:c1", "k1"
    with units() as uow:
        ids = _cast(uow)
        seen.append(uow.idempotency_keys.claim_or_get(*keys, "f1", T0))
        seen.append(uow.idempotency_keys.claim_or_get(*keys, "f2", T0))  # this unit holds it
        seen.append(uow.idempotency_keys.claim("client:c1", "k2", "f1", T0 + timedelta(hours=1)))
        seen.append(uow.idempotency_keys.claim("client:c1", "k2", "f1", T0))
        uow.idempotency_keys.complete(*keys, 201, {"id": "p1", "tags": ("a", "b")})
        uow.commit()
    with units() as uow:
        seen.append(uow.idempotency_keys.claim_or_get(*keys, "f1", T0))
        seen.append(uow.idempotency_keys.get("client:c2", "k1"))
        seen.append(uow.idempotency_keys.purge(T0 + timedelta(minutes=1)))
        seen.append(uow.idempotency_keys.get(*keys))
        uow.web_sessions.add("s1", user_id=ids["writer"], data={"csrf": "x"}, now=T0)
        uow.web_sessions.add("s2", user_id=ids["writer"], data={}, now=T0)
        uow.web_sessions.add("s3", user_id=None, data={}, now=T0 + timedelta(hours=2))
        uow.web_sessions.save(
            "s1", user_id=ids["second"], data={"csrf": "y"}, now=T0 + timedelta(minutes=1)
        )
        uow.web_sessions.touch("s2", T0 + timedelta(minutes=2))
        uow.web_sessions.revoke("s1", T0 + timedelta(minutes=3))
        uow.web_sessions.save("s1", user_id=ids["owner"], data={}, now=T0 + timedelta(minutes=4))
        seen.append(uow.web_sessions.get("s1"))
        seen.append(uow.web_sessions.get("s2"))
        seen.append(uow.web_sessions.revoke_for_user(ids["writer"], T0 + timedelta(minutes=5)))
        seen.append(
            uow.web_sessions.purge(
                revoked_before=T0 + timedelta(minutes=4),
                seen_before=T0,
                created_before=T0 + timedelta(hours=1),
            )
        )
        seen.append([uow.web_sessions.get(s) is not None for s in ("s1", "s2", "s3")])
        uow.commit()
    assert seen[0] is None and seen[1] is not None and seen[1].status == "in_flight"
    assert seen[2] is True and seen[3] is False
    assert seen[4].status == "completed" and seen[4].response_body == {
        "id": "p1",
        "tags": ["a", "b"],
    }
    assert seen[6] == 1 and seen[7] is None
    assert seen[8].revoked_at is not None and seen[8].user_id == ids["second"], "not resurrected"
    return seen


def _aware(row: Sequence[Any]) -> tuple[Any, ...]:
    """A post row with its times as aware datetimes: the port lets SQLite give them as the
    naive UTC text it stores (the export formats either the same way)."""
    return tuple(
        datetime.fromisoformat(value).replace(tzinfo=UTC)
        if isinstance(value, str) and _STORED_TIME.fullmatch(value)
        else value
        for value in row
    )


_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?")


def exports(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        window = uow.windows.add(
            account_id=ids["account"], name="W", policy=_policy(T0), created_by=ids["owner"]
        )
        made = [
            uow.posts.add(_post(ids, 1, window_id=window.id)),
            uow.posts.add(_post(ids, 2, account_id=ids["other"], author_id=ids["second"])),
            uow.posts.add(_post(ids, 3, created_at=T0 + timedelta(hours=1))),
        ]
        uow.posts.mark_published(
            made[0].id,
            state=PostState.PUBLISHED,
            platform_post_id="remote-1",
            url="https://example.test/1",
            at=T0 + timedelta(hours=2),
        )
        for n, subject in enumerate(
            [f"account:{ids['account']}", f"window:{window.id}", "user:1"]
            + [f"post:{p.public_id}" for p in made]
        ):
            uow.ledger.append(
                tag="thing:done",
                actor="system:test",
                subject=subject,
                data={"n": n},
                occurred_at=T0 + timedelta(minutes=n),
            )
        uow.ledger.add_checkpoint(
            Checkpoint(2, "0" * 64, "2026-11-21T09:00:00.000000Z", "k" * 16, "sig")
        )
        uow.commit()
    scopes = [
        ExportScope(),
        ExportScope(account_ids=frozenset({ids["account"]})),
        ExportScope(window_id=window.id),
        ExportScope(author_id=ids["second"]),
        ExportScope(since=T0 + timedelta(minutes=30), until=T0 + timedelta(hours=3)),
        ExportScope(since=T0 + timedelta(minutes=2)),
    ]
    with units(read_only=True) as uow:
        uow.exports.use_snapshot()
        for scope in scopes:
            seen.append(uow.exports.count_posts(scope))
            seen.append([p.id for p in uow.exports.posts(scope, 2)])
            seen.append(
                [[_aware(row) for row in batch] for batch in uow.exports.post_rows(scope, 2)]
            )
            seen.append(uow.exports.count_entries(scope, 5))
            seen.append([e.seq for e in uow.exports.entries(scope, 5, 2)])
            seen.append([list(map(tuple, batch)) for batch in uow.exports.entry_rows(scope, 5, 2)])
        seen.append([list(map(tuple, batch)) for batch in uow.exports.checkpoint_rows(5, 10)])
        seen.append(list(uow.exports.checkpoints(1, 10)))
    assert seen[3:5] == [5, [1, 2, 3, 4, 5]]
    assert seen[9:11] == [3, [1, 2, 4]], "the account's own subjects and its posts'"
    return seen


def notifications_outbox(units: UnitOfWorkFactory) -> list[Any]:
    seen: list[Any] = []
    with units() as uow:
        ids = _cast(uow)
        uow.notifications.set_preference(ids["writer"], "post_failed", False)
        uow.notifications.set_preference(ids["writer"], "post_failed", True)
        uow.notifications.set_preference(ids["second"], "daily_digest", True)
        uow.notifications.set_preference(ids["owner"], "daily_digest", False)
        seen.append(uow.notifications.preferences(ids["writer"]))
        seen.append(uow.notifications.digest_recipients())
        events = [("writer", "ledger:1"), ("writer", "ledger:1"), ("second", "ledger:1")]
        for n, (user, key) in enumerate([*events, ("second", "ledger:2")]):
            seen.append(
                uow.notifications.add(
                    user_id=ids[user],
                    kind="post_failed",
                    event_key=key,
                    subject=f"s{n}",
                    body="b",
                    link="l",
                    at=T0 + timedelta(minutes=n),
                    status="pending",
                )
            )
        seen.append(uow.notifications.has_due(T0 - timedelta(minutes=1)))
        seen.append(uow.notifications.has_due(T0))
        claimed = uow.notifications.claim_due(T0 + timedelta(hours=1), "w1", T0, 2)
        seen.append(claimed)
        seen.append(uow.notifications.claim_due(T0 - timedelta(minutes=1), "w2", T0, 9))
        uow.notifications.mark_sent(claimed[0].id, "w1", T0)
        uow.notifications.mark_sent(claimed[1].id, "w2", T0)  # not w2's claim: nothing
        uow.notifications.mark_failed(claimed[1].id, "w1", "down", T0 + timedelta(days=1))
        seen.append(uow.notifications.claim_due(T0 + timedelta(hours=1), "w3", T0, 9))
        seen.append(uow.notifications.recent(ids["second"], 5))
        seen.append(uow.notifications.events_between(ids["second"], T0, T0 + timedelta(minutes=3)))
        uow.commit()
    assert seen[2:6] == [True, False, True, True]
    return seen


SCENARIOS: list[Scenario] = [
    people_and_accounts,
    windows_and_proposals,
    posts_and_queues,
    ledger_and_checkpoints,
    clients_tokens_and_submissions,
    idempotency_and_sessions,
    exports,
    notifications_outbox,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_memory_and_sql_give_the_same_answers(
    scenario: Scenario, both: dict[str, UnitOfWorkFactory]
) -> None:
    memory = scenario(both["memory"])
    sql = scenario(both["sql"])
    for step, (mine, theirs) in enumerate(zip(memory, sql, strict=True)):
        assert mine == theirs, f"step {step}: memory {mine!r} != sql {theirs!r}"


# --- transactions and constraints, the same test on each backend ------------------------------


def test_leaving_without_commit_or_raising_leaves_nothing(
    backend: tuple[UnitOfWorkFactory, type[Exception]],
) -> None:
    units, _ = backend
    with units() as uow:
        uow.principals.add("Kept")
        uow.commit()
    with units() as uow:
        uow.principals.add("Dropped")
        uow.ledger.append(tag="x:y", actor="a", subject="s", data={}, occurred_at=T0)
    with pytest.raises(ZeroDivisionError), units() as uow:
        uow.principals.add("Raised")
        uow.idempotency_keys.claim_or_get("c", "k", "f", T0)
        raise ZeroDivisionError
    with units() as uow:
        uow.principals.add("Rolled back")
        uow.rollback()
        uow.principals.add("After rollback")
        uow.commit()
    with units(read_only=True) as uow:
        assert [p.name for p in uow.principals.list()] == ["After rollback", "Kept"]
        assert uow.ledger.head()[0] == 0
        assert uow.idempotency_keys.get("c", "k") is None


def test_a_unit_sees_its_own_writes_and_others_see_them_only_once_committed(
    backend: tuple[UnitOfWorkFactory, type[Exception]],
) -> None:
    units, _ = backend
    with units() as writer:
        writer.principals.add("Mine")
        assert writer.principals.by_name("Mine") is not None
        with units(read_only=True) as reader:
            assert reader.principals.by_name("Mine") is None
        writer.commit()
        writer.principals.add("Second")  # a unit goes on after a commit, in a new transaction
        writer.commit()
    with units(read_only=True) as reader:
        assert [p.name for p in reader.principals.list()] == ["Mine", "Second"]
        with pytest.raises(RuntimeError):
            reader.commit()


@pytest.mark.parametrize(
    "duplicate",
    [
        "principal name",
        "user email",
        "second user linked to a principal",
        "account handle",
        "assignment",
        "client id",
        "token hash",
        "post public id",
    ],
)
def test_a_duplicate_is_refused_and_nothing_of_the_unit_stays(
    backend: tuple[UnitOfWorkFactory, type[Exception]], duplicate: str
) -> None:
    units, error = backend
    with units() as uow:
        ids = _cast(uow)
        uow.api_clients.add(
            client_id="c1",
            secret_hash="s",
            name="C",
            owner_id=ids["owner"],
            scopes=[],
            account_ids=[],
            default_author_id=None,
            author_ids=[],
            created_at=T0,
        )
        client = uow.api_clients.by_client_id("c1")
        assert client is not None
        uow.api_tokens.add(
            token_hash="t", client_row_id=client.id, scopes=[], issued_at=T0, expires_at=T0
        )
        uow.posts.add(_post(ids, 1))
        uow.commit()
    writes: dict[str, Callable[[UnitOfWork], object]] = {
        "principal name": lambda u: u.principals.add("Avery"),
        "user email": lambda u: u.users.add(
            email="jo@x.test", name="J", role=Role.WRITER, password_hash="h", principal_id=None
        ),
        "second user linked to a principal": lambda u: u.users.set_principal(
            ids["writer"], ids["principal"]
        ),
        "account handle": lambda u: u.accounts.add(
            principal_id=ids["principal"],
            platform="local",
            handle="avery",
            max_chars=None,
            url_length=None,
        ),
        "assignment": lambda u: u.assignments.add(ids["writer"], ids["account"]),
        "client id": lambda u: u.api_clients.add(
            client_id="c1",
            secret_hash="s",
            name="C",
            owner_id=ids["owner"],
            scopes=[],
            account_ids=[],
            default_author_id=None,
            author_ids=[],
            created_at=T0,
        ),
        "token hash": lambda u: u.api_tokens.add(
            token_hash="t", client_row_id=client.id, scopes=[], issued_at=T0, expires_at=T0
        ),
        "post public id": lambda u: u.posts.add(_post(ids, 1, idempotency_key="gp-other")),
    }
    with pytest.raises(error), units() as uow:
        uow.principals.add("Written first")
        writes[duplicate](uow)
        uow.commit()
    with units(read_only=True) as uow:
        assert uow.principals.by_name("Written first") is None


def test_an_entry_given_as_its_canonical_text_chains_as_its_data_would(
    backend: tuple[UnitOfWorkFactory, type[Exception]],
) -> None:
    """The create builds its entry's data text ahead of the write (CanonicalData): the
    entry appended from it is the entry of the data itself, hash included."""
    units, _ = backend
    data = {"b": [1, "é", None], "a": {"z": "x", "y": True}}
    with units() as uow:
        first = uow.ledger.append(tag="x:y", actor="a", subject="s", data=data, occurred_at=T0)
        second = uow.ledger.append(
            tag="x:y", actor="a", subject="s", data=CanonicalData.of(data), occurred_at=T0
        )
        uow.commit()
    expected = chain_entry(
        seq=2,
        occurred_at=first.occurred_at,
        tag="x:y",
        actor="a",
        subject="s",
        data=data,
        prev_hash=first.entry_hash,
    )
    assert second == expected
    assert second.data == first.data == data
