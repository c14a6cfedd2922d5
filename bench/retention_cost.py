"""What the DuckDB retention job (issue 12) costs: wall time, rows deleted per second, how long each chunk holds
the writer, and the commit latency of batches ingested while it runs.

    python bench/retention_cost.py [--sessions 40000] [--days 60] [--retention-days 30] [--chunk 500]

The store is made with `replayql generate --sessions N --days D --data-dir <tmp>` (sessions spread evenly over
the D days before today, so with D = 60 and 30 days of retention about half of them are expired). Then, in this
process, the server's services are opened on it and a probe submits one small new batch to the writer every
10 ms, timing each until committed (what an ingest request waits for, without HTTP): for --baseline-s before the
job, and while `apply_retention` runs with --chunk sessions per writer job. Each chunk reports how long it held
the writer thread. Writes bench/results/retention-cost.json and the "Retention cost" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from _common import (
    RESULTS_DIR,
    cli,
    display_command,
    fmt,
    load_average,
    machine_info,
    markdown_table,
    percentile,
    replace_section,
    replayql_exe,
    write_json,
)
from replayql.api.app import close_services, open_services
from replayql.config import Settings
from replayql.generate import generate_batches
from replayql.ingest.retention import apply_retention
from replayql.ingest.wire import decode_batch
from replayql.ingest.writer import IngestWriter
from replayql.store.retention import retention_cutoff

HEADING = "## Retention cost (issue 12)"
PROBE_INTERVAL_S = 0.01


class Probe:
    """Submits a fresh one-batch session every PROBE_INTERVAL_S and records how long each took to commit."""

    def __init__(self, writer: IngestWriter, settings: Settings) -> None:
        self.writer, self.settings = writer, settings
        self.template = next(generate_batches("demo", 1, seed=7, days=1))
        self.latencies: dict[str, list[float]] = {"baseline": [], "during": []}
        self.phase = "baseline"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def _batch(self) -> Any:
        batch = copy.deepcopy(self.template)
        shift = int(time.time() * 1000) - batch["sentAt"]
        for event in batch["events"]:
            event["ts"] += shift
        batch.update(sessionId=f"probe-{self._n}", seq=0, sentAt=batch["sentAt"] + shift)
        self._n += 1
        return decode_batch(orjson.dumps(batch), self.settings.limits)

    def _run(self) -> None:
        while not self._stop.wait(PROBE_INTERVAL_S):
            batch, phase = self._batch(), self.phase
            started = time.perf_counter()
            self.writer.submit(batch).result()
            self.latencies[phase].append((time.perf_counter() - started) * 1000)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _counts(services: Any, cutoff_days: int) -> dict[str, int]:
    cutoff = retention_cutoff(cutoff_days, datetime.now(UTC))
    row = services.store.fetch("""SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM events),
        (SELECT count(*) FROM recordings), (SELECT count(*) FROM users), (SELECT count(*) FROM issues),
        (SELECT count(*) FROM sessions WHERE ended_at < $cutoff)""", {"cutoff": cutoff})[0]
    return dict(zip(("sessions", "events", "recordings", "users", "issues", "expired_sessions"), row, strict=True))


def _latency(values: list[float]) -> dict[str, float | int]:
    return {"n": len(values), "p50_ms": round(percentile(values, 50), 2), "p95_ms": round(percentile(values, 95), 2),
            "max_ms": round(max(values), 2) if values else float("nan")}


def measure(data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir)
    services = open_services(settings)
    held: list[float] = []
    try:
        before = _counts(services, args.retention_days)
        with Probe(services.writer, settings) as probe:
            time.sleep(args.baseline_s)
            probe.phase = "during"
            run = apply_retention(services.writer, args.retention_days, args.chunk,
                                  on_chunk=lambda chunk: held.append(chunk.held_s * 1000))
        after = _counts(services, args.retention_days)
    finally:
        close_services(services)
    deleted_rows = run.sessions + run.events + run.recordings + run.users
    return {
        "before": before, "after": after,
        "run": {"sessions": run.sessions, "events": run.events, "recordings": run.recordings, "users": run.users,
                "chunks": run.chunks, "wall_s": round(run.seconds, 2),
                "rows_per_s": round(deleted_rows / run.seconds) if run.seconds else None,
                "sessions_per_s": round(run.sessions / run.seconds) if run.seconds else None},
        "chunk_hold_ms": {"p50": round(percentile(held, 50), 1), "p95": round(percentile(held, 95), 1),
                          "max": round(max(held), 1)},
        "ingest_commit_latency": {phase: _latency(v) for phase, v in probe.latencies.items()},
    }


def _section(result: dict[str, Any]) -> str:
    run, hold, lat = result["run"], result["chunk_hold_ms"], result["ingest_commit_latency"]
    config = result["config"]
    rows = [[phase, str(v["n"]), fmt(v["p50_ms"]), fmt(v["p95_ms"]), fmt(v["max_ms"])] for phase, v in lat.items()]
    return "\n".join([
        HEADING, "",
        f"`{' '.join(result['command'])}`: a DuckDB store of {config['sessions']:,} generated sessions over "
        f"{config['days']} days (`{' '.join(result['generate_command'])}`; {result['before']['events']:,} events), "
        f"{result['before']['expired_sessions']:,} of them last active more than {config['retention_days']} days ago; "
        f"the job deletes them {config['chunk']} sessions per writer job.", "",
        markdown_table(["deleted", "sessions", "events", "recordings", "users", "chunks", "wall s", "rows/s"],
                       [["", f"{run['sessions']:,}", f"{run['events']:,}", f"{run['recordings']:,}",
                         f"{run['users']:,}", str(run["chunks"]), fmt(run["wall_s"], 2), f"{run['rows_per_s']:,}"]]),
        "",
        f"Each chunk held the writer p50 {fmt(hold['p50'])} ms, p95 {fmt(hold['p95'])} ms, max {fmt(hold['max'])} ms: "
        "the longest a batch arriving meanwhile waits for it. Commit latency of a small batch submitted every "
        "10 ms (ms):", "",
        markdown_table(["phase", "batches", "p50", "p95", "max"], rows), "",
        f"Load average at the start: {result['load_average']} (2 shared cores; other work skews the figures).",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=40_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--retention-days", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=Settings().retention_chunk_sessions)
    parser.add_argument("--baseline-s", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        generate = ["generate", "--sessions", str(args.sessions), "--days", str(args.days), "--seed", "1"]
        cli(*generate, data_dir=data_dir)
        started_load = load_average()
        result = {"config": vars(args),
                  "command": ["python", "bench/retention_cost.py", "--sessions", str(args.sessions), "--days",
                              str(args.days), "--retention-days", str(args.retention_days), "--chunk",
                              str(args.chunk)],
                  "generate_command": display_command([replayql_exe(), *generate, "--data-dir", str(data_dir)],
                                                      data_dir),
                  "machine": machine_info(), "load_average": started_load, **measure(data_dir, args)}
    write_json(RESULTS_DIR / "retention-cost.json", result)
    replace_section(RESULTS_DIR.parent / "RESULTS.md", HEADING, _section(result))
    print(orjson.dumps({k: result[k] for k in ("run", "chunk_hold_ms", "ingest_commit_latency")},
                       option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
