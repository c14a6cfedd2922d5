"""No file of the repository names a path of a particular machine: a checkout, a home directory, a temporary
directory of one run. Results and docs use paths relative to the repository or placeholders (`<tmp>`,
`<data-dir>`); bench/_common.py's `display_command` writes them so.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The examples below name such paths on purpose.
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

MACHINE_PATHS = [
    r"/work/",  # checkouts and virtualenvs of build machines
    r"/root/",
    r"/home/[^/\s\"']+/",
    r"/Users/[^/\s\"']+/",
    r"/private/var/",  # macOS temporary directories
    r"/var/folders/",
    r"/tmp/[^\s/\"'`)\]]+",  # a temporary file or directory of one run; docs write <tmp>
    r"[A-Za-z]:[\\/]+Users[\\/]+",
]
# A path starts the text or follows a separator, never a word, so URLs (https://host/home/...) and relative paths
# (docs/work/...) are not paths of a machine; `file:///work/...` is.
MACHINE_PATH = re.compile(r"(?<![\w.~-])(?:" + "|".join(MACHINE_PATHS) + ")")


def machine_paths(text: str) -> list[tuple[int, str]]:
    """(line number, path) of every path of a machine in `text`."""
    return [(number, match.group(0)) for number, line in enumerate(text.splitlines(), 1)
            for match in MACHINE_PATH.finditer(line)]


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = [REPO / name for name in listed.decode().split("\0") if name and name != THIS_FILE]
    return [path for path in paths if path.is_file() and b"\0" not in path.read_bytes()[:8192]]


def test_no_tracked_file_names_a_path_of_a_machine() -> None:
    files = tracked_text_files()
    assert len(files) > 100 and REPO / "bench" / "results" / "query.json" in files  # the scan sees the repo
    found = [f"{path.relative_to(REPO)}:{number}: {hit}" for path in files
             for number, hit in machine_paths(path.read_text(errors="replace"))]
    assert found == [], "paths of a machine (write them relative to the repository, or <tmp> / <data-dir>):\n" + \
        "\n".join(found)


@pytest.mark.parametrize(("line", "paths"), [
    ('      "/work/venv/bin/replayql",', ["/work/"]),
    ('"command": "python bench/q.py --data-dir /tmp/fbench --runs 40"', ["/tmp/fbench"]),
    ("see /tmp/replayql-bench-x53xmwax/bench-server.log", ["/tmp/replayql-bench-x53xmwax"]),
    ("cd /root/src && /home/ada/.venv/bin/python", ["/root/", "/home/ada/"]),
    ("open /Users/ada/replayql and file:///work/x", ["/Users/ada/", "/work/"]),
    ('"C:\\\\Users\\\\ada\\\\replayql"', ["C:\\\\Users\\\\"]),
    ("/var/folders/x1/T/pytest-of-ada", ["/var/folders/"]),
])
def test_paths_of_machines_are_found(line: str, paths: list[str]) -> None:
    assert machine_paths(f"first line\n{line}") == [(2, path) for path in paths]


@pytest.mark.parametrize("line", [
    "executable_path=/usr/bin/chromium (Debian's package)",
    "POST /v1/ingest and GET /healthz, /graphql, /sdk/replayql.js",
    "https://shop.example/home/ada/cart and https://example.com/work/jobs",
    "python bench/run.py > /dev/null; docs/work/notes; ~/work/replayql",
    "--data-dir '<data-dir>' --clickhouse-url chdb://<tmp>/chdb; file:///etc/hosts",
    "results in bench/results/ and a tmp/ folder; /tmp/ on its own",
])
def test_other_paths_are_not_paths_of_a_machine(line: str) -> None:
    assert machine_paths(line) == []
