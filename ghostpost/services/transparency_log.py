"""The ledger's Merkle tree (RFC 9162), kept by the notary in its pass (never on a request).

Each ledger entry is one leaf: its public projection (domain.public_leaf), with a fresh 32-byte
salt per entry stored apart from the leaf. The notary extends its compact range (kept outside
the database, NotaryStore.load_tree) with the new entries' leaves, hashed here from the entries
it has just verified against the hash chain, never from stored hashes; stores the leaves, the
salts and the hash of every complete aligned subtree (proofs then read O(log n) stored hashes);
and signs `TreeCheckpoint(origin, size, root)` as a C2SP signed note.

Before extending it checks the database against its own state: the newest stored tree
checkpoint is the note it signed last, the stored leaves end where its tree ends, and the
stored hashes of the subtrees covering that tree are its compact range. Anything else (a
checkpoint row replaced, a frontier hash changed, leaves removed) stops the notary. A full
check (`full_check` passes) recomputes every stored leaf from its entry and salt and every
stored subtree hash, so a changed leaf, salt or interior hash is found there too; between full
checks, an altered leaf or hash fails the inclusion proof of the answers that use it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence

from ghostpost.domain.checkpoint import TreeCheckpoint, TreeState
from ghostpost.domain.ledger import LedgerEntry, LedgerTag
from ghostpost.domain.merkle import CompactRange, fold_nodes, subtree_nodes
from ghostpost.domain.public_leaf import SALT_BYTES, LeafError, public_leaf
from ghostpost.domain.signed_note import NoteSignature, SignedNote, ed25519_verifier_key
from ghostpost.services.ports import HeadSigner, LeafRecord, SignedTreeHead, UnitOfWork

#: Entries projected per batch (backfill of an existing ledger).
BATCH = 500


def sign_tree_checkpoint(checkpoint: TreeCheckpoint, signer: HeadSigner) -> str:
    """Return the checkpoint as a C2SP signed note (key name = origin), as text."""
    text = checkpoint.text()
    key = ed25519_verifier_key(checkpoint.origin, signer.public_key_bytes)
    signature = base64.b64decode(signer.sign(text.encode("utf-8")), validate=True)
    note = SignedNote(text, (NoteSignature(checkpoint.origin, key.key_id, signature),))
    return note.encode().decode("utf-8")


def project(
    uow: UnitOfWork, entries: Sequence[LedgerEntry], salts: dict[int, bytes]
) -> list[LeafRecord]:
    """Return the leaves of `entries` with the salts given (one per entry)."""
    unrecorded = [
        e.subject.removeprefix("post:")
        for e in entries
        if e.tag == LedgerTag.POST_PUBLISHED.value and e.data.get("delegated") is None
    ]
    # Entries written before `delegated` was recorded: as the post stored it at submission.
    delegated = uow.tree.delegated(unrecorded) if unrecorded else {}
    records = []
    for entry in entries:
        leaf = public_leaf(
            entry, salts[entry.seq], delegated=delegated.get(entry.subject.removeprefix("post:"))
        )
        records.append(LeafRecord(entry.seq, leaf.data, leaf.leaf_hash, salts[entry.seq]))
    return records


def check_stored_tree(uow: UnitOfWork, tree: TreeState) -> str | None:
    """Check the database's tree against the notary's state; return the problem or None.

    Run by every pass, idle or not, in one statement (TransparencyLog.edge). What it protects
    against is a database writer without the key: a newest tree head replaced, removed or
    rolled back to an older signed one (what clients are served as the log's head), leaves
    removed or added past the signed size, a subtree hash at the tree's edge (the one every
    new proof uses) or the last leaf's hash changed."""
    stored = uow.tree.edge(tree.size)
    if stored.newest_note is None or stored.newest_note != tree.note:
        return (
            "the newest tree checkpoint in the database is not the one the notary signed last "
            f"(size {tree.size}): replaced, removed or rolled back"
        )
    if stored.leaf_count != tree.size:
        return f"the database holds {stored.leaf_count} leaves, the notary's tree {tree.size}"
    if tree.size:
        wanted = subtree_nodes(0, tree.size)
        if [stored.hashes.get(node) for node in wanted] != list(tree.compact):
            return "the stored subtree hashes at the tree's edge differ from the notary's tree"
    return None


def check_every_leaf(uow: UnitOfWork, tree: TreeState) -> str | None:
    """Recompute every stored leaf from its entry and salt, and the root from them."""
    compact = CompactRange()
    stored_nodes: list[tuple[int, int, bytes]] = []
    for start in range(0, tree.size, BATCH):
        end = min(start + BATCH, tree.size)
        entries = list(uow.ledger.entries(after_seq=start, up_to_seq=end))
        salts = uow.tree.salts(after_seq=start, up_to_seq=end)
        if len(salts) != len(entries):
            return f"salts are missing between entries {start + 1} and {end}"
        stored_leaves = uow.tree.leaves(after_seq=start, up_to_seq=end)
        for record in project(uow, entries, salts):
            stored = stored_leaves.get(record.seq)
            if stored is None or (stored.leaf, stored.leaf_hash) != (
                record.leaf,
                record.leaf_hash,
            ):
                return f"the stored leaf of entry {record.seq} differs from its entry and salt"
            stored_nodes.extend(n for n in compact.append(record.leaf_hash) if n[0] > 0)
    if tuple(compact.hashes) != tree.compact:
        return "the entries and salts give another tree than the one the notary signed"
    wanted = [(level, idx) for level, idx, _ in stored_nodes]
    for start in range(0, len(wanted), BATCH):
        found = uow.tree.nodes(wanted[start : start + BATCH])
        for level, idx, hashed in stored_nodes[start : start + BATCH]:
            if found.get((level, idx)) != hashed:
                return f"the stored hash of subtree ({level}, {idx}) was changed"
    return None


def catch_up(
    uow: UnitOfWork, tree: TreeState, latest: SignedTreeHead
) -> tuple[TreeState | None, str | None]:
    """Follow a tree another notary extended past this one's state: recompute the leaves it
    added from their entries and stored salts (only those), check they are the stored ones and
    give the stored head's root; return the state at that head, or (None, the problem)."""
    compact = CompactRange(tree.size, tree.compact)
    for start in range(tree.size, latest.size, BATCH):
        end = min(start + BATCH, latest.size)
        entries = list(uow.ledger.entries(after_seq=start, up_to_seq=end))
        salts = uow.tree.salts(after_seq=start, up_to_seq=end)
        stored = uow.tree.leaves(after_seq=start, up_to_seq=end)
        if len(entries) != end - start or len(salts) != len(entries):
            return None, f"entries or salts between {start + 1} and {end} are missing"
        for record in project(uow, entries, salts):
            found = stored.get(record.seq)
            if found is None or (found.leaf, found.leaf_hash) != (record.leaf, record.leaf_hash):
                return (
                    None,
                    f"the stored leaf of entry {record.seq} differs from its entry and salt",
                )
            compact.append(record.leaf_hash)
    root = fold_nodes(compact.hashes)
    expected = TreeCheckpoint(latest.origin, latest.size, root).text()
    if root != latest.root_hash or not latest.note.startswith(expected + "\n"):
        return None, (
            f"the newest tree checkpoint (size {latest.size}) does not extend the tree this "
            f"notary signed at size {tree.size}"
        )
    return TreeState(latest.origin, latest.size, tuple(compact.hashes), latest.note), None


def extend_tree(
    uow: UnitOfWork,
    tree: TreeState | None,
    size: int,
    origin: str,
    signer: HeadSigner,
    signed_at: str,
    save: Callable[[TreeState], None],
    verified: Sequence[LedgerEntry] = (),
) -> tuple[str | None, bool]:
    """Add the leaves of entries tree.size+1..size and sign the new tree head.

    Returns (problem or None, whether a checkpoint was signed). The entries must already be
    verified against the hash chain. `save` makes the new state durable before the checkpoint
    is stored. Without a state (first pass, or after an operator's reset) the tree is rebuilt
    from entry 1, reusing the stored salts. `verified`: entries the caller has just verified
    (contiguous), used instead of reading them again where they cover a batch."""
    if tree is None:
        uow.tree.clear_derived()
        compact = CompactRange()
    else:
        latest = uow.tree.latest_checkpoint()
        if latest is not None and latest.size > tree.size:
            # Another host's notary signed since this one last did (each keeps its own state).
            tree, problem = catch_up(uow, tree, latest)
            if tree is None:
                return problem, False
            save(tree)
        problem = check_stored_tree(uow, tree)
        if problem:
            return problem, False
        compact = CompactRange(tree.size, tree.compact)
    if size < compact.size:
        return f"the ledger has {size} entries, the notary's tree {compact.size}", False
    for start in range(compact.size, size, BATCH):
        end = min(start + BATCH, size)
        if verified and verified[0].seq <= start + 1 and verified[-1].seq >= end:
            first = start + 1 - verified[0].seq
            entries = list(verified[first : first + end - start])
        else:
            entries = list(uow.ledger.entries(after_seq=start, up_to_seq=end))
        salts = uow.tree.salts(after_seq=start, up_to_seq=end)
        new_salts = {e.seq: secrets.token_bytes(SALT_BYTES) for e in entries if e.seq not in salts}
        try:
            records = project(uow, entries, salts | new_salts)
        except LeafError as exc:
            return f"cannot project an entry into its leaf: {exc}", False
        nodes: list[tuple[int, int, bytes]] = []
        for record in records:
            nodes.extend(compact.append(record.leaf_hash))
        uow.tree.add_leaves(records, new_salts)
        uow.tree.add_nodes(nodes)
    if compact.size == 0 or (
        tree is not None and (tree.size, tree.origin) == (compact.size, origin)
    ):
        return None, False
    root = fold_nodes(compact.hashes)
    note = sign_tree_checkpoint(TreeCheckpoint(origin, compact.size, root), signer)
    save(TreeState(origin, compact.size, tuple(compact.hashes), note))
    uow.tree.add_checkpoint(SignedTreeHead(origin, compact.size, root, note, signed_at))
    return None, True
