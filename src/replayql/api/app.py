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

from replayql.api.context import Services
from replayql.api.graphql_http import graphql_endpoint
from replayql.api.ingest_http import IngestApp
from replayql.api.static import sdk_script
from replayql.config import Settings
from replayql.ingest.sessionize import SessionizeOptions
from replayql.ingest.writer import IngestWriter
from replayql.store.backends import open_backend

log = logging.getLogger(__name__)


def open_services(settings: Settings) -> Services:
    backend = open_backend(settings.data_dir, settings.clickhouse, settings.duckdb_memory_limit)
    options = SessionizeOptions(settings.frustration, settings.idle_threshold_ms, settings.geoip,
                                settings.store_client_ip)
    writer = IngestWriter(backend.store, options, settings.group_commit_ms, settings.limits)
    return Services(settings, backend.store, backend.registry, writer)


def close_services(services: Services) -> None:
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
        Route("/sdk/replayql.js", sdk_script, methods=["GET", "HEAD"]),
    ]
    # Browsers post batches and dashboards query from other origins; keys travel in a header, not cookies.
    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                             allow_headers=["authorization", "content-type", "content-encoding"], max_age=3600)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    if services is not None:
        app.state.services = services
    return IngestApp(app, lambda: app.state.services)
