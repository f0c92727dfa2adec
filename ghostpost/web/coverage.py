"""The disclosure-coverage dashboard: one window's numbers and a server-side SVG timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template, request

from ghostpost.domain.coverage import Coverage, MarkKind
from ghostpost.domain.model import Role
from ghostpost.services.coverage import window_coverage
from ghostpost.services.errors import NotFound
from ghostpost.web.common import current_actor, parse_id, roles_required, services
from ghostpost.web.decisions import utc_time
from ghostpost.web.ledger import post_url
from ghostpost.web.times import local_label

bp = Blueprint("coverage", __name__)
bp.add_app_template_filter(utc_time, "utc_time")

READERS = (Role.ADMIN, Role.MANAGER, Role.AUDITOR)

# Chart geometry (SVG user units; the chart scales to the page width).
WIDTH = 960
LEFT, RIGHT = 64, 16
STRIP_TOP, STRIP_HEIGHT = 24, 36
BARS_TOP, BARS_HEIGHT = 92, 72
LEGEND_TOP, LEGEND_COLUMNS, LEGEND_STEP = 214, 4, 222
MAX_MARK_WIDTH = 26


@dataclass(frozen=True)
class ChartMark:
    """One post drawn on the strip and its run bar."""

    x: float
    width: float
    kind: str
    bar_y: float
    bar_height: float
    over: bool
    missed: bool
    title: str


@dataclass(frozen=True)
class LegendItem:
    """One legend swatch."""

    x: float
    y: float
    kind: str
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the SVG template draws."""

    width: int
    height: int
    marks: list[ChartMark]
    legend: list[LegendItem]
    threshold_y: float
    baseline_y: float
    scale_max: int
    strip_top: int
    strip_height: int
    bars_top: int
    left: int
    right_edge: int
    description: str


def _fmt(value: float) -> float:
    return round(value, 2)


def chart(coverage: Coverage) -> Chart:
    """Lay out the timeline strip, the run bars under it and the legend."""
    n = len(coverage.marks)
    usable = WIDTH - LEFT - RIGHT
    step = usable / max(n, 1)
    width = min(MAX_MARK_WIDTH, step * 0.8 if step >= 3 else step)
    every = coverage.reminder_every
    scale_max = max(every, coverage.longest_run, 1)
    baseline = BARS_TOP + BARS_HEIGHT
    marks = []
    for mark in coverage.marks:
        x = LEFT + (mark.position - 1) * step + (step - width) / 2
        height = BARS_HEIGHT * mark.run / scale_max
        kind = MarkKind(mark.kind)
        title = (
            f"#{mark.position} · {local_label(mark.published_at)} · {kind.label} · "
            f"{mark.run} since the last disclosure"
            + (" · reminder due, none sent" if mark.missed_reminder else "")
        )
        marks.append(
            ChartMark(
                x=_fmt(x),
                width=_fmt(width),
                kind=kind.value,
                bar_y=_fmt(baseline - height),
                bar_height=_fmt(height),
                over=mark.run >= every,
                missed=mark.missed_reminder,
                title=title,
            )
        )
    kinds = list(MarkKind)
    legend = [
        LegendItem(
            x=LEFT + (i % LEGEND_COLUMNS) * LEGEND_STEP,
            y=LEGEND_TOP + (i // LEGEND_COLUMNS) * 22,
            kind=kind.value,
            label=f"{kind.label} ({coverage.count(kind)})",
        )
        for i, kind in enumerate(kinds)
    ]
    rows = (len(kinds) + LEGEND_COLUMNS - 1) // LEGEND_COLUMNS
    return Chart(
        width=WIDTH,
        height=LEGEND_TOP + rows * 22 + 4,
        marks=marks,
        legend=legend,
        threshold_y=_fmt(baseline - BARS_HEIGHT * every / scale_max),
        baseline_y=baseline,
        scale_max=scale_max,
        strip_top=STRIP_TOP,
        strip_height=STRIP_HEIGHT,
        bars_top=BARS_TOP,
        left=LEFT,
        right_edge=WIDTH - RIGHT,
        description=describe(coverage),
    )


def describe(coverage: Coverage) -> str:
    """Say in one paragraph what the chart shows (its accessible description)."""
    parts = [f"{coverage.published} published posts"]
    parts += [f"{coverage.count(kind)} {kind.label.lower()}" for kind in MarkKind]
    return (
        ", ".join(parts)
        + f". Longest run without a disclosure: {coverage.longest_run} "
        + f"(never {coverage.reminder_every} in a row allowed)."
    )


def duration(delta: timedelta) -> str:
    """Write a duration for people: '2 h 5 min', '3 days 1 h', '40 s'."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    if not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


@bp.get("/coverage")
@roles_required(*READERS, allow_principal=True)
def coverage() -> Any:
    """Show how well a window kept its disclosure policy (default: the latest begun window)."""
    raw = request.args.get("window", "").strip()
    window_id = parse_id(raw)
    if raw and window_id is None:
        # Not a window id: as unknown as a window that does not exist.
        raise NotFound(f"No window {raw!r}.")
    page = window_coverage(services(), current_actor(), window_id)
    selected = page.selected
    return render_template(
        "coverage.html",
        page=page,
        selected=selected,
        cov=selected.coverage if selected else None,
        chart=chart(selected.coverage) if selected and selected.coverage.marks else None,
        kinds=list(MarkKind),
        duration=duration,
        post_url=post_url,
    )
