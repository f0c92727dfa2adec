"""Public verification of a published post: who wrote it, with a Merkle inclusion proof.

The answer's shape and how to check it are fixed in docs/verify-answer.md (the contract between
this service, `GET /api/v1/public/verify`, the `/verify` page and `ghostpost audit verify-post`).
"""

from __future__ import annotations

from typing import Any

from ghostpost.services.context import ServiceContext


def verify_post_url(ctx: ServiceContext, url: str, *, auditor: bool = False) -> dict[str, Any]:
    """Return the verify answer for a platform post URL (verdict, summary and proof).

    `auditor` adds the writer's name and the disclosure that opens the leaf's writer commitment;
    the public answer never names a writer. Read-only: one read-only unit of work.
    """
    raise NotImplementedError("built by the tree18 branch in this session")


def log_verifier_key(ctx: ServiceContext) -> str:
    """Return the log's C2SP verifier key (origin+keyid+key), the one answers are checked with."""
    raise NotImplementedError("built by the tree18 branch in this session")
