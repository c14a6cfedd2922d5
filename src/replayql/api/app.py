"""The ASGI application: routes, and the services it holds for its lifetime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from replayql.api import graphql_http
from replayql.api.context import Services
from replayql.api.graphql_http import graphql_endpoint
from replayql.api.ingest_http import IngestApp, internal_error
from replayql.api.static import asset_routes
from replayql.config import Settings
from replayql.ingest.retention import RetentionSchedule
from replayql.ingest.sessionize import SessionizeOptions
from replayql.ingest.writer import IngestWriter
from replayql.store.backends import open_backend

log = logging.getLogger(__name__)


def open_services(settings: Settings) -> Services:
    backend = open_backend(settings.data_dir, settings.clickhouse, settings.duckdb_memory_limit)
    options = SessionizeOptions(settings.frustration, settings.idle_threshold_ms, settings.geoip,
                                settings.store_client_ip)
    writer = IngestWriter(backend.store, options, settings.group_commit_ms, settings.limits)
    retention = None if settings.retention_days is None else RetentionSchedule(
        writer, settings.retention_days, settings.retention_interval_s, settings.retention_chunk_sessions)
    return Services(settings, backend.store, backend.registry, writer, retention)


def cache_sizes(services: Services) -> dict[str, tuple[int, int]]:
    """Every structure the server keeps in memory that could grow with traffic: (entries now, bound)."""
    documents = graphql_http.prepared_documents()
    return services.cache_sizes() | {"graphql.documents": documents}


def close_services(services: Services) -> None:
    if services.retention is not None:
        services.retention.close()  # its chunks are writer jobs: stop it while the writer still runs them
    services.writer.close()  # flush what is queued before the store closes
    services.store.close()
    services.registry.close()


async def healthz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        ok = await run_in_threadpool(services.store.ping)
    except Exception:
        log.exception("health check failed")
        ok = False
    return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected answers JSON with a request id that is also in the log line, never a bare 500."""
    return JSONResponse(internal_error(log, f"{request.method} {request.url.path}"), status_code=500)


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
        Route("/healthz", healthz, methods=["GET"]),
        *asset_routes(),
    ]
    # Browsers post batches and dashboards query from other origins; keys travel in a header, not cookies. A 429's
    # Retry-After is exposed, or a page's script could not read it.
    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                             allow_headers=["authorization", "content-type", "content-encoding"],
                             expose_headers=["retry-after"], max_age=3600)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={Exception: _internal_error})
    if services is not None:
        app.state.services = services
    return IngestApp(app, lambda: app.state.services)
