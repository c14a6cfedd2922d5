"""POST /v1/ingest: browsers and importers send batches here.

The answer comes only after the batch is committed; a rejected batch stores nothing and says why.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from replayql.api.context import Services
from replayql.config import IngestLimits
from replayql.ingest.wire import Batch, IngestRejected, decode_batch, decompress_body

log = logging.getLogger(__name__)

# Differences below this are network latency, not a wrong client clock: client times are kept exact.
CLOCK_SKEW_TOLERANCE_MS = 2_000
_JSON_TYPES = ("application/json", "text/plain", "application/x-ndjson", "")
_INLINE_DECODE_BYTES = 128 * 1024
_RETRY_AFTER_S = "1"


def _reject(exc: IngestRejected) -> Response:
    return Response(orjson.dumps(exc.as_json()), status_code=exc.status, media_type="application/json")


async def _read_body(request: Request, limits: IngestLimits) -> bytes:
    """Read at most the configured number of bytes; a larger body is refused without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise IngestRejected(413, f"request body is {declared} bytes; the limit is {limits.max_body_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise IngestRejected(413, f"request body exceeds {limits.max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES:
        raise IngestRejected(415, f"Content-Type {media_type!r} is not JSON; send application/json")


def clock_offset(sent_at: int, received_at: int) -> int:
    offset = received_at - sent_at
    return offset if abs(offset) > CLOCK_SKEW_TOLERANCE_MS else 0


async def ingest_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    received_at = int(time.time() * 1000)
    busy = services.writer.overloaded()
    if busy is not None:
        return JSONResponse({"error": f"the server is busy: {busy}; nothing of this batch was kept, send it again "
                                      f"after Retry-After"}, status_code=503, headers={"Retry-After": _RETRY_AFTER_S})
    with services.writer.announce():
        accepted = await _accept(request, services)
        if isinstance(accepted, Response):
            return accepted
        batch, size = accepted
        future = services.writer.submit(batch, clock_offset(batch.sent_at, received_at), size)
    try:
        outcome = await asyncio.wrap_future(future)
    except Exception:
        log.exception("storing batch %s/%s failed", batch.session_id, batch.seq)
        return JSONResponse({"error": "the batch could not be stored; nothing of it was kept, retry later"},
                            status_code=503, headers={"Retry-After": _RETRY_AFTER_S})
    return JSONResponse({"ok": True, "sessionId": batch.session_id, "seq": batch.seq,
                         "outcome": outcome.value, "events": len(batch.events)})


async def _accept(request: Request, services: Services) -> tuple[Batch, int] | Response:
    """Read, decode and validate the batch, or answer why not."""
    limits = services.settings.limits
    try:
        _check_content_type(request)
        body = await _read_body(request, limits)
        encoding = request.headers.get("content-encoding")
        # Decoding holds the GIL either way; a thread only keeps a large body from stalling other requests.
        batch, size = (_decode(body, encoding, limits) if len(body) <= _INLINE_DECODE_BYTES
                       else await run_in_threadpool(_decode, body, encoding, limits))
    except IngestRejected as exc:
        return _reject(exc)
    except ClientDisconnect:
        return Response(status_code=400)
    if not (services.knows_app(batch.app_id) or await run_in_threadpool(services.app_exists, batch.app_id)):
        return _reject(IngestRejected(404, f"unknown appId {batch.app_id!r}; create it with "
                                           f"`replayql apps create {batch.app_id}`"))
    if batch.client_ip is None and request.client is not None:
        batch.client_ip = request.client.host
    return batch, size


def _decode(body: bytes, encoding: str | None, limits: IngestLimits) -> tuple[Batch, int]:
    """The batch, and the bytes of JSON it holds on to."""
    payload = decompress_body(body, encoding, limits)
    return decode_batch(payload, limits), len(payload)
