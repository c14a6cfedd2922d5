"""A fleet of browser tabs as request bodies: realistic batches, pre-compressed once, spliced per request.

A tab sends one batch every 1-5 s: rrweb incremental events (mouse moves, scrolls, mutations, masked inputs)
with the SDK's own events (clicks, network calls, console, now and then an error or a custom event), and at
every page view a full DOM snapshot of 50-300 KB. Recordings are most of the bytes, as in real traffic.

Compressing every body at send time would cost the sender a core at these rates, and pre-building every body
of a ten-minute run would not fit in memory. So the events of each batch shape ("chunks") are built and
deflated once, and each request is spliced together (as pigz does): a freshly deflated envelope prefix with
the session id, seq and sentAt, the chunk's pre-deflated bytes, an empty final block, and the gzip header and
trailer (CRC-32 and length of the whole). Any gzip decoder sees one ordinary member.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

BASE_TS = 1_765_000_000_000  # chunk times; the server's clock-skew correction moves them to arrival time
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # BFINAL=1, fixed Huffman, end of block
CONTEXT = {"userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/131.0.0.0 Safari/537.36",
           "viewport": {"width": 1536, "height": 864}, "language": "en-US", "timezone": "Europe/Berlin",
           "release": "2.14.0", "sdk": {"name": "replayql-browser", "version": "0.1.0"}}
_WORDS = ("shop", "cart", "product", "price", "checkout", "order", "account", "search", "filter", "review",
          "delivery", "wishlist", "coupon", "size", "colour", "stock", "payment", "address", "summary", "help")
_TAGS = ("div", "div", "div", "span", "a", "li", "p", "button", "img", "section", "h3", "input")
_PATHS = ("/", "/products", "/products/trail-runner-2", "/cart", "/checkout", "/account", "/search?q=boots")


def _deflate(data: bytes, level: int) -> bytes:
    """Raw deflate ending byte-aligned and not final, so more blocks may follow."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


@dataclass(frozen=True)
class Chunk:
    """The events of one batch: JSON array text without its brackets' envelope, deflated once."""

    json: bytes  # `[...]}`: the events array and the envelope's closing brace
    deflated: bytes
    events: int
    recording_events: int
    page_view: bool
    last_ts: int  # the batch's sentAt


def make_chunk(events: list[dict[str, Any]], level: int = 6) -> Chunk:
    text = orjson.dumps(events) + b"}"
    return Chunk(text, _deflate(text, level), len(events), sum(1 for e in events if e["type"] == "recording"),
                 any(e["type"] == "page" for e in events), max(e["ts"] for e in events))


def splice(prefix: bytes, chunk: Chunk, level: int = 1) -> bytes:
    """One gzip member holding prefix + chunk.json, without compressing the chunk again."""
    crc = zlib.crc32(chunk.json, zlib.crc32(prefix))
    size = (len(prefix) + len(chunk.json)) & 0xFFFFFFFF
    return b"".join((_GZIP_HEADER, _deflate(prefix, level), chunk.deflated, _FINAL_EMPTY_BLOCK,
                     struct.pack("<II", crc, size)))


def envelope_prefix(app_id: str, session_id: str, seq: int, sent_at: int, context: bool) -> bytes:
    """The batch up to its events array (the chunk supplies `[...]}`)."""
    head: dict[str, Any] = {"appId": app_id, "sessionId": session_id, "seq": seq, "sentAt": sent_at}
    if context:
        head["context"] = CONTEXT
    return orjson.dumps(head)[:-1] + b',"events":'


class _Dom:
    """A serialized DOM in rrweb's full-snapshot node format, grown to a target size."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_id = 1

    def id(self) -> int:
        self.next_id += 1
        return self.next_id

    def text(self, words: int) -> dict[str, Any]:
        return {"type": 3, "textContent": " ".join(self.rng.choice(_WORDS) for _ in range(words)), "id": self.id()}

    def element(self, depth: int) -> dict[str, Any]:
        tag = self.rng.choice(_TAGS)
        attrs = {"class": " ".join(f"{self.rng.choice(_WORDS)}-{self.rng.randrange(40)}" for _ in range(3))}
        if tag == "a":
            attrs["href"] = self.rng.choice(_PATHS)
        if tag == "img":
            attrs["src"] = f"/static/img/{self.rng.randrange(10_000)}.webp"
        children: list[dict[str, Any]] = []
        if depth < 6 and tag not in ("img", "input"):
            children = [self.element(depth + 1) if self.rng.random() < 0.55 else self.text(self.rng.randrange(2, 9))
                        for _ in range(self.rng.randrange(1, 5))]
        return {"type": 2, "tagName": tag, "attributes": attrs, "childNodes": children, "id": self.id()}

    def document(self, target_bytes: int) -> dict[str, Any]:
        style = {"type": 2, "tagName": "style", "attributes": {}, "id": self.id(), "childNodes": [
            {"type": 3, "isStyle": True, "id": self.id(), "textContent": "".join(
                f".{w}-{n}{{margin:{n}px;color:#{n:02x}{n:02x}{n:02x}}}" for w in _WORDS for n in range(8))}]}
        body: list[dict[str, Any]] = []
        size = 0
        while size < target_bytes:
            node = self.element(0)
            body.append(node)
            size += len(orjson.dumps(node))
        html = {"type": 2, "tagName": "html", "attributes": {"lang": "en"}, "id": self.id(), "childNodes": [
            {"type": 2, "tagName": "head", "attributes": {}, "childNodes": [style], "id": self.id()},
            {"type": 2, "tagName": "body", "attributes": {}, "childNodes": body, "id": self.id()}]}
        return {"type": 0, "childNodes": [{"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 1},
                                          html], "id": 1}


def _rec(ts: int, kind: int, data: dict[str, Any]) -> dict[str, Any]:
    """An rrweb event in rrweb's own key order (type, data, timestamp)."""
    return {"type": "recording", "ts": ts, "data": {"type": kind, "data": data, "timestamp": ts}}


def _incremental(rng: random.Random, ts: int, max_id: int) -> dict[str, Any]:
    """One rrweb incremental event, in the proportions a reading, scrolling, typing user produces."""
    roll = rng.random()
    if roll < 0.45:  # mouse move: rrweb batches sampled positions
        return _rec(ts, 3, {"source": 1, "positions": [
            {"x": rng.randrange(1500), "y": rng.randrange(800), "id": rng.randrange(2, max_id),
             "timeOffset": -50 * i} for i in range(rng.randrange(3, 10))]})
    if roll < 0.65:
        return _rec(ts, 3, {"source": 3, "id": 1, "x": 0, "y": rng.randrange(6000)})
    if roll < 0.9:  # DOM mutation: text and attribute changes, some added nodes
        return _rec(ts, 3, {"source": 0, "texts": [{"id": rng.randrange(2, max_id), "value": rng.choice(_WORDS)}],
                            "attributes": [{"id": rng.randrange(2, max_id),
                                            "attributes": {"class": f"{rng.choice(_WORDS)}-active"}}],
                            "removes": [], "adds": [{"parentId": rng.randrange(2, max_id), "nextId": None, "node": {
                                "type": 3, "textContent": rng.choice(_WORDS), "id": max_id + rng.randrange(999)}}]})
    if roll < 0.97:
        return _rec(ts, 3, {"source": 5, "text": "*" * rng.randrange(1, 12), "isChecked": False,
                            "id": rng.randrange(2, max_id)})
    return _rec(ts, 3, {"source": 2, "type": 2, "id": rng.randrange(2, max_id), "x": rng.randrange(1500),
                        "y": rng.randrange(800)})


def _sdk_event(rng: random.Random, ts: int, n: int) -> dict[str, Any]:
    """One of the SDK's own events (not a recording)."""
    roll = rng.random()
    if roll < 0.35:
        # distinct selectors per batch: a real user's clicks, not the same button hammered (no rage clicks)
        return {"type": "click", "ts": ts, "selector": f"main > div.card:nth-child({n}) > button.add",
                "text": "Add to cart", "x": rng.randrange(1500), "y": rng.randrange(800)}
    if roll < 0.7:
        status = 200 if rng.random() < 0.97 else 503
        return {"type": "network", "ts": ts, "method": rng.choice(("GET", "GET", "POST")),
                "url": f"https://api.shop.example/v2/{rng.choice(_WORDS)}?page={rng.randrange(9)}",
                "status": status, "durationMs": round(rng.lognormvariate(4.5, 0.6), 1),
                "requestBytes": rng.randrange(2_000), "responseBytes": rng.randrange(60_000)}
    if roll < 0.85:
        return {"type": "console", "ts": ts, "level": rng.choice(("log", "info", "warn")),
                "message": f"[{rng.choice(_WORDS)}] rendered in {rng.randrange(400)} ms"}
    if roll < 0.95:
        return {"type": "input", "ts": ts, "selector": "form#search input[name=q]"}
    if roll < 0.98:
        return {"type": "custom", "ts": ts, "name": "Product Viewed",
                "properties": {"sku": f"SKU-{rng.randrange(500)}", "price": round(rng.uniform(5, 300), 2)}}
    return {"type": "error", "ts": ts, "errorType": "TypeError",
            "message": f"Cannot read properties of undefined (reading '{rng.choice(_WORDS)}')",
            "stack": "TypeError: x\n    at render (https://shop.example/static/app.3f9a1c2d.js:10:5)\n"
                     "    at update (https://shop.example/static/app.3f9a1c2d.js:44:17)",
            "handled": False, "tags": {"area": "catalog"}}


def activity_events(rng: random.Random, start: int, seconds: float, rate: float, max_id: int,
                    sdk_share: float = 0.16) -> list[dict[str, Any]]:
    """`seconds` of a user on a page at `rate` events/s; `sdk_share` of them the SDK's own events."""
    count = max(1, round(seconds * rate))
    step = seconds * 1000 / count
    events = []
    for i in range(count):
        ts = start + int(i * step)
        events.append(_sdk_event(rng, ts, i) if rng.random() < sdk_share else _incremental(rng, ts, max_id))
    return events


def page_view_events(rng: random.Random, start: int, seconds: float, rate: float) -> list[dict[str, Any]]:
    """A page load: page event, rrweb meta and a 50-300 KB full snapshot, vitals, then activity."""
    dom = _Dom(rng)
    snapshot = dom.document(rng.randrange(50_000, 300_000))
    path = rng.choice(_PATHS)
    events: list[dict[str, Any]] = [
        {"type": "page", "ts": start, "url": f"https://shop.example{path}", "title": "Shop",
         "referrer": "https://www.google.com/"},
        _rec(start + 1, 4, {"href": f"https://shop.example{path}", "width": 1536, "height": 864}),
        _rec(start + 2, 2, {"node": snapshot, "initialOffset": {"left": 0, "top": 0}}),
        {"type": "vital", "ts": start + 3, "name": "LCP", "value": round(rng.lognormvariate(7.5, 0.4), 1)},
        {"type": "vital", "ts": start + 4, "name": "TTFB", "value": round(rng.lognormvariate(5.5, 0.5), 1)},
    ]
    return events + activity_events(rng, start + 10, seconds, rate, dom.next_id)


@dataclass(frozen=True)
class ChunkSet:
    """Pre-built batch shapes: activity chunks by interval (1-5 s) and page-view chunks."""

    activity: dict[int, list[Chunk]]
    page_views: list[Chunk]

    def pick(self, rng: random.Random, interval_s: int, page_view: bool) -> Chunk:
        return rng.choice(self.page_views if page_view else self.activity[interval_s])


def build_chunks(seed: int, rate: float, variants: int = 8, page_variants: int = 12, level: int = 6) -> ChunkSet:
    rng = random.Random(seed)
    activity = {s: [make_chunk(activity_events(rng, BASE_TS, s, rate, 2_000), level) for _ in range(variants)]
                for s in range(1, 6)}
    pages = [make_chunk(page_view_events(rng, BASE_TS, rng.randrange(1, 6), rate), level)
             for _ in range(page_variants)]
    return ChunkSet(activity, pages)


def batch_bodies(chunks: ChunkSet, sessions: int, rounds: int, seed: int, app_id: str = "demo",
                 name: str = "s") -> list[bytes]:
    """`rounds` batches of each of `sessions` sessions, round by round, as gzip bodies (the fleet's mix)."""
    rng = random.Random(seed)
    bodies = []
    for seq in range(rounds):
        for number in range(sessions):
            interval = rng.randint(1, 5)
            chunk = chunks.pick(rng, interval, seq == 0 or rng.random() < interval / 20)
            bodies.append(splice(envelope_prefix(app_id, f"{name}{number}", seq, chunk.last_ts, seq == 0), chunk))
    return bodies
