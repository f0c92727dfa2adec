"""Werkzeug's URL builders, compiled once per rule shape for the whole test session.

Every test builds its own app (its own database and container), and werkzeug generates and
compiles two URL-building functions per route for each new app: for about 60 routes that is
about 45% of `create_app`'s CPU time, paid by some 2,000 tests per run. A builder is a plain
function of the rule's text, its parsed parts, its defaults, its converters' settings and
`append_unknown` (the rule itself is passed in as its `.self` argument), so rules of the same
shape can share one. Nothing a test observes changes: the same code is generated, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing.rules import Rule

_compile_builder = Rule._compile_builder
_builders: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}


def _shape(rule: Rule, append_unknown: bool) -> tuple[Any, ...]:
    """What werkzeug's `_compile_builder` reads to generate the builder."""
    converters = tuple(
        (
            name,
            type(converter),
            # The converter's own settings; `map` is the app's, which differs per app.
            repr(sorted((k, v) for k, v in vars(converter).items() if k != "map")),
        )
        for name, converter in sorted(rule._converters.items())
    )
    defaults = tuple((str(key), repr(value)) for key, value in (rule.defaults or {}).items())
    return (rule.rule, tuple(rule._trace), defaults, converters, append_unknown)


def _shared_builder(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    key = _shape(self, append_unknown)
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _compile_builder(self, append_unknown)
    return builder


def install() -> None:
    """Share compiled URL builders between the apps this process builds."""
    Rule._compile_builder = _shared_builder  # type: ignore[method-assign]
