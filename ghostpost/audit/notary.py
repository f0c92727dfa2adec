"""The notary's files, kept outside the database (implements services.ledger_integrity.NotaryStore).

Beside `ledger_notary_state_file` (by default `notary-state.json` next to the witness file):

- `notary-state.json`: what the notary signed last (`ghostpost-notary-state/v1`: size, head
  hash, key id, signing time), replaced atomically (temporary file, fsync, rename, fsync of the
  directory) before each checkpoint is stored. `ghostpost audit verify --notary-state FILE` uses
  it as a trusted checkpoint.
- `notary-alert.json`: present while the notary refuses to sign (the reason, when, and the
  state it had). It does not depend on the ledger or the database, so monitoring can watch it.
  `ghostpost audit notary-reset` moves it aside as `notary-alert.<time>.resolved.json`.
- `notary-tree.json`: the Merkle tree it signed last (`ghostpost-notary-tree/v1`: origin, size,
  compact range, the signed checkpoint note), replaced atomically before each tree checkpoint
  is stored; without it the next pass rebuilds the tree from the entries and stored salts.
- `ledger-check.json`: the result of the last scheduled `audit check` (posts vs ledger).
- `.notary.lock`: one notary pass at a time on this host (flock).

Put the directory on a volume the database administrator cannot write.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ghostpost.audit.format import notary_state_text, parse_notary_state
from ghostpost.domain.checkpoint import NotaryAlarm, NotaryState, TreeState

ALERT_NAME = "notary-alert.json"
TREE_NAME = "notary-tree.json"
TREE_FORMAT = "ghostpost-notary-tree/v1"
CHECK_NAME = "ledger-check.json"
LOCK_NAME = ".notary.lock"


class NotaryStateError(ValueError):
    """The state file exists but cannot be read: the notary must not guess."""


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temporary file, fsync, rename, fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _state_dict(state: NotaryState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "size": state.size,
        "head_hash": state.head_hash,
        "key_id": state.key_id,
        "signed_at": state.signed_at,
    }


class FileNotaryStore:
    """The notary's state, alarm, check report and host lock as files in one directory."""

    def __init__(self, state_file: str | os.PathLike[str]) -> None:
        self.state_path = Path(state_file)
        self.alert_path = self.state_path.with_name(ALERT_NAME)
        self.check_path = self.state_path.with_name(CHECK_NAME)
        self.lock_path = self.state_path.with_name(LOCK_NAME)
        self.tree_path = self.state_path.with_name(TREE_NAME)

    def load(self) -> NotaryState | None:
        """Return what the notary signed last, or None when it never signed."""
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return parse_notary_state(text)
        except ValueError as exc:
            raise NotaryStateError(f"{self.state_path}: {exc}") from None

    def save(self, state: NotaryState) -> None:
        """Replace the state file atomically and durably."""
        write_atomically(self.state_path, notary_state_text(state).encode("utf-8"))

    def load_tree(self) -> TreeState | None:
        """Return the tree the notary signed last, or None (never signed, or reset)."""
        try:
            record = json.loads(self.tree_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise NotaryStateError(f"{self.tree_path}: {exc}") from None
        try:
            if record["format"] != TREE_FORMAT:
                raise ValueError(f"not {TREE_FORMAT}")
            return TreeState(
                origin=str(record["origin"]),
                size=int(record["size"]),
                compact=tuple(base64.b64decode(h, validate=True) for h in record["compact"]),
                note=str(record["note"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise NotaryStateError(f"{self.tree_path}: {exc}") from None

    def save_tree(self, tree: TreeState | None) -> None:
        """Replace the tree state atomically and durably (None: forget it, after a reset)."""
        if tree is None:
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.tree_path, self.tree_path.with_name(f"{TREE_NAME}.reset"))
            return
        record = {
            "format": TREE_FORMAT,
            "origin": tree.origin,
            "size": tree.size,
            "compact": [base64.b64encode(h).decode("ascii") for h in tree.compact],
            "note": tree.note,
        }
        write_atomically(self.tree_path, (json.dumps(record, indent=2) + "\n").encode())

    def alarm(self) -> NotaryAlarm | None:
        """Return the alarm on record, or None."""
        try:
            raw = self.alert_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            record = json.loads(raw)
            state = record.get("state")
            return NotaryAlarm(
                reason=str(record["reason"]),
                detected_at=str(record["detected_at"]),
                state=NotaryState(**state) if isinstance(state, dict) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            # Unreadable, but present: still an alarm (someone may have tampered with it).
            return NotaryAlarm(f"unreadable alert file {self.alert_path}", "", None)

    def raise_alarm(self, alarm: NotaryAlarm) -> None:
        """Write the alert file (atomically); the notary signs nothing while it exists."""
        record = {
            "alarm": "the ledger notary stopped signing",
            "reason": alarm.reason,
            "detected_at": alarm.detected_at,
            "state": _state_dict(alarm.state),
            "recovery": "investigate, then: ghostpost audit notary-reset --accept-current-head "
            "--reason TEXT",
        }
        write_atomically(self.alert_path, (json.dumps(record, indent=2) + "\n").encode())

    def clear_alarm(self) -> None:
        """Move the alert file aside (kept as a record of the incident)."""
        alarm = self.alarm()
        if alarm is None:
            return
        stamp = (alarm.detected_at or "unknown").replace(":", "")
        resolved = self.alert_path.with_name(f"notary-alert.{stamp}.resolved.json")
        os.replace(self.alert_path, resolved)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the host lock for one pass (yields False when another pass holds it)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # --- the scheduled posts-vs-ledger check ----------------------------------------------------

    def record_check(self, report: Mapping[str, Any]) -> None:
        """Keep the last `audit check` result (read by /healthz)."""
        write_atomically(self.check_path, (json.dumps(dict(report), indent=2) + "\n").encode())

    def last_check(self) -> dict[str, Any] | None:
        """Return the last recorded `audit check` result, or None."""
        try:
            found = json.loads(self.check_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return found if isinstance(found, dict) else None
