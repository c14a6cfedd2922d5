"""The GraphQL-over-HTTP contract: authentication (401), bad requests (400), GET, introspection, /healthz, the
viewer, key scopes, key management, and tenant isolation between apps `demo` and `other`.

Tenancy tests use the hand-built dataset of test_graphql_queries (demo: s-a..s-d, users u-ada and u-bob, issues
TypeError/RangeError/ReferenceError; other: o-1 with its own user u-ada and the same TypeError as demo).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import T0, Server, make_batch, new_location, served
from replayql.store.registry import KeyScope
from test_graphql_queries import build_dataset

VIEWER = "{ viewer { appId keyId scopes } }"
UNAUTHENTICATED = "UNAUTHENTICATED"
MISSING = "missing API key: send the header `Authorization: token <api-key>`"
MALFORMED = "malformed Authorization header: use `Authorization: token <api-key>`"
INVALID = "invalid or revoked API key"
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def post(server: Server, body: Any = None, authorization: str | None = None, content: bytes | None = None
         ) -> Any:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    if content is not None:
        return server.client.post("/graphql", content=content, headers=headers)
    return server.client.post("/graphql", json=body, headers=headers)


def key_id(secret: str) -> str:
    return secret.split("_")[1]  # rq_<key id>_<secret>


def only_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    return error  # type: ignore[no-any-return]


def assert_401(response: Any, message: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'token realm="replayql"'
    assert response.json() == {"data": None, "errors": [{"message": message,
                                                         "extensions": {"code": UNAUTHENTICATED}}]}


# -- 401 -----------------------------------------------------------------------------------------------------------

def test_missing_key_is_401(server: Server) -> None:
    assert_401(post(server, {"query": VIEWER}), MISSING)
    assert_401(post(server, content=b"not even json"), MISSING)  # authentication comes first


@pytest.mark.parametrize("header", ["Basic x", "token", "token    ", "Bearer", "tokenabc", "Digest rq_x"])
def test_malformed_header_is_401(server: Server, header: str) -> None:
    assert_401(post(server, {"query": VIEWER}, header), MALFORMED)


def test_unknown_key_and_wrong_secret_are_401(server: Server) -> None:
    real = server.keys["admin"]
    wrong_secret = real[:-1] + ("A" if real[-1] != "A" else "B")
    unknown_id = "rq_aaaaaaaaaaaa_" + real.split("_")[2]
    for token in (wrong_secret, unknown_id, "nonsense", real + "x", real.upper()):
        assert_401(post(server, {"query": VIEWER}, f"token {token}"), INVALID)
    assert post(server, {"query": VIEWER}, f"token {real}").status_code == 200


def test_key_revoked_in_the_registry_is_401_at_once(server: Server) -> None:
    key, secret = server.services.registry.create_key("demo", KeyScope.READ, "temp")
    assert post(server, {"query": VIEWER}, f"token {secret}").status_code == 200
    assert server.services.registry.revoke_key(key.id)
    assert_401(post(server, {"query": VIEWER}, f"token {secret}"), INVALID)
    response = server.client.get("/graphql", params={"query": VIEWER}, headers={"authorization": f"token {secret}"})
    assert_401(response, INVALID)


def test_key_revoked_by_mutation_is_401_at_once(server: Server) -> None:
    created = server.data('mutation { createApiKey(scope: WRITE, name: "ci") { secret key { id } } }')
    secret, new_id = created["createApiKey"]["secret"], created["createApiKey"]["key"]["id"]
    headers = {"query": VIEWER}
    assert post(server, headers, f"token {secret}").json()["data"]["viewer"]["keyId"] == new_id
    revoked = server.data("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": new_id})
    assert revoked == {"revokeApiKey": True}
    assert_401(post(server, headers, f"token {secret}"), INVALID)
    listed = server.services.registry.get_key(new_id)
    assert listed is not None and listed.revoked_at is not None


def test_an_admin_key_can_revoke_itself(server: Server) -> None:
    me = key_id(server.keys["admin"])
    assert server.data("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": me}) == {"revokeApiKey": True}
    assert_401(server.gql(VIEWER, key="admin"), INVALID)
    assert server.gql(VIEWER, key="read").status_code == 200


# -- 400 -----------------------------------------------------------------------------------------------------------

def test_syntax_error_is_400_with_location(server: Server) -> None:
    error = only_error(server.gql("{ viewer { appId }", key="read"), 400, "GRAPHQL_PARSE_FAILED")
    assert error["message"] == "Syntax Error: Expected Name, found <EOF>."
    assert error["locations"] == [{"line": 1, "column": 19}]


def test_validation_error_is_400_with_location(server: Server) -> None:
    error = only_error(server.gql("{\n  viewer { nope }\n}", key="read"), 400, "GRAPHQL_VALIDATION_FAILED")
    assert error["message"] == "Cannot query field 'nope' on type 'Viewer'."
    assert error["locations"] == [{"line": 2, "column": 12}]
    enum = only_error(server.gql('{ issues(filter: {status: "OPEN"}) { totalCount } }'), 400,
                      "GRAPHQL_VALIDATION_FAILED")
    assert "StringCondition" in enum["message"]


def test_every_validation_error_is_reported(server: Server) -> None:
    response = server.gql("{ viewer { nope } sessions { alsoNope } }")
    assert response.status_code == 400
    messages = [e["message"] for e in response.json()["errors"]]
    assert messages == ["Cannot query field 'nope' on type 'Viewer'.",
                        "Cannot query field 'alsoNope' on type 'SessionConnection'."]


def test_variable_of_wrong_type_is_400(server: Server) -> None:
    response = server.gql("query($first: Int) { sessions(first: $first) { totalCount } }", {"first": "ten"})
    error = only_error(response, 400, "BAD_USER_INPUT")
    assert error["message"].startswith("Variable '$first' has invalid value")
    assert "Int cannot represent non-integer value: 'ten'" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 7}]


def test_missing_required_variable_is_400(server: Server) -> None:
    error = only_error(server.gql("query($id: ID!) { session(id: $id) { id } }"), 400, "BAD_USER_INPUT")
    assert error["message"].startswith("Variable '$id'")
    assert "non-null type 'ID!'" in error["message"]


@pytest.mark.parametrize("value", ["yesterday", "2025-13-45T00:00:00Z", "", 1764140000000])
def test_bad_datetime_variable_is_400(server: Server, value: Any) -> None:
    response = server.gql("query($r: TimeRange) { sessions(timeRange: $r) { totalCount } }", {"r": {"from": value}})
    error = only_error(response, 400, "BAD_USER_INPUT")
    assert error["message"].startswith("Variable '$r' has invalid value at .from")
    assert "2026-01-31T12:00:00.000Z" in error["message"]  # says what a DateTime looks like


def test_bad_enum_variable_is_400_not_internal(server: Server) -> None:
    response = server.gql("mutation($s: IssueStatus!) { updateIssue(id: \"x\", status: $s) { id } }", {"s": "CLOSED"})
    error = only_error(response, 400, "BAD_USER_INPUT")
    assert error["message"].startswith("Variable '$s' has invalid value")
    assert "IssueStatus" in error["message"]


def test_bad_datetime_literal_is_400(server: Server) -> None:
    error = only_error(server.gql('{ sessions(timeRange: {from: "yesterday"}) { totalCount } }'), 400,
                       "GRAPHQL_VALIDATION_FAILED")
    assert "'yesterday' is not an ISO-8601 date-time" in error["message"]


@pytest.mark.parametrize(("body", "message"), [
    ([{"query": VIEWER}], "request body must be a JSON object {query, variables, operationName}"),
    ("{ viewer { appId } }", "request body must be a JSON object {query, variables, operationName}"),
    ({}, "`query` must be a non-empty string"),
    ({"query": ""}, "`query` must be a non-empty string"),
    ({"query": 42}, "`query` must be a non-empty string"),
    ({"variables": {}}, "`query` must be a non-empty string"),
    ({"query": VIEWER, "variables": [1]}, "`variables` must be a JSON object"),
    ({"query": VIEWER, "operationName": 1}, "`operationName` must be a string"),
    *[({"query": VIEWER, "extensions": bad}, "`extensions` must be a JSON object") for bad in ("x", 1, True, [])],
])
def test_bad_request_bodies_are_400(server: Server, body: Any, message: str) -> None:
    error = only_error(post(server, body, f"token {server.keys['read']}"), 400, "BAD_REQUEST")
    assert error["message"] == message


def test_non_json_body_is_400(server: Server) -> None:
    response = post(server, authorization=f"token {server.keys['read']}", content=b"{query: viewer")
    error = only_error(response, 400, "BAD_REQUEST")
    assert error["message"].startswith("request body is not valid JSON")


def test_operation_name_selects_the_operation(server: Server) -> None:
    document = "query A { viewer { appId } } query B { viewer { scopes } }"
    auth = f"token {server.keys['read']}"
    chosen = post(server, {"query": document, "operationName": "B"}, auth)
    assert chosen.status_code == 200 and chosen.json() == {"data": {"viewer": {"scopes": ["READ"]}}}
    ambiguous = only_error(post(server, {"query": document}, auth), 400, "BAD_REQUEST")
    assert ambiguous["message"].startswith("no operation to run")
    unknown = only_error(post(server, {"query": document, "operationName": "C"}, auth), 400, "BAD_REQUEST")
    assert unknown["message"].startswith("no operation to run")


def test_success_is_200_with_data_and_no_errors(server: Server) -> None:
    response = server.gql('{ viewer { appId } session(id: "nope") { id } }', key="read")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"data": {"viewer": {"appId": "demo"}, "session": None}}


# -- introspection, GET, GraphiQL, health --------------------------------------------------------------------------

def test_introspection_works_for_a_read_key(server: Server) -> None:
    data = server.data("{ __schema { queryType { name } mutationType { name } types { name } } }", key="read")
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Session", "User", "Issue", "Event", "PageEvent", "NetworkEvent", "ErrorEvent", "SessionConnection",
            "SessionFilter", "StringCondition", "NumberCondition", "TimeRange", "DateTime", "JSON", "Viewer"} <= names
    assert data["__schema"]["queryType"] == {"name": "Query"}
    assert data["__schema"]["mutationType"] == {"name": "Mutation"}
    event = server.data('{ __type(name: "Event") { kind possibleTypes { name } } }', key="read")["__type"]
    assert event["kind"] == "INTERFACE"
    assert {t["name"] for t in event["possibleTypes"]} == {
        "PageEvent", "ClickEvent", "InputEvent", "ConsoleEvent", "NetworkEvent", "ErrorEvent", "CustomEvent",
        "IdentifyEvent", "WebVitalEvent", "RageClickEvent", "DeadClickEvent", "ErrorClickEvent"}


def test_get_runs_read_queries(server: Server) -> None:
    auth = {"authorization": f"token {server.keys['read']}"}
    response = server.client.get("/graphql", params={"query": VIEWER}, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"appId": "demo", "keyId": key_id(server.keys["read"]),
                                                   "scopes": ["READ"]}}}
    with_vars = server.client.get("/graphql", headers=auth, params={
        "query": "query($id: ID!) { session(id: $id) { id } }", "variables": '{"id": "nope"}'})
    assert with_vars.status_code == 200 and with_vars.json() == {"data": {"session": None}}
    bad_vars = server.client.get("/graphql", headers=auth, params={"query": VIEWER, "variables": "{nope"})
    assert only_error(bad_vars, 400, "BAD_REQUEST")["message"] == "`variables` is not valid JSON"
    no_key = server.client.get("/graphql", params={"query": VIEWER})
    assert_401(no_key, MISSING)


def test_get_with_a_mutation_is_405_and_changes_nothing(server: Server) -> None:
    auth = {"authorization": f"token {server.keys['admin']}"}
    response = server.client.get("/graphql", headers=auth,
                                 params={"query": 'mutation { identifyUser(id: "u-get") { id } }'})
    error = only_error(response, 405, "METHOD_NOT_ALLOWED")
    assert error["message"] == "mutations must be sent with POST"
    assert response.headers["allow"] == "POST"
    assert server.data('{ user(id: "u-get") { id } }') == {"user": None}


def test_browser_get_shows_graphiql(server: Server) -> None:
    response = server.client.get("/graphql", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text  # the page itself: tests/test_graphql_over_http.py
    # without a query and not a browser: a bad request, not a page
    plain = server.client.get("/graphql", headers={"authorization": f"token {server.keys['read']}"})
    assert only_error(plain, 400, "BAD_REQUEST")["message"] == "`query` must be a non-empty string"


def test_healthz(server: Server) -> None:
    response = server.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# -- viewer and scopes -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "app", "scopes"), [
    ("read", "demo", ["READ"]), ("write", "demo", ["READ", "WRITE"]), ("admin", "demo", ["READ", "WRITE", "ADMIN"]),
    ("other", "other", ["READ", "WRITE", "ADMIN"]),
])
def test_viewer(server: Server, key: str, app: str, scopes: list[str]) -> None:
    assert server.data(VIEWER, key=key) == {"viewer": {"appId": app, "keyId": key_id(server.keys[key]),
                                                       "scopes": scopes}}


WRITE_MUTATIONS = [
    ('mutation { identifyUser(id: "u-ada", name: "Mallory") { id } }', "identifyUser"),
    ("mutation($id: ID!) { updateIssue(id: $id, status: IGNORED) { id } }", "updateIssue"),
    ('mutation { deleteUser(id: "u-ada") { complete } }', "deleteUser"),
]
ADMIN_MUTATIONS = [
    ("mutation { createApiKey(scope: ADMIN) { secret } }", "createApiKey"),
    ("mutation($id: ID!) { revokeApiKey(id: $id) }", "revokeApiKey"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, store_kind: str, chdb_path: Path) -> Iterator[Server]:
    """The dataset on one server for this module's tests that leave it unchanged (forbidden mutations, reads)."""
    with served(new_location(store_kind, tmp_path_factory.mktemp("graphql-auth") / "data", chdb_path)) as running:
        build_dataset(running)
        yield running


def _type_error_id(server: Server, key: str = "read") -> str:
    nodes = server.data('{ issues(filter: {errorType: {eq: "TypeError"}}) { nodes { id } } }', key=key)
    return str(nodes["issues"]["nodes"][0]["id"])


@pytest.mark.parametrize(("key", "mutation", "needed"), [
    *(("read", m, "write") for m in WRITE_MUTATIONS),
    *(("read", m, "admin") for m in ADMIN_MUTATIONS),
    *(("write", m, "admin") for m in ADMIN_MUTATIONS),
])
def test_scope_is_enforced(shared: Server, key: str, mutation: tuple[str, str], needed: str) -> None:
    query, field = mutation
    variables = {"id": _type_error_id(shared) if field == "updateIssue" else key_id(shared.keys["admin"])}
    response = shared.gql(query, variables if "$id" in query else None, key=key)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and error["path"] == [field]
    assert error["message"] == f"this API key has scope {key}; this operation needs {needed}"
    # nothing changed
    after = shared.data('{ user(id: "u-ada") { name sessionCount } issues { nodes { status } } }')
    assert after["user"] == {"name": "Ada Lovelace", "sessionCount": 2}
    assert {n["status"] for n in after["issues"]["nodes"]} == {"OPEN"}
    assert shared.gql(VIEWER, key="admin").status_code == 200


def test_write_key_can_mutate(server: Server) -> None:
    data = server.data('mutation { identifyUser(id: "u-w", name: "W") { id name } }', key="write")
    assert data == {"identifyUser": {"id": "u-w", "name": "W"}}
    deleted = server.data('mutation { deleteUser(id: "u-w") { complete deletedSessions } }', key="write")
    assert deleted == {"deleteUser": {"complete": True, "deletedSessions": 0}}


def test_create_api_key_returns_a_working_secret_once(server: Server) -> None:
    created = server.data("""mutation { createApiKey(scope: READ, name: "dashboard") {
        secret key { id scope name createdAt revokedAt } } }""")["createApiKey"]
    key = created["key"]
    assert (key["scope"], key["name"], key["revokedAt"]) == ("READ", "dashboard", None)
    assert DATETIME.match(key["createdAt"])
    assert re.fullmatch(r"rq_[a-z2-7]{12}_[A-Za-z0-9]{43}", created["secret"])
    assert key_id(created["secret"]) == key["id"]
    as_new = post(server, {"query": VIEWER}, f"token {created['secret']}")
    assert as_new.json() == {"data": {"viewer": {"appId": "demo", "keyId": key["id"], "scopes": ["READ"]}}}
    # the new key has exactly its scope
    forbidden = post(server, {"query": 'mutation { identifyUser(id: "x") { id } }'}, f"token {created['secret']}")
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # the secret is not stored: key listings never show it
    assert created["secret"] not in repr(server.services.registry.list_keys("demo"))


def test_create_api_key_belongs_to_the_callers_app(server: Server) -> None:
    secret = server.data("mutation { createApiKey(scope: WRITE) { secret } }", key="other")["createApiKey"]["secret"]
    viewer = post(server, {"query": VIEWER}, f"token {secret}").json()["data"]["viewer"]
    assert (viewer["appId"], viewer["scopes"]) == ("other", ["READ", "WRITE"])


def test_revoking_a_key_of_another_app_is_not_found(server: Server) -> None:
    others = key_id(server.keys["other"])
    for target in (others, "aaaaaaaaaaaa"):
        response = server.gql("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": target})
        assert response.status_code == 200
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert error["message"] == f"no API key {target} in this app"
    assert server.gql(VIEWER, key="other").status_code == 200  # still works


# -- tenant isolation --------------------------------------------------------------------------------------------------

def test_other_app_cannot_see_demo_by_id(shared: Server) -> None:
    ids = {n["errorType"]: n["id"] for n in shared.data("{ issues { nodes { id errorType } } }")["issues"]["nodes"]}
    data = shared.data("""query($range: ID!, $ref: ID!) {
        a: session(id: "s-a") { id } b: session(id: "s-b") { id } c: session(id: "s-c") { id }
        d: session(id: "s-d") { id } bob: user(id: "u-bob") { id }
        range: issue(id: $range) { id } ref: issue(id: $ref) { id } }""",
                       {"range": ids["RangeError"], "ref": ids["ReferenceError"]}, key="other")
    assert data == {"a": None, "b": None, "c": None, "d": None, "bob": None, "range": None, "ref": None}


def test_other_app_lists_hold_only_its_own_data(shared: Server) -> None:
    data = shared.data("""{
        sessions { totalCount nodes { id } } users { totalCount nodes { id name sessionCount } }
        issues { totalCount nodes { errorType count sessionCount userCount releases
                                    sessions { nodes { id } } occurrences { nodes { session { id } } } } }
        events { totalCount nodes { session { id } } }
        demoEvents: events(filter: {sessionId: {in: ["s-a", "s-b", "s-c", "s-d"]}}) { totalCount }
        demoUser: sessions(filter: {userId: {eq: "u-bob"}}) { totalCount } }""", key="other")
    assert data["sessions"] == {"totalCount": 1, "nodes": [{"id": "o-1"}]}
    assert data["users"] == {"totalCount": 1, "nodes": [{"id": "u-ada", "name": "Other Ada", "sessionCount": 1}]}
    assert data["issues"] == {"totalCount": 1, "nodes": [{
        "errorType": "TypeError", "count": 1, "sessionCount": 1, "userCount": 1, "releases": ["1.4.2"],
        "sessions": {"nodes": [{"id": "o-1"}]}, "occurrences": {"nodes": [{"session": {"id": "o-1"}}]}}]}
    assert data["events"]["totalCount"] == 3
    assert {n["session"]["id"] for n in data["events"]["nodes"]} == {"o-1"}
    assert data["demoEvents"] == {"totalCount": 0} and data["demoUser"] == {"totalCount": 0}


def test_same_ids_in_two_apps_resolve_per_app(shared: Server) -> None:
    """u-ada and the TypeError issue exist in both apps under the same ids: each key sees its own."""
    query = """query($t: ID!) { user(id: "u-ada") { name traits sessions { nodes { id } } }
        issue(id: $t) { count sessions { nodes { id } } occurrences { totalCount } } }"""
    assert _type_error_id(shared, "other") == _type_error_id(shared)
    other = shared.data(query, {"t": _type_error_id(shared)}, key="other")
    assert other == {
        "user": {"name": "Other Ada", "traits": {"name": "Other Ada"}, "sessions": {"nodes": [{"id": "o-1"}]}},
        "issue": {"count": 1, "sessions": {"nodes": [{"id": "o-1"}]}, "occurrences": {"totalCount": 1}}}
    demo = shared.data(query, {"t": _type_error_id(shared)}, key="read")
    assert demo["user"]["name"] == "Ada Lovelace"
    assert demo["user"]["sessions"] == {"nodes": [{"id": "s-d"}, {"id": "s-a"}]}
    assert demo["issue"] == {"count": 2, "sessions": {"nodes": [{"id": "s-c"}, {"id": "s-a"}]},
                             "occurrences": {"totalCount": 2}}


def test_demo_keys_cannot_see_other_apps_data(shared: Server) -> None:
    data = shared.data("""{ o: session(id: "o-1") { id } sessions(filter: {id: {eq: "o-1"}}) { totalCount }
        events(filter: {sessionId: {eq: "o-1"}}) { totalCount } all: events { totalCount }
        users { nodes { id } } }""", key="read")
    assert data == {"o": None, "sessions": {"totalCount": 0}, "events": {"totalCount": 0},
                    "all": {"totalCount": 6 + 4 + 7 + 3}, "users": {"nodes": [{"id": "u-ada"}, {"id": "u-bob"}]}}


def test_other_apps_mutations_touch_only_their_app(server: Server) -> None:
    build_dataset(server)
    ids = {n["errorType"]: n["id"] for n in server.data("{ issues { nodes { id errorType } } }")["issues"]["nodes"]}
    # an issue only demo has: not found for other
    response = server.gql("mutation($id: ID!) { updateIssue(id: $id, status: RESOLVED) { id } }",
                          {"id": ids["RangeError"]}, key="other")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    # an issue id both apps have: only other's copy changes
    server.data("mutation($id: ID!) { updateIssue(id: $id, status: IGNORED) { id } }", {"id": ids["TypeError"]},
                key="other")
    assert server.data('{ issues(filter: {status: {neq: "OPEN"}}) { totalCount } }')["issues"]["totalCount"] == 0
    # identify and delete by other create and remove only other's users
    server.data('mutation { identifyUser(id: "u-bob", name: "Hijack") { id } }', key="other")
    deleted = server.data('mutation { deleteUser(id: "u-ada") { deletedSessions deletedEvents } }', key="other")
    assert deleted == {"deleteUser": {"deletedSessions": 1, "deletedEvents": 3}}
    demo = server.data("""{ bob: user(id: "u-bob") { name } ada: user(id: "u-ada") { name sessionCount }
        sessions { totalCount } issues { nodes { errorType count status } } }""", key="read")
    assert demo["bob"] == {"name": "Bob Builder"}
    assert demo["ada"] == {"name": "Ada Lovelace", "sessionCount": 2}
    assert demo["sessions"] == {"totalCount": 4}
    assert {n["errorType"]: (n["count"], n["status"]) for n in demo["issues"]["nodes"]} == {
        "TypeError": (2, "OPEN"), "RangeError": (1, "OPEN"), "ReferenceError": (1, "OPEN")}
    assert server.data('{ user(id: "u-bob") { name } sessions { totalCount } }', key="other") == {
        "user": {"name": "Hijack"}, "sessions": {"totalCount": 0}}
    # u-ada was deleted in other only: demo still stores her new sessions
    stored = server.ingest(make_batch("s-new", [{"type": "identify", "ts": T0, "userId": "u-ada"}]))
    assert stored.status_code == 200 and stored.json()["outcome"] == "stored"
    assert server.data('{ user(id: "u-ada") { sessionCount } }') == {"user": {"sessionCount": 3}}
