"""GraphQL over HTTP: POST JSON in, JSON out, every error with a stable code.

Expected errors (HubError, and requests graphql-core rejects before execution) keep
their messages; anything else is logged with a reference and answered as INTERNAL.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from hub.errors import INTERNAL, BadUserInput, HubError
from hub.schema import Context, Loaders, Reader
from hub.settings import Settings

__all__ = ["GraphQLEndpoint", "error_response", "format_error", "internal_error_response"]

logger = logging.getLogger("hub.graphql")

GRAPHIQL_PAGE = (Path(__file__).parent / "static" / "graphiql.html").read_text(encoding="utf-8")
ALLOWED_OPERATIONS = {OperationType.QUERY, OperationType.MUTATION}


class BadRequest(BadUserInput):
    """A request that is not GraphQL over HTTP at all; answered with an HTTP error status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def internal_reference(error: BaseException, where: object = None) -> str:
    """Log a defect with a fresh reference that the caller can quote; return the reference."""
    reference = uuid.uuid4().hex[:16]
    logger.error("internal error %s at %s", reference, where, exc_info=error)
    return reference


def internal_message(reference: str) -> str:
    return f"The hub failed to answer this part (reference {reference}); please report it."


async def internal_error_response(_: Request, error: Exception) -> Response:
    """Last resort for anything that escapes a request: the code, a reference, nothing else."""
    reference = internal_reference(error)
    return JSONResponse(
        {
            "errors": [
                {
                    "message": internal_message(reference),
                    "extensions": {"code": INTERNAL, "reference": reference},
                }
            ]
        },
        500,
    )


def format_error(error: GraphQLError) -> dict[str, Any]:
    """One error of an answer: the caller's view of it, with ``extensions.code``."""
    original = error.original_error
    while isinstance(original, GraphQLError):
        original = original.original_error
    if isinstance(original, HubError):
        message, extensions = original.message, original.extensions()
    elif error.path is None and (original is None or isinstance(original, ValueError | TypeError)):
        # Rejected before execution: syntax, validation or variable coercion. graphql-core's
        # message names the problem in the caller's own document.
        message, extensions = error.message, {"code": BadUserInput.code}
    else:
        reference = internal_reference(original or error, error.path)
        message = internal_message(reference)
        extensions = {"code": INTERNAL, "reference": reference}
    formatted: dict[str, Any] = {"message": message}
    if error.locations:
        formatted["locations"] = [{"line": at.line, "column": at.column} for at in error.locations]
    if error.path is not None:
        formatted["path"] = error.path
    formatted["extensions"] = extensions
    return formatted


async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's GraphQL parameters; BadRequest saying what is wrong otherwise."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadRequest(
            "send the GraphQL request as JSON with Content-Type: application/json", 415
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the request body is larger than {limit} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"the request body is larger than {limit} bytes", 413)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadRequest('the request body must be a JSON object {"query": ...}')
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest('"query" must be a non-empty string with a GraphQL document')
    if not isinstance(payload.get("variables") or {}, dict):
        raise BadRequest('"variables" must be a JSON object')
    if not isinstance(payload.get("operationName") or "", str):
        raise BadRequest('"operationName" must be a string')
    return payload


class GraphQLEndpoint:
    """The ASGI endpoint behind /graphql."""

    def __init__(self, schema: strawberry.Schema, engine: AsyncEngine, settings: Settings) -> None:
        self.schema = schema
        self.engine = engine
        self.settings = settings

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            return self.explorer(request)
        try:
            payload = await read_json_body(request, self.settings.max_request_bytes)
        except BadRequest as error:
            return error_response(error.status, error.code, error.message)
        return await self.execute(payload)

    def explorer(self, request: Request) -> Response:
        if self.settings.graphiql and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(GRAPHIQL_PAGE)
        return error_response(
            405,
            BadUserInput.code,
            "send GraphQL requests with POST; GET opens GraphiQL in a browser",
        )

    async def execute(self, payload: dict[str, Any]) -> Response:
        reader = Reader(self.engine)
        try:
            result = await self.schema.execute(
                payload["query"],
                variable_values=payload.get("variables"),
                context_value=Context(loaders=Loaders(reader)),
                operation_name=payload.get("operationName"),
                allowed_operation_types=ALLOWED_OPERATIONS,
            )
        except CannotGetOperationTypeError as error:
            return error_response(400, BadUserInput.code, error.as_http_error_reason())
        except InvalidOperationTypeError as error:
            return error_response(400, BadUserInput.code, error.as_http_error_reason("POST"))
        finally:
            await reader.close()
        answer: dict[str, Any] = {}
        errors = result.errors or []
        if errors:
            answer["errors"] = [format_error(error) for error in errors]
        # A request rejected before execution has no "data" at all; once execution started,
        # "data" is there, null when a non-null root field failed.
        if result.data is not None or not errors or any(e.path for e in errors):
            answer["data"] = result.data
        return JSONResponse(answer)
