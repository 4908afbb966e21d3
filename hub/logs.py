"""The server's log: the hub's own lines (one per request, policy reloads, operator
conditions, defects with their references) as text or as JSON lines for a log collector.

Libraries' chatter is off: Casbin logs every decision (denials as warnings) and the model at
each load, which the access log records better; alembic logs its context at every /readyz.
The line per request carries its trace id, department, operation, outcome, status and
duration; what was read is the access log's to say, never the server log's.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "JsonLines", "configure_logging", "request_log"]

FORMATS = ("text", "json")
QUIET = ("casbin", "alembic.runtime.migration")
TEXT = "%(levelname)s:     [%(name)s] %(message)s"
request_log = logging.getLogger("hub.requests")
# The attributes every LogRecord has: what is not among them was passed as ``extra``.
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
STANDARD.add("color_message")  # uvicorn's message again, with terminal colours


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in STANDARD)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: str = "text") -> None:
    """The hub's records go where uvicorn's do: as text, or all of them (uvicorn's too,
    which it then does not configure itself: see `hub serve`) as JSON lines."""
    root = logging.getLogger()
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLines())
        root.handlers = [handler]
        root.setLevel(logging.INFO)
    else:
        logging.basicConfig(level=logging.INFO, format=TEXT)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)
