"""The public transparency log: verify a post, the log's key, its newest tree head and
consistency proofs (GET /api/v1/public/...). No sign-in; each address is rate-limited with the
API's one limiter (`api_rate_limit`). The answer's shape: docs/verify-answer.md."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from flask import Response
from marshmallow import fields, validate

from ghostpost.api.oauth import client_rate_limit, current_client, optional_api_actor
from ghostpost.api.schemas import Strict, Text
from ghostpost.api.scopes import AUDIT_READ
from ghostpost.api.v1 import bp
from ghostpost.http_surface import services
from ghostpost.services import verification

F = TypeVar("F", bound=Callable[..., Any])
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_PUBLIC: list[dict[str, list[str]]] = []  # OpenAPI: no security requirement


class VerifyQuerySchema(Strict):
    url = Text(
        required=True,
        validate=validate.Length(min=1, max=verification.MAX_URL_CHARS),
        metadata={"description": "The platform URL of the post, exactly as published."},
    )


class ConsistencyQuerySchema(Strict):
    from_ = fields.Integer(
        data_key="from", required=True, validate=validate.Range(min=1, max=2**63 - 1)
    )
    to = fields.Integer(required=True, validate=validate.Range(min=1, max=2**63 - 1))


_VERIFY = """\
Who wrote a published post: `principal`, `team` (with the window and whether it carried the
disclosure) or `unknown` (not published through ghostpost), with a proof: the post's public leaf
(the writer replaced by a salted commitment), its RFC 9162 inclusion proof and the log's signed
tree head (a C2SP checkpoint). `proof` is null while the notary has not signed a tree head that
covers the post yet. An API token whose client has `audit:read` for the post's account adds
`writer` (name, and the disclosure that opens the leaf's commitment). Check an answer offline
with `ghostpost audit verify-post FILE --key <GET /api/v1/public/log-key>`. Shape and checking
steps: docs/verify-answer.md.
"""


def _errors(*statuses: int) -> Callable[[F], F]:
    """Document the problem responses a public view may give (429: the address's budget)."""

    def decorate(view: F) -> F:
        for status in sorted({*statuses, 429}, reverse=True):
            view = bp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorate


@bp.route("/public/verify", methods=["GET"])
@bp.doc(summary="Verify who wrote a post (public)", description=_VERIFY, security=_PUBLIC)
@bp.arguments(VerifyQuerySchema, location="query")
@bp.response(200, description="The verify answer (docs/verify-answer.md).")
@_errors(401, 422)
@client_rate_limit
def public_verify(args: dict[str, Any]) -> dict[str, Any]:
    actor = optional_api_actor()
    auditor_accounts = None
    if actor is not None:
        client = current_client()
        if AUDIT_READ in client.scopes:
            auditor_accounts = client.account_ids
    return verification.verify_post_url(
        services(),
        args["url"],
        auditor=auditor_accounts is not None,
        auditor_accounts=auditor_accounts,
    )


@bp.route("/public/log-key", methods=["GET"])
@bp.doc(
    summary="The log's verifier key (public)",
    description="The C2SP verifier key (`origin+keyid+base64key`) tree heads are signed with.",
    security=_PUBLIC,
    responses={"200": {"description": "The key.", "content": _TEXT}},
)
@_errors(404)
@client_rate_limit
def public_log_key() -> Response:
    return Response(verification.log_verifier_key(services()) + "\n", mimetype="text/plain")


@bp.route("/public/checkpoint", methods=["GET"])
@bp.doc(
    summary="The newest signed tree head (public)",
    description="A C2SP tlog-checkpoint as a signed note: origin, size, base64 Merkle root, "
    "then the signature line. 404 before the first.",
    security=_PUBLIC,
    responses={"200": {"description": "The signed note.", "content": _TEXT}},
)
@_errors(404)
@client_rate_limit
def public_checkpoint() -> Response:
    note = verification.latest_tree_checkpoint(services())
    return Response(note, mimetype="text/plain")


@bp.route("/public/consistency", methods=["GET"])
@bp.doc(
    summary="A consistency proof between two tree sizes (public)",
    description="RFC 9162 §2.1.4: `{from, to, proof: [base64 hashes]}` for "
    "0 < from <= to <= the newest signed size, so a witness can check the log only grew.",
    security=_PUBLIC,
)
@bp.arguments(ConsistencyQuerySchema, location="query")
@bp.response(200, description="The proof.")
@_errors(422)
@client_rate_limit
def public_consistency(args: dict[str, Any]) -> dict[str, Any]:
    return verification.consistency(services(), args["from_"], args["to"])
