"""Ed25519 signed notes and checkpoints (ghostpost.audit.notes) on the Go and C2SP vectors.

Vectors: tests/vectors/golang-sumdb-note (note_test.go: TestSign, TestOpen) and tests/vectors/c2sp
(signed-note.md's example), copied here as literals.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ghostpost.audit.keys import Ed25519Signer
from ghostpost.audit.notes import (
    open_checkpoint,
    open_signed_note,
    sign_checkpoint,
    sign_note,
    verifier_key_of,
)
from ghostpost.domain.checkpoint import TreeCheckpoint
from ghostpost.domain.merkle import (
    consistency_proof,
    leaf_hash,
    sequence_reader,
    tree_head,
    verify_consistency,
)
from ghostpost.domain.signed_note import NoteVerificationError, parse_verifier_key
from tests.support.note_vectors import (
    C2SP_NOTE,
    C2SP_VKEY,
    ENOCH_SIG,
    ENOCH_VKEY,
    PETER_SIG,
    PETER_SKEY,
    PETER_VKEY,
    TEXT,
)


def peter_signer() -> Ed25519Signer:
    # The signer key is base64(0x01 || 32-byte Ed25519 seed).
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    return Ed25519Signer(Ed25519PrivateKey.from_private_bytes(seed))


def test_signing_reproduces_gos_signature_and_key() -> None:
    signer = peter_signer()
    assert verifier_key_of(signer, "PeterNeumann").text() == PETER_VKEY
    assert sign_note(TEXT, signer, "PeterNeumann").encode() == (TEXT + "\n" + PETER_SIG).encode()


def test_gos_note_opens_with_either_or_both_keys() -> None:
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    message = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    assert [s.name for s in open_signed_note(message, [peter]).signatures] == ["PeterNeumann"]
    both = open_signed_note(message, [peter, enoch])
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]


def test_the_c2sp_example_note_verifies() -> None:
    note = open_signed_note(C2SP_NOTE.encode(), [parse_verifier_key(C2SP_VKEY)])
    assert note.text == "This is an example message.\n"


def test_an_altered_text_or_signature_is_refused() -> None:
    peter = parse_verifier_key(PETER_VKEY)
    # TestOpen: "ABCD" spliced into the signature.
    spliced = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_signed_note(spliced.encode(), [peter])
    altered = TEXT.replace("answer", "answers") + "\n" + PETER_SIG
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_signed_note(altered.encode(), [peter])


def test_a_signed_checkpoint_opens_only_with_its_key_and_origin() -> None:
    signer = Ed25519Signer(Ed25519PrivateKey.generate())
    origin = "ghostpost.example/ledger"
    key = verifier_key_of(signer, origin)
    hashes = [leaf_hash(b"entry %d" % i) for i in range(10)]
    read = sequence_reader(hashes)
    old = TreeCheckpoint(origin, 6, tree_head(read, 6))
    new = TreeCheckpoint(origin, 10, tree_head(read, 10))

    opened_old = open_checkpoint(sign_checkpoint(old, signer), key, origin)
    opened_new = open_checkpoint(sign_checkpoint(new, signer), key, origin)
    assert (opened_old, opened_new) == (old, new)
    verify_consistency(6, 10, consistency_proof(read, 6, 10), old.root_hash, new.root_hash)

    other_log = TreeCheckpoint("staging.example/ledger", 10, new.root_hash)
    staged = sign_note(other_log.text(), signer, origin).encode()
    with pytest.raises(NoteVerificationError, match=r"not 'ghostpost\.example/ledger'"):
        open_checkpoint(staged, key, origin)
    stranger = verifier_key_of(Ed25519Signer(Ed25519PrivateKey.generate()), origin)
    with pytest.raises(NoteVerificationError):
        open_checkpoint(sign_checkpoint(new, signer), stranger, origin)
    forged = sign_checkpoint(new, signer).replace(b"\n10\n", b"\n11\n")
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_checkpoint(forged, key, origin)
