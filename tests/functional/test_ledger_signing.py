"""Signed heads: appends chain and the notary signs, heartbeats, the witness, keys and their
rotation, the append-only tables, the public key pages, and the export format."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask.testing import FlaskClient
from sqlalchemy import MetaData, select, text
from sqlalchemy.exc import DatabaseError

from ghostpost import create_app
from ghostpost.audit import format as fmt
from ghostpost.audit.keys import generate_keypair, read_public_keys
from ghostpost.audit.verify import verify_files
from ghostpost.bootstrap import Container, bootstrap, ship_newest_checkpoint
from ghostpost.cli import main
from ghostpost.clock import FixedClock
from ghostpost.domain.checkpoint import Checkpoint, CheckpointKind, key_fingerprint
from ghostpost.domain.ledger import GENESIS_HASH, LedgerEntry, chain_entry
from ghostpost.secretbox import generate_key
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.ledger_integrity import PassOutcome
from ghostpost.settings import Settings, SettingsError
from ghostpost.worker import Worker
from tests.support.ledger_export import write_export
from tests.support.web import sign_in
from tests.support.world import World


def ledger(container: Container) -> tuple[list[LedgerEntry], list[Checkpoint]]:
    with container.services.uow() as uow:
        return list(uow.ledger.entries()), list(uow.ledger.checkpoints())


_names = itertools.count(1)


def add_principals(container: Container, count: int) -> None:
    for _ in range(count):
        directory.create_principal(container.services, Actor.system("test"), f"P {next(_names)}")


def public_key(container: Container) -> Ed25519PublicKey:
    raw = base64.b64decode(container.keyring.signer().public.public_key)
    return Ed25519PublicKey.from_public_bytes(raw)


# --- appends chain; the notary signs -----------------------------------------------------------
# (Before the notary every append signed its head in its own transaction, so these tests
# expected a checkpoint per entry; now appends only chain and a notary pass signs the head.)


def test_appends_only_chain_and_a_notary_pass_signs_the_head(
    world: World, clock: FixedClock
) -> None:
    container = world.container
    entries, checkpoints = ledger(container)
    assert len(entries) >= 10
    assert checkpoints == []  # nothing on the request path signs
    clock.advance(seconds=1)
    result = world.run_notary()
    assert result.outcome is PassOutcome.SIGNED
    [checkpoint] = ledger(container)[1]
    assert checkpoint == result.checkpoint
    assert checkpoint.kind == CheckpointKind.APPEND
    assert (checkpoint.size, checkpoint.head_hash) == (entries[-1].seq, entries[-1].entry_hash)
    assert checkpoint.signed_at == "2026-11-21T09:00:01.000000Z"
    assert checkpoint.key_id == container.keyring.key_id
    public_key(container).verify(base64.b64decode(checkpoint.signature), checkpoint.note())
    assert checkpoint.note() == (
        f"ghostpost/ledger/v1\n{len(entries)}\n{entries[-1].entry_hash}\n"
        "2026-11-21T09:00:01.000000Z\n".encode()
    )
    # Its state file (outside the database) names what it signed.
    state = container.notary_store.load()
    assert state is not None
    assert (state.size, state.head_hash) == (checkpoint.size, checkpoint.head_hash)
    # Nothing new: the next pass signs nothing (until a heartbeat is due).
    assert world.run_notary().outcome is PassOutcome.UNCHANGED
    add_principals(container, 2)
    second = world.run_notary()
    assert second.checkpoint is not None and second.checkpoint.size == len(entries) + 2


def test_the_worker_signs_what_it_appended_before_it_returns(world: World) -> None:
    world.approve_notice(world.open_window())
    world.run_worker()  # the notice goes out; its entries are signed by the run's last pass
    entries, checkpoints = ledger(world.container)
    assert checkpoints[-1].size == entries[-1].seq


def test_a_rolled_back_append_leaves_nothing_to_sign(container: Container) -> None:
    with container.services.uow() as uow:
        uow.ledger.append(
            tag="principal:created",
            actor="system:test",
            subject="principal:1",
            data={},
            occurred_at=container.clock.now(),
        )
        # no commit
    assert ledger(container) == ([], [])


def test_signing_times_never_go_back_even_when_the_clock_does(
    world: World, clock: FixedClock
) -> None:
    world.run_notary()
    clock.advance(seconds=-30)  # a notary on a host whose clock is behind the last signer's
    add_principals(world.container, 1)
    world.run_notary()
    _, checkpoints = ledger(world.container)
    times = [c.signed_at for c in checkpoints]
    assert len(times) == 2 and times == sorted(times)
    assert times[-1] == times[-2]


def test_signing_an_append_costs_well_under_a_millisecond(container: Container) -> None:
    import time

    signer = container.keyring.signer()
    note = b"ghostpost/ledger/v1\n1\n" + b"0" * 64 + b"\n2026-11-21T09:00:00.000000Z\n"
    start = time.perf_counter()
    for _ in range(200):
        signer.sign(note)
    assert (time.perf_counter() - start) / 200 < 0.001


# --- heartbeat ---------------------------------------------------------------------------------


def test_an_idle_worker_re_signs_the_unchanged_head_every_heartbeat(
    world: World, clock: FixedClock
) -> None:
    container = world.container
    worker = Worker(container, worker_id="test-worker")
    worker.ledger_tick()  # the first pass signs the head
    entries, before = ledger(container)
    assert [c.kind for c in before] == ["append"]
    clock.advance(seconds=59)
    worker.ledger_tick()
    assert ledger(container)[1] == before  # the newest checkpoint is not a minute old yet
    clock.advance(seconds=1)
    worker.ledger_tick()
    _, after = ledger(container)
    assert len(after) == len(before) + 1
    heartbeat = after[-1]
    assert heartbeat.kind == CheckpointKind.HEARTBEAT
    assert (heartbeat.size, heartbeat.head_hash) == (entries[-1].seq, entries[-1].entry_hash)
    assert heartbeat.signed_at == "2026-11-21T09:01:00.000000Z"
    public_key(container).verify(base64.b64decode(heartbeat.signature), heartbeat.note())
    worker.ledger_tick()
    assert len(ledger(container)[1]) == len(after)
    clock.advance(seconds=60)
    world.run_worker()  # the loop ticks too
    assert [c.kind for c in ledger(container)[1][-2:]] == ["heartbeat", "heartbeat"]


def test_the_worker_runs_a_notary_pass_every_checkpoint_interval(
    world: World, clock: FixedClock
) -> None:
    container = world.container
    worker = Worker(container, worker_id="test-worker")
    worker.ledger_tick()
    add_principals(container, 1)
    worker.ledger_tick()  # within the same second: no pass yet, the new entry is unsigned
    entries, checkpoints = ledger(container)
    assert checkpoints[-1].size == entries[-1].seq - 1
    clock.advance(seconds=container.settings.ledger_checkpoint_seconds)
    worker.ledger_tick()
    entries, checkpoints = ledger(container)
    assert checkpoints[-1].size == entries[-1].seq and checkpoints[-1].kind == "append"


def test_an_empty_ledger_gets_a_heartbeat_of_size_zero_that_verifies(
    container: Container, tmp_path: Path
) -> None:
    Worker(container).ledger_tick()
    [checkpoint] = ledger(container)[1]
    assert (checkpoint.size, checkpoint.head_hash) == (0, GENESIS_HASH)
    write_export(container, tmp_path / "export.jsonl")
    result = verify_files(tmp_path / "export.jsonl", [container.settings.ledger_public_keys])
    assert result.line() == (
        f"OK: 0 entries, head {GENESIS_HASH}, last checkpoint signed at {checkpoint.signed_at}"
    )


def test_heartbeats_tell_a_quiet_ledger_from_a_silenced_one(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    # Nothing happened for an hour: the export says it was signed a minute ago, not an hour.
    container = world.container
    worker = Worker(container)
    for _ in range(60):
        clock.advance(seconds=60)
        worker.ledger_tick()
    write_export(container, tmp_path / "export.jsonl")
    result = verify_files(tmp_path / "export.jsonl", [container.settings.ledger_public_keys])
    assert result.ok and result.last_signed_at == "2026-11-21T10:00:00.000000Z", result.line()


# --- the witness -------------------------------------------------------------------------------


def witness_lines(container: Container) -> list[Checkpoint]:
    path = Path(container.settings.ledger_witness_file)
    return list(fmt.read_checkpoints(path)) if path.exists() else []


def test_the_worker_ships_the_newest_head_to_the_witness_file_periodically(
    world: World, clock: FixedClock, tmp_path: Path
) -> None:
    container = world.container
    worker = Worker(container)
    worker.ledger_tick()
    [first] = witness_lines(container)
    assert first == ledger(container)[1][-1]
    add_principals(container, 3)
    clock.advance(seconds=299)
    worker.ledger_tick()  # a heartbeat is signed, but the next shipment is not due yet
    assert witness_lines(container) == [first]
    clock.advance(seconds=1)
    worker.ledger_tick()
    shipped = witness_lines(container)
    assert len(shipped) == 2 and shipped[-1] == ledger(container)[1][-1]
    # The witness file is a list of trusted checkpoints for the verifier.
    write_export(container, tmp_path / "export.jsonl")
    result = verify_files(
        tmp_path / "export.jsonl",
        [container.settings.ledger_public_keys],
        [container.settings.ledger_witness_file],
    )
    assert result.ok and result.trusted == 2, result.line()


def test_every_export_can_ship_the_newest_head(world: World) -> None:
    container = world.container
    world.run_notary()
    shipment = ship_newest_checkpoint(container)
    assert shipment.written and shipment.checkpoint == ledger(container)[1][-1]
    assert not ship_newest_checkpoint(container).written  # unchanged: not written twice
    add_principals(container, 1)
    world.run_notary()
    assert ship_newest_checkpoint(container).written
    assert len(witness_lines(container)) == 2


def test_a_broken_witness_file_is_logged_and_never_raises(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-file").mkdir()
    settings = world.container.settings.replace(ledger_witness_file=str(tmp_path / "not-a-file"))
    container = bootstrap(settings, clock=world.container.clock)
    try:
        container.notary.run_pass()
        shipment = ship_newest_checkpoint(container)
    finally:
        container.dispose()
    assert not shipment.written and shipment.error and "not-a-file" in shipment.error
    assert "could not ship the ledger head" in caplog.text


class WitnessServer:
    """A small HTTP witness on 127.0.0.1 that records POSTed bodies."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if owner.status == 200:
                    owner.bodies.append(body)
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/witness"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WitnessServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def witness_server() -> Iterator[WitnessServer]:
    with WitnessServer() as server:
        yield server


def test_the_newest_head_is_posted_to_the_http_witness_and_retried_after_a_failure(
    world: World, witness_server: WitnessServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = world.container.settings.replace(ledger_witness_url=witness_server.url)
    container = bootstrap(settings, clock=world.container.clock)
    try:
        container.notary.run_pass()
        first = ship_newest_checkpoint(container)
        assert first.posted is True
        [body] = witness_server.bodies
        assert body == fmt.checkpoint_line(ledger(container)[1][-1]).encode()
        assert ship_newest_checkpoint(container).posted is None  # already there
        add_principals(container, 1)
        container.notary.run_pass()
        witness_server.status = 500
        failed = ship_newest_checkpoint(container)
        assert failed.posted is False and "500" in (failed.error or "")
        assert "retried next time" in caplog.text
        witness_server.status = 200
        retried = ship_newest_checkpoint(container)
        assert retried.posted is True and len(witness_server.bodies) == 2
        # The worker posts from a thread, so a slow witness never holds up publishing.
        add_principals(container, 1)
        worker = Worker(container)
        worker.ledger_tick()
        container.witness.join(timeout=10)
        assert len(witness_server.bodies) == 3
        assert json.loads(witness_server.bodies[-1])["size"] == ledger(container)[1][-1].size
    finally:
        container.dispose()


def test_publishing_goes_on_while_the_http_witness_is_down(world: World) -> None:
    with WitnessServer() as server:
        url = server.url  # closed below: nothing listens there any more
    settings = world.container.settings.replace(ledger_witness_url=url)
    container = bootstrap(settings, clock=world.container.clock)
    try:
        container.notary.run_pass()
        shipment = ship_newest_checkpoint(container)
        assert shipment.posted is False and shipment.written
        down = World(**{**world.__dict__, "container": container})
        down.approve_notice(down.open_window())
        down.run_worker()  # the notice goes out
        post = down.submit(world.writer_a, "Shipping day.")
        assert down.run_worker() == 1
        assert down.post(post.id).state.value == "published"
        container.witness.join(timeout=10)
    finally:
        container.dispose()


# --- keys --------------------------------------------------------------------------------------


def test_keys_generate_writes_a_private_pem_0600_and_a_public_key_with_its_fingerprint(
    tmp_path: Path,
) -> None:
    out = tmp_path / "keys"
    result = CliRunner().invoke(main, ["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    private, public = out / "ledger-ed25519.pem", out / "ledger-ed25519.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    [key] = read_public_keys(public)
    raw = base64.b64decode(key.public_key)
    assert len(raw) == 32
    fingerprint = hashlib.sha256(raw).hexdigest()
    assert key.fingerprint == fingerprint and key.key_id == fingerprint[:16]
    assert f"fingerprint: {fingerprint}" in result.output
    assert f"key_id:      {fingerprint[:16]}" in result.output
    assert public.read_text().splitlines()[-1] == key.public_key  # the raw key, base64
    again = CliRunner().invoke(main, ["keys", "generate", "--out", str(out)])
    assert again.exit_code != 0 and "not overwriting" in again.output


def test_outside_production_the_key_is_generated_on_first_use(
    container: Container, settings: Settings
) -> None:
    path = Path(settings.ledger_signing_key)
    assert not path.exists()
    add_principals(container, 1)
    assert not path.exists()  # appends never sign: only the notary loads the key
    container.notary.run_pass()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key_id = container.keyring.key_id
    assert (Path(settings.ledger_public_keys) / f"{key_id}.pub").exists()


def test_production_refuses_to_boot_without_a_signing_key(
    settings: Settings, tmp_path: Path
) -> None:
    production = settings.replace(
        environment="production",
        secret_key="a-real-secret-key-0123456789",
        token_keys=generate_key("k1"),
        ledger_signing_key=str(tmp_path / "missing" / "ledger.pem"),
    )
    with pytest.raises(SettingsError, match="ledger_signing_key: no ledger signing key at"):
        bootstrap(production)
    with pytest.raises(SettingsError, match="keys generate"):
        create_app(production)
    assert not (tmp_path / "missing").exists()  # never generated in production
    made = generate_keypair(tmp_path / "real")
    container = bootstrap(production.replace(ledger_signing_key=str(made.private_path)))
    try:
        assert container.keyring.key_id == made.key.key_id
    finally:
        container.dispose()


def test_the_private_key_never_enters_the_database(world: World, settings: Settings) -> None:
    world.run_notary()
    pem = Path(settings.ledger_signing_key).read_text()
    secret = "".join(pem.strip().splitlines()[1:-1])
    container = world.container
    dump = []
    metadata = MetaData()
    metadata.reflect(container.engine)
    with container.engine.connect() as conn:
        for table in metadata.tables.values():
            dump += [repr(tuple(row)) for row in conn.execute(select(table))]
    text_dump = "\n".join(dump)
    assert container.keyring.signer().public.public_key not in text_dump
    assert secret not in text_dump and "PRIVATE KEY" not in text_dump
    assert ledger(container)[1][0].signature in text_dump  # the dump did see the checkpoints


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    for key in list(__import__("os").environ):
        if key.startswith("GHOSTPOST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GHOSTPOST_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GHOSTPOST_ENVIRONMENT", "test")
    monkeypatch.setenv("GHOSTPOST_LEDGER_SIGNING_KEY", settings.ledger_signing_key)
    monkeypatch.setenv("GHOSTPOST_LEDGER_PUBLIC_KEYS", settings.ledger_public_keys)
    monkeypatch.setenv("GHOSTPOST_LEDGER_WITNESS_FILE", settings.ledger_witness_file)
    return settings


def test_rotation_keeps_old_checkpoints_verifiable_with_both_public_keys(
    world: World, cli_env: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    signed_old = world.run_notary().checkpoint  # the head signed with the old key
    assert signed_old is not None
    old_id = world.container.keyring.key_id
    old_pem = Path(cli_env.ledger_signing_key).read_bytes()
    result = CliRunner().invoke(main, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert f"retired key: {old_id}" in result.output
    assert "signed the head" in result.output
    assert Path(cli_env.ledger_signing_key).read_bytes() != old_pem  # the old private key is gone
    assert stat.S_IMODE(Path(cli_env.ledger_signing_key).stat().st_mode) == 0o600
    # Processes restarted after the rotation sign with the new key.
    restarted = bootstrap(cli_env, clock=clock)
    try:
        new_id = restarted.keyring.key_id
        assert new_id != old_id and f"current key: {new_id}" in result.output
        add_principals(restarted, 3)
        restarted.notary.run_pass()
        _, checkpoints = ledger(restarted)
        assert {c.key_id for c in checkpoints} == {old_id, new_id}
        assert checkpoints[-1].key_id == new_id
        listed = CliRunner().invoke(main, ["keys", "list"])
        assert f"{old_id}  retired" in listed.output and f"{new_id}  current" in listed.output
        export = tmp_path / "export.jsonl"
        write_export(restarted, export)
    finally:
        restarted.dispose()
    keys_dir = Path(cli_env.ledger_public_keys)
    old_pub, new_pub = keys_dir / f"{old_id}.pub", keys_dir / f"{new_id}.pub"
    assert verify_files(export, [old_pub, new_pub]).ok
    assert verify_files(export, [keys_dir]).ok
    only_new = verify_files(export, [new_pub])
    assert not only_new.ok and only_new.failed_seq == signed_old.size
    assert f"signed by key {old_id}, which is not among the given keys" in (only_new.reason or "")
    only_old = verify_files(export, [old_pub])
    assert not only_old.ok and new_id in (only_old.reason or "")
    header = json.loads(export.read_text().splitlines()[0])
    assert [k["key_id"] for k in header["keys"]] == [old_id, new_id]


def test_rotating_without_a_key_says_so(cli_env: Settings) -> None:
    result = CliRunner().invoke(main, ["keys", "rotate"])
    assert result.exit_code != 0 and "no ledger signing key at" in result.output


# --- no silent purge -----------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["ledger_entries", "ledger_checkpoints"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET size = size",
        "DELETE FROM {table} WHERE 1 = 1",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_the_database_refuses_to_change_or_remove_ledger_rows(
    world: World, table: str, statement: str
) -> None:
    world.run_notary()  # a checkpoint row to refuse changing
    engine = world.container.engine
    if statement.startswith("TRUNCATE") and engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no TRUNCATE (an unqualified DELETE is covered)")
    sql = statement.format(table=table)
    if table == "ledger_entries":
        sql = sql.replace("size = size", "tag = tag")
    before = ledger(world.container)
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text(sql))
    assert ledger(world.container) == before


# --- public keys on the web ------------------------------------------------------------------


def test_the_well_known_keys_document_is_public_and_verifies_exports(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    world.run_notary()
    response = client.get("/.well-known/ghostpost-ledger-keys.json")
    assert response.status_code == 200
    document = response.get_json()
    [key] = document["keys"]
    raw = base64.b64decode(key["public_key"])
    assert key["fingerprint"] == key_fingerprint(raw) and key["key_id"] == key["fingerprint"][:16]
    assert key["current"] is True and document["algorithm"] == "Ed25519"
    (tmp_path / "keys.json").write_bytes(response.get_data())
    write_export(world.container, tmp_path / "export.jsonl")
    assert verify_files(tmp_path / "export.jsonl", [tmp_path / "keys.json"]).ok


def test_staff_see_the_keys_and_fingerprints_and_the_ledger_links_there(
    world: World, client: FlaskClient, app: Any
) -> None:
    assert client.get("/ledger/keys").status_code == 302  # sign in first
    sign_in(client, world.writer_a.email)  # any staff user, even one who cannot read the ledger
    page = client.get("/ledger/keys").get_data(as_text=True)
    key = world.container.keyring.signer().public
    assert key.key_id in page and key.fingerprint in page and key.public_key in page
    assert "current" in page and "/.well-known/ghostpost-ledger-keys.json" in page
    auditor = app.test_client()  # the auditor reads the ledger page, which links to the keys
    sign_in(auditor, world.auditor.email)
    assert 'href="/ledger/keys"' in auditor.get("/ledger").get_data(as_text=True)
    assert key.key_id in auditor.get("/ledger/keys").get_data(as_text=True)


# --- the export format -----------------------------------------------------------------------


def sample_entry() -> LedgerEntry:
    return chain_entry(
        seq=1,
        occurred_at="2026-11-21T09:00:00.000000Z",
        tag="principal:created",
        actor="system:test",
        subject="principal:1",
        data={"name": "Avery Chen ✓"},
        prev_hash=GENESIS_HASH,
    )


def test_the_format_round_trips_header_entries_and_checkpoints(container: Container) -> None:
    entry = sample_entry()
    checkpoint = Checkpoint(1, entry.entry_hash, entry.occurred_at, "0" * 16, "A" * 86 + "==")
    out = io.StringIO()
    fmt.write_header(out, exported_at=entry.occurred_at, complete=True, filters={"account": None})
    fmt.write_entry(out, entry)
    fmt.write_checkpoint(out, checkpoint)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        '{"complete":true,"exported_at":"2026-11-21T09:00:00.000000Z","filters":{},'
        '"format":"ghostpost-ledger/v1","keys":[],"type":"header"}'
    )
    assert json.loads(lines[1])["type"] == "entry" and "✓" in lines[1]  # UTF-8, not escaped
    records = list(fmt.read_export(io.BytesIO(out.getvalue().encode())))
    assert records[1:] == [entry, checkpoint]
    assert isinstance(records[0], fmt.Header) and records[0].complete
    with pytest.raises(ValueError, match="not complete"):
        fmt.header_line(exported_at="x", complete=True, filters={"account": "1"})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"type":"entry"}', "line 2: missing field"),
        ('{"type":"entry","seq":1.5}', "floats are not allowed"),
        ('{"type":"entry","type":"entry"}', "duplicate key"),
        ('{"type":"header","format":"ghostpost-ledger/v1"}', "a second header"),
        ('{"type":"other"}', "unknown record type"),
        ("[1]", "not a JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_read_export_names_the_line_of_anything_malformed(
    tmp_path: Path, line: str, message: str
) -> None:
    header = fmt.header_line(exported_at="2026-11-21T09:00:00.000000Z", complete=True)
    path = tmp_path / "bad.jsonl"
    path.write_text(header + line + "\n")
    with pytest.raises(fmt.ExportFormatError, match=message):
        list(fmt.read_export(path))


def test_read_export_refuses_entries_after_checkpoints_and_a_cut_off_last_line(
    tmp_path: Path,
) -> None:
    entry = sample_entry()
    checkpoint = fmt.checkpoint_line(
        Checkpoint(1, entry.entry_hash, entry.occurred_at, "0" * 16, "A" * 86 + "==")
    )
    header = fmt.header_line(exported_at=entry.occurred_at, complete=True)
    path = tmp_path / "bad.jsonl"
    path.write_text(header + checkpoint + fmt.entry_line(entry))
    with pytest.raises(fmt.ExportFormatError, match="line 3: an entry after the checkpoints"):
        list(fmt.read_export(path))
    path.write_text(header + fmt.entry_line(entry).rstrip("\n"))
    with pytest.raises(fmt.ExportFormatError, match="line 2: the last line is cut off"):
        list(fmt.read_export(path))


def test_a_checkpoint_line_hidden_by_unicode_escapes_fails_verification(
    world: World, tmp_path: Path
) -> None:
    world.run_notary()
    export = tmp_path / "export.jsonl"
    write_export(world.container, export)
    lines = export.read_text().splitlines(keepends=True)
    lines[-1] = lines[-1].replace('"checkpoint"', '"\\u0063heckpoint"')
    export.write_text("".join(lines))
    result = verify_files(export, [world.container.settings.ledger_public_keys])
    assert not result.ok and "not in the canonical form" in (result.reason or ""), result.line()


def test_the_verifier_loads_without_flask_sqlalchemy_or_the_database_layer() -> None:
    code = (
        "import sys, ghostpost.audit.verify\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'werkzeug')"
        " or m.startswith(('ghostpost.db', 'ghostpost.services', 'ghostpost.web'))]\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
