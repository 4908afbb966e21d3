"""The /graphql endpoint over HTTP: every answer recorded, every error with a stable code.

What the GraphQL over HTTP specification says of methods, media types and status codes is
in over_http.py; this module runs the request and records it.

Expected errors (HubError, and requests graphql-core rejects before execution) keep
their messages; anything else is logged with a reference and answered as INTERNAL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError, get_operation_ast, parse, print_ast
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from hub.answers import error_body, failure, format_error, internal_reference, refusal, refusals
from hub.audit import AccessEntry, AccessLog, Outcome, Trail
from hub.auth import Authenticator
from hub.clients import ClientLookup
from hub.compiled import Decline, Plans
from hub.compiled import answer as compiled_answer
from hub.db import database_away
from hub.errors import (
    BadUserInput,
    DocumentNotFound,
    DocumentNotTrusted,
    Forbidden,
    PurposeRequired,
    QueryTooComplex,
    RateLimited,
    Unauthenticated,
)
from hub.grants import Grants
from hub.logs import request_log
from hub.metrics import EXECUTIONS, REQUEST_SECONDS, REQUESTS, WITHHELD_FIELDS
from hub.over_http import (
    ALLOW_POST,
    JSON,
    answer_status,
    browses,
    media_type,
    not_safe,
    read_request,
)
from hub.params import Asked, BadRequest, Params, asked_for, header_text
from hub.policy import PolicyStore
from hub.schema import SHARED, Access, Context, Loaders, Reader
from hub.schema.context import read_departments
from hub.schema.cost import Pricing
from hub.schema.limits import MAX_TOKENS, cacheable
from hub.schema.roots import refused
from hub.settings import Settings
from hub.text import escaped
from hub.throttle import Limits, Throttle, Ticket
from hub.trusted import Documents
from hub.unit import Writes

__all__ = ["Answer", "GraphQLEndpoint", "describe", "outcome"]


GRAPHIQL_PAGE = (Path(__file__).parent / "static" / "graphiql.html").read_text(encoding="utf-8")
ALLOWED_OPERATIONS = {OperationType.QUERY, OperationType.MUTATION}
# What GET may run: queries only (the specification: GET is safe, it changes nothing).
SAFE_OPERATIONS = {OperationType.QUERY}
# Answers hold records a policy decided on for this caller, and each read is recorded:
# no cache keeps one for another request.
ANSWER_HEADERS = {"Cache-Control": "no-store", "Vary": "Accept, Authorization"}
UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": 'Bearer realm="hub"'}
# GraphiQL runs what its user types with the user's token: no other site may frame it (to
# make the user click Run on a query of its own), and it runs only the hub's own scripts.
EXPLORER_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; default-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:",
    "Referrer-Policy": "no-referrer",
}


class Answer(JSONResponse):
    """A GraphQL answer, encoded by orjson: the dossier's ~150 kB in a tenth of the time
    of the standard library's encoder, the same compact JSON (UTF-8, key order kept)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:  # an integer past 64 bits (a JSON scalar's value)
            return super().render(content)


def log_request(entry: AccessEntry, status: int, answer: dict[str, Any]) -> None:
    """The server log's line for a request (who, what, how it ended, how long it took), and
    its counts in the metrics."""
    milliseconds = entry.duration_us / 1000
    code = (answer.get("errors") or [{}])[0].get("extensions", {}).get("code", "none")
    REQUESTS.labels(str(entry.outcome), code).inc()
    REQUEST_SECONDS.labels(entry.operation_type or "none").observe(entry.duration_us / 1e6)
    if entry.trail.denied:
        WITHHELD_FIELDS.inc(len(entry.trail.denied))
    request_log.info(  # the operation's name is the caller's: escaped, it forges no line
        "%s %s by %s: %s %d in %.1f ms trace %s",
        entry.operation_type or "request", escaped(entry.operation_name or "-"),
        entry.department or "-", entry.outcome, status, milliseconds, entry.trace_id,
        extra={"trace_id": entry.trace_id, "department": entry.department,
               "client": entry.client, "operation_type": entry.operation_type,
               "operation_name": entry.operation_name, "outcome": str(entry.outcome),
               "status": status, "duration_ms": round(milliseconds, 1)},
    )  # fmt: skip


def respond(
    accept: str | None, status: int, answer: dict[str, Any], headers: dict[str, str] | None
) -> Answer:
    """The answer in the media type the caller accepts (application/json when it accepts
    neither: the 406 says so), with the status that type gives it."""
    try:
        media = media_type(accept)
    except BadRequest:
        media = JSON
    return Answer(
        answer,
        answer_status(media, status, answer),
        {**ANSWER_HEADERS, **(headers or {})},
        media_type=f"{media}; charset=utf-8",
    )


def checked_request(headers: Mapping[str, str], payload: Any, entry: AccessEntry) -> Asked:
    """The request's parameters and headers, checked (BadRequest otherwise). What the record
    needs is noted in ``entry`` first, so that a refusal's record keeps the values sent
    (escaped and cut: see AccessEntry.columns)."""
    entry.purpose, wrong_purpose = header_text(headers.get("x-hub-purpose"), "X-Hub-Purpose")
    entry.case_ref, wrong_case = header_text(headers.get("x-hub-case"), "X-Hub-Case")
    if isinstance(payload, dict) and isinstance(payload.get("operationName"), str):
        entry.operation_name = payload["operationName"]
    if wrong := wrong_purpose or wrong_case:
        raise BadRequest(wrong)
    return asked_for(payload)


def describe(query: str, operation_name: str | None) -> tuple[str, str | None, str | None]:
    """The normalized document's hash, and the operation's name and type, for the record."""
    if cacheable(query):  # long texts are never cached (see hub/schema/limits.py)
        return _described(query, operation_name)
    return _describe(query, operation_name)


def _describe(query: str, operation_name: str | None) -> tuple[str, str | None, str | None]:
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return hashlib.sha256(query.encode()).hexdigest(), operation_name, None
    digest = hashlib.sha256(print_ast(document).encode()).hexdigest()
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return digest, operation_name, None
    name = operation.name.value if operation.name else operation_name
    return digest, name, operation.operation.value


_described = lru_cache(maxsize=512)(_describe)


def outcome(status: int, answer: dict[str, Any], trail: Trail) -> str:
    codes = {error["extensions"]["code"] for error in answer.get("errors", [])}
    if status == 401 or RateLimited.code in codes:
        return Outcome.DENIED
    if not codes:
        return Outcome.OK
    if codes <= {Forbidden.code, PurposeRequired.code, DocumentNotTrusted.code}:
        return Outcome.PARTIAL if trail.served else Outcome.DENIED
    return Outcome.ERROR


class GraphQLEndpoint:
    """The ASGI endpoint behind /graphql: every answer is recorded before it leaves."""

    def __init__(
        self,
        schema: strawberry.Schema,
        engine: AsyncEngine,
        settings: Settings,
        policies: PolicyStore,
        access_log: AccessLog,
        tracer: Tracer,
    ) -> None:
        self.schema = schema
        self.engine = engine
        self.settings = settings
        self.policies = policies
        self.access_log = access_log
        self.tracer = tracer
        self.authenticator = Authenticator(settings)
        self.grants = Grants()
        self.pricing = Pricing(schema._schema, settings.query_cost_budget)
        self.plans = Plans(schema) if settings.compiled_reads else None
        self.documents = Documents(settings.trusted_documents)
        self.throttle = Throttle(
            Limits(
                concurrency=settings.client_concurrency,
                cost_per_second=settings.client_cost_per_second,
                burst=settings.client_cost_burst,
                subscriptions=settings.client_subscriptions,
                cost_in_flight=settings.cost_in_flight,
            )
        )
        # The departments change with migrations only: read once per policy version, so a
        # reload (SIGHUP) also refreshes them.
        self._departments: tuple[str, Mapping[str, Any]] | None = None

    async def departments(self, loaders: Loaders, version: str) -> Mapping[str, Any]:
        if self._departments is None or self._departments[0] != version:
            self._departments = (version, await read_departments(loaders))
        return self._departments[1]

    async def handle(self, request: Request) -> Response:
        accept = request.headers.get("accept")
        if request.method == "GET" and self.settings.graphiql and browses(accept):
            return HTMLResponse(GRAPHIQL_PAGE, headers=EXPLORER_HEADERS)
        started, recorded_at = time.perf_counter(), datetime.now(UTC)
        parent = extract(dict(request.headers))  # a caller's W3C traceparent, if any
        with self.tracer.start_as_current_span(
            "graphql", context=parent, kind=SpanKind.SERVER
        ) as span:
            entry = AccessEntry(
                recorded_at=recorded_at,
                outcome=Outcome.ERROR,
                trace_id=f"{span.get_span_context().trace_id:032x}",
                duration_us=0,
                remote_address=request.client.host if request.client else None,
            )
            writes = Writes(self.engine)
            try:
                status, answer, headers = await self.answer(request, entry, writes)
            except Exception as error:  # a failed request is recorded too, its writes undone
                status, answer, headers = failure(error, "request")
                await writes.close()
                entry.trail.written.clear()
                entry.trail.transitions.clear()
            entry.outcome = outcome(status, answer, entry.trail)
            entry.duration_us = int((time.perf_counter() - started) * 1_000_000)
            span.update_name(
                f"graphql {entry.operation_type or 'request'} {entry.operation_name or ''}".strip()
            )
            span.set_attributes({
                "graphql.operation.name": entry.operation_name or "",
                "graphql.operation.type": entry.operation_type or "",
                "hub.department": entry.department or "",
                "hub.outcome": entry.outcome,
                "hub.fields.served": entry.trail.served_fields,
                "hub.fields.denied": len(entry.trail.denied),
            })  # fmt: skip
            try:
                if writes.begun:  # the record commits with the writes, or neither does
                    await writes.commit(self.access_log, entry)
                else:
                    await self.access_log.append(entry)
            except Exception as error:  # fail closed: no record, no answer (and no writes)
                span.set_status(Status(StatusCode.ERROR, "access log not written"))
                status, answer, headers = failure(error, "access log")
                entry.outcome = Outcome.ERROR
                answer.setdefault("extensions", {})["traceId"] = entry.trace_id
                return respond(accept, status, answer, headers)
            finally:
                await writes.close()
                log_request(entry, status, answer)
        answer.setdefault("extensions", {})["traceId"] = entry.trace_id
        return respond(accept, status, answer, headers)

    async def answer(
        self, request: Request, entry: AccessEntry, writes: Writes
    ) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        """The status and body of the answer, with what the record needs noted in ``entry``."""
        safe = request.method == "GET"
        try:
            payload = await read_request(request, self.settings.max_request_bytes)
            asked = checked_request(request.headers, payload, entry)
        except BadRequest as error:
            allow = {"Allow": "GET, POST"} if error.status == 405 else None
            return error.status, error_body(error.code, error.message), allow
        if asked.query is not None:  # recorded even when the caller is not let in
            entry.document_hash, entry.operation_name, entry.operation_type = describe(
                asked.query, asked.operation_name
            )
        reader = Reader(self.engine)
        ticket: Ticket | None = None
        try:
            lookup = ClientLookup(reader)
            try:
                principal = await self.authenticator.authenticate(
                    request.headers.get("authorization"), lookup
                )
            except Unauthenticated as error:
                return 401, error_body(error.code, error.message), UNAUTHENTICATED_HEADERS
            entry.client, entry.department = principal.client, principal.department
            entry.role = principal.role.value
            try:
                checked = await self.documents.resolve(asked, principal, reader)
            except (DocumentNotFound, DocumentNotTrusted) as error:
                return 200, refusals([error]), None
            entry.document_id = checked.document_id
            if asked.query is None:
                entry.document_hash, entry.operation_name, entry.operation_type = describe(
                    checked.query, checked.operation_name
                )
            if safe and entry.operation_type not in (None, OperationType.QUERY.value):
                said = not_safe(entry.operation_type)
                return 405, error_body(BadUserInput.code, said), ALLOW_POST
            if forbidden := refused(principal, checked.query, checked.operation_name):
                return 200, refusals(forbidden), None  # root fields not for this role
            try:  # priced and admitted before anything else is read or run
                ticket = await self.admit(principal.client, checked, reader)
            except (QueryTooComplex, RateLimited) as error:
                return refusal(error)
            policy = self.policies.current
            entry.policy_version = policy.version
            # The version read with the caller holds while the request ran on; after waiting
            # its turn, grants decided meanwhile count: the version is read again.
            version = None if reader.released else lookup.grant_version
            grants = await self.grants.current(reader.rows, version)
            access = Access(policy, principal, entry.purpose, SHARED, grants)
            entry.trail = access.trail
            loaders = Loaders(reader, access.scope, access.caller, principal.enterprise)
            departments = await self.departments(loaders, policy.version)
            context = await Context.create(
                access, loaders, departments, writes=writes, trace_id=entry.trace_id
            )
            context.share_decision_days = self.settings.share_decision_days
            context.cost = ticket.cost
            return await self.execute(checked, context, safe=safe)
        finally:
            if ticket is not None:
                ticket.release()
            await reader.close()

    async def admit(self, client: str, checked: Params, reader: Reader) -> Ticket:
        """The request's ticket: QueryTooComplex over the budget, RateLimited over a limit;
        then its turn in the process's workload, waited for without a database connection."""
        cost = self.pricing.cost(checked.query, checked.variables, checked.operation_name)
        return await self.throttle.start(self.throttle.admit(client, cost), reader.release)

    async def execute(
        self, checked: Params, context: Context, *, safe: bool = False
    ) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        plan = self.plans.get(checked.query, checked.operation_name) if self.plans else None
        if plan is not None:
            try:
                data, found = await compiled_answer(plan, self.schema, checked.variables, context)
            except Decline:
                pass
            except Exception as error:
                if database_away(error):
                    raise
                # A defect of the compiled path: logged with a reference; the answer and the
                # record are strawberry's, as if the document had been declined.
                internal_reference(error, "compiled read")
                context.access.trail.forget_reads()
            else:
                EXECUTIONS.labels("compiled").inc()
                return 200, ({"errors": found, "data": data} if found else {"data": data}), None
        EXECUTIONS.labels("strawberry").inc()
        try:
            result = await self.schema.execute(
                checked.query,
                variable_values=checked.variables,
                context_value=context,
                operation_name=checked.operation_name,
                allowed_operation_types=SAFE_OPERATIONS if safe else ALLOWED_OPERATIONS,
            )
        except CannotGetOperationTypeError as error:
            return 400, error_body(BadUserInput.code, error.as_http_error_reason()), None
        except InvalidOperationTypeError as error:
            if safe:
                said = not_safe(error.operation_type.value)
                return 405, error_body(BadUserInput.code, said), ALLOW_POST
            return 400, error_body(BadUserInput.code, error.as_http_error_reason("POST")), None
        answer: dict[str, Any] = {}
        errors = result.errors or []
        if errors:
            answer["errors"] = [format_error(error) for error in errors]
        # A request rejected before execution has no "data" at all; once execution started,
        # "data" is there, null when a non-null root field failed.
        if result.data is not None or not errors or any(e.path for e in errors):
            answer["data"] = result.data
        return 200, answer, None
