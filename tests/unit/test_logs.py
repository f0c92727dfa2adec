"""GHOSTPOST_LOG_FORMAT=json: one JSON object per log line, secrets still withheld."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghostpost.logs import JsonFormatter, configure_logging
from ghostpost.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("ghostpost.worker", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_record_becomes_one_json_object_with_its_extra_fields() -> None:
    line = JsonFormatter().format(_record("post %s failed", post="p-1", attempts=3))
    assert "\n" not in line
    body = json.loads(line)
    assert body["level"] == "WARNING"
    assert body["logger"] == "ghostpost.worker"
    assert body["message"] == "post %s failed"
    assert body["post"] == "p-1" and body["attempts"] == 3
    assert body["time"].endswith("+00:00")


def test_an_exception_is_kept_whole_on_one_line() -> None:
    try:
        raise RuntimeError("platform said no\nsecond line")
    except RuntimeError:
        record = _record("publish failed")
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "RuntimeError: platform said no\nsecond line" in json.loads(line)["exception"]


def test_text_leaves_the_handlers_alone_and_json_switches_them() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    plain = logging.Formatter("%(message)s")
    handler.setFormatter(plain)
    root.addHandler(handler)
    # pytest's own capture handlers sit on the root logger too: give them back their formats.
    before = [(h, h.formatter) for h in root.handlers]
    try:
        configure_logging("text")
        assert handler.formatter is plain
        configure_logging("json")
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        for each, formatter in before:
            each.setFormatter(formatter)
        root.removeHandler(handler)


def test_a_json_formatted_record_keeps_its_message_for_other_readers() -> None:
    record = logging.LogRecord(
        "ghostpost.notary", logging.ERROR, __file__, 1, "stopped signing: %s", ("entry 21",), None
    )
    JsonFormatter().format(record)
    assert record.message == "stopped signing: entry 21"


def test_an_unknown_log_format_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="log_format must be one of text, json"):
        Settings.load(environ={"GHOSTPOST_LOG_FORMAT": "xml"})


def test_the_cli_logs_json_lines_when_asked(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GHOSTPOST_LOG_FORMAT": "json",
        "GHOSTPOST_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
    }
    env.pop("GHOSTPOST_CONFIG_FILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "ghostpost", "-v", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines, done.stderr
    assert all(json.loads(line)["level"] for line in lines)
