"""The registry contract on ClickHouse: apps and API keys kept in the database (chDB, in this process).

The backend-independent contract tests of test_registry.py run here unchanged against ClickHouseRegistry: pytest
collects the imported test functions in this module, where they get this module's `registry` fixture (the `app`
fixture comes along and builds on it). Only the SQLite-specific tests (files, WAL, PRAGMA user_version, other
processes on one file) stay behind; their ClickHouse counterparts are below, and the schema version of a
ClickHouse database is tested in test_clickhouse_schema.py.

All tests share one database, emptied before each test: creating a fresh database per test would cost more
than the tests themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import drop_location, new_location
from replayql.store.clickhouse_registry import ClickHouseRegistry
from replayql.store.clickhouse_store import ClickHouseStore, Connection
from replayql.store.registry import KeyScope

# Collected here and run against ClickHouse (see the module docstring). Not imported: the thread test, whose
# 4,000 lookups take over ten seconds through chDB's one connection; a smaller version of it is below.
from test_registry import (  # noqa: F401
    app,
    check_threads_share_one_registry,
    test_allowed_origins_are_normalised_and_kept,
    test_create_get_and_list_apps,
    test_create_key_for_unknown_app_fails,
    test_create_key_rejects_bad_scope_and_name,
    test_created_token_authenticates_to_its_key,
    test_duplicate_app_is_rejected,
    test_each_token_authenticates_only_its_own_key,
    test_empty_registry_lists_nothing,
    test_invalid_app_ids_are_rejected,
    test_invalid_origins_are_refused,
    test_list_keys_never_exposes_secrets,
    test_longest_valid_app_id,
    test_malformed_tokens_are_rejected,
    test_non_string_tokens_are_rejected,
    test_origins_of_an_unknown_app_are_refused,
    test_revoke_makes_the_token_useless,
    test_revoke_or_get_unknown_key,
    test_tokens_are_unique,
    test_wrong_secret_with_valid_key_id,
)


@pytest.fixture(scope="module")
def url(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ClickHouse database for this module (its schema is created by the first store that opens it)."""
    location = new_location("clickhouse", tmp_path_factory.mktemp("registry"), chdb_path)
    assert location.clickhouse is not None
    ClickHouseStore(Connection(location.clickhouse.url)).close()
    yield location.clickhouse.url
    drop_location(location)


@pytest.fixture(scope="module")
def store(url: str) -> Iterator[ClickHouseStore]:
    opened = ClickHouseStore(Connection(url))
    yield opened
    opened.close()


@pytest.fixture
def registry(store: ClickHouseStore, url: str) -> Iterator[ClickHouseRegistry]:
    """A registry on an empty database."""
    client = Connection(url).client(Connection(url).database)
    try:
        for table in ("apps", "api_keys"):
            client.command(f"TRUNCATE TABLE {table}")
    finally:
        client.close()
    reg = ClickHouseRegistry(store)
    yield reg
    reg.close()


def _secret_of(token: str) -> str:
    return token.rsplit("_", 1)[1]


def _api_key_rows(store: ClickHouseStore) -> list[tuple[Any, ...]]:
    """Every stored row of api_keys, each version of each key (no FINAL), every column."""
    return store.fetch_rows("SELECT * FROM api_keys ORDER BY id, version")


def test_two_registries_on_one_database_see_each_other_at_once(registry: ClickHouseRegistry, url: str) -> None:
    """Two servers (two stores, each with its own client) on one database: nothing is cached anywhere."""
    server = registry
    cli = ClickHouseRegistry(ClickHouseStore(Connection(url)), owns_store=True)
    try:
        shop = cli.create_app("shop")
        key, token = cli.create_key("shop", KeyScope.WRITE)
        assert server.get_app("shop") == shop
        assert server.list_apps() == [shop]
        assert server.authenticate(token) == key

        assert server.revoke_key(key.id) is True
        assert cli.authenticate(token) is None
        assert cli.revoke_key(key.id) is False
        revoked = cli.get_key(key.id)
        assert revoked is not None and revoked.revoked_at is not None and not revoked.active

        second, second_token = server.create_key("shop", KeyScope.READ)
        assert cli.authenticate(second_token) == second
        assert [k.id for k in cli.list_keys("shop")] == [key.id, second.id]
        assert cli.revoke_key(second.id) is True
        assert server.authenticate(second_token) is None
        assert server.list_keys("shop") == cli.list_keys("shop")
    finally:
        cli.close()


def test_the_secret_is_stored_only_as_its_sha256(registry: ClickHouseRegistry, store: ClickHouseStore) -> None:
    registry.create_app("shop")
    key, token = registry.create_key("shop", KeyScope.ADMIN, name="deploy")
    other, other_token = registry.create_key("shop", KeyScope.READ)
    assert registry.revoke_key(other.id) is True  # a revocation writes a second version of the row

    rows = _api_key_rows(store)
    assert len(rows) == 3
    dumped = repr(rows)
    for secret in (_secret_of(token), _secret_of(other_token)):
        assert secret not in dumped
        assert token not in dumped
    hashes = store.fetch_rows("SELECT id, secret_sha256 FROM api_keys ORDER BY id, version")
    expected = {key.id: hashlib.sha256(_secret_of(token).encode()).hexdigest(),
                other.id: hashlib.sha256(_secret_of(other_token).encode()).hexdigest()}
    assert hashes == sorted([(key.id, expected[key.id]), (other.id, expected[other.id]),
                             (other.id, expected[other.id])])


def test_a_revocation_is_a_newer_version_of_the_key(registry: ClickHouseRegistry, store: ClickHouseStore) -> None:
    """Nothing is updated in place: the revoked row replaces the active one because its version is higher, and
    that holds before and after ClickHouse merges the two rows."""
    registry.create_app("shop")
    key, token = registry.create_key("shop", KeyScope.WRITE)
    assert registry.revoke_key(key.id) is True
    assert [r[-1] is None for r in store.fetch_rows("SELECT id, revoked_at FROM api_keys ORDER BY version")
            ] == [True, False]

    store.fetch_rows("OPTIMIZE TABLE api_keys FINAL")
    merged = store.fetch_rows("SELECT id, revoked_at FROM api_keys")
    assert len(merged) == 1 and merged[0][0] == key.id and merged[0][1] is not None
    assert registry.authenticate(token) is None
    assert registry.revoke_key(key.id) is False


def test_reopening_keeps_apps_keys_and_revocations(registry: ClickHouseRegistry, url: str) -> None:
    shop = registry.create_app("shop")
    key, token = registry.create_key("shop", KeyScope.WRITE, name="web")
    revoked, revoked_token = registry.create_key("shop", KeyScope.READ)
    registry.revoke_key(revoked.id)

    reopened = ClickHouseRegistry(ClickHouseStore(Connection(url)), owns_store=True)
    try:
        assert reopened.list_apps() == [shop]
        assert reopened.authenticate(token) == key
        assert reopened.authenticate(revoked_token) is None
        assert [k.id for k in reopened.list_keys("shop")] == [key.id, revoked.id]
    finally:
        reopened.close()


def test_keys_of_one_app_are_not_listed_for_another(registry: ClickHouseRegistry) -> None:
    registry.create_app("shop")
    registry.create_app("blog")
    shop_key, _ = registry.create_key("shop", KeyScope.READ)
    blog_key, blog_token = registry.create_key("blog", KeyScope.ADMIN)

    assert registry.list_keys("shop") == [shop_key]
    assert registry.list_keys("blog") == [blog_key]
    assert registry.list_keys("nope") == []
    authenticated = registry.authenticate(blog_token)
    assert authenticated is not None and authenticated.app_id == "blog" and authenticated.scope is KeyScope.ADMIN


def test_concurrent_threads_share_one_registry(registry: ClickHouseRegistry) -> None:
    """Fewer rounds than on SQLite: chDB runs one query at a time for the whole process."""
    registry.create_app("shop")
    check_threads_share_one_registry(registry, rounds=15, creates=10)
