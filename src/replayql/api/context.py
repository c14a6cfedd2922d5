"""Per-request context: the caller's key and app, the store, and DataLoaders that batch nested reads."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, TypeVar

from graphql import DocumentNode, GraphQLError
from starlette.concurrency import run_in_threadpool
from strawberry.dataloader import DataLoader

from replayql.api.live_hub import LiveHub
from replayql.api.metrics import Metrics
from replayql.api.rate_limits import TokenBuckets, token_buckets
from replayql.api.types import Connection, Event, Issue, Session, User, connection, event_from_row
from replayql.config import Settings
from replayql.ingest.retention import RetentionSchedule
from replayql.ingest.writer import IngestWriter
from replayql.lru import Lru, cache_size
from replayql.query import ast, entities, language
from replayql.query.lists import Page, check_page_size
from replayql.query.pagination import encode_cursor
from replayql.query.sql import AppScope
from replayql.store.base import Registry, Store
from replayql.store.registry import ApiKey

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

R = TypeVar("R")
W = TypeVar("W")
# A GraphQL document parsed and validated: the document, or None when it cannot run, and the errors found.
Prepared = tuple[DocumentNode | None, tuple[GraphQLError, ...]]


@dataclass
class Services:
    """What the server holds for its whole life."""

    settings: Settings
    store: Store
    registry: Registry
    writer: IngestWriter
    metrics: Metrics = field(default_factory=Metrics)
    retention: RetentionSchedule | None = None  # with Settings.retention_days
    _known_apps: set[str] = field(default_factory=set)
    _origins: Lru[str, tuple[float, tuple[str, ...]]] = field(init=False)
    # Parsed and validated GraphQL documents by their text (api.graphql_http): used on the event loop only.
    documents: Lru[str, Prepared] = field(init=False)
    query_strings: _lru_cache_wrapper[ast.Condition] = field(init=False)  # the filter language's parser, cached
    graphql_rate: TokenBuckets | None = field(init=False)  # per API key id; None: no limit
    ingest_rate: TokenBuckets | None = field(init=False)  # per app id; None: no limit
    live: LiveHub = field(init=False)  # the store's changes, for subscriptions; polls only while any exist

    def __post_init__(self) -> None:
        caches, rate = self.settings.caches, self.settings.rate
        self.live = LiveHub(self.store, self.settings.live, self.metrics, self.scope, self.registry)
        self._origins = Lru(caches.allowed_origins)
        self.documents = Lru(caches.documents)
        self.query_strings = lru_cache(maxsize=caches.parsed_strings)(language.parse)  # a dashboard sends the same ones
        self.graphql_rate = token_buckets(rate.graphql_per_key_per_s, rate.graphql_burst)
        self.ingest_rate = token_buckets(rate.ingest_per_app_per_s, rate.ingest_burst)

    def scope(self, app_id: str) -> AppScope:
        """A fresh tenant scope for one query: the app guard is added to every table it touches."""
        return AppScope(app_id, self.store, self.settings.query.timeout_s, self.query_strings)

    def knows_app(self, app_id: str) -> bool:
        """Known to exist without a registry read (safe on the event loop)."""
        return app_id in self._known_apps

    def app_exists(self, app_id: str) -> bool:
        """Apps are never deleted, so one that exists is remembered; an unknown one is looked up every time, so
        an app created meanwhile (by the CLI) is accepted at once. Saves a registry read per ingest request."""
        if app_id not in self._known_apps and self.registry.get_app(app_id) is not None:
            self._known_apps.add(app_id)
        return app_id in self._known_apps

    def cached_origins(self, app_id: str) -> tuple[str, ...] | None:
        """The app's allowed origins if read within the last few seconds (safe on the event loop), else None."""
        cached = self._origins.get(app_id)
        return cached[1] if cached is not None and time.monotonic() - cached[0] < ORIGINS_TTL_S else None

    def allowed_origins(self, app_id: str) -> tuple[str, ...]:
        """Read from the registry and cached briefly, so a change made with the CLI applies within seconds."""
        origins = self.registry.allowed_origins(app_id)
        self._origins.put(app_id, (time.monotonic(), origins))
        return origins

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        """Every structure the server keeps in memory that could grow with traffic: (entries now, bound)."""
        cached = {"api.allowed_origins": (len(self._origins), self._origins.size),
                  "api.known_apps": (len(self._known_apps), MAX_KNOWN_APPS),
                  "graphql.documents": (len(self.documents), self.documents.size),
                  "query.parsed_strings": cache_size(self.query_strings)}
        for name, buckets in (("api.rate_graphql_keys", self.graphql_rate), ("api.rate_ingest_apps", self.ingest_rate)):
            if buckets is not None:
                cached[name] = buckets.cache_size()
        return cached | self.writer.cache_sizes() | self.store.cache_sizes()


ORIGINS_TTL_S = 5.0
MAX_KNOWN_APPS = 100_000  # apps that exist (only the CLI creates them): bounded by the registry, not by traffic


class Loaders:
    def __init__(self, ctx: Context) -> None:
        # keys: (session id, the columns to read, None for all): one query per set of columns in the request
        self.session: DataLoader[tuple[str, tuple[str, ...] | None], Session | None] = DataLoader(
            self._sessions(ctx))
        self.user: DataLoader[str, User | None] = DataLoader(
            lambda ids: ctx.by_ids(entities.users_by_id, ids, User.from_row))
        self.issue: DataLoader[str, Issue | None] = DataLoader(
            lambda ids: ctx.by_ids(entities.issues_by_id, ids, Issue.from_row))
        self.issue_stats: DataLoader[str, dict[str, Any]] = DataLoader(self._issue_stats(ctx))
        # keys: (session id, kinds, first, after) and (user id, first, after, columns)
        self.session_events: DataLoader[tuple[Any, ...], Page] = DataLoader(
            self._pages_by_owner(ctx, entities.events_of_sessions))
        self.user_sessions: DataLoader[tuple[Any, ...], Page] = DataLoader(
            self._pages_by_owner(ctx, entities.sessions_of_users))

    @staticmethod
    def _sessions(ctx: Context) -> Callable[[list[tuple[str, tuple[str, ...] | None]]],
                                            Awaitable[list[Session | None]]]:
        async def load(keys: list[tuple[str, tuple[str, ...] | None]]) -> list[Session | None]:
            found: dict[tuple[str, tuple[str, ...] | None], Session | None] = {}
            for columns in {columns for _, columns in keys}:
                ids = [i for i, c in keys if c == columns]
                sessions = await ctx.by_ids(partial(entities.sessions_by_id, columns=columns), ids, Session.from_row)
                found.update(((i, columns), s) for i, s in zip(ids, sessions, strict=True))
            return [found[k] for k in keys]
        return load

    @staticmethod
    def _issue_stats(ctx: Context) -> Callable[[list[str]], Awaitable[list[dict[str, Any]]]]:
        empty = {"session_count": 0, "user_count": 0, "releases": []}

        async def load(ids: list[str]) -> list[dict[str, Any]]:
            found = await ctx.read(entities.issue_stats, ids)
            return [found.get(i, empty) for i in ids]
        return load

    @staticmethod
    def _pages_by_owner(ctx: Context, reader: Callable[..., dict[str, Page]]
                        ) -> Callable[[list[tuple[Any, ...]]], Awaitable[list[Page]]]:
        """Keys are (owner id, *arguments): one query per distinct arguments in the request, not one per owner
        (reader(owner ids, *arguments) pages every owner at once)."""
        async def load(keys: list[tuple[Any, ...]]) -> list[Page]:
            groups: dict[tuple[Any, ...], list[str]] = {}
            for owner, *arguments in keys:
                groups.setdefault(tuple(arguments), []).append(owner)
            results: dict[tuple[Any, ...], Page] = {}
            for shared, owners in groups.items():
                pages = await ctx.read(reader, owners, *shared)
                for owner in owners:
                    results[(owner, *shared)] = pages.get(owner, Page([], [], False))
            return [results[k] for k in keys]
        return load


@dataclass
class Context:
    services: Services
    key: ApiKey
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    def fresh_loaders(self) -> None:
        """Forget what the loaders read: a subscription's context lives on, and each update must read anew."""
        self.loaders = Loaders(self)

    @property
    def app_id(self) -> str:
        return self.key.app_id

    def scope(self) -> AppScope:
        return self.services.scope(self.app_id)

    @property
    def parse(self) -> Callable[[str], ast.Condition]:
        """The filter language's parser, remembering the server's latest query strings."""
        return self.services.query_strings

    async def read(self, fn: Callable[..., R], *args: Any) -> R:
        """Run a query-layer reader in a worker thread, so the event loop never waits on the store."""
        return await run_in_threadpool(fn, self.services.store, self.scope(), *args)

    async def by_ids(self, fn: Callable[..., dict[str, dict[str, Any]]], ids: Sequence[str],
                     wrap: Callable[[dict[str, Any]], W]) -> list[W | None]:
        rows = await self.read(fn, list(ids))
        return [wrap(rows[i]) if i in rows else None for i in ids]

    async def session(self, session_id: str, columns: tuple[str, ...] | None = None) -> Session | None:
        """One session, read with these columns (all by default), batched with the request's other lookups."""
        return await self.loaders.session.load((session_id, columns))

    def check_first(self, first: int) -> None:
        check_page_size(first, self.services.settings.max_page_size)

    async def session_events(self, session_id: str, kinds: tuple[str, ...], first: int, after: str | None
                             ) -> Connection[Event]:
        self.check_first(first)
        page = await self.loaders.session_events.load((session_id, kinds, first, after))
        return connection([event_from_row(r) for r in page.rows], page.cursors, page.has_next,
                          lambda: self.read(entities.count_events, entities.ListArgs(
                              filter=_event_owner_filter("sessionId", session_id, kinds))))

    async def user_sessions(self, user: User, first: int, after: str | None, columns: tuple[str, ...] | None
                            ) -> Connection[Session]:
        self.check_first(first)
        if not user.identified:
            found = await self.session(str(user._anonymous_session))
            nodes = [found] if found is not None and not after and first > 0 else []
            cursors = ["anonymous"] * len(nodes)
            return connection(nodes, cursors, False, _constant(len(nodes)))
        page = await self.loaders.user_sessions.load((str(user.id), first, after, columns))
        return connection([Session.from_row(r) for r in page.rows], page.cursors, page.has_next,
                          _constant(user.session_count))

    async def issue_occurrences(self, issue_id: str, first: int, after: str | None) -> Connection[Any]:
        self.check_first(first)
        pages = await self.read(entities.events_of_issues, [issue_id], first, after)
        page = pages.get(issue_id, Page([], [], False))
        return connection([event_from_row(r) for r in page.rows], page.cursors, page.has_next,
                          lambda: self.read(entities.count_events, entities.ListArgs(
                              filter=_event_owner_filter("issueId", issue_id, ("error",)))))

    async def issue_sessions(self, issue_id: str, first: int, after: str | None) -> Connection[Session]:
        self.check_first(first)
        pages = await self.read(entities.sessions_of_issues, [issue_id], first, after)
        page = pages.get(issue_id, Page([], [], False))
        stats = self.loaders.issue_stats
        return connection([Session.from_row(r) for r in page.rows], page.cursors, page.has_next,
                          lambda: _session_count(stats, issue_id))

    async def live_cursor(self, session_id: str) -> str | None:
        seq = await self.read(entities.last_batch_seq, session_id)
        return None if seq is None else encode_cursor((seq,))

    async def recording(self, session_id: str, first: int, after: str | None) -> Connection[Any]:
        self.check_first(first)
        events, offset, has_next = await self.read(entities.recording_events, session_id, first, after)
        cursors = [entities.recording_cursor(offset + i) for i in range(len(events))]
        return connection(events, cursors, has_next, lambda: self.read(entities.recording_size, session_id))


def _event_owner_filter(field_name: str, owner: str, kinds: tuple[str, ...]) -> ast.Condition:
    owned = ast.Compare(field_name, "=", ast.Str(owner))
    if not kinds:
        return owned
    return ast.And((owned, ast.Compare("kind", "IN", ast.ValueList(tuple(ast.Str(k) for k in kinds)))))


async def _session_count(stats: DataLoader[str, dict[str, Any]], issue_id: str) -> int:
    return int((await stats.load(issue_id))["session_count"])


def _constant(value: int) -> Callable[[], Any]:
    async def count() -> int:
        return value
    return count
