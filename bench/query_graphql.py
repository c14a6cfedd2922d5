"""GraphQL query latency over HTTP against a real `replayql serve` on a loaded store.

    python bench/query_graphql.py [--sessions 10000] [--seed 1] [--runs 40] [--warmup 3] [--data-dir DIR]
                                  [--store duckdb|clickhouse]

Without --data-dir the store is loaded with `replayql generate --sessions N --seed S --data-dir <tmp>` (the
bulk-import path; its time is reported too). With --data-dir an existing store is used as it is (it must hold
the app `demo`). A read key is created with `replayql keys create`, then each query is sent a few times to warm
up and then --runs times, one at a time, from one keep-alive client. Every answer is checked for errors.
Reports p50/p95 per query in ms and writes bench/results/query.json.

--store clickhouse loads and serves an in-process chDB database at `chdb://<dir>/chdb` instead of DuckDB (with
--data-dir, the one already there). chDB allows one process per path: `generate` and `keys create` finish before
`serve` starts, as they do for DuckDB.
"""

from __future__ import annotations

import argparse
import re
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from _common import (
    APP_ID,
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
    write_json,
)

SESSION_FIELDS = "id startedAt durationMs browser os deviceType country pageCount errorCount"

VIEWER = "query Viewer { viewer { appId keyId scopes } }"

SESSIONS_NEWEST = f"""query SessionsNewest {{
  sessions(first: 50) {{
    nodes {{ {SESSION_FIELDS} user {{ id name }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

SESSIONS_FILTERED = f"""query SessionsFiltered {{
  sessions(first: 50, filter: {{browser: {{eq: "Chrome"}}, hasErrors: true, durationMs: {{gte: 60000}}}}) {{
    totalCount
    nodes {{ {SESSION_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

SESSIONS_VISITED = f"""query SessionsVisitedCheckout {{
  sessions(first: 50, filter: {{visitedUrl: {{contains: "/checkout"}}}}) {{
    nodes {{ {SESSION_FIELDS} initialUrl }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

SESSION_DETAIL = f"""query SessionDetail($id: ID!) {{
  session(id: $id) {{
    {SESSION_FIELDS} endedAt activeDurationMs release initialUrl utmSource clickCount eventCount
    rageClickCount deadClickCount errorClickCount viewport {{ width height }}
    webVitals {{ lcp fcp cls inp ttfb fid }}
    user {{ id name email traits sessionCount firstSeen lastSeen }}
    events(first: 200) {{
      nodes {{
        id kind timestamp url
        ... on PageEvent {{ title referrer path }}
        ... on ClickEvent {{ selector text x y }}
        ... on InputEvent {{ selector }}
        ... on ConsoleEvent {{ level message }}
        ... on NetworkEvent {{ method status durationMs }}
        ... on ErrorEvent {{ errorType message issueId }}
        ... on CustomEvent {{ name properties }}
        ... on WebVitalEvent {{ name value }}
      }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""

ISSUES = """query Issues {
  issues(first: 50) {
    totalCount
    nodes { id title errorType status count firstSeen lastSeen sessionCount userCount releases }
  }
}"""

USERS_FLAT = """query Users {
  users(first: 50) {
    nodes { id name email sessionCount firstSeen lastSeen }
  }
}"""

USERS_NESTED = """query UsersWithSessions {
  users(first: 50) {
    nodes {
      id name email sessionCount lastSeen
      sessions(first: 5) { nodes { id startedAt durationMs browser pageCount } }
    }
  }
}"""

EVENTS_5XX = """query NetworkErrors {
  events(first: 100, filter: {kind: {eq: "network"}, status: {gte: 500}}) {
    totalCount
    nodes { id timestamp url session { id } ... on NetworkEvent { method status durationMs host path } }
    pageInfo { hasNextPage endCursor }
  }
}"""

SESSIONS_PAGE = f"""query SessionsPage($after: String) {{
  sessions(first: 50, after: $after) {{
    nodes {{ {SESSION_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


@dataclass
class Case:
    name: str
    description: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)


class Client:
    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"authorization": f"token {key}"}, timeout=120.0)

    def post(self, query: str, variables: dict[str, Any]) -> tuple[float, dict[str, Any], int]:
        """One request: (latency ms, body, response bytes); an error answer stops the benchmark."""
        started = time.perf_counter()
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        elapsed = (time.perf_counter() - started) * 1000
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise SystemExit(f"query failed ({response.status_code}): {str(body)[:800]}\n{query}")
        return elapsed, body["data"], len(response.content)

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.post(query, variables or {})[1]

    def close(self) -> None:
        self.http.close()


def cases(client: Client) -> list[Case]:
    """The queries, with the ids and cursors they need looked up first (outside the timing)."""
    detail = client.data("{ sessions(first: 1, filter: {eventCount: {gte: 150}, identified: true}) "
                         "{ nodes { id } } }")["sessions"]["nodes"]
    if not detail:
        detail = client.data("{ sessions(first: 1) { nodes { id } } }")["sessions"]["nodes"]
    cursor = None
    for _ in range(4):  # pages 1-4; the timed request reads page 5
        cursor = client.data(SESSIONS_PAGE, {"after": cursor})["sessions"]["pageInfo"]["endCursor"]
    return [
        Case("viewer", "baseline: auth + GraphQL + HTTP, no store read", VIEWER),
        Case("sessions_newest", "sessions, first 50 newest, with user", SESSIONS_NEWEST),
        Case("sessions_filtered", "browser = Chrome, hasErrors, durationMs >= 60000, with totalCount",
             SESSIONS_FILTERED),
        Case("sessions_visited_checkout", 'visitedUrl contains "/checkout", first 50', SESSIONS_VISITED),
        Case("session_detail", "one session (>= 150 events) with user and first 200 events", SESSION_DETAIL,
             {"id": detail[0]["id"]}),
        Case("issues", "issues, first 50, with totalCount, sessionCount, userCount, releases", ISSUES),
        Case("users_flat", "users, first 50 (no nesting; baseline for the next)", USERS_FLAT),
        Case("users_nested", "users, first 50, each with sessions(first: 5)", USERS_NESTED),
        Case("events_network_5xx", "events kind = network and status >= 500, first 100, with totalCount",
             EVENTS_5XX),
        Case("sessions_page5", "sessions page 5 (first 50, after the cursor of page 4)", SESSIONS_PAGE,
             {"after": cursor}),
    ]


def summary(name: str, data: dict[str, Any]) -> str:
    """A short note of what came back, so a fast answer cannot hide an empty one."""
    root = next(iter(data.values()))
    if name == "session_detail":
        return f"{len(root['events']['nodes'])} events"
    if name == "viewer":
        return "-"
    nodes = root["nodes"]
    note = f"{len(nodes)} rows"
    if "totalCount" in root:
        note += f" of {root['totalCount']:,}"
    if name == "users_nested":
        note += f", {sum(len(n['sessions']['nodes']) for n in nodes)} nested sessions"
    return note


def time_case(client: Client, case: Case, warmup: int, runs: int) -> dict[str, Any]:
    for _ in range(warmup):
        client.post(case.query, case.variables)
    latencies: list[float] = []
    data: dict[str, Any] = {}
    size = 0
    for _ in range(runs):
        elapsed, data, size = client.post(case.query, case.variables)
        latencies.append(elapsed)
    return {"name": case.name, "description": case.description, "runs": runs,
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "min_ms": round(min(latencies), 2), "max_ms": round(max(latencies), 2),
            "response_bytes": size, "result": summary(case.name, data)}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load(data_dir: Path, sessions: int, seed: int, store: str = "duckdb") -> dict[str, Any]:
    """`replayql generate --sessions N --seed S` into the store: the bulk-import path (generation included)."""
    args = ["generate", "--sessions", str(sessions), "--seed", str(seed)]
    load_before = load_average()
    machine_before, children_before = machine_cpu_seconds(), _children_cpu_seconds()
    started = time.perf_counter()
    done = cli_run(*args, data_dir=data_dir, store=store)
    seconds = time.perf_counter() - started
    machine_after, own_cpu = machine_cpu_seconds(), _children_cpu_seconds() - children_before
    other_cpu = None  # CPU that other processes used meanwhile: a measure of interference
    if machine_before is not None and machine_after is not None:
        other_cpu = round(max(0.0, machine_after - machine_before - own_cpu), 2)
    report = re.search(r"stored (\d+) batches \((\d+) events\)", done.stderr)
    batches, events = (int(report[1]), int(report[2])) if report else (None, None)
    return {"command": display_command(list(done.args), data_dir), "seconds": round(seconds, 2),
            "batches": batches, "events": events,
            "events_per_s": round(events / seconds, 1) if events else None,
            "cpu_s": round(own_cpu, 2), "other_cpu_s": other_cpu,
            "load_average_before": load_before, "load_average_after": load_average()}


def run(data_dir: Path, sessions: int | None, seed: int, warmup: int, runs: int, loaded: dict[str, Any] | None,
        server_log_level: str, store: str = "duckdb") -> dict[str, Any]:
    load_before = load_average()
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-query", data_dir=data_dir,
              store=store)
    with ServerProcess(data_dir, log_level=server_log_level, store=store) as server:
        client = Client(server.base_url, key)
        try:
            counts = client.data("{ sessions(first: 0) { totalCount } events(first: 0) { totalCount } "
                                 "users(first: 0) { totalCount } issues(first: 0) { totalCount } }")
            timed = cases(client)
            cpu_before = (machine_cpu_seconds(), server.cpu_seconds(), time.process_time())
            results = [time_case(client, case, warmup, runs) for case in timed]
            cpu_after = (machine_cpu_seconds(), server.cpu_seconds(), time.process_time())
        finally:
            client.close()
        command = server.command
    other_cpu = None  # CPU that other processes on the machine used meanwhile: a measure of interference
    if None not in cpu_before and None not in cpu_after:
        machine, server_cpu, client_cpu = (after - before for after, before in zip(cpu_after, cpu_before,
                                                                                    strict=True))
        other_cpu = round(max(0.0, machine - server_cpu - client_cpu), 2)
    return {
        "benchmark": "query_graphql",
        "command": invocation(),
        "config": {"store": store, "sessions": sessions, "seed": seed, "warmup": warmup, "runs": runs,
                   "server_command": display_command(command, data_dir)},
        "load": loaded,
        "store": {name: value["totalCount"] for name, value in counts.items()},
        "queries": results,
        "other_cpu_s": other_cpu,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [[f"`{q['name']}`", q["description"], fmt(q["p50_ms"], 1), fmt(q["p95_ms"], 1), fmt(q["min_ms"], 1),
             fmt(q["max_ms"], 1), f"{q['response_bytes']:,}", q["result"]] for q in result["queries"]]
    return markdown_table(["query", "what", "p50 ms", "p95 ms", "min ms", "max ms", "bytes", "answer"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions to generate (without --data-dir)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per query first")
    parser.add_argument("--data-dir", type=Path, help="an existing store to query (kept as it is)")
    parser.add_argument("--store", choices=STORES, default="duckdb",
                        help="duckdb (default) or clickhouse (in-process chDB at <data dir>/chdb)")
    parser.add_argument("--server-log-level", default="warning")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "query.json")
    args = parser.parse_args()

    if args.data_dir is not None:
        result = run(args.data_dir, None, args.seed, args.warmup, args.runs, None, args.server_log_level,
                     args.store)
    else:
        with tempfile.TemporaryDirectory(prefix="replayql-bench-") as tmp:
            loaded = load(Path(tmp), args.sessions, args.seed, args.store)
            print(f"loaded with `replayql generate` in {loaded['seconds']} s "
                  f"({fmt(loaded['events_per_s'], 0)} events/s)", flush=True)
            result = run(Path(tmp), args.sessions, args.seed, args.warmup, args.runs, loaded,
                         args.server_log_level, args.store)
    write_json(args.out, result)
    print(f"store: {result['store']}")
    print(markdown(result))
    print(f"result written to {args.out}")


if __name__ == "__main__":
    main()
