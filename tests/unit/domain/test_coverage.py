"""Disclosure coverage of a window: exact numbers on hand-built timelines, and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.coverage import (
    MarkKind,
    TimelinePost,
    compute_coverage,
    timeline_post,
)
from ghostpost.domain.model import Post, Source
from ghostpost.domain.policy import (
    CadencePost,
    Outcome,
    PostDraft,
    PostKind,
    ReminderOutcome,
    Stage,
    TagMode,
    TagOutcome,
    WindowPolicy,
    WindowState,
    cadence_step,
    counts_in_window,
    decide,
    is_disclosure,
    next_run_length,
)
from ghostpost.domain.states import PostState
from tests.unit.domain.strategies import (
    BUDGETS,
    NOW,
    PlannedPost,
    platforms,
    timelines,
    window_policies,
)

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
R = ReminderOutcome


def policy(every: int = 3, tag_mode: TagMode = TagMode.WHEN_FITS) -> WindowPolicy:
    return WindowPolicy(
        starts_at=START,
        ends_at=START + timedelta(hours=8),
        notice_text="Some of my posts are written by my team.",
        reminder_text="Reminder: my team helps.",
        reminder_every=every,
        tag_mode=tag_mode,
    )


class Builder:
    """Appends timeline posts one minute apart."""

    def __init__(self) -> None:
        self.posts: list[TimelinePost] = []

    def _add(self, kind: PostKind, **fields: object) -> Builder:
        at = START + timedelta(minutes=len(self.posts))
        self.posts.append(
            TimelinePost(
                public_id=f"p{len(self.posts) + 1}",
                published_at=at,
                kind=kind,
                **fields,  # type: ignore[arg-type]
            )
        )
        return self

    def notice(self) -> Builder:
        return self._add(PostKind.NOTICE, delegated=False)

    def reminder(self) -> Builder:
        return self._add(PostKind.REMINDER, delegated=False)

    def tagged(self, reminder: ReminderOutcome = R.NONE) -> Builder:
        return self._add(
            PostKind.REGULAR, delegated=True, tag=TagOutcome.APPLIED, reminder=reminder
        )

    def already_tagged(self) -> Builder:
        return self._add(PostKind.REGULAR, delegated=True, tag=TagOutcome.ALREADY_PRESENT)

    def skipped(self, needs: int, has: int, reminder: ReminderOutcome = R.NONE) -> Builder:
        return self._add(
            PostKind.REGULAR,
            delegated=True,
            tag=TagOutcome.SKIPPED,
            tag_needs=needs,
            tag_has=has,
            tag_unit="characters",
            reminder=reminder,
        )

    def untagged(self) -> Builder:
        return self._add(PostKind.REGULAR, delegated=True, tag=TagOutcome.OFF)

    def principal(self) -> Builder:
        return self._add(PostKind.REGULAR, delegated=False, tag=TagOutcome.NOT_DELEGATED)


def test_a_kept_window_is_counted_exactly() -> None:
    # N = 3: at most 2 posts in a row without a disclosure.
    timeline = (
        Builder()
        .notice()  # 1  run 0
        .tagged()  # 2  run 1
        .principal()  # 3  run 2
        .reminder()  # 4  due (next would be the 3rd): standalone, run 0
        .skipped(6, 2)  # 5  run 1
        .already_tagged()  # 6  run 2
        .tagged(R.INLINE)  # 7  due: inline, run 0
        .principal()  # 8  run 1
        .posts
    )
    cov = compute_coverage(policy(3), START - timedelta(hours=1), timeline)

    assert cov.published == 8
    assert (cov.principal_posts, cov.delegated_posts, cov.notices) == (2, 4, 1)
    assert (cov.tagged, cov.tag_skipped, cov.untagged) == (3, 1, 0)
    assert cov.tagged_percent == 75.0
    skipped = cov.skipped_tags[0]
    assert (skipped.position, skipped.public_id, skipped.needs, skipped.has) == (5, "p5", 6, 2)
    assert skipped.unit == "characters"
    assert (cov.reminders_due, cov.reminders_inline, cov.reminders_standalone) == (2, 1, 1)
    assert cov.reminders_sent == 2
    assert cov.reminders_missed == 0
    assert (cov.longest_run, cov.longest_run_ends_at) == (2, 3)
    assert cov.cadence_kept
    assert cov.notice_lead == timedelta(hours=1)
    assert [m.run for m in cov.marks] == [0, 1, 2, 0, 1, 2, 0, 1]
    assert [m.kind for m in cov.marks] == [
        MarkKind.NOTICE,
        MarkKind.TAGGED,
        MarkKind.PRINCIPAL,
        MarkKind.REMINDER,
        MarkKind.TAG_SKIPPED,
        MarkKind.TAGGED,
        MarkKind.INLINE_REMINDER,
        MarkKind.PRINCIPAL,
    ]
    assert not any(m.missed_reminder for m in cov.marks)
    assert cov.count(MarkKind.PRINCIPAL) == 2


def test_missing_reminders_are_counted_and_the_run_exceeds_n() -> None:
    timeline = Builder().notice().tagged().tagged().tagged().principal().reminder().tagged().posts
    cov = compute_coverage(policy(3), START, timeline)

    # Post 4 is the 3rd in a row (due, missed), post 5 the 4th (due again, missed); the
    # reminder at 6 comes when due, the run resets.
    assert cov.reminders_due == 3
    assert cov.reminders_missed == 2
    assert (cov.reminders_inline, cov.reminders_standalone) == (0, 1)
    assert (cov.longest_run, cov.longest_run_ends_at) == (4, 5)
    assert not cov.cadence_kept
    assert [m.position for m in cov.marks if m.missed_reminder] == [4, 5]


def test_a_reminder_sent_before_it_is_due_counts_as_sent_not_due() -> None:
    cov = compute_coverage(policy(5), START, Builder().notice().tagged().reminder().posts)
    assert (cov.reminders_due, cov.reminders_standalone, cov.reminders_missed) == (0, 1, 0)


def test_posts_before_the_notice_extend_the_run_and_the_notice_resets_it() -> None:
    # The principal may post in the window before the notice is out; delegated posts may not.
    timeline = Builder().principal().principal().notice().tagged().posts
    cov = compute_coverage(policy(3), START + timedelta(minutes=2), timeline)
    assert [m.run for m in cov.marks] == [1, 2, 0, 1]
    assert cov.notice_lead == -timedelta(minutes=2)
    assert cov.cadence_kept


def test_an_empty_window_and_a_window_without_delegated_posts() -> None:
    empty = compute_coverage(policy(), None, [])
    assert (empty.published, empty.longest_run, empty.longest_run_ends_at) == (0, 0, None)
    assert empty.tagged_percent is None
    assert empty.notice_lead is None
    assert empty.cadence_kept
    only_principal = compute_coverage(policy(), None, Builder().principal().posts)
    assert only_principal.tagged_percent is None


def test_tag_mode_off_counts_delegated_posts_as_untagged() -> None:
    cov = compute_coverage(
        policy(10, TagMode.OFF), START, Builder().notice().untagged().untagged().posts
    )
    assert (cov.delegated_posts, cov.tagged, cov.untagged, cov.tagged_percent) == (2, 0, 2, 0.0)
    assert cov.tag_mode is TagMode.OFF
    assert {m.kind for m in cov.marks[1:]} == {MarkKind.UNTAGGED}


def test_every_mark_kind_has_a_legend_label() -> None:
    assert all(kind.label for kind in MarkKind)
    assert MarkKind.TAG_SKIPPED.label == "Delegated, tag skipped"


def _post(kind: PostKind, decisions: dict[str, object]) -> Post:
    return Post(
        id=1,
        public_id="abc",
        account_id=1,
        kind=kind,
        state=PostState.PUBLISHED,
        author_id=1,
        submitter="user:1",
        source=Source.WEB,
        submitted_text="hi",
        final_text="hi",
        idempotency_key="k",
        created_at=START,
        published_at=START,
        decisions=decisions,
    )


def test_timeline_post_reads_the_decisions_stored_with_a_post() -> None:
    skipped = timeline_post(
        _post(
            PostKind.REGULAR,
            {
                "delegated": True,
                "publication": {
                    "tag": {"outcome": "skipped", "needs": 6, "has": 2, "unit": "characters"},
                    "reminder": {"outcome": "inline"},
                },
            },
        )
    )
    assert (skipped.delegated, skipped.tag, skipped.reminder) == (
        True,
        TagOutcome.SKIPPED,
        R.INLINE,
    )
    assert (skipped.tag_needs, skipped.tag_has, skipped.tag_unit) == (6, 2, "characters")
    assert skipped.mark is MarkKind.INLINE_REMINDER

    principal = timeline_post(_post(PostKind.REGULAR, {"delegated": False}))
    assert (principal.delegated, principal.tag, principal.reminder) == (False, None, R.NONE)
    assert principal.mark is MarkKind.PRINCIPAL

    # Notices and reminders are never "delegated", whatever the stored flag says.
    notice = timeline_post(_post(PostKind.NOTICE, {"delegated": False, "kind": "notice"}))
    assert (notice.delegated, notice.mark, notice.is_disclosure) == (False, MarkKind.NOTICE, True)

    # Unknown stored values (a newer vocabulary) degrade to "no decision", never crash.
    odd = timeline_post(
        _post(PostKind.REGULAR, {"publication": {"tag": {"outcome": "?"}, "reminder": {}}})
    )
    assert (odd.tag, odd.reminder, odd.mark) == (None, R.NONE, MarkKind.UNTAGGED)


# --- properties -------------------------------------------------------------------------------

TIMELINE = settings(max_examples=120, deadline=None)


def published_by_the_engine(
    policy: WindowPolicy, platform: str, planned: list[PlannedPost]
) -> list[TimelinePost]:
    """Publish `planned` after the notice as the worker would, as coverage records."""
    budget = BUDGETS[platform]
    out = [TimelinePost("notice", NOW, PostKind.NOTICE, delegated=False)]
    run = 0

    def ask(draft: PostDraft):  # type: ignore[no-untyped-def]
        state = WindowState(policy=policy, notice_published=True, posts_since_disclosure=run)
        return decide(draft, window=state, budget=budget, now=NOW, stage=Stage.PUBLICATION)

    for index, post in enumerate(planned):
        draft = PostDraft(text=post.text, is_delegated=post.is_delegated)
        decision = ask(draft)
        if decision.outcome is Outcome.REFUSE:
            continue
        if decision.outcome is Outcome.REMINDER_FIRST:
            out.append(TimelinePost(f"r{index}", NOW, PostKind.REMINDER, delegated=False))
            run = 0
            decision = ask(draft)
        out.append(
            TimelinePost(
                f"p{index}",
                NOW,
                PostKind.REGULAR,
                delegated=post.is_delegated,
                tag=decision.tag.outcome,
                tag_needs=decision.tag.needs,
                tag_has=decision.tag.has,
                tag_unit=decision.tag.unit,
                reminder=decision.reminder.outcome,
            )
        )
        run = next_run_length(
            run, disclosure=is_disclosure(PostKind.REGULAR, decision.reminder.outcome)
        )
    return out


@TIMELINE
@given(policy=window_policies(every=st.integers(2, 12)), platform=platforms, data=st.data())
def test_a_timeline_the_engine_published_shows_full_coverage(
    policy: WindowPolicy, platform: str, data: st.DataObject
) -> None:
    timeline = published_by_the_engine(policy, platform, data.draw(timelines(platform)))
    cov = compute_coverage(policy, NOW, timeline)

    assert cov.reminders_missed == 0
    assert cov.cadence_kept
    assert cov.longest_run < policy.reminder_every
    # The engine sends a reminder exactly when one is due, never early.
    assert cov.reminders_due == cov.reminders_sent
    if policy.tag_mode is TagMode.OFF:
        assert cov.tagged == 0
    else:
        assert cov.untagged == 0
        for skipped in cov.skipped_tags:
            assert skipped.needs is not None and skipped.has is not None
            assert skipped.needs > skipped.has >= 0


kinds = st.sampled_from(
    [
        ("notice", {}),
        ("reminder", {}),
        ("tagged", {}),
        ("tagged", {"reminder": R.INLINE}),
        ("already_tagged", {}),
        ("skipped", {"needs": 6, "has": 1}),
        ("untagged", {}),
        ("principal", {}),
    ]
)


@settings(max_examples=300, deadline=None)
@given(every=st.integers(2, 12), steps=st.lists(kinds, max_size=60))
def test_the_numbers_always_add_up(every: int, steps: list[tuple[str, dict[str, object]]]) -> None:
    builder = Builder()
    for name, args in steps:
        getattr(builder, name)(**args)
    cov = compute_coverage(policy(every), None, builder.posts)

    regular = [p for p in builder.posts if p.kind is PostKind.REGULAR]
    reminders = sum(1 for p in builder.posts if p.kind is PostKind.REMINDER)
    assert cov.published == len(cov.marks) == len(builder.posts)
    assert cov.principal_posts + cov.delegated_posts == len(regular)
    assert cov.principal_posts + cov.delegated_posts + cov.notices + reminders == cov.published
    assert cov.tagged + cov.tag_skipped + cov.untagged == cov.delegated_posts
    assert cov.reminders_missed == sum(1 for m in cov.marks if m.missed_reminder)
    assert cov.reminders_missed <= cov.reminders_due
    assert cov.longest_run == max((m.run for m in cov.marks), default=0)
    assert cov.cadence_kept == (cov.reminders_missed == 0)
    # Without any disclosure at all, every post from the Nth on is a missed reminder.
    if all(not p.is_disclosure for p in builder.posts):
        assert cov.reminders_missed == max(0, len(builder.posts) - every + 1)
        assert cov.longest_run == len(builder.posts)


# -- One cadence rule (issue 12): the worker's and coverage's timeline are the same -------------

WINDOW_ID, OTHER_ID = 7, 8


def cadence(kind: PostKind, at: datetime, notice_of: int | None = None) -> CadencePost:
    return CadencePost(kind=kind, published_at=at, notice_of=notice_of)


def test_a_windows_timeline_is_its_period_by_confirmed_time_plus_its_own_notice() -> None:
    p = policy()
    regular = PostKind.REGULAR
    assert counts_in_window(WINDOW_ID, p, cadence(regular, p.starts_at)), "start included"
    assert not counts_in_window(WINDOW_ID, p, cadence(regular, p.ends_at)), "end excluded"
    early = p.starts_at - timedelta(days=2)
    late = p.ends_at + timedelta(days=2)
    own_notice_early = cadence(PostKind.NOTICE, early, notice_of=WINDOW_ID)
    assert counts_in_window(WINDOW_ID, p, own_notice_early), "its own notice, wherever it fell"
    assert counts_in_window(WINDOW_ID, p, cadence(PostKind.NOTICE, late, notice_of=WINDOW_ID))
    other_notice_inside = cadence(PostKind.NOTICE, START + timedelta(hours=1), notice_of=OTHER_ID)
    assert counts_in_window(WINDOW_ID, p, other_notice_inside), "another notice inside the period"
    assert not counts_in_window(WINDOW_ID, p, cadence(PostKind.NOTICE, early, notice_of=OTHER_ID))
    assert not counts_in_window(WINDOW_ID, p, cadence(PostKind.REMINDER, early))


def test_any_notice_reminder_or_inline_reminder_resets_the_run_and_other_posts_extend_it() -> None:
    at = START + timedelta(hours=1)
    assert cadence_step(4, cadence(PostKind.NOTICE, at, notice_of=OTHER_ID)) == 0
    assert cadence_step(4, cadence(PostKind.REMINDER, at)) == 0
    assert cadence_step(4, CadencePost(PostKind.REGULAR, at, ReminderOutcome.INLINE)) == 0
    assert cadence_step(4, CadencePost(PostKind.REGULAR, at, ReminderOutcome.STANDALONE)) == 5
    assert cadence_step(4, cadence(PostKind.REGULAR, at)) == 5


def test_coverage_leaves_out_what_is_not_on_the_windows_timeline() -> None:
    inside = Builder().notice().tagged().tagged().posts
    before = TimelinePost(
        "early", START - timedelta(hours=1), PostKind.REGULAR, delegated=False, tag=None
    )
    other_notice_before = TimelinePost(
        "n2", START - timedelta(hours=2), PostKind.NOTICE, delegated=False, window_id=OTHER_ID
    )
    cov = compute_coverage(
        policy(5), START, [other_notice_before, before, *inside], window_id=WINDOW_ID
    )
    assert cov.published == 3
    assert [m.public_id for m in cov.marks] == ["p1", "p2", "p3"]


def test_another_windows_notice_inside_the_window_resets_the_run_in_coverage() -> None:
    timeline = Builder().notice().tagged().tagged().posts
    timeline.append(
        TimelinePost(
            "b-notice",
            START + timedelta(minutes=10),
            PostKind.NOTICE,
            delegated=False,
            window_id=OTHER_ID,
        )
    )
    timeline.append(
        TimelinePost("p5", START + timedelta(minutes=11), PostKind.REGULAR, delegated=True)
    )
    cov = compute_coverage(policy(3), START, timeline, window_id=WINDOW_ID)
    assert [m.run for m in cov.marks] == [0, 1, 2, 0, 1]
    assert (cov.reminders_due, cov.reminders_sent, cov.reminders_missed, cov.notices) == (
        0,
        0,
        0,
        2,
    )
