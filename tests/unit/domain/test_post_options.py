"""Content warnings, visibility, language and sensitive: what each platform honours, how a
content warning is counted (Mastodon's StatusLengthValidator), and how it must show the tag."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ghostpost.domain.length import budget_for, count_mastodon, with_content_warning
from ghostpost.domain.policy import (
    DEFAULT_TAG,
    Outcome,
    PostDraft,
    RefusalCode,
    ReminderOutcome,
    Stage,
    TagMode,
    TagOutcome,
    decide,
)
from ghostpost.domain.post_options import (
    PLAIN,
    PostOptions,
    normalize_language,
    refusals,
    shows_tag,
)
from ghostpost.textseg import default_segmenter
from tests.unit.domain.strategies import NOW
from tests.unit.domain.test_policy import ascii_text, window

SEG = default_segmenter()
MASTODON = budget_for("mastodon", SEG)
LIMIT = MASTODON.measure("").primary.limit


def decide_with_warning(
    text: str, warning: str, *, budget=MASTODON, delegated: bool = True, **policy: object
):  # type: ignore[no-untyped-def]
    return decide(
        PostDraft(text=text, is_delegated=delegated, content_warning=warning),
        window=window(**policy),
        budget=budget,
        now=NOW,
        stage=Stage.PUBLICATION,
    )


# --- counting: the warning counts with the text, as Mastodon counts it ------------------------


@pytest.mark.parametrize(
    ("warning", "text"),
    [
        ("Spoilers", "The finale was great"),
        ("CW: 👨‍👩‍👧‍👦 family", "see https://example.com/a/very/long/path?q=1 @ann@example.org"),
        ("", "plain"),
        ("Grüße", "e\u0301"),
    ],
)
def test_a_warned_budget_counts_the_warning_and_the_text_as_mastodons_validator(
    warning: str, text: str
) -> None:
    # StatusLengthValidator: graphemes of [spoiler_text, countable_text(text)].join, with URLs
    # as 23 and remote mentions as their local part.
    warned = with_content_warning(MASTODON, warning)
    assert warned is not None
    expected = count_mastodon(text, SEG, spoiler_text=warning)
    assert warned.measure(text).primary.used == expected
    assert expected == SEG.grapheme_count(warning) + count_mastodon(text, SEG)


def test_a_post_that_fits_alone_is_refused_when_its_warning_takes_it_over_the_limit() -> None:
    text = ascii_text(LIMIT - 5)
    assert decide_with_warning(text, "", tag_mode=TagMode.OFF).outcome is not Outcome.REFUSE
    decision = decide_with_warning(text, "Long warning", tag_mode=TagMode.OFF)
    assert decision.refusal is not None
    assert decision.refusal.code is RefusalCode.OVER_BUDGET
    assert "content warning" in decision.refusal.message


@pytest.mark.parametrize("platform", ["x", "bluesky"])
def test_platforms_without_content_warnings_refuse_one(platform: str) -> None:
    budget = budget_for(platform, SEG)
    assert with_content_warning(budget, "CW") is None
    decision = decide_with_warning("Hello", "CW", budget=budget)
    assert decision.refusal is not None
    assert decision.refusal.code is RefusalCode.CONTENT_WARNING_UNSUPPORTED


# --- the disclosure and the warning -------------------------------------------------------------


def test_a_delegated_post_with_a_warning_shows_the_tag_in_the_warning_and_in_the_text() -> None:
    decision = decide_with_warning("The keynote ending", "Spoilers")
    assert decision.tag.outcome is TagOutcome.APPLIED
    assert decision.final_text == "The keynote ending " + DEFAULT_TAG
    assert decision.content_warning == "Spoilers " + DEFAULT_TAG
    assert decision.measurement is not None
    assert decision.measurement.primary.used == count_mastodon(
        decision.final_text, SEG, spoiler_text=decision.content_warning
    )
    assert decision.to_record()["content_warning"] == "Spoilers " + DEFAULT_TAG


def test_attack_a_writer_buries_the_tag_behind_a_warning() -> None:
    # The writer types the tag in the text (so the policy finds it "already present") and hides
    # the whole text behind a warning: followers would see only "Nothing to see here".
    decision = decide_with_warning("Our numbers are great #team", "Nothing to see here")
    assert decision.tag.outcome is TagOutcome.ALREADY_PRESENT
    assert shows_tag(decision.content_warning, DEFAULT_TAG)
    # A tag-lookalike in the warning is no disclosure either.
    lookalike = decide_with_warning("Our numbers #team", "#teamwork matters")
    assert lookalike.content_warning == "#teamwork matters " + DEFAULT_TAG


def test_a_warning_that_already_shows_the_tag_is_sent_as_written() -> None:
    decision = decide_with_warning("Text", "#TEAM: spoilers")
    assert decision.content_warning == "#TEAM: spoilers"


def test_when_the_warnings_tag_does_not_fit_the_post_is_refused_whatever_the_tag_mode() -> None:
    # Room for the text's tag but not for the warning's: the post would go out disclosed only
    # behind a click, so it does not go out.
    room = LIMIT - len("CW") - 2 * len(" #team")
    text = ascii_text(room + 1)
    for mode in (TagMode.WHEN_FITS, TagMode.REQUIRED):
        decision = decide_with_warning(text, "CW", tag_mode=mode)
        assert decision.refusal is not None, mode
        assert decision.refusal.code is RefusalCode.TAG_DOES_NOT_FIT
        assert "content warning" in decision.refusal.message
    fits = decide_with_warning(ascii_text(room), "CW")
    assert fits.content_warning == "CW #team"
    assert fits.measurement is not None and fits.measurement.primary.used == LIMIT


def test_the_principals_own_warning_is_left_as_written() -> None:
    decision = decide_with_warning("My own words", "Spoilers", delegated=False)
    assert (decision.final_text, decision.content_warning) == ("My own words", "Spoilers")


def test_a_due_reminder_never_goes_inline_behind_a_warning() -> None:
    decision = decide_with_warning("Text", "Spoilers", posts_since_disclosure=9)
    assert decision.reminder.outcome is ReminderOutcome.STANDALONE
    assert decision.outcome is Outcome.REMINDER_FIRST


@pytest.mark.parametrize(
    ("warning", "shown"),
    [
        ("#team", True),
        ("spoilers #team", True),
        ("(#Team)", True),
        ("#teamwork", False),
        ("x#team", False),
        ("#team\u0301", False),
        ("#team#other", False),
        ("", False),
    ],
)
def test_shows_tag_is_a_whole_word_test(warning: str, shown: bool) -> None:
    assert shows_tag(warning, "#team") is shown


# --- what each platform honours ----------------------------------------------------------------


def test_plain_options_are_honoured_everywhere() -> None:
    for platform in ("mastodon", "bluesky", "x", "local"):
        assert refusals(platform, PLAIN) == {}


def test_mastodon_honours_every_option_but_direct_messages() -> None:
    options = PostOptions("CW", "unlisted", "pt-BR", sensitive=True)
    assert refusals("mastodon", options) == {}
    assert refusals("mastodon", replace(options, visibility="private")) == {}
    assert set(refusals("mastodon", replace(options, visibility="direct"))) == {"visibility"}


def test_bluesky_honours_a_language_and_refuses_the_rest_by_name() -> None:
    assert refusals("bluesky", PostOptions(language="en")) == {}
    refused = refusals("bluesky", PostOptions("CW", "unlisted", "en", sensitive=True))
    assert set(refused) == {"spoiler_text", "visibility", "sensitive"}


def test_x_refuses_every_option_by_name() -> None:
    refused = refusals("x", PostOptions("CW", "unlisted", "en", sensitive=True))
    assert set(refused) == {"spoiler_text", "visibility", "sensitive", "language"}


def test_local_honours_what_a_mastodon_server_would_but_followers_only_and_direct() -> None:
    # `local` is ghostpost's own Mastodon-like server, but nobody follows its accounts.
    options = PostOptions("CW", "unlisted", "pt-BR", sensitive=True)
    assert refusals("local", options) == {}
    for visibility in ("private", "direct"):
        refused = refusals("local", replace(options, visibility=visibility))
        assert set(refused) == {"visibility"}, visibility
    assert "followers" in refusals("local", PostOptions(visibility="private"))["visibility"]


def test_an_unknown_platform_honours_nothing_but_plain_posts() -> None:
    assert refusals("myspace", PLAIN) == {}
    refused = refusals("myspace", PostOptions("CW", "unlisted", "en", sensitive=True))
    assert set(refused) == {"spoiler_text", "visibility", "sensitive", "language"}


def test_a_warning_on_local_counts_toward_the_limit_as_on_mastodon() -> None:
    warned = with_content_warning(budget_for("local", SEG), "CW")
    assert warned is not None
    assert warned.measure("Hello").primary.used == count_mastodon("Hello", SEG, spoiler_text="CW")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt-br", "pt-BR"),
        ("zh-hant-TW", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("ast", "ast"),
        ("english", None),
        ("e", None),
        ("en_US", None),
        ("en-", None),
        ("<script>", None),
        ("en\n", None),
        ("١٢", None),
    ],
)
def test_languages_are_bcp47_ish_tags(raw: str, normalized: str | None) -> None:
    assert normalize_language(raw) == normalized
    assert bool(refusals("mastodon", PostOptions(language=raw))) is (normalized is None)
