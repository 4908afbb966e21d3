"""A GraphQL request's parameters as a caller sends them, checked before anything uses them.

Everything here comes from the caller and is hostile until checked: the body (JSON of any
shape and depth), ``query``, ``variables``, ``operationName``, ``extensions``, and the
purpose and case headers. Each check fails with ``BadRequest`` (400 ``BAD_USER_INPUT``)
naming the parameter and what to do. Text may not hold NUL, other control characters or
lone surrogates (text.py says why); variables may not nest deeper than any input of the
schema does, nor hold numbers JSON cannot (NaN, infinities). Over HTTP and over WebSocket
the same checks apply.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from hub.errors import BadUserInput
from hub.text import problem

__all__ = [
    "MAX_HEADER_CHARACTERS",
    "Asked",
    "BadRequest",
    "Params",
    "asked_for",
    "document_digest",
    "header_text",
    "params",
    "parse_body",
    "parse_json_text",
    "text_digest",
]

MAX_HEADER_CHARACTERS = 500
MAX_OPERATION_NAME = 200  # as the access log keeps it
MAX_DEPTH = 32  # far deeper than any input object of the schema
NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
DOCUMENT_ID = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


class BadRequest(BadUserInput):
    """A request that is not GraphQL over HTTP at all; answered with an HTTP error status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Params:
    """A request as it runs: the document's text, and the registered document it is, if any
    (``document_id``, "sha256:<hex>", set once the hub found it registered: trusted.py)."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    document_id: str | None = None


@dataclass(frozen=True, slots=True)
class Asked:
    """A request as sent: the document's text, or the sha256 (hex) of a registered document
    (``documentId``, or ``extensions.persistedQuery.sha256Hash``), or both (then they agree)."""

    query: str | None
    digest: str | None
    variables: dict[str, Any] | None
    operation_name: str | None

    def running(self, query: str, document_id: str | None) -> Params:
        return Params(query, self.variables, self.operation_name, document_id)


def parse_body(body: bytes) -> Any:
    """The JSON of a request body; BadRequest when it is not JSON a client could mean."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None


def parse_json_text(text: str, name: str) -> Any:
    """The JSON of a parameter sent as text (a GET's ``variables``); BadRequest naming it."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f'"{name}" nests deeper than {MAX_DEPTH} levels') from None
    except ValueError as error:
        raise BadRequest(f'"{name}" is not valid JSON text: {error}') from None


def _no_constant(name: str) -> Any:
    raise BadRequest(f"the request body holds {name}, which is not a JSON number")


def params(payload: Any) -> Params:
    """The parameters of a GraphQL request sent with its text, checked; BadRequest saying
    what is wrong."""
    asked = asked_for(payload)
    if asked.query is None:
        raise BadRequest('"query" must be a non-empty string with a GraphQL document')
    return asked.running(asked.query, None)


def asked_for(payload: Any) -> Asked:
    """The parameters of a GraphQL request, checked; BadRequest saying what is wrong."""
    if not isinstance(payload, dict):
        raise BadRequest('the request body must be a JSON object {"query": ...}')
    query = payload.get("query")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise BadRequest('"query" must be a non-empty string with a GraphQL document')
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest('"variables" must be a JSON object of variable values, or null')
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest('"extensions" must be a JSON object, or null')
    name = operation_name(payload.get("operationName"))
    if query is not None and (found := problem(query, prose=True)):
        raise BadRequest(f'"query" {found}; send the document as plain text')
    _check_values(variables, "variables")
    _check_values(extensions, "extensions")
    digest = document_digest(payload.get("documentId"), extensions)
    if query is None and digest is None:
        raise BadRequest(
            '"query" must be a non-empty string with a GraphQL document, or "documentId" '
            "the id (sha256:<hex>) of a document registered for your client"
        )
    if query is not None and digest is not None and digest != text_digest(query):
        raise BadRequest(
            "the document's id is not the sha256 of the query sent with it: send the id of "
            "that text (sha256 of its UTF-8 bytes), or only one of them"
        )
    return Asked(query, digest, variables, name)


def text_digest(query: str) -> str:
    """The sha256 (hex) of a document's text, as its id names it."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


def document_digest(document_id: Any, extensions: dict[str, Any] | None) -> str | None:
    """The sha256 (hex) a request names its document by: ``documentId`` ("sha256:<hex>", as
    the GraphQL over HTTP persisted documents proposal has it) or Apollo's
    ``extensions.persistedQuery`` ({"version": 1, "sha256Hash": "<hex>"}); None when
    neither. BadRequest for a malformed one, or two that differ."""
    named: list[str] = []
    if document_id is not None:
        if not isinstance(document_id, str) or not (found := DOCUMENT_ID.fullmatch(document_id)):
            raise BadRequest(
                '"documentId" must be "sha256:" and the 64 hexadecimal digits of the '
                "document's sha256, as `hub documents list --full` shows it"
            )
        named.append(found.group(1).lower())
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is not None:
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if (
            not isinstance(persisted, dict)
            or persisted.get("version") != 1
            or not isinstance(digest, str)
            or not SHA256.fullmatch(digest)
        ):
            raise BadRequest(
                '"extensions.persistedQuery" must be {"version": 1, "sha256Hash": "<the 64 '
                "hexadecimal digits of the document's sha256>\"}"
            )
        named.append(digest.lower())
    if len(set(named)) > 1:
        raise BadRequest('"documentId" and "extensions.persistedQuery" name different documents')
    return named[0] if named else None


def operation_name(value: Any) -> str | None:
    """``operationName``: null, or the name of an operation in the document."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest('"operationName" must be a string naming an operation of the document')
    if len(value) > MAX_OPERATION_NAME or not NAME.fullmatch(value):
        raise BadRequest(
            f'"operationName" must be a GraphQL name (letters, digits, _) of at most '
            f"{MAX_OPERATION_NAME} characters, naming an operation of the document"
        )
    return value


def _check_values(value: Any, where: str) -> None:
    """Every string and number within ``value`` (keys too), without recursion."""
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"{where} nest deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            if found := problem(item, prose=True):
                raise BadRequest(f"{path} {found}; remove it")
        elif isinstance(item, float) and not (-1e300 < item < 1e300):
            raise BadRequest(f"{path} is not a number the hub can take")
        elif isinstance(item, dict):
            for key, member in item.items():
                if found := problem(key):
                    raise BadRequest(f"a key in {path} {found}")
                pending.append((member, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((member, f"{path}[{i}]", depth + 1) for i, member in enumerate(item))


def header_text(
    raw: str | None, name: str, *, decoded: bool = False
) -> tuple[str | None, str | None]:
    """A free-text header such as the purpose (UTF-8, optionally percent-encoded): its
    value, and what is wrong with it (None when nothing is). A wrong value is returned too,
    so that the refusal's access record can keep it (escaped and cut). HTTP gives header
    bytes as Latin-1 text; ``decoded`` values (from JSON: a WebSocket's connection_init) are
    text already."""
    try:
        text = raw or ""
        if not decoded:
            text = text.encode("latin-1").decode("utf-8")
        value = unquote(text, errors="strict")
    except UnicodeError:
        return raw, f"{name} must be UTF-8 text (percent-encoding is fine)"
    value = value.strip()
    if found := problem(value):
        return value, f"{name} {found}; send plain text"
    if len(value) > MAX_HEADER_CHARACTERS:
        return value, f"{name} is longer than {MAX_HEADER_CHARACTERS} characters"
    return value or None, None
