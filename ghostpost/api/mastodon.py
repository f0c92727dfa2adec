"""A Mastodon-compatible subset, so existing Mastodon clients and schedulers post through ghostpost.

Base URL: /compat/mastodon/<account id>; point a Mastodon client's `api_base_url` there. The
bearer token is a ghostpost API client token; posts are written by the client's default author,
or by the staff member named in an `X-Ghostpost-Author` header (one of the client's authors).
The disclosure policy applies exactly as for the native API. Errors use Mastodon's
`{"error": "..."}` shape.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ghostpost.api.mastodon_oauth import require_token
from ghostpost.api.oauth import client_rate_limit, current_api_actor, current_client
from ghostpost.domain.errors import DomainError
from ghostpost.domain.media_rules import IMAGE_RULES, MAX_UPLOAD_BYTES, MediaUpload, PostImage
from ghostpost.domain.model import Account, Post, Source
from ghostpost.domain.post_options import (
    VISIBILITIES,
    PostOptions,
    language_problem,
    normalize_language,
)
from ghostpost.http_surface import container, services
from ghostpost.services import api_queries, media
from ghostpost.services.api_queries import PostDetails
from ghostpost.services.errors import (
    Conflict,
    NotFound,
    PolicyRefused,
    ValidationFailed,
    text_problem,
)
from ghostpost.services.idempotency import (
    IdempotencyMismatch,
    RequestInFlight,
    request_fingerprint,
    submit_client_post_once,
)
from ghostpost.services.posts import ClientPost, face_reply_ref

bp = Blueprint("mastodon", __name__, url_prefix="/compat/mastodon/<int:account_id>")

#: What we claim to be: the Mastodon API level this subset follows.
COMPAT_VERSION = "4.3.0 (compatible; ghostpost 0.1.0)"
#: Mastodon refuses scheduled_at less than 5 minutes ahead; so do we.
MIN_SCHEDULE_AHEAD = timedelta(minutes=5)
#: More media ids than this are refused before any is read (Mastodon takes 4).
MAX_MEDIA_IDS = 10


class MastodonError(Exception):
    """An error answered in Mastodon's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(MastodonError)
def _mastodon_error(exc: MastodonError) -> Response:
    response = jsonify(error=exc.message)
    response.status_code = exc.status
    return response


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    status = {
        "not_found": 404,
        "forbidden": 403,
        "conflict": 409,
        "validation_failed": 422,
        "policy_refused": 422,
    }.get(exc.code, 400)
    response = jsonify(error=exc.message, ghostpost_code=exc.code)
    response.status_code = status
    return response


#: Ids beyond a 32-bit INTEGER column can name nothing (PostgreSQL would refuse the query).
MAX_ACCOUNT_ID = 2**31 - 1


def _account(account_id: int) -> Account:
    # The token's actor: a scheduler's client, or a signed-in user limited to one account.
    if not current_api_actor().may_use_account(account_id) or account_id > MAX_ACCOUNT_ID:
        raise MastodonError(404, "Record not found")
    with services().uow(read_only=True) as uow:
        account = uow.accounts.get(account_id)
    if account is None:
        raise MastodonError(404, "Record not found")
    return account


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def account_entity(
    account: Account, principal_name: str, *, base: str | None = None
) -> dict[str, Any]:
    """Return a Mastodon Account entity for a ghostpost account (`base`: the public URL,
    read from the settings when not given)."""
    if base is None:
        base = container().settings.public_url.rstrip("/")
    return {
        "id": str(account.id),
        "username": account.handle,
        "acct": account.handle,
        "display_name": principal_name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": "1970-01-01T00:00:00.000Z",
        "note": "",
        "url": f"{base}/@{account.handle}",
        "uri": f"{base}/@{account.handle}",
        "avatar": "",
        "avatar_static": "",
        "header": "",
        "header_static": "",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": 0,
        "last_status_at": None,
        "emojis": [],
        "fields": [],
    }


def principal_display_name(account: Account) -> str:
    """The name a Mastodon Account entity shows for `account`: its principal's (else the handle)."""
    with services().uow(read_only=True) as uow:
        principal = uow.principals.get(account.principal_id)
    return principal.name if principal else account.handle


def media_entity(
    media_id: str,
    mime_type: str,
    width: int,
    height: int,
    description: str,
    account_id: int,
    base: str | None = None,
) -> dict[str, Any]:
    """Return a Mastodon MediaAttachment entity (images only; no blurhash computed)."""
    root = base if base is not None else container().settings.public_url.rstrip("/")
    # Served by ghostpost's own host (web.public.media_file), without a token, by the
    # unguessable id: as Mastodon serves its media files.
    url = f"{root}/media/{media_id}"
    return {
        "id": media_id,
        "type": "image",
        "url": url,
        "preview_url": url,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {
            "original": {
                "width": width,
                "height": height,
                "size": f"{width}x{height}",
                "aspect": width / height if height else None,
            }
        },
        "description": description or None,
        "blurhash": None,
    }


def upload_entity(upload: MediaUpload, account_id: int) -> dict[str, Any]:
    return media_entity(
        upload.public_id,
        upload.mime_type,
        upload.width,
        upload.height,
        upload.alt_text,
        account_id,
    )


def status_entity(
    post: Post,
    account: Account,
    principal_name: str,
    *,
    base: str | None = None,
    images: tuple[PostImage, ...] = (),
) -> dict[str, Any]:
    """Return a Mastodon Status entity for a ghostpost post, with ghostpost's own facts added."""
    text = post.final_text
    paragraphs = "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br />')}</p>" for part in text.split("\n\n")
    )
    return {
        "id": str(post.id),
        "uri": post.platform_url or f"urn:ghostpost:post:{post.public_id}",
        "url": post.platform_url,
        "created_at": _iso(post.created_at),
        "account": account_entity(account, principal_name, base=base),
        "content": paragraphs,
        "text": text,
        "visibility": post.options.visibility,
        "sensitive": post.options.sensitive or bool(post.final_content_warning),
        "spoiler_text": post.final_content_warning,
        "media_attachments": [
            media_entity(
                image.media_id,
                image.mime_type,
                image.width,
                image.height,
                image.alt_text,
                account.id,
                base,
            )
            for image in images
        ],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "reblogs_count": 0,
        "favourites_count": 0,
        "replies_count": 0,
        "in_reply_to_id": None if post.reply_to_post_id is None else str(post.reply_to_post_id),
        "in_reply_to_account_id": None if post.reply_to_post_id is None else str(account.id),
        "reblog": None,
        "poll": None,
        "card": None,
        "language": post.options.language,
        "edited_at": None,
        "application": {"name": "ghostpost", "website": None},
        "ghostpost": {
            "id": post.public_id,
            "state": post.state.value,
            "state_reason": post.state_reason,
            "decisions": post.decisions.get("submission"),
        },
    }


def scheduled_entity(post: Post) -> dict[str, Any]:
    """Return a Mastodon ScheduledStatus entity for a post scheduled for later."""
    return {
        "id": str(post.id),
        "scheduled_at": _iso(post.publish_at),
        "params": {
            "text": post.final_text,
            "visibility": post.options.visibility,
            "in_reply_to_id": None if post.reply_to_post_id is None else str(post.reply_to_post_id),
            "scheduled_at": _iso(post.publish_at),
            "media_ids": None,
            "sensitive": post.options.sensitive,
            "spoiler_text": post.options.content_warning or None,
            "language": post.options.language,
            "poll": None,
            "idempotency": None,
            "application_id": None,
        },
        "media_attachments": [],
    }


@bp.get("/api/v1/instance")
def instance(account_id: int) -> Any:
    """Describe this endpoint as a Mastodon instance, with the account's real limits."""
    if account_id > MAX_ACCOUNT_ID:
        raise MastodonError(404, "Record not found")
    with services().uow(read_only=True) as uow:
        account = uow.accounts.get(account_id)
    if account is None:
        raise MastodonError(404, "Record not found")
    measured = container().services.budget_for(account).measure("")
    base = container().settings.public_url.rstrip("/")
    rules = IMAGE_RULES.get(account.platform)
    return jsonify(
        uri=base,
        title="ghostpost",
        short_description="Delegated posting with disclosure",
        description="A Mastodon-compatible entry point to ghostpost.",
        email="",
        version=COMPAT_VERSION,
        urls={},
        stats={"user_count": 0, "status_count": 0, "domain_count": 0},
        languages=["en"],
        registrations=False,
        approval_required=False,
        invites_enabled=False,
        configuration={
            "statuses": {
                "max_characters": measured.primary.limit,
                "max_media_attachments": rules.max_images if rules else 0,
                "characters_reserved_per_url": account.url_length or 23,
            },
            "media_attachments": {
                "supported_mime_types": sorted(rules.formats) if rules else [],
                "image_size_limit": rules.max_bytes if rules else 0,
                "image_matrix_limit": rules.max_pixels or 0 if rules else 0,
                "description_limit": rules.max_alt_text if rules else 0,
            },
        },
        contact_account=None,
        rules=[],
    )


@bp.get("/api/v1/accounts/verify_credentials")
@require_token("posts:read", mastodon_scope="read:accounts")
@client_rate_limit
def verify_credentials(account_id: int) -> Any:
    """Return the account this base URL posts to."""
    account = _account(account_id)
    entity = account_entity(account, principal_display_name(account))
    entity["source"] = {"privacy": "public", "sensitive": False, "language": None, "note": ""}
    return jsonify(entity)


def scheduled_at(raw: Any) -> datetime | None:
    """Parse Mastodon's `scheduled_at` (RFC 3339, at least 5 minutes ahead); None if absent."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise MastodonError(422, "Validation failed: scheduled_at must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MastodonError(422, "Validation failed: scheduled_at is not a valid time") from None
    if parsed.tzinfo is None:
        raise MastodonError(422, "Validation failed: scheduled_at needs a time zone")
    if parsed < services().clock.now() + MIN_SCHEDULE_AHEAD:
        raise MastodonError(422, "Validation failed: scheduled_at must be at least 5 minutes ahead")
    return parsed


#: Longest in_reply_to_id read (the same cap as /api/v1's in_reply_to), to name it in a refusal.
MAX_IN_REPLY_TO_LENGTH = 200
_IN_REPLY_TO_REFUSED = (
    "Validation failed: in_reply_to_id must be a status id: a string (or a whole number) of "
    f"1 to {MAX_IN_REPLY_TO_LENGTH} characters"
)


def _in_reply_to_id(raw: Any) -> str | None:
    """Read in_reply_to_id as Mastodon sends it (a string id; some clients send a number)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 10**MAX_IN_REPLY_TO_LENGTH:
        return str(raw)
    # Floats (1.5, NaN), booleans, lists and objects are no id.
    if not isinstance(raw, str) or len(raw) > MAX_IN_REPLY_TO_LENGTH or not raw.strip():
        raise MastodonError(422, _IN_REPLY_TO_REFUSED)
    if problem := text_problem(raw):
        raise MastodonError(422, f"Validation failed: in_reply_to_id {problem}")
    return raw.strip()


#: Every parameter of Mastodon's POST /api/v1/statuses (4.5: app/controllers/api/v1/
#: statuses_controller.rb, status_params; docs: methods/statuses), and what ghostpost does
#: with it. Honoured ones reach the platform; the others are refused by name when given.
HONOURED_PARAMETERS = (
    "status",
    "spoiler_text",
    "visibility",
    "language",
    "sensitive",
    "media_ids",
    # A status id this face showed (a ghostpost post of the same account): a real reply.
    "in_reply_to_id",
)
SCHEDULING_PARAMETERS = ("scheduled_at",)
REFUSED_PARAMETERS = {
    "media_attributes": "ghostpost does not edit media attributes here (PUT /api/v1/media/:id)",
    "poll": "ghostpost does not publish polls",
    "quoted_status_id": "ghostpost does not publish quotes",
    "quote_approval_policy": "ghostpost does not set quote policies",
    "allowed_mentions": "ghostpost does not check mentions against a reply",
}
_KNOWN = frozenset(HONOURED_PARAMETERS + SCHEDULING_PARAMETERS) | frozenset(REFUSED_PARAMETERS)
#: Rails' boolean casting (ActiveModel::Type::Boolean), as clients rely on: Mastodon.py sends
#: '1'/'0', forms send 'true'/'false'.
_TRUE = frozenset({"1", "true", "t", "on", "yes"})
_FALSE = frozenset({"0", "false", "f", "off", "no"})


def _parameter_name(key: str) -> str:
    """`media_ids[]` -> `media_ids`, `poll[options][]` -> `poll` (form bodies' brackets)."""
    return key.split("[", 1)[0]


def _given(value: Any) -> bool:
    """Tell whether a parameter carries something (Mastodon treats blank as absent)."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(_given(item) for item in value)
    if isinstance(value, dict):
        return any(_given(item) for item in value.values())
    return True


def _parameters() -> dict[str, list[Any]]:
    """The body's parameters by Mastodon name, each with every value given under it."""
    found: dict[str, list[Any]] = {}
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise MastodonError(422, "Validation failed: the body must be a JSON object")
        for key, value in body.items():
            found.setdefault(_parameter_name(str(key)), []).append(value)
        return found
    for key, values in request.form.lists():
        found.setdefault(_parameter_name(key), []).extend(values)
    return found


def _one(parameters: dict[str, list[Any]], name: str) -> Any:
    values = parameters.get(name) or [None]
    if len(values) > 1:
        raise MastodonError(422, f"Validation failed: {name} is given more than once")
    return values[0]


def _refuse_unhonoured(parameters: dict[str, list[Any]]) -> None:
    """Refuse, by name, every parameter given that ghostpost would not carry to the platform."""
    _in_reply_to_id(_one(parameters, "in_reply_to_id"))  # a malformed id is named as such
    for name, values in parameters.items():
        if not any(_given(value) for value in values):
            continue
        if name in REFUSED_PARAMETERS:
            raise MastodonError(422, f"Validation failed: {name}: {REFUSED_PARAMETERS[name]}")
        if name not in _KNOWN:
            raise MastodonError(
                422, f"Validation failed: {name} is not a parameter ghostpost takes"
            )


def _text_parameter(parameters: dict[str, list[Any]], name: str) -> str:
    raw = _one(parameters, name)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise MastodonError(422, f"Validation failed: {name} must be a string")
    return raw


def _sensitive(raw: Any) -> bool:
    if raw is None or raw == "" or isinstance(raw, bool):
        return bool(raw)
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise MastodonError(422, "Validation failed: sensitive must be true or false")


def _post_options(parameters: dict[str, list[Any]]) -> PostOptions:
    """The status's content warning, visibility, language and sensitive flag, as given (the
    service refuses what the account's platform cannot honour)."""
    visibility = _text_parameter(parameters, "visibility").strip() or "public"
    if visibility not in VISIBILITIES:
        raise MastodonError(
            422, f"Validation failed: visibility must be one of {', '.join(VISIBILITIES)}"
        )
    language = _text_parameter(parameters, "language").strip() or None
    if language is not None:
        normalized = normalize_language(language)
        if normalized is None:
            raise MastodonError(422, f"Validation failed: language {language_problem(language)}")
        language = normalized
    return PostOptions(
        # Mastodon strips the warning as it strips the text (Status#prepare_contents).
        content_warning=_text_parameter(parameters, "spoiler_text").strip(),
        visibility=visibility,
        language=language,
        sensitive=_sensitive(_one(parameters, "sensitive")),
    )


def _create_fingerprint(
    account_id: int,
    author_email: str | None,
    text: str,
    scheduled_at: datetime | None,
    options: PostOptions,
    media_ids: tuple[str, ...] = (),
    in_reply_to_id: str | None = None,
) -> str:
    """The post as the service will understand it, hashed as /api/v1 hashes its requests: the
    author as named (lower-cased), or the client's default author (its id: naming another
    default later is another request)."""
    author: str | int | None = author_email.strip().lower() if author_email else None
    if author is None:
        signed_in = current_api_actor().user  # a token a staff user granted an app
        author = signed_in.id if signed_in else current_client().default_author_id
    request_facts: dict[str, Any] = {
        "account": account_id,
        "author": author,
        "text": text,
        "publish_at": scheduled_at.isoformat() if scheduled_at else None,
        "extra": {},
    }
    if not options.is_plain:
        request_facts["options"] = options.to_record()
    if media_ids:
        # Only with images: a replay with other images is another request.
        request_facts["media_ids"] = list(media_ids)
    if in_reply_to_id is not None:
        request_facts["in_reply_to_id"] = in_reply_to_id
    return request_fingerprint(request_facts)


def _media_ids(parameters: dict[str, list[Any]]) -> tuple[str, ...]:
    """`media_ids[]` as a form repeats it, or a JSON list: strings (Mastodon's ids are)."""
    found: list[str] = []
    for value in parameters.get("media_ids", []):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise MastodonError(422, "Validation failed: media_ids must be ids")
            if str(item).strip():
                found.append(str(item).strip())
    if len(found) > MAX_MEDIA_IDS:
        raise MastodonError(422, "Validation failed: too many media_ids")
    return tuple(found)


@bp.post("/api/v1/statuses")
@require_token("posts:write")
@client_rate_limit
def post_status(account_id: int) -> Any:
    """Create a status: it goes through ghostpost's policy, queue and ledger like any post, in
    the same one write transaction as /api/v1's create (idempotency.submit_client_post_once).
    With a token a staff user granted a Mastodon app, the writer is that user, on the one
    account they chose (services.posts)."""
    if not current_api_actor().may_use_account(account_id) or account_id > MAX_ACCOUNT_ID:
        raise MastodonError(404, "Record not found")
    parameters = _parameters()
    _refuse_unhonoured(parameters)
    text = _one(parameters, "status")
    media_ids = _media_ids(parameters)
    if text is None and media_ids:
        text = ""  # images alone, as Mastodon takes them
    if not isinstance(text, str) or not (text.strip() or media_ids):
        raise MastodonError(422, "Validation failed: Text can't be blank")
    options = _post_options(parameters)
    publish_at = scheduled_at(_one(parameters, "scheduled_at"))
    author_email = request.headers.get("X-Ghostpost-Author", "").strip() or None
    in_reply_to_id = _in_reply_to_id(_one(parameters, "in_reply_to_id"))
    post_request = ClientPost(
        account_id=account_id,
        author_email=author_email,
        text=text,
        source=Source.MASTODON_COMPAT,
        publish_at=publish_at,
        options=options,
        media_ids=media_ids,
        extra={"in_reply_to_id": in_reply_to_id} if in_reply_to_id else {},
        in_reply_to=face_reply_ref(in_reply_to_id) if in_reply_to_id else None,
    )
    base = container().settings.public_url.rstrip("/")

    def render(details: PostDetails) -> tuple[int, dict[str, Any]]:
        # Plain data in, plain data out: it runs inside the create's write transaction.
        if publish_at:
            return 200, scheduled_entity(details.post)
        name = details.principal_name or details.account.handle
        return 200, status_entity(
            details.post, details.account, name, base=base, images=details.images
        )

    key = request.headers.get("Idempotency-Key", "").strip()
    try:
        status, body, replayed = submit_client_post_once(
            services(),
            current_api_actor(),
            post_request,
            key=f"mastodon:{key}" if key else None,
            fingerprint=_create_fingerprint(
                account_id,
                author_email,
                text,
                publish_at,
                options,
                media_ids=media_ids,
                in_reply_to_id=in_reply_to_id,
            ),
            render=render,
        )
    except NotFound as exc:
        raise MastodonError(404, "Record not found") from exc
    except IdempotencyMismatch as exc:
        raise MastodonError(422, exc.message) from exc
    except RequestInFlight as exc:
        raise MastodonError(409, exc.message) from exc
    except PolicyRefused as exc:
        raise MastodonError(422, f"Validation failed: {exc.message}") from exc
    except ValidationFailed as exc:
        if author_email is None and "author" in (exc.fields or {}):
            raise MastodonError(
                422, "Validation failed: name the writer in X-Ghostpost-Author (no default author)"
            ) from exc
        raise MastodonError(422, f"Validation failed: {exc.message}") from exc
    response = jsonify(body)
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/api/v1/statuses/<status_id>")
@require_token("posts:read")
@client_rate_limit
def get_status(account_id: int, status_id: str) -> Any:
    """Return one status of this account."""
    account = _account(account_id)
    if not (status_id.isascii() and status_id.isdigit() and len(status_id) < 19):
        raise MastodonError(404, "Record not found")
    try:
        details = api_queries.get_post_details_by_id(
            services(), current_api_actor(), int(status_id)
        )
    except NotFound:
        raise MastodonError(404, "Record not found") from None
    post = details.post
    if post.account_id != account.id or post.deletion_requested_at is not None:
        # Deleted (or being deleted) by the principal: gone, as on Mastodon. ghostpost's
        # record of it is in the staff app and the exports, not in a client's timeline.
        raise MastodonError(404, "Record not found")
    return jsonify(
        status_entity(post, account, principal_display_name(account), images=details.images)
    )


# --- media ------------------------------------------------------------------------------------


def _media_upload(account_id: int) -> Any:
    _account(account_id)
    request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024
    file = request.files.get("file")
    if file is None:
        raise MastodonError(422, "Validation failed: File can't be blank")
    description = request.form.get("description", "")
    try:
        upload = media.upload_media(
            services(), current_api_actor(), file.read(MAX_UPLOAD_BYTES + 1), description
        )
    except ValidationFailed as exc:
        raise MastodonError(422, f"Validation failed: {exc.message}") from exc
    return jsonify(upload_entity(upload, account_id))


@bp.post("/api/v1/media")
@require_token("posts:write", mastodon_scope="write:media")
@client_rate_limit
def upload_media_v1(account_id: int) -> Any:
    """Upload an image (Mastodon's deprecated v1 media upload: processed at once)."""
    return _media_upload(account_id)


@bp.post("/api/v2/media")
@require_token("posts:write", mastodon_scope="write:media")
@client_rate_limit
def upload_media_v2(account_id: int) -> Any:
    """Upload an image; ghostpost processes images at once, so the answer is 200 with the url
    (Mastodon answers 202 while it still processes larger files)."""
    return _media_upload(account_id)


def _own_media(account_id: int, media_id: str) -> MediaUpload:
    _account(account_id)
    try:
        return media.get_media(services(), current_api_actor(), media_id)
    except NotFound:
        raise MastodonError(404, "Record not found") from None


@bp.get("/api/v1/media/<media_id>")
@require_token("posts:write", mastodon_scope="write:media")
@client_rate_limit
def get_media(account_id: int, media_id: str) -> Any:
    """One of the token's uploads (Mastodon answers 206 while processing; ours are done)."""
    return jsonify(upload_entity(_own_media(account_id, media_id), account_id))


@bp.put("/api/v1/media/<media_id>")
@require_token("posts:write", mastodon_scope="write:media")
@client_rate_limit
def update_media(account_id: int, media_id: str) -> Any:
    """Set the description (alt text) of an upload not yet attached to a status."""
    _own_media(account_id, media_id)
    parameters = _parameters()
    description = _text_parameter(parameters, "description")
    try:
        upload = media.describe_media(services(), current_api_actor(), media_id, description)
    except NotFound:
        raise MastodonError(404, "Record not found") from None
    except Conflict as exc:
        raise MastodonError(422, f"Validation failed: {exc.message}") from exc
    except ValidationFailed as exc:
        raise MastodonError(422, f"Validation failed: {exc.message}") from exc
    return jsonify(upload_entity(upload, account_id))
