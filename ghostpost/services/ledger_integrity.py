"""Ledger integrity: the notary that signs the ledger's heads, and read-only views of them.

Appends only chain (db.repositories.ledger.SqlLedger, in the transaction of the change); nothing on
the request path can sign. The notary (`Notary.run_pass`, run by the worker every
`ledger_checkpoint_seconds` and before every export) is the only signer. Before it signs a head
it checks, against its own state kept outside the database (`NotaryStore`, a file on the
notary's host), that

- the ledger still has at least the entries it signed last, and the entry at that size still
  hashes to the head it signed (a history rewritten and re-chained below it changes that hash);
- the new entries chain from there: seq contiguous, each prev_hash the hash before it, each
  entry_hash recomputed here from the entry itself, ending at the head row's hash.

On any mismatch it signs nothing, logs at ERROR, writes an alert file beside its state and stays
stopped until an operator runs `ghostpost audit notary-reset --accept-current-head`. Periodically
(and at the first pass of a worker) it also recomputes the whole chain up to its signed size.
So a database writer cannot get a rewritten history signed; what they can still do is rewrite
entries appended since the last pass (the unsigned tail, at most `ledger_checkpoint_seconds`
old while a worker runs), or roll the whole database back (caught only by a checkpoint kept
outside it: the witness, or this state file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from ghostpost.domain.checkpoint import (
    Checkpoint,
    CheckpointKind,
    NotaryAlarm,
    NotaryState,
    TreeState,
    checkpoint_note,
)
from ghostpost.domain.ledger import GENESIS_HASH, LedgerEntry, LedgerTag, entry_hash
from ghostpost.services.context import Actor, ServiceContext
from ghostpost.services.errors import Conflict
from ghostpost.services.ports import HeadSigner, UnitOfWork
from ghostpost.services.transparency_log import (
    BATCH,
    check_every_leaf,
    check_stored_tree,
    extend_tree,
)

log = logging.getLogger("ghostpost.notary")

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    """Return a time in the ledger's one format (text order is time order)."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_signed_at(text: str) -> datetime:
    """Return a checkpoint's `signed_at` as an aware UTC datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


class NotaryStore(Protocol):
    """The notary's state, alarm and lock, kept outside the database (ghostpost.audit.notary)."""

    def load(self) -> NotaryState | None:
        """Return what the notary signed last, or None before its first signature."""

    def save(self, state: NotaryState) -> None:
        """Replace the state durably (atomic, fsynced) before the checkpoint is released."""

    def load_tree(self) -> TreeState | None:
        """Return the Merkle tree the notary signed last, or None."""

    def save_tree(self, tree: TreeState | None) -> None:
        """Replace the tree state durably before its checkpoint is released (None: forget it,
        so the next pass rebuilds the tree from the entries and the stored salts)."""

    def alarm(self) -> NotaryAlarm | None:
        """Return the raised alarm, or None."""

    def raise_alarm(self, alarm: NotaryAlarm) -> None:
        """Record the alarm durably: the notary signs nothing while it is there."""

    def clear_alarm(self) -> None:
        """Put the alarm aside (kept for the record) after an operator's reset."""

    def exclusive(self) -> AbstractContextManager[bool]:
        """Hold the notary's host lock for one pass; yields False when another process has it."""


class PassOutcome(StrEnum):
    """What one notary pass did."""

    SIGNED = "signed"
    #: The head was signed already and no heartbeat is due.
    UNCHANGED = "unchanged"
    #: Another process holds the notary lock (it signs instead).
    BUSY = "busy"
    #: A mismatch was found now or before: nothing is signed until an operator resets.
    HALTED = "halted"


@dataclass(frozen=True)
class NotaryPass:
    """The result of `Notary.run_pass`."""

    outcome: PassOutcome
    checkpoint: Checkpoint | None = None
    reason: str | None = None


class Notary:
    """The only signer of the ledger's heads (see the module docstring)."""

    def __init__(
        self,
        ctx: ServiceContext,
        signer: HeadSigner,
        store: NotaryStore,
        heartbeat: timedelta,
        *,
        origin: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.signer = signer
        self.store = store
        self.heartbeat = heartbeat
        #: The transparency log's origin; None: no Merkle tree is kept (services.transparency_log).
        self.origin = origin

    # --- one pass ----------------------------------------------------------------------------

    def run_pass(self, *, full_check: bool = False, force: bool = False) -> NotaryPass:
        """Verify the ledger against the notary's state and sign its head when it changed (or
        a heartbeat is due). `full_check` also recomputes every entry up to the signed size;
        `force` signs even an unchanged head (after a key rotation)."""
        alarm = self.store.alarm()
        if alarm is not None:
            return NotaryPass(PassOutcome.HALTED, reason=alarm.reason)
        with self.store.exclusive() as held:
            if not held:
                return NotaryPass(PassOutcome.BUSY)
            try:
                state = self.store.load()
            except ValueError as exc:  # an unreadable state file: never guess
                return self._halt(f"cannot read the notary's state: {exc}", None)
            if full_check and state is not None:
                problem = self._check_signed_prefix(state) or self._check_tree_leaves()
                if problem:
                    return self._halt(problem, state)
            with self.ctx.uow() as uow:
                if not uow.ledger.claim_notary():
                    return NotaryPass(PassOutcome.BUSY)
                size, head_hash = uow.ledger.head()
                if state is None:
                    log.warning(
                        "the notary has no state yet: verifying the whole chain and trusting "
                        "it as it is now (first start)"
                    )
                problem, verified = _check_extension(uow, state, size, head_hash)
                if problem:
                    return self._halt(problem, state)
                tree_signed = False
                if self.origin is not None:
                    try:
                        tree = self.store.load_tree()
                    except ValueError as exc:
                        return self._halt(f"cannot read the notary's tree: {exc}", state)
                    problem, tree_signed = extend_tree(
                        uow,
                        tree,
                        size,
                        self.origin,
                        self.signer,
                        format_time(self.ctx.clock.now()),
                        self.store.save_tree,
                        verified,
                    )
                    if problem:
                        return self._halt(problem, state)
                # Read after the lock, in its own statement: the newest signing time cannot be
                # a snapshot older than a checkpoint another notary committed before us.
                latest = uow.ledger.latest_checkpoint()
                now = format_time(self.ctx.clock.now())
                kind = self._kind(state, latest, size, head_hash, now)
                if kind is None and force:
                    kind = CheckpointKind.HEARTBEAT
                if kind is None:
                    if tree_signed:  # the chain head was signed already; the tree was not
                        uow.commit()
                    return NotaryPass(PassOutcome.UNCHANGED)
                signed_at = max(
                    [now]
                    + ([latest.signed_at] if latest else [])
                    + ([state.signed_at] if state else [])
                )
                checkpoint = Checkpoint(
                    size=size,
                    head_hash=head_hash,
                    signed_at=signed_at,
                    key_id=self.signer.key_id,
                    signature=self.signer.sign(checkpoint_note(size, head_hash, signed_at)),
                    kind=kind.value,
                )
                # The state is durable before the checkpoint is released (stored, shipped).
                self.store.save(NotaryState(size, head_hash, checkpoint.key_id, signed_at))
                uow.ledger.add_checkpoint(checkpoint)
                uow.commit()
        return NotaryPass(PassOutcome.SIGNED, checkpoint)

    def _kind(
        self,
        state: NotaryState | None,
        latest: Checkpoint | None,
        size: int,
        head_hash: str,
        now: str,
    ) -> CheckpointKind | None:
        signed_here = state is not None and (state.size, state.head_hash) == (size, head_hash)
        in_database = latest is not None and (latest.size, latest.head_hash) == (size, head_hash)
        if not (signed_here and in_database):
            return CheckpointKind.APPEND if not in_database else CheckpointKind.HEARTBEAT
        assert latest is not None
        if parse_signed_at(now) - parse_signed_at(latest.signed_at) >= self.heartbeat:
            return CheckpointKind.HEARTBEAT
        return None

    def _check_signed_prefix(self, state: NotaryState) -> str | None:
        """Recompute the chain from genesis up to the signed size (a read-only snapshot that
        never blocks writers)."""
        with self.ctx.uow() as uow:
            entries = uow.ledger.entries(up_to_seq=state.size, snapshot=True)
            problem, size, head = _walk(entries, 0, GENESIS_HASH)
        if problem:
            return problem
        if size < state.size:
            return _truncated(size, state)
        if head != state.head_hash:
            return _rewritten(state)
        return None

    def _check_tree_leaves(self) -> str | None:
        """Recompute every stored leaf and subtree hash of the signed tree (read-only)."""
        if self.origin is None:
            return None
        tree = self.store.load_tree()
        if tree is None:
            return None
        with self.ctx.uow(read_only=True) as uow:
            return check_stored_tree(uow, tree) or check_every_leaf(uow, tree)

    def _halt(self, reason: str, state: NotaryState | None) -> NotaryPass:
        log.error("ledger notary stopped signing: %s", reason)
        self.store.raise_alarm(NotaryAlarm(reason, format_time(self.ctx.clock.now()), state))
        return NotaryPass(PassOutcome.HALTED, reason=reason)

    # --- the operator's recovery -------------------------------------------------------------

    def reset(self, actor: Actor, reason: str) -> NotaryState:
        """Accept the ledger as it is now after an alarm (an operator's decision, made after
        investigating): the chain must hold together; the decision is appended to the ledger
        and the state moves to the accepted head, so the next pass signs from there."""
        alarm = self.store.alarm()
        previous = self.store.load()
        with self.store.exclusive() as held:
            if not held:
                raise Conflict("A notary pass is running; try again in a moment.")
            with self.ctx.uow() as uow:
                problem, size, head = _walk(uow.ledger.entries(snapshot=True), 0, GENESIS_HASH)
                if not problem and (size, head) != uow.ledger.head():
                    problem = f"the head row does not name entry {size} and its hash"
            if problem:
                raise Conflict(
                    f"The chain itself is broken ({problem}); restore the database from a "
                    "backup that verifies instead of accepting it."
                )
            with self.ctx.uow() as uow:
                entry: LedgerEntry = uow.ledger.append(
                    tag=LedgerTag.NOTARY_RESET,
                    actor=actor.ref,
                    subject="ledger:notary",
                    data={
                        "reason": reason,
                        "alarm": alarm.reason if alarm else None,
                        "alarm_detected_at": alarm.detected_at if alarm else None,
                        "previously_signed": _state_record(previous),
                        "accepted": {"size": size, "head_hash": head},
                    },
                    occurred_at=self.ctx.clock.now(),
                )
                if (entry.seq - 1, entry.prev_hash) != (size, head):
                    raise Conflict("The ledger grew while it was checked; run the reset again.")
                uow.commit()
            accepted = NotaryState(
                size,
                head,
                previous.key_id if previous else self.signer.key_id,
                format_time(self.ctx.clock.now()),
            )
            self.store.save(accepted)
            # The tree is rebuilt from the accepted entries and the stored salts next pass.
            self.store.save_tree(None)
            self.store.clear_alarm()
        log.warning(
            "ledger notary reset by %s: accepted %d entries ending in %s", actor.ref, size, head
        )
        return accepted


def _state_record(state: NotaryState | None) -> dict[str, object] | None:
    if state is None:
        return None
    return {"size": state.size, "head_hash": state.head_hash, "signed_at": state.signed_at}


def _truncated(size: int, state: NotaryState) -> str:
    return (
        f"the ledger has {size} entries, fewer than the {state.size} the notary signed at "
        f"{state.signed_at}: truncated or rolled back"
    )


def _rewritten(state: NotaryState) -> str:
    return (
        f"entry {state.size} no longer hashes to the head the notary signed at "
        f"{state.signed_at} ({state.head_hash[:16]}…): history up to entry {state.size} was "
        "changed, removed or re-chained"
    )


def _walk(entries: Iterable[LedgerEntry], after: int, prev: str) -> tuple[str | None, int, str]:
    """Recompute a run of the chain; return (problem or None, last seq, last hash)."""
    expected = after + 1
    for entry in entries:
        if entry.seq != expected:
            return f"entry {expected} is missing (found {entry.seq} after {expected - 1})", 0, ""
        if entry.prev_hash != prev:
            return f"entry {entry.seq} does not link to the entry before it", 0, ""
        if entry_hash(entry.body()) != entry.entry_hash:
            return f"entry {entry.seq} does not match its stored hash (changed in place)", 0, ""
        prev, expected = entry.entry_hash, expected + 1
    return None, expected - 1, prev


def _check_extension(
    uow: UnitOfWork, state: NotaryState | None, size: int, head_hash: str
) -> tuple[str | None, list[LedgerEntry]]:
    """Check that the ledger extends what the notary signed last; return (the problem or None,
    the new entries it verified when they are few: the tree is extended from those)."""
    base_size, base_hash = (state.size, state.head_hash) if state else (0, GENESIS_HASH)
    if state is not None and size < state.size:
        return _truncated(size, state), []
    # One read from the entry signed last (re-checked) to the head.
    entries: Iterator[LedgerEntry] = uow.ledger.entries(
        after_seq=max(base_size - 1, 0), up_to_seq=size
    )
    if state is not None and state.size:
        entry = next(entries, None)
        if (
            entry is None
            or entry.seq != state.size
            or entry.entry_hash != state.head_hash
            or entry_hash(entry.body()) != state.head_hash
        ):
            return _rewritten(state), []
    kept = list(entries) if size - base_size <= BATCH else []
    problem, last, last_hash = _walk(kept or entries, base_size, base_hash)
    if problem:
        return problem, []
    if last != size:
        return f"the head row counts {size} entries, the chain has {last}", []
    if last_hash != head_hash:
        return f"the head row's hash differs from the chain's hash at entry {size}", []
    return None, kept


# --- read-only views ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerState:
    """The ledger's head and its newest signed checkpoint."""

    size: int
    head_hash: str
    latest: Checkpoint | None


def ledger_state(ctx: ServiceContext) -> LedgerState:
    """Return the head and the newest checkpoint."""
    with ctx.uow(read_only=True) as uow:
        size, head_hash = uow.ledger.head()
        return LedgerState(size, head_hash, uow.ledger.latest_checkpoint())


def newest_checkpoint(ctx: ServiceContext) -> Checkpoint | None:
    """Return the newest signed head, or None when nothing was ever signed."""
    with ctx.uow(read_only=True) as uow:
        return uow.ledger.latest_checkpoint()
