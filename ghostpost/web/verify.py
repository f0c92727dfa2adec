"""The public `/verify` page: who wrote a post (principal or "the team"), with its proof checked in
the visitor's browser (static/verify.js), and a form to check an answer someone was given.

No sign-in; rate-limited per address (ghostpost.web.security). The answer's shape and the check's
steps are docs/verify-answer.md. A signed-in auditor is shown the writer; everyone else "the team".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, render_template, request

from ghostpost.domain.model import Role
from ghostpost.domain.signed_note import NoteError, VerifierKey, parse_verifier_key
from ghostpost.services.verification import log_verifier_key, verify_post_url
from ghostpost.web.common import current_user, services

bp = Blueprint("verify", __name__)

ANSWER_FORMAT = "ghostpost-verify/v1"
#: Longer than any post URL a platform makes (browsers and servers commonly stop near 2,000).
MAX_URL_CHARS = 2048
#: A real answer is a few KiB (a leaf, ≤64 hashes, a checkpoint); this leaves room and no more.
MAX_ANSWER_CHARS = 64 * 1024


def _url_problem(url: str) -> str | None:
    """Return why `url` cannot be a post's address, or None."""
    if not url:
        return "Enter the address (URL) of a post."
    if len(url) > MAX_URL_CHARS:
        return f"A post's address is at most {MAX_URL_CHARS} characters."
    if any(ch.isspace() or ch < " " or ch == "\x7f" for ch in url):
        return "A post's address has no spaces or control characters."
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "A post's address starts with https:// (or http://) and names a site."
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_answer(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return a pasted answer, or why it is not one the page can check."""
    if not text.strip():
        return None, "Paste the answer you were given (its JSON text)."
    if len(text) > MAX_ANSWER_CHARS:
        return None, f"An answer is at most {MAX_ANSWER_CHARS // 1024} KiB; this is longer."
    try:
        # NaN and Infinity are not JSON (Python accepts them by default; browsers do not).
        answer = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        return None, "This is nested too deeply to be an answer."
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        return None, f"This is not JSON{where}: check you pasted the whole answer."
    if not isinstance(answer, dict) or answer.get("format") != ANSWER_FORMAT:
        return None, f'This is not a verify answer: it has no "format": "{ANSWER_FORMAT}".'
    if not isinstance(answer.get("proof"), dict):
        return None, "This answer carries no proof to check (the proof may still be pending)."
    return answer, None


def _is_auditor() -> bool:
    """Auditors are staff with the auditor role (as everywhere in the app)."""
    user = current_user()
    return user is not None and user.role is Role.AUDITOR


def _log_key() -> tuple[str, VerifierKey | None]:
    text = log_verifier_key(services())
    try:
        return text, parse_verifier_key(text)
    except NoteError:
        return text, None  # shown as given; the browser check then fails at step 1


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> Any:
    """Ask who wrote a post (GET ?url=), or check a pasted answer (POST answer=)."""
    auditor = _is_auditor()
    answer: dict[str, Any] | None = None
    url_error = answer_error = None
    url = request.args.get("url")
    pasted = request.form.get("answer", "") if request.method == "POST" else ""
    if request.method == "POST":
        answer, answer_error = _parse_answer(pasted)
    elif url is not None:
        url = url.strip()
        url_error = _url_problem(url)
        if url_error is None:
            answer = verify_post_url(services(), url, auditor=auditor)
    if answer is not None and not auditor and isinstance(answer.get("writer"), dict):
        # The page names no writer to a visitor, even one a pasted answer names (the check of
        # step 6 needs only the disclosure).
        answer = {**answer, "writer": {**answer["writer"], "name": None}}
    status = 422 if url_error or answer_error else 200
    key_text, key = _log_key() if answer is not None and answer.get("proof") else ("", None)
    return render_template(
        "verify.html",
        url=url or "",
        pasted=pasted,
        answer=answer,
        from_form=request.method == "POST",
        auditor=auditor,
        url_error=url_error,
        answer_error=answer_error,
        log_key_text=key_text,
        log_key=key,
    ), status
