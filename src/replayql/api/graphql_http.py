"""POST/GET /graphql: the GraphQL-over-HTTP contract, and the GraphiQL page for browsers.

Parsing, validation and variable coercion happen here, before execution, so their failures answer 400; a
missing or bad key answers 401; everything that executes answers 200 with `data` and `errors` (400 under
application/json when an argument was invalid). The answer is application/graphql-response+json when the
client prefers it, else application/json; under the former a request refused before execution has no `data`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from inspect import isawaitable
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from replayql.api.context import Context, Prepared, Services
from replayql.api.ingest_http import bare_media_type, internal_error
from replayql.api.limits import check_limits, json_shape, literal_shape
from replayql.api.schema import schema
from replayql.config import QueryLimits
from replayql.query.errors import UserError
from replayql.store.registry import ApiKey

log = logging.getLogger(__name__)
_MAX_QUERY_CHARS = 100_000
_INPUT_CODES = frozenset({"BAD_USER_INPUT", "BAD_QUERY", "TOO_MANY_CELLS"})  # invalid requests: answered with 400
_JSON = "application/json"
_GRAPHQL_RESPONSE = "application/graphql-response+json"
_QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")  # RFC 9110's weight syntax


class GraphQLResponse(Response):
    error_codes: tuple[str, ...] = ()  # of the errors it answers with: every answer is rendered here, once

    def render(self, content: Any) -> bytes:
        self.error_codes = tuple(e["extensions"]["code"] for e in content.get("errors") or ())
        return orjson.dumps(content)


class RequestError(Exception):
    """A request refused before execution, with its status and errors."""

    def __init__(self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.errors, self.headers = status, errors, headers or {}


def _error(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, **extra, "extensions": {"code": code}}


def _refusal(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> RequestError:
    return RequestError(status, [_error(message, code)], headers)


def _response_media_type(accept: str) -> str:
    """application/graphql-response+json when the Accept header weighs it at least as high as application/json;
    else application/json, which is also what a client without Accept, or with only wildcards, gets (as it
    always has)."""
    weights: dict[str, float] = {}
    for entry in accept.split(","):
        media, *params = entry.split(";")
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                weight = float(value) if _QVALUE.fullmatch(value.strip()) else 0.0
        weights[bare_media_type(media)] = weight
    as_json = max(weights.get(_JSON, 0.0), weights.get("application/*", 0.0), weights.get("*/*", 0.0))
    preferred = weights.get(_GRAPHQL_RESPONSE, 0.0)
    return _GRAPHQL_RESPONSE if preferred > 0 and preferred >= as_json else _JSON


def _answer(body: dict[str, Any], status: int, media_type: str, headers: dict[str, str] | None = None
            ) -> GraphQLResponse:
    content_type = f"{_GRAPHQL_RESPONSE}; charset=utf-8" if media_type == _GRAPHQL_RESPONSE else _JSON
    return GraphQLResponse(body, status_code=status, headers={**(headers or {}), "vary": "Accept"},
                           media_type=content_type)


def _refused(error: RequestError, media_type: str) -> GraphQLResponse:
    """Nothing was executed: graphql-response+json says so by leaving `data` out; application/json clients have
    always had `"data": null`."""
    body = {"errors": error.errors} if media_type == _GRAPHQL_RESPONSE else {"data": None, "errors": error.errors}
    return _answer(body, error.status, media_type, error.headers)


def _prepared(services: Services, query: str) -> Prepared:
    """Parse and validate once per distinct document while it is in use: dashboards send the same few queries over
    and over. (On the event loop, so the cache needs no lock.)"""
    prepared = services.documents.get(query)
    if prepared is None:
        prepared = _prepare(query, services.settings.query)
    services.documents.put(query, prepared)  # the most recently used, kept longest
    return prepared


def _prepare(query: str, limits: QueryLimits) -> Prepared:
    """The document parsed (within the limits) and validated, or why it cannot run."""
    try:
        document = parse(query, max_tokens=limits.max_tokens)
        depth, values = literal_shape(document)
        if depth > limits.max_variables_depth:
            return None, (GraphQLError(f"an argument value is nested {depth} levels deep; the limit is "
                                       f"{limits.max_variables_depth}", extensions={"code": "INPUT_TOO_DEEP"}),)
        if values > limits.max_variables_values:
            return None, (GraphQLError(f"the argument values hold {values:,} values; the limit is "
                                       f"{limits.max_variables_values:,}", extensions={"code": "INPUT_TOO_LARGE"}),)
        return document, tuple(validate(schema._schema, document))
    except GraphQLError as exc:
        if "tokens. Parsing aborted" in exc.message:  # graphql-core's max_tokens
            exc.extensions = {"code": "TOO_MANY_TOKENS"}
        return None, (exc,)
    except RecursionError:  # the parser and some validation rules recurse once per nesting level
        return None, (GraphQLError(f"the document is nested too deeply (fields are limited to "
                                   f"{limits.max_depth} levels)", extensions={"code": "QUERY_TOO_DEEP"}),)


def _authenticate(request: Request, services: Services) -> ApiKey:
    return authenticate(request.headers.get("authorization", ""), services)


def authenticate(header: str, services: Services) -> ApiKey:
    """The key an `Authorization` value names (HTTP's header, or graphql-ws's connection_init payload), or 401."""
    scheme, _, token = header.strip().partition(" ")
    challenge = {"WWW-Authenticate": 'token realm="replayql"'}
    if not header:
        raise _refusal(401, "missing API key: send the header `Authorization: token <api-key>`",
                       "UNAUTHENTICATED", challenge)
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        raise _refusal(401, "malformed Authorization header: use `Authorization: token <api-key>`",
                       "UNAUTHENTICATED", challenge)
    key = services.registry.authenticate(token.strip())
    if key is None:
        raise _refusal(401, "invalid or revoked API key", "UNAUTHENTICATED", challenge)
    return key


def check_rate(services: Services, key: ApiKey) -> None:
    """429 once the key has spent its requests. The bucket is the key's id: the secret is never kept."""
    buckets = services.graphql_rate
    if buckets is None:
        return
    retry_after_s = buckets.take(key.id)
    if retry_after_s == 0:
        return
    raise RequestError(429, [{"message": buckets.refusal("this API key", retry_after_s),
                              "extensions": {"code": "RATE_LIMITED", "retryAfter": retry_after_s}}],
                       {"Retry-After": str(retry_after_s)})


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes (a larger one is refused with 413)."""
    declared = request.headers.get("content-length", "")
    chunks, size = [], 0
    if not (declared.isdigit() and int(declared) > limit):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    raise _refusal(413, f"request body is over the {limit:,}-byte limit", "BODY_TOO_LARGE")


def _check_content_type(request: Request) -> None:
    content_type = bare_media_type(request.headers.get("content-type", ""))
    if content_type != _JSON:
        sent = f"Content-Type {content_type!r} is not JSON" if content_type else "the request has no Content-Type"
        raise _refusal(415, f"{sent}; send the body as application/json", "UNSUPPORTED_MEDIA_TYPE")


async def _read_request(request: Request, limits: QueryLimits) -> dict[str, Any]:
    if request.method == "GET":
        params = request.query_params
        variables = params.get("variables")
        try:
            parsed_vars = orjson.loads(variables) if variables else None
        except orjson.JSONDecodeError:
            raise _refusal(400, "`variables` is not valid JSON", "BAD_REQUEST") from None
        return {"query": params.get("query"), "variables": parsed_vars, "operationName": params.get("operationName")}
    _check_content_type(request)
    body = await _read_body(request, limits.max_body_bytes)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _refusal(400, f"request body is not valid JSON: {exc}", "BAD_REQUEST") from None
    if not isinstance(payload, dict):
        raise _refusal(400, "request body must be a JSON object {query, variables, operationName}", "BAD_REQUEST")
    return payload


def check_request(payload: dict[str, Any], limits: QueryLimits) -> None:
    """The shape of {query, variables, operationName, extensions}, and the size of `variables`."""
    query, variables, name = payload.get("query"), payload.get("variables"), payload.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise _refusal(400, "`query` must be a non-empty string", "BAD_REQUEST")
    if len(query) > _MAX_QUERY_CHARS:
        raise _refusal(400, f"`query` is {len(query)} characters; the limit is {_MAX_QUERY_CHARS}", "BAD_REQUEST")
    if variables is not None and not isinstance(variables, dict):
        raise _refusal(400, "`variables` must be a JSON object", "BAD_REQUEST")
    depth, values = json_shape(variables) if variables else (0, 0)
    if depth > limits.max_variables_depth:
        raise _refusal(400, f"`variables` is nested {depth} levels deep; the limit is {limits.max_variables_depth}",
                       "INPUT_TOO_DEEP")
    if values > limits.max_variables_values:
        # converting input objects costs time in proportion to their number, before any resolver can refuse them
        raise _refusal(400, f"`variables` holds {values:,} values; the limit is {limits.max_variables_values:,}",
                       "INPUT_TOO_LARGE")
    if name is not None and not isinstance(name, str):
        raise _refusal(400, "`operationName` must be a string", "BAD_REQUEST")
    if payload.get("extensions") is not None and not isinstance(payload["extensions"], dict):
        raise _refusal(400, "`extensions` must be a JSON object", "BAD_REQUEST")


async def graphql_endpoint(request: Request) -> Response:
    if request.method == "GET" and "query" not in request.query_params and "text/html" in request.headers.get(
            "accept", ""):
        return Response(_GRAPHIQL_PAGE, media_type="text/html; charset=utf-8", headers=_GRAPHIQL_HEADERS)
    services: Services = request.app.state.services
    media_type = _response_media_type(request.headers.get("accept", ""))
    started = time.perf_counter()
    try:
        body = await _run_request(request, services)
        response = _answer(body, _executed_status(body, media_type), media_type)
    except RequestError as refused:
        response = _refused(refused, media_type)
    services.metrics.graphql_request(getattr(request.state, "operation", None), time.perf_counter() - started,
                                     response.error_codes)
    return response


async def _run_request(request: Request, services: Services) -> dict[str, Any]:
    key = await run_in_threadpool(_authenticate, request, services)
    check_rate(services, key)
    limits = services.settings.query
    payload = await _read_request(request, limits)
    check_request(payload, limits)
    return await _execute(request, services, key, payload)


def _executed_status(body: dict[str, Any], media_type: str) -> int:
    """Under application/json an invalid argument answers 400, as the API always has; graphql-response+json
    requires a 2xx for any response that has `data`."""
    invalid = any(e["extensions"]["code"] in _INPUT_CODES for e in body.get("errors", ()))
    return 400 if invalid and media_type == _JSON else 200


async def _execute(request: Request, services: Services, key: ApiKey, payload: dict[str, Any]) -> dict[str, Any]:
    """The execution result (`data`, and `errors` if any); a request that cannot execute raises RequestError."""
    document, operation = operation_of(services, payload)
    request.state.operation = operation.name.value if operation.name else "anonymous"  # the metrics' label
    if request.method == "GET" and operation.operation != OperationType.QUERY:
        raise _refusal(405, "mutations must be sent with POST", "METHOD_NOT_ALLOWED", {"Allow": "POST"})
    check_operation(services, document, operation, payload.get("variables") or {})
    result = await run_operation(services, key, document, payload)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    return body


def operation_of(services: Services, payload: dict[str, Any]) -> tuple[DocumentNode, OperationDefinitionNode]:
    """The document (parsed and validated, within the limits) and the operation to run, or RequestError."""
    document, errors = _prepared(services, payload["query"])
    if errors or document is None:
        raise RequestError(400, [format_error(e, _document_code(e)) for e in errors])
    operation = get_operation_ast(document, payload.get("operationName"))
    if operation is None:
        raise _refusal(400, "no operation to run: give `operationName` matching one operation in the document",
                       "BAD_REQUEST")
    return document, operation


def check_operation(services: Services, document: DocumentNode, operation: OperationDefinitionNode,
                    variables: dict[str, Any]) -> None:
    """The variables coerce, and the operation is within the request limits; else RequestError (400)."""
    wrong = _variable_errors(operation, variables)
    if wrong:
        raise RequestError(400, [format_error(e, "BAD_USER_INPUT") for e in wrong])
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    exceeded = check_limits(schema._schema, operation, fragments, variables, services.settings.query)
    if exceeded is not None:
        raise _refusal(400, exceeded.message, exceeded.code)


async def run_operation(services: Services, key: ApiKey, document: DocumentNode, payload: dict[str, Any]
                        ) -> ExecutionResult:
    """A query or mutation, executed on the execution threads (execute() coerces the raw variables itself). The
    executor does not carry the caller's context over by itself: its log lines need the request id."""
    return await asyncio.get_running_loop().run_in_executor(
        _EXECUTION_THREADS, contextvars.copy_context().run, _run_operation, document, services, key,
        payload.get("variables") or {}, payload.get("operationName"))


# Execution (argument conversion, resolvers, result building) is CPU work proportional to the request: it runs
# on these threads, each with an event loop of its own, so the server's loop only parses HTTP and routes. Store
# reads inside still go to the worker threads of run_in_threadpool, a separate pool, so the two never wait on
# each other's slots.
_EXECUTION_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="graphql")
_thread_state = threading.local()


def _run_operation(document: DocumentNode, services: Services, key: ApiKey, variables: dict[str, Any],
                   operation_name: str | None) -> ExecutionResult:
    loop = getattr(_thread_state, "loop", None)
    if loop is None:
        loop = _thread_state.loop = asyncio.new_event_loop()
    return loop.run_until_complete(_execute_operation(document, services, key, variables, operation_name))


async def _execute_operation(document: DocumentNode, services: Services, key: ApiKey, variables: dict[str, Any],
                             operation_name: str | None) -> ExecutionResult:
    result = execute(schema._schema, document, context_value=Context(services, key), variable_values=variables,
                     operation_name=operation_name)
    if isawaitable(result):
        result = await result
    return result


def _document_code(error: GraphQLError) -> str:
    if error.extensions and "code" in error.extensions:
        return str(error.extensions["code"])
    return "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"


def _variable_errors(operation: OperationDefinitionNode, raw: dict[str, Any]) -> list[GraphQLError]:
    """What is wrong with the variables, if anything. get_variable_values answers errors as a list, and coerced
    values as a dict (graphql-core 3.2) or a VariableValues (3.3)."""
    coerced = get_variable_values(schema._schema, operation.variable_definitions or (), raw)
    return coerced if isinstance(coerced, list) else []


def format_error(error: GraphQLError, default_code: str | None = None) -> dict[str, Any]:
    """The spec's error shape; internal failures are logged with an id and never shown."""
    original = error.original_error
    out: dict[str, Any] = {"message": error.message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    if isinstance(original, UserError):
        code = original.code
        out["extensions"] = {"code": code, **getattr(original, "extensions", {})}
    elif isinstance(original, GraphQLError):  # an argument the executor could not coerce: the caller's input
        out["extensions"] = {"code": "BAD_USER_INPUT"}
    elif original is not None and default_code is None:  # before execution it is the input's fault
        failure = internal_error(log, "GraphQL", original)
        out["message"] = failure["error"]
        out["extensions"] = {"code": "INTERNAL_SERVER_ERROR", "requestId": failure["requestId"]}
    else:
        out["extensions"] = {"code": default_code or "BAD_USER_INPUT"}
    return out


# The page only loads the bundle built from graphiql/ and shipped in the package (static.py serves it): no CDN,
# and no inline script, so the policy can forbid any script but the server's own.
_GRAPHIQL_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>replayql GraphiQL</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="graphiql/graphiql.css"></head>
<body><div id="graphiql"></div><script src="graphiql/graphiql.js"></script></body></html>
"""
_GRAPHIQL_HEADERS = {
    "content-security-policy": "; ".join((
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "font-src data:", "img-src 'self' data:",
        "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'")),
    "vary": "Accept",
}
