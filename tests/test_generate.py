"""The synthetic shop traffic: determinism, wire-format shape and the realism the rest of the system relies on."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import iptocc
import orjson
import pytest
import ua_parser

from replayql.generate import BOT_COUNTRY, COUNTRIES, DAY_MS, default_end_ms, generate_batches, write_ndjson

END_MS = 1_764_201_600_000  # 2025-11-27T00:00:00Z
DAYS = 7
SESSIONS = 300
HOUR_MS = 3_600_000

VITAL_NAMES = {"LCP", "FCP", "CLS", "INP", "TTFB", "FID"}
CONSOLE_LEVELS = {"debug", "info", "log", "warn", "error"}
NUMBER = (int, float)

# JSON type of every field per event type, as in the wire format. Optional fields are marked with "?".
EVENT_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "page": {"url": str, "title": str, "referrer?": str},
    "click": {"selector": str, "text": str, "x": int, "y": int},
    "input": {"selector": str},
    "console": {"level": str, "message": str},
    "network": {"method": str, "url": str, "status": int, "durationMs": NUMBER, "requestBytes": int,
                "responseBytes": int},
    "error": {"errorType": str, "message": str, "stack": str, "handled": bool, "tags": dict, "extra": dict},
    "custom": {"name": str, "properties": dict},
    "identify": {"userId": str, "traits": dict},
    "vital": {"name": str, "value": NUMBER},
    "recording": {"data": dict},
}


def _generate(sessions: int = SESSIONS, seed: int = 11) -> list[dict[str, Any]]:
    return list(generate_batches("demo", sessions, seed=seed, days=DAYS, end_ms=END_MS))


@pytest.fixture(scope="module")
def batches() -> list[dict[str, Any]]:
    return _generate()


@pytest.fixture(scope="module")
def sessions(batches: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Batches grouped by session, in the order they were yielded."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for batch in batches:
        grouped[batch["sessionId"]].append(batch)
    return grouped


@pytest.fixture(scope="module")
def large() -> list[dict[str, Any]]:
    """Enough sessions for rare things (per-release errors) to show up reliably."""
    return _generate(1_500, seed=5)


def _events(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for batch in batches for event in batch["events"]]


def _check_type(value: Any, expected: type | tuple[type, ...]) -> bool:
    # bool is a subclass of int in Python but a different JSON type.
    if isinstance(value, bool) and expected is not bool:
        return False
    return isinstance(value, expected)


def test_same_arguments_give_identical_output() -> None:
    first = list(generate_batches("demo", 60, seed=3, days=2, end_ms=END_MS))
    second = list(generate_batches("demo", 60, seed=3, days=2, end_ms=END_MS))
    assert orjson.dumps(first) == orjson.dumps(second)


def test_different_seed_gives_different_output() -> None:
    first = list(generate_batches("demo", 60, seed=3, days=2, end_ms=END_MS))
    other = list(generate_batches("demo", 60, seed=4, days=2, end_ms=END_MS))
    assert orjson.dumps(first) != orjson.dumps(other)
    assert {b["sessionId"] for b in first}.isdisjoint({b["sessionId"] for b in other})


def test_session_count_and_contiguous_seq(batches: list[dict[str, Any]],
                                          sessions: dict[str, list[dict[str, Any]]]) -> None:
    assert len(sessions) == SESSIONS
    for session_batches in sessions.values():
        assert [b["seq"] for b in session_batches] == list(range(len(session_batches)))
        assert 1 <= len(session_batches) <= 4
    # A session's batches are yielded together, and sessions in order of their start.
    order = [b["sessionId"] for b in batches]
    assert sum(1 for a, b in pairwise(order) if a != b) == SESSIONS - 1
    starts = [s[0]["events"][0]["ts"] for s in sessions.values()]
    assert starts == sorted(starts)


def test_context_only_on_first_batch(batches: list[dict[str, Any]]) -> None:
    for batch in batches:
        assert ("context" in batch) == (batch["seq"] == 0)


def test_timestamps_ordered_and_sent_after_last_event(batches: list[dict[str, Any]]) -> None:
    for batch in batches:
        stamps = [event["ts"] for event in batch["events"]]
        assert stamps, "no empty batches"
        assert stamps == sorted(stamps)
        assert stamps[-1] <= batch["sentAt"] <= stamps[-1] + 3_000


def test_all_event_types_appear(batches: list[dict[str, Any]]) -> None:
    assert {event["type"] for event in _events(batches)} == set(EVENT_FIELDS)


def test_batch_and_context_field_types(batches: list[dict[str, Any]]) -> None:
    for batch in batches:
        assert set(batch) <= {"appId", "sessionId", "seq", "sentAt", "context", "clientIp", "events"}
        assert batch["appId"] == "demo"
        assert re.fullmatch(r"s-[0-9a-f]{16}", batch["sessionId"])
        assert _check_type(batch["seq"], int) and _check_type(batch["sentAt"], int)
        assert isinstance(batch["clientIp"], str) and isinstance(batch["events"], list)
        if "context" in batch:
            context = batch["context"]
            assert {k: type(v) for k, v in context.items()} == {
                "userAgent": str, "viewport": dict, "language": str, "timezone": str, "release": str, "sdk": dict}
            assert all(_check_type(v, int) for v in context["viewport"].values())
            assert context["sdk"] == {"name": "replayql-browser", "version": "0.1.0"}


def test_event_field_types(batches: list[dict[str, Any]]) -> None:
    for event in _events(batches):
        fields = EVENT_FIELDS[event["type"]]
        assert _check_type(event["ts"], int)
        required = {name for name in fields if not name.endswith("?")}
        allowed = {name.rstrip("?") for name in fields}
        assert required <= set(event) - {"type", "ts"} <= allowed, event
        for name, expected in fields.items():
            key = name.rstrip("?")
            if key in event:
                assert _check_type(event[key], expected), (key, event)


def test_enumerated_values_and_string_lengths(batches: list[dict[str, Any]]) -> None:
    for event in _events(batches):
        if event["type"] == "vital":
            assert event["name"] in VITAL_NAMES
            assert event["value"] >= 0
        elif event["type"] == "console":
            assert event["level"] in CONSOLE_LEVELS
        elif event["type"] == "network":
            assert event["url"].startswith("https://api.shop.example/")
            assert 200 <= event["status"] < 600
        elif event["type"] == "page":
            assert event["url"].startswith("https://shop.example/")
        for value in event.values():
            if isinstance(value, str):
                assert len(value) < 2_000


def test_events_fall_inside_the_time_range(batches: list[dict[str, Any]]) -> None:
    low, high = END_MS - DAYS * DAY_MS, END_MS + HOUR_MS
    for batch in batches:
        assert all(low <= event["ts"] <= high for event in batch["events"])
        assert batch["sentAt"] <= high


def test_default_end_is_the_start_of_the_current_utc_day() -> None:
    end = default_end_ms()
    assert end % DAY_MS == 0
    now_ms = time.time() * 1000
    assert end <= now_ms < end + DAY_MS  # today's midnight, not a timing
    events = _events(list(generate_batches("demo", 5, days=1)))
    assert all(end - DAY_MS <= event["ts"] <= end + HOUR_MS for event in events)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        next(generate_batches("demo", 10, days=0))
    assert list(generate_batches("demo", 0, end_ms=END_MS)) == []


def test_session_shape(sessions: dict[str, list[dict[str, Any]]]) -> None:
    for session_batches in sessions.values():
        events = _events(session_batches)
        assert 5 <= len(events) <= 200
        assert 30_000 <= events[-1]["ts"] - events[0]["ts"] <= 30 * 60_000
        assert events[0]["type"] == "page"


def test_client_ip_country_matches_timezone(batches: list[dict[str, Any]]) -> None:
    zones = {country.code: {zone for zone, _ in country.timezones} for country in COUNTRIES}
    for batch in batches:
        if batch["seq"] != 0 or "Googlebot" in batch["context"]["userAgent"]:
            continue
        country = iptocc.country_code(batch["clientIp"])
        assert batch["context"]["timezone"] in zones[country], batch["clientIp"]


def test_every_ip_prefix_maps_to_its_country() -> None:
    for country in (*COUNTRIES, BOT_COUNTRY):
        for prefix in country.ip_prefixes:
            probe = f"{prefix}.77" if prefix.count(".") == 2 else f"{prefix}.128.77"
            assert iptocc.country_code(probe) == country.code, prefix


def test_user_agents_cover_the_browser_mix(batches: list[dict[str, Any]]) -> None:
    agents = {b["context"]["userAgent"] for b in batches if "context" in b}
    parsed = [ua_parser.parse(agent).user_agent for agent in agents]
    families = {agent.family for agent in parsed if agent is not None}
    assert {"Chrome", "Safari", "Mobile Safari", "Chrome Mobile", "Edge"} <= families


def test_users_identify_and_return(sessions: dict[str, list[dict[str, Any]]]) -> None:
    identified: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for session_batches in sessions.values():
        identifies = [e for e in _events(session_batches) if e["type"] == "identify"]
        if identifies:
            identified[identifies[0]["userId"]].append(identifies[0]["traits"])
    share = sum(len(traits) for traits in identified.values()) / SESSIONS
    assert 0.45 < share < 0.75
    assert any(len(traits) >= 2 for traits in identified.values()), "returning users"
    for user_id, traits in identified.items():
        assert re.fullmatch(r"u-\d{6}", user_id)
        assert all(t == traits[0] for t in traits), "traits are stable across a user's sessions"
        assert traits[0]["plan"] in {"free", "pro", "team"}


def test_recordings_and_frustration_signals(sessions: dict[str, list[dict[str, Any]]]) -> None:
    recorded = rage = dead = 0
    for session_batches in sessions.values():
        events = _events(session_batches)
        has_recording = any(e["type"] == "recording" for e in events)
        recorded += has_recording
        clicks = [(i, e) for i, e in enumerate(events) if e["type"] == "click"]
        rage += any(sum(1 for _, d in clicks if d["selector"] == c["selector"] and 0 <= d["ts"] - c["ts"] <= 1_000)
                    >= 3 for _, c in clicks)
        if has_recording:
            dead += any(all(e["ts"] > c["ts"] + 1_000 or e is c or (e["type"] == "vital" and e["name"] == "FID")
                            for e in events[i:]) for i, c in clicks)
    assert 0.55 < recorded / SESSIONS < 0.85
    assert rage >= 1
    assert dead >= 1


def test_recording_events_are_small_rrweb_events(batches: list[dict[str, Any]]) -> None:
    kinds: Counter[tuple[int, int | None]] = Counter()
    for event in _events(batches):
        if event["type"] == "recording":
            data = event["data"]
            assert data["timestamp"] == event["ts"]
            assert len(orjson.dumps(event)) < 1_000
            kinds[data["type"], data["data"].get("source")] += 1
    assert {(2, None), (4, None), (3, 0), (3, 1), (3, 2), (3, 3), (3, 5)} <= set(kinds)


def test_landing_pages_carry_utm_sometimes(sessions: dict[str, list[dict[str, Any]]]) -> None:
    landings = [s[0]["events"][0] for s in sessions.values()]
    utm = sum("utm_source=" in page["url"] for page in landings)
    assert 0.1 < utm / len(landings) < 0.3
    assert any("referrer" not in page for page in landings), "direct traffic has no referrer"


def _error_groups(batches: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """Normalised message -> release -> stack file names (bundle.hash.js)."""
    groups: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    release = ""
    for batch in batches:
        if "context" in batch:
            release = batch["context"]["release"]
        for event in batch["events"]:
            if event["type"] == "error":
                key = event["errorType"] + ": " + re.sub(r"\d+|'[^']*'|\"[^\"]*\"", "_", event["message"])
                groups[key][release] |= set(re.findall(r"/static/js/([\w.]+\.js)", event["stack"]))
    return groups


def test_recurring_errors_change_file_hashes_across_releases(large: list[dict[str, Any]]) -> None:
    groups = _error_groups(large)
    assert 5 <= len(groups) <= 10
    spanning = {key: files for key, files in groups.items() if len(files) >= 2}
    assert spanning
    for files in spanning.values():
        by_release = list(files.values())
        assert all(a != b for i, a in enumerate(by_release) for b in by_release[i + 1:])


def test_regression_only_in_newest_release(large: list[dict[str, Any]]) -> None:
    groups = _error_groups(large)
    assert set(groups["TypeError: Cannot read properties of null (reading _)"]) == {"1.4.2"}
    assert "1.4.2" not in groups["RangeError: Invalid time value"]


def test_error_messages_have_volatile_parts(large: list[dict[str, Any]]) -> None:
    messages = {e["message"] for e in _events(large) if e["type"] == "error"}
    assert len(messages) > 2 * len(_error_groups(large))


def test_write_ndjson_round_trips(tmp_path: Path, batches: list[dict[str, Any]]) -> None:
    path = tmp_path / "demo.ndjson"
    assert write_ndjson(path, iter(batches[:50])) == 50
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == batches[:50]
