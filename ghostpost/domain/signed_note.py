"""C2SP signed notes (c2sp.org/signed-note, golang.org/x/mod/sumdb/note): text plus signatures.

    <text, ending in "\\n">
    <blank line>
    — <key name> <base64(4-byte key id || signature)>      (one line per signature, U+2014)

A verifier key ("vkey") is `<name>+<hex key id>+<base64(signature type || public key)>`; for
Ed25519 (type 0x01) the key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key).

This module is pure: it builds, parses and refuses notes and keys, and applies the spec's rules
on which signatures count. The Ed25519 arithmetic is given to `open_note` as a function (the
`cryptography` package lives outside the domain: ghostpost.audit.notes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ED25519 = 0x01
ED25519_PUBLIC_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64
KEY_ID_BYTES = 4
SIGNATURE_PREFIX = "\u2014 "
#: The spec asks verifiers to accept at least 16; Go's reference refuses more than 100.
MAX_SIGNATURES = 100
#: Unicode spaces (all Go's unicode.IsSpace accepts, and more) and "+" cannot be in a key name.
_NOT_IN_NAMES = re.compile(r"[\s+]")


class NoteError(ValueError):
    """A note, key or signature line that does not follow the format; the message says why."""


class NoteVerificationError(ValueError):
    """A well-formed note that the known keys do not vouch for; the message says why."""


def is_valid_key_name(name: str) -> bool:
    """Key names are non-empty, without Unicode spaces or "+"."""
    return bool(name) and _NOT_IN_NAMES.search(name) is None


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """Return the key id: SHA-256(name || 0x0A || type || public key)[:4], big-endian."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    ).digest()
    return int.from_bytes(digest[:KEY_ID_BYTES], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A public key that may sign notes, with the name its signature lines carry."""

    name: str
    key_id: int
    signature_type: int
    public_key: bytes

    def text(self) -> str:
        """Return the vkey string: name+hex(key id)+base64(type || key)."""
        material = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"


def ed25519_verifier_key(name: str, public_key: bytes) -> VerifierKey:
    """Return the verifier key of a raw 32-byte Ed25519 public key under `name`."""
    if not is_valid_key_name(name):
        raise NoteError(f"{name!r} is not a valid key name")
    if len(public_key) != ED25519_PUBLIC_KEY_BYTES:
        raise NoteError("an Ed25519 public key is 32 bytes")
    return VerifierKey(name, key_id(name, ED25519, public_key), ED25519, public_key)


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a vkey string, refusing anything but a well-formed Ed25519 key whose id matches."""
    # Cut at the first two "+" only (as Go's note.NewVerifier): base64 may contain "+".
    name, _, rest = text.partition("+")
    hex_id, plus, material_text = rest.partition("+")
    if not plus:
        raise NoteError("a verifier key is name+keyid+key")
    if not is_valid_key_name(name):
        raise NoteError("the verifier key's name is not valid")
    if re.fullmatch(r"[0-9a-f]{8}", hex_id) is None:
        raise NoteError("the verifier key's id is not 8 lower-case hex digits")
    material = _strict_b64(material_text)
    if material is None or not material:
        raise NoteError("the verifier key's key is not base64")
    signature_type, public_key = material[0], material[1:]
    if int(hex_id, 16) != key_id(name, signature_type, public_key):
        raise NoteError("the verifier key's id does not match its name and key")
    if signature_type != ED25519:
        raise NoteError(f"signature type {signature_type:#04x} is not supported (only Ed25519)")
    if len(public_key) != ED25519_PUBLIC_KEY_BYTES:
        raise NoteError("an Ed25519 public key is 32 bytes")
    return VerifierKey(name, int(hex_id, 16), signature_type, public_key)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name and id, and the signature bytes after the id."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """Return the signature line, ending in a newline."""
        blob = self.key_id.to_bytes(KEY_ID_BYTES, "big") + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class SignedNote:
    """A note's text (ending in a newline) and its signatures, in the order given."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        """Return the note as its UTF-8 bytes: text, blank line, signature lines."""
        check_note_text(self.text)
        if not self.signatures:
            raise NoteError("a signed note has at least one signature")
        lines = "".join(signature.line() for signature in self.signatures)
        return (self.text + "\n" + lines).encode("utf-8")


def check_note_text(text: str) -> None:
    """Refuse a text that cannot be signed: not ending in a newline, or with control characters."""
    if not text.endswith("\n"):
        raise NoteError("a note's text ends in a newline")
    _check_characters(text)


def _check_characters(text: str) -> None:
    for character in text:
        if character < " " and character != "\n":
            raise NoteError("a note contains no control characters but newlines")


def _strict_b64(text: str) -> bytes | None:
    """Decode standard, padded base64, or return None; only the canonical spelling passes."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Non-canonical encodings (non-zero padding bits) decode too; refuse them so that one
    # signature has one spelling.
    if base64.b64encode(decoded).decode("ascii") != text:
        return None
    return decoded


def parse_note(data: bytes) -> SignedNote:
    """Parse a signed note, refusing anything the spec or Go's reference would refuse."""
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a note is UTF-8") from None
    _check_characters(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("a note has a blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("a note ends with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        blob = _strict_b64(encoded) if space else None
        if not is_valid_key_name(name) or blob is None or len(blob) < KEY_ID_BYTES + 1:
            raise NoteError("a signature line is: em dash, space, key name, space, base64")
        signatures.append(
            NoteSignature(name, int.from_bytes(blob[:KEY_ID_BYTES], "big"), blob[KEY_ID_BYTES:])
        )
    return SignedNote(text, tuple(signatures))


#: Checks one signature: (key, signed bytes, signature bytes) -> valid?
SignatureCheck = Callable[[VerifierKey, bytes, bytes], bool]


def open_note(data: bytes, known: Sequence[VerifierKey], check: SignatureCheck) -> SignedNote:
    """Parse a note and verify it with the known keys; return it with its verified signatures.

    The spec's rules: signatures of unknown keys (name and id not both known) are ignored; a
    signature of a known key must verify, or the whole note is refused; a note no known key
    signed is refused. Repeated signatures of one key count once.
    """
    note = parse_note(data)
    by_identity: dict[tuple[str, int], list[VerifierKey]] = {}
    for key in known:
        by_identity.setdefault((key.name, key.key_id), []).append(key)
    message = note.text.encode("utf-8")
    verified: dict[tuple[str, int], NoteSignature] = {}
    for signature in note.signatures:
        identity = (signature.name, signature.key_id)
        keys = by_identity.get(identity)
        if keys is None or identity in verified:
            continue
        if len(keys) > 1:
            raise NoteVerificationError(f"ambiguous key {signature.name}+{signature.key_id:08x}")
        if not check(keys[0], message, signature.signature):
            raise NoteVerificationError(
                f"invalid signature for key {signature.name}+{signature.key_id:08x}"
            )
        verified[identity] = signature
    if not verified:
        raise NoteVerificationError("no known key signed the note")
    return SignedNote(note.text, tuple(verified.values()))
