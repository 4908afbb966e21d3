"""Live updates: GraphQL over WebSocket (graphql-transport-ws) at /graphql.

A client authenticates in ``connection_init`` with ``{"Authorization": "Bearer <token>"}``
(browsers cannot set headers on a WebSocket) or with the upgrade request's own
Authorization header; ``X-Hub-Purpose`` and ``X-Hub-Case`` likewise. Each operation runs
with a context of its own. A subscription opens (its arguments checked, its place in the
feed found), gives its database connection back, and joins a stream of the process's feed
listener (hub/live/); each event is built once per stream with a fresh view (the members
checked again, the current policy), so a revoked client or a changed policy takes effect at
the next event, and is recorded in the access log for each member before it is sent to it:
if the record cannot be written, that member gets an ``error`` instead. An event that fails
is an ``error`` message, never a ``next`` followed by ``complete``: the client subscribes
again with ``after`` set to the last ``endCursor`` it received, and loses or repeats nothing.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from opentelemetry.trace import SpanKind
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.unset import UNSET, UnsetType
from strawberry.utils.aio import aclosing

from hub.answers import failure, refusals
from hub.audit import AccessEntry, Outcome
from hub.auth import Principal
from hub.clients import ClientLookup
from hub.errors import HubError, ServiceUnavailable, Unauthenticated
from hub.graphql_http import GraphQLEndpoint, describe, outcome
from hub.live import FeedListener, Member
from hub.live.events import Encoded, Events, Subscriber, answer_of
from hub.metrics import SUBSCRIPTIONS
from hub.params import BadRequest, asked_for, header_text
from hub.schema import SHARED, Access, Context, Loaders, Reader
from hub.schema.context import Live
from hub.schema.roots import refused
from hub.throttle import Ticket

__all__ = ["SubscriptionEndpoint"]

EVENTS_AT_ONCE = 4  # live events built at once in a process, each on a connection of its own


@dataclass
class Connection:
    """One WebSocket connection: who is on it, once connection_init has said."""

    websocket: WebSocket
    connection_params: dict[str, Any] | None = None
    authorization: str | None = None
    purpose: str | None = None
    case_ref: str | None = None
    principal: Principal | None = None

    def parameter(self, name: str) -> Any:
        """A connection_init parameter, else the upgrade request's header of that name."""
        given = {key.lower(): value for key, value in (self.connection_params or {}).items()}
        return given.get(name.lower(), self.websocket.headers.get(name))

    def text(self, name: str) -> tuple[str | None, str | None]:
        """A free-text parameter such as the purpose, and what is wrong with it (if anything);
        see params.header_text."""
        value = self.parameter(name)
        if value is not None and not isinstance(value, str):
            return None, f"{name} must be text"
        return header_text(value, name, decoded=True)


class TransportHandler(BaseGraphQLTransportWSHandler[Connection, None]):
    """graphql-transport-ws with a context per operation, and every event audited."""

    async def handle_message(self, message: Message) -> None:
        """Messages of a shape the protocol does not know close the connection (4400)."""
        shape = isinstance(message, dict) and isinstance(message.get("type"), str)
        if shape and message["type"] == "subscribe":
            shape = isinstance(message.get("id"), str) and isinstance(message.get("payload"), dict)
        if not shape:
            await self.handle_invalid_message(
                'a message is a JSON object with a "type"; a subscribe message has a string '
                '"id" and a "payload" object'
            )
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        """As strawberry's, but a refused connection closes with the hub's reason (4403
        ``UNAUTHENTICATED: the token is unknown or revoked``...), which clients show, where
        strawberry says only ``Forbidden``."""
        # The protocol lets the payload be left out or null: no credential, refused below.
        payload = (message.get("payload") or {}) if isinstance(message, dict) else None
        if self.connection_timed_out or self.connection_init_received:
            await super().handle_connection_init(message)  # strawberry closes these
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        self.connection_init_received = True
        self.context.connection_params = payload
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as refused:
            said: dict[str, Any] = refused.payload if isinstance(refused.payload, dict) else {}
            code = (said.get("extensions") or {}).get("code", "FORBIDDEN")
            reason = f"{code}: {said.get('message', 'refused')}"
            # A close frame's reason holds at most 123 bytes of UTF-8. 1013 is WebSocket's
            # "try again later"; 4500 the protocol's internal error.
            close = {ServiceUnavailable.code: 1013, "INTERNAL": 4500}.get(code, 4403)
            await self.websocket.close(code=close, reason=_cut(reason, 123))
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def run_operation(self, operation: Operation[Connection, None]) -> None:
        endpoint = cast("SubscriptionEndpoint", self.view)
        started = time.perf_counter()
        context: Context | None = None
        ticket: Ticket | None = None
        try:
            asked = asked_for({"query": operation.query, "variables": operation.variables,
                               "operationName": operation.operation_name})  # fmt: skip
            access, loaders = await endpoint.view(self.context)
            context = Context(access, loaders)
            # Held to registered documents as over HTTP (the text only: the protocol's
            # subscribe message carries no id).
            resolved = await endpoint.graphql.documents.resolve(
                asked, access.principal, loaders.reader
            )
            context.document_id = resolved.document_id
            # Root fields not for this role (an enterprise's credential subscribes to nothing).
            if forbidden := refused(access.principal, operation.query, operation.operation_name):
                answer = refusals(forbidden)
                await endpoint.record(self.context, context, operation, answer, started)
                await self._send(operation, "error", answer["errors"])
                return
            ticket = await endpoint.admit(access.principal.client, operation, loaders.reader)
            context.cost = ticket.cost
            if describe(operation.query, operation.operation_name)[2] == "subscription":
                context.live = Live()  # opening: the resolver finds where it starts
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
            )
            async with aclosing(source):
                async for result in source:
                    if not isinstance(result, ExecutionResult):
                        raise TypeError("incremental delivery is not supported")
                    answer = answer_of(result)
                    await endpoint.record(self.context, context, operation, answer, started)
                    # A subscription that opens sends nothing: what comes is why it cannot.
                    if isinstance(result, PreExecutionError) or context.live is not None:
                        await self._send(operation, "error", answer["errors"])
                        return
                    await self._send(operation, "next", answer)
            if context.live is None:
                await self._send(operation, "complete")
                return
            await context.loaders.reader.close()  # nothing held while it waits for events
            assert context.live.seq is not None  # noqa: S101 - set by the resolver
            await endpoint.follow(self.context, operation, context, context.live.seq)
        except HubError as error:  # e.g. a bad request, or refused by a limit
            answer = {"errors": [{"message": error.message, "extensions": error.extensions()}]}
            try:
                if context is not None:
                    await endpoint.record(self.context, context, operation, answer, started)
                else:  # refused before it began (a bad request): recorded too
                    entry = endpoint._entry(self.context, Outcome.ERROR, started)
                    entry.operation_type = "subscription"
                    await endpoint.graphql.access_log.append(entry)
            except Exception as unrecorded:  # the operation still ends, saying why
                answer = failure(unrecorded, "access log")[1]
            with suppress(Exception):  # a socket closed meanwhile
                await self._send(operation, "error", answer["errors"])
        except WebSocketDisconnected:  # the client went away: nothing to say, nobody to say it to
            return
        except Exception as error:
            with suppress(Exception):
                await self._send(operation, "error", failure(error, "subscription")[1]["errors"])
        finally:
            if ticket is not None:
                ticket.release()
            if context is not None:
                await context.loaders.reader.close()

    async def _send(
        self, operation: Operation[Connection, None], kind: str, payload: Any = None
    ) -> None:
        message: dict[str, Any] = {"id": operation.id, "type": kind}
        if payload is not None:
            message["payload"] = payload
        await operation.send_operation_message(message)  # type: ignore[arg-type]


def refusal(error: BaseException) -> ConnectionRejectionError:
    """A connection refused because of ``error``: SERVICE_UNAVAILABLE when the database is
    away or busy (said in one log line), else INTERNAL with a reference to the traceback."""
    (said,) = failure(error, "connection_init")[1]["errors"]
    return ConnectionRejectionError(said)


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` bytes of UTF-8, with … if cut: at a space where one
    is near the end (a reader sees whole words), else at a character."""
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[: limit - 3].decode(errors="ignore")
    words, space, _ = cut.rpartition(" ")
    if space and len(words) > len(cut) * 3 // 4:
        cut = words.rstrip(",;:")
    return cut + "…"


class SubscriptionEndpoint(GraphQL[Connection, None]):
    """The WebSocket side of /graphql; shares the HTTP endpoint's engine, policies and log."""

    graphql_transport_ws_handler_class = TransportHandler

    def __init__(self, graphql: GraphQLEndpoint) -> None:
        super().__init__(
            graphql.schema,
            graphql_ide=None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.graphql = graphql
        self.events = Events(graphql, self._entry)
        self.listener = FeedListener(
            graphql.engine, self.events, graphql.settings.feed_poll_seconds, EVENTS_AT_ONCE
        )

    def encode_json(self, data: object) -> str | bytes:
        """Messages as JSON; a live event's text is made once for all its subscribers."""
        if isinstance(data, Encoded):
            return data.text
        return super().encode_json(data)

    async def follow(
        self,
        connection: Connection,
        operation: Operation[Connection, None],
        context: Context,
        seq: int,
    ) -> None:
        """Send the subscription's events, from after ``seq``, until it ends."""
        principal = context.access.principal
        variables = json.dumps(operation.variables, sort_keys=True)
        key = (principal.department, principal.role, principal.enterprise, connection.purpose,
               operation.query, variables, operation.operation_name)  # fmt: skip
        subscriber = Subscriber(connection, operation, context.document_id)
        member = Member(key, operation.id, subscriber)
        self.listener.join(member, seq)
        SUBSCRIPTIONS.inc()
        try:
            while True:
                message = await member.outbox.get()
                await operation.send_operation_message(message)  # type: ignore[arg-type]
                if message["type"] != "next":
                    return
        finally:
            SUBSCRIPTIONS.dec()
            self.listener.leave(member)

    async def get_context(self, request: Any, response: Any) -> Connection:
        return Connection(websocket=request)

    async def on_ws_connect(self, context: Connection) -> UnsetType:
        connection = context
        authorization = connection.parameter("Authorization")
        connection.authorization = authorization if isinstance(authorization, str) else None
        connection.purpose, wrong_purpose = connection.text("X-Hub-Purpose")
        connection.case_ref, wrong_case = connection.text("X-Hub-Case")
        reader = Reader(self.graphql.engine)
        try:
            if wrong := wrong_purpose or wrong_case:
                raise BadRequest(wrong)
            connection.principal = await self.graphql.authenticator.authenticate(
                connection.authorization, ClientLookup(reader)
            )
        except (Unauthenticated, BadRequest) as error:  # refused, and recorded
            await reader.close()
            result = Outcome.DENIED if isinstance(error, Unauthenticated) else Outcome.ERROR
            entry = self._entry(connection, result, time.perf_counter())
            entry.operation_type = "subscription"
            try:
                await self.graphql.access_log.append(entry)
            except Exception as failed:
                raise refusal(failed) from None
            raise ConnectionRejectionError(
                {"message": error.message, "extensions": error.extensions()}
            ) from None
        except Exception as error:  # the database away or busy: the client tries again
            raise refusal(error) from None
        finally:
            await reader.close()
        accepted: UnsetType = UNSET
        return accepted

    async def view(self, connection: Connection) -> tuple[Access, Loaders]:
        """The caller's view for one operation or event: checked again, current policy."""
        reader = Reader(self.graphql.engine)
        lookup = ClientLookup(reader)
        try:
            principal = await self.graphql.authenticator.authenticate(
                connection.authorization, lookup
            )
            policy = self.graphql.policies.current
            grants = await self.graphql.grants.current(reader.rows, lookup.grant_version)
            access = Access(policy, principal, connection.purpose, SHARED, grants)
            loaders = Loaders(reader, access.scope, access.caller, principal.enterprise)
            access.departments = await self.graphql.departments(loaders, policy.version)
        except BaseException:
            await reader.close()
            raise
        connection.principal = principal
        return access, loaders

    async def admit(
        self, client: str, operation: Operation[Connection, None], reader: Reader
    ) -> Ticket:
        """Priced as over HTTP; a subscription takes one of the client's subscriptions, a
        query or mutation sent over the socket is throttled as if it came over HTTP."""
        graphql = self.graphql
        query, name = operation.query, operation.operation_name
        cost = graphql.pricing.cost(query, operation.variables, name)
        if describe(query, name)[2] == "subscription":
            return graphql.throttle.subscribe(client, cost)
        return await graphql.throttle.start(graphql.throttle.admit(client, cost), reader.release)

    def _entry(self, connection: Connection, result: str, started: float) -> AccessEntry:
        principal = connection.principal
        client = connection.websocket.client
        with self.graphql.tracer.start_as_current_span("graphql subscription event",
                                                       kind=SpanKind.SERVER) as span:  # fmt: skip
            trace_id = f"{span.get_span_context().trace_id:032x}"
        return AccessEntry(
            recorded_at=datetime.now(UTC),
            outcome=result,
            trace_id=trace_id,
            duration_us=int((time.perf_counter() - started) * 1_000_000),
            client=principal.client if principal else None,
            department=principal.department if principal else None,
            role=principal.role.value if principal else None,
            purpose=connection.purpose,
            case_ref=connection.case_ref,
            remote_address=client.host if client else None,
        )

    async def record(
        self,
        connection: Connection,
        context: Context,
        operation: Operation[Connection, None],
        answer: dict[str, Any],
        started: float,
    ) -> None:
        """Append the event's access record; raises (and nothing is sent) if it fails."""
        trail = context.access.trail
        entry = self._entry(connection, outcome(200, answer, trail), started)
        entry.document_hash, entry.operation_name, entry.operation_type = describe(
            operation.query, operation.operation_name
        )
        entry.document_id = context.document_id
        entry.policy_version = context.access.policy.version
        entry.trail = trail
        await self.graphql.access_log.append(entry)
        answer.setdefault("extensions", {})["traceId"] = entry.trace_id
