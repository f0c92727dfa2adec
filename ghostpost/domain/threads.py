"""Threads: a post made of parts, published in order as a reply chain.

The policy is applied to each part as to any post (budget, window, notice gate), with two
thread rules, applied by giving the engine an adjusted view of the window:

- **Tag.** The first part carries the tag; the later parts too when the window says
  `tag_every_part` (a reader who meets a later part alone then still sees the disclosure).
- **Reminder.** Every part counts toward the cadence, but a reminder never falls between two
  parts: a standalone reminder there would cut the reply chain, and an inline one would sit
  in the middle of the writer's argument. So the reminder is decided once, at the first part,
  as if the whole thread were one post as long as its last part: when the thread would bring
  the count to N, the reminder goes out (standalone, or inline on the first part) *before*
  the thread. After it, a thread of at most N - 1 parts cannot reach N again, so a thread
  longer than that is refused at submission (`max_parts`).
"""

from __future__ import annotations

from dataclasses import replace

from ghostpost.domain.policy import TagMode, WindowState

#: Most parts a thread may have anywhere (a window may allow fewer: max_parts).
MAX_THREAD_PARTS = 25


def max_parts(window: WindowState | None) -> int:
    """The most parts a thread may have under `window`: N - 1 with a reminder every N (the
    reminder before the thread leaves room for N - 1 posts), else MAX_THREAD_PARTS."""
    if window is None:
        return MAX_THREAD_PARTS
    return min(MAX_THREAD_PARTS, window.policy.reminder_every - 1)


def part_window(window: WindowState | None, position: int, parts: int) -> WindowState | None:
    """The window as the policy engine must see it for part `position` (1-based) of a thread
    of `parts` parts (see the module's docstring); a lone post sees it as it is."""
    if window is None or parts <= 1:
        return window
    policy = window.policy
    if position == 1:
        # Decide the reminder for the whole thread: due if its last part would be due.
        return replace(window, posts_since_disclosure=window.posts_since_disclosure + parts - 1)
    if not policy.tag_every_part and policy.tag_mode is not TagMode.OFF:
        policy = replace(policy, tag_mode=TagMode.OFF)
    # The reminder was decided at the first part; none falls due between parts.
    return replace(window, policy=policy, posts_since_disclosure=0)
