"""Auditors' questions to the access log: who read what, when; and the log exported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit.log import timestamp
from hub.models import AccessRecord


@dataclass(frozen=True, slots=True)
class AccessFilter:
    """Which records an auditor asks for; every condition given must hold.

    ``field`` (a Type.field) matches records that served that field; with ``enterprise``,
    records that served that field of that enterprise's records.
    """

    department: str | None = None
    client: str | None = None
    enterprise: str | None = None
    field: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        table = AccessRecord.__table__.c
        conditions: list[ColumnElement[bool]] = []
        if self.department is not None:
            conditions.append(table.department == self.department)
        if self.client is not None:
            conditions.append(table.client == self.client)
        if self.outcome is not None:
            conditions.append(table.outcome == self.outcome)
        if self.since is not None:
            conditions.append(table.recorded_at >= timestamp(self.since))
        if self.until is not None:
            conditions.append(table.recorded_at <= timestamp(self.until))
        # USCCs and Type.field names hold no LIKE wildcards; callers validate both.
        if self.enterprise is not None and self.field is not None:
            conditions.append(table.fields.like(f"% {self.enterprise}:{self.field} %"))
        elif self.enterprise is not None:
            conditions.append(table.enterprises.like(f"% {self.enterprise} %"))
        elif self.field is not None:
            conditions.append(table.fields.like(f"%:{self.field} %"))
        return conditions


def search(access_filter: AccessFilter, first: int, before: int | None = None) -> Select[Any]:
    """The newest ``first`` matching records (older than sequence number ``before``)."""
    statement = select(AccessRecord.__table__).where(*access_filter.conditions())
    if before is not None:
        statement = statement.where(AccessRecord.seq < before)
    return statement.order_by(AccessRecord.seq.desc()).limit(first)


def exported(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as auditors read it: lists instead of the stored search and JSON text."""
    values = dict(record)
    values["enterprises"] = values["enterprises"].split()
    values["fields"] = values["fields"].split()
    values["served"] = json.loads(values["served"])
    values["denied"] = json.loads(values["denied"])
    values["written"] = json.loads(values["written"]) if values.get("written") else []
    return values


async def export(engine: AsyncEngine, access_filter: AccessFilter) -> AsyncIterator[dict[str, Any]]:
    """Every matching record, oldest first, streamed."""
    statement = (
        select(AccessRecord.__table__).where(*access_filter.conditions()).order_by(AccessRecord.seq)
    )
    async with engine.connect() as connection:
        result = await connection.stream(statement)
        async for row in result:
            yield exported(dict(row._mapping))
