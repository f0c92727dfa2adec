"""The Merkle tree of RFC 9162 §2.1 (Certificate Transparency v2): tree heads and proofs.

Hashes are SHA-256. A leaf's hash is SHA-256(0x00 || leaf), an interior node's is
SHA-256(0x01 || left || right); the prefixes keep a leaf from passing for a node (second-preimage
resistance). The tree of n leaves splits at k, the largest power of two smaller than n, so it is
the same tree as RFC 6962's, and tree heads agree with every CT, Go checksum database and C2SP
tlog implementation. Leaf indices are 0-based: the ledger entry `seq` is leaf `seq - 1`.

Producing heads and proofs reads leaf hashes through a `LeafHashReader`, a function returning
the hashes of leaves [start, end) in order, so that a log held in a database is read in ranges
(e.g. `SELECT leaf_hash FROM ... WHERE seq > start AND seq <= end ORDER BY seq`, streamed) and
never loaded whole. Memory is O(log n) hashes: subtree heads are folded on a stack as leaves
stream by (a compact range). Time is O(n) hashes per head or proof because every leaf is read
once; a log that outgrows that stores the heads of complete subtrees (C2SP tlog-tiles) and reads
O(log n) of them instead: the proofs' shapes do not change.

Verification follows the RFC's algorithms (§2.1.3.2 inclusion, §2.1.4.2 consistency) step by
step, with the checks the RFC leaves to the caller: every hash is 32 bytes, a proof has at most
`MAX_PROOF_HASHES` hashes, sizes are below 2**64. A consistency proof from size 0 is refused (as
github.com/transparency-dev/merkle does): an empty tree commits to nothing, so a witness that
starts from nothing needs no proof. Between equal sizes the proof is empty and the heads equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: MTH({}) = SHA-256 of nothing.
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Tree sizes are uint64 in RFC 9162's structures.
MAX_TREE_SIZE = 2**64 - 1
#: A proof in a tree of fewer than 2**64 leaves has at most 64 hashes (65 for a consistency
#: proof once the old head is prepended); anything longer is refused before any hashing.
MAX_PROOF_HASHES = 64

#: Returns the hashes of leaves [start, end), in order.
LeafHashReader = Callable[[int, int], Iterable[bytes]]


class MerkleError(ValueError):
    """A request the tree cannot answer (an index or size out of range); the message says why."""


class ProofError(ValueError):
    """A proof did not verify; the message says which check failed."""


def leaf_hash(leaf: bytes) -> bytes:
    """Return the hash of a leaf: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """Return k, the largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def sequence_reader(leaf_hashes: Sequence[bytes]) -> LeafHashReader:
    """Return a reader over leaf hashes held in memory (tests, small logs)."""

    def read(start: int, end: int) -> Iterable[bytes]:
        return (leaf_hashes[index] for index in range(start, end))

    return read


class CompactRange:
    """The heads of the complete subtrees covering leaves [0, size): at most 64 hashes.

    What the notary keeps off the database (with its last size and root): appending the leaves
    after its last checkpoint gives the new root without reading a single older leaf, and the
    new tree extends the old one by construction. Subtrees are merged as soon as they have a
    sibling of the same height; the root folds the remaining ones from the right, which is
    exactly MTH's split at the largest power of two.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        _check_size(size)
        if len(hashes) != size.bit_count() or any(len(h) != HASH_BYTES for h in hashes):
            raise MerkleError(f"a compact range of {size} leaves has {size.bit_count()} hashes")
        self.size = size
        #: Largest subtree first: one per set bit of `size`, from the highest.
        self.hashes = list(hashes)

    def append(self, hashed: bytes) -> list[tuple[int, int, bytes]]:
        """Add the next leaf hash; return the complete aligned subtrees it completes, as
        (level, index, hash), the leaf itself (level 0) first: what a log stores to build
        proofs from O(log n) stored hashes (`subtree_nodes`)."""
        if len(hashed) != HASH_BYTES:
            raise MerkleError(f"leaf hash {self.size} has {len(hashed)} bytes, not {HASH_BYTES}")
        # Each trailing 1 bit of the size is a complete subtree the new leaf completes a
        # sibling for: merge it in.
        size, level = self.size, 0
        completed = [(0, self.size, hashed)]
        while size & 1:
            hashed = node_hash(self.hashes.pop(), hashed)
            size >>= 1
            level += 1
            completed.append((level, size, hashed))
        self.hashes.append(hashed)
        self.size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add leaf hashes in order."""
        for hashed in leaf_hashes:
            self.append(hashed)

    def root(self) -> bytes:
        """Return MTH of the leaves so far."""
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for hashed in reversed(self.hashes[:-1]):
            root = node_hash(hashed, root)
        return root


def root_of(leaf_hashes: Iterable[bytes]) -> tuple[bytes, int]:
    """Return (MTH, number of leaves) of leaf hashes given in order, in O(log n) memory."""
    compact = CompactRange()
    compact.extend(leaf_hashes)
    return compact.root(), compact.size


def subtree_root(read: LeafHashReader, start: int, end: int) -> bytes:
    """Return MTH(D[start:end]), reading those leaves' hashes once."""
    root, count = root_of(read(start, end))
    if count != end - start:
        raise MerkleError(f"the reader gave {count} leaf hashes for [{start}, {end})")
    return root


def tree_head(read: LeafHashReader, size: int) -> bytes:
    """Return MTH(D_size), the root hash of the first `size` leaves."""
    _check_size(size)
    return subtree_root(read, 0, size)


def inclusion_proof(read: LeafHashReader, index: int, size: int) -> list[bytes]:
    """Return PATH(index, D_size) (RFC 9162 §2.1.3.1), sibling of the leaf first, 0 <= index < size.

    The recursion is unrolled: walk from the root towards the leaf, taking the head of the
    subtree not containing it at each level; the RFC lists them leaf first, hence the reversal.
    """
    _check_size(size)
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is outside a tree of {size} leaves")
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + split_point(end - start)
        if index < middle:
            siblings.append(subtree_root(read, middle, end))
            end = middle
        else:
            siblings.append(subtree_root(read, start, middle))
            start = middle
    siblings.reverse()
    return siblings


def consistency_proof(read: LeafHashReader, old_size: int, new_size: int) -> list[bytes]:
    """Return PROOF(old_size, D_new_size) (RFC 9162 §2.1.4.1), 0 < old_size <= new_size.

    SUBPROOF(m, D[start:end], b) unrolled: descend while the old tree's right edge m is not the
    end of the current subtree, taking the head of the part the descent leaves; where it stops,
    the subtree D[start:start+m] is a complete old subtree, listed unless it is the old tree
    itself (b still true: the verifier knows the old head). Equal sizes give the empty proof.
    """
    _check_size(new_size)
    if not 0 < old_size <= new_size:
        raise MerkleError(f"no consistency proof from {old_size} leaves to {new_size}")
    nodes: list[bytes] = []
    start, end, whole_old_tree = 0, new_size, True
    while old_size != end:
        middle = start + split_point(end - start)
        if old_size <= middle:
            nodes.append(subtree_root(read, middle, end))
            end = middle
        else:
            nodes.append(subtree_root(read, start, middle))
            start = middle
            whole_old_tree = False
    if not whole_old_tree:
        nodes.append(subtree_root(read, start, end))
    nodes.reverse()
    return nodes


# --- proofs from stored subtree hashes --------------------------------------------------------
#
# A complete aligned subtree is leaves [index * 2**level, (index + 1) * 2**level); a log that
# stores the hash of each one as it completes (CompactRange.append returns them) builds any
# subtree head a proof needs from at most ~log n of them, instead of reading every leaf.

#: (level, index) of a complete aligned subtree.
NodeId = tuple[int, int]


def subtree_nodes(start: int, end: int) -> list[NodeId]:
    """Return the complete aligned subtrees whose heads fold into MTH(D[start:end]), largest
    first, for a range a proof asks for (start is a multiple of a power of two >= end - start,
    as every subtree of the RFC's tree is)."""
    nodes: list[NodeId] = []
    position = start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            if position % (1 << level):
                raise MerkleError(f"[{start}, {end}) is not a subtree of the tree")
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def fold_nodes(hashes: Sequence[bytes]) -> bytes:
    """Return the head of the subtree whose complete parts (largest first) have `hashes`."""
    root = hashes[-1]
    for hashed in reversed(hashes[:-1]):
        root = node_hash(hashed, root)
    return root


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose heads make PATH(index, D_size), in the proof's order."""
    _check_size(size)
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is outside a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + split_point(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose heads make PROOF(old_size, D_new_size), in its order."""
    _check_size(new_size)
    if not 0 < old_size <= new_size:
        raise MerkleError(f"no consistency proof from {old_size} leaves to {new_size}")
    ranges: list[tuple[int, int]] = []
    start, end, whole_old_tree = 0, new_size, True
    while old_size != end:
        middle = start + split_point(end - start)
        if old_size <= middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def proof_from_nodes(
    ranges: Sequence[tuple[int, int]], read_nodes: Callable[[Sequence[NodeId]], dict[NodeId, bytes]]
) -> list[bytes]:
    """Return the heads of `ranges` built from stored subtree hashes, read in one call."""
    parts = [subtree_nodes(start, end) for start, end in ranges]
    wanted = sorted({node for part in parts for node in part})
    found = read_nodes(wanted)
    missing = [node for node in wanted if len(found.get(node, b"")) != HASH_BYTES]
    if missing:
        raise MerkleError(f"stored subtree hashes are missing: {missing[:3]}")
    return [fold_nodes([found[node] for node in part]) for part in parts]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf hash `leaf` is leaf `index` of the tree of `size` leaves with `root`.

    RFC 9162 §2.1.3.2; raises ProofError, returns nothing on success.
    """
    _check_hashes(proof, leaf, root)
    _check_proof_size(size)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    if r != root:
        raise ProofError("the proof leads to another root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of `new_size` leaves with `new_root` extends the one of `old_size`.

    RFC 9162 §2.1.4.2 for old_size < new_size; equal sizes need an empty proof and equal roots;
    old_size 0 is refused. Raises ProofError, returns nothing on success.
    """
    _check_hashes(proof, old_root, new_root)
    _check_proof_size(new_size)
    if old_size <= 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if old_size > new_size:
        raise ProofError(f"the old size {old_size} is larger than the new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes take an empty proof")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")


def _check_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise MerkleError(f"tree size {size} is outside 0..2**64-1")


def _check_proof_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ProofError(f"tree size {size} is outside 0..2**64-1")


def _check_hashes(proof: Sequence[bytes], *hashes: bytes) -> None:
    # The length first, so that a huge proof costs nothing.
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError(f"a proof has at most {MAX_PROOF_HASHES} hashes, not {len(proof)}")
    for hashed in (*hashes, *proof):
        if not isinstance(hashed, bytes) or len(hashed) != HASH_BYTES:
            raise ProofError(f"every hash is {HASH_BYTES} bytes")
