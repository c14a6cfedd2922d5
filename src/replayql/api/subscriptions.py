"""GraphQL subscriptions: sessions, issues and a session's replay as they are stored (served by api.graphql_ws).

Each resolver checks its arguments first (so a bad filter or an unknown session answers an `error` before any
update), then returns the stream. A stream is a feed of a topic of the server's hub (api.live_hub): the topics
below read what changed once per poll for every subscription that shares them, through the query layer under
the app's AppScope, exactly as the queries do, and each stream only takes what its topic read for it:

- `LiveBatches`: one per app; each poll, the new batches of every session some `sessionLive` follows, in one read.
- `SessionChanges`: one per app and filter (`sessionUpdates`' arguments); the changed sessions that match, read
  once per poll, throttled per session for all its subscribers alike.
- `IssueChanges`: one per app and filter (`issueUpdates`' arguments); the issues' new, regressed and status
  changes, found once per poll.
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlglot import exp
from strawberry.scalars import JSON

from replayql.api.filters import IssueFilter, SessionFilter, to_tree
from replayql.api.live_hub import LiveHub, Topic
from replayql.api.types import ErrorEvent, Event, Info, Issue, Session, event_from_row
from replayql.lru import Lru
from replayql.query import ast, entities
from replayql.query.entities import BatchContent, ListArgs
from replayql.query.errors import BadUserInput, NotFound
from replayql.query.pagination import SortKey, decode_cursor, encode_cursor
from replayql.store.base import BatchStored, Change, IssueStatusSet

if TYPE_CHECKING:  # api.context imports the schema, which imports this module
    from replayql.api.context import Context

_CATCH_UP_BATCHES = 50  # batches read per query while sessionLive catches up
_TRACKED_ISSUES = 10_000  # issues whose last status an issueUpdates stream remembers (to see a regression)
_REMEMBERED_SESSIONS = 10_000  # sessions whose last state sent a sessionUpdates stream remembers
_Query = Annotated[str | None, strawberry.argument(description="The filter language, ANDed with `filter`.")]


@strawberry.enum(description="Why an issue is in `issueUpdates`.")
class IssueChange(enum.Enum):
    NEW = "NEW"  # its first occurrence was stored
    REGRESSED = "REGRESSED"  # it was resolved and occurred again (its status is OPEN again)
    REOPENED = "REOPENED"  # updateIssue set it OPEN
    STATUS_CHANGED = "STATUS_CHANGED"  # updateIssue set it RESOLVED or IGNORED


@strawberry.type(description="An issue that is new, regressed, reopened or changed status.")
class IssueUpdate:
    change: IssueChange
    issue: Issue
    occurrence: ErrorEvent | None = strawberry.field(
        description="The occurrence that made it new or regressed; null for a status change.")


@strawberry.type(description="One stored batch of a session: its events and rrweb events, in order.")
class SessionLiveUpdate:
    cursor: str = strawberry.field(description="Give it as `after` to resume after this update.")
    seq: int = strawberry.field(description="The batch's sequence number in its session.")
    events: list[Event]
    recording: list[JSON] = strawberry.field(description="The batch's rrweb events, exactly as received.")


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Sessions that start or change while they match the filter, each at most once per "
        "`live.session_update_interval_s` (1 s by default; the latest state is sent when the interval ends)."))
    async def session_updates(self, info: Info, filter: SessionFilter | None = None, query: _Query = None
                              ) -> AsyncGenerator[Session, None]:
        ctx = info.context
        args = ListArgs(filter=to_tree(filter), query=query)
        await ctx.read(entities.sessions_among, args, [""])  # a bad filter is refused now, not at the first change
        return _session_updates(ctx, args)

    @strawberry.subscription(description=(
        "Issues that are new, regressed or reopened, or whose status changes, with the occurrence that caused it."))
    async def issue_updates(self, info: Info, filter: IssueFilter | None = None, query: _Query = None
                            ) -> AsyncGenerator[IssueUpdate, None]:
        ctx = info.context
        args = ListArgs(filter=to_tree(filter), query=query)
        await ctx.read(entities.issues_among, args, [""])
        return _issue_updates(ctx, args)

    @strawberry.subscription(description=(
        "A session's events and rrweb events as they are stored, one update per batch in order: first those "
        "after `after` (a cursor of an earlier update; none: from the start), then each new one, with no gap or "
        "repeat between the two. An unknown session, or another app's, answers NOT_FOUND."))
    async def session_live(self, info: Info, id: strawberry.ID, after: str | None = None
                           ) -> AsyncGenerator[SessionLiveUpdate, None]:
        ctx = info.context
        after_seq = _seq_of(after)
        if await ctx.session(str(id), ()) is None:
            raise NotFound(f"no session {id} in this app")
        return _session_live(ctx, str(id), after_seq)


# -- sessionUpdates --------------------------------------------------------------------------------------------

class Throttle:
    """At most one update per session per `interval_s`: a change inside the interval waits for its end (and the
    state then is sent)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._sent: dict[str, float] = {}  # sessions sent within the interval: when
        self._waiting: dict[str, None] = {}  # changed, not sent yet, in the order first noticed

    def changed(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            self._waiting[session_id] = None

    def due(self) -> list[str]:
        now = time.monotonic()
        self._sent = {s: at for s, at in self._sent.items() if now - at < self.interval_s}
        ready = [s for s in self._waiting if s not in self._sent]
        for session_id in ready:
            del self._waiting[session_id]
        return ready

    def sent(self, session_id: str) -> None:
        self._sent[session_id] = time.monotonic()


class SessionChanges(Topic[Session]):
    """The sessions that changed and match one filter, for every `sessionUpdates` of the app with that filter:
    one read per poll of the sessions due, whatever the number of subscribers."""

    def __init__(self, app_id: str, args: ListArgs, interval_s: float) -> None:
        super().__init__(app_id)
        self.args, self.throttle = args, Throttle(interval_s)
        # What each session last looked like when sent: a notice may come after the summary already showed a
        # later write (ClickHouse: a batch's summary row is in before its ledger row), and a state is sent once.
        self.sent: Lru[str, int] = Lru(_REMEMBERED_SESSIONS)

    async def update(self, changes: list[Change], hub: LiveHub) -> None:
        self.throttle.changed(c.session_id for c in changes if isinstance(c, BatchStored))
        due = self.throttle.due()  # each poll: a throttled session's wait may have ended
        if not due:
            return
        rows = await hub.read("sessions", entities.sessions_among, self.app_id, self.args, due)
        updates = []
        for session_id in due:
            row = rows.get(session_id)
            if row is None:  # it does not match the filter now
                continue
            state = hash(repr(sorted(row.items())))
            if self.sent.get(session_id) != state:
                self.sent.put(session_id, state)
                self.throttle.sent(session_id)
                updates.append(Session.from_row(row))
        self.offer(None, updates)


async def _session_updates(ctx: Context, args: ListArgs) -> AsyncGenerator[Session, None]:
    interval_s = ctx.services.settings.live.session_update_interval_s
    key = ("sessionUpdates", ctx.app_id, args)
    async with ctx.services.live.feed(key, lambda: SessionChanges(ctx.app_id, args, interval_s)) as feed:
        while True:
            sessions = await feed.next()
            ctx.fresh_loaders()  # nested fields (a session's user) are read anew for each update
            for session in sessions:
                yield session


# -- issueUpdates ----------------------------------------------------------------------------------------------

class IssueChanges(Topic[IssueUpdate]):
    """The issue updates of one filter, for every `issueUpdates` of the app with that filter: found once per poll
    with changes. It remembers each issue's last status (to see a regression), starting from the resolved ones."""

    def __init__(self, app_id: str, args: ListArgs) -> None:
        super().__init__(app_id)
        self.args = args
        self.statuses: Lru[str, str] | None = None  # read at the first poll

    async def update(self, changes: list[Change], hub: LiveHub) -> None:
        if self.statuses is None:
            self.statuses = await self._resolved(hub)
        relevant = [c for c in changes if isinstance(c, BatchStored | IssueStatusSet)]
        if relevant:
            self.offer(None, await self._changes(hub, relevant, self.statuses))

    async def _resolved(self, hub: LiveHub) -> Lru[str, str]:
        statuses: Lru[str, str] = Lru(_TRACKED_ISSUES)  # an issue's status as this topic last knew it
        resolved = ListArgs(filter=ast.Compare("status", "=", ast.Str("RESOLVED")), first=_TRACKED_ISSUES)
        for row in (await hub.read("issues", entities.list_issues, self.app_id, resolved)).rows:
            statuses.put(row["issue_id"], "RESOLVED")
        return statuses

    async def _changes(self, hub: LiveHub, changes: list[Change], statuses: Lru[str, str]) -> list[IssueUpdate]:
        """The updates these changes make, in the order they were stored: an issue's first occurrence among them
        (NEW when it is the issue's first ever, REGRESSED when it reopened a resolved issue) and each status set."""
        batches = [(c.session_id, c.seq) for c in changes if isinstance(c, BatchStored)]
        occurrences = await hub.read("issues", entities.errors_in_batches, self.app_id, batches) if batches else []
        first_of: dict[str, dict[str, Any]] = {}
        for row in occurrences:
            first_of.setdefault(row["issue_id"], row)
        set_status = [c for c in changes if isinstance(c, IssueStatusSet)]
        ids = sorted(set(first_of) | {c.issue_id for c in set_status})
        if not ids:
            return []
        current = await hub.read("issues", entities.issues_among, self.app_id, ListArgs(), ids)
        matching = current if self.args.filter is None and not self.args.query else await hub.read(
            "issues", entities.issues_among, self.app_id, self.args, ids)
        updates: list[tuple[IssueChange, str, dict[str, Any] | None]] = []
        for issue_id, occurrence in first_of.items():
            issue = current.get(issue_id)
            if issue is None:
                continue
            was = statuses.get(issue_id)
            statuses.put(issue_id, issue["status"])
            if issue["first_seen"] == occurrence["ts"]:
                updates.append((IssueChange.NEW, issue_id, occurrence))
            elif was == "RESOLVED" and issue["status"] == "OPEN":
                updates.append((IssueChange.REGRESSED, issue_id, occurrence))
        for change in set_status:
            statuses.put(change.issue_id, change.status)
            kind = IssueChange.REOPENED if change.status == "OPEN" else IssueChange.STATUS_CHANGED
            updates.append((kind, change.issue_id, None))
        return [IssueUpdate(change=kind, issue=Issue.from_row(matching[issue_id]),
                            occurrence=_error_event(occurrence) if occurrence is not None else None)
                for kind, issue_id, occurrence in updates if issue_id in matching]


async def _issue_updates(ctx: Context, args: ListArgs) -> AsyncGenerator[IssueUpdate, None]:
    key = ("issueUpdates", ctx.app_id, args)
    async with ctx.services.live.feed(key, lambda: IssueChanges(ctx.app_id, args)) as feed:
        while True:
            updates = await feed.next()
            ctx.fresh_loaders()
            for update in updates:
                yield update


def _error_event(row: dict[str, Any]) -> ErrorEvent:
    event = event_from_row(row)
    assert isinstance(event, ErrorEvent)
    return event


# -- sessionLive -----------------------------------------------------------------------------------------------

_SEQ_KEY = [SortKey(exp.Null(), False, "number")]


def _seq_of(after: str | None) -> int | None:
    if not after:
        return None
    values = decode_cursor(after, _SEQ_KEY)
    if not isinstance(values[0], int):
        raise BadUserInput("`after` is not a cursor of sessionLive")
    return values[0]


@dataclass(frozen=True)
class LiveBatch:
    """A stored batch as every subscriber of its session gets it: converted once, shared by all of them."""

    seq: int
    events: list[Event]
    recording: list[JSON]

    @classmethod
    def of(cls, content: BatchContent) -> LiveBatch:
        return cls(content.seq, [event_from_row(r) for r in content.events], [JSON(e) for e in content.recording])

    def update(self, high: int) -> SessionLiveUpdate:
        return SessionLiveUpdate(cursor=encode_cursor((high,)), seq=self.seq, events=self.events,
                                 recording=self.recording)


class LiveBatches(Topic[LiveBatch]):
    """The new batches of the app's followed sessions: one read per poll for all of them, each batch offered to
    every subscriber of its session."""

    async def update(self, changes: list[Change], hub: LiveHub) -> None:
        stored = [c for c in changes if isinstance(c, BatchStored) and c.session_id in self.feeds]
        if not stored:
            return
        found = await hub.read("batches", entities.batches_of_sessions, self.app_id,
                               [(c.session_id, c.seq) for c in stored], events_within(stored))
        for session_id, contents in found.items():
            self.offer(session_id, [LiveBatch.of(content) for content in contents])


def events_within(stored: list[BatchStored]) -> tuple[int, int] | None:
    """A range of times that holds every event of these batches; None when one of them has unknown times (a
    ledger row from a writer older than the ledger's times), so that nothing is cut."""
    spans = [c.events_span_ms for c in stored]
    known = [span for span in spans if span is not None]
    if not known or len(known) < len(spans):
        return None
    return min(first for first, _ in known), max(last for _, last in known)


async def _session_live(ctx: Context, session_id: str, after: int | None
                        ) -> AsyncGenerator[SessionLiveUpdate, None]:
    """Catch up from the store, then follow the feed. The feed is armed before the first read, so a batch stored
    meanwhile is both read and offered: `caught_up` skips the second."""
    hub, app_id = ctx.services.live, ctx.app_id
    caught_up: set[int] = set()  # only the catch-up's seqs: the feed offers each batch once
    high = after  # the cursor: the highest seq delivered (or given)
    async with hub.feed(("sessionLive", app_id), lambda: LiveBatches(app_id), session_id) as feed:
        while True:
            seqs = await hub.read("catch_up", entities.batch_seqs, app_id, session_id, high, _CATCH_UP_BATCHES)
            for content in await hub.read("catch_up", entities.batch_contents, app_id, session_id, seqs):
                caught_up.add(content.seq)
                high = content.seq if high is None else max(high, content.seq)
                yield LiveBatch.of(content).update(high)
            if len(seqs) < _CATCH_UP_BATCHES:
                break
        while True:
            for batch in await feed.next():
                if batch.seq not in caught_up:
                    high = batch.seq if high is None else max(high, batch.seq)
                    yield batch.update(high)
