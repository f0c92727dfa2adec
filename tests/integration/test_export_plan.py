"""Filtered ledger reads (exports, the ledger viewer) go through the entries' derived
account_id / post_id columns and their indexes: no plan that runs a query over the posts per
entry (PostgreSQL ran `subject IN (SELECT 'post:' || public_id ...)` under an OR as an unhashed
SubPlan per entry: quadratic, 200k entries did not finish in 5 minutes), and an account's
entries found through ix_ledger_entries_account_id_seq instead of a pass over the ledger.

The plan is read with EXPLAIN on a ledger and posts table large enough (and ANALYZEd) for the
planner to choose as it would in production, on the backend under test (GP_TEST_DB).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from ghostpost.bootstrap import Container
from ghostpost.db.exports import SqlExports
from ghostpost.db.models import LedgerEntryRow, PostRow
from ghostpost.db.repositories.ledger import SqlLedger
from ghostpost.services.ports import ExportScope
from tests.conftest import START
from tests.support.world import World

ENTRIES = 20_000
#: One entry in ten is about a post that exists (as in a real ledger: a post gets several).
POST_EVERY = 10


def seed(container: Container, world: World) -> None:
    """Bulk-insert entries and posts (the chain is not checked by EXPLAIN)."""
    with container.sessions() as session:
        base = session.scalar(text("SELECT coalesce(max(seq), 0) FROM ledger_entries"))
        entries: list[dict[str, Any]] = []
        posts: list[dict[str, Any]] = []
        for n in range(1, ENTRIES + 1):
            public_id = str(uuid.uuid4())
            at = START + timedelta(seconds=n)
            if n % POST_EVERY == 0:
                posts.append(
                    {
                        "public_id": public_id,
                        "account_id": world.account.id,
                        "kind": "regular",
                        "state": "published",
                        "author_id": world.writer_a.id,
                        "submitter": f"user:{world.writer_a.id}",
                        "source": "web",
                        "submitted_text": "t",
                        "final_text": "t",
                        "published_at": at,
                        "idempotency_key": f"plan-{public_id}",
                        "decisions": {},
                        "attempts": 0,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
            entries.append(
                {
                    "seq": base + n,
                    "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "tag": "post:submitted",
                    "actor": "system:test",
                    "subject": f"post:{public_id}",
                    "data": "{}",
                    "prev_hash": "0" * 64,
                    "entry_hash": uuid.uuid4().hex * 2,
                }
            )
        # Core inserts of the tables (not the ORM's bulk insert, which sent ~4,000 statements
        # here): a few multi-row INSERTs.
        session.execute(insert(PostRow.__table__), posts)
        # The derived columns as the append fills them (subject_refs).
        ids = {p: i for p, i in session.execute(text("SELECT public_id, id FROM posts"))}
        for entry in entries:
            post_id = ids.get(entry["subject"].removeprefix("post:"))
            entry["post_id"] = post_id
            entry["account_id"] = world.account.id if post_id is not None else None
        session.execute(insert(LedgerEntryRow.__table__), entries)
        session.commit()
    with container.engine.connect() as db:
        db.execute(text("ANALYZE"))
        db.commit()


def postgres_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += postgres_nodes(child)
    return nodes


def scopes(world: World) -> dict[str, ExportScope]:
    return {
        "account": ExportScope(account_ids=frozenset({world.account.id})),
        "window": ExportScope(window_id=world.open_window().id),
        "author": ExportScope(author_id=world.writer_a.id),
    }


def explain(session: Session, sql: str) -> tuple[list[dict[str, Any]], list[str], str]:
    """Return the plan of `sql`: PostgreSQL's nodes (else []), SQLite's steps (else [])."""
    if session.get_bind().dialect.name == "postgresql":
        raw = session.execute(text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        return postgres_nodes(plan), [], json.dumps(plan, indent=1)
    steps = [str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql))]
    return [], steps, str(steps)


def assert_no_query_per_entry(nodes: list[dict[str, Any]], steps: list[str], shown: str) -> None:
    # (An InitPlan, the window's account, runs once.)
    assert not [n for n in nodes if n.get("Parent Relationship") == "SubPlan"], shown
    for loop in (n for n in nodes if n["Node Type"] == "Nested Loop"):
        # A nested loop is linear only if its inner side is an index look-up.
        inner = loop["Plans"][1]
        if inner["Node Type"] == "Memoize":  # a cache in front of the look-up
            inner = inner["Plans"][0]
        assert inner["Node Type"] in {"Index Scan", "Index Only Scan"}, shown
    # (An uncorrelated SCALAR SUBQUERY, the window's account, runs once.)
    assert not [s for s in steps if "LIST SUBQUERY" in s or "CORRELATED" in s], shown
    # Posts are looked up through an index (by id), never scanned per entry.
    assert not [s for s in steps if s.startswith("SCAN posts")], shown


def assert_reads_the_account_index(
    nodes: list[dict[str, Any]], steps: list[str], shown: str
) -> None:
    index = "ix_ledger_entries_account_id_seq"
    if nodes:
        assert [n for n in nodes if n.get("Index Name") == index], shown
        assert not [
            n
            for n in nodes
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "ledger_entries"
        ], shown
    else:
        assert [s for s in steps if s.startswith(f"SEARCH ledger_entries USING INDEX {index}")]
        assert not [s for s in steps if s.startswith("SCAN ledger_entries")], shown


def assert_reads_an_index(nodes: list[dict[str, Any]], steps: list[str], shown: str) -> None:
    if nodes:
        assert not [
            n
            for n in nodes
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "ledger_entries"
        ], shown
    else:
        assert not [s for s in steps if s.startswith("SCAN ledger_entries")], shown


@pytest.mark.parametrize("filtered_by", ["account", "window", "author"])
def test_a_filtered_ledger_export_uses_the_entries_index_and_no_query_per_entry(
    container: Container, world: World, filtered_by: str
) -> None:
    scope = scopes(world)[filtered_by]  # before the bulk insert, which leaves the head behind
    seed(container, world)
    with container.sessions() as session:
        nodes, steps, shown = explain(session, SqlExports(session).entries_sql(scope, 10**9))
        assert_no_query_per_entry(nodes, steps, shown)
        if filtered_by != "author":
            # A window's entries are its account's: the same index narrows to them.
            assert_reads_the_account_index(nodes, steps, shown)
        if filtered_by == "account":
            # The derived column says it all: the posts are not read at all.
            assert "posts" not in shown, shown


@pytest.mark.parametrize("filtered_by", ["account", "window", "author"])
def test_the_ledger_viewer_search_uses_the_entries_index_and_no_query_per_entry(
    container: Container, world: World, filtered_by: str
) -> None:
    filters: dict[str, Any] = {
        "account": {"account_ids": [world.account.id]},
        "window": {"window_id": world.open_window().id},
        "author": {"author_id": world.writer_a.id},
    }[filtered_by]
    seed(container, world)
    with container.sessions() as session:
        query = SqlLedger(session).search_query(**filters)
        sql = str(
            query.compile(
                dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
        )
        nodes, steps, shown = explain(session, sql)
        assert_no_query_per_entry(nodes, steps, shown)
        if filtered_by == "account":
            # Newest first, 50 at a time: walking the primary key back and skipping the
            # other accounts' entries may be cheaper than the account index (the planner's
            # call); never a pass over the whole ledger, and the posts are not read.
            assert_reads_an_index(nodes, steps, shown)
            assert "posts" not in shown, shown


def test_the_filtered_export_lists_exactly_the_entries_about_the_filtered_posts(
    container: Container, world: World
) -> None:
    seed(container, world)
    with container.sessions() as session:
        exports = SqlExports(session)
        subjects = {
            f"post:{p}"
            for p in session.scalars(
                text("SELECT public_id FROM posts WHERE author_id = :a"), {"a": world.writer_a.id}
            )
        }
        scope = ExportScope(author_id=world.writer_a.id)
        listed = [row[4] for batch in exports.entry_rows(scope, 10**9, 1000) for row in batch]
        assert exports.count_entries(scope, 10**9) == len(listed)
        assert len(listed) >= ENTRIES // POST_EVERY
        assert (
            set(listed)
            == {s for (s,) in session.execute(text("SELECT subject FROM ledger_entries"))}
            & subjects
        )
