"""Apps and API keys, kept in a small SQLite file (``registry.sqlite``) beside the DuckDB store.

SQLite rather than DuckDB because the CLI must be able to create and revoke keys while a server process holds
the DuckDB file open, and the server must see those changes on its very next request. SQLite in WAL mode gives
exactly that: many readers across processes, one short writer, and every new read sees the latest commit. The
server looks a key up on every request, so ``authenticate`` is one primary-key read with no cache — a cache
could keep serving a key the CLI has already revoked.

Token format: ``rq_<key id>_<secret>``. The key id (12 chars of lowercase base32) is the public primary key;
the secret (43 alphanumeric chars, 256 bits) is shown once and only its SHA-256 is stored.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 5000

TOKEN_PREFIX = "rq_"
KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lowercased: 5 bits per char
KEY_ID_LENGTH = 12  # 60 bits: plenty for a primary key, short enough to read out in `keys list`
# Alphanumerics only: no "_" (the token separator) and no "-" (so tokens survive double-click selection).
SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
SECRET_LENGTH = 43  # 43 * log2(62) ~= 256 bits, the same entropy as secrets.token_urlsafe(32)
TOKEN_LENGTH = len(TOKEN_PREFIX) + KEY_ID_LENGTH + 1 + SECRET_LENGTH
MAX_KEY_NAME_CHARS = 200

APP_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
# A web origin as browsers send it in the Origin header: scheme, host, optional port; no path.
ORIGIN_RE = re.compile(r"https?://([a-z0-9.-]{1,253}|\[[0-9a-f:]+\])(:[0-9]{1,5})?", re.ASCII)
MAX_ORIGINS = 100
KEY_ID_RE = re.compile(rf"[a-z2-7]{{{KEY_ID_LENGTH}}}", re.ASCII)
TOKEN_RE = re.compile(
    rf"{TOKEN_PREFIX}(?P<key_id>[a-z2-7]{{{KEY_ID_LENGTH}}})_(?P<secret>[A-Za-z0-9]{{{SECRET_LENGTH}}})",
    re.ASCII,
)


@functools.total_ordering
class KeyScope(enum.Enum):
    """What a key may do. Ordered READ < WRITE < ADMIN; a scope allows itself and every lower one."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        # Definition order is the privilege order, so there is a single place to change it.
        return list(KeyScope).index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, KeyScope):
            return NotImplemented
        return self.rank < other.rank

    def allows(self, needed: KeyScope) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class App:
    id: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    """Key metadata. Deliberately has no secret or hash field, so no repr or log line can leak one."""

    id: str
    app_id: str
    scope: KeyScope
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class RegistryError(Exception):
    """A user-facing failure: the message says what went wrong and how to fix it."""


# --- schema and migrations -------------------------------------------------------------------------------


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE apps (id TEXT PRIMARY KEY, created_at TEXT NOT NULL)")
    conn.execute(
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            app_id TEXT NOT NULL REFERENCES apps(id),
            scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
            name TEXT,
            secret_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )
        """
    )
    conn.execute("CREATE INDEX api_keys_by_app ON api_keys (app_id, created_at)")


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    # No row: the app takes batches from any origin.
    conn.execute("CREATE TABLE app_origins (app_id TEXT PRIMARY KEY REFERENCES apps(id), origins TEXT NOT NULL)")


# _MIGRATIONS[n] upgrades a file at user_version n to n + 1. Append new steps; never edit shipped ones.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_0_to_1, _migrate_1_to_2)
assert len(_MIGRATIONS) == SCHEMA_VERSION


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to SCHEMA_VERSION, or refuse a file written by a newer replayql."""
    # Fast path without a write lock, so opening the registry never waits on a CLI write.
    if _user_version(conn) == SCHEMA_VERSION:
        return
    # BEGIN IMMEDIATE takes the write lock before re-reading the version, so when a CLI and a server open a
    # fresh file at the same moment only one of them runs the migration. (No executescript here: it commits.)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
        if version > SCHEMA_VERSION:
            raise RegistryError(
                f"{path} has registry schema version {version}, but this replayql only understands up to "
                f"{SCHEMA_VERSION}; upgrade replayql to open this data dir"
            )
        for step in _MIGRATIONS[version:]:
            step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (disk full, I/O); a second ROLLBACK would then raise and hide
    # the original error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _configure(conn: sqlite3.Connection) -> None:
    # busy_timeout first: switching to WAL and the migration may have to wait for another process.
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _enable_wal(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    # synchronous stays at the default FULL: a revoke must survive a power cut, and writes are rare.


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (a persistent property of the file), retrying while another opener holds it.

    SQLite answers "database is locked" to a journal-mode change at once, without consulting busy_timeout,
    when another connection is opening the same fresh file; so we retry by hand within the same time budget.
    On filesystems without shared memory SQLite keeps the old journal mode: still correct across processes,
    only less concurrent, so we carry on.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


# --- helpers ---------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _to_text(moment: datetime) -> str:
    # Fixed-width ISO 8601 in UTC sorts lexically in time order and stays readable in the sqlite3 shell.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def hash_secret(secret: str) -> str:
    # Secrets carry 256 bits of randomness, so brute force is hopeless even against a fast hash; a slow
    # password hash (bcrypt/argon2) would only add milliseconds to every authenticated request.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key_id() -> str:
    return "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def parse_token(token: object) -> tuple[str, str] | None:
    """Split a token into (key id, secret), or None if it is not exactly the shape we issue."""
    # The length check comes first so a multi-megabyte header never reaches the regex.
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return None
    match = TOKEN_RE.fullmatch(token)
    if match is None:
        return None
    return match["key_id"], match["secret"]


_KEY_COLUMNS = "id, app_id, scope, name, created_at, revoked_at"


def _row_to_key(row: tuple[str, str, str, str | None, str, str | None]) -> ApiKey:
    key_id, app_id, scope, name, created_at, revoked_at = row
    return ApiKey(
        id=key_id,
        app_id=app_id,
        scope=KeyScope(scope),
        name=name,
        created_at=datetime.fromisoformat(created_at),
        revoked_at=_from_text(revoked_at),
    )


def _row_to_app(row: tuple[str, str]) -> App:
    return App(id=row[0], created_at=datetime.fromisoformat(row[1]))


# --- the registry ----------------------------------------------------------------------------------------


class SQLiteRegistry:
    """Apps and API keys in one SQLite file, safe to share between threads and between processes.

    Threading: one connection opened with check_same_thread=False and guarded by a lock, rather than one
    connection per thread. Every statement here is a sub-millisecond indexed read or a tiny write, so the lock
    is never contended for long, and a single connection means server worker threads that come and go leak no
    connections and ``close()`` really closes everything. Other processes are not affected by the lock: they
    have their own connections, and WAL lets them read while anyone writes.

    The connection runs in autocommit mode (isolation_level=None): every read is its own transaction and so
    sees the latest commit from any process, which is what makes a revoke effective on the next request.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise RegistryError(
                f"cannot open the registry at {self.path}: {exc}; check the data dir exists and is writable"
            ) from exc
        try:
            with self._translate_errors():
                _configure(conn)
                migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SQLiteRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteRegistry({str(self.path)!r})"

    # --- connection plumbing ---

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translate_errors():
            yield self._connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front, so a check-then-insert inside
        it cannot race another process, and lock waits happen here (under busy_timeout), not at COMMIT."""
        with self._lock, self._translate_errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RegistryError(f"the registry at {self.path} is closed; open a new Registry to use it")
        return self._conn

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise RegistryError(
                f"registry {self.path} is unavailable: {exc}; if another replayql process is writing, retry"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise RegistryError(
                f"registry {self.path} failed: {exc}; is it an undamaged replayql registry.sqlite file?"
            ) from exc

    # --- apps ---

    def create_app(self, app_id: str) -> App:
        check_app_id(app_id)
        app = App(id=app_id, created_at=_now())
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM apps WHERE id = ?", (app_id,)).fetchone() is not None:
                raise RegistryError(f"app {app_id!r} already exists; choose another id or use that app")
            conn.execute(
                "INSERT INTO apps (id, created_at) VALUES (?, ?)", (app_id, _to_text(app.created_at))
            )
        return app

    def get_app(self, app_id: str) -> App | None:
        if not is_app_id(app_id):
            return None
        with self._read() as conn:
            row = conn.execute("SELECT id, created_at FROM apps WHERE id = ?", (app_id,)).fetchone()
        return None if row is None else _row_to_app(row)

    def list_apps(self) -> list[App]:
        with self._read() as conn:
            rows = conn.execute("SELECT id, created_at FROM apps ORDER BY id").fetchall()
        return [_row_to_app(row) for row in rows]

    def set_allowed_origins(self, app_id: str, origins: Sequence[str]) -> tuple[str, ...]:
        """The web origins the app's batches may come from; none means any origin."""
        allowed = normalize_origins(origins)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM apps WHERE id = ?", (app_id,)).fetchone() is None:
                raise RegistryError(f"unknown app {app_id!r}; create it first with `replayql apps create`")
            conn.execute("DELETE FROM app_origins WHERE app_id = ?", (app_id,))
            if allowed:
                conn.execute("INSERT INTO app_origins VALUES (?, ?)", (app_id, json.dumps(allowed)))
        return allowed

    def allowed_origins(self, app_id: str) -> tuple[str, ...]:
        with self._read() as conn:
            row = conn.execute("SELECT origins FROM app_origins WHERE app_id = ?", (app_id,)).fetchone()
        return () if row is None else tuple(json.loads(row[0]))

    # --- keys ---

    def create_key(self, app_id: str, scope: KeyScope, name: str | None = None) -> tuple[ApiKey, str]:
        """Issue a key. The returned token is the only copy of the secret that will ever exist."""
        check_scope(scope)
        check_key_name(name)
        secret = new_secret()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM apps WHERE id = ?", (app_id,)).fetchone() is None:
                raise RegistryError(f"unknown app {app_id!r}; create it first with `replayql apps create`")
            key = ApiKey(_unused_key_id(conn), app_id, scope, name, _now(), None)
            conn.execute(
                "INSERT INTO api_keys (id, app_id, scope, name, secret_sha256, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key.id, app_id, scope.value, name, hash_secret(secret), _to_text(key.created_at)),
            )
        return key, f"{TOKEN_PREFIX}{key.id}_{secret}"

    def list_keys(self, app_id: str) -> list[ApiKey]:
        """All keys of an app, revoked ones included, oldest first; [] for an unknown app."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE app_id = ? ORDER BY created_at, rowid", (app_id,)
            ).fetchall()
        return [_row_to_key(row) for row in rows]

    def get_key(self, key_id: str) -> ApiKey | None:
        if not is_key_id(key_id):
            return None
        with self._read() as conn:
            row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else _row_to_key(row)

    def revoke_key(self, key_id: str) -> bool:
        """True if the key was active and is now revoked; False if unknown or already revoked."""
        if not is_key_id(key_id):
            return False
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_to_text(_now()), key_id),
            )
        return cursor.rowcount == 1

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key a token belongs to, or None. Never raises for a bad token; called on every request.

        A database failure still raises RegistryError: turning an outage into "unauthorized" would hide it.
        """
        parsed = parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_KEY_COLUMNS}, secret_sha256 FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None or row[5] is not None:  # unknown or revoked
            return None
        # Constant-time comparison, so response timing reveals nothing about how much of the secret matched.
        if not hmac.compare_digest(row[6], hash_secret(secret)):
            return None
        return _row_to_key(row[:6])


def _unused_key_id(conn: sqlite3.Connection) -> str:
    # A 60-bit collision is astronomically unlikely, but ruling it out costs one indexed read under the lock.
    while True:
        key_id = new_key_id()
        if conn.execute("SELECT 1 FROM api_keys WHERE id = ?", (key_id,)).fetchone() is None:
            return key_id


def is_app_id(app_id: object) -> bool:
    return isinstance(app_id, str) and APP_ID_RE.fullmatch(app_id) is not None


def is_key_id(key_id: object) -> bool:
    return isinstance(key_id, str) and KEY_ID_RE.fullmatch(key_id) is not None


def check_app_id(app_id: str) -> None:
    if not is_app_id(app_id):
        raise RegistryError(
            f"invalid app id {app_id!r}: use 1-63 characters of lowercase letters, digits and '-', "
            "starting with a letter or digit (e.g. 'my-shop')"
        )


def normalize_origins(origins: Sequence[str]) -> tuple[str, ...]:
    """Origins in the form browsers send (lowercase, no trailing slash), each checked, without repeats."""
    normalized = tuple(dict.fromkeys(o.strip().lower().rstrip("/") for o in origins))
    bad = [o for o in normalized if not ORIGIN_RE.fullmatch(o)]
    if bad:
        raise RegistryError(f"invalid origin {bad[0]!r}: use scheme://host[:port] as browsers send it, "
                            "e.g. https://shop.example or http://localhost:3000")
    if len(normalized) > MAX_ORIGINS:
        raise RegistryError(f"{len(normalized)} origins given; an app allows at most {MAX_ORIGINS}")
    return normalized


def check_scope(scope: KeyScope) -> None:
    if not isinstance(scope, KeyScope):
        choices = ", ".join(s.value for s in KeyScope)
        raise RegistryError(f"invalid scope {scope!r}; use one of: {choices}")


def check_key_name(name: str | None) -> None:
    if name is not None and (not isinstance(name, str) or len(name) > MAX_KEY_NAME_CHARS):
        raise RegistryError(f"invalid key name: use text of at most {MAX_KEY_NAME_CHARS} characters, or none")
