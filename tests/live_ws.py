"""A test server's app on a real loopback socket (uvicorn in a thread), and a graphql-transport-ws client on the
`websockets` package: what tests/test_subscriptions.py and bench/live_latency.py drive subscriptions with."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from conftest import Server
from replayql.api.app import create_app

PROTOCOL = "graphql-transport-ws"
WAIT_S = 20.0  # the longest a test waits for a message before it fails (not a latency bound: bench measures that)


@contextmanager
def on_loopback(server: Server) -> Iterator[str]:
    """Serve the test server's app (its services) with uvicorn on a free loopback port; yields http://host:port."""
    config = uvicorn.Config(create_app(server.settings, server.services), host="127.0.0.1", port=0,
                            log_level="warning", lifespan="off", ws="websockets-sansio")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(WAIT_S)


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason


class Client:
    """One socket; messages as parsed JSON."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, base_url: str, init: dict[str, Any] | None = None, acked: bool = True,
                      receive_buffer: int | None = None, **options: Any) -> Client:
        """Open a socket at /graphql and send connection_init with `init` as its payload (none: no init); with
        `acked`, wait for connection_ack. `receive_buffer` shrinks the socket's kernel buffer (a slow reader)."""
        url = base_url.replace("http://", "ws://") + "/graphql"
        sock = None
        if receive_buffer is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            host, port = url.removeprefix("ws://").split("/")[0].split(":")
            sock.connect((host, int(port)))
        options.setdefault("subprotocols", [PROTOCOL])
        client = cls(await websockets.connect(url, sock=sock, open_timeout=WAIT_S, **options))
        if init is not None:
            await client.send({"type": "connection_init", "payload": init})
            if acked:
                assert await client.receive() == {"type": "connection_ack"}
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(orjson.dumps(message).decode())

    async def subscribe(self, operation_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": operation_id, "type": "subscribe", "payload": payload})

    async def receive(self, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """The next message; Closed when the server closed the socket instead."""
        try:
            text = await asyncio.wait_for(self.connection.recv(), timeout_s)
        except websockets.ConnectionClosed as closed:
            received = closed.rcvd
            raise Closed(received.code if received else None, received.reason if received else "") from None
        parsed: dict[str, Any] = orjson.loads(text)
        return parsed

    async def data(self, operation_id: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """The next message, which must be a `next` of this operation without errors: its data."""
        message = await self.receive(timeout_s)
        assert message["type"] == "next" and message["id"] == operation_id, message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def closed(self) -> Closed:
        """Read until the server closes the socket; how it closed."""
        while True:
            try:
                await self.receive()
            except Closed as closed:
                return closed

    async def close(self) -> None:
        await self.connection.close()


def token(secret: str) -> dict[str, str]:
    return {"Authorization": f"token {secret}"}
