"""Eight processes appending at once still make one gapless chain (SQLite in WAL with BEGIN
IMMEDIATE; PostgreSQL with the head row locked), while each of them also runs notary passes
between its appends: one pass at a time signs (host file lock; PostgreSQL advisory lock), no
alarm is raised, and every signed head names the chain at its size, in signing order."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from ghostpost.audit.verify import verify_files
from ghostpost.bootstrap import bootstrap
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.settings import Settings
from tests.support.ledger_export import write_export

PROCESSES = 8
APPENDS = 25


def _settings(database_url: str, root: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789",
        environment="test",
        ledger_signing_key=str(Path(root) / "keys" / "ledger-ed25519.pem"),
        ledger_public_keys=str(Path(root) / "keys" / "public"),
        ledger_witness_file=str(Path(root) / "witness.jsonl"),
    )


def _append(database_url: str, root: str, index: int, start: Any) -> None:
    """One process: wait for the others, then create APPENDS principals (one entry each)."""
    container = bootstrap(_settings(database_url, root))
    try:
        container.keyring.signer()  # load the key before the race
        start.wait(timeout=60)
        for i in range(APPENDS):
            directory.create_principal(
                container.services, Actor.system(f"proc{index}"), f"Principal {index}-{i}"
            )
            if i % 3 == index % 3:
                container.notary.run_pass()
    finally:
        container.dispose()


@pytest.mark.slow
def test_eight_processes_appending_and_notarising_at_once_make_one_signed_gapless_chain(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(database_url, str(tmp_path))
    parent = bootstrap(settings)
    parent.keyring.signer()  # generate the key once, before the children load it
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES)
    processes = [
        spawn.Process(target=_append, args=(database_url, str(tmp_path), i, start))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert parent.notary_store.alarm() is None
    parent.notary.run_pass()  # the last appends
    try:
        with parent.services.uow() as uow:
            entries = list(uow.ledger.entries())
            size, head = uow.ledger.head()
            checkpoints = list(uow.ledger.checkpoints())
        total = PROCESSES * APPENDS
        assert [e.seq for e in entries] == list(range(1, total + 1))
        assert first_broken_entry(entries) is None
        assert (size, head) == (total, entries[-1].entry_hash)
        actors = [e.actor for e in entries]
        assert set(actors) == {f"system:proc{i}" for i in range(PROCESSES)}
        switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
        # Every process wrote; PostgreSQL interleaves them finely (~200 switches), SQLite's busy
        # handler favours the writer that just committed (~10).
        assert switches >= PROCESSES - 1
        # Signed heads in signing order, growing, each naming the entry at its size.
        sizes = [c.size for c in checkpoints]
        # How many passes sign depends on timing (a pass that finds another signing skips; on a
        # busy CI run seven heads were signed for eight processes): what must hold is that
        # heads were signed while others appended, in order, the last naming the whole chain.
        assert sizes == sorted(sizes) and sizes[-1] == total and len(sizes) > 2
        assert all(c.head_hash == entries[c.size - 1].entry_hash for c in checkpoints)
        assert [c.signed_at for c in checkpoints] == sorted(c.signed_at for c in checkpoints)
        write_export(parent, tmp_path / "export.jsonl")
    finally:
        parent.dispose()
    result = verify_files(tmp_path / "export.jsonl", [settings.ledger_public_keys])
    assert result.ok and result.entries == total, result.line()
