"""Ingest-time enrichment: user agent -> device, URL -> parts, IP -> country.

Every public function and `Enricher` method here runs once per incoming event,
on data sent by arbitrary browsers (and by scripts pretending to be browsers),
so all of them accept garbage and return "unknown" (None / "other") instead of
raising.

Decisions worth knowing (the tests in tests/test_enrich.py pin all of them):

* ``device_type`` is decided in this order: bot, other (TV / console),
  tablet, mobile, desktop, other.
* "bot" covers crawlers that ua-parser flags (device family "Spider":
  Googlebot, bingbot, YandexBot, GPTBot, link unfurlers...), headless and
  automated browsers (HeadlessChrome, PhantomJS, Lighthouse, ...) and plain
  HTTP clients (curl, wget, python-requests, Go-http-client, axios, okhttp,
  ...). None of these is a person looking at the page, so they are kept out of
  human metrics. This means a real test suite driving headless Chrome shows
  up as "bot" -- on purpose.
* iPadOS 13+ Safari sends the *macOS* user agent by default ("Macintosh;
  Intel Mac OS X 10_15_7"), so it reads as macOS / desktop: the user agent
  alone cannot tell them apart. Old iPad user agents ("iPad; CPU OS 12_2")
  read as iOS / tablet.
* Browsers freeze parts of their user agent: every Chrome on macOS says
  "10_15_7" and Windows 11 says "Windows NT 10.0", so os_version is "10.15"
  and "10" for those.
* OS "Mac OS X" is renamed "macOS"; Linux distribution names that Firefox
  sends (Ubuntu, Fedora, ...) are folded into "Linux".
* Countries come from iptocc (offline RIR delegation data). It returns None
  for unknown, malformed, private and reserved addresses, and "EU" for some
  RIPE blocks delegated to the EU as a whole; "EU" is not a country, so it
  becomes None here too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, parse_qsl, urlsplit

import iptocc
import ua_parser

from replayql.config import CacheLimits
from replayql.lru import cache_size

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

__all__ = ["Device", "Enricher", "UrlParts", "country_for_ip"]


# ---------------------------------------------------------------------------
# User agents
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_type: str  # one of DEVICE_TYPES


DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")

_UNKNOWN_DEVICE = Device(None, None, None, None, "other")

# Real user agents are < 512 chars; anything longer is junk or an attack, and
# both the regex cost in ua-parser and the cache key grow with the length.
_MAX_UA_LEN = 1024

# Complements ua-parser's "Spider" device family, which already knows the
# crawlers by name: this catches automation and HTTP libraries it leaves as
# plain browsers/unknown. "bot" is a whole word so that "CUBOT" phones stay phones.
_BOT_RE = re.compile(
    r"headless|phantomjs|lighthouse|puppeteer|playwright|selenium|webdriver"
    r"|\bbot\b|crawler|spider|scraper"
    r"|^(?:curl|wget|python-|python/|go-http-client|java/|okhttp|axios|node-fetch|undici"
    r"|libwww-perl|apache-httpclient|guzzle|ruby|httpie|postmanruntime|insomnia)",
    re.IGNORECASE,
)
# Smart TVs, streaming sticks and consoles: not desktop/mobile/tablet.
# Checked before the tablet rule because Android TVs lack the "Mobile" token.
_TV_RE = re.compile(
    r"smart-?tv|\btv\b|hbbtv|crkey|roku|web0s|playstation|xbox|nintendo", re.IGNORECASE
)
# Per MDN, "Mobi" anywhere in the UA is the most reliable phone signal.
_MOBILE_TOKEN_RE = re.compile(r"Mobi")
_DESKTOP_TOKEN_RE = re.compile(r"Windows NT|Macintosh|X11|CrOS")

_TABLET_DEVICE_FAMILIES = frozenset({"iPad", "Kindle", "Generic Tablet"})
_TABLET_DEVICE_BRANDS = frozenset({"Generic_Android_Tablet"})
_MOBILE_OSES = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS"})
_DESKTOP_OSES = frozenset({"Windows", "macOS", "Linux", "Chrome OS", "FreeBSD", "OpenBSD", "NetBSD"})
_OS_RENAMES = {
    "Mac OS X": "macOS",
    **{
        distro: "Linux"
        for distro in (
            "Ubuntu", "Kubuntu", "Xubuntu", "Fedora", "Debian", "Linux Mint", "Arch Linux",
            "openSUSE", "SUSE", "Red Hat", "CentOS", "Gentoo", "Mageia", "Mandriva", "Slackware",
        )
    },
}


def _parse_user_agent(user_agent: str) -> Device:
    result = ua_parser.parse(user_agent)
    browser, os_ = result.user_agent, result.os
    os_name = _known(os_.family) if os_ else None
    os_name = _OS_RENAMES.get(os_name, os_name) if os_name else None
    renamed_to_linux = os_name == "Linux" and os_ is not None and os_.family != "Linux"
    return Device(
        browser=_known(browser.family) if browser else None,
        browser_version=_version(browser.major, browser.minor) if browser else None,
        os=os_name,
        # A distro's version ("Ubuntu 22.04") is not a Linux version.
        os_version=None if renamed_to_linux or not os_ else _version(os_.major, os_.minor),
        device_type=_device_type(user_agent, result, os_name),
    )


def _known(family: str | None) -> str | None:
    # ua-parser's placeholder for "no match" is the family "Other".
    return family if family and family != "Other" else None


def _version(major: str | None, minor: str | None) -> str | None:
    if not major:
        return None
    return f"{major}.{minor}" if minor else major


def _device_type(user_agent: str, result: ua_parser.Result, os_name: str | None) -> str:
    device = result.device
    if (device is not None and device.family == "Spider") or _BOT_RE.search(user_agent):
        return "bot"
    if _TV_RE.search(user_agent):
        return "other"
    if _is_tablet(user_agent, device, os_name):
        return "tablet"
    if os_name in _MOBILE_OSES or _MOBILE_TOKEN_RE.search(user_agent):
        return "mobile"
    if os_name in _DESKTOP_OSES or _DESKTOP_TOKEN_RE.search(user_agent):
        return "desktop"
    return "other"


def _is_tablet(user_agent: str, device: ua_parser.Device | None, os_name: str | None) -> bool:
    if device is not None and (
        device.family in _TABLET_DEVICE_FAMILIES or device.brand in _TABLET_DEVICE_BRANDS
    ):
        return True
    # Google's guidance: Android phones send "Mobile", Android tablets don't
    # (Firefox for Android sends "Tablet" instead).
    return os_name == "Android" and "Mobile" not in user_agent


# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrlParts:
    host: str | None
    path: str | None
    query: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None


_EMPTY_URL = UrlParts(None, None, None, None, None, None)

_HIERARCHICAL_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")
_OPAQUE_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# "example.com/pricing", "localhost:3000/x", "10.0.0.1": read the way an
# address bar reads them, as a host. A consequence: a bare "index.html" is a
# host too; relative URLs in events almost always start with "/".
_BARE_HOST_RE = re.compile(
    r"^(?:localhost|(?:[\w-]+\.)+[^\W\d_][\w-]*|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])"
    r"(?::\d*)?(?=[/?#]|$)"
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_SCHEMELESS_DEFAULT_PORTS = frozenset({80, 443})
_UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")


def _url_parts(url: str) -> UrlParts:  # every event carries its page's URL: cached by Enricher
    if not _HIERARCHICAL_RE.match(url):
        if _BARE_HOST_RE.match(url):
            url = "//" + url
        elif _OPAQUE_SCHEME_RE.match(url):
            return UrlParts(None, None, *_query_and_utm(urlsplit(url).query))
    parts = urlsplit(url)
    return UrlParts(_host(parts), parts.path or "/", *_query_and_utm(parts.query))


def _host(parts: SplitResult) -> str | None:
    hostname = parts.hostname
    if not hostname:
        return None
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = parts.port
    if port is None or _is_default_port(parts.scheme, port):
        return hostname
    return f"{hostname}:{port}"


def _is_default_port(scheme: str, port: int) -> bool:
    if not scheme:
        return port in _SCHEMELESS_DEFAULT_PORTS
    return _DEFAULT_PORTS.get(scheme) == port


def _query_and_utm(query: str) -> tuple[str | None, str | None, str | None, str | None]:
    if not query:
        return None, None, None, None
    utm: dict[str, str] = {}
    for key, value in parse_qsl(query):
        key = key.lower()
        if key in _UTM_KEYS and key not in utm:
            utm[key] = value
    return query, utm.get("utm_source"), utm.get("utm_medium"), utm.get("utm_campaign")


# ---------------------------------------------------------------------------
# The caches in front of both
# ---------------------------------------------------------------------------


class Enricher:
    """User agents and URLs parsed once each while they are in use: the same few make up most of the traffic.

    Each cache keeps the results of the most recently used inputs, as many as `Settings.caches` says (distinct
    user agents seen in a day are in the tens of thousands, but the head of the distribution is tiny: the default
    16k small entries is a few MB). Thread-safe (functools.lru_cache).
    """

    def __init__(self, user_agents: int = CacheLimits.user_agents, urls: int = CacheLimits.urls) -> None:
        self._devices: _lru_cache_wrapper[Device] = lru_cache(maxsize=user_agents)(_parse_user_agent)
        self._urls: _lru_cache_wrapper[UrlParts] = lru_cache(maxsize=urls)(_url_parts)

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        return {"ingest.user_agents": cache_size(self._devices), "ingest.urls": cache_size(self._urls)}

    def parse_user_agent(self, user_agent: str | None) -> Device:
        """Browser, OS and device type of a User-Agent header (cached on its first 1024 characters); never
        raises."""
        if not isinstance(user_agent, str):
            return _UNKNOWN_DEVICE
        user_agent = user_agent.strip()[:_MAX_UA_LEN]
        if not user_agent:
            return _UNKNOWN_DEVICE
        return self._devices(user_agent)

    def url_parts(self, url: str | None) -> UrlParts:
        """Host, path, query and UTM tags of a page URL; never raises.

        * host: lower-cased, without user info, with the port only when it is not
          the scheme's default; IPv6 hosts keep their brackets (like
          ``location.host``); IDNA hosts are left as received. None for relative
          and opaque (``about:blank``, ``mailto:``) URLs.
        * path: as received (percent-encoding kept), "/" when empty.
        * query: without the "?", None when empty. The fragment is dropped.
        * utm_*: first value of each tag, percent-decoded, keys matched
          case-insensitively; None when absent or empty.
        """
        if not isinstance(url, str):
            return _EMPTY_URL
        url = url.strip()
        if not url:
            return _EMPTY_URL
        try:
            return self._urls(url)
        except ValueError:  # bad IPv6 literal, port out of range...
            return _EMPTY_URL


# ---------------------------------------------------------------------------
# IP -> country
# ---------------------------------------------------------------------------

_COUNTRY_RE = re.compile(r"[A-Z]{2}")
# Region codes that appear in RIR delegation data but are not countries.
_NOT_COUNTRIES = frozenset({"EU", "AP", "ZZ"})


def country_for_ip(ip: str | None) -> str | None:
    """ISO 3166-1 alpha-2 country of a public IP address, else None; never raises."""
    if not isinstance(ip, str):
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # "::ffff:1.2.3.4" from dual-stack sockets
    if not _is_public(addr):
        return None
    code = iptocc.country_code(str(addr).partition("%")[0])  # drop an IPv6 zone id
    if not code or not _COUNTRY_RE.fullmatch(code) or code in _NOT_COUNTRIES:
        return None
    return code


def _is_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global alone lets multicast through (224.0.0.0/4, ff00::/8), and its
    # exact coverage has shifted between Python releases, so spell it out.
    return addr.is_global and not (
        addr.is_multicast
        or addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_unspecified
    )
