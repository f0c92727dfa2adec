"""Platform secrets at rest: AES-256-GCM with a key id, the owning row bound as associated data.

Sealed values look like `gp1.<key_id>.<base64url(nonce || ciphertext+tag)>`. The associated data
names what the secret belongs to (for platform credentials: the account row, its platform, its
server and its remote id; see ghostpost.db.platform_store.account_binding), so a ciphertext
copied onto another row, or a row pointed at another server, fails to open instead of lending
the secret to someone else. Keys come from settings (`token_keys`), never the database; the
first key seals, every listed key opens, so rotation is: prepend a new key, run
`ghostpost tokens rotate`, then drop the old one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "gp1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretBoxError(ValueError):
    """A key is malformed, or a sealed value cannot be opened with the configured keys."""


def generate_key(key_id: str) -> str:
    """Return a new `key_id:base64url(32 random bytes)` entry for the token_keys setting."""
    if not _KEY_ID.match(key_id):
        raise SecretBoxError("a key id is 1-32 letters, digits, '_' or '-'")
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


def _b64decode(text: str) -> bytes:
    # validate=True: a stray character is an error, not silently dropped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse `id:key,id:key` (first seals); raise SecretBoxError naming the bad entry."""
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(filter(None, (e.strip() for e in spec.split(","))), 1):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise SecretBoxError(f"token key #{number} must read 'id:base64url-key'")
        try:
            raw = _b64decode(encoded)
        except (binascii.Error, ValueError):
            raise SecretBoxError(f"token key {key_id!r} is not base64url") from None
        if len(raw) != 32:
            raise SecretBoxError(f"token key {key_id!r} must be 32 bytes, not {len(raw)}")
        if any(existing == key_id for existing, _ in keys):
            raise SecretBoxError(f"token key id {key_id!r} is listed twice")
        keys.append((key_id, raw))
    return keys


def derived_development_key(secret_key: str) -> tuple[str, bytes]:
    """Derive a key from SECRET_KEY for development only (production must configure its own)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ghostpost token keys")
    return "dev", hkdf.derive(secret_key.encode())


class SecretBox:
    """Seals and opens JSON secrets; the first key seals, all keys open."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise SecretBoxError("at least one token key is required")
        self._active_id = keys[0][0]
        self._keys = {key_id: AESGCM(raw) for key_id, raw in keys}

    @property
    def active_key_id(self) -> str:
        """The id of the key new values are sealed with."""
        return self._active_id

    def seal(self, secret: dict[str, Any], *, bound_to: str) -> str:
        """Encrypt a JSON object for the row named by `bound_to` (e.g. `account:42`)."""
        nonce = os.urandom(12)
        plaintext = json.dumps(secret, sort_keys=True, separators=(",", ":")).encode()
        body = self._keys[self._active_id].encrypt(nonce, plaintext, bound_to.encode())
        encoded = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
        return f"{PREFIX}.{self._active_id}.{encoded}"

    def key_id_of(self, sealed: str) -> str:
        """Return the id of the key a sealed value was made with."""
        parts = sealed.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise SecretBoxError("not a sealed value")
        return parts[1]

    def knows_key_of(self, sealed: str) -> bool:
        """Tell whether a key listed here made this sealed value (so a failure to open it means
        a wrong binding or a tampered value, not a missing key)."""
        try:
            return self.key_id_of(sealed) in self._keys
        except SecretBoxError:
            return False

    def open(self, sealed: str, *, bound_to: str) -> dict[str, Any]:
        """Decrypt a value sealed for `bound_to`; SecretBoxError if the key or binding is wrong."""
        key_id = self.key_id_of(sealed)
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretBoxError(f"sealed with key {key_id!r}, which token_keys does not list")
        try:
            raw = _b64decode(sealed.split(".")[2])
            plaintext = aead.decrypt(raw[:12], raw[12:], bound_to.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretBoxError(f"sealed value does not open for {bound_to}") from None
        value = json.loads(plaintext)
        if not isinstance(value, dict):
            raise SecretBoxError("sealed value is not a JSON object")
        return value
