"""Analytics latency (issue 5): aggregate, funnel and retention over HTTP, each next to its floor.

    python bench/query_analytics.py [--store duckdb [clickhouse]] [--sessions 260000] [--days 63] [--seed 1]
                                    [--runs 20] [--warmup 3] [--rounds 4] [--data-dir DIR] [--wait-idle SECONDS]
                                    [--wait-fields MINUTES] [--explain] [--only QUERY ...] [--generate-only]

Data: `replayql generate --sessions N --days D --seed S` (the bulk-import path) into each store (DuckDB, or
ClickHouse as in-process chDB at `chdb://<dir>/chdb`). The defaults give 10.76 million rows in the events table
(`replayql generate` reports 14.3 million events: it counts the rrweb recording events too, which are stored
apart) over 63 days (9 weeks: room for 8 weekly retention cohorts of users not seen before, and a 30-day series);
about 41 stored events per session, so --sessions 245000 is the least for 10 million. With
--data-dir DIR each store lives in DIR/<store>, generated there if that directory is missing or empty and reused
as it is otherwise (as bench/query_filters.py does); without it, in a temporary directory deleted afterwards.

The queries (the generated data ends at the start of the UTC day it was generated on; every range ends there):

  (a) series     aggregate SESSIONS, COUNT by browser, DAY buckets over the last 30 days
  (b) lcp_path   aggregate WEB_VITALS `name = LCP`, P75 of value (and COUNT) by path, top 20 by count, last 30
                 days; (b') lcp_pattern the same by pathPattern (`/product/:id`)
  (c) funnel     funnel by USER over the last 30 days: visited -> Product Viewed -> Added To Cart ->
                 Checkout Completed
  (d) retention  retention, WEEK cohorts of the last 8 whole weeks (Monday to Monday), 8 periods

Per store, two kinds of phase (chDB allows one process per path, and DuckDB one writer, so they never overlap):

- The floor, in a child process: the store is opened as `replayql serve` opens it, and each GraphQL query runs
  once in-process through the real schema on a thin wrapper of the store that records every
  `fetch_dicts(sql, params, timeout)` call. Those statements are then run directly on the store's `fetch_dicts`,
  in the same order, --warmup times untimed and then timed; the floor of a request is the sum of its statements'
  times. With --explain the plans of the first round are written too (EXPLAIN ANALYZE on DuckDB, EXPLAIN on
  ClickHouse) to bench/results/analytics-<store>-plans.txt.
- GraphQL: `replayql serve` (with a read key made by `replayql keys create` at the start), and each query sent
  --warmup times untimed and then timed, one at a time, from one keep-alive client; latency is the full HTTP
  round trip.

The speed of this shared 2-core VM drifts by 15-20% from one minute to the next, so the two phases alternate over
--rounds rounds (floor, GraphQL, GraphQL, floor, floor, ...), the --runs timed runs of each side spread over them;
the percentiles are over all of a side's runs.

The ratio is GraphQL p50 / floor p50. Funnel and retention are measured only if the schema has their root field;
--wait-fields waits (re-checking every 3 minutes) up to that long for them first.

Results go to bench/results/analytics-<store>.json. The answers of every store whose results file is there for the
same data set (sessions, days, seed and end of the window) are compared: they must be identical; a difference is
printed as a MISMATCH and the script exits with 1. The section "Analytics (issue 5)" of bench/RESULTS.md is
(re)written from those results files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
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
    cli_run,
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
from query_filters import LOAD_NOTE, store_dir
from query_graphql import Client
from run import wait_idle

HEADING = "## Analytics (issue 5)"
TARGET_RATIO = 1.2
TARGET_P95_MS = 500.0
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    description: str
    root: str  # the root field it needs in the schema
    query: str
    window_days: int  # the time range: this many days up to the end of the data
    extra: dict[str, Any] = field(default_factory=dict)  # more variables
    whole_weeks: bool = False  # the range ends at the Monday on or before the end of the data


SERIES = """query Series($from: DateTime!, $to: DateTime!) {
  aggregate(input: {source: SESSIONS, measures: [{alias: "sessions", fn: COUNT}], groupBy: [{field: "browser"}],
                    interval: DAY, timeRange: {from: $from, to: $to}}) {
    columns { name role type }
    rows
    totals
    truncated
    groupCount
  }
}"""

LCP = """query LcpByPage($from: DateTime!, $to: DateTime!, $dimension: String!) {
  aggregate(input: {source: WEB_VITALS, query: "name = LCP",
                    measures: [{alias: "p75", fn: P75, field: "value"}, {alias: "n", fn: COUNT}],
                    groupBy: [{field: $dimension}], limit: 20, orderBy: "n", timeRange: {from: $from, to: $to}}) {
    columns { name role type }
    rows
    totals
    truncated
    groupCount
  }
}"""

FUNNEL = """query Funnel($from: DateTime!, $to: DateTime!) {
  funnel(input: {countBy: USER, timeRange: {from: $from, to: $to}, steps: [
      "visited", "custom(\\"Product Viewed\\")", "custom(\\"Added To Cart\\")",
      "custom(\\"Checkout Completed\\")"]}) {
    steps { index step count conversionFromFirst conversionFromPrevious droppedOff medianTimeToConvertMs
            p90TimeToConvertMs }
  }
}"""

RETENTION = """query Retention($from: DateTime!, $to: DateTime!) {
  retention(input: {timeRange: {from: $from, to: $to}, interval: WEEK, periods: 8}) {
    periods
    cohorts { start size counts rates completePeriods }
    overall { size sizes counts rates }
  }
}"""

CASES = [
    Case("series", "(a)", "30-day daily series of sessions by browser (aggregate SESSIONS COUNT, groupBy browser, "
         "interval DAY)", "aggregate", SERIES, 30),
    Case("lcp_path", "(b)", 'p75 LCP by page path, the 20 paths with most LCP measurements (aggregate WEB_VITALS, '
         'query "name = LCP", measures P75 of value and COUNT, groupBy path, limit 20 by COUNT; last 30 days)',
         "aggregate", LCP, 30, {"dimension": "path"}),
    Case("lcp_pattern", "(b')", "the same by pathPattern (the path with ids collapsed, `/product/:id`: a regular "
         "expression per row)", "aggregate", LCP, 30, {"dimension": "pathPattern"}),
    Case("funnel", "(c)", "4-step funnel by user over 30 days: visited, Product Viewed, Added To Cart, Checkout "
         "Completed", "funnel", FUNNEL, 30),
    Case("retention", "(d)", "8-week weekly retention: cohorts of the 8 whole weeks (Monday to Monday, UTC) "
         "before the end of the data by first seen, returning with any session, 8 periods", "retention",
         RETENTION, 56, whole_weeks=True),
]


def variables(case: Case, end_ms: int) -> dict[str, Any]:
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    if case.whole_weeks:
        end -= end.weekday() * DAY
    return {"from": (end - case.window_days * DAY).isoformat(), "to": end.isoformat(), **case.extra}


# -- the data set -------------------------------------------------------------------------------------------


def generate(data_dir: Path, store: str, sessions: int, days: int, seed: int) -> dict[str, Any]:
    """`replayql generate` into the store; how long it took and what it stored, for the note kept beside it."""
    from replayql.generate import default_end_ms

    end_ms = default_end_ms()
    started = time.perf_counter()
    done = cli_run("generate", "--sessions", str(sessions), "--days", str(days), "--seed", str(seed),
                   data_dir=data_dir, store=store)
    seconds = time.perf_counter() - started
    if default_end_ms() != end_ms:
        raise SystemExit("the UTC day changed while generating: the window's end is ambiguous; run again")
    report = re.search(r"stored (\d+) batches \((\d+) events\)", done.stderr)
    events = int(report[2]) if report else None
    return {"command": display_command(list(done.args), data_dir), "seconds": round(seconds, 2),
            "batches": int(report[1]) if report else None, "events": events,
            "events_per_s": round(events / seconds, 1) if events else None,
            "sessions": sessions, "days": days, "seed": seed, "end_ms": end_ms}


def ensure_store(store: str, data_dir: Path, reuse: bool, args: argparse.Namespace) -> dict[str, Any]:
    note = data_dir / LOAD_NOTE
    if reuse:
        if not note.exists():
            raise SystemExit(f"{data_dir} holds a store but no {LOAD_NOTE}: the end of its window is unknown")
        loaded = json.loads(note.read_text())
        wanted = {"sessions": args.sessions, "days": args.days, "seed": args.seed}
        if any(loaded.get(k) != v for k, v in wanted.items()):
            raise SystemExit(f"the store in {data_dir} was generated with {loaded}, not {wanted}")
        print(f"{NAMES[store]}: reusing the store in {data_dir}", flush=True)
        return loaded
    print(f"{NAMES[store]}: generating {args.sessions:,} sessions over {args.days} days (seed {args.seed}) into "
          f"{data_dir}", flush=True)
    loaded = generate(data_dir, store, args.sessions, args.days, args.seed)
    print(f"{NAMES[store]}: loaded in {loaded['seconds']} s", flush=True)
    note.write_text(json.dumps(loaded, indent=2) + "\n")
    return loaded


# -- phase 1, in a child process: the statements each query runs, and their time run directly ---------------


@dataclass
class Statement:
    sql: str
    params: dict[str, Any]
    timeout_s: float | None


class RecordingStore:
    """The real store, except that every `fetch_dicts` call is recorded (and then passed on)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[Statement] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def fetch_dicts(self, query: str, params: dict[str, Any], timeout_s: float | None = None
                    ) -> list[dict[str, Any]]:
        self.calls.append(Statement(query, dict(params), timeout_s))
        return self._store.fetch_dicts(query, params, timeout_s)


def _settings(data_dir: Path, store: str) -> Any:
    from replayql.config import ClickHouseConfig, Settings

    clickhouse = ClickHouseConfig(f"chdb://{data_dir / 'chdb'}") if store == "clickhouse" else None
    return Settings(data_dir=data_dir, clickhouse=clickhouse)


def _execute_in_process(services: Any, text: str, values: dict[str, Any]) -> dict[str, Any]:
    from replayql.api.context import Context
    from replayql.api.schema import schema
    from replayql.store.registry import ApiKey, KeyScope

    key = ApiKey("bench", APP_ID, KeyScope.READ, "bench-analytics", datetime.now(UTC), None)
    result = asyncio.run(schema.execute(text, variable_values=values, context_value=Context(services, key)))
    if result.errors:
        raise RuntimeError(f"in-process query failed: {result.errors}")
    return dict(result.data or {})


def _explain(store: Any, kind: str, statement: Statement) -> str:
    prefix = "EXPLAIN ANALYZE " if kind == "duckdb" else "EXPLAIN indexes = 1, actions = 0 "
    rows = store.fetch_dicts(prefix + statement.sql, statement.params)
    return "\n".join(str(v) for row in rows for v in row.values())


def _facts(store: Any) -> dict[str, Any]:
    """The stored events of the app (rrweb recordings are stored apart), and the first and last timestamps."""
    from sqlglot import exp

    from replayql.query.sql import AppScope, col
    from replayql.store.dialect import sql

    scope = AppScope(APP_ID, store)
    query = scope.select("events", exp.alias_(exp.Count(this=exp.Star()), "events"),
                         exp.alias_(exp.Min(this=col("ts", "e")), "first"),
                         exp.alias_(exp.Max(this=col("ts", "e")), "last"), alias="e")
    return store.fetch_dicts(sql(query, store.dialect), dict(scope.params.values))[0]


def floor_phase(data_dir: Path, store: str, cases: list[tuple[str, str, dict[str, Any]]], warmup: int, runs: int,
                explain: bool) -> dict[str, Any]:
    """In a child process: per case, the statements its GraphQL request runs and their time run directly."""
    from replayql.api.context import Services
    from replayql.store.backends import open_backend

    settings = _settings(data_dir, store)
    backend = open_backend(settings.data_dir, settings.clickhouse)
    out: dict[str, Any] = {"cases": {}, "plans": []}
    try:
        real = backend.store
        facts = _facts(real)
        out["events"] = int(facts["events"])
        out["first_event"], out["last_event"] = str(facts["first"]), str(facts["last"])
        for name, text, values in cases:
            recorder = RecordingStore(real)
            services = Services(settings, recorder, backend.registry, None)  # type: ignore[arg-type]
            answer = _execute_in_process(services, text, values)
            statements = recorder.calls
            for _ in range(warmup):
                for s in statements:
                    real.fetch_dicts(s.sql, s.params, s.timeout_s)
            totals, each = [], [[] for _ in statements]  # type: ignore[var-annotated]
            for _ in range(runs):
                total = 0.0
                for i, s in enumerate(statements):
                    started = time.perf_counter()
                    real.fetch_dicts(s.sql, s.params, s.timeout_s)
                    elapsed = (time.perf_counter() - started) * 1000
                    each[i].append(elapsed)
                    total += elapsed
                totals.append(total)
            out["cases"][name] = {
                "answer": answer, "totals": totals,
                "statements": [{"sql": s.sql, "params": {k: str(v) for k, v in s.params.items()}, "times": times}
                               for s, times in zip(statements, each, strict=True)]}
            if explain:
                for i, s in enumerate(statements):
                    out["plans"].append(f"===== {name}, statement {i + 1} of {len(statements)}\n{s.sql}\n"
                                        f"-- params: {s.params}\n\n{_explain(real, store, s)}\n")
    finally:
        backend.store.close()
        backend.registry.close()
    return out


def run_floor(data_dir: Path, store: str, cases: list[tuple[str, str, dict[str, Any]]], warmup: int, runs: int,
              explain: bool) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(floor_phase, data_dir, store, cases, warmup, runs, explain).result()


# -- phase 2: GraphQL over HTTP -----------------------------------------------------------------------------


def time_graphql(client: Client, text: str, values: dict[str, Any], warmup: int, runs: int
                 ) -> tuple[list[float], dict[str, Any], int]:
    for _ in range(warmup):
        client.post(text, values)
    latencies: list[float] = []
    data: dict[str, Any] = {}
    size = 0
    for _ in range(runs):
        elapsed, data, size = client.post(text, values)
        latencies.append(elapsed)
    return latencies, data, size


def summary(name: str, data: dict[str, Any]) -> str:
    """What came back, in a few words, so that a fast empty answer cannot pass for a fast query."""
    root = next(iter(data.values()))
    if name in ("series", "lcp_path", "lcp_pattern"):
        return f"{len(root['rows'])} rows of {root['groupCount']} groups"
    if name == "funnel":
        return " -> ".join(f"{s['count']:,}" for s in root["steps"])
    if name == "retention":
        return f"{len(root['cohorts'])} cohorts, {root['overall']['size']:,} users"
    return "-"


def add_floor(result: dict[str, Any], floor: dict[str, Any]) -> None:
    """Put the floor of a query (its statements' summed times, both halves) beside its GraphQL figures."""
    totals = floor["totals"]
    result["floor_p50_ms"] = round(percentile(totals, 50), 2)
    result["floor_p95_ms"] = round(percentile(totals, 95), 2)
    result["ratio"] = round(result["p50_ms"] / result["floor_p50_ms"], 2) if result["floor_p50_ms"] else None
    result["statements"] = [{"sql": s["sql"], "params": s["params"], "p50_ms": round(percentile(s["times"], 50), 2),
                             "runs": len(s["times"])} for s in floor["statements"]]
    if any(not s.get("same_later", True) for s in floor["statements"]):
        result["statements_changed"] = True  # a later round's statements differed (data or code changed)
    same = result["answer"] == floor["answer"]
    result["same_as_in_process"] = same
    if not same:
        result["in_process_answer"] = floor["answer"]


@dataclass
class Measured:
    """What the rounds gather: GraphQL latencies and answers per query, the floor, and CPU seconds."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    floor: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    command: list[str] = field(default_factory=list)
    cpu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # machine, server, client
    cpu_known: bool = True


def floor_round(store: str, data_dir: Path, prepared: list[tuple[str, str, dict[str, Any]]], runs: int,
                args: argparse.Namespace, first: bool, into: Measured) -> None:
    print(f"{NAMES[store]}: the floor (the statements run directly on the store), {runs} runs", flush=True)
    found = run_floor(data_dir, store, prepared, args.warmup, runs, args.explain and first)
    if args.explain and first:
        plans = RESULTS_DIR / f"analytics-{store}-plans.txt"
        plans.write_text("\n".join(found["plans"]))
        print(f"plans written to {plans}", flush=True)
    if into.floor is None:
        into.floor = found
        return
    for name, f in into.floor["cases"].items():
        f["totals"] += found["cases"][name]["totals"]
        for mine, theirs in zip(f["statements"], found["cases"][name]["statements"], strict=True):
            mine["times"] += theirs["times"]
            if mine["sql"] != theirs["sql"] or mine["params"] != theirs["params"]:
                mine["same_later"] = False


def graphql_round(store: str, data_dir: Path, key: str, measured: list[Case],
                  prepared: list[tuple[str, str, dict[str, Any]]], runs: int, args: argparse.Namespace,
                  into: Measured) -> None:
    print(f"{NAMES[store]}: GraphQL over HTTP, {runs} requests per query", flush=True)
    with ServerProcess(data_dir, log_level=args.server_log_level, store=store) as server:
        client = Client(server.base_url, key)
        try:
            if into.counts is None:
                into.counts = client.data("{ sessions(first: 0) { totalCount } events(first: 0) { totalCount } }")
            before = (machine_cpu_seconds(), server.cpu_seconds(), time.process_time())
            for case, (_, text, values) in zip(measured, prepared, strict=True):
                latencies, data, size = time_graphql(client, text, values, args.warmup, runs)
                into.latencies.setdefault(case.name, []).extend(latencies)
                if into.answers.setdefault(case.name, data) != data:
                    into.answers[case.name + " (a later round)"] = data
                into.sizes[case.name] = size
                print(f"  {case.name:12} p50 {percentile(latencies, 50):8.1f} ms  {summary(case.name, data)}",
                      flush=True)
            after = (machine_cpu_seconds(), server.cpu_seconds(), time.process_time())
        finally:
            client.close()
        into.command = server.command
    if None in before or None in after:
        into.cpu_known = False
    else:
        for i, (x, y) in enumerate(zip(after, before, strict=True)):
            into.cpu[i] += x - y  # type: ignore[operator]


def split(runs: int, rounds: int) -> list[int]:
    """`runs` spread over `rounds` as evenly as possible (the first rounds take the remainder)."""
    return [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]


def run_store(store: str, data_dir: Path, reuse: bool, args: argparse.Namespace, fields: set[str]
              ) -> dict[str, Any]:
    loaded = ensure_store(store, data_dir, reuse, args)
    measured = [c for c in CASES if c.root in fields and (not args.only or c.name in args.only)]
    prepared = [(c.name, c.query, variables(c, loaded["end_ms"])) for c in measured]
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-analytics", data_dir=data_dir,
              store=store)
    load_before = load_average()
    got = Measured()
    for i, runs in enumerate(split(args.runs, args.rounds)):
        # floor, GraphQL, GraphQL, floor, floor, ...: a drift of the machine's speed weighs on both sides alike
        order = ("floor", "graphql") if i % 2 == 0 else ("graphql", "floor")
        for phase in order:
            if args.wait_idle:
                wait_idle(args.wait_idle)
            if phase == "floor":
                floor_round(store, data_dir, prepared, runs, args, i == 0, got)
            else:
                graphql_round(store, data_dir, key, measured, prepared, runs, args, got)
    assert got.floor is not None and got.counts is not None
    results = []
    for case in measured:
        latencies = got.latencies[case.name]
        results.append({
            "name": case.name, "label": case.label, "description": case.description, "query": case.query,
            "variables": dict(prepared[measured.index(case)][2]), "runs": len(latencies),
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "min_ms": round(min(latencies), 2), "max_ms": round(max(latencies), 2),
            "response_bytes": got.sizes[case.name], "summary": summary(case.name, got.answers[case.name]),
            "answer": got.answers[case.name],
            **({"later_answer": got.answers[case.name + " (a later round)"]}
               if case.name + " (a later round)" in got.answers else {})})
        add_floor(results[-1], got.floor["cases"][case.name])
        r = results[-1]
        print(f"  {r['name']:12} GraphQL p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  floor p50 "
              f"{r['floor_p50_ms']:8.1f} ms ({len(r['statements'])} statements)  ratio {r['ratio']}  {r['summary']}",
              flush=True)
    other_cpu = server_cpu = None
    if got.cpu_known:
        machine, server_cpu, client_cpu = got.cpu
        other_cpu = round(max(0.0, machine - server_cpu - client_cpu), 2)
        server_cpu = round(server_cpu, 2)
    return {
        "benchmark": "query_analytics",
        "config": {"store": store, "sessions": args.sessions, "days": args.days, "seed": args.seed,
                   "end_ms": loaded["end_ms"], "warmup": args.warmup, "runs": args.runs, "rounds": args.rounds,
                   "reused_store": reuse, "server_command": display_command(got.command, data_dir)},
        "command": invocation(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": loaded,
        "store": {"sessions": got.counts["sessions"]["totalCount"], "events": got.counts["events"]["totalCount"],
                  "events_sql": got.floor["events"], "first_event": got.floor["first_event"],
                  "last_event": got.floor["last_event"]},
        "missing_fields": sorted({c.root for c in CASES} - fields),
        "queries": results,
        "server_cpu_s": server_cpu,
        "other_cpu_s": other_cpu,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }


# -- comparison and the report ------------------------------------------------------------------------------


def disagreements(results: dict[str, dict[str, Any]]) -> list[str]:
    """Where the stores' answers differ; empty when they agree."""
    problems = []
    for name, first, other, mine, theirs in query_pairs(results):
        if theirs is None:
            problems.append(f"{name}: measured on {NAMES[first]} but not on {NAMES[other]}")
        elif theirs["answer"] != mine["answer"]:
            problems.append(f"{name}: {NAMES[first]} answers {_diff(mine['answer'], theirs['answer'])}, "
                            f"{NAMES[other]} the other")
    for store, result in results.items():
        queries = {q["name"]: q for q in result["queries"]}
        problems += [f"{name}: on {NAMES[store]} the floor's statements differ between rounds"
                     for name, q in queries.items() if q.get("statements_changed")]
        problems += [f"{name}: on {NAMES[store]} GraphQL answered differently in a later round: "
                     f"{_diff(q['answer'], q['later_answer'])}" for name, q in queries.items() if "later_answer" in q]
        problems += [f"{name}: on {NAMES[store]} the HTTP answer differs from the in-process one (the same query "
                     f"on the same data): HTTP {_diff(q['answer'], q['in_process_answer'])}, in-process the other"
                     for name, q in queries.items() if not q["same_as_in_process"]]
    return problems


def _diff(a: Any, b: Any, path: str = "") -> str:
    """The first place two JSON values differ, e.g. `aggregate.rows[3][2]: 17 vs 18`."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for k in a:
            if a[k] != b[k]:
                return _diff(a[k], b[k], f"{path}.{k}" if path else k)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    return f"{path}: {json.dumps(a)[:200]} vs {json.dumps(b)[:200]}"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def section(results: dict[str, dict[str, Any]], problems: list[str]) -> str:
    any_result = next(iter(results.values()))
    info, config = any_result["machine"], any_result["config"]
    rows = []
    for case in CASES:
        for store, result in results.items():
            q = next((q for q in result["queries"] if q["name"] == case.name), None)
            if q is not None:
                rows.append([f"{case.label} {case.name}", NAMES[store], fmt(q["p50_ms"], 1), fmt(q["p95_ms"], 1),
                             fmt(q["floor_p50_ms"], 1), fmt(q["ratio"], 2), str(len(q["statements"])),
                             q["summary"]])
    size = any_result["store"]
    start_ms = config["end_ms"] - config["days"] * 86_400_000
    if len(results) < 2:
        agreement = "Only one store measured: nothing to compare."
    elif problems:
        agreement = "**The stores DISAGREE:** " + "; ".join(problems) + "."
    else:
        agreement = "Both stores return identical answers (the whole GraphQL `data`) for every query (checked " \
                    "by the script)."
    lines = [
        HEADING, "",
        f"Written by `bench/query_analytics.py` on {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"DuckDB {info['duckdb']}, chDB {info['packages']['chdb']}. Data: `replayql generate --sessions "
        f"{config['sessions']} --days {config['days']} --seed {config['seed']}` into each store: "
        f"{size['sessions']:,} sessions and {size['events']:,} stored events over "
        f"{config['days']} days, {_day(start_ms)} to {_day(config['end_ms'])} (exclusive; rows of the events "
        f"table, counted by `events {{ totalCount }}` and by SQL; `replayql generate` reported "
        f"{any_result['load']['events']:,} events because it counts the rrweb recording events too, which are "
        "stored apart). Each GraphQL request "
        "goes over HTTP to `replayql serve`, one at a time from one keep-alive client; latency is the full round "
        "trip. The floor is the SQL that request runs (captured in-process through the same schema and query "
        "layer), run directly with the store's `fetch_dicts`, its statements' times summed; ratio = GraphQL p50 / "
        "floor p50. **The machine is shared:** other people's test suites ran on its 2 cores during this work (how "
        "much ran during each measurement: the CPU seconds of other processes during the GraphQL phases and the "
        "load averages, below), client and server share the cores too, and its speed drifts by 15-20% from one "
        "minute to the next, which is why the floor and GraphQL phases alternate in rounds. These are not "
        "quiet-machine figures.", "",
        "```sh", *sorted({r["command"] for r in results.values()}), "```", "",
        markdown_table(["query", "store", "GraphQL p50 ms", "p95 ms", "floor p50 ms", "ratio", "statements",
                        "answer"], rows), "",
        *(f"- {c.label} {c.name}: {c.description}." for c in CASES),
    ]
    for store, r in results.items():
        c = r["config"]
        loaded = f"generated by `{shlex.join(r['load']['command'])}` in {r['load']['seconds']} s" + (
            " (an earlier run; reused)" if c["reused_store"] else "")
        lines.append(f"- {NAMES[store]}: {loaded}; measured {r['measured_at']}, {c['warmup']} warm-up + "
                     f"{c['runs']} timed requests per query and as many floor runs, in {c['rounds']} alternating "
                     f"rounds (each with its own warm-up); server CPU "
                     f"{fmt(r['server_cpu_s'], 1)} s, other processes {fmt(r['other_cpu_s'], 1)} CPU s meanwhile, "
                     f"load average {r['load_average_before']} -> {r['load_average_after']}.")
        if r["missing_fields"]:
            lines.append(f"- **Not measured on {NAMES[store]}:** the schema had no "
                         f"{', '.join(f'`{f}`' for f in r['missing_fields'])} field when this ran.")
    lines.append(f"- {agreement}")
    duck = results.get("duckdb")
    if duck is not None and duck["queries"]:
        over = [q for q in duck["queries"] if q["p95_ms"] >= TARGET_P95_MS or (q["ratio"] or 0) >= TARGET_RATIO]
        verdict = "all within" if not over else "over for " + ", ".join(
            f"{q['label']} {q['name']} (p95 {fmt(q['p95_ms'], 0)} ms, ratio {fmt(q['ratio'], 2)})" for q in over)
        lines.append(f"- Targets on DuckDB: ratio under {TARGET_RATIO} and p95 under {TARGET_P95_MS:.0f} ms: "
                     f"{verdict}.")
    return "\n".join([*lines, ""])


def wait_for_fields(minutes: float) -> set[str]:
    wanted = {c.root for c in CASES}
    deadline = time.monotonic() + minutes * 60
    fields = _fresh_schema_fields()
    while not wanted <= fields and time.monotonic() < deadline:
        print(f"waiting for {', '.join(sorted(wanted - fields))} in the schema", flush=True)
        time.sleep(180)
        fields = _fresh_schema_fields()
    return fields


def _fresh_schema_fields() -> set[str]:
    """The schema as a new process sees it (this one has imported the old modules)."""
    import subprocess

    code = "from replayql.api.schema import schema; print(' '.join(schema._schema.query_type.fields))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return set(done.stdout.split()) if done.returncode == 0 else set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", nargs="+", choices=STORES, default=["duckdb"],
                        help="duckdb (default) and/or clickhouse (in-process chDB at <data dir>/chdb), in order")
    parser.add_argument("--sessions", type=int, default=260_000, help="sessions to generate")
    parser.add_argument("--days", type=int, default=63, help="days the sessions are spread over")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20, help="timed requests (and floor runs) per query")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed requests (and floor runs) per query at the start of each round")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternate the floor and GraphQL phases this many times (floor, GraphQL, GraphQL, "
                             "floor, ...), --runs spread over them")
    parser.add_argument("--data-dir", type=Path,
                        help="keep each store in DIR/<store>: generated if missing, reused as it is otherwise")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each phase, wait up to this long for the cores to be idle")
    parser.add_argument("--wait-fields", type=float, default=0.0, metavar="MINUTES",
                        help="wait up to this long for the funnel and retention fields to be in the schema")
    parser.add_argument("--explain", action="store_true",
                        help="also write each statement's plan to bench/results/analytics-<store>-plans.txt")
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CASES], metavar="QUERY",
                        help=f"measure only these queries (of {', '.join(c.name for c in CASES)})")
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the section of RESULTS.md from the results files there are")
    parser.add_argument("--generate-only", action="store_true",
                        help="with --data-dir: only generate the stores that are missing, measure nothing")
    parser.add_argument("--server-log-level", default="warning")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="Markdown file whose section 'Analytics (issue 5)' is (re)written")
    args = parser.parse_args()

    if args.report_only:
        found = [json.loads((RESULTS_DIR / f"analytics-{store}.json").read_text()) for store in STORES
                 if (RESULTS_DIR / f"analytics-{store}.json").exists()]
        if not found:
            raise SystemExit(f"no bench/results/analytics-<store>.json in {RESULTS_DIR}")
        report(found[0]["config"], args.output)
        return
    if args.generate_only:
        if args.data_dir is None:
            raise SystemExit("--generate-only needs --data-dir")
        for store in dict.fromkeys(args.store):
            ensure_store(store, *store_dir(args.data_dir, store), args)
        return
    fields = wait_for_fields(args.wait_fields) if args.wait_fields else _fresh_schema_fields()
    missing = sorted({c.root for c in CASES} - fields)
    if missing:
        print(f"NOT MEASURED: the schema has no {', '.join(missing)} field", file=sys.stderr, flush=True)
    last: dict[str, Any] = {}
    for store in dict.fromkeys(args.store):
        with ExitStack() as stack:
            if args.data_dir is None:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="replayql-analytics-")))
                data_dir, reuse = tmp, False
            else:
                data_dir, reuse = store_dir(args.data_dir, store)
            last = run_store(store, data_dir, reuse, args, fields)
        out = RESULTS_DIR / f"analytics-{store}.json"
        write_json(out, last)
        print(f"result written to {out}", flush=True)

    report(last["config"], args.output)


def report(config: dict[str, Any], output: Path) -> None:
    """(Re)write the section from the results files of the data set of `config`; exit 1 on a mismatch."""
    results = saved_results(RESULTS_DIR, "analytics", config, ("sessions", "days", "seed", "end_ms"))
    problems = disagreements(results)
    text = section(results, problems)
    replace_section(output, HEADING, text)
    print(text)
    print(f"wrote the section {HEADING[3:]!r} of {output}")
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
