"""The query-string face of the filter language: tokenizer, grammar, printer and errors; the tree it parses into
and prints from is query.ast.

Purely syntactic: field names and value types are checked later by the compiler, which can use `ast.walk()` to
visit every node with its position. Grammar (keywords case-insensitive, precedence NOT > AND > OR):

    query      := or_expr
    or_expr    := and_expr (OR and_expr)*
    and_expr   := not_expr (AND not_expr)*
    not_expr   := NOT not_expr | atom
    atom       := "(" or_expr ")" | comparison | had | had (THEN had)+ [WITHIN duration]
                | count "(" had ")" (OP value | BETWEEN value AND value) | SESSION "(" or_expr ")"
    had        := KIND ["(" [had_arg ("," comparison)*] ")"]      KIND: network error visited clicked custom
                                                                         console vital rageClick deadClick errorClick
    had_arg    := comparison | value                              (a bare value only as custom's event name)
    comparison := field OP value | field [NOT] IN list | field [NOT] EXISTS | field BETWEEN value AND value
                | field [NOT] MATCHES value
    OP         := = != < <= > >= ~ !~ ^= $=
    list       := "(" value ("," value)* ")"
    value      := word | "string" | 'string' | number | duration | ISO time | -7d | now | now-1h | true | false

Adjacent conditions without AND/OR are an error. The tokenizer is hand-written (precise lexical errors, depth
limits); the grammar is a lark LALR grammar driven through lark's interactive parser, so parsing never recurses.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypedDict, TypeVar, cast

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedToken
from lark.lexer import Lexer

from replayql.query.ast import (
    And,
    Bool,
    Compare,
    Condition,
    CountOf,
    Duration,
    Had,
    InSession,
    Node,
    Not,
    Num,
    Or,
    Range,
    RelativeTime,
    Str,
    Then,
    Time,
    Value,
    ValueList,
    walk,
)
from replayql.query.errors import UserError

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "QueryError",
    "check_size",
    "error_at",
    "parse",
    "to_string",
]
MAX_QUERY_LENGTH = 10_000
# Bounds the work of compiling and planning one filter, whichever face it comes from (a typed filter in
# variables has no length limit of its own).
MAX_CONDITIONS = 500
MAX_DEPTH = 64
MAX_DURATION_MS = 100 * 366 * 24 * 3600 * 1000  # durations and `now-…` offsets stay within calendar arithmetic
_MAX_NUMBER_CHARS = 40  # longer digit strings than a double can tell apart; int() of a huge one is itself costly

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~", "!~", "^=", "$=")
KEYWORD_OPERATORS = ("IN", "NOT IN", "EXISTS", "NOT EXISTS", "BETWEEN", "MATCHES", "NOT MATCHES")
HAD_KINDS = (
    "network", "error", "visited", "clicked", "custom", "console", "vital", "rageClick", "deadClick", "errorClick",
)
DURATION_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


# --------------------------------------------------------------------------------------------------------- errors


class QueryError(UserError):
    """A query string that does not parse; `position` is a 0-based character offset, line/column are 1-based."""

    code = "BAD_QUERY"

    def __init__(self, message: str, position: int, line: int, column: int, *, summary: str | None = None) -> None:
        super().__init__(message, position, line, column)
        self.message = message
        self.position = position
        self.line = line
        self.column = column
        self.summary = summary if summary is not None else message

    def __str__(self) -> str:
        return self.message

    @property
    def extensions(self) -> dict[str, int]:
        """Where the mistake is, for the API's `extensions` next to `code`."""
        return {"position": self.position, "line": self.line, "column": self.column}


def _line_col(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def _highlight(text: str, position: int) -> str:
    """The offending line (clipped to a window around the column) with a caret under the position."""
    start = text.rfind("\n", 0, position) + 1
    stop = text.find("\n", position)
    line = text[start : len(text) if stop < 0 else stop]
    col = position - start
    lo, hi = max(0, col - 40), col + 40
    shown = ("…" if lo else "") + line[lo:hi] + ("…" if hi < len(line) else "")
    shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
    return f"  {shown}\n  {' ' * (col - lo + (1 if lo else 0))}^"


def error_at(text: str, position: int, summary: str) -> QueryError:
    line, column = _line_col(text, position)
    message = f"{summary} (line {line}, column {column})\n{_highlight(text, position)}"
    return QueryError(message, position, line, column, summary=summary)


# ------------------------------------------------------------------------------------------------------ tokenizer

_SPECIAL = set("()," + "\"'" + "=!<>~^$")
_OP_CHARS = set("=!<>~^$")
_KEYWORDS = {"and", "or", "not", "in", "exists", "between", "then", "within", "matches", "session"}
_KINDS = {kind.lower(): kind for kind in HAD_KINDS}
_NAME_RE = re.compile(r"[^\W\d]\w*(?:\.\w+)*")
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]+)")
_RELATIVE_RE = re.compile(r"(now)?(?:([+-])(\d+(?:\.\d+)?)([A-Za-z]+))?", re.IGNORECASE)
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and not ch.isspace()


def _is_word_char(ch: str) -> bool:
    return ch not in _SPECIAL and not ch.isspace() and not _is_control(ch)


class _Tokenizer:
    """Turns the query into lark Tokens lazily, tracking parenthesis balance and nesting depth."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.open_parens: list[int] = []
        self._depths: list[int] = []
        self._depth = 0
        self._nots = 0

    def tokens(self) -> Iterator[Token]:
        text, pos = self.text, 0
        while pos < len(text):
            ch = text[pos]
            if ch.isspace():
                pos += 1
                continue
            token = self._next(ch, pos)
            self._track(token)
            pos = _end(token)
            yield token

    def _next(self, ch: str, pos: int) -> Token:
        if ch in "(),":
            return self._token({"(": "LPAR", ")": "RPAR", ",": "COMMA"}[ch], ch, pos, pos + 1)
        if ch in "\"'":
            return self._string(pos)
        if ch in _OP_CHARS:
            return self._operator(pos)
        if _is_control(ch):
            raise error_at(self.text, pos, f"unexpected character U+{ord(ch):04X}")
        end = pos
        while end < len(self.text) and _is_word_char(self.text[end]):
            end += 1
        return self._word(pos, end)

    def _token(self, kind: str, value: object, start: int, end: int) -> Token:
        return Token(kind, value, start_pos=start, end_pos=end)

    def _string(self, start: int) -> Token:
        text, quote, pos = self.text, self.text[start], start + 1
        out: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if ch == quote:
                return self._token("STRING", "".join(out), start, pos + 1)
            if ch == "\\":
                decoded, pos = self._escape(pos)
                out.append(decoded)
                continue
            out.append(ch)
            pos += 1
        raise error_at(text, start, f"unterminated string: missing closing {quote}")

    def _escape(self, pos: int) -> tuple[str, int]:
        text = self.text
        nxt = text[pos + 1 : pos + 2]
        if nxt in _ESCAPES:
            return _ESCAPES[nxt], pos + 2
        digits = text[pos + 2 : pos + 6]
        if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
            return chr(int(digits, 16)), pos + 6
        shown = ("\\" + nxt) if nxt else "\\"
        raise error_at(text, pos, f"invalid escape `{shown}` in string (use \\\\ for a backslash)")

    def _operator(self, start: int) -> Token:
        end = start
        while end < len(self.text) and self.text[end] in _OP_CHARS:
            end += 1
        op = self.text[start:end]
        if op not in OPERATORS:
            hint = {"==": "=", "<>": "!=", "=<": "<=", "=>": ">=", "=~": "~"}.get(op)
            suffix = f"; did you mean `{hint}`?" if hint else f"; use one of {' '.join(OPERATORS)}"
            raise error_at(self.text, start, f"unknown operator `{op}`{suffix}")
        return self._token("OP", op, start, end)

    def _word(self, start: int, end: int) -> Token:
        word = self.text[start:end]
        lower = word.lower()
        if lower in _KEYWORDS:
            return self._token(lower.upper(), word, start, end)
        if lower in ("true", "false"):
            return self._token("BOOL", lower == "true", start, end)
        if lower in _KINDS:
            return self._token("KIND", word, start, end)
        kind, value = _classify_literal(word, lambda msg: error_at(self.text, start, msg))
        return self._token(kind, value, start, end)

    def _track(self, token: Token) -> None:
        """Parenthesis balance, and nesting depth counted as open parentheses plus pending NOTs."""
        start = _start(token)
        if token.type == "NOT":
            self._nots += 1
            self._check_depth(self._depth + self._nots, start)
        elif token.type == "LPAR":
            self._depths.append(self._depth)
            self._depth += self._nots + 1
            self._nots = 0
            self.open_parens.append(start)
            self._check_depth(self._depth, start)
        elif token.type == "RPAR":
            if not self.open_parens:
                raise error_at(self.text, start, "unbalanced parentheses: `)` without a matching `(`")
            self.open_parens.pop()
            self._depth = self._depths.pop()
            self._nots = 0
        else:
            self._nots = 0

    def _check_depth(self, depth: int, position: int) -> None:
        if depth > MAX_DEPTH:
            raise error_at(self.text, position, f"query is nested too deeply (more than {MAX_DEPTH} levels)")


_Fail = Callable[[str], QueryError]


def _classify_literal(word: str, fail: _Fail) -> tuple[str, object]:
    """NUMBER / DURATION / RELTIME / TIME / NAME / WORD for one bare word; `fail(msg)` builds the error to raise."""
    if _NUMBER_RE.fullmatch(word):
        if len(word) > _MAX_NUMBER_CHARS:
            raise fail(f"number `{word[:20]}...` is out of range")
        number = float(word) if any(c in word for c in ".eE") else int(word)
        if not math.isfinite(number):
            raise fail(f"number `{word}` is out of range")
        return "NUMBER", number
    if match := _DURATION_RE.fullmatch(word):
        return "DURATION", _duration_ms(match.group(1), match.group(2), word, fail)
    if (match := _RELATIVE_RE.fullmatch(word)) and (match.group(1) or match.group(2) == "-"):
        if match.group(2) is None:
            return "RELTIME", 0
        ms = _duration_ms(match.group(3), match.group(4), word, fail)
        return "RELTIME", -ms if match.group(2) == "-" else ms
    if _TIME_RE.fullmatch(word):
        try:
            moment = datetime.fromisoformat(word)
        except ValueError:
            raise fail(f"invalid date or time `{word}`") from None
        if not 1900 <= moment.year < 2200:
            raise fail(f"date `{word}` is out of range: use a time from 1900 to 2199")
        return "TIME", word
    return ("NAME" if _NAME_RE.fullmatch(word) else "WORD"), word


def _duration_ms(amount: str, unit: str, word: str, fail: _Fail) -> int:
    if unit not in DURATION_UNITS:
        units = ", ".join(DURATION_UNITS)
        raise fail(f"invalid duration `{word}`: unknown unit `{unit}` (use {units}; quote the value if it is text)")
    if len(amount) > _MAX_NUMBER_CHARS:
        raise fail(f"duration `{word[:20]}...` is out of range")
    ms = float(amount) * DURATION_UNITS[unit] if "." in amount else int(amount) * DURATION_UNITS[unit]
    if abs(ms) > MAX_DURATION_MS:
        raise fail(f"duration `{word}` is out of range (at most 100 years)")
    if ms != int(ms):
        raise fail(f"invalid duration `{word}`: not a whole number of milliseconds")
    return int(ms)


# -------------------------------------------------------------------------------------------------------- grammar

_GRAMMAR = r"""
%declare AND OR NOT IN EXISTS BETWEEN THEN WITHIN MATCHES SESSION LPAR RPAR COMMA OP NAME WORD KIND STRING
%declare NUMBER DURATION TIME RELTIME BOOL

start: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND not_expr)*
?not_expr: NOT not_expr -> negation
         | atom
?atom: LPAR or_expr RPAR -> group
     | comparison
     | had
     | had (THEN had)+ (WITHIN DURATION)? -> sequence
     | NAME LPAR had RPAR OP value -> count_compare
     | NAME LPAR had RPAR BETWEEN value AND value -> count_between
     | SESSION LPAR or_expr RPAR -> in_session
had: KIND (LPAR (had_arg (COMMA comparison)*)? RPAR)?
?had_arg: comparison | value
comparison: NAME OP value -> compare
          | NAME IN value_list -> compare_in
          | NAME NOT IN value_list -> compare_not_in
          | NAME EXISTS -> compare_exists
          | NAME NOT EXISTS -> compare_not_exists
          | NAME BETWEEN value AND value -> compare_between
          | NAME MATCHES value -> compare_matches
          | NAME NOT MATCHES value -> compare_not_matches
value_list: LPAR (value (COMMA value)*)? RPAR
value: STRING | NUMBER | DURATION | TIME | RELTIME | BOOL | NAME | WORD | KIND | SESSION
"""


class _NoLexer(Lexer):
    """Tokens are fed by `_Tokenizer` through the interactive parser; lark's own lexing is never used."""

    def __init__(self, lexer_conf: object) -> None:
        """lark hands over its lexer configuration; with no lexing to do there is nothing to keep."""

    def lex(self, lexer_state: object, parser_state: object) -> Iterator[Token]:
        raise RuntimeError("replayql feeds tokens to the parser itself; lark's lexer is never asked for them")


def _start(token: Token) -> int:
    """Where a token starts: every token is made by `_Tokenizer` or `_run_parser`, with its position."""
    assert token.start_pos is not None
    return token.start_pos


def _end(token: Token) -> int:
    assert token.end_pos is not None
    return token.end_pos


class _Span(TypedDict):
    start: int
    end: int


def _span(first: Node | Token, last: Node | Token) -> _Span:
    start = _start(first) if isinstance(first, Token) else first.start
    end = _end(last) if isinstance(last, Token) else last.end
    return {"start": start, "end": end}


# The children a rule's callback gets: tokens and the nodes built for its sub-rules, in grammar order.
_Children = list[Any]
_Joined = TypeVar("_Joined", And, Or)


def _flatten(cls: type[_Joined], items: _Children) -> _Joined:
    nodes: list[Condition] = []
    for item in items:
        if isinstance(item, Token):
            continue
        nodes.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(nodes), **_span(items[0], items[-1]))


class _Builder(Transformer[Token, Condition]):
    """Reduce callbacks run by the LALR parser itself (no tree, no recursion). Stateless, so shared."""

    def start(self, c: _Children) -> Condition:
        return cast(Condition, c[0])

    def or_expr(self, c: _Children) -> Or:
        return _flatten(Or, c)

    def and_expr(self, c: _Children) -> And:
        return _flatten(And, c)

    def negation(self, c: _Children) -> Not:
        return Not(c[1], **_span(c[0], c[1]))

    def group(self, c: _Children) -> Condition:
        return cast(Condition, c[1])  # the span stays that of the inner expression, so `Compare.field_end` holds

    def sequence(self, c: _Children) -> Then:
        steps = tuple(x for x in c if isinstance(x, Had))
        within = c[-1].value if isinstance(c[-1], Token) and c[-1].type == "DURATION" else None
        return Then(steps, within, **_span(c[0], c[-1]))

    def count_compare(self, c: _Children) -> CountOf:
        _check_count_function(c[0])
        return CountOf(c[2], c[4].value, c[5], **_span(c[0], c[5]))

    def count_between(self, c: _Children) -> CountOf:
        _check_count_function(c[0])
        return CountOf(c[2], "BETWEEN", Range(c[5], c[7], **_span(c[5], c[7])), **_span(c[0], c[7]))

    def in_session(self, c: _Children) -> InSession:
        return InSession(c[2], **_span(c[0], c[3]))

    def had(self, c: _Children) -> Had:
        kind = _KINDS[c[0].value.lower()]
        args = [x for x in c[1:] if not isinstance(x, Token)]
        if args and not isinstance(args[0], Compare):
            args[0] = _positional_name(kind, args[0])
        return Had(kind, tuple(args), **_span(c[0], c[-1]))

    def compare(self, c: _Children) -> Compare:
        return Compare(c[0].value, c[1].value, c[2], **_span(c[0], c[2]))

    def compare_in(self, c: _Children) -> Compare:
        return Compare(c[0].value, "IN", c[2], **_span(c[0], c[2]))

    def compare_not_in(self, c: _Children) -> Compare:
        return Compare(c[0].value, "NOT IN", c[3], **_span(c[0], c[3]))

    def compare_exists(self, c: _Children) -> Compare:
        return Compare(c[0].value, "EXISTS", None, **_span(c[0], c[1]))

    def compare_not_exists(self, c: _Children) -> Compare:
        return Compare(c[0].value, "NOT EXISTS", None, **_span(c[0], c[2]))

    def compare_between(self, c: _Children) -> Compare:
        return Compare(c[0].value, "BETWEEN", Range(c[2], c[4], **_span(c[2], c[4])), **_span(c[0], c[4]))

    def compare_matches(self, c: _Children) -> Compare:
        return Compare(c[0].value, "MATCHES", c[2], **_span(c[0], c[2]))

    def compare_not_matches(self, c: _Children) -> Compare:
        return Compare(c[0].value, "NOT MATCHES", c[3], **_span(c[0], c[3]))

    def value_list(self, c: _Children) -> ValueList:
        return ValueList(tuple(x for x in c if not isinstance(x, Token)), **_span(c[0], c[-1]))

    def value(self, c: _Children) -> Value:
        tok: Token = c[0]
        span = _span(tok, tok)
        makers: dict[str, type[Num | Duration | Time | RelativeTime | Bool]] = {
            "NUMBER": Num, "DURATION": Duration, "TIME": Time, "RELTIME": RelativeTime, "BOOL": Bool}
        return makers.get(tok.type, Str)(tok.value, **span)


class _PositionalName(Exception):
    def __init__(self, value: Value) -> None:
        self.value = value


class _UnknownFunction(Exception):
    def __init__(self, token: Token) -> None:
        self.token = token


def _check_count_function(name: Token) -> None:
    if name.value.lower() != "count":
        raise _UnknownFunction(name)


def _positional_name(kind: str, value: Value) -> Compare:
    """`custom("Checkout Completed", ...)`: the leading bare value is the event name."""
    if kind != "custom" or not isinstance(value, Str):
        raise _PositionalName(value)
    return Compare("name", "=", value, start=value.start, end=value.end)


_LARK = Lark(_GRAMMAR, parser="lalr", lexer=_NoLexer, transformer=_Builder(), maybe_placeholders=False)


# ----------------------------------------------------------------------------------------------- error messages

_VALUE_TERMINALS = {"STRING", "NUMBER", "DURATION", "TIME", "RELTIME", "BOOL", "NAME", "WORD", "KIND"}
_CONDITION_STARTS = {"NOT", "LPAR", "NAME", "KIND"}
_FIELD_OPERATORS = {"OP", "IN", "NOT", "EXISTS", "BETWEEN", "MATCHES", "LPAR"}


def _expected_phrase(expected: set[str], after: str | None) -> str:
    """What the grammar wanted, in words."""
    if "DURATION" in expected and "STRING" not in expected:
        return "a duration such as `10s`"
    if "STRING" in expected:
        return "a condition or `)`" if "RPAR" in expected else "a value"
    if "NAME" in expected:
        return "a condition or `)`" if "RPAR" in expected else "a condition"
    if expected == {"KIND"}:
        return "an event condition such as network(...), error(...) or rageClick"
    if expected == {"IN", "EXISTS", "MATCHES"}:
        return "IN, EXISTS or MATCHES"
    if expected == {"LPAR"}:
        return "a list in parentheses such as `(a, b)`" if after == "IN" else "`(`"
    if expected <= _FIELD_OPERATORS:
        return "an operator (= != < <= > >= ~ !~ ^= $= IN EXISTS BETWEEN MATCHES)"
    if expected == {"AND"}:
        return "AND"
    return _join_alternatives(expected)


def _join_alternatives(expected: set[str]) -> str:
    names = {"AND": "AND", "OR": "OR", "THEN": "THEN", "WITHIN": "WITHIN", "COMMA": "`,`", "RPAR": "`)`",
             "LPAR": "`(`", "$END": "the end of the query"}
    order = ["COMMA", "RPAR", "LPAR", "THEN", "WITHIN", "AND", "OR", "$END"]
    words = [names[t] for t in order if t in expected] or sorted(expected)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _describe(text: str, token: Token) -> str:
    if token.type == "$END":
        return "end of query"
    raw = text[_start(token) : _end(token)]
    return f"`{raw if len(raw) <= 30 else raw[:29] + '…'}`"


def _syntax_error(
    text: str, token: Token, expected: set[str], previous: Token | None, tokenizer: _Tokenizer
) -> QueryError:
    """`expected` comes from the interactive parser's `accepts()`, exact for this stack (unlike LALR tables)."""
    at_end = token.type == "$END"
    position = len(text) if at_end else _start(token)
    if at_end and "RPAR" in expected and tokenizer.open_parens:
        return error_at(text, tokenizer.open_parens[-1], "unbalanced parentheses: this `(` is never closed")
    if token.type == "NUMBER" and "DURATION" in expected:
        return error_at(text, position, f"invalid duration `{token.value}`: missing unit (use ms, s, m, h or d)")
    found = f"unexpected {_describe(text, token)}"
    if "AND" in expected and "OR" in expected and token.type in _CONDITION_STARTS:
        return error_at(text, position, f"{found}: conditions must be joined with AND or OR")
    if token.type in ("THEN", "WITHIN") and token.type not in expected:
        hint = "THEN joins event conditions such as network(...), error(...) or rageClick"
        if token.type == "WITHIN":
            hint = "WITHIN goes after a sequence such as `network THEN rageClick`"
        return error_at(text, position, f"{found}: {hint}")
    if token.type == "WORD" and "NAME" in expected and "STRING" not in expected:
        return error_at(text, position, f"{found}: a field name is letters, digits and `_`, separated by dots")
    after = f" after {_describe(text, previous)}" if previous else ""
    wanted = _expected_phrase(expected, previous.type if previous else None)
    return error_at(text, position, f"{found}: expected {wanted}{after}")


# ------------------------------------------------------------------------------------------------------------ API


def parse(text: str) -> Condition:
    """Parse a query string into the AST; any problem is a `QueryError` with its position."""
    if not isinstance(text, str):
        raise QueryError("query must be a string", 0, 1, 1)
    if len(text) > MAX_QUERY_LENGTH:
        summary = f"query is too long ({len(text)} characters; the limit is {MAX_QUERY_LENGTH})"
        raise error_at(text, MAX_QUERY_LENGTH, summary)
    if not text.strip():
        raise error_at(text, 0, "empty query")
    try:
        return check_size(_run_parser(text), text)
    except QueryError:
        raise
    except _PositionalName as exc:
        msg = "only custom(...) takes a leading event name; write `field = value`"
        raise error_at(text, exc.value.start, msg) from None
    except _UnknownFunction as exc:
        msg = f"unknown function `{exc.token.value}`; the one function is count(...), as in count(error) >= 3"
        raise error_at(text, _start(exc.token), msg) from None
    except (LarkError, RecursionError) as exc:  # defensive: nothing from lark escapes
        raise error_at(text, 0, f"could not parse query ({type(exc).__name__})") from None


def _run_parser(text: str) -> Condition:
    tokenizer = _Tokenizer(text)
    parser = _LARK.parse_interactive()
    previous: Token | None = None
    try:
        for token in tokenizer.tokens():
            parser.feed_token(token)
            previous = token
        end = Token("$END", "", start_pos=len(text), end_pos=len(text))
        return cast(Condition, parser.feed_token(end))  # the start rule's callback returns the tree
    except UnexpectedToken as err:
        # lark's InteractiveParser.accepts() has no annotations; it returns the names of the acceptable terminals
        expected: set[str] = set(parser.accepts())  # type: ignore[no-untyped-call]
        raise _syntax_error(text, err.token, expected, previous, tokenizer) from None


def check_size(tree: Condition, text: str | None = None) -> Condition:
    """The tree, if it has at most MAX_CONDITIONS comparisons; else a QueryError saying so."""
    conditions = sum(1 for node in walk(tree) if isinstance(node, Compare | Had))
    if conditions > MAX_CONDITIONS:
        summary = f"the filter has {conditions} conditions; the limit is {MAX_CONDITIONS}"
        if text is None:
            raise QueryError(summary, 0, 1, 1)
        raise error_at(text, 0, summary)
    return tree


# -------------------------------------------------------------------------------------------------------- printer

_PRECEDENCE = {Or: 1, And: 2, Not: 3}


def to_string(node: Node) -> str:
    """Normalised text: canonical spacing, upper-case keywords, minimal quoting and parentheses."""
    if isinstance(node, Or | And):
        sep = " OR " if isinstance(node, Or) else " AND "
        return sep.join(_operand(item, _PRECEDENCE[type(node)]) for item in node.items)
    if isinstance(node, Not):
        return "NOT " + _operand(node.item, _PRECEDENCE[Not] - 1)
    if isinstance(node, Compare):
        return _compare_string(node)
    if isinstance(node, Had):
        return _had_string(node)
    if isinstance(node, Then):
        text = " THEN ".join(_had_string(step) for step in node.steps)
        return text if node.within_ms is None else f"{text} WITHIN {_duration_string(node.within_ms)}"
    if isinstance(node, CountOf):
        return f"count({_had_string(node.event)}) {node.op} {_value_string(node.value)}"
    if isinstance(node, InSession):
        return f"session({to_string(node.item)})"
    return _value_string(node)


def _operand(node: Node, parent_precedence: int) -> str:
    """Parenthesise a child that binds no tighter than its parent (keeps nested same-kind groups explicit)."""
    text = to_string(node)
    own = _PRECEDENCE.get(type(node), 4)
    return f"({text})" if own <= parent_precedence else text


def _compare_string(node: Compare) -> str:
    if node.value is None:
        return f"{node.field} {node.op}"
    return f"{node.field} {node.op} {_value_string(node.value)}"


def _had_string(node: Had) -> str:
    if not node.conditions:
        return node.kind
    parts = [_compare_string(c) for c in node.conditions]
    first = node.conditions[0]
    if node.kind == "custom" and first.field == "name" and first.op == "=" and isinstance(first.value, Str):
        parts[0] = _value_string(first.value)
    return f"{node.kind}({', '.join(parts)})"


def _value_string(node: Node) -> str:
    if isinstance(node, Str):
        return node.value if _bare_ok(node.value) else _quote(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Duration):
        return _duration_string(node.ms)
    if isinstance(node, Time):
        return node.value
    if isinstance(node, RelativeTime):
        return _relative_string(node.offset_ms)
    if isinstance(node, ValueList):
        return "(" + ", ".join(_value_string(item) for item in node.items) + ")"
    if isinstance(node, Range):
        return f"{_value_string(node.low)} AND {_value_string(node.high)}"
    raise TypeError(f"not a query node: {node!r}")


def _duration_string(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms and ms % DURATION_UNITS[unit] == 0:
            return f"{ms // DURATION_UNITS[unit]}{unit}"
    return f"{ms}ms"


def _relative_string(offset_ms: int) -> str:
    if offset_ms == 0:
        return "now"
    if offset_ms < 0:
        return "-" + _duration_string(-offset_ms)
    return "now+" + _duration_string(offset_ms)


def _bare_ok(value: str) -> bool:
    """A string may go unquoted when it lexes back as exactly one plain word."""
    if not value or not all(_is_word_char(ch) for ch in value):
        return False
    lower = value.lower()
    if lower in _KEYWORDS or lower in ("true", "false"):
        return False
    try:
        kind, _ = _classify_literal(value, lambda msg: QueryError(msg, 0, 1, 1))
    except QueryError:
        return False
    return kind in ("NAME", "WORD")


def _quote(value: str) -> str:
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
