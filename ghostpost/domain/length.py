"""Exact post length as X, Mastodon and Bluesky count it, and the budgets the policy engine uses.

Stdlib only. The Unicode-heavy parts (URL and emoji entities, grapheme clusters) come in through
the `TextSegmenter` port; everything else -- weights, placeholders, mention rewriting, limits --
is ported here from the platforms' own code (see shared/notes/platforms.md, sections 1-4).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Protocol

from ghostpost.domain.hashtags import (
    OTHER_ALPHABETIC_SYMBOLS,
    Hashtag,
    bluesky_hashtags,
    carries_hashtag,
    mastodon_hashtags,
    x_hashtags,
)
from ghostpost.domain.post_options import CONTENT_WARNING_PLATFORMS

__all__ = [
    "X_CONFIG_V2",
    "X_CONFIG_V3",
    "BlueskyBudget",
    "Budget",
    "Dimension",
    "MastodonBudget",
    "Measurement",
    "TextSegmenter",
    "XBudget",
    "XConfig",
    "XLength",
    "budget_for",
    "count_bluesky",
    "count_mastodon",
    "count_x",
    "with_content_warning",
]


class TextSegmenter(Protocol):
    """Port for the Unicode-heavy analysis the counters need (URLs, emoji, grapheme clusters)."""

    def url_spans(self, text: str, *, require_scheme: bool) -> Sequence[tuple[int, int]]:
        """Return URL entities as (start, end) code-point spans, end exclusive.

        With require_scheme=False protocol-less URLs (`example.com`) are included, as X counts
        them; with require_scheme=True only URLs with a scheme, as Mastodon counts them.
        """
        ...

    def emoji_spans(self, text: str) -> Sequence[tuple[int, int]]:
        """Return twitter-text emoji entities as (start, end) code-point spans, end exclusive."""
        ...

    def grapheme_count(self, text: str) -> int:
        """Return the number of extended grapheme clusters in `text`."""
        ...


# --------------------------------------------------------------------------------------------
# X (twitter-text v3 parseTweet)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XConfig:
    """A twitter-text weighting configuration (config/v2.json, config/v3.json)."""

    max_weighted_length: int
    scale: int
    default_weight: int
    transformed_url_length: int
    ranges: tuple[tuple[int, int, int], ...]  # (first code point, last code point, weight)
    emoji_parsing_enabled: bool = False

    def __post_init__(self) -> None:
        if self.scale <= 0 or self.max_weighted_length <= 0:
            raise ValueError("scale and max_weighted_length must be positive")

    def weight(self, code_point: int) -> int:
        """Return the weight of one code point: its first matching range, else the default."""
        for start, end, weight in self.ranges:
            if start <= code_point <= end:
                return weight
        return self.default_weight


_X_RANGES: tuple[tuple[int, int, int], ...] = (
    (0, 4351, 100),
    (8192, 8205, 100),
    (8208, 8223, 100),
    (8242, 8247, 100),
)

#: twitter-text config/v3.json: what X uses today (emoji sequences count 2).
X_CONFIG_V3 = XConfig(
    max_weighted_length=280,
    scale=100,
    default_weight=200,
    transformed_url_length=23,
    ranges=_X_RANGES,
    emoji_parsing_enabled=True,
)

#: twitter-text config/v2.json: same weights, every code point of an emoji counted separately.
X_CONFIG_V2 = XConfig(
    max_weighted_length=280,
    scale=100,
    default_weight=200,
    transformed_url_length=23,
    ranges=_X_RANGES,
    emoji_parsing_enabled=False,
)

# twitter-text's invalid characters: any of them makes the whole post invalid.
_X_INVALID_CHARS = frozenset("\ufffe\ufeff\uffff")


@dataclass(frozen=True)
class XLength:
    """What twitter-text parseTweet returns (ranges in UTF-16 code units, end inclusive)."""

    weighted_length: int
    valid: bool
    permillage: int
    valid_range_start: int
    valid_range_end: int
    display_range_start: int
    display_range_end: int


def _utf16_units(text: str) -> int:
    # surrogatepass: a lone surrogate is one code unit, as in a JavaScript string.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _entity_ends(spans: Sequence[tuple[int, int]], size: int) -> dict[int, int]:
    # Keyed by start, the last span winning, like twitter-text's transformEntitiesToHash; spans
    # that are empty or fall outside the text cannot be skipped over and are ignored.
    return {start: end for start, end in spans if 0 <= start < end <= size}


def count_x(text: str, segmenter: TextSegmenter, config: XConfig = X_CONFIG_V3) -> XLength:
    """Count `text` as X does: a port of twitter-text v3 parseTweet."""
    normalized = unicodedata.normalize("NFC", text)
    size = len(normalized)
    url_ends = _entity_ends(segmenter.url_spans(normalized, require_scheme=False), size)
    emoji_ends = (
        _entity_ends(segmenter.emoji_spans(normalized), size)
        if config.emoji_parsing_enabled
        else {}
    )
    scale = config.scale
    max_scaled = config.max_weighted_length * scale

    weighted = 0  # in scaled units, divided by `scale` at the end as parseTweet does
    valid = True
    # parseTweet walks UTF-16 code units; we walk code points and keep the UTF-16 position of
    # the last unit of the current entity, which is what parseTweet records.
    units_done = 0
    valid_display_index = 0
    index = 0
    while index < size:
        end = url_ends.get(index)
        if end is not None:
            weighted += config.transformed_url_length * scale
        else:
            end = emoji_ends.get(index)
            if end is not None:
                weighted += config.default_weight
            else:
                end = index + 1
                code_point = ord(normalized[index])
                # JavaScript weighs an astral character by its low surrogate, which no range
                # covers, so it always gets the default weight.
                weighted += (
                    config.default_weight if code_point > 0xFFFF else config.weight(code_point)
                )
        units_done += _utf16_units(normalized[index:end])
        # parseTweet checks only the last code unit of an entity; URLs and emoji cannot contain
        # the invalid characters anyway.
        if valid and normalized[end - 1] in _X_INVALID_CHARS:
            valid = False
        if valid and weighted <= max_scaled:
            valid_display_index = units_done - 1
        index = end

    # NFC can change the length; parseTweet shifts the valid range back onto the original text.
    display_units = _utf16_units(text)
    normalization_offset = display_units - _utf16_units(normalized)
    # Round up: with the published configs the sum is always a multiple of the scale, and for
    # any other config over-counting is the safe direction for "does it fit".
    weighted_length = -(-weighted // scale)
    return XLength(
        weighted_length=weighted_length,
        valid=valid and 0 < weighted <= max_scaled,
        # The same float arithmetic as JavaScript, which is not always the exact floor (a weighted
        # length of 2261 gives 8074, not 8075).
        permillage=math.floor(weighted / scale / config.max_weighted_length * 1000),
        valid_range_start=0,
        valid_range_end=valid_display_index + normalization_offset,
        display_range_start=0,
        display_range_end=display_units - 1 if display_units > 0 else 0,
    )


# --------------------------------------------------------------------------------------------
# Mastodon (StatusLengthValidator)
# --------------------------------------------------------------------------------------------

# Ruby's [[:space:]] (Unicode White_Space): a status made only of these is `blank?`.
_RUBY_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# Code points scanned for [[:word:]]: planes 0-3 and plane 14. Planes 4-13 are unassigned and
# 15-16 are private use, so skipping them keeps the one-off scan cheap without changing it.
_WORD_SCAN = (range(0x40000), range(0xE0000, 0xE1000))


def _is_ruby_word(char: str) -> bool:
    """Tell whether Ruby's [[:word:]] matches `char` (Alphabetic, Mark, Nd or Pc)."""
    category = unicodedata.category(char)
    if category[0] in "LM" or category in ("Nd", "Nl", "Pc"):
        return True
    code_point = ord(char)
    return any(start <= code_point <= end for start, end in OTHER_ALPHABETIC_SYMBOLS)


def _class_escape(code_point: int) -> str:
    return f"\\U{code_point:08x}"


@cache
def _ruby_word_class() -> str:
    """Return a character-class body equivalent to Ruby's [[:word:]], built once."""
    # Python's \w differs from Ruby's [[:word:]] (it lacks marks, has No digits such as "²");
    # either difference could turn a non-mention into a mention and under-count.
    parts: list[str] = []
    for block in _WORD_SCAN:
        run_start: int | None = None
        for code_point in block:
            if _is_ruby_word(chr(code_point)):
                if run_start is None:
                    run_start = code_point
            elif run_start is not None:
                parts.append(f"{_class_escape(run_start)}-{_class_escape(code_point - 1)}")
                run_start = None
        if run_start is not None:
            parts.append(f"{_class_escape(run_start)}-{_class_escape(block[-1])}")
    return "".join(parts)


@cache
def mastodon_mention_re() -> re.Pattern[str]:
    """Return Mastodon's Account::MENTION_RE ported to `re`."""
    word = _ruby_word_class()
    # USERNAME_RE is /[a-z0-9_]+([.-]+[a-z0-9_]+)*/i. Ruby's case folding makes [a-z] also match
    # U+017F and U+212A but not the dotted/dotless i, which Python's IGNORECASE would accept.
    letter = "[0-9A-Z_a-z\u017f\u212a]"
    username = f"{letter}+(?:[.-]+{letter}+)*"
    return re.compile(f"(?<![=/{word}])@(({username})(?:@[{word}]+(?:[.-]+[{word}]+)*)?)")


# twitter-text's LATIN_ACCENTS, used by end_mention_match.
_LATIN_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263"
    "\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
# twitter-text's end_mention_match: a match followed by one of these is not a mention.
_END_MENTION = re.compile(f"[@\uff20]|[{_LATIN_ACCENTS}]|://")


#: Extractor::MAX_DOMAIN_LENGTH (app/lib/extractor.rb): a longer domain makes no mention.
MASTODON_MAX_DOMAIN_LENGTH = 253


def _mention_entities(text: str) -> list[tuple[int, int, str]]:
    """Return Mastodon's mention entities as (start, end, replacement) (Extractor module)."""
    if "@" not in text:
        return []
    entities = []
    for match in mastodon_mention_re().finditer(text):
        if _END_MENTION.match(text, match.end()):
            continue
        # `_, domain = screen_name.split('@')`; `domain.length` counts characters. Such a
        # "mention" is plain text to Mastodon, so its domain is not free: it counts in full.
        _, _, domain = match.group(1).partition("@")
        if len(domain) > MASTODON_MAX_DOMAIN_LENGTH:
            continue
        # "@user@domain" counts as "@user": the domain is free.
        entities.append((match.start(1) - 1, match.end(1), "@" + match.group(2)))
    return entities


def _remove_overlapping(
    entities: list[tuple[int, int, str]],
) -> list[tuple[int, int, str]]:
    """Drop entities that overlap an earlier kept one (twitter-text remove_overlapping_entities)."""
    kept: list[tuple[int, int, str]] = []
    for entity in sorted(entities, key=lambda e: e[0]):
        if kept and kept[-1][1] > entity[0]:
            continue
        kept.append(entity)
    return kept


def _mastodon_countable_text(text: str, segmenter: TextSegmenter, url_length: int) -> str:
    """Return the text Mastodon counts: URLs as placeholders, mentions without their domain."""
    if all(char in _RUBY_WHITE_SPACE for char in text):
        return ""  # Ruby's `str.blank?`: a whitespace-only status counts nothing
    placeholder = "x" * url_length
    urls = [
        (start, end, placeholder)
        for start, end in segmenter.url_spans(text, require_scheme=True)
        if 0 <= start < end <= len(text)
    ]
    pieces: list[str] = []
    position = 0
    for start, end, replacement in _remove_overlapping(urls + _mention_entities(text)):
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def count_mastodon(
    text: str, segmenter: TextSegmenter, *, url_length: int = 23, spoiler_text: str = ""
) -> int:
    """Count `text` as Mastodon's StatusLengthValidator does (the content warning counts too)."""
    if url_length < 0:
        raise ValueError("url_length must not be negative")
    countable = _mastodon_countable_text(text, segmenter, url_length)
    # The validator joins the CW and the text and counts grapheme clusters of the whole.
    return segmenter.grapheme_count(spoiler_text + countable)


# --------------------------------------------------------------------------------------------
# Bluesky (app.bsky.feed.post lexicon)
# --------------------------------------------------------------------------------------------


def count_bluesky(text: str, segmenter: TextSegmenter) -> tuple[int, int]:
    """Count `text` as the Bluesky lexicon does: (grapheme clusters, UTF-8 bytes)."""
    # URLs, mentions and tags are literal text there (links live in facets), so nothing is
    # rewritten. surrogatepass: a lone surrogate is counted rather than crashing the count.
    return segmenter.grapheme_count(text), len(text.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------

_UNITS = frozenset({"characters", "graphemes", "bytes"})


@dataclass(frozen=True)
class Dimension:
    """One measured quantity of a post against its limit."""

    unit: str  # "characters" | "graphemes" | "bytes"
    used: int
    limit: int

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise ValueError(f"unknown unit {self.unit!r}")

    @property
    def room(self) -> int:
        """Return how much is left under the limit (negative when over)."""
        return self.limit - self.used

    @property
    def fits(self) -> bool:
        """Tell whether the quantity is within its limit."""
        return self.used <= self.limit


@dataclass(frozen=True)
class Measurement:
    """Every quantity a platform checks for one text."""

    dimensions: tuple[Dimension, ...]

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise ValueError("a measurement needs at least one dimension")

    @property
    def fits(self) -> bool:
        """Tell whether every dimension is within its limit."""
        return all(d.fits for d in self.dimensions)

    @property
    def primary(self) -> Dimension:
        """Return the dimension shown to people first."""
        return self.dimensions[0]

    def dimension(self, unit: str) -> Dimension:
        """Return the dimension measured in `unit` (KeyError if there is none)."""
        for candidate in self.dimensions:
            if candidate.unit == unit:
                return candidate
        raise KeyError(unit)

    def overflow(self) -> Dimension | None:
        """Return the first dimension over its limit, or None if the text fits."""
        return next((d for d in self.dimensions if not d.fits), None)


class Budget(Protocol):
    """How one platform measures a post against its limits."""

    # Read-only, so that frozen dataclasses satisfy the protocol.
    @property
    def platform(self) -> str:
        """Return the platform name ("x", "mastodon", "local", "bluesky")."""
        ...

    def measure(self, text: str) -> Measurement:
        """Measure `text` against this platform's limits."""
        ...

    def hashtags(self, text: str) -> Sequence[Hashtag]:
        """Return the hashtags this platform finds in `text`, as it would be sent."""
        ...

    def finds_hashtag(self, text: str, tag: str) -> bool:
        """Tell whether this platform shows `tag` (e.g. "#team") as a hashtag of `text`."""
        ...


def _require_positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class XBudget:
    """X: weighted characters (twitter-text v3), 280 by default."""

    segmenter: TextSegmenter
    limit: int = 280
    config: XConfig = X_CONFIG_V3
    platform: str = field(default="x", init=False)

    def __post_init__(self) -> None:
        _require_positive("limit", self.limit)

    def measure(self, text: str) -> Measurement:
        """Measure the weighted length of `text` (an empty text weighs 0 and fits)."""
        used = count_x(text, self.segmenter, self.config).weighted_length
        return Measurement((Dimension("characters", used, self.limit),))

    def hashtags(self, text: str) -> Sequence[Hashtag]:
        """Return the hashtags X finds in `text` (twitter-text extractHashtags)."""
        return x_hashtags(text, self.segmenter)

    def finds_hashtag(self, text: str, tag: str) -> bool:
        """Tell whether X finds `tag` in `text`, as sent and in the NFC form X counts."""
        # X normalises to NFC (parseTweet counts that form), and NFC can turn a character after
        # the tag into one that continues it (U+0387 becomes the hashtag character U+00B7), so
        # the tag must be there in both forms.
        normalized = unicodedata.normalize("NFC", text)
        return carries_hashtag(text, self.hashtags(text), tag) and (
            normalized == text or carries_hashtag(normalized, self.hashtags(normalized), tag)
        )


@dataclass(frozen=True)
class MastodonBudget:
    """Mastodon and compatible servers: countable characters, 500 by default."""

    segmenter: TextSegmenter
    limit: int = 500
    url_length: int = 23
    platform: str = "mastodon"
    #: The post's content warning: Mastodon counts it with the text (StatusLengthValidator).
    content_warning: str = ""

    def __post_init__(self) -> None:
        _require_positive("limit", self.limit)
        if self.url_length < 0:
            raise ValueError(f"url_length must not be negative, got {self.url_length}")

    def measure(self, text: str) -> Measurement:
        """Measure the countable length of `text`."""
        used = count_mastodon(
            text, self.segmenter, url_length=self.url_length, spoiler_text=self.content_warning
        )
        return Measurement((Dimension("characters", used, self.limit),))

    def hashtags(self, text: str) -> Sequence[Hashtag]:
        """Return the hashtags a Mastodon status of `text` shows."""
        return mastodon_hashtags(text, self.segmenter)

    def finds_hashtag(self, text: str, tag: str) -> bool:
        """Tell whether a Mastodon status of `text` shows `tag` as a hashtag."""
        return carries_hashtag(text, self.hashtags(text), tag)


@dataclass(frozen=True)
class BlueskyBudget:
    """Bluesky: 300 grapheme clusters and 3000 UTF-8 bytes, both enforced."""

    segmenter: TextSegmenter
    max_graphemes: int = 300
    max_bytes: int = 3000
    platform: str = field(default="bluesky", init=False)

    def __post_init__(self) -> None:
        _require_positive("max_graphemes", self.max_graphemes)
        _require_positive("max_bytes", self.max_bytes)

    def measure(self, text: str) -> Measurement:
        """Measure `text` in graphemes, then in bytes."""
        graphemes, size = count_bluesky(text, self.segmenter)
        return Measurement(
            (
                Dimension("graphemes", graphemes, self.max_graphemes),
                Dimension("bytes", size, self.max_bytes),
            )
        )

    def hashtags(self, text: str) -> Sequence[Hashtag]:
        """Return the tag facets Bluesky's rich-text detection makes of `text`."""
        return bluesky_hashtags(text)

    def finds_hashtag(self, text: str, tag: str) -> bool:
        """Tell whether `text` gets a tag facet for `tag` (compared case-insensitively)."""
        return carries_hashtag(text, self.hashtags(text), tag)


def with_content_warning(budget: Budget, content_warning: str) -> Budget | None:
    """Return `budget` measuring posts that carry `content_warning` (counted with the text, as
    Mastodon counts it), or None if its platform has no content warnings."""
    if not content_warning:
        return budget
    if isinstance(budget, MastodonBudget) and budget.platform in CONTENT_WARNING_PLATFORMS:
        return replace(budget, content_warning=content_warning)
    return None


def budget_for(
    platform: str,
    segmenter: TextSegmenter,
    *,
    limit: int | None = None,
    url_length: int | None = None,
) -> Budget:
    """Return the budget for `platform`, with an account's own limit and URL length if given.

    For X, `url_length` replaces the config's transformed URL length. For Bluesky, `limit` is
    the grapheme limit and `url_length` does not apply (URLs count in full) and is ignored.
    """
    if platform == "x":
        config = X_CONFIG_V3
        if url_length is not None:
            config = replace(config, transformed_url_length=url_length)
        return XBudget(segmenter, limit=280 if limit is None else limit, config=config)
    if platform in ("mastodon", "local"):
        # "local" is our own Mastodon-compatible server: Mastodon's rules and default limit.
        return MastodonBudget(
            segmenter,
            limit=500 if limit is None else limit,
            url_length=23 if url_length is None else url_length,
            platform=platform,
        )
    if platform == "bluesky":
        return BlueskyBudget(segmenter, max_graphemes=300 if limit is None else limit)
    raise ValueError(f"unknown platform {platform!r}")
