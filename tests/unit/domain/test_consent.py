"""Which window policy changes need the principal's consent (ghostpost.domain.consent)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.consent import (
    RULES,
    Effect,
    compare_policies,
    unclassified_fields,
    with_fields,
)
from ghostpost.domain.policy import ReminderMode, ReplyPolicy, TagMode, TagPosition, WindowPolicy

PROPERTY = settings(max_examples=300, deadline=None)
BASE = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@st.composite
def policies(draw: st.DrawFn) -> WindowPolicy:
    """Any valid window policy: every field varies, so every rule is exercised."""
    start = BASE + timedelta(hours=draw(st.integers(-48, 48)))
    return WindowPolicy(
        starts_at=start,
        ends_at=start + timedelta(hours=draw(st.integers(1, 96))),
        notice_text=draw(st.sampled_from(["My team writes some posts.", "Team at the controls."])),
        reminder_text=draw(st.sampled_from(["Reminder: my team helps.", "Team post."])),
        reminder_every=draw(st.integers(2, 1000)),
        reminder_mode=draw(st.sampled_from(list(ReminderMode))),
        tag=draw(st.sampled_from(["#team", "#staff"])),
        tag_mode=draw(st.sampled_from(list(TagMode))),
        tag_position=draw(st.sampled_from(list(TagPosition))),
        requires_approval=draw(st.booleans()),
        tag_every_part=draw(st.booleans()),
        reply_policy=draw(st.sampled_from(list(ReplyPolicy))),
    )


def test_every_field_of_window_policy_has_a_consent_rule() -> None:
    # Adding a field to WindowPolicy without deciding whether changing it needs the principal
    # fails here (and compare_policies refuses to run).
    assert unclassified_fields() == set()
    assert set(RULES) == {f.name for f in dataclasses.fields(WindowPolicy)}


@PROPERTY
@given(policies())
def test_no_change_needs_nothing(policy: WindowPolicy) -> None:
    assert compare_policies(policy, policy).changes == ()
    assert not compare_policies(policy, policy).needs_consent


@PROPERTY
@given(policies(), policies())
def test_a_change_and_its_inverse_never_both_weaken_the_same_field(
    old: WindowPolicy, new: WindowPolicy
) -> None:
    forth = {c.field: c.effect for c in compare_policies(old, new).changes}
    back = {c.field: c.effect for c in compare_policies(new, old).changes}
    assert forth.keys() == back.keys()
    inverse = {
        Effect.WEAKENS: Effect.STRENGTHENS,
        Effect.STRENGTHENS: Effect.WEAKENS,
        Effect.REPLACES: Effect.REPLACES,
    }
    for name, effect in forth.items():
        assert not (effect is Effect.WEAKENS and back[name] is Effect.WEAKENS), name
        assert back[name] is inverse[effect], name


@PROPERTY
@given(policies(), policies())
def test_every_differing_field_is_reported_once_with_its_values(
    old: WindowPolicy, new: WindowPolicy
) -> None:
    comparison = compare_policies(old, new)
    differing = [
        f.name
        for f in dataclasses.fields(WindowPolicy)
        if getattr(old, f.name) != getattr(new, f.name)
    ]
    assert [c.field for c in comparison.changes] == differing
    for change in comparison.changes:
        assert (change.old, change.new) == (getattr(old, change.field), getattr(new, change.field))
    # Consent is needed exactly when some change is not a pure strengthening.
    assert comparison.needs_consent == (len(comparison.strengthening) != len(comparison.changes))
    # Applying every change gives the new policy back.
    assert with_fields(old, comparison.changes) == new


@PROPERTY
@given(policies(), policies())
def test_applying_only_the_strengthening_changes_never_needs_consent(
    old: WindowPolicy, new: WindowPolicy
) -> None:
    try:
        partial = with_fields(old, compare_policies(old, new).strengthening)
    except ValueError:
        return  # a shorter window from both ends may not be a window: proposed whole instead
    assert not compare_policies(old, partial).needs_consent


def policy(**changes: object) -> WindowPolicy:
    base = WindowPolicy(
        starts_at=BASE,
        ends_at=BASE + timedelta(hours=8),
        notice_text="My team writes some posts.",
        reminder_text="Reminder: my team helps.",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "effect"),
    [
        ({"tag_mode": TagMode.OFF}, Effect.WEAKENS),
        ({"tag_mode": TagMode.REQUIRED}, Effect.STRENGTHENS),
        ({"reminder_every": 1000}, Effect.WEAKENS),
        ({"reminder_every": 3}, Effect.STRENGTHENS),
        ({"ends_at": BASE + timedelta(days=30)}, Effect.WEAKENS),
        ({"ends_at": BASE + timedelta(hours=2)}, Effect.STRENGTHENS),
        ({"starts_at": BASE - timedelta(hours=1)}, Effect.WEAKENS),
        ({"starts_at": BASE + timedelta(hours=1)}, Effect.STRENGTHENS),
        ({"requires_approval": True}, Effect.STRENGTHENS),
        ({"tag_every_part": True}, Effect.STRENGTHENS),
        ({"notice_text": "Something else."}, Effect.REPLACES),
        ({"reminder_text": "Something else."}, Effect.REPLACES),
        ({"reminder_mode": ReminderMode.STANDALONE}, Effect.REPLACES),
        ({"tag": "#staff"}, Effect.REPLACES),
        ({"tag_position": TagPosition.START}, Effect.REPLACES),
    ],
)
def test_the_rules_of_the_issue(changes: dict[str, object], effect: Effect) -> None:
    [change] = compare_policies(policy(), policy(**changes)).changes
    assert change.effect is effect


def test_approval_turned_off_weakens_and_required_to_when_fits_weakens() -> None:
    strict = policy(requires_approval=True, tag_mode=TagMode.REQUIRED)
    [approval, tag] = sorted(compare_policies(strict, policy()).changes, key=lambda c: c.field)
    assert (approval.field, approval.effect) == ("requires_approval", Effect.WEAKENS)
    assert (tag.field, tag.effect) == ("tag_mode", Effect.WEAKENS)


def test_tagging_fewer_parts_of_a_thread_weakens() -> None:
    [change] = compare_policies(policy(tag_every_part=True), policy()).changes
    assert (change.field, change.effect) == ("tag_every_part", Effect.WEAKENS)


@pytest.mark.parametrize(
    ("old", "new", "effect"),
    [
        (ReplyPolicy.REFUSE, ReplyPolicy.APPROVE, Effect.WEAKENS),
        (ReplyPolicy.APPROVE, ReplyPolicy.ALLOW, Effect.WEAKENS),
        (ReplyPolicy.REFUSE, ReplyPolicy.ALLOW, Effect.WEAKENS),
        (ReplyPolicy.ALLOW, ReplyPolicy.APPROVE, Effect.STRENGTHENS),
        (ReplyPolicy.APPROVE, ReplyPolicy.REFUSE, Effect.STRENGTHENS),
    ],
)
def test_letting_more_automated_replies_out_weakens(
    old: ReplyPolicy, new: ReplyPolicy, effect: Effect
) -> None:
    [change] = compare_policies(policy(reply_policy=old), policy(reply_policy=new)).changes
    assert (change.field, change.effect) == ("reply_policy", effect)
