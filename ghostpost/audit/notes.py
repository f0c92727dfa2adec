"""Ed25519 for C2SP signed notes and tree checkpoints (the domain builds and parses them).

Signing uses the notary's key through `Ed25519Signer` (ghostpost.audit.keys), so the private key
stays where it is today; the key name of a checkpoint's signature is the log's origin.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ghostpost.audit.keys import Ed25519Signer
from ghostpost.domain.checkpoint import TreeCheckpoint, parse_tree_checkpoint
from ghostpost.domain.signed_note import (
    ED25519,
    NoteSignature,
    NoteVerificationError,
    SignedNote,
    VerifierKey,
    check_note_text,
    ed25519_verifier_key,
    open_note,
)


def verifier_key_of(signer: Ed25519Signer, name: str) -> VerifierKey:
    """Return the verifier key of the signer's public key under `name` (the log's origin)."""
    return ed25519_verifier_key(name, base64.b64decode(signer.public.public_key, validate=True))


def check_ed25519(key: VerifierKey, message: bytes, signature: bytes) -> bool:
    """Return whether `signature` is the Ed25519 signature of `message` by `key`."""
    if key.signature_type != ED25519:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_note(text: str, signer: Ed25519Signer, name: str) -> SignedNote:
    """Return the note `text` signed by the signer under key name `name`."""
    check_note_text(text)
    key = verifier_key_of(signer, name)
    signature = base64.b64decode(signer.sign(text.encode("utf-8")), validate=True)
    return SignedNote(text, (NoteSignature(name, key.key_id, signature),))


def open_signed_note(data: bytes, known: Sequence[VerifierKey]) -> SignedNote:
    """Parse and verify a signed note with the known keys (see domain.signed_note.open_note)."""
    return open_note(data, known, check_ed25519)


def sign_checkpoint(checkpoint: TreeCheckpoint, signer: Ed25519Signer) -> bytes:
    """Return the checkpoint as a signed note, signed under its origin."""
    return sign_note(checkpoint.text(), signer, checkpoint.origin).encode()


def open_checkpoint(data: bytes, key: VerifierKey, origin: str) -> TreeCheckpoint:
    """Verify a signed checkpoint with the log's key and return it; refuse another log's.

    Another log's head (a staging instance, another tenant) signed by a key that happens to be
    trusted would otherwise pass: the origin is part of what the reader expects.
    """
    note = open_signed_note(data, [key])
    checkpoint = parse_tree_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise NoteVerificationError(f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
