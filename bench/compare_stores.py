"""DuckDB vs ClickHouse: the same benchmarks on both stores, side by side, with the ratio ClickHouse/DuckDB.

    python bench/compare_stores.py [--sessions 100000] [--ingest-sessions 10000] [--concurrency 32] [--seed 1]
                                   [--runs 40] [--stores duckdb clickhouse] [--resume] [--wait-idle SECONDS]

For each store (ClickHouse as in-process chDB at `chdb://<tmp>/chdb`, a fresh temporary directory per run):

1. `bench/query_graphql.py --store S --sessions N`: loads N generated sessions (seed 1) with `replayql generate`
   (the bulk-import path; its events/s is the bulk-load rate), then times every GraphQL query (p50/p95) on them.
2. `bench/ingest_http.py --store S --sessions M --concurrency C`: HTTP ingest of M sessions by C clients.

Both stores get the same generated data set, so the query answers must agree (the table says so). Each step runs
as its own process and writes bench/results/compare-<step>-<store>.json; --resume reuses a step's result when one
with the same configuration is there (to add a store, or to finish an interrupted run). The side-by-side tables
go to stdout, to bench/results/compare.json and into bench/RESULTS.md as the section "DuckDB vs ClickHouse".
"""

from __future__ import annotations

import argparse
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    NAMES,
    RESULTS_DIR,
    STORES,
    fmt,
    invocation,
    machine_info,
    markdown_table,
    replace_section,
    write_json,
)
from run import REPO, bench

HEADING = "## DuckDB vs ClickHouse"


def step(script: str, args: list[str], out: Path, idle_s: float, resume: bool,
         expected: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run one benchmark (or, with --resume, reuse its result if its configuration is `expected`)."""
    command = shlex.join(["python", f"bench/{script}", *args, "--out", str(out.relative_to(REPO))])
    if resume and out.exists():
        result = json.loads(out.read_text())
        if all(result["config"].get(k) == v for k, v in expected.items()):
            print(f"reusing {out.relative_to(REPO)} ({command})", flush=True)
            return command, result
    return bench(script, args, out, idle_s)


def ratio(clickhouse: float | None, duckdb: float | None) -> str:
    if clickhouse is None or not duckdb:
        return "n/a"
    return f"{clickhouse / duckdb:.2f}"


def ingest_table(query: dict[str, dict[str, Any]], ingest: dict[str, dict[str, Any]]) -> str:
    duck, click = "duckdb", "clickhouse"
    loads = {s: query[s]["load"] for s in query}

    def row(label: str, values: dict[str, float | None], digits: int, with_ratio: bool = True) -> list[str]:
        return [label, fmt(values.get(duck), digits), fmt(values.get(click), digits),
                ratio(values.get(click), values.get(duck)) if with_ratio else ""]

    sessions = next(iter(query.values()))["config"]["sessions"]
    c = next(iter(ingest.values()))["config"]
    ingest_label = f"HTTP ingest, {c['sessions']:,} sessions, {c['concurrency']} clients"
    rows = [
        row(f"bulk load (`replayql generate`, {sessions:,} sessions): events/s",
            {s: v["events_per_s"] for s, v in loads.items()}, 0),
        row("  wall s (generation included)", {s: v["seconds"] for s, v in loads.items()}, 1),
        row("  CPU s of the `generate` process", {s: v["cpu_s"] for s, v in loads.items()}, 1),
        row("  other processes' CPU s meanwhile", {s: v["other_cpu_s"] for s, v in loads.items()}, 1, False),
        row(f"{ingest_label}: events/s", {s: r["events_per_s"] for s, r in ingest.items()}, 0),
        row("  batches/s", {s: r["batches_per_s"] for s, r in ingest.items()}, 0),
        row("  request latency p50 ms", {s: r["latency_ms"]["p50"] for s, r in ingest.items()}, 1),
        row("  request latency p95 ms", {s: r["latency_ms"]["p95"] for s, r in ingest.items()}, 1),
        row("  request latency p99 ms", {s: r["latency_ms"]["p99"] for s, r in ingest.items()}, 1),
        row("  server CPU s", {s: r["server_cpu_s"] for s, r in ingest.items()}, 1),
        row("  client CPU s", {s: r["client_cpu_s"] for s, r in ingest.items()}, 1, False),
        row("  other processes' CPU s meanwhile", {s: r["other_cpu_s"] for s, r in ingest.items()}, 1, False),
    ]
    return markdown_table(["measure", "DuckDB", "ClickHouse", "ClickHouse/DuckDB"], rows)


def query_table(query: dict[str, dict[str, Any]]) -> str:
    duck = {q["name"]: q for q in query["duckdb"]["queries"]} if "duckdb" in query else {}
    click = {q["name"]: q for q in query["clickhouse"]["queries"]} if "clickhouse" in query else {}
    rows = []
    for name in duck or click:
        d, c = duck.get(name, {}), click.get(name, {})
        answers = {d.get("result"), c.get("result")} - {None}
        answer = answers.pop() if len(answers) == 1 else " / ".join(str(a) for a in (d.get("result"),
                                                                                     c.get("result")))
        rows.append([f"`{name}`", fmt(d.get("p50_ms"), 1), fmt(c.get("p50_ms"), 1),
                     ratio(c.get("p50_ms"), d.get("p50_ms")), fmt(d.get("p95_ms"), 1), fmt(c.get("p95_ms"), 1),
                     ratio(c.get("p95_ms"), d.get("p95_ms")), answer])
    return markdown_table(["query", "DuckDB p50 ms", "ClickHouse p50 ms", "p50 ClickHouse/DuckDB",
                           "DuckDB p95 ms", "ClickHouse p95 ms", "p95 ClickHouse/DuckDB",
                           "answer (DuckDB / ClickHouse if they differ)"], rows)


def section(started: datetime, commands: list[str], query: dict[str, dict[str, Any]],
            ingest: dict[str, dict[str, Any]]) -> str:
    info = machine_info()
    packages = info["packages"]
    any_query = next(iter(query.values()))
    runs, warmup = any_query["config"]["runs"], any_query["config"]["warmup"]
    stores = ", ".join(f"{NAMES[s]}: {r['store']['sessions']:,} sessions, {r['store']['events']:,} events, "
                       f"{r['store']['users']:,} users, {r['store']['issues']} issues" for s, r in query.items())
    interference = "; ".join(f"{NAMES[s]} queries {fmt(r['other_cpu_s'], 1)} CPU s (load average "
                             f"{r['load_average_before']} -> {r['load_average_after']})" for s, r in query.items())
    lines = [
        HEADING, "",
        f"Measured {started.strftime('%Y-%m-%d %H:%M UTC')} by `python bench/compare_stores.py` on "
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}, "
        f"DuckDB {info['duckdb']}, chDB {packages['chdb']} (chdb-core {packages['chdb-core']}), clickhouse-connect "
        f"{packages['clickhouse-connect']}. ClickHouse is in-process chDB (`--store clickhouse --clickhouse-url "
        "chdb://<tmp>/chdb`), a fresh database per run; DuckDB is the default store in `--data-dir <tmp>`. "
        "Other processes shared the machine; their CPU seconds are recorded per step.", "",
        "```sh", invocation() + "   # all of the below, then this section",
        *commands, "```", "",
        "### Loading and ingestion", "",
        "Ratio ClickHouse/DuckDB: above 1 means more events/s (faster) or more ms / CPU s (slower) on ClickHouse.",
        "",
        ingest_table(query, ingest), "",
        *(f"- {NAMES[s]} HTTP ingest: statuses {r['statuses']}, outcomes {r['outcomes']}, afterwards the API counts "
          f"{r['stored']}" for s, r in ingest.items()), "",
        "### GraphQL queries on the bulk-loaded store", "",
        f"Same generated data set on both stores ({stores}). Each query: {warmup} warm-up requests, then {runs} "
        f"timed ones from one keep-alive client. Other processes: {interference}.", "",
        query_table(query), "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions of the bulk-loaded query store")
    parser.add_argument("--ingest-sessions", type=int, default=10_000, help="sessions sent over HTTP")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP ingest clients")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per query")
    parser.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    parser.add_argument("--resume", action="store_true",
                        help="reuse each step's result in bench/results/ if its configuration matches")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each step, wait up to this long for the cores to be idle")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS.md",
                        help="Markdown file whose section 'DuckDB vs ClickHouse' is (re)written")
    args = parser.parse_args()

    started = datetime.now(UTC)
    query: dict[str, dict[str, Any]] = {}
    ingest: dict[str, dict[str, Any]] = {}
    commands: list[str] = []
    for store in args.stores:
        query_args = ["--store", store, "--sessions", str(args.sessions), "--seed", str(args.seed), "--runs",
                      str(args.runs)]
        command, query[store] = step("query_graphql.py", query_args, RESULTS_DIR / f"compare-query-{store}.json",
                                     args.wait_idle, args.resume,
                                     {"store": store, "sessions": args.sessions, "seed": args.seed,
                                      "runs": args.runs})
        commands.append(command)
        load = query[store]["load"]
        print(f"{NAMES[store]}: `generate` loaded {load['events']:,} events in {load['seconds']} s "
              f"({fmt(load['events_per_s'], 0)} events/s)", flush=True)
        ingest_args = ["--store", store, "--sessions", str(args.ingest_sessions), "--seed", str(args.seed),
                       "--concurrency", str(args.concurrency)]
        command, ingest[store] = step("ingest_http.py", ingest_args, RESULTS_DIR / f"compare-ingest-{store}.json",
                                      args.wait_idle, args.resume,
                                      {"store": store, "sessions": args.ingest_sessions, "seed": args.seed,
                                       "concurrency": args.concurrency, "gzip": False})
        commands.append(command)

    text = section(started, commands, query, ingest)
    write_json(RESULTS_DIR / "compare.json", {"benchmark": "compare_stores", "command": invocation(),
                                              "machine": machine_info(), "commands": commands, "query": query,
                                              "ingest": ingest})
    replace_section(args.output, HEADING, text)
    print(text)
    print(f"wrote the section {HEADING[3:]!r} of {args.output}")


if __name__ == "__main__":
    main()
