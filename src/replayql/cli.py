"""The `replayql` command: thin commands that build settings and call the library."""

from __future__ import annotations

import enum
import functools
import inspect
import logging.config
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from replayql.config import ClickHouseConfig, FrustrationThresholds, Settings, default_data_dir, with_limits
from replayql.logs import LogFormat
from replayql.store.registry import KeyScope, RegistryError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from replayql.api.context import Services
    from replayql.store.base import Registry

app = typer.Typer(help="replayql: session replay and product analytics behind a GraphQL API.",
                  no_args_is_help=True, add_completion=False)
apps_app = typer.Typer(help="Manage apps (each app's data is isolated).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete old sessions (see serve --retention-days).", no_args_is_help=True)
app.add_typer(apps_app, name="apps")
app.add_typer(keys_app, name="keys")
app.add_typer(retention_app, name="retention")
err = Console(stderr=True, soft_wrap=True)  # one message, one line: no wrapping at 80 columns in pipes
log = logging.getLogger(__name__)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="REPLAYQL_DATA_DIR",
                                       help="Directory of the embedded store.", default_factory=default_data_dir)]
RETENTION_HELP = ("Delete sessions last active more than this many days ago, with their events and recordings, "
                  "and users left without sessions.")


class StoreKind(enum.Enum):
    DUCKDB = "duckdb"
    CLICKHOUSE = "clickhouse"


_STORE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "store": (Annotated[StoreKind, typer.Option(
        envvar="REPLAYQL_STORE", help="duckdb: the embedded store in --data-dir; clickhouse: a ClickHouse database.")],
        StoreKind.DUCKDB),
    "clickhouse_url": (Annotated[str | None, typer.Option(
        envvar="REPLAYQL_CLICKHOUSE_URL", help="http(s)://host:8123/database, or chdb://PATH (in-process).")], None),
    "clickhouse_user": (Annotated[str | None, typer.Option(envvar="REPLAYQL_CLICKHOUSE_USER")], None),
    "clickhouse_password": (Annotated[str | None, typer.Option(envvar="REPLAYQL_CLICKHOUSE_PASSWORD")], None),
    "clickhouse_cluster": (Annotated[str | None, typer.Option(
        envvar="REPLAYQL_CLICKHOUSE_CLUSTER", help="Create Replicated + Distributed tables on this cluster.")],
        None),
}


def with_store(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the store options; it receives them as `clickhouse` (None for the embedded store)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "clickhouse"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in _STORE_OPTIONS.items()]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name in _STORE_OPTIONS}
        command(*args, clickhouse=_clickhouse_config(**options), **kwargs)

    # typer reads the parameters from __signature__, which functions do not declare
    run.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in own + extra}
    return run


def _clickhouse_config(store: StoreKind, clickhouse_url: str | None, clickhouse_user: str | None,
                       clickhouse_password: str | None, clickhouse_cluster: str | None) -> ClickHouseConfig | None:
    if store is StoreKind.DUCKDB:
        return None
    if not clickhouse_url:
        raise fail("--store clickhouse needs --clickhouse-url (or REPLAYQL_CLICKHOUSE_URL), "
                   "e.g. http://localhost:8123/replayql or chdb:///var/lib/replayql/chdb")
    return ClickHouseConfig(clickhouse_url, clickhouse_user, clickhouse_password, clickhouse_cluster)


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


@contextmanager
def _registry(data_dir: Path, clickhouse: ClickHouseConfig | None) -> Iterator[Registry]:
    from replayql.store.backends import open_registry
    from replayql.store.base import StoreUnavailable

    try:
        registry = open_registry(data_dir, clickhouse)
    except (RegistryError, StoreUnavailable, RuntimeError) as exc:
        raise fail(str(exc)) from None
    try:
        yield registry
    except RegistryError as exc:
        raise fail(str(exc)) from None
    finally:
        registry.close()


@apps_app.command("create")
@with_store
def apps_create(name: str, data_dir: DataDir, clickhouse: ClickHouseConfig | None,
                allow_origin: Annotated[list[str] | None, typer.Option(
                    help="Take browser batches only from this origin (repeatable); default: any origin.")] = None
                ) -> None:
    """Create an app; prints its id."""
    with _registry(data_dir, clickhouse) as registry:
        created = registry.create_app(name)
        if allow_origin:
            registry.set_allowed_origins(name, allow_origin)
    print(created.id)


@apps_app.command("origins")
@with_store
def apps_origins(name: str, data_dir: DataDir, clickhouse: ClickHouseConfig | None,
                 allow: Annotated[list[str] | None, typer.Option(help="Add an allowed origin (repeatable).")] = None,
                 deny: Annotated[list[str] | None, typer.Option(help="Remove an allowed origin (repeatable).")] = None,
                 any_origin: Annotated[bool, typer.Option("--any", help="Allow every origin again.")] = False
                 ) -> None:
    """Show or change the web origins an app takes browser batches from (a running server applies it in 5 s)."""
    with _registry(data_dir, clickhouse) as registry:
        if registry.get_app(name) is None:
            raise fail(f"no app {name!r}; see `replayql apps list`")
        origins = registry.allowed_origins(name)
        if allow or deny or any_origin:
            removed = {o.strip().lower().rstrip("/") for o in deny or []}
            kept = [] if any_origin else [o for o in origins if o not in removed]
            origins = registry.set_allowed_origins(name, [*kept, *(allow or [])])
    print("\n".join(origins) if origins else "(any origin)")


@apps_app.command("list")
@with_store
def apps_list(data_dir: DataDir, clickhouse: ClickHouseConfig | None) -> None:
    """List apps."""
    with _registry(data_dir, clickhouse) as registry:
        for found in registry.list_apps():
            print(f"{found.id}\t{found.created_at.isoformat()}")


@keys_app.command("create")
@with_store
def keys_create(data_dir: DataDir, app_id: Annotated[str, typer.Option("--app", help="The app the key belongs to.")],
                clickhouse: ClickHouseConfig | None,
                scope: Annotated[KeyScope, typer.Option(help="read, write (also mutations) or admin.")] = KeyScope.READ,
                name: Annotated[str | None, typer.Option(help="A label for the key.")] = None) -> None:
    """Create an API key; prints the secret key, which is shown only this once."""
    with _registry(data_dir, clickhouse) as registry:
        key, secret = registry.create_key(app_id, scope, name)
    err.print(f"created key {key.id} ({key.scope.value}) for app {key.app_id}; store it now, it is not shown again")
    print(secret)


@keys_app.command("list")
@with_store
def keys_list(data_dir: DataDir, app_id: Annotated[str, typer.Option("--app")],
              clickhouse: ClickHouseConfig | None) -> None:
    """List an app's keys (never their secrets)."""
    with _registry(data_dir, clickhouse) as registry:
        if registry.get_app(app_id) is None:
            raise fail(f"no app {app_id!r}; see `replayql apps list`")
        for key in registry.list_keys(app_id):
            state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
            print(f"{key.id}\t{key.scope.value}\t{key.name or ''}\t{key.created_at.isoformat()}\t{state}")


@keys_app.command("revoke")
@with_store
def keys_revoke(key_id: str, data_dir: DataDir, clickhouse: ClickHouseConfig | None) -> None:
    """Revoke a key; a running server refuses it from the next request on."""
    with _registry(data_dir, clickhouse) as registry:
        if not registry.revoke_key(key_id):
            raise fail(f"no active key {key_id!r}")
    err.print(f"revoked key {key_id}")


@app.command()
@with_store
def serve(data_dir: DataDir, clickhouse: ClickHouseConfig | None, host: str = "127.0.0.1", port: int = 8000,
          demo: Annotated[bool, typer.Option(help="Load a demo app and data into an empty store.")] = False,
          demo_sessions: Annotated[int, typer.Option(help="Sessions to generate for --demo.")] = 500,
          geoip: Annotated[bool, typer.Option(help="Look up the country of client IPs.")] = True,
          store_client_ip: Annotated[bool, typer.Option(help="Keep the raw client IP on sessions.")] = False,
          rage_clicks: Annotated[int, typer.Option(min=2, help="Clicks on one element that make a rage click.")] = 3,
          rage_window_ms: Annotated[int, typer.Option(min=1, help="...within this many ms.")] = 1_000,
          dead_click_window_ms: Annotated[int, typer.Option(
              min=1, help="A click with no page change, request or DOM change this long after is dead.")] = 1_000,
          error_click_window_ms: Annotated[int, typer.Option(
              min=1, help="A click followed by an error this soon is an error click.")] = 1_000,
          duckdb_memory_limit: Annotated[str, typer.Option(
              envvar="REPLAYQL_DUCKDB_MEMORY_LIMIT",
              help="Memory DuckDB may use (e.g. 512MB, 4GB); larger work spills to disk.")] = "512MB",
          limit: Annotated[list[str] | None, typer.Option(
              help="Change a limit: graphql.NAME=VALUE, ingest.NAME=VALUE, rate.NAME=VALUE or cache.NAME=VALUE "
                   "(repeatable; see the README).")] = None,
          retention_days: Annotated[int | None, typer.Option(
              envvar="REPLAYQL_RETENTION_DAYS", min=1, help=RETENTION_HELP + " At start, then hourly.")] = None,
          log_level: str = "info",
          log_format: Annotated[LogFormat, typer.Option(
              envvar="REPLAYQL_LOG_FORMAT", help="text: for a terminal; json: one object per line.")] = LogFormat.TEXT,
          metrics_token: Annotated[str | None, typer.Option(
              envvar="REPLAYQL_METRICS_TOKEN", show_default=False,
              help="Serve /metrics only for `Authorization: Bearer <token>` (default: open).")] = None) -> None:
    """Run the HTTP server (GraphQL API and ingestion) on the configured store."""
    from replayql.api.app import close_services, create_app
    from replayql.demo import load_demo
    from replayql.logs import log_config

    frustration = FrustrationThresholds(rage_clicks, rage_window_ms, dead_click_window_ms, error_click_window_ms)
    settings = Settings(data_dir=data_dir, clickhouse=clickhouse, geoip=geoip, store_client_ip=store_client_ip,
                        frustration=frustration, duckdb_memory_limit=duckdb_memory_limit,
                        retention_days=retention_days, metrics_token=metrics_token)
    if limit:
        try:
            settings = with_limits(settings, limit)
        except ValueError as exc:
            raise fail(str(exc)) from None
    logging_config = log_config(log_format, log_level)
    logging.config.dictConfig(logging_config)  # before the store opens: its messages come in the same format
    logging.captureWarnings(True)
    services = _open(settings)
    log.info("serving on %s:%d with %r", host, port, settings)  # the reprs leave passwords and tokens out
    try:
        if demo:
            load_demo(services, demo_sessions, host, port, err)
        _serve_until_stopped(create_app(settings, services), host, port, logging_config, log_level)
    finally:
        close_services(services)  # the writer's queue is written, then the store closes


def _serve_until_stopped(app: ASGIApp, host: str, port: int, logging_config: dict[str, Any], log_level: str
                         ) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully: no new connections, in-flight requests finish (an
    ingest request waits for its commit). Returns then, so the caller can drain the writer and close the store;
    a second SIGINT stops at once."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own raises the signal again once it has stopped, which would end the process before the
            # writer is drained; a stop signal here means: stop cleanly and exit 0.
            stop_signals = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in stop_signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    server = Server(uvicorn.Config(app, host=host, port=port, log_config=logging_config, log_level=log_level))
    server.run()
    if not server.started:  # it could not listen (uvicorn logged why)
        raise typer.Exit(code=STARTUP_FAILURE)


@retention_app.command("apply")
@with_store
def retention_apply(days: Annotated[int, typer.Option(min=1, help=RETENTION_HELP)], data_dir: DataDir,
                    clickhouse: ClickHouseConfig | None) -> None:
    """Delete expired sessions once, now (the store must not be held by a running server on DuckDB)."""
    from replayql.api.app import close_services
    from replayql.ingest.retention import apply_retention

    settings = Settings(data_dir=data_dir, clickhouse=clickhouse)
    services = _open(settings)
    try:
        run = apply_retention(services.writer, days, settings.retention_chunk_sessions)
    finally:
        close_services(services)
    print(run.summary())


@app.command()
@with_store
def generate(sessions: Annotated[int, typer.Option(help="How many sessions.")], clickhouse: ClickHouseConfig | None,
             seed: int = 1, days: int = 7, app_id: Annotated[str, typer.Option("--app")] = "demo",
             out: Annotated[Path | None, typer.Option(help="Write NDJSON batches to this file.")] = None,
             data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Load straight into this store.")] = None
             ) -> None:
    """Generate deterministic synthetic shop data (same seed, same data): to a file, or into a store."""
    from replayql.generate import generate_batches, write_ndjson

    into_store = data_dir is not None or clickhouse is not None
    if (out is None) == (not into_store):
        raise fail("give exactly one destination: --out FILE.ndjson, --data-dir DIR, or --store clickhouse")
    batches = generate_batches(app_id, sessions, seed=seed, days=days)
    if out is not None:
        written = write_ndjson(out, batches)
        err.print(f"wrote {written} batches for {sessions} sessions to {out}")
        return
    import orjson

    settings = Settings(data_dir=data_dir or default_data_dir(), clickhouse=clickhouse)
    _load(settings, (orjson.dumps(b) for b in batches), None, create_app_id=app_id)


@app.command("import")
@with_store
def import_(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON, one batch per line.")],
            data_dir: DataDir, clickhouse: ClickHouseConfig | None) -> None:
    """Bulk-load batches through the same validation and enrichment as HTTP ingestion."""
    lines = _count_lines(file)
    with file.open("rb") as handle:
        _load(Settings(data_dir=data_dir, clickhouse=clickhouse), handle, lines)


def _count_lines(file: Path) -> int:
    with file.open("rb") as handle:
        return sum(1 for _ in handle)


def _open(settings: Settings) -> Services:
    from replayql.api.app import open_services
    from replayql.store.base import StoreLocked, StoreUnavailable

    try:
        return open_services(settings)
    except (StoreLocked, StoreUnavailable, RuntimeError) as exc:
        raise fail(str(exc)) from None


def _load(settings: Settings, lines: Iterable[bytes], total: int | None, create_app_id: str | None = None) -> None:
    from replayql.api.app import close_services
    from replayql.ingest.importer import import_batches

    services = _open(settings)
    try:
        if create_app_id and services.registry.get_app(create_app_id) is None:
            services.registry.create_app(create_app_id)
        with _progress() as progress:
            task = progress.add_task("importing", total=total)
            report = import_batches(lines, services.writer, services.app_exists, settings.limits,
                                    lambda n: progress.advance(task, n))
    finally:
        close_services(services)
    for number, why in report.rejected[:20]:
        err.print(f"line {number}: {why}", highlight=False)
    err.print(f"stored {report.stored} batches ({report.events} events), {report.duplicates} already stored, "
              f"{len(report.rejected)} rejected")
    if report.rejected:
        raise typer.Exit(code=1)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=not sys.stderr.isatty())


def main() -> None:
    app()
