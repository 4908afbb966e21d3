"""One batch being checked against the database (enterprises, references, uniqueness),
then written with its children and its versions."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.publishing.versions import (
    VERSION,
    Change,
    Published,
    Publisher,
    new_version,
    now,
    stored_records,
)
from hub.records import BY_TYPE, CHILD_FIELDS, Kind, Problem


class Batch:
    """One batch being checked against the database, then written."""

    def __init__(
        self,
        connection: AsyncConnection,
        kind: Kind,
        owner: str,
        values: list[dict[str, Any]],
        problems: list[Problem],
    ) -> None:
        self.connection = connection
        self.kind = kind
        self.owner = owner
        self.values = values
        self.problems = problems
        self.usccs: list[str] = [v.get("uscc") or "" for v in values]
        self.ids: list[dict[str, int]] = [{} for _ in values]  # reference column -> hub id
        self.enterprise_ids: list[int] = [0 for _ in values]
        self.current: dict[str, Any] = {}

    def problem(self, index: int, field: str | None, message: str) -> None:
        self.problems.append(Problem(index, self.values[index].get("sourceId"), field, message))

    def usable(self) -> list[int]:
        return [i for i, v in enumerate(self.values) if v.get("sourceId")]

    async def resolve(self) -> None:
        kind, owner = self.kind, self.owner
        seen: dict[str, int] = {}
        for index in self.usable():
            source_id = self.values[index]["sourceId"]
            if source_id in seen:
                self.problem(index, "sourceId", f"repeats records[{seen[source_id]}] of this batch")
            seen.setdefault(source_id, index)
            for name in ("participants", "assistingDepartments"):
                if owner in (self.values[index].get(name) or []):
                    self.problem(index, name, f"names the owner {owner} itself")
            if self.values[index].get("transferredTo") == owner:
                self.problem(index, "transferredTo", f"a case is transferred to another "
                             f"department, not to its owner {owner}")  # fmt: skip
        for reference in kind.references:
            await self._resolve_reference(reference)
        await self._resolve_enterprises()
        await self._unique("caseNumber", "case_number", "the case number is {}'s")
        await self._unique(
            "rectificationSourceId", "rectification_id", "the rectification already has {}"
        )
        self.current = await stored_records(self.connection, kind, owner, seen)

    async def _resolve_enterprises(self) -> None:
        enterprise = models.Enterprise.__table__
        wanted = {uscc for uscc in self.usccs if uscc}
        found = {
            row.uscc: row.id
            for row in await self.connection.execute(
                select(enterprise.c.id, enterprise.c.uscc).where(enterprise.c.uscc.in_(wanted))
            )
        }
        for index, uscc in enumerate(self.usccs):
            if uscc and uscc not in found:
                if self.kind.via is None:
                    self.problem(
                        index, "uscc",
                        f"no enterprise {uscc} is registered in the hub; check the code, or "
                        "wait until market regulation registers it",
                    )  # fmt: skip
            elif uscc:
                self.enterprise_ids[index] = found[uscc]

    async def _resolve_reference(self, reference: Any) -> None:
        target = BY_TYPE[reference.kind]
        table = target.table
        enterprise = models.Enterprise.__table__
        wanted = {v[reference.field] for v in self.values if v.get(reference.field)}
        if not wanted:
            return
        columns = [table.c.id, table.c.source_id, table.c.retracted, enterprise.c.uscc]
        if reference.after:
            columns.append(table.c[reference.after[1]].label("day"))
        rows = (
            await self.connection.execute(
                select(*columns)
                .join(enterprise, enterprise.c.id == table.c.enterprise_id)
                .where(table.c.source_id.in_(wanted), table.c.owner == self.owner)
            )
        ).all()
        # Records refer only to their owner's own records. Another department's record of
        # that id reads exactly like none: the answer must not tell who has what.
        own = {row.source_id: row for row in rows}
        for index, values in enumerate(self.values):
            source_id = values.get(reference.field)
            if not source_id:
                continue
            row = own.get(source_id)
            what = f"{reference.kind} {source_id!r}"
            if row is None:
                self.problem(
                    index, reference.field, f"{self.owner} has no {what}; publish it first"
                )
                continue
            if row.retracted:
                self.problem(index, reference.field, f"{what} was retracted")
                continue
            if self.kind.via == reference.field:
                self.usccs[index] = row.uscc
            elif self.usccs[index] and row.uscc != self.usccs[index]:
                self.problem(
                    index, reference.field,
                    f"{what} is about enterprise {row.uscc}, not {self.usccs[index]}",
                )  # fmt: skip
                continue
            if reference.after:
                here, there = values.get(reference.after[0]), row.day.isoformat()
                if here and here < there:
                    self.problem(
                        index, reference.after[0], f"{here} is before the {what}'s day {there}"
                    )
                    continue
            self.ids[index][reference.column] = row.id

    async def _unique(self, field: str, column: str, taken_by: str) -> None:
        """Values another record of the owner's must not have (a case number, an acceptance
        of the same rectification)."""
        if field not in {f.name for f in self.kind.fields}:
            return
        table = self.kind.table
        by_value: dict[Any, list[int]] = {}
        for index, values in enumerate(self.values):
            value = self.ids[index].get(column) if field.endswith("SourceId") else values.get(field)
            if value is not None and values.get("sourceId"):
                by_value.setdefault(value, []).append(index)
        if not by_value:
            return
        taken = {
            row[1]: row[0]
            for row in await self.connection.execute(
                select(table.c.source_id, table.c[column]).where(
                    table.c.owner == self.owner, table.c[column].in_(list(by_value))
                )
            )
        }
        for value, indexes in by_value.items():
            for index in indexes:
                source_id = self.values[index]["sourceId"]
                if value in taken and taken[value] != source_id:
                    other = f"{self.kind.type_name} {taken[value]!r}"
                    self.problem(index, field, taken_by.format(other))
                elif index != indexes[0]:
                    self.problem(index, field, taken_by.format(f"records[{indexes[0]}]"))

    def _change(self, index: int) -> tuple[Change, Any, dict[str, Any]]:
        values = self.values[index]
        row = self.current.get(values["sourceId"])
        if row is None:
            return Change.CREATED, None, {}
        before = json.loads(row.data) if row.data else {}
        if before == values and not row.retracted:
            return Change.UNCHANGED, row, before
        return Change.UPDATED, row, before

    def _columns(self, index: int) -> dict[str, Any]:
        kind, values = self.kind, self.values[index]
        table = kind.table
        columns: dict[str, Any] = {"owner": self.owner}
        if "enterprise_id" in table.c:
            columns["enterprise_id"] = self.enterprise_ids[index]
        for reference in kind.references:
            columns[reference.column] = self.ids[index].get(reference.column)
        skipped = {"uscc", *CHILD_FIELDS, *(r.field for r in kind.references)}
        for field in kind.fields:
            if field.name in skipped:
                continue
            name = kind.column(field.name)
            columns[name] = stored(table.c[name], field.name, values[field.name])
        return columns

    async def write(self, head: int, publisher: Publisher) -> tuple[list[Published], int]:
        kind, table, connection = self.kind, self.kind.table, self.connection
        published: list[Published] = []
        changes = [self._change(index) for index in range(len(self.values))]
        created = [i for i, (change, _, _) in enumerate(changes) if change is Change.CREATED]
        new_ids: dict[int, int] = {}
        if created:
            # One statement, then the new ids by source id: RETURNING from an executemany is
            # one statement per row on SQLite.
            await connection.execute(insert(table), [self._columns(i) for i in created])
            source_ids = {self.values[i]["sourceId"]: i for i in created}
            new_ids = {
                source_ids[row.source_id]: row.id
                for row in await connection.execute(
                    select(table.c.id, table.c.source_id).where(
                        table.c.owner == self.owner, table.c.source_id.in_(list(source_ids))
                    )
                )
            }
        versions: list[dict[str, Any]] = []
        rewritten: list[tuple[int, int, Change]] = []
        for index, values in enumerate(self.values):
            change, row, before = changes[index]
            source_id = values["sourceId"]
            if change is Change.UNCHANGED:
                published.append(
                    Published(index, kind.type_name, source_id, row.id, row.version, change,
                              self.usccs[index])
                )  # fmt: skip
                continue
            if change is Change.CREATED:
                record_id, version, changed = new_ids[index], 1, ""
            else:
                record_id, version = row.id, row.version + 1
                changed = " ".join(sorted(k for k in values if values[k] != before.get(k)))
                await connection.execute(
                    update(table)
                    .where(table.c.id == record_id)
                    .values(**self._columns(index), version=version, retracted=False,
                            updated_at=now())
                )  # fmt: skip
            rewritten.append((index, record_id, change))
            head += 1
            versions.append(
                new_version(head, kind.type_name, self.owner, source_id, record_id,
                            self.usccs[index], version, change, values, changed, None, publisher)
            )  # fmt: skip
            published.append(
                Published(index, kind.type_name, source_id, record_id, version, change,
                          self.usccs[index])
            )  # fmt: skip
        await self._write_children(rewritten)
        if versions:
            await connection.execute(insert(VERSION), versions)
        return published, head

    async def _write_children(self, rewritten: list[tuple[int, int, Change]]) -> None:
        children = {
            "participants": (models.InspectionParticipant, "inspection_id"),
            "findings": (models.InspectionFinding, "inspection_id"),
            "assistingDepartments": (models.RectificationAssistant, "rectification_id"),
        }
        for name, (model, parent) in children.items():
            if name not in {field.name for field in self.kind.fields}:
                continue
            table = cast(Table, model.__table__)
            updated = [record_id for _, record_id, change in rewritten if change is Change.UPDATED]
            if updated:
                await self.connection.execute(delete(table).where(table.c[parent].in_(updated)))
            rows = [
                {parent: record_id, **({"department": child} if isinstance(child, str) else child)}
                for index, record_id, _ in rewritten
                for child in self.values[index][name]
            ]
            if rows:
                await self.connection.execute(insert(table), rows)


def stored(column: Any, name: str, value: Any) -> Any:
    """A canonical published value as its column stores it."""
    if value is None:
        return None
    if isinstance(value, list):  # codes: space-separated, as searched
        return " ".join(value)
    if name == "amount":
        return int(Decimal(value) * 100)
    enum_class = getattr(column.type, "enum_class", None)
    if enum_class is not None:
        return enum_class(value)
    if isinstance(value, str) and column.type.python_type is date:
        return date.fromisoformat(value)
    return value
