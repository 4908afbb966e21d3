"""What a caller gets back when a request goes wrong: each error with a stable code.

Expected errors (HubError, and requests graphql-core rejects before execution) keep their
messages; a database that is away is SERVICE_UNAVAILABLE with Retry-After; anything else is
logged with a reference and answered as INTERNAL, with the reference and nothing of the
defect. HTTP (graphql_http.py), WebSocket (subscriptions.py) and live events answer alike.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.db import condition, database_away
from hub.errors import (
    INTERNAL,
    BadUserInput,
    HubError,
    QueryTooComplex,
    RateLimited,
    ServiceUnavailable,
)
from hub.schema.limits import TOKEN_LIMIT_MESSAGE
from hub.text import escaped

__all__ = [
    "error_body",
    "error_response",
    "failure",
    "format_error",
    "internal_answer",
    "internal_error_response",
    "internal_reference",
    "refusal",
    "refusals",
]

logger = logging.getLogger("hub.graphql")


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status)


def away(error: BaseException, where: object) -> ServiceUnavailable:
    """The database is away: one line for the operator (no traceback: not a defect), and
    SERVICE_UNAVAILABLE for the caller."""
    said = str(getattr(error, "orig", None) or error).strip().splitlines()
    logger.warning("database unavailable at %s: %s (%s: %s)", where,
                   condition(error) or "the database is unreachable", type(error).__name__,
                   escaped(said[0] if said else "")[:300])  # fmt: skip
    return ServiceUnavailable()


def failure(
    error: BaseException, where: object
) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The answer when ``error`` ended a request: 503 when the database is away, full,
    locked or busy (one line for the operator: a condition, not a defect); else 500 with a
    reference to the traceback in the log."""
    if database_away(error):
        return unavailable(away(error, where))
    return 500, internal_answer(internal_reference(error, where)), None


def unavailable(error: ServiceUnavailable) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {"errors": [{"message": error.message, "extensions": error.extensions()}]}
    return 503, body, {"Retry-After": str(error.RETRY_AFTER)}


def internal_reference(error: BaseException, where: object = None) -> str:
    """Log a defect with a fresh reference that the caller can quote; return the reference."""
    reference = uuid.uuid4().hex[:16]
    logger.error("internal error %s at %s", reference, where, exc_info=error)
    return reference


def internal_message(reference: str) -> str:
    return f"The hub failed to answer this part (reference {reference}); please report it."


def internal_answer(reference: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": internal_message(reference),
                "extensions": {"code": INTERNAL, "reference": reference},
            }
        ]
    }


async def internal_error_response(_: Request, error: Exception) -> Response:
    """Last resort for anything that escapes a request: the code, a reference, nothing else."""
    return JSONResponse(internal_answer(internal_reference(error)), 500)


def format_error(error: GraphQLError) -> dict[str, Any]:
    """One error of an answer: the caller's view of it, with ``extensions.code``."""
    original = error.original_error
    while isinstance(original, GraphQLError):
        original = original.original_error
    if original is not None and not isinstance(original, HubError) and database_away(original):
        original = away(original, error.path)
    if isinstance(original, HubError):
        message, extensions = original.message, original.extensions()
    elif error.path is None and (original is None or isinstance(original, ValueError | TypeError)):
        # Rejected before execution: syntax, validation or variable coercion. graphql-core's
        # message names the problem in the caller's own document.
        code = BadUserInput.code
        if TOKEN_LIMIT_MESSAGE in error.message:  # the parser's own limit has no other mark
            code = QueryTooComplex.code
        message, extensions = error.message, {"code": code}
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


def refusals(errors: Sequence[HubError]) -> dict[str, Any]:
    """The answer to a request refused before it ran (for asking what its caller's role may
    not, hub/schema/roots.py: an error per root field; for a document it may not run): the
    errors, no data."""
    return {"errors": [{"message": e.message, "extensions": e.extensions()} for e in errors]}


def refusal(
    error: QueryTooComplex | RateLimited,
) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The answer to a request refused before it ran: 429 with Retry-After when limited."""
    body = refusals([error])
    if isinstance(error, RateLimited):
        return 429, body, {"Retry-After": str(error.retry_after)}
    return 200, body, None
