"""The guards an experienced community manager keeps (issue 18, part 3): which delegated posts go
to the principal's approval instead of the queue, and why.

- **Watched hashtags and terms**, per principal: a post carrying a watched hashtag (as the
  account's platform extracts hashtags, case-insensitive) or containing a watched term (a whole
  word or phrase, case-insensitive) waits for the principal.
- **First-use hashtags** (on by default): a hashtag the account has never used in a published
  post waits for the principal, who checks what it is about first. The disclosure tag never
  counts.

Stdlib only: hashtags come from the caller (the platform's extractor, domain.hashtags).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

#: More watched entries than this are refused (a list, not a dictionary).
MAX_WATCHED = 200
MAX_ENTRY_LENGTH = 100
#: The disclosure tag never counts as a first use (DESIGN.md §3's default tag).
DISCLOSURE_TAG = "team"


@dataclass(frozen=True)
class PrincipalGuards:
    """A principal's guards: watched entries ("#name" for a hashtag, else a term; folded to
    lower case) and whether first-use hashtags wait for approval."""

    watched: tuple[str, ...] = ()
    first_use_hashtags: bool = True

    @property
    def watched_hashtags(self) -> frozenset[str]:
        """The watched hashtags' names (folded, no hash sign)."""
        return frozenset(w[1:] for w in self.watched if w.startswith("#"))

    @property
    def watched_terms(self) -> tuple[str, ...]:
        """The watched terms, in the list's order."""
        return tuple(w for w in self.watched if not w.startswith("#"))


def fold(name: str) -> str:
    """A hashtag name or term as compared: NFC, case-folded (as domain.hashtags.same_hashtag)."""
    return unicodedata.normalize("NFC", name).lower()


def parse_watched(raw: str) -> tuple[str, ...]:
    """The watched entries in `raw` (one per line or comma-separated), folded, deduplicated,
    in order; ValueError says which entry is not one."""
    entries: list[str] = []
    for piece in re.split(r"[,\n]", raw):
        entry = " ".join(piece.split())
        if not entry:
            continue
        if len(entry) > MAX_ENTRY_LENGTH:
            raise ValueError(f"{entry[:20]!r}… is longer than {MAX_ENTRY_LENGTH} characters")
        if any(unicodedata.category(c).startswith("C") for c in entry):
            raise ValueError(f"{entry!r} contains control characters")
        if entry[0] in "#\uff03":
            name = entry[1:]
            if not name or not all(c.isalnum() or c == "_" for c in name):
                raise ValueError(f"{entry!r} is not a hashtag (letters, digits and _ only)")
            entry = "#" + name
        elif not any(c.isalnum() for c in entry):
            raise ValueError(f"{entry!r} has no letters or digits")
        folded = fold(entry)
        if folded not in entries:
            entries.append(folded)
    if len(entries) > MAX_WATCHED:
        raise ValueError(f"at most {MAX_WATCHED} watched hashtags and terms")
    return tuple(entries)


def _term_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)")


def post_hashtags(hashtag_names: Iterable[str], disclosure_tags: Collection[str]) -> set[str]:
    """The folded hashtag names a post carries that may count as first uses: the disclosure
    tags (folded names, no hash sign) left out."""
    skip = {fold(t) for t in disclosure_tags} | {DISCLOSURE_TAG}
    return {fold(name) for name in hashtag_names} - skip


def guard_reasons(
    texts: Iterable[str],
    hashtag_names: Collection[str],
    guards: PrincipalGuards,
    used_hashtags: Collection[str],
    disclosure_tags: Collection[str] = (),
) -> tuple[str, ...]:
    """Why a delegated post (every part of it: `texts`, carrying `hashtag_names` as its
    platform extracts them) waits for the principal, one reason per guard it trips; empty
    when none does. `used_hashtags`: the folded names the account has used in a published
    post."""
    reasons: list[str] = []
    carried = {fold(name) for name in hashtag_names}
    for tag in sorted(carried & guards.watched_hashtags):
        reasons.append(f"watched hashtag #{tag}")
    folded_texts = [fold(text) for text in texts]
    for term in guards.watched_terms:
        pattern = _term_pattern(term)
        if any(pattern.search(text) for text in folded_texts):
            reasons.append(f"watched term '{term}'")
    if guards.first_use_hashtags:
        new = post_hashtags(carried, disclosure_tags) - set(used_hashtags)
        for tag in sorted(new - guards.watched_hashtags):
            reasons.append(f"first use of #{tag}: check what it is about before it goes out")
    return tuple(reasons)


def guard_weakenings(old: PrincipalGuards, new: PrincipalGuards) -> tuple[str, ...]:
    """What `new` lets through that `old` held for the principal (each needs the principal's
    consent, as a weaker window policy does: domain.consent); empty when `new` is as strict."""
    weaker = [f"stop watching {entry}" for entry in old.watched if entry not in new.watched]
    if old.first_use_hashtags and not new.first_use_hashtags:
        weaker.append("turn off first-use hashtag approval")
    return tuple(weaker)
