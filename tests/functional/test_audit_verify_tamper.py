"""Tamper matrix: every kind of change to a 1,200-entry export is caught by `audit verify`.

One ledger is seeded per module (a few entries through the services, the rest through
SqlLedger.append, with a notary pass after every append so that every size has a signed head:
the finest checkpointing the notary can give), exported with
ghostpost.audit.format, and then mutated line by line: single-entry edits of every field,
deletions, swaps, tail truncations, forged entries after the last signed head, checkpoint and
key tampering. Each kind is tried at several positions (first, second, middle, second to last,
last, after the last signed head). An attacker is assumed to lack the signing key, so "re-chain"
variants recompute every hash after the change but cannot sign new heads.
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ghostpost.audit.format import checkpoint_line, parse_checkpoint
from ghostpost.audit.keys import Ed25519Signer, public_key_text
from ghostpost.audit.verify import CannotVerify, Result, verify_files
from ghostpost.bootstrap import bootstrap, ship_newest_checkpoint
from ghostpost.cli import main
from ghostpost.clock import FixedClock
from ghostpost.domain.checkpoint import Checkpoint, checkpoint_note
from ghostpost.domain.ledger import GENESIS_HASH, canonical_json, entry_hash
from ghostpost.settings import Settings
from tests.conftest import START, sqlite_url
from tests.support.ledger_export import public_key_file, seed_ledger, write_export
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.backend_independent(
    "the offline verifier reads export files, never a database; exports made on PostgreSQL "
    "are verified in test_ledger_signing.py"
)

ENTRIES = 1200


@dataclass
class Pristine:
    """The untouched export, parsed: header, entries and checkpoints as JSON objects."""

    directory: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]
    key: Path
    witness: Path
    signer: Ed25519Signer

    @property
    def n(self) -> int:
        return len(self.entries)

    def copy(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        return (
            dict(self.header),
            [dict(e) for e in self.entries],
            [dict(c) for c in self.checkpoints],
        )


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_template: str,
    postgres: PostgresServer | None,
) -> Iterator[Pristine]:
    root = tmp_path_factory.mktemp("tamper")
    if postgres is None:
        shutil.copy(migrated_template, root / "ledger.db")
        url = sqlite_url(root / "ledger.db")
    else:
        url = postgres.create_database(f"tamper_{uuid.uuid4().hex[:8]}", migrated_template)
    settings = Settings(
        database_url=url,
        secret_key="test-secret-key-0123456789",
        environment="test",
        ledger_signing_key=str(root / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(root / "keys" / "public"),
        ledger_witness_file=str(root / "witness.jsonl"),
    )
    clock = FixedClock(START)
    container = bootstrap(settings, clock=clock)
    try:
        seed_ledger(container, ENTRIES, sign_every=1)
        clock.advance(minutes=2)
        # An idle minute passed: a heartbeat re-signs the unchanged head.
        beat = container.notary.run_pass().checkpoint
        assert beat is not None and beat.kind == "heartbeat"
        write_export(container, root / "export.jsonl")
        ship_newest_checkpoint(container)
        key = public_key_file(container, root)
        signer = container.keyring.signer()
    finally:
        container.dispose()
    lines = [json.loads(line) for line in (root / "export.jsonl").read_text().splitlines()]
    header = lines[0]
    entries = [r for r in lines if r["type"] == "entry"]
    checkpoints = [r for r in lines if r["type"] == "checkpoint"]
    assert len(entries) == ENTRIES
    assert [c["kind"] for c in checkpoints[-2:]] == ["append", "heartbeat"]
    yield Pristine(root, header, entries, checkpoints, key, root / "witness.jsonl", signer)


# --- building mutated exports -----------------------------------------------------------------


def rehash(entry: dict[str, Any]) -> None:
    body = {k: v for k, v in entry.items() if k not in ("type", "entry_hash")}
    entry["entry_hash"] = entry_hash(body)


def rechain(entries: list[dict[str, Any]], start: int = 0, renumber: bool = False) -> None:
    """Recompute seq (optionally), prev_hash and entry_hash from index `start` on: what an
    attacker without the key can do to hide a change from the chain."""
    for i in range(start, len(entries)):
        if renumber:
            entries[i]["seq"] = i + 1
        entries[i]["prev_hash"] = entries[i - 1]["entry_hash"] if i else GENESIS_HASH
        rehash(entries[i])


def write(
    path: Path,
    header: dict[str, Any],
    entries: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for record in [header, *entries, *checkpoints]:
            fh.write(canonical_json(record) + "\n")
    return path


def verify(path: Path, keys: list[Path], trusted: list[Path] | None = None) -> Result:
    return verify_files(path, keys, trusted or [])


def positions(n: int) -> list[int]:
    """Sequence numbers tried for every kind: first, second, middle, second to last, last."""
    return [1, 2, n // 2, n - 1, n]


Mutation = Callable[[list[dict[str, Any]], list[dict[str, Any]], int], None]


def edit_field(name: str, value: Callable[[Any], Any]) -> Mutation:
    def mutate(entries: list[dict[str, Any]], _cps: list[dict[str, Any]], seq: int) -> None:
        entries[seq - 1][name] = value(entries[seq - 1][name])

    return mutate


def flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


EDITS: dict[str, Mutation] = {
    "data value": edit_field("data", lambda d: {**d, "n": -1} if "n" in d else {**d, "x": 1}),
    "data key added": edit_field("data", lambda d: {**d, "writer": "someone else"}),
    "actor": edit_field("actor", lambda a: "user:999"),
    "subject": edit_field("subject", lambda s: s + "x"),
    "tag": edit_field("tag", lambda t: "post:approved"),
    "occurred_at": edit_field("occurred_at", lambda t: t.replace("2026", "2025")),
    "seq": edit_field("seq", lambda s: s + 5),
    "prev_hash": edit_field("prev_hash", flip_hex),
    "entry_hash": edit_field("entry_hash", flip_hex),
}


# --- the untouched export -----------------------------------------------------------------


def test_the_untouched_export_verifies(pristine: Pristine) -> None:
    result = verify(pristine.directory / "export.jsonl", [pristine.key])
    assert result.ok, result.line()
    assert result.entries == ENTRIES
    assert result.checkpoints == len(pristine.checkpoints) == ENTRIES + 1
    assert result.line() == (
        f"OK: {ENTRIES} entries, head {pristine.entries[-1]['entry_hash']}, "
        f"last checkpoint signed at {pristine.checkpoints[-1]['signed_at']}"
    )
    with_witness = verify(pristine.directory / "export.jsonl", [pristine.key], [pristine.witness])
    assert with_witness.ok and with_witness.trusted == 1, with_witness.line()


def test_the_cli_prints_ok_and_exits_0(pristine: Pristine) -> None:
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "verify",
            str(pristine.directory / "export.jsonl"),
            "--key",
            str(pristine.key),
            "--trusted-checkpoint",
            str(pristine.witness),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: {ENTRIES} entries, head ")


# --- single-entry edits ---------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(EDITS))
def test_every_single_entry_edit_is_detected_at_its_seq(
    pristine: Pristine, tmp_path: Path, field: str
) -> None:
    for seq in positions(pristine.n):
        header, entries, cps = pristine.copy()
        EDITS[field](entries, cps, seq)
        result = verify(write(tmp_path / f"{seq}.jsonl", header, entries, cps), [pristine.key])
        assert not result.ok and result.failed_seq == seq, (field, seq, result.line())


@pytest.mark.parametrize("field", ["data value", "actor", "tag", "occurred_at"])
def test_an_edit_hidden_by_rechaining_is_caught_by_the_signed_head_at_its_seq(
    pristine: Pristine, tmp_path: Path, field: str
) -> None:
    for seq in positions(pristine.n):
        header, entries, cps = pristine.copy()
        EDITS[field](entries, cps, seq)
        rechain(entries, seq - 1)
        result = verify(write(tmp_path / f"{seq}.jsonl", header, entries, cps), [pristine.key])
        assert not result.ok and result.failed_seq == seq, (field, seq, result.line())
        assert "signed head" in (result.reason or "")


def test_an_unknown_field_in_an_entry_is_refused(pristine: Pristine, tmp_path: Path) -> None:
    for seq in positions(pristine.n):
        header, entries, cps = pristine.copy()
        entries[seq - 1]["note"] = "added"
        result = verify(write(tmp_path / f"{seq}.jsonl", header, entries, cps), [pristine.key])
        assert not result.ok and result.failed_seq == seq, result.line()
        assert "unknown field" in (result.reason or "")


# --- deletions, swaps ------------------------------------------------------------------------


@pytest.mark.parametrize("rechained", [False, True], ids=["plain", "renumbered+rechained"])
def test_every_deletion_is_detected(pristine: Pristine, tmp_path: Path, rechained: bool) -> None:
    for seq in positions(pristine.n):
        header, entries, cps = pristine.copy()
        del entries[seq - 1]
        if rechained:
            rechain(entries, seq - 1, renumber=True)
        result = verify(write(tmp_path / f"{seq}.jsonl", header, entries, cps), [pristine.key])
        assert not result.ok and result.failed_seq == seq, (seq, result.line())


@pytest.mark.parametrize("rechained", [False, True], ids=["plain", "renumbered+rechained"])
def test_every_swap_of_two_entries_is_detected(
    pristine: Pristine, tmp_path: Path, rechained: bool
) -> None:
    n = pristine.n
    pairs = [(1, 2), (1, n), (2, n // 2), (n // 2, n // 2 + 1), (n // 2, n), (n - 1, n)]
    for first, second in pairs:
        header, entries, cps = pristine.copy()
        entries[first - 1], entries[second - 1] = entries[second - 1], entries[first - 1]
        if rechained:
            rechain(entries, first - 1, renumber=True)
        path = write(tmp_path / f"{first}-{second}.jsonl", header, entries, cps)
        result = verify(path, [pristine.key])
        assert not result.ok and result.failed_seq == first, (first, second, result.line())


def test_a_duplicated_entry_is_detected(pristine: Pristine, tmp_path: Path) -> None:
    for seq in positions(pristine.n):
        header, entries, cps = pristine.copy()
        entries.insert(seq, dict(entries[seq - 1]))
        result = verify(write(tmp_path / f"{seq}.jsonl", header, entries, cps), [pristine.key])
        assert not result.ok and result.failed_seq == seq + 1, (seq, result.line())


# --- truncation --------------------------------------------------------------------------------


def truncation_sizes(n: int) -> list[int]:
    """How many entries remain: none, one, half, all but one."""
    return [0, 1, n // 2, n - 1]


def test_a_truncated_tail_is_detected_by_the_checkpoints_it_left(
    pristine: Pristine, tmp_path: Path
) -> None:
    for kept in truncation_sizes(pristine.n):
        header, entries, cps = pristine.copy()
        result = verify(
            write(tmp_path / f"{kept}.jsonl", header, entries[:kept], cps), [pristine.key]
        )
        assert not result.ok and result.failed_seq == kept + 1, (kept, result.line())
        assert "truncated" in (result.reason or "")


def test_a_truncated_tail_with_its_checkpoints_dropped_fails_against_a_trusted_checkpoint(
    pristine: Pristine, tmp_path: Path
) -> None:
    for kept in truncation_sizes(pristine.n):
        header, entries, cps = pristine.copy()
        cps = [c for c in cps if c["size"] <= kept]
        path = write(tmp_path / f"{kept}.jsonl", header, entries[:kept], cps)
        if kept:
            # The export alone is a consistent, signed prefix: only an outside checkpoint can
            # tell (the documented limit).
            assert verify(path, [pristine.key]).ok
        result = verify(path, [pristine.key], [pristine.witness])
        assert not result.ok and result.failed_seq == kept + 1, (kept, result.line())
        assert "truncated or rolled back" in (result.reason or "")


def test_an_export_of_an_older_state_fails_against_a_newer_trusted_checkpoint(
    pristine: Pristine, tmp_path: Path
) -> None:
    # A trusted checkpoint from a previous export (any export's checkpoints may be used).
    header, entries, cps = pristine.copy()
    older = write(
        tmp_path / "older.jsonl", header, entries[:600], [c for c in cps if c["size"] <= 600]
    )
    assert verify(older, [pristine.key], [tmp_path / "older.jsonl"]).ok
    result = verify(older, [pristine.key], [pristine.directory / "export.jsonl"])
    assert not result.ok and "truncated or rolled back" in (result.reason or "")


# --- after the last signed head --------------------------------------------------------------


def forged_entry(previous: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "type": "entry",
        "seq": previous["seq"] + 1,
        "occurred_at": previous["occurred_at"],
        "tag": "post:submitted",
        "actor": "user:1",
        "subject": "post:forged",
        "data": {"text": "never written by this person"},
        "prev_hash": previous["entry_hash"],
    }
    rehash(entry)
    return entry


def test_entries_after_the_last_signed_head_are_an_unsigned_tail(
    pristine: Pristine, tmp_path: Path
) -> None:
    n = pristine.n
    header, entries, cps = pristine.copy()
    entries.append(forged_entry(entries[-1]))
    entries.append(forged_entry(entries[-1]))
    result = verify(write(tmp_path / "appended.jsonl", header, entries, cps), [pristine.key])
    assert not result.ok and result.failed_seq == n + 1, result.line()
    assert f"entries {n + 1}..{n + 2} are not covered" in (result.reason or "")


@pytest.mark.parametrize("last_signed", [0, 1, ENTRIES // 2, ENTRIES - 3])
def test_an_edit_after_the_last_signed_head_left_in_the_export_is_detected(
    pristine: Pristine, tmp_path: Path, last_signed: int
) -> None:
    # The checkpoints after `last_signed` are dropped (as an attacker would, to re-chain freely
    # afterwards); every entry after it, edited and re-chained or not, is then unsigned.
    for seq in sorted({last_signed + 1, (last_signed + pristine.n) // 2 + 1, pristine.n}):
        header, entries, cps = pristine.copy()
        cps = [c for c in cps if c["size"] <= last_signed]
        EDITS["data value"](entries, cps, seq)
        rechain(entries, seq - 1)
        result = verify(write(tmp_path / f"{seq}.jsonl", header, entries, cps), [pristine.key])
        assert not result.ok and result.failed_seq == last_signed + 1, (seq, result.line())
        assert "unsigned tail" in (result.reason or "")
        trusted = verify(tmp_path / f"{seq}.jsonl", [pristine.key], [pristine.witness])
        assert not trusted.ok


# --- checkpoints and keys ----------------------------------------------------------------------


def test_a_changed_checkpoint_is_detected(pristine: Pristine, tmp_path: Path) -> None:
    n = pristine.n
    for index in (0, n // 2, n - 1, n):  # the last one is the heartbeat
        for name, change in (
            ("signature", lambda c: {**c, "signature": base64.b64encode(b"\0" * 64).decode()}),
            ("head_hash", lambda c: {**c, "head_hash": flip_hex(c["head_hash"])}),
            ("signed_at", lambda c: {**c, "signed_at": c["signed_at"].replace("2026", "2027")}),
            ("size", lambda c: {**c, "size": c["size"] - 1 if c["size"] > 1 else 2}),
        ):
            header, entries, cps = pristine.copy()
            cps[index] = change(cps[index])
            result = verify(
                write(tmp_path / f"{index}-{name}.jsonl", header, entries, cps), [pristine.key]
            )
            assert not result.ok, (index, name, result.line())


def test_reordered_checkpoints_are_detected(pristine: Pristine, tmp_path: Path) -> None:
    header, entries, cps = pristine.copy()
    cps[10], cps[11] = cps[11], cps[10]
    result = verify(write(tmp_path / "reordered.jsonl", header, entries, cps), [pristine.key])
    assert not result.ok and "reordered" in (result.reason or ""), result.line()


def test_a_history_re_signed_with_another_key_is_refused(
    pristine: Pristine, tmp_path: Path
) -> None:
    # The attacker rewrites entry 500, re-chains, signs every head with their own key and puts
    # their public key in the header: only keys given out of band are trusted.
    forger = Ed25519Signer(Ed25519PrivateKey.generate())
    header, entries, cps = pristine.copy()
    EDITS["actor"](entries, cps, 500)
    rechain(entries, 499)
    forged = []
    for c in cps:
        head = entries[c["size"] - 1]["entry_hash"] if c["size"] else GENESIS_HASH
        note = checkpoint_note(c["size"], head, c["signed_at"])
        forged.append(
            {**c, "head_hash": head, "key_id": forger.key_id, "signature": forger.sign(note)}
        )
    header["keys"] = [
        {"key_id": forger.key_id, "public_key": forger.public.public_key, "created_at": None}
    ]
    path = write(tmp_path / "forged.jsonl", header, entries, forged)
    result = verify(path, [pristine.key])
    assert not result.ok and "not among the given keys" in (result.reason or ""), result.line()
    # With the forger's key the file is self-consistent: which is why keys are pinned.
    forged_key = tmp_path / "forger.pub"
    forged_key.write_text(public_key_text(forger.public))
    assert verify(path, [forged_key]).ok


def test_a_forged_trusted_checkpoint_is_refused(pristine: Pristine, tmp_path: Path) -> None:
    line = pristine.witness.read_text().splitlines()[-1]
    cp = parse_checkpoint(json.loads(line))
    bad = Checkpoint(cp.size + 5, cp.head_hash, cp.signed_at, cp.key_id, cp.signature, cp.kind)
    witness = tmp_path / "witness.jsonl"
    witness.write_text(checkpoint_line(bad))
    result = verify(pristine.directory / "export.jsonl", [pristine.key], [witness])
    assert not result.ok and "invalid signature" in (result.reason or ""), result.line()


def test_a_rollback_to_an_old_backup_that_kept_growing_fails_against_the_witness(
    pristine: Pristine, tmp_path: Path
) -> None:
    # Restored at 800 entries, then the application went on signing new, different entries
    # with the real key: the export verifies alone, not against what the witness saw.
    header, entries, cps = pristine.copy()
    entries, cps = entries[:800], [c for c in cps if c["size"] <= 800]
    for _ in range(ENTRIES - 800 + 10):
        entries.append(forged_entry(entries[-1]))
        head = entries[-1]
        note = checkpoint_note(head["seq"], head["entry_hash"], cps[-1]["signed_at"])
        cps.append(
            {
                **cps[-1],
                "size": head["seq"],
                "head_hash": head["entry_hash"],
                "signature": pristine.signer.sign(note),
                "kind": "append",
            }
        )
    path = write(tmp_path / "restored.jsonl", header, entries, cps)
    assert verify(path, [pristine.key]).ok
    result = verify(path, [pristine.key], [pristine.witness])
    assert not result.ok and result.failed_seq == ENTRIES, result.line()
    assert "does not extend the trusted checkpoint" in (result.reason or "")


# --- what cannot be verified -------------------------------------------------------------------


def test_a_filtered_export_is_refused_with_a_plain_message(
    pristine: Pristine, tmp_path: Path
) -> None:
    header, entries, _ = pristine.copy()
    header["complete"], header["filters"] = False, {"account": "1"}
    path = write(tmp_path / "filtered.jsonl", header, entries[:10], [])
    with pytest.raises(CannotVerify, match="filtered export: entries are listed for reading"):
        verify(path, [pristine.key])
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--key", str(pristine.key)])
    assert result.exit_code == 2
    assert (
        "filtered export: entries are listed for reading; only a complete export can be verified"
        in result.output
    )


def test_the_cli_prints_fail_with_the_seq_and_exits_1(pristine: Pristine, tmp_path: Path) -> None:
    header, entries, cps = pristine.copy()
    EDITS["actor"](entries, cps, 700)
    path = write(tmp_path / "edited.jsonl", header, entries, cps)
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--key", str(pristine.key)])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL at seq 700: entry_hash does not match")
