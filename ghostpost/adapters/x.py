"""The X (Twitter) API v2 adapter: OAuth 2.0 with PKCE and rotating refresh tokens, and posting.

X has no idempotency key, so "exactly once" rests on two things. Before a tweet is sent, an
attempt is committed under the post's key with a fingerprint of its text; on any later call
under that key (a retry, a crash) the account's recent timeline is searched for a tweet with
that fingerprint before anything is sent again. X also refuses identical text from the same
author (403 "duplicate content"), which catches what the search cannot see yet.

Tokens: access tokens live 2 hours; refresh tokens rotate (each refresh kills the old one), so a
refreshed token set is saved before it is used. Tokens never appear in messages or logs.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]

from ghostpost.adapters.base import (
    AttemptStore,
    Connection,
    CredentialStore,
    PermanentError,
    Receipt,
    RetryableError,
)
from ghostpost.adapters.http import (
    RETRYABLE_STATUSES,
    PlatformHttp,
    error_text,
)
from ghostpost.adapters.media import UploadHook, check_media, file_name
from ghostpost.clock import Clock
from ghostpost.domain.media_rules import IMAGE_RULES
from ghostpost.domain.model import Account, MediaItem, ReplyTarget
from ghostpost.domain.post_options import PLAIN, PostOptions, refusals
from ghostpost.textseg import default_segmenter

if TYPE_CHECKING:
    from ghostpost.bootstrap import Container

__all__ = ["SCOPES", "XConnector", "XPublisher", "from_container", "text_fingerprint"]

SCOPES = "tweet.read tweet.write users.read offline.access media.write"
TOKEN_PATH = "/2/oauth2/token"
#: X's documented access-token lifetime, assumed when a token response omits expires_in.
ACCESS_TOKEN_SECONDS = 7200
#: Refresh this long before the access token expires, so it cannot expire mid-request.
REFRESH_MARGIN_SECONDS = 60
#: How far before the recorded attempt the timeline search starts (clock skew between us and X).
LOOKUP_SLACK = timedelta(minutes=5)
#: Timeline pages (100 tweets each) searched for an earlier send.
LOOKUP_PAGES = 3
NOT_CONFIGURED = "X is not configured: set x_client_id and x_client_secret"
DUPLICATE_REFUSAL = "X refused the post as a duplicate of an earlier one"
#: X: up to 4 photos per post, images up to 5 MB in these formats (media upload guide).
#: What the platform takes with one post: the rules submissions were checked against.
MEDIA_LIMITS = IMAGE_RULES["x"]
#: Attempt-store keys tying a tweet id to the post key that sent it.
CLAIM_PREFIX = "x-tweet:"


# --------------------------------------------------------------------------------------------
# Matching a sent text with the text X returns
# --------------------------------------------------------------------------------------------

_URL_PLACEHOLDER = "\x00url\x00"
_X_ENTITY = re.compile("&(amp|lt|gt);")
_X_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}


def _without_x_escaping(text: str) -> str:
    """Undo X's HTML escaping of &, < and > (and only that: literal entities survive)."""
    # One pass, so a literal "&amp;" the author typed (returned as "&amp;amp;") comes back as
    # "&amp;"; html.unescape would turn it into "&" and the fingerprints would differ.
    return _X_ENTITY.sub(lambda match: _X_ENTITY_CHARS[match.group(1)], text)


def _normalised(text: str, *, media_link: bool = False) -> str:
    """The form both sides are compared in: NFC, every URL a placeholder, outer blanks trimmed.

    With media_link, the text is X's own for a tweet with images: X appends one link to the
    images after the text, which is not part of what was sent and is dropped."""
    text = unicodedata.normalize("NFC", text)
    # X rewrites each URL it recognises (with or without a scheme) to a t.co link, so URLs
    # cannot be compared; the t.co link is itself a URL and becomes the same placeholder.
    pieces: list[str] = []
    position = 0
    for start, end in sorted(default_segmenter().url_spans(text, require_scheme=False)):
        if start < position:
            continue
        pieces.append(text[position:start])
        pieces.append(_URL_PLACEHOLDER)
        position = end
    pieces.append(text[position:])
    normalised = "".join(pieces).strip()
    if media_link and normalised.endswith(_URL_PLACEHOLDER):
        normalised = normalised.removesuffix(_URL_PLACEHOLDER).strip()
    return normalised


def text_fingerprint(
    text: str, *, from_x: bool = False, alt_texts: Sequence[str] | None = None
) -> str:
    """SHA-256 hex of a text as sent (or, with from_x, as X returns it) in comparable form,
    with the images' alt texts in order when the tweet has images (a text-only tweet keeps
    the fingerprint it always had, so attempts already stored still match)."""
    if from_x:
        text = _without_x_escaping(text)
    comparable = _normalised(text, media_link=from_x and bool(alt_texts))
    for alt in alt_texts or ():
        comparable += "\x00" + alt.strip()
    return hashlib.sha256(comparable.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------------


def _json_object(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _bearer(credentials: Mapping[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.get('access_token', '')}"}


def _rfc3339(moment: datetime) -> str:
    """YYYY-MM-DDTHH:mm:ssZ, the form X documents for start_time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _TokenEndpointRefused(Exception):
    """The token endpoint answered with something other than 200 (raised inside Authlib)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _refuse_unless_ok(response: requests.Response) -> requests.Response:
    # Authlib would take any non-5xx JSON body as a token (a 429 problem document has no
    # "error" field): stop it before it parses one.
    if response.status_code != 200:
        raise _TokenEndpointRefused(response)
    return response


class _TokenEndpoint:
    """X's /2/oauth2/token through Authlib, with confidential-client HTTP Basic auth."""

    def __init__(
        self, http: PlatformHttp, clock: Clock, api_url: str, client_id: str, client_secret: str
    ) -> None:
        self._http = http
        self._clock = clock
        self.url = api_url + TOKEN_PATH
        self.client_id = client_id
        self.client_secret = client_secret

    @property
    def configured(self) -> bool:
        """Tell whether ghostpost has an X client id and secret."""
        return bool(self.client_id and self.client_secret)

    def session(self, **kwargs: Any) -> Any:
        """A new Authlib OAuth2Session for this client; the caller closes it."""
        if not self.configured:
            raise PermanentError(NOT_CONFIGURED)
        oauth = OAuth2Session(
            self.client_id,
            self.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            **kwargs,
        )
        self._http.oauth_session(oauth)
        oauth.register_compliance_hook("access_token_response", _refuse_unless_ok)
        oauth.register_compliance_hook("refresh_token_response", _refuse_unless_ok)
        return oauth

    def call(self, request: Callable[[], Any], *, refused: str) -> dict[str, Any]:
        """Run one token request; map failures, prefixing a 4xx refusal with `refused`."""
        try:
            token = request()
        except _TokenEndpointRefused as exc:
            response = exc.response
            status = response.status_code
            if status in RETRYABLE_STATUSES or status >= 500:
                raise self._http.failure(response) from None
            if status == 401:
                # X answers 401 unauthorized_client when *ghostpost's* client id/secret is
                # wrong: a configuration problem, not the account's.
                raise PermanentError(
                    f"X rejected ghostpost's client credentials (check x_client_id and "
                    f"x_client_secret): {error_text(response)}"
                ) from None
            raise PermanentError(f"{refused} ({error_text(response)})") from None
        except requests.Timeout:
            raise RetryableError(
                f"timed out after {self._http.timeout:g} s talking to X's token endpoint"
            ) from None
        except requests.ConnectionError:
            raise RetryableError("could not reach X's token endpoint") from None
        except OAuthError as exc:
            raise PermanentError(f"{refused} ({exc.error})") from None
        except ValueError:
            raise RetryableError("X's token endpoint sent an unreadable answer") from None
        if not isinstance(token, Mapping) or not isinstance(token.get("access_token"), str):
            raise PermanentError("X's token endpoint answered without an access token")
        return dict(token)

    def stored(self, token: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        """The credentials to seal for a token response (expiry by our clock, not Authlib's)."""
        try:
            lifetime = int(token.get("expires_in", ACCESS_TOKEN_SECONDS))
        except (TypeError, ValueError):
            lifetime = ACCESS_TOKEN_SECONDS
        return {
            **previous,
            "access_token": token["access_token"],
            # X always rotates, but a response without one means the old one still stands.
            "refresh_token": token.get("refresh_token") or previous.get("refresh_token"),
            "expires_at": int(self._clock.now().timestamp()) + lifetime,
            "scope": token.get("scope") or previous.get("scope") or "",
        }


# --------------------------------------------------------------------------------------------
# Connecting an account
# --------------------------------------------------------------------------------------------


class XConnector:
    """Connects an X account: authorization code with PKCE (S256), then who the user is."""

    def __init__(
        self,
        http: PlatformHttp,
        *,
        api_url: str,
        authorize_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
    ) -> None:
        # X's rate-limit resets are epoch seconds: judged against the clock the service runs on.
        self._http = http.with_clock(clock)
        self._api_url = api_url.rstrip("/")
        self._authorize_url = authorize_url
        self._clock = clock
        self._tokens = _TokenEndpoint(self._http, clock, self._api_url, client_id, client_secret)

    def start(self, redirect_uri: str) -> dict[str, str]:
        """Build X's consent URL; return it with the state and PKCE verifier to keep."""
        code_verifier = generate_token(48)
        with self._tokens.session(
            scope=SCOPES, redirect_uri=redirect_uri, code_challenge_method="S256"
        ) as oauth:
            url, state = oauth.create_authorization_url(
                self._authorize_url, code_verifier=code_verifier
            )
        return {
            "authorize_url": str(url),
            "state": str(state),
            "code_verifier": code_verifier,
            "redirect_uri": redirect_uri,
        }

    def finish(self, started: dict[str, str], code: str) -> Connection:
        """Exchange the code (the caller has checked the state) and identify the account."""
        redirect_uri = started["redirect_uri"]
        with self._tokens.session(
            scope=SCOPES, redirect_uri=redirect_uri, code_challenge_method="S256"
        ) as oauth:
            token = self._tokens.call(
                lambda: oauth.fetch_token(
                    self._tokens.url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=started["code_verifier"],
                    timeout=self._http.timeout,
                ),
                refused="X did not accept the authorization; start connecting again",
            )
        credentials = self._tokens.stored(token, {})
        granted = set(str(credentials["scope"]).split())
        if "tweet.write" not in granted:
            raise PermanentError("X did not grant ghostpost permission to post (tweet.write)")
        if not credentials["refresh_token"]:
            # Without offline.access the account would silently stop working in two hours.
            raise PermanentError("X granted no refresh token (offline.access); connect again")
        response = self._http.request(
            "GET", f"{self._api_url}/2/users/me", expect=(200,), headers=_bearer(credentials)
        )
        data = _json_object(response).get("data")
        if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
            raise PermanentError("X did not say which account was connected")
        return Connection(
            platform="x",
            handle=str(data["username"]),
            remote_id=str(data["id"]),
            base_url=None,
            credentials=credentials,
            max_chars=None,
            url_length=None,
        )


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------


def reply_fields(reply_to: ReplyTarget | None) -> dict[str, Any]:
    """The reply half of POST /2/tweets: X needs only the parent (it answers 403 "deleted or
    not visible to you" when the parent is not there)."""
    return {} if reply_to is None else {"reply": {"in_reply_to_tweet_id": reply_to.parent_id}}


class XPublisher:
    """Posts tweets exactly once per idempotency key, refreshing tokens as X requires."""

    platform = "x"

    def __init__(
        self,
        credentials: CredentialStore,
        attempts: AttemptStore,
        http: PlatformHttp,
        clock: Clock,
        *,
        api_url: str,
        client_id: str,
        client_secret: str,
    ) -> None:
        self._credentials = credentials
        self._attempts = attempts
        # X's rate-limit resets are epoch seconds: judged against the clock the service runs on.
        self._http = http.with_clock(clock)
        self._clock = clock
        self._api_url = api_url.rstrip("/")
        self._tokens = _TokenEndpoint(self._http, clock, self._api_url, client_id, client_secret)
        #: Called between the last image upload and POST /2/tweets (crash tests only).
        self.after_media_upload: UploadHook | None = None

    def _receipt(self, account: Account, tweet_id: str) -> Receipt:
        return Receipt(
            platform_post_id=tweet_id, url=f"https://x.com/{account.handle}/status/{tweet_id}"
        )

    def publish(
        self,
        account: Account,
        text: str,
        *,
        idempotency_key: str,
        options: PostOptions = PLAIN,
        media: Sequence[MediaItem] = (),
        reply_to: ReplyTarget | None = None,
    ) -> Receipt:
        """Post the tweet with its images (uploaded first, alt text as media metadata), as a
        reply to `reply_to` when given, or return the one already posted under this key."""
        check_media(self.platform, media, MEDIA_LIMITS)
        refused = refusals(self.platform, options)
        if refused:
            # The service refuses these before storing; a post that got here anyway must not
            # go out without what it asked for.
            raise PermanentError(f"{self.platform} cannot honour {', '.join(sorted(refused))}")
        if account.platform != self.platform:
            raise PermanentError(f"account @{account.handle} is not an X account")
        fingerprint = text_fingerprint(text, alt_texts=[m.alt_text for m in media])
        earlier = self._attempts.find(idempotency_key)
        if earlier is None:
            # Committed before X is called: after a crash or a lost response, the retry knows
            # a tweet may exist and searches for it instead of sending blindly.
            self._attempts.record(account, idempotency_key, fingerprint)
        else:
            if earlier.account_id != account.id or earlier.ref != fingerprint:
                raise PermanentError("this idempotency key was already used for a different post")
            try:
                found = self.lookup(account, idempotency_key=idempotency_key)
            except PermanentError:
                # Reading the timeline can be outside the account's API tier. Sending is then
                # still safe: X refuses identical text as a duplicate.
                found = None
            if found is not None:
                return found
        tweet: dict[str, Any] = {"text": text, **reply_fields(reply_to)}
        if media:
            # A retry after a crash here uploads again; the earlier uploads are never attached
            # and expire (X keeps unused media for 24 hours).
            tweet["media"] = {"media_ids": self._upload_media(account, media)}
            if self.after_media_upload is not None:
                self.after_media_upload()
        response = self._authorized(account, "POST", "/2/tweets", expect=(201, 403), json=tweet)
        if response.status_code == 403:
            return self._after_refusal(
                account, response, idempotency_key, retry=earlier is not None
            )
        data = _json_object(response).get("data")
        if not isinstance(data, dict) or not data.get("id"):
            # X took the tweet but its id is unreadable; the retry's lookup will find it.
            raise RetryableError("X accepted the post but its answer could not be read")
        tweet_id = str(data["id"])
        self._claim(account, tweet_id, idempotency_key)
        return self._receipt(account, tweet_id)

    def _upload_media(self, account: Account, media: Sequence[MediaItem]) -> list[str]:
        """POST /2/media/upload each image (tweet_image), then its alt text with
        POST /2/media/metadata; return the media ids in order."""
        ids: list[str] = []
        for position, item in enumerate(media, start=1):
            response = self._authorized(
                account,
                "POST",
                "/2/media/upload",
                expect=(200, 201),
                files={"media": (file_name(item, position), item.data, item.mime_type)},
                data={"media_category": "tweet_image"},
            )
            data = _json_object(response).get("data")
            media_id = data.get("id") if isinstance(data, dict) else None
            if not isinstance(media_id, str) or not media_id:
                raise RetryableError("X accepted an image but its answer could not be read")
            if item.alt_text:
                self._authorized(
                    account,
                    "POST",
                    "/2/media/metadata",
                    json={"id": media_id, "metadata": {"alt_text": {"text": item.alt_text}}},
                )
            ids.append(media_id)
        return ids

    def _after_refusal(
        self, account: Account, response: requests.Response, idempotency_key: str, *, retry: bool
    ) -> Receipt:
        """A 403: the duplicate of a tweet this key already sent is that tweet; else refused."""
        detail = _json_object(response).get("detail")
        if not (isinstance(detail, str) and "duplicate content" in detail):
            raise self._http.failure(response)
        if not retry:
            # Nothing was sent under this key before this call, so the earlier tweet is another
            # post's (or one typed on x.com): never report it as this one.
            raise PermanentError(DUPLICATE_REFUSAL)
        try:
            found = self.lookup(account, idempotency_key=idempotency_key)
        except PermanentError as exc:
            raise PermanentError(
                f"{DUPLICATE_REFUSAL}; its timeline cannot be read: {exc}"
            ) from None
        if found is None:
            raise PermanentError(DUPLICATE_REFUSAL)
        return found

    def _claim(self, account: Account, tweet_id: str, idempotency_key: str) -> bool:
        """Tie a tweet to the key that sent it; False if another key holds it already."""
        # Matching is by text, and two posts may share a text: the claim (first wins, kept in
        # the attempt store under a key no post uses) stops one key taking another's tweet.
        claim = self._attempts.record(account, f"{CLAIM_PREFIX}{tweet_id}", idempotency_key)
        return claim.ref == idempotency_key

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        """Find the tweet sent under this key in the account's recent timeline, or None."""
        # A tweet with the sent text counts only if no other key has claimed it; an unclaimed
        # one (the response was lost before publish() could claim it) is claimed here.
        attempt = self._attempts.find(idempotency_key)
        if attempt is None:
            return None  # nothing was ever sent under this key
        if attempt.account_id != account.id:
            raise PermanentError(
                f"idempotency key {idempotency_key!r} belongs to another account's post"
            )
        if not account.remote_id:
            raise PermanentError(
                f"X account @{account.handle} has no X user id; a manager reconnects it"
            )
        params = {
            "max_results": "100",
            "start_time": _rfc3339(attempt.created_at - LOOKUP_SLACK),
            "tweet.fields": "created_at,text,attachments",
            "expansions": "attachments.media_keys",
            "media.fields": "alt_text",
        }
        for _ in range(LOOKUP_PAGES):
            response = self._authorized(
                account, "GET", f"/2/users/{account.remote_id}/tweets", params=params
            )
            body = _json_object(response)
            tweets = body.get("data")
            alt_by_key = _alt_texts(body)
            for tweet in tweets if isinstance(tweets, list) else []:
                if not isinstance(tweet, dict):
                    continue
                text, tweet_id = tweet.get("text"), tweet.get("id")
                alts = _tweet_alts(tweet, alt_by_key)
                if (
                    isinstance(text, str)
                    and tweet_id
                    and text_fingerprint(text, from_x=True, alt_texts=alts) == attempt.ref
                    and self._claim(account, str(tweet_id), idempotency_key)
                ):
                    return self._receipt(account, str(tweet_id))
            meta = body.get("meta")
            next_token = meta.get("next_token") if isinstance(meta, dict) else None
            if not next_token:
                break
            params["pagination_token"] = str(next_token)
        return None

    def delete(self, account: Account, platform_post_id: str) -> bool:
        """DELETE /2/tweets/:id; a tweet X no longer has (404, or `deleted: false`) is
        already gone."""
        if account.platform != self.platform:
            raise PermanentError(f"account @{account.handle} is not an X account")
        if not (platform_post_id.isascii() and platform_post_id.isdigit()):
            raise PermanentError(f"{platform_post_id!r} is not a tweet id")
        response = self._authorized(
            account, "DELETE", f"/2/tweets/{platform_post_id}", expect=(200, 404)
        )
        if response.status_code == 404:
            return False
        data = _json_object(response).get("data")
        return isinstance(data, dict) and data.get("deleted") is True

    # ---- tokens --------------------------------------------------------------------------

    def _authorized(
        self,
        account: Account,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """Call the API as the account: refresh an expiring token first, and once on a 401."""
        credentials = self._credentials.load(account)
        expires_at = credentials.get("expires_at")
        if isinstance(expires_at, (int, float)) and (
            expires_at - self._clock.now().timestamp() <= REFRESH_MARGIN_SECONDS
        ):
            credentials = self._refresh(account, credentials)
        url = self._api_url + path
        for refreshed in (False, True):
            response = self._http.request(
                method, url, expect=(*expect, 401), headers=_bearer(credentials), **kwargs
            )
            if response.status_code != 401 or 401 in expect:
                return response
            if refreshed:
                break
            # X rejects the token before acting on the request, so resending is safe.
            credentials = self._refresh(account, credentials)
        raise PermanentError(
            f"X rejects the stored authorization of @{account.handle} even after a refresh; "
            "a manager reconnects the account on the Accounts page"
        )

    def _refresh(self, account: Account, credentials: dict[str, Any]) -> dict[str, Any]:
        """Trade the refresh token for new tokens and save them before anything uses them."""
        refresh_token = credentials.get("refresh_token")
        reconnect = (
            f"X no longer accepts the stored authorization of @{account.handle}; "
            "a manager reconnects the account on the Accounts page"
        )
        if not isinstance(refresh_token, str) or not refresh_token:
            raise PermanentError(reconnect)
        with self._tokens.session() as oauth:
            token = self._tokens.call(
                lambda: oauth.refresh_token(
                    self._tokens.url, refresh_token=refresh_token, timeout=self._http.timeout
                ),
                refused=reconnect,
            )
        renewed = self._tokens.stored(token, credentials)
        # X has just invalidated the old refresh token: the new one must be durable before it
        # is used, or a crash here would leave the account disconnected.
        self._credentials.save(account, renewed)
        return renewed


def _alt_texts(body: Mapping[str, Any]) -> dict[str, str]:
    """media_key -> alt text, from a timeline page's `includes.media`."""
    includes = body.get("includes")
    listed = includes.get("media") if isinstance(includes, dict) else None
    return {
        str(item["media_key"]): str(item.get("alt_text") or "")
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict) and item.get("media_key")
    }


def _tweet_alts(tweet: Mapping[str, Any], alt_by_key: Mapping[str, str]) -> list[str]:
    """The alt texts of a tweet's images in order ([] for a tweet without images)."""
    attachments = tweet.get("attachments")
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    return [alt_by_key.get(str(key), "") for key in (keys if isinstance(keys, list) else [])]


def from_container(container: Container) -> XPublisher:
    """Build the X publisher from the container's stores, clock and settings."""
    settings = container.settings
    return XPublisher(
        container.credentials,
        container.attempts,
        PlatformHttp(settings.platform_timeout_seconds, container.outbound),
        container.clock,
        api_url=settings.x_api_url,
        client_id=settings.x_client_id,
        client_secret=settings.x_client_secret,
    )
