"""GET /api/v1/audit/export: the authorship report or the raw ledger of the client's accounts,
streamed (ghostpost.services.exports does the work; the web app and the CLI use the same).

Registered on the /api/v1 blueprint by ghostpost.api.v1.init_app, so it shares its parser,
problem+json errors, scopes, rate limits and OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from marshmallow import fields, validate

from ghostpost.api.oauth import current_api_actor
from ghostpost.api.schemas import MAX_ID, Strict, Text
from ghostpost.api.scopes import AUDIT_READ
from ghostpost.api.v1 import bp, operation
from ghostpost.bootstrap import ship_checkpoint
from ghostpost.http_surface import attachment, container, services
from ghostpost.services import exports


class ExportQuerySchema(Strict):
    """What to export, and the filters."""

    report = fields.String(
        load_default=exports.Report.AUTHORSHIP.value,
        validate=validate.OneOf([r.value for r in exports.Report]),
        metadata={
            "description": "`authorship`: one row per post. `ledger`: the raw ledger entries "
            "(JSONL only)."
        },
    )
    format = fields.String(
        validate=validate.OneOf([f.value for f in exports.ExportFormat]),
        metadata={
            "description": "`csv` (authorship report only) or `jsonl`. Default: `csv` for the "
            "authorship report, `jsonl` for the ledger."
        },
    )
    account = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "Account id."}
    )
    window = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Delegation window id."},
    )
    author = Text(
        validate=validate.Length(min=1, max=320),
        metadata={"description": "Email of the writer: only the posts they wrote."},
    )
    from_ = Text(
        data_key="from",
        validate=validate.Length(min=1, max=40),
        metadata={
            "description": "Start of the time range, included: a UTC day (`2026-11-21`) or an "
            "RFC 3339 date-time. A post counts at its publishing time (its submission time "
            "while unpublished), a ledger entry at its `occurred_at`.",
            "example": "2026-11-21",
        },
    )
    to = Text(
        validate=validate.Length(min=1, max=40),
        metadata={
            "description": "End of the time range: a UTC day is included whole, an RFC 3339 "
            "date-time is excluded.",
            "example": "2026-11-22",
        },
    )


_STREAM = {"schema": {"type": "string"}}
_DESCRIPTION = """\
Streams the export of the client's accounts as an attachment (`Content-Disposition`); memory
stays flat at any size, so read the body as it comes.

**Authorship report** (`report=authorship`): one row per post (regular, notice, reminder), by
post id: `post_id, kind, state, state_reason, published_at, submitted_at, account_id, platform,
handle, platform_url, final_text, writer_name, writer_email, submitter, submitter_name,
approver_name, approver_email, approved_at, source, delegated, window_id, window_name,
decision_stage, tag, tag_outcome, tag_needs, tag_has, tag_unit, reminder, disclosure,
content_warning, visibility, deleted_at, deleted_by_name, deleted_by_email, group_id, images`
(the three `deleted_` set only when the principal deleted the published post from its platform;
`group_id` for posts made together for several accounts; `images` as
`<count>: <sha256> ...`). CSV is
RFC 4180 (UTF-8, header row, CRLF); a cell starting with `=`, `+`, `-`, `@`, tab or CR is
prefixed with `'` so spreadsheets do not run it. JSONL has one object per post with typed
values (null when empty) and no such prefix.

**Raw ledger** (`report=ledger`, JSONL): `ghostpost-ledger/v1` — a header line (with the public
keys), the entries about the client's accounts, and the newest signed checkpoint. An API client
never sees the whole ledger, so its export says `"complete": false` and cannot be verified on
its own; a complete, verifiable export comes from the CLI (`ghostpost audit export`) or from an
auditor in the web app.
"""


@bp.route("/audit/export", methods=["GET"])
@operation(AUDIT_READ, 404)
@bp.doc(
    summary="Export the authorship report or the ledger",
    description=_DESCRIPTION,
    responses={
        "200": {
            "description": "The export, streamed.",
            "content": {"text/csv": _STREAM, "application/x-ndjson": _STREAM},
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="ghostpost-<report>-<time>.<format>"',
                    "schema": {"type": "string"},
                }
            },
        }
    },
)
@bp.arguments(ExportQuerySchema, location="query")
def export_audit(args: dict[str, Any]) -> Response:
    report = args["report"]
    export_format = args.get("format") or ("jsonl" if report == "ledger" else "csv")
    filters = exports.ExportFilters(
        account_id=args.get("account"),
        window_id=args.get("window"),
        author_email=args.get("author"),
        since=exports.parse_time(args["from_"], name="from") if "from_" in args else None,
        until=exports.parse_time(args["to"], end=True, name="to") if "to" in args else None,
    )
    built = container()
    prepared = exports.prepare_export(
        services(),
        current_api_actor(),
        report,
        export_format,
        filters,
        public_keys=built.keyring.public_keys(),
    )
    ship_checkpoint(built)
    return attachment(prepared)
