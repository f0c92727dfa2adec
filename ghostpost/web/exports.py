"""Audit exports in the web app (the "Export" form of the ledger page), and the glue every
surface (web, API, CLI) shares around ghostpost.services.exports: the ledger's public keys for
the export header, and shipping the newest signed head to the witness before an export.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, flash, redirect, request, url_for

from ghostpost.audit.witness import ship_newest_checkpoint
from ghostpost.bootstrap import Container
from ghostpost.domain.checkpoint import LedgerKey
from ghostpost.domain.model import Role
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


def attachment(export: exports.Export) -> Response:
    """Return the export as a streamed download (the rows are read while it is sent)."""
    response = Response(export.stream(), content_type=export.media_type)
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
