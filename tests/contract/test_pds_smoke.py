"""Smoke test of the real local Bluesky PDS that contract tests run against (bluesky_pds.py).

Pins the PDS behaviour ghostpost's Bluesky adapter relies on: app-password sessions, facets at
UTF-8 byte offsets, the 300-grapheme limit, and client-chosen TID rkeys that make a retried
create harmless.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.bluesky_pds import BlueskyPds

pytestmark = pytest.mark.slow

POST = "app.bsky.feed.post"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_last_micros = 0


def make_tid(clock_id: int | None = None) -> str:
    """A record key TID: 64 bits `(µs << 10) | clock_id`, top bit 0, as 13 base32-sortable chars."""
    global _last_micros
    # Strictly increasing within this process.
    micros = max(time.time_ns() // 1000, _last_micros + 1)
    _last_micros = micros
    clock = secrets.randbelow(1024) if clock_id is None else clock_id
    value = ((micros << 10) | clock) & 0x7FFF_FFFF_FFFF_FFFF
    return "".join(TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_account(pds: BlueskyPds) -> dict[str, str]:
    handle = f"smoke{secrets.token_hex(4)}.test"
    return pds.create_account(handle, "correct horse battery", f"{handle}@example.com")


def post_record(text: str, **extra: Any) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": now_iso(), **extra}


def create_post(pds: BlueskyPds, token: str, did: str, rkey: str, record: dict[str, Any]) -> Any:
    return pds.xrpc_post(
        "com.atproto.repo.createRecord",
        {"repo": did, "collection": POST, "rkey": rkey, "record": record},
        token=token,
    )


def test_tid_generator() -> None:
    tids = [make_tid() for _ in range(50)]
    assert all(re.fullmatch(r"[234567ab][234567a-z]{12}", tid) for tid in tids)
    assert tids == sorted(tids) and len(set(tids)) == 50
    assert make_tid(clock_id=0)[-2:] == "22"  # low 10 bits = clock id 0


def test_app_password_session_and_facet_post_round_trip(bluesky_pds: BlueskyPds) -> None:
    account = new_account(bluesky_pds)
    assert account["did"].startswith("did:plc:")
    app_password = bluesky_pds.create_app_password(account["accessJwt"], "ghostpost")
    assert re.fullmatch(r"[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}", app_password)

    login = bluesky_pds.xrpc_post(
        "com.atproto.server.createSession",
        {"identifier": account["handle"], "password": app_password},
    )
    assert login.status_code == 200, login.text
    session = login.json()
    assert session["did"] == account["did"] and session["accessJwt"]

    text = "Grüße 👋🏽 #team"
    encoded = text.encode("utf-8")
    assert len(text) == 14 and len(encoded) == 22  # ü, ß: 2 bytes; 👋🏽: 2 code points, 8 bytes
    assert encoded[17:22] == b"#team"
    facets = [
        {
            "index": {"byteStart": 17, "byteEnd": 22},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "team"}],
        }
    ]
    rkey = make_tid()
    created = create_post(
        bluesky_pds,
        session["accessJwt"],
        account["did"],
        rkey,
        post_record(text, facets=facets, langs=["de"]),
    )
    assert created.status_code == 200, created.text
    assert created.json()["uri"] == f"at://{account['did']}/{POST}/{rkey}"

    stored = bluesky_pds.get_record(account["did"], POST, rkey)
    assert stored is not None
    assert stored["cid"] == created.json()["cid"]
    assert stored["value"]["text"].encode("utf-8") == encoded
    assert stored["value"]["facets"] == facets
    assert stored["value"]["langs"] == ["de"]
    assert bluesky_pds.get_record(account["did"], POST, make_tid()) is None


def test_more_than_300_graphemes_is_rejected(bluesky_pds: BlueskyPds) -> None:
    account = new_account(bluesky_pds)
    token, did = account["accessJwt"], account["did"]
    # 👋🏽 is one grapheme of two code points and 8 bytes: 301 of them are 2408 bytes (< 3000).
    too_long = create_post(bluesky_pds, token, did, make_tid(), post_record("👋🏽" * 301))
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["error"] == "InvalidRequest"
    assert "grapheme too big (maximum 300, got 301)" in too_long.json()["message"]
    at_limit = create_post(bluesky_pds, token, did, make_tid(), post_record("👋🏽" * 300))
    assert at_limit.status_code == 200, at_limit.text
    assert len(bluesky_pds.list_records(did, POST)) == 1


def test_same_rkey_twice_creates_no_duplicate(bluesky_pds: BlueskyPds) -> None:
    account = new_account(bluesky_pds)
    token, did = account["accessJwt"], account["did"]
    rkey = make_tid()
    first = create_post(bluesky_pds, token, did, rkey, post_record("first attempt #team"))
    assert first.status_code == 200, first.text

    retry = create_post(bluesky_pds, token, did, rkey, post_record("retried attempt #team"))
    # The PDS refuses to overwrite: HTTP 500 InternalServerError ("There is already a value at
    # key" in its log), and keeps the first record.
    assert retry.status_code == 500, retry.text

    records = bluesky_pds.list_records(did, POST)
    assert [r["uri"] for r in records] == [f"at://{did}/{POST}/{rkey}"]
    assert records[0]["value"]["text"] == "first attempt #team"
    assert records[0]["cid"] == first.json()["cid"]
