"""Bulk loading of wire-format batches (NDJSON files, generated data) through the same path as HTTP ingestion."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from replayql.config import IngestLimits
from replayql.ingest.wire import IngestRejected, decode_batch
from replayql.ingest.writer import IngestWriter, Outcome

_IN_FLIGHT = 2_000  # enough queued batches for large group commits, bounded memory


@dataclass
class ImportReport:
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    events: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def import_batches(lines: Iterable[bytes], writer: IngestWriter, known_app: Callable[[str], bool],
                   limits: IngestLimits, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Validate and write every line; a bad line is reported and skipped, the rest still land.

    Timestamps are trusted as they are (no clock-skew correction): imported data was recorded in the past."""
    report = ImportReport()
    pending: list[tuple[int, Future[Outcome]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            batch = decode_batch(line, limits)
        except IngestRejected as exc:
            report.rejected.append((number, _describe(exc)))
            continue
        if not known_app(batch.app_id):
            report.rejected.append((number, f"unknown appId {batch.app_id!r}"))
            continue
        report.events += len(batch.events)
        pending.append((number, writer.submit(batch)))
        if len(pending) >= _IN_FLIGHT:
            _settle(pending, report, progress)
    _settle(pending, report, progress)
    return report


def _settle(pending: list[tuple[int, Future[Outcome]]], report: ImportReport,
            progress: Callable[[int], None] | None) -> None:
    for number, future in pending:
        try:
            outcome = future.result()
        except Exception as exc:
            report.rejected.append((number, f"could not be stored: {exc}"))
            continue
        if outcome is Outcome.STORED:
            report.stored += 1
        elif outcome is Outcome.DUPLICATE:
            report.duplicates += 1
        else:
            report.dropped += 1
    if progress is not None and pending:
        progress(len(pending))
    pending.clear()


def _describe(exc: IngestRejected) -> str:
    details = "; ".join(f"event {e.index} {e.field}: {e.message}" if e.index is not None else
                        f"{e.field}: {e.message}" for e in exc.errors[:5])
    return f"{exc.message} ({details})" if details else exc.message
