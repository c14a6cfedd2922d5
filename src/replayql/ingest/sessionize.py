"""One validated batch plus its session's carried state → the records a store writes.

The state that spans batches (current page, activity clock, recent clicks still waiting for evidence of a rage,
dead or error click) travels as a small JSON "tail" on the session row, so a restarted server picks up where it
left off.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import cast

import msgspec
import orjson

from replayql.config import FrustrationThresholds
from replayql.ingest.enrich import Enricher, UrlParts, country_for_ip
from replayql.ingest.fingerprint import fingerprint_error
from replayql.ingest.wire import (
    Batch,
    ClickEvent,
    ConsoleEvent,
    CustomEvent,
    ErrorEvent,
    Event,
    IdentifyEvent,
    InputEvent,
    NetworkEvent,
    PageEvent,
    RecordingEvent,
    VitalEvent,
)
from replayql.store.issue_titles import issue_title
from replayql.store.records import BatchWrite, EventRecord, IssueDelta, RecordingChunk, SessionDelta, UserDelta


class _RRWebData(msgspec.Struct):
    source: int | None = None


class _RRWebHead(msgspec.Struct):
    """Just enough of an rrweb event to tell a DOM mutation (incremental snapshot, source 0) or user input."""

    type: int | None = None
    data: _RRWebData | None = None


_rrweb_head = msgspec.json.Decoder(_RRWebHead)
_rrweb_heads = msgspec.json.Decoder(list[_RRWebHead])
_OTHER_TYPE = re.compile(rb'\{\s*"type"\s*:\s*(?:[0-24-9]|\d\d)\s*,')  # leads with a type other than 3
_INCREMENTAL_SOURCE = re.compile(rb'\{\s*"type"\s*:\s*3\s*,\s*"data"\s*:\s*\{\s*"source"\s*:\s*(\d{1,3})\s*[,}]')
_RRWEB_INCREMENTAL = 3
_RRWEB_MUTATION = 0
_RRWEB_USER_SOURCES = frozenset({1, 2, 3, 5})  # mouse move, mouse interaction, scroll, input


class PendingClick(msgspec.Struct, array_like=True):
    ts: int
    selector: str
    text: str | None
    url: str | None
    dead: bool = True  # no page change, network request or DOM mutation seen yet
    errored: bool = False


class SessionTail(msgspec.Struct, omit_defaults=True):
    page_url: str | None = None
    last_activity: int | None = None  # written by earlier versions; read once into `active`
    # User activity so far as runs [first, last] whose inner gaps are within the idle threshold (ascending, the
    # gaps between runs longer): a batch that arrives late adds its activity where it belongs in time.
    active: list[list[int]] = []
    has_recording: bool = False
    user_id: str | None = None
    user_seq: int = -1  # the seq of the batch that identified `user_id`: a late, earlier batch does not replace it
    identified: list[str] = []  # every user this session was identified as (recent ones), each counted once
    pending: list[PendingClick] = []
    recent_clicks: dict[str, list[int]] = {}  # selector -> click times inside the rage window
    rage_until: dict[str, int] = {}  # selector -> last click of a burst already counted as one rage click
    span: list[int] = []  # [first, last] event time so far: a user identified late was still seen from the start
    # The idempotency ledger: every seq below `stored_below` is stored, and so are those in `stored_above`. It
    # travels in the session row, so it commits with the batch it records (exactly once across crashes).
    stored_below: int = 0
    stored_above: list[int] = []

    def has_stored(self, seq: int) -> bool:
        return seq < self.stored_below or seq in self.stored_above

    def mark_stored(self, seq: int) -> None:
        if self.has_stored(seq):
            return
        if seq != self.stored_below:
            self.stored_above = sorted({*self.stored_above, seq})
            return
        above = set(self.stored_above)
        below = seq + 1
        while below in above:
            above.discard(below)
            below += 1
        self.stored_below, self.stored_above = below, sorted(above)


_tail_decoder = msgspec.json.Decoder(SessionTail)


def load_tail(raw: str | None) -> SessionTail:
    tail = _tail_decoder.decode(raw) if raw else SessionTail()
    if tail.user_id is not None and not tail.identified:  # a tail from before `identified`: its user counted
        tail.identified = [tail.user_id]
    if tail.stored_above and tail.stored_above[0] == tail.stored_below:  # a ledger written whole (a migration)
        above = tail.stored_above
        tail.stored_above = []
        for seq in above:
            tail.mark_stored(seq)
    return tail


@dataclass(frozen=True, slots=True)
class SessionizeOptions:
    frustration: FrustrationThresholds = field(default_factory=FrustrationThresholds)
    idle_threshold_ms: int = 10_000
    geoip: bool = True
    store_client_ip: bool = False
    enrich: Enricher = field(default_factory=Enricher)  # its caches sized by Settings.caches


@dataclass
class _Derived:
    """Frustration signals found while walking the batch."""

    events: list[tuple[str, PendingClick]] = field(default_factory=list)

    def add(self, kind: str, click: PendingClick) -> None:
        self.events.append((kind, click))

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.events if k == kind)


def _event_ts(event: Event) -> int:
    return event.ts


def sessionize(batch: Batch, tail: SessionTail, options: SessionizeOptions, clock_offset_ms: int = 0
               ) -> tuple[BatchWrite, SessionTail]:
    """Turn a batch into store records; `clock_offset_ms` is added to every client timestamp (skew correction)."""
    events = sorted(batch.events, key=_event_ts)  # stable: same-ms events keep their order
    rrweb_roles = iter(_rrweb_roles([e for e in events if isinstance(e, RecordingEvent)]))
    app, sid = batch.app_id, batch.session_id
    delta = _context_delta(batch, events, clock_offset_ms, options)
    derived = _Derived()
    records: list[EventRecord] = []
    issues: dict[str, IssueDelta] = {}
    recording: list[tuple[int, msgspec.Raw]] = []
    user = _UserCollector()
    thresholds = options.frustration
    url_parts = options.enrich.url_parts
    expires_at, last_dead = _pending_marks(tail, thresholds)
    for idx, event in enumerate(events):
        ts = event.ts + clock_offset_ms
        if isinstance(event, RecordingEvent):  # most events: only their role in frustration and activity counts
            role = next(rrweb_roles)
            # settle pending clicks only when this event can change one: a window closed, or a DOM mutation
            # within the window of a click still thought dead
            if tail.pending and (ts > expires_at or (role is _Role.RESPONSE
                                                     and ts - last_dead <= thresholds.dead_click_window_ms)):
                _resolve_pending(tail, ts, role is _Role.RESPONSE, False, derived, thresholds)
                expires_at, last_dead = _pending_marks(tail, thresholds)
            if role is _Role.ACTIVITY:
                _track_activity(tail, ts, delta, options.idle_threshold_ms)
            recording.append((ts, event.data))
            tail.has_recording = True
            continue
        _resolve_pending(tail, ts, isinstance(event, PageEvent | NetworkEvent), isinstance(event, ErrorEvent),
                         derived, options.frustration)
        if isinstance(event, PageEvent | ClickEvent | InputEvent | CustomEvent):
            _track_activity(tail, ts, delta, options.idle_threshold_ms)
        record = _record(app, sid, batch.seq, idx, ts, event, tail, url_parts)
        records.append(record)
        _count(event, record, delta, issues, user, tail, options, derived)
        expires_at, last_dead = _pending_marks(tail, thresholds)
    _expire_pending(tail, batch.sent_at + clock_offset_ms, derived, options.frustration)
    records.extend(_derived_records(app, sid, batch.seq, len(events), derived, url_parts))
    delta.rage_click_count = derived.count("rage_click")
    delta.dead_click_count = derived.count("dead_click")
    delta.error_click_count = derived.count("error_click")
    delta.has_recording = bool(recording)
    new_user = user.delta(app, tail, delta, batch.seq)
    delta.user_id = tail.user_id
    tail.mark_stored(batch.seq)
    delta.tail = msgspec.json.encode(tail).decode()
    write = BatchWrite(app, sid, batch.seq, delta, records, new_user, list(issues.values()),
                       _recording_chunk(app, sid, batch.seq, recording))
    return write, tail


def _context_delta(batch: Batch, events: list[Event], offset: int, options: SessionizeOptions) -> SessionDelta:
    delta = SessionDelta(batch.app_id, batch.session_id, events[0].ts + offset, events[-1].ts + offset)
    ctx = batch.context
    if ctx is not None:
        delta.context_seq = batch.seq
        device = options.enrich.parse_user_agent(ctx.user_agent)
        delta.user_agent, delta.browser, delta.browser_version = ctx.user_agent, device.browser, device.browser_version
        delta.os, delta.os_version, delta.device_type = device.os, device.os_version, device.device_type
        delta.language, delta.timezone, delta.release = ctx.language, ctx.timezone, ctx.release
        if ctx.viewport is not None:
            delta.viewport_width, delta.viewport_height = ctx.viewport.width, ctx.viewport.height
        if ctx.sdk is not None:
            delta.sdk_name, delta.sdk_version = ctx.sdk.name, ctx.sdk.version
        if options.geoip:
            delta.country = country_for_ip(batch.client_ip)
        if options.store_client_ip:
            delta.client_ip = batch.client_ip
    return delta


_MAX_ACTIVE_RUNS = 64  # older runs are let go: a batch arriving that late is rare, and its time counts as its own


def _track_activity(tail: SessionTail, ts: int, delta: SessionDelta, idle_ms: int) -> None:
    """Active time: the gaps between consecutive moments of user activity, each counted up to the idle
    threshold, whatever order the batches arrive in. Over runs that is the runs' lengths plus one threshold
    per gap between runs; `delta` gets what `ts` adds to that (never less than nothing)."""
    runs = tail.active
    if not runs and tail.last_activity is not None:
        runs.append([tail.last_activity, tail.last_activity])
        tail.last_activity = None
    if runs and ts >= runs[-1][0]:  # in order: the usual case
        last = runs[-1]
        if ts <= last[1]:
            return
        if ts - last[1] <= idle_ms:
            delta.active_ms += ts - last[1]
            last[1] = ts
            return
    _add_activity(runs, ts, delta, idle_ms)


def _add_activity(runs: list[list[int]], ts: int, delta: SessionDelta, idle_ms: int) -> None:
    """`ts` into the runs: joining the runs within the threshold of it, or a run of its own."""
    def total(part: list[list[int]]) -> int:
        return sum(b - a for a, b in part) + idle_ms * (len(part) - 1) if part else 0

    at = bisect.bisect_left(runs, ts, key=lambda run: run[1] + idle_ms)  # the first run that ts can reach
    end = at
    while end < len(runs) and runs[end][0] - idle_ms <= ts:
        end += 1
    joined = runs[at:end]
    merged = [min([ts, *(run[0] for run in joined)]), max([ts, *(run[1] for run in joined)])]
    runs[at:end] = [merged]
    # gaps to the neighbours stay longer than the threshold: each still counts one threshold, plus the new run's
    delta.active_ms += (merged[1] - merged[0]) - total(joined) + (idle_ms if not joined and len(runs) > 1 else 0)
    del runs[:-_MAX_ACTIVE_RUNS]


class _Role(Enum):
    """What an rrweb event means for the session summary."""

    NONE = 0
    ACTIVITY = 1  # user input: mouse, scroll, typing
    RESPONSE = 2  # a DOM mutation: the page reacted (a click before it was not dead)


def _rrweb_roles(events: list[RecordingEvent]) -> list[_Role]:
    """The role of each rrweb event. Only incremental events (type 3) have one, told by their `data.source`.
    rrweb writes `{"type":3,"data":{"source":N,...` first, so that is read from the leading bytes; an event
    that plainly starts with another type (a full snapshot: most of the bytes) has none; the heads of the rest
    (other key orders) are decoded together in one pass."""
    roles: list[_Role | None] = []
    undecided = []
    for event in events:
        incremental = _INCREMENTAL_SOURCE.match(event.data)
        if incremental is not None:
            roles.append(_source_role(int(incremental[1])))
        elif _OTHER_TYPE.match(event.data):
            roles.append(_Role.NONE)
        else:
            roles.append(None)
            undecided.append(event)
    if not undecided:
        return cast(list[_Role], roles)  # every role decided
    decoded = iter(_decoded_roles(undecided))
    return [next(decoded) if role is None else role for role in roles]


def _decoded_roles(events: list[RecordingEvent]) -> list[_Role]:
    try:
        heads = _rrweb_heads.decode(b"[" + b",".join(e.data for e in events) + b"]")
    except msgspec.MsgspecError:  # one odd event: read them one by one, an unreadable head has no role
        heads = [_rrweb_head_of(e) for e in events]
    return [_role(head) for head in heads]


def _role(head: _RRWebHead) -> _Role:
    if head.type != _RRWEB_INCREMENTAL or head.data is None:
        return _Role.NONE
    return _source_role(head.data.source)


def _source_role(source: int | None) -> _Role:
    if source == _RRWEB_MUTATION:
        return _Role.RESPONSE
    return _Role.ACTIVITY if source in _RRWEB_USER_SOURCES else _Role.NONE


def _rrweb_head_of(event: RecordingEvent) -> _RRWebHead:
    try:
        return _rrweb_head.decode(event.data)
    except msgspec.MsgspecError:
        return _RRWebHead()


def _resolve_pending(tail: SessionTail, ts: int, response: bool, error: bool, derived: _Derived,
                     thresholds: FrustrationThresholds) -> None:
    """Let this event count as evidence for the clicks before it, and settle those whose windows closed."""
    _expire_pending(tail, ts, derived, thresholds)
    for click in tail.pending:
        if error and ts - click.ts <= thresholds.error_click_window_ms and not click.errored:
            click.errored = True
            derived.add("error_click", click)
        if response and ts - click.ts <= thresholds.dead_click_window_ms:
            click.dead = False


def _pending_marks(tail: SessionTail, thresholds: FrustrationThresholds) -> tuple[float, float]:
    """When the first pending click's window closes, and the time of the latest click still thought dead
    (no click pending: never, and long ago)."""
    if not tail.pending:
        return math.inf, -math.inf
    window = max(thresholds.dead_click_window_ms, thresholds.error_click_window_ms)
    return (min(click.ts for click in tail.pending) + window,
            max((click.ts for click in tail.pending if click.dead), default=-math.inf))


def _expire_pending(tail: SessionTail, now: int, derived: _Derived, thresholds: FrustrationThresholds) -> None:
    """Clicks whose windows have closed by `now` are judged: dead only in sessions that send recordings."""
    window = max(thresholds.dead_click_window_ms, thresholds.error_click_window_ms)
    keep: list[PendingClick] = []
    for click in tail.pending:
        if now - click.ts <= window:
            keep.append(click)
        elif click.dead and tail.has_recording:
            derived.add("dead_click", click)
    tail.pending = keep


def _track_click(tail: SessionTail, event: ClickEvent, ts: int, derived: _Derived,
                 thresholds: FrustrationThresholds) -> None:
    """Rage clicks: N clicks on one selector within the window make one rage click per burst."""
    click = PendingClick(ts, event.selector, event.text, tail.page_url)
    tail.pending.append(click)
    window = thresholds.rage_click_window_ms
    burst_end = tail.rage_until.get(event.selector)
    if burst_end is not None and ts - burst_end <= window:
        tail.rage_until[event.selector] = ts  # the same burst goes on
        return
    recent = [t for t in tail.recent_clicks.get(event.selector, []) if ts - t <= window] + [ts]
    if len(recent) >= thresholds.rage_click_count:
        derived.add("rage_click", click)
        tail.rage_until[event.selector] = ts
        tail.recent_clicks.pop(event.selector, None)
    else:
        tail.recent_clicks[event.selector] = recent
    _forget_old_clicks(tail, ts, window)


def _forget_old_clicks(tail: SessionTail, ts: int, window: int) -> None:
    tail.recent_clicks = {s: v for s, v in tail.recent_clicks.items() if v and ts - v[-1] <= window}
    tail.rage_until = {s: t for s, t in tail.rage_until.items() if ts - t <= window}


def _network_details(event: NetworkEvent) -> str | None:
    details = {name: value for name in _NETWORK_DETAILS if (value := getattr(event, name)) is not None}
    return orjson.dumps(details).decode() if details else None


_NETWORK_DETAILS = ("request_headers", "response_headers", "request_body", "response_body")


def _record(app: str, sid: str, seq: int, idx: int, ts: int, event: Event, tail: SessionTail,
            url_parts: Callable[[str | None], UrlParts]) -> EventRecord:
    # msgspec types a tag as str | int | None; every wire event is tagged with its kind, a str (ingest.wire)
    kind = type(event).__struct_config__.tag
    record = EventRecord(app, sid, seq, idx, ts, kind, url=tail.page_url)  # type: ignore[arg-type]
    match event:
        case PageEvent():
            tail.page_url = event.url
            record.url, record.title, record.referrer = event.url, event.title, event.referrer
        case ClickEvent():
            record.selector, record.text, record.x, record.y = event.selector, event.text, event.x, event.y
        case InputEvent():
            record.selector = event.selector
        case ConsoleEvent():
            record.level, record.message = event.level, event.message
        case NetworkEvent():
            record.url, record.method, record.status = event.url, event.method.upper(), event.status
            record.duration_ms, record.request_bytes = event.duration_ms, event.request_bytes
            record.response_bytes = event.response_bytes
            record.properties = _network_details(event)
        case ErrorEvent():
            fp = fingerprint_error(event.error_type, event.message, event.stack)
            record.error_type, record.message, record.stack = event.error_type or "Error", event.message, event.stack
            record.handled, record.issue_id = event.handled, fp.issue_id
            record.properties = orjson.dumps({"tags": event.tags or {}, "extra": event.extra or {}}).decode()
        case CustomEvent():
            record.name, record.properties = event.name, orjson.dumps(event.properties or {}).decode()
        case IdentifyEvent():
            record.user_id, record.properties = event.user_id, orjson.dumps(event.traits or {}).decode()
        case VitalEvent():
            record.name, record.value = event.name, event.value
    parts = url_parts(record.url)
    record.host, record.path = parts.host, parts.path
    return record


def _count(event: Event, record: EventRecord, delta: SessionDelta, issues: dict[str, IssueDelta],
           user: _UserCollector, tail: SessionTail, options: SessionizeOptions, derived: _Derived) -> None:
    delta.event_count += 1
    match event:
        case PageEvent():
            delta.page_count += 1
            if delta.first_page_at is None:
                _set_first_page(delta, event, record.ts, options.enrich.url_parts(event.url))
        case ClickEvent():
            delta.click_count += 1
            _track_click(tail, event, record.ts, derived, options.frustration)
        case ErrorEvent():
            delta.error_count += 1
            _add_issue(issues, record)
        case IdentifyEvent():
            user.identify(event, record.ts)
        case VitalEvent():
            column = event.name.lower()
            setattr(delta, column, max(getattr(delta, column) or 0.0, event.value))


def _set_first_page(delta: SessionDelta, event: PageEvent, ts: int, parts: UrlParts) -> None:
    delta.first_page_at, delta.initial_url, delta.referrer = ts, event.url, event.referrer
    delta.initial_host, delta.initial_path = parts.host, parts.path
    delta.utm_source, delta.utm_medium, delta.utm_campaign = parts.utm_source, parts.utm_medium, parts.utm_campaign


def _add_issue(issues: dict[str, IssueDelta], record: EventRecord) -> None:
    assert record.issue_id is not None
    issue = issues.get(record.issue_id)
    if issue is None:
        title = issue_title(record.error_type, record.message)
        issues[record.issue_id] = IssueDelta(record.app_id, record.issue_id, title, record.error_type or "Error",
                                             record.message or "", record.stack, record.ts, record.ts, 1)
    else:
        issue.count += 1
        issue.first_seen, issue.last_seen = min(issue.first_seen, record.ts), max(issue.last_seen, record.ts)


_MAX_IDENTIFIED = 16  # users one session switches between; beyond that the oldest may count again


class _UserCollector:
    """Identify events of one batch: the last user id wins, traits merge in order (later values win)."""

    def __init__(self) -> None:
        self.user_id: str | None = None
        self.traits: dict[str, object] = {}

    def identify(self, event: IdentifyEvent, ts: int) -> None:
        self.user_id = event.user_id
        self.traits.update(event.traits or {})

    def delta(self, app: str, tail: SessionTail, session: SessionDelta, seq: int) -> UserDelta | None:
        """The batch's word on its user: the user it identified (the session's user unless a later batch
        already identified another), or else the session's user, seen for longer."""
        if self.user_id is not None and seq >= tail.user_seq:
            tail.user_id, tail.user_seq = self.user_id, seq
        first, last = tail.span or (session.started_at, session.ended_at)
        tail.span = [min(first, session.started_at), max(last, session.ended_at)]
        user_id = self.user_id or tail.user_id
        if user_id is None:
            return None
        new_session = user_id not in tail.identified
        if new_session:
            tail.identified = [*tail.identified[-(_MAX_IDENTIFIED - 1):], user_id]
        traits = self.traits if self.user_id is not None else {}
        name, email = traits.get("name"), traits.get("email")
        return UserDelta(app, user_id, tail.span[0], tail.span[1], name=name if isinstance(name, str) else None,
                         email=email if isinstance(email, str) else None, traits=traits, new_session=new_session)


def _derived_records(app: str, sid: str, seq: int, first_idx: int, derived: _Derived,
                     url_parts: Callable[[str | None], UrlParts]) -> list[EventRecord]:
    """Frustration signals are rows of their own, numbered after the batch's events."""
    out = []
    for n, (kind, click) in enumerate(derived.events):
        parts = url_parts(click.url)
        out.append(EventRecord(app, sid, seq, first_idx + n, click.ts, kind, url=click.url,
                               host=parts.host, path=parts.path, selector=click.selector, text=click.text))
    return out


def _recording_chunk(app: str, sid: str, seq: int, events: list[tuple[int, msgspec.Raw]]) -> RecordingChunk | None:
    if not events:
        return None
    payload = b"[" + b",".join(raw for _, raw in events) + b"]"
    return RecordingChunk(app, sid, seq, events[0][0], events[-1][0], len(events), payload)
