"""GraphQL input, types and resolver for `paths`."""

from __future__ import annotations

import enum

import strawberry

from replayql.api.filters import SessionFilter, to_tree
from replayql.api.inputs import TimeRange
from replayql.api.types import Info
from replayql.query.analytics import paths as pth
from replayql.query.compile import applied_query


@strawberry.enum(description="PAGES: page views, each its path with ids collapsed (`/product/:id`). EVENTS: page "
                              "views and custom events, as `page:/product/:id` and `custom:Signup`.")
class PathNodes(enum.Enum):
    PAGES = "PAGES"
    EVENTS = "EVENTS"


@strawberry.enum
class PathDirection(enum.Enum):
    FROM_START = "FROM_START"
    TO_END = "TO_END"


@strawberry.input
class PathsInput:
    nodes: PathNodes = PathNodes.PAGES
    start: str | None = strawberry.field(default=None, description=(
        'Paths from the first event of each session matching this condition: `visited(path = "/")` (and in '
        'EVENTS mode `custom("Signup")`), several joined with OR. Without `start` or `end`: from the session\'s '
        "first node."))
    end: str | None = strawberry.field(default=None, description=(
        "Paths that lead to the last event of each session matching this condition, steps counted backwards."))
    steps: int = strawberry.field(default=5, description=f"Steps after the start (or before the end), at most "
                                                         f"{pth.MAX_STEPS}.")
    limit: int = strawberry.field(default=50, description=f"The top edges by sessions, at most {pth.MAX_LIMIT}.")
    time_range: TimeRange | None = strawberry.field(default=None, description="Sessions that started in it.")
    query: str | None = strawberry.field(default=None, description="The filter language on sessions.")
    session_filter: SessionFilter | None = None


@strawberry.type
class PathEdge:
    step: int = strawberry.field(description="From a start: the edge from step - 1 to step; to an end: from step "
                                             "to step - 1 (step 0 is the end).")
    from_: str = strawberry.field(name="from")
    to: str
    count: int = strawberry.field(description="Sessions that took it.")


@strawberry.type
class PathStep:
    step: int
    sessions: int = strawberry.field(description="Sessions whose path reaches this step.")
    drop_off: int = strawberry.field(description="Of those, the sessions whose path stops here: from a start, "
                                                 "they go no further; to an end, nothing came before.")


@strawberry.type
class PathsResult:
    direction: PathDirection
    steps: list[PathStep] = strawberry.field(description="Step 0 (the start, or the end) to `steps`.")
    edges: list[PathEdge] = strawberry.field(description="Most sessions first, then by step, from and to.")
    truncated: bool = strawberry.field(description="True when `limit` left edges out.")
    edge_count: int = strawberry.field(description="Distinct edges before `limit`.")
    applied_query: str | None


async def resolve_paths(info: Info, input: PathsInput) -> PathsResult:
    typed = to_tree(input.session_filter)
    window = input.time_range
    request = pth.PathsRequest(nodes=input.nodes.value, start_event=input.start, end_event=input.end,
                               steps=input.steps, limit=input.limit, start=window.from_ if window else None,
                               end=window.to if window else None, query=input.query, session_filter=typed)
    found = await info.context.read(pth.paths, request, info.context.services.settings.analytics)
    return PathsResult(
        direction=PathDirection(found.direction),
        steps=[PathStep(step=s.step, sessions=s.sessions, drop_off=s.drop_off) for s in found.steps],
        edges=[PathEdge(step=e.step, from_=e.source, to=e.target, count=e.count) for e in found.edges],
        truncated=found.truncated, edge_count=found.edge_count,
        applied_query=applied_query(typed, input.query, info.context.parse))
