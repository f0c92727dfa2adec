"""Log output: the default human-readable lines, or one JSON object per line for collectors.

`GHOSTPOST_LOG_FORMAT=json` switches every handler of the root logger (gunicorn's, `ghostpost
serve`'s, the CLI's) to `JsonFormatter`, so a log pipeline (Loki, Elasticsearch, CloudWatch)
gets fields rather than text to parse. The filters that withhold secrets (e.g. issued tokens)
sit on the loggers, not the handlers, so they apply in both formats.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")

#: What every LogRecord carries; anything else on a record came from `extra=` and is logged.
_STANDARD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    exception's traceback when there is one, and the record's `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        # As logging.Formatter does: handlers and log capture read `record.message` afterwards.
        record.message = record.getMessage()
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.message,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in body:
                body[key] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False, default=str)


#: Loggers with handlers of their own (gunicorn's error and access logs, set up before the app).
_OWN_HANDLER_LOGGERS = ("gunicorn.error", "gunicorn.access")


def configure_logging(log_format: str) -> None:
    """Apply the log format to the handlers of the root logger (adding one on stderr if it has
    none) and of gunicorn's loggers. "text" leaves the process's logging as it is."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    formatter = JsonFormatter()
    for logger in (root, *map(logging.getLogger, _OWN_HANDLER_LOGGERS)):
        for handler in logger.handlers:
            handler.setFormatter(formatter)
