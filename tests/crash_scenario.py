"""Crash safety: concurrent clients ingest over HTTP while `replayql serve` is killed with SIGKILL and restarted.

Shared by tests/test_crash_safety.py (asserts) and bench/ingest_crash.py (reports); it asserts nothing itself.
`run_scenario` returns a `Report` whose `problems` list every way the stored data differs from what was
acknowledged; a broken run (a server that does not come back, a refused batch) raises `ScenarioError`.

How it goes: `replayql apps create` and `keys create` run first (chDB allows one process per path), then the
server starts on a free loopback port. Each client keeps a few sessions open and sends their batches in order
(seq 0, 1, ...), resending the same body until it is answered 200; a connection error or a 503 means the server
is down or restarting. Now and then a client sends an acknowledged batch once more, as a browser that lost the
answer would; that must be answered "duplicate". Meanwhile the server is SIGKILLed `kills` times at random
moments (seeded), each time restarted on the same data dir and port. Clients open new sessions until the last
kill, so every kill lands in traffic, then finish what they have open. The server is stopped with SIGINT,
started once more, and the stored data is read back through the GraphQL API with a read key.

Expectations come from how the batches are built, never from the server. A batch's clicks are each followed
25 ms later by a network request (not dead), no error comes within a second after a click (no error click), every
click has its own selector (no rage click), and sentAt is over 1.4 s after the last click, so no click is pending
when the batch ends and no later batch can judge it, whatever clock-skew shift the server applies to a resend.
So no frustration rows are derived, and a session's stored events are exactly its non-recording events.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

from conftest import T0, make_batch

APP_ID = "demo"
STORES = ("duckdb", "clickhouse")
PAGE = 500  # the API's largest page
_RESEND_WAIT_S = (0.05, 0.15)  # a client's pause before resending: the server is down or restarting
_BATCH_SPACING_MS = 2_000
_SHOWN_PROBLEMS = 30


class ScenarioError(Exception):
    """The scenario could not run to its end (a server that does not come back, a batch refused)."""


# -- the data -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentBatch:
    """One batch as sent (the body, resent byte for byte) and what the store must hold of it."""

    session_id: str
    seq: int
    body: bytes
    rows: tuple[tuple[int, str], ...]  # (idx, kind) of each non-recording event: its row id is session/seq/idx
    recording: tuple[dict[str, Any], ...]  # the rrweb events, as sent


@dataclass(frozen=True)
class SessionPlan:
    session_id: str
    batches: tuple[SentBatch, ...]

    @property
    def rows(self) -> int:
        return sum(len(b.rows) for b in self.batches)

    @property
    def recording_events(self) -> int:
        return sum(len(b.recording) for b in self.batches)


def _rrweb(ts: int, tag: str, rng: random.Random) -> dict[str, Any]:
    """A small incremental rrweb event (mutation, mouse move, click or scroll) tagged `seq/n` to be found again."""
    source = rng.choice((0, 1, 2, 3))
    data: dict[str, Any] = {"source": source, "tag": tag}
    if source == 0:
        data.update(adds=[], removes=[], texts=[{"id": rng.randrange(1, 500), "value": "ok"}], attributes=[])
    elif source == 1:
        data["positions"] = [{"x": rng.randrange(1440), "y": rng.randrange(900), "id": 4, "timeOffset": 0}]
    elif source == 2:
        data.update(type=2, id=rng.randrange(1, 500), x=rng.randrange(1440), y=rng.randrange(900))
    else:
        data.update(id=1, x=0, y=rng.randrange(4000))
    return {"type": 3, "timestamp": ts, "data": data}


def _snapshot(ts: int, seq: int) -> list[dict[str, Any]]:
    """The meta and full snapshot a recording starts with."""
    node = {"type": 0, "childNodes": [{"type": 2, "tagName": "html", "attributes": {}, "childNodes": [], "id": 2}],
            "id": 1}
    return [{"type": 4, "timestamp": ts, "data": {"href": "https://shop.example/", "width": 1440, "height": 900,
                                                   "tag": f"{seq}/meta"}},
            {"type": 2, "timestamp": ts + 1, "data": {"node": node, "initialOffset": {"top": 0, "left": 0},
                                                       "tag": f"{seq}/snapshot"}}]


def _clicks(base: int, seq: int, rng: random.Random) -> list[dict[str, Any]]:
    """0-2 clicks in [base+100, base+150], each answered by a network request 25 ms later (so never dead)."""
    out: list[dict[str, Any]] = []
    for n in range(rng.randrange(3)):
        ts = base + 100 + 50 * n
        out.append({"type": "click", "ts": ts, "selector": f"button#step-{seq}-{n}", "text": "Next",
                    "x": rng.randrange(1440), "y": rng.randrange(900)})
        out.append({"type": "network", "ts": ts + 25, "method": rng.choice(("GET", "POST")),
                    "url": f"https://api.shop.example/step/{seq}/{n}", "status": rng.choice((200, 201, 404, 502)),
                    "durationMs": rng.randrange(5, 900), "requestBytes": 120, "responseBytes": 800})
    return out


def _middle(base: int, seq: int, session_id: str, rng: random.Random) -> list[dict[str, Any]]:
    """Console, input, custom, vital and identify events in [base+300, base+600]."""
    out: list[dict[str, Any]] = [
        {"type": "console", "ts": base + 300 + n, "level": rng.choice(("log", "info", "warn", "error")),
         "message": f"step {seq} message {n}"} for n in range(rng.randrange(3))]
    if rng.random() < 0.4:
        out.append({"type": "input", "ts": base + 350, "selector": "input[name=q]"})
    out.extend({"type": "custom", "ts": base + 400 + n, "name": rng.choice(("Add To Cart", "Search", "Step Done")),
                "properties": {"step": seq, "n": n, "total": round(rng.uniform(1, 200), 2)}}
               for n in range(rng.randrange(3)))
    if rng.random() < 0.5:
        out.append({"type": "vital", "ts": base + 500, "name": rng.choice(("LCP", "FCP", "CLS", "INP", "TTFB")),
                    "value": round(rng.uniform(0.05, 5000), 2)})
    if seq == 1 and rng.random() < 0.5:
        user = f"u-{session_id}"
        out.append({"type": "identify", "ts": base + 600, "userId": user,
                    "traits": {"name": f"User {session_id}", "email": f"{user}@example.com", "plan": "pro"}})
    return out


def _batch_events(session_id: str, seq: int, base: int, rng: random.Random) -> list[dict[str, Any]]:
    """The events of one batch, in time order (every ts distinct, so the server's order is this order)."""
    events: list[dict[str, Any]] = []
    if seq == 0 or rng.random() < 0.3:
        events.append({"type": "page", "ts": base, "url": f"https://shop.example/step/{seq}?utm_source=crash",
                       "title": f"Step {seq}", "referrer": "https://www.google.com/"})
    events += _clicks(base, seq, rng) + _middle(base, seq, session_id, rng)
    rrweb = _snapshot(base + 700, seq) if seq == 0 else []
    rrweb += [_rrweb(base + 710 + n, f"{seq}/{n}", rng) for n in range(rng.choice((0, 0, 1, 2, 3)))]
    events += [{"type": "recording", "ts": r["timestamp"], "data": r} for r in rrweb]
    if rng.random() < 0.3:  # 1.1 s after the last click: too late to make it an error click
        events.append({"type": "error", "ts": base + 1_300, "errorType": "TypeError",
                       "message": f"Cannot read properties of undefined (reading 'step{seq % 3}')",
                       "stack": "TypeError: boom\n    at next (https://shop.example/static/app.js:10:5)",
                       "handled": rng.random() < 0.5})
    if not events:
        events.append({"type": "custom", "ts": base + 400, "name": "Heartbeat"})
    return events


def build_session(session_id: str, batches: int, seed: int) -> SessionPlan:
    """A session's batches, the same for the same id, count and seed."""
    rng = random.Random(f"{seed}:{session_id}")
    start = T0 + rng.randrange(0, 3_600_000)
    sent: list[SentBatch] = []
    for seq in range(batches):
        base = start + seq * _BATCH_SPACING_MS
        events = _batch_events(session_id, seq, base, rng)
        body = orjson.dumps(make_batch(session_id, events, seq=seq, app_id=APP_ID, sent_at=base + 1_600))
        rows = tuple((idx, e["type"]) for idx, e in enumerate(events) if e["type"] != "recording")
        recording = tuple(e["data"] for e in events if e["type"] == "recording")
        sent.append(SentBatch(session_id, seq, body, rows, recording))
    return SessionPlan(session_id, tuple(sent))


# -- the server ------------------------------------------------------------------------------------------------


def replayql_exe() -> str:
    """The `replayql` console script beside the running interpreter."""
    return str(Path(sys.executable).parent / "replayql")


def store_args(store: str, data_dir: Path) -> list[str]:
    if store == "duckdb":
        return ["--data-dir", str(data_dir)]
    if store == "clickhouse":
        return ["--store", "clickhouse", "--clickhouse-url", f"chdb://{data_dir / 'chdb'}", "--data-dir",
                str(data_dir)]
    raise ValueError(f"unknown store {store!r}; one of {', '.join(STORES)}")


def cli_env() -> dict[str, str]:
    """The environment without REPLAYQL_* settings, so only the flags say where the data goes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAYQL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(store: str, data_dir: Path, *args: str) -> str:
    """Run one `replayql` command on the store; its stdout."""
    command = [replayql_exe(), *args, *store_args(store, data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=120, check=False)
    if done.returncode != 0:
        raise ScenarioError(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`replayql serve` on one port and data dir, started again after each kill; output appends to one log.
    `serve_args` come after the defaults (the last --log-level given wins)."""

    def __init__(self, store: str, data_dir: Path, port: int, *serve_args: str) -> None:
        self.command = [replayql_exe(), "serve", *store_args(store, data_dir), "--port", str(port),
                        "--log-level", "warning", *serve_args]
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> float:
        """Start and wait until /healthz answers 200; the seconds that took."""
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=cli_env())
        with httpx.Client(base_url=self.base_url, timeout=2.0, trust_env=False) as http:
            while time.monotonic() - started < timeout_s:
                if self.process.poll() is not None:
                    raise ScenarioError(f"the server exited with {self.process.returncode} on start:\n"
                                        f"{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):  # not listening yet
                    if http.get("/healthz").status_code == 200:
                        return time.monotonic() - started
                time.sleep(0.05)
        raise ScenarioError(f"the server did not answer /healthz within {timeout_s:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight is cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def interrupt(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C (SIGINT): a clean stop; its exit code."""
        return self.stop(signal.SIGINT, timeout_s)

    def stop(self, sig: signal.Signals, timeout_s: float = 60.0) -> int:
        """A clean stop by `sig` (SIGINT, SIGTERM); the exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
            raise ScenarioError(f"the server did not exit within {timeout_s:.0f} s of {sig.name}:\n"
                                f"{self.log_tail()}") from None

    def state(self) -> str:
        code = None if self.process is None else self.process.poll()
        return "the server is running" if code is None else f"the server exited with {code}"

    def check_alive(self) -> None:
        """A server that stopped when nobody killed it is a failure in itself."""
        if self.process is not None and self.process.poll() is not None:
            raise ScenarioError(f"{self.state()} by itself:\n{self.log_tail()}")

    def errors(self, limit: int = 10) -> list[str]:
        """The exceptions the server logged (the last line of each traceback), with how often."""
        lines = self.log_tail(chars=50_000_000).splitlines()
        found: Counter[str] = Counter()
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                last = next((x for x in lines[i + 1:] if x and not x.startswith(" ")), "(cut off)")
                found[last.strip()[:300]] += 1
        return [f"{n}x {message}" for message, n in found.most_common(limit)]

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def log_tail(self, chars: int = 4_000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


# -- the clients -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    store: str
    kills: int = 5
    clients: int = 6
    open_sessions: int = 2  # sessions each client sends interleaved
    batches_per_session: int = 8
    seed: int = 1
    kill_delay_s: tuple[float, float] = (0.3, 1.5)  # uptime before each kill, drawn uniformly
    kills_after_first_ack: float = 0.75  # the share of uptimes counted from the first acknowledged batch
    first_ack_timeout_s: float = 60.0  # a restarted server that acknowledges nothing this long is broken
    late_resend_share: float = 0.05  # after an acknowledgement, how often an acknowledged batch is sent again
    max_sessions_per_client: int = 1_000  # a bound on the data, should the kills take very long
    finish_timeout_s: float = 120.0  # for the clients to finish their open sessions after the last kill


@dataclass
class Traffic:
    """What the clients did; shared by their threads under `lock`."""

    requests: int = 0
    acked: int = 0
    resends: int = 0
    in_flight: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    late_resends: int = 0  # acknowledged batches sent again
    late_outcomes: Counter[str] = field(default_factory=Counter)
    retry_causes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Clients:
    """`config.clients` threads, each sending sessions until told to stop opening new ones."""

    def __init__(self, config: Config, base_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self.traffic = Traffic()
        self.plans: list[SessionPlan] = []
        self.stop_opening = threading.Event()
        self.abort = threading.Event()
        self.errors: list[str] = []
        self.problems: list[str] = []  # answers that show data stored twice
        self._threads = [threading.Thread(target=self._run, args=(n,), name=f"crash-client-{n}", daemon=True)
                         for n in range(config.clients)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def running(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def join(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.running() == 0

    def wait_for_ack(self, acked: int, timeout_s: float, server: Server) -> None:
        """Wait until more than `acked` batches are acknowledged (at once if no client is left sending)."""
        deadline = time.monotonic() + timeout_s
        while self.traffic.acked <= acked and self.running() and not self.abort.is_set():
            server.check_alive()
            if time.monotonic() > deadline:
                raise ScenarioError(f"no batch acknowledged within {timeout_s:.0f} s of a start "
                                    f"({self.traffic.in_flight} requests open):\n{server.log_tail()}")
            time.sleep(0.01)

    def _run(self, client: int) -> None:
        rng = random.Random(f"{self.config.seed}:client:{client}")
        done: list[SentBatch] = []
        try:
            with httpx.Client(base_url=self.base_url, timeout=30.0, trust_env=False) as http:
                for batch in self._interleaved(client):
                    outcome = self._send_until_acked(http, batch)
                    with self.traffic.lock:
                        self.traffic.acked += 1
                        self.traffic.outcomes[outcome] += 1
                    done.append(batch)
                    if rng.random() < self.config.late_resend_share:
                        self._resend_late(http, rng.choice(done))
        except Exception as exc:  # reported by run_scenario; the other clients stop too
            self.errors.append(f"client {client}: {exc}")
            self.abort.set()

    def _resend_late(self, http: httpx.Client, batch: SentBatch) -> None:
        """Send an acknowledged batch again, as a browser that lost the answer would: it must be a duplicate."""
        outcome = self._send_until_acked(http, batch)
        with self.traffic.lock:
            self.traffic.late_resends += 1
            self.traffic.late_outcomes[outcome] += 1
        if outcome != "duplicate":
            self.problems.append(f"{batch.session_id} seq {batch.seq}: acknowledged before, sent again, answered "
                                 f"{outcome!r} instead of 'duplicate'")

    def _sessions(self, client: int) -> Iterator[SessionPlan]:
        for n in range(self.config.max_sessions_per_client):
            if self.stop_opening.is_set() or self.abort.is_set():
                return
            plan = build_session(f"c{client}-s{n}", self.config.batches_per_session, self.config.seed)
            with self.traffic.lock:
                self.plans.append(plan)
            yield plan

    def _interleaved(self, client: int) -> Iterator[SentBatch]:
        """Batches of `open_sessions` sessions in turn, each session's in seq order; a finished one is replaced."""
        sessions = self._sessions(client)
        open_: list[Iterator[SentBatch]] = []
        while True:
            while len(open_) < self.config.open_sessions:
                plan = next(sessions, None)
                if plan is None:
                    break
                open_.append(iter(plan.batches))
            if not open_:
                return
            for batches in list(open_):
                batch = next(batches, None)
                if batch is None:
                    open_.remove(batches)
                else:
                    yield batch

    def _send_until_acked(self, http: httpx.Client, batch: SentBatch) -> str:
        """Send the same body until it is answered 200; the outcome (stored or duplicate)."""
        rng = random.Random(f"{batch.session_id}/{batch.seq}")
        for attempt in itertools.count():
            if self.abort.is_set():
                raise ScenarioError("stopped: another client failed")
            answer = self._post(http, batch, resend=attempt > 0)
            if isinstance(answer, httpx.Response):
                return self._outcome(batch, answer.json())
            with self.traffic.lock:
                self.traffic.retry_causes[answer] += 1
            time.sleep(rng.uniform(*_RESEND_WAIT_S))
        raise AssertionError("unreachable")

    def _post(self, http: httpx.Client, batch: SentBatch, resend: bool) -> httpx.Response | str:
        """Send once: the 200 answer, or why the batch must be resent. A refusal raises."""
        with self.traffic.lock:
            self.traffic.requests += 1
            self.traffic.resends += resend
            self.traffic.in_flight += 1
        try:
            response = http.post("/v1/ingest", content=batch.body, headers={"content-type": "application/json"})
        except httpx.TransportError as exc:  # down, restarting, or killed while answering
            return type(exc).__name__
        finally:
            with self.traffic.lock:
                self.traffic.in_flight -= 1
        if response.status_code == 503:  # the server is behind or could not store it: retry later
            return "503"
        if response.status_code != 200:
            raise ScenarioError(f"batch {batch.session_id}/{batch.seq} refused: {response.status_code} "
                                f"{response.text[:500]}")
        return response

    def _outcome(self, batch: SentBatch, answer: dict[str, Any]) -> str:
        expected = {"sessionId": batch.session_id, "seq": batch.seq, "events": len(batch.rows) + len(batch.recording)}
        got = {k: answer.get(k) for k in expected}
        if got != expected or answer.get("outcome") not in ("stored", "duplicate"):
            raise ScenarioError(f"batch {batch.session_id}/{batch.seq}: unexpected answer {answer}")
        return str(answer["outcome"])


# -- verification through the API -----------------------------------------------------------------------------

_SESSION_FIELDS = f"""id eventCount hasRecording
  events(first: {PAGE}, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ id kind }} }}"""
_EVENTS_QUERY = f"query ($id: ID!, $after: String) {{ session(id: $id) {{ {_SESSION_FIELDS} }} }}"
# One session per request: DuckDBStore.recording_payload shares one zstd decompressor between reader threads, and
# parallel recording reads then fail or crash the server; that is a read bug, not what this scenario checks.
_RECORDING_QUERY = f"""query ($id: ID!, $after: String) {{ session(id: $id) {{
  recording(first: {PAGE}, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes }} }} }}"""
_CHUNK = 20  # sessions per request for their events


class Api:
    """GraphQL with a read key against the final clean server run."""

    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=120.0, trust_env=False,
                                 headers={"authorization": f"token {key}"})

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        except httpx.TransportError as exc:
            raise ScenarioError(f"GraphQL: {exc!r}; {self.server.state()}:\n{self.server.log_tail()}") from None
        body = response.json()
        if response.status_code != 200 or "errors" in body:
            raise ScenarioError(f"GraphQL {response.status_code}: {body.get('errors')}\n{self.server.log_tail()}")
        return dict(body["data"])

    def sessions(self, ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """Each session with all its event ids and recording events."""
        found: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            params = ", ".join(f"$s{n}: ID!" for n in range(len(chunk)))
            fields = " ".join(f"s{n}: session(id: $s{n}) {{ {_SESSION_FIELDS} }}" for n in range(len(chunk)))
            data = self.data(f"query ($after: String, {params}) {{ {fields} }}",
                             {f"s{n}": sid for n, sid in enumerate(chunk)})
            found.update((sid, data[f"s{n}"]) for n, sid in enumerate(chunk))
        for session in found.values():
            if session is not None:
                session["events"] = self._rest(_EVENTS_QUERY, session["id"], "events", session["events"])
                session["recording"] = self._rest(_RECORDING_QUERY, session["id"], "recording")
        return found

    def _rest(self, query: str, session_id: str, name: str, page: dict[str, Any] | None = None) -> dict[str, Any]:
        """A session's connection with the nodes of every page, from `page` (the first) or from the start."""
        if page is None:
            page = self.data(query, {"id": session_id})["session"][name]
        whole = {"totalCount": page["totalCount"], "nodes": list(page["nodes"])}
        while page["pageInfo"]["hasNextPage"]:
            page = self.data(query, {"id": session_id, "after": page["pageInfo"]["endCursor"]})["session"][name]
            whole["nodes"] += page["nodes"]
        return whole

    def close(self) -> None:
        self.http.close()


def _expected_rows(plan: SessionPlan) -> dict[str, str]:
    """Row id (session/seq/idx) -> kind of every event the session must hold."""
    return {f"{b.session_id}/{b.seq}/{idx}": kind for b in plan.batches for idx, kind in b.rows}


def _seq_of(row_id: str) -> int:
    return int(row_id.rsplit("/", 2)[1])


def check_events(plan: SessionPlan, stored: dict[str, Any]) -> list[str]:
    """The session summary's count, the rows' count, and each row exactly once, per (session, seq)."""
    sid, expected = plan.session_id, _expected_rows(plan)
    problems = []
    if stored["eventCount"] != len(expected):
        problems.append(f"{sid}: summary eventCount {stored['eventCount']}, sent {len(expected)} events")
    if stored["events"]["totalCount"] != len(expected):
        problems.append(f"{sid}: {stored['events']['totalCount']} event rows, sent {len(expected)} events")
    ids = Counter(node["id"] for node in stored["events"]["nodes"])
    per_seq_stored = Counter(_seq_of(i) for i in ids.elements())
    per_seq_sent = Counter(_seq_of(i) for i in expected)
    for seq in sorted(per_seq_stored.keys() | per_seq_sent.keys()):
        if per_seq_stored[seq] != per_seq_sent[seq]:
            problems.append(f"{sid} seq {seq}: {per_seq_stored[seq]} rows stored, {per_seq_sent[seq]} sent")
    if twice := sorted(i for i, n in ids.items() if n > 1):
        problems.append(f"{sid}: rows stored more than once: {twice[:5]}")
    if missing := sorted(expected.keys() - ids.keys()):
        problems.append(f"{sid}: rows missing: {missing[:5]}")
    kinds = {node["id"]: node["kind"] for node in stored["events"]["nodes"]}
    if wrong := sorted(i for i in kinds if expected.get(i) != kinds[i]):
        problems.append(f"{sid}: rows not sent as such (id, kind): {[(i, kinds[i]) for i in wrong[:5]]}")
    return problems


def _tag(rrweb: Any) -> str | None:
    """The `seq/n` tag the scenario put into an rrweb event's data."""
    data = rrweb.get("data") if isinstance(rrweb, dict) else None
    return data.get("tag") if isinstance(data, dict) else None


def check_recording(plan: SessionPlan, stored: dict[str, Any]) -> list[str]:
    """One chunk per batch with recording events: each rrweb event back exactly once, as sent."""
    sid = plan.session_id
    sent = {e["data"]["tag"]: e for b in plan.batches for e in b.recording}
    nodes = stored["recording"]["nodes"]
    problems = []
    if stored["recording"]["totalCount"] != len(sent) or len(nodes) != len(sent):
        problems.append(f"{sid}: recording has {stored['recording']['totalCount']} events ({len(nodes)} read), "
                        f"sent {len(sent)}")
    if stored["hasRecording"] != bool(sent):
        problems.append(f"{sid}: hasRecording {stored['hasRecording']}, sent {len(sent)} recording events")
    tags = Counter(_tag(node) for node in nodes)
    if twice := sorted(str(t) for t, n in tags.items() if n > 1):
        problems.append(f"{sid}: recording events stored more than once (seq/n): {twice[:5]}")
    if missing := sorted(sent.keys() - tags.keys()):
        problems.append(f"{sid}: recording events missing (seq/n): {missing[:5]}")
    if changed := sorted(str(_tag(n)) for n in nodes if sent.get(_tag(n)) != n):
        problems.append(f"{sid}: recording events not as sent (seq/n): {changed[:5]}")
    return problems


def verify(api: Api, plans: list[SessionPlan]) -> list[str]:
    """Every way the stored data differs from what was acknowledged (all of it was)."""
    problems = []
    totals = api.data("{ sessions(first: 0) { totalCount } events(first: 0) { totalCount } }")
    if totals["sessions"]["totalCount"] != len(plans):
        problems.append(f"sessions: {totals['sessions']['totalCount']} stored, {len(plans)} sent")
    rows = sum(p.rows for p in plans)
    if totals["events"]["totalCount"] != rows:
        problems.append(f"events of the app: {totals['events']['totalCount']} stored, {rows} sent")
    stored = api.sessions([p.session_id for p in plans])
    for plan in plans:
        found = stored[plan.session_id]
        if found is None:
            problems.append(f"{plan.session_id}: session not stored ({len(plan.batches)} batches acknowledged)")
            continue
        problems += check_events(plan, found) + check_recording(plan, found)
    return problems


# -- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Report:
    store: str
    config: dict[str, Any]
    sessions: int = 0
    batches: int = 0
    events: int = 0  # all events sent, recording events included
    event_rows: int = 0  # the non-recording ones: what the events table must hold
    recording_events: int = 0
    requests: int = 0
    acked: int = 0
    resends: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    late_resends: int = 0
    late_outcomes: dict[str, int] = field(default_factory=dict)
    retry_causes: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    kills_during_traffic: int = 0  # kills while clients were still sending
    in_flight_at_kill: list[int] = field(default_factory=list)  # requests open at each kill
    acked_before_kill: list[int] = field(default_factory=list)  # batches acknowledged in each uptime before a kill
    start_s: list[float] = field(default_factory=list)  # each start until /healthz answered
    clean_exit_code: int | None = None
    server_errors: list[str] = field(default_factory=list)  # exceptions the server logged, with how often
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def run_scenario(config: Config, data_dir: Path) -> Report:
    """The whole scenario on a fresh store in `data_dir`; see the module docstring."""
    started = time.monotonic()
    report = Report(config.store, asdict(config))
    problems: list[str] = []
    data_dir.mkdir(parents=True, exist_ok=True)
    cli(config.store, data_dir, "apps", "create", APP_ID)  # before the server: chDB allows one process per path
    key = cli(config.store, data_dir, "keys", "create", "--app", APP_ID, "--scope", "read", "--name", "crash")
    server = Server(config.store, data_dir, free_port())
    clients = Clients(config, server.base_url)
    try:
        report.start_s.append(server.start())
        clients.start()
        _kill_loop(config, server, clients, report)
        _finish(config, server, clients, report)
        report.start_s.append(server.start())
        api = Api(server, key)
        try:
            problems = verify(api, clients.plans)
        finally:
            api.close()
        server.interrupt()
    finally:
        clients.abort.set()
        server.ensure_stopped()
        report.server_errors = server.errors()
    _summarize(report, clients, problems, time.monotonic() - started)
    return report


def _kill_loop(config: Config, server: Server, clients: Clients, report: Report) -> None:
    """SIGKILL the server after a random uptime, restart it on the same data dir and port; `kills` times. The
    uptime mostly counts from the first acknowledgement after the start (a start-up alone takes about as long as
    the longest uptime), so kills land in full ingestion as well as in start-up and first writes."""
    rng = random.Random(f"kills:{config.seed}")
    for _ in range(config.kills):
        acked = clients.traffic.acked
        if rng.random() < config.kills_after_first_ack:
            clients.wait_for_ack(acked, config.first_ack_timeout_s, server)
        time.sleep(rng.uniform(*config.kill_delay_s))
        if clients.abort.is_set():
            raise ScenarioError("; ".join(clients.errors))
        server.check_alive()
        report.kills_during_traffic += clients.running() > 0
        report.in_flight_at_kill.append(clients.traffic.in_flight)
        server.kill()
        report.acked_before_kill.append(clients.traffic.acked - acked)
        report.kills += 1
        report.start_s.append(server.start())


def _finish(config: Config, server: Server, clients: Clients, report: Report) -> None:
    """Let the clients finish their open sessions (every batch acknowledged), then stop the server cleanly."""
    clients.stop_opening.set()
    deadline = time.monotonic() + config.finish_timeout_s
    while clients.running() and time.monotonic() < deadline:
        server.check_alive()
        clients.join(0.2)
    if clients.running():
        clients.abort.set()
        raise ScenarioError(f"{clients.running()} clients had unacknowledged batches {config.finish_timeout_s:.0f} s "
                            f"after the last kill:\n{server.log_tail()}")
    if clients.errors:
        raise ScenarioError("; ".join(clients.errors) + f"\nserver log:\n{server.log_tail()}")
    report.clean_exit_code = server.interrupt()


def _summarize(report: Report, clients: Clients, problems: list[str], wall_s: float) -> None:
    plans, traffic = clients.plans, clients.traffic
    report.sessions = len(plans)
    report.batches = sum(len(p.batches) for p in plans)
    report.event_rows = sum(p.rows for p in plans)
    report.recording_events = sum(p.recording_events for p in plans)
    report.events = report.event_rows + report.recording_events
    report.requests, report.acked, report.resends = traffic.requests, traffic.acked, traffic.resends
    report.outcomes, report.retry_causes = dict(traffic.outcomes), dict(traffic.retry_causes)
    report.late_resends, report.late_outcomes = traffic.late_resends, dict(traffic.late_outcomes)
    problems = clients.problems + problems
    report.problem_count = len(problems)
    report.problems = problems[:_SHOWN_PROBLEMS]
    report.wall_s = round(wall_s, 2)
    report.start_s = [round(s, 2) for s in report.start_s]
