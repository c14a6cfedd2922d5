"""Ingest at fleet scale: many browser tabs, each posting a gzip batch every 1-5 s, to a real `replayql serve`.

    python bench/ingest_fleet.py [--tabs 2500] [--rate 40] [--duration 60] [--store duckdb|clickhouse]

Each tab is one session on its own keep-alive connection. It sends one batch at a time, as a browser SDK does:
every 1-5 s (uniform), or at once when the previous answer came late. Batches are realistic (see fleet.py):
rrweb incremental events at `--rate` events/s per tab plus the SDK's own events, and a page view with a
50-300 KB full snapshot about every `--page-every` seconds. Bodies are spliced from pre-compressed chunks, so
the sender's CPU stays small; it is reported. A 503 is resent after its Retry-After, as a client does.

Reported over the steady window (after `--warmup`): acknowledged events/s and MB/s of uncompressed JSON,
request p50/p95/p99, server CPU and RSS (sampled every second, so growth shows), the sender's CPU, and the
floor: the same event and recording rows appended straight into the same DuckDB tables with no HTTP and no
sessionizing, with the ratio HTTP events/s / floor events/s. A lone batch on the idle server is timed first.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import zstandard

from _common import (
    APP_ID,
    RESULTS_DIR,
    STORES,
    ServerProcess,
    cli,
    display_command,
    fmt,
    invocation,
    load_average,
    machine_info,
    markdown_table,
    percentile,
    write_json,
)
from fleet import ChunkSet, batch_bodies, build_chunks, envelope_prefix, splice


@dataclass
class Sample:
    started: float  # perf_counter at send
    latency_ms: float
    events: int
    json_bytes: int
    status: int


@dataclass
class Fleet:
    base_host: str
    port: int
    chunks: ChunkSet
    rate: float
    page_every_s: float
    session_batches: int  # a tab starts a new session after this many batches
    samples: list[Sample] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the sender must cost far less than the server it measures."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        return status, headers, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_tab(fleet: Fleet, number: int, start_at: float, end_at: float, seed: int) -> None:
    rng = random.Random(seed * 1_000_003 + number)
    connection = Connection(fleet.base_host, fleet.port)
    generation, seq = 0, 0
    next_at = start_at
    try:
        while True:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            if time.perf_counter() >= end_at:
                return
            interval = rng.randint(1, 5)
            chunk = fleet.chunks.pick(rng, interval, seq == 0 or rng.random() < interval / fleet.page_every_s)
            prefix = envelope_prefix(APP_ID, f"tab{number}-{generation}", seq, chunk.last_ts, seq == 0)
            await send(fleet, connection, splice(prefix, chunk), chunk.events, len(prefix) + len(chunk.json))
            seq += 1
            if seq >= fleet.session_batches:
                generation, seq = generation + 1, 0
            next_at += interval
    finally:
        connection.close()


async def send(fleet: Fleet, connection: Connection, body: bytes, events: int, json_bytes: int) -> None:
    """Post until acknowledged; a 503 waits for its Retry-After, a dropped connection reconnects."""
    while True:
        started = time.perf_counter()
        try:
            status, headers, payload = await connection.post("/v1/ingest", body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            fleet.retries += 1
            if len(fleet.errors) < 10:
                fleet.errors.append(f"connection: {exc!r}")
            await asyncio.sleep(0.5)
            continue
        fleet.samples.append(Sample(started, (time.perf_counter() - started) * 1000, events, json_bytes, status))
        if status == 200:
            return
        fleet.retries += 1
        if status != 503 and len(fleet.errors) < 10:
            fleet.errors.append(f"{status}: {payload[:300]!r}")
        if status != 503:
            return
        await asyncio.sleep(float(headers.get("retry-after", "1")))


async def lone_batch_ms(host: str, port: int, chunks: ChunkSet, runs: int = 20) -> list[float]:
    """An idle server acknowledging one small batch at a time."""
    connection = Connection(host, port)
    out = []
    for seq in range(runs):
        chunk = chunks.activity[1][0]
        body = splice(envelope_prefix(APP_ID, "lone-batch", seq, chunk.last_ts, seq == 0), chunk)
        started = time.perf_counter()
        status, _, payload = await connection.post("/v1/ingest", body)
        out.append((time.perf_counter() - started) * 1000)
        assert status == 200, payload
        await asyncio.sleep(0.2)
    connection.close()
    return out


async def sample_server(pid_cpu: Callable[[], float | None], rss: Callable[[], int | None], end_at: float,
                        out: list[dict[str, float]]) -> None:
    start = time.perf_counter()
    while time.perf_counter() < end_at:
        out.append({"t": round(time.perf_counter() - start, 1), "cpu_s": pid_cpu() or 0.0,
                    "rss_mib": round((rss() or 0) / 2**20, 1)})
        await asyncio.sleep(1.0)


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


async def drive(fleet: Fleet, server: ServerProcess, tabs: int, duration_s: float, seed: int
                ) -> tuple[list[dict[str, float]], float]:
    start = time.perf_counter() + 0.5
    end_at = start + duration_s
    trace: list[dict[str, float]] = []
    assert server.process is not None
    pid = server.process.pid
    sampler = asyncio.create_task(sample_server(server.cpu_seconds, lambda: rss_bytes(pid), end_at, trace))
    # tabs open over the first five seconds, as a fleet's do: not all at the same instant
    await asyncio.gather(*(run_tab(fleet, n, start + random.Random(n).uniform(0, 5), end_at, seed)
                           for n in range(tabs)))
    await sampler
    return trace, start


def summarize(fleet: Fleet, start: float, warmup_s: float, duration_s: float) -> dict[str, Any]:
    lo, hi = start + warmup_s, start + duration_s
    window = [s for s in fleet.samples if lo <= s.started < hi and s.status == 200]
    seconds = hi - lo
    lat = [s.latency_ms for s in window]
    events = sum(s.events for s in window)
    return {
        "window_s": round(seconds, 1), "batches": len(window), "events": events,
        "json_mb": round(sum(s.json_bytes for s in window) / 1e6, 1),
        "events_per_s": round(events / seconds), "batches_per_s": round(len(window) / seconds, 1),
        "json_mb_per_s": round(sum(s.json_bytes for s in window) / 1e6 / seconds, 2),
        "latency_ms": {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1),
                       "p99": round(percentile(lat, 99), 1), "max": round(max(lat, default=0), 1)},
        "rejected_503": sum(1 for s in fleet.samples if s.status == 503),
    }


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    load_before = load_average()
    chunks = build_chunks(args.seed, args.rate)
    cli("apps", "create", APP_ID, data_dir=data_dir, store=args.store)
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", data_dir=data_dir, store=args.store)
    fleet = Fleet("127.0.0.1", 0, chunks, args.rate, args.page_every, args.session_batches)
    with ServerProcess(data_dir, log_level="warning", store=args.store) as server:
        fleet.port = server.port
        lone = asyncio.run(lone_batch_ms("127.0.0.1", server.port, chunks))
        cpu_before, sender_before = server.cpu_seconds(), time.process_time()
        trace, start = asyncio.run(drive(fleet, server, args.tabs, args.duration, args.seed))
        cpu_after, sender_cpu = server.cpu_seconds(), time.process_time() - sender_before
        stored = count_stored(server.base_url, key)
        command = server.command
    summary = summarize(fleet, start, args.warmup, args.duration)
    floor = measure_floor(chunks, args.store, data_dir)
    rss = [p["rss_mib"] for p in trace]
    return {
        "benchmark": "ingest_fleet",
        "command": invocation(),
        "config": {"store": args.store, "tabs": args.tabs, "rate_per_tab": args.rate, "duration_s": args.duration,
                   "warmup_s": args.warmup, "page_every_s": args.page_every, "seed": args.seed,
                   "server_command": display_command(command, data_dir)},
        "offered_events_per_s": round(args.tabs * args.rate),
        **summary,
        "lone_batch_ms": {"p50": round(percentile(lone, 50), 1), "max": round(max(lone), 1)},
        "floor": floor, "ratio_to_floor": round(summary["events_per_s"] / floor["events_per_s"], 3),
        "server_cpu_s": None if cpu_after is None or cpu_before is None else round(cpu_after - cpu_before, 1),
        "sender_cpu_s": round(sender_cpu, 1),
        "rss_mib": {"first": rss[0] if rss else None, "max": max(rss, default=None), "last": rss[-1] if rss else None},
        "trace": trace,
        "retries": fleet.retries, "errors": fleet.errors, "stored": stored,
        "load_average_before": load_before, "load_average_after": load_average(), "machine": machine_info(),
    }


def measure_floor(chunks: ChunkSet, store_kind: str, data_dir: Path, group: int = 300, tabs: int = 1_000,
                  rounds: int = 6, seed: int = 1) -> dict[str, Any]:
    """The same event and recording rows appended straight into the same tables, in group-commit sized
    transactions: no HTTP, no sessionizing, no summaries. Rows are built before the clock starts."""
    from replayql.config import ClickHouseConfig, IngestLimits
    from replayql.ingest.sessionize import SessionizeOptions, SessionTail, sessionize
    from replayql.ingest.wire import decode_batch, decompress_body
    from replayql.store import schema
    from replayql.store.arrow import records_to_table
    from replayql.store.backends import open_backend

    limits, options = IngestLimits(), SessionizeOptions()
    compressor = zstandard.ZstdCompressor(level=3)
    tables, events, json_bytes = [], 0, 0
    bodies = batch_bodies(chunks, tabs, rounds, seed, APP_ID, name="floor")
    for start in range(0, len(bodies), group):
        writes = []
        for body in bodies[start:start + group]:
            payload = decompress_body(body, "gzip", limits)
            batch = decode_batch(payload, limits)
            writes.append(sessionize(batch, SessionTail(), options)[0])
            events, json_bytes = events + len(batch.events), json_bytes + len(payload)
        recordings = [w.recording for w in writes if w.recording is not None]
        if store_kind == "duckdb":  # DuckDB keeps recordings zstd-compressed (ClickHouse: a column codec)
            recordings = [replace(r, data=compressor.compress(r.data)) for r in recordings]
        tables.append((records_to_table([e for w in writes for e in w.events], schema.EVENT_TYPES.items()),
                       records_to_table(recordings, schema.RECORDING_COLUMNS)))
    config = ClickHouseConfig(f"chdb://{data_dir / 'floor-chdb'}") if store_kind == "clickhouse" else None
    backend = open_backend(data_dir / "floor", config)
    started = time.perf_counter()
    for event_rows, recording_rows in tables:
        _append(backend.store, store_kind, event_rows, recording_rows)
    seconds = time.perf_counter() - started
    backend.close()
    return {"events": events, "json_mb": round(json_bytes / 1e6, 1), "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds), "json_mb_per_s": round(json_bytes / 1e6 / seconds, 1)}


def _append(store: Any, store_kind: str, event_rows: Any, recording_rows: Any) -> None:
    if store_kind == "clickhouse":
        store.insert_rows("events", event_rows)
        store.insert_rows("recordings", recording_rows)
        return
    with store.transaction() as conn:
        for table, rows in (("events", event_rows), ("recordings", recording_rows)):
            conn.from_arrow(rows).insert_into(table)


def count_stored(base_url: str, key: str) -> dict[str, int]:
    import httpx2 as httpx

    query = "{ sessions(first: 0) { totalCount } events(first: 0) { totalCount } }"
    response = httpx.post(f"{base_url}/graphql", json={"query": query}, headers={"authorization": f"token {key}"},
                          timeout=300.0)
    data = response.json()["data"]
    return {"sessions": data["sessions"]["totalCount"], "event_rows": data["events"]["totalCount"]}


def markdown(result: dict[str, Any]) -> str:
    c, lat = result["config"], result["latency_ms"]
    header = ["store", "tabs", "events", "MB", "events/s", "MB/s", "p50 ms", "p95 ms", "p99 ms", "lone ms",
              "server CPU s", "RSS max MiB", "sender CPU s", "503s", "floor events/s", "ratio"]
    row = [c["store"], f"{c['tabs']:,}", f"{result['events']:,}", fmt(result["json_mb"], 0),
           f"{result['events_per_s']:,}", fmt(result["json_mb_per_s"], 1), fmt(lat["p50"], 0), fmt(lat["p95"], 0),
           fmt(lat["p99"], 0), fmt(result["lone_batch_ms"]["p50"], 1), fmt(result["server_cpu_s"], 0),
           fmt(result["rss_mib"]["max"], 0), fmt(result["sender_cpu_s"], 0), str(result["rejected_503"]),
           f"{result['floor']['events_per_s']:,}", fmt(result["ratio_to_floor"], 2)]
    return markdown_table(header, [row])


def add_fleet_arguments(parser: argparse.ArgumentParser, tabs: int, rate: float, duration: float) -> None:
    """The fleet's shape and length, the same options wherever a fleet is sent."""
    parser.add_argument("--tabs", type=int, default=tabs, help="concurrent sessions (browser tabs)")
    parser.add_argument("--rate", type=float, default=rate, help="rrweb events per second per tab")
    parser.add_argument("--page-every", type=float, default=20.0, help="mean seconds between page views")
    parser.add_argument("--session-batches", type=int, default=60, help="batches per session, then a new one")
    parser.add_argument("--duration", type=float, default=duration, help="seconds of traffic")


def allow_many_sockets() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per tab, on both ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fleet_arguments(parser, tabs=2_500, rate=40.0, duration=60.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds left out of the figures")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=STORES, default="duckdb")
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/ingest-fleet-<store>.json)")
    args = parser.parse_args()
    allow_many_sockets()
    with tempfile.TemporaryDirectory(prefix="replayql-fleet-") as tmp:
        result = run(args, Path(tmp))
    out = args.out or RESULTS_DIR / f"ingest-fleet-{args.store}.json"
    write_json(out, result)
    print(markdown(result))
    print(f"offered ~{result['offered_events_per_s']:,} events/s; stored {result['stored']}; "
          f"retries {result['retries']}; rss {result['rss_mib']}")
    for error in result["errors"]:
        print("  error:", error)
    print(f"result written to {out}")


if __name__ == "__main__":
    main()
