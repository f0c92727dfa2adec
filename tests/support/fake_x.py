"""A fake X (Twitter) API v2 and OAuth 2.0 server, faithful to X's documented protocol.

What it enforces, as X does: the authorization-code flow with PKCE (S256 or plain), confidential
clients authenticating with HTTP Basic, single-use codes valid for 30 seconds, access tokens
that expire after two hours, rotating refresh tokens (only with `offline.access`), scopes per
endpoint, the weighted 280-character limit (ghostpost's port of twitter-text v3), refusal of
duplicate text by the same author, rate-limit headers, and timelines returned the way X returns
text: every URL replaced by a t.co link, &, <, > HTML-escaped, and one more t.co link to the
images appended to a tweet that has images.

Media (`POST /2/media/upload`, `POST /2/media/metadata`): the `media.write` scope; the bytes
must decode as JPEG, PNG, GIF or WebP (the part's Content-Type is not trusted), at most 5 MB;
alt text at most 1,000 characters, only on the uploader's own media. A tweet takes at most 4
`media.media_ids`, each existing and uploaded by the author (X: "Your media IDs are
invalid."); with media the text may be empty.

Tests drive it over real HTTP (`tests.support.http_server.serving(fake.app)`) and inspect its
state (`tweets`, `tokens`, `refresh_tokens`, `authorize_requests`, `token_requests`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import secrets
import string
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

from flask import Flask, Response, jsonify, redirect, request
from PIL import Image, UnidentifiedImageError

from ghostpost.domain.length import count_x
from ghostpost.textseg import default_segmenter

__all__ = ["FakeX", "FakeXUser", "make_fake_x"]

ACCESS_TOKEN_SECONDS = 7200
CODE_SECONDS = 30
RATE_WINDOW = timedelta(minutes=15)
DAY = timedelta(hours=24)
#: Scopes X knows (a subset of its list is enough for ghostpost's flows).
KNOWN_SCOPES = frozenset(
    {
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "like.read",
        "like.write",
        "media.write",
    }
)
MEDIA_IMAGE_LIMIT = 5 * 1024 * 1024
ALT_TEXT_LIMIT = 1000
MAX_MEDIA_PER_TWEET = 4
INVALID_MEDIA = "Your media IDs are invalid."
_IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
#: X's snowflake epoch (2010-11-04T01:42:54.657Z) in milliseconds.
TWEPOCH_MS = 1288834974657
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
#: X's answer to a reply whose parent does not exist (or is not visible to the user).
REPLY_TO_MISSING_DETAIL = "You attempted to reply to a Tweet that is deleted or not visible to you."
TOO_LONG_MESSAGE = (
    "Your Tweet text is too long. For more information on how Twitter determines text length "
    "see https://github.com/twitter/twitter-text."
)
_TCO_ALPHABET = string.ascii_letters + string.digits


@dataclass
class FakeXUser:
    """An X user of the fake."""

    id: str
    username: str
    name: str


@dataclass
class _Injection:
    method: str
    path: str
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]
    after: bool


@dataclass
class _Window:
    started: datetime
    used: int = 0


@dataclass
class FakeX:
    """The fake's state and its WSGI app (`app`)."""

    client_id: str
    client_secret: str
    now: Callable[[], datetime]
    #: Callback URLs registered for the client; None accepts any (X needs an exact match).
    redirect_uris: Collection[str] | None = None
    users: dict[str, FakeXUser] = field(default_factory=dict)
    #: Every tweet: id, author_id, text (as posted), api_text (as X returns it), created_at,
    #: media_ids.
    tweets: list[dict[str, Any]] = field(default_factory=list)
    #: Uploaded media by id: id, media_key, owner, image_type, size, w, h, alt_text.
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Live access tokens -> user_id, client_id, scope, expires_at.
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Live refresh tokens -> user_id, client_id, scope.
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Query parameters of every GET /i/oauth2/authorize.
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    #: grant_type, client_auth ("basic" or "none") and form fields (no secrets) of token calls.
    token_requests: list[dict[str, str]] = field(default_factory=list)
    #: The user who is signed in to x.com and approves consent screens.
    signed_in: str | None = None
    #: POST /2/tweets per user per 15 minutes, and per user per 24 hours (None: no daily cap).
    tweets_per_window: int = 200
    tweets_per_day: int | None = None
    app: Flask = field(init=False)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._codes: dict[str, dict[str, Any]] = {}
        self._consents: dict[str, dict[str, str]] = {}
        self._pages: dict[str, tuple[str, int]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._injections: list[_Injection] = []
        self.app = _build_app(self)

    # ---- test controls -----------------------------------------------------------------

    def create_user(self, username: str, name: str | None = None) -> str:
        """Add a user; the first one created is the one signed in. Return its id."""
        with self._lock:
            user = FakeXUser(self._snowflake(), username, name or username)
            self.users[user.id] = user
            if self.signed_in is None:
                self.signed_in = user.id
            return user.id

    def add_tweet(self, user_id: str, text: str, *, at: datetime | None = None) -> str:
        """Put a tweet on a timeline directly (no checks); return its id."""
        with self._lock:
            return str(self._store_tweet(user_id, text, at or self.now())["id"])

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next matching request with `status`; with after=True, do the work first."""
        with self._lock:
            self._injections.append(
                _Injection(method.upper(), path, status, body, headers or {}, after)
            )

    def timeline(self, user_id: str) -> list[dict[str, Any]]:
        """The user's tweets, newest first."""
        with self._lock:
            return sorted(
                (t for t in self.tweets if t["author_id"] == user_id),
                key=lambda t: int(t["id"]),
                reverse=True,
            )

    # ---- internals -----------------------------------------------------------------------

    def _snowflake(self) -> str:
        millis = int(self.now().timestamp() * 1000) - TWEPOCH_MS
        return str((millis << 22) | (next(self._ids) & 0x3FFFFF))

    def _store_tweet(
        self, user_id: str, text: str, at: datetime, media_ids: list[str] | None = None
    ) -> dict[str, Any]:
        api_text = as_x_returns(text)
        if media_ids:
            # X links the images after the text (the link is in the text the API returns).
            api_text = f"{api_text} {as_x_returns('https://x.com/i/photo')}".lstrip()
        tweet = {
            "id": self._snowflake(),
            "author_id": user_id,
            "text": text,
            "api_text": api_text,
            "created_at": at,
            "media_ids": list(media_ids or []),
        }
        self.tweets.append(tweet)
        return tweet

    def _take_injection(self, after: bool) -> _Injection | None:
        with self._lock:
            for index, item in enumerate(self._injections):
                if (
                    item.after == after
                    and item.method == request.method
                    and item.path == request.path
                ):
                    return self._injections.pop(index)
        return None


def make_fake_x(
    *,
    client_id: str,
    client_secret: str,
    now: Callable[[], datetime] | None = None,
    redirect_uris: Collection[str] | None = None,
) -> FakeX:
    """Build a fake X for one confidential client; `now` is its clock (default: real time)."""
    return FakeX(
        client_id=client_id,
        client_secret=client_secret,
        now=now or (lambda: datetime.now(UTC)),
        redirect_uris=redirect_uris,
    )


def as_x_returns(text: str) -> str:
    """The text as X's API returns it: URLs as t.co links, then &, <, > HTML-escaped."""
    pieces: list[str] = []
    position = 0
    for start, end in sorted(default_segmenter().url_spans(text, require_scheme=False)):
        if start < position:
            continue
        pieces.append(text[position:start])
        pieces.append("https://t.co/" + "".join(secrets.choice(_TCO_ALPHABET) for _ in range(10)))
        position = end
    pieces.append(text[position:])
    return "".join(pieces).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _x_time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _problem(
    status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any
) -> Response:
    body = {"title": title, "detail": detail, "type": type_, "status": status, **extra}
    if type_ != "about:blank":
        body.pop("status")
    response = jsonify(body)
    response.status_code = status
    response.content_type = "application/problem+json"
    return response


def _invalid_request(message: str, parameter: str | None = None, value: Any = None) -> Response:
    error: dict[str, Any] = {"message": message}
    if parameter is not None:
        error["parameters"] = {parameter: [value]}
    return _problem(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        "https://api.twitter.com/2/problems/invalid-request",
        errors=[error],
    )


def _oauth_error(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return response


def _error_page(reason: str) -> tuple[str, int]:
    # X shows an HTML page for a bad authorize request; it never redirects to the client.
    return (
        "<!doctype html><title>X</title><p>Something went wrong. You weren't able to give "
        f"access to the App. Go back and try logging in again.</p><!-- {html.escape(reason)} -->",
        400,
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _reply_parent(fake: FakeX, reply: Any) -> str | Response | None:
    """`reply.in_reply_to_tweet_id` as X checks it: a tweet that exists, else 403."""
    if reply is None:
        return None
    parent = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    if not isinstance(parent, str):
        return _invalid_request("$.reply.in_reply_to_tweet_id: must be a string")
    with fake._lock:
        if not any(t["id"] == parent for t in fake.tweets):
            return _problem(403, "Forbidden", REPLY_TO_MISSING_DETAIL)
    return parent


def _build_app(fake: FakeX) -> Flask:
    app = Flask("fake_x")

    @app.before_request
    def injected_before() -> Response | None:
        item = fake._take_injection(after=False)
        return _injected(item) if item is not None else None

    @app.after_request
    def injected_after(response: Response) -> Response:
        if response.status_code >= 400:
            return response
        item = fake._take_injection(after=True)
        return _injected(item) if item is not None else response

    def _injected(item: _Injection) -> Response:
        response = jsonify(item.body or {"title": "Service Unavailable", "status": item.status})
        response.status_code = item.status
        response.headers.update(item.headers)
        return response

    # ---- authorization --------------------------------------------------------------------

    @app.get("/i/oauth2/authorize")
    def authorize() -> Any:
        args = {key: request.args.get(key, "") for key in request.args}
        fake.authorize_requests.append(args)
        if args.get("response_type") != "code":
            return _error_page("response_type must be code")
        if args.get("client_id") != fake.client_id:
            return _error_page("unknown client")
        redirect_uri = args.get("redirect_uri", "")
        if not redirect_uri or (
            fake.redirect_uris is not None and redirect_uri not in fake.redirect_uris
        ):
            return _error_page("redirect_uri does not match a registered callback")
        scopes = args.get("scope", "").split()
        if not scopes or not set(scopes) <= KNOWN_SCOPES:
            return _error_page("invalid scope")
        if not args.get("state") or len(args["state"]) > 500:
            return _error_page("state is required")
        if not args.get("code_challenge"):
            return _error_page("code_challenge is required")
        if args.get("code_challenge_method") not in ("S256", "plain"):
            return _error_page("code_challenge_method must be S256 or plain")
        consent = secrets.token_urlsafe(16)
        with fake._lock:
            fake._consents[consent] = args
        user = fake.users.get(fake.signed_in or "")
        who = html.escape(user.username) if user else "nobody"
        return (
            "<!doctype html><title>Authorize app</title>"
            f"<p>@{who}: allow the app to access your account? Scopes: "
            f"{html.escape(' '.join(scopes))}</p>"
            '<form method="post" action="/i/oauth2/authorize">'
            f'<input type="hidden" name="consent" value="{consent}">'
            '<button name="decision" value="allow">Authorize app</button>'
            '<button name="decision" value="deny">Cancel</button>'
            "</form>"
        )

    @app.post("/i/oauth2/authorize")
    def consent() -> Any:
        with fake._lock:
            args = fake._consents.pop(request.form.get("consent", ""), None)
        if args is None:
            return _error_page("unknown or used consent form")
        if fake.signed_in is None:
            return _error_page("nobody is signed in")
        target = args["redirect_uri"] + ("&" if "?" in args["redirect_uri"] else "?")
        if request.form.get("decision") != "allow":
            return redirect(target + urlencode({"error": "access_denied", "state": args["state"]}))
        code = secrets.token_urlsafe(32)
        with fake._lock:
            fake._codes[code] = {
                "client_id": args["client_id"],
                "redirect_uri": args["redirect_uri"],
                "scope": args["scope"],
                "challenge": args["code_challenge"],
                "method": args["code_challenge_method"],
                "user_id": fake.signed_in,
                "expires_at": fake.now() + timedelta(seconds=CODE_SECONDS),
            }
        return redirect(target + urlencode({"state": args["state"], "code": code}))

    @app.post("/2/oauth2/token")
    def token() -> Any:
        form = request.form
        client_auth = "none"
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_auth = "basic"
        fake.token_requests.append(
            {
                "grant_type": form.get("grant_type", ""),
                "client_auth": client_auth,
                "fields": " ".join(sorted(form)),
                "scope": form.get("scope", ""),
            }
        )
        if not _basic_client_ok(fake, header):
            return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        if form.get("client_id") not in (None, fake.client_id):
            return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return _exchange_code(fake, form)
        if grant_type == "refresh_token":
            return _refresh(fake, form)
        return _oauth_error(400, "invalid_request", "Value passed for the grant type was invalid.")

    # ---- API -----------------------------------------------------------------------------

    @app.get("/2/users/me")
    def me() -> Any:
        grant = _bearer(fake, {"tweet.read", "users.read"})
        if isinstance(grant, Response):
            return grant
        limited = _rate_limit(fake, grant["user_id"], "users/me", 75, RATE_WINDOW)
        if isinstance(limited, Response):
            return limited
        user = fake.users[grant["user_id"]]
        response = jsonify({"data": {"id": user.id, "name": user.name, "username": user.username}})
        response.headers.update(limited)
        return response

    @app.post("/2/tweets")
    def create_tweet() -> Any:
        grant = _bearer(fake, {"tweet.read", "tweet.write", "users.read"})
        if isinstance(grant, Response):
            return grant
        user_id = grant["user_id"]
        headers = _rate_limit(fake, user_id, "tweets", fake.tweets_per_window, RATE_WINDOW)
        if isinstance(headers, Response):
            return headers
        if fake.tweets_per_day is not None:
            daily = _rate_limit(
                fake, user_id, "tweets/day", fake.tweets_per_day, DAY, "x-user-limit-24hour"
            )
            if isinstance(daily, Response):
                daily.headers.update(headers)
                return daily
            headers.update(daily)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _invalid_request("$.text: is missing but it is required")
        media = body.get("media")
        media_ids = media.get("media_ids") if isinstance(media, dict) else None
        if media is not None and (
            not isinstance(media_ids, list)
            or not media_ids
            or not all(isinstance(i, str) for i in media_ids)
        ):
            return _invalid_request("$.media.media_ids: must be a list of strings")
        if media_ids and len(media_ids) > MAX_MEDIA_PER_TWEET:
            return _invalid_request(
                f"$.media.media_ids: must have at most {MAX_MEDIA_PER_TWEET} items"
            )
        # Stricter than X is known to be: media already on a tweet is refused too (ghostpost
        # never reuses an upload, and a fake that allowed it could hide a bug that does).
        used = {i for t in fake.tweets for i in t.get("media_ids", [])}
        if media_ids and any(
            fake.media.get(i, {}).get("owner") != user_id or i in used for i in media_ids
        ):
            return _problem(400, "Invalid Request", INVALID_MEDIA)
        text = body.get("text", "" if media_ids else None)
        if not isinstance(text, str):
            return _invalid_request("$.text: is missing but it is required")
        if not media_ids and not text:
            return _invalid_request("$.text: must not be empty")
        parent = _reply_parent(fake, body.get("reply"))
        if isinstance(parent, Response):
            response = parent
        elif text and not count_x(text, default_segmenter()).valid:
            response = _invalid_request(TOO_LONG_MESSAGE, "text", text)
        else:
            with fake._lock:
                if text and any(
                    t["author_id"] == user_id and t["text"] == text for t in fake.tweets
                ):
                    response = _problem(403, "Forbidden", DUPLICATE_DETAIL)
                else:
                    tweet = fake._store_tweet(user_id, text, fake.now(), media_ids)
                    tweet["in_reply_to_tweet_id"] = parent
                    response = jsonify(
                        {
                            "data": {
                                "id": tweet["id"],
                                "edit_history_tweet_ids": [tweet["id"]],
                                "text": text,
                            }
                        }
                    )
                    response.status_code = 201
        response.headers.update(headers)
        return response

    @app.post("/2/media/upload")
    def upload_media() -> Any:
        grant = _bearer(fake, {"media.write"})
        if isinstance(grant, Response):
            return grant
        upload = request.files.get("media")
        if upload is None:
            return _invalid_request("$.media: is missing but it is required")
        data = upload.read()
        if len(data) > MEDIA_IMAGE_LIMIT:
            return _invalid_request("File size exceeds 5242880 bytes.", "media", None)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image_type = _IMAGE_FORMATS.get(str(image.format))
                width, height = image.size
        except (UnidentifiedImageError, OSError):
            image_type = None
        if image_type is None:
            return _invalid_request("media type unrecognized.", "media", None)
        with fake._lock:
            media_id = fake._snowflake()
            item = {
                "id": media_id,
                "media_key": f"3_{media_id}",
                "owner": grant["user_id"],
                "image_type": f"image/{image_type}",
                "size": len(data),
                "w": width,
                "h": height,
                "alt_text": None,
            }
            fake.media[media_id] = item
        return jsonify(
            {
                "data": {
                    "id": media_id,
                    "media_key": item["media_key"],
                    "size": len(data),
                    "expires_after_secs": 86400,
                    "image": {"image_type": item["image_type"], "w": width, "h": height},
                }
            }
        )

    @app.post("/2/media/metadata")
    def media_metadata() -> Any:
        grant = _bearer(fake, {"media.write"})
        if isinstance(grant, Response):
            return grant
        body = request.get_json(silent=True)
        media_id = body.get("id") if isinstance(body, dict) else None
        metadata = body.get("metadata") if isinstance(body, dict) else None
        alt = metadata.get("alt_text") if isinstance(metadata, dict) else None
        text = alt.get("text") if isinstance(alt, dict) else None
        if not isinstance(media_id, str) or not isinstance(text, str):
            return _invalid_request("$.id and $.metadata.alt_text.text are required")
        if len(text) > ALT_TEXT_LIMIT:
            return _invalid_request(
                f"$.metadata.alt_text.text: must be at most {ALT_TEXT_LIMIT} characters"
            )
        with fake._lock:
            item = fake.media.get(media_id)
            if item is None or item["owner"] != grant["user_id"]:
                return _problem(400, "Invalid Request", INVALID_MEDIA)
            item["alt_text"] = text
        answer = {"id": media_id, "associated_metadata": {"alt_text": {"text": text}}}
        return jsonify({"data": answer})

    @app.delete("/2/tweets/<tweet_id>")
    def delete_tweet(tweet_id: str) -> Any:
        grant = _bearer(fake, {"tweet.read", "tweet.write", "users.read"})
        if isinstance(grant, Response):
            return grant
        headers = _rate_limit(fake, grant["user_id"], "tweets/delete", 50, RATE_WINDOW)
        if isinstance(headers, Response):
            return headers
        with fake._lock:
            tweet = next((t for t in fake.tweets if t["id"] == tweet_id), None)
            if tweet is None:
                response = _problem(
                    404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}]."
                )
            elif tweet["author_id"] != grant["user_id"]:
                response = _problem(403, "Forbidden", "You are not allowed to delete this Tweet.")
            else:
                fake.tweets.remove(tweet)
                response = jsonify({"data": {"deleted": True}})
        response.headers.update(headers)
        return response

    @app.get("/2/users/<user_id>/tweets")
    def user_tweets(user_id: str) -> Any:
        grant = _bearer(fake, {"tweet.read", "users.read"})
        if isinstance(grant, Response):
            return grant
        headers = _rate_limit(fake, grant["user_id"], "users/tweets", 900, RATE_WINDOW)
        if isinstance(headers, Response):
            return headers
        response = _timeline_page(fake, user_id)
        response.headers.update(headers)
        return response

    return app


def _basic_client_ok(fake: FakeX, header: str) -> bool:
    if not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("latin-1")
    except ValueError:
        return False
    user, _, password = decoded.partition(":")
    # RFC 6749 2.3.1 form-encodes both parts first; clients that do not are accepted too.
    return (user, password) == (fake.client_id, fake.client_secret) or (
        unquote(user),
        unquote(password),
    ) == (fake.client_id, fake.client_secret)


def _issue(fake: FakeX, user_id: str, scope: str) -> Response:
    access = secrets.token_urlsafe(48)
    fake.tokens[access] = {
        "user_id": user_id,
        "client_id": fake.client_id,
        "scope": scope,
        "expires_at": fake.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS),
    }
    body: dict[str, Any] = {
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "access_token": access,
        "scope": scope,
    }
    if "offline.access" in scope.split():
        refresh = secrets.token_urlsafe(48)
        fake.refresh_tokens[refresh] = {
            "user_id": user_id,
            "client_id": fake.client_id,
            "scope": scope,
        }
        body["refresh_token"] = refresh
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _exchange_code(fake: FakeX, form: Any) -> Response:
    invalid = _oauth_error(
        400, "invalid_request", "Value passed for the authorization code was invalid."
    )
    verifier = form.get("code_verifier")
    if not verifier:
        return _oauth_error(400, "invalid_request", "Missing required parameter [code_verifier].")
    with fake._lock:
        # Single use: a code is gone after its first presentation, whatever the outcome.
        grant = fake._codes.pop(form.get("code", ""), None)
        if grant is None or grant["expires_at"] <= fake.now():
            return invalid
        if (
            grant["client_id"] != fake.client_id
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            return invalid
        expected = _s256(verifier) if grant["method"] == "S256" else verifier
        if not secrets.compare_digest(expected, grant["challenge"]):
            return invalid
        return _issue(fake, grant["user_id"], grant["scope"])


def _refresh(fake: FakeX, form: Any) -> Response:
    with fake._lock:
        # Rotating: the presented refresh token dies now, even if the answer is lost.
        grant = fake.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if grant is None or grant["client_id"] != fake.client_id:
            return _oauth_error(400, "invalid_request", "Value passed for the token was invalid.")
        scope = grant["scope"]
        requested = form.get("scope")
        if requested:
            if not set(requested.split()) <= set(scope.split()):
                return _oauth_error(400, "invalid_scope", "The requested scope is invalid.")
            scope = " ".join(requested.split())
        return _issue(fake, grant["user_id"], scope)


def _bearer(fake: FakeX, scopes: set[str]) -> dict[str, Any] | Response:
    header = request.headers.get("Authorization", "")
    grant = fake.tokens.get(header[7:]) if header.startswith("Bearer ") else None
    if grant is None or grant["expires_at"] <= fake.now():
        return _problem(401, "Unauthorized", "Unauthorized")
    missing = scopes - set(grant["scope"].split())
    if missing:
        return _problem(
            403,
            "Forbidden",
            f"Missing required OAuth 2.0 scope(s): {', '.join(sorted(missing))}.",
        )
    return grant


def _rate_limit(
    fake: FakeX,
    user_id: str,
    endpoint: str,
    limit: int,
    period: timedelta,
    prefix: str = "x-rate-limit",
) -> dict[str, str] | Response:
    now = fake.now()
    with fake._lock:
        window = fake._windows.get((user_id, endpoint))
        if window is None or now >= window.started + period:
            window = fake._windows[(user_id, endpoint)] = _Window(now)
        reset = int((window.started + period).timestamp())
        if window.used >= limit:
            response = _problem(429, "Too Many Requests", "Too Many Requests")
            response.headers.update(
                {
                    f"{prefix}-limit": str(limit),
                    f"{prefix}-remaining": "0",
                    f"{prefix}-reset": str(reset),
                }
            )
            return response
        window.used += 1
        return {
            f"{prefix}-limit": str(limit),
            f"{prefix}-remaining": str(limit - window.used),
            f"{prefix}-reset": str(reset),
        }


def _timeline_page(fake: FakeX, user_id: str) -> Response:
    args = request.args
    if user_id not in fake.users:
        return jsonify(
            {
                "errors": [
                    {
                        "value": user_id,
                        "detail": f"Could not find user with id: [{user_id}].",
                        "title": "Not Found Error",
                        "resource_type": "user",
                        "parameter": "id",
                        "resource_id": user_id,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                ]
            }
        )
    try:
        max_results = int(args.get("max_results", "10"))
    except ValueError:
        max_results = 0
    if not 5 <= max_results <= 100:
        return _invalid_request(
            f"The `max_results` query parameter value [{args.get('max_results')}] is not "
            "between 5 and 100",
            "max_results",
            args.get("max_results"),
        )
    start = end = None
    for name in ("start_time", "end_time"):
        value = args.get(name)
        if value is None:
            continue
        parsed = _parse_time(value)
        if parsed is None:
            return _invalid_request(f"Invalid '{name}':'{value}'.", name, value)
        if name == "start_time":
            start = parsed
        else:
            end = parsed
    query = f"{user_id}|{args.get('start_time')}|{args.get('end_time')}"
    offset = 0
    token = args.get("pagination_token")
    if token is not None:
        with fake._lock:
            page = fake._pages.get(token)
        if page is None or page[0] != query:
            return _invalid_request(
                "The `pagination_token` query parameter value is not valid",
                "pagination_token",
                token,
            )
        offset = page[1]
    tweets = [
        t
        for t in fake.timeline(user_id)
        if (start is None or t["created_at"] >= start) and (end is None or t["created_at"] < end)
    ]
    chosen = tweets[offset : offset + max_results]
    fields = set(args.get("tweet.fields", "").split(","))
    data = []
    for tweet in chosen:
        item: dict[str, Any] = {
            "id": tweet["id"],
            "text": tweet["api_text"],
            "edit_history_tweet_ids": [tweet["id"]],
        }
        if "created_at" in fields:
            item["created_at"] = _x_time(tweet["created_at"])
        if "author_id" in fields:
            item["author_id"] = tweet["author_id"]
        if tweet.get("media_ids") and "attachments" in fields:
            item["attachments"] = {
                "media_keys": [fake.media[i]["media_key"] for i in tweet["media_ids"]]
            }
        data.append(item)
    meta: dict[str, Any] = {"result_count": len(data)}
    if data:
        meta["newest_id"] = data[0]["id"]
        meta["oldest_id"] = data[-1]["id"]
    if offset + max_results < len(tweets):
        next_token = secrets.token_hex(16)
        with fake._lock:
            fake._pages[next_token] = (query, offset + max_results)
        meta["next_token"] = next_token
    body: dict[str, Any] = {"meta": meta}
    if data:
        body = {"data": data, "meta": meta}
    if "attachments.media_keys" in args.get("expansions", "").split(","):
        media_fields = set(args.get("media.fields", "").split(","))
        included = []
        for tweet in chosen:
            for media_id in tweet.get("media_ids", []):
                item = fake.media[media_id]
                entry: dict[str, Any] = {"media_key": item["media_key"], "type": "photo"}
                if "alt_text" in media_fields and item["alt_text"]:
                    entry["alt_text"] = item["alt_text"]
                included.append(entry)
        if included:
            body["includes"] = {"media": included}
    return jsonify(body)
