"""The hub's log lines: ``text`` for people, ``json`` (one object per line) for collectors.

A JSON line holds ``ts`` (UTC, RFC 3339 with milliseconds), ``level``, ``logger``,
``event`` (the call's stable event name, or its message template, so lines of one kind
group together whatever their values), ``message`` (the rendered text), every structured
field the call passed in ``extra``, and ``exc`` (a traceback, as one string) when there is
one. Newlines inside values are escaped, so an event is always exactly one line.

What the hub logs is metadata: node ids, message ids, kinds, rule ids, routes, statuses.
Payloads are ciphertext and are never logged; nor are keys, passwords or query strings.
The SQL layers that would log statement parameters (ciphertext, envelopes) are held at
WARNING whatever the level, and the engine hides parameters from its exception messages.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from hub.config import LogConfig

__all__ = ["JsonFormatter", "configure_logging", "text_formatter"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "event",
}
# At DEBUG these log SQL statements with their parameters (envelopes, ciphertext).
_QUIET_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg")
_OURS = "_seh_hub_handler"
# ensure_ascii: no raw U+2028 or other separators a line reader might split on. One encoder
# for every line (json.dumps with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=True, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None) or str(record.msg),
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for key in fields.keys() - _STANDARD:
            if not key.startswith("_"):
                line[key] = fields[key]
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(line)


def text_formatter() -> logging.Formatter:
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = time.gmtime
    return formatter


def configure_logging(config: LogConfig, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in the configured format and level.

    Replaces a handler installed by an earlier call (not others'), so it may be called
    again, and returns the handler so that a test can remove it.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if config.format == "json" else text_formatter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(config.level)
    for noisy in _QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Python warnings would otherwise go to stderr as multi-line text.
    logging.captureWarnings(True)
    return handler
