"""Where ingest time goes, stage by stage, in one process: decompress, decode, sessionize, write.

    python bench/ingest_stages.py [--sessions 1000] [--rounds 6] [--group 300] [--profile STAGE]

The fleet's batches (fleet.py: rrweb-heavy, a full snapshot per page view) go through the server's own
functions without HTTP, `--group` batches per store write, into a fresh DuckDB store; each stage is timed on
its own and reported in microseconds per event. `--profile sessionize|write` prints cProfile's top functions
of that stage.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from fleet import batch_bodies, build_chunks
from replayql.config import IngestLimits
from replayql.ingest.sessionize import SessionizeOptions, SessionTail, sessionize
from replayql.ingest.wire import decode_batch, decompress_body
from replayql.store.duckdb_store import DuckDBStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--group", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", choices=("sessionize", "write"))
    args = parser.parse_args()
    limits, options = IngestLimits(), SessionizeOptions()
    profiler = cProfile.Profile() if args.profile else None
    seconds = dict.fromkeys(("decompress", "decode", "sessionize", "write"), 0.0)
    tails: dict[str, SessionTail] = {}
    events = 0
    sent = batch_bodies(build_chunks(args.seed, 40.0), args.sessions, args.rounds, args.seed)
    with tempfile.TemporaryDirectory(prefix="replayql-stages-") as tmp:
        store = DuckDBStore(Path(tmp) / "replayql.duckdb", memory_limit="512MB")
        for start in range(0, len(sent), args.group):
            writes = []
            for body in sent[start:start + args.group]:
                t0 = time.perf_counter()
                payload = decompress_body(body, "gzip", limits)
                t1 = time.perf_counter()
                batch = decode_batch(payload, limits)
                t2 = time.perf_counter()
                with _profiled(profiler if args.profile == "sessionize" else None):
                    write, tails[batch.session_id] = sessionize(batch, tails.get(batch.session_id, SessionTail()),
                                                                options)
                seconds["sessionize"] += time.perf_counter() - t2
                seconds["decompress"] += t1 - t0
                seconds["decode"] += t2 - t1
                writes.append(write)
                events += len(batch.events)
            t0 = time.perf_counter()
            with _profiled(profiler if args.profile == "write" else None):
                store.write(writes, int(time.time() * 1000))
            seconds["write"] += time.perf_counter() - t0
        store.close()
    total = sum(seconds.values())
    print(f"{events:,} events in {len(sent):,} batches: {total:.2f} s, {events / total:,.0f} events/s in one process")
    for stage, spent in seconds.items():
        print(f"  {stage:<11} {spent:6.2f} s  {spent / events * 1e6:5.2f} us/event")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


class _profiled:
    """Profile the block when a profiler is given."""

    def __init__(self, profiler: cProfile.Profile | None) -> None:
        self.profiler = profiler

    def __enter__(self) -> None:
        if self.profiler is not None:
            self.profiler.enable()

    def __exit__(self, *exc: object) -> None:
        if self.profiler is not None:
            self.profiler.disable()


if __name__ == "__main__":
    main()
