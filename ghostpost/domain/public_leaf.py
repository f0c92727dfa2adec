"""Public leaves: what the transparency log publishes of each ledger entry.

Every ledger entry is one leaf of the Merkle tree (leaf index = seq - 1), so the tree covers the
whole chain and a checkpoint's size is the ledger's size. But an entry itself is never published:
its `entry_hash` would reveal the writer (its other fields are mostly guessable, so anyone could
hash the entry once per team member and see which one matches). A leaf is the entry's *public
projection* instead:

- a published post (`post:published`): the post, its account, platform id and URL, its kind,
  who wrote it as a class ("principal" or "team", never a person), the window whose policy it
  went out under, whether it carried the disclosure, the SHA-256 of its text (the text itself is
  on the platform; the log need not keep it after a deletion), and two salted commitments:
  `writer_commit` to the writer as the entry records them, `entry_commit` to the whole entry;
- a deletion (`post:deleted`): the post and when;
- every other entry (users, tokens, windows, approvals...): sealed, only its seq and
  `entry_commit`, so the log still proves it exists, in its place, unchanged.

A commitment is SHA-256(tag || disclosure), where the disclosure is the exact canonical JSON
text an auditor is shown: `["<base64url salt>", "writer", <writer>]` or
`["<base64url salt>", "entry", "<entry_hash>"]` (as SD-JWT hashes its disclosures, so nothing is
re-serialised differently on the two sides). The salt is 32 random bytes per entry, secret; an
auditor given (entry, salt) recomputes the leaf and checks it against the log (`open_leaf`).
Without the salt, trying each team member is a 2**256 search per entry. Deleting a salt makes
that entry's commitments unopenable; the log still verifies.

Leaf bytes are the canonical JSON of the projection (sorted keys, no spaces, UTF-8: see
ghostpost.domain.ledger.canonical_json); the Merkle leaf hash is merkle.leaf_hash(leaf bytes).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ghostpost.domain.ledger import LedgerEntry, LedgerTag, canonical_json
from ghostpost.domain.merkle import leaf_hash

LEAF_FORMAT = "ghostpost-leaf/v1"
SALT_BYTES = 32
WRITER_COMMIT_TAG = b"ghostpost-writer-commit/v1\x00"
ENTRY_COMMIT_TAG = b"ghostpost-entry-commit/v1\x00"


class LeafError(ValueError):
    """An entry that cannot be projected (a bad salt, a missing field); the message says why."""


class Authorship(StrEnum):
    """Who wrote a published post, as the public may know it."""

    PRINCIPAL = "principal"
    TEAM = "team"


#: Entries whose projection is more than a sealed commitment.
PUBLIC_TAGS = frozenset({LedgerTag.POST_PUBLISHED.value, LedgerTag.POST_DELETED.value})


def _salt_text(salt: bytes) -> str:
    if len(salt) != SALT_BYTES:
        raise LeafError(f"a leaf salt is {SALT_BYTES} bytes")
    return base64.urlsafe_b64encode(salt).decode("ascii").rstrip("=")


def writer_disclosure(salt: bytes, writer: Any) -> str:
    """Return the text revealed to an auditor to open a writer commitment."""
    return canonical_json([_salt_text(salt), "writer", writer])


def entry_disclosure(salt: bytes, entry_hash: str) -> str:
    """Return the text revealed to an auditor to open an entry commitment."""
    return canonical_json([_salt_text(salt), "entry", entry_hash])


def commitment(tag: bytes, disclosure: str) -> str:
    """Return SHA-256(tag || disclosure) as lower-case hex."""
    return hashlib.sha256(tag + disclosure.encode("utf-8")).hexdigest()


def _delegated(entry: LedgerEntry, delegated: bool | None) -> bool:
    recorded = entry.data.get("delegated")
    if recorded is not None and delegated is not None and recorded is not delegated:
        raise LeafError(f"entry {entry.seq} records delegated={recorded}, not {delegated}")
    value = recorded if recorded is not None else delegated
    if not isinstance(value, bool):
        raise LeafError(f"entry {entry.seq}: whether the post was delegated is not known")
    return value


def _text_sha256(text: Any) -> str | None:
    return None if text is None else hashlib.sha256(str(text).encode("utf-8")).hexdigest()


def public_projection(
    entry: LedgerEntry, salt: bytes, *, delegated: bool | None = None
) -> dict[str, Any]:
    """Return the public projection of a ledger entry (the JSON object its leaf encodes).

    `delegated` says whether a published post was written by the team; it is needed only for a
    `post:published` entry whose data does not record it (entries written before the field).
    """
    entry_commit = commitment(ENTRY_COMMIT_TAG, entry_disclosure(salt, entry.entry_hash))
    if entry.tag not in PUBLIC_TAGS:
        return {"v": LEAF_FORMAT, "seq": entry.seq, "sealed": True, "entry_commit": entry_commit}
    projection: dict[str, Any] = {
        "v": LEAF_FORMAT,
        "seq": entry.seq,
        "occurred_at": entry.occurred_at,
        "tag": entry.tag,
        "post": entry.subject,
        "entry_commit": entry_commit,
    }
    if entry.tag == LedgerTag.POST_PUBLISHED.value:
        data: Mapping[str, Any] = entry.data
        authorship = Authorship.TEAM if _delegated(entry, delegated) else Authorship.PRINCIPAL
        projection |= {
            "account_id": data.get("account_id"),
            "kind": data.get("kind"),
            "platform_post_id": data.get("platform_post_id"),
            "platform_url": data.get("platform_url"),
            "window_id": data.get("window_id"),
            "disclosure": data.get("disclosure"),
            "text_sha256": _text_sha256(data.get("final_text")),
            "authorship": authorship.value,
            "writer_commit": commitment(
                WRITER_COMMIT_TAG, writer_disclosure(salt, data.get("writer"))
            ),
        }
    return projection


@dataclass(frozen=True)
class PublicLeaf:
    """A leaf as published: its bytes and their Merkle leaf hash."""

    seq: int
    data: bytes

    @property
    def index(self) -> int:
        """Return the leaf's index in the tree (seq - 1)."""
        return self.seq - 1

    @property
    def leaf_hash(self) -> bytes:
        """Return the RFC 9162 leaf hash of the leaf bytes."""
        return leaf_hash(self.data)

    def projection(self) -> dict[str, Any]:
        """Return the leaf's JSON object."""
        value = json.loads(self.data)
        if not isinstance(value, dict):
            raise LeafError("a leaf is a JSON object")
        return value


def public_leaf(entry: LedgerEntry, salt: bytes, *, delegated: bool | None = None) -> PublicLeaf:
    """Return the public leaf of a ledger entry."""
    projection = public_projection(entry, salt, delegated=delegated)
    return PublicLeaf(entry.seq, canonical_json(projection).encode("utf-8"))


def open_leaf(
    leaf: PublicLeaf, entry: LedgerEntry, salt: bytes, *, delegated: bool | None = None
) -> bool:
    """An auditor's check: does this (entry, salt) produce exactly this published leaf?

    The caller checks the entry against the hash chain (its entry_hash recomputed) and the leaf
    against a signed checkpoint (an inclusion proof); this binds the two.
    """
    return public_leaf(entry, salt, delegated=delegated).data == leaf.data


def writer_matches(leaf: PublicLeaf, salt: bytes, writer: Any) -> bool:
    """An auditor's check of a writer disclosure alone: is `writer` the one committed to?"""
    projection = leaf.projection()
    expected = commitment(WRITER_COMMIT_TAG, writer_disclosure(salt, writer))
    return projection.get("writer_commit") == expected
