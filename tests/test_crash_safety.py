"""Crash safety on both stores: a real `replayql serve` is SIGKILLed at random moments while concurrent clients
ingest, restarted on the same data dir each time, and afterwards every acknowledged batch is stored exactly once.

The scenario (data, clients, kills, verification through the GraphQL API) lives in crash_scenario.py, which
bench/ingest_crash.py runs at a larger scale. The store lives in this test's own tmp dir (for ClickHouse, its
own chDB path, opened only by the server subprocesses, never by this process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crash_scenario import STORES, Config, SessionPlan, build_session, check_events, check_recording, run_scenario

KILLS = 5


@pytest.mark.parametrize("store", STORES)
def test_every_acknowledged_batch_is_stored_exactly_once_across_kills(store: str, tmp_path: Path) -> None:
    # Every client sends at least its first two sessions (16 batches); with seed 7 their draws resend 9 acknowledged
    # batches, so the checks below do not depend on how much the clients get through between kills.
    config = Config(store=store, kills=KILLS, clients=8, open_sessions=2, batches_per_session=8, seed=7,
                    max_sessions_per_client=150)
    report = run_scenario(config, tmp_path / "crash")
    facts = (f"{report.sessions} sessions, {report.batches} batches, {report.event_rows} events, "
             f"{report.recording_events} recording events; {report.requests} requests, {report.resends} resends, "
             f"outcomes {report.outcomes}, retried for {report.retry_causes}, acknowledged batches sent again "
             f"{report.late_resends} ({report.late_outcomes}); the server logged {report.server_errors or 'no errors'}")

    assert report.kills == KILLS, f"only {report.kills} of {KILLS} kills happened ({facts})"
    assert report.kills_during_traffic == KILLS, (
        f"only {report.kills_during_traffic} of {KILLS} kills hit while clients were sending ({facts})")
    assert report.resends > 0, f"no batch was ever resent, so no kill met a client sending ({facts})"
    assert report.late_resends > 0, f"no acknowledged batch was sent again ({facts})"
    assert report.acked == report.batches, f"{report.acked} batches acknowledged of {report.batches} sent ({facts})"
    assert report.clean_exit_code == 0, f"SIGINT after the last batch: exit code {report.clean_exit_code}"
    assert report.problems == [], (
        f"{report.problem_count} differences between what was acknowledged and what is stored ({facts}):\n"
        + "\n".join(report.problems))


def stored_as_sent(plan: SessionPlan) -> dict[str, Any]:
    """What the API answers for a session stored exactly as sent."""
    rows = [{"id": f"{b.session_id}/{b.seq}/{idx}", "kind": kind} for b in plan.batches for idx, kind in b.rows]
    recording = [dict(e) for b in plan.batches for e in b.recording]
    return {"id": plan.session_id, "eventCount": len(rows), "hasRecording": bool(recording),
            "events": {"totalCount": len(rows), "nodes": rows},
            "recording": {"totalCount": len(recording), "nodes": recording}}


def test_the_verification_sees_lost_duplicated_and_changed_data() -> None:
    """The checks are not vacuous: each kind of damage a crash could do is named."""
    plan = build_session("c0-s0", 6, seed=3)
    assert check_events(plan, stored_as_sent(plan)) == []
    assert check_recording(plan, stored_as_sent(plan)) == []

    replayed = stored_as_sent(plan)  # batch 2 written twice, as a replay without the ledger would
    again = [n for n in replayed["events"]["nodes"] if n["id"].startswith("c0-s0/2/")]
    replayed["events"]["nodes"] += again
    replayed["events"]["totalCount"] += len(again)
    problems = check_events(plan, replayed)
    assert any(p.startswith("c0-s0: rows stored more than once: ['c0-s0/2/") for p in problems), problems
    assert f"c0-s0 seq 2: {2 * len(again)} rows stored, {len(again)} sent" in problems, problems
    assert any("event rows" in p for p in problems), problems

    lost = stored_as_sent(plan)  # the last batch lost
    lost["events"]["nodes"] = [n for n in lost["events"]["nodes"] if not n["id"].startswith("c0-s0/5/")]
    assert any(p.startswith("c0-s0: rows missing: ['c0-s0/5/") for p in check_events(plan, lost))

    derived = stored_as_sent(plan)  # an extra derived row (a dead click) counts as damage too
    derived["events"]["nodes"].append({"id": "c0-s0/0/99", "kind": "dead_click"})
    assert any("not sent as such" in p for p in check_events(plan, derived))

    chunk = stored_as_sent(plan)  # batch 0's recording chunk stored twice, and one event changed
    first = [e for e in chunk["recording"]["nodes"] if e["data"]["tag"].startswith("0/")]
    chunk["recording"]["nodes"] += [dict(e) for e in first]
    chunk["recording"]["nodes"][0] = {**first[0], "timestamp": 0}
    problems = check_recording(plan, chunk)
    assert any("recording events stored more than once" in p for p in problems), problems
    assert any("recording events not as sent" in p for p in problems), problems
