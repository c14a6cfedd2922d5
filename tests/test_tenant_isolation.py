"""Tenant isolation, proven on both stores: no input lets one app's key read or change another app's data.

Apps `demo` and `other` get the same shape of data (built by `app_batches`), every value of it carrying the app's
marker (`secret-demo-...`, `secret-other-...`) except what the two apps share on purpose: the session id
`shared-1`, the user id `shared-user`, and one error (so one issue id) that occurs in both. Every probe sends one
request with one app's key and checks, from the construction alone:

- no marker of the other app appears anywhere in the answer (data, errors and extensions alike), except as an
  echo of a string the request itself contained;
- the only errors are clean user errors (400 BAD_USER_INPUT / BAD_QUERY / GRAPHQL_VALIDATION_FAILED, NOT_FOUND);
  never INTERNAL_SERVER_ERROR or a 500;
- totals equal the asking app's own counts.

Read probes share one data set per store (module-scoped) and must leave it as loaded (the last read test checks);
mutation probes share a second one. `test_every_root_field_and_mutation_is_probed` fails when the schema gains a
root field, mutation, analytics source or filter entity without a probe here; `test_probe_count` (last) prints how
many requests probed isolation on each store.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import CONTEXT, T0, Server, load, make_batch, new_location, served

# -- the data -------------------------------------------------------------------------------------------------------

MIN = 60_000
SHARED_SESSION, SHARED_USER = "shared-1", "shared-user"
# One error both apps have, word for word: the same fingerprint, so the same issue id in both.
SHARED_ERROR = {"type": "error", "errorType": "TypeError", "message": "Cannot read properties of null (reading 'x')",
                "stack": "TypeError: Cannot read properties of null (reading 'x')\n"
                         "    at render (https://cdn.example/static/app.js:10:5)", "handled": False}
WEEK = {"from": "2025-11-20T00:00:00.000Z", "to": "2025-12-03T00:00:00.000Z"}  # every event of both apps is inside


@dataclass(frozen=True)
class App:
    """One tenant: its name, marker, keys (names in `Server.keys`) and the sizes that make its counts differ."""

    name: str
    mark: str
    read: str
    write: str
    admin: str
    anonymous: int  # anonymous sessions
    extra_user: bool  # one more identified user (with an error of its own)
    shared_recording: int  # rrweb events in its `shared-1`
    batches: list[dict[str, Any]] = field(default_factory=list, compare=False)

    @property
    def key(self) -> str:
        """The marker as JSON keys carry it: the filter language names keys of letters, digits and `_` only."""
        return self.mark.replace("-", "_")

    def ids(self) -> dict[str, str]:
        m = self.mark
        return {"s1": f"{m}-s1", "s2": f"{m}-s2", "anon": f"{m}-anon-0", "u1": f"{m}-u1", "u2": f"{m}-u2"}


def app_batches(app: App) -> list[dict[str, Any]]:
    """The app's sessions; every string but the shared ids and the shared error carries the app's marker (JSON
    keys as {u}, the marker with `_`).

    {m}-s1      user {m}-u1 (name, email, plan, {u}_trait_key), page with UTM + referrer, LCP + FCP, POST 503,
                custom {m}-event-signup, its own error ({m}-message), console warn, 2 rrweb events; release {m}.
    {m}-s2      user {m}-u2, page, 3 clicks on one element within 1 s (one rage click, no recording so no dead
                clicks), input, the shared error, custom {m}-event-signup then {m}-event-purchase.
    shared-1    user shared-user ({m}-shared-name, {u}_shared_trait), page, the shared error, custom
                {m}-event-purchase, `shared_recording` rrweb events.
    {m}-anon-k  anonymous: a page, a vital, the shared error.
    {m}-s3      (extra_user) user {m}-u3, a page and a second error of its own.
    """
    m, u, ids = app.mark, app.key, app.ids()
    host = f"https://{m}-host.example"
    context = {**CONTEXT, "release": f"{m}-release"}

    def page(ts: int, path: str) -> dict[str, Any]:
        return {"type": "page", "ts": ts, "url": f"{host}/{path}", "title": f"{m}-title"}

    def rrweb(ts: int, n: int) -> dict[str, Any]:
        return {"type": "recording", "ts": ts, "data": {"type": 3, "timestamp": ts, "data": {"note": f"{m}-rec-{n}"}}}

    def custom(ts: int, name: str) -> dict[str, Any]:
        return {"type": "custom", "ts": ts, "name": f"{m}-event-{name}",
                "properties": {f"{u}_prop": f"{m}-prop-value", "amount": 7, "plan": f"{m}-plan"}}

    shared_error = {**SHARED_ERROR, "tags": {f"{u}_tag": f"{m}-tag-value"}}
    s1, s2, shared = T0, T0 + 10 * MIN, T0 + 20 * MIN
    batches = [
        make_batch(ids["s1"], [
            {"type": "identify", "ts": s1, "userId": ids["u1"], "traits": {
                "name": f"{m}-name-1", "email": f"{m}-mail@{m}-host.example", "plan": f"{m}-plan",
                f"{u}_trait_key": f"{m}-trait-value"}},
            {"type": "page", "ts": s1 + 100, "url": f"{host}/{m}-landing?utm_source={m}-utm&utm_campaign={m}-camp",
             "title": f"{m}-title", "referrer": f"https://{m}-referrer.example/"},
            rrweb(s1 + 150, 0),
            {"type": "vital", "ts": s1 + 200, "name": "LCP", "value": 1800.0},
            {"type": "vital", "ts": s1 + 250, "name": "FCP", "value": 900.0},
            {"type": "network", "ts": s1 + 1000, "method": "POST", "url": f"https://{m}-api.example/{m}-endpoint",
             "status": 503, "durationMs": 420, "requestBytes": 10, "responseBytes": 20},
            custom(s1 + 2000, "signup"),
            {"type": "error", "ts": s1 + 3000, "errorType": "AppError", "message": f"{m}-message failed",
             "stack": f"AppError: {m}-message failed\n    at run ({host}/{m}-app.js:1:1)", "handled": True,
             "tags": {f"{u}_tag": f"{m}-tag-value"}, "extra": {f"{u}_extra": f"{m}-extra-value"}},
            {"type": "console", "ts": s1 + 4000, "level": "warn", "message": f"{m}-console"},
            rrweb(s1 + 5000, 1),
        ], app_id=app.name, context=context),
        make_batch(ids["s2"], [
            {"type": "identify", "ts": s2, "userId": ids["u2"], "traits": {"name": f"{m}-name-2",
                                                                          "plan": f"{m}-plan"}},
            page(s2 + 100, f"{m}-pricing"),
            *({"type": "click", "ts": s2 + 1000 + d, "selector": f"#{m}-button", "text": f"{m}-text", "x": 1, "y": 2}
              for d in (0, 100, 200)),
            {"type": "input", "ts": s2 + 3000, "selector": f"input[name={m}-field]"},
            {**shared_error, "ts": s2 + 6000},
            custom(s2 + 7000, "signup"),
            custom(s2 + 8000, "purchase"),
        ], app_id=app.name, context=context),
        make_batch(SHARED_SESSION, [
            {"type": "identify", "ts": shared, "userId": SHARED_USER,
             "traits": {"name": f"{m}-shared-name", f"{u}_shared_trait": f"{m}-shared-value"}},
            page(shared + 100, f"{m}-shared-page"),
            *(rrweb(shared + 200 + n, n) for n in range(app.shared_recording)),
            {**shared_error, "ts": shared + 2000},
            custom(shared + 3000, "purchase"),
        ], app_id=app.name, context=context),
        *(make_batch(f"{m}-anon-{k}", [
            page(T0 + (30 + k) * MIN, f"{m}-anon-page"),
            {"type": "vital", "ts": T0 + (30 + k) * MIN + 100, "name": "LCP", "value": 4200.0},
            {**shared_error, "ts": T0 + (30 + k) * MIN + 2000},
        ], app_id=app.name, context=context) for k in range(app.anonymous)),
    ]
    if app.extra_user:
        batches.append(make_batch(f"{m}-s3", [
            {"type": "identify", "ts": T0 + 40 * MIN, "userId": f"{m}-u3", "traits": {"name": f"{m}-name-3"}},
            page(T0 + 40 * MIN + 100, f"{m}-third"),
            {"type": "error", "ts": T0 + 40 * MIN + 3000, "errorType": "ExtraError", "message": f"{m}-second",
             "stack": f"ExtraError: {m}-second\n    at go ({host}/{m}-extra.js:2:2)"},
        ], app_id=app.name, context=context))
    return batches


def _app(name: str, mark: str, keys: tuple[str, str, str], anonymous: int, extra_user: bool, recording: int) -> App:
    app = App(name, mark, *keys, anonymous=anonymous, extra_user=extra_user, shared_recording=recording)
    app.batches.extend(app_batches(app))
    return app


DEMO = _app("demo", "secret-demo", ("read", "write", "admin"), anonymous=1, extra_user=False, recording=3)
OTHER = _app("other", "secret-other", ("other", "other", "other"), anonymous=2, extra_user=True, recording=1)
APPS = {"demo": DEMO, "other": OTHER}
DIRECTIONS = [(DEMO, OTHER), (OTHER, DEMO)]  # (the asking app, the app whose data must stay invisible)
DIRECTION_IDS = ["demo-reads", "other-reads"]


def counts(app: App) -> dict[str, int]:
    """What the app's key must see, from the batches: sessions, identified users, issues, stored events (every
    input event but rrweb ones, plus the one derived rage click), and the events of some kinds."""
    events = [e for b in app.batches for e in b["events"] if e["type"] != "recording"]
    kinds = Counter(e["type"] for e in events)
    return {"sessions": len(app.batches), "users": 3 + app.extra_user, "issues": 2 + app.extra_user,
            "events": len(events) + 1, "errors": kinds["error"], "custom": kinds["custom"], "page": kinds["page"],
            "vital": kinds["vital"], "network": kinds["network"], "click": kinds["click"],
            "console": kinds["console"], "identify": kinds["identify"], "shared_issue": 2 + app.anonymous,
            "recording": 2 + app.shared_recording}


def session_ids(app: App) -> set[str]:
    return {b["sessionId"] for b in app.batches}


def user_ids(app: App) -> set[str]:
    return {e["userId"] for b in app.batches for e in b["events"] if e["type"] == "identify"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, store_kind: str, chdb_path: Path) -> Iterator[Server]:
    """Both apps' data on one server, for the probes that only read (nothing here may change it)."""
    with served(new_location(store_kind, tmp_path_factory.mktemp("tenants") / "data", chdb_path)) as running:
        load(running, DEMO.batches + OTHER.batches)
        yield running


# -- probing --------------------------------------------------------------------------------------------------------

PROBES: Counter[str] = Counter()  # probes run, per store
CLEAN = frozenset({"BAD_USER_INPUT", "BAD_QUERY", "GRAPHQL_VALIDATION_FAILED"})
_TOKEN = re.compile(r"[\w\-.]*secret[-_](?:demo|other)[\w\-.]*", re.IGNORECASE)


def store_of(server: Server) -> str:
    return "duckdb" if server.settings.clickhouse is None else "clickhouse"


def _cursor_text(value: str) -> str:
    """What an opaque cursor (base64 of a JSON array of sort values) holds, so an id inside one is seen too."""
    if len(value) < 4 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        return ""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error):
        return ""
    return orjson.dumps(decoded).decode() if isinstance(decoded, list) else ""


def tokens(value: Any, mark: str) -> set[str]:
    """Every marker-bearing token in a JSON value's strings and keys (decoded, so escaping cannot hide one, and
    cursors decoded too)."""
    found: set[str] = set()
    if isinstance(value, str):
        if inner := _cursor_text(value):
            found |= tokens(inner, mark)
        # `.` and `_` as `-`: `properties.secret_x_y` may come back as the column name `properties_secret_x_y`
        normal = (re.sub(r"[._]", "-", t.lower()).strip("-") for t in _TOKEN.findall(value))
        found.update(t for t in normal if mark in t)
    elif isinstance(value, dict):
        for k, v in value.items():
            found |= tokens(k, mark) | tokens(v, mark)
    elif isinstance(value, list):
        for v in value:
            found |= tokens(v, mark)
    return found


def _short(query: str, variables: Any) -> str:
    """The request for a failure message, without the generated fragments."""
    return f"{query.split(chr(10) + 'fragment ')[0][:1500]} variables={str(variables)[:1500]}"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        assert "errors" not in self.body, self.body["errors"]
        return self.body["data"]

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.body.get("errors", [])]


def probe(server: Server, asking: App, query: str, variables: dict[str, Any] | None = None, *,
          key: str | None = None, allow: frozenset[str] = frozenset()) -> Answer:
    """One request with the asking app's key. Fails on any marker of the other app that the request did not
    contain itself, on a status other than 200/400, and on an error whose code is not in `allow`."""
    PROBES[store_of(server)] += 1
    hidden = OTHER if asking is DEMO else DEMO
    response = server.gql(query, variables, key or asking.read)
    assert response.status_code in (200, 400), (response.status_code, response.text[:2000])
    body = response.json()
    leaked = tokens(body, hidden.mark) - tokens([query, variables], hidden.mark)
    assert not leaked, f"{asking.name}'s key saw {hidden.name}'s data {sorted(leaked)}: {_short(query, variables)}"
    answer = Answer(response.status_code, body)
    unexpected = [e for e, c in zip(body.get("errors", []), answer.codes, strict=True) if c not in allow]
    assert not unexpected, f"{unexpected} for {_short(query, variables)}"
    if response.status_code == 400:
        assert answer.codes and set(answer.codes) <= CLEAN, body
    return answer


def ok(server: Server, asking: App, query: str, variables: dict[str, Any] | None = None, *,
       key: str | None = None) -> Any:
    """A probe that must succeed; returns its data."""
    return probe(server, asking, query, variables, key=key).data


def clean(server: Server, asking: App, query: str, variables: dict[str, Any] | None = None,
          allow: frozenset[str] = CLEAN, key: str | None = None) -> Any:
    """A probe of hostile input: a clean user error (None) or data."""
    answer = probe(server, asking, query, variables, key=key, allow=allow)
    return None if answer.codes else answer.data


# -- every field, from the schema -----------------------------------------------------------------------------------

INTROSPECTION = """{ __schema { queryType { fields { name } } mutationType { fields { name } }
    types { name kind possibleTypes { name } enumValues { name }
            fields { name args { name defaultValue type { kind } } type { ...T } } } } }
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""


def _named(type_ref: dict[str, Any]) -> str:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return str(type_ref["name"])


@pytest.fixture(scope="module")
def schema(tenants: Server) -> dict[str, Any]:
    return tenants.data(INTROSPECTION, key="read")["__schema"]  # type: ignore[no-any-return]


class Deep:
    """A selection of every field of a type, nested `depth` object levels deep (connections and edges do not
    count as levels), written as one fragment per (type, level): new fields are probed as soon as they exist.
    Nested connections ask for 10 rows (the server caps the product of page sizes); `totalCount` only on the
    first level's connections, and only with `totals` (the store counts each nested list on its own: counting
    a list of lists would take seconds). `skip` leaves fields out; `prefix` names the fragments."""

    def __init__(self, schema: dict[str, Any], depth: int, totals: bool, skip: frozenset[str] = frozenset(),
                 prefix: str = "") -> None:
        self.types = {t["name"]: t for t in schema["types"]}
        self.depth, self.totals, self.skip, self.prefix = depth, totals, skip, prefix
        self.fragments: dict[str, str] = {}

    def __call__(self, type_name: str, level: int = 0) -> str:
        name = f"{self.prefix}{type_name}_{level}"
        if name not in self.fragments:
            self.fragments[name] = ""  # reserved while its fields are written
            kind = self.types[type_name]
            if kind["kind"] in ("INTERFACE", "UNION"):
                parts = ["__typename", *(self(p["name"], level) for p in kind["possibleTypes"])]
            else:
                parts = ["__typename"]
                for f in kind["fields"]:
                    if any(a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None for a in f["args"]):
                        continue  # a field that needs an argument of its own
                    target = _named(f["type"])
                    if f["name"] in self.skip or (f["name"] == "totalCount" and type_name.endswith("Connection")
                                                  and not (self.totals and level == 0)):
                        continue
                    if self.types[target]["kind"] in ("SCALAR", "ENUM"):
                        parts.append(f["name"])
                        continue
                    nested = level if target.endswith(("Connection", "Edge")) else level + 1
                    if nested <= self.depth:
                        paged = "(first: 10)" if any(a["name"] == "first" for a in f["args"]) else ""
                        parts.append(f"{f['name']}{paged} {{ {self(target, nested)} }}")
            self.fragments[name] = f"fragment {name} on {type_name} {{ {' '.join(parts)} }}"
        return f"...{name}"

    def document(self, operation: str) -> str:
        return operation + "\n" + "\n".join(self.fragments.values())


def deep_query(schema: dict[str, Any], operation: Callable[[Deep], str], depth: int = 2, totals: bool = False
               ) -> str:
    deep = Deep(schema, depth, totals)
    return deep.document(operation(deep))


# -- root fields ----------------------------------------------------------------------------------------------------
# One probe function per root query field, asking for every nested field (`Deep`) with the other app's ids and the
# shared ids; test_every_root_field_and_mutation_is_probed fails when the schema gains a root field without one.
# Lists go one level deep, single objects two (session -> events -> session, user -> sessions -> events, ...):
# between them every field of every type is asked for (deeper costs seconds on ClickHouse for nothing new).

def _issue_ids(server: Server, app: App) -> dict[str, str]:
    """The app's issue ids by message (read with the app's own key; not a probe)."""
    nodes = server.data("{ issues { nodes { id message } } }", key=app.read)["issues"]["nodes"]
    return {n["message"]: n["id"] for n in nodes}


def _hidden_ids(app: App) -> list[str]:
    return [*app.ids().values(), *(f"{app.mark}-anon-{k}" for k in range(app.anonymous)), f"{app.mark}-s3",
            f"anonymous:{app.mark}-anon-0"]


def probe_viewer(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    assert ok(server, me, "{ viewer { appId scopes } }")["viewer"]["appId"] == me.name


def probe_session(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    hidden = _hidden_ids(them)
    query = deep_query(schema, lambda d: "query(" + ", ".join(f"$h{i}: ID!" for i in range(len(hidden))) +
                       ", $shared: ID!) { " + " ".join(f"h{i}: session(id: $h{i}) {{ id }}" for i in
                                                       range(len(hidden))) +
                       f" shared: session(id: $shared) {{ {d('Session')} }} }}", totals=True)
    data = ok(server, me, query, {**{f"h{i}": h for i, h in enumerate(hidden)}, "shared": SHARED_SESSION})
    assert all(data[f"h{i}"] is None for i in range(len(hidden))), data
    shared = data["shared"]
    mine = next(b for b in me.batches if b["sessionId"] == SHARED_SESSION)["events"]
    assert shared["initialUrl"].startswith(f"https://{me.mark}-host.example/")
    assert shared["recording"]["totalCount"] == me.shared_recording
    assert shared["events"]["totalCount"] == sum(e["type"] != "recording" for e in mine)
    assert shared["user"]["id"] == SHARED_USER and shared["user"]["name"] == f"{me.mark}-shared-name"
    assert [n["id"] for n in shared["user"]["sessions"]["nodes"]] == [SHARED_SESSION]


def probe_sessions(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    query = deep_query(schema, lambda d: f"""query($ids: [String!], $q: String) {{
        all: sessions(first: 100) {{ totalCount {d('SessionConnection')} }}
        byId: sessions(filter: {{id: {{in: $ids}}}}) {{ totalCount }}
        byUser: sessions(query: $q) {{ totalCount }}
        range: sessions(timeRange: {{from: "{WEEK['from']}", to: "{WEEK['to']}"}}) {{ totalCount }} }}""", depth=1)
    data = ok(server, me, query, {"ids": _hidden_ids(them), "q": f"userId = {them.ids()['u1']} OR userId ^= secret"})
    n = counts(me)["sessions"]
    assert data["all"]["totalCount"] == data["range"]["totalCount"] == n
    assert {node["id"] for node in data["all"]["nodes"]} == session_ids(me)
    assert data["byId"]["totalCount"] == 0
    assert data["byUser"]["totalCount"] == 2 + me.extra_user  # my users' ids start with "secret"; not theirs


def probe_user(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    query = deep_query(schema, lambda d: f"""query($a: ID!, $b: ID!, $c: ID!) {{
        a: user(id: $a) {{ id }} b: user(id: $b) {{ id }} c: user(id: $c) {{ id }}
        shared: user(id: "{SHARED_USER}") {{ {d('User')} }} }}""", totals=True)
    data = ok(server, me, query, {"a": them.ids()["u1"], "b": them.ids()["u2"], "c": f"{them.mark}-u3"})
    assert (data["a"], data["b"], data["c"]) == (None, None, None)
    shared = data["shared"]
    assert (shared["name"], shared["sessionCount"]) == (f"{me.mark}-shared-name", 1)
    assert shared["traits"] == {"name": f"{me.mark}-shared-name", f"{me.key}_shared_trait": f"{me.mark}-shared-value"}
    assert [n["id"] for n in shared["sessions"]["nodes"]] == [SHARED_SESSION]


def probe_users(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    query = deep_query(schema, lambda d: f"""query($f: UserFilter) {{ all: users(first: 100) {{ totalCount
        {d('UserConnection')} }} theirs: users(filter: $f) {{ totalCount }} }}""", depth=1)
    data = ok(server, me, query, {"f": {"or": [{"id": {"in": _hidden_ids(them)}},
                                               {"trait": [{"key": f"{them.key}_trait_key", "exists": True}]},
                                               {"name": {"contains": them.mark}}]}})
    assert data["all"]["totalCount"] == counts(me)["users"]
    assert {n["id"] for n in data["all"]["nodes"]} == user_ids(me)
    assert data["theirs"]["totalCount"] == 0


def probe_issue(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    theirs = _issue_ids(server, them)
    shared_id = theirs[SHARED_ERROR["message"]]
    hidden = [i for message, i in theirs.items() if message != SHARED_ERROR["message"]]
    query = deep_query(schema, lambda d: "query($shared: ID!, " + ", ".join(f"$h{i}: ID!" for i in
                                                                             range(len(hidden))) + ") { " +
                       " ".join(f"h{i}: issue(id: $h{i}) {{ id }}" for i in range(len(hidden))) +
                       f" shared: issue(id: $shared) {{ {d('Issue')} }} }}", depth=1, totals=True)
    data = ok(server, me, query, {"shared": shared_id, **{f"h{i}": h for i, h in enumerate(hidden)}})
    assert all(data[f"h{i}"] is None for i in range(len(hidden)))
    shared = data["shared"]
    expected = counts(me)["shared_issue"]
    assert shared["count"] == shared["occurrences"]["totalCount"] == shared["sessionCount"] == expected
    assert {n["id"] for n in shared["sessions"]["nodes"]} <= session_ids(me)
    assert shared["userCount"] == expected  # s2's user, shared-user and one anonymous user per anonymous session


def probe_issues(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    query = deep_query(schema, lambda d: f"""query($q: String) {{ all: issues(first: 100) {{ totalCount
        {d('IssueConnection')} }} theirs: issues(query: $q) {{ totalCount }} }}""", depth=1)
    data = ok(server, me, query, {"q": f'message ~ "{them.mark}" OR session(userId = "{them.ids()["u1"]}")'})
    assert data["all"]["totalCount"] == counts(me)["issues"] and data["theirs"]["totalCount"] == 0
    shared = next(n for n in data["all"]["nodes"] if n["message"] == SHARED_ERROR["message"])
    assert shared["count"] == counts(me)["shared_issue"]


def probe_events(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    query = deep_query(schema, lambda d: f"""query($f: EventFilter) {{
        all: events(first: 100) {{ totalCount {d('EventConnection')} }} theirs: events(filter: $f) {{ totalCount }}
        shared: events(filter: {{sessionId: {{eq: "{SHARED_SESSION}"}}}}) {{ totalCount }} }}""", depth=1)
    data = ok(server, me, query, {"f": {"or": [{"sessionId": {"in": _hidden_ids(them)}},
                                               {"userId": {"eq": them.ids()["u1"]}},
                                               {"url": {"contains": them.mark}}, {"name": {"contains": them.mark}}]}})
    assert data["all"]["totalCount"] == counts(me)["events"] and data["theirs"]["totalCount"] == 0
    assert {n["sessionId"] for n in data["all"]["nodes"]} == session_ids(me)
    mine = next(b for b in me.batches if b["sessionId"] == SHARED_SESSION)["events"]
    assert data["shared"]["totalCount"] == sum(e["type"] != "recording" for e in mine)


def expected_keys(app: App) -> dict[str, set[str]]:
    """The trait keys, property keys (custom properties, identify traits, error tags and extra) and custom event
    names the app's data has."""
    events = [e for b in app.batches for e in b["events"]]
    traits = {k for e in events if e["type"] == "identify" for k in e["traits"]}
    props = {k for e in events if e["type"] == "custom" for k in e["properties"]}
    return {"traits": traits, "properties": props | traits | {"tags", "extra"},
            "custom": {e["name"] for e in events if e["type"] == "custom"}}


FILTER_ENTITIES = ("SESSIONS", "USERS", "ISSUES", "EVENTS")


def probe_filter_keys(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    selections = " ".join(f"{e}: filterKeys(entity: {e}) {{ name kind seen fields {{ name }} }}"
                          for e in FILTER_ENTITIES)
    data = ok(server, me, f"{{ {selections} }}")
    keys = expected_keys(me)
    for entity, found in data.items():
        by_kind: dict[str, set[str]] = {}
        for k in found:
            by_kind.setdefault(k["kind"], set()).add(k["name"])
        assert by_kind["CUSTOM_EVENT"] == keys["custom"], entity
        trait_prefix = {"SESSIONS": "user.trait.", "USERS": "trait."}.get(entity)
        assert by_kind.get("TRAIT", set()) == ({trait_prefix + t for t in keys["traits"]} if trait_prefix else set())
        props = {"properties." + p for p in keys["properties"]} if entity == "EVENTS" else set()
        assert by_kind.get("PROPERTY", set()) == props, entity


def probe_top_values(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    t, c = them.key, counts(me)
    asks = {  # alias: (entity, key, expected total or None for "at most the rows there are")
        "theirTrait": ("SESSIONS", f"user.trait.{t}_trait_key", 0),
        "theirUserTrait": ("USERS", f"trait.{t}_trait_key", 0),
        "theirProp": ("EVENTS", f"properties.{t}_prop", 0), "theirShared": ("USERS", f"trait.{t}_shared_trait", 0),
        "urls": ("SESSIONS", "initialUrl", c["sessions"]), "releases": ("SESSIONS", "release", c["sessions"]),
        "userIds": ("SESSIONS", "userId", c["users"]), "names": ("USERS", "name", c["users"]),
        "plans": ("USERS", "trait.plan", 2), "messages": ("ISSUES", "message", c["issues"]),
        "eventNames": ("EVENTS", "name", None), "eventUrls": ("EVENTS", "url", None),
        "props": ("EVENTS", "properties.plan", None), "selectors": ("EVENTS", "selector", None),
    }
    selections = " ".join(f'{a}: topValues(entity: {e}, key: "{k}", limit: 100) {{ values {{ value count }} total '
                          f"distinct otherCount }}" for a, (e, k, _) in asks.items())
    data = ok(server, me, f"{{ {selections} }}")
    for alias, (_, _, total) in asks.items():
        found = data[alias]
        assert found["total"] <= c["events"] and found["total"] == (found["total"] if total is None else total), alias
        assert sum(v["count"] for v in found["values"]) == found["total"], alias
    assert data["releases"]["values"] == [{"value": f"{me.mark}-release", "count": c["sessions"]}]


SOURCE_DIMENSIONS = {  # analytics source: (a dimension that would show the other app's values, rows expected)
    "SESSIONS": ("initialUrl", "sessions"), "USERS": ("name", "users"), "ISSUES": ("message", "issues"),
    "EVENTS": ("url", "events"), "PAGES": ("path", "page"), "CLICKS": ("selector", "click"),
    "NETWORK_REQUESTS": ("url", "network"), "ERRORS": ("message", "errors"), "CONSOLE_LOGS": ("message", "console"),
    "CUSTOM_EVENTS": ("name", "custom"), "WEB_VITALS": ("pathPattern", "vital"),
    "FRUSTRATION_SIGNALS": ("selector", None),
}


def probe_aggregate(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    sources = [v["name"] for v in next(t for t in schema["types"] if t["name"] == "AnalyticsSource")["enumValues"]]
    assert set(sources) == set(SOURCE_DIMENSIONS), "a new analytics source needs an isolation probe"
    inputs = {s: {"source": s, "timeRange": WEEK, "measures": [
                      {"alias": "n", "fn": "COUNT"},
                      {"alias": "u", "fn": "COUNT" if s in ("USERS", "ISSUES") else "UNIQUE_USERS"}],
                  "groupBy": [{"field": SOURCE_DIMENSIONS[s][0]}], "other": True,
                  "comparePrevious": s in ("SESSIONS", "CUSTOM_EVENTS")}
              for s in sources}
    inputs["TRAIT"] = {"source": "SESSIONS", "measures": [{"alias": "n", "fn": "COUNT"}],
                       "groupBy": [{"field": f"user.trait.{them.key}_trait_key"}, {"field": "user.trait.plan"}]}
    inputs["PROPS"] = {"source": "CUSTOM_EVENTS", "measures": [
        {"alias": "sum", "fn": "SUM", "field": "properties.amount"},
        {"alias": "rate", "fn": "RATE", "where": f'properties.{them.key}_prop = "{them.mark}-prop-value"'}],
        "groupBy": [{"field": f"properties.{them.key}_prop"}, {"field": "session.initialUrl"}]}
    declared = ", ".join(f"${a}: AggregateInput!" for a in inputs)
    query = deep_query(schema, lambda d: f"query({declared}) {{ " + " ".join(
        f"{a}: aggregate(input: ${a}) {{ {d('AggregateResult')} }}" for a in inputs) + " }")
    data = ok(server, me, query, inputs)
    c = counts(me)
    for source, (_, expected) in SOURCE_DIMENSIONS.items():
        total = data[source]["totals"][-2]
        assert total == (c[expected] if expected else 1), (source, data[source])
    assert data["TRAIT"]["totals"][-1] == c["sessions"]
    assert {row[0] for row in data["TRAIT"]["rows"]} == {None}
    assert data["PROPS"]["totals"][-2:] == [7 * c["custom"], 0.0]


def probe_web_vitals(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    query = deep_query(schema, lambda d: f"""query($q: String) {{
        byPath: webVitals(groupBy: PATH, timeRange: {{from: "{WEEK['from']}"}}) {{ {d('WebVitalsResult')} }}
        all: webVitals {{ vitals {{ name count }} }} theirs: webVitals(query: $q) {{ vitals {{ name count }} }} }}""")
    data = ok(server, me, query, {"q": f'url ~ "{them.mark}"'})
    lcp = sum(1 for b in me.batches for e in b["events"] if e["type"] == "vital" and e["name"] == "LCP")
    assert {v["name"]: v["count"] for v in data["all"]["vitals"]}["LCP"] == lcp
    assert sum(v["count"] for v in data["byPath"]["vitals"] if v["name"] == "LCP") == lcp
    assert all(v["count"] == 0 for v in data["theirs"]["vitals"])


def probe_funnel(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    m, t = me.mark, them.mark
    inputs = {
        "mine": {"steps": ["visited", f'custom("{m}-event-signup")', f'custom("{m}-event-purchase")'],
                 "timeRange": WEEK, "breakdown": "user.trait.plan", "interval": "DAY"},
        "theirs": {"steps": ["visited", f'custom("{t}-event-signup")'], "timeRange": WEEK},
        "typed": {"typedSteps": [{"kind": "VISITED", "url": {"contains": t}}, {"kind": "CUSTOM"}]},
        "users": {"steps": ["visited", f'custom("{m}-event-signup")'], "countBy": "USER", "breakdown": "trait.plan"},
    }
    # a session funnel answers droppedSessions, a user funnel droppedUsers; asking the other is a user error
    by_session = Deep(schema, 2, False, frozenset({"droppedUsers"}), "S")
    by_user = Deep(schema, 2, False, frozenset({"droppedSessions"}), "U")
    selections = " ".join(f"{a}: funnel(input: ${a}) {{ {(by_user if a == 'users' else by_session)('FunnelResult')} }}"
                          for a in inputs)
    query = by_user.document(by_session.document(
        f"query({', '.join(f'${a}: FunnelInput!' for a in inputs)}) {{ {selections} }}"))
    data = ok(server, me, query, inputs)
    n = counts(me)["sessions"]
    assert [s["count"] for s in data["mine"]["steps"]] == [n, 2, 1]
    assert [s["count"] for s in data["theirs"]["steps"]] == [n, 0]
    assert {s["id"] for s in data["theirs"]["steps"][1]["droppedSessions"]["nodes"]} == session_ids(me)
    assert [s["count"] for s in data["users"]["steps"]] == [counts(me)["users"] + me.anonymous, 2]
    assert [s["count"] for s in data["typed"]["steps"]] == [0, 0]


def probe_retention(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    inputs = {"mine": {"timeRange": WEEK, "interval": "DAY", "periods": 2, "breakdownBy": "trait.plan"},
              "theirs": {"timeRange": WEEK, "interval": "DAY", "periods": 2,
                         "start": f'custom("{them.mark}-event-signup")'}}
    query = deep_query(schema, lambda d: "query($mine: RetentionInput!, $theirs: RetentionInput!) { "
                       f"mine: retention(input: $mine) {{ {d('RetentionResult')} }} "
                       f"theirs: retention(input: $theirs) {{ {d('RetentionResult')} }} }}")
    data = ok(server, me, query, inputs)
    assert data["mine"]["overall"]["size"] == counts(me)["users"] + me.anonymous
    assert {g["value"] for g in data["mine"]["groups"]} <= {f"{me.mark}-plan", None}
    assert data["theirs"]["overall"]["size"] == 0


def probe_paths(server: Server, schema: dict[str, Any], me: App, them: App) -> None:
    inputs = {"events": {"nodes": "EVENTS", "steps": 10, "limit": 500, "timeRange": WEEK},
              "pages": {"steps": 10, "limit": 500},
              "theirs": {"start": f'visited(url ~ "{them.mark}")', "nodes": "EVENTS"}}
    query = deep_query(schema, lambda d: "query($events: PathsInput!, $pages: PathsInput!, $theirs: PathsInput!) {"
                       + " ".join(f"{a}: paths(input: ${a}) {{ {d('PathsResult')} }}" for a in inputs) + " }")
    data = ok(server, me, query, inputs)
    assert data["events"]["steps"][0]["sessions"] == data["pages"]["steps"][0]["sessions"] == counts(me)["sessions"]
    assert data["theirs"]["steps"] == [] or data["theirs"]["steps"][0]["sessions"] == 0


ROOT_PROBES: dict[str, Callable[[Server, dict[str, Any], App, App], None]] = {
    "viewer": probe_viewer, "session": probe_session, "sessions": probe_sessions, "user": probe_user,
    "users": probe_users, "issue": probe_issue, "issues": probe_issues, "events": probe_events,
    "filterKeys": probe_filter_keys, "topValues": probe_top_values, "aggregate": probe_aggregate,
    "webVitals": probe_web_vitals, "funnel": probe_funnel, "retention": probe_retention, "paths": probe_paths,
}


# The analytics probes run one way only (they are the slowest); the rest both ways.
ONE_WAY = {"aggregate", "funnel", "retention", "paths", "webVitals", "issues"}


ROOT_CASES = [*((root, DEMO, OTHER) for root in sorted(ROOT_PROBES)),
              *((root, OTHER, DEMO) for root in sorted(set(ROOT_PROBES) - ONE_WAY))]


@pytest.mark.parametrize(("root", "me", "them"), ROOT_CASES, ids=[f"{r}-{me.name}-reads" for r, me, _ in ROOT_CASES])
def test_root_field_shows_only_the_asking_apps_data(tenants: Server, schema: dict[str, Any], root: str, me: App,
                                                    them: App) -> None:
    ROOT_PROBES[root](tenants, schema, me, them)


# -- cursors --------------------------------------------------------------------------------------------------------

def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


PAGED = {  # every kind of paginated list, root and nested, as a selection paging from `$after`
    "sessions": "sessions(first: 1, after: $after) { edges { cursor node { id } } }",
    "sessionsByDuration": "sessions(first: 1, after: $after, orderBy: {field: DURATION, direction: ASC}) "
                          "{ edges { cursor node { id } } }",
    "users": "users(first: 1, after: $after, orderBy: {field: SESSION_COUNT}) { edges { cursor node { id } } }",
    "issues": "issues(first: 1, after: $after, orderBy: {field: COUNT, direction: ASC}) "
              "{ edges { cursor node { id } } }",
    "events": "events(first: 1, after: $after) { edges { cursor node { id sessionId } } }",
    "sessionEvents": f'session(id: "{SHARED_SESSION}") {{ events(first: 1, after: $after) {{ edges {{ '
                     "cursor node { id sessionId } } } }",
    "recording": f'session(id: "{SHARED_SESSION}") {{ recording(first: 1, after: $after) {{ edges {{ cursor node }} }} '
                 "}",
    "userSessions": f'user(id: "{SHARED_USER}") {{ sessions(first: 1, after: $after) {{ edges {{ cursor node {{ id '
                    "} } } }",
    "occurrences": "issue(id: $issue) { occurrences(first: 1, after: $after) { edges { cursor node { id sessionId } "
                   "} } }",
    "issueSessions": "issue(id: $issue) { sessions(first: 1, after: $after) { edges { cursor node { id } } } }",
    "dropped": 'funnel(input: {steps: ["visited", "custom(\\"none\\")"]}) { steps { droppedSessions(first: 1, '
               "after: $after) { edges { cursor node { id } } } } }",
}


def _paged_query(lists: dict[str, str]) -> str:
    """All lists in one request, each with its own `$after` variable (`$a_<name>`)."""
    declared = ", ".join([*(["$issue: ID!"] if any("$issue" in sel for sel in lists.values()) else []),
                          *(f"$a_{n}: String" for n in lists)])
    body = " ".join(f"{n}: {sel.replace('$after', f'$a_{n}')}" for n, sel in lists.items())
    return f"query({declared}) {{ {body} }}"


def _cursors_of(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [c for k, v in value.items() for c in ([v] if k == "cursor" else _cursors_of(v))]
    return [c for v in value for c in _cursors_of(v)] if isinstance(value, list) else []


def test_cursors_from_the_other_app_page_only_through_mine(tenants: Server) -> None:
    """Their cursors (read with their key) sent with mine: each list pages through my rows, never theirs."""
    me, them = DEMO, OTHER
    shared_issue = _issue_ids(tenants, them)[SHARED_ERROR["message"]]
    query = _paged_query(PAGED)
    theirs = tenants.data(query, {"issue": shared_issue}, key=them.read)  # their first pages, with their key
    cursors = {n: _cursors_of(v)[0] for n, v in theirs.items() if _cursors_of(v)}
    assert set(cursors) == set(PAGED)
    data = ok(tenants, me, query, {"issue": shared_issue, **{f"a_{n}": c for n, c in cursors.items()}})
    for name, value in data.items():
        for node in _nodes(value):  # rrweb nodes are checked by their markers alone
            if "sessionId" in node:
                assert node["sessionId"] in session_ids(me), (name, node)
            elif name not in ("issues", "recording"):
                assert node["id"] in session_ids(me) | user_ids(me), (name, node)


def _nodes(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value["node"]] if "node" in value else [n for v in value.values() for n in _nodes(v)]
    return [n for v in value for n in _nodes(v)] if isinstance(value, list) else []


FORGED = {  # a cursor built by hand: (the list, its sort values): wrong types, injected SQL, another app's ids
    "sessions-injected-id": ("sessions", ["2025-11-26T08:00:00", "' OR 1=1 --"]),
    "sessions-their-id-injected": ("sessions", ["2025-11-26T08:00:00", "secret-other-s1' OR app_id = 'other"]),
    "sessions-injected-time": ("sessions", ["' OR 1=1 --", "x"]),
    "sessions-object-time": ("sessions", [{"$gt": ""}, "x"]),
    "sessions-object-id": ("sessions", ["2025-11-26T08:00:00", {"app_id": "other"}]),
    "sessions-array-id": ("sessions", ["2025-11-26T08:00:00", ["other", "demo"]]),
    "sessions-null-id": ("sessions", ["2025-11-26T08:00:00", None]),
    "sessions-float-id": ("sessions", ["2025-11-26T08:00:00", 1e308]),
    "sessions-nul-id": ("sessions", ["2025-11-26T08:00:00", "\x00"]),
    "sessions-one-value": ("sessions", ["2025-11-26T08:00:00"]),
    "duration-injected-number": ("sessionsByDuration", ["8000 OR 1=1", "x"]),
    "duration-bool": ("sessionsByDuration", [True, "x"]),
    "duration-min-int64": ("sessionsByDuration", [-9_223_372_036_854_775_808, "x"]),
    "events-injected-seq": ("events", ["2025-11-26T08:00:00", "shared-1", "0; DROP TABLE events", 0]),
    "events-object-idx": ("events", ["2025-11-26T08:00:00", "shared-1", 0, {"a": 1}]),
    "users-time-for-session-count": ("users", ["2025-11-26T08:00:00", "' OR '1'='1"]),
    "issues-injected-id": ("issues", [1, "x' OR app_id='other"]),
    "recording-injected": ("recording", ["' OR 1=1"]),
    "recording-negative": ("recording", [-1]),
    "recording-huge": ("recording", [10**18]),
    "recording-object": ("recording", [{"offset": 0}]),
    "recording-float": ("recording", [0.5]),
}
RAW_CURSORS = ["' OR 1=1 --", "%", "\x00", "W10", "e30", _cursor([]) + "====", "🙂"]


@pytest.mark.parametrize("forged", sorted(FORGED))
def test_forged_cursors_are_clean_errors_or_my_rows(tenants: Server, forged: str) -> None:
    """A cursor is only base64 JSON: one built by hand must page through my rows or be refused as BAD_USER_INPUT,
    whatever it holds."""
    name, values = FORGED[forged]
    data = clean(tenants, DEMO, _paged_query({name: PAGED[name]}), {f"a_{name}": _cursor(values)},
                 frozenset({"BAD_USER_INPUT"}))
    for node in _nodes(data or {}):
        if name not in ("issues", "recording"):
            assert node.get("sessionId", node["id"]) in session_ids(DEMO) | user_ids(DEMO), node


@pytest.mark.parametrize("raw", RAW_CURSORS)
def test_cursors_that_are_not_cursors_are_bad_user_input(tenants: Server, raw: str) -> None:
    query = _paged_query({"sessions": PAGED["sessions"], "events": PAGED["sessionEvents"]})
    assert clean(tenants, DEMO, query, {"a_sessions": raw, "a_events": raw}, frozenset({"BAD_USER_INPUT"})) is None


# -- hostile input --------------------------------------------------------------------------------------------------

INJECTIONS = [
    "' OR 1=1 --", "' OR '1'='1", '" OR ""="', '"; DROP TABLE sessions; --', "'; DROP TABLE events; --",
    "'); DELETE FROM events; --", "'; ALTER TABLE events DELETE WHERE 1; --", "app_id = 'other'",
    "\\' OR app_id=\\'other", "') OR app_id = 'other' --", "x' AND app_id != 'demo", '" OR app_id="other',
    "' UNION SELECT * FROM sessions --", "' || (SELECT app_id FROM sessions LIMIT 1) || '",
    "\u2018 OR 1=1 --", "\u2019; DROP TABLE users; --", "\u201c OR \u201d=\u201d", "\uff07 OR 1=1 --",
    "\\", "\\\\'", "%", "_", "%%", "%_%", "\x00", "a\x00' OR 1=1 --", "*", "?", "$1", "$p0", ":p0", "{p0}",
    "${app_id}", "`app_id`", "\u202e", "\U0001f642' OR 1=1", "\n OR 1=1", "\r\n--", "/* */ OR 1=1", "0x27",
    ".*", "(?i).*", "other", "demo",
]


# JSON keys (traits, properties) are looked up, not compared: fewer, path-like ones (each one is a subquery)
KEY_INJECTIONS = ["' OR 1=1 --", "x') OR ('1'='1", '"; DROP TABLE sessions; --', "\\' OR app_id=\\'other", "\\",
                  "%", "\x00", "$.plan", 'a"b', "[0]", "plan.x"]


def hostile(them: App) -> list[str]:
    """The injections, plus the other app's name, marker and ids as values."""
    return [*INJECTIONS, them.mark, f"{them.mark}-s1", f"{them.mark}-u1", f"{them.mark}-prop-value",
            f"' OR app_id = '{them.name}' --", f"{them.key}_trait_key"]


def quoted(value: str) -> str:
    """A string literal of the filter language."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def _matching(texts: dict[str, list[str]], values: list[str], fold: bool = True) -> int:
    """How many of the keys have a text containing one of the values (case-insensitively with `fold`)."""
    def has(text: str, value: str) -> bool:
        return value.lower() in text.lower() if fold else value in text
    return sum(any(has(t, v) for t in ts for v in values) for ts in texts.values())


def _texts(app: App) -> dict[str, dict[str, list[str]]]:
    """Per session / user / issue / event kind, the texts a contains-filter looks at, from the batches."""
    sessions = {b["sessionId"]: [e["url"] for e in b["events"] if e["type"] == "page"] for b in app.batches}
    identifies = [e for b in app.batches for e in b["events"] if e["type"] == "identify"]
    errors = [e for b in app.batches for e in b["events"] if e["type"] == "error"]
    return {
        "initialUrl": {s: urls[:1] for s, urls in sessions.items()}, "visited": sessions,
        "userId": {i["userId"]: [i["userId"]] for i in identifies},
        "email": {i["userId"]: [i["traits"].get("email", "")] for i in identifies},
        "issue": {e["message"]: [e["message"], f"{e['errorType']}: {e['message']}"] for e in errors},
        "message": {f"{b['sessionId']}/{n}": [e["message"]] for b in app.batches
                    for n, e in enumerate(b["events"]) if e["type"] in ("error", "console")},
    }


def _size(value: Any) -> int:
    """How many values a JSON value holds, as the server counts them against its input limit (5,000)."""
    if isinstance(value, dict):
        return 1 + sum(_size(v) for v in value.values())
    return 1 + sum(_size(v) for v in value) if isinstance(value, list) else 1


def _chunks(variables: dict[str, Any], limit: int = 4_000) -> list[dict[str, Any]]:
    """The variables split into requests under the server's input limit."""
    chunks: list[dict[str, Any]] = [{}]
    for name, value in variables.items():
        if chunks[-1] and _size(chunks[-1]) + _size(value) > limit:
            chunks.append({})
        chunks[-1][name] = value
    return chunks


def _vital_urls(app: App, name: str) -> list[str]:
    """The page URL each of the app's vitals of that name was measured on."""
    urls = []
    for batch in app.batches:
        page = ""
        for event in sorted(batch["events"], key=lambda e: e["ts"]):
            page = event["url"] if event["type"] == "page" else page
            if event["type"] == "vital" and event["name"] == name:
                urls.append(page)
    return urls


def _aliases(selections: dict[str, tuple[str, str]]) -> str:
    """One request: each alias with its selection; variables typed as given ((type, selection) per alias)."""
    declared = ", ".join(f"${a}: {t}" for a, (t, _) in selections.items())
    return f"query({declared}) {{ {' '.join(f'{a}: {sel}' for a, (_, sel) in selections.items())} }}"


def test_injected_values_in_typed_filters_are_only_values(tenants: Server) -> None:
    """Each alias ORs (or ANDs) one condition over every hostile value; the count must be exactly what plain
    string comparison over my own data gives."""
    me, them = DEMO, OTHER
    values, texts, c = hostile(them), _texts(me), counts(me)
    keys = [*KEY_INJECTIONS, f"{them.key}_trait_key", f"{them.key}_prop"]
    url_hits = _matching(texts["initialUrl"], values)
    cases: dict[str, tuple[str, dict[str, Any], int]] = {  # alias: (list, filter, expected totalCount)
        "onlyShared": ("sessions", {"or": [  # what no session of mine has, or shared-1 by id
            {"id": {"in": [*values, *_hidden_ids(them), SHARED_SESSION]}},
            *({"browser": {"eq": v}} for v in values), {"release": {"in": values}},
            *({"trait": [{"key": k, "text": {"eq": k}}]} for k in keys[::2]),
            *({"trait": [{"key": k, "exists": True}]} for k in keys[1::2]),
            {"trait": [{"key": "plan", "text": {"in": values}}]},
            {"had": [{"kind": "CUSTOM", "name": {"in": values}}]},
            *({"had": [{"kind": "CUSTOM", "properties": [{"key": k, "text": {"contains": k}}]}]} for k in keys),
            {"occurrences": [{"event": {"kind": "CUSTOM", "name": {"in": values}}, "count": {"gte": 1}}]}]}, 1),
        "contains": ("sessions", {"or": [{"initialUrl": {"contains": v}} for v in values]}, url_hits),
        "negated": ("sessions", {"and": [*({"browser": {"neq": v}} for v in values), {"country": {"notIn": values}},
                                         *({"initialUrl": {"notContains": v}} for v in values)]},
                    c["sessions"] - url_hits),
        "startsEnds": ("sessions", {"or": [{"userId": {"startsWith": v}} for v in values] +
                                          [{"initialUrl": {"endsWith": v}} for v in values]},
                       sum(any(u.startswith(v) for v in values) for u in user_ids(me)) +
                       sum(any(u[0].endswith(v) for v in values) for u in texts["initialUrl"].values())),
        "visited": ("sessions", {"or": [{"visitedUrl": {"contains": v}} for v in values[::3]]},
                    _matching(texts["visited"], values[::3])),
        "users": ("users", {"or": [f for v in values for f in (
            {"name": {"eq": v}}, {"email": {"contains": v}}, {"id": {"eq": v}})] +
            [{"trait": [{"key": k, "text": {"eq": k}}]} for k in keys[1::2]]}, _matching(texts["email"], values)),
        "issues": ("issues", {"or": [f for v in values for f in (
            {"message": {"contains": v}}, {"title": {"contains": v}}, {"id": {"eq": v}})]},
                   _matching(texts["issue"], values)),
        "events": ("events", {"or": [*({"message": {"contains": v}} for v in values),
                                     {"name": {"in": values}}, {"sessionId": {"in": values}},
                                     {"userId": {"in": values}}, {"issueId": {"in": values}},
                                     *({"properties": [{"key": k, "text": {"eq": k}}]} for k in keys)]},
                   _matching(texts["message"], values)),
    }
    types = {"sessions": "SessionFilter", "users": "UserFilter", "issues": "IssueFilter", "events": "EventFilter"}
    data: dict[str, Any] = {}
    for chunk in _chunks({a: f for a, (_, f, _) in cases.items()}):
        query = _aliases({a: (types[cases[a][0]], f"{cases[a][0]}(filter: ${a}) {{ totalCount nodes {{ __typename "
                                                  "} }") for a in chunk})
        data |= ok(tenants, me, query, chunk)
    assert {a: data[a]["totalCount"] for a in cases} == {a: n for a, (_, _, n) in cases.items()}
    assert url_hits > 0  # `_` and `?` are in my first page's URL: contains compares literally, not as a pattern


def test_injected_values_in_query_strings_are_only_values(tenants: Server) -> None:
    """The same values as string literals of the filter language, in every field that takes a query string."""
    me, them = DEMO, OTHER
    values, texts, c = hostile(them), _texts(me), counts(me)

    def any_of(template: str, among: list[str] = values) -> str:
        return " OR ".join(template.format(quoted(v)) for v in among)

    few = values[::4]  # conditions on events are a subquery each: a sample of the values there
    names = ", ".join(map(quoted, values))

    url_hits = _matching(texts["initialUrl"], values)
    lists = {  # alias: (list, query string, expected totalCount)
        "url": ("sessions", any_of("initialUrl ~ {}"), url_hits),
        "browser": ("sessions", any_of("browser = {}") + f" OR userId IN ({', '.join(map(quoted, values))})", 0),
        "trait": ("sessions", f"user.trait.plan IN ({names}) OR " + any_of("user.name ^= {}", few), 0),
        "custom": ("sessions", f"custom(name IN ({names})) OR " + any_of("custom(name $= {})", few), 0),
        "visited": ("sessions", any_of("visited(url ~ {})", few), _matching(texts["visited"], few)),
        "users": ("users", any_of("name = {}") + " OR " + any_of("email ~ {}"), _matching(texts["email"], values)),
        "issues": ("issues", any_of("message ~ {}"), _matching(texts["issue"], values)),
        "events": ("events", any_of("message ~ {}") + " OR " + any_of("properties.plan = {}"),
                   _matching(texts["message"], values)),
    }
    selections = " ".join(f"{a}: {root}(query: ${a}) {{ totalCount appliedQuery nodes {{ __typename }} }}"
                          for a, (root, _, _) in lists.items())
    analytics = {
        "top": ("String", 'topValues(entity: SESSIONS, key: "initialUrl", query: $top) { total }',
                any_of("initialUrl ~ {}")),
        "topNames": ("String", 'topValues(entity: EVENTS, key: "name", query: $topNames) { total }',
                     any_of("name = {}")),
        "vitals": ("String", "webVitals(query: $vitals) { vitals { name count } }", any_of("url ~ {}")),
        "agg": ("AggregateInput!", "aggregate(input: $agg) { totals }", {
            "source": "CUSTOM_EVENTS", "query": any_of("name = {}"), "measures": [
                {"alias": "n", "fn": "COUNT"}, {"alias": "r", "fn": "RATE", "where": any_of("properties.plan = {}")}]}),
        "funnel": ("FunnelInput!", "funnel(input: $funnel) { steps { count } }",
                   {"steps": ["visited", f"custom(name IN ({names}))"]}),
        "retention": ("RetentionInput!", "retention(input: $retention) { overall { size } }",
                      {"timeRange": WEEK, "interval": "DAY", "periods": 2, "start": f"custom(name IN ({names}))"}),
        "paths": ("PathsInput!", "paths(input: $paths) { steps { sessions } }",
                  {"start": any_of("visited(url ~ {})", few)}),
    }
    declared = ", ".join([*(f"${a}: String" for a in lists), *(f"${a}: {t}" for a, (t, _, _) in analytics.items())])
    query = f"query({declared}) {{ {selections} {' '.join(f'{a}: {sel}' for a, (_, sel, _) in analytics.items())} }}"
    data = ok(tenants, me, query, {**{a: q for a, (_, q, _) in lists.items()},
                                   **{a: v for a, (_, _, v) in analytics.items()}})
    assert {a: data[a]["totalCount"] for a in lists} == {a: n for a, (_, _, n) in lists.items()}
    assert (data["top"]["total"], data["topNames"]["total"]) == (url_hits, 0)
    lcp_hits = _matching({str(n): [u] for n, u in enumerate(_vital_urls(me, "LCP"))}, values)
    assert {v["name"]: v["count"] for v in data["vitals"]["vitals"]}.get("LCP", 0) == lcp_hits
    assert data["agg"]["totals"][0] == 0 and [s["count"] for s in data["funnel"]["steps"]] == [c["sessions"], 0]
    assert data["retention"]["overall"]["size"] == 0
    assert data["paths"]["steps"] == [] or data["paths"]["steps"][0]["sessions"] <= c["sessions"]


def _raw(value: str) -> str:
    """A GraphQL string literal (the value as it is, escaped for GraphQL only)."""
    return orjson.dumps(value).decode()


# Unquoted, a value meets the filter language's parser first: quotes, escapes, comments, NUL, line breaks.
RAW_INJECTIONS = ["' OR 1=1 --", '"; DROP TABLE sessions; --', "\\' OR app_id=\\'other", "') OR app_id = 'other' --",
                  "\u2018 OR 1=1 --", "\\", "%", "\x00", "`app_id`", "\n OR 1=1 /* */"]


def _raw_forms(value: str) -> dict[str, str]:
    """The value unquoted where the filter language expects a value, a field, a key or a whole query; as a
    topValues key; as analytics fields, aliases, conditions and a time zone."""
    def raw(text: str) -> str:
        return _raw(text.replace("$", value))
    sessions = "source: SESSIONS, measures: [{alias: \"n\", fn: COUNT}]"
    week = f'{{from: "{WEEK["from"]}", to: "{WEEK["to"]}"}}'
    return {
        "value": f"sessions(query: {raw('browser = $')}) {{ totalCount }}",
        "whole": f"sessions(query: {raw('$')}) {{ totalCount }}",
        "inList": f"sessions(query: {raw('userId IN ($)')}) {{ totalCount }}",
        "trait": f"sessions(query: {raw('user.trait.$ = x')}) {{ totalCount }}",
        "prop": f"events(query: {raw('properties.$ EXISTS')}) {{ totalCount }}",
        "custom": f"sessions(query: {raw('custom($)')}) {{ totalCount }}",
        "users": f"users(query: {raw('trait.$ = 1 OR name = $')}) {{ totalCount }}",
        "topKey": f"topValues(entity: SESSIONS, key: {raw('$')}) {{ total }}",
        "topTrait": f"topValues(entity: USERS, key: {raw('trait.$')}) {{ total }}",
        "topProp": f"topValues(entity: EVENTS, key: {raw('properties.$')}, query: {raw('$')}) {{ total }}",
        "aggField": f"aggregate(input: {{source: SESSIONS, measures: [{{alias: \"n\", fn: SUM, field: {raw('$')}}}]}}) "
                    "{ totals }",
        "aggAlias": f"aggregate(input: {{source: SESSIONS, measures: [{{alias: {raw('$')}, fn: COUNT}}], "
                    f"groupBy: [{{field: \"browser\", alias: {raw('$2')}}}]}}) {{ columns {{ name }} totals }}",
        "aggWhere": f"aggregate(input: {{source: SESSIONS, measures: [{{alias: \"r\", fn: RATE, where: {raw('$')}}}], "
                    f"groupBy: [{{field: {raw('user.trait.$')}}}]}}) {{ totals }}",
        "aggZone": f"aggregate(input: {{{sessions}, interval: DAY, timeZone: {raw('$')}}}) {{ totals }}",
        "aggOrder": f"aggregate(input: {{{sessions}, groupBy: [{{field: \"browser\"}}], orderBy: {raw('$')}}}) "
                    "{ totals }",
        "funnel": f"funnel(input: {{steps: [\"visited\", {raw('$')}], breakdown: {raw('$')}}}) {{ steps {{ count }} }}",
        "retention": f"retention(input: {{timeRange: {week}, start: {raw('$')}, breakdownBy: {raw('$')}}}) "
                     "{ overall { size } }",
        "paths": f"paths(input: {{start: {raw('$')}, query: {raw('$')}}}) {{ edgeCount }}",
        "vitals": f"webVitals(query: {raw('$')}) {{ vitals {{ count }} }}",
    }


@pytest.mark.parametrize("value", RAW_INJECTIONS, ids=range(len(RAW_INJECTIONS)))
def test_raw_injections_are_clean_errors_or_my_data(tenants: Server, value: str) -> None:
    """Each form in a request of its own (the server answers a failed alias with no data at all, which could hide
    what the others returned): a user error, or an answer with my data only."""
    most = max(counts(DEMO).values())
    for form, selection in _raw_forms(value).items():
        found = clean(tenants, DEMO, f"{{ {form}: {selection} }}")
        if found and "totalCount" in found[form]:
            assert found[form]["totalCount"] <= most, form


def test_hostile_ids_find_nothing(tenants: Server) -> None:
    values = [*hostile(OTHER), *_hidden_ids(OTHER)]
    for start in range(0, len(values), 10):  # 30 aliases: the server's limit per request
        names = {f"v{i}": v for i, v in enumerate(values[start:start + 10])}
        declared = ", ".join(f"${n}: ID!" for n in names)
        query = f"query({declared}) {{ " + " ".join(f"s{n}: session(id: ${n}) {{ id }} u{n}: user(id: ${n}) {{ id }} "
                                                    f"i{n}: issue(id: ${n}) {{ id }}" for n in names) + " }"
        data = ok(tenants, DEMO, query, names)
        assert len(data) == 3 * len(names) and set(data.values()) == {None}


@pytest.mark.parametrize("entity", ["SESSIONS' OR 1=1 --", "sessions", "EVENTS; DROP TABLE events", ""])
def test_hostile_enum_values_are_refused(tenants: Server, entity: str) -> None:
    query = ('query($e: FilterEntity!) { filterKeys(entity: $e) { name } '
             'topValues(entity: $e, key: "browser") { total } }')
    assert probe(tenants, DEMO, query, {"e": entity}, allow=frozenset({"BAD_USER_INPUT"})).codes == ["BAD_USER_INPUT"]


SNAPSHOT = """{ viewer { appId }
    sessions(first: 100) { totalCount nodes { id userId eventCount errorCount pageCount hasRecording initialUrl } }
    users(first: 100) { totalCount nodes { id name email traits sessionCount firstSeen lastSeen } }
    issues(first: 100) { totalCount nodes { id status count sessionCount userCount } }
    events { totalCount } }"""


def snapshot(server: Server, app: App) -> dict[str, Any]:
    """Everything an app's own key sees of its data, and its keys in the registry (not a probe)."""
    keys = [(k.id, k.scope, k.revoked_at) for k in server.services.registry.list_keys(app.name)]
    return {"data": server.data(SNAPSHOT, key=app.read), "keys": keys}


def test_the_store_is_unchanged_after_every_probe(tenants: Server) -> None:
    """Runs after the probes of this module on the shared store: both apps hold exactly what was loaded."""
    for app in (DEMO, OTHER):
        data = snapshot(tenants, app)["data"]
        c = counts(app)
        assert (data["sessions"]["totalCount"], data["users"]["totalCount"], data["issues"]["totalCount"],
                data["events"]["totalCount"]) == (c["sessions"], c["users"], c["issues"], c["events"])
        assert {n["id"] for n in data["sessions"]["nodes"]} == session_ids(app)
        assert {n["status"] for n in data["issues"]["nodes"]} == {"OPEN"}


# -- mutations ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mutable(tmp_path_factory: pytest.TempPathFactory, store_kind: str, chdb_path: Path) -> Iterator[Server]:
    """Both apps' data again, for the mutation probes (they change the asking app's own data)."""
    with served(new_location(store_kind, tmp_path_factory.mktemp("mutable") / "data", chdb_path)) as running:
        load(running, DEMO.batches + OTHER.batches)
        yield running


@contextmanager
def untouched(server: Server, *apps: App) -> Iterator[None]:
    """The apps' data and keys are exactly the same after the block as before it."""
    before = {app.name: snapshot(server, app) for app in apps}
    yield
    assert {app.name: snapshot(server, app) for app in apps} == before


def _key_id(server: Server, key: str) -> str:
    return server.keys[key].split("_")[1]  # rq_<key id>_<secret>


def _not_found(server: Server, me: App, query: str, variables: dict[str, Any], key: str) -> None:
    answer = probe(server, me, query, variables, key=key, allow=frozenset({"NOT_FOUND"}))
    assert answer.codes == ["NOT_FOUND"] and answer.body["data"] is None, answer.body


def mutate_identify_user(server: Server, me: App, them: App) -> None:
    query = """mutation($id: ID!, $traits: JSON) { identifyUser(id: $id, name: "Mallory", traits: $traits) {
        id name email traits sessionCount sessions { totalCount nodes { id } } } }"""
    created = ok(server, me, query, {"id": them.ids()["u1"], "traits": {
        "plan": "hacked", f"{them.key}_trait_key": None, "name": None}}, key=me.write)["identifyUser"]
    # a new user of mine: nothing of theirs merged in (their traits, email, sessions)
    assert created == {"id": them.ids()["u1"], "name": "Mallory", "email": None, "traits": {"plan": "hacked"},
                       "sessionCount": 0, "sessions": {"totalCount": 0, "nodes": []}}
    shared = ok(server, me, query, {"id": SHARED_USER, "traits": {"extra": 1}}, key=me.write)["identifyUser"]
    assert shared["traits"] == {"name": f"{me.mark}-shared-name", f"{me.key}_shared_trait": f"{me.mark}-shared-value",
                                "extra": 1}
    assert shared["sessions"]["nodes"] in ([{"id": SHARED_SESSION}], [])  # [] once deleteUser has run


def mutate_update_issue(server: Server, me: App, them: App) -> None:
    theirs = _issue_ids(server, them)
    query = "mutation($id: ID!) { updateIssue(id: $id, status: RESOLVED) { id status sessions { nodes { id } } } }"
    for message, issue_id in theirs.items():
        if message != SHARED_ERROR["message"]:
            _not_found(server, me, query, {"id": issue_id}, me.write)
    shared = ok(server, me, query, {"id": theirs[SHARED_ERROR["message"]]}, key=me.write)["updateIssue"]
    assert shared["status"] == "RESOLVED" and {n["id"] for n in shared["sessions"]["nodes"]} <= session_ids(me)


def mutate_delete_user(server: Server, me: App, them: App) -> None:
    query = """mutation($id: ID!) { deleteUser(id: $id) { userId deletedSessions deletedEvents deletedRecordings
        complete } }"""
    for user_id in (them.ids()["u1"], them.ids()["u2"], f"anonymous:{them.mark}-anon-0", f"{them.mark}-anon-0"):
        if user_id == them.ids()["u1"]:
            continue  # identifyUser made a user of mine with this id: deleting it is mine to do, below
        deleted = ok(server, me, query, {"id": user_id}, key=me.write)["deleteUser"]
        assert deleted == {"userId": user_id, "deletedSessions": 0, "deletedEvents": 0, "deletedRecordings": 0,
                           "complete": True}
    deleted = ok(server, me, query, {"id": SHARED_USER}, key=me.write)["deleteUser"]
    assert (deleted["deletedSessions"], deleted["deletedRecordings"]) == (1, 1)  # my shared-1, never theirs


def mutate_create_api_key(server: Server, me: App, them: App) -> None:
    created = ok(server, me, 'mutation { createApiKey(scope: READ, name: "probe") { secret key { id scope } } }',
                 key=me.admin)["createApiKey"]
    server.keys[f"new-{me.name}"] = created["secret"]
    data = ok(server, me, f"""{{ viewer {{ appId keyId }} theirs: session(id: "{them.ids()['s1']}") {{ id }}
        sessions {{ nodes {{ id }} }} }}""", key=f"new-{me.name}")
    assert data["viewer"] == {"appId": me.name, "keyId": created["key"]["id"]} and data["theirs"] is None
    assert {n["id"] for n in data["sessions"]["nodes"]} <= session_ids(me)


def mutate_revoke_api_key(server: Server, me: App, them: App) -> None:
    query = "mutation($id: ID!) { revokeApiKey(id: $id) }"
    for target in (_key_id(server, them.read), _key_id(server, them.admin), "aaaaaaaaaaaa"):
        _not_found(server, me, query, {"id": target}, me.admin)
    assert server.data("{ viewer { appId } }", key=them.read) == {"viewer": {"appId": them.name}}


MUTATION_PROBES: dict[str, Callable[[Server, App, App], None]] = {
    "identifyUser": mutate_identify_user, "updateIssue": mutate_update_issue, "deleteUser": mutate_delete_user,
    "createApiKey": mutate_create_api_key, "revokeApiKey": mutate_revoke_api_key,
}


@pytest.mark.parametrize(("me", "them"), DIRECTIONS, ids=DIRECTION_IDS)
def test_mutations_with_the_other_apps_ids_change_nothing_of_theirs(mutable: Server, me: App, them: App) -> None:
    """Every mutation, with my write and admin keys, aimed at their users, issues and keys: theirs stay as they
    were (data and keys), what changes is mine."""
    with untouched(mutable, them):
        for mutate in MUTATION_PROBES.values():
            mutate(mutable, me, them)


def test_hostile_ids_in_mutations_change_nothing(mutable: Server) -> None:
    """Ids that would match more than one row if they reached SQL as text (a deletion is costly on ClickHouse:
    a few of them)."""
    targets = {f"v{i}": v for i, v in enumerate(["' OR 1=1 --", "%", "_", "*", "", "\x00", "\\",
                                                  "secret-other-u1' OR '1'='1", "') OR app_id = 'other' --"])}
    with untouched(mutable, DEMO, OTHER):
        query = f"mutation({', '.join(f'${n}: ID!' for n in targets)}) {{ " + " ".join(
            f"{n}: deleteUser(id: ${n}) {{ deletedSessions deletedEvents deletedRecordings }}" for n in targets) + " }"
        answer = probe(mutable, DEMO, query, targets, key="write", allow=CLEAN)
        assert answer.codes or all(d == {"deletedSessions": 0, "deletedEvents": 0, "deletedRecordings": 0}
                                   for d in answer.data.values())
        for value in RAW_INJECTIONS:
            _not_found(mutable, DEMO, "mutation($id: ID!) { updateIssue(id: $id, status: IGNORED) { id } }",
                       {"id": value}, "write")
            _not_found(mutable, DEMO, "mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": value}, "admin")
    with untouched(mutable, OTHER):  # these create users and keys of demo's, with hostile names
        for value in RAW_INJECTIONS[:4]:
            query = "mutation($id: ID!, $t: JSON) { identifyUser(id: $id, email: $id, traits: $t) { id traits } }"
            user = clean(mutable, DEMO, query, {"id": value, "t": {value: value, "plan": value}}, key="write")
            assert user is None or user["identifyUser"] == {"id": value, "traits": {value: value, "plan": value}}
            created = clean(mutable, DEMO, "mutation($n: String) { createApiKey(scope: READ, name: $n) { "
                            "key { name } } }", {"n": value}, key="admin")
            assert created is None or created["createApiKey"]["key"]["name"] == value
    assert mutable.data("{ viewer { appId } }", key="other") == {"viewer": {"appId": "other"}}


# -- coverage and count ---------------------------------------------------------------------------------------------

def test_every_root_field_and_mutation_is_probed(schema: dict[str, Any]) -> None:
    """A root field or mutation added later fails here until it has an isolation probe above."""
    assert {f["name"] for f in schema["queryType"]["fields"]} == set(ROOT_PROBES)
    assert {f["name"] for f in schema["mutationType"]["fields"]} == set(MUTATION_PROBES)
    for enum, covered in (("AnalyticsSource", set(SOURCE_DIMENSIONS)), ("FilterEntity", set(FILTER_ENTITIES))):
        values = next(t for t in schema["types"] if t["name"] == enum)["enumValues"]
        assert {v["name"] for v in values} == covered, enum


def test_probe_count(store_kind: str) -> None:
    """Last in the module: how many requests probed isolation on this store (run the module whole)."""
    print(f"tenant isolation probes on {store_kind}: {PROBES[store_kind]}")
    assert PROBES[store_kind] >= 300
