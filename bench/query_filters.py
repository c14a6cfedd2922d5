"""Filter-language latency (issue 4): `sessions(query: "...")` over HTTP against a real `replayql serve`.

    python bench/query_filters.py [--store duckdb [clickhouse]] [--sessions 100000] [--seed 1] [--runs 40]
                                  [--warmup 3] [--data-dir DIR] [--wait-idle SECONDS]

For each store (DuckDB, or ClickHouse as in-process chDB at `chdb://<dir>/chdb`), a data set of --sessions
generated sessions (`replayql generate --sessions N --seed S`, the bulk-import path) is loaded, a read key is
created with `replayql keys create`, the server is started and every query below is sent --warmup times untimed
and then --runs times, one at a time, from one keep-alive client. Each request asks for `totalCount` and the first
page of 50 session ids, so an answer cannot be fast by being empty: every query must match at least one session.

Without --data-dir each store is generated into a temporary directory and deleted afterwards. With --data-dir DIR
each store lives in DIR/<store>: generated there (and kept) if that directory is missing or empty, used as it is
otherwise, so repeated runs do not regenerate. --wait-idle waits (up to that long) for quiet cores before each
store's timing, as bench/run.py does.

Results go to bench/results/filters-<store>.json. The matches (totalCount and the first page's ids) of every store
whose results file is there for the same --sessions and --seed are compared: both stores hold the same generated
data, so they must give the same answers; a difference is printed as a MISMATCH and the script exits with 1.
The section "Filter language (issue 4)" of bench/RESULTS.md is (re)written from those results files.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    APP_ID,
    BENCH_DIR,
    NAMES,
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
    query_pairs,
    replace_section,
    saved_results,
    write_json,
)
from query_graphql import Client, load
from run import wait_idle

HEADING = "## Filter language (issue 4)"
TARGET_P95_MS = 250.0
PAGE = 50

SESSIONS = f"""query Filtered($q: String) {{
  sessions(query: $q, first: {PAGE}) {{
    totalCount
    appliedQuery
    nodes {{ id }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    description: str
    query: str | None  # None: no condition (the baseline)


# The names and properties are what `replayql.generate` emits: "Checkout Completed" carries the order's
# `revenue` (sum of the cart's prices), rage clicks happen in ~3% of sessions, 5xx answers on ~1.5% of GETs.
CASES = [
    Case("baseline", "-", "no condition: the newest 50 and totalCount, the floor of the rows below", None),
    Case("attributes", "(a)", "three attribute conditions",
         "browser = Chrome AND deviceType = desktop AND durationMs > 1m"),
    Case("event_property", "(b)", "an event with a property condition",
         'custom("Checkout Completed", properties.revenue > 100)'),
    Case("sequence", "(c)", "a two-step sequence with a window", "network(status >= 500) THEN rageClick WITHIN 30s"),
    Case("count", "(d)", "a count condition", "count(visited) >= 5"),
]


LOAD_NOTE = "bench-load.json"  # in a kept store's directory: how it was generated, for later runs that reuse it


def store_dir(root: Path, store: str) -> tuple[Path, bool]:
    """The directory of `store` under --data-dir, and whether it already holds a store (then it is reused)."""
    path = root / store
    reuse = path.is_dir() and any(path.iterdir())
    path.mkdir(parents=True, exist_ok=True)
    return path, reuse


def ensure_store(store: str, data_dir: Path, reuse: bool, sessions: int, seed: int) -> dict[str, Any] | None:
    """Generate the data set into `data_dir` unless it is reused; returns how it was loaded (None if unknown)."""
    note = data_dir / LOAD_NOTE
    if reuse:
        print(f"{NAMES[store]}: reusing the store in {data_dir}", flush=True)
        return json.loads(note.read_text()) if note.exists() else None
    print(f"{NAMES[store]}: generating {sessions:,} sessions (seed {seed}) into {data_dir}", flush=True)
    loaded = load(data_dir, sessions, seed, store)
    print(f"{NAMES[store]}: loaded in {loaded['seconds']} s ({fmt(loaded['events_per_s'], 0)} events/s)", flush=True)
    note.write_text(json.dumps(loaded, indent=2) + "\n")
    return loaded


def time_case(client: Client, case: Case, warmup: int, runs: int) -> dict[str, Any]:
    variables = {"q": case.query}
    for _ in range(warmup):
        client.post(SESSIONS, variables)
    latencies: list[float] = []
    data: dict[str, Any] = {}
    for _ in range(runs):
        elapsed, data, _size = client.post(SESSIONS, variables)
        latencies.append(elapsed)
    found = data["sessions"]
    return {"name": case.name, "label": case.label, "description": case.description, "query": case.query,
            "applied_query": found["appliedQuery"], "runs": runs,
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "min_ms": round(min(latencies), 2), "max_ms": round(max(latencies), 2),
            "matches": found["totalCount"], "first_page_ids": [n["id"] for n in found["nodes"]]}


def run_store(store: str, data_dir: Path, reuse: bool, args: argparse.Namespace) -> dict[str, Any]:
    if args.wait_idle:
        wait_idle(args.wait_idle)
    loaded = ensure_store(store, data_dir, reuse, args.sessions, args.seed)
    if args.wait_idle and not reuse:
        wait_idle(args.wait_idle)
    load_before = load_average()
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-filters", data_dir=data_dir,
              store=store)
    with ServerProcess(data_dir, log_level=args.server_log_level, store=store) as server:
        client = Client(server.base_url, key)
        try:
            counts = client.data("{ sessions(first: 0) { totalCount } events(first: 0) { totalCount } }")
            if counts["sessions"]["totalCount"] != args.sessions:
                raise SystemExit(f"the store in {data_dir} holds {counts['sessions']['totalCount']:,} sessions, "
                                 f"not --sessions {args.sessions:,}")
            cpu_before = (machine_cpu_seconds(), server.cpu_seconds(), time.process_time())
            results = []
            for case in CASES:
                results.append(time_case(client, case, args.warmup, args.runs))
                r = results[-1]
                print(f"  {case.name:15} p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  "
                      f"matches {r['matches']:,}", flush=True)
            cpu_after = (machine_cpu_seconds(), server.cpu_seconds(), time.process_time())
        finally:
            client.close()
        command = server.command
    other_cpu = server_cpu = None
    if None not in cpu_before and None not in cpu_after:
        machine, server_cpu, client_cpu = (after - before for after, before in zip(cpu_after, cpu_before,
                                                                                    strict=True))
        other_cpu = round(max(0.0, machine - server_cpu - client_cpu), 2)
        server_cpu = round(server_cpu, 2)
    return {
        "benchmark": "query_filters",
        "config": {"store": store, "sessions": args.sessions, "seed": args.seed, "warmup": args.warmup,
                   "runs": args.runs, "reused_store": reuse,
                   "server_command": display_command(command, data_dir)},
        "command": invocation(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": loaded,
        "store": {name: value["totalCount"] for name, value in counts.items()},
        "queries": results,
        "server_cpu_s": server_cpu,
        "other_cpu_s": other_cpu,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }


def disagreements(results: dict[str, dict[str, Any]]) -> list[str]:
    """Where the stores' answers differ (totalCount or the first page's ids); empty when they agree."""
    problems = []
    for name, first, other, mine, theirs in query_pairs(results):
        if theirs is None:
            problems.append(f"{name}: measured on {NAMES[first]} but not on {NAMES[other]}")
        elif theirs["matches"] != mine["matches"]:
            problems.append(f"{name}: totalCount {mine['matches']:,} on {NAMES[first]} but "
                            f"{theirs['matches']:,} on {NAMES[other]} ({mine['query']})")
        elif theirs["first_page_ids"] != mine["first_page_ids"]:
            problems.append(f"{name}: the same totalCount ({mine['matches']:,}) but a different first page on "
                            f"{NAMES[first]} and {NAMES[other]} ({mine['query']})")
    return problems


def empty_answers(results: dict[str, dict[str, Any]]) -> list[str]:
    return [f"{q['name']} matched no session on {NAMES[s]} ({q['query']})"
            for s, r in results.items() for q in r["queries"] if q["matches"] == 0]


def _store_line(store: str, r: dict[str, Any]) -> str:
    c = r["config"]
    if r["load"]:
        loaded = (f"loaded by `{shlex.join(r['load']['command'])}` in {r['load']['seconds']} s"
                  + (" (an earlier run; reused)" if c["reused_store"] else ""))
    else:
        loaded = "a store generated beforehand with the same command, reused"
    return (f"{NAMES[store]}: {r['store']['sessions']:,} sessions, {r['store']['events']:,} events ({loaded}); "
            f"measured {r['measured_at']}, {c['warmup']} warm-up + {c['runs']} timed requests per query; server "
            f"CPU {fmt(r['server_cpu_s'], 1)} s, other processes {fmt(r['other_cpu_s'], 1)} CPU s meanwhile, load "
            f"average {r['load_average_before']} -> {r['load_average_after']}")


def section(results: dict[str, dict[str, Any]], problems: list[str], empty: list[str]) -> str:
    any_result = next(iter(results.values()))
    info, config = any_result["machine"], any_result["config"]
    rows = []
    for case in CASES:
        for store, result in results.items():
            q = next((q for q in result["queries"] if q["name"] == case.name), None)
            if q is not None:
                shown = f"{case.label} `{q['query']}`" if q["query"] else "no condition (baseline)"
                rows.append([shown, NAMES[store], fmt(q["p50_ms"], 1), fmt(q["p95_ms"], 1), fmt(q["max_ms"], 1),
                             f"{q['matches']:,}"])
    if len(results) < 2:
        agreement = "Only one store measured: nothing to compare."
    elif problems:
        agreement = "**The stores DISAGREE:** " + "; ".join(problems) + "."
    else:
        agreement = ("Both stores return the same totalCount and the same first page of 50 ids for every query "
                     "(checked by the script).")
    lines = [
        HEADING, "",
        f"Written by `bench/query_filters.py` on {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"DuckDB {info['duckdb']}, chDB {info['packages']['chdb']}. Data: `replayql generate --sessions "
        f"{config['sessions']} --seed {config['seed']}` into each store (ClickHouse is in-process chDB, "
        "`--store clickhouse --clickhouse-url chdb://<dir>/chdb`). Each request is "
        f"`sessions(query: $q, first: {PAGE}) {{ totalCount appliedQuery nodes {{ id }} pageInfo {{ ... }} }}` "
        "over HTTP to `replayql serve`, one at a time from one keep-alive client; latency is the full round trip. "
        "The 2 cores are shared by client and server, and other work was running on the machine (its CPU seconds "
        "and the load averages are below), so these are not quiet-machine figures.", "",
        "```sh", *sorted({r["command"] for r in results.values()}), "```", "",
        markdown_table(["query", "store", "p50 ms", "p95 ms", "max ms", "matches"], rows), "",
        *(f"- {_store_line(s, r)}." for s, r in results.items()),
        f"- {agreement}",
    ]
    duck = results.get("duckdb")
    if duck is not None:
        worst = max((q for q in duck["queries"] if q["query"]), key=lambda q: q["p95_ms"])
        verdict = "within" if worst["p95_ms"] < TARGET_P95_MS else "over"
        lines.append(f"- Target: p95 under {TARGET_P95_MS:.0f} ms on DuckDB. The slowest filter there, "
                     f"{worst['label']} `{worst['name']}`, has p95 {fmt(worst['p95_ms'], 1)} ms: {verdict} the target.")
    lines += [f"- **EMPTY ANSWER:** {e}" for e in empty]
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", nargs="+", choices=STORES, default=["duckdb"],
                        help="duckdb (default) and/or clickhouse (in-process chDB at <data dir>/chdb), in order")
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per query first")
    parser.add_argument("--data-dir", type=Path,
                        help="keep each store in DIR/<store>: generated if missing, reused as it is otherwise")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each store's timing, wait up to this long for the cores to be idle")
    parser.add_argument("--server-log-level", default="warning")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where filters-<store>.json are written and compared")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="Markdown file whose section 'Filter language (issue 4)' is (re)written")
    args = parser.parse_args()

    for store in dict.fromkeys(args.store):
        with ExitStack() as stack:
            if args.data_dir is None:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="replayql-filters-")))
                data_dir, reuse = tmp, False
            else:
                data_dir, reuse = store_dir(args.data_dir, store)
            result = run_store(store, data_dir, reuse, args)
        out = args.results_dir / f"filters-{store}.json"
        write_json(out, result)
        print(f"result written to {out}", flush=True)

    results = saved_results(args.results_dir, "filters", {"sessions": args.sessions, "seed": args.seed},
                            ("sessions", "seed"))
    problems = disagreements(results)
    empty = empty_answers(results)
    text = section(results, problems, empty)
    replace_section(args.output, HEADING, text)
    print(text)
    print(f"wrote the section {HEADING[3:]!r} of {args.output}")
    for problem in problems:
        print(f"MISMATCH between the stores: {problem}", file=sys.stderr)
    for problem in empty:
        print(f"EMPTY ANSWER: {problem}", file=sys.stderr)
    if problems or empty:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
