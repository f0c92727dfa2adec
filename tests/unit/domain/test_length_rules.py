"""Mastodon and Bluesky counting rules, the budget API, and properties of all three counters."""

from __future__ import annotations

import re
import string
import unicodedata
import warnings

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.length import (
    X_CONFIG_V3,
    BlueskyBudget,
    Dimension,
    MastodonBudget,
    Measurement,
    XBudget,
    _is_ruby_word,
    _ruby_word_class,
    budget_for,
    count_bluesky,
    count_mastodon,
    count_x,
)
from ghostpost.textseg import UnicodeSegmenter, default_segmenter

with warnings.catch_warnings():
    # twitter_text imports pkg_resources, which warns under setuptools 81 (see ghostpost.textseg).
    warnings.simplefilter("ignore")
    from twitter_text import extract_emojis_with_indices, extract_urls_with_indices

SEG = default_segmenter()
FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # one grapheme, 7 code points, 25 UTF-8 bytes


def mastodon(text: str, *, url_length: int = 23, spoiler_text: str = "") -> int:
    return count_mastodon(text, SEG, url_length=url_length, spoiler_text=spoiler_text)


# --- Mastodon ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("https://a.io", 23, id="short URL counts 23, not 12"),
        pytest.param("https://example.com/" + "a" * 585, 23, id="605-char URL counts 23"),
        pytest.param("see https://a.io and http://b.io/x", 4 + 23 + 5 + 23, id="each URL 23"),
        pytest.param("see example.com", 15, id="URL without scheme counted literally"),
        pytest.param("@alice@example.social", 6, id="remote mention counts as @alice"),
        pytest.param("hi @alice@example.social!", 10, id="mention inside text"),
        pytest.param("@Alice@Example.Social", 6, id="mention case preserved"),
        pytest.param("@alice@bücher.example", 6, id="non-ASCII domain is free too"),
        pytest.param("@alice", 6, id="local mention unchanged"),
        pytest.param("@alice@example.social/path", 11, id="domain stops at slash"),
        pytest.param(FAMILY, 1, id="ZWJ family is one grapheme"),
        pytest.param("#team", 5, id="hashtag is plain text"),
        pytest.param(" #team", 6, id="disclosure tag with its space"),
        pytest.param("", 0, id="empty"),
        pytest.param("   \n\u3000", 0, id="whitespace only is blank, counts 0"),
        pytest.param("a\r\nb", 3, id="CRLF is one grapheme"),
    ],
)
def test_mastodon_counts(text: str, expected: int) -> None:
    assert mastodon(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Mastodon's redefined URL regex (config/initializers/twitter_regex.rb) has more schemes.
        pytest.param("gemini://a.io", 23, id="gemini scheme is a URL"),
        pytest.param("ipfs://a.io/x", 23, id="ipfs scheme is a URL"),
        # ... and its path may not end in "=", which stock twitter-text allows.
        pytest.param("https://example.com/a=", 24, id="path ending = left outside"),
        pytest.param("https://example.com/a?b=c", 23, id="query ending = kept"),
        pytest.param("https://a.io/wiki/Ü", 23, id="non-ASCII path inside"),
        pytest.param("xmpp:alice@example.org", 22, id="xmpp is not counted as a URL"),
        pytest.param("a.io/https://b.io", 17, id="scheme-less match swallows what follows"),
    ],
)
def test_mastodon_url_grammar(text: str, expected: int) -> None:
    assert mastodon(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("alice@example.social", 20, id="email address is not a mention"),
        pytest.param("a=@alice@example.social", 23, id="after = is not a mention"),
        pytest.param("/@alice@example.social", 22, id="after / is not a mention"),
        pytest.param("@alice@example.social@", 22, id="followed by @ is not a mention"),
        pytest.param("@alice@example.social://x", 25, id="followed by :// is not a mention"),
        # Ruby's [[:word:]] has marks, Python's \w does not: é (e + U+0301) blocks the mention.
        pytest.param("e\u0301@alice@example.social", 22, id="after combining mark"),
        # ... and Python's \w has other digits ("²") that Ruby's [[:word:]] does not.
        pytest.param("²@alice@example.social", 7, id="after superscript two"),
        # Ruby's /[a-z]/i does not match the dotless i; Python's IGNORECASE would.
        pytest.param("@alıce@example.social", 21, id="dotless i ends the username"),
        pytest.param("https://mastodon.social/@alice@example.social", 23, id="mention in URL"),
    ],
)
def test_mastodon_mentions(text: str, expected: int) -> None:
    assert mastodon(text) == expected


# Extractor::MAX_DOMAIN_LENGTH (app/lib/extractor.rb): a mention whose domain is longer than 253
# characters is no mention at all, so nothing is shortened and it counts in full.
DOMAIN_253 = "x" * 249 + ".com"
DOMAIN_254 = "x" * 250 + ".com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("@alice@" + DOMAIN_253, 6, id="253-character domain is free"),
        pytest.param("@alice@" + DOMAIN_254, 261, id="254-character domain counts in full"),
        # Ruby counts the domain in characters, not bytes: 253 "ü"s and ".de" are 506 bytes.
        pytest.param("@alice@" + "ü" * 250 + ".de", 6, id="253 non-ASCII characters"),
        pytest.param("@alice@" + "ü" * 251 + ".de", 261, id="254 non-ASCII characters"),
        pytest.param(
            "hi @bob@example.social and @alice@" + DOMAIN_254,
            len("hi @bob and @alice@") + 254,
            id="only the long one counts in full",
        ),
    ],
)
def test_mastodon_mentions_with_overlong_domains_count_in_full(text: str, expected: int) -> None:
    assert mastodon(text) == expected


def test_mastodon_url_length_and_spoiler() -> None:
    assert mastodon("https://a.io", url_length=30) == 30
    assert mastodon("hello", spoiler_text="CW: ") == 9
    with pytest.raises(ValueError):
        mastodon("x", url_length=-1)


def test_ruby_word_class_matches_unicode_properties() -> None:
    # Ruby's [[:word:]] is Alphabetic | Mark | Decimal_Number | Connector_Punctuation; `regex`
    # knows those properties, so it checks our stdlib-only rebuild on every code point.
    every = "".join(map(chr, range(0x110000)))
    reference = set(regex.findall(r"[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}]", every))
    ours = set(re.findall(f"[{_ruby_word_class()}]", every))
    # Only characters newer than Python's Unicode tables (which `regex` may know) may differ.
    assert all(unicodedata.category(char) == "Cn" for char in ours ^ reference)
    assert {"a", "é", "\u0301", "٣", "_", "Ⓐ", "Ⅻ"} <= ours
    assert not {"²", "-", ".", "@", " ", "😷"} & ours
    assert _is_ruby_word("\u0301")
    assert not _is_ruby_word("²")


# --- Bluesky ----------------------------------------------------------------------------------


def test_bluesky_counts() -> None:
    assert count_bluesky("", SEG) == (0, 0)
    assert count_bluesky("https://a.io", SEG) == (12, 12)  # URLs count in full
    assert count_bluesky("Grüße 👋🏽", SEG) == (7, 16)
    assert count_bluesky(FAMILY, SEG) == (1, 25)


def test_bluesky_grapheme_limit() -> None:
    budget = BlueskyBudget(SEG)
    assert budget.measure("a" * 300).fits
    over = budget.measure("a" * 301).overflow()
    assert over == Dimension("graphemes", 301, 300)


def test_bluesky_byte_limit() -> None:
    budget = BlueskyBudget(SEG)
    fits = budget.measure(FAMILY * 120)
    assert fits.fits
    assert fits.dimensions == (Dimension("graphemes", 120, 300), Dimension("bytes", 3000, 3000))
    over = budget.measure(FAMILY * 121)
    assert not over.fits
    assert over.overflow() == Dimension("bytes", 3025, 3000)
    assert over.dimension("graphemes").fits


def test_bluesky_disclosure_tag_edge() -> None:
    budget = BlueskyBudget(SEG)
    assert budget.measure("a" * 294 + " #team").fits
    assert not budget.measure("a" * 295 + " #team").fits


# --- X ----------------------------------------------------------------------------------------


def test_x_budget() -> None:
    budget = XBudget(SEG)
    assert budget.platform == "x"
    assert budget.measure("").primary == Dimension("characters", 0, 280)
    assert budget.measure("").fits  # the limit is the only concern of a measurement
    assert budget.measure("a" * 280).fits
    assert budget.measure("a" * 281).overflow() == Dimension("characters", 281, 280)
    assert budget.measure("😷" * 140).fits
    assert budget.measure("日" * 141).primary.used == 282
    assert budget.measure("see example.com").primary.used == 4 + 23


def test_x_invalid_characters() -> None:
    result = count_x("ok\ufeff", SEG)
    assert result.weighted_length == 4  # U+FEFF is outside the light ranges: weight 2
    assert not result.valid
    assert result.valid_range_end == 1  # the valid part stops before the invalid character


# --- Dimension, Measurement, Budget -----------------------------------------------------------


def test_dimension() -> None:
    under = Dimension("characters", 270, 280)
    assert (under.room, under.fits) == (10, True)
    exact = Dimension("bytes", 3000, 3000)
    assert (exact.room, exact.fits) == (0, True)
    over = Dimension("graphemes", 301, 300)
    assert (over.room, over.fits) == (-1, False)
    with pytest.raises(ValueError):
        Dimension("words", 1, 2)


def test_measurement() -> None:
    graphemes = Dimension("graphemes", 10, 300)
    size = Dimension("bytes", 3001, 3000)
    measured = Measurement((graphemes, size))
    assert measured.primary is graphemes
    assert measured.dimension("bytes") is size
    assert not measured.fits
    assert measured.overflow() is size
    with pytest.raises(KeyError):
        measured.dimension("characters")
    fine = Measurement((Dimension("characters", 1, 2),))
    assert fine.fits
    assert fine.overflow() is None
    with pytest.raises(ValueError):
        Measurement(())


def test_overflow_is_the_first_dimension_over() -> None:
    both = Measurement((Dimension("graphemes", 301, 300), Dimension("bytes", 3001, 3000)))
    assert both.overflow() == Dimension("graphemes", 301, 300)


def test_budget_for_every_platform() -> None:
    x = budget_for("x", SEG)
    assert isinstance(x, XBudget)
    assert (x.platform, x.limit, x.config) == ("x", 280, X_CONFIG_V3)

    mast = budget_for("mastodon", SEG)
    assert mast == MastodonBudget(SEG)
    assert (mast.platform, mast.limit, mast.url_length) == ("mastodon", 500, 23)

    local = budget_for("local", SEG)
    assert local == MastodonBudget(SEG, platform="local")
    assert local.measure("https://a.io").primary == Dimension("characters", 23, 500)

    sky = budget_for("bluesky", SEG)
    assert sky == BlueskyBudget(SEG)
    assert (sky.platform, sky.max_graphemes, sky.max_bytes) == ("bluesky", 300, 3000)


def test_budget_for_account_overrides() -> None:
    mast = budget_for("mastodon", SEG, limit=5000, url_length=30)
    assert mast.measure("https://a.io").primary == Dimension("characters", 30, 5000)
    x = budget_for("x", SEG, limit=25_000, url_length=30)
    assert x.measure("https://a.io").primary == Dimension("characters", 30, 25_000)
    sky = budget_for("bluesky", SEG, limit=100, url_length=30)  # URLs count in full there
    assert sky.measure("https://a.io").dimensions[0] == Dimension("graphemes", 12, 100)


@pytest.mark.parametrize("platform", ["linkedin", "X", "", "threads"])
def test_budget_for_unknown_platform(platform: str) -> None:
    with pytest.raises(ValueError):
        budget_for(platform, SEG)


def test_budgets_reject_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        budget_for("x", SEG, limit=0)
    with pytest.raises(ValueError):
        budget_for("mastodon", SEG, url_length=-1)
    with pytest.raises(ValueError):
        BlueskyBudget(SEG, max_bytes=0)


# --- Segmenter --------------------------------------------------------------------------------


def test_default_segmenter_is_shared() -> None:
    assert default_segmenter() is default_segmenter()
    assert isinstance(default_segmenter(), UnicodeSegmenter)


def test_segmenter_url_spans() -> None:
    text = "go https://a.io/x or example.com"
    assert SEG.url_spans(text, require_scheme=False) == ((3, 17), (21, 32))
    assert SEG.url_spans(text, require_scheme=True) == ((3, 17),)


# Pieces of emoji sequences (keycaps, ZWJ, skin tone, flags, tag sequences) and their neighbours.
EMOJI_ALPHABET = st.sampled_from(
    list(
        "ab #*19 .\u20e3\ufe0f\u200d\U0001f3fd😷👨👩👧☺❤"
        "\U0001f1fa\U0001f1e6🏴\U000e0067\U000e0062\U000e007f🔥é"
    )
)


@given(st.one_of(st.text(), st.text(alphabet=EMOJI_ALPHABET)))
def test_emoji_spans_match_twitter_text(text: str) -> None:
    expected = [tuple(e["indices"]) for e in extract_emojis_with_indices(text)]
    assert list(SEG.emoji_spans(text)) == expected


URL_TOKENS = st.sampled_from(
    [
        "word",
        "https://example.com",
        "http://example.com/a/b",
        "https://example.com/path?q=1&r=two",
        "https://sub.example.org/a_b-c/d.html",
        "http://t.co/abc123",
        "example.com",
        "(https://example.com/x)",
        "https://example.com.",
    ]
)


@given(st.lists(URL_TOKENS, max_size=6))
def test_mastodon_urls_agree_with_stock_twitter_text_on_ordinary_urls(tokens: list[str]) -> None:
    text = " ".join(tokens)
    stock = [tuple(e["indices"]) for e in extract_urls_with_indices(text, False)]
    assert list(SEG.url_spans(text, require_scheme=True)) == stock


# --- Properties -------------------------------------------------------------------------------

# Without ":" and "@" there are no scheme URLs and no mentions, so Mastodon counts plain text.
PLAIN = st.text(
    alphabet=st.sampled_from(
        string.ascii_letters + string.digits + " .,!?#'-\n" + "éü日😷" + FAMILY
    )
)


@given(st.text())
def test_bluesky_bytes_are_utf8_bytes(text: str) -> None:
    graphemes, size = count_bluesky(text, SEG)
    assert size == len(text.encode())
    assert graphemes <= len(text)


@given(st.text(alphabet=string.ascii_lowercase))
def test_mastodon_counts_lowercase_letters_one_each(text: str) -> None:
    assert mastodon(text) == len(text)


@given(st.text(alphabet=string.ascii_letters + " "))
def test_x_counts_ascii_letters_one_each(text: str) -> None:
    assert count_x(text, SEG).weighted_length == len(text)


@settings(deadline=None)  # the first Mastodon count builds the [[:word:]] class once
@given(PLAIN, PLAIN)
def test_appending_never_decreases_mastodon_or_bluesky(head: str, tail: str) -> None:
    assert mastodon(head + tail) >= mastodon(head)
    before, after = count_bluesky(head, SEG), count_bluesky(head + tail, SEG)
    assert after[0] >= before[0]
    assert after[1] >= before[1]


@given(st.text())
def test_x_fits_iff_weighted_length_within_limit(text: str) -> None:
    measured = XBudget(SEG).measure(text)
    assert measured.fits == (count_x(text, SEG).weighted_length <= 280)
