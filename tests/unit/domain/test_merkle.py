"""The RFC 9162 Merkle tree: heads, proofs and their verification.

Vectors: tests/vectors/transparency-dev-merkle (see SOURCE.md there): the reference roots of
testonly/constants.go and the 196 verification probes of testdata/{inclusion,consistency}. The
proofs we produce are checked against a literal transcription of the RFC's recursive
definitions (a second implementation, below) and by our verifier, for every (m, n) up to 64.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.merkle import (
    EMPTY_ROOT,
    MAX_PROOF_HASHES,
    CompactRange,
    MerkleError,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    sequence_reader,
    tree_head,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "transparency-dev-merkle"
PROPERTY = settings(max_examples=300, deadline=None)

# testonly/constants.go: LeafInputs() and RootHashes() (sizes 0..8).
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def leaves(count: int) -> list[bytes]:
    return [leaf_hash(b"leaf %d" % i) for i in range(count)]


# --- a second implementation: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 as written -------------------


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]  # d holds leaf hashes already
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# --- tree heads -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_tree_heads_match_the_transparency_dev_reference_roots(size: int) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAF_INPUTS[:size]]
    assert tree_head(sequence_reader(hashes), size) == ROOTS[size]


def test_the_empty_tree_has_the_hash_of_nothing() -> None:
    assert root_of([]) == (EMPTY_ROOT, 0)


def test_heads_agree_with_the_recursive_definition_up_to_130_leaves() -> None:
    hashes = leaves(130)
    for size in range(131):
        assert tree_head(sequence_reader(hashes), size) == ref_mth(hashes[:size])


def test_a_head_streams_its_leaves_once_without_holding_them() -> None:
    # A generator of 100 000 leaf hashes, as a database cursor would stream them: one read of
    # the whole range, consumed once.
    reads: list[tuple[int, int]] = []

    def read(start: int, end: int) -> Iterable[bytes]:
        reads.append((start, end))
        return (leaf_hash(i.to_bytes(8, "big")) for i in range(start, end))

    root = tree_head(read, 100_000)
    assert reads == [(0, 100_000)]
    assert len(root) == 32


def test_a_reader_that_returns_too_few_leaves_is_an_error() -> None:
    with pytest.raises(MerkleError):
        tree_head(lambda start, end: [leaf_hash(b"x")], 2)


# --- the RFC's own example (§2.1.5), 7 leaves ---------------------------------------------------


def test_the_rfc_example_proofs() -> None:
    d = [leaf_hash(leaf) for leaf in LEAF_INPUTS[:7]]
    a, b, c, dd, e, f, j = d
    g, h, i = node_hash(a, b), node_hash(c, dd), node_hash(e, f)
    k, l_ = node_hash(g, h), node_hash(i, j)
    read = sequence_reader(d)
    assert inclusion_proof(read, 0, 7) == [b, h, l_]
    assert inclusion_proof(read, 3, 7) == [c, g, l_]
    assert inclusion_proof(read, 4, 7) == [f, j, k]
    assert inclusion_proof(read, 6, 7) == [i, k]
    assert consistency_proof(read, 3, 7) == [c, dd, g, l_]
    assert consistency_proof(read, 4, 7) == [l_]
    assert consistency_proof(read, 6, 7) == [i, j, k]
    assert tree_head(read, 7) == node_hash(k, l_) == ROOTS[7]


# --- every proof up to 64 leaves ----------------------------------------------------------------


def test_every_inclusion_proof_up_to_64_leaves_is_the_rfcs_and_verifies() -> None:
    hashes = leaves(64)
    read = sequence_reader(hashes)
    for size in range(1, 65):
        root = ref_mth(hashes[:size])
        for index in range(size):
            proof = inclusion_proof(read, index, size)
            assert proof == ref_path(index, hashes[:size])
            verify_inclusion(hashes[index], index, size, proof, root)


def test_every_consistency_proof_up_to_64_leaves_is_the_rfcs_and_verifies() -> None:
    hashes = leaves(64)
    read = sequence_reader(hashes)
    for new in range(1, 65):
        new_root = ref_mth(hashes[:new])
        for old in range(1, new + 1):
            proof = consistency_proof(read, old, new)
            assert proof == ref_subproof(old, hashes[:new], True)
            verify_consistency(old, new, proof, ref_mth(hashes[:old]), new_root)


ALL_LEAVES = leaves(130)


@functools.cache
def head(size: int) -> bytes:
    """The true root of the first `size` leaves of ALL_LEAVES."""
    return ref_mth(ALL_LEAVES[:size])


def flip(hashed: bytes, bit: int) -> bytes:
    changed = bytearray(hashed)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


# A size is altered together with its root: a verifier takes both from one signed checkpoint,
# so "another size with the root of this one" is not a claim anyone can make.


@PROPERTY
@given(st.integers(1, 64), st.data())
def test_an_altered_inclusion_proof_fails(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(sequence_reader(ALL_LEAVES), index, size)
    leaf, root = ALL_LEAVES[index], head(size)
    verify_inclusion(leaf, index, size, proof, root)
    bit = data.draw(st.integers(0, 255))
    mutants: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (flip(leaf, bit), index, size, proof, root),
        (leaf, index, size, proof, flip(root, bit)),
        (leaf, index, size, [*proof, leaf], root),
        (leaf, index, size * 2, proof, head(size * 2)),
        (leaf, index, size + 1, proof, head(size + 1)),
        (leaf, index + 1, size, proof, root),
        (ALL_LEAVES[index + 1], index + 1, size, proof, root),
    ]
    if index > 0:
        mutants.append((leaf, index - 1, size, proof, root))
    if size > 1:
        mutants.append((leaf, index, size - 1, proof, head(size - 1)))
        mutants.append((leaf, index, size // 2, proof, head(size // 2)))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        changed = list(proof)
        changed[at] = flip(changed[at], bit)
        mutants.append((leaf, index, size, changed, root))
        mutants.append((leaf, index, size, proof[:at] + proof[at + 1 :], root))
        swapped = list(reversed(proof))
        if swapped != proof:
            mutants.append((leaf, index, size, swapped, root))
    for mutant in mutants:
        with pytest.raises(ProofError):
            verify_inclusion(*mutant)


@PROPERTY
@given(st.integers(2, 64), st.data())
def test_an_altered_consistency_proof_fails(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(1, new - 1))
    proof = consistency_proof(sequence_reader(ALL_LEAVES), old, new)
    old_root, new_root = head(old), head(new)
    verify_consistency(old, new, proof, old_root, new_root)
    bit = data.draw(st.integers(0, 255))
    at = data.draw(st.integers(0, len(proof) - 1))
    changed = list(proof)
    changed[at] = flip(changed[at], bit)
    mutants: list[tuple[int, int, list[bytes], bytes, bytes]] = [
        (old, new, changed, old_root, new_root),
        (old, new, proof[:at] + proof[at + 1 :], old_root, new_root),
        (old, new, [*proof, new_root], old_root, new_root),
        (old, new, proof, flip(old_root, bit), new_root),
        (old, new, proof, old_root, flip(new_root, bit)),
        (old, new, proof, new_root, old_root),
        (old, new * 2, proof, old_root, head(new * 2)),
        (old, new + 1, proof, old_root, head(new + 1)),
        (new, old, proof, new_root, old_root),
        (0, new, proof, EMPTY_ROOT, new_root),
        (old, old, proof, old_root, old_root),
    ]
    if old > 1:
        mutants.append((old - 1, new, proof, head(old - 1), new_root))
    if old + 1 < new:
        mutants.append((old + 1, new, proof, head(old + 1), new_root))
        mutants.append((old, new - 1, proof, old_root, head(new - 1)))
    for mutant in mutants:
        with pytest.raises(ProofError):
            verify_consistency(*mutant)


# --- the checks the RFC leaves to the caller ----------------------------------------------------


def test_hashes_of_another_length_are_refused() -> None:
    hashes = leaves(4)
    read = sequence_reader(hashes)
    proof = inclusion_proof(read, 1, 4)
    root = tree_head(read, 4)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(hashes[1] + b"\x00", 1, 4, proof, root)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(hashes[1], 1, 4, [proof[0][:31], proof[1]], root)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_consistency(2, 2, [], b"", b"")


def test_an_overlong_proof_is_refused_before_hashing() -> None:
    hashed = leaf_hash(b"")
    with pytest.raises(ProofError, match="at most"):
        verify_inclusion(hashed, 0, 2, [hashed] * (MAX_PROOF_HASHES + 1), hashed)
    with pytest.raises(ProofError, match="at most"):
        verify_consistency(1, 2, [hashed] * (MAX_PROOF_HASHES + 1), hashed, hashed)


def test_sizes_beyond_uint64_are_refused() -> None:
    hashed = leaf_hash(b"")
    with pytest.raises(ProofError):
        verify_inclusion(hashed, 0, 2**64, [], hashed)
    with pytest.raises(MerkleError):
        tree_head(sequence_reader([]), -1)


def test_proofs_outside_the_tree_are_not_produced() -> None:
    read = sequence_reader(leaves(4))
    for index, size in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(MerkleError):
            inclusion_proof(read, index, size)
    for old, new in ((0, 4), (5, 4), (-1, 4)):
        with pytest.raises(MerkleError):
            consistency_proof(read, old, new)


# --- transparency-dev probes --------------------------------------------------------------------


def probe_files(kind: str) -> list[Path]:
    return sorted((VECTORS / "testdata" / kind).rglob("*.json"))


def probe_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def b64_list(values: list[str] | None) -> list[bytes]:
    return [b64(value) for value in values or []]


#: Where we answer differently from transparency-dev, on purpose: its verifier accepts equal
#: sizes with 12-byte dummy roots; we refuse every hash that is not 32 bytes.
DELIBERATE_DIFFERENCES = {"additional/sizes-are-equal-one-and-proof-is-empty.json"}


def test_there_are_196_probes() -> None:
    assert len(probe_files("inclusion")) + len(probe_files("consistency")) == 196


@pytest.mark.parametrize(
    "path", probe_files("inclusion"), ids=lambda p: str(p.parent.name + "/" + p.name)
)
def test_transparency_dev_inclusion_probes(path: Path) -> None:
    probe = json.loads(path.read_text())
    args = (
        b64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        b64_list(probe["proof"]),
        b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize(
    "path", probe_files("consistency"), ids=lambda p: str(p.parent.name + "/" + p.name)
)
def test_transparency_dev_consistency_probes(path: Path) -> None:
    probe = json.loads(path.read_text())
    args = (
        probe["size1"],
        probe["size2"],
        b64_list(probe["proof"]),
        b64(probe["root1"]),
        b64(probe["root2"]),
    )
    name = f"{path.parent.name}/{path.name}"
    if probe["wantErr"] or name in DELIBERATE_DIFFERENCES:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# --- compact ranges (the notary's state) --------------------------------------------------------


def test_a_compact_range_extended_from_stored_state_gives_every_head() -> None:
    hashes = leaves(100)
    for stored in (0, 1, 5, 8, 37, 64):
        state = CompactRange()
        state.extend(hashes[:stored])
        assert len(state.hashes) == bin(stored).count("1")
        resumed = CompactRange(state.size, list(state.hashes))
        for size in range(stored + 1, 101):
            resumed.append(hashes[size - 1])
            assert resumed.root() == ref_mth(hashes[:size])


def test_a_compact_range_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(MerkleError):
        CompactRange(3, [leaf_hash(b"")])
    with pytest.raises(MerkleError):
        CompactRange(1, [b"short"])
    with pytest.raises(MerkleError):
        CompactRange().append(b"short")


# --- proofs from stored subtree hashes (what the log serves from the database) ----------------


def test_proofs_from_stored_subtree_hashes_equal_the_leaf_read_proofs_for_every_size() -> None:
    from ghostpost.domain.merkle import (
        CompactRange,
        consistency_proof,
        consistency_ranges,
        inclusion_proof,
        inclusion_ranges,
        proof_from_nodes,
        sequence_reader,
    )

    hashes = [hashlib.sha256(bytes([n])).digest() for n in range(70)]
    stored: dict[tuple[int, int], bytes] = {}
    compact = CompactRange()
    reads: list[int] = []

    def read_nodes(wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        wanted = list(wanted)
        reads.append(len(wanted))
        return {node: stored[node] for node in wanted}

    for size in range(1, len(hashes) + 1):
        for level, index, hashed in compact.append(hashes[size - 1]):
            stored[(level, index)] = hashed
        read = sequence_reader(hashes[:size])
        for index in range(size):
            assert proof_from_nodes(inclusion_ranges(index, size), read_nodes) == (
                inclusion_proof(read, index, size)
            )
        for old in range(1, size + 1):
            assert proof_from_nodes(consistency_ranges(old, size), read_nodes) == (
                consistency_proof(read, old, size)
            )
    # One read per proof, of O(log n) stored hashes (never a leaf per leaf).
    assert max(reads) <= 2 * 7
