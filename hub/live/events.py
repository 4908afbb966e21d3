"""Live events: each built once for a stream of like subscriptions (hub/live/listener.py),
recorded in the access log for each member, and queued for each.

The event is built with the view of the stream's first member whose credential still holds:
every member has the same department, role and purpose (the stream's key), so the same view.
The members' credentials are checked again in one statement; a revoked one is refused (and
that is recorded). The database connection the event is built on is given back before the
records are written; a member whose record cannot be written gets an ``error`` (fail closed),
as every member does when the event fails (anything but fields withheld by the policy).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import strawberry
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types.execution import ExecutionResult
from strawberry.utils.aio import aclosing

from hub.audit import AccessEntry, Trail
from hub.auth import Principal, client_token_hash
from hub.clients import find_clients
from hub.errors import Forbidden, PurposeRequired, Unauthenticated
from hub.graphql_http import GraphQLEndpoint, describe, failure, format_error, outcome
from hub.live.listener import SLOW, Member, Stream
from hub.schema import SHARED, Access, Context, Loaders, Reader
from hub.schema.context import Live

if TYPE_CHECKING:
    from hub.subscriptions import Connection

__all__ = ["Encoded", "Events", "Subscriber", "answer_of"]

TURN = 100  # members served before a live event lets other work run
WITHHELD = {Forbidden.code, PurposeRequired.code}  # what an event that succeeded may carry


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What a live event's builder needs of one member: who, and what it asked."""

    connection: Connection
    operation: Operation[Connection, None]


class Encoded(dict[str, Any]):
    """A message whose JSON text is made once (SubscriptionEndpoint.encode_json sends it)."""

    def __init__(self, message: dict[str, Any], text: str) -> None:
        super().__init__(message)
        self.text = text

    @classmethod
    def next(cls, operation_id: str, data: str, trace_id: str) -> Encoded:
        """A ``next`` message around an answer's JSON ``data`` (an object), with the trace
        id of this member's record in its extensions."""
        payload = f'{data[:-1]}, "extensions": {{"traceId": "{trace_id}"}}}}'
        text = f'{{"id": {json.dumps(operation_id)}, "type": "next", "payload": {payload}}}'
        return cls({"id": operation_id, "type": "next"}, text)


def answer_of(result: ExecutionResult) -> dict[str, Any]:
    """An execution result as the answer sent and recorded."""
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [format_error(error) for error in result.errors]
    return answer


class Events:
    """Builds and sends the events of streams (the listener's ``Build``)."""

    def __init__(
        self,
        graphql: GraphQLEndpoint,
        schema: strawberry.Schema,
        entry: Callable[[Connection, str, float], AccessEntry],
    ) -> None:
        self.graphql = graphql
        self.schema = schema
        self._entry = entry

    async def __call__(self, stream: Stream, head: int) -> int:
        """Build the stream's next event once and send it to each member with its own access
        record; the database connection it is built on is given back before the records are
        written. Returns where the stream stands now."""
        started = time.perf_counter()
        members = stream.live()
        reader = Reader(self.graphql.engine)
        try:
            members, principal = await self._check(members, reader, started)
            if principal is None:
                return head
            first: Subscriber = members[0].subscriber
            policy = self.graphql.policies.current
            grants = await self.graphql.grants.current(reader.rows)
            access = Access(policy, principal, first.connection.purpose, SHARED, grants)
            loaders = Loaders(reader, access.scope, access.caller)
            access.departments = await self.graphql.departments(loaders, policy.version)
            context = Context(access, loaders, live=Live(stream.seq, head))
            source = await self.schema.stream(
                first.operation.query,
                variable_values=first.operation.variables,
                context_value=context,
                operation_name=first.operation.operation_name,
            )
            async with aclosing(source):
                results = [result async for result in source]
        except Exception as error:
            await self._send_all(members, failure(error, "live event")[1], None, started)
            return head
        finally:
            await reader.close()
        if results:
            answer = answer_of(cast(ExecutionResult, results[0]))
            await self._send_all(members, answer, access, started)
        position = context.live.seq if context.live is not None else None
        return head if position is None else position

    async def _check(
        self, members: list[Member], reader: Reader, started: float
    ) -> tuple[list[Member], Principal | None]:
        """The members whose credentials still hold (read in one statement), and the caller
        they share (same department, role and purpose: the stream's key). The others are
        refused, and that is recorded."""
        hashes = (client_token_hash(m.subscriber.connection.authorization) for m in members)
        find = await find_clients(reader, (h for h in hashes if h is not None))
        kept, principal = [], None
        for member in members:
            connection = member.subscriber.connection
            try:
                connection.principal = await self.graphql.authenticator.authenticate(
                    connection.authorization, find
                )
            except Unauthenticated as error:
                answer = {"errors": [{"message": error.message, "extensions": error.extensions()}]}
                await self._send_all([member], answer, access=None, started=started)
                continue
            kept.append(member)
            principal = principal or connection.principal
        return kept, principal

    async def _send_all(
        self,
        members: list[Member],
        answer: dict[str, Any],
        access: Access | None,
        started: float,
    ) -> None:
        """Record ``answer`` for each member and queue it: a ``next`` with the data, or an
        ``error`` when the event failed (anything but fields withheld by the policy), when
        the member's record could not be written (fail closed), or when its client has left
        OUTBOX_LIMIT events unread (recorded as such: nothing more is served to it)."""
        codes = {error["extensions"]["code"] for error in answer.get("errors", ())}
        failed = access is None or answer.get("data") is None or not codes <= WITHHELD
        trail = Trail() if failed or access is None else access.trail  # sent: nothing, or it
        trail.freeze()
        nothing = Trail()
        nothing.freeze()
        entries, sends = [], []
        for number, member in enumerate(members, 1):
            if number % TURN == 0:  # a thousand subscribers: let requests between
                await asyncio.sleep(0)
            said, served = (answer, trail) if not member.behind else ({"errors": [SLOW]}, nothing)
            status = 401 if Unauthenticated.code in codes else 200
            entry = self._entry(
                member.subscriber.connection, outcome(status, said, served), started
            )
            entry.document_hash, entry.operation_name, entry.operation_type = describe(
                member.subscriber.operation.query, member.subscriber.operation.operation_name
            )
            entry.policy_version = access.policy.version if access else None
            entry.trail = served
            entries.append(entry)
            sends.append(said)
        written = await asyncio.gather(
            *(self.graphql.access_log.append(entry) for entry in entries), return_exceptions=True
        )
        data = None if failed else json.dumps(answer)
        unwritten = None  # why records could not be written: said once, not per member
        for member, entry, said, record in zip(members, entries, sends, written, strict=True):
            if isinstance(record, BaseException):  # no record, no event
                unwritten = unwritten or failure(record, "access log")[1]["errors"]
                member.send({"id": member.operation_id, "type": "error", "payload": unwritten})
            elif data is None or said is not answer:
                member.send({"id": member.operation_id, "type": "error",
                             "payload": said["errors"]})  # fmt: skip
            else:
                member.send(Encoded.next(member.operation_id, data, entry.trace_id))
