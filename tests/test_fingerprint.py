"""Tests for replayql.ingest.fingerprint: grouping errors into issues."""

from __future__ import annotations

import hashlib

import pytest

from replayql.ingest.fingerprint import (
    Fingerprint,
    clean_file_name,
    fingerprint_error,
    normalize_message,
    top_frames,
)

# ---------------------------------------------------------------------------
# normalize_message
# ---------------------------------------------------------------------------

MESSAGES: list[tuple[str, str]] = [
    # Short identifier-like quoted words are kept: they say what failed.
    (
        "Cannot read properties of undefined (reading 'id')",
        "Cannot read properties of undefined (reading 'id')",
    ),
    (
        "Failed to execute 'appendChild' on 'Node': parameter 1 is not of type 'Node'.",
        "Failed to execute 'appendChild' on 'Node': parameter <num> is not of type 'Node'.",
    ),
    ('can\'t access property "id", x is undefined', 'can\'t access property "id", x is undefined'),
    ("Unknown element `my-widget.item`", "Unknown element `my-widget.item`"),
    # Anything else quoted is data.
    (
        'Unexpected token \'<\', "<!DOCTYPE "... is not valid JSON',
        "Unexpected token <str>, <str>... is not valid JSON",
    ),
    ("Invalid value 'user42' for `some field`", "Invalid value <str> for <str>"),
    ("Unknown key 'a_very_long_identifier_name_over_32_chars'", "Unknown key <str>"),
    ("Empty ''", "Empty <str>"),
    # An apostrophe inside a word does not open a quote.
    ("Can't find variable: gtag", "Can't find variable: gtag"),
    ("Can't read 'x' of null", "Can't read 'x' of null"),
    # Ids.
    ("User 12345 not found", "User <num> not found"),
    ("Session 3F9A1C2D-4E5F-4A6B-8C7D-0123456789AB expired", "Session <uuid> expired"),
    ("Bad pointer 0x7ffe1234 in 3f9a1c2d4e", "Bad pointer <hex> in <hex>"),
    # Numbers start a word: units are kept, digits after letters are names.
    ("deadbeef abc123 v2 h1 user_42 10px", "deadbeef abc123 v2 h1 user_42 <num>px"),
    ("Took 3.14s, expected 1.5 or -1", "Took <num>s, expected <num> or -<num>"),
    ("Version 1.2.3 from 10.0.0.1 (item-7).", "Version <num> from <num> (item-<num>)."),
    ("Contact john.doe+test@example.co.uk now", "Contact <email> now"),
    # URLs: query, fragment, credentials and line:col dropped; ids in the path replaced.
    (
        "GET https://api.example.com/v2/users/42/orders?token=abc#x failed with 500.",
        "GET https://api.example.com/v2/users/<num>/orders failed with <num>.",
    ),
    (
        "Fetch https://User:Pw@API.Example.com:8443/items/3f9a1c2d-4e5f-4a6b-8c7d-0123456789ab failed",
        "Fetch https://api.example.com:8443/items/<uuid> failed",
    ),
    (
        "Loading chunk 787 failed.\n(error: https://example.com/static/js/787.4f2a9b1c.chunk.js)",
        "Loading chunk <num> failed. (error: https://example.com/static/js/<num>.chunk.js)",
    ),
    ("Script https://x.com/assets/index-DiwrgTda.js:10:5 crashed", "Script https://x.com/assets/index.js crashed"),
    # Whitespace.
    ("  multiple   \n\t spaces  ", "multiple spaces"),
    ("", ""),
    ("Script error.", "Script error."),
]


@pytest.mark.parametrize(("message", "expected"), MESSAGES)
def test_normalize_message_table(message: str, expected: str) -> None:
    assert normalize_message(message) == expected


def test_normalize_message_caps_input_length() -> None:
    assert normalize_message("a" * 5000) == "a" * 1000


def test_normalize_message_pathological_input_does_not_raise() -> None:
    assert normalize_message("a." * 600).startswith("a.a.")
    assert normalize_message("'a " * 400).startswith("<str>")
    assert normalize_message("http://[::1 broken") == "http://[::<num> broken"


# ---------------------------------------------------------------------------
# clean_file_name
# ---------------------------------------------------------------------------

FILE_NAMES: list[tuple[str, str]] = [
    ("app.3f9a1c2d.js", "app.js"),  # webpack / Parcel
    ("main.3f9a1c2d.chunk.js", "main.chunk.js"),  # create-react-app
    ("vendors~main.a1b2c3d4.js", "vendors~main.js"),
    ("chunk-4f2a9b.js", "chunk.js"),
    ("page-3f9a1c2d4e5f6a7b.js", "page.js"),  # Next.js
    ("main-app-a1b2c3d4e5f6.js", "main-app.js"),
    ("2852872c-3f9a1c2d4e5f6a7b.js", "<hash>.js"),  # Next.js shared chunk
    ("index-DiwrgTda.js", "index.js"),  # Vite 5 / Rollup base64url
    ("index-BuhdOm-Q.js", "index.js"),  # ... which may contain "-"
    ("main-5XGNQ3PY.js", "main.js"),  # esbuild base32
    ("polyfills.c67a75d1b6f99dc8.js", "polyfills.js"),  # Angular
    # Not hashes.
    ("use-Settings.js", "use-Settings.js"),
    ("my-listener.js", "my-listener.js"),
    ("polyfills-legacy.js", "polyfills-legacy.js"),
    ("react-dom.production.min.js", "react-dom.production.min.js"),
    ("jquery-3.7.1.min.js", "jquery-3.7.1.min.js"),
    ("app.js", "app.js"),
    ("", ""),
]


@pytest.mark.parametrize(("name", "expected"), FILE_NAMES)
def test_clean_file_name_table(name: str, expected: str) -> None:
    assert clean_file_name(name) == expected


# ---------------------------------------------------------------------------
# top_frames
# ---------------------------------------------------------------------------

CHROME_STACK = """TypeError: Cannot read properties of undefined (reading 'id')
    at UserCard.render (https://app.example.com/static/js/main.3f9a1c2d.js:2:12345)
    at Array.map (<anonymous>)
    at async loadUser (https://app.example.com/static/js/chunk-4f2a9b.js:1:99)
    at https://app.example.com/static/js/main.3f9a1c2d.js:2:5000
    at chrome-extension://abcdefghijklmnopabcdefghijklmnop/content.js:1:1
    at new Widget (https://cdn.thirdparty.com/widget.min.js:1:1)
    at eval (eval at run (https://app.example.com/a.js:1:2), <anonymous>:1:1)
    at Object.<anonymous> (webpack-internal:///./src/index.js:3:4)
    at HTMLButtonElement.onClick [as handler] (https://app.example.com/static/js/787.4f2a9b1c.chunk.js:1:2)
    at Promise.all (index 0)
    at foo (native)"""

CHROME_FRAMES_ALL = [
    ("render", "main.js"),
    ("loadUser", "chunk.js"),
    ("", "main.js"),
    ("Widget", "widget.min.js"),
    ("", "index.js"),
    ("onClick", "<num>.chunk.js"),
]

FIREFOX_STACK = """render@https://app.example.com/static/js/main.aaaa1111.js:2:1
loadUser/<@https://app.example.com/static/js/chunk-bbbb22.js:1:5
async*loadUser@https://app.example.com/static/js/chunk-bbbb22.js:1:99
@https://app.example.com/static/js/main.aaaa1111.js:2:5000
@moz-extension://0f6e1b5a-5d59-4b5f-9a2e-1234567890ab/content.js:1:1
@https://app.example.com/static/js/main.js line 2 > eval:1:5
@debugger eval code:1:1
promise callback*Foo.prototype.save@https://app.example.com/x.js:1:1
Widget@https://cdn.thirdparty.com/widget.min.js:1:1"""

SAFARI_STACK = """render@https://app.example.com/static/js/main.3f9a1c2d.js:2:12345
forEach@[native code]
@safari-web-extension://ABCDEF/content.js:1:1
@webkit-masked-url://hidden/:1:1
global code@https://app.example.com/boot.js:1:1"""


def test_top_frames_chrome_all() -> None:
    assert top_frames(CHROME_STACK, limit=10) == CHROME_FRAMES_ALL


def test_top_frames_default_limit_is_three_first_in_stack_order() -> None:
    assert top_frames(CHROME_STACK) == CHROME_FRAMES_ALL[:3]


def test_top_frames_in_app_hosts_skips_other_http_hosts_but_keeps_hostless_frames() -> None:
    assert top_frames(CHROME_STACK, limit=10, in_app_hosts=frozenset({"App.Example.com"})) == [
        ("render", "main.js"),
        ("loadUser", "chunk.js"),
        ("", "main.js"),
        ("", "index.js"),  # webpack-internal: no http host, kept
        ("onClick", "<num>.chunk.js"),
    ]


def test_top_frames_in_app_hosts_with_port() -> None:
    stack = "    at a (http://localhost:3000/static/js/bundle.js:10:5)\n    at b (http://localhost:4000/x.js:1:1)"
    assert top_frames(stack, in_app_hosts=frozenset({"localhost:3000"})) == [("a", "bundle.js")]
    assert top_frames(stack, in_app_hosts=frozenset({"localhost"})) == [("a", "bundle.js"), ("b", "x.js")]


def test_top_frames_firefox() -> None:
    assert top_frames(FIREFOX_STACK, limit=10) == [
        ("render", "main.js"),
        ("", "chunk.js"),  # "loadUser/<": anonymous function inside loadUser
        ("loadUser", "chunk.js"),
        ("", "main.js"),
        ("save", "x.js"),
        ("Widget", "widget.min.js"),
    ]


def test_top_frames_safari() -> None:
    assert top_frames(SAFARI_STACK, limit=10) == [("render", "main.js"), ("", "boot.js")]


def test_top_frames_blob_worker() -> None:
    stack = "    at onmessage (blob:https://app.example.com/3f9a1c2d-4e5f-4a6b-8c7d-0123456789ab:1:2)"
    assert top_frames(stack) == [("onmessage", "<blob>")]


def test_top_frames_inline_script_page_path_ids_are_normalised() -> None:
    assert top_frames("    at pay (https://shop.example.com/orders/1234:10:5)") == [("pay", "<num>")]


@pytest.mark.parametrize(
    "stack",
    [None, "", "garbage", "TypeError: x\nno frames here", "a" * 100_000, "    at " + "a (" * 20_000 + ":1:2"],
)
def test_top_frames_garbage(stack: str | None) -> None:
    assert top_frames(stack) == []


def test_top_frames_limit_zero() -> None:
    assert top_frames(CHROME_STACK, limit=0) == []


# ---------------------------------------------------------------------------
# fingerprint_error
# ---------------------------------------------------------------------------

RELEASE_1 = """TypeError: Cannot read properties of undefined (reading 'id')
    at UserCard.render (https://app.example.com/static/js/main.3f9a1c2d.js:2:12345)
    at loadUser (https://app.example.com/static/js/chunk-4f2a9b.js:1:99)"""
RELEASE_2 = """TypeError: Cannot read properties of undefined (reading 'id')
    at UserCard.render (https://app.example.com/static/js/main.9e8d7c6b.js:3:777)
    at loadUser (https://app.example.com/static/js/chunk-0a1b2c.js:40:1)"""


def test_issue_id_recipe_is_pinned() -> None:
    # Changing this regroups every stored issue: do it on purpose only.
    fp = fingerprint_error("TypeError", "Cannot read properties of undefined (reading 'id')", RELEASE_1)
    recipe = "\x1f".join(
        [
            "TypeError",
            "Cannot read properties of undefined (reading 'id')",
            "render\x1emain.js",
            "loadUser\x1echunk.js",
        ]
    )
    assert fp.issue_id == hashlib.sha256(recipe.encode()).hexdigest()[:16]
    assert fp.issue_id == "02a42af21c993c69"


def test_same_error_across_releases_has_same_issue_id() -> None:
    message = "Cannot read properties of undefined (reading 'id')"
    assert fingerprint_error("TypeError", message, RELEASE_1) == fingerprint_error("TypeError", message, RELEASE_2)


def test_volatile_message_parts_do_not_split_issues() -> None:
    first = fingerprint_error(
        "Error", "Order 1234 for user 3f9a1c2d-4e5f-4a6b-8c7d-0123456789ab failed after 2.5s", RELEASE_1
    )
    second = fingerprint_error(
        "Error", "Order 98 for user 00000000-1111-4222-8333-444444444444 failed after 10.25s", RELEASE_2
    )
    assert first.issue_id == second.issue_id
    assert first.normalized_message == "Order <num> for user <uuid> failed after <num>s"
    assert first.title != second.title  # titles keep the original text


def test_different_error_type_gives_different_issue() -> None:
    message = "boom"
    assert (
        fingerprint_error("TypeError", message, RELEASE_1).issue_id
        != fingerprint_error("RangeError", message, RELEASE_1).issue_id
    )


def test_different_message_gives_different_issue() -> None:
    reading_id = fingerprint_error("TypeError", "Cannot read properties of undefined (reading 'id')", RELEASE_1)
    reading_map = fingerprint_error("TypeError", "Cannot read properties of undefined (reading 'map')", RELEASE_1)
    assert reading_id.issue_id != reading_map.issue_id


def test_different_code_location_gives_different_issue() -> None:
    other_place = "TypeError: x\n    at checkout (https://app.example.com/static/js/main.3f9a1c2d.js:2:1)"
    assert (
        fingerprint_error("TypeError", "x", RELEASE_1).issue_id
        != fingerprint_error("TypeError", "x", other_place).issue_id
    )


def test_extension_and_third_party_frames_are_ignored() -> None:
    noisy = """Error: Payment failed
    at chrome-extension://abcdefghijklmnopabcdefghijklmnop/inject.js:1:1
    at track (https://cdn.analytics.example.net/a.js:1:1)
    at submitPayment (https://shop.example.com/assets/checkout-3f9a1c2d.js:1:2345)"""
    clean = """Error: Payment failed
    at submitPayment (https://shop.example.com/assets/checkout-0a0b0c0d.js:1:2000)"""
    hosts = frozenset({"shop.example.com"})
    assert (
        fingerprint_error("Error", "Payment failed", noisy, hosts).issue_id
        == fingerprint_error("Error", "Payment failed", clean, hosts).issue_id
    )


def test_chrome_and_firefox_same_message_named_functions_group_together() -> None:
    chrome = """Error: Payment failed
    at submitPayment (https://shop.example.com/assets/checkout-3f9a1c2d.js:1:2345)
    at HTMLFormElement.onSubmit (https://shop.example.com/assets/checkout-3f9a1c2d.js:1:999)"""
    firefox = """submitPayment@https://shop.example.com/assets/checkout-3f9a1c2d.js:1:2350
onSubmit@https://shop.example.com/assets/checkout-3f9a1c2d.js:1:1001"""
    assert (
        fingerprint_error("Error", "Payment failed", chrome).issue_id
        == fingerprint_error("Error", "Payment failed", firefox).issue_id
    )


def test_engine_specific_messages_are_separate_issues() -> None:
    # Documented: messages are not translated between engines.
    chrome = fingerprint_error("TypeError", "Cannot read properties of undefined (reading 'id')", None)
    firefox = fingerprint_error("TypeError", 'can\'t access property "id", user is undefined', None)
    assert chrome.issue_id != firefox.issue_id


def test_uncaught_and_type_prefixes_from_onerror_are_stripped() -> None:
    plain = fingerprint_error("TypeError", "x is not a function", RELEASE_1)
    assert fingerprint_error("TypeError", "Uncaught TypeError: x is not a function", RELEASE_1) == plain
    assert fingerprint_error("TypeError", "Uncaught (in promise) TypeError: x is not a function", RELEASE_1) == plain
    assert plain.title == "TypeError: x is not a function"


TITLES: list[tuple[str | None, str | None, Fingerprint]] = [
    (None, None, Fingerprint("4a57de8d34789a14", "Error", "")),
    ("", "", Fingerprint("4a57de8d34789a14", "Error", "")),
    ("  ", "Something broke 42", Fingerprint("b5631b019e9d62d4", "Error: Something broke 42", "Something broke <num>")),
    (
        "ChunkLoadError",
        "Loading chunk 787 failed.\n(error: https://x.com/787.4f2a9b1c.chunk.js)",
        Fingerprint(
            "d717ad20d9dfd0bd",
            "ChunkLoadError: Loading chunk 787 failed. (error: https://x.com/787.4f2a9b1c.chunk.js)",
            "Loading chunk <num> failed. (error: https://x.com/<num>.chunk.js)",
        ),
    ),
]


@pytest.mark.parametrize(("error_type", "message", "expected"), TITLES)
def test_fingerprint_without_stack(error_type: str | None, message: str | None, expected: Fingerprint) -> None:
    assert fingerprint_error(error_type, message, None) == expected


def test_none_error_type_is_error() -> None:
    assert fingerprint_error(None, "boom", RELEASE_1) == fingerprint_error("Error", "boom", RELEASE_1)


def test_title_truncates_original_message_to_200_chars() -> None:
    fp = fingerprint_error("RangeError", "x" * 5000, None)
    assert fp.title == "RangeError: " + "x" * 199 + "…"
    assert fp.normalized_message == "x" * 1000


def test_garbage_inputs_do_not_raise() -> None:
    for args in [
        (None, None, None),
        ("E" * 10_000, "m" * 1_000_000, "s" * 1_000_000),
        ("TypeError", "\x00\x1f\x1e", "\x00@:1:2"),
        ("TypeError", "http://[::1 broken", "    at f (http://[::1:1:2)"),
    ]:
        fp = fingerprint_error(*args)
        assert len(fp.issue_id) == 16
        assert int(fp.issue_id, 16) >= 0
