"""Shared pieces of the benchmarks: the real server in a subprocess, the CLI, percentiles, machine facts.

Nothing here is imported by the package or the tests; the benchmarks measure, they never assert.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2 as httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
APP_ID = "demo"

# The test suite's crash scenario holds the server-process helpers the benchmarks share with it.
sys.path.insert(0, str(REPO_DIR / "tests"))
from crash_scenario import free_port, store_args  # noqa: E402


def replayql_exe() -> str:
    """The `replayql` console script of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "replayql"
    if beside.exists():
        return str(beside)
    found = shutil.which("replayql")
    if found is None:
        raise SystemExit("the `replayql` command is not installed; run `pip install -e .` first")
    return found


STORES = ("duckdb", "clickhouse")
NAMES = {"duckdb": "DuckDB", "clickhouse": "ClickHouse"}


def saved_results(results_dir: Path, prefix: str, config: dict[str, Any], same: tuple[str, ...]
                  ) -> dict[str, dict[str, Any]]:
    """The results files `<prefix>-<store>.json` of every store measured on the same data set (equal `same`
    configuration values)."""
    found = {}
    for store in STORES:
        path = results_dir / f"{prefix}-{store}.json"
        if path.exists():
            result = json.loads(path.read_text())
            if all(result["config"][k] == config[k] for k in same):
                found[store] = result
    return found


def query_pairs(results: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, str, dict[str, Any],
                                                                       dict[str, Any] | None]]:
    """(query name, first store, other store, first store's result, other store's result or None) for every
    query of the first store against every other store: what cross-store checks compare."""
    by_store = {s: {q["name"]: q for q in r["queries"]} for s, r in results.items()}
    if len(by_store) < 2:
        return
    first, *others = by_store
    for name, mine in by_store[first].items():
        for other in others:
            yield name, first, other, mine, by_store[other].get(name)


def display_command(command: list[str], data_dir: Path | None = None) -> list[str]:
    """A command as results show it, naming no path of this machine (results are committed): the executables as
    `replayql` and `python`, the temporary `data_dir` as `<tmp>`, files of the repository relative to its root,
    and any other absolute path as `<data-dir>` after `--data-dir`, else `<path>`."""
    return [_display_part(part, option, data_dir) for option, part in zip(["", *command], command, strict=False)]


def _display_part(part: str, option: str, data_dir: Path | None) -> str:
    if part == replayql_exe():
        return "replayql"
    if part == sys.executable:
        return "python"
    if data_dir is not None:
        part = part.replace(str(data_dir), "<tmp>")
    path = Path(part)
    if not path.is_absolute():
        return part
    if path.is_relative_to(REPO_DIR):
        return str(path.relative_to(REPO_DIR))
    return "<data-dir>" if option == "--data-dir" else "<path>"


def invocation() -> str:
    """How this benchmark was run, as typed from the repository root: what its results record."""
    script = Path(sys.argv[0]).resolve().relative_to(REPO_DIR)
    return shlex.join(display_command(["python", str(script), *sys.argv[1:]]))


def cli_run(*args: str, data_dir: Path, store: str = "duckdb") -> subprocess.CompletedProcess[str]:
    """Run one `replayql` command on the store in `data_dir`; its stderr is passed through on failure."""
    command = [replayql_exe(), *args, *store_args(store, data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stderr}")
    return done


def cli(*args: str, data_dir: Path, store: str = "duckdb") -> str:
    """Run one `replayql` command on the store in `data_dir`; returns its stdout."""
    return cli_run(*args, data_dir=data_dir, store=store).stdout.strip()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)


@dataclass
class ServerProcess:
    """`replayql serve` on a free loopback port, in its own process, stopped with Ctrl-C (SIGINT) at exit."""

    data_dir: Path
    log_level: str = "warning"
    store: str = "duckdb"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None  # None: this process's environment
    serve_args: tuple[str, ...] = ()  # after the defaults (`--limit live.max_subscriptions=...`)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.command = [replayql_exe(), "serve", *store_args(self.store, self.data_dir), "--port", str(self.port),
                        "--log-level", self.log_level, *self.serve_args]
        log = (self.data_dir / "bench-server.log").open("ab")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self, timeout_s: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.data_dir / "bench-server.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"the server exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"the server did not answer /healthz within {timeout_s:.0f} s")

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid) if self.process is not None else None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):  # not Linux: no model name to report
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError):  # not Linux: size unknown
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine_info() -> dict[str, Any]:
    import duckdb

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "packages": {name: _version(name) for name in ("replayql", "uvicorn", "starlette", "strawberry-graphql",
                                                        "msgspec", "httpx2", "uvloop", "httptools", "chdb",
                                                        "chdb-core", "clickhouse-connect")},
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews every figure here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_cpu_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot, all cores together (Linux /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(values[:8]) - values[3] - values[4]  # user..steal, less idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_busy(seconds: float = 3.0) -> float | None:
    """Share (0-1) of all cores busy over the next `seconds`, from /proc/stat; None where unavailable."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(1, total1 - total0)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    right = ["---:" if i else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(path: Path, heading: str, text: str) -> None:
    """Put `text` (starting with the `## heading` line) into a Markdown file in place of the section of that
    heading (up to the next `## ` heading), or at its end: each runner rewrites only its own part."""
    lines = path.read_text().splitlines() if path.exists() else []
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    new = text.rstrip("\n").splitlines()
    if start is None:
        lines = [*lines, "", *new] if lines else new
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = [*lines[:start], *new, *(["", *lines[end:]] if end < len(lines) else [])]
    path.write_text("\n".join(lines).rstrip() + "\n")
