"""Werkzeug's URL rules, compiled once per rule shape for the whole test session.

Every test builds its own app (its own database and container), and werkzeug compiles each
of its ~120 rules again for each new map: it parses the rule's text into the parts the
matcher walks and generates two URL-building functions. That was about 70% of `create_app`'s
CPU time once the OpenAPI document stopped being built with the app, paid by ~760 apps per
SQLite run. What `Rule.compile` produces is a function of the rule's class, text, host or
subdomain, slash merging and defaults, the map's host matching and the map's converter
classes: rules alike in all of those share one parse and one pair of builders. Nothing a
test observes changes:
- the parts and trace are the same values (the matcher only reads them);
- each rule still gets converters of its own, built by its own map from the same arguments;
- a builder is called with its rule as `.self` and reads that rule's converters at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.routing.converters import BaseConverter
from werkzeug.routing.rules import Rule, RulePart

_compile = Rule.compile


@dataclass(frozen=True)
class _Compiled:
    parts: tuple[RulePart, ...]
    trace: tuple[tuple[bool, str], ...]
    #: (variable, converter name, args, kwargs) as the rule's text gives them, in order.
    converters: tuple[tuple[str, str, tuple[Any, ...], dict[str, Any]], ...]
    build: Callable[..., tuple[str, str]]
    build_unknown: Callable[..., tuple[str, str]]


_compiled: dict[tuple[Any, ...], _Compiled] = {}


def _key(rule: Rule) -> tuple[Any, ...]:
    """Everything `Rule.compile` reads (werkzeug 3.1: compile, _parse_rule, _compile_builder)."""
    map_ = rule.map
    assert map_ is not None
    converters = frozenset(map_.converters.items())
    defaults = repr(sorted((str(k), repr(v)) for k, v in (rule.defaults or {}).items()))
    return (
        type(rule),
        rule.rule,
        map_.host_matching,
        rule.host if map_.host_matching else rule.subdomain,
        rule.merge_slashes,
        converters,
        defaults,
    )


def _shared_compile(self: Rule) -> None:
    key = _key(self)
    found = _compiled.get(key)
    if found is None:
        asked: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = []
        get_converter = self.get_converter

        def recording(
            variable: str, name: str, args: tuple[Any, ...], kwargs: Any
        ) -> BaseConverter:
            asked.append((variable, name, tuple(args), dict(kwargs)))
            return get_converter(variable, name, args, kwargs)

        self.get_converter = recording  # type: ignore[method-assign]
        try:
            _compile(self)
        finally:
            del self.get_converter
        found = _compiled[key] = _Compiled(
            tuple(self._parts),
            tuple(self._trace),
            tuple(asked),
            self._build.__func__,  # type: ignore[attr-defined]
            self._build_unknown.__func__,  # type: ignore[attr-defined]
        )
        return
    self._parts = list(found.parts)
    self._trace = list(found.trace)
    self._converters = {}
    for variable, name, args, kwargs in found.converters:
        self._converters[variable] = self.get_converter(variable, name, args, kwargs)
        self.arguments.add(variable)
    self._build = found.build.__get__(self, None)
    self._build_unknown = found.build_unknown.__get__(self, None)


def install() -> None:
    """Share compiled URL rules between the apps this process builds."""
    Rule.compile = _shared_compile  # type: ignore[method-assign]
