"""The publishing worker: claim (short txn) -> publish (no txn) -> record (short txn)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import date, datetime, timedelta

from ghostpost.adapters.base import PermanentError, RetryableError
from ghostpost.bootstrap import Container
from ghostpost.deletion import finish_stale_deletions
from ghostpost.services import audit, ledger_integrity, notifications, publishing
from ghostpost.services.ledger_integrity import NotaryPass
from ghostpost.services.publishing import Claim

log = logging.getLogger("ghostpost.worker")

#: Every this many notary passes (an hour at one a second), and at a worker's first pass, the
#: notary recomputes the whole chain up to its signed size, not only the new entries.
FULL_CHECK_EVERY_PASSES = 3600
#: Every this many passes (five minutes at one a second) the worker compares the posts table
#: with the ledger (`ghostpost audit check`) and records the result for /healthz.
AGREEMENT_CHECK_EVERY_PASSES = 300


def new_worker_id() -> str:
    """Return a worker id unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Publishes due posts one at a time per account."""

    def __init__(self, container: Container, worker_id: str | None = None) -> None:
        self.container = container
        self.ctx = container.services
        self.worker_id = worker_id or new_worker_id()
        self.lease = timedelta(seconds=container.settings.worker_lease_seconds)
        self.checkpoint_every = timedelta(seconds=container.settings.ledger_checkpoint_seconds)
        self.witness_every = timedelta(seconds=container.settings.ledger_witness_seconds)
        self._next_shipment: datetime | None = None
        self._next_pass: datetime | None = None
        self._passes = 0
        #: The last UTC day whose digests this worker queued (once a day, after midnight).
        self._digests_for: date | None = None
        #: The last claim found nothing to claim.
        self._idle = False

    def notary_pass(self) -> NotaryPass | None:
        """Run one notary pass now (verify the new entries, sign the head); None when it
        failed (logged). The first pass of a worker and every FULL_CHECK_EVERY_PASSES-th also
        recompute the whole signed chain; every AGREEMENT_CHECK_EVERY_PASSES-th compares the
        posts with the ledger."""
        full = self._passes % FULL_CHECK_EVERY_PASSES == 0
        self._passes += 1
        try:
            result = self.container.notary.run_pass(full_check=full)
        except Exception:
            log.exception("the ledger notary pass failed; will try again")
            return None
        if self._passes % AGREEMENT_CHECK_EVERY_PASSES == 0:
            self.check_agreement()
        return result

    def check_agreement(self) -> audit.AgreementReport | None:
        """Compare the posts with the ledger; log every mismatch at ERROR and record the result
        beside the notary's state (read by /healthz). Never raises."""
        try:
            report = audit.check_ledger_agreement(self.ctx)
            for mismatch in report.mismatches:
                log.error("posts and ledger disagree: %s", mismatch.line())
            self.container.notary_store.record_check(
                {
                    "checked_at": ledger_integrity.format_time(self.container.clock.now()),
                    "posts": report.posts,
                    "entries": report.entries,
                    "mismatches": len(report.mismatches),
                    "first": [m.line() for m in report.mismatches[:20]],
                }
            )
        except Exception:
            log.exception("could not compare the posts with the ledger; will try again")
            return None
        return report

    def ledger_tick(self) -> None:
        """Run a notary pass every `ledger_checkpoint_seconds`; ship the newest signed head to
        the witness when due. Never raises: the ledger's housekeeping must not stop publishing."""
        now = self.container.clock.now()
        if self._next_pass is None or now >= self._next_pass:
            self.notary_pass()
            self._next_pass = now + self.checkpoint_every
        if not self.container.witness.configured or (
            self._next_shipment is not None and now < self._next_shipment
        ):
            return
        try:
            checkpoint = ledger_integrity.newest_checkpoint(self.ctx)
            if checkpoint is not None:
                self.container.witness.ship_in_background(checkpoint)
            self._next_shipment = now + self.witness_every
        except Exception:
            log.exception("could not ship the newest ledger head; will try again")

    def reconcile(self) -> int:
        """Resolve posts a dead worker left `publishing` (ask the platform, never resend
        blindly) and deletions a request left unfinished."""
        resolved = 0
        if not publishing.anything_stale(self.ctx):
            return resolved
        for claim in publishing.adopt_stale(self.ctx, self.worker_id, self.lease):
            try:
                publisher = self.container.publisher_for(claim.account)
                receipt = publisher.lookup(claim.account, idempotency_key=claim.idempotency_key)
            except Exception:
                log.exception("lookup failed for post %s; will try again", claim.post.public_id)
                continue
            if receipt is not None:
                publishing.record_published(self.ctx, claim, receipt, reconciled=True)
                log.info("post %s was published before the crash", claim.post.public_id)
            else:
                publishing.requeue_unpublished(self.ctx, claim)
                log.info("post %s not on the platform; requeued", claim.post.public_id)
            resolved += 1
        # Deletions the principal asked for that no request finished: deleting again is
        # harmless (already gone counts as deleted), so they are simply made again.
        resolved += finish_stale_deletions(self.container)
        return resolved

    def publish_one(self) -> bool:
        """Claim and publish one post; return False when nothing was due. (The claim refuses
        what waits in ended windows first.)"""
        if self._idle and not publishing.anything_to_claim(self.ctx):
            return False
        claim = publishing.claim_next(self.ctx, self.worker_id, self.lease)
        # Found nothing: until something is due, the next polls only ask (anything_to_claim).
        self._idle = claim is None
        if claim is None:
            return False
        self._send(claim)
        return True

    def _send(self, claim: Claim) -> None:
        try:
            publisher = self.container.publisher_for(claim.account)
        except LookupError as exc:
            # A configuration problem, not a platform answer: nothing was sent.
            publishing.record_failure(self.ctx, claim, str(exc), retryable=False)
            return
        try:
            receipt = publisher.publish(
                claim.account,
                claim.text,
                idempotency_key=claim.idempotency_key,
                options=claim.options,
                media=claim.media,
                reply_to=claim.reply_to,
            )
        except RetryableError as exc:
            publishing.record_failure(
                self.ctx, claim, str(exc), retryable=True, retry_after=exc.retry_after
            )
        except PermanentError as exc:
            publishing.record_failure(self.ctx, claim, str(exc), retryable=False)
        except Exception as exc:
            # Unknown outcome: retrying under the same key is safe because publishers dedupe on it.
            log.exception("publishing post %s failed unexpectedly", claim.post.public_id)
            publishing.record_failure(self.ctx, claim, f"unexpected error: {exc}", retryable=True)
        else:
            publishing.record_published(self.ctx, claim, receipt)

    def notify(self) -> int:
        """Queue yesterday's digests (once a day) and send due notification emails. Never
        raises: a mail server that is down leaves them pending (retried), never stops
        publishing. Without an SMTP server they stay recorded, unsent. Return emails sent."""
        try:
            yesterday = self.container.clock.now().date() - timedelta(days=1)
            if self._digests_for != yesterday:
                notifications.queue_daily_digests(self.ctx, yesterday)
                self._digests_for = yesterday
            if self.container.mailer is None:
                return 0
            return notifications.deliver_due(self.ctx, self.container.mailer, self.worker_id)
        except Exception:
            log.exception("notification delivery failed; will try again")
            return 0

    def run(self, *, once: bool = False, stop: threading.Event | None = None) -> int:
        """Reconcile, then publish until stopped (or, with once, until nothing is due)."""
        stop = stop or threading.Event()
        published = 0
        self._reconcile_or_log(once)
        while not stop.is_set():
            self.ledger_tick()
            try:
                did = self.publish_one()
            except Exception:
                if once:
                    raise
                log.exception("worker iteration failed; backing off")
                did = False
            if did:
                published += 1
                continue
            # Only when nothing is due: email never delays a post.
            self.notify()
            if once:
                # Sign what this run appended, as the loop's next tick would.
                self.notary_pass()
                break
            self._reconcile_or_log(once)
            stop.wait(min(self.container.settings.worker_poll_seconds, self._until_next_pass()))
        return published

    def _until_next_pass(self) -> float:
        if self._next_pass is None:
            return 0.0
        return max(0.0, (self._next_pass - self.container.clock.now()).total_seconds())

    def _reconcile_or_log(self, once: bool) -> None:
        # A long-running worker outlives a database outage (it must not die on the first
        # OperationalError while idle); `once` still fails loudly.
        try:
            self.reconcile()
        except Exception:
            if once:
                raise
            log.exception("reconciling stale claims failed; will try again")
