"""Audit exports in the web app (the "Export" form of the ledger page), and the glue every
surface (web, API, CLI) shares around ghostpost.services.exports: the ledger's public keys for
the export header, and shipping the newest signed head to the witness before an export.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, flash, redirect, request, url_for

from ghostpost.audit.witness import ship_newest_checkpoint
from ghostpost.bootstrap import Container
from ghostpost.domain.checkpoint import LedgerKey
from ghostpost.domain.model import Role
from ghostpost.export_slots import make_slots
from ghostpost.services import exports
from ghostpost.services.errors import ValidationFailed
from ghostpost.web.common import container, current_actor, parse_id, roles_required, services

bp = Blueprint("exports", __name__)

READERS = (Role.ADMIN, Role.MANAGER, Role.AUDITOR)


# --- shared by the surfaces -------------------------------------------------------------------


def ledger_public_keys(built: Container) -> list[LedgerKey]:
    """Return the ledger's public keys (retired and current) for an export's header."""
    return built.keyring.public_keys()


def ship_checkpoint(built: Container) -> None:
    """Have the notary sign the current head (on demand, so the export ends signed), then ship
    the newest signed head to the witness. A notary that stopped (an alarm) or a witness that
    is down is logged, never fatal: the export goes on, and `audit verify` reports the entries
    no checkpoint covers."""
    try:
        built.notary.run_pass()
    except Exception:
        logging.getLogger("ghostpost.notary").exception("no notary pass before the export")
    ship_newest_checkpoint(built)


_SLOTS = "ghostpost.export_slots"
_slots_lock = threading.Lock()


def export_slots(app: Flask) -> exports.ExportSlots:
    """Return the app's export counters (built on first use from the rate-limit storage)."""
    with _slots_lock:
        found = app.extensions.get(_SLOTS)
        if found is None:
            built: Container = app.extensions["ghostpost"]
            settings, clock = built.settings, built.clock
            # A lease outlives the longest a chunk may take to send, several times over.
            ttl = max(60.0, 4 * settings.export_send_timeout_seconds)
            found = make_slots(
                settings.rate_limit_storage_uri, lambda: clock.now().timestamp(), ttl
            )
            app.extensions[_SLOTS] = found
    slots: exports.ExportSlots = found
    return slots


def _socket() -> socket.socket | None:
    """Return the client's socket where the server exposes it (werkzeug, gunicorn)."""
    for key in ("werkzeug.socket", "gunicorn.socket"):
        found = request.environ.get(key)
        if isinstance(found, socket.socket):
            return found
    return None


def attachment(export: exports.Export) -> Response:
    """Return the export as a streamed download (the rows are read while it is sent).

    Admitted first (raises ExportLimitReached: 429). While it streams, the download holds a
    slot and a database connection; both go back when the response is closed, which the server
    does when the download ends, fails, or its reader stops reading: every chunk must be taken
    within `export_send_timeout_seconds` (a socket timeout, where the server exposes its
    socket), else the server drops the connection.
    """
    built = container()
    settings = built.settings
    lease = exports.admit(
        export,
        export_slots(current_app._get_current_object()),  # type: ignore[attr-defined]
        exports.ExportLimits(settings.export_max_concurrent, settings.export_max_per_reader),
    )
    sock = _socket()
    timeout = settings.export_send_timeout_seconds

    def body() -> Iterator[str]:
        previous = sock.gettimeout() if sock is not None else None
        if sock is not None:
            sock.settimeout(timeout)
        try:
            for chunk in export.stream():
                lease.renew()
                yield chunk
        finally:
            # Released here too: some servers (and test clients) close the response late.
            lease.release()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(previous)  # a kept-alive connection waits as before

    response = Response(body(), content_type=export.media_type)
    response.call_on_close(lease.release)  # also when the body never started
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- the web form -----------------------------------------------------------------------------


def _id(name: str, errors: dict[str, str]) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    number = parse_id(raw)
    if number is None:
        errors[name] = "not a valid choice"
    return number


def _time(name: str, end: bool, errors: dict[str, str]) -> Any:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return exports.parse_time(raw, end=end, name=name)
    except ValidationFailed:
        errors[name] = "not a date (YYYY-MM-DD)"
        return None


@bp.get("/ledger/export")
@roles_required(*READERS, allow_principal=True)
def export() -> Any:
    """Download the authorship report or the raw ledger, filtered by the form's fields."""
    errors: dict[str, str] = {}
    filters = exports.ExportFilters(
        account_id=_id("account", errors),
        window_id=_id("window", errors),
        author_email=request.args.get("author", "").strip() or None,
        since=_time("from", False, errors),
        until=_time("to", True, errors),
    )
    report = request.args.get("report", "authorship").strip()
    export_format = request.args.get("format", "").strip() or (
        "jsonl" if report == "ledger" else "csv"
    )
    try:
        if errors:
            raise ValidationFailed("The export form has invalid fields.", errors)
        prepared = exports.prepare_export(
            services(),
            current_actor(),
            report,
            export_format,
            filters,
            public_keys=ledger_public_keys(container()),
        )
    except ValidationFailed as exc:
        details = "; ".join(f"{name}: {text}" for name, text in exc.fields.items())
        flash(f"Export not started. {exc.message}" + (f" ({details})" if details else ""), "error")
        return redirect(url_for("ledger.ledger") + "#export")
    ship_checkpoint(container())
    return attachment(prepared)
