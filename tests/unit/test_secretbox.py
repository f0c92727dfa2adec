"""AES-GCM sealing of platform secrets: key ids, row binding, rotation, key parsing."""

from __future__ import annotations

import pytest

from ghostpost.secretbox import (
    SecretBox,
    SecretBoxError,
    derived_development_key,
    generate_key,
    parse_keys,
)


def box(*specs: str) -> SecretBox:
    return SecretBox(parse_keys(",".join(specs)))


def test_a_sealed_secret_opens_for_its_own_row_only() -> None:
    sealer = box(generate_key("k1"))
    sealed = sealer.seal({"access_token": "tok-123"}, bound_to="account:7")
    assert "tok-123" not in sealed
    assert sealed.startswith("gp1.k1.")
    assert sealer.open(sealed, bound_to="account:7") == {"access_token": "tok-123"}
    # Copied onto another row, it must not lend that row these tokens.
    with pytest.raises(SecretBoxError, match="does not open for account:8"):
        sealer.open(sealed, bound_to="account:8")


def test_sealing_twice_gives_different_ciphertexts() -> None:
    sealer = box(generate_key("k1"))
    first = sealer.seal({"a": 1}, bound_to="account:1")
    assert first != sealer.seal({"a": 1}, bound_to="account:1")


def test_a_tampered_ciphertext_is_refused() -> None:
    sealer = box(generate_key("k1"))
    sealed = sealer.seal({"a": 1}, bound_to="account:1")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretBoxError):
        sealer.open(flipped, bound_to="account:1")


def test_rotation_new_key_seals_old_key_still_opens() -> None:
    old = generate_key("old")
    new = generate_key("new")
    sealed_before = box(old).seal({"t": "x"}, bound_to="account:1")
    rotated = box(new, old)
    assert rotated.active_key_id == "new"
    assert rotated.open(sealed_before, bound_to="account:1") == {"t": "x"}
    assert rotated.key_id_of(rotated.seal({"t": "x"}, bound_to="account:1")) == "new"
    with pytest.raises(SecretBoxError, match="which token_keys does not list"):
        box(new).open(sealed_before, bound_to="account:1")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nokey", "must read 'id:base64url-key'"),
        ("k1:!!!!", "not base64url"),
        ("k1:AAAA", "must be 32 bytes"),
        ("bad id:" + "A" * 43, "must read"),
    ],
)
def test_malformed_keys_are_named(spec: str, message: str) -> None:
    with pytest.raises(SecretBoxError, match=message):
        parse_keys(spec)


def test_duplicate_key_ids_are_refused() -> None:
    key = generate_key("k1")
    with pytest.raises(SecretBoxError, match="listed twice"):
        parse_keys(f"{key},{key}")


def test_generated_keys_parse_and_the_development_key_is_stable() -> None:
    ((key_id, raw),) = parse_keys(generate_key("k2026"))
    assert key_id == "k2026" and len(raw) == 32
    assert derived_development_key("s" * 20) == derived_development_key("s" * 20)
    assert derived_development_key("s" * 20) != derived_development_key("t" * 20)
    with pytest.raises(SecretBoxError):
        generate_key("no spaces")
    with pytest.raises(SecretBoxError):
        SecretBox([])
