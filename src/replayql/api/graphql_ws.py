"""GraphQL over WebSocket at /graphql: the graphql-transport-ws protocol (the one graphql-ws and Apollo speak).

connection_init carries the API key (`{"Authorization": "token <api-key>"}`), checked like HTTP's header; each
subscribe is checked by the same code as an HTTP request (api.graphql_http: shape, parse, validation, variables,
limits, rate), and refused with an `error` message whose errors carry their codes. Subscriptions run on the
server's event loop and read through worker threads; queries and mutations sent over the socket run on the
execution threads, as over HTTP.

Every message to the client goes through one bounded queue per socket, written by one task: a client that does
not read lets the queue fill and is dropped (4410) instead of holding memory, and nothing upstream (the hub, the
writer) ever waits on it. Close codes: the protocol's 4400, 4401, 4403, 4406, 4408, 4409, 4429; ours: 4410
(too slow: dropped) and 1013 (this server holds its limit of sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from enum import IntEnum
from inspect import isawaitable
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType, subscribe
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from replayql.api.context import Context, Services
from replayql.api.graphql_http import (
    RequestError,
    authenticate,
    check_operation,
    check_rate,
    check_request,
    format_error,
    operation_of,
    run_operation,
)
from replayql.api.ingest_http import internal_error
from replayql.api.live_hub import SlowSubscriber
from replayql.api.schema import schema
from replayql.query.errors import UserError
from replayql.store.registry import ApiKey

log = logging.getLogger(__name__)
PROTOCOL = "graphql-transport-ws"


class Close(IntEnum):
    BAD_MESSAGE = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403  # the key was revoked while the socket was open
    SUBPROTOCOL_NOT_ACCEPTABLE = 4406
    INIT_TIMEOUT = 4408
    DUPLICATE_ID = 4409
    TOO_SLOW = 4410  # messages waited past LiveLimits.max_queued_messages: the subscriber was dropped
    TOO_MANY_INITS = 4429
    SERVER_BUSY = 1013  # "try again later": this server holds LiveLimits.max_connections sockets


class _Closing(Exception):
    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def graphql_ws_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    offered = websocket.scope.get("subprotocols") or []
    if PROTOCOL not in offered:
        await websocket.accept()
        await websocket.close(Close.SUBPROTOCOL_NOT_ACCEPTABLE, f"Subprotocol not acceptable: speak {PROTOCOL}")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    if not services.live.open_connection():
        services.metrics.live_dropped("server_busy")
        await websocket.close(Close.SERVER_BUSY, "this server holds its limit of sockets; try again later")
        return
    try:
        await _Socket(websocket, services).serve()
    finally:
        services.live.close_connection()


class _Socket:
    """One client's socket: its key once acknowledged, its operations by id, and its queue of messages out."""

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.websocket, self.services = websocket, services
        self.limits = services.settings.live
        self.key: ApiKey | None = None
        self.initialised = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(self.limits.max_queued_messages)
        self.closing: asyncio.Future[_Closing] = asyncio.get_running_loop().create_future()
        self.watched = contextlib.ExitStack()  # the key's watch, from connection_init until the socket ends

    async def serve(self) -> None:
        tasks: list[asyncio.Future[Any]] = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]
        try:
            await asyncio.wait([*tasks, self.closing], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.watched.close()
            for task in [*tasks, *self.operations.values()]:
                task.cancel()
            await asyncio.gather(*tasks, *self.operations.values(), return_exceptions=True)
        if self.closing.done() and self.websocket.client_state == WebSocketState.CONNECTED:
            closing = self.closing.result()
            with contextlib.suppress(Exception):  # the client may be gone already
                await self.websocket.close(closing.code, closing.reason)

    def close(self, code: Close, reason: str) -> None:
        if not self.closing.done():
            self.closing.set_result(_Closing(code, reason))

    # -- out -----------------------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; a client too slow to take them is dropped, never waited for."""
        if self.closing.done():
            return
        try:
            self.outbox.put_nowait(orjson.dumps(message))
        except asyncio.QueueFull:
            self.services.metrics.live_dropped("too_slow")
            self.close(Close.TOO_SLOW, f"too slow: more than {self.limits.max_queued_messages} messages waited "
                                       "to be sent; dropped")

    async def _write(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await self.websocket.send_text((await self.outbox.get()).decode())

    # -- in ------------------------------------------------------------------------------------------------

    async def _read(self) -> None:
        opened = time.monotonic()
        try:
            while True:
                timeout = None if self.initialised else max(0.0, opened + self.limits.init_timeout_s - time.monotonic())
                try:
                    message = await asyncio.wait_for(self.websocket.receive(), timeout)
                except TimeoutError:
                    raise _Closing(Close.INIT_TIMEOUT, "Connection initialisation timeout") from None
                if message["type"] == "websocket.disconnect":
                    return
                await self._handle(_parsed(message))
        except _Closing as closing:
            self.close(closing.code, closing.reason)

    async def _handle(self, message: dict[str, Any]) -> None:
        match message["type"]:
            case "connection_init":
                await self._init(message.get("payload"))
            case "ping":
                self.send({"type": "pong"})
            case "pong":
                pass  # the protocol lets a client send one unasked (a heartbeat); it needs no answer
            case "subscribe":
                self._subscribe(message)
            case "complete":
                task = self.operations.pop(_id_of(message), None)
                if task is not None:
                    task.cancel()
            case other:
                raise _Closing(Close.BAD_MESSAGE, f"Invalid message received: unknown type {other!r}"[:120])

    async def _init(self, payload: Any) -> None:
        if self.initialised:
            raise _Closing(Close.TOO_MANY_INITS, "Too many initialisation requests")
        self.initialised = True
        if payload is not None and not isinstance(payload, dict):
            raise _Closing(Close.BAD_MESSAGE, "Invalid message received: connection_init's payload is no object")
        header = next((v for k, v in (payload or {}).items() if k.lower() == "authorization"), "")
        try:
            self.key = await run_in_threadpool(authenticate, header if isinstance(header, str) else "", self.services)
        except RequestError as refused:
            raise _Closing(Close.UNAUTHORIZED, f"Unauthorized: {refused.errors[0]['message']}"[:120]) from None
        # a key revoked (or removed) while the socket is open ends it: it would not be let in now
        self.watched.enter_context(self.services.live.keys.watch(
            self.key.id, lambda: self.close(Close.FORBIDDEN, "Forbidden: the API key was revoked")))
        self.send({"type": "connection_ack"})

    def _subscribe(self, message: dict[str, Any]) -> None:
        if self.key is None:
            raise _Closing(Close.UNAUTHORIZED, "Unauthorized: send connection_init with the API key first")
        operation_id, payload = _id_of(message), message.get("payload")
        if not isinstance(payload, dict):
            raise _Closing(Close.BAD_MESSAGE, "Invalid message received: subscribe needs a payload object")
        if operation_id in self.operations:
            raise _Closing(Close.DUPLICATE_ID, f"Subscriber for {operation_id} already exists"[:120])
        task = asyncio.create_task(self._operation(operation_id, payload, self.key))
        self.operations[operation_id] = task
        task.add_done_callback(lambda done: self._forget(operation_id, done))

    def _forget(self, operation_id: str, task: asyncio.Task[None]) -> None:
        if self.operations.get(operation_id) is task:
            del self.operations[operation_id]

    # -- operations ----------------------------------------------------------------------------------------

    async def _operation(self, operation_id: str, payload: dict[str, Any], key: ApiKey) -> None:
        try:
            check_rate(self.services, key)
            check_request(payload, self.services.settings.query)
            document, operation = operation_of(self.services, payload)
            variables = payload.get("variables") or {}
            check_operation(self.services, document, operation, variables)
            if operation.operation != OperationType.SUBSCRIPTION:
                result = await run_operation(self.services, key, document, payload)
                self.send({"id": operation_id, "type": "next", "payload": _body(result)})
            else:
                await self._stream(operation_id, payload, key, document, _root_field(operation))
            self.send({"id": operation_id, "type": "complete"})
        except RequestError as refused:
            self.send({"id": operation_id, "type": "error", "payload": refused.errors})
        except Exception as exc:
            original = exc.original_error if isinstance(exc, GraphQLError) and exc.original_error else exc
            if isinstance(original, SlowSubscriber):
                if not self.closing.done():
                    self.services.metrics.live_dropped("too_slow")
                self.close(Close.TOO_SLOW, f"too slow: {original}; dropped"[:120])
            else:
                self.send({"id": operation_id, "type": "error", "payload": [_failure(original)]})

    async def _stream(self, operation_id: str, payload: dict[str, Any], key: ApiKey, document: Any,
                      root_field: str) -> None:
        refusal = self.services.live.admit(key.id, root_field)
        if refusal is not None:
            self.services.metrics.live_dropped("limit")
            raise RequestError(429, [{"message": refusal, "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"}}])
        try:
            started = subscribe(schema._schema, document, context_value=Context(self.services, key),
                                variable_values=payload.get("variables") or {},
                                operation_name=payload.get("operationName"))
            stream = await started if isawaitable(started) else started
            if isinstance(stream, ExecutionResult):  # refused before the first update (its arguments, NOT_FOUND)
                raise RequestError(400, [format_error(e) for e in stream.errors or ()])
            async with _closing(stream):
                async for result in stream:
                    self.send({"id": operation_id, "type": "next", "payload": _body(result)})
                    if self.closing.done():
                        return
        finally:
            self.services.live.release(key.id, root_field)


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[ExecutionResult]) -> AsyncIterator[None]:
    """The stream closed whatever ends the iteration (its source generator leaves the hub's feed then)."""
    try:
        yield
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def _body(result: ExecutionResult) -> dict[str, Any]:
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    return body


def _failure(exc: BaseException) -> dict[str, Any]:
    """An error that ended a stream: the user's, with its code, or an internal one logged with a request id."""
    if isinstance(exc, UserError):
        return {"message": str(exc), "extensions": {"code": exc.code}}
    failure = internal_error(log, "GraphQL subscription", exc)
    return {"message": failure["error"], "extensions": {"code": "INTERNAL_SERVER_ERROR",
                                                        "requestId": failure["requestId"]}}


def _root_field(operation: Any) -> str:
    """The subscription's root field (one, by the rule validation applied), for the limits and the metrics; a
    fragment at the root is counted as `other`."""
    name = getattr(operation.selection_set.selections[0], "name", None)
    return str(name.value) if name is not None else "other"


def _parsed(message: Mapping[str, Any]) -> dict[str, Any]:
    text = message.get("text")
    if text is None:
        raise _Closing(Close.BAD_MESSAGE, "Invalid message received: send text frames of JSON")
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _Closing(Close.BAD_MESSAGE, "Invalid message received: not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
        raise _Closing(Close.BAD_MESSAGE, "Invalid message received: no `type`")
    return parsed


def _id_of(message: dict[str, Any]) -> str:
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not operation_id or len(operation_id) > 256:
        raise _Closing(Close.BAD_MESSAGE, "Invalid message received: `id` must be a non-empty string")
    return operation_id
