"""GraphQL over HTTP: the media types of the answer, the request's Content-Type, and the graphql-http audit of a
real server.

application/json keeps the API's contract (400 with `"data": null` for a malformed query or invalid variables);
application/graphql-response+json follows that media type's rules (a request error has no `data`; a response
that has `data` is 200).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from conftest import Server
from crash_scenario import Server as LiveServer
from live_server import live_server

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
VIEWER = "{ viewer { appId } }"
AUDIT = Path(__file__).parents[1] / "graphiql" / "audit.mjs"
# The audit's SHOULDs that the API contract answers otherwise: 400, not 200, under application/json
CONTRACT_WARNINGS = {
    "572B": "SHOULD use 200 status code on document parsing failure when accepting application/json",
    "FDE2": "SHOULD use 200 status code on document validation failure when accepting application/json",
    "7B9B": "SHOULD use a status code of 200 on variable coercion failure when accepting application/json",
}


def post(server: Server, body: dict[str, Any], accept: str, **headers: str) -> httpx.Response:
    return server.client.post("/graphql", content=orjson.dumps(body), headers={
        "authorization": f"token {server.keys['read']}", "content-type": JSON, "accept": accept, **headers})


@pytest.mark.parametrize(("accept", "answered"), [
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
    (f"{JSON};q=0.5, {GRAPHQL_RESPONSE};q=0.5", GRAPHQL_RESPONSE),  # as welcome as JSON: the richer one
    (f"{JSON}, {GRAPHQL_RESPONSE};q=0.8", JSON),
    (f"{GRAPHQL_RESPONSE};q=0", JSON),
    (f"{GRAPHQL_RESPONSE};q=nonsense, */*", JSON),
    (JSON, JSON),
    ("*/*", JSON),
    ("", JSON),
])
def test_the_answer_has_the_media_type_the_client_prefers(server: Server, accept: str, answered: str) -> None:
    response = post(server, {"query": VIEWER}, accept)
    assert response.status_code == 200
    expected = f"{GRAPHQL_RESPONSE}; charset=utf-8" if answered == GRAPHQL_RESPONSE else JSON
    assert response.headers["content-type"] == expected
    assert "Accept" in response.headers["vary"]
    assert response.json() == {"data": {"viewer": {"appId": "demo"}}}


@pytest.mark.parametrize(("content_type", "message"), [
    (None, "the request has no Content-Type; send the body as application/json"),
    ("text/plain", "Content-Type 'text/plain' is not JSON; send the body as application/json"),
    ("application/x-www-form-urlencoded",  # what `curl -d` sends unless told otherwise
     "Content-Type 'application/x-www-form-urlencoded' is not JSON; send the body as application/json"),
])
def test_a_post_without_a_json_content_type_is_415(server: Server, content_type: str | None, message: str) -> None:
    headers = {"authorization": f"token {server.keys['read']}"}
    if content_type is not None:
        headers["content-type"] = content_type
    response = server.client.post("/graphql", content=orjson.dumps({"query": VIEWER}), headers=headers)
    assert response.status_code == 415
    assert response.json() == {"data": None, "errors": [{"message": message,
                                                         "extensions": {"code": "UNSUPPORTED_MEDIA_TYPE"}}]}
    with_charset = post(server, {"query": VIEWER}, JSON, **{"content-type": "application/json; charset=utf-8"})
    assert with_charset.status_code == 200


@pytest.mark.parametrize(("body", "code"), [
    ({"query": "{ viewer { appId "}, "GRAPHQL_PARSE_FAILED"),
    ({"query": "{ viewer { nope } }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "query($first: Int) { sessions(first: $first) { totalCount } }", "variables": {"first": "ten"}},
     "BAD_USER_INPUT"),
    ({"query": VIEWER, "variables": [1]}, "BAD_REQUEST"),
], ids=["parse", "validation", "variables", "request"])
def test_a_request_error_has_no_data_under_graphql_response_json(server: Server, body: dict[str, Any], code: str
                                                                  ) -> None:
    modern = post(server, body, GRAPHQL_RESPONSE)
    assert modern.status_code == 400
    assert modern.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in modern.json()
    assert [e["extensions"]["code"] for e in modern.json()["errors"]] == [code]
    legacy = post(server, body, JSON)  # the API's contract under application/json: 400 and `"data": null`
    assert legacy.status_code == 400 and legacy.json()["data"] is None
    assert legacy.json()["errors"] == modern.json()["errors"]


def test_a_refused_key_has_no_data_under_graphql_response_json(server: Server) -> None:
    response = post(server, {"query": VIEWER}, GRAPHQL_RESPONSE, authorization="token nonsense")
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "invalid or revoked API key",
                                           "extensions": {"code": "UNAUTHENTICATED"}}]}


def test_an_executed_response_is_200_under_graphql_response_json(server: Server) -> None:
    """An invalid argument is found while executing: the response has `data`, which that media type answers
    with 200; application/json keeps the API's 400."""
    body = {"query": "{ sessions(first: -1) { totalCount } }"}
    modern, legacy = post(server, body, GRAPHQL_RESPONSE), post(server, body, JSON)
    assert (modern.status_code, legacy.status_code) == (200, 400)
    assert modern.json() == legacy.json() == {"data": None, "errors": [{
        "message": "`first` must be >= 0; got -1", "locations": [{"line": 1, "column": 3}], "path": ["sessions"],
        "extensions": {"code": "BAD_USER_INPUT"}}]}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    with live_server(tmp_path / "data", "audit", "read") as running:
        yield running


def test_the_graphql_http_audit_finds_only_the_contracts_warnings(live: tuple[LiveServer, str]) -> None:
    server, key = live
    done = subprocess.run(["node", str(AUDIT), f"{server.base_url}/graphql", key], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"{done.stderr}\n(run `npm ci --omit=dev` in graphiql/ first)"
    results = orjson.loads(done.stdout)
    assert len(results) > 40 and {r["status"] for r in results} <= {"ok", "warn"}
    not_ok = {r["id"]: r["name"] for r in results if r["status"] != "ok"}
    assert not_ok == CONTRACT_WARNINGS
