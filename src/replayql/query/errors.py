"""User-facing query errors: each carries the stable code the API reports in `extensions.code`."""

from __future__ import annotations


class UserError(Exception):
    code = "BAD_USER_INPUT"


class BadUserInput(UserError):
    code = "BAD_USER_INPUT"


class NotFound(UserError):
    code = "NOT_FOUND"


class QueryTimeout(UserError):
    """The store did not answer within the per-query time limit; nothing partial is returned."""

    code = "QUERY_TIMEOUT"


class TooManyCells(UserError):
    """The answer would exceed the cap on result cells; narrow the range, the interval or the groups."""

    code = "TOO_MANY_CELLS"
