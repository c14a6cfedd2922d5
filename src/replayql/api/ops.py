"""What operators and their tools ask of a running server: /healthz (alive), /readyz (able to serve) and /metrics
(Prometheus)."""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Callable
from concurrent.futures import Future

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replayql.api.context import Services

READY_TIMEOUT_S = 2.0  # the store must answer /readyz's ping within this
OK = "ok"


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. It touches nothing else, so an outage of the store makes a server not
    ready (/readyz) rather than restarted."""
    return JSONResponse({"status": OK})


class StorePing:
    """Pings the store on a thread of its own, one ping at a time: while a store hangs, every probe waits on the
    ping in flight instead of leaving a thread of its own behind."""

    def __init__(self, ping: Callable[[], bool], timeout_s: float) -> None:
        self.ping = ping
        self.timeout_s = timeout_s
        self._running: Future[bool] | None = None

    async def check(self) -> str:
        """OK, or why the store is not usable. Called on the event loop only."""
        if self._running is None or self._running.done():
            self._running = Future()
            threading.Thread(target=self._run, args=(self._running,), name="replayql-ping", daemon=True).start()
        try:
            # shielded: a probe that gives up must not cancel the ping the next probe waits on
            answered = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._running)), self.timeout_s)
        except TimeoutError:
            return f"the store did not answer within {self.timeout_s:g} s"
        except Exception as exc:  # the type only: a driver's message may name hosts or credentials
            return f"the store failed: {type(exc).__name__}"
        return OK if answered else "the store answered without its schema"

    def _run(self, future: Future[bool]) -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(self.ping())
        except Exception as exc:
            future.set_exception(exc)


async def readyz(request: Request) -> Response:
    """Readiness: the store answers and the writer keeps up; else 503 naming the failing checks."""
    services: Services = request.app.state.services
    store_ping: StorePing = request.app.state.store_ping
    checks = {"store": await store_ping.check(), "writer": services.writer.health() or OK}
    failing = [name for name, state in checks.items() if state != OK]
    if failing:
        return JSONResponse({"status": "unavailable", "failing": failing, "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


async def metrics(request: Request) -> Response:
    """The Prometheus text format; with a metrics token configured, only for `Authorization: Bearer <token>`."""
    services: Services = request.app.state.services
    token = services.settings.metrics_token
    if token is not None and not _bearer_matches(request.headers.get("authorization", ""), token):
        return JSONResponse({"error": "send the metrics token: `Authorization: Bearer <token>`"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="replayql metrics"'})
    body = await run_in_threadpool(generate_latest, services.metrics.registry)  # reads the store's size
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
