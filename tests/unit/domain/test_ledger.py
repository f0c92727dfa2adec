"""Ledger hashing: canonical JSON and tamper detection along the SHA-256 chain.

`first_broken_entry` is read as "the chain verifies up to, not including, this seq": it names the
seq the chain expected where it first breaks, so every entry before it is proven intact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from itertools import pairwise
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.ledger import (
    GENESIS_HASH,
    HASH_PREFIX,
    LedgerEntry,
    LedgerTag,
    canonical_json,
    chain_entry,
    chain_entry_with_text,
    entry_hash,
    first_broken_entry,
)
from tests.unit.domain.strategies import chain_data, json_values, ledger_data

CHAIN = settings(max_examples=150, deadline=None)

# --- canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_sorts_keys_at_every_level_and_has_no_spaces() -> None:
    value = {"b": 1, "a": {"d": [1, {"z": None, "y": True}], "c": "x"}}
    assert canonical_json(value) == '{"a":{"c":"x","d":[1,{"y":true,"z":null}]},"b":1}'


def test_canonical_json_keeps_unicode_as_is_for_utf8() -> None:
    text = canonical_json({"text": "café 世界 👍 #te\u200dam"})
    assert text == '{"text":"café 世界 👍 #te\u200dam"}'
    assert "\\u" not in text
    assert text.encode("utf-8").decode("utf-8") == text


def test_canonical_json_escapes_what_json_must_escape() -> None:
    assert canonical_json({"t": 'a"b\\c\n'}) == '{"t":"a\\"b\\\\c\\n"}'


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        0.0,
        float("nan"),
        {"a": 1.0},
        [1, 2.5],
        (1, 2.5),
        {"a": {"b": [{"c": 3.25}]}},
        [[[-0.0]]],
    ],
    ids=["top", "zero", "nan", "value", "list", "tuple", "deep", "nested-lists"],
)
def test_canonical_json_rejects_floats_anywhere(value: Any) -> None:
    with pytest.raises(TypeError, match="float"):
        canonical_json(value)


def test_canonical_json_rejects_a_float_used_as_a_key() -> None:
    # json.dumps would turn the key into the text "1.5", the very float text the rule avoids.
    with pytest.raises(TypeError, match="float"):
        canonical_json({1.5: "x"})


class _Measure(float):
    """A float subclass (e.g. numpy-like or decimal-ish values a caller may pass)."""


@pytest.mark.parametrize(
    "value",
    [
        {"a": _Measure(2.0)},
        MappingProxyType({"a": [1, {"b": 0.5}]}),
        {"a": MappingProxyType({"b": (1, 2.0)})},
        [{"x": "1.5"}, {"y": [True, None, _Measure(1.0)]}],
        {"deep": [[[[[[[[[[{"z": 1e-9}]]]]]]]]]]},
    ],
    ids=["float-subclass", "mapping-proxy", "nested-proxy", "after-clean-items", "very-deep"],
)
def test_canonical_json_finds_floats_behind_every_kind_of_container(value: Any) -> None:
    with pytest.raises(TypeError, match="float"):
        canonical_json(value)


def test_canonical_json_keeps_booleans_none_and_text_that_looks_like_a_float() -> None:
    value = {"b": [True, False, None], "t": "1.5", "n": 3, "m": {"k": (1,)}}
    assert canonical_json(value) == '{"b":[true,false,null],"m":{"k":[1]},"n":3,"t":"1.5"}'


def test_canonical_json_accepts_integers_beyond_64_bits_exactly() -> None:
    assert canonical_json({"n": 2**70}) == '{"n":1180591620717411303424}'


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_canonical_json_round_trips_and_ignores_key_order(value: Any) -> None:
    text = canonical_json(value)
    assert json.loads(text) == value
    assert canonical_json(json.loads(text)) == text
    assert canonical_json(_reverse_keys(value)) == text


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


# --- the chain --------------------------------------------------------------------------------

TAGS = [tag.value for tag in LedgerTag]


def build_chain(data: list[dict[str, Any]]) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    prev = GENESIS_HASH
    for index, item in enumerate(data):
        entry = chain_entry(
            seq=index + 1,
            occurred_at=f"2026-11-21T09:{index // 60:02d}:{index % 60:02d}+00:00",
            tag=TAGS[index % len(TAGS)],
            actor=f"user:{index % 3}",
            subject=f"post:{index}",
            data=item,
            prev_hash=prev,
        )
        entries.append(entry)
        prev = entry.entry_hash
    return entries


chains = st.lists(chain_data, min_size=1, max_size=12).map(build_chain)
#: Chains long enough to delete or reorder inside them.
long_chains = st.lists(chain_data, min_size=2, max_size=12).map(build_chain)


def test_an_empty_ledger_is_intact() -> None:
    assert first_broken_entry([]) is None


def test_the_first_entry_points_at_the_genesis_hash() -> None:
    (entry,) = build_chain([{"x": 1}])
    assert entry.prev_hash == GENESIS_HASH == "0" * 64
    assert first_broken_entry([entry]) is None


def test_the_hash_is_the_prefixed_sha256_of_the_canonical_body() -> None:
    (entry,) = build_chain([{"text": "café"}])
    body = entry.body()
    assert set(body) == {"seq", "occurred_at", "tag", "actor", "subject", "data", "prev_hash"}
    expected = hashlib.sha256(HASH_PREFIX + canonical_json(body).encode("utf-8")).hexdigest()
    assert entry.entry_hash == entry_hash(body) == expected
    assert entry.entry_hash != hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
    assert len(entry.entry_hash) == 64
    assert int(entry.entry_hash, 16) >= 0


def test_the_hash_does_not_depend_on_key_order_in_the_data() -> None:
    (a,) = build_chain([{"x": 1, "y": 2}])
    (b,) = build_chain([{"y": 2, "x": 1}])
    assert a.entry_hash == b.entry_hash


def test_a_float_in_the_data_cannot_be_chained() -> None:
    with pytest.raises(TypeError):
        build_chain([{"ratio": 0.5}])


@CHAIN
@given(entries=chains)
def test_a_chain_built_with_chain_entry_verifies(entries: list[LedgerEntry]) -> None:
    assert first_broken_entry(entries) is None
    assert first_broken_entry(iter(entries)) is None, "any iterable, read once"
    for previous, entry in pairwise(entries):
        assert entry.prev_hash == previous.entry_hash


def _edited(entry: LedgerEntry, field: str) -> LedgerEntry:
    """Return `entry` with `field` changed to a different value (hash left as it was)."""
    if field == "data":
        changed = dict(entry.data)
        changed["edited"] = not changed.get("edited", False)
        return replace(entry, data=changed)
    if field in ("prev_hash", "entry_hash"):
        old = getattr(entry, field)
        return replace(entry, **{field: ("1" if old[0] == "0" else "0") + old[1:]})
    if field == "tag":
        other = next(t for t in TAGS if t != entry.tag)
        return replace(entry, tag=other)
    return replace(entry, **{field: getattr(entry, field) + "!"})


EDITABLE = ["occurred_at", "tag", "actor", "subject", "data", "prev_hash", "entry_hash"]


@CHAIN
@given(entries=chains, field=st.sampled_from(EDITABLE), data=st.data())
def test_editing_any_field_of_any_entry_is_found_at_that_entry(
    entries: list[LedgerEntry], field: str, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    tampered = list(entries)
    tampered[index] = _edited(entries[index], field)
    assert first_broken_entry(tampered) == index + 1


@CHAIN
@given(entries=chains, data=st.data())
def test_editing_a_data_value_is_found_at_that_entry(
    entries: list[LedgerEntry], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    entry = entries[index]
    new_value = data.draw(json_values.filter(lambda v: v != entry.data.get("k")))
    tampered = list(entries)
    tampered[index] = replace(entry, data={**entry.data, "k": new_value})
    assert first_broken_entry(tampered) == index + 1


@CHAIN
@given(
    entries=chains,
    new_seq=st.integers(-5, 20),
    data=st.data(),
)
def test_editing_the_seq_of_an_entry_is_found_at_its_position(
    entries: list[LedgerEntry], new_seq: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    if new_seq == entries[index].seq:
        new_seq += 100
    tampered = list(entries)
    tampered[index] = replace(entries[index], seq=new_seq)
    # The seq is the tampered field itself, so it cannot name the break: entries 1..index are
    # intact and the chain breaks at seq index + 1, whatever number was written there.
    assert first_broken_entry(tampered) == index + 1


@CHAIN
@given(entries=long_chains, data=st.data())
def test_deleting_an_entry_is_found_at_the_missing_seq(
    entries: list[LedgerEntry], data: st.DataObject
) -> None:
    # The last entry is left alone: a truncated tail is caught by signed checkpoints, not here.
    index = data.draw(st.integers(0, len(entries) - 2))
    tampered = entries[:index] + entries[index + 1 :]
    assert first_broken_entry(tampered) == index + 1


@CHAIN
@given(entries=long_chains, data=st.data())
def test_reordering_two_entries_is_found_at_the_first_moved_one(
    entries: list[LedgerEntry], data: st.DataObject
) -> None:
    first = data.draw(st.integers(0, len(entries) - 2))
    second = data.draw(st.integers(first + 1, len(entries) - 1))
    tampered = list(entries)
    tampered[first], tampered[second] = tampered[second], tampered[first]
    assert first_broken_entry(tampered) == first + 1


@CHAIN
@given(entries=long_chains, field=st.sampled_from(["occurred_at", "actor", "subject", "data"]))
def test_rehashing_an_edited_entry_breaks_the_next_one(
    entries: list[LedgerEntry], field: str
) -> None:
    for index in range(len(entries) - 1):
        edited = _edited(entries[index], field)
        rehashed = chain_entry(
            seq=edited.seq,
            occurred_at=edited.occurred_at,
            tag=edited.tag,
            actor=edited.actor,
            subject=edited.subject,
            data=edited.data,
            prev_hash=edited.prev_hash,
        )
        assert rehashed.entry_hash != entries[index].entry_hash
        tampered = list(entries)
        tampered[index] = rehashed
        assert first_broken_entry(tampered) == index + 2


@CHAIN
@given(
    data=ledger_data,
    seq=st.integers(min_value=1, max_value=2**40),
    text=st.text(max_size=12),
)
def test_an_entry_chained_from_its_stored_text_is_the_entry_chained_from_its_data(
    data: dict[str, Any], seq: int, text: str
) -> None:
    """The append hashes the body assembled around the data's canonical text (one
    serialisation): the same entry, hash included, as chain_entry over the data."""
    fields = {
        "seq": seq,
        "occurred_at": "2026-03-01T12:00:00.000000Z",
        "tag": "post:submitted",
        "actor": f"client:{text}",
        "subject": f'post:{text}\u2028"',
        "prev_hash": GENESIS_HASH,
    }
    expected = chain_entry(**fields, data=data)
    assert chain_entry_with_text(**fields, data_text=canonical_json(data)) == expected
    assert expected.entry_hash == entry_hash(expected.body())


def test_an_entry_chained_from_text_refuses_what_chain_entry_refuses() -> None:
    fields = {"seq": 1, "occurred_at": "t", "tag": "x", "subject": "s", "prev_hash": "0"}
    with pytest.raises(TypeError):
        chain_entry(**fields, actor=1.5, data={})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        chain_entry_with_text(**fields, actor=1.5, data_text="{}")  # type: ignore[arg-type]


@CHAIN
@given(entries=long_chains, field=st.sampled_from(EDITABLE), data=st.data())
def test_a_chain_verified_from_an_entry_on_finds_the_same_break(
    entries: list[LedgerEntry], field: str, data: st.DataObject
) -> None:
    """Verifying only what follows a verified entry (`after_seq`, `after_hash`) accepts the
    intact tail and names the same seq as verifying from the genesis."""
    start = data.draw(st.integers(1, len(entries) - 1))
    verified = entries[start - 1]
    tail = entries[start:]
    assert first_broken_entry(tail, after_seq=verified.seq, after_hash=verified.entry_hash) is None
    index = data.draw(st.integers(start, len(entries) - 1))
    tampered = list(entries)
    tampered[index] = _edited(entries[index], field)
    found = first_broken_entry(
        tampered[start:], after_seq=verified.seq, after_hash=verified.entry_hash
    )
    assert found == first_broken_entry(tampered) == index + 1
    # A tail that does not follow the entry it claims to follow is refused at its first entry.
    assert first_broken_entry(tail, after_seq=verified.seq, after_hash="0" * 64) == start + 1
