"""Ledger integrity: heartbeats of the signed head and what the witness and key pages show.

Every append signs the new head in its own transaction (db.repositories.SqlLedger); this module
adds the heartbeat (an idle ledger's unchanged head is re-signed, so "nothing happened" differs
from "history was deleted") and read-only views of the newest checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ghostpost.domain.checkpoint import Checkpoint, CheckpointKind
from ghostpost.services.context import ServiceContext


@dataclass(frozen=True)
class LedgerState:
    """The ledger's head and its newest signed checkpoint."""

    size: int
    head_hash: str
    latest: Checkpoint | None


def parse_signed_at(text: str) -> datetime:
    """Return a checkpoint's `signed_at` as an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def ledger_state(ctx: ServiceContext) -> LedgerState:
    """Return the head and the newest checkpoint."""
    with ctx.uow() as uow:
        size, head_hash = uow.ledger.head()
        return LedgerState(size, head_hash, uow.ledger.latest_checkpoint())


def newest_checkpoint(ctx: ServiceContext) -> Checkpoint | None:
    """Return the newest signed head, or None when nothing was ever signed."""
    with ctx.uow() as uow:
        return uow.ledger.latest_checkpoint()


@dataclass(frozen=True)
class Heartbeat:
    """What a heartbeat check did, and when the next one can be due."""

    #: The heartbeat signed now, or None when the newest checkpoint was recent enough.
    checkpoint: Checkpoint | None
    #: No heartbeat is due before this time (unless the ledger is changed behind our back).
    next_due: datetime


def sign_heartbeat_if_due(ctx: ServiceContext, every: timedelta) -> Heartbeat:
    """Re-sign the head when the newest checkpoint is at least `every` old (or missing)."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        latest = uow.ledger.latest_checkpoint()
        if latest is not None:
            due = parse_signed_at(latest.signed_at) + every
            if now < due:
                return Heartbeat(None, due)
        checkpoint = uow.ledger.sign_head(kind=CheckpointKind.HEARTBEAT.value, at=now)
        uow.commit()
    return Heartbeat(checkpoint, parse_signed_at(checkpoint.signed_at) + every)


def sign_head_now(ctx: ServiceContext) -> Checkpoint:
    """Sign the current head as a heartbeat right away (e.g. after a key rotation)."""
    with ctx.uow() as uow:
        checkpoint = uow.ledger.sign_head(kind=CheckpointKind.HEARTBEAT.value, at=ctx.clock.now())
        uow.commit()
    return checkpoint
