"""Coverage tracing of Hypothesis tests: their bodies traced, their input generation not.

On Python 3.11 a trace function slows every line the interpreter runs, ours or not: a property
test spent half its CPU time in tracing Hypothesis' own engine (tests/unit/domain/test_ledger.py:
19 s of CPU without coverage, 35 s with, 19-20 s with this). Each example's call of the test
function is traced as before, so every line and branch of ghostpost that a test body reaches is
recorded. What runs untraced is Hypothesis, the strategies under tests/ (coverage does not
measure them: `source = ["ghostpost"]`), and ghostpost code a strategy itself calls while
generating: over the 11 files of `@given` tests that was one line and its two arcs (a
WindowPolicy refusing its arguments), which tests/unit/domain/test_policy.py covers.
Only the calling thread's tracer is paused: other threads are traced throughout.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def generation_untraced(test: Any) -> Iterator[None]:
    """While the block runs, `test` (a `@given` function) has coverage trace only its body.

    Outside a coverage run (or without coverage.py's C tracer) it changes nothing."""
    hypothesis = getattr(test, "hypothesis", None)
    inner = getattr(hypothesis, "inner_test", None)
    tracer: Any = sys.gettrace()
    if inner is None or type(tracer).__name__ != "CTracer":
        yield
        return

    def traced(*args: object, **kwargs: object) -> object:
        tracer.start()
        try:
            return inner(*args, **kwargs)
        finally:
            tracer.stop()

    hypothesis.inner_test = traced
    tracer.stop()
    try:
        yield
    finally:
        tracer.start()
        hypothesis.inner_test = inner


class _Paused(threading.local):
    tracer: Any = None
    depth = 0


_paused = _Paused()


@contextmanager
def untraced() -> Iterator[None]:
    """While the block runs, coverage traces nothing in the calling thread (threads started
    meanwhile are still traced). Outside a coverage run (or without the C tracer) it changes
    nothing."""
    tracer: Any = sys.gettrace()
    if type(tracer).__name__ != "CTracer":
        yield
        return
    tracer.stop()
    try:
        yield
    finally:
        tracer.start()


@contextmanager
def steps_traced_only() -> Iterator[None]:
    """While the block runs, coverage traces only the calls of functions marked `traced_step`.

    For a Hypothesis state machine (`run_state_machine_as_test`, Schemathesis' stateful runs):
    it runs as one Hypothesis test whose body is the machine's loop, so `generation_untraced`
    cannot tell drawing the next rule and its arguments from running it. Mark the rules,
    invariants and set-up (what reaches ghostpost) and run the machine in this block.
    Outside a coverage run (or without coverage.py's C tracer) it changes nothing."""
    tracer: Any = sys.gettrace()
    if type(tracer).__name__ != "CTracer" or _paused.tracer is not None:
        yield
        return
    _paused.tracer, _paused.depth = tracer, 0
    tracer.stop()
    try:
        yield
    finally:
        tracer.start()
        _paused.tracer = None


def traced_step(function: Callable[P, R]) -> Callable[P, R]:
    """`function`, traced by coverage inside `steps_traced_only` (calls within it included)."""

    @functools.wraps(function)
    def traced(*args: P.args, **kwargs: P.kwargs) -> R:
        tracer = _paused.tracer
        if tracer is None or _paused.depth:
            return function(*args, **kwargs)
        _paused.depth += 1
        tracer.start()
        try:
            return function(*args, **kwargs)
        finally:
            tracer.stop()
            _paused.depth -= 1

    return traced
