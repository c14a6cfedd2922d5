"""POST /v1/ingest: browsers and importers send batches here.

The answer comes only after the batch is committed; a rejected batch stores nothing and says why. It is served
straight on ASGI, in front of the framework: a fleet of browser tabs sends many small requests, and the
framework's layers (middleware, Request and Response objects) cost as much per request as decoding a batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from replayql.api.context import Services
from replayql.api.metrics import DISCONNECTED, OTHER, REJECTION_REASONS
from replayql.config import IngestLimits
from replayql.ingest.wire import Batch, IngestRejected, decode_batch, decompress_body
from replayql.logs import current_request_id

log = logging.getLogger(__name__)

INGEST_PATH = "/v1/ingest"
# Differences below this are network latency, not a wrong client clock: client times are kept exact.
CLOCK_SKEW_TOLERANCE_MS = 2_000
_JSON_TYPES = ("application/json", "text/plain", "application/x-ndjson", "")
_INLINE_DECODE_BYTES = 128 * 1024
_RETRY_LATER = [(b"retry-after", b"1")]
# Browsers post from any origin; keys are not involved (the app id names the app), so no credentials either.
# Retry-After is not a CORS-safelisted header: unless exposed, a page's script reads null and cannot wait as told.
_RESPONSE_HEADERS = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*"),
                     (b"access-control-expose-headers", b"retry-after")]
Answer = tuple[int, dict[str, Any] | None, list[tuple[bytes, bytes]]]


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class IngestApp:
    """The outermost ASGI app: it answers POST /v1/ingest itself (and 405 for other methods there, except the
    CORS preflight), and hands every other request to `app`."""

    def __init__(self, app: ASGIApp, services: Callable[[], Services]) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != INGEST_PATH or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        services = self.services()
        if scope["method"] != "POST":
            services.metrics.ingest_rejected(REJECTION_REASONS[405])
            answer: Answer = (405, {"error": "send batches with POST"}, [(b"allow", b"POST")])
        else:
            try:
                answer = await ingest(services, scope, receive)
            except Exception:
                services.metrics.ingest_batch("error")
                answer = (500, internal_error(log, "ingest"), [])
        status, body, headers = answer
        content = orjson.dumps(body) if body is not None else b""
        await send({"type": "http.response.start", "status": status, "headers": [
            *_RESPONSE_HEADERS, *headers, (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive, headers: dict[str, str], limits: IngestLimits) -> bytes:
    """Read at most the configured number of bytes; a larger body is refused without reading it all."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise IngestRejected(413, f"request body is {declared} bytes; the limit is {limits.max_body_bytes}")
    chunks, size = [], 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise IngestRejected(413, f"request body exceeds {limits.max_body_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def bare_media_type(value: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`: the type without its parameters."""
    return value.split(";")[0].strip().lower()


def _check_content_type(headers: dict[str, str]) -> None:
    media_type = bare_media_type(headers.get("content-type", ""))
    if media_type not in _JSON_TYPES:
        raise IngestRejected(415, f"Content-Type {media_type!r} is not JSON; send application/json")


def internal_error(logger: logging.Logger, what: str, exc: BaseException | None = None) -> dict[str, str]:
    """Log an unexpected failure (`exc`, else the one being handled); the answer names the request's id (the
    log line carries it too) and nothing else."""
    request_id = current_request_id()
    logger.error("%s request %s failed", what, request_id, exc_info=exc or True)
    return {"error": f"internal server error (request id {request_id})", "requestId": request_id}


def clock_offset(sent_at: int, received_at: int) -> int:
    offset = received_at - sent_at
    return offset if abs(offset) > CLOCK_SKEW_TOLERANCE_MS else 0


async def ingest(services: Services, scope: Scope, receive: Receive) -> Answer:
    received_at = int(time.time() * 1000)
    metrics = services.metrics
    busy = services.writer.overloaded()
    if busy is not None:
        metrics.ingest_batch("overloaded")
        return 503, {"error": f"the server is busy: {busy}; nothing of this batch was kept, send it again after "
                              f"Retry-After"}, _RETRY_LATER
    with services.writer.announce():
        try:
            batch, size = await _accept(scope, receive, services)
        except IngestRejected as exc:
            metrics.ingest_rejected(REJECTION_REASONS.get(exc.status, OTHER))
            return exc.status, exc.as_json(), []
        except _Disconnected:
            metrics.ingest_rejected(DISCONNECTED)
            return 400, None, []
        limited = _over_rate(services, batch.app_id)
        if limited is not None:
            metrics.ingest_batch("rate_limited")
            return limited
        future = services.writer.submit(batch, clock_offset(batch.sent_at, received_at), size)
    try:
        outcome = await asyncio.wrap_future(future)
    except Exception:
        log.exception("storing batch %s/%s failed", batch.session_id, batch.seq)
        metrics.ingest_batch("failed", len(batch.events))
        return 503, {"error": "the batch could not be stored; nothing of it was kept, retry later"}, _RETRY_LATER
    metrics.ingest_batch(outcome.value, len(batch.events))
    return 200, {"ok": True, "sessionId": batch.session_id, "seq": batch.seq, "outcome": outcome.value,
                 "events": len(batch.events)}, []


def _over_rate(services: Services, app_id: str) -> Answer | None:
    """429 once the app has spent its batches. The app id is only known from the body, so this comes after the
    decoding; it comes before the writer, so a refused batch costs no write."""
    buckets = services.ingest_rate
    if buckets is None:
        return None
    retry_after_s = buckets.take(app_id)
    if retry_after_s == 0:
        return None
    body = {"error": f"{buckets.refusal(f'app {app_id!r}', retry_after_s)}; nothing of this batch was kept",
            "code": "RATE_LIMITED", "retryAfter": retry_after_s}
    return 429, body, [(b"retry-after", str(retry_after_s).encode())]


async def _accept(scope: Scope, receive: Receive, services: Services) -> tuple[Batch, int]:
    """Read, decode and validate the batch, or raise IngestRejected saying why not."""
    limits = services.settings.limits
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    _check_content_type(headers)
    body = await _read_body(receive, headers, limits)
    encoding = headers.get("content-encoding")
    # Decoding holds the GIL either way; a thread only keeps a large body from stalling other requests.
    batch, size = (_decode(body, encoding, limits) if len(body) <= _INLINE_DECODE_BYTES
                   else await run_in_threadpool(_decode, body, encoding, limits))
    if not (services.knows_app(batch.app_id) or await run_in_threadpool(services.app_exists, batch.app_id)):
        raise IngestRejected(404, f"unknown appId {batch.app_id!r}; create it with "
                                  f"`replayql apps create {batch.app_id}`")
    origin = headers.get("origin")
    if origin is not None:
        await _check_origin(services, batch.app_id, origin)
    client = scope.get("client")
    if batch.client_ip is None and client is not None:
        batch.client_ip = client[0]
    return batch, size


async def _check_origin(services: Services, app_id: str, origin: str) -> None:
    """A browser's batch must come from one of the app's allowed origins, when the app names any. (Clients that
    are not browsers send no Origin; they can claim any, so this guards against other sites, not against them.)"""
    allowed = services.cached_origins(app_id)
    if allowed is None:
        allowed = await run_in_threadpool(services.allowed_origins, app_id)
    if allowed and origin.lower().rstrip("/") not in allowed:
        raise IngestRejected(403, f"origin {origin!r} may not send batches to app {app_id!r}; allow it with "
                                  f"`replayql apps origins {app_id} --allow {origin}`")


def _decode(body: bytes, encoding: str | None, limits: IngestLimits) -> tuple[Batch, int]:
    """The batch, and the bytes of JSON it holds on to."""
    payload = decompress_body(body, encoding, limits)
    return decode_batch(payload, limits), len(payload)
