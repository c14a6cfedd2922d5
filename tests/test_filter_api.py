"""The filter language through the API on both stores, over the hand-built shop (tests/shop.py): the typed face
selects what its `appliedQuery` string selects, mistakes in either face are 400s that name the problem, and the
discovery fields list the keys and values the shop's data has."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import T0, Server, load, make_batch
from shop import BATCHES, iso

FIELD_OF = {"sessions": ("SessionFilter", "id"), "users": ("UserFilter", "id"), "issues": ("IssueFilter", "errorType")}


@pytest.fixture
def shop(server: Server) -> Server:
    load(server, BATCHES)
    return server


def _typed(server: Server, field: str, typed: dict[str, Any], query: str | None = None) -> tuple[list[str], str]:
    filter_type, key = FIELD_OF[field]
    data = server.data(f"query($f: {filter_type}, $q: String) {{ {field}(filter: $f, query: $q) "
                       f"{{ appliedQuery nodes {{ {key} }} }} }}", {"f": typed, "q": query})[field]
    return sorted(n[key] for n in data["nodes"]), data["appliedQuery"]


def _by_string(server: Server, field: str, query: str) -> list[str]:
    key = FIELD_OF[field][1]
    data = server.data(f"query($q: String) {{ {field}(query: $q) {{ nodes {{ {key} }} }} }}", {"q": query})
    return sorted(n[key] for n in data[field]["nodes"])


TYPED = [
    ("sessions", {"browser": {"in": ["Safari", "Firefox"]}}, ["s2", "s4"], "browser IN (Safari, Firefox)"),
    ("sessions", {"or": [{"browser": {"eq": "Safari"}}, {"trait": [{"key": "plan", "text": {"eq": "pro"}}]}]},
     ["s1", "s2", "s5"], "browser = Safari OR user.trait.plan = pro"),
    ("sessions", {"not": {"had": [{"kind": "ERROR"}]}}, ["s2", "s4"], "NOT error"),
    ("sessions", {"sequence": {"steps": [{"kind": "NETWORK", "status": {"gte": 500}}, {"kind": "RAGE_CLICK"}],
                               "withinMs": 10000}},
     ["s1"], "network(status >= 500) THEN rageClick WITHIN 10s"),
    ("sessions", {"occurrences": [{"event": {"kind": "CUSTOM", "name": {"eq": "Add To Cart"}}, "count": {"gte": 2}}]},
     ["s4"], 'count(custom("Add To Cart")) >= 2'),
    ("sessions", {"had": [{"kind": "CUSTOM", "name": {"eq": "Checkout"},
                           "properties": [{"key": "total", "number": {"gt": 100}}]}]},
     ["s1"], "custom(Checkout, properties.total > 100)"),
    ("sessions", {"userName": {"eq": "Ann"}, "durationMs": {"between": [1000, 20000]}},
     ["s1", "s5"], "durationMs BETWEEN 1000 AND 20000 AND user.name = Ann"),
    ("sessions", {"initialUrl": {"regex": "(?i)PRICING"}}, ["s5"], 'initialUrl MATCHES "(?i)PRICING"'),
    ("sessions", {"startedAt": {"gte": iso(50000)}}, ["s5"], f"startedAt >= {iso(50000)[:-1]}.000Z"),
    ("sessions", {"identified": False, "visitedUrl": {"contains": "shop"}}, ["s3"],
     "identified = false AND visited(url ~ shop)"),
    ("sessions", {"and": [{"browser": {"neq": "Safari"}}, {"not": {"browser": {"eq": "Firefox"}}}]},
     ["s1", "s3", "s5"], "browser != Safari AND NOT browser = Firefox"),
    ("sessions", {"or": [{"browser": {"eq": "Safari"}}, {"trait": [{"key": "plan", "text": {"in": ["pro", "team"]}}]}],
                  "sequence": {"steps": [{"kind": "NETWORK", "status": {"gte": 500}}, {"kind": "RAGE_CLICK"}],
                               "withinMs": 10000}},  # the README's example
     ["s1"], "(browser = Safari OR user.trait.plan IN (pro, team)) AND network(status >= 500) THEN rageClick "
             "WITHIN 10s"),
    ("users", {"session": {"browser": {"eq": "Safari"}}}, ["u2"], "session(browser = Safari)"),
    ("users", {"trait": [{"key": "seats", "number": {"gte": 2}}]}, ["u1"], "trait.seats >= 2"),
    ("users", {"had": [{"kind": "ERROR", "type": {"eq": "TypeError"}}]}, ["u1"], "error(type = TypeError)"),
    ("issues", {"sessionCount": {"eq": 2}}, ["TypeError"], "sessionCount = 2"),
    ("issues", {"session": {"identified": False}}, ["ChunkLoadError"], "session(identified = false)"),
]


@pytest.mark.parametrize(("field", "typed", "expected", "applied"), TYPED, ids=[t[3] for t in TYPED])
def test_a_typed_filter_selects_what_its_applied_query_selects(shop: Server, field: str, typed: dict[str, Any],
                                                               expected: list[str], applied: str) -> None:
    got, applied_query = _typed(shop, field, typed)
    assert (got, applied_query) == (expected, applied)
    assert _by_string(shop, field, applied_query) == expected


def test_typed_filter_and_query_string_combine_with_and(shop: Server) -> None:
    got, applied = _typed(shop, "sessions", {"browser": {"eq": "Chrome"}}, "hasErrors = true AND NOT userId = u1")
    assert (got, applied) == (["s3"], "browser = Chrome AND hasErrors = true AND NOT userId = u1")


def test_events_take_both_faces(shop: Server) -> None:
    data = shop.data('query($f: EventFilter) { events(filter: $f, query: "session(browser = Firefox)") '
                     "{ totalCount appliedQuery } }",
                     {"f": {"kind": {"eq": "custom"}, "properties": [{"key": "sku", "text": {"eq": "A1"}}]}})
    assert data["events"] == {"totalCount": 2, "appliedQuery": "kind = custom AND properties.sku = A1 AND "
                                                               "session(browser = Firefox)"}


@pytest.mark.parametrize(("field", "query", "message", "position"), [
    ("users", "browser = Chrome", "unknown field `browser` on users; for the users' sessions write "
                                  "session(browser ...)", 0),
    ("events", "colour = red", "unknown field `colour` on events", 0),
    ("sessions", 'initialUrl MATCHES "("', "invalid regular expression", 19),
    ("sessions", 'initialUrl MATCHES "a(?=b)"', "RE2: no look-around", 19),
    ("sessions", "initialUrl MATCHES 5", "MATCHES takes a regular expression in quotes", 0),
    ("sessions", "count(error) >= many", "count(...) is compared with a number", 16),
    ("sessions", "visited(status = 500)", "`visited` has no field `status`", 8),
    ("sessions", "custom(price > 5)", "`custom` has no field `price`; fields: name, properties.<key>", 7),
    ("sessions", "user.colour = red", "unknown field `colour` on users", 0),
    ("sessions", " THEN ".join(["error"] * 17), "a sequence has at most 16 steps", 0),
    ("issues", "status > 1", "`>` compares numbers and times, and `status` is text", 0),
])
def test_query_mistakes_are_bad_query_with_a_position(shop: Server, field: str, query: str, message: str,
                                                      position: int) -> None:
    response = shop.gql(f"query($q: String) {{ {field}(query: $q) {{ totalCount }} }}", {"q": query})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_QUERY"
    assert message in error["message"]
    assert error["extensions"]["position"] == position


@pytest.mark.parametrize(("typed", "message"), [
    ({"visitedUrl": {}}, "`url`: an empty condition object"),
    ({"sequence": {"steps": [{"kind": "ERROR"}]}}, "`sequence` needs at least two steps"),
    ({"had": [{"kind": "VISITED", "status": {"eq": 500}}]}, "`visited` has no field `status`"),
    ({"durationMs": {"between": [1]}}, "`between` takes two values"),
    ({"trait": [{"key": "plan"}]}, "give `text`, `number` or `exists`"),
    ({"occurrences": [{"event": {"kind": "ERROR"}, "count": {"neq": 1}}]}, "use eq, gt, gte, lt, lte or between"),
])
def test_typed_mistakes_are_bad_user_input(shop: Server, typed: dict[str, Any], message: str) -> None:
    response = shop.gql("query($f: SessionFilter) { sessions(filter: $f) { totalCount } }", {"f": typed})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


def _keys(server: Server, entity: str) -> dict[str, dict[str, Any]]:
    data = server.data(f"{{ filterKeys(entity: {entity}) {{ name type kind seen fields {{ name type seen }} }} }}")
    return {k["name"]: k for k in data["filterKeys"]}


def test_filter_keys_list_the_vocabulary_and_what_the_data_has(shop: Server) -> None:
    sessions = _keys(shop, "SESSIONS")
    assert sessions["browser"] == {"name": "browser", "type": "TEXT", "kind": "FIELD", "seen": None, "fields": []}
    assert (sessions["durationMs"]["type"], sessions["hasErrors"]["type"]) == ("NUMBER", "FLAG")
    traits = {n: (k["type"], k["seen"]) for n, k in sessions.items() if k["kind"] == "TRAIT"}
    assert traits == {"user.trait.plan": ("TEXT", 2), "user.trait.seats": ("NUMBER", 2),
                      "user.trait.beta": ("TEXT", 1), "user.trait.name": ("TEXT", 1),
                      "user.trait.email": ("TEXT", 1)}
    custom = {n: (k["seen"], [(f["name"], f["type"], f["seen"]) for f in k["fields"]])
              for n, k in sessions.items() if k["kind"] == "CUSTOM_EVENT"}
    assert custom == {"Add To Cart": (4, [("properties.price", "NUMBER", 4), ("properties.sku", "TEXT", 4)]),
                      "Checkout": (2, [("properties.total", "NUMBER", 2), ("properties.coupon", "TEXT", 1)])}
    network = sessions["network"]
    assert network["kind"] == "EVENT"
    assert {f["name"]: f["type"] for f in network["fields"]} == {
        "url": "TEXT", "host": "TEXT", "path": "TEXT", "method": "TEXT", "status": "NUMBER", "durationMs": "NUMBER"}
    users = _keys(shop, "USERS")
    assert users["trait.plan"]["kind"] == "TRAIT" and "user.trait.plan" not in users
    events = _keys(shop, "EVENTS")
    assert (events["properties.sku"]["type"], events["properties.sku"]["seen"]) == ("TEXT", 4)


def test_top_values_count_the_rows_matching_the_query(shop: Server) -> None:
    data = shop.data("""{
      browsers: topValues(entity: SESSIONS, key: "browser") { values { value count } total distinct otherCount }
      plans: topValues(entity: USERS, key: "trait.plan") { values { value count } total }
      skus: topValues(entity: EVENTS, key: "properties.sku", query: "kind = custom", limit: 1) {
        values { value count } total distinct otherCount }
      chromeDurations: topValues(entity: SESSIONS, key: "durationMs", query: "browser = Chrome") {
        values { value count } }
      statuses: topValues(entity: EVENTS, key: "status", query: "kind = network AND status >= 500") {
        values { value count } }
      sessionPlans: topValues(entity: SESSIONS, key: "user.trait.plan") { values { value count } total }
      errors: topValues(entity: SESSIONS, key: "hasErrors") { values { value count } }
    }""")
    assert data["browsers"] == {"values": [{"value": "Chrome", "count": 3}, {"value": "Firefox", "count": 1},
                                           {"value": "Safari", "count": 1}], "total": 5, "distinct": 3,
                                "otherCount": 0}
    assert data["plans"] == {"values": [{"value": "free", "count": 1}, {"value": "pro", "count": 1}], "total": 2}
    assert data["skus"] == {"values": [{"value": "A1", "count": 2}], "total": 4, "distinct": 3, "otherCount": 2}
    assert data["chromeDurations"]["values"] == [{"value": v, "count": 1} for v in ("2000", "20000", "25000")]
    assert data["statuses"]["values"] == [{"value": v, "count": 1} for v in ("500", "502", "503")]
    # s1 and s5 are u1's (pro), s2 is u2's (free); anonymous sessions have no plan
    assert data["sessionPlans"] == {"values": [{"value": "pro", "count": 2}, {"value": "free", "count": 1}],
                                    "total": 3}
    assert data["errors"]["values"] == [{"value": "true", "count": 3}, {"value": "false", "count": 2}]


@pytest.mark.parametrize(("arguments", "message"), [
    ('entity: SESSIONS, key: "colour"', "no top values for `colour` on sessions"),
    ('entity: SESSIONS, key: "browser", limit: 0', "`limit` must be between 1 and 100"),
    ('entity: SESSIONS, key: "browser", query: "browser ="', "expected a value"),
])
def test_top_values_mistakes_are_400(shop: Server, arguments: str, message: str) -> None:
    response = shop.gql(f"{{ topValues({arguments}) {{ total }} }}")
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


def test_filters_never_read_another_apps_rows(shop: Server) -> None:
    """Another app reuses the shop's session and user ids with everything the shop's s2/u2 lack; none of it may
    reach the shop's answers through the subqueries a filter adds."""
    intruder = make_batch("s2", [
        {"type": "identify", "ts": T0, "userId": "u2", "traits": {"plan": "enterprise"}},
        {"type": "error", "ts": T0 + 10, "errorType": "TypeError", "message": "x is undefined"},
        {"type": "custom", "ts": T0 + 20, "name": "Add To Cart", "properties": {"sku": "Z9"}},
        {"type": "network", "ts": T0 + 30, "method": "GET", "url": "https://other.example/x", "status": 599},
    ], app_id="other")
    load(shop, [intruder])
    for query, expected in [("error", ["s1", "s3", "s5"]), ("user.trait.plan = enterprise", []),
                            ('custom(properties.sku = Z9)', []), ("count(network(status = 599)) >= 1", []),
                            ("error THEN custom", []), ('custom("Add To Cart") THEN network(status = 599)', [])]:
        assert _by_string(shop, "sessions", query) == expected, query
    assert _by_string(shop, "users", "trait.plan = enterprise OR session(error)") == ["u1"]
    assert _by_string(shop, "issues", "session(userId = u2)") == []
    assert shop.data('{ topValues(entity: USERS, key: "trait.plan") { total } }')["topValues"]["total"] == 2
    keys = _keys(shop, "SESSIONS")
    assert keys["Add To Cart"]["seen"] == 4 and "properties.sku" in {f["name"] for f in keys["Add To Cart"]["fields"]}
    other = shop.gql('{ sessions(query: "user.trait.plan = enterprise AND error") { nodes { id } } }', key="other")
    assert other.json()["data"]["sessions"]["nodes"] == [{"id": "s2"}]
