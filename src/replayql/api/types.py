"""GraphQL object types. Each wraps a plain row from the query layer; nested lists resolve through DataLoaders."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeAlias, TypeVar, overload

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField, Selection

if TYPE_CHECKING:
    from replayql.api.context import Context

    # Resolvers reach the per-request Context (api.context) through info.context; the checker knows its type.
    Info: TypeAlias = strawberry.Info[Context, None]
else:
    # strawberry reads resolver annotations when it builds the schema: the bare class, since api.context imports
    # this module and so cannot be imported here.
    Info = strawberry.Info
T = TypeVar("T")


@overload
def utc(value: datetime) -> datetime: ...


@overload
def utc(value: None) -> None: ...


def utc(value: datetime | None) -> datetime | None:
    """Stores return naive UTC timestamps; the API speaks ISO-8601 with an explicit UTC offset."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The GraphQL face of store.registry.KeyScope; the schema calls it `Scope`.
@strawberry.enum(name="Scope", description="What a key may do: read queries, also write mutations, also manage keys.")
class KeyScopeEnum(enum.Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@strawberry.enum
class IssueStatus(enum.Enum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    IGNORED = "IGNORED"


@strawberry.enum
class DeviceType(enum.Enum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    BOT = "bot"
    OTHER = "other"


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
    has_previous_page: bool = False
    start_cursor: str | None = None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A Relay-style page of results. `totalCount` is computed only when asked for.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    _count: strawberry.Private[Any]
    applied_query: str | None = strawberry.field(
        default=None, description="The query string this list ran, normalised (for lists that take `query`).")

    @strawberry.field(description="How many items match, across all pages.")
    async def total_count(self) -> int:
        return int(await self._count())


def connection(nodes: list[Any], cursors: list[str], has_next: bool, count: Any) -> Connection[Any]:
    edges = [Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)]
    info = PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None,
                    start_cursor=cursors[0] if cursors else None)
    return Connection(edges=edges, nodes=nodes, page_info=info, _count=count)


@strawberry.type
class Viewport:
    width: int
    height: int


@strawberry.type(description="The worst (largest) value of each Core Web Vital seen in the session.")
class WebVitals:
    lcp: float | None
    fcp: float | None
    cls: float | None
    inp: float | None
    ttfb: float | None
    fid: float | None


def _json(value: Any) -> Any:
    if value is None:
        return None
    return orjson.loads(value) if isinstance(value, str | bytes) else value


# -- events -------------------------------------------------------------------------------------------------

@strawberry.interface(description="Something that happened in a session. `url` is the page it happened on "
                                  "(for network requests, the requested URL).")
class Event:
    id: strawberry.ID
    kind: str
    timestamp: datetime
    url: str | None
    session_id: strawberry.ID

    @strawberry.field
    async def session(self, info: Info) -> Annotated[Session, strawberry.lazy("replayql.api.types")] | None:
        return await info.context.session(str(self.session_id), selected_session_columns(info, connection=False))


@strawberry.type
class PageEvent(Event):
    title: str | None
    referrer: str | None
    host: str | None
    path: str | None


@strawberry.type
class ClickEvent(Event):
    selector: str | None
    text: str | None
    x: int | None
    y: int | None


@strawberry.type
class InputEvent(Event):
    selector: str | None


@strawberry.type
class ConsoleEvent(Event):
    level: str | None
    message: str | None


@strawberry.type
class NetworkEvent(Event):
    method: str | None
    status: int | None
    duration_ms: float | None
    request_bytes: int | None
    response_bytes: int | None
    host: str | None
    path: str | None
    request_headers: JSON | None = strawberry.field(description="Only when the SDK was told to capture headers.")
    response_headers: JSON | None = strawberry.field(description="Only when the SDK was told to capture headers.")
    request_body: str | None = strawberry.field(description="Only when the SDK was told to capture bodies.")
    response_body: str | None = strawberry.field(description="Only when the SDK was told to capture bodies.")


@strawberry.type
class ErrorEvent(Event):
    error_type: str | None
    message: str | None
    stack: str | None
    handled: bool | None
    issue_id: strawberry.ID | None
    tags: JSON | None
    extra: JSON | None

    @strawberry.field
    async def issue(self, info: Info) -> Annotated[Issue, strawberry.lazy("replayql.api.types")] | None:
        return await info.context.loaders.issue.load(str(self.issue_id)) if self.issue_id else None


@strawberry.type
class CustomEvent(Event):
    name: str | None
    properties: JSON | None


@strawberry.type
class IdentifyEvent(Event):
    user_id: str | None
    traits: JSON | None


@strawberry.type
class WebVitalEvent(Event):
    name: str | None
    value: float | None


@strawberry.type(description="Derived at ingest: several clicks on one element within a short window.")
class RageClickEvent(Event):
    selector: str | None
    text: str | None


@strawberry.type(description="Derived at ingest: a click followed by no page change, request or DOM change.")
class DeadClickEvent(Event):
    selector: str | None
    text: str | None


@strawberry.type(description="Derived at ingest: a click followed closely by an error.")
class ErrorClickEvent(Event):
    selector: str | None
    text: str | None


EVENT_TYPES = (PageEvent, ClickEvent, InputEvent, ConsoleEvent, NetworkEvent, ErrorEvent, CustomEvent, IdentifyEvent,
               WebVitalEvent, RageClickEvent, DeadClickEvent, ErrorClickEvent)


def _network_details(props: dict[str, Any] | None) -> dict[str, Any]:
    props = props or {}
    return {name: props.get(name) for name in ("request_headers", "response_headers", "request_body",
                                                "response_body")}


def event_from_row(row: dict[str, Any]) -> Event:
    kind = row["kind"]
    common = {"id": strawberry.ID(f"{row['session_id']}/{row['seq']}/{row['idx']}"), "kind": kind,
              "timestamp": utc(row["ts"]), "url": row["url"], "session_id": strawberry.ID(row["session_id"])}
    props = _json(row.get("properties"))
    match kind:
        case "page":
            return PageEvent(**common, title=row["title"], referrer=row["referrer"], host=row["host"],
                             path=row["path"])
        case "click":
            return ClickEvent(**common, selector=row["selector"], text=row["text"], x=row["x"], y=row["y"])
        case "input":
            return InputEvent(**common, selector=row["selector"])
        case "console":
            return ConsoleEvent(**common, level=row["level"], message=row["message"])
        case "network":
            return NetworkEvent(**common, method=row["method"], status=row["status"],
                                duration_ms=row["duration_ms"], request_bytes=row["request_bytes"],
                                response_bytes=row["response_bytes"], host=row["host"], path=row["path"],
                                **_network_details(props))
        case "error":
            return ErrorEvent(**common, error_type=row["error_type"], message=row["message"], stack=row["stack"],
                              handled=row["handled"], issue_id=row["issue_id"], tags=(props or {}).get("tags"),
                              extra=(props or {}).get("extra"))
        case "custom":
            return CustomEvent(**common, name=row["name"], properties=props)
        case "identify":
            return IdentifyEvent(**common, user_id=row["user_id"], traits=props)
        case "vital":
            return WebVitalEvent(**common, name=row["name"], value=row["value"])
    derived = {"rage_click": RageClickEvent, "dead_click": DeadClickEvent, "error_click": ErrorClickEvent}[kind]
    return derived(**common, selector=row["selector"], text=row["text"])


# -- sessions, users, issues --------------------------------------------------------------------------------

def _event_connection(kinds: tuple[str, ...], node: type, description: str) -> Any:
    """A session's events of some kinds, typed by their node type (so `pages` yields `PageEvent`s)."""
    async def resolve(self: Session, info: Info, first: int = 100, after: str | None = None) -> Any:
        return await info.context.session_events(str(self.id), kinds, first, after)

    resolve.__name__ = f"resolve_{'_'.join(kinds) or 'all'}"
    # strawberry reads the node type from the annotation; `node` is a variable, which the checker cannot follow
    resolve.__annotations__["return"] = Connection[node]  # type: ignore[valid-type]
    return strawberry.field(resolver=resolve, description=description)


@strawberry.type
class Session:
    id: strawberry.ID
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    active_duration_ms: int
    user_id: strawberry.ID | None
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_type: DeviceType | None
    country: str | None
    language: str | None
    timezone: str | None
    release: str | None
    referrer: str | None
    initial_url: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    user_agent: str | None
    viewport: Viewport | None
    page_count: int
    click_count: int
    error_count: int
    event_count: int
    rage_click_count: int
    dead_click_count: int
    error_click_count: int
    web_vitals: WebVitals
    has_recording: bool
    sdk_name: str | None
    sdk_version: str | None

    @strawberry.field(description="The identified user, or an anonymous user standing for this session alone.")
    async def user(self, info: Info) -> Annotated[User, strawberry.lazy("replayql.api.types")]:
        if self.user_id is not None:
            found = await info.context.loaders.user.load(str(self.user_id))
            if found is not None:
                return found
        return User.anonymous(self)

    events = _event_connection((), Event, "Every event of the session, in time order.")
    pages = _event_connection(("page",), PageEvent, "Page views, in time order.")
    clicks = _event_connection(("click",), ClickEvent, "Clicks, in time order.")
    errors = _event_connection(("error",), ErrorEvent, "Errors, in time order.")
    network_requests = _event_connection(("network",), NetworkEvent, "Network requests, in time order.")
    console_logs = _event_connection(("console",), ConsoleEvent, "Console messages, in time order.")
    custom_events = _event_connection(("custom",), CustomEvent, "Custom events, in time order.")
    web_vital_events = _event_connection(("vital",), WebVitalEvent, "Web vital measurements, in time order.")
    frustration_signals = _event_connection(("rage_click", "dead_click", "error_click"), Event,
                                            "Rage, dead and error clicks, in time order.")

    @strawberry.field(description="The rrweb events recorded for replay, exactly as received, in time order.")
    async def recording(self, info: Info, first: int = 500, after: str | None = None) -> Connection[JSON]:
        return await info.context.recording(str(self.id), first, after)

    @strawberry.field(description=(
        "The cursor of the session's last stored batch (null: none yet). A player that asks for it before it reads "
        "`events` and `recording`, and then subscribes to `sessionLive(id, after: liveCursor)`, gets every later "
        "batch: those stored while it read come both ways (skip the repeats by event id)."))
    async def live_cursor(self, info: Info) -> str | None:
        return await info.context.live_cursor(str(self.id))

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Session:
        """A session from its summary row. A list reads only the columns of the fields a request selects
        (SESSION_FIELD_COLUMNS): the fields of columns not read get placeholders, and are never shown."""
        row = _UNREAD_SESSION_COLUMNS | row
        width, height = row.get("viewport_width"), row.get("viewport_height")
        return cls(
            id=strawberry.ID(row["session_id"]), started_at=utc(row["started_at"]),
            ended_at=utc(row["ended_at"]), duration_ms=int(row["duration_ms"]),
            active_duration_ms=int(row["active_ms"]), user_id=row["user_id"], browser=row["browser"],
            browser_version=row["browser_version"], os=row["os"], os_version=row["os_version"],
            device_type=DeviceType(row["device_type"]) if row["device_type"] else None,
            country=row["country"], language=row["language"], timezone=row["timezone"], release=row["release"],
            referrer=row["referrer"], initial_url=row["initial_url"], utm_source=row["utm_source"],
            utm_medium=row["utm_medium"], utm_campaign=row["utm_campaign"], user_agent=row["user_agent"],
            viewport=Viewport(width=width, height=height) if width is not None and height is not None else None,
            page_count=row["page_count"], click_count=row["click_count"], error_count=row["error_count"],
            event_count=row["event_count"], rage_click_count=row["rage_click_count"],
            dead_click_count=row["dead_click_count"], error_click_count=row["error_click_count"],
            web_vitals=WebVitals(lcp=row["lcp"], fcp=row["fcp"], cls=row["cls"], inp=row["inp"],
                                 ttfb=row["ttfb"], fid=row["fid"]),
            has_recording=bool(row["has_recording"]), sdk_name=row["sdk_name"], sdk_version=row["sdk_version"])


_WEB_VITALS = ("lcp", "fcp", "cls", "inp", "ttfb", "fid")
_COUNTS = ("page_count", "click_count", "error_count", "event_count", "rage_click_count", "dead_click_count",
           "error_click_count")
# The summary columns each field of Session is made from (GraphQL names; fields not listed need only the id).
# A field missing here would show a placeholder: tests ask every field alone and with all the others.
SESSION_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "startedAt": ("started_at",), "endedAt": ("ended_at",), "durationMs": ("duration_ms",),
    "activeDurationMs": ("active_ms",), "userId": ("user_id",), "user": ("user_id", "started_at", "ended_at"),
    "browser": ("browser",), "browserVersion": ("browser_version",), "os": ("os",), "osVersion": ("os_version",),
    "deviceType": ("device_type",), "country": ("country",), "language": ("language",), "timezone": ("timezone",),
    "release": ("release",), "referrer": ("referrer",), "initialUrl": ("initial_url",),
    "utmSource": ("utm_source",), "utmMedium": ("utm_medium",), "utmCampaign": ("utm_campaign",),
    "userAgent": ("user_agent",), "viewport": ("viewport_width", "viewport_height"), "pageCount": ("page_count",),
    "clickCount": ("click_count",), "errorCount": ("error_count",), "eventCount": ("event_count",),
    "rageClickCount": ("rage_click_count",), "deadClickCount": ("dead_click_count",),
    "errorClickCount": ("error_click_count",), "webVitals": _WEB_VITALS, "hasRecording": ("has_recording",),
    "sdkName": ("sdk_name",), "sdkVersion": ("sdk_version",),
}
SESSION_ID_FIELDS = frozenset({"id", "__typename", "events", "pages", "clicks", "errors", "networkRequests",
                               "consoleLogs", "customEvents", "webVitalEvents", "frustrationSignals", "recording",
                               "liveCursor"})
_EPOCH = datetime(1970, 1, 1)
_UNREAD_SESSION_COLUMNS: dict[str, Any] = {
    **{c: None for columns in SESSION_FIELD_COLUMNS.values() for c in columns},
    "started_at": _EPOCH, "ended_at": _EPOCH, "duration_ms": 0, "active_ms": 0, "has_recording": False,
    **{c: 0 for c in _COUNTS}}


def selected_session_columns(info: Info, connection: bool = True) -> tuple[str, ...] | None:
    """The summary columns needed for the Session fields a request selects, on a connection's nodes (`nodes`
    and `edges { node }`) or on the field itself, fragments included; None, meaning all, when it selects a
    field not in the map."""
    fields: set[str] = set()
    for selected in selected_fields(info.selected_fields):
        if not connection:
            fields |= {f.name for f in selected_fields(selected.selections)}
            continue
        for part in selected_fields(selected.selections):
            if part.name == "nodes":
                fields |= {f.name for f in selected_fields(part.selections)}
            elif part.name == "edges":
                fields |= {f.name for node in selected_fields(part.selections) if node.name == "node"
                           for f in selected_fields(node.selections)}
    if not fields <= SESSION_FIELD_COLUMNS.keys() | SESSION_ID_FIELDS:
        return None
    return tuple(sorted({column for f in fields for column in SESSION_FIELD_COLUMNS.get(f, ())}))


def selected_fields(selections: Sequence[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, with those of its fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from selected_fields(selection.selections)


@strawberry.type
class User:
    id: strawberry.ID
    identified: bool
    name: str | None
    email: str | None
    traits: JSON
    first_seen: datetime
    last_seen: datetime
    session_count: int
    _anonymous_session: strawberry.Private[str | None] = None

    @strawberry.field(description="The user's sessions, newest first.")
    async def sessions(self, info: Info, first: int = 50, after: str | None = None) -> Connection[Session]:
        return await info.context.user_sessions(self, first, after, selected_session_columns(info))

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(id=strawberry.ID(row["user_id"]), identified=True, name=row["name"], email=row["email"],
                   traits=JSON(_json(row["traits"]) or {}), first_seen=utc(row["first_seen"]),
                   last_seen=utc(row["last_seen"]), session_count=int(row["session_count"]))

    @classmethod
    def anonymous(cls, session: Session) -> User:
        return cls(id=strawberry.ID(f"anonymous:{session.id}"), identified=False, name=None, email=None,
                   traits=JSON({}),
                   first_seen=session.started_at, last_seen=session.ended_at, session_count=1,
                   _anonymous_session=str(session.id))


@strawberry.type
class Issue:
    id: strawberry.ID
    title: str
    error_type: str
    message: str
    status: IssueStatus
    first_seen: datetime
    last_seen: datetime
    count: int
    sample_stack: str | None

    @strawberry.field(description="Distinct sessions in which the issue occurred.")
    async def session_count(self, info: Info) -> int:
        return int((await info.context.loaders.issue_stats.load(str(self.id)))["session_count"])

    @strawberry.field(description="Distinct users affected (each anonymous session counts as one user).")
    async def user_count(self, info: Info) -> int:
        return int((await info.context.loaders.issue_stats.load(str(self.id)))["user_count"])

    @strawberry.field(description="Releases in which the issue occurred.")
    async def releases(self, info: Info) -> list[str]:
        stats = await info.context.loaders.issue_stats.load(str(self.id))
        return sorted(r for r in stats["releases"] or [] if r is not None)

    @strawberry.field(description="Occurrences (error events), newest first.")
    async def occurrences(self, info: Info, first: int = 50, after: str | None = None) -> Connection[ErrorEvent]:
        return await info.context.issue_occurrences(str(self.id), first, after)

    @strawberry.field(description="Sessions in which the issue occurred, newest first.")
    async def sessions(self, info: Info, first: int = 50, after: str | None = None) -> Connection[Session]:
        return await info.context.issue_sessions(str(self.id), first, after)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Issue:
        return cls(id=strawberry.ID(row["issue_id"]), title=row["title"], error_type=row["error_type"],
                   message=row["message"], status=IssueStatus(row["status"]),
                   first_seen=utc(row["first_seen"]), last_seen=utc(row["last_seen"]),
                   count=int(row["count"]), sample_stack=row["stack"])


@strawberry.type
class Viewer:
    app_id: strawberry.ID
    key_id: strawberry.ID
    scopes: list[KeyScopeEnum]


@strawberry.type
class DeletionResult:
    user_id: strawberry.ID
    deleted_sessions: int
    deleted_events: int
    deleted_recordings: int
    complete: bool = strawberry.field(description="True once the user's data no longer answers any query.")


@strawberry.type
class ApiKeyInfo:
    id: strawberry.ID
    scope: KeyScopeEnum
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


@strawberry.type
class CreatedApiKey:
    key: ApiKeyInfo
    secret: str = strawberry.field(description="The API key itself. It is shown only this once.")
