"""Policy decisions in words: the compose preview, the queue and the post page all say it this way.

Everything here reads `Decision.to_record()` data (what is stored with each post), so a live
preview and a decision stored months ago are described by the same code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ghostpost.domain.length import Measurement
from ghostpost.domain.policy import Decision

#: How a line is styled: ok = disclosure applied, warn = needs attention, bad = refused.
OK, WARN, BAD, PLAIN = "ok", "warn", "bad", "plain"


def utc_time(at: datetime | None) -> str:
    """Format a time for people: '2026-11-21 09:00 UTC' (empty for None)."""
    if at is None:
        return ""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _unit(unit: str | None, count: int) -> str:
    unit = unit or "characters"
    return unit[:-1] if count == 1 and unit.endswith("s") else unit


def _refusal_code(record: dict[str, Any]) -> str | None:
    refusal = record.get("refusal") or {}
    code = refusal.get("code")
    return code if isinstance(code, str) else None


def tag_line(record: dict[str, Any]) -> tuple[str, str]:
    """Describe the tag decision of a record: (text, tone)."""
    tag = record.get("tag") or {}
    outcome, name = tag.get("outcome"), tag.get("tag") or "the tag"
    future = record.get("stage") == "submission"
    if outcome == "applied":
        return (f"{name} will be added" if future else f"{name} added"), OK
    if outcome == "skipped":
        needs, has, unit = tag.get("needs"), tag.get("has"), tag.get("unit")
        if _refusal_code(record) == "tag_does_not_fit":
            cut = (needs or 0) - (has or 0)
            return (
                f"{name} is required and does not fit: needs {needs}, has {has} {unit} "
                f"— cut {cut} {_unit(unit, cut)}",
                BAD,
            )
        return f"{name} skipped: needs {needs}, has {has} {unit}", WARN
    if outcome == "already_present":
        return f"{name} is already in the text", OK
    if outcome == "not_delegated":
        return "None: the principal's own post is never tagged", PLAIN
    if outcome == "off":
        return "Off for this window", PLAIN
    return "Not applicable", PLAIN


def reminder_line(record: dict[str, Any]) -> tuple[str, str]:
    """Describe the reminder decision of a record: (text, tone)."""
    reminder = record.get("reminder") or {}
    outcome, reason = reminder.get("outcome"), reminder.get("reason") or ""
    future = record.get("stage") == "submission"
    if outcome == "inline":
        if future:
            return "Due now: it would be added at the end if the post went out now", OK
        return "Reminder added at the end", OK
    if outcome == "standalone":
        if future:
            return f"Due now: a standalone reminder would go out just before it ({reason})", OK
        return f"A standalone reminder went out just before this post ({reason})", OK
    if outcome == "none":
        return (f"Not due: {reason}" if reason else "Not due"), PLAIN
    return "Not applicable", PLAIN


def decision_lines(record: dict[str, Any] | None) -> list[dict[str, str]]:
    """Return the readable lines of a stored decision: [{label, text, tone}]."""
    if not record:
        return []
    lines: list[dict[str, str]] = []

    def add(label: str, line: tuple[str, str]) -> None:
        lines.append({"label": label, "text": line[0], "tone": line[1]})

    refusal = record.get("refusal")
    if refusal:
        add("Refused", (str(refusal.get("message", "")), BAD))
    if not refusal or (record.get("tag") or {}).get("outcome") != "not_applicable":
        add("Tag", tag_line(record))
    if not refusal:
        add("Reminder", reminder_line(record))
    if record.get("held_reason"):
        if record.get("stage") == "submission":
            add("Notice", ("Will be held until the window's notice is published", WARN))
        else:
            add("Notice", (f"Held: {record['held_reason']}", WARN))
    length = record.get("length")
    if length:
        over = length["used"] > length["limit"]
        add(
            "Length",
            (f"{length['used']} / {length['limit']} {length['unit']}", BAD if over else PLAIN),
        )
    return lines


def decision_notes(record: dict[str, Any] | None) -> list[str]:
    """Return the engine's notes that the lines do not already say."""
    if not record:
        return []
    notes = []
    for note in record.get("notes", []):
        note = str(note)
        if note.startswith("will be held"):
            continue  # the Notice line says it
        if note.startswith("the reminder is decided"):  # the wording of older records
            note = "The reminder is decided when the post goes out."
        elif "decided when the post goes out;" in note:
            # Stored with the post, the "text if it went out now" half is no longer current.
            note = note.split(";")[0] + "."
        notes.append(note)
    return notes


def counter(decision: Decision) -> dict[str, Any]:
    """Return the live counter for a preview: the platform's numbers for the text that will be sent
    (with tag and inline reminder), and what ghostpost adds or skips."""
    measurement: Measurement | None = decision.measurement
    numbers = ""
    over = False
    if measurement is not None:
        numbers = " · ".join(
            f"{d.used} / {d.limit}" + ("" if d.unit == "characters" else f" {d.unit}")
            for d in measurement.dimensions
        )
        over = not measurement.fits
    record = decision.to_record()
    tag = record["tag"]
    parts: list[str] = []
    code = _refusal_code(record)
    if tag["outcome"] == "applied":
        parts.append(f"{tag['tag']} will be added")
    elif tag["outcome"] == "skipped" and code == "tag_does_not_fit":
        cut = tag["needs"] - tag["has"]
        parts.append(f"{tag['tag']} does not fit: cut {cut} {_unit(tag['unit'], cut)}")
        over = True
    elif tag["outcome"] == "skipped":
        parts.append(f"{tag['tag']} skipped: needs {tag['needs']}, has {tag['has']} {tag['unit']}")
    elif tag["outcome"] == "already_present":
        parts.append(f"{tag['tag']} already in the text")
    if code == "over_budget" and measurement is not None:
        dim = measurement.overflow()
        if dim is not None:
            cut = dim.used - dim.limit
            parts.append(f"cut {cut} {_unit(dim.unit, cut)}")
    if record["reminder"]["outcome"] == "inline":
        # Counted because it would be due now; the worker decides it when the post goes out.
        parts.append("reminder due now" if record["stage"] == "submission" else "reminder added")
    text = numbers + (" — " + ", ".join(parts) if parts else "")
    return {"text": text, "over": over}
