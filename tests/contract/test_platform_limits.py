"""At each platform's exact limit, through the whole pipeline: submit, worker, real protocol.

A post that fits *with* " #team" at exactly the limit goes out tagged and the platform takes
it; one character more goes out untagged with the skip recorded (`when_fits`) or is refused at
submission with how much to cut (`required`). The platforms' own validators are the judges: a
real Bluesky PDS, and local Mastodon and X servers counting by the platforms' published rules.
"""

from __future__ import annotations

import pytest

from ghostpost.domain.policy import TagMode
from ghostpost.domain.states import PostState
from ghostpost.services.errors import PolicyRefused
from tests.support.platforms import (
    PlatformCase,
)
from tests.support.world import NOTICE

pytestmark = pytest.mark.slow

#: Each prefix holds what the platform counts unusually: URLs (23 on X and Mastodon, literal on
#: Bluesky), emoji (2 on X, 1 grapheme of 8 bytes on Bluesky), CJK (2 on X).
PREFIX = {
    "mastodon": "Live: https://example.com/devsummit/2026/keynote/stream 👋🏽 ",
    "bluesky": "Live: example.com/keynote 👋🏽 Grüße ",
    "x": "会議 https://example.com/devsummit/2026/keynote/stream 👋🏽 ",
}


def body_at_limit_with_tag(case: PlatformCase) -> str:
    """A text that, with " #team" appended, is exactly at the account's limit."""
    budget = case.container.services.budget_for(case.account)
    prefix = PREFIX[case.name]
    measured = budget.measure(prefix + " #team").primary
    body = prefix + "a" * (measured.limit - measured.used)
    assert budget.measure(body + " #team").primary.used == measured.limit
    assert budget.measure(body + " #team").fits
    return body


@pytest.mark.parametrize("tag_mode", [TagMode.WHEN_FITS, TagMode.REQUIRED])
def test_exactly_at_the_limit_with_the_tag_passes_and_one_more_skips_or_refuses(
    case: PlatformCase, tag_mode: TagMode
) -> None:
    world = case.world
    window = world.open_window(account=case.account, tag_mode=tag_mode, every=10)
    world.approve_notice(window)
    body = body_at_limit_with_tag(case)

    at_limit = world.submit(world.writer_a, body, account=case.account)
    if tag_mode is TagMode.WHEN_FITS:
        one_more = world.submit(world.writer_b, body + "a", account=case.account)
    else:
        with pytest.raises(PolicyRefused, match=r"Cut 1 (character|grapheme)\."):
            world.submit(world.writer_b, body + "a", account=case.account)
    world.run_worker()

    tagged = world.post(at_limit.id)
    assert tagged.state is PostState.PUBLISHED, tagged.error
    assert tagged.final_text == body + " #team"
    expected = [NOTICE, body + " #team"]
    if tag_mode is TagMode.WHEN_FITS:
        skipped = world.post(one_more.id)
        assert skipped.state is PostState.PUBLISHED, skipped.error
        assert skipped.final_text == body + "a"
        tag = skipped.decisions["publication"]["tag"]
        assert tag["outcome"] == "skipped" and tag["needs"] == 6 and tag["has"] == 5
        expected.append(body + "a")
    # The platform holds exactly these texts: it accepted the one at its limit.
    assert case.texts() == expected
