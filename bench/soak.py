"""Soak: ingest and queries at once against one real `replayql serve` for ten minutes, on loopback.

    python bench/soak.py [--duration 600] [--tabs 300] [--rate 20] [--query-clients 2] [--sessions 5000]

The store is loaded first with `replayql generate --sessions N` (so the queries read a store of some size),
then a fleet of browser tabs (bench/fleet.py, as in ingest_fleet.py: gzip batches every 1-5 s, recordings most of
the bytes) posts to /v1/ingest while `--query-clients` threads send a dashboard's GraphQL queries
(query_graphql.py's cases, each a named operation) back to back. The server's RSS is sampled every second.

Reported: ingest events/s and batches/s, query requests/s, p50/p95/p99 of both, errors (any answer but 200 and
503-with-Retry-After on ingest; any non-200 or `errors` on GraphQL), RSS at the start and end of the traffic and
its maximum, and whether `/metrics` counted exactly what the load generator sent: batches and events by outcome,
and GraphQL requests by operation.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from _common import (
    APP_ID,
    BENCH_DIR,
    RESULTS_DIR,
    ServerProcess,
    cli,
    cli_run,
    display_command,
    fmt,
    invocation,
    load_average,
    machine_info,
    markdown_table,
    percentile,
    replace_section,
    write_json,
)
from fleet import build_chunks
from ingest_fleet import Fleet, add_fleet_arguments, allow_many_sockets, drive
from query_graphql import Case, Client, cases


@dataclass
class QueryLoad:
    """What the query threads sent and got back."""

    stop: threading.Event = field(default_factory=threading.Event)
    latencies_ms: list[float] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)  # by operation name
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def query_loop(base_url: str, key: str, timed: list[Case], load: QueryLoad, offset: int) -> None:
    """One dashboard user: the cases in turn, each request as soon as the last one answered."""
    client = Client(base_url, key)
    try:
        n = offset
        while not load.stop.is_set():
            case = timed[n % len(timed)]
            n += 1
            operation = case.query.split("{", 1)[0].split("(", 1)[0].split()[1]
            started = time.perf_counter()
            response = client.http.post("/graphql", json={"query": case.query, "variables": case.variables})
            elapsed = (time.perf_counter() - started) * 1000
            failed = response.status_code != 200 or "errors" in response.json()
            with load.lock:
                load.latencies_ms.append(elapsed)
                load.sent[operation] += 1
                if failed:
                    load.error_count += 1
                    if len(load.errors) < 10:
                        load.errors.append(f"{operation} {response.status_code}: {response.text[:300]}")
    finally:
        client.close()


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, labels)."""
    text = httpx.get(f"{base_url}/metrics", timeout=30.0).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def check_metrics(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], fleet: Fleet,
                  queries: QueryLoad, before: dict[tuple[str, tuple[tuple[str, str], ...]], float]
                  ) -> dict[str, Any]:
    """What the load generator counted against what /metrics counted over the same traffic."""
    acknowledged = [s for s in fleet.samples if s.status == 200]
    sent = {"batches_acknowledged": len(acknowledged), "events_acknowledged": sum(s.events for s in acknowledged),
            "batches_503": sum(1 for s in fleet.samples if s.status == 503),
            "graphql_requests": dict(sorted(queries.sent.items()))}

    def delta(name: str, **labels: str) -> int:
        return round(metric(samples, name, **labels) - metric(before, name, **labels))

    counted = {
        "batches_acknowledged": delta("replayql_ingest_batches_total", outcome="stored")
        + delta("replayql_ingest_batches_total", outcome="duplicate"),
        "events_acknowledged": delta("replayql_ingest_events_total", outcome="stored")
        + delta("replayql_ingest_events_total", outcome="duplicate"),
        "batches_503": delta("replayql_ingest_batches_total", outcome="overloaded"),
        "graphql_requests": {op: delta("replayql_graphql_request_seconds_count", operation=op)
                             for op in sorted(queries.sent)},
    }
    return {"sent": sent, "metrics": counted, "equal": sent == counted}


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    load_before = load_average()
    generated = cli_run("generate", "--sessions", str(args.sessions), "--seed", str(args.seed), data_dir=data_dir)
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-soak", data_dir=data_dir)
    chunks = build_chunks(args.seed, args.rate)
    fleet = Fleet("127.0.0.1", 0, chunks, args.rate, args.page_every, args.session_batches)
    queries = QueryLoad()
    with ServerProcess(data_dir, log_level="warning") as server:
        fleet.port = server.port
        setup = Client(server.base_url, key)
        timed = cases(setup)  # the ids and cursors the queries need, looked up before the counting starts
        setup.close()
        before = scrape(server.base_url)
        threads = [threading.Thread(target=query_loop, args=(server.base_url, key, timed, queries, n), daemon=True)
                   for n in range(args.query_clients)]
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        trace, _ = asyncio.run(drive(fleet, server, args.tabs, args.duration, args.seed))
        queries.stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        time.sleep(1.0)  # the last answers are counted before they are sent; let the scrape see them all
        metrics = check_metrics(scrape(server.base_url), fleet, queries, before)
        command = server.command
    return summarize(args, fleet, queries, trace, elapsed, metrics) | {
        "commands": {"generate": display_command(list(generated.args), data_dir),
                     "server": display_command(command, data_dir)},
        "load_average_before": load_before, "load_average_after": load_average(), "machine": machine_info()}


def summarize(args: argparse.Namespace, fleet: Fleet, queries: QueryLoad, trace: list[dict[str, float]],
              elapsed_s: float, metrics: dict[str, Any]) -> dict[str, Any]:
    ok = [s for s in fleet.samples if s.status == 200]
    ingest_ms = [s.latency_ms for s in ok]
    ingest_errors = [s for s in fleet.samples if s.status not in (200, 503)]
    rss = [p["rss_mib"] for p in trace if p["rss_mib"]]
    # RSS at start and end of the traffic: the median of its first and last minute, so one spike cannot decide
    window = max(1, min(60, len(rss) // 4))
    return {
        "benchmark": "soak",
        "command": invocation(),
        "config": {"duration_s": args.duration, "tabs": args.tabs, "rate_per_tab": args.rate,
                   "query_clients": args.query_clients, "sessions_loaded": args.sessions, "seed": args.seed,
                   "store": "duckdb"},
        "elapsed_s": round(elapsed_s, 1),
        "ingest": {"batches": len(ok), "events": sum(s.events for s in ok),
                   "events_per_s": round(sum(s.events for s in ok) / elapsed_s),
                   "batches_per_s": round(len(ok) / elapsed_s, 1),
                   "json_mb_per_s": round(sum(s.json_bytes for s in ok) / 1e6 / elapsed_s, 2),
                   "latency_ms": _percentiles(ingest_ms), "answered_503": metrics["sent"]["batches_503"],
                   "errors": len(ingest_errors) + len(fleet.errors), "error_samples": fleet.errors[:10]},
        "queries": {"requests": len(queries.latencies_ms),
                    "requests_per_s": round(len(queries.latencies_ms) / elapsed_s, 1),
                    "latency_ms": _percentiles(queries.latencies_ms), "errors": queries.error_count,
                    "error_samples": queries.errors},
        "rss_mib": {"start": round(statistics.median(rss[:window]), 1) if rss else None,
                    "end": round(statistics.median(rss[-window:]), 1) if rss else None,
                    "max": max(rss, default=None)},
        "metrics_check": metrics,
        "trace": trace[::10],  # every 10 s: enough to see growth
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{p}": round(percentile(values, p), 1) for p in (50, 95, 99)} | {
        "max": round(max(values, default=0.0), 1)}


def markdown(result: dict[str, Any]) -> str:
    ingest, queries, rss = result["ingest"], result["queries"], result["rss_mib"]
    check = result["metrics_check"]
    rows = [
        ["ingest", f"{ingest['events']:,} events in {ingest['batches']:,} batches",
         f"{ingest['events_per_s']:,} events/s ({ingest['json_mb_per_s']} MB/s)", fmt(ingest["latency_ms"]["p50"]),
         fmt(ingest["latency_ms"]["p95"]), fmt(ingest["latency_ms"]["p99"]), str(ingest["errors"])],
        ["GraphQL", f"{queries['requests']:,} requests", f"{queries['requests_per_s']} requests/s",
         fmt(queries["latency_ms"]["p50"]), fmt(queries["latency_ms"]["p95"]), fmt(queries["latency_ms"]["p99"]),
         str(queries["errors"])],
    ]
    table = markdown_table(["traffic", "sent", "throughput", "p50 ms", "p95 ms", "p99 ms", "errors"], rows)
    return "\n".join([
        table, "",
        f"RSS: {fmt(rss['start'], 0)} MiB in the first minute, {fmt(rss['end'], 0)} MiB in the last, "
        f"{fmt(rss['max'], 0)} MiB at most. 503 answers (backpressure, resent): {ingest['answered_503']}.",
        f"`/metrics` against the load generator: {'equal' if check['equal'] else 'DIFFERENT'} "
        f"(acknowledged batches {check['sent']['batches_acknowledged']:,} / "
        f"{check['metrics']['batches_acknowledged']:,}, events {check['sent']['events_acknowledged']:,} / "
        f"{check['metrics']['events_acknowledged']:,}, GraphQL requests by operation "
        f"{'equal' if check['sent']['graphql_requests'] == check['metrics']['graphql_requests'] else 'different'}).",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fleet_arguments(parser, tabs=300, rate=20.0, duration=600.0)
    parser.add_argument("--query-clients", type=int, default=2, help="threads sending GraphQL queries")
    parser.add_argument("--sessions", type=int, default=5_000, help="sessions generated before the traffic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "soak.json")
    args = parser.parse_args()
    allow_many_sockets()
    with tempfile.TemporaryDirectory(prefix="replayql-soak-") as tmp:
        result = run(args, Path(tmp))
    write_json(args.out, result)
    text = markdown(result)
    print(text)
    if args.out == RESULTS_DIR / "soak.json":
        heading = "## Soak: ingest and queries at once for ten minutes (issue 12)"
        replace_section(BENCH_DIR / "RESULTS.md", heading, f"{heading}\n\n```sh\n{result['command']}\n```\n\n{text}")


if __name__ == "__main__":
    main()
