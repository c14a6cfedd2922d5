"""Cost of the request limits (issue 11) on ordinary dashboard queries: the code before them against the working
tree, both served at once on copies of the same store, their requests interleaved.

    python bench/limits_cost.py [--sessions 20000] [--seed 1] [--runs 300] [--warmup 30] [--commit aa1ce20]

"before" is a detached `git worktree` of --commit in a temporary directory (removed at the end); its server is the
same `replayql serve` console script with `PYTHONPATH=<worktree>/src` first, so the old package is imported.
"after" is the working tree (`PYTHONPATH=<checkout>/src`). Each server's code is checked twice: the file
`import replayql` resolves to under its PYTHONPATH, and a query with 31 aliases, which only the limits refuse
(TOO_MANY_ALIASES after, an answer before).

The store is loaded once with `replayql generate --sessions N --seed S --data-dir <tmp>/after` (working tree), a
read key created with `replayql keys create`, then the data dir is copied for the other server (a DuckDB file is
owned by one process). Each query is sent --warmup times and then --runs times to each server from one keep-alive
client per server, one request at a time: in every round each query goes to both servers back to back, the first
one alternating, so noise on the machine lands on both alike. Reports p50/p95 per query and side, the difference,
and the median over the queries of the p50 ratio after/before.

In-process, from the working tree: the checks the limits added, timed on each query's document (parse and the
literal walk are cached per distinct document by `_prepare`; the limit walk and the `variables` walk run on every
request), and the hop of execution onto its own thread and event loop.

Writes bench/results/limits-cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

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
from query_graphql import Client

ROOT = BENCH_DIR.parent
SIDES = ("before", "after")
HEADING = "## Cost of the request limits (issue 11)"

SESSIONS_LIST = """query SessionsList($filter: SessionFilter, $query: String) {
  sessions(first: 50, filter: $filter, query: $query) {
    totalCount
    nodes { id startedAt durationMs browser os deviceType country pageCount errorCount user { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""

SESSION_DETAIL = """query SessionDetail($id: ID!) {
  session(id: $id) {
    id startedAt endedAt durationMs activeDurationMs browser os deviceType country release initialUrl
    pageCount clickCount errorCount eventCount rageClickCount deadClickCount
    viewport { width height }
    webVitals { lcp fcp cls inp ttfb }
    user { id name email sessionCount firstSeen lastSeen }
    events(first: 100) {
      nodes {
        id kind timestamp url
        ... on PageEvent { title path }
        ... on ClickEvent { selector text }
        ... on NetworkEvent { method status durationMs }
        ... on ErrorEvent { errorType message issueId }
        ... on CustomEvent { name properties }
      }
      pageInfo { hasNextPage endCursor }
    }
    errors(first: 100) { nodes { id timestamp errorType message issueId } }
    pages(first: 100) { nodes { id timestamp url title path } }
  }
}"""

USERS = """query Users {
  users(first: 50) {
    totalCount
    nodes { id name email sessionCount firstSeen lastSeen }
    pageInfo { hasNextPage endCursor }
  }
}"""

ISSUES = """query Issues {
  issues(first: 50) {
    totalCount
    nodes { id title errorType status count firstSeen lastSeen sessionCount userCount releases }
    pageInfo { hasNextPage endCursor }
  }
}"""

FILTER_KEYS = """query FilterKeys {
  filterKeys(entity: SESSIONS) { name type kind description seen fields { name type kind } }
}"""

SESSIONS_BY_DAY = """query SessionsByDay($from: DateTime!, $to: DateTime!) {
  aggregate(input: {source: SESSIONS, measures: [{alias: "sessions", fn: COUNT}], interval: DAY,
                    timeRange: {from: $from, to: $to}}) {
    columns { name role type }
    rows
    totals
  }
}"""

# 31 aliases: one over the limit's default (30), harmless otherwise; only the new code refuses it.
ALIASES_31 = "{ " + " ".join(f"a{i}: viewer {{ appId }}" for i in range(31)) + " }"


@dataclass
class Case:
    name: str
    description: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)


def code_env(src: Path) -> dict[str, str]:
    """The environment with `src` first on PYTHONPATH (ahead of the editable install's .pth entry) and no
    REPLAYQL_* settings, so only the flags say where the data goes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAYQL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`git {' '.join(args)}` failed:\n{done.stderr}")
    return done.stdout.strip()


@contextlib.contextmanager
def worktree(commit: str, path: Path) -> Iterator[Path]:
    """A detached checkout of `commit` at `path`, removed again (with its git metadata) however the run ends."""
    git("worktree", "add", "--detach", str(path), commit)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))
        git("worktree", "prune")


def imported_from(env: dict[str, str], cwd: Path) -> Path:
    """Where `import replayql` resolves in that environment: the proof that PYTHONPATH wins."""
    done = subprocess.run([sys.executable, "-c", "import replayql; print(replayql.__file__)"], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True)
    return Path(done.stdout.strip()).resolve()


def alias_probe(client: Client) -> dict[str, Any]:
    """Send 31 aliases: the limits answer 400 TOO_MANY_ALIASES, the old code answers the query."""
    response = client.http.post("/graphql", json={"query": ALIASES_31})
    body = response.json()
    errors = body.get("errors") or []
    code = errors[0].get("extensions", {}).get("code") if errors else None
    return {"status": response.status_code, "code": code, "answered": bool(body.get("data"))}


def cases(client: Client) -> list[Case]:
    """A dashboard's queries, with the session id and the time range they need looked up first."""
    found = client.data("{ sessions(first: 1, filter: {hasErrors: true, eventCount: {gte: 100}}) "
                        "{ nodes { id } } }")["sessions"]["nodes"]
    if not found:  # a small store may hold no such session
        found = client.data("{ sessions(first: 1) { nodes { id } } }")["sessions"]["nodes"]
    # `generate` spreads sessions over the 7 days before today's UTC midnight: the dashboard's "last 7 days"
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        Case("sessions_list", "sessions first 50: typed filter (desktop, >= 30 s) + query string, with "
             "totalCount and user", SESSIONS_LIST,
             {"filter": {"deviceType": {"eq": "desktop"}, "durationMs": {"gte": 30000}},
              "query": 'country IN (US, DE, GB) AND visited(path = "/checkout")'}),
        Case("session_detail", "one session: summary, user, events/errors/pages (first 100 each)",
             SESSION_DETAIL, {"id": found[0]["id"]}),
        Case("users", "users first 50, with totalCount", USERS),
        Case("issues", "issues first 50, with totalCount, sessionCount, userCount, releases", ISSUES),
        Case("filter_keys", "filterKeys(entity: SESSIONS) with fields", FILTER_KEYS),
        Case("aggregate_by_day", "aggregate SESSIONS COUNT by DAY over the last 7 days", SESSIONS_BY_DAY,
             {"from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat()}),
    ]


def summary(name: str, data: dict[str, Any]) -> str:
    """What came back, so a fast empty answer cannot pass for a fast query."""
    root = next(iter(data.values()))
    if name == "session_detail":
        return (f"{len(root['events']['nodes'])} events, {len(root['errors']['nodes'])} errors, "
                f"{len(root['pages']['nodes'])} pages")
    if name == "filter_keys":
        return f"{len(root)} keys"
    if name == "aggregate_by_day":
        return f"{len(root['rows'])} days"
    note = f"{len(root['nodes'])} rows"
    return note + (f" of {root['totalCount']:,}" if "totalCount" in root else "")


def measure(clients: dict[str, Client], timed: list[Case], warmup: int, runs: int, seed: int
            ) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, Any]]]:
    """Latencies per side and query, interleaved: every round sends each query to both sides back to back, the
    side that goes first alternating with the round and the query (and the query order shuffled per round), so
    neither side always follows the other or a given query."""
    rng = random.Random(seed)
    latencies: dict[str, dict[str, list[float]]] = {side: {c.name: [] for c in timed} for side in SIDES}
    last: dict[str, dict[str, Any]] = {side: {} for side in SIDES}
    for round_no in range(warmup + runs):
        order = list(enumerate(timed))
        rng.shuffle(order)
        for index, case in order:
            pair = SIDES if (round_no + index) % 2 == 0 else SIDES[::-1]
            for side in pair:
                elapsed, data, _ = clients[side].post(case.query, case.variables)
                if round_no >= warmup:
                    latencies[side][case.name].append(elapsed)
                last[side][case.name] = data
    return latencies, last


def http_results(timed: list[Case], latencies: dict[str, dict[str, list[float]]],
                 last: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for case in timed:
        before, after = latencies["before"][case.name], latencies["after"][case.name]
        p50_b, p50_a = percentile(before, 50), percentile(after, 50)
        # the median of the per-round differences: each pair ran back to back, so it is the steadiest estimate
        paired = statistics.median(a - b for a, b in zip(after, before, strict=True))
        same = orjson.dumps(last["before"][case.name]) == orjson.dumps(last["after"][case.name])
        rows.append({
            "name": case.name, "description": case.description, "runs": len(before),
            "result": summary(case.name, last["after"][case.name]), "same_answer": same,
            "before_p50_ms": round(p50_b, 2), "after_p50_ms": round(p50_a, 2),
            "before_p95_ms": round(percentile(before, 95), 2), "after_p95_ms": round(percentile(after, 95), 2),
            "diff_p50_ms": round(p50_a - p50_b, 2), "diff_p50_pct": round((p50_a / p50_b - 1) * 100, 1),
            "paired_diff_median_ms": round(paired, 2), "ratio_p50": round(p50_a / p50_b, 3),
        })
    return rows


def micro_us(fn: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Microseconds per call: the median of `repeat` timeit batches of `number` calls."""
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def _per_request(check: Callable[..., Any], schema: Any, document: Any, operation: Any, variables: dict[str, Any],
                 limits: Any) -> object:
    """What `_execute` adds on every request: the fragments of the document, then the limit walk."""
    from graphql import FragmentDefinitionNode

    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return check(schema, operation, fragments, variables, limits)


def check_costs(timed: list[Case]) -> list[dict[str, Any]]:
    """The new checks on each document, in process, from the working tree."""
    from graphql import get_operation_ast, parse

    from replayql.api.limits import check_limits, json_shape, literal_shape
    from replayql.api.schema import schema
    from replayql.config import QueryLimits

    limits, graphql_schema = QueryLimits(), schema._schema
    rows = []
    for case in timed:
        document = parse(case.query, max_tokens=limits.max_tokens)
        operation = get_operation_ast(document)
        assert operation is not None
        per_request = partial(_per_request, check_limits, graphql_schema, document, operation, case.variables,
                              limits)
        if per_request() is not None:
            raise SystemExit(f"{case.name} passes a limit; it is not an ordinary query")
        # `_check_request` walks `variables` only when there are some
        variables_walk = partial(json_shape, case.variables) if case.variables else partial(tuple, ())
        rows.append({
            "name": case.name,
            "parse_us": round(micro_us(partial(parse, case.query, max_tokens=limits.max_tokens), 500), 1),
            "literal_shape_us": round(micro_us(partial(literal_shape, document), 500), 1),
            "check_limits_us": round(micro_us(per_request, 2000), 1),
            "json_shape_us": round(micro_us(variables_walk, 20000), 2),
        })
    return rows


def hop_cost(number: int = 3000) -> dict[str, float]:
    """Execution now runs on `_EXECUTION_THREADS`, each thread with its own event loop: the cost of that hop with
    nothing to execute (the same pattern as `_run_operation`, on the same pool), against awaiting in place."""
    from replayql.api.graphql_http import _EXECUTION_THREADS

    state = threading.local()

    async def nothing() -> None:
        return None

    def on_thread() -> None:
        loop = getattr(state, "loop", None)
        if loop is None:
            loop = state.loop = asyncio.new_event_loop()
        loop.run_until_complete(nothing())

    async def timed() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        for _ in range(200):  # start the pool's threads and their loops
            await loop.run_in_executor(_EXECUTION_THREADS, on_thread)
        hops, direct = [], []
        for _ in range(number):
            started = time.perf_counter()
            await loop.run_in_executor(_EXECUTION_THREADS, on_thread)
            hops.append((time.perf_counter() - started) * 1e6)
            started = time.perf_counter()
            await nothing()
            direct.append((time.perf_counter() - started) * 1e6)
        return {"hop_p50_us": round(percentile(hops, 50), 1), "hop_p95_us": round(percentile(hops, 95), 1),
                "in_place_p50_us": round(percentile(direct, 50), 2)}

    return asyncio.run(timed())


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    load_before = load_average()
    started = time.perf_counter()
    commit = git("rev-parse", "--short", args.commit)
    after_dir, before_dir = tmp / "after", tmp / "before"
    after_dir.mkdir()
    done = cli_run("generate", "--sessions", str(args.sessions), "--seed", str(args.seed), data_dir=after_dir)
    generate_s = time.perf_counter() - started
    print(f"generated {args.sessions:,} sessions in {generate_s:.0f} s", flush=True)
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-limits", data_dir=after_dir)
    shutil.copytree(after_dir, before_dir)  # the same store and key, one file per server
    commands = {"generate": display_command(list(done.args), tmp),
                "keys": ["replayql", "keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-limits",
                         "--data-dir", "<tmp>/after"],
                "copy": "cp -r <tmp>/after <tmp>/before",
                "worktree": ["git", "worktree", "add", "--detach", "<tmp>/src-before", commit]}

    with worktree(commit, tmp / "src-before") as old_tree:
        sources = {"before": old_tree / "src", "after": ROOT / "src"}
        envs = {side: code_env(src) for side, src in sources.items()}
        code: dict[str, dict[str, Any]] = {}
        for side in SIDES:
            origin = imported_from(envs[side], tmp)
            if not origin.is_relative_to(sources[side].resolve()):
                raise SystemExit(f"{side}: `import replayql` resolves to {origin}, not under {sources[side]}")
            shown_src = "<tmp>/src-before/src" if side == "before" else "src"
            code[side] = {"pythonpath": shown_src,
                          "replayql_imported_from": f"{shown_src}/{origin.relative_to(sources[side].resolve())}"}
        with (ServerProcess(before_dir, env=envs["before"]) as before,
              ServerProcess(after_dir, env=envs["after"]) as after):
            servers = {"before": before, "after": after}
            clients = {side: Client(server.base_url, key) for side, server in servers.items()}
            try:
                for side in SIDES:
                    code[side]["alias_probe"] = probe = alias_probe(clients[side])
                    refused = probe["status"] == 400 and probe["code"] == "TOO_MANY_ALIASES"
                    if refused != (side == "after"):
                        raise SystemExit(f"{side}: the 31-alias probe answered {probe}: the wrong code is running")
                    code[side]["verified"] = ("refuses 31 aliases (TOO_MANY_ALIASES): the limits are in"
                                              if refused else "answers 31 aliases: no alias limit")
                    served = display_command(servers[side].command, tmp)
                    served[served.index("--port") + 1] = "<free port>"  # differs every run
                    code[side]["server_command"] = [f"PYTHONPATH={code[side]['pythonpath']}", *served]
                timed = cases(clients["after"])
                cpu_before = {side: servers[side].cpu_seconds() for side in SIDES}
                measure_started = time.perf_counter()
                latencies, last = measure(clients, timed, args.warmup, args.runs, args.seed)
                measure_s = time.perf_counter() - measure_started
                cpu = {side: (servers[side].cpu_seconds() or 0.0) - (cpu_before[side] or 0.0) for side in SIDES}
            finally:
                for client in clients.values():
                    client.close()

    queries = http_results(timed, latencies, last)
    requests = (args.warmup + args.runs) * len(timed)
    print("timing the checks in process", flush=True)
    costs = check_costs(timed)
    return {
        "benchmark": "limits_cost",
        "command": invocation(),
        "date": datetime.now(UTC).date().isoformat(),
        "config": {"sessions": args.sessions, "seed": args.seed, "runs": args.runs, "warmup": args.warmup,
                   "before_commit": commit, "after": "working tree", "store": "duckdb"},
        "commands": {**commands, "servers": {side: code[side]["server_command"] for side in SIDES},
                     "this": ["python", "bench/limits_cost.py", "--sessions", str(args.sessions), "--runs",
                              str(args.runs), "--warmup", str(args.warmup)]},
        "code": code,
        "generate_s": round(generate_s, 1),
        "measure_s": round(measure_s, 1),
        "queries": queries,
        # medians over queries: one slow query cannot dominate
        "overall": {"median_ratio_p50": round(statistics.median(q["ratio_p50"] for q in queries), 3),
                    "median_diff_p50_ms": round(statistics.median(q["diff_p50_ms"] for q in queries), 2)},
        "server_cpu_ms_per_request": {side: round(cpu[side] / requests * 1000, 2) for side in SIDES},
        "checks_in_process": costs,
        "execution_hop": hop_cost(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }


def markdown(result: dict[str, Any]) -> str:
    costs = {c["name"]: c for c in result["checks_in_process"]}
    rows = [[f"`{q['name']}`", q["result"] + ("" if q["same_answer"] else " (answers differ)"),
             fmt(q["before_p50_ms"], 2), fmt(q["after_p50_ms"], 2), f"{q['diff_p50_ms']:+.2f}",
             f"{q['diff_p50_pct']:+.1f}%", f"{q['paired_diff_median_ms']:+.2f}", fmt(q["before_p95_ms"], 2),
             fmt(q["after_p95_ms"], 2),
             fmt(costs[q["name"]]["check_limits_us"] + costs[q["name"]]["json_shape_us"], 1)]
            for q in result["queries"]]
    table = markdown_table(["query", "answer", "before p50 ms", "after p50 ms", "Δ p50 ms", "Δ p50",
                            "paired Δ ms", "before p95 ms", "after p95 ms", "checks µs/request"], rows)
    micro = markdown_table(
        ["query", "check_limits µs", "json_shape(variables) µs", "literal_shape µs (cached)",
         "parse µs (cached, both)"],
        [[f"`{c['name']}`", fmt(c["check_limits_us"], 1), fmt(c["json_shape_us"], 2),
          fmt(c["literal_shape_us"], 1), fmt(c["parse_us"], 1)] for c in result["checks_in_process"]])
    hop = result["execution_hop"]
    cpu = result["server_cpu_ms_per_request"]
    overall = result["overall"]
    return "\n".join([
        table, "",
        f"Median over the queries of after/before p50: {overall['median_ratio_p50']:.3f} "
        f"(median Δ p50 {overall['median_diff_p50_ms']:+.2f} ms). Server CPU per request: "
        f"before {cpu['before']:.2f} ms, after {cpu['after']:.2f} ms.", "",
        micro, "",
        f"Execution hop onto a graphql thread and its own loop, nothing executed: p50 {hop['hop_p50_us']:.0f} µs, "
        f"p95 {hop['hop_p95_us']:.0f} µs (awaiting in place: {hop['in_place_p50_us']:.1f} µs).",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20_000, help="sessions to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300, help="timed requests per query and side")
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first")
    parser.add_argument("--commit", default="aa1ce20", help="the code before the limits")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "limits-cost.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="replayql-limits-") as tmp:
        result = run(args, Path(tmp))
    write_json(args.out, result)
    for side in SIDES:
        print(f"{side}: {result['code'][side]['replayql_imported_from']}; {result['code'][side]['verified']}")
    text = markdown(result)
    print(text)
    if args.out == RESULTS_DIR / "limits-cost.json":
        replace_section(BENCH_DIR / "RESULTS.md", HEADING, f"{HEADING}\n\n```sh\n{result['command']}\n```\n\n{text}")
    out = args.out.resolve()
    print(f"result written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out.name}")


if __name__ == "__main__":
    main()
