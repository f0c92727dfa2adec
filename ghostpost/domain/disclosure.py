"""The public disclosure page's pure parts: placeholders in notice and reminder texts, and a
window's policy in plain words.

A notice or reminder text may contain `{disclosure_url}`; it is replaced by the principal's
disclosure page URL when the post is made, so the budget counts the URL exactly as the
platform will (X and Mastodon: 23; Bluesky: the URL as written). Any other `{word}` is refused
by name: a typo such as `{disclosure_link}` would otherwise go out literally.
"""

from __future__ import annotations

import re

from ghostpost.domain.policy import ReminderMode, TagMode, TagPosition, WindowKind, WindowPolicy

DISCLOSURE_URL = "disclosure_url"
PLACEHOLDERS = frozenset({DISCLOSURE_URL})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: A window's reason is read by the public on the disclosure page: a sentence, not an essay.
MAX_REASON = 500
#: Recorded on windows made before the reason existed (migration 0022).
REASON_NOT_RECORDED = "(not recorded: this window was made before ghostpost asked for a reason)"


def disclosure_path(handle: str) -> str:
    """Return the path of a principal's public disclosure page."""
    return f"/@{handle}/disclosure"


def unknown_placeholders(text: str) -> list[str]:
    """Return the `{names}` in `text` that are not placeholders ghostpost fills in, in order."""
    found = [m.group(1) for m in _PLACEHOLDER.finditer(text)]
    return [name for name in dict.fromkeys(found) if name not in PLACEHOLDERS]


def expand(text: str, disclosure_url: str) -> str:
    """Return `text` with `{disclosure_url}` replaced (nothing else is touched)."""
    return text.replace("{" + DISCLOSURE_URL + "}", disclosure_url)


def policy_in_words(policy: WindowPolicy) -> str:
    """Say a window's policy the way a follower would read it.

    e.g. "a reminder every 10 posts; delegated posts carry #team when they fit".
    """
    if policy.kind is WindowKind.AWAY:
        return "an away notice: nobody else posts on the account during this period"
    parts = [f"a reminder every {policy.reminder_every} posts"]
    if policy.reminder_mode is ReminderMode.STANDALONE:
        parts[0] += " (as a post of its own)"
    if policy.tag_mode is TagMode.OFF:
        parts.append("delegated posts carry no tag")
    else:
        where = " at the start" if policy.tag_position is TagPosition.START else ""
        how = "when they fit" if policy.tag_mode is TagMode.WHEN_FITS else "always"
        parts.append(f"delegated posts carry {policy.tag}{where} {how}")
    if policy.requires_approval:
        parts.append("the principal approves each delegated post")
    return "; ".join(parts)
