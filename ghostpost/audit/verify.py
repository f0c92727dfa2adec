"""Offline verification of a raw ledger export (`ghostpost-ledger/v1`).

Standard library and `cryptography` only (plus ghostpost.domain and ghostpost.audit.format /
.keys, which use nothing else): copy those files and this one to verify without ghostpost
installed. Run as `python -m ghostpost.audit.verify FILE --key PUBKEY [--trusted-checkpoint CP]`
or `ghostpost audit verify ...`.

What is checked, streaming (memory stays flat however long the export is):

1. the header: a complete export (no filters) — a filtered one is refused, not verified;
2. entries: `seq` contiguous from 1, each `prev_hash` equal to the previous `entry_hash`
   (genesis: 64 zeros), each `entry_hash` recomputed (ghostpost.domain.ledger);
3. checkpoints, in order: signed by one of the given keys (key ids are recomputed from the
   keys, never read from the export), valid Ed25519 signature over the note, sizes and
   signing times never going back, size at most the number of entries, and the head hash equal
   to the export's `entry_hash` at that size;
4. the last entry is covered by a valid checkpoint (else: an unsigned tail);
5. every trusted checkpoint (e.g. lines of the witness file) has a valid signature, and the
   export extends it: at least as many entries, and the same head at its size — else the ledger
   was truncated or rolled back (or rewritten). The notary's state file (`--notary-state`, kept
   outside the database on the notary's host) counts as a trusted checkpoint too: it is
   trusted for where it is kept, not for a signature.

After OK, `Result.vouched()` says what the trusted inputs vouch for: entries up to the largest
trusted size cannot have been rewritten, truncated or rolled back unseen; newer entries carry
the notary's signatures only, so a rollback to an earlier signed head among them is not seen.

Exit status: 0 OK, 1 FAIL (the first bad sequence number and why), 2 cannot verify (a filtered
export, an unreadable file or key).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ghostpost.audit.format import (
    ExportFormatError,
    Header,
    parse_checkpoint,
    parse_notary_state,
    read_checkpoints,
    read_export,
)
from ghostpost.audit.keys import LedgerKeyError, read_public_keys
from ghostpost.domain.checkpoint import Checkpoint, LedgerKey
from ghostpost.domain.ledger import GENESIS_HASH, LedgerEntry, entry_hash

FILTERED_MESSAGE = (
    "filtered export: entries are listed for reading; only a complete export can be verified"
)


class CannotVerify(Exception):
    """The input cannot be verified at all (filtered export, unreadable file or key)."""


@dataclass
class Result:
    """The outcome of a verification."""

    entries: int = 0
    head: str = GENESIS_HASH
    checkpoints: int = 0
    last_signed_at: str | None = None
    last_signed_size: int = 0
    trusted: int = 0
    #: The largest size a trusted checkpoint (witness, notary state) vouched for.
    trusted_size: int = 0
    #: First failure: the sequence number and the reason.
    failed_seq: int | None = None
    reason: str | None = None
    key_ids: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        """Tell whether everything verified."""
        return self.failed_seq is None

    def line(self) -> str:
        """Return the one-line verdict."""
        if not self.ok:
            return f"FAIL at seq {self.failed_seq}: {self.reason}"
        signed = self.last_signed_at or "never (no checkpoint)"
        text = f"OK: {self.entries} entries, head {self.head}, last checkpoint signed at {signed}"
        if self.trusted:
            text += f"; extends {self.trusted} trusted checkpoint(s)"
        return text

    def vouched(self) -> str:
        """Say what the verification vouches for (after OK): which entries a checkpoint kept
        outside the database covers, and which only the notary's signatures cover."""
        n, t = self.entries, self.trusted_size
        if n == 0:
            return "Vouched: nothing (the export has no entries)."
        if t >= n:
            return (
                f"Vouched: entries 1..{n} extend a trusted checkpoint kept outside the database: "
                "none of them was changed, removed, truncated or rolled back."
            )
        signed_only = (
            "carry the notary's signatures only: a change to them would have been refused, "
            "but a truncation or a rollback of the database to an earlier signed head among "
            "them would not be seen"
        )
        if t == 0:
            return (
                f"Vouched: no trusted checkpoint was given (--trusted-checkpoint, "
                f"--notary-state); entries 1..{n} {signed_only}."
            )
        return (
            f"Vouched: entries 1..{t} extend a trusted checkpoint kept outside the database; "
            f"entries {t + 1}..{n} are newer than every trusted checkpoint given and {signed_only}."
        )


class _Failure(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


class Verifier:
    """Ed25519 public keys by (recomputed) key id."""

    def __init__(self, keys: Iterable[LedgerKey]) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            raw = base64.b64decode(key.public_key, validate=True)
            self.keys[key.key_id] = Ed25519PublicKey.from_public_bytes(raw)
        if not self.keys:
            raise CannotVerify("no public key given (--key)")

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """Return why the checkpoint's signature does not verify, or None when it does."""
        public = self.keys.get(checkpoint.key_id)
        if public is None:
            return f"signed by key {checkpoint.key_id}, which is not among the given keys"
        try:
            public.verify(base64.b64decode(checkpoint.signature, validate=True), checkpoint.note())
        except (InvalidSignature, binascii.Error, ValueError):
            return f"invalid signature (key {checkpoint.key_id})"
        return None


def _checkpoint_lines(path: str | os.PathLike[str]) -> Generator[tuple[int, Checkpoint]]:
    """Yield the export's checkpoints with their line numbers, skipping other lines cheaply.

    Only a second cursor over the file: the main pass (read_export) validates every line.
    """
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if b'"checkpoint"' not in raw:
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # reported by the main pass
            if isinstance(record, dict) and record.get("type") == "checkpoint":
                try:
                    yield number, parse_checkpoint(record)
                except ValueError:
                    continue  # reported by the main pass


class _Run:
    """One verification: the entry pass drives, checkpoints are checked as their size passes."""

    def __init__(
        self, path: str | os.PathLike[str], verifier: Verifier, trusted: Sequence[Checkpoint]
    ) -> None:
        self.path = path
        self.verifier = verifier
        self.result = Result()
        self.pending = _checkpoint_lines(path)
        self.next_cp: tuple[int, Checkpoint] | None = next(self.pending, None)
        self.previous_cp: Checkpoint | None = None
        self.trusted = sorted(trusted, key=lambda c: c.size)
        self.trusted_at = 0

    # --- checkpoints in the export -------------------------------------------------------

    def _check_checkpoint(self, number: int, cp: Checkpoint, seq: int, head: str) -> None:
        """`cp` claims size `cp.size` == `seq`, whose entry hash is `head`."""
        where = f"checkpoint on line {number} ({cp.kind}, signed at {cp.signed_at})"
        problem = self.verifier.problem(cp)
        if problem:
            raise _Failure(max(cp.size, 1), f"{where}: {problem}")
        previous = self.previous_cp
        if previous is not None and cp.signed_at < previous.signed_at:
            raise _Failure(
                max(cp.size, 1),
                f"{where}: signed before the checkpoint above it ({previous.signed_at}); "
                "checkpoints reordered",
            )
        if cp.head_hash != head:
            raise _Failure(
                max(cp.size, 1),
                f"{where}: signed head for size {cp.size} is {cp.head_hash[:16]}…, the export "
                f"has {head[:16]}… — entries up to {cp.size} were changed, removed or reordered",
            )
        self.previous_cp = cp
        self.result.checkpoints += 1
        self.result.last_signed_at = cp.signed_at
        self.result.last_signed_size = cp.size
        self.result.key_ids.add(cp.key_id)

    def _checkpoints_up_to(self, seq: int, head: str) -> None:
        """Check every checkpoint of size `seq` (the entries before it are done)."""
        while self.next_cp is not None and self.next_cp[1].size <= seq:
            number, cp = self.next_cp
            if cp.size < seq:
                last = self.previous_cp.size if self.previous_cp else 0
                raise _Failure(
                    max(cp.size, 1),
                    f"checkpoint on line {number} is for size {cp.size} after one for size "
                    f"{last}: checkpoints reordered",
                )
            self._check_checkpoint(number, cp, seq, head)
            self.next_cp = next(self.pending, None)

    # --- trusted checkpoints ---------------------------------------------------------------

    def _trusted_up_to(self, seq: int, head: str) -> None:
        while self.trusted_at < len(self.trusted) and self.trusted[self.trusted_at].size <= seq:
            cp = self.trusted[self.trusted_at]
            if cp.head_hash != head:
                raise _Failure(
                    max(cp.size, 1),
                    f"the export does not extend the trusted checkpoint signed at {cp.signed_at} "
                    f"(size {cp.size}): the head there differs — history was rewritten, or "
                    "truncated or rolled back and re-grown",
                )
            self.result.trusted += 1
            self.result.trusted_size = max(self.result.trusted_size, cp.size)
            self.trusted_at += 1

    # --- the pass ------------------------------------------------------------------------

    def run(self) -> Result:
        result = self.result
        expected_seq, prev = 1, GENESIS_HASH
        seen_checkpoints = 0
        try:
            self._checkpoints_up_to(0, GENESIS_HASH)
            self._trusted_up_to(0, GENESIS_HASH)
            try:
                for record in read_export(self.path):
                    if isinstance(record, Header):
                        if not record.complete or record.filters:
                            raise CannotVerify(FILTERED_MESSAGE)
                    elif isinstance(record, Checkpoint):
                        seen_checkpoints += 1
                    elif isinstance(record, LedgerEntry):
                        self._entry(record, expected_seq, prev)
                        expected_seq, prev = record.seq + 1, record.entry_hash
                        result.entries, result.head = record.seq, record.entry_hash
                        self._checkpoints_up_to(record.seq, record.entry_hash)
                        self._trusted_up_to(record.seq, record.entry_hash)
            except ExportFormatError as exc:
                raise _Failure(expected_seq, f"line {exc.line}: {exc.reason}") from None
            self._finish(seen_checkpoints)
        except _Failure as failure:
            result.failed_seq, result.reason = failure.seq, failure.reason
        finally:
            self.pending.close()
        return result

    @staticmethod
    def _entry(entry: LedgerEntry, expected_seq: int, prev: str) -> None:
        if entry.seq != expected_seq:
            what = "missing" if entry.seq > expected_seq else "out of order or repeated"
            raise _Failure(
                expected_seq,
                f"expected entry {expected_seq}, found {entry.seq} (entries {what})",
            )
        if entry.prev_hash != prev:
            raise _Failure(
                entry.seq,
                "prev_hash does not match the previous entry's hash "
                "(an entry before it was removed, changed or reordered)",
            )
        try:
            recomputed = entry_hash(entry.body())
        except TypeError as exc:
            raise _Failure(entry.seq, f"cannot hash the entry: {exc}") from None
        if entry.entry_hash != recomputed:
            raise _Failure(entry.seq, "entry_hash does not match the entry (entry changed)")

    def _finish(self, seen_checkpoints: int) -> None:
        result = self.result
        if self.next_cp is not None:
            number, cp = self.next_cp
            raise _Failure(
                result.entries + 1,
                f"checkpoint on line {number} (signed at {cp.signed_at}) covers {cp.size} "
                f"entries, the export has {result.entries}: the tail was truncated",
            )
        if self.trusted_at < len(self.trusted):
            cp = self.trusted[self.trusted_at]
            raise _Failure(
                result.entries + 1,
                f"truncated or rolled back: the trusted checkpoint signed at {cp.signed_at} "
                f"covers {cp.size} entries, the export has {result.entries}",
            )
        if seen_checkpoints != result.checkpoints:
            raise _Failure(
                result.entries + 1,
                f"{seen_checkpoints - result.checkpoints} checkpoint line(s) are not in the "
                "canonical form and were not checked",
            )
        if result.entries and result.last_signed_size < result.entries:
            start = result.last_signed_size + 1
            raise _Failure(
                start,
                f"unsigned tail: entries {start}..{result.entries} are not covered by a signed "
                "checkpoint (added or changed after the last signed head)",
            )


class _BadTrusted(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


def load_trusted(paths: Iterable[str | os.PathLike[str]], verifier: Verifier) -> list[Checkpoint]:
    """Read trusted checkpoints (witness files: JSON Lines of checkpoints, or an earlier
    export); raises _BadTrusted when one is malformed or its signature does not verify."""
    found: list[Checkpoint] = []
    for path in paths:
        try:
            for cp in read_checkpoints(path):
                problem = verifier.problem(cp)
                if problem:
                    raise _BadTrusted(
                        max(cp.size, 1),
                        f"trusted checkpoint in {path} (size {cp.size}, signed at "
                        f"{cp.signed_at}): {problem}",
                    )
                found.append(cp)
        except ExportFormatError as exc:
            raise _BadTrusted(1, f"trusted checkpoints {path}: {exc}") from None
        except OSError as exc:
            raise CannotVerify(f"cannot read {path}: {exc}") from None
    return found


def load_notary_states(paths: Iterable[str | os.PathLike[str]]) -> list[Checkpoint]:
    """Read notary state files as trusted (unsigned) checkpoints: trusted because they are kept
    outside the database, on the notary's host."""
    found: list[Checkpoint] = []
    for path in paths:
        try:
            state = parse_notary_state(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CannotVerify(f"cannot read the notary state {path}: {exc}") from None
        found.append(
            Checkpoint(state.size, state.head_hash, state.signed_at, state.key_id, "", "notary")
        )
    return found


def verify_files(
    path: str | os.PathLike[str],
    key_paths: Sequence[str | os.PathLike[str]],
    trusted_paths: Sequence[str | os.PathLike[str]] = (),
    notary_paths: Sequence[str | os.PathLike[str]] = (),
) -> Result:
    """Verify an export with keys, trusted checkpoints (witness files) and notary state files
    read from files (raises CannotVerify when something cannot be read)."""
    keys: list[LedgerKey] = []
    for key_path in key_paths:
        # A directory: every .pub in it (the `ledger_public_keys` directory).
        files = sorted(Path(key_path).glob("*.pub")) if os.path.isdir(key_path) else [key_path]
        if not files:
            raise CannotVerify(f"no .pub key file in {key_path}")
        for file in files:
            try:
                keys += read_public_keys(file)
            except LedgerKeyError as exc:
                raise CannotVerify(str(exc)) from None
    verifier = Verifier(keys)
    if not os.path.isfile(path):
        raise CannotVerify(f"no such file: {path}")
    try:
        trusted = load_trusted(trusted_paths, verifier)
    except _BadTrusted as exc:
        return Result(failed_seq=exc.seq, reason=exc.reason)
    trusted += load_notary_states(notary_paths)
    return _Run(path, verifier, trusted).run()


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Command line: print the verdict, return the exit status."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="verify", description="Verify a ghostpost raw ledger export offline."
    )
    parser.add_argument("file")
    parser.add_argument("--key", action="append", required=True, help="public key file")
    parser.add_argument("--trusted-checkpoint", action="append", default=[])
    parser.add_argument("--notary-state", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        result = verify_files(args.file, args.key, args.trusted_checkpoint, args.notary_state)
    except CannotVerify as exc:
        print(str(exc), file=out)
        return 2
    print(result.line(), file=out)
    if result.ok:
        print(result.vouched(), file=out)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
