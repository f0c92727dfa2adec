"""HTTP glue of idempotent creates: the Idempotency-Key header and the replayed response.

The rules live in ghostpost.services.idempotency; this module reads the header, documents it
and builds responses, so the original answer and its replays carry the same bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Response, current_app, g, request

from ghostpost.api.errors import ApiProblem
from ghostpost.services.idempotency import KEY_RETENTION, MAX_KEY_LENGTH, is_valid_key

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_HOURS = int(KEY_RETENTION.total_seconds() // 3600)

#: The OpenAPI description of the header.
HEADER_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": HEADER,
    "required": True,
    "description": (
        f"A key you choose for this create, 1-{MAX_KEY_LENGTH} printable ASCII characters "
        "(no space at either end), e.g. a UUID. Sending the same key with the same body again "
        f"(within at least {_HOURS} hours) replays the first response with "
        f"`{REPLAYED_HEADER}: true` and creates nothing; the same key with another body is "
        "422; while the first request is still running, 409 with Retry-After. Keys are "
        "per client: two clients never share one."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": f"^[!-~]([ -~]{{0,{MAX_KEY_LENGTH - 2}}}[!-~])?$",
    },
    "example": "5b0d5bb4-3f43-4c1e-9d0e-1f6d0a1c2b3a",
}


def idempotency_key() -> str:
    """Return the request's key, or answer 400 when it is missing or malformed."""
    key = request.headers.get(HEADER)
    if key is None or key == "":
        raise ApiProblem(
            400,
            "idempotency_key_missing",
            f"Every create needs an {HEADER} header (e.g. a fresh UUID); resend the same key "
            "to retry safely.",
        )
    if not is_valid_key(key):
        raise ApiProblem(
            400,
            "idempotency_key_invalid",
            f"The {HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters.",
            errors={HEADER: ["1-255 printable ASCII characters"]},
        )
    return key


def requires_idempotency_key(view: F) -> F:
    """Check the header before the body is read, and keep the key in `g.idempotency_key`."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        g.idempotency_key = idempotency_key()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def json_response(
    status: int,
    body: Mapping[str, Any],
    *,
    replayed: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Return a JSON response; a replay says so in its headers."""
    response = current_app.json.response(dict(body))
    response.status_code = status
    response.headers.update(dict(headers or {}))
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
