"""The post state machine: legal moves, illegal ones, and terminal states."""

from __future__ import annotations

from itertools import pairwise, product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostpost.domain.errors import DomainError, InvalidTransition
from ghostpost.domain.states import (
    ALLOWED_TRANSITIONS,
    INITIAL_STATES,
    QUEUED_STATES,
    TERMINAL_STATES,
    PostState,
    can_transition,
    transition,
)

S = PostState
LEGAL = sorted((a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets)
ILLEGAL = sorted((a, b) for a, b in product(PostState, PostState) if (a, b) not in set(LEGAL))


def pair_id(pair: tuple[PostState, PostState]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_every_state_has_an_entry_in_the_table() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(PostState)


def test_the_table_matches_the_documented_lifecycle() -> None:
    expected: dict[PostState, set[PostState]] = {
        # -> held: its writer's or client's grant was withdrawn (services.delegation).
        S.PENDING_APPROVAL: {S.SCHEDULED, S.HELD, S.CANCELLED, S.REFUSED},
        # -> pending_approval: rescheduled into a window that requires approval.
        S.SCHEDULED: {S.PENDING_APPROVAL, S.HELD, S.PUBLISHING, S.FAILED, S.CANCELLED, S.REFUSED},
        S.HELD: {S.PENDING_APPROVAL, S.SCHEDULED, S.PUBLISHING, S.CANCELLED, S.REFUSED},
        S.PUBLISHING: {S.PUBLISHED, S.FAILED, S.SCHEDULED},
        S.FAILED: {S.SCHEDULED, S.CANCELLED},
        S.PUBLISHED: set(),
        S.CANCELLED: set(),
        S.REFUSED: set(),
    }
    assert expected == ALLOWED_TRANSITIONS


@pytest.mark.parametrize("pair", LEGAL, ids=pair_id)
def test_every_legal_transition_is_allowed(pair: tuple[PostState, PostState]) -> None:
    current, target = pair
    assert can_transition(current, target)
    assert transition(current, target) is target


@pytest.mark.parametrize("pair", ILLEGAL, ids=pair_id)
def test_every_other_transition_raises_with_a_clear_message(
    pair: tuple[PostState, PostState],
) -> None:
    current, target = pair
    assert not can_transition(current, target)
    with pytest.raises(InvalidTransition) as raised:
        transition(current, target)
    assert str(raised.value) == f"a {current.value} post cannot become {target.value}"
    assert raised.value.message == str(raised.value)
    assert raised.value.code == "invalid_transition"
    assert isinstance(raised.value, DomainError)


def test_no_state_moves_to_itself() -> None:
    for state in PostState:
        assert not can_transition(state, state)


def test_published_cancelled_and_refused_are_terminal_with_no_exits() -> None:
    assert {S.PUBLISHED, S.CANCELLED, S.REFUSED} == TERMINAL_STATES
    for state in TERMINAL_STATES:
        assert ALLOWED_TRANSITIONS[state] == frozenset()
        for target in PostState:
            with pytest.raises(InvalidTransition):
                transition(state, target)


def test_every_queued_state_can_still_be_cancelled_or_refused() -> None:
    assert {S.PENDING_APPROVAL, S.SCHEDULED, S.HELD} == QUEUED_STATES
    for state in QUEUED_STATES:
        assert can_transition(state, S.CANCELLED)
        assert can_transition(state, S.REFUSED)


def test_a_post_being_published_can_only_land_fail_or_be_retried() -> None:
    assert ALLOWED_TRANSITIONS[S.PUBLISHING] == {S.PUBLISHED, S.FAILED, S.SCHEDULED}
    assert not can_transition(S.PUBLISHING, S.CANCELLED), "a post in flight cannot be cancelled"


def test_only_a_post_being_published_can_become_published() -> None:
    assert [s for s in PostState if can_transition(s, S.PUBLISHED)] == [S.PUBLISHING]


def reachable(start: PostState) -> set[PostState]:
    seen = {start}
    frontier = [start]
    while frontier:
        for target in ALLOWED_TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_every_state_is_reachable_from_a_new_post() -> None:
    assert {S.PENDING_APPROVAL, S.SCHEDULED} == INITIAL_STATES
    assert reachable(S.PENDING_APPROVAL) | reachable(S.SCHEDULED) == set(PostState)


def test_every_state_can_still_end() -> None:
    for state in PostState:
        assert reachable(state) & TERMINAL_STATES, state


@settings(max_examples=200, deadline=None)
@given(
    start=st.sampled_from(sorted(INITIAL_STATES)),
    choices=st.lists(st.sampled_from(list(PostState)), max_size=40),
)
def test_a_random_walk_only_ever_follows_allowed_transitions(
    start: PostState, choices: list[PostState]
) -> None:
    state = start
    path = [state]
    for target in choices:
        if target in ALLOWED_TRANSITIONS[state]:
            state = transition(state, target)
            path.append(state)
        else:
            with pytest.raises(InvalidTransition):
                transition(state, target)
    for current, following in pairwise(path):
        assert following in ALLOWED_TRANSITIONS[current]
    if path[-1] in TERMINAL_STATES:
        assert all(s not in TERMINAL_STATES for s in path[:-1])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_walk_through_legal_moves_is_never_stuck_before_a_terminal_state(
    data: st.DataObject,
) -> None:
    state = data.draw(st.sampled_from(sorted(INITIAL_STATES)))
    for _ in range(60):
        if state in TERMINAL_STATES:
            return
        exits = sorted(ALLOWED_TRANSITIONS[state])
        assert exits, f"{state.value} is not terminal but has no exit"
        target = data.draw(st.sampled_from(exits))
        assert transition(state, target) is target
        state = target
