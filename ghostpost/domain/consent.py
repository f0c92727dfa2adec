"""Which changes to a window's policy need the principal's consent (DESIGN.md §3).

The principal approved a window's disclosure as it stood. A change that makes the disclosure
weaker, or replaces words and choices the principal saw, waits for them; a change that only
makes it stronger is applied at once. Every field of `WindowPolicy` has a rule here, and
`compare_policies` refuses to run when one is missing, so a new field cannot slip past consent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ghostpost.domain.policy import ReplyPolicy, TagMode, WindowPolicy


class Effect(StrEnum):
    """What changing one field does to the disclosure."""

    UNCHANGED = "unchanged"
    #: Weaker in an ordered sense: tag less strict, larger N, longer window, approval off.
    WEAKENS = "weakens"
    #: Stronger in an ordered sense (the inverse of WEAKENS): applied without consent.
    STRENGTHENS = "strengthens"
    #: Neither weaker nor stronger, but not what the principal saw (other words, another
    #: reminder mode, tag or position): needs consent in either direction.
    REPLACES = "replaces"

    @property
    def needs_consent(self) -> bool:
        """Tell whether a change with this effect waits for the principal."""
        return self in (Effect.WEAKENS, Effect.REPLACES)


@dataclass(frozen=True)
class FieldChange:
    """One field that differs between two policies, and what the difference does."""

    field: str
    old: object
    new: object
    effect: Effect


@dataclass(frozen=True)
class PolicyComparison:
    """Every field that differs between an old and a new policy, in WindowPolicy's order."""

    changes: tuple[FieldChange, ...]

    @property
    def needing_consent(self) -> tuple[FieldChange, ...]:
        """The changes that wait for the principal (weakening or replacing)."""
        return tuple(c for c in self.changes if c.effect.needs_consent)

    @property
    def strengthening(self) -> tuple[FieldChange, ...]:
        """The changes that only make the disclosure stronger."""
        return tuple(c for c in self.changes if c.effect is Effect.STRENGTHENS)

    @property
    def needs_consent(self) -> bool:
        """Tell whether any change waits for the principal."""
        return bool(self.needing_consent)


_TAG_STRICTNESS = {TagMode.OFF: 0, TagMode.WHEN_FITS: 1, TagMode.REQUIRED: 2}


def _ordered(weaker_when_larger: bool) -> Callable[[object, object], Effect]:
    def rule(old: object, new: object) -> Effect:
        if old == new:
            return Effect.UNCHANGED
        larger = new > old  # type: ignore[operator]
        return Effect.WEAKENS if larger == weaker_when_larger else Effect.STRENGTHENS

    return rule


def _replaced(old: object, new: object) -> Effect:
    return Effect.UNCHANGED if old == new else Effect.REPLACES


_REPLY_STRICTNESS = {ReplyPolicy.ALLOW: 0, ReplyPolicy.APPROVE: 1, ReplyPolicy.REFUSE: 2}


def _reply_policy(old: object, new: object) -> Effect:
    assert isinstance(old, ReplyPolicy) and isinstance(new, ReplyPolicy)
    return _ordered(weaker_when_larger=False)(_REPLY_STRICTNESS[old], _REPLY_STRICTNESS[new])


def _tag_mode(old: object, new: object) -> Effect:
    assert isinstance(old, TagMode) and isinstance(new, TagMode)
    return _ordered(weaker_when_larger=False)(_TAG_STRICTNESS[old], _TAG_STRICTNESS[new])


#: field name -> rule(old, new). An earlier start or a later end makes a longer window; a
#: larger N leaves longer runs without a reminder; approval turned off removes a check.
RULES: dict[str, Callable[[object, object], Effect]] = {
    "starts_at": _ordered(weaker_when_larger=False),
    "ends_at": _ordered(weaker_when_larger=True),
    "notice_text": _replaced,
    "reminder_text": _replaced,
    "reminder_every": _ordered(weaker_when_larger=True),
    "reminder_mode": _replaced,
    "tag": _replaced,
    "tag_mode": _tag_mode,
    "tag_position": _replaced,
    "requires_approval": _ordered(weaker_when_larger=False),
    # Relaxing alt text is a change the principal agrees to, like any weaker policy.
    "alt_text_required": _ordered(weaker_when_larger=False),
    # Tagging fewer of a thread's parts is weaker.
    "tag_every_part": _ordered(weaker_when_larger=False),
    # The reason is words the principal saw and the public reads.
    "reason": _replaced,
    # A window's kind never changes (services.windows refuses it); were it to, it is a new
    # promise to the public.
    "kind": _replaced,
    # refuse -> approve -> allow lets more automated replies out.
    "reply_policy": _reply_policy,
}


def unclassified_fields() -> set[str]:
    """Return the fields of WindowPolicy without a consent rule (must be empty)."""
    return {f.name for f in dataclasses.fields(WindowPolicy)} - set(RULES)


def compare_policies(old: WindowPolicy, new: WindowPolicy) -> PolicyComparison:
    """Say, field by field, how `new` differs from `old` and whether the principal must agree."""
    missing = unclassified_fields()
    if missing:
        raise LookupError(f"no consent rule for WindowPolicy field(s) {sorted(missing)}")
    changes = []
    for spec in dataclasses.fields(WindowPolicy):
        before, after = getattr(old, spec.name), getattr(new, spec.name)
        effect = RULES[spec.name](before, after)
        if effect is not Effect.UNCHANGED:
            changes.append(FieldChange(spec.name, before, after, effect))
    return PolicyComparison(tuple(changes))


def with_fields(policy: WindowPolicy, changes: tuple[FieldChange, ...]) -> WindowPolicy:
    """Return `policy` with the new values of `changes`; ValueError if that is no valid policy."""
    values: dict[str, Any] = {c.field: c.new for c in changes}
    return dataclasses.replace(policy, **values)
