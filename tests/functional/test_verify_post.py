"""Verify a post (issue 18, part 2): the public answer, its proof, `audit verify-post`, and
what a database writer can no longer get past (leaves, salts, subtree hashes, tree heads)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text

from ghostpost.cli import main
from ghostpost.domain.checkpoint import TreeCheckpoint, parse_tree_checkpoint
from ghostpost.domain.merkle import inclusion_ranges, subtree_nodes, verify_consistency
from ghostpost.domain.model import Post
from ghostpost.services import directory
from ghostpost.services.context import Actor
from ghostpost.services.ledger_integrity import PassOutcome
from ghostpost.services.transparency_log import sign_tree_checkpoint
from tests.support.api import scheduler_for
from tests.support.world import World

AUDIT_SCOPES = ("posts:read", "audit:read")


def published(world: World) -> tuple[Post, Post]:
    """A team post (Jordan, in a window) and a principal's post, published and notarised."""
    world.approve_notice(world.open_window())
    world.run_worker()  # the notice
    team = world.submit(world.writer_a, "Team wrote this")
    own = world.submit(world.principal, "I wrote this myself")
    world.run_worker()
    return world.post(team.id), world.post(own.id)


def verify(client: FlaskClient, url: str, **headers: str) -> Any:
    response = client.get("/api/v1/public/verify", query_string={"url": url}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def verify_post(tmp_path: Path, answer: Any, key: str) -> tuple[int, str]:
    """Run `ghostpost audit verify-post FILE --key KEY`; return (exit code, output)."""
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer), encoding="utf-8")
    result = CliRunner().invoke(main, ["audit", "verify-post", str(path), "--key", key])
    return result.exit_code, result.output


def log_key(client: FlaskClient) -> str:
    response = client.get("/api/v1/public/log-key")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return response.get_data(as_text=True).strip()


def sql(world: World, statement: str, **params: Any) -> None:
    with world.container.engine.begin() as connection:
        connection.execute(text(statement), params)


# --- the public answer ---------------------------------------------------------------------


def test_a_public_answer_proves_team_or_principal_and_never_names_the_writer(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    team, own = published(world)
    key = log_key(client)
    assert key.startswith("ghostpost.test/ghostpost-log+")

    with world.ctx.uow() as uow:  # recorded at publication, public in the leaf
        recorded = [uow.tree.published_entry(p.platform_url or "") for p in (team, own)]
    assert [e.data["delegated"] for e in recorded if e is not None] == [True, False]

    answer = verify(client, f"  {team.platform_url}\n")
    assert answer["verdict"] == "team" and answer["writer"] is None
    assert answer["window"]["id"] == team.window_id
    assert answer["principal"]["disclosure_page"] == "http://ghostpost.test/@avery/disclosure"
    assert answer["proof"]["leaf_index"] == json.loads(answer["proof"]["leaf"])["seq"] - 1
    body = json.dumps(answer)
    with world.ctx.uow() as uow:
        record = uow.tree.leaf(answer["proof"]["leaf_index"] + 1)
    assert record is not None and record.salt is not None
    salt = base64.urlsafe_b64encode(record.salt).decode().rstrip("=")
    for secret in ("Jordan", "jordan@example.test", salt, record.salt.hex()):
        assert secret not in body
    code, output = verify_post(tmp_path, answer, key)
    assert code == 0 and output.startswith("ok: team")

    mine = verify(client, own.platform_url or "")
    assert mine["verdict"] == "principal" and mine["summary"] == "Written by the principal."
    assert verify_post(tmp_path, mine, key)[0] == 0

    # An auditor's token adds the writer, and the disclosure opens the leaf's commitment.
    auditor = scheduler_for(client, world, scopes=AUDIT_SCOPES)
    audited = verify(client, team.platform_url or "", **auditor.auth)
    assert audited["writer"]["name"] == "Jordan Park"
    code, output = verify_post(tmp_path, audited, key)
    assert code == 0, output
    # A token without audit:read sees the public answer.
    reader = scheduler_for(client, world, scopes=("posts:read",))
    assert verify(client, team.platform_url or "", **reader.auth)["writer"] is None


def test_an_unknown_url_says_unknown_and_a_bad_question_is_a_problem(
    world: World, client: FlaskClient
) -> None:
    answer = verify(client, "https://example.social/@avery/1")
    assert answer["verdict"] == "unknown" and answer["proof"] is None
    assert answer["principal"] is None and answer["post"] is None
    for query in ({}, {"url": ""}, {"url": "https://x.test/" + "a" * 3000}):
        response = client.get("/api/v1/public/verify", query_string=query)
        assert response.status_code == 422, response.status_code
        assert response.mimetype == "application/problem+json"


def test_a_post_the_notary_has_not_covered_has_a_pending_proof(
    world: World, client: FlaskClient
) -> None:
    published(world)
    # The notary stops (an alarm on record): posts still go out, unproven.
    from ghostpost.domain.checkpoint import NotaryAlarm

    world.container.notary_store.raise_alarm(NotaryAlarm("test", "", None))
    later = world.submit(world.principal, "Not yet in a signed tree")
    world.run_worker()
    answer = verify(client, world.post(later.id).platform_url or "")
    assert answer["verdict"] == "principal" and answer["proof"] is None
    assert "pending" in answer["summary"]


# --- altered answers ---------------------------------------------------------------------


def test_verify_post_refuses_each_altered_field_naming_the_step(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    team, _ = published(world)
    key = log_key(client)
    good = verify(client, team.platform_url or "")

    def altered(change: Any) -> Any:
        answer = json.loads(json.dumps(good))
        change(answer["proof"])
        return answer

    def leaf(proof: dict[str, Any]) -> None:
        proof["leaf"] = proof["leaf"].replace('"team"', '"principal"')

    def first_hash(proof: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(proof["inclusion"][0]))
        raw[0] ^= 1
        proof["inclusion"][0] = base64.b64encode(bytes(raw)).decode()

    def size_line(proof: dict[str, Any]) -> None:
        size = proof["tree_size"]
        proof["checkpoint"] = proof["checkpoint"].replace(f"\n{size}\n", f"\n{size + 1}\n", 1)

    def signature(proof: dict[str, Any]) -> None:
        body, _, line = proof["checkpoint"].rstrip("\n").rpartition("\n")
        name, _, b64 = line.rpartition(" ")
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 1
        proof["checkpoint"] = f"{body}\n{name} {base64.b64encode(bytes(raw)).decode()}\n"

    def other_origin(proof: dict[str, Any]) -> None:
        # Signed with the log's own key, but for another log (staging, another tenant).
        head = parse_tree_checkpoint(proof["checkpoint"].split("\n\n")[0] + "\n")
        other = TreeCheckpoint("staging.ghostpost.test/ghostpost-log", head.size, head.root_hash)
        proof["checkpoint"] = sign_tree_checkpoint(other, world.container.keyring)

    def claimed_key(proof: dict[str, Any]) -> None:
        proof["verifier_key"] = "x" + proof["verifier_key"]

    cases = {
        "leaf": (leaf, 4),
        "index": (lambda p: p.update(leaf_index=p["leaf_index"] - 1), 4),
        "size": (lambda p: p.update(tree_size=p["tree_size"] + 1), 3),
        "inclusion hash": (first_hash, 4),
        "checkpoint text": (size_line, 2),
        "signature": (signature, 2),
        "origin": (other_origin, 2),
        "key": (claimed_key, 1),
    }
    for name, (change, step) in cases.items():
        code, output = verify_post(tmp_path, altered(change), key)
        assert code == 1 and f"step {step} " in output, (name, output)
    # The verdict itself, changed in the answer, no longer matches the signed leaf.
    code, output = verify_post(tmp_path, {**good, "verdict": "principal"}, key)
    assert code == 1 and "step 5 " in output
    # Another key than the log's (the trusted one comes from --key, never from the answer).
    other_key = key.split("+")[0] + "+00000000+" + key.split("+")[2]
    code, output = verify_post(tmp_path, good, other_key)
    assert code != 0 and "step 1 " in output


# --- a database writer ---------------------------------------------------------------------


def test_a_database_writer_who_changes_the_tree_is_caught(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    team, _own = published(world)
    key = log_key(client)
    auditor = scheduler_for(client, world, scopes=AUDIT_SCOPES)
    answer = verify(client, team.platform_url or "")
    seq = answer["proof"]["leaf_index"] + 1

    # A leaf rewritten to say "principal": its hash no longer leads to the signed root.
    original = json.loads(answer["proof"]["leaf"])
    forged = json.dumps({**original, "authorship": "principal"}, sort_keys=True)
    sql(
        world,
        "UPDATE ledger_leaves SET leaf = :leaf WHERE seq = :seq",
        leaf=forged.encode(),
        seq=seq,
    )
    code, output = verify_post(tmp_path, verify(client, team.platform_url or ""), key)
    assert code == 1 and "step 4 " in output
    sql(
        world,
        "UPDATE ledger_leaves SET leaf = :leaf WHERE seq = :seq",
        leaf=answer["proof"]["leaf"].encode(),
        seq=seq,
    )

    # A salt swapped (to name another writer): the auditor's disclosure no longer opens it,
    # and the notary's full check refuses to go on.
    sql(
        world,
        "UPDATE ledger_leaf_salts SET salt = :salt WHERE seq = :seq",
        salt=b"\x07" * 32,
        seq=seq,
    )
    code, output = verify_post(
        tmp_path, verify(client, team.platform_url or "", **auditor.auth), key
    )
    assert code == 1 and "step 6 " in output
    halted = world.container.notary.run_pass(full_check=True)
    assert halted.outcome is PassOutcome.HALTED and "leaf of entry" in (halted.reason or "")


def test_a_changed_subtree_hash_or_tree_head_is_caught(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    _team, own = published(world)
    key = log_key(client)
    answer = verify(client, own.platform_url or "")
    size = answer["proof"]["tree_size"]
    # A stored subtree hash the proof uses: the answer's inclusion proof fails.
    ranges = inclusion_ranges(answer["proof"]["leaf_index"], size)
    level, index = next(n for r in ranges for n in subtree_nodes(*r) if n[0] > 0)
    sql(
        world,
        "UPDATE ledger_tree_nodes SET hash = :h WHERE level = :level AND idx = :idx",
        h=b"\x01" * 32,
        level=level,
        idx=index,
    )
    code, output = verify_post(tmp_path, verify(client, own.platform_url or ""), key)
    assert code == 1 and "step 4 " in output

    # A tree head row replaced by one with another root (not signed by the key): refused, and
    # the notary refuses to extend a tree whose newest head is not the one it signed.
    note = answer["proof"]["checkpoint"]
    root = note.split("\n")[2]
    forged = note.replace(root, base64.b64encode(b"\x02" * 32).decode(), 1)
    sql(world, "UPDATE tree_checkpoints SET note = :note", note=forged)
    code, output = verify_post(tmp_path, verify(client, own.platform_url or ""), key)
    assert code == 1 and "step 2 " in output
    world.submit(world.principal, "One more")
    world.run_worker()
    assert world.container.notary_store.alarm() is not None
    assert "tree checkpoint" in world.container.notary_store.alarm().reason  # type: ignore[union-attr]


# --- witnesses ---------------------------------------------------------------------------


def test_consistency_proofs_link_signed_heads_and_the_first_pass_covers_the_whole_ledger(
    world: World, client: FlaskClient
) -> None:
    published(world)
    old = parse_tree_checkpoint(
        client.get("/api/v1/public/checkpoint").get_data(as_text=True).split("\n\n")[0] + "\n"
    )
    with world.ctx.uow() as uow:
        assert uow.tree.leaf_count() == uow.ledger.head()[0] == old.size
    # An entry recorded before `delegated` was (older ledgers): the leaf takes it from the post.
    mine = world.post(world.submit(world.principal, "Mine again").id)
    world.run_worker()
    with world.ctx.uow() as uow:
        entry = uow.tree.published_entry(world.post(mine.id).platform_url or "")
        assert entry is not None
        legacy = {k: v for k, v in entry.data.items() if k != "delegated"}
        uow.ledger.append(
            tag="post:published",
            actor="system:worker",
            subject=entry.subject,
            data=legacy,
            occurred_at=world.container.clock.now(),
        )
        uow.commit()
    world.run_notary()
    answer = verify(client, legacy["platform_url"])
    assert json.loads(answer["proof"]["leaf"])["seq"] == entry.seq + 1
    assert answer["verdict"] == "principal"
    for text_ in ("Three", "Four", "Five"):
        world.submit(world.principal, text_)
    world.run_worker()
    new = parse_tree_checkpoint(
        client.get("/api/v1/public/checkpoint").get_data(as_text=True).split("\n\n")[0] + "\n"
    )
    assert new.size > old.size
    response = client.get(
        "/api/v1/public/consistency", query_string={"from": old.size, "to": new.size}
    )
    proof = [base64.b64decode(h) for h in response.get_json()["proof"]]
    verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    too_far = client.get("/api/v1/public/consistency", query_string={"from": 1, "to": new.size + 1})
    assert too_far.status_code in (400, 422) and too_far.mimetype == "application/problem+json"


def test_a_notary_on_another_host_follows_the_tree_the_first_one_extended(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    import shutil
    from datetime import timedelta

    from ghostpost.audit.notary import FileNotaryStore
    from ghostpost.services.ledger_integrity import Notary

    published(world)
    container = world.container
    here = container.notary_store.state_path
    there = tmp_path / "host-b" / here.name
    there.parent.mkdir()
    for name in (here.name, "notary-tree.json"):
        shutil.copy(here.with_name(name), there.with_name(name))
    first = world.submit(world.principal, "Signed by host A")
    world.run_worker()
    host_b = Notary(
        world.ctx,
        container.keyring,
        FileNotaryStore(there),
        timedelta(seconds=60),
        origin=container.settings.log_origin,
    )
    # New entries (no worker: host A does not see them) that host B signs.
    directory.create_principal(world.ctx, Actor.system("test"), "Another principal")
    result = host_b.run_pass()
    assert result.outcome is not PassOutcome.HALTED, result.reason
    answer = verify(client, world.post(first.id).platform_url or "")
    with world.ctx.uow() as uow:
        assert answer["proof"]["tree_size"] == uow.ledger.head()[0]
    code, output = verify_post(tmp_path, answer, log_key(client))
    assert code == 0, output


def test_every_pass_refuses_a_stored_tree_edge_that_is_not_the_notarys(world: World) -> None:
    """What the per-pass check of the stored tree protects (a database writer, no key): the
    newest tree head rolled back, a subtree hash at the tree's edge or the last leaf changed,
    leaves removed or added past the signed size. Each is refused by the next pass, idle or
    with a new entry to sign; put back, the notary signs again."""
    published(world)
    system = Actor.system("test")
    tampered: list[str] = []

    def edge() -> tuple[int, bytes, tuple[int, int], Any, Any]:
        """The signed tree's size, first edge hash and node, last leaf row, newest head row."""
        assert world.run_notary().outcome is not PassOutcome.HALTED
        tree = world.container.notary_store.load_tree()
        assert tree is not None
        with world.container.engine.connect() as connection:
            leaf = connection.execute(
                text("SELECT leaf, leaf_hash FROM ledger_leaves WHERE seq = :s"), {"s": tree.size}
            ).one()
            newest = connection.execute(
                text("SELECT * FROM tree_checkpoints ORDER BY id DESC LIMIT 1")
            ).one()
        return tree.size, tree.compact[0], subtree_nodes(0, tree.size)[0], leaf, newest

    def refused(tamper: str, undo: str, reason: str, **params: Any) -> None:
        sql(world, tamper, **params)
        for new_entry in (False, True):  # an idle pass, then one with an entry to sign
            if new_entry:
                directory.create_principal(world.ctx, system, f"Unsigned {len(tampered)}")
            tampered.append(tamper)
            halted = world.run_notary()
            assert halted.outcome is PassOutcome.HALTED, tamper
            assert reason in (halted.reason or ""), halted.reason
            world.container.notary_store.clear_alarm()  # the operator looks again
        sql(world, undo, **params)

    size, first_hash, (level, index), leaf, newest = edge()
    assert level > 0 and newest.id >= 2  # an inner edge node; an older head to roll back to
    refused(
        "UPDATE ledger_tree_nodes SET hash = :forged WHERE level = :level AND idx = :idx",
        "UPDATE ledger_tree_nodes SET hash = :hash WHERE level = :level AND idx = :idx",
        "subtree hashes at the tree's edge",
        forged=b"\x01" * 32,
        hash=first_hash,
        level=level,
        idx=index,
    )
    size, _, _, leaf, newest = edge()
    if size % 2 == 0:  # the next entry makes the last leaf a subtree of the edge by itself
        directory.create_principal(world.ctx, system, "Odd size")
        size, _, _, leaf, newest = edge()
    refused(
        "UPDATE ledger_leaves SET leaf_hash = :forged WHERE seq = :seq",
        "UPDATE ledger_leaves SET leaf_hash = :hash WHERE seq = :seq",
        "subtree hashes at the tree's edge",
        forged=b"\x03" * 32,
        hash=leaf.leaf_hash,
        seq=size,
    )
    size, _, _, leaf, newest = edge()
    refused(
        "DELETE FROM ledger_leaves WHERE seq = :seq",
        "INSERT INTO ledger_leaves (seq, leaf, leaf_hash) VALUES (:seq, :leaf, :hash)",
        "leaves",
        seq=size,
        leaf=leaf.leaf,
        hash=leaf.leaf_hash,
    )
    size, _, _, leaf, newest = edge()
    refused(
        "INSERT INTO ledger_leaves (seq, leaf, leaf_hash) VALUES (:seq, :leaf, :hash)",
        "DELETE FROM ledger_leaves WHERE seq = :seq",
        "leaves",
        seq=size + 1,
        leaf=b"{}",
        hash=b"\x04" * 32,
    )
    size, _, _, leaf, newest = edge()
    refused(
        "DELETE FROM tree_checkpoints WHERE id = :id",
        "INSERT INTO tree_checkpoints (id, origin, size, root_hash, note, signed_at) "
        "VALUES (:id, :origin, :size, :root_hash, :note, :signed_at)",
        "newest tree checkpoint",
        **newest._asdict(),
    )
    edge()
    assert world.container.notary_store.alarm() is None
