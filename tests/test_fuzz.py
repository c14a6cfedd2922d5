"""Fuzzing the two public surfaces, on both stores: hypothesis builds GraphQL requests (every root field and
mutation, with hostile query strings, typed filters, analytics inputs and random JSON in every argument) and
malformed ingest batches (a valid batch with values swapped for random JSON, broken bytes, bad gzip).

The properties: no answer is a 5xx, no GraphQL error is INTERNAL_SERVER_ERROR, every refusal is JSON with a
code or a message, and the server keeps serving and storing afterwards.
"""

from __future__ import annotations

import gzip
import json
import string
from copy import deepcopy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import T0, Server, make_batch
from replayql.query.vocabulary import EVENTS, SESSIONS, USERS

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None, phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck))
GRAPHQL_STATUSES = {200, 400, 405, 413}
INGEST_STATUSES = {200, 400, 403, 404, 413, 415}

HOSTILE_TEXT = ["", " ", "' OR 1=1 --", '"; DROP TABLE sessions; --', "\\", '\\"', "%", "_", "\x00", "🙂", "a" * 300,
                "now-100000000000000000000d", "9" * 400, "1e999", "-0", "NaN", "(((((", ")))", "a{1001}",
                "(a{1000}){1000}", "properties.", "trait.", "user.trait.x' OR '1'='1", "count(error) >= 99999999999",
                "0001-01-01", "9999-12-31T23:59:59Z", "${jndi:ldap://x}", "<script>", "\u202e", "\ud7ff"]
FIELDS = sorted({*SESSIONS.fields, *USERS.fields, *EVENTS.fields, "properties.plan", "user.trait.plan",
                 "trait.plan", "session.browser", "pathPattern", "nosuchfield"})
OPS = ["=", "!=", "<", "<=", ">", ">=", "~", "!~", "^=", "$=", "MATCHES", "NOT MATCHES", "IN", "NOT IN", "EXISTS",
       "NOT EXISTS", "BETWEEN"]
KINDS = ["visited", "clicked", "network", "error", "console", "custom", "vital", "rageClick", "deadClick", "count"]

# Strategies are wrapped in composites so their reprs stay short (hypothesis prints them when validating).
@st.composite
def _texts(draw: st.DrawFn) -> str:
    return draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40),
                          st.text(alphabet=string.printable, max_size=80)))


@st.composite
def _numbers(draw: st.DrawFn) -> float:
    return draw(st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
                          st.floats(allow_nan=False, allow_infinity=False)))


@st.composite
def _json_values(draw: st.DrawFn) -> Any:
    return draw(st.recursive(st.one_of(st.none(), st.booleans(), numbers, texts),
                             lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(texts, inner, max_size=4)), max_leaves=20))


texts, numbers = _texts(), _numbers()
json_values = _json_values()


@st.composite
def _conditions(draw: st.DrawFn, depth: int = 0) -> str:
    """One comparison, or an event condition around one (at most two levels)."""
    if depth < 2 and draw(st.integers(0, 5)) == 0:
        kind = draw(st.sampled_from(KINDS))
        if kind == "count":
            return f"count(error) >= {draw(numbers)}"
        return f"{kind}({draw(_conditions(depth + 1))})"
    value = draw(st.one_of(numbers.map(str), texts.map(json.dumps), texts,
                           st.sampled_from(["now-7d", "1h", "2026-01-01", "[1, 2]", "(a, b)", "true"])))
    return f"{draw(st.sampled_from(FIELDS))} {draw(st.sampled_from(OPS))} {value}"


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """Mostly grammatical filter-language strings with hostile parts, sometimes plain noise."""
    parts = draw(st.lists(_conditions(), min_size=1, max_size=4))
    joined = f" {draw(st.sampled_from(['AND', 'OR', 'THEN', 'and not']))} ".join(parts)
    shape = draw(st.integers(0, 4))
    return [joined, f"NOT ({joined})", f"({joined}", joined + ")", draw(texts) if shape == 4 else ""][shape]


@st.composite
def typed_filters(draw: st.DrawFn, fields: tuple[str, ...], depth: int = 0) -> Any:
    """and / or / not over leaves of field conditions, with random operators and values."""
    if depth < 3 and draw(st.integers(0, 3)) == 0:
        combine = draw(st.sampled_from(["and", "or", "not"]))
        if combine == "not":
            return {"not": draw(typed_filters(fields, depth + 1))}
        return {combine: [draw(typed_filters(fields, depth + 1)) for _ in range(draw(st.integers(0, 3)))]}
    operators = st.dictionaries(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "in", "notIn", "contains",
                                                 "regex", "between", "exists"]), json_values, max_size=3)
    names = draw(st.lists(st.sampled_from(fields), max_size=3, unique=True))
    return {name: draw(st.one_of(json_values, operators)) for name in names}


LIST = "query($q: String, $f: {filter}, $n: Int, $a: String) {{ {field}(query: $q, filter: $f, first: $n, after: $a) " \
       "{{ totalCount nodes {{ id }} pageInfo {{ endCursor hasNextPage }} }} }}"
OPERATIONS: list[tuple[str, dict[str, st.SearchStrategy[Any]]]] = [
    (LIST.format(filter="SessionFilter", field="sessions"),
     {"q": query_strings(), "f": typed_filters(tuple(sorted(SESSIONS.fields))), "n": numbers, "a": texts}),
    (LIST.format(filter="UserFilter", field="users"),
     {"q": query_strings(), "f": typed_filters(tuple(sorted(USERS.fields))), "n": numbers, "a": texts}),
    (LIST.format(filter="IssueFilter", field="issues"), {"q": query_strings(), "n": numbers, "a": texts}),
    (LIST.format(filter="EventFilter", field="events"),
     {"q": query_strings(), "f": typed_filters(tuple(sorted(EVENTS.fields))), "n": numbers, "a": texts}),
    ("query($id: ID!, $a: String) { session(id: $id) { id user { id } recording(first: 3, after: $a) { nodes } "
     "events(first: 3) { nodes { id } } errors { nodes { id } } } }", {"id": texts, "a": texts}),
    ('query($id: ID!) { user(id: $id) { id traits sessions { totalCount } } issue(id: $id) { id title } }',
     {"id": texts}),
    ("query($e: FilterEntity!, $k: String!, $q: String, $l: Int) { topValues(entity: $e, key: $k, query: $q, "
     "limit: $l) { values { value count } } filterKeys(entity: $e) { name } }",
     {"e": st.sampled_from(["SESSIONS", "USERS", "ISSUES", "EVENTS", "NOPE"]), "k": st.one_of(
         st.sampled_from(FIELDS), texts), "q": query_strings(), "l": numbers}),
    ("query($i: AggregateInput!) { aggregate(input: $i) { rows totals previous { rows } } }",
     {"i": st.fixed_dictionaries({
         "source": st.sampled_from(["SESSIONS", "USERS", "ISSUES", "EVENTS", "PAGES", "WEB_VITALS"]),
         "measures": st.lists(st.fixed_dictionaries({
             "fn": st.sampled_from(["COUNT", "SUM", "AVG", "PERCENTILE", "UNIQUE", "MIN"]),
             "alias": texts, "field": st.one_of(st.sampled_from(FIELDS), texts),
             "percentile": numbers, "where": query_strings()}), max_size=3),
     }, optional={"groupBy": st.lists(st.fixed_dictionaries({"field": st.sampled_from(FIELDS)}), max_size=2),
                  "interval": st.sampled_from(["HOUR", "DAY", "WEEK", "MONTH"]), "timeZone": texts,
                  "timeRange": st.fixed_dictionaries({"from": texts, "to": texts}), "query": query_strings(),
                  "limit": numbers, "comparePrevious": st.booleans(), "orderBy": texts})}),
    ("query($i: FunnelInput!) { funnel(input: $i) { steps { count } } }",
     {"i": st.fixed_dictionaries({"steps": st.lists(query_strings(), max_size=4)},
                                 optional={"windowMs": numbers, "query": query_strings()})}),
    ("query($i: RetentionInput!) { retention(input: $i) { cohorts { size } } }",
     {"i": st.fixed_dictionaries({"timeRange": st.fixed_dictionaries({"from": texts, "to": texts})},
                                 optional={"periods": numbers, "start": query_strings(), "timeZone": texts})}),
    ("query($i: PathsInput!) { paths(input: $i) { edges { count } } }",
     {"i": st.fixed_dictionaries({}, optional={"start": query_strings(), "steps": numbers, "limit": numbers,
                                               "query": query_strings()})}),
    ("query($q: String, $l: Int) { webVitals(query: $q, limit: $l) { vitals { name } } }",
     {"q": query_strings(), "l": numbers}),
    ("mutation($id: ID!, $t: JSON, $n: String, $e: String) { identifyUser(id: $id, name: $n, email: $e, "
     "traits: $t) { id } }", {"id": texts, "t": json_values, "n": texts, "e": texts}),
    ("mutation($id: ID!, $s: IssueStatus!) { updateIssue(id: $id, status: $s) { id } }",
     {"id": texts, "s": st.sampled_from(["OPEN", "RESOLVED", "IGNORED", "BOGUS"])}),
    ("mutation($id: ID!) { deleteUser(id: $id) { deletedSessions } }", {"id": texts}),
    ("mutation($n: String) { createApiKey(scope: READ, name: $n) { key { id } } }", {"n": texts}),
    ("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": texts}),
]


@st.composite
def graphql_requests(draw: st.DrawFn) -> dict[str, Any]:
    query, variables = draw(st.sampled_from(OPERATIONS))
    chosen = {name: draw(strategy) for name, strategy in variables.items() if draw(st.booleans())}
    if draw(st.integers(0, 9)) == 0:  # the wrong type altogether
        chosen = {name: draw(json_values) for name in variables}
    return {"query": query, "variables": chosen}


def _seed(server: Server) -> None:
    events = [{"type": "page", "ts": T0, "url": "https://shop.example/?a=1"},
              {"type": "error", "ts": T0 + 1, "message": "boom", "errorType": "TypeError"},
              {"type": "custom", "ts": T0 + 2, "name": "Buy", "properties": {"plan": "pro", "n": 3}},
              {"type": "identify", "ts": T0 + 3, "userId": "u-1", "traits": {"plan": "pro"}}]
    assert server.ingest(make_batch("s-fuzz", events, sent_at=T0 + 10)).status_code == 200


@FUZZ
@given(case=graphql_requests())
def test_graphql_never_answers_an_internal_error(server: Server, case: dict[str, Any]) -> None:
    if not getattr(server, "seeded", False):
        _seed(server)
        server.seeded = True  # type: ignore[attr-defined]
    body = orjson.dumps(case, option=orjson.OPT_NON_STR_KEYS) if _fits_orjson(case) else _json_text(case)
    response = server.client.post("/graphql", content=body,
                                  headers={"authorization": f"token {server.keys['admin']}",
                                           "content-type": "application/json"})
    assert response.status_code in GRAPHQL_STATUSES, (case, response.text[:500])
    for error in response.json().get("errors", ()):
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", (case, error)
    assert server.client.get("/healthz").status_code == 200


VALID = make_batch("s-ingest-fuzz", [
    {"type": "page", "ts": T0, "url": "https://shop.example/", "title": "Home"},
    {"type": "click", "ts": T0 + 1, "selector": "#buy", "text": "Buy", "x": 1, "y": 2},
    {"type": "network", "ts": T0 + 2, "method": "GET", "url": "https://api.example/", "status": 500,
     "durationMs": 3.5, "requestBytes": 1, "responseBytes": 2},
    {"type": "custom", "ts": T0 + 3, "name": "Buy", "properties": {"plan": "pro"}},
    {"type": "identify", "ts": T0 + 4, "userId": "u-1", "traits": {"plan": "pro"}},
    {"type": "error", "ts": T0 + 5, "message": "boom", "stack": "at f (a.js:1:1)", "tags": {"a": "b"}},
    {"type": "vital", "ts": T0 + 6, "name": "LCP", "value": 1.5},
    {"type": "recording", "ts": T0 + 7, "data": {"type": 3, "timestamp": T0 + 7, "data": {"source": 1}}},
], sent_at=T0 + 10)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the batch a value sits."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


PATHS = _paths(VALID)


def _replaced(batch: Any, path: tuple[Any, ...], new: Any) -> Any:
    """The batch with the value at `path` replaced (unchanged when an earlier change removed that place)."""
    copy = deepcopy(batch)
    target = copy
    try:
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = new
    except (KeyError, IndexError, TypeError):
        return batch
    return copy


@st.composite
def ingest_bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    batch = _replaced(VALID, ("sessionId",), f"s-{draw(st.integers(0, 10**6))}")
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        batch = _replaced(batch, path, draw(st.one_of(json_values, st.sampled_from([2**63, -(2**63) - 1, 2**80]))))
    body = orjson.dumps(batch, option=orjson.OPT_NON_STR_KEYS) if _fits_orjson(batch) else _json_text(batch)
    headers: dict[str, str] = {"content-type": draw(st.sampled_from(["application/json", "text/plain", ""]))}
    match draw(st.integers(0, 9)):
        case 0:
            body = gzip.compress(body)
        case 1:
            body = gzip.compress(body)[: draw(st.integers(0, 30))]
            headers["content-encoding"] = "gzip"
        case 2:
            body = draw(st.binary(max_size=200))
        case 3:
            body = body[: draw(st.integers(0, len(body)))]
    return body, headers


def _fits_orjson(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return False
    return True


def _json_text(value: Any) -> bytes:
    """For what orjson refuses to write (integers past 64 bits)."""
    return json.dumps(value).encode()


@FUZZ
@given(case=ingest_bodies())
def test_malformed_batches_never_answer_5xx(server: Server, case: tuple[bytes, dict[str, str]]) -> None:
    body, headers = case
    response = server.client.post("/v1/ingest", content=body, headers=headers)
    assert response.status_code in INGEST_STATUSES, (body[:300], response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer.get("ok") is True or isinstance(answer.get("error"), str), answer


def test_after_the_fuzz_the_server_still_stores_and_answers(server: Server) -> None:
    """A fresh server takes a burst of poison values in every place of a batch, then stores and reads a good one."""
    for path in PATHS:
        body = _json_text(_replaced(VALID, path, {"x": [2**80, "\x00", {"": None}]}))
        assert server.client.post("/v1/ingest", content=body).status_code in INGEST_STATUSES
    good = _replaced(VALID, ("sessionId",), "s-after-fuzz")
    assert server.client.post("/v1/ingest", content=orjson.dumps(good)).status_code == 200
    assert server.data('{ session(id: "s-after-fuzz") { eventCount } }') == {"session": {"eventCount": 7}}


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Refusals are not failures; only an internal error would log an exception, and the asserts catch it."""
    caplog.set_level("CRITICAL")
