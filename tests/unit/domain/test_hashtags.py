"""The per-platform hashtag extractors: X conformance vectors, hand-written Mastodon and Bluesky
cases (expected values checked against Ruby's regex engine and @atproto/api detectFacets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ghostpost.domain.hashtags import (
    Hashtag,
    bluesky_hashtags,
    carries_hashtag,
    mastodon_hashtags,
    same_hashtag,
    x_hashtags,
)
from ghostpost.textseg import default_segmenter
from tests.support.richtext_oracle import RichTextOracle

SEG = default_segmenter()
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "twitter-text"

SECTIONS = ("hashtags", "hashtags_from_astral", "hashtags_with_indices")


def _x_cases() -> list[Any]:
    tests = yaml.safe_load((VECTORS / "extract.yml").read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(
            section, case["text"], case["expected"], id=f"{section}: {case['description']}"
        )
        for section in SECTIONS
        for case in tests[section]
    ]


X_CASES = _x_cases()


def test_the_x_hashtag_sections_have_the_documented_case_counts() -> None:
    counts = {section: sum(1 for p in X_CASES if p.values[0] == section) for section in SECTIONS}
    assert counts == {"hashtags": 65, "hashtags_from_astral": 3, "hashtags_with_indices": 8}


@pytest.mark.parametrize(("section", "text", "expected"), X_CASES)
def test_x_hashtags_follow_twitter_text_conformance(
    section: str, text: str, expected: list[Any]
) -> None:
    found = x_hashtags(text, SEG)
    if section == "hashtags_with_indices":
        # All BMP texts: twitter-text's UTF-16 indices are our code-point indices.
        assert [{"hashtag": h.name, "indices": [h.start, h.end]} for h in found] == expected
    else:
        assert [h.name for h in found] == expected


def names(found: list[Hashtag]) -> list[str]:
    return [h.name for h in found]


def x(text: str) -> list[str]:
    return names(x_hashtags(text, SEG))


def mastodon(text: str) -> list[str]:
    return names(mastodon_hashtags(text, SEG))


def bluesky(text: str) -> list[str]:
    return names(bluesky_hashtags(text))


# The examples from issue 12 and their neighbours: (text, X, Mastodon, Bluesky).
ISSUE_CASES = [
    ("https://example.com/a?utm=#team", [], [], []),
    ("Slides: https://example.com/#team", [], [], []),
    ("see example.com/#team", [], [], []),  # a URL without a scheme, which only X links
    ("#team\u0301", ["team\u0301"], ["team\u0301"], ["team\u0301"]),
    ("#team\u200d", ["team\u200d"], ["team"], ["team"]),  # see carries_hashtag: glued
    ("#team\u200c", ["team\u200c"], ["team"], ["team"]),
    ("#team\u200cwork", ["team\u200cwork"], ["team\u200cwork"], ["team"]),
    ("x=#team", ["team"], [], []),
    (":)#team", ["team"], [], []),
    ("a/#team", ["team"], [], []),
    ("a#team", [], [], []),
    ("(#team)", ["team"], [], []),  # Mastodon 4.6: not after "(" (mastodon#38902)
    ("go (#team)", ["team"], [], []),
    ("go #team)", ["team"], ["team"], ["team"]),
    ("#team!", ["team"], ["team"], ["team"]),
    ("#team.", ["team"], ["team"], ["team"]),
    ("#team...", ["team"], ["team"], ["team"]),
    ("#team.work", ["team"], ["team"], ["team.work"]),
    ("#team-work", ["team"], ["team"], ["team-work"]),
    ("#team_work", ["team_work"], ["team_work"], ["team_work"]),
    ("#team's", ["team"], ["team"], ["team's"]),
    ("世界#team", [], [], []),  # CJK letters glue like any letter
    ("世界 #team 世界", ["team"], ["team"], ["team"]),
    ("#team世界", ["team世界"], ["team世界"], ["team世界"]),
    ("世界。#team", ["team"], [], []),
    ("👍#team", ["team"], [], []),
    ("#team👍", ["team"], ["team"], ["team👍"]),
    ("👍 #team 👍", ["team"], ["team"], ["team"]),
    ("##team", ["team"], [], ["#team"]),
    ("＃team", ["team"], [], ["team"]),
    ("#team#work", [], ["team"], ["team#work"]),
    ("#teamhttps://example.com", [], ["team"], ["teamhttps://example.com"]),
    ("#123 #1team", ["1team"], ["1team"], ["1team"]),
    ("&#team", [], [], []),
    ("#\ufe0fteam", [], ["\ufe0fteam"], []),
    ("e\u0301#team", [], [], []),  # a mark: Ruby would find it, we refuse to (safe side)
    ("Gruß #team", ["team"], [], ["team"]),  # Onigmo's /i lookbehind reads ß as "ss"
    ("Grüße #team", ["team"], ["team"], ["team"]),
    ("Gruß\n\n#team", ["team"], ["team"], ["team"]),
    ("line\n#team", ["team"], ["team"], ["team"]),
    ("tab\x1c#team", ["team"], [], []),  # U+001C is whitespace to Python, not to Ruby or JS
    ("tab\t#team a\x0b#b", ["team", "b"], ["team", "b"], ["team", "b"]),
]


@pytest.mark.parametrize(("text", "on_x", "on_mastodon", "on_bluesky"), ISSUE_CASES)
def test_each_platform_finds_its_own_hashtags(
    text: str, on_x: list[str], on_mastodon: list[str], on_bluesky: list[str]
) -> None:
    assert (x(text), mastodon(text), bluesky(text)) == (on_x, on_mastodon, on_bluesky)


def test_spans_cover_the_sign_and_the_name() -> None:
    text = "Go (#team)! ＃Team"
    assert x_hashtags(text, SEG) == [Hashtag("team", 4, 9), Hashtag("Team", 12, 17)]
    assert mastodon_hashtags("Go #team! ＃Team", SEG) == [Hashtag("team", 3, 8)]
    assert bluesky_hashtags("Go #team!! ＃Team") == [Hashtag("team", 3, 8), Hashtag("Team", 11, 16)]


def test_mastodon_drops_a_trailing_scheme_before_a_url() -> None:
    assert mastodon_hashtags("#teamhttps://example.com", SEG) == [Hashtag("team", 0, 5)]


def test_bluesky_tags_are_at_most_64_utf16_units() -> None:
    assert bluesky("#" + "a" * 64) == ["a" * 64]
    assert bluesky("#" + "a" * 65) == []
    assert bluesky("#" + "😀" * 32) == ["😀" * 32]  # 64 units
    assert bluesky("#" + "😀" * 33) == []


def test_bluesky_needs_a_letter_or_symbol_not_only_digits_and_punctuation() -> None:
    assert bluesky("#123 #1.2 #a1 #١٢") == ["a1", "١٢"]  # JavaScript's \\d is ASCII only


def test_same_hashtag_folds_case_and_canonical_equivalence_only() -> None:
    assert same_hashtag("TEAM", "team")
    assert same_hashtag("caf\u00e9", "cafe\u0301")
    assert not same_hashtag("t\u00e9am", "team")
    assert not same_hashtag("ｔｅａｍ", "team")  # full width reads differently


@pytest.mark.parametrize(
    "text",
    [
        "#team\u200d",
        "#team\u200dwork",
        "#team\u2060work",
        "#team\u00adwork",
        "#team\u200bwork",
        "#team\u202ekrow",
        "#team\u20e2",
    ],
)
def test_a_hashtag_with_something_invisible_glued_on_is_not_the_tag(text: str) -> None:
    for extract in (lambda t: x_hashtags(t, SEG), lambda t: mastodon_hashtags(t, SEG)):
        assert not carries_hashtag(text, extract(text), "#team")
    assert not carries_hashtag(text, bluesky_hashtags(text), "#team")


def test_carries_hashtag_needs_a_configured_tag_with_a_hash_sign() -> None:
    found = mastodon_hashtags("hello #team", SEG)
    assert carries_hashtag("hello #team", found, "#Team")
    assert carries_hashtag("hello #team", found, "＃team")
    assert not carries_hashtag("hello #team", found, "team")
    assert not carries_hashtag("hello #team", found, "#")


# --- Bluesky against the real @atproto/api ------------------------------------------------------

ORACLE_TEXTS = [text for text, *_ in ISSUE_CASES] + [
    "#team\u00adwork #team\u2060 #team\u20e2 #\ufe0fteam #team\ufe0f",
    "Hashtags in #中文, #日本語, #한국말, and #русский! Try it out!",
    "#１２３ #٣ #a١ #_ #-x #x- #x--",
    "a\u3000#team\u00a0#ok\u2028#fine\ufeff#bom \u0085#nel",
    "(#paren) [#bracket] '#quote' \"#dq\"",
    "#" + "b" * 64 + " #" + "c" * 65,
]


@pytest.mark.slow
def test_bluesky_tags_match_atproto_detect_facets(richtext_oracle: RichTextOracle) -> None:
    answers = richtext_oracle.facets(ORACLE_TEXTS)
    for text, facets in zip(ORACLE_TEXTS, answers, strict=True):
        expected = [
            [value, start, end]
            for kind, start, end, value in facets
            if kind == "tag" and not value.startswith("$")  # cashtags are not hashtags
        ]
        ours = [
            [h.name, len(text[: h.start].encode()), len(text[: h.end].encode())]
            for h in bluesky_hashtags(text)
        ]
        assert ours == expected, text
