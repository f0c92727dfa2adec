"""External anchoring: ship the newest signed head outside the database.

A chain and signatures catch edits, deletions and reorders; only a checkpoint kept where the
database administrator cannot reach catches a truncated tail or a restore from an old backup.
The witness is an append-only JSON Lines file (`ledger_witness_file`, on another volume in
production) and/or an HTTP endpoint (`ledger_witness_url`) receiving a POST of the checkpoint
line. `ghostpost audit verify --trusted-checkpoint WITNESS_FILE` then fails on an export that
does not extend what the witness saw.

Shipping never blocks publishing: failures are logged and retried on the next shipment.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ghostpost.audit.format import checkpoint_line
from ghostpost.domain.checkpoint import Checkpoint

log = logging.getLogger("ghostpost.audit.witness")
HTTP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Shipment:
    """What one shipment did."""

    checkpoint: Checkpoint | None
    #: Appended to the witness file (False: no file configured, or already there).
    written: bool = False
    #: None: no URL configured or already posted; True: posted; False: failed (logged).
    posted: bool | None = None
    error: str | None = None


class Witness:
    """The configured witness sinks, and what this process shipped to them last."""

    def __init__(self, file: str = "", url: str = "", timeout: float = HTTP_TIMEOUT_SECONDS):
        self.file = Path(file) if file else None
        self.url = url or None
        self.timeout = timeout
        self._lock = threading.Lock()
        self._last_written: Checkpoint | None = None
        self._last_posted: Checkpoint | None = None
        self._background: threading.Thread | None = None

    @property
    def configured(self) -> bool:
        """Tell whether any sink is configured."""
        return self.file is not None or self.url is not None

    def ship(self, checkpoint: Checkpoint, *, post: bool = True) -> Shipment:
        """Append the checkpoint to the file and POST it to the URL (each once per process)."""
        with self._lock:
            written, error = False, None
            if self.file is not None and checkpoint != self._last_written:
                try:
                    self._append(checkpoint)
                    self._last_written, written = checkpoint, True
                except OSError as exc:
                    error = f"witness file {self.file}: {exc}"
                    log.error("could not ship the ledger head: %s", error)
            posted = None
            if post and self.url is not None and checkpoint != self._last_posted:
                posted, post_error = self._post(checkpoint)
                if posted:
                    self._last_posted = checkpoint
                error = error or post_error
            return Shipment(checkpoint, written, posted, error)

    def _append(self, checkpoint: Checkpoint) -> None:
        assert self.file is not None
        self.file.parent.mkdir(parents=True, exist_ok=True)
        line = checkpoint_line(checkpoint).encode("utf-8")
        fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # One write of a whole line with O_APPEND: lines never interleave across processes.
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _post(self, checkpoint: Checkpoint) -> tuple[bool, str | None]:
        assert self.url is not None
        request = urllib.request.Request(
            self.url,
            data=checkpoint_line(checkpoint).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "ghostpost-witness/1"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            status = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            message = f"witness URL: {exc}"
            log.warning("could not ship the ledger head (retried next time): %s", message)
            return False, message
        if not 200 <= status < 300:
            message = f"witness URL answered {status}"
            log.warning("could not ship the ledger head (retried next time): %s", message)
            return False, message
        return True, None

    def ship_in_background(self, checkpoint: Checkpoint) -> None:
        """Write the file now and POST from a thread, so a slow witness delays nothing."""
        self.ship(checkpoint, post=False)
        if self.url is None or checkpoint == self._last_posted:
            return
        if self._background is not None and self._background.is_alive():
            return  # the previous POST is still trying; the next shipment sends the newest
        self._background = threading.Thread(
            target=self.ship, args=(checkpoint,), name="ghostpost-witness", daemon=True
        )
        self._background.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for a background POST (tests, shutdown)."""
        if self._background is not None:
            self._background.join(timeout)
