"""Forging the ledger with write access to the database, without the signing key or the
notary's host (a leaked database password, a rogue DBA).

The attack (issue 13, point 1): drop the append-only triggers, change the writer in an old
`post:submitted` entry, re-chain every later entry, delete the checkpoints from that size on and
update `ledger_head`. Before the notary the next append signed the forged head. Now:

- the notary refuses to sign (it checks the ledger against its own state, outside the
  database), logs at ERROR, writes its alert file, says so on /healthz, and stays stopped until
  an operator runs `ghostpost audit notary-reset --accept-current-head`;
- `audit verify` fails with the witness file or the notary's state file as trusted input (and,
  as the forged entries are no longer covered by any signature, without them too);
- `audit check` names the post whose row and ledger entry now disagree.

Honest limit, tested as such: an entry appended after the notary's last pass (the unsigned
tail, at most `ledger_checkpoint_seconds` old while a worker runs) can be rewritten and
re-chained before the next pass; the notary then signs it. Only `audit check` can still see it,
and only while the posts table disagrees with the forged entry.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from ghostpost.bootstrap import ship_newest_checkpoint
from ghostpost.cli import main
from ghostpost.domain.ledger import GENESIS_HASH, canonical_json, entry_hash
from ghostpost.domain.model import Post
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.ledger_integrity import PassOutcome
from ghostpost.settings import Settings
from tests.support.ledger_export import write_export
from tests.support.world import World

# --- the attacker's SQL --------------------------------------------------------------------


def drop_append_only_triggers(engine: Engine) -> None:
    with engine.begin() as db:
        for table in ("ledger_entries", "ledger_checkpoints"):
            if engine.dialect.name == "postgresql":
                db.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
            else:
                for action in ("update", "delete"):
                    db.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))


def rewrite_entry(engine: Engine, seq: int, change: Any) -> None:
    """Change entry `seq`'s data, re-chain every later entry, delete the checkpoints from size
    `seq` on and point ledger_head at the new hash: everything but a signature."""
    drop_append_only_triggers(engine)
    with engine.begin() as db:
        rows = db.execute(
            text(
                "SELECT seq, occurred_at, tag, actor, subject, data, prev_hash FROM ledger_entries"
                " WHERE seq >= :seq ORDER BY seq"
            ),
            {"seq": seq},
        ).all()
        prev = (
            db.execute(
                text("SELECT entry_hash FROM ledger_entries WHERE seq = :s"), {"s": seq - 1}
            ).scalar_one()
            if seq > 1
            else GENESIS_HASH
        )
        for row in rows:
            data = json.loads(row.data)
            if row.seq == seq:
                change(data)
            body = {
                "seq": row.seq,
                "occurred_at": row.occurred_at,
                "tag": row.tag,
                "actor": row.actor,
                "subject": row.subject,
                "data": data,
                "prev_hash": prev,
            }
            prev = entry_hash(body)
            db.execute(
                text(
                    "UPDATE ledger_entries SET data = :data, prev_hash = :prev_hash,"
                    " entry_hash = :entry_hash WHERE seq = :seq"
                ),
                {
                    "data": canonical_json(data),
                    "prev_hash": body["prev_hash"],
                    "entry_hash": prev,
                    "seq": row.seq,
                },
            )
        db.execute(text("DELETE FROM ledger_checkpoints WHERE size >= :seq"), {"seq": seq})
        db.execute(text("UPDATE ledger_head SET head_hash = :h WHERE id = 1"), {"h": prev})


def submitted_seq(engine: Engine, post: Post) -> int:
    with engine.connect() as db:
        found: int = db.execute(
            text("SELECT seq FROM ledger_entries WHERE tag = 'post:submitted' AND subject = :s"),
            {"s": f"post:{post.public_id}"},
        ).scalar_one()
    return found


def checkpoint_count(engine: Engine) -> int:
    with engine.connect() as db:
        count: int = db.execute(text("SELECT count(*) FROM ledger_checkpoints")).scalar_one()
    return count


# --- fixtures ----------------------------------------------------------------------------------


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


@pytest.fixture
def history(world: World) -> tuple[World, Post, Post]:
    """A published post by writer A (old, signed and shipped to the witness) and a later one by
    writer B, then another notary pass and shipment."""
    world.approve_notice(world.open_window())
    world.run_worker()  # the notice goes out; the notary signs
    old = world.submit(world.writer_a, "Keynote notes, written by A.")
    world.run_worker()
    later = world.submit(world.writer_b, "Panel recap, written by B.")
    world.run_worker()
    assert world.post(old.id).state.value == "published"
    ship_newest_checkpoint(world.container)
    return world, old, later


def verify(settings: Settings, export: Path, *trusted: str) -> tuple[int, str]:
    args = ["audit", "verify", str(export), "--key", settings.ledger_public_keys, *trusted]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def audit_check() -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "check"])
    return result.exit_code, result.output


# --- an old entry ------------------------------------------------------------------------------


def test_a_rewritten_old_entry_is_never_signed_and_every_check_names_it(
    history: tuple[World, Post, Post],
    cli_env: Settings,
    client: FlaskClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, old, _ = history
    engine = world.container.engine
    assert audit_check()[0] == 0  # untouched: the posts and the ledger agree
    assert client.get("/healthz").get_json()["notary"]["status"] == "ok"
    seq = submitted_seq(engine, old)
    signed_before = checkpoint_count(engine)
    writer_b = {"id": world.writer_b.id, "email": world.writer_b.email,
                "name": world.writer_b.name, "role": "writer"}  # fmt: skip

    rewrite_entry(engine, seq, lambda data: data.update(writer=writer_b))

    # The notary refuses, now and on every later pass, even after a new legitimate append.
    with caplog.at_level(logging.ERROR, logger="ghostpost.notary"):
        first = world.run_notary()
    assert first.outcome is PassOutcome.HALTED and first.checkpoint is None
    assert "no longer hashes to the head the notary signed" in (first.reason or "")
    assert any(
        r.levelno == logging.ERROR and "stopped signing" in r.message for r in caplog.records
    )
    world.submit(world.writer_a, "A new post after the rewrite.")
    world.run_worker()
    assert world.run_notary().outcome is PassOutcome.HALTED
    assert checkpoint_count(engine) < signed_before  # only what the attacker left

    # The alarm is outside the database, and /healthz says so (200: the database is fine).
    alert = Path(cli_env.notary_state_file).with_name("notary-alert.json")
    assert "no longer hashes" in json.loads(alert.read_text())["reason"]
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded" and body["notary"]["status"] == "halted"
    assert "no longer hashes" in body["notary"]["reason"]

    # Verification fails with the witness or the notary's state, and even without them: the
    # forged entries are covered by no signature.
    export = tmp_path / "export.jsonl"
    write_export(world.container, export)
    code, out = verify(cli_env, export, "--trusted-checkpoint", cli_env.ledger_witness_file)
    assert code == 1 and "does not extend the trusted checkpoint" in out, out
    code, out = verify(cli_env, export, "--notary-state", cli_env.notary_state_file)
    assert code == 1 and "does not extend the trusted checkpoint" in out, out
    code, out = verify(cli_env, export)
    assert code == 1 and f"FAIL at seq {seq}: unsigned tail" in out, out

    # The posts table still says A wrote it: `audit check` names the post and the field.
    code, out = audit_check()
    assert code == 1
    assert (
        f"post {old.public_id}: author_id: table {world.writer_a.id}, ledger "
        f"{world.writer_b.id} (entry {seq} post:submitted)"
    ) in out, out


def test_after_an_investigation_the_operator_resets_the_notary_and_the_decision_is_recorded(
    history: tuple[World, Post, Post], cli_env: Settings, client: FlaskClient
) -> None:
    world, old, _ = history
    engine = world.container.engine
    seq = submitted_seq(engine, old)
    rewrite_entry(engine, seq, lambda data: data.update(submitted_text="forged"))
    assert world.run_notary().outcome is PassOutcome.HALTED

    refused = CliRunner().invoke(main, ["audit", "notary-reset", "--reason", "checked"])
    assert refused.exit_code != 0 and "--accept-current-head" in refused.output
    assert world.run_notary().outcome is PassOutcome.HALTED

    result = CliRunner().invoke(
        main,
        ["audit", "notary-reset", "--accept-current-head", "--reason", "INC-7: text restored"],
    )
    assert result.exit_code == 0, result.output
    assert "alarm put aside: entry" in result.output and "notary pass: signed" in result.output
    state_dir = Path(cli_env.notary_state_file).parent
    assert not (state_dir / "notary-alert.json").exists()
    assert len(list(state_dir.glob("notary-alert.*.resolved.json"))) == 1
    with world.ctx.uow() as uow:
        size, head = uow.ledger.head()
        reset = uow.ledger.entry(size)
        latest = uow.ledger.latest_checkpoint()
    assert reset is not None and reset.tag == "notary:reset" and reset.actor == "system:operator"
    assert reset.data["reason"] == "INC-7: text restored"
    assert "no longer hashes" in reset.data["alarm"]
    assert reset.data["accepted"] == {"size": size - 1, "head_hash": reset.prev_hash}
    assert latest is not None and (latest.size, latest.head_hash) == (size, head)
    assert client.get("/healthz").get_json()["notary"]["status"] == "ok"


def test_a_truncated_or_rolled_back_ledger_stops_the_notary(
    history: tuple[World, Post, Post],
) -> None:
    world, _, later = history
    engine = world.container.engine
    seq = submitted_seq(engine, later)
    drop_append_only_triggers(engine)
    with engine.begin() as db:  # back to the state before B's post, as a restored backup would
        prev = db.execute(
            text("SELECT entry_hash FROM ledger_entries WHERE seq = :s"), {"s": seq - 1}
        ).scalar_one()
        db.execute(text("DELETE FROM ledger_checkpoints WHERE size >= :s"), {"s": seq})
        db.execute(text("DELETE FROM ledger_entries WHERE seq >= :s"), {"s": seq})
        db.execute(
            text("UPDATE ledger_head SET size = :n, head_hash = :h WHERE id = 1"),
            {"n": seq - 1, "h": prev},
        )
    result = world.run_notary()
    assert result.outcome is PassOutcome.HALTED
    assert "truncated or rolled back" in (result.reason or "")


# --- a recent entry (the unsigned tail) --------------------------------------------------------


def test_a_rewritten_entry_not_yet_signed_is_signed_by_the_notary_and_only_audit_check_sees_it(
    history: tuple[World, Post, Post], cli_env: Settings, tmp_path: Path
) -> None:
    # The documented window: the post was submitted after the notary's last pass; the attacker
    # rewrites its entry before the next pass. The notary cannot tell (the chain is whole and
    # extends what it signed) and signs it; verification is then OK. Only the posts table,
    # which still names A, disagrees.
    world, _, _ = history
    engine = world.container.engine
    recent = world.submit(world.writer_a, "Closing remarks, written by A.")
    seq = submitted_seq(engine, recent)
    with engine.connect() as db:
        assert db.execute(text("SELECT max(size) FROM ledger_checkpoints")).scalar_one() < seq
    writer_b = {"id": world.writer_b.id, "email": world.writer_b.email,
                "name": world.writer_b.name, "role": "writer"}  # fmt: skip
    rewrite_entry(engine, seq, lambda data: data.update(writer=writer_b))

    signed = world.run_notary()
    assert signed.outcome is PassOutcome.SIGNED  # the limit: the unsigned tail can be rewritten
    export = tmp_path / "export.jsonl"
    write_export(world.container, export)
    code, out = verify(cli_env, export, "--notary-state", cli_env.notary_state_file)
    assert code == 0, out
    code, out = audit_check()
    a, b = world.writer_a.id, world.writer_b.id
    assert code == 1 and f"post {recent.public_id}: author_id: table {a}, ledger {b}" in out, out

    # An attacker who also changes the row leaves nothing to compare: not detected.
    with engine.begin() as db:
        db.execute(
            text("UPDATE posts SET author_id = :b WHERE id = :id"),
            {"b": world.writer_b.id, "id": recent.id},
        )
    assert audit_check()[0] == 0


# --- the posts table changed directly ----------------------------------------------------------


def test_a_direct_update_of_posts_author_id_is_named_by_audit_check(
    history: tuple[World, Post, Post], cli_env: Settings
) -> None:
    world, old, later = history
    engine = world.container.engine
    with engine.begin() as db:
        db.execute(
            text("UPDATE posts SET author_id = :b WHERE id = :id"),
            {"b": world.writer_b.id, "id": old.id},
        )
        db.execute(text("UPDATE posts SET state = 'cancelled' WHERE id = :id"), {"id": later.id})
    code, out = audit_check()
    assert code == 1
    seq = submitted_seq(engine, old)
    lines = [line for line in out.splitlines() if line.startswith("post ")]
    assert (
        f"post {old.public_id}: author_id: table {world.writer_b.id}, ledger {world.writer_a.id} "
        f"(entry {seq} post:submitted)"
    ) in lines
    assert any(
        line.startswith(f"post {later.public_id}: state: table 'cancelled', ledger 'published'")
        for line in lines
    ), lines
    assert "FAIL: 3 mismatch(es)" in out, out  # + the published entry's writer of the old post
    # The signatures are fine: the ledger itself was not touched.
    assert world.run_notary().outcome is not PassOutcome.HALTED


# --- the derived account/post columns of ledger entries ---------------------------------------


def other_account(world: World) -> int:
    system = Actor.system("test")
    principal = directory.create_principal(world.ctx, system, "Blake Stone")
    account = directory.create_account(
        world.ctx, system, principal_id=principal.id, platform="local", handle="blake"
    )
    return account.id


def filtered_ledger_export(handle: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = CliRunner().invoke(
        main, ["audit", "export", "--report", "ledger", "--account", handle, "--out", "-"]
    )
    assert result.exit_code == 0, result.output
    header, *entries = [json.loads(line) for line in result.stdout.splitlines()]
    return header, [e for e in entries if e["type"] == "entry"]


def test_an_entry_moved_to_another_account_is_named_by_audit_check_and_kept_in_the_export(
    history: tuple[World, Post, Post], cli_env: Settings
) -> None:
    """account_id and post_id on ledger entries are an index derived from the subject, not
    hashed: an attacker can move an entry to another account so that the victim's filtered
    views skip it. The chain and the signatures do not see it (no hashed byte changed)."""
    world, old, _ = history
    engine = world.container.engine
    blake = other_account(world)
    handle = world.account.handle
    seq = submitted_seq(engine, old)
    header, entries = filtered_ledger_export(handle)
    assert seq in [e["seq"] for e in entries] and "misfiled_entries" not in header
    assert audit_check()[0] == 0

    drop_append_only_triggers(engine)
    with engine.begin() as db:
        db.execute(
            text("UPDATE ledger_entries SET account_id = :b, post_id = NULL WHERE seq = :s"),
            {"b": blake, "s": seq},
        )

    # `audit check` names the entry, the column, what is stored and what the subject says.
    code, out = audit_check()
    assert code == 1, out
    subject = f"post:{old.public_id}"
    assert (
        f"entry {seq} post:submitted about {subject}: ledger_entries.account_id: "
        f"stored {blake}, the subject says {world.account.id}"
    ) in out, out
    assert (
        f"entry {seq} post:submitted about {subject}: ledger_entries.post_id: "
        f"stored None, the subject says {old.id}"
    ) in out, out
    # The victim's filtered export still lists it, and its header says why.
    header, entries = filtered_ledger_export(handle)
    assert seq in [e["seq"] for e in entries]
    assert header["misfiled_entries"] == [seq] and "audit check" in header["warning"]
    # The hashed record itself is intact: signatures still hold.
    assert world.run_notary().outcome is not PassOutcome.HALTED
