"""The ingestion wire format: decoding and validating one batch.

The envelope is decoded first with events left raw, then every event is decoded on its own, so a bad batch is
answered with every bad event named by index and field rather than with the first failure only.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from replayql.config import IngestLimits

_MIN_EPOCH_MS = 946_684_800_000  # 2000-01-01: anything earlier is a broken clock, not data
_MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01
_FUTURE_TOLERANCE_MS = 60_000  # an event stamped after the batch was sent is only plausible within clock jitter
_MAX_HEADERS = 100
_MAX_INT32 = 2**31 - 1
_MAX_BYTES = 2**53  # sizes stay exact as JSON numbers everywhere they go
_MAX_JSON_INT = 2**63 - 1
_MAX_VIEWPORT = 1_000_000
_GZIP_MAGIC = b"\x1f\x8b"
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class Viewport(msgspec.Struct, forbid_unknown_fields=True):
    width: int
    height: int


class Sdk(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    version: str


class Context(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    user_agent: str | None = None
    viewport: Viewport | None = None
    language: str | None = None
    timezone: str | None = None
    release: str | None = None
    sdk: Sdk | None = None
    tab_id: str | None = None  # the browser tab, from the SDK; several tabs may share a user, never a session


class Envelope(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    app_id: str
    session_id: str
    seq: int
    sent_at: int
    events: list[msgspec.Raw]
    context: Context | None = None
    client_ip: str | None = None


class _Event(msgspec.Struct, forbid_unknown_fields=True, rename="camel", tag_field="type", kw_only=True):
    ts: int


class PageEvent(_Event, tag="page"):
    url: str
    title: str | None = None
    referrer: str | None = None


class ClickEvent(_Event, tag="click"):
    selector: str
    text: str | None = None
    x: int | None = None
    y: int | None = None


class InputEvent(_Event, tag="input"):
    selector: str


class ConsoleEvent(_Event, tag="console"):
    level: Literal["debug", "info", "log", "warn", "error"]
    message: str


class NetworkEvent(_Event, tag="network"):
    method: str
    url: str
    status: int | None = None  # None: the request failed without a response (CORS, offline, aborted)
    duration_ms: float | None = None
    request_bytes: int | None = None
    response_bytes: int | None = None
    # Sent only when the SDK is told to capture them (after its sanitiser); stored with the event.
    request_headers: dict[str, str] | None = None
    response_headers: dict[str, str] | None = None
    request_body: str | None = None
    response_body: str | None = None


class ErrorEvent(_Event, tag="error"):
    message: str
    error_type: str | None = None
    stack: str | None = None
    handled: bool = False
    tags: dict[str, str] | None = None
    extra: dict[str, Any] | None = None


class CustomEvent(_Event, tag="custom"):
    name: str
    properties: dict[str, Any] | None = None


class IdentifyEvent(_Event, tag="identify"):
    user_id: str
    traits: dict[str, Any] | None = None


class VitalEvent(_Event, tag="vital"):
    name: Literal["LCP", "FCP", "CLS", "INP", "TTFB", "FID"]
    value: float


class RecordingEvent(_Event, tag="recording"):
    data: msgspec.Raw  # an rrweb event, kept byte for byte for replay


Event = (
    PageEvent | ClickEvent | InputEvent | ConsoleEvent | NetworkEvent | ErrorEvent | CustomEvent
    | IdentifyEvent | VitalEvent | RecordingEvent
)
EVENT_TYPES = ("page", "click", "input", "console", "network", "error", "custom", "identify", "vital", "recording")

_envelope_decoder = msgspec.json.Decoder(Envelope)
_event_decoder = msgspec.json.Decoder(Event)
_PATH_SUFFIX = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    index: int | None = None  # the event's position in `events`; None for the envelope

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        return out


@dataclass
class IngestRejected(Exception):
    """A batch refused as a whole; nothing of it is stored. `status` is the HTTP status to answer with."""

    status: int
    message: str
    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.errors:
            body["errors"] = [e.as_json() for e in self.errors]
        return body


@dataclass(slots=True)
class Batch:
    app_id: str
    session_id: str
    seq: int
    sent_at: int
    context: Context | None
    client_ip: str | None
    events: list[Event]


def decompress_body(body: bytes, content_encoding: str | None, limits: IngestLimits) -> bytes:
    """Undo Content-Encoding with a hard cap on the output, so a gzip bomb costs at most the cap."""
    if len(body) > limits.max_body_bytes:
        raise IngestRejected(413, f"request body is {len(body)} bytes; the limit is {limits.max_body_bytes}")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity" and body.startswith(_GZIP_MAGIC):
        encoding = "gzip"  # a beacon cannot set Content-Encoding; JSON never starts with these bytes
    if encoding == "identity":
        if len(body) > limits.max_decompressed_bytes:
            raise IngestRejected(413, f"request body exceeds {limits.max_decompressed_bytes} bytes")
        return body
    if encoding not in ("gzip", "deflate"):
        raise IngestRejected(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limits.max_decompressed_bytes + 1)
    except zlib.error as exc:
        raise IngestRejected(400, f"request body is not valid {encoding} data: {exc}") from None
    if len(out) > limits.max_decompressed_bytes or inflater.unconsumed_tail:
        raise IngestRejected(413, f"decompressed body exceeds {limits.max_decompressed_bytes} bytes")
    if not inflater.eof:
        raise IngestRejected(400, f"request body is truncated {encoding} data")
    return out


class _TypedEnvelope(Envelope, forbid_unknown_fields=True, rename="camel"):
    # the events decoded by their kind, where Envelope keeps them raw (a subclass field narrowing its base's type)
    events: list[Event]  # type: ignore[assignment]


_typed_decoder = msgspec.json.Decoder(_TypedEnvelope)


def decode_batch(payload: bytes, limits: IngestLimits) -> Batch:
    """Decode and validate one batch, or raise IngestRejected naming every problem found.

    A good batch is decoded in one pass (msgspec, in C) and checked with the few rules its types cannot
    express; only a batch with a problem takes the slower path that decodes event by event, so that the answer
    names every bad event rather than the first."""
    try:
        envelope = _typed_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _decode_each(payload, limits)
    if _check_envelope(envelope, limits) or not _events_pass(envelope.events, envelope.sent_at, len(payload), limits):
        return _decode_each(payload, limits)
    return Batch(envelope.app_id, envelope.session_id, envelope.seq, envelope.sent_at, envelope.context,
                 envelope.client_ip, envelope.events)


def _events_pass(events: list[Event], sent_at: int, payload_bytes: int, limits: IngestLimits) -> bool:
    """The per-event rules, checked cheaply: time range over all events at once, and string lengths only when
    the body is long enough to hold an over-long string at all."""
    times = [e.ts for e in events]
    if times and not (sent_at - limits.max_event_skew_ms <= min(times)
                      and max(times) <= sent_at + _FUTURE_TOLERANCE_MS):
        return False
    long_strings = payload_bytes > min(limits.max_string_chars, limits.max_stack_chars)
    for event in events:
        if isinstance(event, RecordingEvent):
            if len(event.data) > limits.max_recording_event_bytes:
                return False
        elif _check_kind(event, limits) or (long_strings and _long_strings(event, limits)):
            return False
    return True


def _decode_each(payload: bytes, limits: IngestLimits) -> Batch:
    envelope = _decode_envelope(payload)
    errors = _check_envelope(envelope, limits)
    events: list[Event] = []
    for index, raw in enumerate(envelope.events):
        event, event_errors = _decode_event(index, raw, envelope.sent_at, limits)
        errors.extend(event_errors)
        if event is not None:
            events.append(event)
    if errors:
        raise IngestRejected(400, f"batch rejected: {len(errors)} invalid field(s)", errors)
    return Batch(envelope.app_id, envelope.session_id, envelope.seq, envelope.sent_at, envelope.context,
                 envelope.client_ip, events)


def _decode_envelope(payload: bytes) -> Envelope:
    try:
        return _envelope_decoder.decode(payload)
    except RecursionError:
        raise IngestRejected(400, "batch rejected: JSON nested too deeply to decode") from None
    except msgspec.ValidationError as exc:
        raise IngestRejected(400, "batch rejected: invalid envelope", [_field_error(str(exc), None)]) from None
    except msgspec.DecodeError as exc:
        raise IngestRejected(415, f"request body is not JSON: {exc}") from None


def _check_envelope(envelope: Envelope, limits: IngestLimits) -> list[FieldError]:
    errors: list[FieldError] = []
    if not _SESSION_ID.match(envelope.session_id):
        errors.append(FieldError("sessionId", "must be 1-128 characters of A-Z a-z 0-9 . _ : -"))
    if not 0 <= envelope.seq < 2**31:
        errors.append(FieldError("seq", "must be an integer from 0 to 2147483647"))
    if not _MIN_EPOCH_MS <= envelope.sent_at <= _MAX_EPOCH_MS:
        errors.append(FieldError("sentAt", "must be epoch milliseconds between 2000 and 2100"))
    viewport = envelope.context.viewport if envelope.context else None
    if viewport is not None and not (0 <= viewport.width <= _MAX_VIEWPORT and 0 <= viewport.height <= _MAX_VIEWPORT):
        errors.append(FieldError("context.viewport", f"width and height must be from 0 to {_MAX_VIEWPORT}"))
    if envelope.seq == 0 and envelope.context is None:
        errors.append(FieldError("context", "is required on a session's first batch (seq 0)"))
    if not envelope.events:
        errors.append(FieldError("events", "must contain at least one event"))
    if len(envelope.events) > limits.max_events_per_batch:
        errors.append(FieldError("events", f"has {len(envelope.events)} events; the limit is "
                                           f"{limits.max_events_per_batch} per batch"))
    return errors


def _decode_event(index: int, raw: msgspec.Raw, sent_at: int, limits: IngestLimits
                  ) -> tuple[Event | None, list[FieldError]]:
    try:
        event = _event_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return None, [_field_error(str(exc), index)]
    except RecursionError:
        return None, [FieldError("$", "is JSON nested too deeply to decode", index)]
    return event, [FieldError(name, message, index) for name, message in _check_event(event, sent_at, limits)]


def _field_error(message: str, index: int | None) -> FieldError:
    """Turn msgspec's message into (field, message) with the JSON path as the field name."""
    match = _PATH_SUFFIX.search(message)
    path = match.group("path").lstrip(".") if match else ""
    text = message[: match.start()] if match else message
    named = _MISSING_FIELD.match(text) or _UNKNOWN_FIELD.match(text)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    if text.startswith("Invalid value") and path == "type":
        text = f"{text}; expected one of: {', '.join(EVENT_TYPES)}"
    return FieldError(path or "$", text, index)


def _check_event(event: Event, sent_at: int, limits: IngestLimits) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not sent_at - limits.max_event_skew_ms <= event.ts <= sent_at + _FUTURE_TOLERANCE_MS:
        problems.append(("ts", f"is {event.ts - sent_at:+d} ms from sentAt; allowed range is "
                               f"-{limits.max_event_skew_ms} to +{_FUTURE_TOLERANCE_MS} ms"))
    problems.extend(_long_strings(event, limits))
    problems.extend(_check_kind(event, limits))
    return problems


def _long_strings(event: Event, limits: IngestLimits) -> list[tuple[str, str]]:
    problems = []
    for name, value in _strings(event):
        cap = limits.max_stack_chars if name == "stack" else limits.max_string_chars
        if value is not None and len(value) > cap:
            problems.append((name, f"is {len(value)} characters; the limit is {cap}"))
    return problems


def _strings(event: Event) -> list[tuple[str, str | None]]:
    fields = msgspec.structs.asdict(event)
    return [(_camel(k), v) for k, v in fields.items() if isinstance(v, str)]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _oversize_headers(headers: dict[str, str] | None, limits: IngestLimits) -> bool:
    return headers is not None and (len(headers) > _MAX_HEADERS or
                                     sum(len(k) + len(v) for k, v in headers.items()) > limits.max_string_chars)


def _check_kind(event: Event, limits: IngestLimits) -> list[tuple[str, str]]:
    """Range checks msgspec's types cannot express; every failing field is reported."""
    checks: list[tuple[bool, str, str]] = []
    match event:
        case NetworkEvent():
            checks = [
                (event.url == "", "url", "must not be empty"),
                (event.status is not None and not 0 <= event.status <= 999, "status",
                 "must be an HTTP status code from 0 to 999"),
                (event.duration_ms is not None and not 0 <= event.duration_ms <= 86_400_000, "durationMs",
                 "must be between 0 and 86400000"),
                (event.request_bytes is not None and not 0 <= event.request_bytes <= _MAX_BYTES, "requestBytes",
                 f"must be from 0 to {_MAX_BYTES}"),
                (event.response_bytes is not None and not 0 <= event.response_bytes <= _MAX_BYTES, "responseBytes",
                 f"must be from 0 to {_MAX_BYTES}"),
                *((_oversize_headers(headers, limits), name, f"must have at most {_MAX_HEADERS} headers of at "
                                                              f"most {limits.max_string_chars} characters in all")
                  for name, headers in (("requestHeaders", event.request_headers),
                                        ("responseHeaders", event.response_headers))),
            ]
        case VitalEvent():
            checks = [(not (math.isfinite(event.value) and event.value >= 0), "value", "must be a finite number >= 0")]
        case RecordingEvent():
            checks = [(len(event.data) > limits.max_recording_event_bytes, "data",
                       f"is {len(event.data)} bytes; the limit is {limits.max_recording_event_bytes}")]
        case PageEvent():
            checks = [(event.url == "", "url", "must not be empty")]
        case ClickEvent():
            checks = [(event.selector == "", "selector", "must not be empty"),
                      *((value is not None and abs(value) > _MAX_INT32, name, f"must be within ±{_MAX_INT32}")
                        for name, value in (("x", event.x), ("y", event.y)))]
        case InputEvent():
            checks = [(event.selector == "", "selector", "must not be empty")]
        case CustomEvent():
            checks = [(event.name == "", "name", "must not be empty"),
                      *_json_checks("properties", event.properties, limits)]
        case IdentifyEvent():
            checks = [(event.user_id == "", "userId", "must not be empty"),
                      *_json_checks("traits", event.traits, limits)]
        case ErrorEvent():
            checks = [*_json_checks("tags", event.tags, limits), *_json_checks("extra", event.extra, limits)]
    return [(name, message) for failed, name, message in checks if failed]


def _json_checks(name: str, value: Any, limits: IngestLimits) -> list[tuple[bool, str, str]]:
    problem = json_problem(value, limits) if value else None
    return [(True, name, problem)] if problem else []


def json_problem(value: Any, limits: IngestLimits) -> str | None:
    """What makes free-form JSON (properties, traits, tags, extra) unfit to store and query, or None: every key
    becomes a filter key and every value must fit the store's types, so both are bounded. Iterative."""
    stack, keys = [(value, 1, "")], 0
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict):
            if depth > limits.max_json_depth:
                return f"is nested more than {limits.max_json_depth} levels deep (at `{path or '.'}`)"
            keys += len(item)
            if keys > limits.max_json_keys:
                return f"has more than {limits.max_json_keys} keys; the limit is {limits.max_json_keys}"
            for key, child in item.items():
                if not 0 < len(key) <= limits.max_key_chars:
                    return f"has a key of {len(key)} characters at `{path or '.'}`; keys are 1 to " \
                           f"{limits.max_key_chars} characters"
                stack.append((child, depth + 1, f"{path}.{key}"))
        elif isinstance(item, list):
            if depth > limits.max_json_depth:
                return f"is nested more than {limits.max_json_depth} levels deep (at `{path or '.'}`)"
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > _MAX_JSON_INT:
            return f"holds the number {item} at `{path or '.'}`, beyond ±2^63; send it as a string"
        elif isinstance(item, str) and len(item) > limits.max_string_chars:
            return f"holds a string of {len(item)} characters at `{path or '.'}`; the limit is " \
                   f"{limits.max_string_chars}"
    return None
