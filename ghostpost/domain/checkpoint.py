"""Signed heads of the ledger ("checkpoints"): the note that is signed, key ids, fingerprints.

The note follows the shape of a C2SP checkpoint (origin line, size, head, then one extra line):

    ghostpost/ledger/v1
    <size>
    <head_hash as 64 lower-case hex>
    <signed_at, RFC 3339 UTC>

each line ending in "\\n". The signature is Ed25519 over the UTF-8 bytes of the note; signing
and verifying live outside the domain (ghostpost.audit), as they need the `cryptography` package.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

CHECKPOINT_ORIGIN = "ghostpost/ledger/v1"
#: The ledger's one time format (db.repositories.ledger.format_timestamp): text order is time order.
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
KEY_ID_PATTERN = re.compile(r"[0-9a-f]{16}")
#: Ed25519 public keys and signatures, raw.
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class CheckpointKind(StrEnum):
    """Why a head was signed."""

    #: Signed by the notary because entries were appended since its last checkpoint (before
    #: the notary, each append signed its own head in its transaction: old ledgers keep those).
    APPEND = "append"
    #: Re-signed unchanged head while idle: "nothing happened" is not "history deleted".
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the ledger had `size` entries, ending in `head_hash`, at `signed_at`"."""

    size: int
    head_hash: str
    signed_at: str
    key_id: str
    #: Base64 (standard alphabet, padded) of the 64-byte Ed25519 signature of `note()`.
    signature: str
    kind: str = CheckpointKind.APPEND.value

    def note(self) -> bytes:
        """Return the signed bytes."""
        return checkpoint_note(self.size, self.head_hash, self.signed_at)

    def as_dict(self) -> dict[str, object]:
        """Return the checkpoint as plain JSON-ready values (witness files, webhooks)."""
        return {
            "size": self.size,
            "head_hash": self.head_hash,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class LedgerKey:
    """A public key that signs (or signed) checkpoints."""

    key_id: str
    #: Base64 (standard alphabet, padded) of the 32 raw Ed25519 public key bytes.
    public_key: str
    created_at: str | None = None

    @property
    def fingerprint(self) -> str:
        """Return the SHA-256 (hex) of the raw public key."""
        return key_fingerprint(base64.b64decode(self.public_key, validate=True))


def checkpoint_note(size: int, head_hash: str, signed_at: str) -> bytes:
    """Return the bytes a checkpoint signature covers."""
    return f"{CHECKPOINT_ORIGIN}\n{size}\n{head_hash}\n{signed_at}\n".encode()


def key_fingerprint(raw_public_key: bytes) -> str:
    """Return the fingerprint of a raw public key: SHA-256, lower-case hex."""
    return hashlib.sha256(raw_public_key).hexdigest()


def key_id_of(raw_public_key: bytes) -> str:
    """Return the key id: the first 16 hex characters of the fingerprint."""
    return key_fingerprint(raw_public_key)[:16]


NOTARY_STATE_FORMAT = "ghostpost-notary-state/v1"


@dataclass(frozen=True)
class NotaryState:
    """What the notary signed last, kept outside the database (a file on the notary's host).

    The notary never signs a head that does not extend this one: the entries up to `size` must
    still hash to `head_hash`. An auditor may also use it as a trusted checkpoint.
    """

    size: int
    head_hash: str
    key_id: str
    signed_at: str


@dataclass(frozen=True)
class TreeState:
    """The notary's Merkle tree as it signed it last, kept outside the database beside
    NotaryState: the compact range of leaves [0, size) (at most 64 hashes, largest subtree
    first), so the next pass extends the tree without reading an old leaf, and the signed note
    it stored, which the database's newest tree checkpoint must still be."""

    origin: str
    size: int
    compact: tuple[bytes, ...]
    note: str


@dataclass(frozen=True)
class NotaryAlarm:
    """Why the notary stopped signing; kept outside the database until an operator resets it."""

    reason: str
    detected_at: str
    #: What the notary had signed last when it stopped (None: it had signed nothing yet).
    state: NotaryState | None


# --- c2sp.org/tlog-checkpoint: the Merkle tree head as a signed note's text ---------------------
#
# Today's checkpoints (above) sign the hash chain's head; a transparency-log checkpoint signs the
# RFC 9162 Merkle root instead (ghostpost.domain.merkle), so that witnesses and readers can check
# inclusion and consistency proofs against it:
#
#     <origin>
#     <tree size, decimal, no leading zeros>
#     <root hash, standard base64>
#
# signed as a c2sp.org/signed-note (ghostpost.domain.signed_note) by a key whose name is the
# origin. Time is not in the text (the spec discourages extension lines: monitors cannot audit
# them); witnesses' cosignatures carry time.

#: Sizes are uint64, as in RFC 9162.
MAX_TREE_SIZE = 2**64 - 1
TREE_HASH_BYTES = 32


class CheckpointFormatError(ValueError):
    """A checkpoint text that does not follow c2sp.org/tlog-checkpoint; the message says why."""


@dataclass(frozen=True)
class TreeCheckpoint:
    """The tree head a log signs: its origin (identity), size and Merkle root."""

    origin: str
    size: int
    root_hash: bytes
    #: Opaque extension lines: parsed when others send them, never produced by ghostpost.
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """Return the note text, each line ending in a newline."""
        _check_tree_checkpoint(self)
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def _check_tree_checkpoint(checkpoint: TreeCheckpoint) -> None:
    if not checkpoint.origin or "\n" in checkpoint.origin:
        raise CheckpointFormatError("the origin is one non-empty line")
    if not 0 <= checkpoint.size <= MAX_TREE_SIZE:
        raise CheckpointFormatError("the tree size is outside 0..2**64-1")
    if len(checkpoint.root_hash) != TREE_HASH_BYTES:
        raise CheckpointFormatError("the root hash is 32 bytes")
    for line in checkpoint.extensions:
        if not line or "\n" in line:
            raise CheckpointFormatError("an extension line is one non-empty line")
    for line in (checkpoint.origin, *checkpoint.extensions):
        if any(character < " " for character in line):
            raise CheckpointFormatError("a checkpoint line holds no control characters")


_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


def parse_tree_checkpoint(text: str) -> TreeCheckpoint:
    """Parse a checkpoint's note text (the signed part), refusing malformed ones.

    Refused: fewer than three lines, an empty line, a size with a sign, leading zeros or beyond
    2**64-1, a root that is not canonical standard base64 of 32 bytes, a text not ending in a
    newline. The origin is returned as written: the caller checks it is the log it expects.
    """
    if not text.endswith("\n"):
        raise CheckpointFormatError("a checkpoint's text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointFormatError("a checkpoint has an origin, a size and a root hash")
    origin, size_text, root_text, *extensions = lines
    if _TREE_SIZE.fullmatch(size_text) is None or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointFormatError("the tree size is a decimal number without leading zeros")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise CheckpointFormatError("the root hash is standard base64") from None
    if base64.b64encode(root_hash).decode("ascii") != root_text:
        raise CheckpointFormatError("the root hash is canonical standard base64")
    checkpoint = TreeCheckpoint(origin, int(size_text), root_hash, tuple(extensions))
    _check_tree_checkpoint(checkpoint)
    return checkpoint
