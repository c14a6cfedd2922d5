"""What an issue is called: its title from an error's type and message, made in this one place, at ingest
(ingest.fingerprint) and again when a deletion leaves an issue with another earliest occurrence (the stores)."""

from __future__ import annotations

import re

TITLE_MESSAGE_LEN = 200
DEFAULT_ERROR_TYPE = "Error"
_MAX_ERROR_TYPE_LEN = 100
WHITESPACE_RE = re.compile(r"\s+")
_UNCAUGHT_PREFIX_RE = re.compile(r"^\s*Uncaught(?:\s+\(in promise\))?\s+")


def error_type_of(error_type: str | None) -> str:
    """The type as issues group by it: one line, at most 100 characters, "Error" when there is none."""
    if not isinstance(error_type, str):
        return DEFAULT_ERROR_TYPE
    return WHITESPACE_RE.sub(" ", error_type[:_MAX_ERROR_TYPE_LEN]).strip() or DEFAULT_ERROR_TYPE


def message_of(message: str | None, error_type: str) -> str:
    """The message without the "Uncaught " / "Uncaught (in promise) " and "<ErrorType>: " prefixes that
    `window.onerror` adds, so both capture paths read the same."""
    message = _UNCAUGHT_PREFIX_RE.sub("", message if isinstance(message, str) else "", count=1).strip()
    prefix = f"{error_type}:"
    return message[len(prefix):].strip() if message.startswith(prefix) else message


def issue_title(error_type: str | None, message: str | None) -> str:
    """`<type>: <message>` on one line (newlines and tabs flattened), the message cut at 200 characters."""
    kind = error_type_of(error_type)
    text = WHITESPACE_RE.sub(" ", message_of(message, kind)[: TITLE_MESSAGE_LEN * 2]).strip()
    if len(text) > TITLE_MESSAGE_LEN:
        text = text[: TITLE_MESSAGE_LEN - 1].rstrip() + "…"
    return f"{kind}: {text}" if text else kind
