"""Ledger hashing: canonical JSON and the SHA-256 chain (the storage lives in db/)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64
#: Domain separation: a ledger hash can never be confused with any other SHA-256 we compute.
HASH_PREFIX = b"ghostpost-ledger-v1\x00"


class LedgerTag(StrEnum):
    """The closed vocabulary of ledger events, "subject:action"."""

    PRINCIPAL_CREATED = "principal:created"
    #: A user became the principal's person: the first link (by the operator) or a hand-over
    #: the principal's own user confirmed. Exactly one user is linked to a principal at a time.
    PRINCIPAL_LINKED = "principal:linked"
    PRINCIPAL_LINK_CHANGED = "principal:link_changed"
    PRINCIPAL_GUARDS_CHANGED = "principal:guards_changed"
    ACCOUNT_CREATED = "account:created"
    #: Platform credentials stored or replaced (the secrets themselves are never recorded).
    ACCOUNT_CONNECTED = "account:connected"
    ACCOUNT_DISCONNECTED = "account:disconnected"
    #: Every sealed platform secret re-encrypted under the active token key.
    TOKENS_RESEALED = "tokens:resealed"
    USER_CREATED = "user:created"
    USER_DEACTIVATED = "user:deactivated"
    USER_REACTIVATED = "user:reactivated"
    #: A TOTP second factor enrolled or removed (the secret is never recorded).
    USER_TOTP_ENABLED = "user:totp_enabled"
    USER_TOTP_DISABLED = "user:totp_disabled"
    WRITER_ASSIGNED = "assignment:created"
    WRITER_UNASSIGNED = "assignment:removed"
    WINDOW_CREATED = "window:created"
    #: Policy or period changed: the entry records each changed field's old and new value.
    WINDOW_UPDATED = "window:updated"
    #: A change to a window whose notice the principal approved that weakens (or replaces part
    #: of) the disclosure: stored as a proposal, the approved policy stays in force.
    WINDOW_CHANGE_PROPOSED = "window:change_proposed"
    WINDOW_CHANGE_APPROVED = "window:change_approved"
    WINDOW_CHANGE_REJECTED = "window:change_rejected"
    NOTICE_APPROVED = "notice:approved"
    NOTICE_REJECTED = "notice:rejected"
    POST_SUBMITTED = "post:submitted"
    POST_APPROVED = "post:approved"
    POST_REJECTED = "post:rejected"
    POST_RESCHEDULED = "post:rescheduled"
    POST_CANCELLED = "post:cancelled"
    POST_HELD = "post:held"
    #: Held because the grant it was written under ended: its writer unassigned or deactivated,
    #: or the API client that submitted it revoked. Released only by hand, once restored.
    POST_WITHDRAWN = "post:withdrawn"
    #: Its window now requires approval: a queued post waits for the principal again.
    POST_SENT_FOR_APPROVAL = "post:sent_for_approval"
    POST_RELEASED = "post:released"
    POST_REFUSED = "post:refused"
    POST_PUBLISHING = "post:publishing"
    POST_PUBLISHED = "post:published"
    POST_RETRY = "post:retry"
    #: A person asked for a failed post to be tried again.
    POST_RETRY_REQUESTED = "post:retry_requested"
    POST_FAILED = "post:failed"
    POST_REQUEUED = "post:requeued"
    #: A worker that lost its lease still got the platform's answer: kept, never dropped.
    POST_LATE_RESULT = "post:late_result"
    #: The principal asked to take a published post back: who asked, through what, and the
    #: writer it was written by. Recorded (and committed) before the platform is called.
    POST_DELETION_REQUESTED = "post:deletion_requested"
    #: The platform's answer to a deletion: gone (or already gone). The post stays published
    #: in the record, with its writer; it is only no longer on the platform.
    POST_DELETED = "post:deleted"
    #: The platform refused the deletion for good: the post is still out and stays published.
    POST_DELETION_FAILED = "post:deletion_failed"
    REMINDER_CREATED = "reminder:created"
    #: API clients (OAuth client credentials); secrets and tokens are never recorded.
    CLIENT_CREATED = "client:created"
    CLIENT_REVOKED = "client:revoked"
    #: The authors a client may name (and its default author) changed; old and new lists.
    CLIENT_AUTHORS_CHANGED = "client:authors_changed"
    TOKEN_ISSUED = "token:issued"
    #: An operator accepted the ledger as it is after the notary's alarm (the reason, the
    #: alarm and the accepted head are in the entry).
    NOTARY_RESET = "notary:reset"
    TOKEN_REVOKED = "token:revoked"


#: Types that hold no float and nothing else: skipped by identity, without an isinstance call.
_SCALARS = frozenset({str, int, bool, type(None)})


def _reject_floats(value: Any) -> None:
    # Floats have no single canonical text form across languages; the ledger stores none.
    # Iterative, with plain dicts, lists and tuples recognised by type: it runs on every
    # ledger append inside the write transaction, where the ABC checks of Mapping cost most.
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            pending.extend(item)
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif isinstance(item, float):
            raise TypeError("ledger data must not contain floats")
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def canonical_json(value: Any) -> str:
    """Serialise to the one canonical JSON text: sorted keys, no spaces, UTF-8, no floats."""
    _reject_floats(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class CanonicalData:
    """An entry's data as its canonical JSON text (what the ledger stores and hashes), for an
    append that serialises nothing: made ahead of the write transaction that appends it."""

    text: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> CanonicalData:
        """`data` serialised (canonical_json: refused if it holds a float)."""
        return cls(canonical_json(dict(data)))


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger entry as hashed and exported."""

    seq: int
    occurred_at: str
    tag: str
    actor: str
    subject: str
    data: Mapping[str, Any]
    prev_hash: str
    entry_hash: str

    def body(self) -> dict[str, Any]:
        """Return the hashed part of the entry (everything but its own hash)."""
        return {
            "seq": self.seq,
            "occurred_at": self.occurred_at,
            "tag": self.tag,
            "actor": self.actor,
            "subject": self.subject,
            "data": dict(self.data),
            "prev_hash": self.prev_hash,
        }


def entry_hash(body: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of an entry body, which includes the previous entry's hash."""
    return hashlib.sha256(HASH_PREFIX + canonical_json(body).encode("utf-8")).hexdigest()


def chain_entry(
    *,
    seq: int,
    occurred_at: str,
    tag: str,
    actor: str,
    subject: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> LedgerEntry:
    """Build the next entry of the chain with its hash."""
    draft = LedgerEntry(seq, occurred_at, tag, actor, subject, data, prev_hash, "")
    return LedgerEntry(
        seq, occurred_at, tag, actor, subject, data, prev_hash, entry_hash(draft.body())
    )


def _json_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def chain_entry_with_text(
    *,
    seq: int,
    occurred_at: str,
    tag: str,
    actor: str,
    subject: str,
    data_text: str,
    prev_hash: str,
) -> LedgerEntry:
    """chain_entry for data given as its canonical JSON text (what the ledger stores): the
    body's canonical text is assembled around it, so the data is checked and serialised once.
    The hash equals chain_entry's over the data the text holds (the body's keys sorted: actor,
    data, occurred_at, prev_hash, seq, subject, tag; a nested value's canonical text is the
    same wherever it sits)."""
    if type(seq) is not int or not all(
        isinstance(part, str) for part in (occurred_at, tag, actor, subject, prev_hash)
    ):
        raise TypeError("an entry's seq is an int and its other fields are text")
    body_text = (
        f'{{"actor":{_json_text(actor)},"data":{data_text},'
        f'"occurred_at":{_json_text(occurred_at)},"prev_hash":{_json_text(prev_hash)},'
        f'"seq":{seq},"subject":{_json_text(subject)},"tag":{_json_text(tag)}}}'
    )
    digest = hashlib.sha256(HASH_PREFIX + body_text.encode("utf-8")).hexdigest()
    data = json.loads(data_text)
    return LedgerEntry(seq, occurred_at, tag, actor, subject, data, prev_hash, digest)


def first_broken_entry(
    entries: Iterable[LedgerEntry], *, after_seq: int = 0, after_hash: str = GENESIS_HASH
) -> int | None:
    """Return the seq of the first entry that breaks the chain, or None when it is intact.

    `entries` start at the genesis, or right after an entry already verified (`after_seq`,
    whose hash is `after_hash`): a reader that verifies as the ledger grows checks only what
    was appended since."""
    expected_prev = after_hash
    expected_seq = after_seq + 1
    for entry in entries:
        if (
            entry.seq != expected_seq
            or entry.prev_hash != expected_prev
            or entry.entry_hash != entry_hash(entry.body())
        ):
            # The position where the chain breaks: everything before it verified.
            return expected_seq
        expected_prev = entry.entry_hash
        expected_seq += 1
    return None
