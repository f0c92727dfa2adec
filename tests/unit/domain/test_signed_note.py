"""C2SP signed notes and tlog checkpoints: formats, key ids, refusals (no cryptography here).

Vectors: tests/vectors/golang-sumdb-note (Go's sumdb/note/note_test.go) and tests/vectors/c2sp
(signed-note.md's example); the strings below are copied from them, named by their source.
Signature checks with real Ed25519 are in tests/unit/test_note_signing.py.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.checkpoint import (
    CheckpointFormatError,
    TreeCheckpoint,
    parse_tree_checkpoint,
)
from ghostpost.domain.signed_note import (
    ED25519,
    NoteError,
    NoteSignature,
    NoteVerificationError,
    SignedNote,
    VerifierKey,
    ed25519_verifier_key,
    key_id,
    open_note,
    parse_note,
    parse_verifier_key,
)
from tests.support.note_vectors import C2SP_VKEY, ENOCH_SIG, ENOCH_VKEY, PETER_SIG, PETER_VKEY, TEXT


def accept_all(key: VerifierKey, message: bytes, signature: bytes) -> bool:
    return True


def refuse_all(key: VerifierKey, message: bytes, signature: bytes) -> bool:
    return False


# --- key ids and verifier keys -----------------------------------------------------------------


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY, C2SP_VKEY])
def test_key_ids_are_computed_as_the_spec_says(vkey: str) -> None:
    name, hex_id, material = vkey.split("+")
    raw = base64.b64decode(material)
    assert raw[0] == ED25519
    assert key_id(name, ED25519, raw[1:]) == int(hex_id, 16)
    parsed = parse_verifier_key(vkey)
    assert (parsed.name, parsed.key_id, parsed.public_key) == (name, int(hex_id, 16), raw[1:])
    assert parsed.text() == vkey
    assert ed25519_verifier_key(name, raw[1:]) == parsed


def test_a_verifier_key_whose_base64_holds_a_plus_is_read() -> None:
    # Half of all keys have a "+" in their base64: only the first two "+" separate the parts.
    key = ed25519_verifier_key("example.com/log", b">" * 32)  # AT4+Pj4+Pj4+...
    assert key.text().count("+") > 2
    assert parse_verifier_key(key.text()) == key


def test_every_mangled_verifier_key_is_refused() -> None:
    # TestNewVerifier: every proper substring, and every byte incremented.
    encoded = PETER_VKEY.encode()
    manglings = {
        encoded[i:j]
        for i in range(len(encoded) + 1)
        for j in range(i + 1, len(encoded) + 1)
        if (i, j) != (0, len(encoded))
    }
    manglings |= {
        encoded[:i] + bytes([encoded[i] + 1]) + encoded[i + 1 :] for i in range(len(encoded))
    }
    for mangled in manglings:
        with pytest.raises(NoteError):
            parse_verifier_key(mangled.decode("latin-1"))


@pytest.mark.parametrize(
    "vkey",
    [
        # TestNewVerifier: a key of the wrong length and an unknown algorithm, each with its id
        # adjusted to match.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # Upper-case hex, a name with a space, an empty name.
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(vkey)


def test_a_key_name_with_a_space_or_plus_is_refused() -> None:
    for name in ("a b", "a+b", "", "a\u3000b", "a\u00a0b"):
        with pytest.raises(NoteError):
            ed25519_verifier_key(name, bytes(32))


# --- notes -------------------------------------------------------------------------------------


def test_a_note_with_two_signatures_parses_and_encodes_back() -> None:
    message = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    note = parse_note(message)
    assert note.text == TEXT
    assert [(s.name, s.key_id) for s in note.signatures] == [
        ("PeterNeumann", 0xC74F20A3),
        ("EnochRoot", 0xAF0CFE78),
    ]
    assert note.encode() == message


def test_the_text_ends_at_the_last_blank_line() -> None:
    text = "one\n\ntwo\n"
    note = parse_note((text + "\n" + PETER_SIG).encode())
    assert note.text == text


@pytest.mark.parametrize(
    "message",
    [
        # TestOpen's malformed messages.
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
        "ngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
        # A hyphen for the em dash, a short signature, non-canonical base64, a tab, a CR.
        TEXT + "\n" + PETER_SIG.replace("—", "-"),
        TEXT + "\n" + "— PeterNeumann AAAA\n",
        TEXT + "\n" + "— PeterNeumann x08go/Z=\n",
        TEXT.replace(" ", "\t", 1) + "\n" + PETER_SIG,
        TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG + "\n",
    ],
)
def test_malformed_notes_are_refused(message: str) -> None:
    with pytest.raises(NoteError):
        parse_note(message.encode())


def test_a_note_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(NoteError):
        parse_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode())


def test_signatures_of_unknown_keys_are_ignored_and_known_ones_must_verify() -> None:
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    message = (TEXT + "\n" + PETER_SIG + ENOCH_SIG + PETER_SIG).encode()
    opened = open_note(message, [peter], accept_all)
    assert [s.name for s in opened.signatures] == ["PeterNeumann"]
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_note(message, [peter], refuse_all)
    with pytest.raises(NoteVerificationError, match="no known key"):
        open_note(message, [], accept_all)
    # Same name, another id; same id, another name: unknown, so ignored, so nothing verified.
    impostors = [
        VerifierKey("PeterNeumann", 0xC74F20A4, ED25519, peter.public_key),
        VerifierKey("PeterNeuman", 0xC74F20A3, ED25519, peter.public_key),
    ]
    with pytest.raises(NoteVerificationError, match="no known key"):
        open_note(message, impostors, accept_all)
    with pytest.raises(NoteVerificationError, match="ambiguous key"):
        open_note(message, [enoch, peter, enoch], accept_all)


def test_a_note_without_signatures_cannot_be_encoded() -> None:
    with pytest.raises(NoteError):
        SignedNote(TEXT, ()).encode()
    with pytest.raises(NoteError):
        SignedNote("no newline", (NoteSignature("a", 1, b"x"),)).encode()


# --- tlog checkpoints --------------------------------------------------------------------------


def test_a_checkpoint_text_is_origin_size_and_base64_root() -> None:
    root = bytes(range(32))
    checkpoint = TreeCheckpoint("ghostpost.example/ledger", 20852163, root)
    text = checkpoint.text()
    assert text == ("ghostpost.example/ledger\n20852163\n" + base64.b64encode(root).decode() + "\n")
    assert parse_tree_checkpoint(text) == checkpoint


def test_the_c2sp_example_checkpoint_text_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = parse_tree_checkpoint(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == text


ROOT_B64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{ROOT_B64}",  # no final newline
        "o\n1\n",  # no root
        f"\n1\n{ROOT_B64}\n",  # empty origin
        f"o\n01\n{ROOT_B64}\n",  # leading zero
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n18446744073709551616\n{ROOT_B64}\n",  # 2**64
        f"o\n1\n{ROOT_B64[:-1]}\n",  # bad padding
        f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n",  # 31 bytes
        "o\n1\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n",  # URL-safe alphabet
        f"o\n1\n{ROOT_B64}\n\n",  # empty extension line
        f"o\x01\n1\n{ROOT_B64}\n",  # control character
    ],
)
def test_malformed_checkpoint_texts_are_refused(text: str) -> None:
    with pytest.raises(CheckpointFormatError):
        parse_tree_checkpoint(text)


def test_the_largest_size_and_extension_lines_parse() -> None:
    text = f"o\n18446744073709551615\n{ROOT_B64}\nextra\n"
    checkpoint = parse_tree_checkpoint(text)
    assert checkpoint.size == 2**64 - 1
    assert checkpoint.extensions == ("extra",)
    assert checkpoint.text() == text


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1).filter(lambda s: "\n" not in s), st.integers(0, 2**64 - 1))
def test_checkpoint_texts_round_trip(origin: str, size: int) -> None:
    try:
        checkpoint = TreeCheckpoint(origin, size, bytes(32))
        text = checkpoint.text()
    except CheckpointFormatError:
        return  # control characters in the origin: refused on the way out
    assert parse_tree_checkpoint(text) == checkpoint
