"""Public verification of a published post: who wrote it, with a Merkle inclusion proof.

The answer's shape and how to check it are fixed in docs/verify-answer.md (the contract between
this service, `GET /api/v1/public/verify`, the `/verify` page and `ghostpost audit verify-post`).
Everything here reads what the notary stored in its pass (services.transparency_log): a post
the notary has not covered yet gets its verdict and a pending proof.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from typing import Any

from ghostpost.domain.ledger import LedgerEntry
from ghostpost.domain.merkle import (
    MerkleError,
    consistency_ranges,
    inclusion_ranges,
    proof_from_nodes,
)
from ghostpost.domain.public_leaf import Authorship, writer_disclosure
from ghostpost.domain.signed_note import ed25519_verifier_key
from ghostpost.services.context import LogIdentity, ServiceContext
from ghostpost.services.errors import NotFound, ValidationFailed
from ghostpost.services.ports import UnitOfWork

ANSWER_FORMAT = "ghostpost-verify/v1"
#: Longer URLs are refused before any lookup (no platform URL is this long; the column is 500).
MAX_URL_CHARS = 2000


def _log(ctx: ServiceContext) -> LogIdentity:
    if ctx.log is None:
        raise NotFound("This ghostpost does not publish a verifiable log.")
    return ctx.log


def log_verifier_key(ctx: ServiceContext) -> str:
    """Return the log's C2SP verifier key (origin+keyid+key), the one answers are checked with."""
    log = _log(ctx)
    return ed25519_verifier_key(log.origin, log.public_key()).text()


def _b64(hashed: bytes) -> str:
    return base64.b64encode(hashed).decode("ascii")


def _unknown(url: str) -> dict[str, Any]:
    return {
        "format": ANSWER_FORMAT,
        "url": url,
        "verdict": "unknown",
        "summary": "This post was not published through ghostpost.",
        "principal": None,
        "account": None,
        "post": None,
        "window": None,
        "writer": None,
        "proof": None,
    }


def _day(moment: Any) -> str:
    return moment.strftime("%d %b %Y") if moment is not None else "?"


def verify_post_url(
    ctx: ServiceContext,
    url: str,
    *,
    auditor: bool = False,
    auditor_accounts: Collection[int] | None = None,
) -> dict[str, Any]:
    """Return the verify answer for a platform post URL (verdict, summary and proof).

    `auditor` adds the writer's name and the disclosure that opens the leaf's writer commitment
    (only for posts of `auditor_accounts` when given: an API client's accounts); the public
    answer never names a writer. Read-only: one read-only unit of work.
    """
    log = _log(ctx)
    if len(url) > MAX_URL_CHARS:
        raise ValidationFailed(f"The URL is longer than {MAX_URL_CHARS} characters.")
    wanted = url.strip()
    if not wanted:
        raise ValidationFailed("Give the URL of a post.")
    with ctx.uow(read_only=True) as uow:
        entry = uow.tree.published_entry(wanted)
        if entry is None:
            return _unknown(url)
        if auditor and auditor_accounts is not None:
            auditor = entry.data.get("account_id") in auditor_accounts
        return _answer(uow, log, url, entry, auditor=auditor)


def _answer(
    uow: UnitOfWork, log: LogIdentity, url: str, entry: LedgerEntry, *, auditor: bool
) -> dict[str, Any]:
    data = entry.data
    stored = uow.tree.leaf(entry.seq)
    head = uow.tree.latest_checkpoint()
    if stored is not None:
        projection = json.loads(stored.leaf)
        verdict = str(projection.get("authorship"))
        disclosure = projection.get("disclosure")
    else:
        delegated = data.get("delegated")
        if delegated is None:
            public_id = entry.subject.removeprefix("post:")
            delegated = uow.tree.delegated([public_id]).get(public_id, True)
        verdict = (Authorship.TEAM if delegated else Authorship.PRINCIPAL).value
        disclosure = data.get("disclosure")
    account = uow.accounts.get(int(data["account_id"]))
    principal = uow.principals.get(account.principal_id) if account is not None else None
    window_id = data.get("window_id")
    window = uow.windows.get(int(window_id)) if window_id is not None else None
    handle = account.handle.lstrip("@") if account is not None else ""

    window_answer = None
    if window is not None:
        window_answer = {
            "id": window.id,
            "starts_at": window.policy.starts_at.isoformat(),
            "ends_at": window.policy.ends_at.isoformat(),
            "reason": getattr(window, "reason", None),
        }
    if verdict == Authorship.TEAM.value:
        during = (
            f' during the window "{window.name}" ({_day(window.policy.starts_at)} to '
            f"{_day(window.policy.ends_at)})"
            if window is not None
            else ""
        )
        carried = "it carried the disclosure" if disclosure else "it did not carry the disclosure"
        summary = f"Written by the team{during}; {carried}."
    else:
        summary = "Written by the principal."

    proof = None
    if stored is not None and head is not None and head.size >= entry.seq:
        try:
            inclusion = proof_from_nodes(inclusion_ranges(entry.seq - 1, head.size), uow.tree.nodes)
        except MerkleError:
            inclusion = None  # stored hashes missing: answer without a proof rather than a 500
        if inclusion is not None:
            proof = {
                "leaf": stored.leaf.decode("utf-8"),
                "leaf_index": entry.seq - 1,
                "tree_size": head.size,
                "inclusion": [_b64(h) for h in inclusion],
                "checkpoint": head.note,
                "verifier_key": ed25519_verifier_key(log.origin, log.public_key()).text(),
            }
    if proof is None:
        summary += " The proof is pending: the log has not signed a tree head covering it yet."

    writer = None
    if auditor:
        recorded = data.get("writer")
        name = recorded.get("name") if isinstance(recorded, dict) else None
        salt = stored.salt if stored is not None else None
        writer = {
            "name": name,
            "writer_disclosure": None if salt is None else writer_disclosure(salt, recorded),
        }
    return {
        "format": ANSWER_FORMAT,
        "url": url,
        "verdict": verdict,
        "summary": summary,
        "principal": None
        if principal is None
        else {
            "handle": handle,
            "display_name": principal.name,
            "disclosure_page": f"{log.public_url.rstrip('/')}/@{handle}/disclosure",
        },
        "account": None if account is None else {"platform": account.platform, "handle": handle},
        "post": {
            "platform_url": data.get("platform_url"),
            "published_at": entry.occurred_at,
            "disclosure": disclosure,
        },
        "window": window_answer,
        "writer": writer,
        "proof": proof,
    }


def latest_tree_checkpoint(ctx: ServiceContext) -> str:
    """Return the newest signed tree checkpoint (a C2SP signed note), for witnesses."""
    with ctx.uow(read_only=True) as uow:
        head = uow.tree.latest_checkpoint()
    if head is None:
        raise NotFound("The log has not signed a tree head yet.")
    return head.note


def consistency(ctx: ServiceContext, old_size: int, new_size: int) -> dict[str, Any]:
    """Return the RFC 9162 consistency proof between two tree sizes the log has signed up to."""
    with ctx.uow(read_only=True) as uow:
        head = uow.tree.latest_checkpoint()
        signed = head.size if head is not None else 0
        if not 0 < old_size <= new_size <= signed:
            raise ValidationFailed(
                f"Ask for 0 < from <= to <= {signed}, the size of the newest signed tree head."
            )
        proof = proof_from_nodes(consistency_ranges(old_size, new_size), uow.tree.nodes)
    return {"from": old_size, "to": new_size, "proof": [_b64(h) for h in proof]}
