"""Publishing: a department's records into the hub, a batch at a time, all or nothing.

A batch is one kind of record of one owner. The policy decides whether the publisher may
write the owner's records of that kind (a ``write`` line; by default a department writes
only its own). Each record is keyed by (owner, sourceId): publishing it again unchanged
changes nothing, with changes makes a new version, and every version is kept in
``record_version`` with who published it and when. Retraction is a version too.

Publishers take the feed head first: it serializes them across processes and numbers the
versions, so the change feed (``seq``) is in commit order. A batch with any problem is
rolled back whole and raises InvalidRecords naming every problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import models
from hub.audit import canonical, served
from hub.audit.search import mentions
from hub.conflicts import find_conflicts
from hub.db import writing
from hub.domain import (
    DEPARTMENTS,
    AcceptanceVerdict,
    CreditStatus,
    RectificationStatus,
    RepairStatus,
)
from hub.errors import BadUserInput, Forbidden, InvalidRecords
from hub.policy import Policy
from hub.records import BY_TYPE, CHILD_FIELDS, KINDS, SOURCE_ID, Kind, Problem, parse, today
from hub.values import text

__all__ = [
    "MAX_BATCH",
    "Change",
    "Published",
    "Publisher",
    "lock_feed",
    "publish",
    "readers_of",
    "retract",
]

MAX_BATCH = 1000
RETRACTION_REASON = text(2000, lines=True)
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
VERSION = cast(Table, models.RecordVersion.__table__)


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    RETRACTED = "retracted"
    REPAIRED = "repaired"  # a credit record whose repair was approved
    ACCEPTED = "accepted"  # an order whose acceptance passed (整改闭环)
    REOPENED = "reopened"  # an order whose acceptance failed: back in progress


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who publishes: recorded with every version."""

    client: str
    department: str
    subject: str  # the policy subject (see auth.Principal)
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """What publishing did to one record."""

    index: int  # in the batch
    kind: str  # type name
    source_id: str
    record_id: int | None  # None for a record a dry run would create
    version: int
    change: Change
    uscc: str


def authorize(policy: Policy, publisher: Publisher, kind: Kind, owner: str) -> None:
    if owner not in DEPARTMENT_CODES:
        raise BadUserInput(
            f"unknown owner {owner!r}; one of {', '.join(DEPARTMENT_CODES)}", argument="owner"
        )
    decision = policy.decide_write(publisher.subject, owner, kind.type_name)
    if not decision.allowed:
        raise Forbidden(owner, kind.type_name, decision.reason, writing=True)


async def publish(
    target: AsyncEngine | AsyncConnection,
    policy: Policy,
    publisher: Publisher,
    kind: Kind,
    owner: str,
    records: Sequence[Any],
    *,
    dry_run: bool = False,
    on: date | None = None,
) -> list[Published]:
    """Publish ``records`` of ``owner`` (up to MAX_BATCH), all or none: in a transaction of
    its own for an engine, in a savepoint of the caller's transaction for a connection.

    ``dry_run`` does everything and reports it, then rolls it back: nothing is written (new
    records have no id yet). ``on`` is the day dates are checked against (today in China by
    default).
    """
    authorize(policy, publisher, kind, owner)
    if len(records) > MAX_BATCH:
        raise BadUserInput(
            f"{len(records)} records in one batch; publish at most {MAX_BATCH} at a time",
            argument="records",
        )
    day = on or today()
    values: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for index, record in enumerate(records):
        parsed, found = parse(kind, index, record, day)
        values.append(parsed)
        problems += found
        for code in parsed.get("requirementCodes") or ():
            if code not in policy.requirements:
                problems.append(Problem(
                    index, parsed.get("sourceId"), "requirementCodes",
                    f"unknown requirement code {code!r}; policies/requirements.csv lists them "
                    f"({', '.join(sorted(policy.requirements)) or 'none yet'})",
                ))  # fmt: skip
    async with writing(target) as transaction:
        connection = transaction.connection
        head = await lock_feed(connection)
        batch = _Batch(connection, kind, owner, values, problems)
        await batch.resolve()
        if problems:
            raise InvalidRecords(sorted(problems, key=lambda p: p.index), len(records))
        published, head = await batch.write(head, publisher)
        if kind.type_name == "CreditRepair":
            repaired, head = await _repair_credit(connection, batch, published, head, publisher)
            published += repaired
        elif kind.type_name == "Acceptance":
            followed, head = await _follow_acceptance(connection, batch, published, head,
                                                      publisher)  # fmt: skip
            published += followed
        if kind.type_name in ("Rectification", "Acceptance"):  # orders opened or closed
            await find_conflicts(connection, policy.conflicts, set(batch.enterprise_ids))
        await _advance_feed(connection, head)
        if dry_run:  # everything a real publish does, then undone
            await transaction.rollback()
            return [
                replace(result, record_id=None) if result.change is Change.CREATED else result
                for result in published
            ]
    return published


async def retract(
    target: AsyncEngine | AsyncConnection,
    policy: Policy,
    publisher: Publisher,
    kind: Kind,
    owner: str,
    source_ids: Sequence[str],
    reason: str,
) -> list[Published]:
    """Withdraw records: a new version marked retracted, with the reason; nothing deleted.
    All or none, as ``publish``."""
    authorize(policy, publisher, kind, owner)
    if len(source_ids) > MAX_BATCH:
        raise BadUserInput(
            f"{len(source_ids)} records in one call; retract at most {MAX_BATCH} at a time",
            argument="sourceIds",
        )
    if not reason.strip():
        raise BadUserInput("say why the records are retracted", argument="reason")
    try:
        reason = RETRACTION_REASON(reason)
    except ValueError as error:
        raise BadUserInput(f"the reason {error}", argument="reason") from None
    malformed = []
    for index, source_id in enumerate(source_ids):
        try:
            SOURCE_ID.parse(source_id)
        except ValueError as error:
            malformed.append(Problem(index, None, "sourceId", str(error)))
    if malformed:
        raise InvalidRecords(malformed, len(source_ids))
    table = kind.table
    async with writing(target) as transaction:
        connection = transaction.connection
        head = await lock_feed(connection)
        current = await _current(connection, kind, owner, source_ids)
        missing = [
            Problem(index, source_id, "sourceId", f"{owner} has no {kind.type_name} {source_id!r}")
            for index, source_id in enumerate(source_ids)
            if source_id not in current
        ]
        if missing:
            raise InvalidRecords(missing, len(source_ids))
        published, versions = [], []
        done: dict[str, Published] = {}
        for index, source_id in enumerate(source_ids):
            row = current[source_id]
            if row.retracted or source_id in done:
                version = done[source_id].version if source_id in done else row.version
                published.append(
                    Published(index, kind.type_name, source_id, row.id, version,
                              Change.UNCHANGED, row.uscc)
                )  # fmt: skip
                continue
            head += 1
            version = row.version + 1
            await connection.execute(
                update(table)
                .where(table.c.id == row.id)
                .values(retracted=True, version=version, updated_at=_now())
            )
            versions.append(
                _version(head, kind, owner, source_id, row.id, row.uscc, version, Change.RETRACTED,
                         json.loads(row.data or "{}"), "", reason.strip(), publisher)
            )  # fmt: skip
            done[source_id] = Published(
                index, kind.type_name, source_id, row.id, version, Change.RETRACTED, row.uscc
            )
            published.append(done[source_id])
        if versions:
            await connection.execute(insert(VERSION), versions)
            await _advance_feed(connection, head)
    return published


def _now() -> datetime:
    return datetime.now(UTC)


async def lock_feed(connection: AsyncConnection) -> int:
    """Take the feed head (held until commit): publishers run one at a time, in every process."""
    head = cast(Table, models.FeedHead.__table__)
    await connection.execute(update(head).where(head.c.id == 1).values(seq=head.c.seq))
    seq: int = (await connection.execute(select(head.c.seq).where(head.c.id == 1))).scalar_one()
    return seq


async def _advance_feed(connection: AsyncConnection, seq: int) -> None:
    head = cast(Table, models.FeedHead.__table__)
    await connection.execute(update(head).where(head.c.id == 1).values(seq=seq))


def _version(
    seq: int,
    kind: Kind,
    owner: str,
    source_id: str,
    record_id: int,
    uscc: str,
    version: int,
    change: Change,
    data: Mapping[str, Any],
    changed: str,
    reason: str | None,
    publisher: Publisher,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": kind.type_name,
        "record_id": record_id,
        "owner": owner,
        "source_id": source_id,
        "uscc": uscc,
        "version": version,
        "change": change.value,
        "data": canonical(data).decode(),
        "changed": changed,
        "reason": reason,
        "published_at": _now(),
        "publisher": publisher.department,
        "client": publisher.client,
        "trace_id": publisher.trace_id,
    }


async def _current(
    connection: AsyncConnection, kind: Kind, owner: str, source_ids: Iterable[str]
) -> dict[str, Any]:
    """The stored records of ``owner`` with these source ids: id, version, data, uscc..."""
    table = kind.table
    enterprise = models.Enterprise.__table__
    parent = _enterprise_column(kind)
    columns = [table.c.id, table.c.source_id, table.c.version, table.c.retracted, VERSION.c.data]
    statement = (
        select(*columns, enterprise.c.uscc)
        .select_from(table)
        .join(enterprise, enterprise.c.id == parent)
        .outerjoin(VERSION, _is_current_version(kind))
        .where(table.c.owner == owner, table.c.source_id.in_(set(source_ids)))
    )
    if kind.type_name == "CreditRepair":
        statement = statement.add_columns(table.c.status, table.c.credit_record_id)
    return {row.source_id: row for row in (await connection.execute(statement)).all()}


def _is_current_version(kind: Kind) -> Any:
    """Joins a record of ``kind`` to its current version (whose data it holds)."""
    table = kind.table
    return and_(
        VERSION.c.kind == kind.type_name,
        VERSION.c.record_id == table.c.id,
        VERSION.c.version == table.c.version,
    )


def _enterprise_column(kind: Kind) -> Any:
    """The column that leads from a record of ``kind`` to its enterprise's id."""
    table = kind.table
    if "enterprise_id" in table.c:
        return table.c.enterprise_id
    # Acceptances and credit repairs belong to the enterprise of the record they are about.
    reference = kind.references[0]
    target = BY_TYPE[reference.kind].table
    return (
        select(target.c.enterprise_id)
        .where(target.c.id == table.c[reference.column])
        .scalar_subquery()
    )


class _Batch:
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
        self.current = await _current(self.connection, kind, owner, seen)

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
            columns[name] = _stored(table.c[name], field.name, values[field.name])
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
                            updated_at=_now())
                )  # fmt: skip
            rewritten.append((index, record_id, change))
            head += 1
            versions.append(
                _version(head, kind, self.owner, source_id, record_id, self.usccs[index], version,
                         change, values, changed, None, publisher)
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


def _stored(column: Any, name: str, value: Any) -> Any:
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


async def readers_of(connection: AsyncConnection, kind: str, record_id: int, uscc: str,
                     owner: str) -> list[str]:  # fmt: skip
    """Departments other than ``owner`` that were served this record, from the access log."""
    access = models.AccessRecord.__table__
    rows = await connection.execute(
        select(access.c.department, access.c.enterprises, access.c.served).where(
            mentions(access.c.enterprises, uscc),
            or_(access.c.fields.like(f"% {kind}.%"), access.c.fields.like(f"% {uscc}:{kind}.%")),
            access.c.department != owner,
        )
    )
    readers = set()
    for row in rows:
        for group in served.groups(row._mapping):
            if (group["enterprise"], group["type"]) == (uscc, kind) and str(record_id) in group[
                "ids"
            ]:
                readers.add(row.department)
                break
    return sorted(readers)


async def _repair_credit(
    connection: AsyncConnection,
    batch: _Batch,
    published: list[Published],
    head: int,
    publisher: Publisher,
) -> tuple[list[Published], int]:
    """Approved repairs mark their credit records repaired, for every reader at once, and
    tell each department that read the old record."""
    credit = KINDS["creditRecords"]
    table = credit.table
    repaired: list[Published] = []
    for result in published:
        values = batch.values[result.index]
        before = batch.current.get(result.source_id)
        newly = values["status"] == RepairStatus.APPROVED.value and (
            before is None or before.status != RepairStatus.APPROVED
        )
        if result.change is Change.UNCHANGED or not newly:
            continue
        record_id = batch.ids[result.index]["credit_record_id"]
        row = (
            await connection.execute(
                select(table.c.source_id, table.c.version, table.c.status, VERSION.c.data)
                .outerjoin(VERSION, _is_current_version(credit))
                .where(table.c.id == record_id)
            )
        ).one()
        if row.status == CreditStatus.REPAIRED:
            continue
        version = row.version + 1
        await connection.execute(
            update(table)
            .where(table.c.id == record_id)
            .values(status=CreditStatus.REPAIRED, version=version, updated_at=_now())
        )
        data = {**(json.loads(row.data) if row.data else {}), "status": CreditStatus.REPAIRED.value}
        reason = f"credit repair {result.source_id} approved on {values['decidedOn']}"
        head += 1
        await connection.execute(
            insert(VERSION),
            [_version(head, credit, batch.owner, row.source_id, record_id, result.uscc, version,
                      Change.REPAIRED, data, "status", reason, publisher)],
        )  # fmt: skip
        readers = await readers_of(
            connection, credit.type_name, record_id, result.uscc, batch.owner
        )
        if readers:
            await connection.execute(
                insert(models.Notification),
                [
                    {
                        "department": department,
                        "topic": "credit_repaired",
                        "kind": credit.type_name,
                        "record_id": record_id,
                        "owner": batch.owner,
                        "source_id": row.source_id,
                        "uscc": result.uscc,
                        "version": version,
                        "message": (
                            f"{batch.owner}'s credit record {row.source_id} of enterprise "
                            f"{result.uscc}, which your systems read, was repaired ({reason}); "
                            "its status is now repaired: correct any copy you keep"
                        ),
                        "created_at": _now(),
                    }
                    for department in readers
                ],
            )
        repaired.append(
            Published(result.index, credit.type_name, row.source_id, record_id, version,
                      Change.REPAIRED, result.uscc)
        )  # fmt: skip
    return repaired, head


# What an acceptance's verdict makes of the order it accepts (整改闭环).
FOLLOWS = {
    AcceptanceVerdict.PASSED.value: RectificationStatus.ACCEPTED,
    AcceptanceVerdict.FAILED.value: RectificationStatus.IN_PROGRESS,
}


async def _follow_acceptance(
    connection: AsyncConnection,
    batch: _Batch,
    published: list[Published],
    head: int,
    publisher: Publisher,
) -> tuple[list[Published], int]:
    """Close the loop: a passed acceptance makes its order accepted, a failed one puts it
    back in progress (the acceptance's opinion says what is missing), each a new version of
    the order in the change feed, as if its owner had published it."""
    kind = KINDS["rectifications"]
    table = kind.table
    followed: list[Published] = []
    for result in published:
        if result.change is Change.UNCHANGED:
            continue
        values = batch.values[result.index]
        status = FOLLOWS[values["verdict"]]
        record_id = batch.ids[result.index]["rectification_id"]
        row = (
            await connection.execute(
                select(table.c.source_id, table.c.version, table.c.status, VERSION.c.data)
                .outerjoin(VERSION, _is_current_version(kind))
                .where(table.c.id == record_id)
            )
        ).one()
        if row.status == status:
            continue
        version = row.version + 1
        await connection.execute(
            update(table)
            .where(table.c.id == record_id)
            .values(status=status, version=version, updated_at=_now())
        )
        data = {**(json.loads(row.data) if row.data else {}), "status": status.value}
        accepted = status is RectificationStatus.ACCEPTED
        change = Change.ACCEPTED if accepted else Change.REOPENED
        reason = (
            f"acceptance {result.source_id} {values['verdict']} on {values['acceptedOn']}"
            + ("" if accepted else
               ": back in progress; the acceptance's opinion says what is missing")
        )  # fmt: skip
        head += 1
        await connection.execute(
            insert(VERSION),
            [_version(head, kind, batch.owner, row.source_id, record_id, result.uscc, version,
                      change, data, "status", reason, publisher)],
        )  # fmt: skip
        followed.append(
            Published(result.index, kind.type_name, row.source_id, record_id, version, change,
                      result.uscc)
        )  # fmt: skip
    return followed, head
