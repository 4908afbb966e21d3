"""GraphQL over HTTP as its specification has it: media types, GET and POST, status codes.

Two media types answer: ``application/graphql-response+json`` (the specification's own) and
``application/json`` (what every client understood first), chosen by the caller's Accept
header, ``application/json`` when it names neither (or is missing). Under the specification's
own type an answer without ``data`` (nothing ran: the document did not parse or validate, a
variable did not coerce, the hub refused it) comes with a 4xx status, so caches, proxies
and clients can tell; under ``application/json`` such answers keep 200, as legacy clients
expect.

GET runs queries, never mutations: ``?query=...&variables=<JSON>&operationName=...&
extensions=<JSON>``, with the same headers as POST (Authorization, X-Hub-Purpose,
X-Hub-Case). A GET that asks for HTML and names no GraphQL media type is a browser: it gets
GraphiQL (hub/graphql_http.py decides, where the page is). Answers are never stored by
caches (``Cache-Control: no-store``): every read must pass the policy and reach the access
log, which a cached answer would not.

Every value here comes from the caller and is checked before use; each failure is a
BadRequest with its HTTP status, saying what is wrong and what to send instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from hub.params import BadRequest, parse_body, parse_json_text

__all__ = [
    "ALLOW_POST",
    "GRAPHQL_RESPONSE",
    "JSON",
    "answer_status",
    "browses",
    "media_type",
    "not_safe",
    "read_query_string",
    "read_request",
]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# What an Accept header's ranges stand for, in the order the hub prefers them at equal weight.
RANGES = {GRAPHQL_RESPONSE: GRAPHQL_RESPONSE, JSON: JSON, "application/*": JSON, "*/*": JSON}
REFUSED = frozenset({"FORBIDDEN", "TRUSTED_DOCUMENT_REQUIRED"})  # nothing ran: 403
GET_PARAMETERS = ("query", "documentId", "variables", "operationName", "extensions")
MAX_ACCEPTED = 32  # media ranges in one Accept header; more is not a client


def _ranges(accept: str) -> list[tuple[str, float]]:
    """An Accept header's media ranges and their weights (RFC 9110 12.5.1), lower-cased;
    malformed weights count as 1, as most servers take them."""
    ranges = []
    for item in accept.split(",")[:MAX_ACCEPTED]:
        kind, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 1.0
        if kind:
            ranges.append((kind.lower(), weight))
    return ranges


def media_type(accept: str | None) -> str:
    """The media type of the answer to a request with this Accept header: the acceptable one
    of highest weight, the specification's own first at equal weight; BadRequest (406) when
    the header accepts neither."""
    if not accept or not accept.strip():
        return JSON
    offered = [(w, kind) for kind, w in _ranges(accept) if w > 0 and kind in RANGES]
    if not offered:
        raise BadRequest(
            f"the Accept header does not accept {GRAPHQL_RESPONSE} or {JSON}, the media types "
            f"GraphQL answers come in: accept one of them",
            406,
        )
    best = max(weight for weight, _ in offered)
    chosen = {RANGES[kind] for weight, kind in offered if weight == best}
    return GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in chosen else JSON


def browses(accept: str | None) -> bool:
    """A browser asking for a page: HTML accepted, and neither GraphQL media type named."""
    kinds = {kind for kind, weight in _ranges(accept or "") if weight > 0}
    return "text/html" in kinds and not kinds & {GRAPHQL_RESPONSE, JSON}


def answer_status(media: str, status: int, answer: Mapping[str, Any]) -> int:
    """The status an answer goes with: under the specification's own media type, 403 when
    the caller may not ask what it asked (a root field not for its role, a document not
    registered for it) and 400 for any other answer without data (nothing ran); otherwise
    the status as it is."""
    if media != GRAPHQL_RESPONSE or status != 200 or "data" in answer:
        return status
    codes = {error.get("extensions", {}).get("code") for error in answer.get("errors", [])}
    return 403 if codes and codes <= REFUSED else 400


ALLOW_POST = {"Allow": "POST"}


def not_safe(operation_type: str) -> str:
    """Why an operation other than a query is refused when sent with GET (405)."""
    return f"a {operation_type} cannot be sent with GET, which runs queries only: send it with POST"


async def read_request(request: Request, limit: int) -> Any:
    """A request's parameters as a POST body holds them, from its query string (GET) or its
    body (POST); BadRequest for an Accept header that takes neither media type (406), another
    method (405) or anything wrong with what was sent."""
    media_type(request.headers.get("accept"))
    if request.method == "GET":
        return read_query_string(request.url.query, limit)
    if request.method == "POST":
        return await read_body(request, limit)
    raise BadRequest("send GraphQL requests with GET (queries) or POST", 405)


async def read_body(request: Request, limit: int) -> Any:
    """A POST's JSON body; BadRequest saying what is wrong otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise BadRequest(f"send the GraphQL request as JSON with Content-Type: {JSON}", 415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the request body is larger than {limit} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"the request body is larger than {limit} bytes", 413)
    return parse_body(bytes(body))


def read_query_string(query_string: str, limit: int) -> dict[str, Any]:
    """A GET's parameters as a POST body would hold them: ``variables`` and ``extensions``
    decoded from their JSON text; BadRequest for text that is not UTF-8, a parameter given
    twice, or JSON that does not parse."""
    if len(query_string) > limit:
        raise BadRequest(f"the query string is longer than {limit} bytes: send it with POST", 414)
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, errors="strict",
                          max_num_fields=64)  # fmt: skip
    except UnicodeDecodeError:
        raise BadRequest("the query string must be UTF-8, percent-encoded") from None
    except ValueError:
        raise BadRequest("the query string has too many parameters") from None
    payload: dict[str, Any] = {}
    for name, value in pairs:
        if name not in GET_PARAMETERS:
            continue  # cache busters and the like
        if name in payload:
            raise BadRequest(f'"{name}" is given more than once in the query string: give it once')
        if name in {"variables", "extensions"}:
            payload[name] = parse_json_text(value, name) if value else None
        else:
            payload[name] = value
    if "query" not in payload and "documentId" not in payload:
        raise BadRequest(
            "a GET request needs ?query= with a GraphQL document or ?documentId= naming a "
            "registered one (and may add variables, operationName and extensions, the JSON "
            "ones as JSON text); a browser opens GraphiQL here"
        )
    return payload
