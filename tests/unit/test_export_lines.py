"""The exports' hand-built lines are byte for byte what the general serialisers write: a CSV
record as csv.writer (RFC 4180, CRLF) writes it, a ledger entry's line as `entry_line` (the
canonical JSON of the entry) writes it. The exports build them directly for speed; the bytes
are the contract (`ghostpost audit verify`, spreadsheets)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from ghostpost.audit.format import (
    checkpoint_line,
    entry_line,
    stored_checkpoint_line,
    stored_entry_line,
)
from ghostpost.domain.checkpoint import Checkpoint
from ghostpost.domain.ledger import canonical_json, chain_entry
from ghostpost.services.exports import _iso, csv_cell, csv_line

#: Text with what CSV and JSON treat specially: quotes, commas, line ends, escapes, non-ASCII.
SPECIAL = list("ab ,\"\r\n\t\\=+-@'é東👋\u2028\x01")
# No lone surrogates: they cannot be UTF-8, so no ledger entry or file holds one.
TEXT = st.text(alphabet=st.sampled_from(SPECIAL) | st.characters(exclude_categories=("Cs",)))
CELL = st.none() | st.booleans() | st.integers() | TEXT


def written_by_csv_module(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(csv_cell(v) for v in values)
    return out.getvalue()


@given(st.lists(CELL, min_size=2, max_size=8))
def test_a_csv_line_is_what_csv_writer_writes(values: list[Any]) -> None:
    assert csv_line(values) == written_by_csv_module(values)


def test_a_csv_line_quotes_and_defuses_like_csv_writer() -> None:
    values = ['She said "hi", then left,\nand a second line', "=SUM(A1:A9)", None, True, 7, ""]
    line = csv_line(values)
    assert line == '"She said ""hi"", then left,\nand a second line",\'=SUM(A1:A9),,true,7,\r\n'
    assert line == written_by_csv_module(values)


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(
    seq=st.integers(min_value=1, max_value=10**12),
    tag=TEXT,
    actor=TEXT,
    subject=TEXT,
    data=st.dictionaries(TEXT, JSON_VALUE, max_size=4),
)
def test_a_stored_entry_line_is_the_entry_line(
    seq: int, tag: str, actor: str, subject: str, data: dict[str, Any]
) -> None:
    entry = chain_entry(
        seq=seq,
        occurred_at="2026-01-05T09:00:00.000001Z",
        tag=tag,
        actor=actor,
        subject=subject,
        data=data,
        prev_hash="0" * 64,
    )
    stored = stored_entry_line(
        entry.seq,
        entry.occurred_at,
        entry.tag,
        entry.actor,
        entry.subject,
        canonical_json(data),
        entry.prev_hash,
        entry.entry_hash,
    )
    assert stored == entry_line(entry)


@given(size=st.integers(min_value=0, max_value=10**12), kind=TEXT, signature=TEXT)
def test_a_stored_checkpoint_line_is_the_checkpoint_line(
    size: int, kind: str, signature: str
) -> None:
    checkpoint = Checkpoint(
        size=size,
        head_hash="ab" * 32,
        signed_at="2026-01-05T09:00:00.000001Z",
        key_id="0123456789abcdef",
        signature=signature,
        kind=kind,
    )
    stored = stored_checkpoint_line(
        size, checkpoint.head_hash, checkpoint.signed_at, checkpoint.key_id, signature, kind
    )
    assert stored == checkpoint_line(checkpoint)


#: What SQLite stores for a time (SQLAlchemy's DATETIME bind processor, as UTCDateTime uses it).
_SQLITE = sqlite.dialect()
STORE_ON_SQLITE = DateTime(timezone=True).dialect_impl(_SQLITE).bind_processor(_SQLITE)


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_time_as_sqlite_stores_it_formats_as_the_datetime_does(moment: datetime) -> None:
    assert STORE_ON_SQLITE is not None
    stored = STORE_ON_SQLITE(moment.replace(tzinfo=None))
    assert _iso(stored) == _iso(moment)


def test_other_time_texts_are_parsed_as_utc_unless_they_say_otherwise() -> None:
    assert _iso("2026-01-05 09:00:30") == "2026-01-05T09:00:30Z"
    assert _iso("2026-01-05T10:00:30.5+01:00") == "2026-01-05T09:00:30.500000Z"
