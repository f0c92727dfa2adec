"""Public leaves: the projection of ledger entries the transparency log publishes.

The attack: anyone holding a published leaf, the post (public on the platform) and the team's
names tries each name to learn who wrote it. Today's entry_hash would answer them; a leaf
must not.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.ledger import GENESIS_HASH, LedgerEntry, LedgerTag, chain_entry, entry_hash
from ghostpost.domain.merkle import (
    inclusion_proof,
    sequence_reader,
    tree_head,
    verify_inclusion,
)
from ghostpost.domain.public_leaf import (
    ENTRY_COMMIT_TAG,
    WRITER_COMMIT_TAG,
    LeafError,
    commitment,
    entry_disclosure,
    open_leaf,
    public_leaf,
    public_projection,
    writer_disclosure,
    writer_matches,
)

TEAM = [
    {"id": 7, "email": "ana@agency.example", "name": "Ana"},
    {"id": 8, "email": "bo@agency.example", "name": "Bo"},
    {"id": 9, "email": "cy@agency.example", "name": "Cy"},
]
SALT = bytes(range(32))
OTHER_SALT = bytes(range(1, 33))


def published(writer: dict[str, Any] | None, *, seq: int = 5, **extra: Any) -> LedgerEntry:
    data: dict[str, Any] = {
        "account_id": 3,
        "kind": "regular",
        "writer": writer,
        "submitter": f"user:{writer['id']}" if writer else None,
        "source": "web",
        "approved_by": None,
        "final_text": "Shipping the new release today #team",
        "platform_post_id": "111",
        "platform_url": "https://social.example/@ceo/111",
        "window_id": 2,
        "policy_in_force": {"window_id": 2},
        "counted_in_windows": [2],
        "disclosure": True,
        "decision": None,
        "reminder_first": None,
        "reconciled": False,
        "released": [],
        **extra,
    }
    return chain_entry(
        seq=seq,
        occurred_at="2026-12-06T21:00:00.000000Z",
        tag=LedgerTag.POST_PUBLISHED.value,
        actor="system:worker",
        subject="post:p_abc",
        data=data,
        prev_hash="a" * 64,
    )


def test_the_entry_hash_reveals_the_writer_to_anyone_who_tries_each_name() -> None:
    # Why leaves exist: everything in the entry but the writer is guessable.
    entry = published(TEAM[1])
    guesses = [published(member) for member in TEAM]
    assert [g.entry_hash == entry.entry_hash for g in guesses] == [False, True, False]


def test_a_published_leaf_names_no_one() -> None:
    leaf = public_leaf(published(TEAM[1], delegated=True), SALT)
    projection = leaf.projection()
    assert projection["authorship"] == "team"
    text = leaf.data.decode()
    for member in TEAM:
        assert member["email"] not in text
        assert member["name"] not in text
    assert set(projection) == {
        "v",
        "seq",
        "occurred_at",
        "tag",
        "post",
        "entry_commit",
        "account_id",
        "kind",
        "platform_post_id",
        "platform_url",
        "window_id",
        "disclosure",
        "text_sha256",
        "authorship",
        "writer_commit",
    }
    assert (
        projection["text_sha256"]
        == hashlib.sha256(b"Shipping the new release today #team").hexdigest()
    )


def test_trying_each_name_without_the_salt_matches_nothing() -> None:
    entry = published(TEAM[1], delegated=True)
    leaf = public_leaf(entry, SALT)
    # The attacker's best tries: unsalted, or with any salt but the secret one.
    for member in TEAM:
        for guess_salt in (bytes(32), OTHER_SALT):
            assert not writer_matches(leaf, guess_salt, member)
        tried = published(member, delegated=True)
        assert public_leaf(tried, OTHER_SALT).data != leaf.data
        assert leaf.projection()["entry_commit"] != tried.entry_hash


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TEAM), st.sampled_from(TEAM), st.binary(min_size=32, max_size=32))
def test_leaves_differ_by_writer_only_in_their_commitments(
    first: dict[str, Any], second: dict[str, Any], salt: bytes
) -> None:
    a = public_projection(published(first, delegated=True), salt)
    b = public_projection(published(second, delegated=True), salt)
    differing = {key for key in a if a[key] != b[key]}
    assert differing <= {"writer_commit", "entry_commit"}
    assert (differing == set()) == (first == second)


def test_one_writers_posts_are_not_linkable_across_entries() -> None:
    one = public_leaf(published(TEAM[0], seq=5, delegated=True), SALT).projection()
    two = public_leaf(published(TEAM[0], seq=6, delegated=True), OTHER_SALT).projection()
    assert one["writer_commit"] != two["writer_commit"]


def test_an_auditor_with_the_salt_opens_the_leaf_and_nothing_else_opens_it() -> None:
    entry = published(TEAM[2], delegated=True)
    leaf = public_leaf(entry, SALT)
    assert open_leaf(leaf, entry, SALT)
    assert writer_matches(leaf, SALT, TEAM[2])
    assert not writer_matches(leaf, SALT, TEAM[1])
    assert not open_leaf(leaf, published(TEAM[1], delegated=True), SALT)
    assert not open_leaf(leaf, entry, OTHER_SALT)
    assert not open_leaf(leaf, published(TEAM[2], delegated=False), SALT)
    # The commitments are the hashes of the exact texts the auditor is shown.
    disclosure = writer_disclosure(SALT, TEAM[2])
    assert json.loads(disclosure)[1:] == ["writer", TEAM[2]]
    assert leaf.projection()["writer_commit"] == commitment(WRITER_COMMIT_TAG, disclosure)
    assert leaf.projection()["entry_commit"] == commitment(
        ENTRY_COMMIT_TAG, entry_disclosure(SALT, entry.entry_hash)
    )


def test_authorship_comes_from_the_entry_or_the_caller_never_a_guess() -> None:
    principal_post = published(TEAM[0], delegated=False)
    assert public_leaf(principal_post, SALT).projection()["authorship"] == "principal"
    older = published(TEAM[0])  # written before entries recorded "delegated"
    assert public_leaf(older, SALT, delegated=True).projection()["authorship"] == "team"
    with pytest.raises(LeafError, match="not known"):
        public_leaf(older, SALT)
    with pytest.raises(LeafError, match="records delegated"):
        public_leaf(principal_post, SALT, delegated=True)


def test_a_salt_must_be_32_bytes() -> None:
    for salt in (b"", bytes(16), bytes(33)):
        with pytest.raises(LeafError):
            public_leaf(published(TEAM[0], delegated=True), salt)


def test_other_entries_are_sealed() -> None:
    entry = chain_entry(
        seq=1,
        occurred_at="2026-12-06T20:00:00.000000Z",
        tag=LedgerTag.USER_CREATED.value,
        actor="user:1",
        subject="user:7",
        data={"email": "ana@agency.example", "name": "Ana"},
        prev_hash=GENESIS_HASH,
    )
    projection = public_leaf(entry, SALT).projection()
    assert set(projection) == {"v", "seq", "sealed", "entry_commit"}
    deleted = chain_entry(
        seq=2,
        occurred_at="2026-12-06T20:00:01.000000Z",
        tag=LedgerTag.POST_DELETED.value,
        actor="system:worker",
        subject="post:p_abc",
        data={"writer": TEAM[0]},
        prev_hash=entry.entry_hash,
    )
    projection = public_leaf(deleted, SALT).projection()
    assert projection["post"] == "post:p_abc" and "writer" not in projection


def test_leaves_of_a_chain_form_a_tree_with_index_seq_minus_one() -> None:
    entries: list[LedgerEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, 8):
        entry = published(TEAM[seq % 3], seq=seq, delegated=seq % 2 == 0)
        entry = LedgerEntry(**{**entry.__dict__, "prev_hash": prev, "entry_hash": ""})
        entry = LedgerEntry(**{**entry.__dict__, "entry_hash": entry_hash(entry.body())})
        entries.append(entry)
        prev = entry.entry_hash
    salts = [hashlib.sha256(b"salt %d" % e.seq).digest() for e in entries]
    leaves = [public_leaf(e, s) for e, s in zip(entries, salts, strict=True)]
    hashes = [leaf.leaf_hash for leaf in leaves]
    read = sequence_reader(hashes)
    root = tree_head(read, 7)
    leaf = leaves[4]
    verify_inclusion(leaf.leaf_hash, leaf.index, 7, inclusion_proof(read, leaf.index, 7), root)
    assert open_leaf(leaf, entries[4], salts[4])
