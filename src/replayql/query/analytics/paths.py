"""`paths`: the most common sequences of pages (or pages and custom events) from a start point or to an end
point, as edges between steps with the sessions that took them.

- Nodes: PAGES mode reads page views, a node being the path with ids collapsed (`/product/:id`); EVENTS mode
  reads page views and custom events, as `page:<path pattern>` and `custom:<name>`. A page without a path (an
  `about:blank`) is `(no path)`. Other kinds (clicks, requests, logs) are not steps; filter sessions by them
  with `query`.
- Per session, nodes in event order (ts, seq, idx). From a start (`visited(path = "/")`): the path begins at the
  session's first node matching it; to an end: the path finishes at its last node matching it and steps count
  backwards (step 1 is the node before the end); with neither, the path begins at the session's first node.
- Consecutive equal nodes collapse (a reload, or /product/1 then /product/2, is not a step).
- Step k's edges join the nodes at steps k - 1 and k (from the start: earlier to later; to the end: step k to
  step k - 1, still in time order). Per step: the sessions whose path reaches it, and those whose path stops
  there (from a start: goes no further; to an end: nothing came before).
- Sessions: those that started in `timeRange` and match the filters, whole (events after `to` included).

One SQL chain of window functions (row_number, a one-row frame for the previous node, MIN/MAX of the anchor),
the same text on both stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from replayql.config import AnalyticsLimits
from replayql.query import ast
from replayql.query.analytics.occurrences import event_condition, sessions_in
from replayql.query.errors import BadUserInput
from replayql.query.lists import ReadStore, run
from replayql.query.sql import AppScope, col
from replayql.store.dialect import PathPattern

MAX_STEPS = 10
MAX_LIMIT = 1000
NO_PATH = "(no path)"
NODE_KINDS = {"PAGES": ("page",), "EVENTS": ("page", "custom")}
CONDITION_KINDS = {"PAGES": ("visited",), "EVENTS": ("visited", "custom")}


@dataclass(frozen=True)
class PathsRequest:
    nodes: str = "PAGES"
    start_event: str | None = None
    end_event: str | None = None
    steps: int = 5
    limit: int = 50
    start: datetime | None = None
    end: datetime | None = None
    query: str | None = None
    session_filter: ast.Condition | None = None


@dataclass(frozen=True)
class Edge:
    step: int
    source: str
    target: str
    count: int


@dataclass(frozen=True)
class Step:
    step: int
    sessions: int
    drop_off: int


@dataclass
class Paths:
    direction: str  # FROM_START or TO_END
    steps: list[Step]
    edges: list[Edge]
    truncated: bool
    edge_count: int


def paths(store: ReadStore, scope: AppScope, request: PathsRequest, limits: AnalyticsLimits) -> Paths:
    _validate(request)
    scope = AppScope(scope.app_id, scope.target, parse=scope.parse)  # fresh parameters per query
    backward = request.end_event is not None
    chain = _chain(scope, request, backward)
    counted = exp.select("step", exp.alias_(exp.Count(this=exp.Star()), "n")).from_("path").group_by(col("step"))
    reached = {int(r["step"]): int(r["n"]) for r in run(store, scope, _with(counted, chain), limits.timeout_s)}
    source, target = ("node", "other") if backward else ("other", "node")
    n = exp.Count(this=exp.Star())
    edges = exp.select("step", exp.alias_(col(source), "source"), exp.alias_(col(target), "target"),
                       exp.alias_(n, "n"), exp.alias_(exp.Window(this=n.copy()), "edges")).from_("path").where(
        exp.Between(this=col("step"), low=exp.Literal.number(1), high=exp.Literal.number(request.steps))).group_by(
        col("step"), col(source), col(target)).order_by(
        exp.Ordered(this=col("n"), desc=True), col("step"), col("source"), col("target")).limit(request.limit)
    found = run(store, scope, _with(edges, chain), limits.timeout_s)
    total = int(found[0]["edges"]) if found else 0
    steps = [Step(k, reached.get(k, 0), reached.get(k, 0) - reached.get(k + 1, 0)) for k in range(request.steps + 1)]
    return Paths("TO_END" if backward else "FROM_START", steps,
                 [Edge(int(r["step"]), r["source"], r["target"], int(r["n"])) for r in found],
                 total > len(found), total)


def _validate(request: PathsRequest) -> None:
    if request.nodes not in NODE_KINDS:
        raise BadUserInput(f"unknown nodes {request.nodes}; use PAGES or EVENTS")
    if not 1 <= request.steps <= MAX_STEPS:
        raise BadUserInput(f"`steps` must be between 1 and {MAX_STEPS}")
    if not 1 <= request.limit <= MAX_LIMIT:
        raise BadUserInput(f"`limit` must be between 1 and {MAX_LIMIT}")
    if request.start_event is not None and request.end_event is not None:
        raise BadUserInput("give `start` or `end`, not both: paths run forward from a start or back from an end")


def _with(query: exp.Select, chain: list[tuple[str, exp.Select]]) -> exp.Select:
    for name, cte in chain:
        query = query.with_(name, as_=cte.copy())
    return query


def _node(nodes: str) -> exp.Expr:
    page = exp.func("coalesce", PathPattern(this=col("path", "e")), exp.Literal.string(NO_PATH))
    if nodes == "PAGES":
        return page
    return exp.Case(ifs=[exp.If(this=col("kind", "e").eq(exp.Literal.string("page")),
                                true=exp.DPipe(this=exp.Literal.string("page:"), expression=page))],
                    default=exp.DPipe(this=exp.Literal.string("custom:"),
                                      expression=exp.func("coalesce", col("name", "e"), exp.Literal.string(""))))


def _chain(scope: AppScope, request: PathsRequest, backward: bool) -> list[tuple[str, exp.Select]]:
    """The CTEs up to `path` (sid, step, node, other): each session's collapsed path from its anchor, `other`
    being the node at the step before (or, to an end, after) in step order."""
    condition = request.end_event if backward else request.start_event
    role = "end" if backward else "start"
    hit = (event_condition(scope, condition, "e", role, CONDITION_KINDS[request.nodes]) if condition is not None
           else exp.true())
    sessions = sessions_in(scope, request.session_filter, request.query, request.start, request.end)
    nodes = scope.select("events", exp.alias_(col("session_id", "e"), "sid"), col("ts", "e"), col("seq", "e"),
                         col("idx", "e"), exp.alias_(_node(request.nodes), "node"), exp.alias_(hit, "hit"),
                         alias="e").where(exp.In(this=col("kind", "e"), expressions=[
                             exp.Literal.string(k) for k in NODE_KINDS[request.nodes]])).where(
        exp.In(this=col("session_id", "e"), query=exp.Subquery(this=sessions)))
    numbered = exp.select("sid", "node", "hit", exp.alias_(_window(exp.RowNumber(), "ts", "seq", "idx"), "rn")
                          ).from_("nodes")
    hit_rank = exp.Case(ifs=[exp.If(this=col("hit"), true=col("rn"))])
    if condition is None:
        anchor: exp.Expr = exp.Literal.number(1)
    else:
        found = exp.Max(this=hit_rank) if backward else exp.Min(this=hit_rank)
        anchor = exp.Window(this=found, partition_by=[col("sid")])
    anchored = exp.select("sid", "node", "rn", exp.alias_(anchor, "anchor"),
                          exp.alias_(_previous("node", "rn"), "prev")).from_("numbered")
    first = col("anchor") if not backward else exp.Literal.number(1)
    within = (exp.LTE if backward else exp.GTE)(this=col("rn"), expression=col("anchor"))
    kept = exp.select("sid", "node", exp.alias_(exp.Sub(this=_window(exp.RowNumber(), "rn", descending=backward),
                                                        expression=exp.Literal.number(1)), "step")).from_(
        "anchored").where(within).where(exp.or_(col("rn").eq(first), exp.NEQ(this=col("prev"),
                                                                               expression=col("node"))))
    path = exp.select("sid", "step", "node", exp.alias_(_previous("node", "step"), "other")).from_("kept").where(
        exp.LTE(this=col("step"), expression=exp.Literal.number(request.steps + 1)))
    return [("nodes", nodes), ("numbered", numbered), ("anchored", anchored), ("kept", kept), ("path", path)]


def _window(function: exp.Expr, *order: str, descending: bool = False) -> exp.Window:
    ordered = [exp.Ordered(this=col(name), desc=descending) for name in order]
    return exp.Window(this=function, partition_by=[col("sid")], order=exp.Order(expressions=ordered))


def _previous(name: str, order: str) -> exp.Window:
    """The value of `name` on the row before in `order` within the session: a one-row frame (ClickHouse has no
    plain `lag`); outside it, NULL on DuckDB and an empty string on ClickHouse, never compared (see `kept`)."""
    frame = exp.WindowSpec(kind="ROWS", start="1", start_side="PRECEDING", end="1", end_side="PRECEDING")
    return exp.Window(this=exp.Max(this=col(name)), partition_by=[col("sid")],
                      order=exp.Order(expressions=[exp.Ordered(this=col(order))]), spec=frame)

