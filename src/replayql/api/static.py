"""Built browser assets that ship inside the Python package (the SDK, GraphiQL, the web UI), served without
Node.js: one table of URL → file, each with its caching headers (ETag, 304)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".html": "text/html; charset=utf-8"}
# The SDK and GraphiQL load by a stable URL: a client revalidates hourly (a 304 while unchanged) and picks up a new
# server's files within the hour. Any origin may load the SDK (pages of the recorded app); GraphiQL's files are
# harmless to share too.
_SHARED = {"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"}
# The UI's files revalidate on every load (a 304 on loopback costs little), so a page never mixes an old app.js
# with a new server's chunks.
_UI_FILE = {"cache-control": "no-cache"}
# The UI's page runs only the server's own scripts. Styles and images are open wider for the replay: rrweb rebuilds
# the recorded page (its inline styles, its images from its own origin) in an iframe that inherits this policy.
_UI_PAGE = _UI_FILE | {
    "content-security-policy": "; ".join((
        "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src * data: blob:",
        "font-src * data:", "media-src * data: blob:", "connect-src 'self'", "frame-src 'self'", "base-uri 'none'",
        "form-action 'none'", "frame-ancestors 'none'")),
}
# Every view of the UI has a URL; each answers the same page, whose script shows the view the URL names.
UI_PAGES = ("/", "/sessions", "/sessions/{id}", "/issues", "/issues/{id}", "/users", "/users/{id}", "/dashboards")


@dataclass(frozen=True)
class Asset:
    """One built file: its URL, where it sits in the package, the npm folder it is built from, its headers."""

    url: str
    resource: tuple[str, ...]
    built_from: str
    headers: Mapping[str, str]

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[PurePosixPath(self.resource[-1]).suffix]


def _ui_files() -> Iterator[Asset]:
    """The UI's scripts and stylesheets, whatever the build named its chunks: every file of static/ui but the page."""
    folder = resources.files("replayql").joinpath("static", "ui")
    names = sorted(entry.name for entry in folder.iterdir() if entry.is_file()) if folder.is_dir() else []
    for name in names:
        if name != "index.html":
            yield Asset(f"/ui/{name}", ("static", "ui", name), "ui", _UI_FILE)


ASSETS = (
    Asset("/sdk/replayql.js", ("static", "sdk", "replayql.js"), "sdk", _SHARED),
    Asset("/graphiql/graphiql.js", ("static", "graphiql", "graphiql.js"), "graphiql", _SHARED),
    Asset("/graphiql/graphiql.css", ("static", "graphiql", "graphiql.css"), "graphiql", _SHARED),
    *(Asset(page, ("static", "ui", "index.html"), "ui", _UI_PAGE) for page in UI_PAGES),
    *_ui_files(),
)


@functools.cache
def _load(*parts: str) -> tuple[bytes, str] | None:
    path = resources.files("replayql").joinpath(*parts)
    if not path.is_file():
        return None
    content = path.read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _endpoint(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        found = _load(*asset.resource)
        if found is None:
            return JSONResponse({"error": f"this replayql was installed without {'/'.join(asset.resource[1:])}; "
                                          f"build it with `npm ci && npm run build` in {asset.built_from}/"},
                                status_code=404)
        content, etag = found
        headers = {"etag": etag, **asset.headers}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(content, media_type=asset.media_type, headers=headers)
    return serve


def asset_routes() -> list[Route]:
    return [Route(asset.url, _endpoint(asset), methods=["GET", "HEAD"]) for asset in ASSETS]
