"""A real `replayql serve` on a loopback port with one app and one key, and Debian's chromium: for the tests
that drive the server from outside the test process (a browser, node)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crash_scenario import Server, cli, free_port

CHROMIUM = "/usr/bin/chromium"  # Debian's; playwright drives it and downloads no browser


@contextmanager
def live_server(data_dir: Path, app: str, scope: str) -> Iterator[tuple[Server, str]]:
    """The server on the DuckDB store in `data_dir`, and the secret of a new `scope` key of `app`."""
    data_dir.mkdir()
    cli("duckdb", data_dir, "apps", "create", app)
    key = cli("duckdb", data_dir, "keys", "create", "--app", app, "--scope", scope)
    server = Server("duckdb", data_dir, free_port())
    server.start()
    try:
        yield server, key
    finally:
        server.interrupt()
