"""Bluesky over raw XRPC: app-password sessions, createRecord with facets, exactly-once by rkey.

Bluesky has no idempotency key, but a post's record key (a TID) may be chosen by the client.
ghostpost picks it *before* sending and commits it as the post's attempt; a second create under
the same rkey cannot make a second post (the PDS refuses it), and after a crash
`com.atproto.repo.getRecord` at that rkey tells whether the post exists. Never resend blindly.

Links, mentions and hashtags are not parsed from text by Bluesky: they are facets with UTF-8
byte offsets (end exclusive), computed here from the exact text that is sent, exactly as the
official app's library (`@atproto/api` RichText.detectFacets) computes them.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import regex  # type: ignore[import-untyped]

from ghostpost.adapters.base import (
    AttemptStore,
    Connection,
    CredentialStore,
    PermanentError,
    Receipt,
    RetryableError,
)
from ghostpost.adapters.http import PlatformHttp, error_text, utc_now_iso
from ghostpost.adapters.media import UploadHook, check_media
from ghostpost.clock import Clock
from ghostpost.domain.media_rules import IMAGE_RULES
from ghostpost.domain.model import Account, MediaItem, ReplyTarget
from ghostpost.domain.post_options import PLAIN, PostOptions, refusals
from ghostpost.domain.richtext import JS_SPACE, detect_facets

if TYPE_CHECKING:
    from ghostpost.bootstrap import Container

POST_COLLECTION = "app.bsky.feed.post"
#: App passwords look like `abcd-efgh-ijkl-mnop`; the account password must never be stored.
APP_PASSWORD = regex.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$")
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
#: app.bsky.embed.images: at most 4 images, each blob `image/*` of at most 1,000,000 bytes
#: (the PDS checks both against the lexicon when the post references the blobs).
#: What the platform takes with one post: the rules submissions were checked against.
MEDIA_LIMITS = IMAGE_RULES["bluesky"]
_AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired"})

#: The lexicon's `uri` format (@atproto/syntax isValidUri), which the PDS checks in every link
#: facet. The app's detection can make links that fail it ("httpbin.org" is kept without a
#: scheme); such a facet would make the PDS refuse the whole post, so it is left out.
_LEXICON_URI = re.compile(rf"[A-Za-z0-9_]+:(?://)?[^/{JS_SPACE}][^{JS_SPACE}]*\Z")


_tid_lock = threading.Lock()
_last_tid_microseconds = 0


def new_tid(now_microseconds: int) -> str:
    """A record key: 13 base32-sortable chars of (microseconds << 10 | random clock id).

    Strictly increasing within the process, so an account's posts sort in the order sent even
    when two are stamped in the same microsecond.
    """
    global _last_tid_microseconds
    with _tid_lock:
        micros = max(now_microseconds, _last_tid_microseconds + 1)
        _last_tid_microseconds = micros
    value = (micros << 10) | secrets.randbelow(1024)
    value &= (1 << 63) - 1  # the top bit stays 0, as the TID syntax requires
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def facets(text: str, resolve_handle: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """The facets of `text` as `@atproto/api` detects them, at UTF-8 byte offsets, in text order.

    Detection is the domain's exact port (ghostpost.domain.richtext), the same the policy engine
    uses to decide whether the tag is there. Two things happen after it, as in the official app:
    a mention whose handle does not resolve to a DID stays plain text, and a link the PDS would
    refuse as a URI is dropped rather than failing the post.
    """
    records: list[dict[str, Any]] = []
    for facet in detect_facets(text):
        feature: dict[str, Any]
        if facet.kind == "mention":
            did = resolve_handle(facet.value.lower())
            if did is None:
                continue
            feature = {"$type": "app.bsky.richtext.facet#mention", "did": did}
        elif facet.kind == "link":
            if not _LEXICON_URI.match(facet.value):
                continue
            feature = {"$type": "app.bsky.richtext.facet#link", "uri": facet.value}
        else:
            feature = {"$type": "app.bsky.richtext.facet#tag", "tag": facet.value}
        index = {"byteStart": facet.byte_start, "byteEnd": facet.byte_end}
        records.append({"index": index, "features": [feature]})
    return records


@dataclass
class _Session:
    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str


class BlueskyPublisher:
    """Publishes `app.bsky.feed.post` records to the account's PDS."""

    platform = "bluesky"

    def __init__(
        self,
        credentials: CredentialStore,
        attempts: AttemptStore,
        http: PlatformHttp,
        clock: Clock,
    ) -> None:
        self._credentials = credentials
        self._attempts = attempts
        self._http = http
        self._clock = clock
        #: Called between the last blob upload and createRecord (crash tests only).
        self.after_media_upload: UploadHook | None = None

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
        """Create the post under an rkey chosen (and committed) before sending; a language
        goes out as the record's `langs`, images (uploaded first as blobs) as its embed, a
        reply as its `reply` (root and parent read from the PDS)."""
        check_media(self.platform, media, MEDIA_LIMITS)
        refused = refusals(self.platform, options)
        if refused:
            # The service refuses these before storing; a post that got here anyway must not
            # go out without what it asked for.
            raise PermanentError(f"{self.platform} cannot honour {', '.join(sorted(refused))}")
        pds = self._pds(account)
        attempt = self._attempts.find(idempotency_key)
        if attempt is not None:
            # A retry or a crash: the rkey may already hold the post.
            existing = self._get(account, pds, attempt.ref)
            if existing is not None:
                return existing
        else:
            now = self._clock.now()
            tid = new_tid(int(now.timestamp() * 1_000_000))
            attempt = self._attempts.record(account, idempotency_key, tid)
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": utc_now_iso(self._clock.now()),
        }
        found = facets(text, lambda handle: self._resolve(pds, handle))
        if found:
            record["facets"] = found
        if options.language is not None:
            record["langs"] = [options.language]
        if reply_to is not None:
            record["reply"] = self._reply_refs(account, pds, reply_to)
        if media:
            # The record and its embed are created in one write: a post at this rkey always
            # has its images. Blobs uploaded by a run that died before it are never referenced
            # and the PDS drops them.
            record["embed"] = self._embed(account, pds, media)
            if self.after_media_upload is not None:
                self.after_media_upload()
        body = {
            "repo": self._did(account),
            "collection": POST_COLLECTION,
            "rkey": attempt.ref,
            "validate": True,
            "record": record,
        }
        response = self._authed(account, "POST", f"{pds}/xrpc/com.atproto.repo.createRecord", body)
        if response.status_code == 200:
            return self._receipt(account, attempt.ref)
        error = self._error_name(response)
        if response.status_code >= 500 or error == "InvalidSwap":
            # Also what a create at an rkey that is already taken looks like: ask before retrying.
            existing = self._get(account, pds, attempt.ref)
            if existing is not None:
                return existing
        raise self._http.failure(response)

    def lookup(self, account: Account, *, idempotency_key: str) -> Receipt | None:
        """Find the post by the rkey recorded before sending; None if it was never created."""
        attempt = self._attempts.find(idempotency_key)
        if attempt is None:
            return None
        return self._get(account, self._pds(account), attempt.ref)

    def delete(self, account: Account, platform_post_id: str) -> bool:
        """com.atproto.repo.deleteRecord of the post's rkey; a record not there is already
        gone (deleteRecord itself answers the same for both, so the record is read first)."""
        pds = self._pds(account)
        prefix = f"at://{self._did(account)}/{POST_COLLECTION}/"
        rkey = platform_post_id.removeprefix(prefix)
        if rkey == platform_post_id or not rkey or "/" in rkey:
            raise PermanentError(f"{platform_post_id!r} is not a post of @{account.handle}")
        if self._get(account, pds, rkey) is None:
            return False
        body = {"repo": self._did(account), "collection": POST_COLLECTION, "rkey": rkey}
        response = self._authed(account, "POST", f"{pds}/xrpc/com.atproto.repo.deleteRecord", body)
        if response.status_code != 200:
            raise self._http.failure(response)
        return True

    def _embed(self, account: Account, pds: str, media: Sequence[MediaItem]) -> dict[str, Any]:
        """Upload each image (com.atproto.repo.uploadBlob) and return the images embed."""
        images = []
        for item in media:
            response = self._authed(
                account,
                "POST",
                f"{pds}/xrpc/com.atproto.repo.uploadBlob",
                None,
                data=item.data,
                content_type=item.mime_type,
            )
            if response.status_code != 200:
                raise self._http.failure(response)
            try:
                blob = response.json().get("blob")
            except (ValueError, AttributeError):
                blob = None
            if not isinstance(blob, dict) or blob.get("$type") != "blob":
                raise PermanentError("the PDS answered uploadBlob without a blob")
            images.append(
                {
                    "image": blob,
                    "alt": item.alt_text,
                    "aspectRatio": {"width": item.width, "height": item.height},
                }
            )
        return {"$type": "app.bsky.embed.images", "images": images}

    # -- helpers ---------------------------------------------------------------------------

    def _pds(self, account: Account) -> str:
        if not account.base_url:
            raise PermanentError(f"Bluesky account @{account.handle} has no PDS; reconnect it")
        return account.base_url

    def _did(self, account: Account) -> str:
        if not account.remote_id:
            raise PermanentError(f"Bluesky account @{account.handle} has no DID; reconnect it")
        return account.remote_id

    def _receipt(self, account: Account, rkey: str) -> Receipt:
        did = self._did(account)
        return Receipt(
            platform_post_id=f"at://{did}/{POST_COLLECTION}/{rkey}",
            url=f"https://bsky.app/profile/{account.handle}/post/{rkey}",
        )

    def _get(self, account: Account, pds: str, rkey: str) -> Receipt | None:
        response = self._http.request(
            "GET",
            f"{pds}/xrpc/com.atproto.repo.getRecord",
            params={"repo": self._did(account), "collection": POST_COLLECTION, "rkey": rkey},
            expect=(200, 400, 404),
        )
        if response.status_code == 200:
            return self._receipt(account, rkey)
        if self._error_name(response) in ("RecordNotFound", "") or response.status_code == 404:
            return None
        raise self._http.failure(response)

    def _reply_refs(self, account: Account, pds: str, reply_to: ReplyTarget) -> dict[str, Any]:
        """`reply: {root, parent}` as strong refs (uri + cid), read from the PDS: the parent's
        record names its conversation's root when it is itself a reply (that root wins over
        `reply_to.root_id`, which ghostpost can only know for its own posts)."""
        parent = self._strong_ref(pds, reply_to.parent_id)
        reply = parent["value"].get("reply")
        root_ref = reply.get("root") if isinstance(reply, dict) else None
        if isinstance(root_ref, dict) and {"uri", "cid"} <= set(root_ref):
            root = {"uri": root_ref["uri"], "cid": root_ref["cid"]}
        elif reply_to.root_id != reply_to.parent_id:
            found = self._strong_ref(pds, reply_to.root_id)
            root = {"uri": found["uri"], "cid": found["cid"]}
        else:
            root = {"uri": parent["uri"], "cid": parent["cid"]}
        return {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}

    def _strong_ref(self, pds: str, uri: str) -> dict[str, Any]:
        """getRecord of an `at://did/app.bsky.feed.post/rkey` post: its uri, cid and value;
        a post that is not there is a permanent failure (a reply to nothing)."""
        parts = uri.removeprefix("at://").split("/")
        if not uri.startswith("at://") or len(parts) != 3 or parts[1] != POST_COLLECTION:
            raise PermanentError(f"{uri!r} is not a Bluesky post uri")
        response = self._http.request(
            "GET",
            f"{pds}/xrpc/com.atproto.repo.getRecord",
            params={"repo": parts[0], "collection": parts[1], "rkey": parts[2]},
            expect=(200, 400, 404),
        )
        if response.status_code != 200:
            if response.status_code == 404 or self._error_name(response) == "RecordNotFound":
                raise PermanentError(f"the post answered does not exist: {uri}")
            raise self._http.failure(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("cid"), str):
            raise RetryableError(f"the PDS answered getRecord for {uri} without a cid")
        value = body.get("value") if isinstance(body.get("value"), dict) else {}
        return {"uri": str(body.get("uri") or uri), "cid": body["cid"], "value": value}

    def _resolve(self, pds: str, handle: str) -> str | None:
        response = self._http.request(
            "GET",
            f"{pds}/xrpc/com.atproto.identity.resolveHandle",
            params={"handle": handle},
            expect=(200, 400, 404),
        )
        if response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        did = body.get("did") if isinstance(body, dict) else None
        return did if isinstance(did, str) else None

    @staticmethod
    def _error_name(response: Any) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        return str(body.get("error", "")) if isinstance(body, dict) else ""

    def _authed(
        self,
        account: Account,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        *,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Call with the stored session (a JSON `body`, or raw `data` of `content_type`); on
        an expired or invalid session, renew it once."""
        extra = {"Content-Type": content_type} if content_type else {}
        session = self._session(account)
        response = self._http.request(
            method,
            url,
            json=body,
            data=data,
            headers={**_bearer(session.access_jwt), **extra},
            expect=_ANY_STATUS,
        )
        if response.status_code in (400, 401) and self._error_name(response) in _AUTH_ERRORS:
            session = self._renew(account, session)
            response = self._http.request(
                method,
                url,
                json=body,
                data=data,
                headers={**_bearer(session.access_jwt), **extra},
                expect=_ANY_STATUS,
            )
        return response

    def _session(self, account: Account) -> _Session:
        stored = self._credentials.load(account)
        return _Session(
            did=str(stored.get("did") or account.remote_id or ""),
            handle=str(stored.get("handle") or account.handle),
            access_jwt=str(stored.get("access_jwt", "")),
            refresh_jwt=str(stored.get("refresh_jwt", "")),
        )

    def _renew(self, account: Account, session: _Session) -> _Session:
        """refreshSession, else a new session from the app password; stored before use."""
        pds = self._pds(account)
        stored = self._credentials.load(account)
        response = self._http.request(
            "POST",
            f"{pds}/xrpc/com.atproto.server.refreshSession",
            headers=_bearer(session.refresh_jwt),
            expect=_ANY_STATUS,
        )
        if response.status_code == 200:
            data = _session_answer(response, "refreshSession")
        else:
            data = _create_session(
                self._http,
                pds,
                str(stored.get("identifier", "")),
                str(stored.get("app_password", "")),
            )
        stored.update(access_jwt=data["accessJwt"], refresh_jwt=data["refreshJwt"])
        self._credentials.save(account, stored)
        return _Session(data["did"], data["handle"], data["accessJwt"], data["refreshJwt"])


_ANY_STATUS = tuple(range(200, 600))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_SESSION_FIELDS = ("did", "handle", "accessJwt", "refreshJwt")


def _session_answer(response: Any, what: str) -> dict[str, str]:
    """The session a PDS returned, with every field ghostpost needs, or a PermanentError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    fields = body if isinstance(body, dict) else {}
    missing = [
        name
        for name in _SESSION_FIELDS
        if not isinstance(fields.get(name), str) or not fields[name]
    ]
    if missing:
        host = urlsplit(str(response.url or "")).netloc or "the PDS"
        raise PermanentError(
            f"{host} answered {what} without {', '.join(missing)}: it does not look like a "
            "Bluesky PDS (check the address)"
        )
    return {name: str(fields[name]) for name in _SESSION_FIELDS}


def _create_session(http: PlatformHttp, pds: str, identifier: str, password: str) -> dict[str, str]:
    response = http.request(
        "POST",
        f"{pds}/xrpc/com.atproto.server.createSession",
        json={"identifier": identifier, "password": password},
        expect=_ANY_STATUS,
    )
    if response.status_code == 200:
        return _session_answer(response, "createSession")
    if response.status_code in (400, 401):
        raise PermanentError(
            "Bluesky refused the handle or app password "
            f"({error_text(response)}); a manager must reconnect the account"
        )
    raise http.failure(response)


class BlueskyConnector:
    """Connects an account with an app password: checks it by opening a session."""

    def __init__(self, http: PlatformHttp) -> None:
        self._http = http

    def connect(self, pds: str, identifier: str, app_password: str) -> Connection:
        """Open a session on the PDS and return the account's identity and sealed-to-be tokens."""
        app_password = app_password.strip()
        if not APP_PASSWORD.match(app_password):
            raise PermanentError(
                "That is not an app password (xxxx-xxxx-xxxx-xxxx). Create one under "
                "Settings → Privacy and security → App passwords; never use the account password."
            )
        data = _create_session(self._http, pds, identifier, app_password)
        return Connection(
            platform="bluesky",
            handle=data["handle"],
            remote_id=data["did"],
            base_url=pds,
            credentials={
                "identifier": identifier,
                "app_password": app_password,
                "did": data["did"],
                "handle": data["handle"],
                "access_jwt": data["accessJwt"],
                "refresh_jwt": data["refreshJwt"],
            },
        )


def from_container(container: Container) -> BlueskyPublisher:
    """Build the adapter from the composition root."""
    return BlueskyPublisher(
        container.credentials,
        container.attempts,
        PlatformHttp(container.settings.platform_timeout_seconds, container.outbound),
        container.clock,
    )
