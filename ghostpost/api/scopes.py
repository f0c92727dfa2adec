"""The API's OAuth scopes, and the API routes that answer without a token (and why).

Every route under /api/ or /compat/ declares its scope with `ghostpost.api.oauth.require_scope`
or is listed in PUBLIC_API_ENDPOINTS; tests/functional/test_api_routes_declare_scopes.py walks
the URL map and fails on any route that does neither.
"""

from __future__ import annotations

from collections.abc import Mapping

from ghostpost.services.clients import SCOPES

__all__ = [
    "AUDIT_READ",
    "POSTS_READ",
    "POSTS_WRITE",
    "PUBLIC_API_ENDPOINTS",
    "SCOPES",
    "WINDOWS_READ",
]

POSTS_WRITE = "posts:write"
POSTS_READ = "posts:read"
WINDOWS_READ = "windows:read"
AUDIT_READ = "audit:read"

#: Flask endpoint -> why it needs no token. Nothing here reads or changes a principal's posts.
PUBLIC_API_ENDPOINTS: Mapping[str, str] = {
    "api_v1_docs.openapi_json": "The OpenAPI document describes the API; it holds no data.",
    "api_v1_docs.docs_page": "The human-readable page of that document.",
    # Mastodon answers it without a token too: clients read it before they authenticate.
    "api_v1.public_verify": "Anyone may check who wrote a post: the answer names no writer "
    "(an auditor's token adds one).",
    "api_v1.public_log_key": "The log's public verifier key.",
    "api_v1.public_checkpoint": "The newest signed tree head: public by design (witnesses).",
    "api_v1.public_consistency": "Consistency proofs hold only hashes of public leaves.",
    "mastodon.instance": "Mastodon clients read the instance first; it shows only the limits.",
    # As on Mastodon, anyone may register an app: it acts for nobody until a staff user signs
    # in through it (ghostpost.web.authorize); rate-limited per address.
    "mastodon_oauth.create_app": "App registration: an app acts for nobody until a user "
    "signs in through it.",
    "mastodon_oauth.authorization_server_metadata": "OAuth server metadata (RFC 8414): "
    "public URLs and supported methods only.",
}
