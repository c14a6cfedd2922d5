"""Run every benchmark and write bench/RESULTS.md (machine, exact commands, figures).

    python bench/run.py [--sessions 10000] [--concurrency 16 64] [--runs 40] [--wait-idle 300]

Each benchmark runs as its own process, exactly as the command printed in RESULTS.md; their JSON results land in
bench/results/. With --wait-idle the runner first waits (up to that many seconds) for the machine's cores to be
idle, because every figure here is skewed by other work on the same cores.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ingest_http
import query_graphql
from _common import BENCH_DIR, RESULTS_DIR, cpu_busy, fmt, invocation, machine_info, markdown_table

REPO = BENCH_DIR.parent


def wait_idle(limit_s: float) -> None:
    """Wait until the cores are quiet (under 15% busy over 5 s, twice in a row), for at most `limit_s`."""
    deadline = time.monotonic() + limit_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        busy = cpu_busy(5.0)
        if busy is None:
            return
        quiet = quiet + 1 if busy < 0.15 else 0
        if not quiet:
            print(f"waiting for an idle machine ({busy:.0%} of the cores busy)", flush=True)
    if quiet < 2:
        print("the machine is still busy; measuring anyway (see the load averages in the results)", flush=True)


def bench(script: str, args: list[str], out: Path, idle_s: float) -> tuple[str, dict[str, Any]]:
    """Run one benchmark script; returns (the command as typed from the repository root, its JSON result)."""
    if idle_s:
        wait_idle(idle_s)
    command = ["python", f"bench/{script}", *args, "--out", str(out.relative_to(REPO))]
    print("$", shlex.join(command), flush=True)
    subprocess.run([sys.executable, *command[1:]], cwd=REPO, check=True)
    return shlex.join(command), json.loads(out.read_text())


def _loads(result: dict[str, Any]) -> str:
    return f"{result['load_average_before']} -> {result['load_average_after']}"


def ingest_section(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    header = ["clients", "gzip", "batches", "events", "wall s", "batches/s", "events/s", "MiB/s", "p50 ms",
              "p95 ms", "p99 ms", "server CPU s", "client CPU s", "other CPU s"]
    rows = []
    for _, r in runs:
        c, d, lat = r["config"], r["data"], r["latency_ms"]
        rows.append([str(c["concurrency"]), "yes" if c["gzip"] else "no", f"{d['batches']:,}", f"{d['events']:,}",
                     fmt(r["wall_s"], 2), fmt(r["batches_per_s"], 0), fmt(r["events_per_s"], 0),
                     fmt(r["wire_mib_per_s"], 2), fmt(lat["p50"], 1), fmt(lat["p95"], 1), fmt(lat["p99"], 1),
                     fmt(r["server_cpu_s"], 1), fmt(r["client_cpu_s"], 1), fmt(r["other_cpu_s"], 1)])
    checks = [f"- clients {r['config']['concurrency']}{' gzip' if r['config']['gzip'] else ''}: HTTP statuses "
              f"{r['statuses']}, outcomes {r['outcomes']}, afterwards the API counts {r['stored']}"
              for _, r in runs]
    return ["## Ingestion over HTTP (`bench/ingest_http.py`)", "",
            "Wall time from the first request to the last answer; every answer comes after the batch's commit.",
            "Latency is per request (one batch) as seen by the client. CPU seconds are over the timed part: "
            "server process, benchmark client, and every other process on the machine (interference).", "",
            markdown_table(header, rows), "", *checks, ""]


def query_section(command: str, result: dict[str, Any]) -> list[str]:
    lines = ["## GraphQL queries over HTTP (`bench/query_graphql.py`)", ""]
    if result["load"]:
        load = result["load"]
        events = result["store"]["events"]
        lines += [f"Store loaded with `{shlex.join(load['command'])}` "
                  f"in {load['seconds']} s (the bulk-import path, same validation and enrichment as HTTP)."]
        lines += [f"The store then holds {result['store']['sessions']:,} sessions, {events:,} events (rrweb "
                  f"recording events are stored apart), {result['store']['users']:,} identified users and "
                  f"{result['store']['issues']} issues.", ""]
    config = result["config"]
    lines += [f"Each query: {config['warmup']} warm-up requests, then {config['runs']} timed requests one after "
              f"another from one keep-alive client; latency is the full HTTP round trip. Meanwhile other processes on "
              f"the machine used {fmt(result['other_cpu_s'], 1)} CPU s (load average {_loads(result)}).",
              "", query_graphql.markdown(result), ""]
    return lines


def machine_section(info: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return ["## Machine", "",
            f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory_gib']} GiB",
            f"- OS: {info['os']}",
            f"- Python {info['python']}, DuckDB {info['duckdb']}",
            f"- Packages: {packages}",
            "- Client and server share these cores; the client is one Python process (httpx2, asyncio).", ""]


def kept_comparison(path: Path) -> list[str]:
    """The store comparison that `bench/compare_stores.py` wrote (from its heading to the end): kept as it is."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## DuckDB vs ClickHouse")), None)
    return [] if start is None else ["", *lines[start:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64],
                        help="client counts for the ingest benchmark (the first is also run with gzip)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for the cores to be idle")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md")
    args = parser.parse_args()
    common = ["--sessions", str(args.sessions), "--seed", str(args.seed)]

    started = datetime.now(UTC)
    ingest_runs = []
    for i, clients in enumerate(args.concurrency):
        variants = [False, True] if i == 0 else [False]
        for gzip in variants:
            name = f"ingest-c{clients}{'-gzip' if gzip else ''}.json"
            extra = ["--concurrency", str(clients), *(["--gzip"] if gzip else [])]
            ingest_runs.append(bench("ingest_http.py", [*common, *extra], RESULTS_DIR / name, args.wait_idle))
    query_command, query_result = bench("query_graphql.py", [*common, "--runs", str(args.runs)],
                                        RESULTS_DIR / "query.json", args.wait_idle)

    lines = [
        "# replayql benchmark results", "",
        f"Measured {started.strftime('%Y-%m-%d %H:%M UTC')} on a data set of {args.sessions:,} generated sessions "
        f"(seed {args.seed}). Written by `python bench/run.py`; see bench/README.md for the method and how to "
        "read these figures.", "",
        *machine_section(machine_info()),
        "## Commands", "", "From the repository root, in the project's virtualenv:", "", "```sh",
        invocation() + "   # all of the below, then this file",
        *(command for command, _ in ingest_runs), query_command, "```", "",
        "Each benchmark starts the server as `replayql serve --data-dir <tmp> --port <free port> --log-level "
        "warning` in a subprocess (access logging off) and stops it with SIGINT.", "",
        *ingest_section(ingest_runs),
        *query_section(query_command, query_result),
    ]
    lines += kept_comparison(args.output)
    args.output.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {args.output}")
    print(ingest_http.markdown(ingest_runs[0][1]))
    print(query_graphql.markdown(query_result))


if __name__ == "__main__":
    main()
