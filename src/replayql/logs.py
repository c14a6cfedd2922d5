"""Log lines: one JSON object per line, or text for a terminal; both carry the id of the HTTP request they were
logged in. The server's own loggers and uvicorn's (errors and access) write through the same handler."""

from __future__ import annotations

import enum
import logging
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

# Set for every HTTP request by the request-id middleware (api.app.RequestIds); None outside requests.
REQUEST_ID: ContextVar[str | None] = ContextVar("replayql_request_id", default=None)

# What a LogRecord holds by itself; anything else on a record came from `extra=` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}  # uvicorn adds color_message: the message with ANSI colours
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")  # uvicorn.access's arguments, in order


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


def new_request_id() -> str:
    return secrets.token_hex(8)  # 16 hex digits; a quarter of uuid4's cost, and ingestion makes one per batch


def current_request_id() -> str:
    """The id of the request being served (a new one, kept for the rest of this context, outside a request)."""
    request_id = REQUEST_ID.get()
    if request_id is None:
        request_id = new_request_id()
        REQUEST_ID.set(request_id)
    return request_id


class JsonFormatter(logging.Formatter):
    """ts, level, logger, message, request_id, the record's extra fields, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": REQUEST_ID.get()}
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            line.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        line.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and k not in line)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message (request id)`, then the traceback if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        request_id = REQUEST_ID.get()
        line = super().formatMessage(record)
        return f"{line} (request {request_id})" if request_id else line


def log_config(log_format: LogFormat, level: str) -> dict[str, Any]:
    """A logging.config.dictConfig for the server process, also handed to uvicorn: every logger (the server's,
    uvicorn's errors and access lines, warnings) writes to stderr through the one formatter."""
    formatter = JsonFormatter if log_format is LogFormat.JSON else TextFormatter
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"replayql": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "replayql",
                                "stream": "ext://sys.stderr"}},
        # uvicorn's loggers have no handlers of their own here: they propagate to the root's
        "loggers": {name: {"level": level.upper(), "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "py.warnings")},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
