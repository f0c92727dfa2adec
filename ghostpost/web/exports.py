"""Audit exports in the web app: the "Export" form of the ledger page. What every surface
shares around ghostpost.services.exports lives in ghostpost.bootstrap (signing and shipping the
head before an export) and ghostpost.http_surface (the streamed download)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for

from ghostpost.bootstrap import ship_checkpoint
from ghostpost.domain.model import Role
from ghostpost.http_surface import attachment
from ghostpost.services import exports
from ghostpost.services.errors import ValidationFailed
from ghostpost.web.common import container, current_actor, parse_id, roles_required, services

bp = Blueprint("exports", __name__)

READERS = (Role.ADMIN, Role.MANAGER, Role.AUDITOR)


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
            public_keys=container().keyring.public_keys(),
        )
    except ValidationFailed as exc:
        details = "; ".join(f"{name}: {text}" for name, text in exc.fields.items())
        flash(f"Export not started. {exc.message}" + (f" ({details})" if details else ""), "error")
        return redirect(url_for("ledger.ledger") + "#export")
    ship_checkpoint(container())
    return attachment(prepared)
