"""Auditors' questions to the access log: who read what, when; and the log exported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Row, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from hub.audit.record import timestamp
from hub.audit.served import coordinates, denials, groups
from hub.models import AccessRecord


class mentions(FunctionElement[bool]):
    """``mentions(access_record.enterprises, uscc)``: the record names the enterprise. On
    PostgreSQL by the GIN index on the words of that text (migration 0006); on SQLite, the
    embedded database, by a LIKE that scans it."""

    type = Boolean()
    inherit_cache = True


@compiles(mentions)
def _scanning(element: mentions, compiler: SQLCompiler, **kw: Any) -> str:
    words, uscc = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{words} LIKE '% ' || {uscc} || ' %'"


@compiles(mentions, "postgresql")
def _indexed(element: mentions, compiler: SQLCompiler, **kw: Any) -> str:
    words, uscc = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"string_to_array(btrim({words}), ' ') @> ARRAY[CAST({uscc} AS TEXT)]"


@dataclass(frozen=True, slots=True)
class AccessFilter:
    """Which records an auditor asks for; every condition given must hold.

    ``field`` (a Type.field) matches records that served that field; with ``enterprise``,
    records that served that field of that enterprise's records. ``excluded_role`` leaves
    out the requests of clients of that role (an enterprise's own, from its Data Tracker).
    """

    department: str | None = None
    client: str | None = None
    enterprise: str | None = None
    field: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    excluded_role: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        table = AccessRecord.__table__.c
        conditions: list[ColumnElement[bool]] = []
        if self.department is not None:
            conditions.append(table.department == self.department)
        if self.excluded_role is not None:
            conditions.append(table.role.is_distinct_from(self.excluded_role))
        if self.client is not None:
            conditions.append(table.client == self.client)
        if self.outcome is not None:
            conditions.append(table.outcome == self.outcome)
        if self.since is not None:
            conditions.append(table.recorded_at >= timestamp(self.since))
        if self.until is not None:
            conditions.append(table.recorded_at <= timestamp(self.until))
        # USCCs and Type.field names hold no LIKE wildcards; callers validate both. The
        # search text has each Type.field once (served.py); records written before that hold
        # enterprise:Type.field. With both an enterprise and a field, it only narrows:
        # ``matches`` decides.
        if self.enterprise is not None:
            conditions.append(mentions(table.enterprises, self.enterprise))
        if self.field is not None:
            conditions.append(
                or_(table.fields.like(f"% {self.field} %"), table.fields.like(f"%:{self.field} %"))
            )
        return conditions

    def matches(self, record: Mapping[Any, Any]) -> bool:
        """Whether a record the conditions found holds exactly: with an enterprise and a
        field, that field of that enterprise's records was served."""
        if self.enterprise is None or self.field is None:
            return True
        return f"{self.enterprise}:{self.field}" in coordinates(groups(record))


def search(access_filter: AccessFilter, first: int, before: int | None = None) -> Select[Any]:
    """The newest ``first`` records the conditions find (older than sequence number
    ``before``); ``find`` keeps only those that match."""
    statement = select(AccessRecord.__table__).where(*access_filter.conditions())
    if before is not None:
        statement = statement.where(AccessRecord.seq < before)
    return statement.order_by(AccessRecord.seq.desc()).limit(first)


Rows = Callable[[Select[Any]], Awaitable[Sequence[Row[Any]]]]
PAGE = 200  # records read at a time when ``matches`` may set some aside


async def find(
    rows: Rows, access_filter: AccessFilter, first: int, before: int | None = None
) -> list[Row[Any]]:
    """The newest ``first`` matching records (older than ``before``), read page by page."""
    found: list[Row[Any]] = []
    size = max(first, PAGE)
    while len(found) < first:
        page = await rows(search(access_filter, size, before))
        found += [row for row in page if access_filter.matches(row._mapping)]
        if len(page) < size:
            break
        before = page[-1].seq
    return found[:first]


def exported(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as auditors read it: lists instead of the stored search and JSON text, and
    what was served by enterprise, whichever form it was stored in."""
    values = dict(record)
    values["served"] = groups(record)
    values["enterprises"] = values["enterprises"].split()
    values["fields"] = coordinates(values["served"])
    values["denied"] = denials(record)
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
            if access_filter.matches(row._mapping):
                yield exported(dict(row._mapping))
