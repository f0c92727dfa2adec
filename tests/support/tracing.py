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

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
