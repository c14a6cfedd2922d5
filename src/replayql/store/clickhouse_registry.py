"""Apps and API keys kept in ClickHouse, so that any number of stateless servers share them.

Same contract as the SQLite registry (store.registry): keys are random, shown once, stored as SHA-256, compared
in constant time, and every lookup reads the table, so a new or revoked key takes effect at once everywhere.
Rows are versioned (ReplacingMergeTree + FINAL): revoking a key writes a newer row for it.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from replayql.store.arrow import rows_to_table
from replayql.store.clickhouse_schema import columns_of
from replayql.store.clickhouse_store import ClickHouseStore
from replayql.store.registry import (
    TOKEN_PREFIX,
    ApiKey,
    App,
    KeyScope,
    RegistryError,
    check_app_id,
    check_key_name,
    check_scope,
    hash_secret,
    is_app_id,
    is_key_id,
    new_key_id,
    new_secret,
    normalize_origins,
    parse_token,
)

_KEY_SELECT = ("SELECT id, app_id, scope, name, created_at, revoked_at, secret_sha256 FROM api_keys FINAL "
               "WHERE id = {id:String}")


@overload
def _utc(value: datetime) -> datetime: ...


@overload
def _utc(value: None) -> None: ...


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else (value.replace(tzinfo=UTC) if value.tzinfo is None else value)


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, app_id, scope, name, created_at, revoked_at = row[:6]
    return ApiKey(key_id, app_id, KeyScope(scope), name, _utc(created_at), _utc(revoked_at))


class ClickHouseRegistry:
    def __init__(self, store: ClickHouseStore, owns_store: bool = False) -> None:
        self._store = store
        self._owns_store = owns_store  # opened for `apps`/`keys` alone, the registry closes its store

    def close(self) -> None:
        if self._owns_store:
            self._store.close()

    def _rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return self._store.fetch_rows(sql, params)

    def _insert(self, table: str, row: tuple[Any, ...]) -> None:
        self._store.insert_rows(table, rows_to_table([row], columns_of(table)))

    # --- apps ---

    def create_app(self, app_id: str) -> App:
        check_app_id(app_id)
        if self.get_app(app_id) is not None:
            raise RegistryError(f"app {app_id!r} already exists; choose another id or use that app")
        app = App(id=app_id, created_at=_now())
        self._insert("apps", (app_id, _ms(app.created_at)))
        return app

    def get_app(self, app_id: str) -> App | None:
        if not is_app_id(app_id):
            return None
        rows = self._rows("SELECT id, created_at FROM apps FINAL WHERE id = {id:String}", id=app_id)
        return App(rows[0][0], _utc(rows[0][1])) if rows else None

    def list_apps(self) -> list[App]:
        return [App(r[0], _utc(r[1])) for r in self._rows("SELECT id, created_at FROM apps FINAL ORDER BY id")]

    def set_allowed_origins(self, app_id: str, origins: Sequence[str]) -> tuple[str, ...]:
        allowed = normalize_origins(origins)
        if self.get_app(app_id) is None:
            raise RegistryError(f"unknown app {app_id!r}; create it first with `replayql apps create`")
        self._insert("app_origins", (app_id, json.dumps(allowed), time.time_ns()))
        return allowed

    def allowed_origins(self, app_id: str) -> tuple[str, ...]:
        rows = self._rows("SELECT origins FROM app_origins FINAL WHERE app_id = {app:String}", app=app_id)
        return tuple(json.loads(rows[0][0])) if rows else ()

    # --- keys ---

    def create_key(self, app_id: str, scope: KeyScope, name: str | None = None) -> tuple[ApiKey, str]:
        check_scope(scope)
        check_key_name(name)
        if self.get_app(app_id) is None:
            raise RegistryError(f"unknown app {app_id!r}; create it first with `replayql apps create`")
        secret, now = new_secret(), _now()
        key = ApiKey(new_key_id(), app_id, scope, name, now, None)
        self._insert("api_keys", (key.id, app_id, scope.value, name, hash_secret(secret),
                                  _ms(now), None, time.time_ns()))
        return key, f"{TOKEN_PREFIX}{key.id}_{secret}"

    def list_keys(self, app_id: str) -> list[ApiKey]:
        rows = self._rows("SELECT id, app_id, scope, name, created_at, revoked_at FROM api_keys FINAL "
                          "WHERE app_id = {app:String} ORDER BY created_at, id", app=app_id)
        return [_key(r) for r in rows]

    def get_key(self, key_id: str) -> ApiKey | None:
        if not is_key_id(key_id):
            return None
        rows = self._rows(_KEY_SELECT, id=key_id)
        return _key(rows[0]) if rows else None

    def revoke_key(self, key_id: str) -> bool:
        if not is_key_id(key_id):
            return False
        rows = self._rows(_KEY_SELECT, id=key_id)
        if not rows or rows[0][5] is not None:
            return False
        key_id, app_id, scope, name, created_at, _, secret_hash = rows[0]
        self._insert("api_keys", (key_id, app_id, scope, name, secret_hash, _ms(created_at), _ms(_now()),
                                  time.time_ns()))
        return True

    def authenticate(self, token: str) -> ApiKey | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        rows = self._rows(_KEY_SELECT, id=key_id)
        if not rows or rows[0][5] is not None:
            return None
        if not hmac.compare_digest(rows[0][6], hash_secret(secret)):
            return None
        return _key(rows[0])


def _now() -> datetime:
    """Now, at the millisecond precision the tables store: what create_* returns equals what is read back."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _ms(value: datetime) -> int:
    """Epoch milliseconds, exactly (float seconds * 1000 can land one millisecond short)."""
    return ((_utc(value) or value) - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
