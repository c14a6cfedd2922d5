"""The `replayql` command, run as a subprocess exactly as users run it, on real data dirs in tmp_path.

Covers `apps`, `keys`, `generate`, `import` and `serve` (on a real loopback port), including the commands that
share a data dir with a running server: key changes take effect at once, and an import that needs the store
the server holds fails with one clear line.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from starlette.testclient import TestClient

from conftest import T0, make_batch
from replayql.api.app import close_services, create_app, open_services
from replayql.config import Settings
from replayql.store.registry import KeyScope, SQLiteRegistry

REPLAYQL = Path(sys.executable).parent / "replayql"
TOKEN = re.compile(r"rq_[a-z2-7]{12}_[A-Za-z0-9]{43}")
SESSIONS_QUERY = "{ sessions(first: 500) { totalCount nodes { id } } }"


# --- helpers -----------------------------------------------------------------------------------------------


def cli_env(data_dir: Path | None = None) -> dict[str, str]:
    """The caller's environment without anything that would change where data goes or how output looks."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"REPLAYQL_DATA_DIR", "COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}}
    env["PYTHONUNBUFFERED"] = "1"
    if data_dir is not None:
        env["REPLAYQL_DATA_DIR"] = str(data_dir)
    return env


def run(cwd: Path, *args: str | Path, env_data_dir: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `replayql ARGS` to completion (in `cwd`, so a default ./replayql-data would land in tmp_path)."""
    return subprocess.run([str(REPLAYQL), *map(str, args)], cwd=cwd, env=cli_env(env_data_dir),
                          capture_output=True, text=True, timeout=timeout, check=False)


def ok(cwd: Path, *args: str | Path, env_data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = run(cwd, *args, env_data_dir=env_data_dir)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """A failed command: non-zero exit, nothing on stdout, exactly one line on stderr naming the problem."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """A running `replayql serve`; output goes to files so a chatty server can never block on a full pipe."""

    def __init__(self, cwd: Path, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        tag = f"serve-{self.port}"
        self.out_path, self.err_path = cwd / f"{tag}.out", cwd / f"{tag}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(REPLAYQL), "serve", "--data-dir", str(data_dir), "--port", str(self.port), *extra],
                cwd=cwd, env=cli_env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=self.base, timeout=10, trust_env=False)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode} before answering:\n{self.stderr}")
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if self.http.get("/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"serve did not answer /healthz within {timeout} s:\n{self.stderr}")

    def gql(self, key: str, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post("/graphql", json={"query": query, "variables": variables or {}},
                              headers={"authorization": f"token {key}"})

    def data(self, key: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query that must succeed; returns `data` (on failure, shows the server's log as well)."""
        response = self.gql(key, query, variables)
        if response.status_code != 200 or "errors" in response.json():
            time.sleep(0.5)  # let the server finish logging what went wrong
            pytest.fail(f"{response.status_code} {response.text}\nserver log:\n{self.stderr[-4000:]}")
        return response.json()["data"]

    def interrupt(self, timeout: float = 10) -> int:
        """Ctrl-C: SIGINT, then the exit code (killing it and failing if it does not exit in time)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"serve did not exit within {timeout} s of SIGINT:\n{self.stderr}")

    def kill(self) -> None:
        """Stop it whatever state it is in: SIGTERM first so it can flush its log, then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.http.close()


@contextmanager
def serving(cwd: Path, data_dir: Path, *extra: str) -> Iterator[Serve]:
    server = Serve(cwd, data_dir, *extra)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.kill()


def stored_sessions(data_dir: Path, app_id: str) -> tuple[int, set[str]]:
    """(totalCount, ids) of an app's sessions, read in-process through the real app on the closed store."""
    settings = Settings(data_dir=data_dir)
    services = open_services(settings)
    try:
        _, key = services.registry.create_key(app_id, KeyScope.READ)
        client = TestClient(create_app(settings, services))
        response = client.post("/graphql", json={"query": SESSIONS_QUERY}, headers={"authorization": f"token {key}"})
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        sessions = body["data"]["sessions"]
        return sessions["totalCount"], {node["id"] for node in sessions["nodes"]}
    finally:
        close_services(services)


def ndjson_facts(path: Path) -> tuple[int, int, set[str]]:
    """(batches, events, session ids) of an NDJSON file, read directly from its lines."""
    batches = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return len(batches), sum(len(b["events"]) for b in batches), {b["sessionId"] for b in batches}


# --- apps --------------------------------------------------------------------------------------------------


def test_apps_create_prints_only_the_id_and_list_shows_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert ok(tmp_path, "apps", "create", "shop", "--data-dir", data).stdout == "shop\n"
    assert ok(tmp_path, "apps", "create", "blog-2", "--data-dir", data).stdout == "blog-2\n"

    listed = ok(tmp_path, "apps", "list", "--data-dir", data).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["blog-2", "shop"]
    assert (data / "registry.sqlite").is_file()
    assert not (tmp_path / "replayql-data").exists()


@pytest.mark.parametrize("name", ["Bad Name", "-leading-dash", "a" * 64])
def test_apps_create_rejects_an_invalid_name(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    # "--" so that a name starting with "-" reaches the validation instead of the option parser.
    result = run(tmp_path, "apps", "create", "--data-dir", data, "--", name)
    assert_one_line_error(result, "invalid app id", repr(name))
    assert ok(tmp_path, "apps", "list", "--data-dir", data).stdout == ""


def test_apps_create_rejects_a_duplicate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(tmp_path, "apps", "create", "shop", "--data-dir", data)
    assert_one_line_error(run(tmp_path, "apps", "create", "shop", "--data-dir", data), "'shop'", "already exists")
    assert len(ok(tmp_path, "apps", "list", "--data-dir", data).stdout.splitlines()) == 1


def test_apps_origins_add_remove_and_allow_any_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert ok(tmp_path, "apps", "create", "shop", "--allow-origin", "https://Shop.example/",
              "--data-dir", data).stdout == "shop\n"
    assert ok(tmp_path, "apps", "origins", "shop", "--data-dir", data).stdout == "https://shop.example\n"
    added = ok(tmp_path, "apps", "origins", "shop", "--allow", "http://localhost:3000", "--data-dir", data)
    assert added.stdout == "https://shop.example\nhttp://localhost:3000\n"
    removed = ok(tmp_path, "apps", "origins", "shop", "--deny", "https://shop.example/", "--data-dir", data)
    assert removed.stdout == "http://localhost:3000\n"
    assert ok(tmp_path, "apps", "origins", "shop", "--any", "--data-dir", data).stdout == "(any origin)\n"
    assert_one_line_error(run(tmp_path, "apps", "origins", "shop", "--allow", "shop.example", "--data-dir", data),
                          "invalid origin 'shop.example'")
    assert_one_line_error(run(tmp_path, "apps", "origins", "ghost", "--data-dir", data), "no app 'ghost'")


# --- keys --------------------------------------------------------------------------------------------------


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(tmp_path, "apps", "create", "shop", "--data-dir", data)

    created = ok(tmp_path, "keys", "create", "--app", "shop", "--scope", "write", "--name", "ci", "--data-dir", data)
    secret = created.stdout.removesuffix("\n")
    assert created.stdout == secret + "\n" and TOKEN.fullmatch(secret), created.stdout
    assert secret not in created.stderr and "shop" in created.stderr  # the human note goes to stderr

    default = ok(tmp_path, "keys", "create", "--app", "shop", "--data-dir", data).stdout.strip()
    assert TOKEN.fullmatch(default) and default != secret

    with SQLiteRegistry(data / "registry.sqlite") as registry:
        write_key, read_key = registry.authenticate(secret), registry.authenticate(default)
    assert write_key is not None
    assert (write_key.app_id, write_key.scope, write_key.name) == ("shop", KeyScope.WRITE, "ci")
    assert read_key is not None and (read_key.app_id, read_key.scope, read_key.name) == ("shop", KeyScope.READ, None)

    listing = ok(tmp_path, "keys", "list", "--app", "shop", "--data-dir", data)
    for token in (secret, default):
        assert token not in listing.stdout and token.rsplit("_", 1)[1] not in listing.stdout
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert [(r[0], r[1], r[2], r[-1]) for r in rows] == [(write_key.id, "write", "ci", "active"),
                                                         (read_key.id, "read", "", "active")]

    revoked = ok(tmp_path, "keys", "revoke", write_key.id, "--data-dir", data)
    assert revoked.stdout == "" and write_key.id in revoked.stderr
    with SQLiteRegistry(data / "registry.sqlite") as registry:
        assert registry.authenticate(secret) is None
        assert registry.authenticate(default) is not None
    states = {line.split("\t")[0]: line.split("\t")[-1]
              for line in ok(tmp_path, "keys", "list", "--app", "shop", "--data-dir", data).stdout.splitlines()}
    assert states[write_key.id].startswith("revoked ") and states[read_key.id] == "active"

    # Revoking again, or a key that never existed, is an error rather than a silent success.
    assert_one_line_error(run(tmp_path, "keys", "revoke", write_key.id, "--data-dir", data), write_key.id)
    assert_one_line_error(run(tmp_path, "keys", "revoke", "zzzzzzzzzzzz", "--data-dir", data), "zzzzzzzzzzzz")


def test_keys_for_an_unknown_app_fail_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(tmp_path, "apps", "create", "shop", "--data-dir", data)
    assert_one_line_error(run(tmp_path, "keys", "create", "--app", "nope", "--data-dir", data), "'nope'", "app")
    assert_one_line_error(run(tmp_path, "keys", "list", "--app", "nope", "--data-dir", data), "'nope'", "app")
    assert ok(tmp_path, "keys", "list", "--app", "shop", "--data-dir", data).stdout == ""


def test_keys_create_rejects_an_unknown_scope(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(tmp_path, "apps", "create", "shop", "--data-dir", data)
    result = run(tmp_path, "keys", "create", "--app", "shop", "--scope", "root", "--data-dir", data)
    assert result.returncode != 0 and result.stdout == "" and "Traceback" not in result.stderr
    assert "root" in result.stderr
    assert ok(tmp_path, "keys", "list", "--app", "shop", "--data-dir", data).stdout == ""


def test_data_dir_from_environment(tmp_path: Path) -> None:
    env_dir, flag_dir = tmp_path / "from-env", tmp_path / "from-flag"
    assert ok(tmp_path, "apps", "create", "shop", env_data_dir=env_dir).stdout == "shop\n"
    secret = ok(tmp_path, "keys", "create", "--app", "shop", env_data_dir=env_dir).stdout.strip()
    assert TOKEN.fullmatch(secret)

    assert [line.split("\t")[0] for line in ok(tmp_path, "apps", "list", "--data-dir", env_dir).stdout.splitlines()
            ] == ["shop"]
    assert len(ok(tmp_path, "keys", "list", "--app", "shop", env_data_dir=env_dir).stdout.splitlines()) == 1
    assert not (tmp_path / "replayql-data").exists()

    # An explicit --data-dir wins over the environment.
    ok(tmp_path, "apps", "create", "blog", "--data-dir", flag_dir, env_data_dir=env_dir)
    assert ok(tmp_path, "apps", "list", "--data-dir", flag_dir).stdout.startswith("blog\t")
    assert [line.split("\t")[0] for line in ok(tmp_path, "apps", "list", env_data_dir=env_dir).stdout.splitlines()
            ] == ["shop"]


# --- generate and import -----------------------------------------------------------------------------------


def test_generate_writes_deterministic_ndjson(tmp_path: Path) -> None:
    first, again, other = tmp_path / "f.ndjson", tmp_path / "g.ndjson", tmp_path / "h.ndjson"
    result = ok(tmp_path, "generate", "--sessions", "20", "--out", first)
    assert result.stdout == ""
    ok(tmp_path, "generate", "--sessions", "20", "--out", again)
    ok(tmp_path, "generate", "--sessions", "20", "--seed", "2", "--out", other)

    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    lines = first.read_bytes().splitlines()
    batches = [orjson.loads(line) for line in lines]
    assert all(isinstance(b, dict) and b["appId"] == "demo" and b["events"] for b in batches)
    by_session: dict[str, list[int]] = {}
    for batch in batches:
        by_session.setdefault(batch["sessionId"], []).append(batch["seq"])
    assert len(by_session) == 20
    assert all(seqs == list(range(len(seqs))) for seqs in by_session.values())
    assert f"wrote {len(lines)} batches for 20 sessions" in result.stderr


def test_generate_needs_exactly_one_destination(tmp_path: Path) -> None:
    assert_one_line_error(run(tmp_path, "generate", "--sessions", "2"), "--out", "--data-dir")
    assert_one_line_error(run(tmp_path, "generate", "--sessions", "2", "--out", tmp_path / "f.ndjson",
                              "--data-dir", tmp_path / "data"), "--out", "--data-dir")
    assert not (tmp_path / "f.ndjson").exists()


def test_import_loads_a_file_and_is_idempotent(tmp_path: Path) -> None:
    file, data = tmp_path / "f.ndjson", tmp_path / "data"
    ok(tmp_path, "generate", "--sessions", "20", "--out", file)
    batches, events, session_ids = ndjson_facts(file)
    ok(tmp_path, "apps", "create", "demo", "--data-dir", data)

    result = ok(tmp_path, "import", file, "--data-dir", data)
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"stored {batches} batches ({events} events), 0 already stored, 0 rejected")

    again = ok(tmp_path, "import", file, "--data-dir", data)
    assert again.stderr.splitlines()[-1] == (
        f"stored 0 batches ({events} events), {batches} already stored, 0 rejected")

    assert stored_sessions(data, "demo") == (20, session_ids)


def test_import_reports_a_bad_line_by_number_and_stores_the_rest(tmp_path: Path) -> None:
    good, bad, data = tmp_path / "f.ndjson", tmp_path / "bad.ndjson", tmp_path / "data"
    ok(tmp_path, "generate", "--sessions", "20", "--out", good)
    batches, events, session_ids = ndjson_facts(good)
    lines = good.read_bytes().splitlines(keepends=True)
    broken = orjson.dumps(make_batch("s-broken", [{"type": "click", "selector": "a"}], sent_at=T0)) + b"\n"
    bad.write_bytes(b"".join([*lines[:2], broken, *lines[2:]]))  # the bad batch is line 3: an event without ts
    ok(tmp_path, "apps", "create", "demo", "--data-dir", data)

    result = run(tmp_path, "import", bad, "--data-dir", data)
    assert result.returncode == 1, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    reported = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert len(reported) == 1 and reported[0].startswith("line 3: ") and "ts" in reported[0], result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"stored {batches} batches ({events} events), 0 already stored, 1 rejected")

    count, stored = stored_sessions(data, "demo")
    assert (count, stored) == (20, session_ids) and "s-broken" not in stored


def test_import_of_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    result = run(tmp_path, "import", tmp_path / "missing.ndjson", "--data-dir", tmp_path / "data")
    assert result.returncode != 0 and result.stdout == "" and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_generate_loads_straight_into_a_store(tmp_path: Path) -> None:
    data, file = tmp_path / "data", tmp_path / "f.ndjson"
    ok(tmp_path, "generate", "--sessions", "20", "--app", "shop", "--out", file)
    batches, events, session_ids = ndjson_facts(file)

    result = ok(tmp_path, "generate", "--sessions", "20", "--app", "shop", "--data-dir", data)
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"stored {batches} batches ({events} events), 0 already stored, 0 rejected")
    assert ok(tmp_path, "apps", "list", "--data-dir", data).stdout.startswith("shop\t")  # created on the way
    assert stored_sessions(data, "shop") == (20, session_ids)


# --- serve -------------------------------------------------------------------------------------------------


def test_serve_demo_lifecycle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingested = make_batch("s-cli-http", [
        {"type": "page", "ts": T0, "url": "https://shop.example/cart"},
        {"type": "click", "ts": T0 + 1_000, "selector": "button#pay"},
        {"type": "click", "ts": T0 + 2_000, "selector": "button#pay"},
    ])
    session_query = 'query($id: ID!) { session(id: $id) { id pageCount clickCount durationMs } }'
    expected_session = {"id": "s-cli-http", "pageCount": 1, "clickCount": 2, "durationMs": 2_000}

    with serving(tmp_path, data, "--demo", "--demo-sessions", "50") as server:
        # The demo prints a ready-to-use key (on one line, not wrapped) and a curl example using it.
        key_lines = [line for line in server.stderr.splitlines() if "API key" in line]
        assert len(key_lines) == 1, server.stderr
        demo_key = TOKEN.search(key_lines[0])
        assert demo_key is not None, key_lines
        key = demo_key.group(0)
        assert any(line.strip().startswith("curl") and f"{server.base}/graphql" in line and key in line
                   for line in server.stderr.splitlines()), server.stderr
        ui_lines = [line for line in server.stderr.splitlines() if line.startswith("web UI: ")]
        assert ui_lines == [f"web UI: {server.base}/ (sign in with the key)"], server.stderr
        assert "<title>" in server.http.get("/").text  # the printed URL opens the UI

        sessions = server.data(key, SESSIONS_QUERY)["sessions"]
        assert sessions["totalCount"] == 50 and len(sessions["nodes"]) == 50
        assert server.data(key, "{ viewer { appId } }") == {"viewer": {"appId": "demo"}}

        # Keys made by the CLI on the same data dir work at once; a revoked one fails on the very next request.
        secret = ok(tmp_path, "keys", "create", "--app", "demo", "--scope", "read", "--data-dir", data).stdout.strip()
        viewer = server.data(secret, "{ viewer { appId keyId scopes } }")["viewer"]
        assert viewer["appId"] == "demo" and secret.startswith(f"rq_{viewer['keyId']}_")
        assert server.data(secret, "{ sessions(first: 1) { totalCount } }")["sessions"]["totalCount"] == 50
        ok(tmp_path, "keys", "revoke", viewer["keyId"], "--data-dir", data)
        refused = server.gql(secret, "{ sessions(first: 1) { totalCount } }")
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert server.gql(key, "{ viewer { appId } }").status_code == 200  # other keys are unaffected

        # A command that needs the store the server holds says so in one line.
        file = tmp_path / "f.ndjson"
        ok(tmp_path, "generate", "--sessions", "2", "--out", file)
        assert_one_line_error(run(tmp_path, "import", file, "--data-dir", data), "in use")
        assert_one_line_error(run(tmp_path, "generate", "--sessions", "2", "--data-dir", data), "in use")

        accepted = server.http.post("/v1/ingest", content=orjson.dumps(ingested),
                                    headers={"content-type": "application/json"})
        assert accepted.status_code == 200, accepted.text
        assert server.data(key, session_query, {"id": "s-cli-http"}) == {"session": expected_session}

        assert server.interrupt() == 0
        assert "Traceback" not in server.stderr and "Traceback" not in server.stdout

    # Restarted without --demo: the same keys and data, including what came in over HTTP.
    with serving(tmp_path, data) as server:
        assert server.data(key, "{ sessions(first: 1) { totalCount } }")["sessions"]["totalCount"] == 51
        assert server.data(key, session_query, {"id": "s-cli-http"}) == {"session": expected_session}
        assert server.gql(secret, "{ viewer { appId } }").status_code == 401  # still revoked

        # A second server on the same store refuses to start, in one line, and the first one is unharmed.
        second = Serve(tmp_path, data)
        try:
            code = second.proc.wait(30)
        finally:
            second.kill()
        assert code != 0 and "Traceback" not in second.stderr
        assert len(second.stderr.splitlines()) == 1 and "in use" in second.stderr, second.stderr
        assert server.http.get("/healthz").status_code == 200

        assert server.interrupt() == 0
        assert "Traceback" not in server.stderr

    # --demo on a store that already has apps loads nothing and prints no new key.
    with serving(tmp_path, data, "--demo", "--demo-sessions", "50") as server:
        assert TOKEN.search(server.stderr) is None, server.stderr
        assert "already has apps" in server.stderr
        assert server.data(key, "{ sessions(first: 1) { totalCount } }")["sessions"]["totalCount"] == 51
        assert [line.split("\t")[0] for line in ok(tmp_path, "apps", "list", "--data-dir", data).stdout.splitlines()
                ] == ["demo"]
        assert server.interrupt() == 0
        assert "Traceback" not in server.stderr
