"""Built browser assets that ship inside the Python package (the SDK), served without Node.js."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

SDK_RESOURCE = ("static", "sdk", "replayql.js")
# Pages load the SDK by a stable URL: a client revalidates hourly (a 304 while unchanged) and picks up a new
# server's SDK within the hour.
_CACHE_CONTROL = "public, max-age=3600"


@functools.cache
def _asset(*parts: str) -> tuple[bytes, str] | None:
    path = resources.files("replayql").joinpath(*parts)
    if not path.is_file():
        return None
    content = path.read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


async def sdk_script(request: Request) -> Response:
    found = _asset(*SDK_RESOURCE)
    if found is None:
        return JSONResponse({"error": "this replayql was installed without the built SDK; build it with "
                                      "`npm ci && npm run build` in sdk/"}, status_code=404)
    content, etag = found
    headers = {"etag": etag, "cache-control": _CACHE_CONTROL, "access-control-allow-origin": "*"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="text/javascript; charset=utf-8", headers=headers)
