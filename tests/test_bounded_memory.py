"""Memory does not grow with traffic: after 200,000 distinct sessions (each with its own URL and user agent, some
identified, some from deleted users) every cache and set the server keeps is within its bound, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from conftest import CONTEXT, T0, Server
from replayql.api.app import cache_sizes
from replayql.ingest.importer import import_batches

SESSIONS = 200_000


def _batches() -> Iterator[bytes]:
    for n in range(SESSIONS):
        context = {**CONTEXT, "userAgent": f"Mozilla/5.0 (X11; Linux x86_64) Bot/{n}"}
        events: list[dict[str, object]] = [{"type": "page", "ts": T0 + n, "url": f"https://shop.example/p/{n}"}]
        if n % 10 == 0:
            events.append({"type": "identify", "ts": T0 + n, "userId": f"u-{n}"})
        yield orjson.dumps({"appId": "demo", "sessionId": f"m-{n}", "seq": 0, "sentAt": T0 + n + 1,
                            "context": context, "events": events})


def test_every_cache_and_set_stays_bounded_after_200k_sessions(server: Server) -> None:
    services = server.services
    for n in range(0, 2_000, 10):  # deleted users: later data of theirs is dropped, and remembered as such
        services.store.delete_user("demo", f"u-{n}")
    report = import_batches(_batches(), services.writer, lambda app: app == "demo", server.settings.limits)
    assert report.rejected == [] and report.stored == SESSIONS - 200  # the deleted users' sessions are dropped
    for n in range(600):  # distinct query strings and documents, more than either cache holds (512)
        server.data(f'{{ sessions(first: 1, query: "pageCount > {n}") {{ totalCount }} }}')
    sizes = cache_sizes(services)
    assert {"writer.session_tails", "writer.sessions_deleted", "writer.users_deleted", "ingest.user_agents",
            "ingest.urls", "query.parsed_strings", "graphql.documents", "api.allowed_origins"} <= sizes.keys()
    for name, (entries, bound) in sizes.items():
        assert bound > 0 and entries <= bound, (name, entries, bound)
    # the bounds were reached, so the traffic really was larger than each structure
    filled = ["writer.session_tails", "ingest.user_agents", "ingest.urls", "graphql.documents"]
    if services.store.single_writer:  # writers sharing a store (ClickHouse) remember only deletions, asking again
        filled.append("writer.sessions_deleted")
    else:
        assert sizes["writer.sessions_deleted"][0] == 200
    for name in filled:
        assert sizes[name][0] == sizes[name][1], (name, sizes[name])
    assert server.data('{ sessions { totalCount } }') == {"sessions": {"totalCount": SESSIONS - 200}}
