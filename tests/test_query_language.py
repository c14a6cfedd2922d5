"""The query-string face of the filter language: AST, precedence, quoting, normalised printing, errors, limits."""

from __future__ import annotations

import random

import pytest

from replayql.query.ast import (
    And,
    Bool,
    Compare,
    Duration,
    Had,
    Node,
    Not,
    Num,
    Or,
    Range,
    RelativeTime,
    Str,
    Then,
    Time,
    ValueList,
    walk,
)
from replayql.query.errors import UserError
from replayql.query.language import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    QueryError,
    parse,
    to_string,
)


def S(value: str) -> Str:
    return Str(value)


def eq(field: str, value: object, op: str = "=") -> Compare:
    if isinstance(value, str):
        value = Str(value)
    elif isinstance(value, bool):
        value = Bool(value)
    elif isinstance(value, int | float):
        value = Num(value)
    return Compare(field, op, value)  # type: ignore[arg-type]


# (query as a user might type it, its normalised form written by hand)
CORPUS: list[tuple[str, str]] = [
    ("browser IN ()", "browser IN ()"),
    ("url matches '^/a/[0-9]+$'", 'url MATCHES "^/a/[0-9]+$"'),
    ("url not matches x", "url NOT MATCHES x"),
    ("count(network(status>=500))>=3", "count(network(status >= 500)) >= 3"),
    ("COUNT(custom('Add To Cart')) between 2 and 5", 'count(custom("Add To Cart")) BETWEEN 2 AND 5'),
    ("session(browser=Safari and error)", "session(browser = Safari AND error)"),
    ("not session(a = 1 or b = 2)", "NOT session(a = 1 OR b = 2)"),
    ("user.trait.plan in (pro, team)", "user.trait.plan IN (pro, team)"),
    ("a = session", 'a = "session"'),
    ("browser = Safari", "browser = Safari"),
    ("browser=Safari", "browser = Safari"),
    ("  browser   =\tSafari \n", "browser = Safari"),
    ('browser = "Safari"', "browser = Safari"),
    ("browser = 'Safari'", "browser = Safari"),
    ("browser != Chrome", "browser != Chrome"),
    ("userId = u-123", "userId = u-123"),
    ("durationMs > 500", "durationMs > 500"),
    ("durationMs >= 1.5", "durationMs >= 1.5"),
    ("durationMs < -3", "durationMs < -3"),
    ("durationMs <= 2e3", "durationMs <= 2000.0"),
    ("activeDurationMs > 3s", "activeDurationMs > 3s"),
    ("activeDurationMs > 500ms", "activeDurationMs > 500ms"),
    ("activeDurationMs > 1500ms", "activeDurationMs > 1500ms"),
    ("activeDurationMs > 90000ms", "activeDurationMs > 90s"),
    ("activeDurationMs > 120s", "activeDurationMs > 2m"),
    ("activeDurationMs > 1.5s", "activeDurationMs > 1500ms"),
    ("activeDurationMs > 24h", "activeDurationMs > 1d"),
    ("initialUrl ~ checkout", "initialUrl ~ checkout"),
    ("initialUrl !~ '/admin'", "initialUrl !~ /admin"),
    ('referrer ^= "https://google."', "referrer ^= https://google."),
    ("email $= @example.com", "email $= @example.com"),
    ("user.trait.plan IN (pro, team)", "user.trait.plan IN (pro, team)"),
    ("user.trait.plan in (pro,team,'free tier')", 'user.trait.plan IN (pro, team, "free tier")'),
    ("country NOT IN (DE, FR)", "country NOT IN (DE, FR)"),
    ("country not in (DE)", "country NOT IN (DE)"),
    ("user.email EXISTS", "user.email EXISTS"),
    ("user.email not exists", "user.email NOT EXISTS"),
    ("durationMs BETWEEN 1s AND 2m", "durationMs BETWEEN 1s AND 2m"),
    ("identified = TRUE", "identified = true"),
    ("identified = false", "identified = false"),
    ("startedAt > -7d", "startedAt > -7d"),
    ("startedAt > now-1h", "startedAt > -1h"),
    ("startedAt < NOW", "startedAt < now"),
    ("startedAt < now+30m", "startedAt < now+30m"),
    ("startedAt >= 2024-05-01", "startedAt >= 2024-05-01"),
    ("startedAt >= 2024-05-01T10:30:00Z", "startedAt >= 2024-05-01T10:30:00Z"),
    ("startedAt >= 2024-05-01T10:30:00.250+02:00", "startedAt >= 2024-05-01T10:30:00.250+02:00"),
    ('release = "1.2.3"', "release = 1.2.3"),
    ('release = "42"', 'release = "42"'),
    ('name = "true"', 'name = "true"'),
    ('name = "AND"', 'name = "AND"'),
    ('name = "now"', 'name = "now"'),
    ('name = "-7d"', 'name = "-7d"'),
    ('name = ""', 'name = ""'),
    ("name = 'O\\'Brien'", "name = \"O'Brien\""),
    ('name = "say \\"hi\\""', 'name = "say \\"hi\\""'),
    ('name = "a\\\\b"', "name = a\\b"),  # a bare word takes a backslash literally
    ('name = "tab\\there"', 'name = "tab\\there"'),
    ('name = "\\u00e9t\\u00E9"', "name = été"),
    ("name = José AND city = 東京", "name = José AND city = 東京"),
    ("名前 = 太郎", "名前 = 太郎"),
    ("type = error", "type = error"),
    ("a = 1 and b = 2 And c = 3", "a = 1 AND b = 2 AND c = 3"),
    ("a = 1 or b = 2 OR c = 3", "a = 1 OR b = 2 OR c = 3"),
    ("a = 1 OR b = 2 AND c = 3", "a = 1 OR b = 2 AND c = 3"),
    ("(a = 1 OR b = 2) AND c = 3", "(a = 1 OR b = 2) AND c = 3"),
    ("((a = 1))", "a = 1"),
    ("(a = 1 AND b = 2) AND c = 3", "a = 1 AND b = 2 AND c = 3"),
    ("a = 1 OR (b = 2 OR c = 3)", "a = 1 OR b = 2 OR c = 3"),
    ("a = 1 OR (b = 2 AND c = 3)", "a = 1 OR b = 2 AND c = 3"),
    ("not a = 1", "NOT a = 1"),
    ("NOT NOT a = 1", "NOT NOT a = 1"),
    ("NOT (a = 1 AND b = 2)", "NOT (a = 1 AND b = 2)"),
    ("NOT (a = 1) AND b = 2", "NOT a = 1 AND b = 2"),
    ("rageClick", "rageClick"),
    ("RAGECLICK()", "rageClick"),
    ("deadClick(selector = 'button#buy')", "deadClick(selector = button#buy)"),
    ("errorClick", "errorClick"),
    ('network(url ~ "/api/orders", status >= 500)', "network(url ~ /api/orders, status >= 500)"),
    ("network(method IN (POST, PUT), durationMs > 2s)", "network(method IN (POST, PUT), durationMs > 2s)"),
    ("error(type = ChunkLoadError)", "error(type = ChunkLoadError)"),
    ('visited(path = "/checkout")', "visited(path = /checkout)"),
    ('clicked(selector = "button#buy")', "clicked(selector = button#buy)"),
    ('clicked(text = "Buy now")', 'clicked(text = "Buy now")'),
    ('custom("Checkout Completed", revenue > 10)', 'custom("Checkout Completed", revenue > 10)'),
    ("custom(Signup)", "custom(Signup)"),
    ("custom(name = Signup, plan EXISTS)", "custom(Signup, plan EXISTS)"),
    ("console(level = error)", "console(level = error)"),
    ("vital(name = LCP, value > 2500)", "vital(name = LCP, value > 2500)"),
    ("NOT error", "NOT error"),
    ("network THEN rageClick", "network THEN rageClick"),
    ("network(status >= 500) then rageClick within 10s", "network(status >= 500) THEN rageClick WITHIN 10s"),
    ("visited(path = /cart) THEN visited(path = /checkout) THEN custom(Purchase) WITHIN 30m",
     "visited(path = /cart) THEN visited(path = /checkout) THEN custom(Purchase) WITHIN 30m"),
    ("NOT network THEN rageClick", "NOT network THEN rageClick"),
    (
        'browser = Safari AND user.trait.plan IN (pro, team) AND network(url ~ "/api/orders", status >= 500) '
        "THEN rageClick WITHIN 10s AND NOT error(type = ChunkLoadError)",
        "browser = Safari AND user.trait.plan IN (pro, team) AND network(url ~ /api/orders, status >= 500) "
        "THEN rageClick WITHIN 10s AND NOT error(type = ChunkLoadError)",
    ),
    ("a = 1\nAND\r\nb = 2", "a = 1 AND b = 2"),
    ('a = "line\\nbreak"', 'a = "line\\nbreak"'),
    ("properties.revenue >= 10.25", "properties.revenue >= 10.25"),
    ("viewport.width < 800 OR deviceType = mobile", "viewport.width < 800 OR deviceType = mobile"),
]


@pytest.mark.parametrize(("query", "normalised"), CORPUS, ids=[q for q, _ in CORPUS])
def test_corpus_normalises_and_round_trips(query: str, normalised: str) -> None:
    tree = parse(query)
    assert to_string(tree) == normalised
    assert parse(normalised) == tree
    assert to_string(parse(normalised)) == normalised


def test_corpus_is_wide() -> None:
    assert len(CORPUS) >= 40


EXPECTED_AST: list[tuple[str, Node]] = [
    ("browser = Safari", eq("browser", "Safari")),
    ("userId = u-123", eq("userId", "u-123")),
    ('name = "Safari Mobile"', eq("name", "Safari Mobile")),
    ("durationMs > 500", eq("durationMs", 500, ">")),
    ("score <= -1.5", eq("score", -1.5, "<=")),
    ("activeDurationMs > 3s", Compare("activeDurationMs", ">", Duration(3_000))),
    ("x < 500ms", Compare("x", "<", Duration(500))),
    ("x < 5m", Compare("x", "<", Duration(300_000))),
    ("x < 2h", Compare("x", "<", Duration(7_200_000))),
    ("x < 1d", Compare("x", "<", Duration(86_400_000))),
    ("identified = true", eq("identified", True)),
    ("startedAt > -7d", Compare("startedAt", ">", RelativeTime(-7 * 86_400_000))),
    ("startedAt > now-1h", Compare("startedAt", ">", RelativeTime(-3_600_000))),
    ("startedAt > now", Compare("startedAt", ">", RelativeTime(0))),
    ("startedAt > 2024-05-01T10:30:00Z", Compare("startedAt", ">", Time("2024-05-01T10:30:00Z"))),
    ("plan IN (pro, team)", Compare("plan", "IN", ValueList((S("pro"), S("team"))))),
    ("plan NOT IN (pro)", Compare("plan", "NOT IN", ValueList((S("pro"),)))),
    ("email EXISTS", Compare("email", "EXISTS", None)),
    ("email NOT EXISTS", Compare("email", "NOT EXISTS", None)),
    ("n BETWEEN 1 AND 5", Compare("n", "BETWEEN", Range(Num(1), Num(5)))),
    ("user.trait.plan = pro", eq("user.trait.plan", "pro")),
    ("rageClick", Had("rageClick", ())),
    ("deadclick(selector = a)", Had("deadClick", (eq("selector", "a"),))),
    (
        'network(url ~ "/api/orders", status >= 500)',
        Had("network", (eq("url", "/api/orders", "~"), eq("status", 500, ">="))),
    ),
    (
        'custom("Checkout Completed", revenue > 10)',
        Had("custom", (eq("name", "Checkout Completed"), eq("revenue", 10, ">"))),
    ),
    ("network THEN rageClick", Then((Had("network"), Had("rageClick")), None)),
    ("network THEN rageClick WITHIN 10s", Then((Had("network"), Had("rageClick")), 10_000)),
    ("NOT error(type = X)", Not(Had("error", (eq("type", "X"),)))),
    ("a = 1 AND b = 2 AND c = 3", And((eq("a", 1), eq("b", 2), eq("c", 3)))),
    ("a = 1 OR b = 2 OR c = 3", Or((eq("a", 1), eq("b", 2), eq("c", 3)))),
]


@pytest.mark.parametrize(("query", "tree"), EXPECTED_AST, ids=[q for q, _ in EXPECTED_AST])
def test_expected_ast(query: str, tree: Node) -> None:
    assert parse(query) == tree


PRECEDENCE: list[tuple[str, Node]] = [
    ("a = 1 OR b = 2 AND c = 3", Or((eq("a", 1), And((eq("b", 2), eq("c", 3)))))),
    ("a = 1 AND b = 2 OR c = 3", Or((And((eq("a", 1), eq("b", 2))), eq("c", 3)))),
    ("(a = 1 OR b = 2) AND c = 3", And((Or((eq("a", 1), eq("b", 2))), eq("c", 3)))),
    ("NOT a = 1 AND b = 2", And((Not(eq("a", 1)), eq("b", 2)))),
    ("NOT a = 1 OR b = 2", Or((Not(eq("a", 1)), eq("b", 2)))),
    ("NOT (a = 1 OR b = 2)", Not(Or((eq("a", 1), eq("b", 2))))),
    ("a = 1 AND NOT b = 2 OR NOT c = 3", Or((And((eq("a", 1), Not(eq("b", 2)))), Not(eq("c", 3))))),
    ("(a = 1 AND b = 2) AND (c = 3 AND d = 4)", And((eq("a", 1), eq("b", 2), eq("c", 3), eq("d", 4)))),
    ("n BETWEEN 1 AND 5 AND m = 2", And((Compare("n", "BETWEEN", Range(Num(1), Num(5))), eq("m", 2)))),
    ("NOT network THEN rageClick", Not(Then((Had("network"), Had("rageClick")), None))),
    (
        "a = 1 OR network THEN error WITHIN 1m AND b = 2",
        Or((eq("a", 1), And((Then((Had("network"), Had("error")), 60_000), eq("b", 2))))),
    ),
    ("NOT NOT a = 1", Not(Not(eq("a", 1)))),
]


@pytest.mark.parametrize(("query", "tree"), PRECEDENCE, ids=[q for q, _ in PRECEDENCE])
def test_precedence(query: str, tree: Node) -> None:
    assert parse(query) == tree
    assert parse(to_string(tree)) == tree


def test_printer_keeps_hand_built_nesting_that_the_parser_would_flatten() -> None:
    tree = And((And((eq("a", 1), eq("b", 2))), Or((eq("c", 3), eq("d", 4)))))
    assert to_string(tree) == "(a = 1 AND b = 2) AND (c = 3 OR d = 4)"
    assert to_string(Not(And((eq("a", 1), eq("b", 2))))) == "NOT (a = 1 AND b = 2)"
    assert to_string(Not(Not(eq("a", 1)))) == "NOT NOT a = 1"


def test_quoting_round_trips_awkward_strings() -> None:
    awkward = ["", " ", "a b", 'quote"d', "it's", "back\\slash", "x=y", "(p)", "a,b", "and", "OR", "Not",
               "true", "FALSE", "now", "12", "-3", "1.5", "3s", "-7d", "2024-01-01", "10x", "tab\there",
               "nul\x00byte", "bell\x07", "emoji 🎉", "ü", "$price", "^start", "~", "error", "rageClick"]
    for value in awkward:
        tree = Compare("f", "=", Str(value))
        text = to_string(tree)
        assert parse(text) == tree, (value, text)
    assert to_string(eq("f", "nul\x00byte")) == 'f = "nul\\u0000byte"'
    assert to_string(eq("f", "10x")) == 'f = "10x"'
    assert to_string(eq("f", "rageClick")) == "f = rageClick"


def test_escapes_decode() -> None:
    assert parse(r'a = "q\"\'\\\/\n\t\r\u0041"') == eq("a", "q\"'\\/\n\t\rA")
    assert parse(r"a = 'd\"q'") == eq("a", 'd"q')
    assert parse('a = "it\'s"') == eq("a", "it's")
    assert parse("a = 'x AND y = (z)'") == eq("a", "x AND y = (z)")


def test_positions() -> None:
    text = 'browser = Safari AND network(url ~ "/api", status >= 500) THEN rageClick WITHIN 10s'
    tree = parse(text)
    assert isinstance(tree, And)
    browser, seq = tree.items
    assert (tree.start, tree.end) == (0, len(text))
    assert (browser.start, browser.end) == (0, 16)
    assert isinstance(browser, Compare)
    assert text[browser.start : browser.field_end] == "browser"
    assert isinstance(browser.value, Str)
    assert text[browser.value.start : browser.value.end] == "Safari"
    assert isinstance(seq, Then)
    assert text[seq.start : seq.end] == 'network(url ~ "/api", status >= 500) THEN rageClick WITHIN 10s'
    url = seq.steps[0].conditions[0]
    assert text[url.start : url.end] == 'url ~ "/api"'
    assert url.value is not None
    assert text[url.value.start : url.value.end] == '"/api"'
    assert text[seq.steps[1].start : seq.steps[1].end] == "rageClick"


def test_positions_inside_parentheses_and_lists() -> None:
    text = "(plan IN (pro, team))"
    tree = parse(text)
    assert isinstance(tree, Compare)
    assert text[tree.start : tree.field_end] == "plan"
    assert isinstance(tree.value, ValueList)
    assert text[tree.value.start : tree.value.end] == "(pro, team)"
    assert [text[v.start : v.end] for v in tree.value.items] == ["pro", "team"]


def test_equality_ignores_positions() -> None:
    assert parse("a = 1") == parse("  a   =   1  ")
    assert hash(parse("a = 1")) == hash(parse("  a   =   1  "))
    assert parse("a = 1") != parse("a = 2")
    assert parse("a = 1") != parse('a = "1"')
    assert parse("a = true") != parse('a = "true"')


def test_walk_visits_every_node_in_order() -> None:
    text = "a = 1 OR NOT network(s IN (x, y), d BETWEEN 1s AND 2s) THEN rageClick WITHIN 5s"
    nodes = list(walk(parse(text)))
    kinds = [type(n).__name__ for n in nodes]
    assert kinds == ["Or", "Compare", "Num", "Not", "Then", "Had", "Compare", "ValueList", "Str", "Str",
                     "Compare", "Range", "Duration", "Duration", "Had"]
    fields = [(n.field, text[n.start : n.field_end]) for n in nodes if isinstance(n, Compare)]
    assert fields == [("a", "a"), ("s", "s"), ("d", "d")]


def test_walk_is_not_recursive_on_wide_trees() -> None:
    tree = Or(tuple(Compare(f"f{i}", "=", Num(i)) for i in range(5_000)))
    assert sum(isinstance(n, Compare) for n in walk(tree)) == 5_000


def test_a_query_string_past_the_condition_limit_is_refused() -> None:
    text = " OR ".join(f"f{i} = {i}" for i in range(1_000))[: MAX_QUERY_LENGTH - 20].rsplit(" OR ", 1)[0]
    with pytest.raises(QueryError, match=f"the filter has {text.count(' OR ') + 1} conditions; the limit is 500"):
        parse(text)


# (query, summary, position, line, column)
ERRORS: list[tuple[str, str, int, int, int]] = [
    ("", "empty query", 0, 1, 1),
    ("  \n ", "empty query", 0, 1, 1),
    ("browser = AND os = iOS", "unexpected `AND`: expected a value after `=`", 10, 1, 11),
    ("browser =", "unexpected end of query: expected a value after `=`", 9, 1, 10),
    ("browser = Safari os = iOS", "unexpected `os`: conditions must be joined with AND or OR", 17, 1, 18),
    ("a = 1 (b = 2)", "unexpected `(`: conditions must be joined with AND or OR", 6, 1, 7),
    ("a = 1 NOT b = 2", "unexpected `NOT`: conditions must be joined with AND or OR", 6, 1, 7),
    ("rageClick deadClick", "unexpected `deadClick`: conditions must be joined with AND or OR", 10, 1, 11),
    ('name = "abc', 'unterminated string: missing closing "', 7, 1, 8),
    ("name = 'abc\\'", "unterminated string: missing closing '", 7, 1, 8),
    ("a == 1", "unknown operator `==`; did you mean `=`?", 2, 1, 3),
    ("a <> 1", "unknown operator `<>`; did you mean `!=`?", 2, 1, 3),
    ("a => 1", "unknown operator `=>`; did you mean `>=`?", 2, 1, 3),
    ("a ! 1", "unknown operator `!`; use one of = != < <= > >= ~ !~ ^= $=", 2, 1, 3),
    ("(a = 1", "unbalanced parentheses: this `(` is never closed", 0, 1, 1),
    ("a = 1 AND (b = 2 OR (c = 3)", "unbalanced parentheses: this `(` is never closed", 10, 1, 11),
    ("network(a = 1", "unbalanced parentheses: this `(` is never closed", 7, 1, 8),
    ("a = 1)", "unbalanced parentheses: `)` without a matching `(`", 5, 1, 6),
    ("a = 1 AND b = 2))", "unbalanced parentheses: `)` without a matching `(`", 15, 1, 16),
    (
        "a > 10x",
        "invalid duration `10x`: unknown unit `x` (use ms, s, m, h, d; quote the value if it is text)",
        4, 1, 5,
    ),
    (
        "a > 5sec",
        "invalid duration `5sec`: unknown unit `sec` (use ms, s, m, h, d; quote the value if it is text)",
        4, 1, 5,
    ),
    (
        "startedAt > now-1w",
        "invalid duration `now-1w`: unknown unit `w` (use ms, s, m, h, d; quote the value if it is text)",
        12, 1, 13,
    ),
    ("a > 1.0001s", "invalid duration `1.0001s`: not a whole number of milliseconds", 4, 1, 5),
    ("network THEN error WITHIN 10", "invalid duration `10`: missing unit (use ms, s, m, h or d)", 26, 1, 27),
    (
        "network THEN error WITHIN",
        "unexpected end of query: expected a duration such as `10s` after `WITHIN`",
        25, 1, 26,
    ),
    (
        "browser",
        "unexpected end of query: expected an operator (= != < <= > >= ~ !~ ^= $= IN EXISTS BETWEEN MATCHES) "
        "after `browser`",
        7, 1, 8,
    ),
    ("a NOT = 1", "unexpected `=`: expected IN, EXISTS or MATCHES after `NOT`", 6, 1, 7),
    ("a = 1 AND", "unexpected end of query: expected a condition after `AND`", 9, 1, 10),
    ("OR a = 1", "unexpected `OR`: expected a condition", 0, 1, 1),
    ("NOT", "unexpected end of query: expected a condition after `NOT`", 3, 1, 4),
    ("()", "unexpected `)`: expected a condition after `(`", 1, 1, 2),
    ("a IN pro", "unexpected `pro`: expected a list in parentheses such as `(a, b)` after `IN`", 5, 1, 6),
    ("a IN (pro team)", "unexpected `team`: expected `,` or `)` after `pro`", 10, 1, 11),
    ("cnt(error) > 2", "unknown function `cnt`; the one function is count(...), as in count(error) >= 3", 0, 1, 1),
    ("count(a = 1) > 2", "unexpected `a`: expected an event condition such as network(...), error(...) or rageClick "
                         "after `(`", 6, 1, 7),
    ("session = x", "unexpected `=`: expected `(` after `session`", 8, 1, 9),
    ("url MATCHES", "unexpected end of query: expected a value after `MATCHES`", 11, 1, 12),
    ("a IN (x,)", "unexpected `)`: expected a value after `,`", 8, 1, 9),
    ("a = (1, 2)", "unexpected `(`: expected a value after `=`", 4, 1, 5),
    ("n BETWEEN 1 OR 2", "unexpected `OR`: expected AND after `1`", 12, 1, 13),
    ("network(a = 1 b = 2)", "unexpected `b`: expected `,` or `)` after `1`", 14, 1, 15),
    ("network(a = 1,)", "unexpected `)`: expected a condition after `,`", 14, 1, 15),
    ("network(a = 1 OR b = 2)", "unexpected `OR`: expected `,` or `)` after `1`", 14, 1, 15),
    ('error("x")', "only custom(...) takes a leading event name; write `field = value`", 6, 1, 7),
    ("custom(3)", "only custom(...) takes a leading event name; write `field = value`", 7, 1, 8),
    (
        "a = 1 THEN b = 2",
        "unexpected `THEN`: THEN joins event conditions such as network(...), error(...) or rageClick",
        6, 1, 7,
    ),
    (
        "network THEN a = 1",
        "unexpected `a`: expected an event condition such as network(...), error(...) or rageClick after `THEN`",
        13, 1, 14,
    ),
    (
        "rageClick WITHIN 5s",
        "unexpected `WITHIN`: WITHIN goes after a sequence such as `network THEN rageClick`",
        10, 1, 11,
    ),
    (
        "then = 1",
        "unexpected `then`: THEN joins event conditions such as network(...), error(...) or rageClick",
        0, 1, 1,
    ),
    ('"browser" = 1', 'unexpected `"browser"`: expected a condition', 0, 1, 1),
    ("user-id = 1", "unexpected `user-id`: a field name is letters, digits and `_`, separated by dots", 0, 1, 1),
    ("a = 1\n  AND b = = 2", "unexpected `=`: expected a value after `=`", 16, 2, 11),
    ("a = 1\nAND\nb = 'x", "unterminated string: missing closing '", 14, 3, 5),
    ('a = "\\q"', "invalid escape `\\q` in string (use \\\\ for a backslash)", 5, 1, 6),
    ('a = "\\u12"', "invalid escape `\\u` in string (use \\\\ for a backslash)", 5, 1, 6),
    ("a\x00 = 1", "unexpected character U+0000", 1, 1, 2),
    ("a = 1 AND \u200b b = 2", "unexpected character U+200B", 10, 1, 11),
    ("a = 2024-13-01", "invalid date or time `2024-13-01`", 4, 1, 5),
    ("x = 1e999", "number `1e999` is out of range", 4, 1, 5),
]


@pytest.mark.parametrize(("query", "summary", "position", "line", "column"), ERRORS, ids=[e[0] for e in ERRORS])
def test_error_messages(query: str, summary: str, position: int, line: int, column: int) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    err = info.value
    assert (err.summary, err.position, err.line, err.column) == (summary, position, line, column)
    assert err.code == "BAD_QUERY"
    assert isinstance(err, UserError)
    shown = "".join(ch if ch.isprintable() else "?" for ch in query.split("\n")[line - 1])
    assert str(err) == f"{summary} (line {line}, column {column})\n  {shown}\n  {' ' * (column - 1)}^"


def test_error_message_exact_rendering() -> None:
    with pytest.raises(QueryError) as info:
        parse("browser = Safari AND os =")
    assert str(info.value) == (
        "unexpected end of query: expected a value after `=` (line 1, column 26)\n"
        "  browser = Safari AND os =\n"
        "                           ^"
    )
    assert info.value.args == (str(info.value), 25, 1, 26)


def test_error_on_long_line_shows_a_window_around_the_column() -> None:
    text = "a = 1 AND " * 60 + "b = = 2"
    with pytest.raises(QueryError) as info:
        parse(text)
    err = info.value
    assert err.position == len(text) - 3
    assert err.column == len(text) - 2
    fragment = str(err).split("\n")[1:]
    assert fragment[0] == "  …" + text[err.position - 40 :]
    assert fragment[1] == "  " + " " * 41 + "^"


def test_query_too_long() -> None:
    text = "a = " + "x" * (MAX_QUERY_LENGTH - 3)
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.summary == f"query is too long ({MAX_QUERY_LENGTH + 1} characters; the limit is 10000)"
    assert (info.value.position, info.value.line, info.value.column) == (MAX_QUERY_LENGTH, 1, MAX_QUERY_LENGTH + 1)
    assert parse(text[:-1]) == eq("a", "x" * (MAX_QUERY_LENGTH - 4))


def test_one_megabyte_query_is_rejected_cleanly() -> None:
    for text in ("x" * 1_000_000, '"' * 1_000_000, "(" * 1_000_000, "a = 1 AND " * 100_000):
        with pytest.raises(QueryError) as info:
            parse(text)
        assert info.value.summary == "query is too long (1000000 characters; the limit is 10000)"


def test_ten_thousand_nested_parentheses() -> None:
    for depth in (10_000, 4_990):
        text = "(" * depth + "a = 1" + ")" * depth
        with pytest.raises(QueryError) as info:
            parse(text)
        assert info.value.code == "BAD_QUERY"
    with pytest.raises(QueryError) as info:
        parse("(" * 4_990 + "a = 1" + ")" * 4_990)
    assert info.value.summary == f"query is nested too deeply (more than {MAX_DEPTH} levels)"
    assert info.value.position == MAX_DEPTH


def test_nesting_limit_counts_parentheses_and_nots() -> None:
    ok = "(" * MAX_DEPTH + "a = 1" + ")" * MAX_DEPTH
    assert parse(ok) == eq("a", 1)
    nots = "NOT " * MAX_DEPTH + "a = 1"
    assert to_string(parse(nots)) == nots
    with pytest.raises(QueryError) as info:
        parse("NOT " * 2_000 + "a = 1")
    assert info.value.summary == f"query is nested too deeply (more than {MAX_DEPTH} levels)"
    assert info.value.position == 4 * MAX_DEPTH
    with pytest.raises(QueryError) as info:
        parse("NOT (" * 40 + "a = 1" + ")" * 40)
    assert info.value.position == 5 * 32
    many_siblings = " AND ".join(f"NOT (a{i} = 1)" for i in range(200))
    assert len(parse(many_siblings).items) == 200  # type: ignore[union-attr]


def test_deep_but_allowed_tree_prints_and_compares() -> None:
    text = "(" * 30 + "NOT (" * 15 + "a = 1 OR b = 2" + ")" * 45
    tree = parse(text)
    assert to_string(tree) == "NOT " * 14 + "NOT (a = 1 OR b = 2)"
    assert parse(to_string(tree)) == tree


def test_nul_bytes_and_unicode() -> None:
    assert parse('a = "x\x00y"') == eq("a", "x\x00y")
    with pytest.raises(QueryError) as info:
        parse("\x00")
    assert info.value.summary == "unexpected character U+0000"
    assert parse("city = Zürich AND emoji = '🎉'") == And((eq("city", "Zürich"), eq("emoji", "🎉")))
    assert parse("a\u3000=\u00a0b") == eq("a", "b")  # unicode spaces separate tokens
    assert parse('a = "\ud800"') == eq("a", "\ud800")


def test_non_string_input_is_a_query_error() -> None:
    with pytest.raises(QueryError) as info:
        parse(b"a = 1")  # type: ignore[arg-type]
    assert info.value.summary == "query must be a string"


def test_random_token_soup_parses_or_fails_cleanly() -> None:
    """Fixed-seed soup of fragments: every outcome is a Node that round-trips, or a QueryError; never anything else."""
    pieces = ["a", "b.c", "=", "!=", ">=", "~", "^=", "IN", "NOT", "AND", "OR", "(", ")", ",", "1", "-2.5", "3s",
              "-7d", "now-1h", '"x y"', "'q", "network", "rageClick", "THEN", "WITHIN", "BETWEEN", "EXISTS", "true",
              "2024-01-01", "custom", "==", "\\", "\x00", "é", "10x", "\n"]
    rng = random.Random(4)
    parsed = 0
    for _ in range(3_000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        try:
            tree = parse(text)
        except QueryError as err:
            assert 0 <= err.position <= len(text)
            assert err.code == "BAD_QUERY"
            continue
        parsed += 1
        assert parse(to_string(tree)) == tree
    assert parsed > 0


def _random_value(rng: random.Random) -> Node:
    choices = [
        lambda: Str(rng.choice(["Safari", "u-123", "a b", "", "AND", "42", 'q"', "é", "/api/x", "now"])),
        lambda: Num(rng.choice([0, 7, -3, 2.5, 1e-7])),
        lambda: Bool(rng.random() < 0.5),
        lambda: Duration(rng.choice([0, 1, 500, 1_500, 60_000, 86_400_000])),
        lambda: RelativeTime(rng.choice([0, -3_600_000, 1_000, -604_800_000])),
        lambda: Time(rng.choice(["2024-05-01", "2024-05-01T10:30:00Z"])),
    ]
    return rng.choice(choices)()


def _random_compare(rng: random.Random) -> Compare:
    field = rng.choice(["browser", "user.trait.plan", "x_1"])
    op = rng.choice(["=", "!=", "<", "<=", ">", ">=", "~", "!~", "^=", "$=", "IN", "NOT IN", "EXISTS", "BETWEEN"])
    if op in ("IN", "NOT IN"):
        return Compare(field, op, ValueList(tuple(_random_value(rng) for _ in range(rng.randint(1, 3)))))
    if op == "BETWEEN":
        return Compare(field, op, Range(_random_value(rng), _random_value(rng)))
    return Compare(field, op, None if op == "EXISTS" else _random_value(rng))


def _random_had(rng: random.Random) -> Had:
    kind = rng.choice(["network", "error", "custom", "rageClick"])
    conditions = tuple(_random_compare(rng) for _ in range(rng.randint(0, 2)))
    if kind == "custom" and rng.random() < 0.5:
        conditions = (Compare("name", "=", Str("Checkout Completed")), *conditions)
    return Had(kind, conditions)


def _random_tree(rng: random.Random, depth: int, parent: type | None = None) -> Node:
    roll = rng.random()
    if depth <= 0 or roll < 0.3:
        return _random_compare(rng)
    if roll < 0.4:
        return _random_had(rng)
    if roll < 0.5:
        return Then(tuple(_random_had(rng) for _ in range(rng.randint(2, 3))), rng.choice([None, 10_000]))
    if roll < 0.6:
        return Not(_random_tree(rng, depth - 1, Not))
    kind = rng.choice([k for k in (And, Or) if k is not parent])  # the parser flattens same-kind nesting
    return kind(tuple(_random_tree(rng, depth - 1, kind) for _ in range(rng.randint(2, 3))))


def test_random_trees_print_and_parse_back() -> None:
    rng = random.Random(7)
    for _ in range(500):
        tree = _random_tree(rng, 4)
        text = to_string(tree)
        assert parse(text) == tree, text
        assert to_string(parse(text)) == text
