"""Issue 15: GraphQL subscriptions over WebSocket (graphql-transport-ws) at /graphql, on both stores.

A real WebSocket client (the `websockets` package) talks to the real app served by uvicorn on a loopback port;
batches go in over HTTP (POST /v1/ingest) to the same server, or to a second server on the same chDB database.
Every expected update is built from the batches the test sends: in order, each once, and nothing else (a test
ends with a sentinel that must be the next message, so a repeat or a stray update would come first and fail it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx2 as httpx
import pytest

from conftest import Location, Server, labelled, make_batch, parse_samples, start_server
from live_ws import Client, on_loopback, token
from replayql.api.app import close_services
from replayql.api.subscriptions import events_within
from replayql.config import LiveLimits, Settings, with_limits
from replayql.store.base import BatchStored

FAST = LiveLimits(poll_interval_s=0.05, session_update_interval_s=0.0)
SESSIONS = "subscription($q: String) { sessionUpdates(query: $q) { id pageCount eventCount } }"
LIVE = """subscription($id: ID!, $after: String) { sessionLive(id: $id, after: $after) {
  cursor seq events { kind url } recording } }"""
ISSUES = """subscription { issueUpdates { change issue { id status count } occurrence { message sessionId } } }"""
ERROR = {"type": "error", "errorType": "TypeError", "message": "x is undefined",
         "stack": "TypeError: x is undefined\n    at buy (https://shop.example/app.js:1:1)", "handled": False}


def now_ms() -> int:
    return int(time.time() * 1000)


def pages(session_id: str, seq: int, count: int = 1, app_id: str = "demo") -> dict[str, Any]:
    """Batch `seq`: `count` page views, and one rrweb event saying which batch it is."""
    t = now_ms()
    events: list[dict[str, Any]] = [{"type": "page", "ts": t + i, "url": f"https://shop.example/{seq}/{i}"}
                                    for i in range(count)]
    events.append({"type": "recording", "ts": t + count, "data": rrweb(seq)})
    return make_batch(session_id, events, seq=seq, app_id=app_id, sent_at=t + count)


def rrweb(seq: int, padding: int = 0) -> dict[str, Any]:
    return {"type": 3, "timestamp": seq, "data": {"source": 0, "batch": seq, "pad": "x" * padding}}


def failing(session_id: str, seq: int, message: str = ERROR["message"]) -> dict[str, Any]:
    t = now_ms()
    return make_batch(session_id, [{**ERROR, "message": message, "ts": t}], seq=seq, sent_at=t)


@contextmanager
def running(location: Location, limits: LiveLimits = FAST) -> Iterator[tuple[Server, str]]:
    server = start_server(location, live=limits)
    try:
        with on_loopback(server) as url:
            yield server, url
    finally:
        close_services(server.services)


@asynccontextmanager
async def http(base_url: str) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """post(batch): POST /v1/ingest on the real socket; it must answer 200 (stored)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async def post(batch: dict[str, Any]) -> None:
            response = await client.post("/v1/ingest", json=batch)
            assert response.status_code == 200 and response.json()["outcome"] == "stored", response.text
        yield post


def metrics(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return parse_samples(server.client.get("/metrics").text)


# -- sessionUpdates --------------------------------------------------------------------------------------------

def test_session_updates_arrive_in_order_once_each_and_only_while_they_match(
        where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        await client.subscribe("s", SESSIONS, {"q": "pageCount >= 2"})
        async with http(url) as post:
            await post(pages("a", 0))  # one page: no match yet
            for seq in range(1, 4):
                await post(pages("a", seq))
                update = await client.data("s")
                assert update == {"sessionUpdates": {"id": "a", "pageCount": seq + 1, "eventCount": seq + 1}}
            await post(pages("other-app", 0, 3, app_id="other"))  # matches, but another app's
            await post(pages("b", 0, 2))  # the sentinel
            assert await client.data("s") == {"sessionUpdates": {"id": "b", "pageCount": 2, "eventCount": 2}}
        await client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


def test_session_updates_are_throttled_per_session(where: Callable[[str], Location]) -> None:
    """With a long interval, a session's first change is sent at once and its later ones wait; another session's
    change is not held up by it."""
    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        await client.subscribe("s", SESSIONS)
        async with http(url) as post:
            await post(pages("a", 0))
            assert (await client.data("s"))["sessionUpdates"]["id"] == "a"
            for seq in range(1, 4):
                await post(pages("a", seq))
            await post(pages("b", 0))
            assert (await client.data("s"))["sessionUpdates"] == {"id": "b", "pageCount": 1, "eventCount": 1}
        await client.close()

    with running(where("data"), LiveLimits(poll_interval_s=0.05, session_update_interval_s=3600)) as (server, url):
        asyncio.run(scenario(url, server))


# -- issueUpdates ----------------------------------------------------------------------------------------------

def test_issue_updates_report_new_status_changes_and_regressions_with_their_occurrence(
        where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        await client.subscribe("i", ISSUES)

        async def update() -> tuple[str, str, int, str | None]:
            found = (await client.data("i"))["issueUpdates"]
            occurrence = found["occurrence"]
            return found["change"], found["issue"]["status"], found["issue"]["count"], (
                occurrence["sessionId"] if occurrence else None)

        async def set_status(status: str) -> None:
            issue = server.data("{ issues { nodes { id } } }")["issues"]["nodes"][0]["id"]
            server.data("mutation($id: ID!, $s: IssueStatus!) { updateIssue(id: $id, status: $s) { id } }",
                        {"id": issue, "s": status}, key="write")

        async with http(url) as post:
            await post(failing("a", 0))
            assert await update() == ("NEW", "OPEN", 1, "a")
            await post(failing("a", 1))  # a second occurrence of an open issue: no update
            await set_status("RESOLVED")
            assert await update() == ("STATUS_CHANGED", "RESOLVED", 2, None)
            await post(failing("b", 0))
            assert await update() == ("REGRESSED", "OPEN", 3, "b")
            await set_status("IGNORED")
            assert await update() == ("STATUS_CHANGED", "IGNORED", 3, None)
            await set_status("OPEN")
            assert await update() == ("REOPENED", "OPEN", 3, None)
            await post(failing("c", 0, "another bug"))  # the sentinel: a new issue
            assert await update() == ("NEW", "OPEN", 1, "c")
        await client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


# -- sessionLive -----------------------------------------------------------------------------------------------

async def live_seqs(client: Client, operation_id: str, count: int) -> list[tuple[int, str]]:
    """The next `count` sessionLive updates as (seq, cursor), each checked against the batch it stands for."""
    found = []
    for _ in range(count):
        update = (await client.data(operation_id))["sessionLive"]
        seq = update["seq"]
        assert update["events"] == [{"kind": "page", "url": f"https://shop.example/{seq}/0"}], update
        assert update["recording"] == [rrweb(seq)], update
        found.append((seq, update["cursor"]))
    return found


def test_session_live_catches_up_then_follows_and_resumes_from_a_cursor(where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        async with http(url) as post:
            for seq in range(3):
                await post(pages("p", seq))
            first = await Client.connect(url, token(server.keys["read"]))
            await first.subscribe("l", LIVE, {"id": "p"})
            caught_up = await live_seqs(first, "l", 3)
            assert [seq for seq, _ in caught_up] == [0, 1, 2]
            for seq in (3, 4):
                await post(pages("p", seq))
            assert [seq for seq, _ in await live_seqs(first, "l", 2)] == [3, 4]
            await first.close()

            # A player that saw up to batch 1 joins again while batches keep coming: 2 and on, each once.
            resumed = await Client.connect(url, token(server.keys["read"]))

            async def keep_sending() -> None:
                for seq in range(5, 15):
                    await post(pages("p", seq))

            sender = asyncio.create_task(keep_sending())
            await resumed.subscribe("l", LIVE, {"id": "p", "after": caught_up[1][1]})
            seqs = [seq for seq, _ in await live_seqs(resumed, "l", 13)]
            await sender
            assert seqs == list(range(2, 15))
            await post(pages("p", 15))  # the sentinel: the next update, so nothing came twice
            assert [seq for seq, _ in await live_seqs(resumed, "l", 1)] == [15]
            await resumed.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


def test_session_live_finds_new_batches_events_by_their_time(where: Callable[[str], Location]) -> None:
    """A live read looks for new batches' events only between the first and last times of their events (the
    ledger keeps each batch's): a batch whose events lie hours back, two hours apart, and a batch of rrweb events
    alone, each arrive whole, whether a poll reads them together with a batch of now or apart."""
    hour = 3_600_000

    def spread(seq: int, t: int) -> dict[str, Any]:
        events = [{"type": "page", "ts": t - 3 * hour, "url": f"https://shop.example/{seq}/old"},
                  {"type": "page", "ts": t - hour, "url": f"https://shop.example/{seq}/later"},
                  {"type": "recording", "ts": t - hour + 1, "data": rrweb(seq)}]
        return make_batch("h", events, seq=seq, sent_at=t)

    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        async with http(url) as post:
            await post(pages("h", 0))
            await client.subscribe("l", LIVE, {"id": "h"})
            assert [seq for seq, _ in await live_seqs(client, "l", 1)] == [0]
            t = now_ms()
            for batch in (spread(1, t), make_batch("h", [{"type": "recording", "ts": t, "data": rrweb(2)}], seq=2,
                                                    sent_at=t), pages("now", 0)):
                await post(batch)
            updates = [(await client.data("l"))["sessionLive"] for _ in range(2)]
            assert [(u["seq"], u["events"], u["recording"]) for u in updates] == [
                (1, [{"kind": "page", "url": "https://shop.example/1/old"},
                     {"kind": "page", "url": "https://shop.example/1/later"}], [rrweb(1)]),
                (2, [], [rrweb(2)])]
            await post(pages("h", 3))  # the sentinel: the next update, so nothing came twice
            assert [seq for seq, _ in await live_seqs(client, "l", 1)] == [3]
        await client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


def test_a_live_read_is_bounded_by_its_batches_times_only_when_every_one_is_known() -> None:
    """The bound holds every batch's events; a ledger row without times (an older writer's) leaves it off."""
    def stored(seq: int, span: tuple[int, int] | None) -> BatchStored:
        return BatchStored("demo", "s", seq, 5_000, span)

    assert events_within([stored(0, (100, 200)), stored(1, (50, 120)), stored(2, (5_000, 5_000))]) == (50, 5_000)
    assert events_within([stored(0, (100, 200)), stored(1, None)]) is None
    assert events_within([]) is None


def test_session_live_of_another_apps_session_is_not_found_like_an_unknown_one(
        where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        async with http(url) as post:
            await post(pages("theirs", 0, app_id="other"))
        client = await Client.connect(url, token(server.keys["read"]))
        answers = []
        for session_id in ("theirs", "nobody"):
            await client.subscribe(session_id, LIVE, {"id": session_id})
            message = await client.receive()
            assert message["type"] == "error" and message["id"] == session_id, message
            answers.append([{**e, "message": e["message"].replace(session_id, "ID")} for e in message["payload"]])
        assert answers[0] == answers[1]
        assert answers[0][0]["extensions"] == {"code": "NOT_FOUND"}
        other = await Client.connect(url, token(server.keys["other"]))  # its own app sees it
        await other.subscribe("l", LIVE, {"id": "theirs"})
        assert (await other.data("l"))["sessionLive"]["seq"] == 0
        for open_client in (client, other):
            await open_client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


def test_many_subscribers_share_one_read_per_poll(where: Callable[[str], Location]) -> None:
    """30 players of one session and 10 lists with one filter: each gets every batch once and in order, while the
    store is read once per new batch for all the players and once for all the lists (replayql_live_reads_total)."""
    async def scenario(url: str, server: Server) -> None:
        async with http(url) as post:
            await post(pages("shared", 0))
            players = [await Client.connect(url, token(server.keys["read"])) for _ in range(30)]
            lists = [await Client.connect(url, token(server.keys["read"])) for _ in range(10)]
            for player in players:
                await player.subscribe("l", LIVE, {"id": "shared"})
            caught_up = [await live_seqs(p, "l", 1) for p in players]
            assert [[s for s, _ in c] for c in caught_up] == [[0]] * len(players)
            for session_list in lists:
                await session_list.subscribe("s", SESSIONS, {"q": "pageCount >= 1"})
            await asyncio.sleep(0.2)  # every list's feed in place: polls go on meanwhile, with nothing new
            before = labelled(await asyncio.to_thread(metrics, server), "replayql_live_reads_total", "read")
            batches = range(1, 7)
            for seq in batches:
                await post(pages("shared", seq))
                got = await asyncio.gather(*(live_seqs(p, "l", 1) for p in players))
                assert [[s for s, _ in g] for g in got] == [[seq]] * len(players)
                updates = await asyncio.gather(*(c.data("s") for c in lists))
                assert [u["sessionUpdates"]["pageCount"] for u in updates] == [seq + 1] * len(lists)
            after = labelled(await asyncio.to_thread(metrics, server), "replayql_live_reads_total", "read")
            await post(pages("shared", 7))  # the sentinel: the next update of each, so nothing came twice
            got = await asyncio.gather(*(live_seqs(p, "l", 1) for p in players))
            assert [[s for s, _ in g] for g in got] == [[7]] * len(players)
        reads = {read: after[read] - before.get(read, 0) for read in after}
        assert reads == {"batches": len(batches), "sessions": len(batches), "issues": 0, "catch_up": 0, "key_check": 0}
        for client in (*players, *lists):
            await client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


# -- a second server on the same ClickHouse database -------------------------------------------------------------

def test_a_second_server_on_the_same_clickhouse_delivers_what_the_first_stored(
        where: Callable[[str], Location], store_kind: str) -> None:
    if store_kind != "clickhouse":  # an embedded store has one server by design; the loop below runs on chDB
        return

    async def scenario(url_a: str, url_b: str, b: Server) -> None:
        updates = await Client.connect(url_b, token(b.keys["read"]))
        await updates.subscribe("s", SESSIONS)
        issues = await Client.connect(url_b, token(b.keys["read"]))
        await issues.subscribe("i", ISSUES)
        async with http(url_a) as post_a:
            await post_a(pages("x", 0))
            replay = await Client.connect(url_b, token(b.keys["read"]))
            await replay.subscribe("l", LIVE, {"id": "x"})
            assert [seq for seq, _ in await live_seqs(replay, "l", 1)] == [0]
            assert (await updates.data("s"))["sessionUpdates"] == {"id": "x", "pageCount": 1, "eventCount": 1}
            for seq in (1, 2):
                await post_a(pages("x", seq))
                assert [s for s, _ in await live_seqs(replay, "l", 1)] == [seq]
                assert (await updates.data("s"))["sessionUpdates"]["pageCount"] == seq + 1
            await post_a(failing("x", 3))
            found = (await issues.data("i"))["issueUpdates"]
            assert (found["change"], found["occurrence"]["sessionId"]) == ("NEW", "x")
        for client in (updates, issues, replay):
            await client.close()

    location = where("data")
    with running(location) as (_, url_a), running(location) as (b, url_b):
        asyncio.run(scenario(url_a, url_b, b))


# -- the protocol: auth, messages, limits, slow consumers ---------------------------------------------------------

@pytest.mark.parametrize(("init", "code"), [
    ({}, 4401),  # no key
    ({"Authorization": "token rq_nope"}, 4401),
    ({"Authorization": "Basic abc"}, 4401),
])
def test_a_missing_or_bad_key_closes_with_4401(where: Callable[[str], Location], init: dict[str, str], code: int
                                                ) -> None:
    async def scenario(url: str) -> None:
        client = await Client.connect(url, init, acked=False)
        assert (await client.closed()).code == code

    with running(where("data")) as (_, url):
        asyncio.run(scenario(url))


def test_protocol_errors_close_with_their_codes(where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        early = await Client.connect(url)  # subscribe before connection_init
        await early.subscribe("s", SESSIONS)
        assert (await early.closed()).code == 4401
        twice = await Client.connect(url, token(server.keys["read"]))
        await twice.send({"type": "connection_init", "payload": token(server.keys["read"])})
        assert (await twice.closed()).code == 4429
        duplicate = await Client.connect(url, token(server.keys["read"]))
        await duplicate.subscribe("s", SESSIONS)
        await duplicate.subscribe("s", SESSIONS)
        assert (await duplicate.closed()).code == 4409
        garbled = await Client.connect(url, token(server.keys["read"]))
        await garbled.connection.send("{not json")
        assert (await garbled.closed()).code == 4400
        wrong_protocol = await Client.connect(url, subprotocols=["graphql-ws"])
        assert (await wrong_protocol.closed()).code == 4406
        mute = await Client.connect(url)  # never sends connection_init
        assert (await mute.closed()).code == 4408

    limits = LiveLimits(poll_interval_s=0.05, init_timeout_s=0.2)
    with running(where("data"), limits) as (server, url):
        asyncio.run(scenario(url, server))


def test_invalid_subscriptions_answer_error_messages_with_codes(where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        cases = {
            "GRAPHQL_PARSE_FAILED": ("subscription {", None),
            "GRAPHQL_VALIDATION_FAILED": ("subscription { sessionUpdates { nope } }", None),
            "BAD_QUERY": (SESSIONS, {"q": "pageCount >>> 1"}),
            "BAD_USER_INPUT": (LIVE, {"id": "a", "after": "not a cursor"}),
        }
        for code, (query, variables) in cases.items():
            await client.subscribe(code, query, variables)
            message = await client.receive()
            assert (message["type"], message["id"]) == ("error", code), message
            assert [e["extensions"]["code"] for e in message["payload"]] == [code], message
        await client.subscribe("ok", SESSIONS)  # the socket is still open and works
        async with http(url) as post:
            await post(pages("a", 0))
        assert (await client.data("ok"))["sessionUpdates"]["id"] == "a"
        await client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


def test_subscription_limits_per_key_and_per_server_and_their_metrics(where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        for operation_id in ("a", "b"):
            await client.subscribe(operation_id, SESSIONS)
        await client.subscribe("c", SESSIONS)
        refused = await client.receive()
        assert (refused["type"], refused["id"]) == ("error", "c"), refused
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        samples = await asyncio.to_thread(metrics, server)
        assert labelled(samples, "replayql_subscriptions", "operation") == {"sessionUpdates": 2}
        assert samples[("replayql_subscription_connections", ())] == 1
        assert labelled(samples, "replayql_subscriptions_dropped_total", "reason")["limit"] == 1
        busy = await Client.connect(url)  # past the server's sockets
        assert (await busy.closed()).code == 1013
        await client.send({"id": "a", "type": "complete"})  # one ends: there is room for another
        await client.subscribe("c", SESSIONS)
        async with http(url) as post:
            await post(pages("s", 0))
        received = {(await client.receive())["id"] for _ in range(2)}
        assert received == {"b", "c"}
        await client.close()

    limits = LiveLimits(poll_interval_s=0.05, max_subscriptions_per_key=2, max_connections=1)
    with running(where("data"), limits) as (server, url):
        asyncio.run(scenario(url, server))


def test_a_slow_consumer_is_dropped_with_4410_and_ingestion_never_waits(where: Callable[[str], Location]) -> None:
    """A client that stops reading: its socket's buffers fill, then its queue of messages, and it is dropped.
    Every batch meanwhile is answered 200, and a reading subscriber of the same session gets every batch."""
    async def scenario(url: str, server: Server) -> None:
        async with http(url) as post:
            await post(pages("big", 0))
            slow = await Client.connect(url, token(server.keys["read"]), receive_buffer=4096, max_queue=1,
                                        compression=None)  # else the padding below compresses to nothing
            await slow.subscribe("l", LIVE, {"id": "big"})
            reader = await Client.connect(url, token(server.keys["read"]))
            await reader.subscribe("l", LIVE, {"id": "big"})
            assert (await reader.data("l"))["sessionLive"]["seq"] == 0
            for seq in range(1, 41):  # 10 MB: past what the kernel buffers between the two hold
                t = now_ms()
                await post(make_batch("big", [{"type": "recording", "ts": t, "data": rrweb(seq, 250_000)}],
                                      seq=seq, sent_at=t))
                assert (await reader.data("l"))["sessionLive"]["seq"] == seq
            assert (await slow.closed()).code == 4410
        samples = await asyncio.to_thread(metrics, server)
        assert labelled(samples, "replayql_subscriptions_dropped_total", "reason")["too_slow"] == 1
        await reader.close()

    limits = LiveLimits(poll_interval_s=0.05, max_queued_messages=4)
    with running(where("data"), limits) as (server, url):
        asyncio.run(scenario(url, server))


def test_a_revoked_key_closes_its_sockets_with_4403(where: Callable[[str], Location]) -> None:
    """Every socket of a revoked key closes with 4403, and another key's socket goes on. The key of 20 sockets is
    read once per check for all of them (replayql_live_reads_total{read="key_check"}): one read per socket would
    be 21 reads per interval here, not 2."""
    interval_s = 0.1

    async def key_checks() -> float:
        return labelled(await asyncio.to_thread(metrics, server), "replayql_live_reads_total", "read")["key_check"]

    async def scenario(url: str, server: Server) -> None:
        readers = [await Client.connect(url, token(server.keys["read"])) for _ in range(20)]
        for reader in readers:
            await reader.subscribe("s", SESSIONS)
        admin = await Client.connect(url, token(server.keys["admin"]))
        await admin.subscribe("s", SESSIONS)
        before, started = await key_checks(), time.monotonic()
        await asyncio.sleep(1.0)
        checks, intervals = await key_checks() - before, (time.monotonic() - started) / interval_s
        assert 2 <= checks <= 2 * (intervals + 2), (checks, intervals)
        key_id = server.data("{ viewer { keyId } }", key="read")["viewer"]["keyId"]
        await asyncio.to_thread(server.services.registry.revoke_key, key_id)
        assert [(await reader.closed()).code for reader in readers] == [4403] * len(readers)
        async with http(url) as post:
            await post(pages("a", 0))
        assert (await admin.data("s"))["sessionUpdates"]["id"] == "a"
        await admin.close()

    limits = LiveLimits(poll_interval_s=0.05, key_check_interval_s=interval_s)
    with running(where("data"), limits) as (server, url):
        asyncio.run(scenario(url, server))


def test_queries_and_mutations_run_over_the_socket_with_the_keys_scopes(where: Callable[[str], Location]) -> None:
    async def scenario(url: str, server: Server) -> None:
        client = await Client.connect(url, token(server.keys["read"]))
        await client.subscribe("q", "{ viewer { appId scopes } }")
        assert await client.data("q") == {"viewer": {"appId": "demo", "scopes": ["READ"]}}
        assert await client.receive() == {"id": "q", "type": "complete"}
        await client.subscribe("m", 'mutation { identifyUser(id: "u") { id } }')
        message = await client.receive()
        assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN", message
        await client.close()

    with running(where("data")) as (server, url):
        asyncio.run(scenario(url, server))


def test_live_limits_are_set_with_the_limit_option() -> None:
    changed = with_limits(Settings(), ["live.max_subscriptions_per_key=5", "live.poll_interval_s=0.1"])
    assert (changed.live.max_subscriptions_per_key, changed.live.poll_interval_s) == (5, 0.1)
    with pytest.raises(ValueError, match=r"live\.poll_interval_s must be positive"):
        with_limits(Settings(), ["live.poll_interval_s=0"])
