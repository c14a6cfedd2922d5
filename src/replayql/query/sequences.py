"""Sequences, `A THEN B [THEN C ...] [WITHIN 10s]`: the sessions with events matching each step in order.

The query layer states the question: the app's events that match some step, each with one flag per step, read
through the tenant guard like every table. How a store finds the chains is the dialect's: the
`SessionsInSequence` node prints as window functions on DuckDB and as `windowFunnel` on ClickHouse
(store.sequence_sql), with the same answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from replayql.query import ast
from replayql.query.sql import col
from replayql.store.dialect import SessionsInSequence
from replayql.store.sequence_sql import POSITION

if TYPE_CHECKING:
    from replayql.query.compile import Compiler

MAX_STEPS = 16


def sequence_sessions(compiler: Compiler, node: ast.Then) -> SessionsInSequence:
    """The query of the session_id of the sessions where the sequence happened."""
    events = compiler.alias("e")
    matches = [compiler.event_match(step, events) for step in node.steps]
    candidates = compiler.scope.select(
        "events", *(col(c, events) for c in POSITION),
        *(exp.alias_(m, f"m{k}") for k, m in enumerate(matches, 1)), alias=events).where(exp.or_(*matches))
    within = None if node.within_ms is None else exp.Literal.number(node.within_ms)
    return SessionsInSequence(this=candidates, steps=exp.Literal.number(len(matches)), within=within)
