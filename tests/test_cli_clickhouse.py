"""The `replayql` command on the ClickHouse store, run as a subprocess exactly as users run it.

Each subprocess opens its own chDB engine on a path in tmp_path (never the test process's `chdb_path`). chDB holds
its data path for the life of a process, so the commands run one after another, and `serve` runs last.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from test_cli import REPLAYQL, TOKEN, assert_one_line_error, cli_env, free_port, ndjson_facts, serving

SESSIONS_QUERY = "{ sessions(first: 50) { totalCount nodes { id } } }"
NO_URL = ("error: --store clickhouse needs --clickhouse-url (or REPLAYQL_CLICKHOUSE_URL), "
          "e.g. http://localhost:8123/replayql or chdb:///var/lib/replayql/chdb")
_STORE_ENV = ("REPLAYQL_STORE", "REPLAYQL_CLICKHOUSE_URL", "REPLAYQL_CLICKHOUSE_USER",
              "REPLAYQL_CLICKHOUSE_PASSWORD", "REPLAYQL_CLICKHOUSE_CLUSTER")


def env(**store_env: str) -> dict[str, str]:
    """The CLI environment with no store configured, plus `store_env` (REPLAYQL_* variables)."""
    out = {k: v for k, v in cli_env().items() if k not in _STORE_ENV}
    out.update(store_env)
    return out


def run(cwd: Path, *args: str | Path, **store_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPLAYQL), *map(str, args)], cwd=cwd, env=env(**store_env), capture_output=True,
                          text=True, timeout=60, check=False)


def ok(cwd: Path, *args: str | Path, **store_env: str) -> subprocess.CompletedProcess[str]:
    result = run(cwd, *args, **store_env)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_commands_and_serve_on_clickhouse(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path}/chdb"
    store = ("--store", "clickhouse", "--clickhouse-url", url)
    by_env = {"REPLAYQL_STORE": "clickhouse", "REPLAYQL_CLICKHOUSE_URL": url}

    assert ok(tmp_path, "apps", "create", "shop", *store).stdout == "shop\n"

    created = ok(tmp_path, "keys", "create", "--app", "shop", "--scope", "read", "--name", "ci", *store)
    secret = created.stdout.removesuffix("\n")
    assert created.stdout == secret + "\n" and TOKEN.fullmatch(secret), created.stdout  # only the secret
    key_id = secret.split("_")[1]
    assert key_id in created.stderr and secret not in created.stderr

    listing = ok(tmp_path, "keys", "list", "--app", "shop", *store).stdout
    assert [line.split("\t")[:3] + line.split("\t")[-1:] for line in listing.splitlines()] == [
        [key_id, "read", "ci", "active"]]
    assert secret.rsplit("_", 1)[1] not in listing

    # generate straight into ClickHouse; the same seed written to a file says what must be stored.
    file = tmp_path / "expected.ndjson"
    ok(tmp_path, "generate", "--sessions", "30", "--app", "shop", "--out", file)
    batches, events, session_ids = ndjson_facts(file)
    loaded = ok(tmp_path, "generate", "--sessions", "30", "--app", "shop", *store)
    assert loaded.stdout == ""
    assert loaded.stderr.splitlines()[-1] == (
        f"stored {batches} batches ({events} events), 0 already stored, 0 rejected")

    # The environment instead of flags reaches the same database.
    assert [line.split("\t")[0] for line in ok(tmp_path, "apps", "list", **by_env).stdout.splitlines()] == ["shop"]
    admin = ok(tmp_path, "keys", "create", "--app", "shop", "--scope", "admin", **by_env).stdout.strip()
    doomed = ok(tmp_path, "keys", "create", "--app", "shop", **by_env).stdout.strip()
    assert TOKEN.fullmatch(admin) and TOKEN.fullmatch(doomed)
    revoked = ok(tmp_path, "keys", "revoke", doomed.split("_")[1], **by_env)
    assert revoked.stdout == "" and doomed.split("_")[1] in revoked.stderr
    states = {line.split("\t")[0]: line.split("\t")[-1]
              for line in ok(tmp_path, "keys", "list", "--app", "shop", *store).stdout.splitlines()}
    assert states[key_id] == states[admin.split("_")[1]] == "active"
    assert states[doomed.split("_")[1]].startswith("revoked ")

    unused = tmp_path / "duckdb-data-dir"
    with serving(tmp_path, unused, *store) as server:
        sessions = server.data(secret, SESSIONS_QUERY)["sessions"]
        assert sessions["totalCount"] == 30
        assert {node["id"] for node in sessions["nodes"]} == session_ids
        assert server.data(admin, "{ viewer { appId scopes } }")["viewer"]["appId"] == "shop"
        refused = server.gql(doomed, "{ viewer { appId } }")
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        assert server.interrupt() == 0
        assert "Traceback" not in server.stderr and "Traceback" not in server.stdout

    # Nothing of the embedded store was created on the way.
    assert not unused.exists() and not (tmp_path / "replayql-data").exists()


def test_serve_takes_the_store_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"chdb://{tmp_path}/chdb?database=from_env"
    by_env = {"REPLAYQL_STORE": "clickhouse", "REPLAYQL_CLICKHOUSE_URL": url}
    ok(tmp_path, "generate", "--sessions", "3", "--app", "shop", **by_env)
    secret = ok(tmp_path, "keys", "create", "--app", "shop", **by_env).stdout.strip()

    for name, value in by_env.items():  # `serving` passes this process's environment on to `replayql serve`
        monkeypatch.setenv(name, value)
    with serving(tmp_path, tmp_path / "unused") as server:  # no store flags: the environment decides
        assert "--store" not in server.proc.args
        assert server.data(secret, "{ sessions(first: 1) { totalCount } }")["sessions"]["totalCount"] == 3
        assert server.interrupt() == 0
        assert "Traceback" not in server.stderr
    assert not (tmp_path / "unused").exists()


def test_clickhouse_without_a_url_is_one_clear_error(tmp_path: Path) -> None:
    assert assert_one_line_error(run(tmp_path, "apps", "list", "--store", "clickhouse")) == NO_URL
    assert assert_one_line_error(run(tmp_path, "keys", "create", "--app", "shop", REPLAYQL_STORE="clickhouse")
                                 ) == NO_URL
    assert assert_one_line_error(run(tmp_path, "serve", "--port", "1", REPLAYQL_STORE="clickhouse")) == NO_URL
    assert list(tmp_path.iterdir()) == []


def test_a_database_name_that_is_no_identifier_is_one_clear_error(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path}/chdb?database=my-shop"
    line = assert_one_line_error(run(tmp_path, "apps", "list", "--store", "clickhouse", "--clickhouse-url", url))
    assert line == (f"error: cannot use ClickHouse at {url}: 'my-shop' is not a valid ClickHouse identifier "
                    "(letters, digits and _ only)")


def test_an_unreachable_server_is_reported_without_its_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    for args in (["--clickhouse-url", f"http://bob:hunter2pw@127.0.0.1:{port}/shop"],
                 ["--clickhouse-url", f"http://127.0.0.1:{port}/shop", "--clickhouse-user", "bob",
                  "--clickhouse-password", "hunter2pw"]):
        result = run(tmp_path, "apps", "list", "--store", "clickhouse", *args)
        assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
        assert "hunter2pw" not in result.stderr
        last = result.stderr.splitlines()[-1]
        assert last.startswith(f"error: cannot use ClickHouse at http://{'bob:***@' if '@' in args[1] else ''}"
                               f"127.0.0.1:{port}/shop: "), last
        assert "Connection refused" in last
