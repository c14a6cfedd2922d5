"""The ASGI application: routes, and the services it holds for its lifetime."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from replayql.api import ops
from replayql.api.context import Services
from replayql.api.graphql_http import graphql_endpoint
from replayql.api.graphql_ws import graphql_ws_endpoint
from replayql.api.ingest_http import IngestApp, internal_error
from replayql.api.metrics import Metrics, ServerState
from replayql.api.static import asset_routes
from replayql.config import Settings
from replayql.ingest.enrich import Enricher
from replayql.ingest.retention import RetentionSchedule
from replayql.ingest.sessionize import SessionizeOptions
from replayql.ingest.writer import IngestWriter
from replayql.logs import REQUEST_ID, new_request_id
from replayql.store.backends import open_backend

log = logging.getLogger(__name__)


def open_services(settings: Settings) -> Services:
    caches = settings.caches
    backend = open_backend(settings.data_dir, settings.clickhouse, settings.duckdb_memory_limit,
                           caches.session_summaries)
    options = SessionizeOptions(settings.frustration, settings.idle_threshold_ms, settings.geoip,
                                settings.store_client_ip, Enricher(caches.user_agents, caches.urls))
    metrics = Metrics()
    writer = IngestWriter(backend.store, options, settings.group_commit_ms, settings.limits, metrics.observe_commit,
                          caches)
    retention = None if settings.retention_days is None else RetentionSchedule(
        writer, settings.retention_days, settings.retention_interval_s, settings.retention_chunk_sessions)
    services = Services(settings, backend.store, backend.registry, writer, metrics, retention)
    metrics.watch(ServerState(writer.backlog, backend.store.storage_size, services.cache_sizes, services.live.counts))
    return services


def close_services(services: Services) -> None:
    if services.retention is not None:
        services.retention.close()  # its chunks are writer jobs: stop it while the writer still runs them
    services.live.close()
    services.writer.close()  # flush what is queued before the store closes
    services.store.close()
    services.registry.close()


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected answers JSON with a request id that is also in the log line, never a bare 500."""
    return JSONResponse(internal_error(log, f"{request.method} {request.url.path}"), status_code=500)


_REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIds:
    """The outermost ASGI layer: every HTTP request gets an id, the client's `X-Request-Id` when it is a short
    plain token, else a new one. Every log line of the request carries it (logs.REQUEST_ID), and so does the
    answer's `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope["headers"]) or new_request_id()
        # Not reset afterwards: a request runs in a task of its own, whose context ends with it, and the server
        # logs an exception that escaped the app after this call, in the same context.
        REQUEST_ID.set(request_id)
        header = (_REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == _REQUEST_ID_HEADER:
            return value.decode("ascii") if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


def create_app(settings: Settings, services: Services | None = None) -> ASGIApp:
    """The app; with `services` given, the caller owns them (tests, embedding), else the app opens its own."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services is None
        if owned:
            app.state.services = open_services(settings)
        try:
            yield
        finally:
            if owned:
                close_services(app.state.services)

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_ws_endpoint),  # subscriptions (graphql-transport-ws)
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        *asset_routes(),
    ]
    # Browsers post batches and dashboards query from other origins; keys travel in a header, not cookies. A 429's
    # Retry-After is exposed, or a page's script could not read it.
    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                             allow_headers=["authorization", "content-type", "content-encoding", "x-request-id"],
                             expose_headers=["x-request-id", "retry-after"], max_age=3600)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={Exception: _internal_error})
    if services is not None:
        app.state.services = services
    app.state.store_ping = ops.StorePing(lambda: app.state.services.store.ping(), ops.READY_TIMEOUT_S)
    return RequestIds(IngestApp(app, lambda: app.state.services))
