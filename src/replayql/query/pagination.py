"""Opaque, stable cursors for keyset pagination.

A cursor holds the sort values of the last row seen; the next page is every row strictly after it in the
order, so rows appended meanwhile never shift or repeat a page.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlglot import exp

from replayql.query.errors import BadUserInput
from replayql.query.sql import AppScope


@dataclass(frozen=True)
class SortKey:
    expression: exp.Expr
    descending: bool
    kind: str = "text"  # "time", "text" or "number": what a cursor's value for it must be


def encode_cursor(values: tuple[Any, ...]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[SortKey]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise BadUserInput("`after` is not a cursor returned by this API") from None
    if not isinstance(values, list) or len(values) != len(keys):
        raise BadUserInput("`after` is not a cursor for this list and order")
    try:
        return [_value(v, k.kind) for v, k in zip(values, keys, strict=True)]
    except (TypeError, ValueError):
        raise BadUserInput("`after` is not a cursor for this list and order") from None


def _value(value: Any, kind: str) -> Any:
    """A cursor's value as its sort key's type; anything else was not made by this API (TypeError)."""
    if value is None:  # a row whose sort value is NULL
        return None
    if kind == "time" and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool) and \
            abs(value) < 2**63:
        return value
    raise TypeError(kind)


def after_condition(keys: list[SortKey], values: list[Any], scope: AppScope) -> exp.Expr:
    """(k1, k2, ...) strictly after (v1, v2, ...) in the given directions, as an OR of prefixes."""
    disjuncts: list[exp.Expr] = []
    for i, key in enumerate(keys):
        parts: list[exp.Expr] = [keys[j].expression.copy().eq(scope.param(values[j])) for j in range(i)]
        compare = exp.LT if key.descending else exp.GT
        parts.append(compare(this=key.expression.copy(), expression=scope.param(values[i])))
        disjuncts.append(exp.and_(*parts))
    return exp.or_(*disjuncts)


def order_by(query: exp.Select, keys: list[SortKey]) -> exp.Select:
    return query.order_by(*(exp.Ordered(this=k.expression.copy(), desc=k.descending) for k in keys))
