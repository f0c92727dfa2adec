"""The ledger the services write, in memory: chained like SqlLedger's, agreeing with the posts,
signed by the notary, and a rewritten entry found (DESIGN.md §4)."""

from __future__ import annotations

import base64
import dataclasses
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ghostpost.audit.keys import Ed25519Signer
from ghostpost.domain.ledger import first_broken_entry
from ghostpost.services.audit import check_ledger_agreement
from ghostpost.services.context import Actor
from ghostpost.services.ledger_integrity import Notary, PassOutcome
from ghostpost.services.posts import approve_post
from tests.support.memory_uow import MemoryNotaryStore, MemoryUnitsOfWork
from tests.unit.services.memory_world import MemoryWorld


def _a_window_lived(world: MemoryWorld) -> None:
    world.live_window(every=2, requires_approval=True)
    first = world.submit(world.writer_a, "One")
    world.submit(world.principal, "Two, my own")
    approve_post(world.ctx, Actor.for_user(world.principal), first.id)
    world.run_worker()


def test_what_the_services_append_chains_and_agrees_with_the_posts(world: MemoryWorld) -> None:
    _a_window_lived(world)

    entries = world.entries()
    assert first_broken_entry(entries) is None
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    report = check_ledger_agreement(world.ctx)
    assert report.ok, [m.line() for m in report.mismatches]
    assert report.posts == len(world.posts())


def test_the_notary_signs_the_head_and_halts_on_a_rewritten_entry(world: MemoryWorld) -> None:
    _a_window_lived(world)
    key = Ed25519PrivateKey.generate()
    store = MemoryNotaryStore()
    notary = Notary(world.ctx, Ed25519Signer(key), store, heartbeat=timedelta(hours=1))

    signed = notary.run_pass()

    assert signed.outcome is PassOutcome.SIGNED and signed.checkpoint is not None
    checkpoint = signed.checkpoint
    key.public_key().verify(base64.b64decode(checkpoint.signature), checkpoint.note())
    head = world.entries()[-1]
    assert (checkpoint.size, checkpoint.head_hash) == (head.seq, head.entry_hash)
    assert notary.run_pass().outcome is PassOutcome.UNCHANGED

    # Someone with write access to the store rewrites who wrote the first post.
    units = world.ctx.uow
    assert isinstance(units, MemoryUnitsOfWork)
    ledger = units.database.state.ledger
    index = next(i for i, row in enumerate(ledger) if row.entry.tag == "post:submitted")
    row = ledger[index]
    forged = dict(row.entry.data, writer={**row.entry.data["writer"], "email": "me@else.test"})
    ledger[index] = dataclasses.replace(row, entry=dataclasses.replace(row.entry, data=forged))

    halted = notary.run_pass(full_check=True)

    assert halted.outcome is PassOutcome.HALTED and store.alarm() is not None
    assert notary.run_pass(force=True).outcome is PassOutcome.HALTED, "signs nothing after"
