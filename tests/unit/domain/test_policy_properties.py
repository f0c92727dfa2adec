"""Properties of the disclosure policy engine that must hold for any post and any timeline."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ghostpost.domain.length import budget_for
from ghostpost.domain.policy import (
    MIN_REMINDER_EVERY,
    Decision,
    Outcome,
    PostDraft,
    PostKind,
    Stage,
    TagMode,
    TagOutcome,
    WindowPolicy,
    WindowState,
    decide,
    has_tag,
    is_disclosure,
    next_run_length,
)
from tests.unit.domain.strategies import (
    BUDGETS,
    NOW,
    SEG,
    PlannedPost,
    platforms,
    regular_drafts,
    timelines,
    window_policies,
)

PROPERTY = settings(max_examples=200, deadline=None)
TIMELINE = settings(max_examples=120, deadline=None)

window_states = st.builds(
    WindowState,
    policy=window_policies(tag_modes=tuple(TagMode)),
    notice_published=st.booleans(),
    posts_since_disclosure=st.integers(0, 15),
)
stages = st.sampled_from(list(Stage))


def longest_run_without_disclosure(published: list[bool]) -> int:
    longest = current = 0
    for disclosure in published:
        current = 0 if disclosure else current + 1
        longest = max(longest, current)
    return longest


def simulate(policy: WindowPolicy, platform: str, posts: list[PlannedPost]) -> list[bool]:
    """Publish `posts` one after another as the worker would; return the disclosure flags.

    The notice is already out (the first flag). A standalone reminder asked for by the engine is
    published, counted, and the post decided again. Refused posts never reach the timeline.
    """
    budget = BUDGETS[platform]
    published = [True]  # the notice
    run = 0

    def ask(draft: PostDraft) -> Decision:
        state = WindowState(policy=policy, notice_published=True, posts_since_disclosure=run)
        return decide(draft, window=state, budget=budget, now=NOW, stage=Stage.PUBLICATION)

    for post in posts:
        draft = PostDraft(text=post.text, is_delegated=post.is_delegated)
        decision = ask(draft)
        if decision.outcome is Outcome.REFUSE:
            continue
        if decision.outcome is Outcome.REMINDER_FIRST:
            event(f"standalone reminder: {decision.reminder.reason}")
            reminder = ask(PostDraft(decision.reminder.text, kind=PostKind.REMINDER))
            assert reminder.outcome is Outcome.PUBLISH
            disclosure = is_disclosure(PostKind.REMINDER, reminder.reminder.outcome)
            assert disclosure
            published.append(disclosure)
            run = next_run_length(run, disclosure=disclosure)
            decision = ask(draft)
            assert decision.outcome is not Outcome.REMINDER_FIRST, (
                f"N={policy.reminder_every}: a reminder was just published and the engine asks "
                "for another one before the same post (the post would never go out)"
            )
        assert decision.outcome is Outcome.PUBLISH, decision
        if decision.reminder.outcome.value == "inline":
            event("inline reminder")
        disclosure = is_disclosure(PostKind.REGULAR, decision.reminder.outcome)
        published.append(disclosure)
        run = next_run_length(run, disclosure=disclosure)
        assert run == longest_run_without_disclosure(published[-(run + 1) :])
    return published


@TIMELINE
@given(
    # N=1 is refused by the domain (test_a_window_with_a_reminder_on_every_post_is_refused).
    policy=window_policies(every=st.integers(MIN_REMINDER_EVERY, 12)),
    platform=platforms,
    data=st.data(),
)
def test_a_timeline_never_has_n_consecutive_posts_without_a_disclosure(
    policy: WindowPolicy, platform: str, data: st.DataObject
) -> None:
    posts = data.draw(timelines(platform))
    published = simulate(policy, platform, posts)
    assert longest_run_without_disclosure(published) < policy.reminder_every


@PROPERTY
@given(platform=platforms, state=window_states, stage=stages, data=st.data())
def test_the_final_text_never_exceeds_the_budget(
    platform: str, state: WindowState, stage: Stage, data: st.DataObject
) -> None:
    draft = data.draw(regular_drafts(platform))
    budget = BUDGETS[platform]
    decision = decide(draft, window=state, budget=budget, now=NOW, stage=stage)
    if decision.refused:
        return
    assert budget.measure(decision.final_text).fits
    assert budget.measure(decision.tagged_text).fits
    assert decision.measurement == budget.measure(decision.final_text)


@PROPERTY
@given(platform=platforms, state=st.none() | window_states, stage=stages, data=st.data())
def test_the_principals_posts_are_never_tagged_or_altered(
    platform: str, state: WindowState | None, stage: Stage, data: st.DataObject
) -> None:
    text = data.draw(regular_drafts(platform)).text
    draft = PostDraft(text=text, is_delegated=False)
    decision = decide(draft, window=state, budget=BUDGETS[platform], now=NOW, stage=stage)
    assert decision.outcome is not Outcome.HOLD
    if decision.refused:
        assert decision.refusal is not None
        assert decision.refusal.code.value in ("empty_text", "over_budget")
        return
    assert decision.tag.outcome is TagOutcome.NOT_DELEGATED
    assert decision.final_text == decision.tagged_text == text


@PROPERTY
@given(platform=platforms, state=st.none() | window_states, stage=stages, data=st.data())
def test_decide_is_deterministic(
    platform: str, state: WindowState | None, stage: Stage, data: st.DataObject
) -> None:
    draft = data.draw(regular_drafts(platform))
    first = decide(draft, window=state, budget=BUDGETS[platform], now=NOW, stage=stage)
    again = decide(draft, window=state, budget=budget_for(platform, SEG), now=NOW, stage=stage)
    assert first == again
    assert first.to_record() == again.to_record()


@PROPERTY
@given(
    platform=platforms,
    policy=window_policies(tag_modes=(TagMode.WHEN_FITS,)),
    since=st.integers(0, 15),
    notice_published=st.booleans(),
    stage=stages,
    data=st.data(),
)
def test_a_delegated_post_under_when_fits_carries_the_tag_or_records_why_not(
    platform: str,
    policy: WindowPolicy,
    since: int,
    notice_published: bool,
    stage: Stage,
    data: st.DataObject,
) -> None:
    text = data.draw(regular_drafts(platform)).text
    state = WindowState(policy, notice_published=notice_published, posts_since_disclosure=since)
    budget = BUDGETS[platform]
    decision = decide(PostDraft(text), window=state, budget=budget, now=NOW, stage=stage)
    if decision.refused:
        assert decision.refusal is not None
        assert decision.refusal.code.value in ("empty_text", "over_budget")
        return
    tag = decision.tag
    event(f"tag {tag.outcome.value}")
    if tag.outcome is TagOutcome.SKIPPED:
        assert tag.needs is not None and tag.has is not None
        assert tag.needs > tag.has >= 0
        assert tag.unit in {d.unit for d in budget.measure(text).dimensions}
        assert decision.tagged_text == text
        assert not has_tag(decision.final_text, policy.tag, budget)
    else:
        assert tag.outcome in (TagOutcome.APPLIED, TagOutcome.ALREADY_PRESENT)
        assert has_tag(decision.tagged_text, policy.tag, budget)
        assert has_tag(decision.final_text, policy.tag, budget)
        assert decision.final_text.startswith(decision.tagged_text.rstrip())
