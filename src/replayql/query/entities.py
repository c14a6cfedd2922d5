"""Queries for sessions, users, issues and events: the field tables and the one-query-per-list readers."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from sqlglot import exp

from replayql.query import ast
from replayql.query.compile import where
from replayql.query.errors import BadUserInput
from replayql.query.lists import Page, ReadStore, by_keys, count, fetch_page, run
from replayql.query.pagination import SortKey, after_condition, decode_cursor, encode_cursor
from replayql.query.sql import AppScope, col, time_range
from replayql.query.vocabulary import EVENTS, ISSUES, SESSIONS, USERS
from replayql.store.records import EVENT_COLUMNS
from replayql.store.schema import SESSION_COLUMNS

SESSION_ORDER = {"STARTED_AT": "started_at", "ENDED_AT": "ended_at", "DURATION": "duration_ms",
                 "ACTIVE_DURATION": "active_ms", "EVENT_COUNT": "event_count", "ERROR_COUNT": "error_count",
                 "PAGE_COUNT": "page_count", "CLICK_COUNT": "click_count", "FRUSTRATION": "frustration",
                 "USER": "user_id", "COUNTRY": "country", "DEVICE": "device_type"}
_FRUSTRATIONS = ("rage_click_count", "dead_click_count", "error_click_count")
_TEXT_ORDER = {"user_id", "country", "device_type"}
USER_ORDER = {"LAST_SEEN": "last_seen", "FIRST_SEEN": "first_seen", "SESSION_COUNT": "session_count"}
ISSUE_ORDER = {"LAST_SEEN": "last_seen", "FIRST_SEEN": "first_seen", "COUNT": "count"}

_SESSION_SELECT = [c for c, _, _ in SESSION_COLUMNS if c not in ("tail", "client_ip")] + ["duration_ms"]
_EVENT_SELECT = [c for c in EVENT_COLUMNS if c != "app_id"]


@dataclass(frozen=True)
class ListArgs:
    filter: ast.Condition | None = None  # the typed filter, as a tree of the filter language
    start: datetime | None = None
    end: datetime | None = None
    order: str | None = None
    descending: bool = True
    first: int = 50
    after: str | None = None
    query: str | None = None  # the filter language's query string, ANDed with `filter`

    def __post_init__(self) -> None:
        # Overlap ranges check each end separately, so a reversed range would otherwise get a quiet answer.
        if self.start is not None and self.end is not None and self.end < self.start:
            raise BadUserInput("timeRange.to is before timeRange.from")


# -- sessions -------------------------------------------------------------------------------------------------

def _sessions(scope: AppScope, args: ListArgs, only: list[Any] | None = None, key: str = "session_id",
              columns: Collection[str] | None = None) -> exp.Select:
    """`only`: the sessions whose `key` (session_id or user_id) is one of these. `columns`: read only these
    (and the id); all when None."""
    selected = [c for c in _SESSION_SELECT if columns is None or c in columns or c == "session_id"]
    query = scope.select("sessions", *(col(c, "s") for c in selected), alias="s",
                         only=(key, only) if only is not None else None)
    for condition in where(scope, SESSIONS, "s", args.filter, args.query):
        query = query.where(condition)
    # A session is in a range when it overlaps it.
    for condition in time_range(col("ended_at", "s"), args.start, None, scope):
        query = query.where(condition)
    for condition in time_range(col("started_at", "s"), None, args.end, scope):
        query = query.where(condition)
    return query


def _keys(table: str, column: str, id_column: str, descending: bool, is_time: bool) -> list[SortKey]:
    return [SortKey(col(column, table), descending, "time" if is_time else "number"),
            SortKey(col(id_column, table), descending)]


def _session_keys(order: str | None, descending: bool) -> list[SortKey]:
    """The keyset for an order: a text key has '' for a missing value (keyset comparisons skip NULLs), and
    frustration is the sum of rage, dead and error clicks."""
    column = SESSION_ORDER[order or "STARTED_AT"]
    if column == "frustration":
        total: exp.Expr = col(_FRUSTRATIONS[0], "s")
        for name in _FRUSTRATIONS[1:]:
            total = exp.Add(this=total, expression=col(name, "s"))
        key = SortKey(exp.Paren(this=total), descending, "number")
    elif column in _TEXT_ORDER:
        key = SortKey(exp.Coalesce(this=col(column, "s"), expressions=[exp.Literal.string("")]), descending)
    else:
        key = SortKey(col(column, "s"), descending, "time" if column.endswith("_at") else "number")
    return [key, SortKey(col("session_id", "s"), descending)]


def list_sessions(store: ReadStore, scope: AppScope, args: ListArgs, columns: Collection[str] | None = None,
                  count: bool = False) -> Page:
    """A page of sessions; `columns`: only these are read (a page's rows read by id cost about one block of
    every column read). `count`: the total is wanted too; a filtered first page then counts in the statement
    that finds it (Page.total), so the filter (events read for a condition on them, say) is evaluated once.
    Unfiltered, two statements cost less: a count of every session reads no sort column."""
    keys = _session_keys(args.order, args.descending)
    filtered = args.filter is not None or bool(args.query)
    return fetch_page(store, scope, _sessions(scope, args, columns=columns), keys, args.first, args.after,
                      lambda ids: _sessions(scope, ListArgs(), ids, columns=columns), count=count and filtered)


def count_sessions(store: ReadStore, scope: AppScope, args: ListArgs) -> int:
    return count(store, scope, _sessions(scope, args, columns=()))  # the id alone: a view folds what it reads


def sessions_by_id(store: ReadStore, scope: AppScope, ids: Sequence[str], columns: Collection[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    return by_keys(store, scope, _sessions(scope, ListArgs(), columns=columns), "session_id", ids)


def sessions_among(store: ReadStore, scope: AppScope, args: ListArgs, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Those of these sessions that match the list's filter (live updates: the sessions a write changed)."""
    if not ids:
        return {}
    return {row["session_id"]: row for row in run(store, scope, _sessions(scope, args, list(ids)))}


def sessions_of_users(store: ReadStore, scope: AppScope, user_ids: Sequence[str], first: int, after: str | None,
                      columns: Collection[str] | None = None) -> dict[str, Page]:
    keys = _keys("s", "started_at", "session_id", True, True)
    query = _sessions(scope, ListArgs(), list(user_ids), key="user_id", columns=columns)
    return _pages_per_owner(store, scope, query, col("user_id", "s"), keys, first, after,
                            lambda ids: _sessions(scope, ListArgs(), ids, columns=columns))


# -- users ----------------------------------------------------------------------------------------------------

def _users(scope: AppScope, args: ListArgs, only: list[Any] | None = None) -> exp.Select:
    query = scope.select("users", *(col(c, "u") for c in ("user_id", "name", "email", "traits", "first_seen",
                                                           "last_seen", "session_count")), alias="u",
                         only=("user_id", only) if only is not None else None)
    for condition in where(scope, USERS, "u", args.filter, args.query):
        query = query.where(condition)
    for condition in time_range(col("last_seen", "u"), args.start, None, scope):
        query = query.where(condition)
    for condition in time_range(col("first_seen", "u"), None, args.end, scope):
        query = query.where(condition)
    return query


def list_users(store: ReadStore, scope: AppScope, args: ListArgs) -> Page:
    column = USER_ORDER[args.order or "LAST_SEEN"]
    keys = _keys("u", column, "user_id", args.descending, column.endswith("_seen"))
    return fetch_page(store, scope, _users(scope, args), keys, args.first, args.after,
                      lambda ids: _users(scope, ListArgs(), ids))


def count_users(store: ReadStore, scope: AppScope, args: ListArgs) -> int:
    return count(store, scope, _users(scope, args))


def users_by_id(store: ReadStore, scope: AppScope, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return by_keys(store, scope, _users(scope, ListArgs()), "user_id", ids)


# -- issues ---------------------------------------------------------------------------------------------------

def _issues(scope: AppScope, args: ListArgs, only: list[Any] | None = None) -> exp.Select:
    query = scope.select("issues", *(col(c, "i") for c in ("issue_id", "title", "error_type", "message", "stack",
                                                            "status", "first_seen", "last_seen", "count")),
                         alias="i", only=("issue_id", only) if only is not None else None)
    for condition in where(scope, ISSUES, "i", args.filter, args.query):
        query = query.where(condition)
    if args.start is not None or args.end is not None:  # issues that occurred in the range
        inner = scope.select("events", col("issue_id", "e"), alias="e").where(
            col("kind", "e").eq(exp.Literal.string("error")))
        for condition in time_range(col("ts", "e"), args.start, args.end, scope):
            inner = inner.where(condition)
        query = query.where(exp.In(this=col("issue_id", "i"), query=exp.Subquery(this=inner)))
    return query


def list_issues(store: ReadStore, scope: AppScope, args: ListArgs) -> Page:
    column = ISSUE_ORDER[args.order or "LAST_SEEN"]
    keys = _keys("i", column, "issue_id", args.descending, column.endswith("_seen"))
    return fetch_page(store, scope, _issues(scope, args), keys, args.first, args.after,
                      lambda ids: _issues(scope, ListArgs(), ids))


def count_issues(store: ReadStore, scope: AppScope, args: ListArgs) -> int:
    return count(store, scope, _issues(scope, args))


def issues_by_id(store: ReadStore, scope: AppScope, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return by_keys(store, scope, _issues(scope, ListArgs()), "issue_id", ids)


def issues_among(store: ReadStore, scope: AppScope, args: ListArgs, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Those of these issues that match the list's filter (live updates: the issues a write changed)."""
    if not ids:
        return {}
    return {row["issue_id"]: row for row in run(store, scope, _issues(scope, args, list(ids)))}


def issue_stats(store: ReadStore, scope: AppScope, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Sessions, users (anonymous sessions count as one user each) and releases per issue, in one query."""
    if not ids:
        return {}
    user_key = exp.func("coalesce", col("user_id", "s"),
                        exp.DPipe(this=exp.Literal.string("anonymous:"), expression=col("session_id", "e")))

    def errors(alias: str, column: str) -> exp.Select:
        return scope.select("issue_sessions", col(column, alias), alias=alias).where(
            exp.In(this=col("issue_id", alias), expressions=[scope.param(i) for i in ids]))

    # only the sessions with these errors: a store that reads summaries whole need not read every session
    sessions = scope.select("sessions", *(col(c, "s") for c in ("session_id", "user_id", "release")), alias="s")
    sessions = sessions.where(col("session_id", "s").isin(query=errors("e2", "session_id")))
    query = errors("e", "issue_id").join(exp.Subquery(this=sessions, alias="s"), on=col("session_id", "s").eq(
        col("session_id", "e")), join_type="left").select(
        exp.alias_(exp.Count(this=exp.Distinct(expressions=[col("session_id", "e")])), "session_count"),
        exp.alias_(exp.Count(this=exp.Distinct(expressions=[user_key])), "user_count"),
        exp.alias_(exp.ArrayAgg(this=exp.Distinct(expressions=[col("release", "s")])), "releases"),
    ).group_by(col("issue_id", "e"))
    return {row["issue_id"]: row for row in run(store, scope, query)}


# -- events ---------------------------------------------------------------------------------------------------

_EVENT_KEYS_ASC = [SortKey(col("ts", "e"), False, "time"), SortKey(col("session_id", "e"), False),
                   SortKey(col("seq", "e"), False, "number"), SortKey(col("idx", "e"), False, "number")]


def _events(scope: AppScope, args: ListArgs, kinds: Sequence[str] = ()) -> exp.Select:
    query = scope.select("events", *(col(c, "e") for c in _EVENT_SELECT), alias="e")
    if kinds:
        query = query.where(exp.In(this=col("kind", "e"), expressions=[exp.Literal.string(k) for k in kinds]))
    for condition in where(scope, EVENTS, "e", args.filter, args.query):
        query = query.where(condition)
    for condition in time_range(col("ts", "e"), args.start, args.end, scope):
        query = query.where(condition)
    return query


def list_events(store: ReadStore, scope: AppScope, args: ListArgs) -> Page:
    keys = [SortKey(k.expression, args.descending, k.kind) for k in _EVENT_KEYS_ASC]
    return fetch_page(store, scope, _events(scope, args), keys, args.first, args.after)


def count_events(store: ReadStore, scope: AppScope, args: ListArgs) -> int:
    return count(store, scope, _events(scope, args))


def events_of_sessions(store: ReadStore, scope: AppScope, session_ids: Sequence[str], kinds: Sequence[str],
                       first: int, after: str | None) -> dict[str, Page]:
    """Each session's events of the given kinds in time order, for a whole list of sessions in one query."""
    query = _events(scope, ListArgs(), kinds).where(
        exp.In(this=col("session_id", "e"), expressions=[scope.param(s) for s in session_ids]))
    return _pages_per_owner(store, scope, query, col("session_id", "e"), _EVENT_KEYS_ASC, first, after)


def events_of_issues(store: ReadStore, scope: AppScope, issue_ids: Sequence[str], first: int, after: str | None,
                     descending: bool = True) -> dict[str, Page]:
    keys = [SortKey(k.expression, descending, k.kind) for k in _EVENT_KEYS_ASC]
    query = _events(scope, ListArgs(), ("error",)).where(
        exp.In(this=col("issue_id", "e"), expressions=[scope.param(i) for i in issue_ids]))
    return _pages_per_owner(store, scope, query, col("issue_id", "e"), keys, first, after)


def sessions_of_issues(store: ReadStore, scope: AppScope, issue_ids: Sequence[str], first: int, after: str | None
                       ) -> dict[str, Page]:
    pairs = scope.select("issue_sessions", col("issue_id", "e"), col("session_id", "e"), alias="e").where(
        exp.In(this=col("issue_id", "e"), expressions=[scope.param(i) for i in issue_ids])).distinct()
    query = _sessions(scope, ListArgs()).join(exp.Subquery(this=pairs, alias="o"),
                                               on=col("session_id", "o").eq(col("session_id", "s")))
    keys = _keys("s", "started_at", "session_id", True, True)
    return _pages_per_owner(store, scope, query, col("issue_id", "o"), keys, first, after)


def _pages_per_owner(store: ReadStore, scope: AppScope, query: exp.Select, owner: exp.Column, keys: list[SortKey],
                     first: int, after: str | None, reread: Callable[[list[Any]], exp.Select] | None = None
                     ) -> dict[str, Page]:
    """Page each owner's rows separately but in a single query (a window over the owner). On a store that
    reads summaries whole (`narrow_pages`), the window ranks the sort keys alone, and `reread` then reads only
    the rows on the pages, by their ids (the last sort key), as fetch_page does."""
    if after:
        query = query.where(after_condition(keys, decode_cursor(after, keys), scope))
    window = exp.Window(this=exp.RowNumber(), partition_by=[owner.copy()],
                        order=exp.Order(expressions=[exp.Ordered(this=k.expression.copy(), desc=k.descending)
                                                     for k in keys]))
    narrow = reread is not None and store.narrow_pages
    query = query.select(exp.alias_(window, "_rn"), exp.alias_(owner.copy(), "_owner"),
                         *(exp.alias_(k.expression.copy(), f"_k{i}") for i, k in enumerate(keys)), append=not narrow)
    outer = exp.select("*").from_(exp.Subquery(this=query, alias="ranked")).where(
        exp.LTE(this=col("_rn"), expression=exp.Literal.number(first + 1))).order_by(col("_rn"))
    ranked = run(store, scope, outer)
    if narrow and reread is not None and ranked:
        whole = {row[keys[-1].expression.name]: row
                 for row in run(store, scope, reread([row[f"_k{len(keys) - 1}"] for row in ranked]))}
        ranked = [{**whole[row[f"_k{len(keys) - 1}"]], **row} for row in ranked]
    pages: dict[str, Page] = {}
    for row in ranked:
        page = pages.setdefault(row.pop("_owner"), Page([], [], False))
        row.pop("_rn")
        if len(page.rows) == first:
            page.has_next = True
            continue
        page.cursors.append(encode_cursor(tuple(row.pop(f"_k{i}") for i in range(len(keys)))))
        page.rows.append(row)
    return pages


# -- recordings -----------------------------------------------------------------------------------------------

# A stored chunk is a JSON array of rrweb events as received: each is handed on as its own bytes (an
# orjson Fragment), never parsed and serialised again, so a snapshot costs a copy and no nesting depth
# that ingest accepted can fail the answer.
_RAW_EVENTS = msgspec.json.Decoder(list[msgspec.Raw])


def recording_events(store: ReadStore, scope: AppScope, session_id: str, first: int, after: str | None
                     ) -> tuple[list[Any], int, bool]:
    """The stored rrweb events of a session in time order, from `after` (an offset cursor)."""
    offset = _offset(after)
    query = scope.select("recordings", col("event_count", "r"), col("data", "r"), alias="r").where(
        col("session_id", "r").eq(scope.param(session_id))).order_by(col("first_ts", "r"), col("seq", "r"))
    events: list[Any] = []
    position = 0
    for chunk in run(store, scope, query):
        size = int(chunk["event_count"])
        if position + size > offset and len(events) <= first:
            decoded = _RAW_EVENTS.decode(store.recording_payload(chunk["data"]))
            start = max(0, offset - position)
            events.extend(orjson.Fragment(bytes(raw)) for raw in decoded[start:])
        position += size
    return events[:first], offset, len(events) > first


def recording_size(store: ReadStore, scope: AppScope, session_id: str) -> int:
    query = scope.select("recordings", exp.alias_(exp.func("coalesce", exp.Sum(this=col("event_count", "r")),
                                                             exp.Literal.number(0)), "n"), alias="r").where(
        col("session_id", "r").eq(scope.param(session_id)))
    return int(run(store, scope, query)[0]["n"])


def _offset(after: str | None) -> int:
    if not after:
        return 0
    values = decode_cursor(after, [SortKey(exp.Null(), False, "number")])
    if not isinstance(values[0], int) or values[0] < 0:
        raise BadUserInput("`after` is not a cursor for this recording")
    return values[0] + 1


def recording_cursor(index: int) -> str:
    return encode_cursor((index,))


# -- live (api.subscriptions): what a batch stored ---------------------------------------------------------------

@dataclass
class BatchContent:
    """One stored batch of a session: its events (rows, in order) and its rrweb events (as received)."""

    seq: int
    events: list[dict[str, Any]]
    recording: list[Any]


def _of_batches(scope: AppScope, alias: str, session_id: str, after: int | None, seqs: Sequence[int] | None
                ) -> list[exp.Expr]:
    conditions: list[exp.Expr] = [col("session_id", alias).eq(scope.param(session_id))]
    if after is not None:
        conditions.append(exp.GT(this=col("seq", alias), expression=scope.param(after)))
    if seqs is not None:
        conditions.append(exp.In(this=col("seq", alias), expressions=[scope.param(s) for s in seqs]))
    return conditions


def batch_seqs(store: ReadStore, scope: AppScope, session_id: str, after: int | None, limit: int) -> list[int]:
    """The seqs of the session's stored batches after `after` (those with events or a recording), in order."""
    events = scope.select("events", col("seq", "e"), alias="e").where(*_of_batches(scope, "e", session_id, after, None))
    chunks = scope.select("recordings", col("seq", "r"), alias="r").where(
        *_of_batches(scope, "r", session_id, after, None))
    query = exp.select(col("seq", "b")).from_(exp.Subquery(this=exp.union(events, chunks, distinct=True), alias="b")
                                              ).order_by(col("seq", "b")).limit(limit)
    return [int(row["seq"]) for row in run(store, scope, query)]


def last_batch_seq(store: ReadStore, scope: AppScope, session_id: str) -> int | None:
    """The highest seq of the session's stored batches (None: none): where sessionLive's cursor is after them."""
    events = scope.select("events", exp.alias_(exp.Max(this=col("seq", "e")), "seq"), alias="e").where(
        *_of_batches(scope, "e", session_id, None, None))
    chunks = scope.select("recordings", exp.alias_(exp.Max(this=col("seq", "r")), "seq"), alias="r").where(
        *_of_batches(scope, "r", session_id, None, None))
    seqs = [row["seq"] for row in run(store, scope, exp.union(events, chunks, distinct=False))]
    return max((int(seq) for seq in seqs if seq is not None), default=None)


def batch_contents(store: ReadStore, scope: AppScope, session_id: str, seqs: Sequence[int]) -> list[BatchContent]:
    """What these batches of the session stored, in seq order; a seq with nothing stored is left out."""
    return batches_of_sessions(store, scope, [(session_id, seq) for seq in seqs]).get(session_id, [])


def batches_of_sessions(store: ReadStore, scope: AppScope, batches: Sequence[tuple[str, int]],
                        within_ms: tuple[int, int] | None = None) -> dict[str, list[BatchContent]]:
    """What these (session id, seq) batches stored, by session, each session's in seq order: two queries however
    many sessions (live updates read every followed session's new batches at once). `within_ms`: the first and
    last times of their events, when the caller knows them (a live poll does, from the ledger): a store ordered by
    day then reads those days only."""
    keys = sorted(set(batches))
    if not keys:
        return {}

    def of_batches(alias: str) -> exp.Expr:
        # the session ids alone first: what ClickHouse's key and bloom filter narrow by (an OR per session read
        # every granule), then the (session, seq) pairs
        ids = sorted({s for s, _ in keys})
        sessions = exp.In(this=col("session_id", alias), expressions=[scope.param(s) for s in ids])
        pairs = exp.In(this=exp.Tuple(expressions=[col("session_id", alias), col("seq", alias)]),
                       expressions=[exp.Tuple(expressions=[scope.param(s), scope.param(q)]) for s, q in keys])
        return exp.and_(sessions, pairs)
    events = _events(scope, ListArgs()).where(of_batches("e")).order_by(col("session_id", "e"), col("seq", "e"),
                                                                        col("idx", "e"))
    if within_ms is not None:  # a second either side: the bound narrows the days read, and must never cut an event
        first, last = (datetime.fromtimestamp(ms / 1000, UTC) for ms in (within_ms[0] - 1000, within_ms[1] + 1000))
        events = events.where(exp.Between(this=col("ts", "e"), low=scope.param(first), high=scope.param(last)))
    chunks = scope.select("recordings", col("session_id", "r"), col("seq", "r"), col("data", "r"), alias="r"
                          ).where(of_batches("r"))
    found: dict[tuple[str, int], BatchContent] = {}
    for row in run(store, scope, events):
        key = (row["session_id"], int(row["seq"]))
        found.setdefault(key, BatchContent(key[1], [], [])).events.append(row)
    for chunk in run(store, scope, chunks):
        key = (chunk["session_id"], int(chunk["seq"]))
        decoded = _RAW_EVENTS.decode(store.recording_payload(chunk["data"]))
        found.setdefault(key, BatchContent(key[1], [], [])).recording = [orjson.Fragment(bytes(raw))
                                                                         for raw in decoded]
    by_session: dict[str, list[BatchContent]] = {}
    for (session_id, _), content in sorted(found.items()):
        by_session.setdefault(session_id, []).append(content)
    return by_session


def errors_in_batches(store: ReadStore, scope: AppScope, batches: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """The error events (occurrences) of these (session id, seq) batches, oldest first."""
    if not batches:
        return []
    sessions, seqs = sorted({s for s, _ in batches}), sorted({q for _, q in batches})
    query = _events(scope, ListArgs(), ("error",)).where(
        exp.In(this=col("session_id", "e"), expressions=[scope.param(s) for s in sessions]),
        exp.In(this=col("seq", "e"), expressions=[scope.param(q) for q in seqs])).order_by(
        *(k.expression.copy() for k in _EVENT_KEYS_ASC))
    wanted = set(batches)
    return [row for row in run(store, scope, query) if (row["session_id"], int(row["seq"])) in wanted]
