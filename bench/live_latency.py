"""Live subscriptions (issue 15): delivery latency from the ingest 200 to the subscriber, and how many concurrent
subscribers one server holds at one update per second each, with the CPU it costs. Both stores.

    python bench/live_latency.py                                  # both stores, the defaults below
    python bench/live_latency.py --store duckdb --subscribers 100,300,1000 --seconds 20 --no-write
    python bench/live_latency.py --report                         # RESULTS.md from the last run of each store

A real `replayql serve` (default settings: the store polled every 250 ms) in its own process; clients in this
process: httpx posts batches to /v1/ingest, `websockets` sockets subscribe to `sessionLive` over
graphql-transport-ws (one socket per subscriber; `--per-session` subscribers follow each session, as several
people watching one session would).

Latency: one batch at a time to one of `--latency-sessions` sessions, each followed by a subscriber; a batch's
latency is the time from its 200 to the `next` message of its seq (the 200 comes after the commit; the notice
after the next poll). Capacity: N subscribers on N / `--per-session` sessions, one batch per session per second
(spread over the second) for `--seconds`, so one update per second for each subscriber; delivered / expected,
latency p50/p95, sockets dropped, and the server's CPU (cores) with the subscribers and, in a run without them,
for the same ingest alone: the difference is what the subscribers cost. Writes results/live-STORE.json and
"Live subscriptions (issue 15)" in RESULTS.md (from the JSON of every store measured so far).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import websockets

from _common import (
    NAMES,
    RESULTS_DIR,
    STORES,
    ServerProcess,
    cli,
    fmt,
    invocation,
    machine_info,
    markdown_table,
    percentile,
    replace_section,
    write_json,
)

LIVE = "subscription($id: ID!) { sessionLive(id: $id) { seq } }"
CONTEXT = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
                        "Safari/537.36", "viewport": {"width": 1440, "height": 900}, "language": "en-US"}
HEADING = "## Live subscriptions (issue 15)"
LIMITS = ("--limit", "live.max_subscriptions_per_key=100000", "--limit", "live.max_subscriptions=100000",
          "--limit", "live.max_connections=100000")


def batch(session_id: str, seq: int) -> bytes:
    now = int(time.time() * 1000)
    events = [{"type": "page", "ts": now, "url": f"https://shop.example/p/{seq}"},
              {"type": "recording", "ts": now, "data": {"type": 3, "timestamp": now, "data": {"source": 1}}}]
    body: dict[str, Any] = {"appId": "demo", "sessionId": session_id, "seq": seq, "sentAt": now, "events": events}
    if seq == 0:
        body["context"] = CONTEXT
    return orjson.dumps(body)


class Subscriber:
    """One socket following one session: when each seq arrived (perf_counter)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.arrived: dict[int, float] = {}
        self.closed_code: int | None = None

    async def run(self, ws_url: str, key: str, ready: asyncio.Event) -> None:
        try:
            async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=60,
                                          max_size=None) as ws:
                await ws.send(orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"token {key}"}
                                            }).decode())
                await ws.recv()
                await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": {
                    "query": LIVE, "variables": {"id": self.session_id}}}).decode())
                first = True
                async for text in ws:
                    at = time.perf_counter()
                    message = orjson.loads(text)
                    if message.get("type") == "next":
                        self.arrived[message["payload"]["data"]["sessionLive"]["seq"]] = at
                        if first:
                            first = False
                            ready.set()
        except websockets.ConnectionClosed as closed:
            self.closed_code = closed.rcvd.code if closed.rcvd else None


BUSY: list[int] = []  # 503s (the writer behind): resent after Retry-After, as the SDK does


async def post(client: httpx.AsyncClient, session_id: str, seq: int) -> float:
    body = batch(session_id, seq)
    while True:
        response = await client.post("/v1/ingest", content=body, headers={"content-type": "application/json"})
        at = time.perf_counter()
        if response.status_code != 503:
            break
        BUSY.append(1)
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    if response.status_code != 200:
        raise SystemExit(f"ingest answered {response.status_code}: {response.text}")
    return at


async def follow(server: ServerProcess, key: str, client: httpx.AsyncClient, sessions: list[str], per_session: int = 1
                 ) -> tuple[list[Subscriber], list[asyncio.Task[None]]]:
    """`per_session` subscribers of each session (session i's are i, i + len(sessions), ...), each once its
    session's first batch is stored and delivered."""
    limit = asyncio.Semaphore(32)

    async def prime(session_id: str) -> None:
        async with limit:
            await post(client, session_id, 0)
    await asyncio.gather(*(prime(s) for s in sessions))
    subscribers = [Subscriber(s) for _ in range(per_session) for s in sessions]
    ws_url = server.base_url.replace("http://", "ws://") + "/graphql"
    readies = [asyncio.Event() for _ in subscribers]
    tasks = []
    for subscriber, ready in zip(subscribers, readies, strict=True):
        tasks.append(asyncio.create_task(subscriber.run(ws_url, key, ready)))
        await asyncio.sleep(0.002)  # not every handshake at once
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
    return subscribers, tasks


async def latency(server: ServerProcess, key: str, samples: int, session_count: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        sessions = [f"lat-{i}" for i in range(session_count)]
        subscribers, tasks = await follow(server, key, client, sessions)
        sent: list[tuple[Subscriber, int, float]] = []
        for n in range(samples):
            subscriber = subscribers[n % session_count]
            seq = n // session_count + 1
            sent.append((subscriber, seq, await post(client, subscriber.session_id, seq)))
            await asyncio.sleep(random.uniform(0.05, 0.15))  # not in step with the poller
        await asyncio.sleep(3)
        for task in tasks:
            task.cancel()
    delays = [(s.arrived[seq] - at) * 1000 for s, seq, at in sent if seq in s.arrived]
    return {"samples": samples, "delivered": len(delays), "p50_ms": percentile(delays, 50),
            "p95_ms": percentile(delays, 95), "max_ms": max(delays) if delays else None}


async def capacity(server: ServerProcess, key: str, count: int, per_session: int, seconds: int, subscribe: bool
                   ) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60,
                                 limits=httpx.Limits(max_connections=64)) as client:
        sessions = [f"cap{count}x{per_session}-{'s' if subscribe else 'n'}-{i}" for i in range(count // per_session)]
        subscribers, tasks = await follow(server, key, client, sessions, per_session) if subscribe else ([], [])
        sent: list[tuple[int, int, float]] = []
        BUSY.clear()
        cpu_before, started = server.cpu_seconds(), time.perf_counter()

        async def one(index: int, seq: int, delay: float) -> None:
            await asyncio.sleep(delay)
            sent.append((index, seq, await post(client, sessions[index], seq)))
        for second in range(seconds):
            tick = time.perf_counter()
            await asyncio.gather(*(one(i, second + 1, i / len(sessions)) for i in range(len(sessions))))
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
        elapsed = time.perf_counter() - started
        cpu = server.cpu_seconds()
        await asyncio.sleep(3)
        for task in tasks:
            task.cancel()
    result: dict[str, Any] = {"subscribers": count if subscribe else 0, "sessions": len(sessions), "seconds": seconds,
                              "batches_per_s": len(sent) / elapsed, "resent_503": len(BUSY),
                              "server_cores": (cpu - cpu_before) / elapsed if cpu is not None and cpu_before else None}
    if subscribe:
        followers = [subscribers[i::len(sessions)] for i in range(len(sessions))]
        delays = [(f.arrived[seq] - at) * 1000 for i, seq, at in sent for f in followers[i] if seq in f.arrived]
        result |= {"expected": len(sent) * per_session, "delivered": len(delays), "p50_ms": percentile(delays, 50),
                   "p95_ms": percentile(delays, 95), "dropped": sum(s.closed_code is not None for s in subscribers)}
    return result


def measure(store: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        cli("apps", "create", "demo", data_dir=data_dir, store=store)
        key = cli("keys", "create", "--app", "demo", "--scope", "read", data_dir=data_dir, store=store)
        with ServerProcess(data_dir, store=store, serve_args=LIMITS) as server:
            found: dict[str, Any] = {"latency": asyncio.run(latency(server, key, args.samples,
                                                                    args.latency_sessions))}
            print(store, "latency", found["latency"], flush=True)
            found["capacity"] = []
            for count in args.subscribers:
                for subscribe in (False, True):
                    step = asyncio.run(capacity(server, key, count, args.per_session, args.seconds, subscribe))
                    print(store, "capacity", step, flush=True)
                    found["capacity"].append(step)
    return found


def report(results: dict[str, list[dict[str, Any]]]) -> str:
    """From each store's runs: the latency of its last run, the capacity steps of all of them."""
    commands = sorted({run["command"] for runs in results.values() for run in runs})
    lines = [HEADING, "", *(f"`{c}`" for c in commands), "",
             "Default settings (`live.poll_interval_s` 0.25). Latency: from the ingest 200 to the subscriber's "
             "`next`, one batch at a time.", ""]
    rows = []
    for store, runs in results.items():
        found = runs[-1]["latency"]
        rows.append([NAMES[store], f"{found['delivered']}/{found['samples']}", fmt(found["p50_ms"], 0),
                     fmt(found["p95_ms"], 0), fmt(found["max_ms"], 0)])
    lines += [markdown_table(["store", "delivered", "p50 ms", "p95 ms", "max ms"], rows), ""]
    lines += ["Capacity: N `sessionLive` subscribers (one socket each) following N / k sessions, one batch per "
              "session per second (one update per second per subscriber); server CPU in cores, with the subscribers "
              "and for the same ingest without them.", ""]
    rows = []
    for store, runs in results.items():
        for run in runs:
            alone = {c["sessions"]: c for c in run["capacity"] if not c["subscribers"]}
            rows += [_capacity_row(store, step, alone.get(step["sessions"]))
                     for step in run["capacity"] if step["subscribers"]]
    lines.append(markdown_table(["store", "subscribers", "sessions", "batches/s, ingest alone", "batches/s",
                                 "delivered", "p50 ms", "p95 ms", "dropped", "503s resent", "cores, ingest alone",
                                 "cores, with subscribers", "subscribers' cores"], rows))
    return "\n".join(lines) + "\n"


def _capacity_row(store: str, step: dict[str, Any], alone: dict[str, Any] | None) -> list[str]:
    """A step with subscribers, beside the same ingest without them (`alone`)."""
    base = alone["server_cores"] if alone else None
    cost = step["server_cores"] - base if step["server_cores"] is not None and base is not None else None
    return [NAMES[store], f"{step['subscribers']:,}", f"{step['sessions']:,}",
            fmt(alone["batches_per_s"] if alone else None, 0), fmt(step["batches_per_s"], 0),
            f"{step['delivered']:,}/{step['expected']:,}", fmt(step["p50_ms"], 0), fmt(step["p95_ms"], 0),
            str(step["dropped"]), str(step["resent_503"]), fmt(base, 2), fmt(step["server_cores"], 2),
            fmt(cost, 2)]


def _json(store: str) -> Path:
    return RESULTS_DIR / f"live-{store}.json"


def _runs(store: str) -> list[dict[str, Any]]:
    path = _json(store)
    runs: list[dict[str, Any]] = json.loads(path.read_text()).get("runs", []) if path.exists() else []
    return runs


def record(store: str, run: dict[str, Any]) -> None:
    """Keep the store's runs of other commands (another --per-session, say) beside this one."""
    write_json(_json(store), {"runs": [r for r in _runs(store) if r["command"] != run["command"]] + [run]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=(*STORES, "both"), default="both")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--latency-sessions", type=int, default=10)
    parser.add_argument("--subscribers", type=lambda text: [int(n) for n in text.split(",")], default=[50, 100])
    parser.add_argument("--per-session", type=int, default=1, help="subscribers following each session")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone (the JSON is written)")
    parser.add_argument("--report", action="store_true", help="measure nothing: RESULTS.md from the JSON")
    args = parser.parse_args()
    stores = STORES if args.store == "both" else (args.store,)
    if not args.report:
        for store in stores:
            record(store, {"command": invocation(), "machine": machine_info(), "config": vars(args),
                           **measure(store, args)})
    results = {s: runs for s in STORES if (runs := _runs(s))}
    text = report(results)
    print(text)
    if not args.no_write:
        replace_section(RESULTS_DIR.parent / "RESULTS.md", HEADING, text)


if __name__ == "__main__":
    main()
