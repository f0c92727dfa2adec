"""The transparency log's tables: public leaves, salts, complete subtree hashes, signed heads."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    Insert,
    ScalarSelect,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import Session

from ghostpost.db.engine import connection_of, execute_prepared
from ghostpost.db.models import (
    LedgerEntryRow,
    LedgerLeafRow,
    LedgerLeafSaltRow,
    LedgerTreeNodeRow,
    PostRow,
    TreeCheckpointRow,
)
from ghostpost.db.repositories.ledger import to_entry
from ghostpost.domain.ledger import LedgerEntry, LedgerTag
from ghostpost.domain.merkle import subtree_nodes
from ghostpost.services.ports import LeafRecord, SignedTreeHead, StoredEdge

#: Rows per INSERT of a (backfill) batch.
_BATCH = 500

_SALTS = select(LedgerLeafSaltRow.seq, LedgerLeafSaltRow.salt).where(
    LedgerLeafSaltRow.seq > bindparam("after"), LedgerLeafSaltRow.seq <= bindparam("up_to")
)
_INSERT_LEAF = insert(cast(Table, LedgerLeafRow.__table__))
_INSERT_SALT = insert(cast(Table, LedgerLeafSaltRow.__table__))
_INSERT_NODE = insert(cast(Table, LedgerTreeNodeRow.__table__))
_INSERT_CHECKPOINT = insert(TreeCheckpointRow).values(
    origin=bindparam("origin"),
    size=bindparam("size"),
    root_hash=bindparam("root_hash"),
    note=bindparam("note"),
    signed_at=bindparam("signed_at"),
)
_LATEST_CHECKPOINT = (
    select(
        TreeCheckpointRow.origin,
        TreeCheckpointRow.size,
        TreeCheckpointRow.root_hash,
        TreeCheckpointRow.note,
        TreeCheckpointRow.signed_at,
    )
    .order_by(TreeCheckpointRow.id.desc())
    .limit(1)
)


def _edge_node(i: int) -> ScalarSelect[bytes]:
    node = LedgerTreeNodeRow
    return (
        select(node.hash)
        .where(node.level == bindparam(f"level_{i}"), node.idx == bindparam(f"idx_{i}"))
        .scalar_subquery()
    )


def _edge_statement(inner: int) -> Select[tuple[object, ...]]:
    """One SELECT of the newest head's note, the leaf count, the last leaf's hash and `inner`
    subtree hashes (each an indexed look-up): the per-pass check in one round trip."""
    newest = select(TreeCheckpointRow.note).order_by(TreeCheckpointRow.id.desc()).limit(1)
    count = select(func.coalesce(func.max(LedgerLeafRow.seq), 0))
    last = select(LedgerLeafRow.leaf_hash).where(LedgerLeafRow.seq == bindparam("size"))
    return select(
        newest.scalar_subquery().label("note"),
        count.scalar_subquery().label("leaves"),
        last.scalar_subquery().label("last_leaf"),
        *(_edge_node(i).label(f"node_{i}") for i in range(inner)),
    )


#: The edge statements by number of inner nodes (at most one per level, so at most 63).
_EDGE: dict[int, Select[tuple[object, ...]]] = {}


def _head(row: TreeCheckpointRow) -> SignedTreeHead:
    return SignedTreeHead(row.origin, row.size, bytes(row.root_hash), row.note, row.signed_at)


class SqlTransparencyLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def leaf_count(self) -> int:
        found = self.session.scalar(select(LedgerLeafRow.seq).order_by(LedgerLeafRow.seq.desc()))
        return found or 0

    def salts(self, *, after_seq: int, up_to_seq: int) -> dict[int, bytes]:
        rows = connection_of(self.session).execute(_SALTS, {"after": after_seq, "up_to": up_to_seq})
        return {row.seq: bytes(row.salt) for row in rows}

    def add_leaves(self, leaves: Sequence[LeafRecord], new_salts: Mapping[int, bytes]) -> None:
        self.session.flush()
        leaf_rows = [{"seq": x.seq, "leaf": x.leaf, "leaf_hash": x.leaf_hash} for x in leaves]
        salt_rows = [{"seq": seq, "salt": salt} for seq, salt in new_salts.items()]
        self._insert(_INSERT_LEAF, leaf_rows)
        self._insert(_INSERT_SALT, salt_rows)

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        rows = [{"level": level, "idx": idx, "hash": h} for level, idx, h in nodes if level > 0]
        self._insert(_INSERT_NODE, rows)

    def _insert(self, statement: Insert, rows: list[dict[str, Any]]) -> None:
        """Core executemany on the transaction's connection (not the ORM's bulk insert)."""
        connection = connection_of(self.session)
        for start in range(0, len(rows), _BATCH):
            connection.execute(statement, rows[start : start + _BATCH])

    def nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        leaves = [idx + 1 for level, idx in wanted if level == 0]
        inner = [(level, idx) for level, idx in wanted if level > 0]
        if leaves:
            rows = self.session.execute(
                select(LedgerLeafRow.seq, LedgerLeafRow.leaf_hash).where(
                    LedgerLeafRow.seq.in_(leaves)
                )
            )
            found |= {(0, row.seq - 1): bytes(row.leaf_hash) for row in rows}
        if inner:
            node = LedgerTreeNodeRow
            by_level: dict[int, list[int]] = {}
            for level, idx in inner:
                by_level.setdefault(level, []).append(idx)
            # One condition per level (at most 64), however many nodes are asked for.
            rows = self.session.execute(
                select(node.level, node.idx, node.hash).where(
                    or_(*(and_(node.level == lv, node.idx.in_(ix)) for lv, ix in by_level.items()))
                )
            )
            found |= {(row.level, row.idx): bytes(row.hash) for row in rows}
        return found

    def clear_derived(self) -> None:
        self.session.execute(delete(LedgerLeafRow))
        self.session.execute(delete(LedgerTreeNodeRow))

    def leaf(self, seq: int) -> LeafRecord | None:
        row = self.session.execute(
            select(LedgerLeafRow.leaf, LedgerLeafRow.leaf_hash, LedgerLeafSaltRow.salt)
            .outerjoin(LedgerLeafSaltRow, LedgerLeafSaltRow.seq == LedgerLeafRow.seq)
            .where(LedgerLeafRow.seq == seq)
        ).first()
        if row is None:
            return None
        salt = None if row.salt is None else bytes(row.salt)
        return LeafRecord(seq, bytes(row.leaf), bytes(row.leaf_hash), salt)

    def leaves(self, *, after_seq: int, up_to_seq: int) -> dict[int, LeafRecord]:
        rows = self.session.execute(
            select(
                LedgerLeafRow.seq,
                LedgerLeafRow.leaf,
                LedgerLeafRow.leaf_hash,
                LedgerLeafSaltRow.salt,
            )
            .outerjoin(LedgerLeafSaltRow, LedgerLeafSaltRow.seq == LedgerLeafRow.seq)
            .where(LedgerLeafRow.seq > after_seq, LedgerLeafRow.seq <= up_to_seq)
        )
        return {
            row.seq: LeafRecord(
                row.seq,
                bytes(row.leaf),
                bytes(row.leaf_hash),
                None if row.salt is None else bytes(row.salt),
            )
            for row in rows
        }

    def add_checkpoint(self, head: SignedTreeHead) -> None:
        self.session.flush()
        execute_prepared(
            connection_of(self.session),
            _INSERT_CHECKPOINT,
            {
                "origin": head.origin,
                "size": head.size,
                "root_hash": head.root_hash,
                "note": head.note,
                "signed_at": head.signed_at,
            },
        )

    def latest_checkpoint(self) -> SignedTreeHead | None:
        row = connection_of(self.session).execute(_LATEST_CHECKPOINT).first()
        return None if row is None else _head(row)  # type: ignore[arg-type]

    def edge(self, size: int) -> StoredEdge:
        wanted = subtree_nodes(0, size)
        inner = [node for node in wanted if node[0] > 0]
        statement = _EDGE.get(len(inner))
        if statement is None:
            statement = _EDGE[len(inner)] = _edge_statement(len(inner))
        params: dict[str, int] = {"size": size}
        for i, (level, idx) in enumerate(inner):
            params |= {f"level_{i}": level, f"idx_{i}": idx}
        # Core on the connection: the tree tables are written by Core statements only (no ORM
        # rows to flush first).
        row = connection_of(self.session).execute(statement, params).one()
        hashes: dict[tuple[int, int], Any] = {node: row[3 + i] for i, node in enumerate(inner)}
        if size % 2:  # the last leaf is a subtree of the edge by itself
            hashes[(0, size - 1)] = row.last_leaf
        return StoredEdge(
            newest_note=row.note,
            leaf_count=row.leaves,
            hashes={node: None if h is None else bytes(h) for node, h in hashes.items()},
        )

    def published_entry(self, platform_url: str) -> LedgerEntry | None:
        posts = select(PostRow.id).where(PostRow.platform_url == platform_url)
        row = self.session.scalar(
            select(LedgerEntryRow)
            .where(
                LedgerEntryRow.post_id.in_(posts),
                LedgerEntryRow.tag == LedgerTag.POST_PUBLISHED.value,
            )
            .order_by(LedgerEntryRow.seq.desc())
            .limit(1)
        )
        return None if row is None else to_entry(row)

    def delegated(self, public_ids: Collection[str]) -> dict[str, bool]:
        found: dict[str, bool] = {}
        ids = list(public_ids)
        for start in range(0, len(ids), _BATCH):
            rows = self.session.execute(
                select(PostRow.public_id, PostRow.decisions).where(
                    PostRow.public_id.in_(ids[start : start + _BATCH])
                )
            )
            for row in rows:
                decisions = row.decisions if isinstance(row.decisions, dict) else {}
                # As domain.model.Post.is_delegated reads it.
                found[row.public_id] = bool(decisions.get("delegated", True))
        return found
