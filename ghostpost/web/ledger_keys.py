"""The ledger's public signing keys: a page for staff and a public well-known JSON document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template

from ghostpost.audit.keys import well_known_document
from ghostpost.services.ledger_integrity import ledger_state
from ghostpost.web.common import container, login_required

bp = Blueprint("ledger_keys", __name__)
WELL_KNOWN_PATH = "/.well-known/ghostpost-ledger-keys.json"


@bp.get("/ledger/keys")
@login_required
def keys() -> Any:
    """Show every public key (retired and current) with its fingerprint, and the newest
    signed head, to any signed-in staff user."""
    c = container()
    current = c.keyring.signer().key_id
    return render_template(
        "ledger_keys.html",
        keys=list(reversed(c.keyring.public_keys())),
        current=current,
        state=ledger_state(c.services),
        well_known=WELL_KNOWN_PATH,
        heartbeat_seconds=c.settings.ledger_heartbeat_seconds,
    )


@bp.get(WELL_KNOWN_PATH)
def well_known() -> Any:
    """Serve the public keys as JSON (public: auditors pin the fingerprints)."""
    keyring = container().keyring
    response = jsonify(well_known_document(keyring.public_keys(), keyring.signer().key_id))
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
