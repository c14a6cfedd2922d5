"""Hostile and careless input, on both stores: every case answers a 4xx or a GraphQL error whose code says what
to fix, never a 5xx or INTERNAL_SERVER_ERROR; nothing of a refused request is stored; the server keeps serving.

The cases are the ones a hostile-input probe found (out-of-range numbers, values that validate but cannot be
stored, RE2's limits, deep JSON, empty keys, filters and queries whose cost no document limit saw) and the
limits that now bound the cost of one request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from graphql import get_introspection_query

from conftest import CONTEXT, T0, Location, Server, make_batch, start_server
from replayql.api.app import close_services
from replayql.config import QueryLimits, Settings, with_limits

PAGE = {"type": "page", "ts": T0, "url": "https://shop.example/"}
SESSIONS = "query($f: SessionFilter, $q: String) { sessions(filter: $f, query: $q) { totalCount } }"


def post_graphql(server: Server, body: bytes | dict[str, Any], key: str = "admin") -> tuple[int, dict[str, Any]]:
    """POST /graphql with a body built by hand when needed (deep JSON that a serialiser would refuse)."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = server.client.post("/graphql", content=content, headers={
        "authorization": f"token {server.keys[key]}", "content-type": "application/json"})
    return response.status_code, response.json()


def refused(server: Server, query: str, variables: dict[str, Any] | None = None, status: int = 400) -> dict[str, Any]:
    """The request's one error, after checking it is a user error with the given HTTP status."""
    code, body = post_graphql(server, {"query": query, "variables": variables})
    assert code == status, body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error
    return error


def nested(levels: int, leaf: str = "1", wrap: str = '{"a": %s}') -> bytes:
    text = leaf
    for _ in range(levels):
        text = wrap % text
    return text.encode()


def ingest_raw(server: Server, body: bytes) -> tuple[int, dict[str, Any]]:
    response = server.client.post("/v1/ingest", content=body, headers={"content-type": "application/json"})
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def batch_with(event: bytes, session_id: str, context: bytes | None = None) -> bytes:
    """A batch whose second event is given as raw JSON text."""
    head = orjson.dumps(make_batch(session_id, [PAGE], sent_at=T0 + 1_000))
    if context is not None:
        head = head.replace(orjson.dumps(CONTEXT), context)
    return head.replace(orjson.dumps(PAGE), orjson.dumps(PAGE) + b"," + event)


def session_count(server: Server) -> int:
    return int(server.data("{ sessions { totalCount } }")["sessions"]["totalCount"])


# -- GraphQL: user mistakes are user errors -------------------------------------------------------------------

def test_a_key_name_over_the_limit_is_a_user_error_and_creates_no_key(server: Server) -> None:
    keys_before = len(server.services.registry.list_keys("demo"))
    error = refused(server, 'mutation { createApiKey(scope: READ, name: "%s") { secret } }' % ("x" * 300))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "invalid key name: use text of at most 200 characters, or none"
    assert len(server.services.registry.list_keys("demo")) == keys_before


@pytest.mark.parametrize(("query", "message"), [
    ("pageCount > " + "9" * 1_000, "number `99999999999999999999...` is out of range"),
    ("durationMs > 1e999", "number `1e999` is out of range"),
    ("startedAt > now-100000000000000000000d", "duration `now-100000000000000000000d` is out of range (at most "
                                               "100 years)"),
    ("durationMs > 9999999999999999d", "duration `9999999999999999d` is out of range (at most 100 years)"),
    ("startedAt > 0001-01-01", "date `0001-01-01` is out of range: use a time from 1900 to 2199"),
    ('initialUrl MATCHES "a{1001}"', "the regular expression's repetition counts are too large for RE2"),
    ('initialUrl MATCHES "(a{1000}){1000}"', "the regular expression's repetition counts are too large for RE2"),
], ids=["1000 digits", "1e999", "now minus 1e20 days", "huge duration", "year 1", "a{1001}", "nested counts"])
def test_out_of_range_values_in_a_query_string_are_bad_query(server: Server, query: str, message: str) -> None:
    error = refused(server, SESSIONS, {"q": query})
    assert error["extensions"]["code"] == "BAD_QUERY"
    assert error["message"].startswith(message), error["message"]


def test_a_regex_within_re2s_limits_runs(server: Server) -> None:
    assert server.data(SESSIONS, {"q": 'initialUrl MATCHES "a{2,5}(b{10}){100}"'})["sessions"]["totalCount"] == 0


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1899-12-31T23:59:59Z"])
def test_a_time_range_at_the_calendars_edges_is_refused(server: Server, moment: str) -> None:
    query = """query($r: TimeRange) { aggregate(input: {source: SESSIONS, measures: [{fn: COUNT, alias: "n"}],
        interval: DAY, timeRange: $r, comparePrevious: true}) { rows } }"""
    error = refused(server, query, {"r": {"from": moment, "to": "2026-01-01T00:00:00Z"}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "is out of range: use a time from 1900 to 2199" in error["message"]


def test_a_typed_filter_nested_past_the_limit_is_refused_before_it_runs(server: Server) -> None:
    deep = nested(150, '{"pageCount": {"gt": 1}}', '{"not": %s}')
    code, body = post_graphql(server, b'{"query": "%s", "variables": {"f": %s}}' % (SESSIONS.encode(), deep))
    assert code == 400
    assert body["errors"][0]["extensions"]["code"] == "INPUT_TOO_DEEP"
    literal = nested(70, "{pageCount: {gt: 1}}", "{not: %s}").decode()
    error = refused(server, f"{{ sessions(filter: {literal}) {{ totalCount }} }}")
    assert error["extensions"]["code"] == "INPUT_TOO_DEEP"
    assert error["message"] == "an argument value is nested 72 levels deep; the limit is 64"


def test_a_filter_with_too_many_conditions_is_refused(server: Server) -> None:
    huge = {"or": [{"pageCount": {"gt": i}} for i in range(5_000)]}
    error = refused(server, SESSIONS, {"f": huge})
    assert (error["extensions"]["code"], error["message"]) == (
        "INPUT_TOO_LARGE", "`variables` holds 15,003 values; the limit is 5,000")
    wide = {"or": [{"pageCount": {"gt": i}} for i in range(600)]}
    error = refused(server, SESSIONS, {"f": wide})
    assert (error["extensions"]["code"], error["message"]) == (
        "BAD_USER_INPUT", "the filter has more than 500 conditions; the limit is 500")
    at_limit = {"or": [{"pageCount": {"gt": i}} for i in range(499)]}
    assert server.data(SESSIONS, {"f": at_limit})["sessions"]["totalCount"] == 0


@pytest.mark.parametrize(("traits", "message"), [
    (nested(30), "`traits` is nested more than 20 levels deep"),
    (b'{"": 1}', "`traits` has a key of 0 characters at `.`; keys are 1 to 256 characters"),
    (orjson.dumps({f"k{i}": i for i in range(600)}), "`traits` has more than 500 keys; the limit is 500"),
    (orjson.dumps({"plan": "x" * 70_000}), "`traits` holds a string of 70000 characters at `.plan`"),
], ids=["deep", "empty key", "600 keys", "long string"])
def test_identify_user_traits_within_the_stored_json_limits(server: Server, traits: bytes, message: str) -> None:
    query = orjson.dumps('mutation($t: JSON) { identifyUser(id: "u-hostile", traits: $t) { id } }')
    code, body = post_graphql(server, b'{"query": %s, "variables": {"t": %s}}' % (query, traits))
    assert code == 400, body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"].startswith(message), body["errors"][0]["message"]
    assert server.data('{ user(id: "u-hostile") { id } }')["user"] is None


# -- GraphQL: the cost of one request is bounded --------------------------------------------------------------

def test_the_product_of_page_sizes_along_a_path_is_bounded(server: Server) -> None:
    query = "{ sessions(first: 500) { nodes { user { sessions(first: 500) { nodes { user { sessions(first: 500) " \
            "{ nodes { id } } } } } } } } }"
    error = refused(server, query)
    assert error == {"message": "`sessions.nodes.user.sessions` could return up to 250,000 objects (the product of "
                                "the page sizes along it); the limit is 100,000: ask for smaller pages",
                     "extensions": {"code": "QUERY_TOO_COMPLEX"}}
    # defaults count (sessions: 50, events: 100) and so do variables
    fine = "query($n: Int) { sessions { nodes { events(first: $n) { nodes { id } } } } }"
    assert server.data(fine, {"n": 2_000}) == {"sessions": {"nodes": []}}
    assert refused(server, fine, {"n": 2_001})["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_fragments_count_toward_depth_and_size(server: Server) -> None:
    query = """{ sessions(first: 400) { ...S } }
        fragment S on SessionConnection { nodes { user { sessions(first: 400) { totalCount } } } }"""
    assert refused(server, query)["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_depth_aliases_tokens_and_body_are_bounded(server: Server) -> None:
    deep = "{ viewer { appId } }"
    inner = "id"
    for _ in range(5):  # sessions > nodes > user, five times, then id: 16 fields deep
        inner = f"sessions(first: 1) {{ nodes {{ user {{ {inner} }} }} }}"
    error = refused(server, f"{{ {inner} }}")
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert error["message"].endswith("is nested 16 fields deep; the limit is 15")
    aliases = "{ " + " ".join(f"a{i}: viewer {{ appId }}" for i in range(31)) + " }"
    assert refused(server, aliases)["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert server.data("{ " + " ".join(f"a{i}: viewer {{ appId }}" for i in range(30)) + " }")["a29"]
    tokens = "{ " + " ".join("viewer { appId }" for _ in range(5_000)) + " }"
    assert refused(server, tokens)["extensions"]["code"] == "TOO_MANY_TOKENS"
    big = b'{"query": "' + deep.encode() + b'", "variables": {"pad": "' + b"x" * (1024 * 1024) + b'"}}'
    code, body = post_graphql(server, big)
    assert (code, body["errors"][0]["extensions"]["code"]) == (413, "BODY_TOO_LARGE")
    under = b'{"query": "' + deep.encode() + b'", "variables": {"pad": "' + b"x" * (1000 * 1024) + b'"}}'
    assert post_graphql(server, under) == (200, {"data": {"viewer": {"appId": "demo"}}})
    assert post_graphql(server, {"query": get_introspection_query(descriptions=True)})[0] == 200


@pytest.fixture
def limited_server(where: Callable[[str], Location]) -> Iterator[Callable[..., Server]]:
    opened: list[Server] = []

    def open_server(**limits: Any) -> Server:
        opened.append(start_server(where(f"q-{len(opened)}"), query=QueryLimits(**limits)))
        return opened[-1]

    yield open_server
    for running in opened:
        close_services(running.services)


def test_every_store_query_has_a_time_limit(limited_server: Callable[..., Server]) -> None:
    """A limit nothing can meet: lists, lookups and discovery all answer QUERY_TIMEOUT, on both stores."""
    server = limited_server(timeout_s=1e-9)
    for query in ("{ sessions { totalCount } }", '{ session(id: "s-1") { id } }', "{ users { nodes { id } } }",
                  "{ filterKeys(entity: EVENTS) { name } }", '{ topValues(entity: SESSIONS, key: "browser") { '
                                                             "values { value } } }"):
        code, body = post_graphql(server, {"query": query})
        assert code == 200 and body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT", (query, body)
        assert "limit" in body["errors"][0]["message"]


def test_the_limits_are_configurable(limited_server: Callable[..., Server]) -> None:
    server = limited_server(max_depth=3, max_aliases=1, max_results=10)
    assert refused(server, "{ sessions(first: 1) { nodes { user { id } } } }")["extensions"]["code"] == \
        "QUERY_TOO_DEEP"
    assert refused(server, "{ a: viewer { appId } b: viewer { appId } }")["extensions"]["code"] == \
        "TOO_MANY_ALIASES"
    assert refused(server, "{ sessions(first: 11) { totalCount } }")["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert server.data("{ sessions(first: 10) { totalCount } }") == {"sessions": {"totalCount": 0}}


# -- ingest: a batch that can never be stored is a 400 naming the field ---------------------------------------

@pytest.mark.parametrize(("event", "context", "field", "message"), [
    (b'{"type": "custom", "ts": %d, "name": "x", "properties": {"n": 1208925819614629174706176}}' % T0, None,
     "properties", "holds the number 1208925819614629174706176 at `.n`, beyond ±2^63; send it as a string"),
    (b'{"type": "network", "ts": %d, "method": "GET", "url": "https://x/", "requestBytes": 9223372036854775808}'
     % T0, None, "requestBytes", "must be from 0 to 9007199254740992"),
    (b'{"type": "click", "ts": %d, "selector": "#a", "x": 1099511627776}' % T0, None, "x",
     "must be within ±2147483647"),
    (b'{"type": "custom", "ts": %d, "name": "x", "properties": %s}' % (T0, nested(300)), None, "properties",
     "is nested more than 20 levels deep (at `.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a`)"),
    (b'{"type": "identify", "ts": %d, "userId": "u", "traits": {"": 1}}' % T0, None, "traits",
     "has a key of 0 characters at `.`; keys are 1 to 256 characters"),
    (b'{"type": "custom", "ts": %d, "name": "x", "properties": %s}' % (T0, orjson.dumps(
        {f"k{i}": i for i in range(10_000)})), None, "properties", "has more than 500 keys; the limit is 500"),
    (b'{"type": "error", "ts": %d, "message": "m", "extra": {"%s": 1}}' % (T0, b"k" * 300), None, "extra",
     "has a key of 300 characters at `.`; keys are 1 to 256 characters"),
    (b'{"type": "recording", "ts": %d, "data": %s}' % (T0, nested(100_000, "1", "[%s]")), None, None,
     "batch rejected: JSON nested too deeply to decode"),
    (b'{"type": "page", "ts": %d, "url": "https://x/"}' % T0,
     orjson.dumps({**CONTEXT, "viewport": {"width": 7, "height": 1}}).replace(b'"width":7',
                                                                              b'"width":1180591620717411303424'),
     "context.viewport", "width and height must be from 0 to 1000000"),
], ids=["2^80 property", "2^63 bytes", "2^40 x", "300 levels", "empty key", "10k keys", "long key",
        "rrweb 100k levels", "2^70 viewport"])
def test_a_batch_that_cannot_be_stored_is_a_400_naming_the_field(
        server: Server, event: bytes, context: bytes | None, field: str | None, message: str) -> None:
    code, body = ingest_raw(server, batch_with(event, "s-hostile", context))
    assert code == 400, body
    if field is None:  # the batch as a whole
        assert body == {"error": message}
    else:
        named = [e for e in body["errors"] if e["field"] == field]
        assert named and named[0]["message"] == message, body
    assert server.data('{ session(id: "s-hostile") { id } }')["session"] is None
    good = make_batch("s-after", [PAGE], sent_at=T0 + 1_000)
    assert ingest_raw(server, orjson.dumps(good))[0] == 200


def test_deep_rrweb_data_that_was_accepted_reads_back_verbatim(server: Server) -> None:
    """Recording events are handed back as the bytes received, so nesting never breaks the read."""
    data = nested(400, "[1]", '{"c": [%s]}')
    event = b'{"type": "recording", "ts": %d, "data": {"type": 3, "timestamp": %d, "data": %s}}' % (T0, T0, data)
    code, body = ingest_raw(server, batch_with(event, "s-deep-rrweb"))
    assert code == 200, body
    response = server.gql('{ session(id: "s-deep-rrweb") { recording { nodes } } }')
    assert response.status_code == 200
    expected = b'{"type": 3, "timestamp": %d, "data": %s}' % (T0, data)
    assert expected.replace(b" ", b"") in response.content.replace(b" ", b"")


def test_stored_keys_that_no_filter_can_name_never_break_filter_keys(server: Server) -> None:
    """Data stored before ingest refused empty keys (or with a key ending in a backslash) stays readable."""
    batch = make_batch("s-keys", [PAGE, {"type": "custom", "ts": T0, "name": "x", "properties": {"ok": 1}}],
                       sent_at=T0 + 1_000)
    assert ingest_raw(server, orjson.dumps(batch))[0] == 200
    _rewrite_properties(server, '{"": 1, "back\\\\": 2, "q\\"uote": 3, "ok": 4}')
    names = {k["name"] for k in server.data("{ filterKeys(entity: EVENTS) { name } }")["filterKeys"]}
    assert {"properties.back\\", 'properties.q"uote', "properties.ok"} <= names
    assert "properties." not in names
    found = server.data('{ events(query: "properties.ok = 4") { totalCount } }')["events"]["totalCount"]
    assert found == 1


def _rewrite_properties(server: Server, document: str) -> None:
    """Store a properties document as an older replayql could have, bypassing today's ingest checks."""
    store = server.services.store
    if server.settings.clickhouse is None:
        with store.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE events SET properties = $p WHERE kind = 'custom'", {"p": document})
    else:
        store._client().command(  # type: ignore[attr-defined]
            "ALTER TABLE events UPDATE properties = {p:String} WHERE kind = 'custom' SETTINGS mutations_sync = 2",
            parameters={"p": document})


def test_limits_are_changed_by_name_and_bad_names_are_refused() -> None:
    changed = with_limits(Settings(), ["graphql.max_depth=20", "ingest.max_json_keys=1000", "graphql.timeout_s=2.5"])
    assert (changed.query.max_depth, changed.limits.max_json_keys, changed.query.timeout_s) == (20, 1_000, 2.5)
    assert changed.query.max_aliases == QueryLimits().max_aliases  # the others keep their defaults
    with pytest.raises(ValueError, match=r"unknown limit 'graphql.max_width'; one of: graphql.max_body_bytes, "):
        with_limits(Settings(), ["graphql.max_width=3"])
    with pytest.raises(ValueError, match=r"limit graphql\.max_depth needs a number, not .deep."):
        with_limits(Settings(), ["graphql.max_depth=deep"])
    with pytest.raises(ValueError, match=r"limit ingest\.max_json_depth must be positive"):
        with_limits(Settings(), ["ingest.max_json_depth=0"])
