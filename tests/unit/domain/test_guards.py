"""domain.guards: which delegated posts wait for the principal, and which changes weaken."""

from __future__ import annotations

import pytest

from ghostpost.domain.guards import (
    PrincipalGuards,
    guard_reasons,
    guard_weakenings,
    parse_watched,
    post_hashtags,
)
from ghostpost.domain.length import budget_for
from ghostpost.textseg import default_segmenter

MASTODON = budget_for("mastodon", default_segmenter())
X = budget_for("x", default_segmenter())


def reasons(text: str, guards: PrincipalGuards, used: set[str] | None = None, budget=MASTODON):  # type: ignore[no-untyped-def]
    names = [tag.name for tag in budget.hashtags(text)]
    return guard_reasons([text], names, guards, used or set(), ["team"])


def test_parse_folds_dedupes_and_refuses_what_is_no_entry() -> None:
    assert parse_watched("Layoffs\n#Strike, layoffs,  pay   cut \n\n") == (
        "layoffs",
        "#strike",
        "pay cut",
    )
    for bad in ("#", "#no-dash", "!!!", "x" * 101, "a\x00b"):
        with pytest.raises(ValueError):
            parse_watched(bad)
    with pytest.raises(ValueError):
        parse_watched("\n".join(f"t{i}" for i in range(201)))


def test_terms_match_whole_words_case_insensitively() -> None:
    guards = PrincipalGuards(("layoffs", "pay cut"), first_use_hashtags=False)
    assert reasons("LAYOFFS ahead", guards) == ("watched term 'layoffs'",)
    assert reasons("no pay\n cut", guards) == ("watched term 'pay cut'",)
    assert reasons("#layoffs", guards) == ("watched term 'layoffs'",)
    assert reasons("relayoffs and layoffsville, paycut", guards) == ()


def test_hashtags_count_as_the_platform_extracts_them() -> None:
    guards = PrincipalGuards(("#strike",), first_use_hashtags=False)
    assert reasons("Go #STRIKE", guards) == ("watched hashtag #strike",)
    # Inside a URL Mastodon finds no hashtag.
    assert reasons("https://example.com/#strike", guards) == ()
    assert reasons("a#strike", guards, budget=X) == ()


def test_first_use_counts_new_hashtags_but_never_the_disclosure_tag() -> None:
    guards = PrincipalGuards()
    first = "first use of #{}: check what it is about before it goes out"
    assert reasons("#Keynote #team", guards) == (first.format("keynote"),)
    assert reasons("#Keynote #team", guards, used={"keynote"}) == ()
    assert reasons("#Keynote", PrincipalGuards(first_use_hashtags=False)) == ()
    # A watched hashtag is said once, as watched.
    assert reasons("#strike", PrincipalGuards(("#strike",))) == ("watched hashtag #strike",)
    assert post_hashtags(["Team", "Staff", "x"], ["staff"]) == {"x"}


def test_only_removing_an_entry_or_turning_first_use_off_weakens() -> None:
    old = PrincipalGuards(("layoffs", "#strike"))
    assert guard_weakenings(old, PrincipalGuards(("layoffs", "#strike", "more"))) == ()
    assert guard_weakenings(old, PrincipalGuards(("#strike",))) == ("stop watching layoffs",)
    assert guard_weakenings(old, PrincipalGuards(old.watched, False)) == (
        "turn off first-use hashtag approval",
    )
