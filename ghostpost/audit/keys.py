"""Ed25519 signing keys of the ledger: files, the keyring, rotation.

The private key is a PKCS#8 PEM file (mode 0600) named by the `ledger_signing_key` setting; it
never enters the database. Public keys are files of one base64 line (the 32 raw bytes) after
`#` comment lines naming the key id, the fingerprint (SHA-256 hex of the raw key) and the
creation time. The `ledger_public_keys` directory holds one `<key_id>.pub` per key ever used,
so checkpoints signed before a rotation stay verifiable.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ghostpost.domain.checkpoint import PUBLIC_KEY_BYTES, LedgerKey, key_id_of

log = logging.getLogger("ghostpost.audit.keys")

PRIVATE_KEY_NAME = "ledger-ed25519.pem"
PUBLIC_KEY_NAME = "ledger-ed25519.pub"
WELL_KNOWN_FORMAT = "ghostpost-ledger-keys/v1"


class LedgerKeyError(Exception):
    """A key file is missing, unreadable or not an Ed25519 key; the message says which."""


def now_text() -> str:
    """Return the current time in the ledger's format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raw_public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    """Return the 32 raw bytes of the private key's public half."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def ledger_key(raw_public_key: bytes, created_at: str | None = None) -> LedgerKey:
    """Return the LedgerKey of raw public key bytes."""
    return LedgerKey(
        key_id=key_id_of(raw_public_key),
        public_key=base64.b64encode(raw_public_key).decode("ascii"),
        created_at=created_at,
    )


class Ed25519Signer:
    """Signs checkpoint notes with one private key (implements services.ports.HeadSigner)."""

    def __init__(self, private_key: Ed25519PrivateKey, created_at: str | None = None) -> None:
        self._private_key = private_key
        self.public = ledger_key(raw_public_bytes(private_key), created_at)

    @property
    def key_id(self) -> str:
        """Return the key id."""
        return self.public.key_id

    @property
    def public_key_bytes(self) -> bytes:
        """Return the raw 32-byte public key."""
        return base64.b64decode(self.public.public_key)

    def sign(self, note: bytes) -> str:
        """Return the base64 Ed25519 signature of `note`."""
        return base64.b64encode(self._private_key.sign(note)).decode("ascii")


# --- files ---------------------------------------------------------------------------------


def public_key_text(key: LedgerKey) -> str:
    """Return the contents of a public key file."""
    lines = [
        "# ghostpost ledger signing key (Ed25519), public half, base64 of the raw 32 bytes",
        f"# key_id: {key.key_id}",
        f"# fingerprint (SHA-256): {key.fingerprint}",
    ]
    if key.created_at:
        lines.append(f"# created_at: {key.created_at}")
    return "\n".join([*lines, key.public_key, ""])


def _decode_public(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise LedgerKeyError(f"{where}: not base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise LedgerKeyError(f"{where}: an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    return raw


def parse_public_keys(text: str, where: str = "key") -> list[LedgerKey]:
    """Read a public key file, or a well-known keys document (JSON), into LedgerKeys.

    Key ids are always recomputed from the key bytes, never taken from the file.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
            items = document["keys"]
            found = [
                ledger_key(
                    _decode_public(str(item["public_key"]), where), item.get("created_at") or None
                )
                for item in items
            ]
        except (ValueError, KeyError, TypeError):
            raise LedgerKeyError(f"{where}: not a ghostpost ledger keys document") from None
        if not found:
            raise LedgerKeyError(f"{where}: the keys document lists no key")
        return found
    created_at = None
    body = []
    for line in stripped.splitlines():
        line = line.strip()
        if line.startswith("#"):
            label, _, value = line[1:].partition(":")
            if label.strip() == "created_at" and value.strip():
                created_at = value.strip()
        elif line:
            body.append(line)
    if len(body) != 1:
        raise LedgerKeyError(f"{where}: expected one base64 line, found {len(body)}")
    return [ledger_key(_decode_public(body[0], where), created_at)]


def read_public_keys(path: str | os.PathLike[str]) -> list[LedgerKey]:
    """Read a public key file or a well-known keys document."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerKeyError(f"{path}: cannot read ({exc})") from None
    return parse_public_keys(text, str(path))


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load a PEM private key file; it must be Ed25519 and unencrypted."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LedgerKeyError(f"no ledger signing key at {path}") from None
    except OSError as exc:
        raise LedgerKeyError(f"cannot read the ledger signing key at {path}: {exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise LedgerKeyError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError(f"{path} is not an Ed25519 key")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("ledger signing key %s is readable by group or others; chmod 600 it", path)
    return key


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_new(path: Path, data: bytes, mode: int) -> Path:
    """Write `data` to a fresh temporary file next to `path` (mode set at creation), fsynced."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_file_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Create `path` atomically with `data`; return False (writing nothing) when it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_new(path, data, mode)
    try:
        os.link(tmp, path)  # fails when the file exists: never overwrite a key
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def write_file_replacing(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` atomically with `data`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(_write_new(path, data, mode), path)


def _make_private_dir(path: Path) -> None:
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)


@dataclass(frozen=True)
class GeneratedKey:
    """What `generate_keypair` wrote."""

    private_path: Path
    public_path: Path
    key: LedgerKey


def generate_keypair(out_dir: str | os.PathLike[str]) -> GeneratedKey:
    """Write a new keypair into `out_dir` (private PEM mode 0600, public key file); never
    overwrites existing files."""
    out = Path(out_dir)
    _make_private_dir(out)
    private_path, public_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    for existing in (private_path, public_path):
        if existing.exists():
            raise LedgerKeyError(f"{existing} exists; not overwriting a key")
    private_key = Ed25519PrivateKey.generate()
    key = ledger_key(raw_public_bytes(private_key), now_text())
    if not write_file_exclusive(private_path, _private_pem(private_key), 0o600):
        raise LedgerKeyError(f"{private_path} exists; not overwriting a key")
    write_file_exclusive(public_path, public_key_text(key).encode(), 0o644)
    return GeneratedKey(private_path, public_path, key)


# --- the keyring of a running ghostpost -----------------------------------------------------


class FileKeyring:
    """The current signing key (loaded lazily, generated on first use outside production) and
    the public keys ever used. Implements services.ports.HeadSigner by signing with the
    current key."""

    def __init__(
        self,
        signing_key: str | os.PathLike[str],
        public_keys: str | os.PathLike[str],
        *,
        generate_missing: bool,
    ) -> None:
        self.signing_key_path = Path(signing_key)
        self.public_keys_dir = Path(public_keys)
        self.generate_missing = generate_missing
        self._signer: Ed25519Signer | None = None
        self._lock = threading.Lock()

    def signer(self) -> Ed25519Signer:
        """Return the current signer, loading (or, when allowed, generating) the key once."""
        with self._lock:
            if self._signer is None:
                self._signer = self._load()
            return self._signer

    def _load(self) -> Ed25519Signer:
        path = self.signing_key_path
        if not path.exists() and self.generate_missing:
            _make_private_dir(path.parent)
            if write_file_exclusive(path, _private_pem(Ed25519PrivateKey.generate()), 0o600):
                log.warning("generated a ledger signing key at %s (not in production)", path)
        private_key = load_private_key(path)
        known = {k.key_id: k for k in self._stored_public_keys()}
        key_id = key_id_of(raw_public_bytes(private_key))
        created_at = known[key_id].created_at if key_id in known else now_text()
        signer = Ed25519Signer(private_key, created_at)
        if key_id not in known:
            self._publish(signer.public)
        return signer

    def _publish(self, key: LedgerKey) -> None:
        try:
            write_file_exclusive(
                self.public_keys_dir / f"{key.key_id}.pub", public_key_text(key).encode(), 0o644
            )
        except OSError as exc:
            log.warning(
                "could not add public key %s to %s: %s", key.key_id, self.public_keys_dir, exc
            )

    def _stored_public_keys(self) -> list[LedgerKey]:
        if not self.public_keys_dir.is_dir():
            return []
        found: dict[str, LedgerKey] = {}
        for path in sorted(self.public_keys_dir.glob("*.pub")):
            try:
                for key in read_public_keys(path):
                    found.setdefault(key.key_id, key)
            except LedgerKeyError as exc:
                log.warning("ignoring public key file: %s", exc)
        return list(found.values())

    @property
    def key_id(self) -> str:
        """Return the id of the current key."""
        return self.signer().key_id

    @property
    def public_key_bytes(self) -> bytes:
        """Return the current key's raw 32-byte public key."""
        return self.signer().public_key_bytes

    def sign(self, note: bytes) -> str:
        """Sign a checkpoint note with the current key."""
        return self.signer().sign(note)

    def public_keys(self) -> list[LedgerKey]:
        """Return every public key (retired and current), oldest first; the current one last
        among equals."""
        current = self.signer().public
        keys = {k.key_id: k for k in self._stored_public_keys()}
        keys[current.key_id] = keys.get(current.key_id, current)
        return sorted(keys.values(), key=lambda k: (k.key_id == current.key_id, k.created_at or ""))

    def rotate(self) -> tuple[LedgerKey, LedgerKey]:
        """Make a new key current; the old public key stays in the public keys directory and
        the old private key is destroyed (replaced). Running processes must be restarted."""
        with self._lock:
            old_id = key_id_of(raw_public_bytes(load_private_key(self.signing_key_path)))
            if old_id not in {k.key_id for k in self._stored_public_keys()}:
                self._publish(ledger_key(raw_public_bytes(load_private_key(self.signing_key_path))))
            stored = {k.key_id: k for k in self._stored_public_keys()}
            if old_id not in stored:
                raise LedgerKeyError(
                    f"could not keep the old public key in {self.public_keys_dir}; not rotating"
                )
            old = stored[old_id]
            new_private = Ed25519PrivateKey.generate()
            new = ledger_key(raw_public_bytes(new_private), now_text())
            self._publish(new)
            write_file_replacing(self.signing_key_path, _private_pem(new_private), 0o600)
            self._signer = Ed25519Signer(new_private, new.created_at)
            return old, new


def well_known_document(keys: Iterable[LedgerKey], current_key_id: str) -> dict[str, Any]:
    """Return the JSON document served at /.well-known/ghostpost-ledger-keys.json."""
    return {
        "format": WELL_KNOWN_FORMAT,
        "algorithm": "Ed25519",
        "checkpoint_note": "ghostpost/ledger/v1\\n<size>\\n<head_hash>\\n<signed_at>\\n",
        "keys": [
            {
                "key_id": key.key_id,
                "public_key": key.public_key,
                "fingerprint": key.fingerprint,
                "created_at": key.created_at,
                "current": key.key_id == current_key_id,
            }
            for key in keys
        ],
    }
