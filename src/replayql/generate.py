"""Deterministic synthetic traffic for a fictional web shop ("shop.example") in replayql's ingest wire format.

Used by `replayql serve --demo`, the tests and the benchmarks. The same arguments always give exactly the same
batches in the same order: all randomness comes from one `random.Random(seed)`, and the wall clock is only read
to pick the default end of the time range.

The data is shaped to exercise the interesting parts of the backend: funnels with drop-offs, returning and
anonymous users, recurring errors whose messages carry volatile parts and whose stack traces point at
content-hashed bundles that change with each release (so grouping must normalise both), a regression that only
exists in the newest release, per-device web-vitals, rage and dead clicks, and rrweb recordings that replay: each
page of the shop is a styled document (built once per route and content, see `_page`), SPA route changes are
mutations of its <main>, and clicks, keystrokes (masked) and pointer moves name the nodes the session's events
target.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

Event = dict[str, Any]
T = TypeVar("T")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SHOP = "https://shop.example"
API = "https://api.shop.example"
STATIC = f"{SHOP}/static/js"
SDK_INFO = {"name": "replayql-browser", "version": "0.1.0"}
SITE_NAME = "Shop Example"

MIN_SESSION_MS = 30_000
MAX_SESSION_MS = 30 * 60_000
MAX_EVENTS = 200
# Stop starting new pages past this many events, so a session stays under MAX_EVENTS without truncation.
SOFT_EVENT_LIMIT = 140
# Stop browsing this long before MAX_SESSION_MS: the last page still needs time for its own events.
SESSION_TIME_MARGIN_MS = 3 * 60_000
RECORDING_SHARE = 0.70
# Sessions by a known user. Some of those users have not signed up yet and may not get to it, so ~60% of
# sessions end up identified.
POOL_SESSION_SHARE = 0.63
BOT_SHARE = 0.01
# Users in the pool who create their account inside the generated range (the rest signed up earlier).
NEW_USER_SHARE = 0.25
RAGE_SESSION_SHARE = 0.03


class Weighted(Generic[T]):
    """A fixed weighted table; `pick` is a bisect on cumulative weights (much cheaper than random.choices)."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self.items: tuple[T, ...] = tuple(item for item, _ in pairs)
        self.cum: list[float] = list(accumulate(weight for _, weight in pairs))
        self.total: float = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect(self.cum, rng.random() * self.total)]


# --------------------------------------------------------------------------------------------------------------
# Data tables
# --------------------------------------------------------------------------------------------------------------


class Country(NamedTuple):
    code: str
    weight: float
    # Public IPv4 blocks checked with iptocc to map to `code`: three octets is a /24, two octets a /16.
    ip_prefixes: tuple[str, ...]
    languages: tuple[str, ...]
    # (IANA zone, UTC offset in hours, ignoring DST): the offset puts the diurnal peak in the local evening.
    timezones: tuple[tuple[str, float], ...]
    network: float  # latency multiplier for slower networks


COUNTRIES: tuple[Country, ...] = (
    Country("US", 0.32, ("8.8.8", "104.16", "73.15", "24.1"), ("en-US",),
            (("America/New_York", -5), ("America/Chicago", -6), ("America/Denver", -7),
             ("America/Los_Angeles", -8)), 1.0),
    Country("GB", 0.10, ("81.2.69", "86.150"), ("en-GB",), (("Europe/London", 0),), 1.0),
    Country("DE", 0.12, ("5.9", "78.46", "217.160"), ("de-DE", "de-DE", "en-US"), (("Europe/Berlin", 1),), 1.0),
    Country("FR", 0.07, ("90.10", "90.80", "86.192"), ("fr-FR",), (("Europe/Paris", 1),), 1.0),
    Country("JP", 0.05, ("126.10", "126.200", "153.150"), ("ja-JP",), (("Asia/Tokyo", 9),), 1.0),
    Country("BR", 0.06, ("177.100", "189.40"), ("pt-BR",), (("America/Sao_Paulo", -3),), 1.35),
    Country("IN", 0.08, ("49.36", "49.204", "117.200"), ("en-IN", "hi-IN"), (("Asia/Kolkata", 5.5),), 1.5),
    Country("CA", 0.07, ("24.114", "99.224", "70.48"), ("en-CA", "en-CA", "fr-CA"),
            (("America/Toronto", -5), ("America/Vancouver", -8)), 1.0),
    Country("AU", 0.05, ("1.128", "101.160"), ("en-AU",),
            (("Australia/Sydney", 10), ("Australia/Perth", 8)), 1.1),
    Country("ES", 0.04, ("83.40", "88.20"), ("es-ES",), (("Europe/Madrid", 1),), 1.0),
    Country("NL", 0.04, ("2.16", "145.100"), ("nl-NL", "en-US"), (("Europe/Amsterdam", 1),), 1.0),
)
# Google's crawler range; used only for bot sessions.
BOT_COUNTRY = Country("US", 0.0, ("66.249.66", "66.249.70"), ("en-US",), (("America/Los_Angeles", -8),), 1.0)

# Relative traffic per local hour of day (0-23): quiet at night, a lunch bump and an evening peak.
DIURNAL: tuple[int, ...] = (3, 2, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 9, 11, 13, 14, 12, 8, 5)


class Device(NamedTuple):
    name: str
    kind: str  # desktop | mobile | tablet | bot
    weight: float
    user_agents: tuple[str, ...]
    viewports: tuple[tuple[int, int], ...]  # window.innerWidth/innerHeight, so consistent with the device
    speed: float  # multiplier on rendering and interaction latency (mobile CPUs are slower)
    stack_style: str  # how the engine formats Error.stack: "v8" | "jsc" | "gecko"


_WIN_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/{v}.0.0.0 Safari/537.36")
_MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/{v}.0.0.0 Safari/537.36")
_MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/{v} Safari/605.1.15")
_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS {os} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/{v} Mobile/15E148 Safari/604.1")
_ANDROID = ("Mozilla/5.0 (Linux; Android {os}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/{v}.0.0.0 Mobile Safari/537.36")
_IPAD = ("Mozilla/5.0 (iPad; CPU OS {os} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/{v} Mobile/15E148 Safari/604.1")

DEVICES: tuple[Device, ...] = (
    Device("chrome-windows", "desktop", 0.30, tuple(_WIN_CHROME.format(v=v) for v in (141, 142, 143)),
           ((1920, 953), (1536, 735), (1366, 641), (1280, 665), (2560, 1271)), 1.0, "v8"),
    Device("chrome-macos", "desktop", 0.12, tuple(_MAC_CHROME.format(v=v) for v in (142, 143)),
           ((1440, 789), (1512, 862), (1728, 992), (1280, 720)), 0.9, "v8"),
    Device("safari-macos", "desktop", 0.07, tuple(_MAC_SAFARI.format(v=v) for v in ("18.6", "26.0", "26.1")),
           ((1440, 789), (1512, 862), (1728, 992)), 0.9, "jsc"),
    Device("safari-iphone", "mobile", 0.22,
           (_IPHONE.format(os="18_6", v="18.6"), _IPHONE.format(os="18_6", v="26.0"),
            _IPHONE.format(os="17_7", v="17.7"), _IPHONE.format(os="18_6", v="26.1")),
           ((390, 664), (393, 659), (430, 739), (375, 553)), 1.7, "jsc"),
    Device("chrome-android", "mobile", 0.15,
           tuple(_ANDROID.format(os=os, model=model, v=v) for os, model, v in
                 (("15", "Pixel 8", 143), ("14", "SM-S918B", 142), ("15", "SM-A556B", 143), ("10", "K", 142))),
           ((412, 783), (384, 746), (360, 668), (412, 839)), 2.0, "v8"),
    Device("safari-ipad", "tablet", 0.04,
           (_IPAD.format(os="18_6", v="18.6"), _IPAD.format(os="17_7", v="17.7")),
           ((820, 1106), (1024, 1292), (768, 954)), 1.3, "jsc"),
    Device("firefox-linux", "desktop", 0.03,
           ("Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0",
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0"),
           ((1920, 955), (1366, 663)), 1.0, "gecko"),
    Device("edge-windows", "desktop", 0.06,
           tuple(_WIN_CHROME.format(v=v) + f" Edg/{v}.0.0.0" for v in (142, 143)),
           ((1920, 945), (1536, 730), (1366, 633)), 1.0, "v8"),
)
BOT_DEVICE = Device(
    "googlebot", "bot", BOT_SHARE,
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/143.0.7499.40 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ((1024, 1024), (412, 732)), 1.0, "v8",
)


class Release(NamedTuple):
    version: str
    start: float  # fraction of the time range at which the rollout begins
    hashes: dict[str, str]  # bundle -> content hash in the file name
    shift: int  # minified column shift of app code, so positions differ across releases too


RELEASES: tuple[Release, ...] = (
    Release("1.4.0", 0.0, {"app": "5c0d2e91", "vendor": "8d7e6f50", "checkout": "a17b03c4",
                           "product": "2e6f9d18", "runtime": "0b3c5a7e"}, 0),
    Release("1.4.1", 0.30, {"app": "3f9a1c2d", "vendor": "8d7e6f50", "checkout": "c4d2e8f1",
                            "product": "71aa9e03", "runtime": "6d1f0c29"}, 211),
    Release("1.4.2", 0.62, {"app": "9b1e77aa", "vendor": "e02b4c6d", "checkout": "5f3e91b7",
                            "product": "d8c61a45", "runtime": "4a90b2e3"}, 587),
)
# Fraction of the time range over which a new release goes from 0 to 100% of new sessions.
ROLLOUT_RAMP = 0.08


class Frame(NamedTuple):
    function: str
    bundle: str  # "" for a native frame such as JSON.parse
    line: int
    column: int


class ErrorDef(NamedTuple):
    key: str
    error_type: str
    message: str  # format template: {n} and {code} are the volatile parts that grouping has to normalise
    frames: tuple[Frame, ...]
    area: str
    handled: bool
    releases: tuple[str, ...]  # releases whose code has the bug
    n_range: tuple[int, int] = (0, 0)
    n_zero_share: float = 0.0  # share of occurrences where {n} is 0 (JSON position 0 = an HTML error page)


_ALL = ("1.4.0", "1.4.1", "1.4.2")
_REACT = (Frame("Xe", "vendor", 2, 53361), Frame("Ye", "vendor", 2, 53512))

ERRORS: dict[str, ErrorDef] = {e.key: e for e in (
    ErrorDef("order-undefined", "TypeError", "Cannot read properties of undefined (reading 'id')",
             (Frame("submitOrder", "checkout", 1, 48213), Frame("onClick", "app", 2, 11771), *_REACT),
             "checkout", False, _ALL),
    ErrorDef("fetch-order", "Error", "Failed to fetch order {n}",
             (Frame("fetchOrder", "app", 1, 20457), Frame("loadConfirmation", "checkout", 1, 9120)),
             "checkout", True, _ALL, (1000, 99999)),
    ErrorDef("chunk-load", "ChunkLoadError", "Loading chunk {n} failed.",
             (Frame("__webpack_require__.f.j", "runtime", 1, 3012),
              Frame("__webpack_require__.e", "runtime", 1, 1523), Frame("loadRoute", "app", 1, 8841)),
             "navigation", False, _ALL, (12, 880)),
    ErrorDef("json-html", "SyntaxError", "Unexpected token '<' in JSON at position {n}",
             (Frame("JSON.parse", "", 0, 0), Frame("parseResponse", "app", 1, 30219),
              Frame("searchProducts", "app", 1, 31877)),
             "search", False, _ALL, (1, 4096), 0.8),
    # The regression: a gallery refactor in 1.4.2 queries an element that is not rendered yet.
    ErrorDef("gallery-null", "TypeError", "Cannot read properties of null (reading 'addEventListener')",
             (Frame("initGallery", "product", 1, 7719), Frame("ProductPage", "product", 1, 2204), *_REACT),
             "product", False, ("1.4.2",)),
    # Fixed in 1.4.2: disappears from the newest release.
    ErrorDef("delivery-date", "RangeError", "Invalid time value",
             (Frame("Date.toISOString", "", 0, 0), Frame("formatDeliveryDate", "app", 1, 40210),
              Frame("CartSummary", "app", 1, 41533), *_REACT),
             "cart", False, ("1.4.0", "1.4.1")),
    ErrorDef("coupon", "Error", 'Invalid coupon code "{code}"',
             (Frame("applyCoupon", "app", 1, 50112), Frame("onClick", "app", 2, 11771)),
             "cart", True, _ALL),
)}


class Product(NamedTuple):
    id: int
    name: str
    price: float
    category: str


_ADJECTIVES = ("Classic", "Trail", "Urban", "Merino", "Waterproof", "Everyday", "Lightweight", "Vintage")
_ITEMS = (("Running Shoes", 89.0, "shoes"), ("Rain Jacket", 129.0, "jackets"), ("Canvas Tote", 35.0, "bags"),
          ("Wool Beanie", 24.0, "accessories"), ("Denim Jeans", 69.0, "pants"), ("Backpack", 79.0, "bags"),
          ("Hoodie", 59.0, "tops"), ("Socks 3-Pack", 15.0, "accessories"))
# A fixed catalogue (the shop is the same for every seed); 389 is coprime with 9000, so the ids are distinct.
PRODUCTS: tuple[Product, ...] = tuple(
    Product(1000 + (i * 389) % 9000, f"{adj} {item}", round(base * (0.8 + 0.07 * a)) - 0.01, cat)
    for i, (a, adj, (item, base, cat)) in enumerate(
        (a, adj, it) for a, adj in enumerate(_ADJECTIVES) for it in _ITEMS)
)
CATEGORIES = ("shoes", "jackets", "bags", "accessories", "pants", "tops")
SEARCH_TERMS = ("running shoes", "rain jacket", "backpack", "wool", "gift", "socks", "jeans", "hoodie", "sale",
                "tote bag", "beanie", "waterproof")
COUPONS = ("SAVE10", "WELCOME15", "BF2026", "FREESHIP", "SPRING20", "VIP25")

FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Hedy", "Tim", "Radia",
               "Guido", "Frances", "John", "Sophie", "Yuki", "Priya", "Lucas", "Amara", "Mateo")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Lamarr",
              "Berners-Lee", "Perlman", "van Rossum", "Allen", "Backus", "Wilson", "Tanaka", "Sharma", "Silva",
              "Okafor", "Garcia")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
PLANS = Weighted((("free", 0.70), ("pro", 0.22), ("team", 0.08)))


class Source(NamedTuple):
    referrer: str | None  # None: direct traffic, the SDK sends no referrer
    utm: str | None  # query string appended to the landing URL
    landing: Weighted[str]  # landing page kind for this source


_L_ORGANIC = Weighted((("home", 0.3), ("product", 0.4), ("category", 0.25), ("search", 0.05)))
_L_DIRECT = Weighted((("home", 0.75), ("product", 0.1), ("cart", 0.1), ("category", 0.05)))
_L_CAMPAIGN = Weighted((("home", 0.35), ("product", 0.45), ("category", 0.2)))
# UTM-tagged campaign sources add up to ~20% of landings.
SOURCES = Weighted((
    (Source("https://www.google.com/", None, _L_ORGANIC), 0.33),
    (Source("https://www.bing.com/", None, _L_ORGANIC), 0.04),
    (Source("https://duckduckgo.com/", None, _L_ORGANIC), 0.03),
    (Source("https://www.reddit.com/", None, _L_CAMPAIGN), 0.03),
    (Source(None, None, _L_DIRECT), 0.37),
    (Source(None, "utm_source=newsletter&utm_medium=email&utm_campaign=black_friday", _L_CAMPAIGN), 0.05),
    (Source(None, "utm_source=newsletter&utm_medium=email&utm_campaign=winter_restock", _L_CAMPAIGN), 0.03),
    (Source("https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=brand", _L_CAMPAIGN),
     0.05),
    (Source("https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=shoes_generic",
            _L_CAMPAIGN), 0.03),
    (Source("https://l.facebook.com/", "utm_source=facebook&utm_medium=social&utm_campaign=retargeting",
            _L_CAMPAIGN), 0.04),
))

# The funnel: where a visitor goes next from each kind of page ("exit" ends the session).
TRANSITIONS: dict[str, Weighted[str]] = {
    "home": Weighted((("search", 0.28), ("category", 0.25), ("product", 0.22), ("account", 0.03),
                      ("cart", 0.02), ("exit", 0.20))),
    "category": Weighted((("product", 0.55), ("category", 0.10), ("search", 0.10), ("exit", 0.25))),
    "search": Weighted((("product", 0.55), ("search", 0.15), ("home", 0.03), ("exit", 0.27))),
    "product": Weighted((("cart", 0.17), ("product", 0.30), ("search", 0.12), ("category", 0.08),
                         ("home", 0.05), ("exit", 0.25))),
    "cart": Weighted((("checkout", 0.45), ("product", 0.12), ("exit", 0.43))),
    "checkout": Weighted((("confirmation", 0.60), ("cart", 0.05), ("exit", 0.35))),
    "confirmation": Weighted((("home", 0.08), ("account", 0.04), ("exit", 0.88))),
    "signup": Weighted((("home", 0.45), ("product", 0.25), ("exit", 0.30))),
    "account": Weighted((("home", 0.40), ("product", 0.20), ("exit", 0.40))),
}
TITLES = {"home": f"Home | {SITE_NAME}", "cart": f"Your Cart | {SITE_NAME}", "checkout": f"Checkout | {SITE_NAME}",
          "confirmation": f"Order Confirmed | {SITE_NAME}", "signup": f"Create Account | {SITE_NAME}",
          "account": f"Your Account | {SITE_NAME}"}
PATHS = {"home": "/", "cart": "/cart", "checkout": "/checkout", "confirmation": "/checkout/confirmation",
         "signup": "/signup", "account": "/account"}

# Clicks that change nothing on screen: candidates for dead clicks. (selector, text)
DEAD_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "home": (("div.hero-banner", ""), ("span.free-shipping", "Free shipping over $50")),
    "category": (("h1.category-title", ""), ("span.result-count", "")),
    "search": (("span.result-count", ""), ("div.search-summary", "")),
    "product": (("div.product-gallery img", ""), ("span.price", ""), ("div.rating", "4.6")),
    "cart": (("span.cart-total", ""), ("div.delivery-estimate", "")),
    "checkout": (("div.order-summary", ""), ("img.card-logos", "")),
    "confirmation": (("div.order-number", ""),),
    "signup": (("p.terms", ""),),
    "account": (("div.avatar", ""),),
}
# Where frustrated visitors hammer: slow or broken controls. (selector, text)
RAGE_TARGETS: dict[str, tuple[str, str]] = {
    "home": ("button#newsletter-signup", "Subscribe"), "category": ("button.load-more", "Load more"),
    "search": ("button.filter-apply", "Apply"), "product": ("button#add-to-cart", "Add to cart"),
    "cart": ("button#apply-coupon", "Apply"), "checkout": ("button#place-order", "Place order"),
    "confirmation": ("a.track-order", "Track order"), "signup": ("button#signup-submit", "Create account"),
    "account": ("button.save-profile", "Save"),
}
# Clicks that do something in place (a DOM mutation follows). (selector, text)
LIVE_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "home": (("button.carousel-next", "Next"), ("button#newsletter-signup", "Subscribe")),
    "category": (("button.filter", "Price"), ("button.load-more", "Load more"), ("select#sort", "")),
    "search": (("button.filter", "Size"), ("select#sort", ""), ("button.filter-apply", "Apply")),
    "product": (("button.size-option", "M"), ("button.size-option", "L"), ("button.color-swatch", "Navy"),
                ("button#wishlist", "Save"), ("button.tab-reviews", "Reviews")),
    "cart": (("button.qty-increase", "+"), ("button.qty-decrease", "-"), ("button.remove-item", "Remove")),
    "checkout": (("input#same-as-billing", ""), ("button.shipping-express", "Express")),
    "confirmation": (("button.copy-order-number", "Copy"),),
    "signup": (("button.show-password", "Show"),),
    "account": (("button.tab-orders", "Orders"), ("button.tab-settings", "Settings")),
}
CHECKOUT_FIELDS = ("input[name=email]", "input[name=address]", "input[name=city]", "input[name=zip]",
                   "input[name=card-number]", "input[name=card-expiry]", "input[name=card-cvc]")
CONSOLE_MESSAGES = Weighted((
    (("debug", "[replayql] recorder started"), 3.0),
    (("info", "Service worker registered"), 2.0),
    (("log", "cart hydrated"), 3.0),
    (("log", "[analytics] flushed queue"), 2.0),
    (("warn", "slow render: ProductGrid took 183ms"), 1.5),
    (("warn", "Image with src \"/img/hero.webp\" was detected as the Largest Contentful Paint (LCP)"), 1.0),
    (("error", "Failed to load resource: the server responded with a status of 404 ()"), 0.6),
))
NETWORK_5XX = Weighted(((500, 0.3), (502, 0.4), (503, 0.2), (504, 0.1)))


# --------------------------------------------------------------------------------------------------------------
# Users and session plans
# --------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class User:
    user_id: str
    name: str
    email: str
    plan: str
    country: Country
    timezone: tuple[str, float]
    language: str
    device: Device
    user_agent: str
    viewport: tuple[int, int]
    signup_ms: int | None  # None: creates the account during their first session in the range


class Plan(NamedTuple):
    """What is decided before sorting by start time: enough to place the session on the diurnal curve."""

    start: int
    user: User | None
    country: Country
    timezone: tuple[str, float]
    device: Device


def _make_users(rng: random.Random, count: int, window_start: int) -> list[User]:
    users = []
    for i in range(count):
        country, device = _pick_country(rng), _pick_device(rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower().replace(" ", "")
        email = f"{local}{i}@{EMAIL_DOMAINS[i % len(EMAIL_DOMAINS)]}"
        # Most of the pool signed up in the two years before the range; the rest sign up inside it.
        signup = None if rng.random() < NEW_USER_SHARE else window_start - rng.randrange(DAY_MS, 730 * DAY_MS)
        users.append(User(f"u-{i:06d}", f"{first} {last}", email, PLANS.pick(rng), country,
                          rng.choice(country.timezones), rng.choice(country.languages), device,
                          rng.choice(device.user_agents), rng.choice(device.viewports), signup))
    return users


_COUNTRIES = Weighted([(c, c.weight) for c in COUNTRIES])
_DEVICES = Weighted([(d, d.weight) for d in DEVICES])
_HOURS = Weighted(list(enumerate(DIURNAL)))


def _pick_country(rng: random.Random) -> Country:
    return _COUNTRIES.pick(rng)


def _pick_device(rng: random.Random) -> Device:
    return _DEVICES.pick(rng)


def _plan_sessions(rng: random.Random, sessions: int, window_start: int, days: int) -> list[Plan]:
    users = _make_users(rng, max(1, sessions // 3), window_start)
    plans = []
    for _ in range(sessions):
        user: User | None = None
        if rng.random() < BOT_SHARE:
            country, tz, device = BOT_COUNTRY, BOT_COUNTRY.timezones[0], BOT_DEVICE
        elif rng.random() < POOL_SESSION_SHARE:
            # Squaring skews towards low indices: a few loyal customers with many sessions, a long tail of one.
            user = users[int(len(users) * rng.random() ** 2)]
            country, tz = user.country, user.timezone
            device = user.device if rng.random() < 0.8 else _pick_device(rng)
        else:
            country = _pick_country(rng)
            tz, device = rng.choice(country.timezones), _pick_device(rng)
        start = _start_time(rng, window_start, days, tz[1], device.kind == "bot")
        plans.append(Plan(start, user, country, tz, device))
    plans.sort(key=itemgetter(0))
    return plans


def _start_time(rng: random.Random, window_start: int, days: int, utc_offset: float, flat: bool) -> int:
    """A start in [window_start, window_start + days) following the local-time diurnal curve (crawlers: flat)."""
    hour = rng.randrange(24) if flat else _HOURS.pick(rng)
    utc_ms_of_day = int((hour - utc_offset) * HOUR_MS) + rng.randrange(HOUR_MS)
    delta = (utc_ms_of_day - window_start) % DAY_MS
    return window_start + rng.randrange(days) * DAY_MS + delta


def _pick_release(rng: random.Random, fraction: float) -> tuple[Release, bool]:
    """The release a session runs under a staged rollout, at `fraction` of the time range. `stale` means a newer
    release is already being served (an old tab), whose lazily loaded chunks the old code can no longer find."""
    adoption = [1.0 if r.start == 0 else min(1.0, max(0.0, (fraction - r.start) / ROLLOUT_RAMP)) for r in RELEASES]
    newest_live = max(i for i, share in enumerate(adoption) if share > 0)
    # One draw for all releases: older releases have a larger share, so the newest one below it wins.
    u = rng.random()
    chosen = max(i for i, share in enumerate(adoption) if u < share)
    return RELEASES[chosen], chosen < newest_live


def _ip(rng: random.Random, country: Country) -> str:
    prefix = rng.choice(country.ip_prefixes)
    if prefix.count(".") == 2:
        return f"{prefix}.{rng.randrange(1, 255)}"
    return f"{prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


# --------------------------------------------------------------------------------------------------------------
# One session
# --------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SessionBuilder:
    """Walks one visitor through the shop. `t` only moves forward and every event is stamped at or after it,
    so a dead click really is followed by silence."""

    rng: random.Random
    start: int
    device: Device
    network_factor: float
    release: Release
    stale: bool
    viewport: tuple[int, int]
    recording: bool
    user: User | None
    engagement: float
    rage_pending: bool
    t: int = 0
    url: str = ""
    kind: str = ""
    page_clicks: int = 0
    identified: bool = False
    product: Product = PRODUCTS[0]
    listing: tuple[Product, ...] = ()  # the product cards on the current page
    screen: Screen | None = None  # what the recording shows (recorded sessions only)
    shown_at: int = 0  # when the current page appeared in the recording
    clicked: int = 0  # the node id of the last click's target
    order_id: int = 0
    cart: list[Product] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.t = self.start

    # ---- primitives -----------------------------------------------------------------------------------------

    @property
    def deadline(self) -> int:
        """Waits are cut short past this point, leaving the last page time to finish within MAX_SESSION_MS."""
        return self.start + MAX_SESSION_MS - 60_000

    def wait(self, median_ms: float, sigma: float = 0.8, cap_ms: int = 90_000) -> None:
        pause = min(cap_ms, _lognormal(self.rng, median_ms * self.engagement, sigma), self.deadline - self.t)
        self.t += max(1, int(pause))

    def rec(self, ts: int, kind: int, data: dict[str, Any]) -> None:
        if self.recording:
            self.events.append({"type": "recording", "ts": ts, "data": {"type": kind, "timestamp": ts, "data": data}})

    def vital(self, ts: int, name: str, value: float) -> None:
        self.events.append({"type": "vital", "ts": ts, "name": name,
                            "value": round(value, 4 if name == "CLS" else 1)})

    def custom(self, name: str, properties: dict[str, Any]) -> None:
        self.events.append({"type": "custom", "ts": self.t, "name": name, "properties": properties})
        self.t += self.rng.randrange(1, 20)

    def console(self, level: str, message: str) -> None:
        self.events.append({"type": "console", "ts": self.t, "level": level, "message": message})
        self.t += self.rng.randrange(1, 40)

    def network(self, method: str, path: str, status: int, median_ms: float) -> int:
        """One API call starting at `t`; `t` moves past its end. Returns the status."""
        rng = self.rng
        # Log-normal latency; failing upstreams are slow too (timeouts at the gateway).
        duration = int(_lognormal(rng, median_ms, 0.6) * self.network_factor * (4 if status >= 500 else 1)) + 1
        request_bytes = 0 if method == "GET" else rng.randrange(120, 1500)
        if status == 304:
            response_bytes = 0
        elif status >= 400:
            response_bytes = rng.randrange(90, 700)
        else:
            response_bytes = int(_lognormal(rng, 3500, 0.9))
        self.events.append({"type": "network", "ts": self.t, "method": method, "url": API + path,
                            "status": status, "durationMs": duration, "requestBytes": request_bytes,
                            "responseBytes": response_bytes})
        self.t += duration + rng.randrange(5, 60)
        return status

    def get_status(self) -> int:
        """Status of a GET: mostly 200, browser revalidations (304), a few 404s and ~1.5% 5xx."""
        r = self.rng.random()
        if r < 0.015:
            return NETWORK_5XX.pick(self.rng)
        if r < 0.035:
            return 404
        return 304 if r < 0.12 else 200

    def post_status(self, failure_rate: float = 0.015) -> int:
        return NETWORK_5XX.pick(self.rng) if self.rng.random() < failure_rate else 201

    def error(self, key: str, n: int | None = None, extra: dict[str, Any] | None = None) -> None:
        defn, rng = ERRORS[key], self.rng
        if n is None:
            n = 0 if rng.random() < defn.n_zero_share else rng.randint(*defn.n_range)
        code = f"{rng.choice(COUPONS)}-{rng.randrange(100, 1000)}"
        message = defn.message.format(n=n, code=code)
        self.events.append({"type": "error", "ts": self.t, "errorType": defn.error_type, "message": message,
                            "stack": _stack(defn, message, self.release, self.device.stack_style),
                            "handled": defn.handled, "tags": {"area": defn.area, "route": self.kind},
                            "extra": extra or {}})
        self.t += rng.randrange(1, 30)

    def click(self, selector: str, text: str, effect: str = "mutation") -> None:
        """A click. `effect`: "mutation" (the page reacts in place), "dead" (nothing happens for well over a
        second) or "other" (the caller emits what follows: a navigation, typing, a request...)."""
        rng = self.rng
        width, height = self.viewport
        x, y = rng.randrange(8, width - 8), rng.randrange(60, height - 8)
        if self.recording:
            self.rec(self.t, EVENT_INCREMENTAL, {"source": SOURCE_MOUSE_INTERACTION, "type": CLICK,
                                                 "id": self.target(selector, text), "x": x, "y": y,
                                                 "pointerType": POINTER_TOUCH if self.touch else POINTER_MOUSE})
        self.events.append({"type": "click", "ts": self.t, "selector": selector, "text": text, "x": x, "y": y})
        if self.page_clicks == 0 and self.device.kind != "bot":
            # First input delay: only the first interaction on a page has one.
            self.vital(self.t + 1, "FID", _lognormal(rng, 6 * self.device.speed, 0.9))
        self.page_clicks += 1
        self.t += 2
        if effect == "mutation":
            self.mutation(self.t + int(_lognormal(rng, 60 * self.device.speed, 0.7)))
        elif effect == "dead":
            self.t += rng.randrange(1_300, 4_000)

    @property
    def touch(self) -> bool:
        return self.device.kind in ("mobile", "tablet")

    def target(self, selector: str, text: str) -> int:
        """The recorded node a click or keystroke lands on; remembered for the page's reaction to it."""
        assert self.screen is not None, "a page is on screen before anything is clicked"
        self.clicked = self.screen.node(selector, text)
        return self.clicked

    def mutation(self, ts: int, note: str = "") -> None:
        """The page reacting in place: the control last used changes state, and `note` shows in its status line."""
        if self.recording:
            assert self.screen is not None
            texts = [{"id": self.screen.status_text, "value": note}] if note else []
            self.rec(ts, EVENT_INCREMENTAL, {
                "source": SOURCE_MUTATION, "texts": texts, "removes": [], "adds": [],
                "attributes": [{"id": self.clicked, "attributes": {"data-state": "active"}}]})
        self.t = max(self.t, ts + 1)

    def type_into(self, selector: str, chars: int) -> None:
        """Focus a field and type: the SDK sends `input` events without the value, rrweb a masked text."""
        rng = self.rng
        self.click(selector, "", effect="other")
        keystrokes = rng.randint(1, 3)
        for i in range(keystrokes):
            # The first keystroke follows the focusing click quickly (so it is not a dead click); the SDK
            # debounces the rest. rrweb masks every input: the value grows as asterisks.
            self.t += rng.randrange(150, 700) if i == 0 else int(_lognormal(rng, 700, 0.6)) + 20
            self.events.append({"type": "input", "ts": self.t, "selector": selector})
            self.rec(self.t, EVENT_INCREMENTAL, {"source": SOURCE_INPUT, "text": "*" * (chars * (i + 1) // keystrokes),
                                                 "isChecked": False, "id": self.clicked})
        self.t += rng.randrange(50, 800)

    def rage_click(self, selector: str, text: str) -> None:
        """3-5 clicks on the same control within one second, none of which visibly does anything."""
        for i in range(self.rng.randint(3, 5)):
            if i:
                self.t += self.rng.randrange(80, 220)
            self.click(selector, text, effect="other")
        self.rage_pending = False
        self.t += self.rng.randrange(300, 1_500)

    # ---- page lifecycle -------------------------------------------------------------------------------------

    def load(self, kind: str, path: str, title: str, referrer: str | None) -> None:
        """A page view: page event, rrweb meta + full snapshot, loading vitals and the page's API calls."""
        rng, page_ts = self.rng, self.t
        self.kind, self.url, self.page_clicks = kind, SHOP + path, 0
        if kind == "cart" and not self.cart:
            self.cart.append(_pick_product(rng))  # the server-side cart from an earlier visit
        key = self.page_key(kind, path)
        self.listing = _listing(kind, key)
        page: Event = {"type": "page", "ts": page_ts, "url": self.url, "title": title}
        if referrer is not None:
            page["referrer"] = referrer
        self.events.append(page)
        if self.recording:
            self.show(_page(kind, key, title), title, page_ts)
        speed, net = self.device.speed, self.network_factor
        # Server time dominates TTFB; slower (mobile) networks add some.
        ttfb = _lognormal(rng, 160, 0.5) * net * (0.75 + 0.25 * speed)
        fcp = ttfb + _lognormal(rng, 650, 0.45) * speed * net
        lcp = fcp + _lognormal(rng, 450, 0.7) * speed * net
        self.vital(page_ts + int(ttfb), "TTFB", ttfb)
        self.vital(page_ts + int(fcp), "FCP", fcp)
        self.t = page_ts + int(fcp) + 150
        self.page_data(kind, path)
        # LCP is reported once the largest paint has happened.
        self.t = max(self.t, page_ts + int(lcp) + 1)
        self.vital(self.t, "LCP", lcp)
        self.t += rng.randrange(10, 300)

    def page_key(self, kind: str, path: str) -> Any:
        """What a page of `kind` shows, beyond its kind: its product, category, search term, cart, order, user."""
        if kind == "product":
            return self.product
        if kind == "category":
            return _last_segment(path)
        if kind == "search":
            return _search_query(path).replace("+", " ")
        if kind in ("cart", "checkout"):
            return tuple(self.cart)
        if kind == "confirmation":
            return self.order_id
        if kind == "account":
            return self.user.name if self.user is not None else "Guest"
        return None

    def show(self, page: Page, title: str, page_ts: int) -> None:
        """The page appearing in the recording: a new document (meta, full snapshot) on the first load and on
        reloads (the confirmation page comes back from the payment provider); otherwise the SPA's route change,
        which replaces <main> and the title's text."""
        rng, screen = self.rng, self.screen
        if screen is None or self.kind == "confirmation" or rng.random() < RELOAD_SHARE:
            width, height = self.viewport
            self.rec(page_ts + 1, EVENT_META, {"href": self.url, "width": width, "height": height})
            self.shown_at = page_ts + rng.randrange(30, 150)
            self.rec(self.shown_at, EVENT_FULL_SNAPSHOT,
                     {"node": orjson.loads(page.snapshot), "initialOffset": {"top": 0, "left": 0}})
            self.screen = Screen(page.main, SHELL.size + 1)
            return
        self.shown_at = page_ts + rng.randrange(10, 80)
        self.screen = Screen(page.main, screen.end)  # rrweb never reuses an id within a document
        self.rec(self.shown_at, EVENT_INCREMENTAL, {
            "source": SOURCE_MUTATION, "texts": [{"id": SHELL.title_text, "value": title}], "attributes": [],
            "removes": [{"parentId": SHELL.body, "id": screen.base}], "adds": page.main.adds_at(screen.end)})

    def page_data(self, kind: str, path: str) -> None:
        """The API calls a page makes while loading; the search page can fail in a way that throws."""
        if kind == "product":
            pid = _last_segment(path)
            self.network("GET", f"/products/{pid}", self.get_status(), 90)
            self.network("GET", f"/products/{pid}/reviews?page=1", self.get_status(), 140)
        elif kind == "search":
            query = _search_query(path)
            if self.network("GET", f"/search?q={query}", self.get_status(), 180) >= 500:
                # The gateway answers with an HTML error page that the client parses as JSON.
                self.error("json-html")
        elif kind == "category":
            slug = _last_segment(path)
            self.network("GET", f"/products?category={slug}&limit=24", self.get_status(), 120)
        elif kind in ("home", "account"):
            self.network("GET", "/products?featured=1", self.get_status(), 110)
            if self.identified or kind == "account":
                self.network("GET", "/me", self.get_status(), 60)
        elif kind in ("cart", "checkout"):
            self.network("GET", "/cart", self.get_status(), 70)
        elif kind == "confirmation":
            status = NETWORK_5XX.pick(self.rng) if self.rng.random() < 0.04 else 200
            if self.network("GET", f"/orders/{self.order_id}", status, 120) >= 500:
                self.error("fetch-order", n=self.order_id, extra={"status": status})

    def hide(self, delay_ms: int, at_least: int = 0) -> None:
        """Leaving the page: web-vitals reports the final CLS, and INP when there were interactions."""
        self.t = max(self.t + delay_ms, at_least)
        if self.page_clicks and self.device.kind != "bot":
            self.vital(self.t, "INP", _lognormal(self.rng, 90 * self.device.speed, 0.6))
        self.vital(self.t, "CLS", min(1.5, _lognormal(self.rng, 0.03, 1.1)))
        self.t += 1

    def browse(self) -> None:
        """Reading the page: scrolls and mouse moves (recording only), some in-place clicks and console logs."""
        rng = self.rng
        for _ in range(min(10, int(rng.expovariate(1 / (2.2 * self.engagement))))):
            self.wait(4_000)
            r = rng.random()
            if r < 0.35:
                self.rec(self.t, EVENT_INCREMENTAL,
                         {"source": SOURCE_SCROLL, "id": DOCUMENT_ID, "x": 0, "y": rng.randrange(0, 2000)})
            elif r < 0.65 and self.recording:
                self.pointer_moves()
            elif r < 0.86:
                self.click(*rng.choice(LIVE_TARGETS[self.kind]))
            elif r < 0.97:
                self.console(*CONSOLE_MESSAGES.pick(rng))
            elif self.recording:
                self.click(*rng.choice(DEAD_TARGETS[self.kind]), effect="dead")
            self.t += 1
        self.wait(3_000)

    def pointer_moves(self) -> None:
        """The pointer (a finger on touch screens) wandering over the page's controls. rrweb sends the positions
        in one event after them, with negative offsets, none from before the page appeared."""
        assert self.screen is not None
        rng, screen = self.rng, self.screen
        width, height = self.viewport
        step = min(50, (self.t - self.shown_at) // 5)
        positions = [{"x": rng.randrange(width), "y": rng.randrange(height), "id": screen.hover(rng),
                      "timeOffset": -step * i} for i in range(rng.randint(2, 4), 0, -1)]
        source = SOURCE_TOUCH_MOVE if self.touch else SOURCE_MOUSE_MOVE
        self.rec(self.t, EVENT_INCREMENTAL, {"source": source, "positions": positions})

    def finish(self) -> list[Event]:
        self.events.sort(key=_TS)
        cutoff = self.start + MAX_SESSION_MS
        return [e for e in self.events[:MAX_EVENTS] if e["ts"] <= cutoff]


_TS = itemgetter("ts")


def _last_segment(path: str) -> str:
    return path.split("?", 1)[0].rsplit("/", 1)[1]


def _search_query(path: str) -> str:
    """The `q` parameter of a search page's path, as in the URL (`+` for spaces)."""
    return path.split("q=", 1)[1].split("&", 1)[0]


def _stack(defn: ErrorDef, message: str, release: Release, style: str) -> str:
    """Error.stack as the engine formats it (V8 repeats the message; JSC/Gecko list `fn@url` frames only),
    pointing at the release's content-hashed bundles."""
    lines = [f"{defn.error_type}: {message}"] if style == "v8" else []
    for frame in defn.frames:
        if not frame.bundle:
            lines.append(f"    at {frame.function} (<anonymous>)" if style == "v8"
                         else f"{frame.function.rsplit('.', 1)[-1]}@[native code]")
            continue
        column = frame.column + (0 if frame.bundle == "vendor" else release.shift)
        location = f"{STATIC}/{frame.bundle}.{release.hashes[frame.bundle]}.js:{frame.line}:{column}"
        lines.append(f"    at {frame.function} ({location})" if style == "v8" else f"{frame.function}@{location}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# The shop's pages as rrweb serializes them
# --------------------------------------------------------------------------------------------------------------

# rrweb's numbers: EventType, IncrementalSource, MouseInteractions.Click and PointerTypes.
EVENT_FULL_SNAPSHOT, EVENT_INCREMENTAL, EVENT_META = 2, 3, 4
SOURCE_MUTATION, SOURCE_MOUSE_MOVE, SOURCE_MOUSE_INTERACTION, SOURCE_SCROLL, SOURCE_INPUT, SOURCE_TOUCH_MOVE = (
    0, 1, 2, 3, 5, 6)
CLICK = 2
POINTER_MOUSE, POINTER_TOUCH = 0, 2
DOCUMENT_ID = 1  # rrweb numbers a freshly loaded document's nodes from 1; scrolling the page targets it
# Share of navigations that load a whole new document (a new full snapshot) instead of changing the SPA's route.
RELOAD_SHARE = 0.1

SHOP_CSS = (
    ":root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--accent:#2563eb}*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.5 system-ui,sans-serif;color:var(--ink);background:#f9fafb}"
    "a{color:inherit;text-decoration:none}h1{font-size:28px;margin:8px 0 16px}h2{font-size:20px;margin:24px 0 12px}"
    ".site-header{background:#fff;border-bottom:1px solid var(--line)}"
    ".site-nav{display:flex;flex-wrap:wrap;gap:16px;align-items:center;max-width:1120px;margin:auto;padding:12px 20px}"
    ".logo{font-weight:800;font-size:20px;color:var(--accent)}"
    ".categories{display:flex;flex-wrap:wrap;gap:12px;list-style:none;margin:0;padding:0}"
    ".search{display:flex;flex:1;min-width:200px}.search input{flex:1;padding:8px;border:1px solid var(--line)}"
    "main{display:block;max-width:1120px;margin:auto;padding:20px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:16px}"
    ".product-card,.cart-summary,.order-summary,fieldset{background:#fff;border:1px solid var(--line);"
    "border-radius:10px;padding:12px;margin:0 0 16px}.product-card{display:block;font-weight:600}"
    ".product-card::before{content:'';display:block;height:140px;border-radius:8px;margin-bottom:8px;"
    "background:hsl(var(--hue) 55% 82%)}.product-card::after{content:attr(data-price);display:block}"
    ".price,.cart-total,.product-card::after{font-weight:700;color:#047857}"
    "button{padding:8px 14px;border:1px solid var(--line);border-radius:6px;background:#fff;font:inherit}"
    ".primary{background:var(--accent);color:#fff;border-color:var(--accent)}"
    "[data-state=active]{outline:2px solid var(--accent)}.status{min-height:24px;color:var(--accent)}"
    ".hero-banner{background:linear-gradient(120deg,#1e3a8a,#2563eb);color:#fff;border-radius:12px;padding:40px}"
    ".breadcrumbs,.free-shipping,.result-count,.terms,.site-footer{color:var(--muted);font-size:13px}"
    ".toolbar,.options{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:12px 0}"
    ".product{display:grid;grid-template-columns:1fr 1fr;gap:32px}.product-gallery img{width:100%;border-radius:12px}"
    ".rating{color:#b45309}table{width:100%;border-collapse:collapse;background:#fff}"
    "td,th{padding:10px;border-bottom:1px solid var(--line);text-align:left}"
    ".field{display:flex;flex-direction:column;margin:8px 0}.field input{padding:8px;border:1px solid var(--line)}"
    ".avatar{width:64px;height:64px;border-radius:50%;background:#c7d2fe;display:grid;place-items:center}"
    ".site-footer{text-align:center;padding:32px}"
    "@media (max-width:700px){.product{grid-template-columns:1fr}.grid{grid-template-columns:1fr 1fr}"
    ".categories{display:none}}"
)


class El(NamedTuple):
    """An element of a page. `keys`: contextual selectors the generated clicks also name it by ("nav a.logo")."""

    tag: str
    attrs: dict[str, str]
    children: tuple[El | str, ...]
    keys: tuple[str, ...] = ()


def h(tag: str, attrs: dict[str, str] | None = None, *children: El | str, keys: tuple[str, ...] = ()) -> El:
    return El(tag, attrs or {}, children, keys)


# Placeholders in the shell: the page's title text and its <main>, filled in per page.
TITLE_SLOT = "\x00title"
MAIN_SLOT = h("\x00main")
_SLOT_MARK = b"\x00"


def _selectors(node: El) -> Iterator[str]:
    """The selectors the generator's clicks name an element by: tag#id, tag[name=...], tag.class, its keys."""
    attrs = node.attrs
    if "id" in attrs:
        yield f"{node.tag}#{attrs['id']}"
    if "name" in attrs:
        yield f"{node.tag}[name={attrs['name']}]"
    for cls in attrs.get("class", "").split():
        yield f"{node.tag}.{cls}"
    yield from node.keys


def _json(value: Any) -> bytes:
    # A literal '%' must survive the %-format that fills in the node ids.
    return orjson.dumps(value).replace(b"%", b"%%")


class Serializer:
    """Serializes a tree as rrweb does, into JSON text with `%d` where node ids go: nodes are numbered in
    document order from `first`, and a page view renders the text with its own ids by one %-format."""

    def __init__(self, first: int) -> None:
        self.count = first
        self.flat: dict[int, bytes] = {}  # each node without its children, as a mutation adds it
        self.children: dict[int, list[int]] = {}
        self.targets: dict[tuple[str, str], int] = {}  # (selector, text) and (selector, "") -> first node
        self.title_text = 0

    def node(self, node: El | str) -> tuple[bytes, list[int], str]:
        """(JSON, the node number for each %d in it, the text content)."""
        number = self.count
        self.count += 1
        if isinstance(node, El):
            return self.element(node, number)
        if node == TITLE_SLOT:
            self.title_text = number
        content = _SLOT_MARK if node == TITLE_SLOT else _json(node)
        self.flat[number] = json = b'{"type":3,"textContent":' + content + b',"id":%d}'
        return json, [number], "" if node == TITLE_SLOT else node

    def element(self, node: El, number: int) -> tuple[bytes, list[int], str]:
        parts, holes, texts, children = [], [], [], []
        for child in node.children:
            if child is MAIN_SLOT:
                parts.append(_SLOT_MARK)
                continue
            children.append(self.count)
            json, child_holes, text = self.node(child)
            parts.append(json)
            holes += child_holes
            texts.append(text)
        self.children[number] = children
        text = " ".join("".join(texts).split())
        for selector in _selectors(node):
            self.targets.setdefault((selector, text), number)
            self.targets.setdefault((selector, ""), number)
        # rrweb's key order: the id comes last, after the children.
        head = b'{"type":2,"tagName":' + _json(node.tag) + b',"attributes":' + _json(node.attrs) + b',"childNodes":['
        self.flat[number] = head + b'],"id":%d}'
        return head + b",".join(parts) + b'],"id":%d}', [*holes, number], text

    def adds(self, parent_id: int, next_id: int) -> tuple[bytes, list[int]]:
        """The tree (numbered from 0) as rrweb's mutation `adds` when inserted under `parent_id` before `next_id`:
        one add per node without its children, each parent before its children, siblings last to first so that
        each names its already added next sibling (the order rrweb records)."""
        parts = [b'{"parentId":%d,"nextId":%d,"node":' % (parent_id, next_id) + self.flat[0] + b"}"]
        holes = [0]
        for parent, children in sorted(self.children.items()):
            following: int | None = None
            for number in reversed(children):
                next_json = b"null" if following is None else b"%d"
                parts.append(b'{"parentId":%d,"nextId":' + next_json + b',"node":' + self.flat[number] + b"}")
                holes += [parent] if following is None else [parent, following]
                holes.append(number)
                following = number
        return b"[" + b",".join(parts) + b"]", holes


class Shell(NamedTuple):
    """The document around every page's <main>, numbered from 1 as a fresh page load is."""

    pieces: tuple[bytes, bytes, bytes]  # before the title text, between it and <main>, after <main>
    size: int  # node ids 1..size
    body: int
    footer: int
    title_text: int
    targets: dict[tuple[str, str], int]


class Template(NamedTuple):
    """A page's <main>, numbered from 0: rendered with `base` added to every node number."""

    tree: bytes
    tree_holes: tuple[int, ...]
    adds: bytes
    adds_holes: tuple[int, ...]
    size: int
    targets: dict[tuple[str, str], int]
    status_text: int  # the text of `p.status`, the page's live region for in-place feedback
    hover: tuple[int, ...]  # nodes the pointer rests on: those the clicks can name

    def render(self, base: int) -> bytes:
        return self.tree % tuple(base + number for number in self.tree_holes)

    def adds_at(self, base: int) -> list[dict[str, Any]]:
        adds: list[dict[str, Any]] = orjson.loads(self.adds % tuple(base + number for number in self.adds_holes))
        return adds


class Page(NamedTuple):
    main: Template
    snapshot: bytes  # the whole document as a full snapshot's `node`: the shell, then <main> from shell.size + 1


def _shell() -> Shell:
    doc = h("html", {"lang": "en"},
            h("head", None, h("meta", {"charset": "utf-8"}), h("title", None, TITLE_SLOT),
              h("style", {"_cssText": SHOP_CSS}, "")),
            h("body", {"class": "shop"}, _header(), MAIN_SLOT,
              h("footer", {"class": "site-footer"}, f"© 2026 {SITE_NAME} · Free returns within 30 days")))
    serializer = Serializer(first=3)
    json, holes, _ = serializer.node(doc)
    document = (b'{"type":0,"childNodes":[{"type":1,"name":"html","publicId":"","systemId":"","id":2},'
                + json + b'],"id":1}') % tuple(holes)
    before_title, before_main, after_main = document.split(_SLOT_MARK)
    targets = serializer.targets
    return Shell((before_title, before_main, after_main), serializer.count - 1, targets["body.shop", ""],
                 targets["footer.site-footer", ""], serializer.title_text, targets)


def _header() -> El:
    categories = (h("a", {"class": "category", "href": f"/category/{slug}"}, slug.title(), keys=("nav a.category",))
                  for slug in CATEGORIES)
    return h("header", {"class": "site-header"},
             h("nav", {"class": "site-nav"},
               h("a", {"class": "logo", "href": "/"}, SITE_NAME, keys=("nav a.logo",)),
               h("div", {"class": "categories"}, *categories),
               h("form", {"class": "search", "role": "search", "action": "/search"},
                 h("input", {"type": "search", "name": "q", "placeholder": "Search products",
                             "aria-label": "Search"}),
                 h("button", {"id": "search-submit", "type": "submit"}, "Search")),
               h("a", {"class": "account", "href": "/account"}, "Account", keys=("nav a.account",)),
               h("a", {"class": "signup", "href": "/signup"}, "Sign up", keys=("nav a.signup",)),
               h("a", {"class": "cart-link", "href": "/cart"}, "Cart", keys=("nav a.cart-link",))))


SHELL = _shell()
SHELL_HOVER = tuple(sorted(set(SHELL.targets.values())))


def _compile(main: El) -> Template:
    serializer = Serializer(first=0)
    tree, tree_holes, _ = serializer.node(main)
    adds, adds_holes = serializer.adds(SHELL.body, SHELL.footer)
    targets = serializer.targets
    return Template(tree, tuple(tree_holes), adds, tuple(adds_holes), serializer.count, targets,
                    targets["p.status", ""] + 1, tuple(sorted(set(targets.values()))))


@lru_cache(maxsize=512)
def _page(kind: str, key: Any, title: str) -> Page:
    """A page of `kind` showing `key` (a product, category, search term, cart, order...), built once."""
    main = _compile(h("main", {"id": "app", "class": f"page page-{kind}"}, *PAGE_BUILDERS[kind](key),
                      h("p", {"class": "status", "role": "status"}, "")))
    before_title, before_main, after_main = SHELL.pieces
    snapshot = before_title + orjson.dumps(title) + before_main + main.render(SHELL.size + 1) + after_main
    return Page(main, snapshot)


# ---- what each page shows ------------------------------------------------------------------------------------

GRID_CARDS = 6
RECOMMENDED_CARDS = 3
BEST_SELLERS = PRODUCTS[:GRID_CARDS]  # _pick_product favours the front of the catalogue
_BY_CATEGORY: dict[str, tuple[Product, ...]] = {c: tuple(p for p in PRODUCTS if p.category == c) for c in CATEGORIES}


def _search_results(term: str) -> tuple[Product, ...]:
    words = set(term.split())
    return tuple(p for p in PRODUCTS if words & set(p.name.lower().split()))


def _listing(kind: str, key: Any) -> tuple[Product, ...]:
    """The product cards a page shows, best placed first: where a click on a product card can lead."""
    if kind == "home":
        return BEST_SELLERS
    if kind == "category":
        return _BY_CATEGORY[key][:GRID_CARDS]
    if kind == "search":
        return _search_results(key)[:GRID_CARDS] or BEST_SELLERS
    if kind == "product":
        return tuple(p for p in _BY_CATEGORY[key.category] if p != key)[:RECOMMENDED_CARDS]
    if kind in ("cart", "signup", "account"):
        return BEST_SELLERS[:RECOMMENDED_CARDS]
    return ()


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _hue(product: Product) -> int:
    """The colour of the product's placeholder picture (the demo has no images)."""
    return product.id * 47 % 360


def _card(product: Product) -> El:
    # The picture and the price are drawn by CSS (::before, ::after), so the card's text is the product's name,
    # as the click on it reports, and a card costs two nodes.
    return h("a", {"class": "product-card", "href": f"/product/{product.id}", "style": f"--hue:{_hue(product)}",
                   "data-price": _money(product.price)}, product.name)


def _cards(title: str, products: tuple[Product, ...]) -> El:
    return h("section", {"class": "recommendations"}, h("h2", None, title),
             h("div", {"class": "grid"}, *map(_card, products)))


def _crumbs(*names: str) -> El:
    return h("nav", {"class": "breadcrumbs"}, " / ".join(("Home", *names)))


def _field(label: str, name: str, kind: str = "text") -> El:
    return h("label", {"class": "field"}, label, h("input", {"type": kind, "name": name, "autocomplete": name}))


def _home_page(_: None) -> tuple[El, ...]:
    return (h("div", {"class": "hero-banner"}, h("h1", None, "Winter restock is here"),
              h("p", None, "Warm layers, waterproof shells and trail shoes for the cold months."),
              h("a", {"class": "hero-cta", "href": "/category/jackets"}, "Shop jackets")),
            h("span", {"class": "free-shipping"}, "Free shipping over $50"),
            h("button", {"class": "carousel-next", "aria-label": "Next slide"}, "Next"),
            _cards("Best sellers", _listing("home", None)),
            h("form", {"class": "newsletter"}, h("h2", None, "Get 10% off your first order"),
              _field("Email", "newsletter-email", "email"),
              h("button", {"id": "newsletter-signup", "type": "button"}, "Subscribe")))


def _toolbar(count: str, filters: tuple[str, ...], *extra: El) -> El:
    return h("div", {"class": "toolbar"}, h("span", {"class": "result-count"}, count),
             *(h("button", {"class": "filter"}, name) for name in filters),
             h("select", {"id": "sort", "aria-label": "Sort by"}, h("option", {"value": "featured"}, "Featured"),
               h("option", {"value": "price"}, "Price: low to high")), *extra)


def _category_page(slug: str) -> tuple[El, ...]:
    products = _listing("category", slug)
    return (_crumbs(slug.title()), h("h1", {"class": "category-title"}, slug.title()),
            _toolbar(f"{len(_BY_CATEGORY[slug])} products", ("Price", "Size")),
            h("div", {"class": "grid"}, *map(_card, products)),
            h("button", {"class": "load-more"}, "Load more"))


def _search_page(term: str) -> tuple[El, ...]:
    found = _search_results(term)
    summary = f"{len(found)} results" if found else f"No results for “{term}”, popular right now:"
    return (h("div", {"class": "search-summary"}, h("h1", None, f"Results for “{term}”")),
            _toolbar(summary, ("Size", "Price"), h("button", {"class": "filter-apply"}, "Apply")),
            h("div", {"class": "grid"}, *map(_card, _listing("search", term))))


def _product_page(product: Product) -> tuple[El, ...]:
    hue = _hue(product)
    image = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 4 3'%3E%3Crect "
             f"width='4' height='3' fill='hsl({hue},55%25,82%25)'/%3E%3C/svg%3E")
    return (_crumbs(product.category.title(), product.name),
            h("div", {"class": "product"},
              h("div", {"class": "product-gallery"}, h("img", {"src": image, "alt": product.name},
                                                       keys=("div.product-gallery img",))),
              h("div", {"class": "product-info"}, h("h1", None, product.name),
                h("div", {"class": "rating", "title": "4.6 out of 5"}, "4.6"),
                h("span", {"class": "price"}, _money(product.price)),
                h("p", {"class": "description"}, f"Our {product.name.lower()}: made to last, easy to care for, "
                                                 "free returns within 30 days."),
                h("div", {"class": "options"}, *(h("button", {"class": "size-option"}, s) for s in ("S", "M", "L")),
                  *(h("button", {"class": "color-swatch"}, c) for c in ("Navy", "Sand"))),
                h("button", {"id": "add-to-cart", "class": "primary"}, "Add to cart"),
                h("button", {"id": "wishlist"}, "Save"),
                h("button", {"class": "tab-reviews"}, "Reviews"))),
            _cards("You may also like", _listing("product", product)))


def _cart_page(items: tuple[Product, ...]) -> tuple[El, ...]:
    rows = (h("tr", None, h("td", None, h("a", {"href": f"/product/{p.id}"}, p.name)),
              h("td", None, _money(p.price)),
              h("td", None, h("button", {"class": "qty-decrease"}, "-"), h("span", {"class": "qty"}, "1"),
                h("button", {"class": "qty-increase"}, "+")),
              h("td", None, h("button", {"class": "remove-item"}, "Remove"))) for p in items)
    return (h("h1", None, "Your cart"),
            h("table", {"class": "cart-table"},
              h("thead", None, h("tr", None, *(h("th", None, t) for t in ("Product", "Price", "Quantity", "")))),
              h("tbody", None, *rows)),
            h("div", {"class": "cart-summary"},
              h("div", {"class": "coupon"}, h("input", {"id": "coupon", "name": "coupon", "placeholder": "Coupon"}),
                h("button", {"id": "apply-coupon"}, "Apply")),
              h("span", {"class": "cart-total"}, f"Total: {_money(sum(p.price for p in items))}"),
              h("div", {"class": "delivery-estimate"}, "Delivery in 2-4 business days"),
              h("button", {"id": "checkout", "class": "primary"}, "Checkout")),
            _cards("You may also like", _listing("cart", items)))


def _checkout_page(items: tuple[Product, ...]) -> tuple[El, ...]:
    lines = (h("li", None, f"{p.name} · {_money(p.price)}") for p in items)
    return (h("h1", None, "Checkout"),
            h("form", {"class": "checkout-form"},
              h("fieldset", None, h("legend", None, "Contact"), _field("Email", "email", "email")),
              h("fieldset", None, h("legend", None, "Shipping"), _field("Address", "address"),
                _field("City", "city"), _field("ZIP code", "zip"),
                h("label", None, h("input", {"id": "same-as-billing", "type": "checkbox"}), "Billing address same"),
                h("button", {"class": "shipping-express", "type": "button"}, "Express")),
              h("fieldset", None, h("legend", None, "Payment"),
                h("img", {"class": "card-logos", "alt": "Visa, Mastercard, Amex", "src": "/static/img/cards.svg"}),
                _field("Card number", "card-number"), _field("Expiry", "card-expiry"), _field("CVC", "card-cvc")),
              h("button", {"id": "place-order", "class": "primary", "type": "button"}, "Place order")),
            h("div", {"class": "order-summary"}, h("h2", None, "Order summary"), h("ul", None, *lines),
              h("span", {"class": "cart-total"}, f"Total: {_money(sum(p.price for p in items))}")))


def _confirmation_page(order_id: int) -> tuple[El, ...]:
    return (h("h1", None, "Thank you for your order!"), h("div", {"class": "order-number"}, f"Order o-{order_id}"),
            h("p", None, "A confirmation email is on its way."),
            h("button", {"class": "copy-order-number"}, "Copy"),
            h("a", {"class": "track-order", "href": f"/orders/{order_id}"}, "Track order"))


def _signup_page(_: None) -> tuple[El, ...]:
    return (h("h1", None, "Create your account"),
            h("form", {"class": "signup-form"}, _field("Email", "email", "email"),
              _field("Password", "password", "password"), h("button", {"class": "show-password"}, "Show"),
              h("button", {"id": "signup-submit", "class": "primary", "type": "button"}, "Create account"),
              h("p", {"class": "terms"}, "By creating an account you agree to our terms.")),
            _cards("Popular right now", _listing("signup", None)))


def _account_page(name: str) -> tuple[El, ...]:
    initials = "".join(part[0] for part in name.split()[:2])
    return (h("div", {"class": "avatar"}, initials), h("h1", None, f"Hi, {name.split()[0]}"),
            h("div", {"class": "toolbar"}, h("button", {"class": "tab-orders"}, "Orders"),
              h("button", {"class": "tab-settings"}, "Settings")),
            _field("Name", "name"), h("button", {"class": "save-profile"}, "Save"),
            _cards("Recommended for you", _listing("account", name)))


class Screen(NamedTuple):
    """What a recorded tab shows: the shell of its last full load, and a page's <main> with ids from `base`."""

    main: Template
    base: int

    @property
    def end(self) -> int:
        """The first id after this page's nodes."""
        return self.base + self.main.size

    @property
    def status_text(self) -> int:
        return self.base + self.main.status_text

    def node(self, selector: str, text: str) -> int:
        """The id of the element a click on (selector, text) lands on: on the page first, else in the shell."""
        for targets, base in ((self.main.targets, self.base), (SHELL.targets, 0)):
            number = targets.get((selector, text), targets.get((selector, "")))
            if number is not None:
                return base + number
        raise KeyError(f"no {selector!r} on the page")

    def hover(self, rng: random.Random) -> int:
        hover = self.main.hover
        index = rng.randrange(len(hover) + len(SHELL_HOVER))
        return self.base + hover[index] if index < len(hover) else SHELL_HOVER[index - len(hover)]


PAGE_BUILDERS: dict[str, Callable[[Any], tuple[El, ...]]] = {
    "home": _home_page, "category": _category_page, "search": _search_page, "product": _product_page,
    "cart": _cart_page, "checkout": _checkout_page, "confirmation": _confirmation_page, "signup": _signup_page,
    "account": _account_page,
}


# --------------------------------------------------------------------------------------------------------------
# The visit: landing, funnel steps, page-specific actions
# --------------------------------------------------------------------------------------------------------------


def _pick_product(rng: random.Random, products: Sequence[Product] = PRODUCTS) -> Product:
    # Squared uniform: a few best sellers (the first cards of a page) get most of the views.
    return products[int(len(products) * rng.random() ** 2)]


def _target(s: SessionBuilder, kind: str) -> tuple[str, str]:
    """Path and title of the next page of `kind`; remembers the product being viewed."""
    rng = s.rng
    if kind == "product":
        # Visitors open one of the product cards on screen; landings and crawls reach any product.
        s.product = _pick_product(rng, s.listing or PRODUCTS)
        return f"/product/{s.product.id}", f"{s.product.name} | {SITE_NAME}"
    if kind == "category":
        slug = rng.choice(CATEGORIES)
        return f"/category/{slug}", f"{slug.title()} | {SITE_NAME}"
    if kind == "search":
        term = rng.choice(SEARCH_TERMS)
        return f"/search?q={term.replace(' ', '+')}", f"Search: {term} | {SITE_NAME}"
    return PATHS[kind], TITLES[kind]


def _landing(s: SessionBuilder) -> tuple[str, str, str, str | None]:
    """Landing kind, path (with UTM parameters for campaign traffic), title and external referrer."""
    source = SOURCES.pick(s.rng)
    kind = source.landing.pick(s.rng)
    path, title = _target(s, kind)
    if source.utm:
        path += ("&" if "?" in path else "?") + source.utm
    return kind, path, title, source.referrer


def _next_kind(s: SessionBuilder) -> str:
    if len(s.events) >= SOFT_EVENT_LIMIT or s.t >= s.start + MAX_SESSION_MS - SESSION_TIME_MARGIN_MS:
        return "exit"
    signup_pending = s.user is not None and s.user.signup_ms is None
    if signup_pending and s.kind in ("home", "product", "category") and s.rng.random() < 0.35:
        return "signup"
    nxt = TRANSITIONS[s.kind].pick(s.rng)
    if nxt == "account" and not s.identified:
        return "home"
    return nxt


def _identify(s: SessionBuilder) -> None:
    user = s.user
    assert user is not None and user.signup_ms is not None
    signup_date = datetime.fromtimestamp(user.signup_ms / 1000, UTC).strftime("%Y-%m-%d")
    s.events.append({"type": "identify", "ts": s.t, "userId": user.user_id,
                     "traits": {"name": user.name, "email": user.email, "plan": user.plan,
                                "signupDate": signup_date}})
    s.identified = True
    s.t += s.rng.randrange(5, 50)


def _after_load(s: SessionBuilder) -> None:
    """What happens right after a page has loaded: identify, errors thrown while rendering, funnel events."""
    rng, kind = s.rng, s.kind
    if not s.identified and s.user is not None and s.user.signup_ms is not None:
        _identify(s)  # a returning, logged-in user: the app identifies on its first load
    if kind == "product":
        if s.release.version in ERRORS["gallery-null"].releases and rng.random() < 0.05:
            s.error("gallery-null")
        p = s.product
        s.custom("Product Viewed", {"productId": p.id, "name": p.name, "price": p.price, "category": p.category})
    elif kind == "cart":
        if s.release.version in ERRORS["delivery-date"].releases and rng.random() < 0.06:
            s.error("delivery-date")
    elif kind == "checkout":
        s.custom("Checkout Started", {"cartValue": _total(s.cart), "items": len(s.cart)})
    elif kind == "confirmation":
        props: dict[str, Any] = {"orderId": f"o-{s.order_id}", "revenue": _total(s.cart), "currency": "USD",
                                 "items": len(s.cart)}
        if s.user is not None:
            props["plan"] = s.user.plan
        s.custom("Checkout Completed", props)
        s.cart.clear()


def _total(cart: list[Product]) -> float:
    return round(sum(p.price for p in cart), 2)


def _act(s: SessionBuilder, nxt: str) -> None:
    """Page-specific actions before leaving towards `nxt`."""
    rng = s.rng
    if s.kind == "product" and (nxt == "cart" or rng.random() < 0.06):
        _add_to_cart(s)
    elif s.kind == "cart" and rng.random() < 0.12:
        _apply_coupon(s)
    elif s.kind == "checkout":
        fields: tuple[str, ...] = CHECKOUT_FIELDS[1:] if s.identified else CHECKOUT_FIELDS
        if nxt != "confirmation":
            fields = fields[: rng.randrange(len(fields))]  # abandoned part-way through the form
        for selector in fields:
            s.type_into(selector, rng.randint(3, 24))
            s.wait(900, cap_ms=20_000)
    if s.rage_pending and (nxt == "exit" or rng.random() < 0.3):
        s.rage_click(*RAGE_TARGETS[s.kind])


def _add_to_cart(s: SessionBuilder) -> None:
    s.click("button#add-to-cart", "Add to cart", effect="other")
    if s.network("POST", "/cart/items", s.post_status(0.01), 150) < 400:
        s.mutation(s.t + 20, "Added to cart")
        p = s.product
        s.custom("Added To Cart", {"productId": p.id, "name": p.name, "price": p.price, "quantity": 1})
        s.cart.append(p)
    s.wait(1_500, cap_ms=20_000)


def _apply_coupon(s: SessionBuilder) -> None:
    s.type_into("input#coupon", s.rng.randint(6, 12))
    s.click("button#apply-coupon", "Apply", effect="other")
    valid = s.rng.random() < 0.4
    s.network("POST", "/cart/coupon", 200 if valid else 422, 120)
    s.mutation(s.t + 15, "Coupon applied" if valid else "This coupon code is not valid")
    if not valid:
        s.error("coupon")
    s.wait(1_500, cap_ms=20_000)


# The control that takes a visitor to each kind of page. (selector, text)
NAV_CLICKS: dict[str, tuple[str, str]] = {
    "home": ("nav a.logo", SITE_NAME), "category": ("nav a.category", ""), "cart": ("nav a.cart-link", "Cart"),
    "checkout": ("button#checkout", "Checkout"), "signup": ("nav a.signup", "Sign up"),
    "account": ("nav a.account", "Account"),
}


def _navigate(s: SessionBuilder, nxt: str) -> tuple[str, str] | None:
    """Emit what takes the visitor to `nxt`; returns its (path, title), or None if they gave up on the way."""
    rng = s.rng
    if nxt == "confirmation":
        if not _place_order(s):
            return None
    elif nxt == "signup":
        s.click(*NAV_CLICKS["signup"], effect="other")
    path, title = _target(s, nxt)
    if nxt == "product":
        s.click("a.product-card", s.product.name, effect="other")
    elif nxt == "search":
        s.type_into("input[name=q]", len(path.split("q=", 1)[1]))
        s.click("button#search-submit", "Search", effect="other")
    elif nxt == "category":
        s.click("nav a.category", path.rsplit("/", 1)[1].title(), effect="other")
    elif nxt in NAV_CLICKS and nxt != "signup":
        s.click(*NAV_CLICKS[nxt], effect="other")
    # Route chunks are lazy-loaded; a tab still running an old release asks for chunks that are gone.
    if nxt in ("product", "checkout") and rng.random() < (0.04 if s.stale else 0.003):
        s.error("chunk-load")
    return path, title


def _place_order(s: SessionBuilder) -> bool:
    """Click "Place order": the client bug, a failing order API (with one retry) or success."""
    rng = s.rng
    for attempt in range(2):
        s.click("button#place-order", "Place order", effect="other")
        if rng.random() < 0.04:
            s.error("order-undefined")  # thrown before the request is even sent
            if rng.random() < 0.5:
                s.rage_click("button#place-order", "Place order")
            return False
        status = s.network("POST", "/orders", s.post_status(0.06), 450)
        if status < 400:
            s.order_id = rng.randrange(1000, 100_000)
            return True
        s.console("error", f"POST {API}/orders {status}")
        s.mutation(s.t + 10, "We could not place your order. Please try again.")
        if attempt or rng.random() < 0.4:
            return False
        s.wait(3_000, cap_ms=20_000)
    return False


def _sign_up(s: SessionBuilder) -> None:
    s.type_into("input[name=email]", s.rng.randint(12, 30))
    s.type_into("input[name=password]", s.rng.randint(10, 16))
    s.click("button#signup-submit", "Create account", effect="other")
    if s.network("POST", "/users", s.post_status(0.01), 250) < 400 and s.user is not None:
        s.user.signup_ms = s.t
        s.custom("Signed Up", {"method": s.rng.choice(("email", "email", "google")), "plan": s.user.plan})
        _identify(s)
    s.mutation(s.t + 20, "Account created")


def _min_end(s: SessionBuilder) -> int:
    """Earliest end of the session: a visit lasts at least MIN_SESSION_MS, and a bounced visitor who just reads
    the landing page still lingers a while (exponential, capped well inside MAX_SESSION_MS)."""
    return s.start + MIN_SESSION_MS + min(10 * 60_000, int(s.rng.expovariate(1 / 40_000)))


def _walk(s: SessionBuilder) -> None:
    """The visit: load a page, browse, act, move on along the funnel until the visitor leaves."""
    kind, path, title, referrer = _landing(s)
    while True:
        s.load(kind, path, title, referrer)
        _after_load(s)
        if kind == "signup":
            _sign_up(s)
        nxt = _next_kind(s)
        s.browse()
        _act(s, nxt)
        target = None if nxt == "exit" else _navigate(s, nxt)
        if target is None:
            s.hide(s.rng.randrange(500, 5_000), _min_end(s))
            return
        s.hide(s.rng.randrange(5, 50))
        s.t += int(s.rng.randrange(80, 700) * s.network_factor)
        referrer, kind, (path, title) = s.url, nxt, target


def _crawl(s: SessionBuilder) -> None:
    """A crawler: fetches pages directly (no clicks, no referrer), a few seconds apart."""
    rng = s.rng
    for _ in range(rng.randint(2, 12)):
        kind = rng.choice(("product", "product", "category", "home"))
        path, title = _target(s, kind)
        s.load(kind, path, title, None)
        s.t += rng.randrange(1_500, 6_000)
    s.hide(100, _min_end(s))


# --------------------------------------------------------------------------------------------------------------
# Sessions to batches, and the public API
# --------------------------------------------------------------------------------------------------------------


def _build(rng: random.Random, plan: Plan, window_start: int, days: int) -> tuple[SessionBuilder, dict[str, Any]]:
    """A builder for the planned session and its wire `context`."""
    device, user = plan.device, plan.user
    release, stale = _pick_release(rng, (plan.start - window_start) / (days * DAY_MS))
    same_device = user is not None and device is user.device
    viewport = user.viewport if user is not None and same_device else rng.choice(device.viewports)
    user_agent = user.user_agent if user is not None and same_device else rng.choice(device.user_agents)
    language = user.language if user is not None else rng.choice(plan.country.languages)
    is_bot = device.kind == "bot"
    builder = SessionBuilder(
        rng=rng, start=plan.start, device=device, network_factor=plan.country.network, release=release,
        stale=stale, viewport=viewport, recording=not is_bot and rng.random() < RECORDING_SHARE, user=user,
        engagement=min(5.0, max(0.3, _lognormal(rng, 1.0, 0.75))),
        rage_pending=not is_bot and rng.random() < RAGE_SESSION_SHARE,
    )
    context = {"userAgent": user_agent, "viewport": {"width": viewport[0], "height": viewport[1]},
               "language": language, "timezone": plan.timezone[0], "release": release.version,
               "sdk": dict(SDK_INFO)}
    return builder, context


def _batches(rng: random.Random, app_id: str, session_id: str, context: dict[str, Any], client_ip: str,
             events: list[Event]) -> Iterator[dict[str, Any]]:
    """Split a session's events into 1-4 contiguous batches, as an SDK flushing every so often would."""
    duration_s = (events[-1]["ts"] - events[0]["ts"]) / 1000
    count = min(4, len(events), 1 + int(duration_s / 150 + rng.random() * 1.5))
    cuts = [0, *sorted(rng.sample(range(1, len(events)), count - 1)), len(events)]
    sent_at = 0
    for seq in range(count):
        chunk = events[cuts[seq]:cuts[seq + 1]]
        # Never earlier than the previous batch: the SDK sends in order.
        sent_at = max(sent_at, chunk[-1]["ts"] + rng.randrange(0, 3_001))
        batch: dict[str, Any] = {"appId": app_id, "sessionId": session_id, "seq": seq, "sentAt": sent_at}
        if seq == 0:
            batch["context"] = context
        batch["clientIp"] = client_ip
        batch["events"] = chunk
        yield batch


def default_end_ms() -> int:
    """The start of the current UTC day: stable all day (same seed, same data) and never in the future."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return now_ms - now_ms % DAY_MS


def generate_batches(app_id: str, sessions: int, seed: int = 1, days: int = 7,
                     end_ms: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield wire-format batches (plain dicts) for `sessions` sessions spread over the `days` days before end_ms
    (epoch ms; default: the start of the current UTC day, so the same seed gives the same data all
    day). Same arguments -> exactly the same batches, in the same order.

    Sessions come in order of start time, each as 1-4 batches (seq 0, 1, ...) whose events are in ts order.
    Every yielded dict is freshly built, so callers may mutate them.
    """
    if sessions < 0 or days < 1:
        raise ValueError("sessions must be >= 0 and days >= 1")
    end = default_end_ms() if end_ms is None else end_ms
    window_start = end - days * DAY_MS
    rng = random.Random(seed)
    seen: set[str] = set()
    for plan in _plan_sessions(rng, sessions, window_start, days):
        session_id = f"s-{rng.getrandbits(64):016x}"
        while session_id in seen:
            session_id = f"s-{rng.getrandbits(64):016x}"
        seen.add(session_id)
        builder, context = _build(rng, plan, window_start, days)
        (_crawl if plan.device.kind == "bot" else _walk)(builder)
        yield from _batches(rng, app_id, session_id, context, _ip(rng, plan.country), builder.finish())


def write_ndjson(path: Path, batches: Iterable[dict[str, Any]]) -> int:
    """Write one JSON batch per line; returns the number of batches written."""
    count = 0
    with Path(path).open("wb") as out:
        for batch in batches:
            out.write(orjson.dumps(batch, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count
