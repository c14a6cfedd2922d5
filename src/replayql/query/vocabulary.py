"""What the filter language can name: each entity's fields with their types, and the event conditions.

One table serves the query string, the typed GraphQL input (which is built from it), the compiler and the
discovery fields, so a field exists everywhere or nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT, NUMBER, TIME, FLAG = "text", "number", "time", "flag"


@dataclass(frozen=True)
class Field:
    """A filterable field: the column it reads and its type. A FLAG reads its column by `test`: the value
    itself (`bool`), whether it is set (`not_null`), or whether a counter is above zero (`positive`). A field
    with `via_sessions` is a session field asked of another entity: "occurred in a session where ..."."""

    column: str
    type: str
    description: str
    test: str = "bool"
    via_sessions: bool = False


@dataclass(frozen=True)
class Entity:
    """A filterable entity: its logical table, key column, fields, and the prefix of its JSON keys."""

    name: str
    table: str
    key: str
    fields: dict[str, Field]
    json_prefix: str | None = None
    json_column: str | None = None
    derived_counts: dict[str, str] = field(default_factory=dict)


def _text(column: str, description: str) -> Field:
    return Field(column, TEXT, description)


def _number(column: str, description: str) -> Field:
    return Field(column, NUMBER, description)


def _time(column: str, description: str) -> Field:
    return Field(column, TIME, description)


_COUNTS = {
    "pageCount": ("page_count", "Page views."), "clickCount": ("click_count", "Clicks."),
    "errorCount": ("error_count", "Errors."), "eventCount": ("event_count", "Events of every kind."),
    "rageClickCount": ("rage_click_count", "Rage clicks."), "deadClickCount": ("dead_click_count", "Dead clicks."),
    "errorClickCount": ("error_click_count", "Clicks followed by an error."),
}
_VITALS = {name.lower(): (name.lower(), f"The session's {name}.") for name in ("LCP", "FCP", "CLS", "INP", "TTFB")}

SESSION_FIELDS: dict[str, Field] = {
    "id": _text("session_id", "Session id."),
    "startedAt": _time("started_at", "When the session started."),
    "endedAt": _time("ended_at", "When the session's last event happened."),
    "durationMs": _number("duration_ms", "Wall-clock length, ms; accepts units (`2m`)."),
    "activeDurationMs": _number("active_ms", "Time with user activity, ms."),
    "browser": _text("browser", "Browser family (`Chrome`, `Safari`)."),
    "browserVersion": _text("browser_version", "Browser version."),
    "os": _text("os", "Operating system."),
    "osVersion": _text("os_version", "Operating system version."),
    "deviceType": _text("device_type", "desktop, mobile, tablet or bot."),
    "country": _text("country", "ISO country code from the client's address."),
    "language": _text("language", "Browser language."),
    "timezone": _text("timezone", "Browser time zone."),
    "release": _text("release", "The app release the SDK reported."),
    "referrer": _text("referrer", "Referrer of the landing page."),
    "initialUrl": _text("initial_url", "Landing page URL."),
    "initialHost": _text("initial_host", "Landing page host."),
    "initialPath": _text("initial_path", "Landing page path."),
    "utmSource": _text("utm_source", "utm_source of the landing page."),
    "utmMedium": _text("utm_medium", "utm_medium of the landing page."),
    "utmCampaign": _text("utm_campaign", "utm_campaign of the landing page."),
    "viewportWidth": _number("viewport_width", "Viewport width, px."),
    "viewportHeight": _number("viewport_height", "Viewport height, px."),
    "sdk": _text("sdk_name", "SDK name."),
    "sdkVersion": _text("sdk_version", "SDK version."),
    "userId": _text("user_id", "The identified user's id."),
    "identified": Field("user_id", FLAG, "The session has an identified user.", test="not_null"),
    "hasErrors": Field("error_count", FLAG, "The session had at least one error.", test="positive"),
    "hasRecording": Field("has_recording", FLAG, "The session has a replay recording."),
    **{name: _number(column, description) for name, (column, description) in _COUNTS.items()},
    **{name: _number(column, description) for name, (column, description) in _VITALS.items()},
}

USER_FIELDS: dict[str, Field] = {
    "id": _text("user_id", "User id."),
    "name": _text("name", "Name."),
    "email": _text("email", "Email."),
    "firstSeen": _time("first_seen", "Start of the user's first session."),
    "lastSeen": _time("last_seen", "End of the user's latest session."),
    "sessionCount": _number("session_count", "Sessions of the user."),
}

ISSUE_FIELDS: dict[str, Field] = {
    "id": _text("issue_id", "Issue id."),
    "status": _text("status", "OPEN, RESOLVED or IGNORED."),
    "errorType": _text("error_type", "Error class (`TypeError`)."),
    "message": _text("message", "Error message."),
    "title": _text("title", "Issue title."),
    "firstSeen": _time("first_seen", "First occurrence."),
    "lastSeen": _time("last_seen", "Latest occurrence."),
    "count": _number("count", "Occurrences."),
    "sessionCount": _number("session_count", "Sessions the issue occurred in."),
    "release": Field("release", TEXT, "A release the issue occurred in.", via_sessions=True),
}

EVENT_FIELDS: dict[str, Field] = {
    "kind": _text("kind", "page, click, input, console, network, error, custom, identify, vital, rage_click, "
                          "dead_click or error_click."),
    "timestamp": _time("ts", "When the event happened."),
    "sessionId": _text("session_id", "The event's session."),
    "name": _text("name", "Custom event or web vital name."),
    "url": _text("url", "Page or request URL."),
    "host": _text("host", "URL host."),
    "path": _text("path", "URL path."),
    "title": _text("title", "Page title."),
    "selector": _text("selector", "Clicked element's CSS selector."),
    "text": _text("text", "Clicked element's text."),
    "level": _text("level", "Console level."),
    "message": _text("message", "Console or error message."),
    "method": _text("method", "HTTP method."),
    "status": _number("status", "HTTP status."),
    "durationMs": _number("duration_ms", "Request duration, ms."),
    "errorType": _text("error_type", "Error class."),
    "issueId": _text("issue_id", "The error's issue."),
    "handled": Field("handled", FLAG, "The error was caught by the app."),
    "value": _number("value", "Web vital value."),
    "userId": _text("user_id", "User id of an identify event."),
}

SESSIONS = Entity("sessions", "sessions", "session_id", SESSION_FIELDS)
USERS = Entity("users", "users", "user_id", USER_FIELDS, json_prefix="trait.", json_column="traits")
ISSUES = Entity("issues", "issues", "issue_id", ISSUE_FIELDS, derived_counts={"sessionCount": "session_id"})
EVENTS = Entity("events", "events", "session_id", EVENT_FIELDS, json_prefix="properties.",
                json_column="properties")
ENTITIES = {e.name: e for e in (SESSIONS, USERS, ISSUES, EVENTS)}
USER_PREFIX = "user."  # on sessions, `user.<field>` asks the session's user


@dataclass(frozen=True)
class EventKind:
    """A "had" condition of the language: the event kind it reads and the fields its conditions may name."""

    kind: str
    fields: dict[str, Field]
    properties: bool = False  # `properties.<key>` conditions allowed


_URL = {name: EVENT_FIELDS[name] for name in ("url", "host", "path")}
_CLICK = {name: EVENT_FIELDS[name] for name in ("selector", "text")}
HAD_KINDS: dict[str, EventKind] = {
    "visited": EventKind("page", {**_URL, "title": EVENT_FIELDS["title"]}),
    "network": EventKind("network", {**_URL, **{n: EVENT_FIELDS[n] for n in ("method", "status", "durationMs")}}),
    "error": EventKind("error", {"message": EVENT_FIELDS["message"], "type": EVENT_FIELDS["errorType"],
                                 "issue": EVENT_FIELDS["issueId"], "handled": EVENT_FIELDS["handled"]}),
    "clicked": EventKind("click", _CLICK),
    "console": EventKind("console", {n: EVENT_FIELDS[n] for n in ("level", "message")}),
    "custom": EventKind("custom", {"name": EVENT_FIELDS["name"]}, properties=True),
    "vital": EventKind("vital", {n: EVENT_FIELDS[n] for n in ("name", "value")}),
    "rageClick": EventKind("rage_click", _CLICK),
    "deadClick": EventKind("dead_click", _CLICK),
    "errorClick": EventKind("error_click", _CLICK),
}
PROPERTIES_PREFIX = "properties."
