"""The real `replayql serve` process: its JSON log lines carry the request id of every answer and no secret, and
SIGTERM under concurrent ingestion stops it cleanly (exit 0) with every acknowledged batch stored.

The helpers that run the CLI and the server, build the data and read it back through the API are crash_scenario's.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from crash_scenario import APP_ID, STORES, Api, Server, SessionPlan, build_session, cli, free_port, verify

JSON = {"content-type": "application/json"}
LOG_FIELDS = {"ts", "level", "logger", "message", "request_id"}


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.01)


@pytest.mark.parametrize("store", STORES)
def test_json_logs_name_the_request_id_of_every_answer_and_no_secret(store: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cli(store, data, "apps", "create", APP_ID)
    key = cli(store, data, "keys", "create", "--app", APP_ID, "--scope", "read")
    not_a_key = "rq_aaaaaaaaaaaa_" + "B" * 43  # shaped like a key: refused with 401
    metrics_token = "scrape-7b1d2c9e"
    password = "pw-5e0c1f"  # chDB connects without it; the settings the server logs hold it
    store_secrets = ["--clickhouse-user", "bob", "--clickhouse-password", password] if store == "clickhouse" else []
    server = Server(store, data, free_port(), "--log-format", "json", "--log-level", "info",
                    "--metrics-token", metrics_token, *store_secrets)
    viewer = {"query": "{ viewer { appId } }"}
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=30.0, trust_env=False) as http:
            answers = [
                http.get("/healthz", headers={"x-request-id": "probe-1"}),
                http.post("/graphql", json=viewer, headers={"authorization": f"token {key}"}),
                http.post("/graphql", json=viewer, headers={"authorization": f"token {not_a_key}"}),
                http.post("/v1/ingest", content=b'{"appId": "demo"}', headers=JSON),
                http.post("/v1/ingest", content=build_session("s-log", 1, seed=1).batches[0].body, headers=JSON),
                http.get("/metrics", headers={"authorization": f"Bearer {metrics_token}"}),
                http.get("/metrics"),
            ]
        exit_code = server.stop(signal.SIGTERM)
    finally:
        server.ensure_stopped()
    assert [a.status_code for a in answers] == [200, 200, 401, 400, 200, 200, 401]
    assert exit_code == 0

    log = server.log_path.read_text()
    lines = [orjson.loads(line) for line in log.splitlines()]  # every line is one JSON object
    assert all(line.keys() >= LOG_FIELDS for line in lines), [line for line in lines if LOG_FIELDS - line.keys()]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert all(line["request_id"] for line in access)
    by_id = {line["request_id"]: line for line in access}
    for answer in answers:
        logged = by_id[answer.headers["x-request-id"]]
        assert (logged["method"], logged["path"], logged["status"]) == (
            answer.request.method, answer.request.url.path, answer.status_code)
    assert answers[0].headers["x-request-id"] == "probe-1"
    assert [line["message"] for line in lines if line["logger"] == "uvicorn.error"][-1].startswith("Finished")
    started = [line["message"] for line in lines if line["logger"] == "replayql.cli"]
    assert len(started) == 1 and "Settings(data_dir=" in started[0], started
    assert ("ClickHouseConfig(url='chdb://" in started[0]) == (store == "clickhouse"), started
    for secret in (key, not_a_key, metrics_token, password):
        assert secret not in log


class Sender:
    """One client: sessions' batches in order, one request at a time, each resent after a 503 (busy: nothing of
    it was kept) until it is answered, until the server stops taking connections or answers anything but 200
    `stored`. Each session's acknowledged batches are a prefix of its batches."""

    def __init__(self, base_url: str, name: str) -> None:
        self.base_url = base_url
        self.name = name
        self.plans: list[SessionPlan] = []
        self.acked: dict[str, int] = {}  # session id -> batches acknowledged
        self.in_flight = False
        self.ended = ""  # how the last request went
        self.thread = threading.Thread(target=self._run, name=f"sender-{name}", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60.0, trust_env=False) as http:
            for n in itertools.count():
                plan = build_session(f"{self.name}-s{n}", 6, seed=11)
                self.plans.append(plan)
                for batch in plan.batches:
                    if not self._send(http, batch.body):
                        return
                    self.acked[plan.session_id] = batch.seq + 1

    def _send(self, http: httpx.Client, body: bytes) -> bool:
        response = self._post(http, body)
        while response is not None and response.status_code == 503:
            time.sleep(0.05)
            response = self._post(http, body)
        if response is None:
            return False
        if response.status_code != 200 or response.json()["outcome"] != "stored":
            self.ended = f"{response.status_code} {response.text[:300]}"
            return False
        return True

    def _post(self, http: httpx.Client, body: bytes) -> httpx.Response | None:
        """The answer, or None when the server closed the connection or no longer listens."""
        self.in_flight = True
        try:
            return http.post("/v1/ingest", content=body, headers=JSON)
        except httpx.TransportError as exc:
            self.ended = type(exc).__name__
            return None
        finally:
            self.in_flight = False

    def acknowledged(self) -> list[SessionPlan]:
        """The sessions with acknowledged batches, cut to those batches."""
        return [SessionPlan(p.session_id, p.batches[:self.acked[p.session_id]]) for p in self.plans
                if p.session_id in self.acked]


def acked(senders: list[Sender]) -> int:
    return sum(sum(s.acked.values()) for s in senders)


@pytest.mark.parametrize("store", STORES)
def test_sigterm_under_load_stores_every_acknowledged_batch_and_exits_0(store: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cli(store, data, "apps", "create", APP_ID)  # before the server: chDB allows one process per path
    key = cli(store, data, "keys", "create", "--app", APP_ID, "--scope", "read")
    server = Server(store, data, free_port())
    senders = [Sender(server.base_url, f"t{n}") for n in range(3)]
    facts: dict[str, Any] = {}
    try:
        server.start()
        for sender in senders:
            sender.thread.start()
        wait_for(lambda: acked(senders) >= 30 or any(s.ended for s in senders), "30 acknowledged batches")
        facts.update(acked_before=acked(senders), in_flight=sum(s.in_flight for s in senders))
        exit_code = server.stop(signal.SIGTERM)
        for sender in senders:
            sender.thread.join(60)
        facts.update(acked_after=acked(senders), ended=[s.ended for s in senders], log=server.log_tail())
        server.start()  # on the same store: what does it hold?
        api = Api(server, key)
        try:
            problems = verify(api, [plan for s in senders for plan in s.acknowledged()])
        finally:
            api.close()
        server.interrupt()
    finally:
        server.ensure_stopped()
    assert facts["acked_before"] >= 30, facts
    assert exit_code == 0, facts
    # no request was refused: each sender stopped because the server closed its connection or stopped listening
    assert all(s.ended in ("ConnectError", "RemoteProtocolError", "ReadError") for s in senders), facts
    assert "Traceback" not in facts["log"], facts
    assert problems == [], (problems, facts)
