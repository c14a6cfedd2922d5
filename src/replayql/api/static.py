"""Built browser assets that ship inside the Python package (the SDK, GraphiQL), served without Node.js."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Pages load assets by a stable URL: a client revalidates hourly (a 304 while unchanged) and picks up a new
# server's files within the hour.
_CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class Asset:
    """One built file: its URL, where it sits in the package, and the npm folder it is built from."""

    url: str
    resource: tuple[str, ...]
    media_type: str
    built_from: str


ASSETS = (
    Asset("/sdk/replayql.js", ("static", "sdk", "replayql.js"), "text/javascript; charset=utf-8", "sdk"),
    Asset("/graphiql/graphiql.js", ("static", "graphiql", "graphiql.js"), "text/javascript; charset=utf-8",
          "graphiql"),
    Asset("/graphiql/graphiql.css", ("static", "graphiql", "graphiql.css"), "text/css; charset=utf-8", "graphiql"),
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
            return JSONResponse({"error": f"this replayql was installed without {asset.url}; build it with "
                                          f"`npm ci && npm run build` in {asset.built_from}/"}, status_code=404)
        content, etag = found
        # any origin may load the SDK (pages of the recorded app); GraphiQL's files are harmless to share too
        headers = {"etag": etag, "cache-control": _CACHE_CONTROL, "access-control-allow-origin": "*"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(content, media_type=asset.media_type, headers=headers)
    return serve


def asset_routes() -> list[Route]:
    return [Route(asset.url, _endpoint(asset), methods=["GET", "HEAD"]) for asset in ASSETS]
