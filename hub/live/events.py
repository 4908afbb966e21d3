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

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types.execution import ExecutionResult
from strawberry.utils.aio import aclosing

from hub.answers import failure, format_error
from hub.audit import AccessEntry, Trail
from hub.auth import client_token_hash
from hub.clients import find_clients
from hub.errors import Forbidden, PurposeRequired, Unauthenticated
from hub.graphql_http import GraphQLEndpoint, describe, outcome
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
    document_id: str | None = None  # the registered document it runs, for its records


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
        self, graphql: GraphQLEndpoint, entry: Callable[[Connection, str, float], AccessEntry]
    ) -> None:
        self.graphql = graphql
        self._entry = entry

    async def __call__(self, stream: Stream, head: int) -> int:
        """Build the stream's next event once and send it to each member with its own access
        record; the database connection it is built on is given back before any record is
        written. Returns where the stream stands now."""
        started = time.perf_counter()
        members = stream.live()
        reader = Reader(self.graphql.engine)
        live = Live(stream.seq, head)
        access: Access | None = None
        results: list[Any] = []
        failed: dict[str, Any] | None = None
        refused: list[tuple[Member, dict[str, Any]]] = []
        try:
            members, refused = await self._check(members, reader)
            if members:
                access, results = await self._build(members[0], reader, live)
        except Exception as error:
            failed = failure(error, "live event")[1]
        finally:
            await reader.close()
        for member, answer in refused:
            await self._send_all([member], answer, None, started)
        if failed is not None:
            await self._send_all(members, failed, None, started)
            return head
        if results:
            await self._send_all(members, answer_of(results[0]), access, started)
        return head if live.seq is None else live.seq

    async def _check(
        self, members: list[Member], reader: Reader
    ) -> tuple[list[Member], list[tuple[Member, dict[str, Any]]]]:
        """The members whose credentials still hold (read in one statement), and the others
        with why they are refused."""
        hashes = (client_token_hash(m.subscriber.connection.authorization) for m in members)
        find = await find_clients(reader, (h for h in hashes if h is not None))
        kept, refused = [], []
        for member in members:
            connection = member.subscriber.connection
            try:
                connection.principal = await self.graphql.authenticator.authenticate(
                    connection.authorization, find
                )
            except Unauthenticated as error:
                said = {"message": error.message, "extensions": error.extensions()}
                refused.append((member, {"errors": [said]}))
                continue
            kept.append(member)
        return kept, refused

    async def _build(
        self, first: Member, reader: Reader, live: Live
    ) -> tuple[Access, list[ExecutionResult]]:
        """The event as ``first`` would receive it: every member has the same department,
        role and purpose (the stream's key), so the same view."""
        connection, operation = first.subscriber.connection, first.subscriber.operation
        policy = self.graphql.policies.current
        grants = await self.graphql.grants.current(reader.rows)
        access = Access(policy, connection.principal, connection.purpose, SHARED, grants)
        loaders = Loaders(reader, access.scope, access.caller, access.principal.enterprise)
        access.departments = await self.graphql.departments(loaders, policy.version)
        context = Context(access, loaders, live=live)
        source = await self.graphql.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=context,
            operation_name=operation.operation_name,
        )
        async with aclosing(source):
            results = [cast(ExecutionResult, result) async for result in source]
        return access, results

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
        if not members:
            return
        codes = {error["extensions"]["code"] for error in answer.get("errors", ())}
        failed = access is None or answer.get("data") is None or not codes <= WITHHELD
        nothing = Trail()
        nothing.freeze()
        trail = nothing if failed or access is None else access.trail  # sent: nothing, or it
        trail.freeze()
        # The same for every member: one document and operation (the stream's key).
        operation = members[0].subscriber.operation
        described = describe(operation.query, operation.operation_name)
        status = 401 if Unauthenticated.code in codes else 200
        slow = {"errors": [SLOW]}
        entries, sends = [], []
        for number, member in enumerate(members, 1):
            if number % TURN == 0:  # a thousand subscribers: let requests between
                await asyncio.sleep(0)
            said, served = (slow, nothing) if member.behind else (answer, trail)
            entry = self._entry(
                member.subscriber.connection, outcome(status, said, served), started
            )
            entry.document_hash, entry.operation_name, entry.operation_type = described
            entry.document_id = member.subscriber.document_id
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
