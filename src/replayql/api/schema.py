"""The GraphQL schema: root queries and mutations. Resolvers translate arguments and call the query layer."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig

from replayql.api.analytics import AggregateResult, WebVitalsResult, resolve_aggregate, resolve_web_vitals
from replayql.api.discovery import FilterEntity, FilterKey, TopValues
from replayql.api.filters import EventFilter, IssueFilter, SessionFilter, UserFilter, to_tree
from replayql.api.funnel import FUNNEL_HELP, FunnelResult, resolve_funnel
from replayql.api.inputs import IssueOrder, OrderDirection, SessionOrder, TimeRange, UserOrder
from replayql.api.paths import PathsResult, resolve_paths
from replayql.api.retention import RetentionResult, resolve_retention
from replayql.api.scalars import DateTime
from replayql.api.subscriptions import Subscription
from replayql.api.types import (
    EVENT_TYPES,
    ApiKeyInfo,
    Connection,
    CreatedApiKey,
    DeletionResult,
    Event,
    Info,
    Issue,
    IssueStatus,
    KeyScopeEnum,
    Session,
    User,
    Viewer,
    connection,
    event_from_row,
    selected_fields,
    selected_session_columns,
)
from replayql.ingest.wire import json_problem
from replayql.query import ast, discovery, entities
from replayql.query.compile import applied_query
from replayql.query.entities import ListArgs
from replayql.query.errors import BadUserInput, NotFound, UserError
from replayql.store import registry as reg

QUERY_HELP = """The filter language as a string, ANDed with `filter`; `appliedQuery` returns what ran.
Fields with operators (= != < <= > >= ~ contains, !~, ^= starts, $= ends, MATCHES regex, IN, EXISTS,
BETWEEN): `browser = Safari`, `durationMs >= 2m`, `country IN (DE, FR)`, `user.trait.plan IN (pro, team)`.
What happened: `visited(path = "/checkout")`, `network(url ~ "/api/orders", status >= 500)`,
`error(type = TypeError)`, `clicked(selector = "button#buy")`, `rageClick`, `console(level = error)`,
`custom("Checkout", properties.total > 100)`, `vital(name = LCP, value > 4s)`; sequences
`network(status >= 500) THEN rageClick WITHIN 10s`; counts `count(error) >= 3`; on users, issues and events
`session(...)` asks their sessions. AND, OR, NOT and parentheses. Mistakes answer 400 with
extensions.code BAD_QUERY and the position."""

_Query = Annotated[str | None, strawberry.argument(description=QUERY_HELP)]


class Forbidden(UserError):
    code = "FORBIDDEN"


def _require(info: Info, needed: reg.KeyScope) -> None:
    key = info.context.key
    if not key.scope.allows(needed):
        raise Forbidden(f"this API key has scope {key.scope.value}; this operation needs {needed.value}")


def _args(info: Info, filter: Any, query: str | None, time_range: TimeRange | None, order: Any, first: int,
          after: str | None) -> ListArgs:
    info.context.check_first(first)
    return ListArgs(
        filter=to_tree(filter), query=query, start=time_range.from_ if time_range else None,
        end=time_range.to if time_range else None, order=order.field.value if order else None,
        descending=order.direction == OrderDirection.DESC if order else True, first=first, after=after)


async def _list(info: Info, lister: Any, counter: Any, args: ListArgs, wrap: Any) -> Connection[Any]:
    page = await info.context.read(lister, args)

    async def total() -> int:
        return page.total if page.total is not None else int(await info.context.read(counter, args))

    found = connection([wrap(r) for r in page.rows], page.cursors, page.has_next, total)
    found.applied_query = applied_query(args.filter, args.query, info.context.parse)
    return found


def _selects_total(info: Info) -> bool:
    """Whether the request asks this connection for totalCount (fragments included)."""
    return any(part.name == "totalCount" for selected in selected_fields(info.selected_fields)
               for part in selected_fields(selected.selections))


@strawberry.type
class Query:
    @strawberry.field(description="Who is asking: the app, key and scopes of the API key used.")
    def viewer(self, info: Info) -> Viewer:
        key = info.context.key
        scopes = [s for s in KeyScopeEnum if key.scope.allows(reg.KeyScope(s.value))]
        return Viewer(app_id=strawberry.ID(key.app_id), key_id=strawberry.ID(key.id), scopes=scopes)

    @strawberry.field
    async def session(self, info: Info, id: strawberry.ID) -> Session | None:
        return await info.context.session(str(id), selected_session_columns(info, connection=False))

    @strawberry.field(description="Sessions that overlap the time range and match the filter, newest first.")
    async def sessions(self, info: Info, filter: SessionFilter | None = None, query: _Query = None,
                       time_range: TimeRange | None = None, order_by: SessionOrder | None = None, first: int = 50,
                       after: str | None = None) -> Connection[Session]:
        args = _args(info, filter, query, time_range, order_by, first, after)
        lister = partial(entities.list_sessions, columns=selected_session_columns(info),
                         count=_selects_total(info))
        return await _list(info, lister, entities.count_sessions, args, Session.from_row)

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        return await info.context.loaders.user.load(str(id))

    @strawberry.field(description="Identified users active in the time range, most recently seen first.")
    async def users(self, info: Info, filter: UserFilter | None = None, query: _Query = None,
                    time_range: TimeRange | None = None, order_by: UserOrder | None = None, first: int = 50,
                    after: str | None = None) -> Connection[User]:
        args = _args(info, filter, query, time_range, order_by, first, after)
        return await _list(info, entities.list_users, entities.count_users, args, User.from_row)

    @strawberry.field
    async def issue(self, info: Info, id: strawberry.ID) -> Issue | None:
        return await info.context.loaders.issue.load(str(id))

    @strawberry.field(description="Error issues that occurred in the time range, most recently seen first.")
    async def issues(self, info: Info, filter: IssueFilter | None = None, query: _Query = None,
                     time_range: TimeRange | None = None, order_by: IssueOrder | None = None, first: int = 50,
                     after: str | None = None) -> Connection[Issue]:
        args = _args(info, filter, query, time_range, order_by, first, after)
        return await _list(info, entities.list_issues, entities.count_issues, args, Issue.from_row)

    @strawberry.field(description="Events of every session, newest first.")
    async def events(self, info: Info, filter: EventFilter | None = None, query: _Query = None,
                     time_range: TimeRange | None = None, first: int = 100, after: str | None = None
                     ) -> Connection[Event]:
        args = _args(info, filter, query, time_range, None, first, after)
        return await _list(info, entities.list_events, entities.count_events, args, event_from_row)

    aggregate: AggregateResult = strawberry.field(resolver=resolve_aggregate, description=(
        "Measures over sessions, users, issues or events, by dimensions and time buckets. Errors: QUERY_TIMEOUT "
        "past the time limit, TOO_MANY_CELLS past the cell cap; never a partial table."))
    retention: RetentionResult = strawberry.field(resolver=resolve_retention, description=(
        "Cohorts by the first occurrence of a start condition (first seen by default), and the share that "
        "returned in each day, week or month after; optionally by a dimension."))
    paths: PathsResult = strawberry.field(resolver=resolve_paths, description=(
        "The most common page (or event) sequences from a start point or to an end point: top edges per step, "
        "sessions and drop-off per step."))
    funnel: FunnelResult = strawberry.field(resolver=resolve_funnel, description=FUNNEL_HELP)
    web_vitals: WebVitalsResult = strawberry.field(resolver=resolve_web_vitals, description=(
        "Per Core Web Vital (LCP, FCP, INP, CLS, TTFB): p75 and the good / needs-improvement / poor shares by the "
        "standard thresholds, optionally by page path, browser or device; `query` filters the vital events."))

    @strawberry.field(description="Discovery for filter UIs: every key a filter on `entity` can name, with its "
                                  "type, including the trait keys, custom event names and property keys seen in "
                                  "this app's data (most common first).")
    async def filter_keys(self, info: Info, entity: FilterEntity) -> list[FilterKey]:
        keys = await info.context.read(discovery.filter_keys, entity.vocabulary)
        return [FilterKey.of(k) for k in keys]

    @strawberry.field(description="The most common values of a key (`browser`, `user.trait.plan` on users as "
                                  "`trait.plan`, `properties.sku` on events) among the rows matching `query`.")
    async def top_values(self, info: Info, entity: FilterEntity, key: str, query: _Query = None, limit: int = 10
                         ) -> TopValues:
        found = await info.context.read(discovery.top_values, entity.vocabulary, key, query, limit)
        return TopValues.of(found)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create or update a user's profile. Traits merge into the stored ones; a "
                                     "null trait value removes that trait.")
    async def identify_user(self, info: Info, id: strawberry.ID, name: str | None = None, email: str | None = None,
                            traits: JSON | None = None) -> User:
        _require(info, reg.KeyScope.WRITE)
        ctx = info.context
        limits = ctx.services.settings.limits
        if traits is not None and not isinstance(traits, dict):
            raise UserError("`traits` must be a JSON object")
        if traits and (problem := json_problem(traits, limits)):
            raise BadUserInput(f"`traits` {problem}")
        for field_name, value in (("id", str(id)), ("name", name), ("email", email)):
            if value is not None and not 0 < len(value) <= limits.max_string_chars:
                raise BadUserInput(f"`{field_name}` must be 1 to {limits.max_string_chars} characters")
        await ctx.services.writer.call(
            lambda store: store.identify_user(ctx.app_id, str(id), name, email, traits or {}))
        user = await ctx.read(entities.users_by_id, [str(id)])
        return User.from_row(user[str(id)])

    @strawberry.mutation
    async def update_issue(self, info: Info, id: strawberry.ID, status: IssueStatus) -> Issue:
        _require(info, reg.KeyScope.WRITE)
        ctx = info.context
        found = await ctx.services.writer.call(
            lambda store: store.set_issue_status(ctx.app_id, str(id), status.value))
        if not found:
            raise NotFound(f"no issue {id} in this app")
        issue = await ctx.read(entities.issues_by_id, [str(id)])
        return Issue.from_row(issue[str(id)])

    @strawberry.mutation(description="Remove every session, event, recording and error of the user, and drop the "
                                     "user's future data at ingestion.")
    async def delete_user(self, info: Info, id: strawberry.ID) -> DeletionResult:
        _require(info, reg.KeyScope.WRITE)
        ctx = info.context
        counts = await ctx.services.writer.delete_user(ctx.app_id, str(id))
        remaining = await ctx.read(entities.count_sessions, ListArgs(
            filter=ast.Compare("userId", "=", ast.Str(str(id)))))
        return DeletionResult(user_id=id, deleted_sessions=counts.sessions, deleted_events=counts.events,
                              deleted_recordings=counts.recordings, complete=remaining == 0)

    @strawberry.mutation(description="Create an API key for this app (admin scope). The secret is returned once.")
    async def create_api_key(self, info: Info, scope: KeyScopeEnum, name: str | None = None) -> CreatedApiKey:
        _require(info, reg.KeyScope.ADMIN)
        try:
            reg.check_key_name(name)
        except reg.RegistryError as exc:
            raise BadUserInput(str(exc)) from None
        registry = info.context.services.registry
        key, secret = await run_in_threadpool(registry.create_key, info.context.app_id, reg.KeyScope(scope.value), name)
        return CreatedApiKey(key=_key_info(key), secret=secret)

    @strawberry.mutation(description="Revoke an API key of this app (admin scope); it stops working at once.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> bool:
        _require(info, reg.KeyScope.ADMIN)
        registry = info.context.services.registry
        key = await run_in_threadpool(registry.get_key, str(id))
        if key is None or key.app_id != info.context.app_id:
            raise NotFound(f"no API key {id} in this app")
        return await run_in_threadpool(registry.revoke_key, str(id))


def _key_info(key: reg.ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(id=strawberry.ID(key.id), scope=KeyScopeEnum(key.scope.value), name=key.name,
                      created_at=key.created_at, revoked_at=key.revoked_at)


schema = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, types=EVENT_TYPES,
                           config=StrawberryConfig(scalar_map={datetime: DateTime}))
