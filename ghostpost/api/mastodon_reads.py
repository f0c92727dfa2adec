"""The Mastodon client API at the root of the Mastodon face's host (ghostpost.api.mastodon_face
serves this blueprint there): `/api/v1/...` and `/api/v2/...` as a Mastodon app calls them.

The account and the acting person come from the token alone (`acting_identity`): there is no
account id in the URL, as there is none on a Mastodon server. A scheduler's client token must
reach exactly one account; a signed-in Mastodon app's token is bound to one account and its
user. Creating and reading one status reuse ghostpost.api.mastodon's views, so both bases answer
alike; the rest (timelines, scheduled statuses, deletes, the empty lists) lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from ghostpost import deletion
from ghostpost.api import mastodon
from ghostpost.api.mastodon import (
    MAX_ACCOUNT_ID,
    MastodonError,
    account_entity,
    principal_display_name,
    scheduled_entity,
    status_entity,
)
from ghostpost.api.mastodon_oauth import optional_token_actor, require_token
from ghostpost.api.oauth import (
    client_rate_limit,
    current_api_actor,
)
from ghostpost.domain.media_rules import IMAGE_RULES, STORED_FORMATS
from ghostpost.domain.model import Account, Post, User
from ghostpost.domain.states import QUEUED_STATES
from ghostpost.http_surface import container, services
from ghostpost.services import api_queries, posts
from ghostpost.services.api_queries import FeedQuery
from ghostpost.services.context import Actor
from ghostpost.services.errors import NotFound

bp = Blueprint("mastodon_face", __name__)

#: What the face claims to be. Mastodon.py reads the part before "+" (the part after it does not
#: parse as a version), Phanpy and others gate features on it; 4.3 is the API level served here.
FACE_VERSION = "4.3.0+ghostpost"
#: Mastodon 4.3's API version (Phanpy picks grouped notifications from 2 on: served, empty).
API_VERSIONS = {"mastodon": 2}
DEFAULT_PAGE = 20
MAX_PAGE = api_queries.MAX_FEED_PAGE
NOT_FOUND = "Record not found"


# --- who is asking ------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceIdentity:
    """Who acts through a Mastodon-face token, and on which account."""

    account: Account
    actor: Actor
    #: The signed-in staff member of a Mastodon app's token; None for a scheduler's client
    #: token (its posts are written by its default author or X-Ghostpost-Author).
    user: User | None


def acting_identity() -> FaceIdentity:
    """Resolve the account and the acting user from the token (inside a `require_token` view).

    The one place the face asks: a token's actor must cover exactly one account. A scheduler's
    client token covers its client's accounts; a Mastodon app's token (signed in through
    /oauth/authorize) carries `Actor(user=..., account_ids={its account})`, so it plugs in here
    unchanged.
    """
    actor = current_api_actor()
    accounts = api_queries.client_accounts(services(), actor)
    if len(accounts) != 1:
        raise MastodonError(
            403,
            f"This token reaches {len(accounts)} accounts; a Mastodon app posts to one. Sign "
            "the app in (it asks which account), or use a client with one account, or the "
            "/compat/mastodon/<account id> base URL.",
        )
    return FaceIdentity(accounts[0], actor, actor.user)


# --- parsing ------------------------------------------------------------------------------


def _status_id(raw: str) -> int:
    """A status id in a URL: our ids are positive integers; anything else names nothing."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or int(raw) > MAX_ACCOUNT_ID:
        raise MastodonError(404, NOT_FOUND)
    return int(raw)


def _paging_id(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 30):
        raise MastodonError(422, f"Validation failed: {name} must be a status id")
    # Beyond any stored id: as far as the column goes (PostgreSQL refuses a wider number).
    return min(int(raw), MAX_ACCOUNT_ID)


def _feed_query(account_id: int) -> FeedQuery:
    raw_limit = request.args.get("limit", "").strip()
    if raw_limit and not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6):
        raise MastodonError(422, "Validation failed: limit must be a whole number")
    # Mastodon clamps the limit rather than refusing it.
    limit = min(max(int(raw_limit), 1), MAX_PAGE) if raw_limit else DEFAULT_PAGE
    return FeedQuery(
        account_id,
        max_id=_paging_id("max_id"),
        since_id=_paging_id("since_id"),
        min_id=_paging_id("min_id"),
        limit=limit,
    )


def _scheduled_at(raw: Any) -> datetime:
    """A reschedule's `scheduled_at`: required, else as a create's (mastodon.scheduled_at)."""
    parsed = mastodon.scheduled_at(raw)
    if parsed is None:
        raise MastodonError(422, "Validation failed: scheduled_at is required")
    return parsed


def _form() -> dict[str, Any]:
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise MastodonError(422, "Validation failed: the body must be a JSON object")
        return body
    return request.form.to_dict()


# --- rendering ----------------------------------------------------------------------------


def _public_base() -> str:
    """This host as the client reached it (behind a TLS proxy: https, as public_url says)."""
    https = container().settings.public_url.startswith("https://")
    return f"{'https' if https else request.scheme}://{request.host}"


def _paged(items: list[Post], entities: list[dict[str, Any]]) -> Response:
    """The page as JSON with Mastodon's `Link` header (next: older, prev: newer)."""
    response = jsonify(entities)
    if items:
        kept = {k: v for k, v in request.args.items() if k not in ("max_id", "since_id", "min_id")}
        here = _public_base() + request.path
        older = urlencode({**kept, "max_id": items[-1].id})
        newer = urlencode({**kept, "min_id": items[0].id})
        response.headers["Link"] = f'<{here}?{older}>; rel="next", <{here}?{newer}>; rel="prev"'
    return response


def _statuses(items: list[Post], account: Account) -> Response:
    name = principal_display_name(account)
    return _paged(items, [status_entity(p, account, name) for p in items])


def _own_post(identity: FaceIdentity, status_id: str) -> Post:
    """The account's post with this id; any other post does not exist for this token."""
    try:
        post = api_queries.get_post_by_id(services(), identity.actor, _status_id(status_id))
    except NotFound:
        raise MastodonError(404, NOT_FOUND) from None
    if post.account_id != identity.account.id:
        raise MastodonError(404, NOT_FOUND)
    return post


def _own_scheduled(identity: FaceIdentity, status_id: str) -> Post:
    post = _own_post(identity, status_id)
    if post.state not in QUEUED_STATES or post.publish_at is None:
        raise MastodonError(404, NOT_FOUND)
    return post


# --- instance -----------------------------------------------------------------------------


def _instance_facts() -> tuple[str, api_queries.PostingLimits]:
    """This host's name and the posting limits: of the token's account(s) when a token comes
    along, else the strictest of all accounts (a composer believing them never writes too
    much)."""
    actor = optional_token_actor()
    return request.host, api_queries.posting_limits(services(), actor)


def _statuses_configuration(limits: api_queries.PostingLimits) -> dict[str, Any]:
    return {
        "max_characters": limits.max_characters,
        "max_media_attachments": min(r.max_images for r in IMAGE_RULES.values()),
        "characters_reserved_per_url": limits.characters_reserved_per_url,
    }


#: Mastodon's poll limits: clients read all four unguarded (Elk, Ice Cubes).
POLLS = {
    "max_options": 4,
    "max_characters_per_option": 50,
    "min_expiration": 300,
    "max_expiration": 2629746,
}
#: Images only, within every platform's limits (the strictest: a composer believing them never
#: uploads what one of the principal's platforms refuses); no video.
MEDIA = {
    "supported_mime_types": sorted(STORED_FORMATS),
    "image_size_limit": min(r.max_bytes for r in IMAGE_RULES.values()),
    "image_matrix_limit": min(r.max_pixels for r in IMAGE_RULES.values() if r.max_pixels),
    "description_limit": min(r.max_alt_text for r in IMAGE_RULES.values()),
    "video_size_limit": 0,
    "video_frame_rate_limit": 0,
    "video_matrix_limit": 0,
}
DESCRIPTION = "Delegated posting with disclosure: every post goes out under ghostpost's policy."


@bp.get("/api/v1/instance")
@client_rate_limit
def instance_v1() -> Any:
    """Describe this host as a Mastodon 4.3 instance (v1 entity: toot, Mastodon.py)."""
    host, limits = _instance_facts()
    return jsonify(
        uri=host,
        title="ghostpost",
        short_description=DESCRIPTION,
        description=DESCRIPTION,
        email="",
        version=FACE_VERSION,
        api_versions=API_VERSIONS,
        urls={},
        stats={"user_count": 0, "status_count": 0, "domain_count": 0},
        thumbnail=None,
        languages=["en"],
        registrations=False,
        approval_required=False,
        invites_enabled=False,
        configuration={
            "accounts": {"max_featured_tags": 0},
            "statuses": _statuses_configuration(limits),
            "media_attachments": MEDIA,
            "polls": POLLS,
        },
        contact_account=None,
        rules=[],
    )


@bp.get("/api/v2/instance")
@client_rate_limit
def instance_v2() -> Any:
    """Describe this host as a Mastodon 4.3 instance (v2 entity: Elk, Phanpy, Tusky, Ice
    Cubes, with the fields they need)."""
    host, limits = _instance_facts()
    return jsonify(
        domain=host,
        title="ghostpost",
        version=FACE_VERSION,
        source_url="",
        description=DESCRIPTION,
        usage={"users": {"active_month": 0}},
        thumbnail={"url": ""},
        icon=[],
        languages=["en"],
        api_versions=API_VERSIONS,
        configuration={
            "urls": {},
            "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
            "statuses": _statuses_configuration(limits),
            "media_attachments": MEDIA,
            "polls": POLLS,
            "translation": {"enabled": False},
        },
        registrations={"enabled": False, "approval_required": False, "message": None},
        contact={"email": "", "account": None},
        rules=[],
    )


# --- the account and its statuses ---------------------------------------------------------


@bp.get("/api/v1/accounts/verify_credentials")
@require_token("posts:read", mastodon_scope="read:accounts")
def verify_credentials() -> Any:
    """The account this token posts to."""
    identity = acting_identity()
    entity = account_entity(identity.account, principal_display_name(identity.account))
    entity["source"] = {
        "privacy": "public",
        "sensitive": False,
        "language": None,
        "note": "",
        "fields": [],
    }
    return jsonify(entity)


@bp.get("/api/v1/accounts/lookup")
@require_token("posts:read", mastodon_scope="read:accounts")
def lookup_account() -> Any:
    """Find an account by its name (`acct`: `name`, `@name` or `name@this-host`), as `toot
    timelines account NAME` does before reading its statuses. Only the token's own account is
    known here; any other name is not found."""
    identity = acting_identity()
    name, _, domain = request.args.get("acct", "").strip().removeprefix("@").partition("@")
    if name.lower() != identity.account.handle.lower() or domain.lower() not in (
        "",
        request.host.lower(),
    ):
        raise MastodonError(404, NOT_FOUND)
    return jsonify(account_entity(identity.account, principal_display_name(identity.account)))


@bp.get("/api/v1/accounts/<account_id>/statuses")
@require_token("posts:read")
def account_statuses(account_id: str) -> Any:
    """The token's account's statuses as published through ghostpost; other accounts are
    not known here."""
    identity = acting_identity()
    if account_id != str(identity.account.id):
        raise MastodonError(404, NOT_FOUND)
    items = api_queries.published_feed(services(), identity.actor, _feed_query(identity.account.id))
    return _statuses(items, identity.account)


@bp.get("/api/v1/timelines/home")
@require_token("posts:read")
def home_timeline() -> Any:
    """The same list as the account's statuses: ghostpost follows nobody."""
    identity = acting_identity()
    items = api_queries.published_feed(services(), identity.actor, _feed_query(identity.account.id))
    return _statuses(items, identity.account)


@bp.post("/api/v1/statuses")
@require_token("posts:write")
def post_status() -> Any:
    """Create a status on the token's account (ghostpost.api.mastodon's create)."""
    return mastodon.post_status(account_id=acting_identity().account.id)


@bp.get("/api/v1/statuses/<status_id>")
@require_token("posts:read")
def get_status(status_id: str) -> Any:
    """One status of the token's account (ghostpost.api.mastodon's read)."""
    return mastodon.get_status(account_id=acting_identity().account.id, status_id=status_id)


@bp.delete("/api/v1/statuses/<status_id>")
@require_token("posts:write")
def delete_status(status_id: str) -> Any:
    """Cancel a status that has not gone out yet; delete a published one from the platform,
    for the account's principal only, through their own signed-in app (anyone else: 403, and
    nothing changes). Answers the status with its source `text`, as Mastodon does; a replay
    answers it again. 503 when the platform did not answer: ghostpost finishes the deletion."""
    identity = acting_identity()
    # The service finds only posts of the token's account (any other is not found).
    outcome = deletion.delete_or_cancel(container(), identity.actor, _status_id(status_id))
    if outcome.refused is not None:
        raise MastodonError(502, f"The platform refused to delete the status: {outcome.refused}")
    if outcome.pending:
        raise MastodonError(
            503, "The platform did not answer; ghostpost will finish deleting the status."
        )
    return jsonify(
        status_entity(outcome.post, identity.account, principal_display_name(identity.account))
    )


@bp.get("/api/v1/statuses/<status_id>/context")
@require_token("posts:read")
def status_context(status_id: str) -> Any:
    """No threads are kept: an existing status has no ancestors and no descendants here."""
    _own_post(acting_identity(), status_id)
    return jsonify(ancestors=[], descendants=[])


# --- scheduled statuses -------------------------------------------------------------------


@bp.get("/api/v1/scheduled_statuses")
@require_token("posts:read")
def scheduled_statuses() -> Any:
    """The account's posts that have not gone out yet, newest first, paged."""
    identity = acting_identity()
    query = _feed_query(identity.account.id)
    items = api_queries.queued_feed(services(), identity.actor, query)
    return _paged(items, [scheduled_entity(p) for p in items])


@bp.get("/api/v1/scheduled_statuses/<status_id>")
@require_token("posts:read")
def scheduled_status(status_id: str) -> Any:
    """One post of the account that has not gone out yet."""
    return jsonify(scheduled_entity(_own_scheduled(acting_identity(), status_id)))


@bp.put("/api/v1/scheduled_statuses/<status_id>")
@require_token("posts:write")
def reschedule_status(status_id: str) -> Any:
    """Move a scheduled post (`scheduled_at`, at least 5 minutes ahead); the window rules are
    decided again, as for any reschedule."""
    identity = acting_identity()
    publish_at = _scheduled_at(_form().get("scheduled_at"))
    post = posts.reschedule_post(services(), identity.actor, _status_id(status_id), publish_at)
    return jsonify(scheduled_entity(post))


@bp.delete("/api/v1/scheduled_statuses/<status_id>")
@require_token("posts:write")
def cancel_scheduled_status(status_id: str) -> Any:
    """Cancel a scheduled post; `{}` as on Mastodon."""
    identity = acting_identity()
    posts.cancel_post(services(), identity.actor, _status_id(status_id))
    return jsonify({})


# --- media ------------------------------------------------------------------------------------


@bp.post("/api/v1/media")
@require_token("posts:write", mastodon_scope="write:media")
def upload_media_v1() -> Any:
    """Upload an image (as ghostpost.api.mastodon's view, on the token's account)."""
    return mastodon.upload_media_v1(account_id=acting_identity().account.id)


@bp.post("/api/v2/media")
@require_token("posts:write", mastodon_scope="write:media")
def upload_media_v2() -> Any:
    """Upload an image (processed at once: 200 with its url)."""
    return mastodon.upload_media_v2(account_id=acting_identity().account.id)


@bp.get("/api/v1/media/<media_id>")
@require_token("posts:write", mastodon_scope="write:media")
def get_media(media_id: str) -> Any:
    """One of the token's uploads."""
    return mastodon.get_media(account_id=acting_identity().account.id, media_id=media_id)


@bp.put("/api/v1/media/<media_id>")
@require_token("posts:write", mastodon_scope="write:media")
def update_media(media_id: str) -> Any:
    """Set an upload's description (alt text) before it is attached."""
    return mastodon.update_media(account_id=acting_identity().account.id, media_id=media_id)


# --- what ghostpost has nothing of ---------------------------------------------------------


#: Reads a client makes at startup where ghostpost has nothing: Mastodon's "empty" bodies.
EMPTY_READS: dict[str, Any] = {
    "/api/v1/notifications": [],
    "/api/v2/notifications": {"accounts": [], "statuses": [], "notification_groups": []},
    "/api/v1/markers": {},
    "/api/v1/lists": [],
    "/api/v1/followed_tags": [],
    "/api/v1/announcements": [],
    "/api/v1/filters": [],
    "/api/v2/filters": [],
    "/api/v1/preferences": {
        "posting:default:visibility": "public",
        "posting:default:sensitive": False,
        "posting:default:language": None,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    },
}


def _empty_read(body: Any) -> Callable[[], Any]:
    def view() -> Any:
        acting_identity()
        return jsonify(body)

    view.__doc__ = "Nothing of this kind exists in ghostpost: Mastodon's empty answer."
    return view


for _path, _body in EMPTY_READS.items():
    bp.add_url_rule(
        _path,
        endpoint="empty_" + _path.strip("/").replace("/", "_"),
        view_func=require_token("posts:read")(_empty_read(_body)),
        methods=["GET"],
    )


@bp.get("/api/v1/custom_emojis")
@client_rate_limit
def custom_emojis() -> Any:
    """Public on Mastodon too; ghostpost has none (a token, if any, must still be valid)."""
    optional_token_actor()
    return jsonify([])


#: The face's routes any caller may use without a token (as on Mastodon).
PUBLIC_ENDPOINTS = frozenset(
    {"mastodon_face.instance_v1", "mastodon_face.instance_v2", "mastodon_face.custom_emojis"}
)
