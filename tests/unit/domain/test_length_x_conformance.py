"""twitter-text conformance: X weighted length against validate.yml, read at test time."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from ghostpost.domain.length import X_CONFIG_V2, X_CONFIG_V3, XConfig, XLength, count_x
from ghostpost.textseg import default_segmenter

with warnings.catch_warnings():
    # twitter_text imports pkg_resources, which warns under setuptools 81 (see ghostpost.textseg).
    warnings.simplefilter("ignore")
    from twitter_text import parse_tweet
    from twitter_text.config import config as twitter_text_config

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "twitter-text"

# Which config each section runs under, as in the reference rb/js runners (SOURCE.md).
SECTIONS: dict[str, XConfig] = {
    "WeightedTweetsCounterTest": X_CONFIG_V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": X_CONFIG_V3,
    "UnicodeDirectionalMarkerCounterTest": X_CONFIG_V3,
}

# The same configs as twitter-text-parser takes them. Its version2 dict lacks the emoji key
# (KeyError otherwise), so the complete dict is passed.
ORACLE_OPTIONS: dict[str, dict[str, Any]] = {
    "WeightedTweetsCounterTest": dict(twitter_text_config["version2"], emoji_parsing_enabled=False),
    "WeightedTweetsWithDiscountedEmojiCounterTest": twitter_text_config["version3"],
    "UnicodeDirectionalMarkerCounterTest": twitter_text_config["defaults"],
}

FIELDS = {
    "weightedLength": "weighted_length",
    "valid": "valid",
    "permillage": "permillage",
    "validRangeStart": "valid_range_start",
    "validRangeEnd": "valid_range_end",
    "displayRangeStart": "display_range_start",
    "displayRangeEnd": "display_range_end",
}


def _cases() -> list[Any]:
    tests = yaml.safe_load((VECTORS / "validate.yml").read_text(encoding="utf-8"))["tests"]
    params = []
    for section in SECTIONS:
        for case in tests[section]:
            params.append(
                pytest.param(
                    section,
                    case["text"],
                    case["expected"],
                    id=f"{section}: {case['description']}",
                )
            )
    return params


CASES = _cases()


def _as_reference(result: XLength) -> dict[str, Any]:
    return {name: getattr(result, attr) for name, attr in FIELDS.items()}


def test_sections_have_the_documented_case_counts() -> None:
    counts: dict[str, int] = {}
    for param in CASES:
        counts[param.values[0]] = counts.get(param.values[0], 0) + 1
    assert counts == {
        "WeightedTweetsCounterTest": 20,
        "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
        "UnicodeDirectionalMarkerCounterTest": 2,
    }


@pytest.mark.parametrize(("section", "text", "expected"), CASES)
def test_conformance(section: str, text: str, expected: dict[str, Any]) -> None:
    assert set(expected) == set(FIELDS)
    result = count_x(text, default_segmenter(), SECTIONS[section])
    assert _as_reference(result) == expected


@pytest.mark.parametrize(("section", "text", "expected"), CASES)
def test_agrees_with_twitter_text_parser(section: str, text: str, expected: dict[str, Any]) -> None:
    oracle = parse_tweet(text, ORACLE_OPTIONS[section]).asdict()
    result = count_x(text, default_segmenter(), SECTIONS[section])
    assert _as_reference(result) == oracle


@pytest.mark.parametrize(
    ("name", "config"), [("config-v2.json", X_CONFIG_V2), ("config-v3.json", X_CONFIG_V3)]
)
def test_hard_coded_configs_match_the_json(name: str, config: XConfig) -> None:
    data = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert config.max_weighted_length == data["maxWeightedTweetLength"]
    assert config.scale == data["scale"]
    assert config.default_weight == data["defaultWeight"]
    assert config.transformed_url_length == data["transformedURLLength"]
    assert config.ranges == tuple((r["start"], r["end"], r["weight"]) for r in data["ranges"])
    # v2.json has no emojiParsingEnabled key: it does not discount emoji.
    assert config.emoji_parsing_enabled == data.get("emojiParsingEnabled", False)


# Where twitter-text-parser (Python) departs from the JavaScript reference, count_x follows
# JavaScript. These pin the two known departures so that a change is deliberate.


def test_crlf_counts_both_characters_as_in_javascript() -> None:
    # twitter-text-parser turns "\r\n" into "\n" before counting (3); parseTweet.js does not (4).
    result = count_x("a\r\nb", default_segmenter())
    assert result.weighted_length == 4
    assert parse_tweet("a\r\nb").weightedLength == 3


def test_empty_text_ranges_as_in_javascript() -> None:
    result = count_x("", default_segmenter())
    assert result == XLength(0, False, 0, 0, 0, 0, 0)
    # twitter-text-parser reports validRangeEnd -1 here; parseTweet.js reports 0.
    assert parse_tweet("").validRangeEnd == -1
