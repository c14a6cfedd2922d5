"""Tests for replayql.ingest.enrich: user agents, URLs, IP -> country.

The user-agent table holds real-world strings and what ua-parser (plus our
device-type rules) makes of them, written out by hand.
"""

from __future__ import annotations

import pytest

from replayql.ingest.enrich import Device, Enricher, UrlParts, country_for_ip

ENRICHER = Enricher()  # with the default cache sizes
parse_user_agent, url_parts = ENRICHER.parse_user_agent, ENRICHER.url_parts

# ---------------------------------------------------------------------------
# parse_user_agent
# ---------------------------------------------------------------------------

CHROME_WIN10 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.91 Safari/537.36"
)
CHROME_MACOS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_MACOS_17 = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Mobile/15E148 Safari/604.1"
)
IPAD_SAFARI_OLD = (
    "Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/12.1 Mobile/15E148 Safari/604.1"
)
# iPadOS 13+ Safari asks for desktop sites and sends the macOS user agent.
IPAD_SAFARI_IPADOS_17 = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
ANDROID_CHROME_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
# Chrome's reduced user agent: the model is always "K".
ANDROID_CHROME_REDUCED = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
GALAXY_TAB_CHROME = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Safari/537.36"
)
GALAXY_TAB_SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Safari/537.36"
)
SAMSUNG_INTERNET_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
KINDLE_FIRE = (
    "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Silk/123.3.1 like Chrome/123.0.6312.118 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67"
)
OPERA_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0"
)
CHROME_OS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHROME_IOS_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
)
IE11_WINDOWS_7 = "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.6367.29 Safari/537.36"
)
LIGHTHOUSE = (
    "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"
)
CURL = "curl/8.5.0"
PYTHON_REQUESTS = "python-requests/2.31.0"
# "CUBOT" is a phone brand: the bot rule must not fire on it.
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
ANDROID_TV = (
    "Mozilla/5.0 (Linux; Android 9; SHIELD Android TV Build/PPR1.180610.011) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
PLAYSTATION_5 = (
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.0 Safari/605.1.15"
)

UNKNOWN = Device(None, None, None, None, "other")

USER_AGENTS: list[tuple[str, Device]] = [
    (CHROME_WIN10, Device("Chrome", "124.0", "Windows", "10", "desktop")),
    # macOS is frozen at 10_15_7 in every current browser's user agent.
    (CHROME_MACOS, Device("Chrome", "124.0", "macOS", "10.15", "desktop")),
    (SAFARI_MACOS_17, Device("Safari", "17.4", "macOS", "10.15", "desktop")),
    (IPHONE_SAFARI, Device("Mobile Safari", "17.4", "iOS", "17.4", "mobile")),
    (IPAD_SAFARI_OLD, Device("Mobile Safari", "12.1", "iOS", "12.2", "tablet")),
    # Indistinguishable from a Mac by its user agent: documented as desktop.
    (IPAD_SAFARI_IPADOS_17, Device("Safari", "17.4", "macOS", "10.15", "desktop")),
    (CHROME_IOS_IPAD, Device("Chrome Mobile iOS", "124.0", "iOS", "17.4", "tablet")),
    (ANDROID_CHROME_PHONE, Device("Chrome Mobile", "124.0", "Android", "14", "mobile")),
    (ANDROID_CHROME_REDUCED, Device("Chrome Mobile", "124.0", "Android", "10", "mobile")),
    (GALAXY_TAB_CHROME, Device("Chrome", "124.0", "Android", "13", "tablet")),
    (GALAXY_TAB_SAMSUNG_INTERNET, Device("Samsung Internet", "24.0", "Android", "13", "tablet")),
    (SAMSUNG_INTERNET_PHONE, Device("Samsung Internet", "25.0", "Android", "14", "mobile")),
    (KINDLE_FIRE, Device("Amazon Silk", "123.3", "Android", "11", "tablet")),
    (FIREFOX_LINUX, Device("Firefox", "125.0", "Linux", None, "desktop")),
    (FIREFOX_UBUNTU, Device("Firefox", "125.0", "Linux", None, "desktop")),
    (FIREFOX_ANDROID_TABLET, Device("Firefox Mobile", "125.0", "Android", "14", "tablet")),
    (EDGE_WINDOWS, Device("Edge", "124.0", "Windows", "10", "desktop")),
    (OPERA_WINDOWS, Device("Opera", "110.0", "Windows", "10", "desktop")),
    (CHROME_OS, Device("Chrome", "124.0", "Chrome OS", "14541.0", "desktop")),
    (IE11_WINDOWS_7, Device("IE", "11.0", "Windows", "7", "desktop")),
    (GOOGLEBOT, Device("Googlebot", "2.1", None, None, "bot")),
    (GOOGLEBOT_SMARTPHONE, Device("Googlebot", "2.1", "Android", "6.0", "bot")),
    (BINGBOT, Device("bingbot", "2.0", None, None, "bot")),
    (HEADLESS_CHROME, Device("HeadlessChrome", "124.0", "Linux", None, "bot")),
    (LIGHTHOUSE, Device("Chrome Mobile", "124.0", "Android", "11", "bot")),
    (CURL, Device("curl", "8.5", None, None, "bot")),
    (PYTHON_REQUESTS, Device("Python Requests", "2.31", None, None, "bot")),
    (CUBOT_PHONE, Device("Chrome Mobile", "124.0", "Android", "9", "mobile")),
    (ANDROID_TV, Device("Chrome", "124.0", "Android", "9", "other")),
    (PLAYSTATION_5, Device("Safari", "13.0", None, None, "other")),
    ("asdf qwerty", UNKNOWN),
    ("", UNKNOWN),
    ("   ", UNKNOWN),
]


@pytest.mark.parametrize(("user_agent", "expected"), USER_AGENTS)
def test_parse_user_agent_table(user_agent: str, expected: Device) -> None:
    assert parse_user_agent(user_agent) == expected


def test_parse_user_agent_none() -> None:
    assert parse_user_agent(None) == UNKNOWN


def test_parse_user_agent_ignores_surrounding_whitespace() -> None:
    assert parse_user_agent(f"  {CHROME_WIN10}\n") == parse_user_agent(CHROME_WIN10)


def test_parse_user_agent_very_long_input_is_truncated_not_rejected() -> None:
    # A real UA followed by 1 MB of junk still parses from its head.
    assert parse_user_agent(CHROME_WIN10 + " x" * 500_000) == Device("Chrome", "124.0", "Windows", "10", "desktop")


def test_parse_user_agent_non_string_garbage() -> None:
    assert parse_user_agent(123) == UNKNOWN  # type: ignore[arg-type]


def test_parse_user_agent_returns_cached_instance() -> None:
    assert parse_user_agent(EDGE_WINDOWS) is parse_user_agent(EDGE_WINDOWS)


def test_the_caches_keep_their_size_and_answer_alike_past_it() -> None:
    enricher = Enricher(user_agents=2, urls=3)
    devices = [enricher.parse_user_agent(ua) for ua in (CHROME_WIN10, CHROME_MACOS, SAFARI_MACOS_17, CHROME_WIN10)]
    paths = [enricher.url_parts(f"https://shop.example/p/{n}").path for n in range(5)]
    assert enricher.cache_sizes() == {"ingest.user_agents": (2, 2), "ingest.urls": (3, 3)}
    assert devices[3] == devices[0] == parse_user_agent(CHROME_WIN10)  # forgotten, then parsed again
    assert paths == [f"/p/{n}" for n in range(5)]


# ---------------------------------------------------------------------------
# url_parts
# ---------------------------------------------------------------------------

NOTHING = UrlParts(None, None, None, None, None, None)

URLS: list[tuple[str | None, UrlParts]] = [
    (
        "https://Example.COM/Pricing?utm_source=google&utm_medium=cpc&utm_campaign=spring%20sale#plans",
        UrlParts(
            "example.com",
            "/Pricing",
            "utm_source=google&utm_medium=cpc&utm_campaign=spring%20sale",
            "google",
            "cpc",
            "spring sale",
        ),
    ),
    ("https://example.com", UrlParts("example.com", "/", None, None, None, None)),
    ("https://example.com?", UrlParts("example.com", "/", None, None, None, None)),
    ("https://example.com/#/settings", UrlParts("example.com", "/", None, None, None, None)),
    # Default ports are dropped, others kept; user info never kept.
    ("https://example.com:443/a", UrlParts("example.com", "/a", None, None, None, None)),
    ("http://example.com:80/a", UrlParts("example.com", "/a", None, None, None, None)),
    ("https://example.com:8443/a", UrlParts("example.com:8443", "/a", None, None, None, None)),
    ("http://example.com:443/a", UrlParts("example.com:443", "/a", None, None, None, None)),
    ("https://User:Secret@Shop.Example.com/cart", UrlParts("shop.example.com", "/cart", None, None, None, None)),
    ("http://[::1]:8080/x", UrlParts("[::1]:8080", "/x", None, None, None, None)),
    ("http://[2001:DB8::1]/", UrlParts("[2001:db8::1]", "/", None, None, None, None)),
    ("http://10.0.0.1:3000/admin", UrlParts("10.0.0.1:3000", "/admin", None, None, None, None)),
    # Percent-encoding and IDNA are left as received.
    ("https://example.com/a%20b/%E2%9C%93", UrlParts("example.com", "/a%20b/%E2%9C%93", None, None, None, None)),
    ("https://Bücher.de/straße", UrlParts("bücher.de", "/straße", None, None, None, None)),
    ("https://xn--bcher-kva.de/", UrlParts("xn--bcher-kva.de", "/", None, None, None, None)),
    # Missing scheme: read as a host, the way an address bar does.
    ("example.com/pricing?utm_source=x", UrlParts("example.com", "/pricing", "utm_source=x", "x", None, None)),
    ("localhost:3000/dev", UrlParts("localhost:3000", "/dev", None, None, None, None)),
    ("//cdn.example.com/app.js", UrlParts("cdn.example.com", "/app.js", None, None, None, None)),
    ("index.html", UrlParts("index.html", "/", None, None, None, None)),
    # Relative URLs have no host.
    ("/docs/start?ref=nav", UrlParts(None, "/docs/start", "ref=nav", None, None, None)),
    ("?utm_medium=email", UrlParts(None, "/", "utm_medium=email", None, "email", None)),
    ("#top", UrlParts(None, "/", None, None, None, None)),
    ("not a url", UrlParts(None, "not a url", None, None, None, None)),
    # UTM: first value wins, keys case-insensitive, empty means absent, "+" is a space.
    (
        "/landing?UTM_Source=News&utm_source=second&utm_campaign=&utm_medium=social+ads",
        UrlParts(
            None,
            "/landing",
            "UTM_Source=News&utm_source=second&utm_campaign=&utm_medium=social+ads",
            "News",
            "social ads",
            None,
        ),
    ),
    # Opaque URLs: no host, no path.
    ("about:blank", NOTHING),
    ("javascript:void(0)", NOTHING),
    ("mailto:a@example.com?utm_source=z", UrlParts(None, None, "utm_source=z", "z", None, None)),
    ("file:///etc/hosts", UrlParts(None, "/etc/hosts", None, None, None, None)),
    ("http:///path", UrlParts(None, "/path", None, None, None, None)),
    ("https://", UrlParts(None, "/", None, None, None, None)),
    ("  https://example.com/x \n", UrlParts("example.com", "/x", None, None, None, None)),
    # Garbage that urllib rejects.
    ("http://[::1", NOTHING),
    ("http://[not-an-ip]/", NOTHING),
    ("http://example.com:99999/", NOTHING),
    ("", NOTHING),
    ("   ", NOTHING),
    (None, NOTHING),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_url_parts_table(url: str | None, expected: UrlParts) -> None:
    assert url_parts(url) == expected


def test_url_parts_very_long_url_is_not_capped() -> None:
    long_path = "/" + "a" * 100_000
    parts = url_parts(f"https://example.com{long_path}?utm_source=s")
    assert parts == UrlParts("example.com", long_path, "utm_source=s", "s", None, None)


def test_url_parts_non_string_garbage() -> None:
    assert url_parts(42) == NOTHING  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# country_for_ip
# ---------------------------------------------------------------------------

IPS: list[tuple[str | None, str | None]] = [
    ("81.2.69.142", "GB"),
    ("8.8.8.8", "US"),
    ("193.0.0.1", "NL"),  # RIPE NCC
    ("2001:4860:4860::8888", "US"),
    ("2001:200::1", "JP"),
    (" 8.8.8.8 ", "US"),
    ("::ffff:81.2.69.142", "GB"),  # IPv4-mapped, as dual-stack sockets report it
    # iptocc reports "EU" for blocks delegated to the EU as a whole: not a country.
    ("139.191.87.111", None),
    # Not public: never looked up.
    ("127.0.0.1", None),
    ("::1", None),
    ("10.1.2.3", None),
    ("172.16.0.1", None),
    ("192.168.1.1", None),
    ("100.64.0.1", None),  # carrier-grade NAT
    ("169.254.1.1", None),
    ("fe80::1", None),
    ("fe80::1%eth0", None),
    ("fc00::1", None),
    ("224.0.0.1", None),
    ("ff02::1", None),
    ("240.0.0.1", None),
    ("255.255.255.255", None),
    ("0.0.0.0", None),
    ("::", None),
    ("192.0.2.1", None),  # documentation range
    ("2001:db8::1", None),
    # Malformed.
    ("999.1.1.1", None),
    ("1.2.3", None),
    ("010.1.1.1", None),
    ("8.8.8.8:443", None),
    ("not an ip", None),
    ("", None),
    (None, None),
    ("1" * 10_000, None),
]


@pytest.mark.parametrize(("ip", "expected"), IPS)
def test_country_for_ip_table(ip: str | None, expected: str | None) -> None:
    assert country_for_ip(ip) == expected


def test_country_for_ip_non_string_garbage() -> None:
    assert country_for_ip(b"8.8.8.8") is None  # type: ignore[arg-type]
