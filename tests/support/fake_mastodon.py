"""A fake Mastodon instance, faithful to the client API and OAuth flow ghostpost uses.

Serve it over real HTTP with `tests.support.http_server.serving(fake.app)`. What it copies from
Mastodon (4.x, Doorkeeper underneath), because ghostpost's correctness depends on it:

- `POST /api/v1/apps`; `/oauth/authorize` (consent page, S256 PKCE only, scopes limited to the
  app's); `/oauth/token` (client_secret_post or Basic, single-use codes, exact PKCE check);
  errors as OAuth JSON (`invalid_client` 401, others 400) and error pages (400).
- Scope checks as the controllers do them: any listed scope suffices (`write` or
  `write:statuses`); 401 `The access token is invalid`; 403 `This action is outside the
  authorized scopes`.
- `POST /api/v1/statuses`: the Idempotency-Key is checked first and remembered for one hour per
  account; the text is stripped (Status#prepare_contents) and validated with Mastodon's length
  rule (URLs 23, `@user@domain` as `@user`, content warning included); resolvable mentions are
  rewritten to the account's `acct` (ProcessMentionsService), so the stored text can differ from
  the text sent.
- `GET /api/v1/accounts/:id/statuses` (newest first, `limit` <= 40, `max_id`/`since_id`, Link
  header), `GET /api/v1/statuses/:id`, `GET /api/v1/statuses/:id/source`, `GET /api/v2/instance`
  and `/api/v1/instance`; `DELETE /api/v1/statuses/:id` (own statuses only; 404 once gone).

- Media (`POST /api/v2/media`, `GET /api/v1/media/:id`): `write:media` scope; the file's
  bytes must decode as an image of an accepted type (Mastodon sniffs the content; the part's
  Content-Type is not trusted), at most 16 MB; `description` at most 1,500 characters; 200
  when processed, or 202 with `url: null` and 206 on polls while `media_processing_polls`
  says it is still processing. A status takes at most 4 `media_ids`, each one of the
  account's own, processed, and not attached to a status yet (422 otherwise, as
  PostStatusService answers); with media the text may be empty.

Not modelled: polls, scheduled statuses, refresh tokens, rate limits (inject a 429 with
`fail_next`), federation (remote mentions are left as written).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import html
import io
import itertools
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, request
from PIL import Image, UnidentifiedImageError

from ghostpost.domain.length import count_mastodon, mastodon_mention_re
from ghostpost.textseg import default_segmenter

__all__ = [
    "FakeApp",
    "FakeMastodon",
    "FakeToken",
    "FakeUser",
    "RecordedRequest",
    "make_fake_mastodon",
]

OOB = "urn:ietf:wg:oauth:2.0:oob"
#: Mastodon's scopes (config/initializers/doorkeeper.rb), top-level and granular.
_READ = "accounts blocks bookmarks favourites filters follows lists mutes notifications search"
_WRITE = "accounts blocks bookmarks conversations favourites filters follows lists media mutes"
KNOWN_SCOPES = frozenset(
    ["read", "write", "follow", "push", "profile", "admin:read", "admin:write"]
    + [f"read:{s}" for s in [*_READ.split(), "statuses"]]
    + [f"write:{s}" for s in [*_WRITE.split(), "notifications", "reports", "statuses"]]
)
#: MediaAttachment: IMAGE_LIMIT, MAX_DESCRIPTION_LENGTH; Status: max 4 attachments.
MEDIA_IMAGE_LIMIT = 16 * 1024 * 1024
MEDIA_DESCRIPTION_LIMIT = 1500
MAX_MEDIA_ATTACHMENTS = 4
#: Pillow format -> the MIME type Mastodon records (the image types it accepts).
_IMAGE_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
IDEMPOTENCY_TTL = timedelta(hours=1)  # PostStatusService: redis setex(..., 3600, ...)
CODE_TTL = timedelta(minutes=10)  # Doorkeeper's authorization_code_expires_in default
VISIBILITIES = ("public", "unlisted", "private", "direct")
_RUBY_STRIP = "\x00\t\n\x0b\x0c\r "
_INVALID_TOKEN = "The access token is invalid"
_OUT_OF_SCOPE = "This action is outside the authorized scopes"
_OAUTH_ERRORS = {
    "invalid_client": "Client authentication failed due to unknown client, no client "
    "authentication included, or unsupported authentication method.",
    "invalid_grant": "The provided authorization grant is invalid, expired, revoked, does not "
    "match the redirection URI used in the authorization request, or was issued to another "
    "client.",
    "unsupported_grant_type": "The authorization grant type is not supported by the "
    "authorization server.",
    "invalid_scope": "The requested scope is invalid, unknown, or malformed.",
    "invalid_redirect_uri": "The requested redirect uri is malformed or doesn't match client "
    "redirect URI.",
    "unsupported_response_type": "The authorization server does not support this response type.",
    "invalid_code_challenge_method": "The code challenge method must be S256.",
    "access_denied": "The resource owner or authorization server denied the request.",
}


@dataclass
class FakeUser:
    """A local account on the fake instance."""

    id: str
    username: str
    created_at: datetime


@dataclass
class FakeApp:
    """An OAuth application registered with POST /api/v1/apps."""

    id: str
    name: str
    website: str | None
    redirect_uris: list[str]
    scopes: list[str]
    client_id: str
    client_secret: str
    vapid_key: str


@dataclass
class FakeToken:
    """An access token: a user's (authorization code) or the app's own (client credentials)."""

    access_token: str
    client_id: str | None
    account_id: str | None
    scopes: list[str]
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Return the body decoded as JSON."""
        return json.loads(self.body)


@dataclass
class _Grant:
    code: str
    client_id: str
    account_id: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str | None
    created_at: datetime
    used: bool = False


@dataclass
class _Fault:
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class _ApiError(Exception):
    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}


class _PageError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description


F = TypeVar("F", bound=Callable[..., Any])


def _rails_true(value: Any) -> bool:
    """ActiveModel's boolean cast: blank is nil, listed false values are false, else true."""
    if value is None or value == "":
        return False
    return str(value).lower() not in {"false", "0", "f", "off"}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _timestamp(at: datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _scope_list(value: Any, default: str) -> list[str]:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    text = str(value or "").strip() or default
    # Doorkeeper splits on spaces (form clients sometimes send `+` already decoded as space).
    return list(dict.fromkeys(text.split()))


class FakeMastodon:
    """The fake instance: `.app` is the WSGI app; the attributes are its state, for assertions."""

    def __init__(
        self,
        *,
        max_characters: int = 500,
        characters_reserved_per_url: int = 23,
        now: Callable[[], datetime] | None = None,
        instance_v2: bool = True,
        local_domain: str | None = None,
    ) -> None:
        self.max_characters = max_characters
        self.characters_reserved_per_url = characters_reserved_per_url
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        #: False makes /api/v2/instance a 404, like servers before Mastodon 4.0.
        self.instance_v2 = instance_v2
        #: The domain of local handles; by default the host the request came to, without port.
        self.local_domain = local_domain
        self.users: dict[str, FakeUser] = {}
        self.apps: list[FakeApp] = []
        self.tokens: dict[str, FakeToken] = {}
        #: Stored statuses, oldest first: id, account_id, text, spoiler_text, visibility,
        #: created_at (aware datetime), application (client_id or None).
        self.statuses: list[dict[str, Any]] = []
        #: Every request seen, as (method, path).
        self.calls: list[tuple[str, str]] = []
        #: Every request seen, in full (headers and raw body), to check what a client sent.
        self.received: list[RecordedRequest] = []
        self.signed_in: str | None = None
        #: Uploaded media by id: id, account_id, mime_type, size, description, width, height,
        #: status_id (None until attached), polls_left (processing until 0).
        self.media: dict[str, dict[str, Any]] = {}
        #: How many polls a new upload stays "processing" (0: processed at once, HTTP 200).
        self.media_processing_polls = 0
        self._grants: dict[str, _Grant] = {}
        self._idempotency: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._ids = itertools.count(1)
        self._last_status_id = 0
        self._segmenter = default_segmenter()
        self._lock = threading.RLock()
        self.app = self._build_app()

    # -- test controls --------------------------------------------------------------------------

    def create_user(self, username: str) -> str:
        """Create a local account; return its id (a string, as Mastodon's API gives ids)."""
        with self._lock:
            if self._user_named(username) is not None:
                raise ValueError(f"username {username!r} is taken")
            user = FakeUser(str(next(self._ids)), username, self.now())
            self.users[user.id] = user
            return user.id

    def approve_as(self, username: str) -> None:
        """Sign `username` in: the consent page authorizes as this user."""
        with self._lock:
            if self._user_named(username) is None:
                raise KeyError(username)
            self.signed_in = username

    def issue_token(self, username: str, scopes: str = "read write") -> str:
        """Mint a user token directly (as if the OAuth flow had run)."""
        with self._lock:
            user = self._user_named(username)
            if user is None:
                raise KeyError(username)
            token = FakeToken(secrets.token_urlsafe(32), None, user.id, scopes.split(), self.now())
            self.tokens[token.access_token] = token
            return token.access_token

    def revoke(self, access_token: str) -> None:
        """Revoke a token, as when the user removes the app from their authorized apps."""
        with self._lock:
            self.tokens[access_token].revoked = True

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to `method path` with `status` instead."""
        with self._lock:
            self._faults[(method.upper(), path)] = _Fault(status, body, headers or {}, times)

    def statuses_of(self, username: str) -> list[dict[str, Any]]:
        """Return the stored statuses of one user, oldest first."""
        user = self._user_named(username)
        assert user is not None, username
        return [s for s in self.statuses if s["account_id"] == user.id]

    def media_of(self, status: dict[str, Any]) -> list[dict[str, Any]]:
        """The media attached to a stored status, in the order given."""
        return [self.media[media_id] for media_id in status.get("media_ids", [])]

    # -- helpers --------------------------------------------------------------------------------

    def _media_json(self, item: dict[str, Any]) -> dict[str, Any]:
        base = self._base()
        processed = item["polls_left"] <= 0
        url = f"{base}/system/media_attachments/files/{item['id']}/original.png"
        return {
            "id": item["id"],
            "type": "image",
            "url": url if processed else None,
            "preview_url": f"{base}/system/media_attachments/files/{item['id']}/small.png",
            "remote_url": None,
            "meta": {"original": {"width": item["width"], "height": item["height"]}},
            "description": item["description"],
            "blurhash": None,
        }

    def _attachable_media(self, raw: Any, account_id: str) -> list[dict[str, Any]]:
        """PostStatusService#validate_media!: the ids as given, checked, in order."""
        ids = raw if isinstance(raw, list) else ([raw] if raw else [])
        ids = [str(i) for i in ids]
        if len(ids) > MAX_MEDIA_ATTACHMENTS:
            raise _ApiError(422, {"error": "Cannot attach more than 4 files"})
        found = [
            self.media[i]
            for i in ids
            if i in self.media
            and self.media[i]["account_id"] == account_id
            and self.media[i]["status_id"] is None
        ]
        if len(found) != len(ids):
            missing = sorted(set(ids) - {m["id"] for m in found})
            raise _ApiError(
                422,
                {
                    "error": f"Media {', '.join(missing)} not found. "
                    "Already attached to another post?"
                },
            )
        if any(m["polls_left"] > 0 for m in found):
            raise _ApiError(422, {"error": "Error processing thumbnail for uploaded media"})
        return found

    def _user_named(self, username: str) -> FakeUser | None:
        # Usernames are unique case-insensitively, as in Mastodon.
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def _app_by_client_id(self, client_id: str | None) -> FakeApp | None:
        return next((a for a in self.apps if a.client_id == client_id), None)

    def _base(self) -> str:
        return request.host_url.rstrip("/")

    def _domain(self) -> str:
        return self.local_domain or (request.host.rsplit(":", 1)[0] if request.host else "")

    def _params(self) -> dict[str, Any]:
        # Rails merges query, form and JSON body parameters (`name[]` fields as lists).
        params: dict[str, Any] = dict(request.args.items())
        params.update(request.form.items())
        for name in request.form:
            if name.endswith("[]"):
                params[name[:-2]] = request.form.getlist(name)
        if request.is_json:
            body = request.get_json(silent=True)
            if isinstance(body, dict):
                params.update(body)
        return params

    def _reply_parent(self, raw: Any, token: FakeToken) -> dict[str, Any] | None:
        """Api::V1::StatusesController#set_thread: the status answered must exist (and be
        visible to the token), else 404 with Mastodon's own message."""
        if raw is None or raw == "":
            return None
        parent = next((s for s in self.statuses if s["id"] == str(raw)), None)
        if parent is None or not self._visible(parent, token):
            raise _ApiError(
                404, {"error": "The post you are trying to reply to does not appear to exist."}
            )
        return parent

    def _next_status_id(self) -> str:
        # Mastodon ids are snowflakes: milliseconds << 16 plus a sequence; strictly increasing.
        candidate = int(self.now().timestamp() * 1000) << 16
        self._last_status_id = max(candidate, self._last_status_id + 1)
        return str(self._last_status_id)

    def _token(self, *scopes: str, required: bool = True, user: bool = True) -> FakeToken | None:
        """Doorkeeper's `doorkeeper_authorize!` (required) or `authorize_if_got_token!`."""
        header = request.headers.get("Authorization", "")
        value = None
        if header[:7].lower() == "bearer ":
            value = header[7:].strip()
        elif "access_token" in request.values:
            value = request.values["access_token"]
        if value is None:
            if required:
                raise _ApiError(401, {"error": _INVALID_TOKEN})
            return None
        token = self.tokens.get(value)
        if token is None or token.revoked:
            raise _ApiError(401, {"error": _INVALID_TOKEN})
        if scopes and not set(scopes) & set(token.scopes):
            raise _ApiError(403, {"error": _OUT_OF_SCOPE})
        if user and required and token.account_id is None:
            raise _ApiError(422, {"error": "This method requires an authenticated user"})
        return token

    def _account_json(self, user: FakeUser) -> dict[str, Any]:
        base = self._base()
        return {
            "id": user.id,
            "username": user.username,
            "acct": user.username,
            "display_name": user.username,
            "locked": False,
            "bot": False,
            "discoverable": True,
            "group": False,
            "created_at": _timestamp(user.created_at),
            "note": "",
            "url": f"{base}/@{user.username}",
            "uri": f"{base}/users/{user.username}",
            "avatar": f"{base}/avatars/original/missing.png",
            "avatar_static": f"{base}/avatars/original/missing.png",
            "header": f"{base}/headers/original/missing.png",
            "header_static": f"{base}/headers/original/missing.png",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": sum(1 for s in self.statuses if s["account_id"] == user.id),
            "last_status_at": None,
            "emojis": [],
            "fields": [],
        }

    def _status_json(self, status: dict[str, Any]) -> dict[str, Any]:
        base = self._base()
        user = self.users[status["account_id"]]
        app = self._app_by_client_id(status["application"])
        paragraphs = html.escape(status["text"]).split("\n\n")
        content = "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in paragraphs)
        return {
            "id": status["id"],
            "created_at": _timestamp(status["created_at"]),
            "in_reply_to_id": status.get("in_reply_to_id"),
            "in_reply_to_account_id": status.get("in_reply_to_account_id"),
            "sensitive": status.get("sensitive", bool(status["spoiler_text"])),
            "spoiler_text": status["spoiler_text"],
            "visibility": status["visibility"],
            "language": status.get("language"),
            "uri": f"{base}/users/{user.username}/statuses/{status['id']}",
            "url": f"{base}/@{user.username}/{status['id']}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "content": content,
            "reblog": None,
            "application": {"name": app.name, "website": app.website} if app else None,
            "account": self._account_json(user),
            "media_attachments": [self._media_json(m) for m in self.media_of(status)],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _visible(self, status: dict[str, Any], token: FakeToken | None) -> bool:
        # StatusPolicy#show?, simplified: public and unlisted to anyone, the rest to the owner.
        if status["visibility"] in ("public", "unlisted"):
            return True
        return token is not None and token.account_id == status["account_id"]

    def _find_status(self, status_id: str, token: FakeToken | None) -> dict[str, Any]:
        status = next((s for s in self.statuses if s["id"] == status_id), None)
        if status is None or not self._visible(status, token):
            raise _ApiError(404, {"error": "Record not found"})
        return status

    def _rewrite_mentions(self, text: str) -> str:
        # ProcessMentionsService: a mention of a known account becomes "@" + its acct; local
        # accounts' acct has no domain. Unknown accounts (no federation here) stay as written.
        domain = self._domain().lower()

        def replace(match: Any) -> str:
            username, _, mention_domain = match.group(1).partition("@")
            if mention_domain and mention_domain.lower() != domain:
                return str(match.group(0))
            user = self._user_named(username)
            return f"@{user.username}" if user is not None else str(match.group(0))

        return str(mastodon_mention_re().sub(replace, text))

    def _authorize_params(
        self, params: dict[str, Any]
    ) -> tuple[FakeApp, FakeUser | None, dict[str, str]]:
        """Doorkeeper's PreAuthorization: the checks both GET and POST /oauth/authorize make."""
        app = self._app_by_client_id(params.get("client_id"))
        if app is None:
            raise _PageError(401, "invalid_client", _OAUTH_ERRORS["invalid_client"])
        redirect_uri = params.get("redirect_uri") or ""
        if redirect_uri not in app.redirect_uris:
            raise _PageError(400, "invalid_redirect_uri", _OAUTH_ERRORS["invalid_redirect_uri"])
        if params.get("response_type") != "code":
            raise _PageError(
                400, "unsupported_response_type", _OAUTH_ERRORS["unsupported_response_type"]
            )
        scopes = _scope_list(params.get("scope"), "read")
        if not set(scopes) <= set(app.scopes):
            raise _PageError(400, "invalid_scope", _OAUTH_ERRORS["invalid_scope"])
        challenge = params.get("code_challenge") or None
        if challenge is not None and params.get("code_challenge_method") != "S256":
            # Mastodon allows S256 only (pkce_code_challenge_methods ['S256']); `plain` and a
            # missing method are refused.
            raise _PageError(
                400,
                "invalid_code_challenge_method",
                _OAUTH_ERRORS["invalid_code_challenge_method"],
            )
        user = self._user_named(self.signed_in) if self.signed_in else None
        checked = {
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(scopes),
            "state": params.get("state") or "",
            "code_challenge": challenge or "",
            "code_challenge_method": "S256" if challenge else "",
        }
        return app, user, checked

    @staticmethod
    def _redirect(redirect_uri: str, values: dict[str, str]) -> Response:
        parts = urlsplit(redirect_uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [(k, v) for k, v in values.items() if v]
        response = Response(status=302)
        response.headers["Location"] = urlunsplit(parts._replace(query=urlencode(query)))
        return response

    def _client(self, params: dict[str, Any]) -> FakeApp:
        """Authenticate the client at /oauth/token: Basic first, else client_secret_post."""
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if ":" in decoded:
                raw_id, _, raw_secret = decoded.partition(":")
                client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        app = self._app_by_client_id(client_id)
        if (
            app is None
            or not isinstance(client_secret, str)
            or not hmac.compare_digest(client_secret, app.client_secret)
        ):
            raise _ApiError(
                401,
                {"error": "invalid_client", "error_description": _OAUTH_ERRORS["invalid_client"]},
            )
        return app

    # -- the app --------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(f"fake_mastodon_{id(self)}")
        fake = self

        def locked(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with fake._lock:
                    return view(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        @app.errorhandler(_ApiError)
        def api_error(exc: _ApiError) -> tuple[Response, int, dict[str, str]]:
            return jsonify(exc.body), exc.status, exc.headers

        @app.errorhandler(_PageError)
        def page_error(exc: _PageError) -> tuple[str, int, dict[str, str]]:
            page = (
                "<!doctype html><html><head><title>An error has occurred</title></head><body>"
                f"<h1>An error has occurred</h1><p>{html.escape(exc.description)}</p>"
                f"<pre>{html.escape(exc.error)}</pre></body></html>"
            )
            return page, exc.status, {"Content-Type": "text/html; charset=utf-8"}

        @app.errorhandler(404)
        def not_found(_exc: Exception) -> tuple[Response, int]:
            return jsonify({"error": "Record not found"}), 404

        @app.before_request
        def record_and_inject() -> Any:
            with fake._lock:
                fake.calls.append((request.method, request.path))
                # cache=True: the form and JSON parsers read the body again afterwards.
                fake.received.append(
                    RecordedRequest(
                        request.method,
                        request.path,
                        dict(request.headers.items()),
                        request.get_data(cache=True),
                    )
                )
                fault = fake._faults.get((request.method, request.path))
                if fault is None:
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    del fake._faults[(request.method, request.path)]
            if isinstance(fault.body, dict | list):
                return jsonify(fault.body), fault.status, fault.headers
            return Response(fault.body or "", fault.status, fault.headers)

        @app.post("/api/v1/apps")
        @locked
        def create_app() -> Any:
            params = fake._params()
            name = str(params.get("client_name") or "").strip()
            if not name:
                raise _ApiError(
                    422, {"error": "Validation failed: Application name can't be blank"}
                )
            raw = params.get("redirect_uris")
            uris = raw if isinstance(raw, list) else str(raw or "").split()
            if not uris:
                raise _ApiError(422, {"error": "Validation failed: Redirect URI can't be blank"})
            for uri in uris:
                parts = urlsplit(uri)
                if uri != OOB and (not parts.scheme or not parts.netloc or parts.fragment):
                    raise _ApiError(
                        422, {"error": "Validation failed: Redirect URI must be an absolute URI."}
                    )
            scopes = _scope_list(params.get("scopes"), "read")
            unknown = [s for s in scopes if s not in KNOWN_SCOPES]
            if unknown:
                raise _ApiError(422, {"error": "Validation failed: Scopes are invalid"})
            website = params.get("website") or None
            registered = FakeApp(
                id=str(next(fake._ids)),
                name=name,
                website=website,
                redirect_uris=list(uris),
                scopes=scopes,
                client_id=secrets.token_urlsafe(32),
                client_secret=secrets.token_urlsafe(32),
                vapid_key=base64.urlsafe_b64encode(secrets.token_bytes(65)).decode(),
            )
            fake.apps.append(registered)
            return jsonify(
                {
                    "id": registered.id,
                    "name": registered.name,
                    "website": registered.website,
                    "scopes": registered.scopes,
                    "redirect_uri": "\n".join(registered.redirect_uris),
                    "redirect_uris": registered.redirect_uris,
                    "client_id": registered.client_id,
                    "client_secret": registered.client_secret,
                    "client_secret_expires_at": 0,
                    "vapid_key": registered.vapid_key,
                }
            )

        @app.get("/oauth/authorize")
        @locked
        def authorize_page() -> Any:
            client, user, checked = fake._authorize_params(dict(request.args.items()))
            if user is None:
                return (
                    "<!doctype html><html><body><h1>Log in</h1>"
                    "<p>You need to sign in before continuing.</p></body></html>",
                    401,
                    {"Content-Type": "text/html; charset=utf-8"},
                )
            hidden = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                for k, v in checked.items()
            )
            scope_items = "".join(f"<li>{html.escape(s)}</li>" for s in checked["scope"].split())
            page = (
                "<!doctype html><html><head><title>Authorization required</title></head><body>"
                f"<h1>Authorization required</h1><p><strong>{html.escape(client.name)}</strong> "
                f"would like permission to access your account @{html.escape(user.username)}."
                f"</p><ul>{scope_items}</ul>"
                f'<form method="post" action="/oauth/authorize">{hidden}'
                '<button type="submit">Authorize</button></form>'
                f'<form method="post" action="/oauth/authorize">{hidden}'
                '<input type="hidden" name="_method" value="delete">'
                '<button type="submit">Deny</button></form></body></html>'
            )
            return page, 200, {"Content-Type": "text/html; charset=utf-8"}

        @app.post("/oauth/authorize")
        @locked
        def authorize_decision() -> Any:
            form = dict(request.form.items())
            _client_app, user, checked = fake._authorize_params(form)
            if user is None:
                raise _PageError(401, "access_denied", "You need to sign in before continuing.")
            if form.get("_method", "").lower() == "delete":
                return fake._redirect(
                    checked["redirect_uri"],
                    {
                        "error": "access_denied",
                        "error_description": _OAUTH_ERRORS["access_denied"],
                        "state": checked["state"],
                    },
                )
            grant = _Grant(
                code=secrets.token_urlsafe(32),
                client_id=checked["client_id"],
                account_id=user.id,
                redirect_uri=checked["redirect_uri"],
                scopes=checked["scope"].split(),
                code_challenge=checked["code_challenge"] or None,
                created_at=fake.now(),
            )
            fake._grants[grant.code] = grant
            if grant.redirect_uri == OOB:
                return f"<!doctype html><html><body><code>{grant.code}</code></body></html>"
            return fake._redirect(
                grant.redirect_uri, {"code": grant.code, "state": checked["state"]}
            )

        @app.post("/oauth/token")
        @locked
        def token() -> Any:
            params = fake._params()
            client = fake._client(params)

            def oauth_error(error: str, description: str | None = None) -> _ApiError:
                return _ApiError(
                    400, {"error": error, "error_description": description or _OAUTH_ERRORS[error]}
                )

            grant_type = params.get("grant_type")
            if grant_type == "authorization_code":
                code = params.get("code")
                if not code:
                    raise oauth_error("invalid_request", "Missing required parameter: code.")
                grant = fake._grants.get(str(code))
                if (
                    grant is None
                    or grant.used
                    or grant.client_id != client.client_id
                    or fake.now() - grant.created_at > CODE_TTL
                    or params.get("redirect_uri") != grant.redirect_uri
                ):
                    raise oauth_error("invalid_grant")
                if grant.code_challenge is not None:
                    verifier = params.get("code_verifier")
                    if not verifier:
                        raise oauth_error(
                            "invalid_request", "Missing required parameter: code_verifier."
                        )
                    if not hmac.compare_digest(_s256(str(verifier)), grant.code_challenge):
                        raise oauth_error("invalid_grant")
                grant.used = True
                issued = FakeToken(
                    secrets.token_urlsafe(32),
                    client.client_id,
                    grant.account_id,
                    grant.scopes,
                    fake.now(),
                )
            elif grant_type == "client_credentials":
                scopes = _scope_list(params.get("scope"), "read")
                if not set(scopes) <= set(client.scopes):
                    raise oauth_error("invalid_scope")
                issued = FakeToken(
                    secrets.token_urlsafe(32), client.client_id, None, scopes, fake.now()
                )
            else:
                raise oauth_error("unsupported_grant_type")
            fake.tokens[issued.access_token] = issued
            body = {
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "scope": " ".join(issued.scopes),
                "created_at": int(issued.created_at.timestamp()),
            }
            return jsonify(body), 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}

        @app.get("/api/v1/accounts/verify_credentials")
        @locked
        def verify_credentials() -> Any:
            token = fake._token("read", "read:accounts", "profile")
            assert token is not None and token.account_id is not None
            user = fake.users[token.account_id]
            body = fake._account_json(user)
            body["source"] = {
                "privacy": "public",
                "sensitive": False,
                "language": None,
                "note": "",
                "fields": [],
            }
            return jsonify(body)

        def instance_configuration() -> dict[str, Any]:
            return {
                "statuses": {
                    "max_characters": fake.max_characters,
                    "max_media_attachments": 4,
                    "characters_reserved_per_url": fake.characters_reserved_per_url,
                },
                "accounts": {"max_featured_tags": 10},
            }

        @app.get("/api/v2/instance")
        @locked
        def instance_v2() -> Any:
            if not fake.instance_v2:
                raise _ApiError(404, {"error": "Record not found"})
            return jsonify(
                {
                    "domain": request.host,
                    "title": "Fake Mastodon",
                    "version": "4.3.0",
                    "source_url": "https://github.com/mastodon/mastodon",
                    "description": "A fake instance for tests.",
                    "configuration": instance_configuration(),
                    "registrations": {"enabled": False, "approval_required": False},
                }
            )

        @app.get("/api/v1/instance")
        @locked
        def instance_v1() -> Any:
            return jsonify(
                {
                    "uri": request.host,
                    "title": "Fake Mastodon",
                    "version": "4.3.0" if fake.instance_v2 else "3.5.3",
                    "max_toot_chars": fake.max_characters,
                    "configuration": instance_configuration(),
                }
            )

        @app.post("/api/v1/statuses")
        @locked
        def create_status() -> Any:
            token = fake._token("write", "write:statuses")
            assert token is not None and token.account_id is not None
            account_id = token.account_id
            key = request.headers.get("Idempotency-Key")
            now = fake.now()
            if key:
                remembered = fake._idempotency.get((account_id, key))
                if remembered is not None and now - remembered[1] < IDEMPOTENCY_TTL:
                    existing = next(s for s in fake.statuses if s["id"] == remembered[0])
                    return jsonify(fake._status_json(existing))
            params = fake._params()
            parent = fake._reply_parent(params.get("in_reply_to_id"), token)
            visibility = str(params.get("visibility") or "public")
            if visibility not in VISIBILITIES:
                raise _ApiError(422, {"error": f"'{visibility}' is not a valid visibility"})
            text = str(params.get("status") or "").strip(_RUBY_STRIP)
            spoiler = str(params.get("spoiler_text") or "").strip(_RUBY_STRIP)
            attached = fake._attachable_media(params.get("media_ids"), account_id)
            if not text and not attached:
                raise _ApiError(422, {"error": "Validation failed: Text can't be blank"})
            used = count_mastodon(
                text,
                fake._segmenter,
                url_length=fake.characters_reserved_per_url,
                spoiler_text=spoiler,
            )
            if used > fake.max_characters:
                raise _ApiError(
                    422,
                    {
                        "error": "Validation failed: Text character limit of "
                        f"{fake.max_characters} exceeded"
                    },
                )
            status: dict[str, Any] = {
                "id": fake._next_status_id(),
                "account_id": account_id,
                "text": fake._rewrite_mentions(text),
                "spoiler_text": spoiler,
                "visibility": visibility,
                # Mastodon marks every status with a content warning sensitive.
                "sensitive": bool(spoiler) or _rails_true(params.get("sensitive")),
                "language": str(params["language"]) if params.get("language") else None,
                "created_at": now,
                "application": token.client_id,
                "media_ids": [m["id"] for m in attached],
                "in_reply_to_id": parent["id"] if parent else None,
                "in_reply_to_account_id": parent["account_id"] if parent else None,
            }
            for item in attached:
                item["status_id"] = status["id"]
            fake.statuses.append(status)
            if key:
                fake._idempotency[(account_id, key)] = (status["id"], now)
            return jsonify(fake._status_json(status))

        @app.post("/api/v2/media")
        @locked
        def upload_media() -> Any:
            token = fake._token("write", "write:media")
            assert token is not None and token.account_id is not None
            upload = request.files.get("file")
            if upload is None:
                raise _ApiError(422, {"error": "Validation failed: File can't be blank"})
            data = upload.read()
            if len(data) > MEDIA_IMAGE_LIMIT:
                raise _ApiError(
                    422, {"error": "Validation failed: File file size must be less than 16 MB"}
                )
            try:
                with Image.open(io.BytesIO(data)) as image:
                    mime_type = _IMAGE_FORMATS.get(str(image.format))
                    width, height = image.size
            except (UnidentifiedImageError, OSError):
                mime_type = None
            if mime_type is None:
                raise _ApiError(422, {"error": "Validation failed: File content type is invalid"})
            description = str(request.form.get("description") or "").strip(_RUBY_STRIP)
            if len(description) > MEDIA_DESCRIPTION_LIMIT:
                raise _ApiError(
                    422,
                    {
                        "error": "Validation failed: Description is too long "
                        f"(maximum is {MEDIA_DESCRIPTION_LIMIT} characters)"
                    },
                )
            item: dict[str, Any] = {
                "id": str(next(fake._ids)),
                "account_id": token.account_id,
                "mime_type": mime_type,
                "size": len(data),
                "description": description or None,
                "width": width,
                "height": height,
                "status_id": None,
                "polls_left": fake.media_processing_polls,
            }
            fake.media[item["id"]] = item
            return jsonify(fake._media_json(item)), 202 if item["polls_left"] > 0 else 200

        @app.get("/api/v1/media/<media_id>")
        @locked
        def show_media(media_id: str) -> Any:
            token = fake._token("write", "write:media")
            assert token is not None
            item = fake.media.get(media_id)
            if item is None or item["account_id"] != token.account_id:
                raise _ApiError(404, {"error": "Record not found"})
            if item["polls_left"] > 0:
                item["polls_left"] -= 1
                if item["polls_left"] > 0:
                    return jsonify(fake._media_json(item)), 206
            return jsonify(fake._media_json(item))

        @app.get("/api/v1/statuses/<status_id>")
        @locked
        def show_status(status_id: str) -> Any:
            token = fake._token("read", "read:statuses", required=False)
            return jsonify(fake._status_json(fake._find_status(status_id, token)))

        @app.delete("/api/v1/statuses/<status_id>")
        @locked
        def delete_status(status_id: str) -> Any:
            # Api::V1::StatusesController#destroy: the token's own statuses only
            # (`current_account.statuses.find`), answered with the status and its source text.
            token = fake._token("write", "write:statuses")
            assert token is not None
            status = next(
                (
                    s
                    for s in fake.statuses
                    if s["id"] == status_id and s["account_id"] == token.account_id
                ),
                None,
            )
            if status is None:
                raise _ApiError(404, {"error": "Record not found"})
            body = {**fake._status_json(status), "text": status["text"]}
            fake.statuses.remove(status)
            return jsonify(body)

        @app.get("/api/v1/statuses/<status_id>/source")
        @locked
        def status_source(status_id: str) -> Any:
            token = fake._token("read", "read:statuses")
            status = fake._find_status(status_id, token)
            return jsonify(
                {"id": status["id"], "text": status["text"], "spoiler_text": status["spoiler_text"]}
            )

        @app.get("/api/v1/accounts/<account_id>/statuses")
        @locked
        def account_statuses(account_id: str) -> Any:
            token = fake._token("read", "read:statuses", required=False)
            if account_id not in fake.users:
                raise _ApiError(404, {"error": "Record not found"})
            try:
                limit = int(request.args.get("limit", 20))
            except ValueError:
                limit = 20
            limit = min(max(limit, 1), 40)
            max_id = request.args.get("max_id")
            since_id = request.args.get("since_id")
            mine = sorted(
                (
                    s
                    for s in fake.statuses
                    if s["account_id"] == account_id and fake._visible(s, token)
                ),
                key=lambda s: int(s["id"]),
                reverse=True,
            )
            if max_id and max_id.isdigit():
                mine = [s for s in mine if int(s["id"]) < int(max_id)]
            if since_id and since_id.isdigit():
                mine = [s for s in mine if int(s["id"]) > int(since_id)]
            page = mine[:limit]
            response = jsonify([fake._status_json(s) for s in page])
            links = []
            base = f"{fake._base()}/api/v1/accounts/{account_id}/statuses"
            if len(page) == limit:
                links.append(f'<{base}?limit={limit}&max_id={page[-1]["id"]}>; rel="next"')
            if page:
                links.append(f'<{base}?limit={limit}&min_id={page[0]["id"]}>; rel="prev"')
            if links:
                response.headers["Link"] = ", ".join(links)
            return response

        return app


def make_fake_mastodon(
    max_characters: int = 500,
    characters_reserved_per_url: int = 23,
    *,
    now: Callable[[], datetime] | None = None,
    instance_v2: bool = True,
    local_domain: str | None = None,
) -> FakeMastodon:
    """Build a fake instance with these status limits; `now` drives idempotency expiry and ids."""
    return FakeMastodon(
        max_characters=max_characters,
        characters_reserved_per_url=characters_reserved_per_url,
        now=now,
        instance_v2=instance_v2,
        local_domain=local_domain,
    )
