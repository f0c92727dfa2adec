"""A filtered ledger export reads the ledger once: no plan that runs a query over the posts per
entry (PostgreSQL ran `subject IN (SELECT 'post:' || public_id ...)` under an OR as an unhashed
SubPlan per entry: quadratic, 200k entries did not finish in 5 minutes).

The plan is read with EXPLAIN on a ledger and posts table large enough (and ANALYZEd) for the
planner to choose as it would in production, on the backend under test (GP_TEST_DB). On SQLite
(whose IN-subquery list was linear) the check pins the plan chosen: one pass over the ledger,
posts looked up through their unique index.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

from ghostpost.bootstrap import Container
from ghostpost.db.exports import SqlExports
from ghostpost.db.models import LedgerEntryRow, PostRow
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
        session.execute(insert(PostRow), posts)
        session.execute(insert(LedgerEntryRow), entries)
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
        "window": ExportScope(window_id=1),  # the plan does not depend on it existing
        "author": ExportScope(author_id=world.writer_a.id),
    }


@pytest.mark.parametrize("filtered_by", ["account", "window", "author"])
def test_a_filtered_ledger_export_joins_the_posts_instead_of_querying_them_per_entry(
    container: Container, world: World, filtered_by: str
) -> None:
    seed(container, world)
    scope = scopes(world)[filtered_by]
    with container.sessions() as session:
        sql = SqlExports(session).entries_sql(scope, up_to_seq=10**9)
        if session.get_bind().dialect.name == "postgresql":
            raw = session.execute(text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            nodes = postgres_nodes(plan)
            described = json.dumps(plan, indent=1)
            assert not [n for n in nodes if "Subplan Name" in n], described
            assert not [n for n in nodes if n.get("Parent Relationship") == "SubPlan"], described
            for loop in (n for n in nodes if n["Node Type"] == "Nested Loop"):
                # A nested loop is linear only if its inner side is an index look-up.
                inner = loop["Plans"][1]
                assert inner["Node Type"] in {"Index Scan", "Index Only Scan"}, described
            assert any(n.get("Relation Name") == "posts" for n in nodes), described
        else:
            steps = [str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + sql))]
            assert not [s for s in steps if "SUBQUERY" in s or "CORRELATED" in s], steps
            # posts is looked up per entry through its unique index on public_id, not scanned.
            assert not [s for s in steps if s.startswith("SCAN posts")], steps
            assert [s for s in steps if s.startswith("SEARCH posts USING")], steps


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
