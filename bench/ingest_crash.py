"""Crash safety under load: concurrent clients ingest while the server is SIGKILLed and restarted, then every
acknowledged batch is checked to be stored exactly once.

    python bench/ingest_crash.py [--kills 20] [--store duckdb|clickhouse] [--clients 12] [--open-sessions 3]
                                 [--batches-per-session 12] [--seed 1] [--min-delay 0.3] [--max-delay 1.5]

The scenario is tests/crash_scenario.py, the same code tests/test_crash_safety.py runs with 5 kills: a real
`replayql serve` on a free loopback port; clients keep sessions open and send their batches in order, resending
the same body until it is answered 200 (and now and then an acknowledged one again, which must be answered
"duplicate"); the server is killed with SIGKILL after a random uptime (seeded) and restarted on the same data
dir and port, `--kills` times; clients open new sessions until the last kill, then finish theirs; the server is
stopped with SIGINT, started again, and the data is read back through the GraphQL API with a read key. Both
stores by default. Reports what was sent, acknowledged and resent, the kills, the exactly-once verification and
the wall time; writes bench/results/ingest-crash-<store>.json. Exits 1 when the stored data differs from what
was acknowledged.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, STORES, invocation, load_average, machine_info, markdown_table, write_json
from crash_scenario import Config, Report, run_scenario  # tests/ is on the path through _common


def run(config: Config) -> tuple[Report, dict[str, Any]]:
    """The scenario on a fresh store in a temporary directory; the report and the JSON result."""
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="replayql-crash-") as tmp:
        report = run_scenario(config, Path(tmp) / "data")
    return report, {"benchmark": "ingest_crash", "command": invocation(), **report.as_json(),
                    "exactly_once": not report.problems,
                    "load_average_before": load_before, "load_average_after": load_average(),
                    "machine": machine_info()}


def summary(report: Report) -> str:
    header = ["store", "sessions", "batches", "events", "recording events", "requests", "acked", "resends",
              "kills", "verified", "wall s"]
    verdict = "exactly once" if not report.problems else f"{report.problem_count} problems"
    row = [report.store, f"{report.sessions:,}", f"{report.batches:,}", f"{report.events:,}",
           f"{report.recording_events:,}", f"{report.requests:,}", f"{report.acked:,}", f"{report.resends:,}",
           str(report.kills), verdict, f"{report.wall_s:.1f}"]
    return markdown_table(header, [row])


def details(report: Report) -> list[str]:
    lines = [f"outcomes {report.outcomes}; resent after {report.retry_causes}; acknowledged batches sent again "
             f"{report.late_resends}, answered {report.late_outcomes}",
             f"kills during traffic {report.kills_during_traffic}/{report.kills}; requests in flight at each kill "
             f"{report.in_flight_at_kill}; acknowledged in each uptime {report.acked_before_kill}",
             f"seconds to /healthz per start {report.start_s}; exit code of the final SIGINT "
             f"{report.clean_exit_code}",
             f"errors the server logged: {report.server_errors or 'none'}"]
    return lines + [f"  problem: {p}" for p in report.problems]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs during traffic (default 20)")
    parser.add_argument("--store", choices=STORES, action="append", help="a store; both by default")
    parser.add_argument("--clients", type=int, default=12, help="concurrent clients (threads)")
    parser.add_argument("--open-sessions", type=int, default=3, help="sessions each client sends interleaved")
    parser.add_argument("--batches-per-session", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1, help="seeds the data and the kill times")
    parser.add_argument("--min-delay", type=float, default=0.3, help="shortest uptime before a kill, seconds")
    parser.add_argument("--max-delay", type=float, default=1.5, help="longest uptime before a kill, seconds")
    args = parser.parse_args()

    failed = False
    for store in args.store or STORES:
        config = Config(store=store, kills=args.kills, clients=args.clients, open_sessions=args.open_sessions,
                        batches_per_session=args.batches_per_session, seed=args.seed,
                        kill_delay_s=(args.min_delay, args.max_delay))
        report, result = run(config)
        out = RESULTS_DIR / f"ingest-crash-{store}.json"
        write_json(out, result)
        print(summary(report))
        print("\n".join(details(report)))
        print(f"result written to {out}\n")
        failed |= bool(report.problems)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
