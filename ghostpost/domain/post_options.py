"""What a post carries besides its text -- content warning, visibility, language, sensitive --
and which platform can honour which of them.

ghostpost never accepts a field it then drops: a request's options are either carried to the
platform (stored on the post, recorded in the ledger, sent by the adapter) or refused, field by
field, before anything is stored (`refusals`). Stdlib only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTENT_WARNING_PLATFORMS",
    "HONOURED",
    "MAX_CONTENT_WARNING_LENGTH",
    "PLAIN",
    "VISIBILITIES",
    "Honoured",
    "PostOptions",
    "language_problem",
    "normalize_language",
    "refusals",
    "shows_tag",
]

#: Mastodon's visibilities, most public first.
VISIBILITIES = ("public", "unlisted", "private", "direct")


@dataclass(frozen=True)
class Honoured:
    """What one platform carries of a post's options; the defaults are a plain public post."""

    visibilities: frozenset[str] = frozenset({"public"})
    #: Why the other visibilities are refused ("{platform}" is filled in).
    other_visibilities: str = "{platform} posts are public only"
    content_warning: bool = False
    sensitive: bool = False
    language: bool = False


#: Per platform, what it honours; anything else is refused by name (a platform not listed
#: honours nothing beyond a plain post). `direct` is refused everywhere, before this table.
HONOURED: dict[str, Honoured] = {
    "mastodon": Honoured(
        visibilities=frozenset({"public", "unlisted", "private"}),
        content_warning=True,
        sensitive=True,
        language=True,
    ),
    # ghostpost's own Mastodon-like server: it shows warnings, languages and unlisted posts as
    # Mastodon does, but its accounts have no followers for a followers-only post to reach.
    "local": Honoured(
        visibilities=frozenset({"public", "unlisted"}),
        other_visibilities=(
            "local accounts have no followers: a followers-only (private) post would reach nobody"
        ),
        content_warning=True,
        sensitive=True,
        language=True,
    ),
    "bluesky": Honoured(language=True),
    "x": Honoured(),
}
_NOTHING = Honoured()

#: Platforms that show a content warning in front of a post (the others have none).
CONTENT_WARNING_PLATFORMS = frozenset(name for name, h in HONOURED.items() if h.content_warning)
#: A content warning is counted with the text; this only bounds what is read and stored.
MAX_CONTENT_WARNING_LENGTH = 5_000

# BCP 47-ish: a 2-3 letter language, optional 4-letter script, optional region (2 letters or
# 3 digits). Mastodon takes ISO 639-1/-3 codes; Bluesky's `langs` takes BCP 47 tags.
_LANGUAGE_RE = re.compile(
    r"(?P<lang>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?",
    re.ASCII,
)


@dataclass(frozen=True)
class PostOptions:
    """How a post is shown, besides its text. The defaults are what every platform does."""

    #: Shown in front of the text, which is hidden until the reader opens it (Mastodon's
    #: spoiler_text). "" for none.
    content_warning: str = ""
    visibility: str = "public"
    #: A BCP 47-ish language tag ("en", "pt-BR"), or None to let the platform guess.
    language: str | None = None
    #: Mastodon's "sensitive": hide media (and, with a content warning, the text) by default.
    sensitive: bool = False

    @property
    def is_plain(self) -> bool:
        """Tell whether these are the defaults (nothing to send beyond the text)."""
        return self == PLAIN

    def to_record(self) -> dict[str, Any]:
        """Return the options as JSON-ready data (the ledger's and the exports' form)."""
        return {
            "content_warning": self.content_warning,
            "visibility": self.visibility,
            "language": self.language,
            "sensitive": self.sensitive,
        }


PLAIN = PostOptions()


def normalize_language(raw: str) -> str | None:
    """Return `raw` as a canonical language tag ("pt-br" -> "pt-BR"), or None if it is none."""
    match = _LANGUAGE_RE.fullmatch(raw)
    if match is None:
        return None
    tag = match["lang"].lower()
    if match["script"]:
        tag += "-" + match["script"].title()
    if match["region"]:
        tag += "-" + match["region"].upper()
    return tag


def language_problem(raw: str) -> str | None:
    """Say why `raw` is no language tag, or None if it is one."""
    if normalize_language(raw) is None:
        return 'must be a language code such as "en" or "pt-BR"'
    return None


def refusals(platform: str, options: PostOptions) -> dict[str, str]:
    """Return, per field, why `platform` cannot honour `options` (empty: it honours them all).

    Keys are the Mastodon parameter names, so a refusal names the field the client sent.
    """
    honoured = HONOURED.get(platform, _NOTHING)
    problems: dict[str, str] = {}
    if options.visibility not in VISIBILITIES:
        problems["visibility"] = f"must be one of {', '.join(VISIBILITIES)}"
    elif options.visibility == "direct":
        # A direct message is no post on the principal's timeline: no reader sees a disclosure.
        problems["visibility"] = "direct messages are not sent through ghostpost"
    elif options.visibility not in honoured.visibilities:
        problems["visibility"] = honoured.other_visibilities.format(platform=platform)
    if options.content_warning and not honoured.content_warning:
        problems["spoiler_text"] = f"{platform} has no content warnings"
    if options.sensitive and not honoured.sensitive:
        problems["sensitive"] = f"{platform} has no sensitive flag for text posts"
    if options.language is not None:
        problem = language_problem(options.language)
        if problem is not None:
            problems["language"] = problem
        elif not honoured.language:
            problems["language"] = f"{platform} takes no language from ghostpost"
    return problems


_WORD_CHAR = re.compile(r"\w")


def shows_tag(content_warning: str, tag: str) -> bool:
    """Tell whether `tag` stands as a word of its own in a content warning, as readers see it.

    Mastodon shows the warning as plain text (no hashtag links), so this is a plain-text test:
    "#team" counts, "#teamwork" and "x#team" do not. Case does not matter.
    """
    if not tag:
        return False
    lowered, wanted = content_warning.casefold(), tag.casefold()
    start = lowered.find(wanted)
    while start != -1:
        end = start + len(wanted)
        before = lowered[start - 1] if start > 0 else " "
        after = lowered[end] if end < len(lowered) else " "
        # A combining mark after the tag changes its last letter on screen.
        continues = _WORD_CHAR.match(after) or after == "#"
        continues = continues or unicodedata.category(after).startswith("M")
        if not _WORD_CHAR.match(before) and not continues:
            return True
        start = lowered.find(wanted, start + 1)
    return False
