"""User-facing query errors: each carries the stable code the API reports in `extensions.code`."""

from __future__ import annotations


class UserError(Exception):
    code = "BAD_USER_INPUT"


class BadUserInput(UserError):
    code = "BAD_USER_INPUT"


class NotFound(UserError):
    code = "NOT_FOUND"
