"""The transparency log's tables: public leaves, salts, complete subtree hashes, signed heads."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.orm import Session

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
from ghostpost.services.ports import LeafRecord, SignedTreeHead

#: Rows per INSERT of a (backfill) batch.
_BATCH = 500


def _head(row: TreeCheckpointRow) -> SignedTreeHead:
    return SignedTreeHead(row.origin, row.size, bytes(row.root_hash), row.note, row.signed_at)


class SqlTransparencyLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def leaf_count(self) -> int:
        found = self.session.scalar(select(LedgerLeafRow.seq).order_by(LedgerLeafRow.seq.desc()))
        return found or 0

    def salts(self, *, after_seq: int, up_to_seq: int) -> dict[int, bytes]:
        rows = self.session.execute(
            select(LedgerLeafSaltRow.seq, LedgerLeafSaltRow.salt).where(
                LedgerLeafSaltRow.seq > after_seq, LedgerLeafSaltRow.seq <= up_to_seq
            )
        )
        return {row.seq: bytes(row.salt) for row in rows}

    def add_leaves(self, leaves: Sequence[LeafRecord], new_salts: Mapping[int, bytes]) -> None:
        self.session.flush()
        leaf_rows = [{"seq": x.seq, "leaf": x.leaf, "leaf_hash": x.leaf_hash} for x in leaves]
        salt_rows = [{"seq": seq, "salt": salt} for seq, salt in new_salts.items()]
        for table, rows in ((LedgerLeafRow, leaf_rows), (LedgerLeafSaltRow, salt_rows)):
            for start in range(0, len(rows), _BATCH):
                self.session.execute(insert(table), rows[start : start + _BATCH])

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        rows = [{"level": level, "idx": idx, "hash": h} for level, idx, h in nodes if level > 0]
        for start in range(0, len(rows), _BATCH):
            self.session.execute(insert(LedgerTreeNodeRow), rows[start : start + _BATCH])

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
        self.session.add(
            TreeCheckpointRow(
                origin=head.origin,
                size=head.size,
                root_hash=head.root_hash,
                note=head.note,
                signed_at=head.signed_at,
            )
        )
        self.session.flush()

    def latest_checkpoint(self) -> SignedTreeHead | None:
        row = self.session.scalar(
            select(TreeCheckpointRow).order_by(TreeCheckpointRow.id.desc()).limit(1)
        )
        return None if row is None else _head(row)

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
