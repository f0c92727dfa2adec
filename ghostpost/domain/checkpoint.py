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
class NotaryAlarm:
    """Why the notary stopped signing; kept outside the database until an operator resets it."""

    reason: str
    detected_at: str
    #: What the notary had signed last when it stopped (None: it had signed nothing yet).
    state: NotaryState | None
