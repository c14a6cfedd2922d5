"""The SQLite registry of apps and API keys: real SQLite files in tmp_path, no mocks."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from replayql.store.registry import (
    SCHEMA_VERSION,
    ApiKey,
    App,
    KeyScope,
    RegistryError,
    SQLiteRegistry,
    parse_token,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "registry.sqlite"


@pytest.fixture
def registry(path: Path) -> Iterator[SQLiteRegistry]:
    reg = SQLiteRegistry(path)
    yield reg
    reg.close()


@pytest.fixture
def app(registry: SQLiteRegistry) -> App:
    return registry.create_app("shop")


def _secret_of(token: str) -> str:
    return token.rsplit("_", 1)[1]


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# --- apps ------------------------------------------------------------------------------------------------


def test_create_get_and_list_apps(registry: SQLiteRegistry) -> None:
    before = datetime.now(UTC)
    created = registry.create_app("web-shop")
    registry.create_app("a")
    registry.create_app("0-admin")

    assert created.id == "web-shop"
    assert before <= created.created_at <= datetime.now(UTC)
    assert created.created_at.tzinfo is not None
    assert registry.get_app("web-shop") == created
    assert registry.get_app("missing") is None
    assert registry.get_app("Not A Slug") is None
    assert [a.id for a in registry.list_apps()] == ["0-admin", "a", "web-shop"]


def test_empty_registry_lists_nothing(registry: SQLiteRegistry) -> None:
    assert registry.list_apps() == []
    assert registry.list_keys("shop") == []


def test_longest_valid_app_id(registry: SQLiteRegistry) -> None:
    app_id = "a" + "-b" * 31  # 63 characters
    assert registry.create_app(app_id).id == app_id


@pytest.mark.parametrize(
    "app_id",
    ["Shop", "my shop", "", "a" * 64, "-shop", "shop_1", "shöp", "shop\n", " shop"],
)
def test_invalid_app_ids_are_rejected(registry: SQLiteRegistry, app_id: str) -> None:
    message = (
        f"invalid app id {app_id!r}: use 1-63 characters of lowercase letters, digits and '-', "
        "starting with a letter or digit (e.g. 'my-shop')"
    )
    with pytest.raises(RegistryError, match=f"^{re.escape(message)}$"):
        registry.create_app(app_id)
    assert registry.list_apps() == []


def test_duplicate_app_is_rejected(registry: SQLiteRegistry, app: App) -> None:
    message = "app 'shop' already exists; choose another id or use that app"
    with pytest.raises(RegistryError, match=f"^{re.escape(message)}$"):
        registry.create_app("shop")
    assert registry.list_apps() == [app]


# --- keys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", list(KeyScope))
def test_created_token_authenticates_to_its_key(registry: SQLiteRegistry, app: App, scope: KeyScope) -> None:
    key, token = registry.create_key("shop", scope, name="ingest from web")

    assert key.app_id == "shop"
    assert key.scope is scope
    assert key.name == "ingest from web"
    assert key.revoked_at is None
    assert key.active
    assert re.fullmatch(r"rq_[a-z2-7]{12}_[A-Za-z0-9]{43}", token)
    assert token.split("_") == ["rq", key.id, _secret_of(token)]
    assert registry.authenticate(token) == key
    assert registry.get_key(key.id) == key


def test_tokens_are_unique(registry: SQLiteRegistry, app: App) -> None:
    tokens = [registry.create_key("shop", KeyScope.WRITE)[1] for _ in range(50)]
    assert len(set(tokens)) == 50
    assert len({t.split("_")[1] for t in tokens}) == 50


def test_each_token_authenticates_only_its_own_key(registry: SQLiteRegistry, app: App) -> None:
    registry.create_app("blog")
    shop_key, shop_token = registry.create_key("shop", KeyScope.READ)
    blog_key, blog_token = registry.create_key("blog", KeyScope.ADMIN)

    assert registry.authenticate(shop_token) == shop_key
    assert registry.authenticate(blog_token) == blog_key
    # Key id of one, secret of the other.
    assert registry.authenticate(f"rq_{shop_key.id}_{_secret_of(blog_token)}") is None


def test_create_key_for_unknown_app_fails(registry: SQLiteRegistry) -> None:
    message = "unknown app 'ghost'; create it first with `replayql apps create`"
    with pytest.raises(RegistryError, match=f"^{re.escape(message)}$"):
        registry.create_key("ghost", KeyScope.READ)


def test_create_key_rejects_bad_scope_and_name(registry: SQLiteRegistry, app: App) -> None:
    with pytest.raises(RegistryError, match=r"^invalid scope 'read'; use one of: read, write, admin$"):
        registry.create_key("shop", "read")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match=r"^invalid key name: use text of at most 200 characters"):
        registry.create_key("shop", KeyScope.READ, name="x" * 201)
    assert registry.list_keys("shop") == []


def test_list_keys_never_exposes_secrets(registry: SQLiteRegistry, app: App) -> None:
    first, first_token = registry.create_key("shop", KeyScope.READ, name="first")
    second, second_token = registry.create_key("shop", KeyScope.WRITE)
    registry.create_app("blog")
    registry.create_key("blog", KeyScope.ADMIN)

    keys = registry.list_keys("shop")

    assert keys == [first, second]
    assert all(isinstance(k, ApiKey) for k in keys)
    dumped = repr(keys) + repr(registry.get_key(first.id)) + repr(registry.authenticate(first_token))
    for token in (first_token, second_token):
        assert _secret_of(token) not in dumped
        assert token not in dumped


def test_database_files_never_hold_the_secret(path: Path, registry: SQLiteRegistry, app: App) -> None:
    _, token = registry.create_key("shop", KeyScope.ADMIN)
    secret = _secret_of(token).encode()
    wal = path.with_name(path.name + "-wal")

    # Before a checkpoint the new rows live in the WAL; afterwards in the main file.
    assert wal.exists()
    assert secret not in path.read_bytes() + wal.read_bytes()
    checkpointer = sqlite3.connect(path)
    try:
        checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        checkpointer.close()
    main_bytes = path.read_bytes()
    assert secret not in main_bytes + wal.read_bytes()
    # Make sure we were looking at the right bytes: the hash of the secret is there.
    assert hashlib.sha256(secret).hexdigest().encode() in main_bytes


def test_revoke_makes_the_token_useless(registry: SQLiteRegistry, app: App) -> None:
    key, token = registry.create_key("shop", KeyScope.WRITE)
    other, other_token = registry.create_key("shop", KeyScope.WRITE)

    assert registry.revoke_key(key.id) is True
    assert registry.authenticate(token) is None
    assert registry.revoke_key(key.id) is False  # already revoked

    revoked = registry.get_key(key.id)
    assert revoked is not None
    assert revoked.revoked_at is not None and revoked.revoked_at >= key.created_at
    assert not revoked.active
    assert [k.revoked_at is None for k in registry.list_keys("shop")] == [False, True]
    assert registry.authenticate(other_token) == other


@pytest.mark.parametrize("key_id", ["abcdefghijkl", "", "nope", "ABCDEFGHIJKL", "x" * 10_000])
def test_revoke_or_get_unknown_key(registry: SQLiteRegistry, app: App, key_id: str) -> None:
    assert registry.revoke_key(key_id) is False
    assert registry.get_key(key_id) is None


def test_wrong_secret_with_valid_key_id(registry: SQLiteRegistry, app: App) -> None:
    key, token = registry.create_key("shop", KeyScope.READ)
    secret = _secret_of(token)
    flipped = ("B" if secret[0] == "A" else "A") + secret[1:]

    assert registry.authenticate(f"rq_{key.id}_{flipped}") is None
    assert registry.authenticate(f"rq_{key.id}_{secret[:-1]}") is None
    assert registry.authenticate(f"rq_{key.id}_{secret}x") is None
    assert registry.authenticate(token) == key


@pytest.mark.parametrize(
    "token",
    [
        "",
        "rq_",
        "token",
        "rq_x_y",
        "rq_" + "a" * 12 + "_",
        "Bearer rq_" + "a" * 12 + "_" + "A" * 43,
        "rq_" + "a" * 12 + "_" + "A" * 43 + "\n",
        "xx_" + "a" * 12 + "_" + "A" * 43,
        "rq_" + "A" * 12 + "_" + "A" * 43,  # key ids are lowercase
        "rq_" + "a" * 12 + "_" + "A" * 42 + "_",  # underscore in the secret
        "rq_" + "a" * 12 + "_" + "A" * 42 + "-",
        "rq_" + "a" * 13 + "A" * 43,  # right length, no separator
        "rq_" + "a" * 12 + "_" + "é" * 43,
        "rq_" + "a" * 12 + "_" + "\uff21" * 43,  # fullwidth A: letters are alphanumeric to str.isalnum()
        "rq_" + "a" * 12 + "_" + "٣" * 43,  # Arabic-Indic digits
        "rq_" + "a" * 12 + "_" + "A" * 10_000_000,
        "\x00" * 59,
    ],
)
def test_malformed_tokens_are_rejected(registry: SQLiteRegistry, app: App, token: str) -> None:
    registry.create_key("shop", KeyScope.ADMIN)
    assert parse_token(token) is None
    assert registry.authenticate(token) is None


@pytest.mark.parametrize("token", [None, b"rq_abc", 42])
def test_non_string_tokens_are_rejected(registry: SQLiteRegistry, token: object) -> None:
    assert registry.authenticate(token) is None  # type: ignore[arg-type]


# --- processes, threads and files ------------------------------------------------------------------------


def test_two_registries_on_one_file_see_each_other_at_once(path: Path) -> None:
    server = SQLiteRegistry(path)
    cli = SQLiteRegistry(path)
    try:
        cli.create_app("shop")
        key, token = cli.create_key("shop", KeyScope.WRITE)
        assert server.get_app("shop") is not None
        assert server.authenticate(token) == key

        assert server.revoke_key(key.id) is True
        assert cli.authenticate(token) is None
        assert cli.revoke_key(key.id) is False

        second, second_token = server.create_key("shop", KeyScope.READ)
        assert cli.authenticate(second_token) == second
        assert cli.revoke_key(second.id) is True
        assert server.authenticate(second_token) is None
    finally:
        cli.close()
        server.close()


_CLI_SCRIPT = """
import sys
from pathlib import Path
from replayql.store.registry import SQLiteRegistry, KeyScope

with SQLiteRegistry(Path(sys.argv[1])) as reg:
    if sys.argv[2] == "create":
        reg.create_app("shop")
        print(reg.create_key("shop", KeyScope.ADMIN)[1])
    else:
        print(reg.revoke_key(sys.argv[3]))
"""


def _run_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CLI_SCRIPT, *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_another_process_creates_and_revokes_while_server_is_open(path: Path, registry: SQLiteRegistry) -> None:
    token = _run_cli(str(path), "create")
    key = registry.authenticate(token)
    assert key is not None and key.scope is KeyScope.ADMIN

    assert _run_cli(str(path), "revoke", key.id) == "True"
    assert registry.authenticate(token) is None


def check_threads_share_one_registry(registry: Any, rounds: int, creates: int) -> None:
    """Threads authenticate and create keys at once on one registry (a server's request threads do)."""
    issued = [registry.create_key("shop", KeyScope.READ) for _ in range(5)]
    errors: list[BaseException] = []

    def authenticate_many() -> None:
        try:
            for _ in range(rounds):
                for key, token in issued:
                    assert registry.authenticate(token) == key
        except BaseException as exc:
            errors.append(exc)

    def create_many() -> None:
        try:
            for _ in range(creates):
                registry.create_key("shop", KeyScope.WRITE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=authenticate_many) for _ in range(4)]
    threads += [threading.Thread(target=create_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(registry.list_keys("shop")) == 5 + 2 * creates


def test_concurrent_threads_share_one_registry(registry: SQLiteRegistry, app: App) -> None:
    check_threads_share_one_registry(registry, rounds=200, creates=50)


def test_many_registries_opening_a_fresh_file_at_once(path: Path) -> None:
    opened: list[SQLiteRegistry] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(SQLiteRegistry(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reg in opened:
        reg.close()

    assert errors == []
    assert _user_version(path) == SCHEMA_VERSION


def test_reopening_keeps_data_and_schema_version(path: Path) -> None:
    with SQLiteRegistry(path) as first:
        app = first.create_app("shop")
        key, token = first.create_key("shop", KeyScope.WRITE, name="web")
        revoked, revoked_token = first.create_key("shop", KeyScope.READ)
        first.revoke_key(revoked.id)
    assert _user_version(path) == SCHEMA_VERSION

    with SQLiteRegistry(path) as second:
        assert second.list_apps() == [app]
        assert second.authenticate(token) == key
        assert second.authenticate(revoked_token) is None
        assert [k.id for k in second.list_keys("shop")] == [key.id, revoked.id]
    assert _user_version(path) == SCHEMA_VERSION


def test_file_uses_wal_and_is_created_with_parent_dirs(path: Path, registry: SQLiteRegistry) -> None:
    assert path.exists()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_newer_schema_version_is_refused(path: Path) -> None:
    SQLiteRegistry(path).close()
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    finally:
        conn.close()
    message = (
        f"{path} has registry schema version {SCHEMA_VERSION + 1}, but this replayql only understands up to "
        f"{SCHEMA_VERSION}; upgrade replayql to open this data dir"
    )
    with pytest.raises(RegistryError, match=f"^{re.escape(message)}$"):
        SQLiteRegistry(path)


def test_a_file_that_is_not_a_database_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not sqlite" * 100)
    message = "file is not a database; is it an undamaged replayql registry.sqlite file?"
    with pytest.raises(RegistryError, match=f"{re.escape(message)}$"):
        SQLiteRegistry(path)


def test_closed_registry_raises_a_clear_error(path: Path) -> None:
    reg = SQLiteRegistry(path)
    reg.close()
    reg.close()  # idempotent
    with pytest.raises(RegistryError, match=r"is closed; open a new Registry to use it$"):
        reg.list_apps()


# --- scopes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (KeyScope.READ, KeyScope.READ, True),
        (KeyScope.READ, KeyScope.WRITE, False),
        (KeyScope.READ, KeyScope.ADMIN, False),
        (KeyScope.WRITE, KeyScope.READ, True),
        (KeyScope.WRITE, KeyScope.WRITE, True),
        (KeyScope.WRITE, KeyScope.ADMIN, False),
        (KeyScope.ADMIN, KeyScope.READ, True),
        (KeyScope.ADMIN, KeyScope.WRITE, True),
        (KeyScope.ADMIN, KeyScope.ADMIN, True),
    ],
)
def test_scope_allows(held: KeyScope, needed: KeyScope, allowed: bool) -> None:
    assert held.allows(needed) is allowed


def test_scopes_are_ordered_and_parse_from_their_values() -> None:
    assert KeyScope.READ < KeyScope.WRITE < KeyScope.ADMIN
    assert max(KeyScope) is KeyScope.ADMIN
    assert sorted([KeyScope.ADMIN, KeyScope.READ, KeyScope.WRITE]) == [KeyScope.READ, KeyScope.WRITE, KeyScope.ADMIN]
    assert [KeyScope(v) for v in ("read", "write", "admin")] == [KeyScope.READ, KeyScope.WRITE, KeyScope.ADMIN]


def test_allowed_origins_are_normalised_and_kept(registry: SQLiteRegistry, app: App) -> None:
    assert registry.allowed_origins(app.id) == ()
    saved = registry.set_allowed_origins(app.id, ["https://Shop.example/", "http://localhost:3000",
                                                   "https://shop.example", "http://[::1]:8080"])
    assert saved == ("https://shop.example", "http://localhost:3000", "http://[::1]:8080")
    assert registry.allowed_origins(app.id) == saved
    assert registry.set_allowed_origins(app.id, []) == ()
    assert registry.allowed_origins(app.id) == ()


@pytest.mark.parametrize("origin", ["shop.example", "https://shop.example/path", "ftp://shop.example",
                                    "https://shop example", "*"])
def test_invalid_origins_are_refused(registry: SQLiteRegistry, app: App, origin: str) -> None:
    with pytest.raises(RegistryError, match=f"invalid origin {re.escape(repr(origin.lower().rstrip('/')))}"):
        registry.set_allowed_origins(app.id, [origin])


def test_origins_of_an_unknown_app_are_refused(registry: SQLiteRegistry) -> None:
    with pytest.raises(RegistryError, match="unknown app 'ghost'"):
        registry.set_allowed_origins("ghost", ["https://shop.example"])


def test_a_version_1_registry_gains_origins_and_keeps_its_keys(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:  # the file as replayql wrote it before origins existed
        conn.execute("CREATE TABLE apps (id TEXT PRIMARY KEY, created_at TEXT NOT NULL)")
        conn.execute("CREATE TABLE api_keys (id TEXT PRIMARY KEY, app_id TEXT NOT NULL REFERENCES apps(id), "
                     "scope TEXT NOT NULL, name TEXT, secret_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, "
                     "revoked_at TEXT)")
        conn.execute("INSERT INTO apps VALUES ('shop', '2026-01-01T00:00:00+00:00')")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with SQLiteRegistry(path) as upgraded:
        assert [a.id for a in upgraded.list_apps()] == ["shop"]
        assert upgraded.set_allowed_origins("shop", ["https://shop.example"]) == ("https://shop.example",)
    assert _user_version(path) == SCHEMA_VERSION == 2
