"""Hashtags as X, Mastodon and Bluesky find them in the exact text that is sent.

Stdlib only. One extractor per platform, each a port of the platform's own rules:

- X: twitter-text `extractHashtagsWithIndices` (rb/lib/twitter-text/regex.rb HASHTAG and
  extractor.rb), checked against the conformance file `extract.yml`.
- Mastodon (and our own Mastodon-compatible "local" server): `Tag::HASHTAG_RE` (app/models/tag.rb)
  scanned as `Extractor.extract_hashtags_with_indices` does, then the overlap rule of the status
  formatter, which shows a URL instead of a hashtag inside it. The servers an account lives on
  run different versions, and the rule of what may stand before the hash sign changed between
  them, so only what every version from 4.2 on finds counts (see mastodon_hashtags).
- Bluesky: the hashtag facets of `@atproto/api` `detectFacets` (rich-text/util.ts TAG_REGEX),
  from ghostpost.domain.richtext, which the Bluesky adapter sends too.

Spans are code-point indices into the text, end exclusive, the hash sign included.

Where our Unicode tables cannot say exactly what the platform's engine would (Python's
`unicodedata` has no Alphabetic property and may be older or newer than the platform's), the
extractors err towards *not* finding a hashtag: a character of unknown kind continues a hashtag and
stops one from starting. Missing a hashtag only means the tag is appended once more; finding one
the platform does not see would publish a post without its disclosure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ghostpost.domain.richtext import hashtag_matches

__all__ = [
    "OTHER_ALPHABETIC_SYMBOLS",
    "Hashtag",
    "UrlFinder",
    "bluesky_hashtags",
    "carries_hashtag",
    "hashtag_name",
    "mastodon_hashtags",
    "same_hashtag",
    "x_hashtags",
]


@dataclass(frozen=True)
class Hashtag:
    """One hashtag a platform extracts: its name (no hash sign) and the span it covers."""

    name: str
    start: int  # the hash sign
    end: int  # exclusive


class UrlFinder(Protocol):
    """The part of the TextSegmenter port the extractors need (URLs hide hashtags inside them)."""

    def url_spans(self, text: str, *, require_scheme: bool) -> Sequence[tuple[int, int]]:
        """Return URL entities as (start, end) code-point spans, end exclusive."""
        ...


#: Categories our tables cannot vouch for: unassigned here (maybe a letter in the platform's
#: newer Unicode), private use (twitter-text lists some as letters) and lone surrogates.
_UNKNOWN_CATEGORIES = frozenset({"Cn", "Co", "Cs"})

# Other_Alphabetic code points outside the Mark categories (PropList.txt): circled and squared
# Latin letters. unicodedata has no Alphabetic property, so these are listed by hand.
OTHER_ALPHABETIC_SYMBOLS = (
    (0x24B6, 0x24E9),
    (0x1F130, 0x1F149),
    (0x1F150, 0x1F169),
    (0x1F170, 0x1F189),
)


def _other_alphabetic_symbol(char: str) -> bool:
    code_point = ord(char)
    return any(start <= code_point <= end for start, end in OTHER_ALPHABETIC_SYMBOLS)


def _without_overlaps(tags: list[Hashtag], urls: Iterable[tuple[int, int]]) -> list[Hashtag]:
    """Keep the hashtags that survive twitter-text's remove_overlapping_entities among the URLs.

    Entities are taken in order of their start; one that begins inside the previous kept entity
    is dropped. A hashtag and a URL never start at the same index (a URL cannot start with "#").
    """
    entities: list[tuple[int, int, Hashtag | None]] = [(t.start, t.end, t) for t in tags]
    entities += [(start, end, None) for start, end in urls if start < end]
    entities.sort(key=lambda entity: entity[0])
    kept: list[Hashtag] = []
    previous_end = -1
    for start, end, tag in entities:
        if start < previous_end:
            continue
        previous_end = end
        if tag is not None:
            kept.append(tag)
    return kept


# --------------------------------------------------------------------------------------------
# X (twitter-text)
# --------------------------------------------------------------------------------------------

_X_HASH_SIGNS = "#\uff03"
#: twitter-text HASHTAG_SPECIAL_CHARS: they continue a hashtag besides letters, marks, digits.
_X_SPECIAL = frozenset(
    "_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb\u3003\u0f0b\u0f0c\u00b7"
)


def _x_letter(char: str) -> bool:
    """HASHTAG_LETTERS_AND_MARKS: \\p{L}\\p{M} (plus letters of newer Unicode: unknown here)."""
    category = unicodedata.category(char)
    return category[0] in "LM" or category in _UNKNOWN_CATEGORIES


def _x_hashtag_char(char: str) -> bool:
    """HASHTAG_LETTERS_NUMERALS: letters and marks, \\p{Nd}, the special characters."""
    return _x_letter(char) or char in _X_SPECIAL or unicodedata.category(char) == "Nd"


def _x_boundary(char: str) -> bool:
    """What may stand right before the hash sign: `\\ufe0e|\\ufe0f|[^&LETTERS_NUMERALS]`."""
    return char in "\ufe0e\ufe0f" or (char != "&" and not _x_hashtag_char(char))


def x_hashtags(text: str, urls: UrlFinder) -> list[Hashtag]:
    """Return the hashtags X finds in `text` (twitter-text extractHashtagsWithIndices).

    The pattern, scanned left to right like Ruby's `String#scan`:
    `(\\A|\\ufe0e|\\ufe0f|[^&LNS])(#|＃)(?!\\ufe0f|\\u20e3)(LNS* L LNS*)`; a match followed by a
    hash sign or "://" is dropped, and so is a hashtag that starts inside a URL (URLs without a
    scheme included, as twitter-text extracts them).
    """
    if not any(sign in text for sign in _X_HASH_SIGNS):
        return []
    tags: list[Hashtag] = []
    scan_from = 0  # the scan resumes after the previous match, which consumed its text
    for index, char in enumerate(text):
        if char not in _X_HASH_SIGNS or index < scan_from:
            continue
        # At the very start `\A` stands in for the character before; elsewhere that character
        # must be unconsumed and a boundary.
        if index > 0 and (index - 1 < scan_from or not _x_boundary(text[index - 1])):
            continue
        if text[index + 1 : index + 2] in ("\ufe0f", "\u20e3"):
            continue  # a keycap or emoji-style "#", not a hash sign
        end = index + 1
        while end < len(text) and _x_hashtag_char(text[end]):
            end += 1
        name = text[index + 1 : end]
        # The greedy `LNS* L LNS*` takes the whole run when it holds a letter, else nothing.
        if not any(_x_letter(c) for c in name):
            continue
        scan_from = end
        if text.startswith(("#", "\uff03", "://"), end):
            continue  # end_hashtag_match: "#a#b" and "#http://" are not hashtags
        tags.append(Hashtag(name, index, end))
    if not tags:
        return tags
    return _without_overlaps(tags, urls.url_spans(text, require_scheme=False))


# --------------------------------------------------------------------------------------------
# Mastodon (Tag::HASHTAG_RE, Extractor)
# --------------------------------------------------------------------------------------------

#: Tag::HASHTAG_SEPARATORS: they may stand inside a hashtag, never at its end.
_MASTODON_SEPARATORS = frozenset("_\u00b7\u30fb\u200c")


def _ruby_alpha(char: str) -> bool:
    """Ruby's [[:alpha:]] (Alphabetic), widened to every mark and every unknown character."""
    category = unicodedata.category(char)
    return (
        category[0] in "LM"
        or category == "Nl"
        or category in _UNKNOWN_CATEGORIES
        or _other_alphabetic_symbol(char)
    )


def _ruby_word(char: str) -> bool:
    """Ruby's [[:word:]]: Alphabetic, Mark, Decimal_Number, Connector_Punctuation.

    Not the joiners: "#team\\u200d" is the hashtag "team" on Mastodon.
    """
    category = unicodedata.category(char)
    return _ruby_alpha(char) or category in ("Nd", "Pc")


def _mastodon_name_at(text: str, start: int) -> str | None:
    """Match HASHTAG_NAME_PAT at `start`: FIRST_SEQUENCE, else LAST_SEQUENCE, else None.

    FIRST = `[W_][W SEP]*[A SEP][W SEP]*[W_]` and LAST = `[W_]*A[W_]*` (W word, A alpha, SEP
    the separators), both greedy: FIRST ends at the last word character of the run of word and
    separator characters, if that run starts with a word character and holds an alpha or a
    separator strictly inside; LAST is the whole run of word characters if it holds an alpha.
    """
    end = start
    last_word = -1
    while end < len(text) and (_ruby_word(text[end]) or text[end] in _MASTODON_SEPARATORS):
        if _ruby_word(text[end]):
            last_word = end
        end += 1
    if end > start and _ruby_word(text[start]) and last_word - start >= 2:
        inner = text[start + 1 : last_word]
        if any(_ruby_alpha(c) or c in _MASTODON_SEPARATORS for c in inner):
            return text[start : last_word + 1]
    end = start
    while end < len(text) and _ruby_word(text[end]):
        end += 1
    name = text[start:end]
    return name if any(_ruby_alpha(c) for c in name) else None


def _folds_into_lookbehind(text: str, index: int) -> bool:
    """Tell whether Ruby's case-insensitive lookbehind refuses the "#" at `index` after all.

    HASHTAG_RE is case-insensitive, and under /i Ruby's regex engine (Onigmo) also tries the
    multi-character case foldings of the letters in `[=/)\\p{Alnum}]`: a character whose folding
    is k characters long, standing k characters before the "#", satisfies the lookbehind. So
    "Gruß #team" (ß folds to "ss") and "ﬃ  #team" have no hashtag on Mastodon, while
    "Grüße #team" has. Observed with Ruby 3.1; the folding lengths are at most 3.
    """
    return any(
        index - distance >= 0 and len(text[index - distance].casefold()) == distance
        for distance in (2, 3)
    )


_MASTODON_TRAILING_SCHEME = re.compile(r"(.+)(https?)", re.DOTALL)


#: What may stand right before the hash sign on every Mastodon version: Ruby's `\\s`.
_MASTODON_SPACE_BEFORE = frozenset("\t\n\x0b\x0c\r ")


def mastodon_hashtags(text: str, urls: UrlFinder) -> list[Hashtag]:
    """Return the hashtags a Mastodon post of `text` shows, whatever the server's version.

    4.2 to 4.5: `HASHTAG_RE = (?<![=/)\\p{Alnum}])#(HASHTAG_NAME_PAT)`, never after "=", "/", ")"
    or a letter or digit; only 4.5 and later also take the full-width "＃" (mastodon#36103).
    4.6 replaced the lookbehind by a positive one (mastodon#37684, #38212): "(#FLL)" stopped
    being a hashtag (mastodon#38902). Only the hashtags of every version count, so the sign is
    "#" and stands at the start of the text or after ASCII whitespace (Ruby's `\\s`): "x\\x1c#team"
    (U+001C is whitespace to Python, not to Ruby) or "(#team)" is not the tag. Missing a
    hashtag a newer server shows costs an extra tag; counting one an older or newer server does
    not show would publish a delegated post without its disclosure.

    A name running into "://" loses its trailing "http"/"https" (Extractor). Hashtags that
    start inside a URL with a scheme are dropped: the status is shown with the link there
    (TextFormatter removes overlapping entities).
    """
    if "#" not in text:
        return []
    tags: list[Hashtag] = []
    for index, char in enumerate(text):
        if char != "#":
            continue
        if index > 0 and text[index - 1] not in _MASTODON_SPACE_BEFORE:
            continue
        if _folds_into_lookbehind(text, index):
            continue
        name = _mastodon_name_at(text, index + 1)
        if name is None:
            continue
        end = index + 1 + len(name)
        if text.startswith("://", end):
            scheme = _MASTODON_TRAILING_SCHEME.fullmatch(name)
            if scheme is not None:
                name = scheme.group(1)
                end -= len(scheme.group(2))
        tags.append(Hashtag(name, index, end))
    if not tags:
        return tags
    return _without_overlaps(tags, urls.url_spans(text, require_scheme=True))


# --------------------------------------------------------------------------------------------
# Bluesky (@atproto/api detectFacets, tag facets)
# --------------------------------------------------------------------------------------------


def bluesky_hashtags(text: str) -> list[Hashtag]:
    """Return the hashtag facets Bluesky's rich-text detection makes of `text` (no cashtags).

    The one detection of ghostpost.domain.richtext (an exact port of `@atproto/api`), so the
    policy engine decides on the same tags the Bluesky adapter sends. The hash sign needs
    whitespace or the start of the text before it, so a tag can never start inside a link.
    """
    return [Hashtag(found.tag, found.start, found.end) for found in hashtag_matches(text)]


# --------------------------------------------------------------------------------------------
# Comparing tags
# --------------------------------------------------------------------------------------------


def hashtag_name(tag: str) -> str | None:
    """Return the name of a configured tag such as "#team" (None unless it starts with "#")."""
    if len(tag) < 2 or tag[0] not in "#\uff03":
        return None
    return tag[1:]


def same_hashtag(found: str, wanted: str) -> bool:
    """Tell whether two hashtag names are the same tag to a reader.

    All three platforms treat tags case-insensitively (X and Mastodon link "#Team" to the "team"
    tag; Bluesky's search matches tags whatever their case). Canonically equivalent spellings
    (NFC) render the same. Nothing more is folded: Mastodon also folds accents and width, but
    "#téam" does not read as "#team", so it does not count.
    """
    return _folded(found) == _folded(wanted)


def _folded(name: str) -> str:
    return unicodedata.normalize("NFC", name).lower()


def _glued_on(text: str, end: int) -> bool:
    """Tell whether the character after a hashtag ending at `end` reads as part of it.

    Platforms end a hashtag at an invisible format character (a joiner, a word joiner, a soft
    hyphen, a bidi control) or, on Bluesky, before a combining mark such as U+20E2; what follows
    then shows glued to it: "#team\u2060work" reads "#teamwork", "#team\u202e..." runs backwards.
    Such a hashtag is not the tag a reader sees.
    """
    if end >= len(text):
        return False
    category = unicodedata.category(text[end])
    return category == "Cf" or category[0] == "M"


#: Control characters that do show as a break before a hash sign: tab, line breaks.
_VISIBLE_BREAKS = frozenset("\t\n\x0b\x0c\r")


def _glued_after(text: str, start: int) -> bool:
    """Tell whether the character before a hashtag starting at `start` glues it onto what precedes.

    X ends a word at any control or format character and Bluesky at JavaScript's `\\s` (which
    holds U+FEFF), so "work\u2060#team", "work\ufeff#team" or "work\x1c#team" make a hashtag
    there; but those characters are invisible (or dropped on the way), and the reader sees
    "work#team".
    """
    if start == 0:
        return False
    before = text[start - 1]
    category = unicodedata.category(before)
    return category == "Cf" or (category == "Cc" and before not in _VISIBLE_BREAKS)


def carries_hashtag(text: str, tags: Iterable[Hashtag], tag: str) -> bool:
    """Tell whether `text`, whose extracted hashtags are `tags`, shows the configured `tag`.

    One of the platform's hashtags must be the tag (same_hashtag) and nothing invisible may glue
    it onto the characters before or after it.
    """
    name = hashtag_name(tag)
    return name is not None and any(
        same_hashtag(found.name, name)
        and not _glued_on(text, found.end)
        and not _glued_after(text, found.start)
        for found in tags
    )
