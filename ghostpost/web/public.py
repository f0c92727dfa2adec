"""Public pages: the local platform's timelines and the health check."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from markupsafe import Markup, escape

from ghostpost.bootstrap import Container
from ghostpost.db.engine import ping
from ghostpost.http_surface import problem_response
from ghostpost.services import media
from ghostpost.services.disclosure import DisclosurePage, PublicWindow, disclosure_page
from ghostpost.services.errors import MediaUnavailable, NotFound
from ghostpost.web.common import current_user, parse_id

bp = Blueprint("public", __name__)

#: A web address in a post: http(s) only (never javascript: or data:), up to a space, a quote
#: or an angle bracket; trailing punctuation is the sentence's, not the link's.
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'"


@bp.app_template_filter("linkify")
def linkify(text: str) -> Markup:
    """The text escaped, with its web addresses as links (the only markup it gains)."""
    out: list[str] = []
    last = 0
    for found in _URL.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        start, end = found.start(), found.start() + len(url)
        out.append(str(escape(text[last:start])))
        href = escape(url)
        out.append(f'<a href="{href}" rel="nofollow noopener noreferrer">{href}</a>')
        last = end
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def initials(name: str) -> str:
    """Up to two initials for a name's avatar ("Avery Chen" -> "AC")."""
    return "".join(word[0] for word in name.split()[:2]).upper() or "?"


@bp.get("/favicon.ico")
def favicon() -> Any:
    """The site icon browsers ask for on every page (under 1 KB: sent from memory)."""
    return Response(
        _favicon_bytes(),
        mimetype="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@cache
def _favicon_bytes() -> bytes:
    return (Path(__file__).parent / "static" / "favicon.ico").read_bytes()


PAGE_SIZE = 50


def container() -> Container:
    """Return the app's container."""
    found: Container = current_app.extensions["ghostpost"]
    return found


@bp.get("/healthz")
def healthz() -> Any:
    """Answer 200 when the database answers, 503 otherwise. The body also names the ledger
    notary's state (read from its files, not the database): "degraded" with the reason when it
    stopped signing, or when the last scheduled posts-vs-ledger check found mismatches."""
    built = container()
    ping(built.engine)
    status = "ok"
    store = built.notary_store
    notary: dict[str, Any]
    alarm = store.alarm()
    if alarm is not None:
        status = "degraded"
        notary = {"status": "halted", "reason": alarm.reason, "since": alarm.detected_at}
    else:
        try:
            state = store.load()
        except ValueError as exc:
            status, notary = "degraded", {"status": "unreadable state", "reason": str(exc)}
        else:
            notary = (
                {"status": "ok", "signed_size": state.size, "signed_at": state.signed_at}
                if state is not None
                else {"status": "not started"}
            )
    body: dict[str, Any] = {"status": status, "database": "ok", "notary": notary}
    check = store.last_check()
    if check is not None:
        body["ledger_check"] = {
            "checked_at": check.get("checked_at"),
            "mismatches": check.get("mismatches"),
        }
        if check.get("mismatches"):
            body["status"] = "degraded"
    return jsonify(body)


@bp.get("/")
def index() -> Any:
    """List the local accounts whose timelines ghostpost serves."""
    with container().services.uow(read_only=True) as uow:
        accounts = [a for a in uow.accounts.list() if a.platform == "local"]
    return render_template("index.html", accounts=accounts)


@bp.get("/@<handle>")
def timeline(handle: str) -> Any:
    """Show a local account's public timeline, newest first, exactly as published."""
    c = container()
    with c.services.uow(read_only=True) as uow:
        account = uow.accounts.by_handle("local", handle)
    if account is None:
        abort(404, description=f"No local account @{handle}.")
    # Beyond the database's integers (or not a number) is no cursor: the newest page.
    before = parse_id(request.args.get("before"))
    page = c.local_store.timeline(handle, limit=PAGE_SIZE + 1, before=before)
    statuses = page[:PAGE_SIZE]
    older = statuses[-1].id if len(page) > PAGE_SIZE else None
    with c.services.uow(read_only=True) as uow:
        principal = uow.principals.get(account.principal_id)
    name = principal.name if principal else f"@{handle}"
    return render_template(
        "timeline.html",
        handle=handle,
        statuses=statuses,
        older=older,
        name=name,
        initials=initials(name),
    )


def _window_json(window: PublicWindow) -> dict[str, Any]:
    return {
        "name": window.name,
        "account": {"platform": window.platform, "handle": window.handle},
        "kind": window.kind.value,
        "starts_at": window.starts_at.isoformat(),
        "ends_at": window.ends_at.isoformat(),
        "reason": window.reason,
        "policy": window.policy,
        "notice": {
            "text": window.notice_text,
            "published_at": window.notice_published_at.isoformat()
            if window.notice_published_at
            else None,
            "url": window.notice_url,
        },
        "counts": {
            "posts_by_principal": window.counts.by_principal,
            "posts_by_team": window.counts.by_team,
            "tagged": window.counts.tagged,
            "reminders": window.counts.reminders,
        },
    }


def disclosure_json(page: DisclosurePage) -> dict[str, Any]:
    """The disclosure page as JSON (the body of `/@<handle>/disclosure.json`)."""
    return {
        "handle": page.handle,
        "principal": page.principal,
        "url": page.url,
        "current": [_window_json(w) for w in page.current],
        "upcoming": [_window_json(w) for w in page.upcoming],
        "past": [_window_json(w) for w in page.past],
    }


@bp.get("/@<handle>/disclosure")
def disclosure(handle: str) -> Any:
    """The principal's public disclosure page: who else posts, when, why and under what rules
    (never who: the team is "the team"). Linkable from a bio."""
    page = disclosure_page(container().services, handle)
    return render_template("disclosure.html", page=page)


@bp.get("/@<handle>/disclosure.json")
def disclosure_data(handle: str) -> Any:
    """The disclosure page as JSON, at a stable URL; an unknown handle is a 404 problem."""
    try:
        page = disclosure_page(container().services, handle)
    except NotFound as exc:
        return problem_response(404, "not_found", exc.message)
    response = jsonify(disclosure_json(page))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/@<handle>/<status_id>")
def status(handle: str, status_id: str) -> Any:
    """Show one local status."""
    number = parse_id(status_id)
    # An id the database cannot hold names no status; asked as given, it would be an error.
    found = container().local_store.get(handle, number) if number is not None else None
    if found is None:
        abort(404, description="No such status.")
    return render_template("timeline.html", handle=handle, statuses=[found], older=None)


@bp.get("/@<handle>/<status_id>/media/<int:position>")
def status_image(handle: str, status_id: str, position: int) -> Any:
    """Serve one image of a local status (only images published with a status are served,
    and only while their bytes still match their hash)."""
    number = parse_id(status_id)
    c = container()
    found = c.local_store.get(handle, number) if number is not None else None
    if found is None or position >= len(found.media):
        abort(404, description="No such image.")
    image = found.media[position]
    if c.services.media_files is None:
        abort(404, description="No such image.")
    try:
        data = c.services.media_files.read(image.content_hash)
    except MediaUnavailable:
        abort(404, description="This image is no longer available.")
    response = Response(data, mimetype=image.mime_type)
    # Image bytes, never a document: no sniffing, no script even if a browser were fooled.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response


@bp.get("/media/<media_id>")
def media_file(media_id: str) -> Any:
    """An uploaded image's bytes by its unguessable id, only while they still match their hash:
    without signing in once its post is published (as Mastodon serves its media files: the
    Mastodon face's attachment URLs point here), before that only to its uploader (signed in,
    or with the token that uploaded it), never after the principal deleted its post."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    try:
        data, mime_type = media.media_bytes(
            container().services,
            media_id,
            signed_in=current_user(),
            bearer=token.strip() if scheme.lower() == "bearer" else None,
        )
    except (NotFound, MediaUnavailable):
        abort(404, description="No such image.")
    response = Response(data, mimetype=mime_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # Who may see it depends on who asks and changes (published, then deleted): asked again
    # every time, and never kept by a shared cache for another reader.
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Authorization, Cookie"
    return response
