from conftest import T0, Server, make_batch


def test_batch_is_queryable(server: Server) -> None:
    events = [{"type": "page", "ts": T0, "url": "https://shop.example/cart?utm_source=news"},
              {"type": "click", "ts": T0 + 1000, "selector": "button#checkout"}]
    response = server.ingest(make_batch("s-1", events))
    assert response.status_code == 200, response.text
    data = server.data("{ session(id: \"s-1\") { id pageCount clickCount durationMs utmSource browser } }")
    assert data["session"] == {"id": "s-1", "pageCount": 1, "clickCount": 1, "durationMs": 1000,
                               "utmSource": "news", "browser": "Chrome"}
