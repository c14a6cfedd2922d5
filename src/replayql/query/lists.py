"""Paged lists and point lookups: one query per list, never one per row."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlglot import exp

from replayql.query.errors import BadUserInput, QueryTimeout
from replayql.query.pagination import SortKey, after_condition, decode_cursor, encode_cursor, order_by
from replayql.query.sql import AppScope, col
from replayql.store.base import StoreTimeout
from replayql.store.dialect import sql


class ReadStore(Protocol):
    """What the query layer reads through (store.base.Store has it all)."""

    dialect: str
    # reading rows whole costs more than finding them: find a page by its sort keys first, then read its rows
    # (see fetch_page)
    narrow_pages: bool

    def fetch_dicts(self, query: str, params: dict[str, Any], timeout_s: float | None = None
                    ) -> list[dict[str, Any]]: ...

    def recording_payload(self, stored: Any) -> bytes: ...


@dataclass
class Page:
    rows: list[dict[str, Any]]
    cursors: list[str]
    has_next: bool
    total: int | None = None  # every match, when the page's statement counted them (fetch_page's `count`)


def check_page_size(first: int | None, cap: int) -> None:
    if first is None:  # GraphQL lets a client send null for an argument that has a default
        raise BadUserInput("`first` must be a number; leave it out for the default page size")
    if first < 0:
        raise BadUserInput(f"`first` must be >= 0; got {first}")
    if first > cap:
        raise BadUserInput(f"`first` is {first}; the maximum page size is {cap}. "
                           "Page through the rest with `after: pageInfo.endCursor`.")


def run(store: ReadStore, scope: AppScope, query: exp.Expr, timeout_s: float | None = None
        ) -> list[dict[str, Any]]:
    """The query's rows, within `timeout_s` (else the scope's limit): a later answer is refused too, so the limit
    means the same on every store."""
    limit = timeout_s if timeout_s is not None else scope.timeout_s
    started = time.monotonic()
    try:
        rows = store.fetch_dicts(sql(query, store.dialect), used_params(scope, query), limit)
    except StoreTimeout:
        rows = None
    if limit is not None and (rows is None or time.monotonic() - started > limit):
        raise QueryTimeout(f"the query took longer than the {limit:g} s limit; narrow the time range or the "
                           "filter")
    return rows or []


def used_params(scope: AppScope, query: exp.Expr) -> dict[str, Any]:
    """The bound values this query refers to: a scope may have bound values that a condition then folded away
    (an empty IN list), and DuckDB refuses values it is given but not asked for."""
    used = {p.name for p in query.find_all(exp.Placeholder)}
    return {name: value for name, value in scope.params.values.items() if name in used}


def fetch_page(store: ReadStore, scope: AppScope, query: exp.Select, keys: list[SortKey], first: int,
               after: str | None, reread: Callable[[list[Any]], exp.Select] | None = None, count: bool = False
               ) -> Page:
    """`first` rows after the cursor; one extra row is read to know whether there is a next page.

    On a store that folds summaries when it reads (`narrow_pages`), the page is found first by its sort keys
    alone, which folds only the columns the filter and order need, and then `reread` reads only those rows
    whole, by their ids (the last sort key). `count`: that first statement of a first page also counts every
    match (`Page.total`), so a costly filter is evaluated once for the page and its total."""
    counted = count and not after
    if after:
        query = query.where(after_condition(keys, decode_cursor(after, keys), scope))
    keyed = [exp.alias_(key.expression.copy(), f"_k{i}") for i, key in enumerate(keys)]
    if reread is not None and store.narrow_pages:
        narrow = order_by(query.copy().select(*keyed, append=False), keys).limit(first + 1)
        if counted:
            narrow = narrow.select(exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "_total"))
        found = run(store, scope, narrow)
        ids = [row[f"_k{len(keys) - 1}"] for row in found[:first]]
        rows = run(store, scope, order_by(reread(ids).select(*keyed), keys)) if ids else []
        has_next = len(found) > first
        if counted:
            return _page(rows, keys, has_next, int(found[0]["_total"]) if found else 0)
    else:
        if store.narrow_pages and keys[0].kind == "time":
            query = query.where(_lead_bound(query, keys, first))
        rows = run(store, scope, order_by(query.select(*keyed), keys).limit(first + 1))
        has_next = len(rows) > first
        rows = rows[:first]
    return _page(rows, keys, has_next)


def _page(rows: list[dict[str, Any]], keys: list[SortKey], has_next: bool, total: int | None = None) -> Page:
    cursors = [encode_cursor(tuple(row.pop(f"_k{i}") for i in range(len(keys)))) for row in rows]
    return Page(rows, cursors, has_next, total)


def _lead_bound(query: exp.Select, keys: list[SortKey], first: int) -> exp.Expr:
    """The page's rows all reach its last row's first key: `ts >= (the oldest ts of the page, found by reading
    that one column)`. A store that reads rows whole reads then only the granules of that time range (events are
    kept in time order by day within each kind), where the page's sort would read every sort column of every match."""
    lead = keys[0]  # the n-th greatest value of the first key does not depend on how the others break ties
    page = order_by(query.copy().select(exp.alias_(lead.expression.copy(), "_lead"), append=False), [lead])
    edge = (exp.Min if lead.descending else exp.Max)(this=col("_lead"))
    bound = exp.Subquery(this=exp.select(edge).from_(exp.Subquery(this=page.limit(first + 1), alias="_page")))
    return (exp.GTE if lead.descending else exp.LTE)(this=lead.expression.copy(), expression=bound)


def count(store: ReadStore, scope: AppScope, query: exp.Select) -> int:
    counted = exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(exp.Subquery(this=query, alias="counted"))
    return int(run(store, scope, counted)[0]["n"])


def by_keys(store: ReadStore, scope: AppScope, query: exp.Select, key: str, values: Sequence[str]
            ) -> dict[str, dict[str, Any]]:
    """Point lookups for a DataLoader: every value in one query."""
    if not values:
        return {}
    query = query.where(exp.In(this=col(key), expressions=[scope.param(v) for v in values]))
    return {row[key]: row for row in run(store, scope, query)}
