"""Ingestion over HTTP: generated batches sent to a real `replayql serve` by concurrent keep-alive clients.

    python bench/ingest_http.py [--sessions 10000] [--seed 1] [--concurrency 16] [--gzip]
                                [--store duckdb|clickhouse]

Every batch is serialized (and gzipped, with --gzip) before the clock starts. Each client takes whole sessions
from a shared queue and sends a session's batches in order, as a browser does; a request ends when the server
answers, which it does only after the batch is committed, so the wall time is the time until everything is
durable. Reports batches/s, events/s and per-request latency, and writes bench/results/ingest*.json.

--store clickhouse serves a fresh in-process chDB database at `chdb://<tmp>/chdb` instead of DuckDB. chDB
allows one process per path, so the app and the read key used to count the result afterwards are created with
the CLI before the server starts (for both stores, so that both run the same steps).

The generator stamps sessions over the past days, so the server sees every batch as coming from a client whose
clock is off and shifts its timestamps to the arrival time (clock-skew correction). That costs nothing extra,
but the stored data is then not the generated data set: the query benchmark loads its own with
`replayql generate --data-dir` unless given a data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

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
    machine_cpu_seconds,
    machine_info,
    markdown_table,
    percentile,
    write_json,
)
from replayql.generate import generate_batches


@dataclass(frozen=True)
class Body:
    content: bytes
    events: int


def prepare(sessions: int, seed: int, compress: bool) -> tuple[list[list[Body]], int, int]:
    """The data set as pre-serialized request bodies grouped by session (in order); (sessions, events, bytes)."""
    grouped: list[list[Body]] = []
    current_id = None
    events = raw_bytes = 0
    for batch in generate_batches(APP_ID, sessions, seed=seed):
        content = orjson.dumps(batch)
        raw_bytes += len(content)
        if compress:
            content = gzip.compress(content, compresslevel=6)
        if batch["sessionId"] != current_id:
            grouped.append([])
            current_id = batch["sessionId"]
        grouped[-1].append(Body(content, len(batch["events"])))
        events += len(batch["events"])
    return grouped, events, raw_bytes


@dataclass
class Outcome:
    latencies_ms: list[float]
    statuses: Counter[int]
    outcomes: Counter[str]
    failures: list[str]
    wall_s: float


async def send_all(base_url: str, sessions: list[list[Body]], concurrency: int, compress: bool) -> Outcome:
    headers = {"content-type": "application/json"}
    if compress:
        headers["content-encoding"] = "gzip"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    queue = iter(sessions)  # shared by the workers; next() never awaits, so no lock is needed

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0) as client:
        # Open the keep-alive connections before the clock starts.
        await asyncio.gather(*(client.get("/healthz") for _ in range(concurrency)))

        async def worker() -> None:
            for session in queue:
                for body in session:
                    started = time.perf_counter()
                    response = await client.post("/v1/ingest", content=body.content, headers=headers)
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        outcomes[response.json()["outcome"]] += 1
                    elif len(failures) < 10:
                        failures.append(f"{response.status_code}: {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return Outcome(latencies, statuses, outcomes, failures, wall)


def verify(base_url: str, key: str) -> dict[str, Any]:
    """What the server holds afterwards, asked through the API with a read key."""
    query = "{ sessions(first: 0) { totalCount } issues(first: 0) { totalCount } users(first: 0) { totalCount } }"
    response = httpx.post(f"{base_url}/graphql", json={"query": query},
                          headers={"authorization": f"token {key}"}, timeout=120.0)
    data = response.json()["data"]
    return {name: data[name]["totalCount"] for name in ("sessions", "issues", "users")}


def run(sessions: int, seed: int, concurrency: int, compress: bool, data_dir: Path,
        server_log_level: str, store: str = "duckdb") -> dict[str, Any]:
    load_before = load_average()
    t0 = time.perf_counter()
    grouped, events, raw_bytes = prepare(sessions, seed, compress)
    prepare_s = time.perf_counter() - t0
    batches = sum(len(s) for s in grouped)
    wire_bytes = sum(len(b.content) for s in grouped for b in s)

    # Before the server opens the store: chDB allows one process per path.
    cli("apps", "create", APP_ID, data_dir=data_dir, store=store)
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-verify", data_dir=data_dir,
              store=store)
    with ServerProcess(data_dir, log_level=server_log_level, store=store) as server:
        server_cpu_before = server.cpu_seconds()
        client_cpu_before = time.process_time()
        machine_cpu_before = machine_cpu_seconds()
        outcome = asyncio.run(send_all(server.base_url, grouped, concurrency, compress))
        machine_cpu_after = machine_cpu_seconds()
        client_cpu = time.process_time() - client_cpu_before
        server_cpu_after = server.cpu_seconds()
        stored = verify(server.base_url, key)
        command = server.command
    server_cpu = (server_cpu_after - server_cpu_before
                  if server_cpu_after is not None and server_cpu_before is not None else None)
    other_cpu = None  # CPU that other processes on the machine used meanwhile: a measure of interference
    if server_cpu is not None and machine_cpu_before is not None and machine_cpu_after is not None:
        other_cpu = max(0.0, machine_cpu_after - machine_cpu_before - server_cpu - client_cpu)
    lat = outcome.latencies_ms
    return {
        "benchmark": "ingest_http",
        "command": invocation(),
        "config": {"store": store, "sessions": sessions, "seed": seed, "concurrency": concurrency,
                   "gzip": compress, "server_command": display_command(command, data_dir)},
        "data": {"batches": batches, "events": events, "json_bytes": raw_bytes, "wire_bytes": wire_bytes,
                 "prepare_s": round(prepare_s, 3)},
        "wall_s": round(outcome.wall_s, 3),
        "batches_per_s": round(batches / outcome.wall_s, 1),
        "events_per_s": round(events / outcome.wall_s, 1),
        "wire_mib_per_s": round(wire_bytes / outcome.wall_s / 2**20, 2),
        "latency_ms": {"p50": round(percentile(lat, 50), 2), "p95": round(percentile(lat, 95), 2),
                       "p99": round(percentile(lat, 99), 2), "max": round(max(lat), 2)},
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "other_cpu_s": None if other_cpu is None else round(other_cpu, 2),
        "statuses": {str(k): v for k, v in sorted(outcome.statuses.items())},
        "outcomes": dict(outcome.outcomes),
        "failures": outcome.failures,
        "stored": stored,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }


def markdown(result: dict[str, Any]) -> str:
    c, d, lat = result["config"], result["data"], result["latency_ms"]
    header = ["sessions", "batches", "events", "clients", "gzip", "wall s", "batches/s", "events/s", "MiB/s",
              "p50 ms", "p95 ms", "p99 ms", "server CPU s", "client CPU s"]
    row = [f"{c['sessions']:,}", f"{d['batches']:,}", f"{d['events']:,}", str(c["concurrency"]),
           "yes" if c["gzip"] else "no", fmt(result["wall_s"], 2), fmt(result["batches_per_s"], 0),
           fmt(result["events_per_s"], 0), fmt(result["wire_mib_per_s"], 2), fmt(lat["p50"], 1),
           fmt(lat["p95"], 1), fmt(lat["p99"], 1), fmt(result["server_cpu_s"], 1), fmt(result["client_cpu_s"], 1)]
    return markdown_table(header, [row])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--gzip", action="store_true", help="send bodies with Content-Encoding: gzip")
    parser.add_argument("--store", choices=STORES, default="duckdb",
                        help="duckdb (default) or clickhouse (in-process chDB at <data dir>/chdb)")
    parser.add_argument("--data-dir", type=Path, help="store to ingest into (must not exist yet); kept "
                                                      "afterwards. Default: a temporary directory, removed.")
    parser.add_argument("--server-log-level", default="warning",
                        help="uvicorn log level of the server (info logs every request)")
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/ingest[-gzip].json)")
    args = parser.parse_args()

    if args.data_dir is not None:
        if args.data_dir.exists():
            raise SystemExit(f"{args.data_dir} exists; give a new directory")
        args.data_dir.mkdir(parents=True)
        result = run(args.sessions, args.seed, args.concurrency, args.gzip, args.data_dir, args.server_log_level,
                     args.store)
    else:
        with tempfile.TemporaryDirectory(prefix="replayql-bench-") as tmp:
            result = run(args.sessions, args.seed, args.concurrency, args.gzip, Path(tmp), args.server_log_level,
                         args.store)
    out = args.out or RESULTS_DIR / ("ingest-gzip.json" if args.gzip else "ingest.json")
    write_json(out, result)
    print(markdown(result))
    print(f"statuses {result['statuses']}  outcomes {result['outcomes']}  stored {result['stored']}")
    for failure in result["failures"]:
        print("  failed:", failure)
    print(f"server CPU {fmt(result['server_cpu_s'], 1)} s, client CPU {fmt(result['client_cpu_s'], 1)} s, "
          f"other processes {fmt(result['other_cpu_s'], 1)} s over {fmt(result['wall_s'], 2)} s wall")
    print(f"result written to {out}")


if __name__ == "__main__":
    main()

