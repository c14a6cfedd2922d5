"""The synthetic shop traffic: determinism, wire-format shape and the realism the rest of the system relies on."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
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


def test_recording_events_are_rrweb_events(batches: list[dict[str, Any]]) -> None:
    kinds: Counter[tuple[int, int | None]] = Counter()
    for event in _events(batches):
        if event["type"] == "recording":
            data = event["data"]
            assert data["timestamp"] == event["ts"]
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


# ---- the rrweb recordings ------------------------------------------------------------------------------------

FULL_SNAPSHOT, INCREMENTAL, META = 2, 3, 4
MUTATION, MOUSE_MOVE, MOUSE_INTERACTION, SCROLL, INPUT, TOUCH_MOVE = 0, 1, 2, 3, 5, 6
# tag, then any of #id, .class, [name=value]: the selectors the generator's clicks use
SIMPLE_SELECTOR = re.compile(r"([a-z0-9]+)((?:[#.][\w-]+|\[name=[\w-]+\])*)")


class Mirror:
    """The DOM a replayer holds while it applies a recording: each node by id with its parent. Every method
    asserts what rrweb's Replayer would otherwise warn about (an id that is missing, or used twice)."""

    def __init__(self) -> None:
        self.nodes: dict[int, dict[str, Any]] = {}
        self.parent: dict[int, int | None] = {}
        self.children: dict[int, list[int]] = defaultdict(list)

    def load(self, document: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]  # a new document: rrweb's mirror starts over
        self._add_tree(document, None)

    def _add_tree(self, node: dict[str, Any], parent: int | None) -> None:
        self.add(node, parent)
        for child in node.get("childNodes", ()):
            self._add_tree(child, node["id"])

    def add(self, node: dict[str, Any], parent: int | None, next_id: int | None = None) -> None:
        assert node["id"] not in self.nodes, f"id {node['id']} used twice"
        assert parent is None or parent in self.nodes, f"parent {parent} not found"
        self.nodes[node["id"]], self.parent[node["id"]] = node, parent
        if parent is not None:
            siblings = self.children[parent]
            assert next_id is None or next_id in siblings, f"next sibling {next_id} not under {parent}"
            siblings.insert(siblings.index(next_id) if next_id is not None else len(siblings), node["id"])

    def remove(self, node_id: int, parent: int) -> None:
        assert self.parent.get(node_id) == parent, f"{node_id} is not a child of {parent}"
        self.children[parent].remove(node_id)
        stack = [node_id]
        while stack:
            current = stack.pop()
            stack += self.children.pop(current, [])
            del self.nodes[current], self.parent[current]

    def mutate(self, data: dict[str, Any]) -> None:
        for removal in data["removes"]:
            self.remove(removal["id"], removal["parentId"])
        for add in data["adds"]:
            assert add["node"].get("childNodes", []) == [], "rrweb adds each node on its own"
            self.add(add["node"], add["parentId"], add["nextId"])
        for change in (*data["texts"], *data["attributes"]):
            assert change["id"] in self.nodes, f"changed node {change['id']} not found"
        for text in data["texts"]:
            self.nodes[text["id"]] = {**self.nodes[text["id"]], "textContent": text["value"]}

    def text(self, node_id: int) -> str:
        node = self.nodes[node_id]
        if node["type"] == 3:
            return str(node["textContent"])
        return "".join(self.text(child) for child in self.children[node_id])

    def matches(self, node_id: int, selector: str) -> bool:
        """Whether the node matches a descendant selector such as `nav a.logo` or `input[name=q]`."""
        *ancestors, own = selector.split()
        if not self._is(node_id, own):
            return False
        current = self.parent[node_id]
        for part in reversed(ancestors):
            while current is not None and not self._is(current, part):
                current = self.parent[current]
            if current is None:
                return False
            current = self.parent[current]
        return True

    def _is(self, node_id: int, simple: str) -> bool:
        node = self.nodes[node_id]
        match = SIMPLE_SELECTOR.fullmatch(simple)
        assert match is not None, simple
        if node.get("tagName") != match[1]:
            return False
        attrs = node["attributes"]
        for part in re.findall(r"[#.][\w-]+|\[name=[\w-]+\]", match[2]):
            if part[0] == "#" and attrs.get("id") != part[1:]:
                return False
            if part[0] == "." and part[1:] not in attrs.get("class", "").split():
                return False
            if part[0] == "[" and attrs.get("name") != part[6:-1]:
                return False
        return True

    def title(self) -> str:
        return next(self.text(i) for i, n in self.nodes.items() if n.get("tagName") == "title")


def _recorded(sessions: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(context, events) of each session with a recording."""
    for session_batches in sessions.values():
        events = _events(session_batches)
        if any(e["type"] == "recording" for e in events):
            yield session_batches[0]["context"], events


def _replay(events: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Mirror]]:
    """Each event of a session with the recorded DOM as it is when the event happens."""
    mirror = Mirror()
    for event in events:
        if event["type"] == "recording":
            data = event["data"]
            if data["type"] == FULL_SNAPSHOT:
                mirror.load(data["data"]["node"])
            elif data["type"] == INCREMENTAL and data["data"]["source"] == MUTATION:
                mirror.mutate(data["data"])
        yield event, mirror


def test_recordings_start_with_meta_then_a_styled_full_snapshot(sessions: dict[str, list[dict[str, Any]]]) -> None:
    for context, events in _recorded(sessions):
        recording = [e["data"] for e in events if e["type"] == "recording"]
        assert [r["type"] for r in recording[:2]] == [META, FULL_SNAPSHOT]
        pages = [e for e in events if e["type"] == "page"]
        assert recording[0]["data"] == {"href": pages[0]["url"], **context["viewport"]}
        document = recording[1]["data"]["node"]
        assert document["type"] == 0 and document["id"] == 1 and document["childNodes"][0]["type"] == 1
        html = document["childNodes"][1]
        head, body = html["childNodes"]
        style = next(node for node in head["childNodes"] if node["tagName"] == "style")
        assert "grid-template-columns" in style["attributes"]["_cssText"]
        assert style["childNodes"] == [{"type": 3, "textContent": "", "id": style["id"] + 1}]
        assert [node["tagName"] for node in body["childNodes"]] == ["header", "main", "footer"]


def test_recorded_dom_stays_consistent(sessions: dict[str, list[dict[str, Any]]]) -> None:
    """Ids unique in each document, every mutation names nodes that exist, every pointer, scroll and input event
    targets a node on the page at that moment."""
    checked = Counter()
    for _, events in _recorded(sessions):
        for event, mirror in _replay(events):
            if event["type"] != "recording" or event["data"]["type"] != INCREMENTAL:
                continue
            data = event["data"]["data"]
            source = data["source"]
            if source in (MOUSE_MOVE, TOUCH_MOVE):
                assert all(p["id"] in mirror.nodes and -200 <= p["timeOffset"] <= 0 for p in data["positions"])
            elif source in (SCROLL, MOUSE_INTERACTION, INPUT):
                assert data["id"] in mirror.nodes, data
            checked[source] += 1
    assert set(checked) == {MUTATION, MOUSE_MOVE, MOUSE_INTERACTION, SCROLL, INPUT, TOUCH_MOVE}


def test_each_page_view_shows_its_page_in_the_recording(sessions: dict[str, list[dict[str, Any]]]) -> None:
    """After each page event the recorded document (a new one, or the SPA's route change) has the page's title,
    and product pages show the product that the Product Viewed event names."""
    appearances: Counter[int] = Counter()  # how each page after the first appeared: by its rrweb event type
    for _, events in _recorded(sessions):
        pending: dict[str, Any] | None = None
        for event, mirror in _replay(events):
            if event["type"] == "page":
                pending = event
            elif pending is not None and event["type"] == "recording" and event["data"]["type"] != META:
                assert event["ts"] - pending["ts"] < 200
                assert mirror.title() == pending["title"]
                appearances[event["data"]["type"]] += pending is not events[0]
                pending = None
            elif event["type"] == "custom" and event["name"] == "Product Viewed":
                h1 = next(i for i, n in mirror.nodes.items() if n.get("tagName") == "h1")
                assert mirror.text(h1) == event["properties"]["name"]
    assert appearances[INCREMENTAL] > 3 * appearances[FULL_SNAPSHOT] > 0


def test_clicks_and_inputs_land_on_the_nodes_their_selectors_name(sessions: dict[str, list[dict[str, Any]]]) -> None:
    for _, events in _recorded(sessions):
        interactions = {(e["ts"], e["data"]["data"]["source"]): e["data"]["data"] for e in events
                        if e["type"] == "recording" and e["data"]["type"] == INCREMENTAL}
        for event, mirror in _replay(events):
            if event["type"] == "click":
                click = interactions[event["ts"], MOUSE_INTERACTION]
                assert click["type"] == 2 and (click["x"], click["y"]) == (event["x"], event["y"])
                assert mirror.matches(click["id"], event["selector"]), event
                if event["text"]:
                    assert " ".join(mirror.text(click["id"]).split()) == event["text"]
            elif event["type"] == "input":
                typed = interactions[event["ts"], INPUT]
                assert mirror.matches(typed["id"], event["selector"]), event
                assert set(typed["text"]) == {"*"} and typed["isChecked"] is False


def test_recording_event_sizes(batches: list[dict[str, Any]]) -> None:
    """Full snapshots and route changes are a few KB; everything else stays small."""
    largest: dict[bool, int] = defaultdict(int)
    for event in _events(batches):
        if event["type"] == "recording":
            data = event["data"]["data"]
            dom = "node" in data or bool(data.get("adds"))
            largest[dom] = max(largest[dom], len(orjson.dumps(event)))
    assert 5_000 < largest[True] < 20_000
    assert largest[False] < 1_000
