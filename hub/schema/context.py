"""What every resolver may use during one request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import BadUserInput
from hub.schema.access import Access
from hub.schema.loaders import Loaders
from hub.unit import Writes

__all__ = ["Context", "Info", "Live", "read_departments"]


@dataclass(slots=True)
class Live:
    """Where a live subscription stands in the change feed (see hub/live/).

    ``seq`` is None while the subscription opens: its resolver says where it starts (after
    the cursor given, or at the feed's end now) and sends nothing. Each event is built from
    ``seq``, knowing every change up to ``head`` committed; the resolver moves ``seq`` to
    where the next event starts."""

    seq: int | None = None
    head: int = 0


@dataclass(slots=True)
class Context:
    access: Access
    loaders: Loaders
    # The request's write transaction (see unit.py), and its trace id for versions.
    writes: Writes | None = None
    trace_id: str | None = None
    live: Live | None = None  # set for subscriptions over WebSocket
    share_decision_days: int = 10  # see Settings
    cost: int = 0  # the request's price (hub/schema/cost.py), for its access record
    # The registered document it runs ("sha256:<hex>", hub/trusted.py), for its records.
    document_id: str | None = None

    async def writer(self) -> AsyncConnection:
        """Where mutations write: the request's transaction, committed with its record."""
        if self.writes is None:
            raise BadUserInput("send mutations as HTTP POST requests to /graphql")
        return await self.writes.connection()

    def admit(self, records: int) -> None:
        """Count records a mutation is about to write (hub/unit.py Writes.admit)."""
        if self.writes is not None:
            self.writes.admit(records)

    @classmethod
    async def create(
        cls,
        access: Access,
        loaders: Loaders,
        departments: Mapping[str, Any] | None = None,
        *,
        writes: Writes | None = None,
        trace_id: str | None = None,
    ) -> Context:
        """A context whose records point at ``departments`` (read now, when not given)."""
        access.departments = departments or await read_departments(loaders)
        return cls(access, loaders, writes, trace_id)


async def read_departments(loaders: Loaders) -> dict[str, Any]:
    """The departments as GraphQL objects, by code: one statement."""
    from hub.schema.types import Department

    rows = await loaders.departments()
    return {code: Department(**row._mapping) for code, row in rows.items()}


Info = strawberry.Info[Context, None]
