"""Group JavaScript errors into issues.

An issue is identified by ``sha256(error type, normalised message, top in-app
frames)``. Everything that changes between two occurrences of the *same* bug
is taken out first:

* message: ids, numbers, UUIDs, hex ids, e-mails, URL query strings and
  quoted values (see ``normalize_message``);
* frames: line/column numbers, bundle content hashes (``app.3f9a1c2d.js`` ->
  ``app.js``), hosts and directories (only the file name is kept), receiver
  prefixes of function names (``Object.foo`` -> ``foo``);
* frames that are not the application's code: browser extensions, native /
  eval code, and -- when ``in_app_hosts`` is given -- scripts served from
  other hosts (ads, analytics, CDNs of third parties).

Chrome vs Firefox/Safari: the *same* issue when the message is identical
(errors the app throws itself, ``throw new Error("Payment failed")``) and
the in-app frames are named functions, because both stack formats reduce to
the same ``(function, file)`` pairs; anonymous functions are "" in both.
Errors raised by the engine itself have browser-specific messages
("Cannot read properties of undefined (reading 'id')" in Chrome,
"can't access property \"id\", x is undefined" in Firefox), so those become
one issue per engine -- no attempt is made to translate messages.

The pipeline is pure and bounded: long messages/stacks are truncated before
any regex runs on them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from replayql.store.issue_titles import WHITESPACE_RE, error_type_of, issue_title, message_of

__all__ = ["Fingerprint", "clean_file_name", "fingerprint_error", "normalize_message", "top_frames"]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    issue_id: str
    title: str
    normalized_message: str


ISSUE_ID_LEN = 16
# Grouping on the head of the message is enough, and bounds the regex cost of
# pathological messages (JSON dumps, base64 blobs).
_MAX_MESSAGE_LEN = 1000
_MAX_STACK_LEN = 50_000
# Real frames are a function name plus a URL; longer lines (data: URLs,
# garbage) are skipped rather than parsed.
_MAX_FRAME_LINE_LEN = 2048

# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------

_UUID = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
_HEX_ID = r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}\b"
# A number starts a word and may carry a unit ("2.5s", "10px") or be dotted
# ("1.2.3", "10.0.0.1"); digits glued after letters ("v2", "h1", "user42")
# are part of a name. No end boundary: "2.5s" must not become "<num>.5s".
_NUMBER = r"(?<![\w.])\d+(?:\.\d+)*"

# One alternation, scanned once left to right, so that a value consumed by
# one rule (a URL, a quoted string) is never rewritten again by a later one.
_MESSAGE_TOKEN_RE = re.compile(
    rf"""
      (?P<url>\b[a-z][a-z0-9+.-]*://[^\s'"`<>()\[\]{{}}]+)
    | (?<!\w)(?P<quoted>'[^'\n]*'|"[^"\n]*"|`[^`\n]*`)
    | (?<![\w.+-])(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)
    | (?P<uuid>{_UUID})
    | (?P<hex>\b0x[0-9a-f]+\b|{_HEX_ID})
    | (?P<num>{_NUMBER})
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Quoted values kept verbatim: short identifier-like words (property, method,
# interface names). They name *what* failed -- "(reading 'id')" vs
# "(reading 'map')" are different bugs -- and they don't vary per user.
# Anything else quoted (contains a digit, a space, punctuation, > 32 chars)
# is data and becomes <str>.
_KEPT_QUOTED_RE = re.compile(r"[A-Za-z_$][A-Za-z_$.-]{0,31}")
_PATH_TOKEN_RE = re.compile(rf"(?P<uuid>{_UUID})|(?P<hex>{_HEX_ID})|(?P<num>{_NUMBER})", re.IGNORECASE)
_URL_TRAILING_PUNCTUATION = ".,;:!?"
_LINE_COL_RE = re.compile(r":\d+(?::\d+)?$")


def normalize_message(message: str) -> str:
    """Replace the volatile parts of an error message with placeholders.

    * URLs -> scheme://host/path, query and fragment dropped, line:col
      dropped, numbers / UUIDs / hex ids in the path replaced as below,
      content hashes removed from the file name.
    * quoted values ('...', "...", `...`) -> ``<str>``, except short
      identifier-like words (letters, ``_ $ . -``, no digits, <= 32 chars),
      which are kept with their quotes.
    * e-mail addresses -> ``<email>``; UUIDs -> ``<uuid>``; hex ids (0x...,
      or >= 8 hex chars mixing digits and letters) -> ``<hex>``; numbers
      starting a word -> ``<num>``, dotted ones whole ("1.2.3"), units kept
      ("2.5s" -> "<num>s"); digits after letters stay ("v2", "user42").
    * whitespace runs -> one space, ends stripped.
    """
    if not isinstance(message, str):
        return ""
    message = message[:_MAX_MESSAGE_LEN]
    return WHITESPACE_RE.sub(" ", _MESSAGE_TOKEN_RE.sub(_replace_token, message)).strip()


def _replace_token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    text = match.group()
    if kind == "url":
        return _normalize_url(text)
    if kind == "quoted":
        return text if _KEPT_QUOTED_RE.fullmatch(text[1:-1]) else "<str>"
    return _placeholder(match)


def _placeholder(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


def _normalize_path(path: str) -> str:
    directory, slash, name = path.rpartition("/")
    return _PATH_TOKEN_RE.sub(_placeholder, directory) + slash + _normalize_file_name(name)


def _normalize_url(url: str) -> str:
    # "see https://x.com/a." -- the final dot ends the sentence, not the URL.
    stripped = url.rstrip(_URL_TRAILING_PUNCTUATION)
    trailing = url[len(stripped) :]
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return "<url>" + trailing
    path = _normalize_path(_LINE_COL_RE.sub("", parts.path))
    netloc = parts.netloc.rpartition("@")[2].lower()  # never keep credentials
    return f"{parts.scheme.lower()}://{netloc}{path}{trailing}"


# ---------------------------------------------------------------------------
# File names
# ---------------------------------------------------------------------------


def _normalize_file_name(name: str) -> str:
    """Last URL path segment -> stable form: ids replaced, bundle hashes removed."""
    # A whole-segment id ("/orders/<uuid>") is replaced before hash stripping,
    # which would otherwise cut a UUID at its dashes.
    if _PATH_TOKEN_RE.fullmatch(name):
        return _PATH_TOKEN_RE.sub(_placeholder, name)
    # Numbers too: webpack chunk ids ("787.chunk.js") change between builds.
    return _PATH_TOKEN_RE.sub(_placeholder, clean_file_name(name))


# Rollup / Vite / esbuild: "[name]-[hash].js", hash = 8 base64url / base32
# chars, which may themselves contain "-" or "_".
_DASH_HASH_RE = re.compile(r"^(?P<stem>.+?)-(?P<hash>[A-Za-z0-9_-]{8})(?P<ext>\.[A-Za-z0-9]+)$")
# A random 8-char hash almost always has a digit, an inner capital or "-"/"_";
# words like "listener" or "Settings" don't, so "use-Settings.js" is kept.
_HASHY_RE = re.compile(r"[0-9]|.[A-Z]|[-_]")
# webpack / Parcel / Angular / Next.js: a hex component ("main.3f9a1c2d.js",
# "chunk-4f2a9b.js", "page-3f9a1c2d4e5f6a7b.js") between separators.
_HEX_COMPONENT_RE = re.compile(r"(?<=[^.-])[.-](?=[0-9a-f]*[0-9])[0-9a-f]{6,}(?=[.-])", re.IGNORECASE)
# A name that is itself a hash (Next.js shared chunks: "2852872c-....js").
_HEX_STEM_RE = re.compile(r"^(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?=[.-])", re.IGNORECASE)


def clean_file_name(name: str) -> str:
    """Remove bundler content hashes from a file name (no directory, no query).

    ``app.3f9a1c2d.js`` -> ``app.js``, ``main.3f9a1c2d.chunk.js`` ->
    ``main.chunk.js``, ``chunk-4f2a9b.js`` -> ``chunk.js``,
    ``index-DiwrgTda.js`` -> ``index.js``, ``2852872c-1a2b3c4d5e6f.js`` ->
    ``<hash>.js``. Stripping too much only merges file names; stripping too
    little would split an issue at every release, so the rules lean greedy.
    """
    match = _DASH_HASH_RE.match(name)
    if match and _HASHY_RE.search(match["hash"]):
        name = match["stem"] + match["ext"]
    name = _HEX_COMPONENT_RE.sub("", name)
    return _HEX_STEM_RE.sub("<hash>", name)


# ---------------------------------------------------------------------------
# Stack frames
# ---------------------------------------------------------------------------

# V8: "    at fn (url:1:2)", "    at url:1:2", "    at async fn (url:1:2)".
# Function names never contain parentheses, which keeps the match linear.
_V8_FRAME_RE = re.compile(r"^\s*at\s+(?:(?P<fn>[^()]+?)\s+\((?P<loc>.+)\)|(?P<bare>\S+))\s*$")
# SpiderMonkey / JavaScriptCore: "fn@url:1:2", "@url:1:2". The location must
# end in :line[:col], which also drops Safari's "fn@[native code]" lines and
# keeps a V8 stack's "TypeError: ... a@b.c" message line from matching.
_GECKO_FRAME_RE = re.compile(r"^\s*(?P<fn>[^@]*)@(?P<loc>.+?:\d+(?::\d+)?)\s*$")
_NOT_APP_SCHEMES = frozenset(
    {
        "chrome-extension", "moz-extension", "safari-extension", "safari-web-extension",
        "ms-browser-extension", "edge-extension", "webkit-masked-url", "chrome",
    }
)
# V8 eval ("eval at f (...), <anonymous>:1:1"), Firefox eval/Function
# ("app.js line 2 > eval:1:5") and the devtools console ("debugger eval code").
_NOT_APP_LOCATIONS_RE = re.compile(r"<anonymous>|\[native code\]|eval code| > (?:eval|Function)")
_HTTP_SCHEMES = frozenset({"http", "https"})

# Function-name noise that differs by browser but not by code.
_ALIAS_SUFFIX_RE = re.compile(r"\s*\[as [^\]]*\]$")
_NAME_PREFIX_RE = re.compile(r"^(?:async\s+|new\s+)+")
_ANONYMOUS_NAMES = frozenset({"<anonymous>", "global code", "module code", "eval code", "anonymous"})


def top_frames(
    stack: str | None, limit: int = 3, *, in_app_hosts: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """The first ``limit`` in-app frames of a stack, as (function, file name).

    Order is the stack's (innermost first). Anonymous functions are "".
    Frames from extensions, native/eval code and -- when ``in_app_hosts`` is
    non-empty -- http(s) scripts served from any other host are skipped;
    frames without an http(s) host (``webpack://``, bare file names) are kept.
    """
    if not isinstance(stack, str) or limit <= 0:
        return []
    hosts = frozenset(host.lower() for host in in_app_hosts)
    frames: list[tuple[str, str]] = []
    for line in stack[:_MAX_STACK_LEN].splitlines():
        frame = _parse_frame(line, hosts)
        if frame is not None:
            frames.append(frame)
            if len(frames) == limit:
                break
    return frames


def _parse_frame(line: str, in_app_hosts: frozenset[str]) -> tuple[str, str] | None:
    if len(line) > _MAX_FRAME_LINE_LEN:
        return None
    match = _V8_FRAME_RE.match(line) or _GECKO_FRAME_RE.match(line)
    if match is None:
        return None
    groups = match.groupdict()
    location = groups.get("loc") or groups.get("bare") or ""
    file_name = _in_app_file_name(location, in_app_hosts)
    if file_name is None:
        return None
    return _function_name(groups.get("fn") or ""), file_name


def _in_app_file_name(location: str, in_app_hosts: frozenset[str]) -> str | None:
    if _NOT_APP_LOCATIONS_RE.search(location) or not _LINE_COL_RE.search(location):
        return None
    try:
        parts = urlsplit(_LINE_COL_RE.sub("", location))
        hostname = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme in _NOT_APP_SCHEMES:
        return None
    if in_app_hosts and scheme in _HTTP_SCHEMES and not _host_matches(parts.netloc, hostname, in_app_hosts):
        return None
    if scheme == "blob":
        return "<blob>"  # worker/blob URLs are random per page load
    return _normalize_file_name(parts.path.rpartition("/")[2])


def _host_matches(netloc: str, hostname: str | None, in_app_hosts: frozenset[str]) -> bool:
    # Accept both "app.example.com" and "localhost:3000" style entries.
    return hostname in in_app_hosts or netloc.rpartition("@")[2].lower() in in_app_hosts


def _function_name(raw: str) -> str:
    """Reduce a Chrome / Firefox / Safari function name to its common core.

    "async Object.foo [as bar]" (V8), "async*foo" / "promise callback*foo" /
    "Foo.prototype.foo" (Firefox), "foo" (Safari) all become "foo";
    Firefox's anonymous markers ("foo/<") and Safari's "global code" become "".
    """
    name = raw.strip().rpartition("*")[2]  # Firefox async/promise markers
    name = _NAME_PREFIX_RE.sub("", _ALIAS_SUFFIX_RE.sub("", name))
    if name.endswith("<"):
        return ""  # Firefox "outer/<" is an anonymous function inside outer
    core = name.rpartition("/")[2].rpartition(".")[2]
    return "" if core in _ANONYMOUS_NAMES or name in _ANONYMOUS_NAMES else core


# ---------------------------------------------------------------------------
# Issues
# ---------------------------------------------------------------------------

def fingerprint_error(
    error_type: str | None,
    message: str | None,
    stack: str | None,
    in_app_hosts: frozenset[str] = frozenset(),
) -> Fingerprint:
    """Issue id, title and normalised message of one error occurrence.

    ``error_type`` None/"" is "Error". The message is taken without the
    "Uncaught " / "Uncaught (in promise) " and "<ErrorType>: " prefixes that
    ``window.onerror`` adds, so both capture paths land in the same issue.
    """
    etype = error_type_of(error_type)
    normalized = normalize_message(message_of(message, etype))
    frames = top_frames(stack, in_app_hosts=in_app_hosts)
    return Fingerprint(
        issue_id=_issue_id(etype, normalized, frames),
        title=issue_title(error_type, message),
        normalized_message=normalized,
    )


def _issue_id(error_type: str, normalized: str, frames: list[tuple[str, str]]) -> str:
    # Unit/record separators can't appear in a type or a normalised message
    # (whitespace is collapsed), so the fields can't run into each other.
    parts = [error_type, normalized, *(f"{fn}\x1e{file}" for fn, file in frames)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:ISSUE_ID_LEN]

