"""The raw ledger export format, `ghostpost-ledger/v1`: JSON Lines, one canonical JSON per line.

    {"type":"header","format":"ghostpost-ledger/v1","exported_at":"…","complete":true,
     "filters":{},"keys":[{"key_id":"…","public_key":"<base64 raw 32 bytes>","created_at":"…"}]}
    {"type":"entry","seq":1,"occurred_at":"…","tag":"…","actor":"…","subject":"…",
     "data":{…},"prev_hash":"…","entry_hash":"…"}                   one per entry, in seq order
    {"type":"checkpoint","size":1,"head_hash":"…","signed_at":"…","key_id":"…",
     "signature":"<base64>","kind":"append"}                        in signing order

Only a complete export (no filters, `"complete":true`) is verifiable; a filtered one lists
entries for reading and `ghostpost audit verify` refuses it. The keys in the header are
informational: a verifier trusts only the keys it is given out of band.

Writing: open the file as text, UTF-8, and call `write_header`, then `write_entry` per entry,
then `write_checkpoint` per checkpoint (or use the `*_line` functions to get each line as str,
e.g. for a streamed HTTP response). Reading: `read_export(path)` yields `Header`, `LedgerEntry`
and `Checkpoint` records one line at a time (constant memory) and raises `ExportFormatError`
naming the line on anything malformed or out of order.

Standard library and ghostpost.domain only, so the verifier can be copied out with it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote  # json.dumps(str, ensure_ascii=False)
from typing import IO, Any

from ghostpost.domain.checkpoint import (
    HASH_PATTERN,
    KEY_ID_PATTERN,
    NOTARY_STATE_FORMAT,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    TIMESTAMP_PATTERN,
    Checkpoint,
    CheckpointKind,
    LedgerKey,
    NotaryState,
)
from ghostpost.domain.ledger import LedgerEntry, canonical_json

FORMAT = "ghostpost-ledger/v1"
ENTRY_FIELDS = frozenset(
    ("type", "seq", "occurred_at", "tag", "actor", "subject", "data", "prev_hash", "entry_hash")
)
CHECKPOINT_FIELDS = frozenset(
    ("type", "size", "head_hash", "signed_at", "key_id", "signature", "kind")
)
HEADER_FIELDS = frozenset(("type", "format", "exported_at", "complete", "filters", "keys"))
NOTARY_STATE_FIELDS = frozenset(("format", "size", "head_hash", "key_id", "signed_at"))


class ExportFormatError(ValueError):
    """A line of an export is not valid `ghostpost-ledger/v1`."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Header:
    """The first line of an export."""

    exported_at: str
    complete: bool
    filters: Mapping[str, Any]
    keys: tuple[LedgerKey, ...]
    #: Header fields this version does not define (kept, never trusted).
    extra: Mapping[str, Any] = field(default_factory=dict)


Record = Header | LedgerEntry | Checkpoint


# --- writing -------------------------------------------------------------------------------


def _key_dict(key: LedgerKey | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(key, LedgerKey):
        return {"key_id": key.key_id, "public_key": key.public_key, "created_at": key.created_at}
    return {
        "key_id": key["key_id"],
        "public_key": key["public_key"],
        "created_at": key.get("created_at"),
    }


def header_line(
    *,
    exported_at: str,
    complete: bool,
    filters: Mapping[str, Any] | None = None,
    keys: Iterable[LedgerKey | Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Return the header line (with its newline).

    `filters` names what the export was restricted to (values must be str, int, bool or None);
    an export is complete exactly when there are none.
    """
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    if complete and filters:
        raise ValueError("an export with filters is not complete")
    record: dict[str, Any] = dict(extra or {})
    clash = set(record) & HEADER_FIELDS
    if clash:
        raise ValueError(f"extra header fields clash with the format: {sorted(clash)}")
    record.update(
        type="header",
        format=FORMAT,
        exported_at=exported_at,
        complete=complete,
        filters=filters,
        keys=[_key_dict(k) for k in keys],
    )
    return canonical_json(record) + "\n"


def entry_line(entry: LedgerEntry) -> str:
    """Return one entry's line (with its newline)."""
    record = entry.body()
    record["type"] = "entry"
    record["entry_hash"] = entry.entry_hash
    return canonical_json(record) + "\n"


def stored_entry_line(
    seq: int,
    occurred_at: str,
    tag: str,
    actor: str,
    subject: str,
    data_json: str,
    prev_hash: str,
    entry_hash: str,
) -> str:
    """Return one entry's line from its stored columns: the same text as `entry_line`, built
    without parsing `data_json` and serialising it again.

    `data_json` must be the entry's data as canonical JSON text, which is how the ledger
    stores it (what was hashed). The keys are written in canonical (sorted) order.
    """
    return (
        f'{{"actor":{_quote(actor)},"data":{data_json},"entry_hash":{_quote(entry_hash)},'
        f'"occurred_at":{_quote(occurred_at)},"prev_hash":{_quote(prev_hash)},"seq":{int(seq)},'
        f'"subject":{_quote(subject)},"tag":{_quote(tag)},"type":"entry"}}\n'
    )


def stored_checkpoint_line(
    size: int, head_hash: str, signed_at: str, key_id: str, signature: str, kind: str
) -> str:
    """Return one checkpoint's line from its stored columns: the same text as
    `checkpoint_line`, without a Checkpoint and a dict in between."""
    return (
        f'{{"head_hash":{_quote(head_hash)},"key_id":{_quote(key_id)},"kind":{_quote(kind)},'
        f'"signature":{_quote(signature)},"signed_at":{_quote(signed_at)},"size":{int(size)},'
        f'"type":"checkpoint"}}\n'
    )


def checkpoint_line(checkpoint: Checkpoint) -> str:
    """Return one checkpoint's line (with its newline)."""
    record = checkpoint.as_dict()
    record["type"] = "checkpoint"
    return canonical_json(record) + "\n"


def write_header(
    fh: IO[str],
    *,
    exported_at: str,
    complete: bool,
    filters: Mapping[str, Any] | None = None,
    keys: Iterable[LedgerKey | Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the header line; see `header_line`."""
    fh.write(
        header_line(
            exported_at=exported_at, complete=complete, filters=filters, keys=keys, extra=extra
        )
    )


def write_entry(fh: IO[str], entry: LedgerEntry) -> None:
    """Write one entry line."""
    fh.write(entry_line(entry))


def write_checkpoint(fh: IO[str], checkpoint: Checkpoint) -> None:
    """Write one checkpoint line."""
    fh.write(checkpoint_line(checkpoint))


# --- reading -------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise ValueError(f"floats are not allowed ({text})")


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not allowed")


def _parse(raw: bytes) -> Any:
    return json.loads(
        raw.decode("utf-8"),
        object_pairs_hook=_no_duplicates,
        parse_float=_no_float,
        parse_constant=_no_constant,
    )


def _int(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _str(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _matching(record: Mapping[str, Any], name: str, pattern: Any, what: str) -> str:
    value = _str(record, name)
    if not pattern.fullmatch(value):
        raise ValueError(f"{name} must be {what}")
    return value


def _base64(value: str, size: int, name: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64") from None
    if len(raw) != size:
        raise ValueError(f"{name} must decode to {size} bytes")


def _exact_fields(record: Mapping[str, Any], expected: frozenset[str]) -> None:
    missing = expected - set(record)
    unknown = set(record) - expected
    if missing:
        raise ValueError(f"missing field(s) {', '.join(sorted(missing))}")
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")


def parse_header(record: Mapping[str, Any]) -> Header:
    """Build a Header from a decoded header record (raises ValueError)."""
    missing = HEADER_FIELDS - set(record)
    if missing:
        raise ValueError(f"missing field(s) {', '.join(sorted(missing))}")
    if record["format"] != FORMAT:
        raise ValueError(f"format is {record['format']!r}, expected {FORMAT!r}")
    complete = record["complete"]
    if not isinstance(complete, bool):
        raise ValueError("complete must be true or false")
    filters = record["filters"]
    if not isinstance(filters, dict):
        raise ValueError("filters must be an object")
    raw_keys = record["keys"]
    if not isinstance(raw_keys, list):
        raise ValueError("keys must be a list")
    keys = []
    for item in raw_keys:
        if not isinstance(item, dict):
            raise ValueError("each key must be an object")
        key_id = _matching(item, "key_id", KEY_ID_PATTERN, "16 hex characters")
        public_key = _str(item, "public_key")
        _base64(public_key, PUBLIC_KEY_BYTES, "public_key")
        created_at = item.get("created_at")
        if created_at is not None and not isinstance(created_at, str):
            raise ValueError("created_at must be a string or null")
        keys.append(LedgerKey(key_id, public_key, created_at))
    return Header(
        exported_at=_str(record, "exported_at"),
        complete=complete,
        filters=filters,
        keys=tuple(keys),
        extra={k: v for k, v in record.items() if k not in HEADER_FIELDS},
    )


def parse_entry(record: Mapping[str, Any]) -> LedgerEntry:
    """Build a LedgerEntry from a decoded entry record (raises ValueError).

    The entry hash is taken as written; checking it is the verifier's job.
    """
    _exact_fields(record, ENTRY_FIELDS)
    data = record["data"]
    if not isinstance(data, dict):
        raise ValueError("data must be an object")
    return LedgerEntry(
        seq=_int(record, "seq"),
        occurred_at=_str(record, "occurred_at"),
        tag=_str(record, "tag"),
        actor=_str(record, "actor"),
        subject=_str(record, "subject"),
        data=data,
        prev_hash=_matching(record, "prev_hash", HASH_PATTERN, "64 lower-case hex characters"),
        entry_hash=_matching(record, "entry_hash", HASH_PATTERN, "64 lower-case hex characters"),
    )


def parse_checkpoint(record: Mapping[str, Any]) -> Checkpoint:
    """Build a Checkpoint from a decoded checkpoint record (raises ValueError).

    Also reads witness-file lines, which carry the same fields (`type` optional there).
    """
    fields = CHECKPOINT_FIELDS if "type" in record else CHECKPOINT_FIELDS - {"type"}
    _exact_fields(record, fields)
    signature = _str(record, "signature")
    _base64(signature, SIGNATURE_BYTES, "signature")
    kind = _str(record, "kind")
    if kind not in {k.value for k in CheckpointKind}:
        raise ValueError(f"kind must be one of {', '.join(k.value for k in CheckpointKind)}")
    return Checkpoint(
        size=_int(record, "size"),
        head_hash=_matching(record, "head_hash", HASH_PATTERN, "64 lower-case hex characters"),
        signed_at=_matching(record, "signed_at", TIMESTAMP_PATTERN, "an RFC 3339 UTC time"),
        key_id=_matching(record, "key_id", KEY_ID_PATTERN, "16 hex characters"),
        signature=signature,
        kind=kind,
    )


def _lines(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[bytes]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            yield from fh
    else:
        yield from source


def read_export(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Record]:
    """Yield the records of an export in file order, one line at a time (constant memory).

    The header comes first, then entries, then checkpoints; raises ExportFormatError on the
    first malformed or misplaced line. `source` is a path or a binary file object.
    """
    stage = "header"
    number = 0
    for number, raw in enumerate(_lines(source), start=1):
        if not raw.endswith(b"\n"):
            raise ExportFormatError(number, "the last line is cut off (no newline)")
        try:
            record = _parse(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ExportFormatError(number, f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ExportFormatError(number, "not a JSON object")
        kind = record.get("type")
        try:
            if stage == "header":
                if kind != "header":
                    raise ValueError("the first line must be the header")
                stage = "entries"
                yield parse_header(record)
            elif kind == "entry":
                if stage != "entries":
                    raise ValueError("an entry after the checkpoints")
                yield parse_entry(record)
            elif kind == "checkpoint":
                stage = "checkpoints"
                yield parse_checkpoint(record)
            elif kind == "header":
                raise ValueError("a second header")
            else:
                raise ValueError(f"unknown record type {kind!r}")
        except ValueError as exc:
            raise ExportFormatError(number, str(exc)) from None
    if stage == "header":
        raise ExportFormatError(number + 1, "empty export: no header")


def read_checkpoints(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Checkpoint]:
    """Yield the checkpoints of a witness file (JSON Lines of checkpoints; blank lines skipped)."""
    for number, raw in enumerate(_lines(source), start=1):
        if not raw.strip():
            continue
        try:
            record = _parse(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if record.get("type", "checkpoint") != "checkpoint":
                continue  # an export given as trusted input: use its checkpoints only
            yield parse_checkpoint(record)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ExportFormatError(number, str(exc)) from None


# --- the notary's state file ---------------------------------------------------------------


def notary_state_text(state: NotaryState) -> str:
    """Return the notary state file's contents: one canonical JSON object and a newline."""
    return (
        canonical_json(
            {
                "format": NOTARY_STATE_FORMAT,
                "size": state.size,
                "head_hash": state.head_hash,
                "key_id": state.key_id,
                "signed_at": state.signed_at,
            }
        )
        + "\n"
    )


def parse_notary_state(text: str) -> NotaryState:
    """Read a notary state file's contents (raises ValueError naming what is wrong)."""
    record = _parse(text.strip().encode("utf-8"))
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    _exact_fields(record, NOTARY_STATE_FIELDS)
    if record["format"] != NOTARY_STATE_FORMAT:
        raise ValueError(f"format is {record['format']!r}, expected {NOTARY_STATE_FORMAT!r}")
    return NotaryState(
        size=_int(record, "size"),
        head_hash=_matching(record, "head_hash", HASH_PATTERN, "64 lower-case hex characters"),
        key_id=_matching(record, "key_id", KEY_ID_PATTERN, "16 hex characters"),
        signed_at=_matching(record, "signed_at", TIMESTAMP_PATTERN, "an RFC 3339 UTC time"),
    )
