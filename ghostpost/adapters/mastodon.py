"""The Mastodon adapter: connect an account (OAuth 2 + PKCE), publish, and reconcile after a crash.

Exactly-once rests on two levers. Mastodon keeps an `Idempotency-Key` for one hour per account,
so any retry within the hour returns the status already made. Past that, the attempt recorded
before the first send is the only memory: the account's recent statuses are listed and their
source text is compared with a fingerprint of the text that was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]

from ghostpost.adapters.base import (
    AttemptStore,
    Connection,
    CredentialStore,
    NotConnected,
    PermanentError,
    PlatformApp,
    PlatformApps,
    Receipt,
    RetryableError,
)
from ghostpost.adapters.http import PlatformHttp, error_text
from ghostpost.adapters.media import UploadHook, check_media, file_name
from ghostpost.clock import Clock
from ghostpost.domain.length import mastodon_mention_re
from ghostpost.domain.media_rules import IMAGE_RULES
from ghostpost.domain.model import Account, MediaItem, ReplyTarget
from ghostpost.domain.post_options import PLAIN, PostOptions, refusals

if TYPE_CHECKING:
    from ghostpost.bootstrap import Container

__all__ = [
    "SCOPES",
    "MastodonConnector",
    "MastodonPublisher",
    "from_container",
    "text_fingerprint",
]

PLATFORM = "mastodon"
#: read:statuses is needed by crash reconciliation: listing an account's statuses with a token
#: and reading a status's source both demand it (Api::V1::Statuses::SourcesController).
SCOPES = "read:accounts read:statuses write:statuses write:media"
APP_NAME = "ghostpost"
WEBSITE = "https://github.com/ghostpost"
#: Mastodon forgets an Idempotency-Key after 3600 s; past this age the key is not trusted and the
#: account's timeline is searched before sending again (10 minutes of margin for slow sends).
IDEMPOTENCY_TRUST = timedelta(minutes=50)
#: Statuses this much older than the recorded attempt are not candidates (clock skew margin).
LOOKUP_SLACK = timedelta(minutes=5)
LOOKUP_PAGE_SIZE = 40  # Mastodon's maximum for /api/v1/accounts/:id/statuses
LOOKUP_MAX_PAGES = 5

#: Mastodon 4.x: 4 attachments per status (`statuses.max_media_attachments`), images up to
#: 16 MB (MediaAttachment::IMAGE_LIMIT) of these types (the ones ghostpost sends).
#: What the platform takes with one post: the rules submissions were checked against.
MEDIA_LIMITS = IMAGE_RULES["mastodon"]
#: How often, and how far apart, a 202 upload is polled until Mastodon has processed it.
MEDIA_POLLS = 20
MEDIA_POLL_SECONDS = 0.5

# Ruby's String#strip set: Status#prepare_contents strips the text before it is stored.
_RUBY_STRIP = "\x00\t\n\x0b\x0c\r "


def text_fingerprint(text: str, descriptions: Sequence[str | None] = ()) -> str:
    """Return the attempt's ref: SHA-256 hex of `text` in a form Mastodon's storage preserves,
    and of the images' descriptions (alt texts) in order when the status has images.

    Mastodon does not store the text verbatim: Status#prepare_contents strips it, and
    ProcessMentionsService rewrites every resolvable mention to the account's canonical `acct`
    (`@Alice@home.example` becomes `@alice` on home.example). Both sides of the comparison are
    therefore reduced to stripped text with each mention as `@username`, lower-cased. A
    description is stripped too (MediaAttachment#prepare_description); none counts as "".
    A text-only post keeps the fingerprint it always had (attempts already stored match it).
    """
    stripped = text.strip(_RUBY_STRIP)
    canonical = mastodon_mention_re().sub(lambda match: "@" + match.group(2).lower(), stripped)
    for description in descriptions:
        # \x00 cannot survive in a stored text (it is stripped or refused), so it separates.
        canonical += "\x00" + (description or "").strip(_RUBY_STRIP)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # A 200 that is not JSON (a proxy's page) says nothing about whether the post exists:
        # retrying under the same key, or the lookup, settles it.
        raise RetryableError(f"{_host(response.url)} answered {what} with something not JSON")
    return body


def _json_list(response: requests.Response, what: str) -> list[Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        raise RetryableError(f"{_host(response.url)} answered {what} with something not a list")
    return body


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _receipt(status: Mapping[str, Any], host: str) -> Receipt:
    status_id = status.get("id")
    # `url` is the HTML page; `uri` (the ActivityPub id) is the fallback Mastodon itself uses.
    url = status.get("url") or status.get("uri")
    if not isinstance(status_id, str | int) or not isinstance(url, str):
        raise RetryableError(f"{host} returned a status without an id or url")
    return Receipt(platform_post_id=str(status_id), url=url)


def _scope_covers(granted: set[str], needed: str) -> bool:
    # Mastodon's top-level scopes include their children: `write` covers `write:statuses`.
    return needed in granted or needed.split(":", 1)[0] in granted


def status_body(text: str, options: PostOptions, media_ids: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON of POST /api/v1/statuses for `text` with `options` (defaults left out) and
    the uploaded images, in order."""
    body: dict[str, Any] = {"status": text, "visibility": options.visibility}
    if media_ids:
        body["media_ids"] = list(media_ids)
    if options.content_warning:
        body["spoiler_text"] = options.content_warning
    if options.sensitive:
        body["sensitive"] = True
    if options.language is not None:
        body["language"] = options.language
    return body


def reply_fields(reply_to: ReplyTarget | None) -> dict[str, Any]:
    """The reply half of POST /api/v1/statuses: Mastodon needs only the parent's id (the
    instance finds the conversation); it answers 404 when the parent does not exist."""
    return {} if reply_to is None else {"in_reply_to_id": reply_to.parent_id}


class MastodonPublisher:
    """Publishes to a Mastodon (or compatible) instance with the account's user token."""

    platform = PLATFORM

    def __init__(
        self, credentials: CredentialStore, attempts: AttemptStore, http: PlatformHttp, clock: Clock
    ) -> None:
        self._credentials = credentials
        self._attempts = attempts
        self._http = http
        self._clock = clock
        #: Called between the last image upload and the status creation (crash tests only).
        self.after_media_upload: UploadHook | None = None
        #: How the adapter waits between polls of a processing upload (tests pass a no-op).
        self.sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._http.session.close()

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
        """Create a status with exactly `text`, `options` (content warning, visibility,
        language, sensitive) and `media` (uploaded first, with their alt texts), as a reply to
        `reply_to` when given, or return the one made under this key."""
        check_media(self.platform, media, MEDIA_LIMITS)
        refused = refusals(self.platform, options)
        if refused:
            # The service refuses these before storing; a post that got here anyway must not
            # go out without what it asked for.
            raise PermanentError(f"{self.platform} cannot honour {', '.join(sorted(refused))}")
        base_url, token = self._connection(account)
        # Committed before the send: after a crash, this row is what lookup() searches from.
        attempt = self._attempts.record(
            account, idempotency_key, ref=text_fingerprint(text, [m.alt_text for m in media])
        )
        if self._clock.now() - attempt.created_at > IDEMPOTENCY_TRUST:
            # Mastodon may have forgotten the key; resending blindly could post twice.
            found = self.lookup(account, idempotency_key=idempotency_key)
            if found is not None:
                return found
        # After a crash between upload and status, the retry uploads again: the first uploads
        # stay orphans (Mastodon deletes unattached media), the status is made once, with images.
        media_ids = self._upload_media(account, token, base_url, media)
        if media_ids and self.after_media_upload is not None:
            self.after_media_upload()
        response = self._call(
            account,
            token,
            "POST",
            f"{base_url}/api/v1/statuses",
            json={**status_body(text, options, media_ids), **reply_fields(reply_to)},
            headers={"Idempotency-Key": idempotency_key},
        )
        return _receipt(_json_object(response, "the new status"), _host(base_url))

    def _upload_media(
        self, account: Account, token: str, base_url: str, media: Sequence[MediaItem]
    ) -> list[str]:
        """POST /api/v2/media for each image with its description; wait (bounded) for any the
        instance processes in the background (202), since a status refuses unprocessed media."""
        ids: list[str] = []
        for position, item in enumerate(media, start=1):
            response = self._call(
                account,
                token,
                "POST",
                f"{base_url}/api/v2/media",
                expect=(200, 202),
                files={"file": (file_name(item, position), item.data, item.mime_type)},
                data={"description": item.alt_text},
            )
            attachment = _json_object(response, "the uploaded image")
            media_id = attachment.get("id")
            if not isinstance(media_id, str | int):
                raise RetryableError(f"{_host(base_url)} returned an image without an id")
            if response.status_code == 202 or not attachment.get("url"):
                self._wait_processed(account, token, base_url, str(media_id))
            ids.append(str(media_id))
        return ids

    def _wait_processed(self, account: Account, token: str, base_url: str, media_id: str) -> None:
        url = f"{base_url}/api/v1/media/{quote(media_id, safe='')}"
        for _ in range(MEDIA_POLLS):
            self.sleep(MEDIA_POLL_SECONDS)
            response = self._call(account, token, "GET", url, expect=(200, 206))
            if response.status_code == 200 and _json_object(response, "an image").get("url"):
                return
        raise RetryableError(f"{_host(base_url)} is still processing an image; trying again later")

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        """Find the status sent under this key among the account's recent ones, or None."""
        attempt = self._attempts.find(idempotency_key)
        if attempt is None:
            return None  # nothing was ever sent under this key
        if attempt.account_id != account.id:
            # Sending now would post someone else's text to this account: refuse loudly.
            raise PermanentError(
                f"idempotency key {idempotency_key!r} belongs to another account's post"
            )
        base_url, token = self._connection(account)
        if not account.remote_id:
            raise NotConnected(f"mastodon account @{account.handle} has no remote id; reconnect it")
        host = _host(base_url)
        cutoff = attempt.created_at - LOOKUP_SLACK
        timeline = f"{base_url}/api/v1/accounts/{quote(account.remote_id, safe='')}/statuses"
        params: dict[str, str | int] = {"limit": LOOKUP_PAGE_SIZE}
        for _ in range(LOOKUP_MAX_PAGES):
            page = _json_list(
                self._call(account, token, "GET", timeline, params=params), "the timeline"
            )
            for status in page:
                if not isinstance(status, dict):
                    continue
                created_at = _parse_time(status.get("created_at"))
                if created_at is not None and created_at < cutoff:
                    return None  # newest first: everything after this is older still
                if status.get("reblog") is not None:
                    continue
                if self._source_matches(account, token, base_url, status, attempt.ref):
                    return _receipt(status, host)
            if len(page) < LOOKUP_PAGE_SIZE or not isinstance(page[-1], dict):
                return None
            params["max_id"] = str(page[-1].get("id", ""))
        # More than LOOKUP_MAX_PAGES pages since the attempt: give up rather than scan forever.
        return None

    def delete(self, account: Account, platform_post_id: str) -> bool:
        """DELETE /api/v1/statuses/:id; a 404 (gone already, or never this account's) is
        already gone."""
        base_url, token = self._connection(account)
        response = self._call(
            account,
            token,
            "DELETE",
            f"{base_url}/api/v1/statuses/{quote(platform_post_id, safe='')}",
            expect=(200, 404),
        )
        return response.status_code == 200

    def _source_matches(
        self, account: Account, token: str, base_url: str, status: dict[str, Any], ref: str
    ) -> bool:
        status_id = status.get("id")
        if not isinstance(status_id, str | int):
            return False
        response = self._call(
            account,
            token,
            "GET",
            f"{base_url}/api/v1/statuses/{quote(str(status_id), safe='')}/source",
            expect=(200, 404),
        )
        if response.status_code == 404:
            return False  # deleted since the listing
        source = _json_object(response, "a status source")
        text = source.get("text")
        attachments = status.get("media_attachments")
        descriptions = [
            str(a.get("description") or "")
            for a in (attachments if isinstance(attachments, list) else [])
            if isinstance(a, dict)
        ]
        return isinstance(text, str) and hmac.compare_digest(
            text_fingerprint(text, descriptions), ref
        )

    def _connection(self, account: Account) -> tuple[str, str]:
        if account.platform != PLATFORM:
            raise PermanentError(f"account @{account.handle} is not a Mastodon account")
        if not account.base_url:
            raise NotConnected(
                f"mastodon account @{account.handle} is not connected; "
                "a manager connects it on the Accounts page"
            )
        token = self._credentials.load(account).get("access_token")
        if not isinstance(token, str) or not token:
            raise NotConnected(
                f"mastodon account @{account.handle} has no access token; reconnect it"
            )
        return account.base_url.rstrip("/"), token

    def _call(
        self,
        account: Account,
        token: str,
        method: str,
        url: str,
        *,
        expect: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        response = self._http.request(
            method,
            url,
            expect=(*expect, 401, 403),
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            **kwargs,
        )
        if response.status_code == 401 and 401 not in expect:
            raise PermanentError(
                f"{_host(url)} rejected the access token of @{account.handle} "
                f"({error_text(response)}): it was revoked or has expired. "
                "A manager must reconnect the account on the Accounts page."
            )
        if response.status_code == 403 and 403 not in expect:
            raise PermanentError(
                f"{_host(url)} refused @{account.handle}'s token for this action "
                f"({error_text(response)}). A manager must reconnect the account to grant "
                f"the scopes {SCOPES!r}."
            )
        return response


def from_container(container: Container) -> MastodonPublisher:
    """Build the publisher from the composition root (settings.adapters entry point)."""
    return MastodonPublisher(
        container.credentials,
        container.attempts,
        PlatformHttp(container.settings.platform_timeout_seconds, container.outbound),
        container.clock,
    )


class MastodonConnector:
    """Connects an account: registers ghostpost's app per instance, then OAuth with PKCE (S256).

    One app is kept per instance (keyed by base URL only). If ghostpost's redirect URI changes,
    start() refuses with a clear error: the stored app cannot authorize the new URI, and Mastodon
    offers no API to edit an app (the `platform_apps` row must be removed to register anew).
    """

    def __init__(self, http: PlatformHttp, apps: PlatformApps, *, website: str = WEBSITE) -> None:
        self._http = http
        self._apps = apps
        self._website = website

    def start(self, base_url: str, redirect_uri: str) -> dict[str, str]:
        """Return the authorize URL and what finish() needs (kept in the user's session)."""
        app = self._app(base_url, redirect_uri)
        code_verifier = generate_token(48)
        with self._oauth(app) as oauth:
            authorize_url, state = oauth.create_authorization_url(
                f"{base_url}/oauth/authorize", code_verifier=code_verifier
            )
        # No client secret in here: this dict ends up in a (signed, not encrypted) cookie.
        return {
            "authorize_url": authorize_url,
            "state": state,
            "code_verifier": code_verifier,
            "base_url": base_url,
            "redirect_uri": redirect_uri,
        }

    def finish(self, started: dict[str, str], code: str, *, state: str | None = None) -> Connection:
        """Exchange the code for a token and read who the account is and the instance's limits.

        Pass the callback's `state` to have it checked against the one start() issued.
        """
        base_url = started["base_url"]
        host = _host(base_url)
        if state is not None and not hmac.compare_digest(state, started["state"]):
            raise PermanentError(
                f"the answer from {host} does not belong to this connection attempt; "
                "start connecting again"
            )
        app = self._apps.find(PLATFORM, base_url)
        if app is None:
            raise PermanentError(f"ghostpost has no app on {host}; start connecting again")
        token = self._exchange(app, started, code)
        auth = {"Authorization": f"Bearer {token}"}
        me = _json_object(
            self._http.request(
                "GET", f"{base_url}/api/v1/accounts/verify_credentials", headers=auth
            ),
            "verify_credentials",
        )
        remote_id, username = me.get("id"), me.get("username")
        if not isinstance(remote_id, str | int) or not isinstance(username, str) or not username:
            raise PermanentError(f"{host} did not say which account was authorized")
        max_chars, url_length = self._limits(base_url)
        return Connection(
            platform=PLATFORM,
            handle=f"{username}@{host}",
            remote_id=str(remote_id),
            base_url=base_url,
            credentials={"access_token": token},
            max_chars=max_chars,
            url_length=url_length,
        )

    def _app(self, base_url: str, redirect_uri: str) -> PlatformApp:
        app = self._apps.find(PLATFORM, base_url)
        if app is not None:
            if app.redirect_uri != redirect_uri:
                raise PermanentError(
                    f"ghostpost's app on {_host(base_url)} was registered for the redirect URI "
                    f"{app.redirect_uri!r}, not {redirect_uri!r}; an administrator must remove "
                    "the stored app so that it is registered again"
                )
            if set(app.scopes.split()) >= set(SCOPES.split()):
                return app
            # Registered by an older ghostpost with fewer scopes (before `write:media`): the
            # instance would refuse to authorize the scopes it lacks, and Mastodon offers no
            # way to edit an app, so a new one takes its place. Tokens already issued under
            # the old app stay valid until their accounts reconnect.
            return self._apps.replace(self._register(base_url, redirect_uri))
        # If another request registered one first, its app wins and this one is left unused.
        return self._apps.add(self._register(base_url, redirect_uri))

    def _register(self, base_url: str, redirect_uri: str) -> PlatformApp:
        response = self._http.request(
            "POST",
            f"{base_url}/api/v1/apps",
            data={
                "client_name": APP_NAME,
                "redirect_uris": redirect_uri,
                "scopes": SCOPES,
                "website": self._website,
            },
        )
        body = _json_object(response, "the app registration")
        client_id, client_secret = body.get("client_id"), body.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise PermanentError(f"{_host(base_url)} registered no usable OAuth app")
        return PlatformApp(PLATFORM, base_url, client_id, client_secret, redirect_uri, SCOPES)

    def _oauth(self, app: PlatformApp) -> OAuth2Session:
        oauth = OAuth2Session(
            client_id=app.client_id,
            client_secret=app.client_secret,
            # What Mastodon's docs show for /oauth/token; Doorkeeper also accepts Basic.
            token_endpoint_auth_method="client_secret_post",
            scope=SCOPES,
            redirect_uri=app.redirect_uri,
            code_challenge_method="S256",
            default_timeout=self._http.timeout,
        )
        # The token request obeys the same outbound policy as every other call.
        self._http.oauth_session(oauth)
        return oauth

    def _exchange(self, app: PlatformApp, started: Mapping[str, str], code: str) -> str:
        host = _host(app.base_url)
        with self._oauth(app) as oauth:
            try:
                token = oauth.fetch_token(
                    f"{app.base_url}/oauth/token",
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=started["code_verifier"],
                    redirect_uri=started["redirect_uri"],
                )
            except OAuthError as exc:
                detail = exc.description or exc.error
                raise PermanentError(
                    f"{host} refused the authorization ({exc.error}: {detail}); "
                    "start connecting again"
                ) from None
            except requests.HTTPError as exc:
                if exc.response is None:
                    raise RetryableError(f"{host} failed to issue a token") from None
                raise self._http.failure(exc.response) from None
            except requests.Timeout:
                raise RetryableError(
                    f"timed out after {self._http.timeout:g} s talking to {host}"
                ) from None
            except requests.ConnectionError:
                raise RetryableError(f"could not reach {host}") from None
            except ValueError:
                raise PermanentError(f"{host} answered the token request with no token") from None
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise PermanentError(f"{host} issued no access token")
        if str(token.get("token_type", "Bearer")).lower() != "bearer":
            raise PermanentError(f"{host} issued a {token.get('token_type')!r} token, not Bearer")
        granted = set(str(token.get("scope") or SCOPES).split())
        missing = [scope for scope in SCOPES.split() if not _scope_covers(granted, scope)]
        if missing:
            raise PermanentError(
                f"{host} granted only {' '.join(sorted(granted))!r}; ghostpost needs "
                f"{' '.join(missing)!r} too"
            )
        return access_token

    def _limits(self, base_url: str) -> tuple[int | None, int | None]:
        response = self._http.request("GET", f"{base_url}/api/v2/instance", expect=(200, 404))
        if response.status_code == 404:
            # Before Mastodon 4.0 only v1 exists; it carries the same configuration block.
            response = self._http.request("GET", f"{base_url}/api/v1/instance")
        instance = _json_object(response, "the instance description")
        configuration = instance.get("configuration")
        statuses = configuration.get("statuses") if isinstance(configuration, dict) else None
        statuses = statuses if isinstance(statuses, dict) else {}
        # Pleroma/Akkoma report the limit as v1 `max_toot_chars` instead.
        max_chars = _positive_int(statuses.get("max_characters", instance.get("max_toot_chars")))
        url_length = _positive_int(statuses.get("characters_reserved_per_url"), allow_zero=True)
        return max_chars, url_length


def _positive_int(value: Any, *, allow_zero: bool = False) -> int | None:
    # None means "not reported": the platform default (500, 23) then applies.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value > 0 or (allow_zero and value == 0) else None
