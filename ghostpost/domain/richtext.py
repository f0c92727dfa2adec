"""Bluesky rich-text facets, detected exactly as `@atproto/api` 0.19.19 `detectFacets` does.

Stdlib only. A port of `src/rich-text/detection.ts` and the regular expressions of `util.ts`,
rule for rule, including their oddities (the official app sends what they produce, and the
differential test holds this module to it byte for byte):

- mentions: `(^|\\s|\\()@([a-zA-Z0-9.-]+)\\b`, kept when the handle ends in a known TLD (the
  `tlds` package, case-sensitive) or in ".test"; the handle is reported as typed.
- links: `(^|\\s|\\()(https?://\\S+|DOMAIN\\S*)` (case-insensitive, JavaScript's `\\S`), so a
  link runs to the next whitespace whatever the script and needs whitespace, "(" or the start of
  the text before it (none inside quotes). A bare domain needs a known TLD and gets "https://";
  a scheme typed in capitals ("HTTP://") makes no link. One trailing `.,;:!?` is cut, then one
  ")" unless the link holds a "(".
- hashtags: `(^|\\s)[#＃](...)`, trailing punctuation cut, at most 64 UTF-16 units.
- cashtags: `(^|\\s|\\()\\$([A-Za-z][A-Za-z0-9]{0,4})` before whitespace, the end or
  `.,;:!?)"'’`; a tag facet "$" + the ticker in capitals.

Facets may overlap (a mention inside a link), as the library's do. They are sorted by byte start
(stable: mentions, links, hashtags, cashtags). Offsets are UTF-8 bytes, end exclusive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ghostpost.domain.bluesky_tlds import TLDS

__all__ = [
    "JS_SPACE",
    "MAX_TAG_UTF16_UNITS",
    "Facet",
    "TagMatch",
    "detect_facets",
    "hashtag_matches",
]

#: JavaScript's \s (WhiteSpace and LineTerminator); not Python's, which adds \x1c-\x1f and \x85.
JS_SPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_SPACE_SET = frozenset(JS_SPACE)
_S = "[" + JS_SPACE + "]"
_NOT_S = "[^" + JS_SPACE + "]"

#: TAG_REGEX stops a tag at whitespace and at these zero-width characters.
_TAG_STOP = _JS_SPACE_SET | frozenset("\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2")
#: The longest tag the library makes a facet of, in UTF-16 code units (`tag.length > 64`).
MAX_TAG_UTF16_UNITS = 64

#: Punctuation (\p{P}) in Unicode 17, the version of the ICU in the Node the library is checked
#: with, that Python 3.11's Unicode 14 tables still call unassigned.
_NEWER_PUNCTUATION = frozenset(
    "\u1b4e\u1b4f\u1b7f\U00010d6e\U00010ed0\U000113d4\U000113d5\U000113d7\U000113d8"
    + "".join(map(chr, range(0x11B00, 0x11B0A)))
    + "\U00011be1"
    + "".join(map(chr, range(0x11F43, 0x11F50)))
    + "\U00016d6d\U00016d6e\U00016d6f\U0001e5ff"
)

# No IGNORECASE anywhere: Python's would let [a-z] match "ſ" and the Kelvin sign, JavaScript's
# (without the u flag) matches ASCII letters only. `^` without MULTILINE is the start of the
# text, as in JavaScript without the m flag; the URL pattern's m flag changes nothing, since
# every line terminator is also in \s.
_MENTION = re.compile(rf"(^|{_S}|\()@([a-zA-Z0-9.-]+)\b", re.ASCII)
_URL = re.compile(
    rf"(^|{_S}|\()"
    rf"([Hh][Tt][Tt][Pp][Ss]?://{_NOT_S}+"
    rf"|(?P<domain>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+){_NOT_S}*)"
)
_CASHTAG = re.compile(rf"(^|{_S}|\()\$([A-Za-z][A-Za-z0-9]{{0,4}})(?={_S}|\Z|[.,;:!?)\"'\u2019])")


@dataclass(frozen=True)
class Facet:
    """One facet: its kind, where it is (code points and UTF-8 bytes, end exclusive), its value.

    The value is the handle as typed for a mention (resolving it to a DID is the adapter's job),
    the URI for a link, the tag without its sign for a hashtag and "$TICKER" for a cashtag.
    """

    kind: str  # "mention" | "link" | "tag"
    start: int
    end: int
    byte_start: int
    byte_end: int
    value: str


@dataclass(frozen=True)
class TagMatch:
    """A hashtag facet in code points: the tag, the hash sign's index and the end (exclusive)."""

    tag: str
    start: int
    end: int


def _valid_domain(domain: str) -> bool:
    """`isValidDomain`: the part after the last "." is in the TLD list (case-sensitive).

    The library looks for a TLD that ends the string right after a "."; no entry of the list
    holds a ".", so that is the part after the last one.
    """
    dot = domain.rfind(".")
    return dot >= 0 and domain[dot + 1 :] in TLDS


def _js_punctuation(char: str) -> bool:
    """JavaScript's /\\p{P}/u."""
    return unicodedata.category(char)[0] == "P" or char in _NEWER_PUNCTUATION


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def hashtag_matches(text: str) -> list[TagMatch]:
    """Return the hashtag facets of TAG_REGEX in `text` (cashtags not included).

    `(^|\\s)[#＃]((?!\\ufe0f)[^\\s STOP]*[^\\d\\s\\p{P} STOP]+[^\\s STOP]*)?`: the run after the
    sign up to whitespace or a STOP character is the tag if it holds something other than an
    ASCII digit or punctuation; trailing punctuation is then cut and tags longer than 64 UTF-16
    units are dropped. The sign needs whitespace or the start of the text before it.
    """
    found: list[TagMatch] = []
    if "#" not in text and "\uff03" not in text:
        return found
    for index, char in enumerate(text):
        if char not in "#\uff03":
            continue
        if index > 0 and text[index - 1] not in _JS_SPACE_SET:
            continue
        if text[index + 1 : index + 2] == "\ufe0f":
            continue
        end = index + 1
        while end < len(text) and text[end] not in _TAG_STOP:
            end += 1
        run = text[index + 1 : end]
        # `\d` is ASCII-only in JavaScript.
        if not any(c not in "0123456789" and not _js_punctuation(c) for c in run):
            continue
        tag = run
        while tag and _js_punctuation(tag[-1]):
            tag = tag[:-1]
        if not tag or _utf16_units(tag) > MAX_TAG_UTF16_UNITS:
            continue
        found.append(TagMatch(tag, index, index + 1 + len(tag)))
    return found


def _strip_link_end(uri: str, end: int) -> tuple[str, int]:
    # `/[.,;:!?]$/` then `/[)]$/ && !uri.includes('(')`, one character each.
    if uri[-1:] in (".", ",", ";", ":", "!", "?"):
        uri, end = uri[:-1], end - 1
    if uri.endswith(")") and "(" not in uri:
        uri, end = uri[:-1], end - 1
    return uri, end


def _found(text: str) -> list[tuple[str, int, int, str]]:
    found: list[tuple[str, int, int, str]] = []
    for match in _MENTION.finditer(text):
        handle = match.group(2)
        if not _valid_domain(handle) and not handle.endswith(".test"):
            continue  # probably not a handle
        start = match.start(2) - 1
        found.append(("mention", start, match.end(2), handle))
    for match in _URL.finditer(text):
        uri = match.group(2)
        if not uri.startswith("http"):  # case-sensitive, unlike the pattern
            domain = match.group("domain")
            if not domain or not _valid_domain(domain):
                continue
            uri = "https://" + uri
        start = match.start(2)
        uri, end = _strip_link_end(uri, match.end(2))
        found.append(("link", start, end, uri))
    for tag in hashtag_matches(text):
        found.append(("tag", tag.start, tag.end, tag.tag))
    for match in _CASHTAG.finditer(text):
        ticker = match.group(2).upper()
        found.append(("tag", match.start(2) - 1, match.end(2), "$" + ticker))
    return found


def detect_facets(text: str) -> list[Facet]:
    """Return the facets `RichText.detectFacetsWithoutResolution()` makes of `text`, sorted."""
    found = _found(text)
    if not found:
        return []
    found.sort(key=lambda item: item[1])  # stable, like Array.prototype.sort

    def utf8_index(index: int) -> int:
        # surrogatepass: JavaScript's TextEncoder would write a lone surrogate as U+FFFD (3 bytes).
        return len(text[:index].encode("utf-8", "surrogatepass"))

    return [
        Facet(kind, start, end, utf8_index(start), utf8_index(end), value)
        for kind, start, end, value in found
    ]
