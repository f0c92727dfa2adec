"""The TextSegmenter adapter: twitter-text-parser for URLs and emoji, `regex` for graphemes."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import cache, lru_cache

import regex  # type: ignore[import-untyped]

with warnings.catch_warnings():
    # twitter_text imports pkg_resources, which warns about its own deprecation under
    # setuptools 81. The warning is not ours to act on (we pin setuptools<82 for it), and
    # pytest turns warnings into errors, so it is silenced for this import only.
    warnings.simplefilter("ignore")
    from twitter_text.extract_urls import (  # type: ignore[import-untyped]
        extract_urls_with_indices,
        is_valid_url,
    )
    from twitter_text.regexp.emoji import (  # type: ignore[import-untyped]
        emoji as _twitter_emoji,
    )
    from twitter_text.regexp.emoji import emoji_list as _twitter_emoji_list
    from twitter_text.regexp.valid_domain import (  # type: ignore[import-untyped]
        valid_domain as _valid_domain,
    )
    from twitter_text.regexp.valid_port_number import (  # type: ignore[import-untyped]
        valid_port_number as _valid_port_number,
    )
    from twitter_text.regexp.valid_tco_url import (  # type: ignore[import-untyped]
        valid_tco_url as _valid_tco_url,
    )
    from twitter_text.regexp.valid_url_balanced_parens import (  # type: ignore[import-untyped]
        valid_url_balanced_parens as _valid_url_balanced_parens,
    )
    from twitter_text.regexp.valid_url_preceding_chars import (  # type: ignore[import-untyped]
        valid_url_preceding_chars as _valid_url_preceding_chars,
    )

__all__ = ["UnicodeSegmenter", "default_segmenter"]

_GRAPHEME = regex.compile(r"\X")

# Every twitter-text emoji starts with one of these code points. Trying the (very large) emoji
# pattern only where one stands gives the same matches as scanning every position, much faster.
_EMOJI_START = re.compile(
    "["
    + "".join(
        sorted({re.escape(chr(int(e.codepoint.split()[0], 16))) for e in _twitter_emoji_list})
    )
    + "]"
)

# --- Mastodon's URL grammar -----------------------------------------------------------------
# Mastodon does not use twitter-text's URL regex as published: config/initializers/
# twitter_regex.rb redefines it (more schemes such as gemini://, almost any non-space path
# character, path endings without "=", non-ASCII query characters). Counting with the stock
# regex would count "gemini://a.io" as 13 instead of 23 and "https://a.io/x=" one short, so the
# redefinition is rebuilt here from twitter-text-parser's unchanged pieces.

# Ruby's \p{White_Space}.
_WHITE_SPACE = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_UCHARS = (
    "\\xa0-\\ud7ff\\uf900-\\ufdcf\\ufdf0-\\uffef\\U00010000-\\U0001fffd\\U00020000-\\U0002fffd"
    "\\U00030000-\\U0003fffd\\U00040000-\\U0004fffd\\U00050000-\\U0005fffd"
    "\\U00060000-\\U0006fffd\\U00070000-\\U0007fffd\\U00080000-\\U0008fffd"
    "\\U00090000-\\U0009fffd\\U000a0000-\\U000afffd\\U000b0000-\\U000bfffd"
    "\\U000c0000-\\U000cfffd\\U000d0000-\\U000dfffd\\U000e1000-\\U000efffd\\ue000-\\uf8ff"
    "\\U000f0000-\\U000ffffd\\U00100000-\\U0010fffd"
)
_PATH_CHAR = f"[^{_WHITE_SPACE}<>()?]"
# Mastodon defines the ending characters before it redefines the balanced parentheses, so they
# embed the stock twitter-text version.
_PATH_END = (
    f"(?:[^{_WHITE_SPACE}()?!*\"'\u300c\u300d<>;:=,.$%\\[\\]~&|@]"
    f"|(?:{_valid_url_balanced_parens.pattern}))"
)
_BALANCED_PARENS = f"\\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\\({_PATH_CHAR}+\\){_PATH_CHAR}*))\\)"
_PATH = f"(?:(?:{_PATH_CHAR}*(?:{_BALANCED_PARENS}{_PATH_CHAR}*)*{_PATH_END})|(?:{_PATH_CHAR}+/))"
_QUERY_CHAR = f"[a-z0-9!?*'();:&=+$/%#\\[\\]\\-_.,~|@\\^{_UCHARS}]"
_QUERY_END = f"[a-z0-9_&=#/\\-{_UCHARS}]"
_MASTODON_URL = re.compile(
    "("
    f"({_valid_url_preceding_chars.pattern})"
    "("
    "((?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://)?"
    f"({_valid_domain.pattern})"
    f"(?::({_valid_port_number.pattern}))?"
    f"(/{_PATH}*)?"
    f"(\\?{_QUERY_CHAR}*{_QUERY_END})?"
    ")"
    ")",
    re.IGNORECASE,
)
_MAX_TCO_SLUG_LENGTH = 40


def _mastodon_url_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Return URLs with a scheme as Mastodon extracts them (extract_url_without_protocol: false)."""
    if ":" not in text:
        return ()
    spans = []
    for match in _MASTODON_URL.finditer(text):
        url, protocol, domain = match.group(3), match.group(4), match.group(5)
        # A protocol-less match is skipped, not retried: like Ruby's scan, it still consumes its
        # text, which is why the protocol stays optional in the pattern.
        if protocol is None or not is_valid_url(url, protocol, domain):
            continue
        start, end = match.span(3)
        tco = _valid_tco_url.match(url)
        if tco is not None:
            # A t.co URL takes no extra path characters.
            if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                continue
            end = start + len(tco.group(0))
        spans.append((start, end))
    return tuple(spans)


@lru_cache(maxsize=256)
def _url_spans(text: str, require_scheme: bool) -> tuple[tuple[int, int], ...]:
    # Cached: the policy engine measures the same text several times (with and without a tag).
    if require_scheme:
        return _mastodon_url_spans(text)
    entities = extract_urls_with_indices(text, extract_urls_without_protocol=True)
    return tuple((int(e["indices"][0]), int(e["indices"][1])) for e in entities)


@lru_cache(maxsize=256)
def _emoji_spans(text: str) -> tuple[tuple[int, int], ...]:
    spans = []
    position = 0
    while (start := _EMOJI_START.search(text, position)) is not None:
        match = _twitter_emoji.match(text, start.start())
        if match is None:
            position = start.start() + 1
        else:
            spans.append(match.span())
            position = match.end()
    return tuple(spans)


class UnicodeSegmenter:
    """TextSegmenter backed by twitter-text-parser (URLs, emoji) and `regex` (graphemes)."""

    def url_spans(self, text: str, *, require_scheme: bool) -> Sequence[tuple[int, int]]:
        """Return URL spans: X's grammar without a scheme, Mastodon's with one."""
        return _url_spans(text, require_scheme)

    def emoji_spans(self, text: str) -> Sequence[tuple[int, int]]:
        """Return twitter-text emoji entity spans (Unicode Emoji 12.0 sequences)."""
        return _emoji_spans(text)

    def grapheme_count(self, text: str) -> int:
        """Return the number of extended grapheme clusters in `text`."""
        return len(_GRAPHEME.findall(text))


@cache
def default_segmenter() -> UnicodeSegmenter:
    """Return the shared segmenter (it holds no state, so one instance serves everyone)."""
    return UnicodeSegmenter()
