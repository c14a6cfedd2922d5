"""A hand-built shop: five sessions whose filter answers are known by construction (tests import it).

The five sessions (times in ms after T0):
  s1  Chrome, user u1 (Ann, plan pro, 5 seats, beta)  page / @0, page /checkout @1000, LCP 1800 @500,
      POST /api/orders 502 (300 ms) @2000, rage click button#buy @3200, Checkout {total 120, coupon SPRING} @4000,
      TypeError "x is undefined" @20000 (unhandled). 20 s.
  s2  Safari, user u2 (plan free, 1 seat)  page /checkout @0, POST /api/orders 200 (90 ms) @1000,
      Checkout {total 80} @2000, rage click a.help @30200, console warn "slow" @31000. 31 s.
  s3  Chrome, anonymous, release 1.5.0  page / @0, GET /api/orders 500 (1200 ms) @1000,
      rage click button#buy @20200, console error "boom" @21000, ChunkLoadError (handled) @25000. 25 s.
  s4  Firefox, anonymous, 390 px wide, no pages  LCP 4500 @100, rage click #menu @200,
      GET /api/orders 503 (50 ms) @5000, Add To Cart {A1 9.5} @6000, {B2 20} @7000, {A1 9.5} @8000. 8 s.
  s5  Chrome, user u1, starts @100000  page /pricing?utm_source=news @100000, Add To Cart {C3 5} @101000,
      TypeError "x is undefined" @102000. 2 s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conftest import CONTEXT, T0, make_batch

SAFARI = {**CONTEXT, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"}
FIREFOX = {**CONTEXT, "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
           "viewport": {"width": 390, "height": 844}}
SHOP = "https://shop.example"
ORDERS = "https://api.shop.example/api/orders"


def iso(offset_ms: int) -> str:
    return datetime.fromtimestamp((T0 + offset_ms) / 1000, UTC).isoformat().replace("+00:00", "Z")


def _page(at: int, path: str) -> dict[str, Any]:
    return {"type": "page", "ts": T0 + at, "url": SHOP + path}


def _network(at: int, method: str, status: int, duration: float) -> dict[str, Any]:
    return {"type": "network", "ts": T0 + at, "method": method, "url": ORDERS, "status": status,
            "durationMs": duration}


def _rage(at: int, selector: str) -> list[dict[str, Any]]:
    """Three clicks within the rage window: one rage click, at the third."""
    return [{"type": "click", "ts": T0 + at + d, "selector": selector} for d in (-200, -100, 0)]


def _custom(at: int, name: str, **properties: Any) -> dict[str, Any]:
    return {"type": "custom", "ts": T0 + at, "name": name, "properties": properties}


def _error(at: int, error_type: str, message: str, handled: bool = False) -> dict[str, Any]:
    return {"type": "error", "ts": T0 + at, "errorType": error_type, "message": message, "handled": handled,
            "stack": f"{error_type}: {message}\n    at app.js:1:1"}


def _identify(at: int, user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "ts": T0 + at, "userId": user, "traits": traits}


BATCHES = [
    make_batch("s1", [
        _identify(0, "u1", name="Ann", email="ann@shop.example", plan="pro", seats=5, beta=True),
        _page(0, "/"), {"type": "vital", "ts": T0 + 500, "name": "LCP", "value": 1800}, _page(1000, "/checkout"),
        _network(2000, "POST", 502, 300), *_rage(3200, "button#buy"),
        _custom(4000, "Checkout", total=120, coupon="SPRING"), _error(20000, "TypeError", "x is undefined")]),
    make_batch("s2", [
        _identify(0, "u2", plan="free", seats=1), _page(0, "/checkout"), _network(1000, "POST", 200, 90),
        _custom(2000, "Checkout", total=80), *_rage(30200, "a.help"),
        {"type": "console", "ts": T0 + 31000, "level": "warn", "message": "slow"}], context=SAFARI),
    make_batch("s3", [
        _page(0, "/"), _network(1000, "GET", 500, 1200), *_rage(20200, "button#buy"),
        {"type": "console", "ts": T0 + 21000, "level": "error", "message": "boom"},
        _error(25000, "ChunkLoadError", "Loading chunk 7 failed", handled=True)],
        context={**CONTEXT, "release": "1.5.0"}),
    make_batch("s4", [
        {"type": "vital", "ts": T0 + 100, "name": "LCP", "value": 4500}, *_rage(200, "#menu"),
        _network(5000, "GET", 503, 50), _custom(6000, "Add To Cart", sku="A1", price=9.5),
        _custom(7000, "Add To Cart", sku="B2", price=20), _custom(8000, "Add To Cart", sku="A1", price=9.5)],
        context=FIREFOX),
    make_batch("s5", [
        _identify(100000, "u1"), _page(100000, "/pricing?utm_source=news"),
        _custom(101000, "Add To Cart", sku="C3", price=5), _error(102000, "TypeError", "x is undefined")]),
]
