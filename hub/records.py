"""The published form of each kind of record: its fields, their checks, its canonical data.

A department publishes records as JSON-like mappings named as in GraphQL (``sourceId``,
``acceptedOn``, ``rectificationSourceId``...), from a GraphQL mutation or an import file.
``parse`` turns one into canonical values (plain JSON: ISO days, enumeration values,
amounts as decimal text) or the problems that make it unusable, each naming its field.
The values of single fields are parsed in values.py; here are the checks that need the day
(a day is plausible from EARLIEST_DAY on, up to today for what happened and up to
YEARS_AHEAD years ahead for deadlines and expiries; a planned month from last month, so
that a plan carried out late last month can still be marked done, up to MONTHS_AHEAD
months ahead) and the other fields of the record.
Checks that need the database (enterprises, references) live in hub/publishing/batch.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from hub import models
from hub.domain import (
    AcceptanceVerdict,
    CreditKind,
    CreditStatus,
    InspectionKind,
    InspectionResult,
    PenaltyStatus,
    PlanStatus,
    RectificationStatus,
    RepairStatus,
)
from hub.values import (
    Parser,
    amount,
    choice,
    codes,
    day,
    department,
    departments,
    findings,
    flag,
    identifier,
    month,
    named,
    shown,
    text,
    uscc,
)

__all__ = [
    "ACTION_CODE",
    "EARLIEST_DAY",
    "KINDS",
    "MONTHS_AHEAD",
    "YEARS_AHEAD",
    "Field",
    "Kind",
    "Problem",
    "Reference",
    "first_versions",
    "latest_day",
    "month_of",
    "months_after",
    "parse",
    "record_source_id",
    "today",
]

# China keeps one time zone and no daylight saving: "today" is the day in Beijing.
CHINA = timezone(timedelta(hours=8), "CST")
# No record of today's enterprise supervision is older: the Administrative Penalty Law dates
# from 1996, unified social credit codes from 2015 (older records were re-keyed to them).
# Earlier days are placeholders for an unknown day (0001-01-01, 1900-01-01, Excel's
# 1899-12-30) or slips of the keyboard (0206 for 2026), never real ones.
EARLIEST_DAY = date(1990, 1, 1)
# Days ahead of today (rectification deadlines, credit-record expiries) run months or a few
# years out; a day further ahead than this is a typo (2206 for 2026).
YEARS_AHEAD = 10
# Departments plan inspections for the year ahead at most (年度检查计划); a month further
# out is a typo (2072 for 2027).
MONTHS_AHEAD = 12


def today() -> date:
    return datetime.now(CHINA).date()


def month_of(day: date) -> str:
    """The month of ``day`` as published: YYYY-MM."""
    return f"{day.year:04d}-{day.month:02d}"


def months_after(month: str, months: int) -> str:
    """The month ``months`` after ``month`` (before it, when negative), both YYYY-MM."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one record of a batch cannot be published."""

    index: int  # in the batch, from 0; importers add the line number
    source_id: str | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "sourceId": self.source_id,
            "field": self.field,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"records[{self.index}]"
        if self.source_id:
            where += f" (sourceId {self.source_id})"
        return f"{where} {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # as published, e.g. acceptedOn
    parse: Parser
    required: bool = True
    default: Any = None
    past: bool = False  # a day that cannot be after today


@dataclass(frozen=True, slots=True)
class Reference:
    """A field naming another record of the same owner by its source id."""

    field: str  # e.g. rectificationSourceId
    kind: str  # the referenced kind's type name, e.g. Rectification
    column: str  # where its hub id goes, e.g. rectification_id
    # (day field here, day column there): this record's day cannot be before that one's.
    after: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # plural, as in `hub import --kind` and the mutations: acceptances
    type_name: str  # GraphQL type and policy object: Acceptance
    model: type[models.Record]
    fields: tuple[Field, ...]
    references: tuple[Reference, ...] = ()
    # Columns whose published name differs (the rest are the names in snake case).
    columns: Mapping[str, str] | None = None
    # The reference through which the record belongs to an enterprise, when it has no uscc.
    via: str | None = None
    check: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None

    @property
    def table(self) -> Any:
        return self.model.__table__  # type: ignore[attr-defined]

    def column(self, name: str) -> str:
        if self.columns and name in self.columns:
            return self.columns[name]
        return snake_case(name)


@lru_cache(maxsize=256)
def snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


SOURCE_ID = Field("sourceId", identifier(64))
# 行政行为码: registered to one inspection (hub/publishing/codes.py), looked up by it.
ACTION_CODE = Field("actionCode", identifier(32))


def _order(
    later: str, earlier: str, what: str
) -> Callable[[dict[str, Any]], list[tuple[str, str]]]:
    def check(values: dict[str, Any]) -> list[tuple[str, str]]:
        if values.get(later) and values.get(earlier) and values[later] < values[earlier]:
            return [(later, f"{values[later]} is before {what} {values[earlier]}")]
        return []

    return check


def _credit_repair(values: dict[str, Any]) -> list[tuple[str, str]]:
    problems = _order("decidedOn", "appliedOn", "the application day")(values)
    pending = values.get("status") == RepairStatus.PENDING.value
    if pending and values.get("decidedOn"):
        problems.append(("decidedOn", "a pending repair has no decision day yet; leave it out"))
    if values.get("status") and not pending and not values.get("decidedOn"):
        article = "an" if values["status"][0] in "aeiou" else "a"
        problems.append(
            ("decidedOn", f"{article} {values['status']} repair needs its decision day")
        )
    return problems


def _penalty(values: dict[str, Any]) -> list[tuple[str, str]]:
    exempt = values.get("minorFirstOffenceExempt")
    if exempt and values.get("amount") not in (None, "0.00"):
        return [("amount", "an exempted minor first offence (轻微不罚) carries no fine; use 0")]
    if exempt and values.get("status") not in (None, PenaltyStatus.EXEMPT.value):
        return [("status", "an exempted minor first offence (首违不罚) is no penalty: its "
                           "status is exempt")]  # fmt: skip
    if values.get("status") == PenaltyStatus.EXEMPT.value and not exempt:
        return [("minorFirstOffenceExempt", "status exempt is for exempted minor first "
                                            "offences: set minorFirstOffenceExempt")]  # fmt: skip
    return []


def _rectification(values: dict[str, Any]) -> list[tuple[str, str]]:
    problems = _order("deadline", "orderedOn", "the order day")(values)
    if not values.get("inspectionSourceId") and not values.get("penaltySourceId"):
        problems.append((
            "inspectionSourceId",
            "a rectification follows an inspection or a penalty: give inspectionSourceId, "
            "penaltySourceId or both",
        ))  # fmt: skip
    return problems


def _plan(values: dict[str, Any]) -> list[tuple[str, str]]:
    if values.get("inspectionSourceId") and values.get("status") != PlanStatus.DONE.value:
        return [("inspectionSourceId", "names the inspection that carried the plan out: only "
                                       "a plan whose status is done has one")]  # fmt: skip
    return []


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "inspections",
            "Inspection",
            models.Inspection,
            (
                SOURCE_ID,
                Field("uscc", uscc),
                ACTION_CODE,
                Field("kind", choice(InspectionKind)),
                Field("inspectedOn", day, past=True),
                Field("result", choice(InspectionResult)),
                Field("participants", departments, required=False, default=[]),
                Field("findings", findings, required=False, default=[]),
            ),
        ),
        Kind(
            "penalties",
            "Penalty",
            models.Penalty,
            (
                SOURCE_ID,
                Field("uscc", uscc),
                Field("inspectionSourceId", identifier(64), required=False),
                Field("caseNumber", text(64)),
                Field("violation", text(2000, lines=True)),
                Field("legalBasis", text(2000, lines=True)),
                Field("amount", amount),
                Field("decidedOn", day, past=True),
                Field("status", choice(PenaltyStatus)),
                Field("minorFirstOffenceExempt", flag, required=False, default=False),
                Field("decisionIssued", flag, required=False, default=False),
                Field("complianceSuggestionIssued", flag, required=False, default=False),
                Field("creditRepairNoticeIssued", flag, required=False, default=False),
                Field("transferredTo", department, required=False),
            ),
            references=(
                Reference(
                    "inspectionSourceId",
                    "Inspection",
                    "inspection_id",
                    after=("decidedOn", "inspected_on"),
                ),
            ),
            columns={"amount": "amount_fen"},
            check=_penalty,
        ),
        Kind(
            "rectifications",
            "Rectification",
            models.Rectification,
            (
                SOURCE_ID,
                Field("uscc", uscc),
                Field("inspectionSourceId", identifier(64), required=False),
                Field("penaltySourceId", identifier(64), required=False),
                Field("requirement", text(4000, lines=True)),
                Field("requirementCodes", codes, required=False, default=[]),
                Field("orderedOn", day, past=True),
                Field("deadline", day),
                Field("status", choice(RectificationStatus)),
                Field("assistingDepartments", departments, required=False, default=[]),
            ),
            references=(
                Reference(
                    "inspectionSourceId",
                    "Inspection",
                    "inspection_id",
                    after=("orderedOn", "inspected_on"),
                ),
                # An order to rectify often goes out at the inspection, before the penalty
                # is decided: no order of days between them.
                Reference("penaltySourceId", "Penalty", "penalty_id"),
            ),
            check=_rectification,
        ),
        Kind(
            "acceptances",
            "Acceptance",
            models.Acceptance,
            (
                SOURCE_ID,
                Field("rectificationSourceId", identifier(64)),
                Field("acceptedOn", day, past=True),
                Field("verdict", choice(AcceptanceVerdict)),
                Field("opinion", text(4000, lines=True)),
            ),
            references=(
                Reference(
                    "rectificationSourceId",
                    "Rectification",
                    "rectification_id",
                    after=("acceptedOn", "ordered_on"),
                ),
            ),
            via="rectificationSourceId",
        ),
        Kind(
            "creditRecords",
            "CreditRecord",
            models.CreditRecord,
            (
                SOURCE_ID,
                Field("uscc", uscc),
                Field("kind", choice(CreditKind)),
                Field("level", text(32)),
                Field("reason", text(2000, lines=True)),
                Field("issuedOn", day, past=True),
                Field("expiresOn", day, required=False),
                Field("status", choice(CreditStatus)),
            ),
            check=_order("expiresOn", "issuedOn", "the issue day"),
        ),
        Kind(
            "creditRepairs",
            "CreditRepair",
            models.CreditRepair,
            (
                SOURCE_ID,
                Field("creditRecordSourceId", identifier(64)),
                Field("appliedOn", day, past=True),
                Field("decidedOn", day, required=False, past=True),
                Field("status", choice(RepairStatus)),
                Field("opinion", text(4000, lines=True), required=False),
            ),
            references=(
                Reference(
                    "creditRecordSourceId",
                    "CreditRecord",
                    "credit_record_id",
                    after=("appliedOn", "issued_on"),
                ),
            ),
            via="creditRecordSourceId",
            check=_credit_repair,
        ),
        Kind(
            "inspectionPlans",
            "InspectionPlan",
            models.InspectionPlan,
            (
                SOURCE_ID,
                Field("uscc", uscc),
                Field("month", month),
                Field("subject", text(100)),
                Field("kind", choice(InspectionKind)),
                Field("status", choice(PlanStatus)),
                Field("inspectionSourceId", identifier(64), required=False),
            ),
            references=(Reference("inspectionSourceId", "Inspection", "inspection_id"),),
            check=_plan,
        ),
    )
}
BY_TYPE = {kind.type_name: kind for kind in KINDS.values()}
# Children stored in tables of their own, by published field.
CHILD_FIELDS = ("participants", "findings", "assistingDepartments")


def parse(kind: Kind, index: int, record: Any, today: date) -> tuple[dict[str, Any], list[Problem]]:
    """Canonical values of one published record, or the problems with it (all of them).

    Whatever ``record`` holds, this returns: a value that cannot be used is a problem."""
    if not isinstance(record, Mapping):
        return {}, [Problem(index, None, None, "a record must be an object of fields")]
    source_id = record_source_id(record)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    known = {field.name for field in kind.fields}
    for name in sorted(set(record) - known, key=shown):
        problems.append(
            Problem(
                index, source_id, named(name),
                f"{kind.type_name} has no field {shown(name)}; its fields: "
                f"{', '.join(sorted(known))}",
            )
        )  # fmt: skip
    for field in kind.fields:
        value = record.get(field.name)
        if value is None or (isinstance(value, str) and not value):
            if field.required:
                problems.append(Problem(index, source_id, field.name, "is required"))
            values[field.name] = copy(field.default)  # never one list shared by records
            continue
        try:
            values[field.name] = field.parse(value)
        except ValueError as error:
            problems.append(Problem(index, source_id, field.name, str(error)))
            continue
        if field.parse in (day, month) and (
            problem := _implausible(values[field.name], field, today)
        ):
            problems.append(Problem(index, source_id, field.name, problem))
    if not problems and kind.check is not None:
        problems += [Problem(index, source_id, n, m) for n, m in kind.check(values)]
    return values, problems


def record_source_id(record: Mapping[str, Any]) -> str | None:
    """The record's sourceId, to name it by in problems, when it is a usable one."""
    try:
        source_id: str = SOURCE_ID.parse(record.get("sourceId"))
    except ValueError:
        return None
    return source_id


def latest_day(today: date) -> date:
    """The last day a record may carry: YEARS_AHEAD years after ``today``."""
    try:
        return today.replace(year=today.year + YEARS_AHEAD)
    except ValueError:  # 29 February, in a year that has none
        return today.replace(year=today.year + YEARS_AHEAD, day=28)


@lru_cache(maxsize=8)
def _days(today: date) -> tuple[str, str, str]:
    """The earliest day, today and the latest day, as ISO text (as parsed days are)."""
    return EARLIEST_DAY.isoformat(), today.isoformat(), latest_day(today).isoformat()


def _implausible(iso_day: str, field: Field, today: date) -> str | None:
    if field.parse is month:
        return _implausible_month(iso_day, today)
    earliest, now, latest = _days(today)
    if iso_day < earliest:
        return f"{iso_day} is before {earliest}, the earliest day the hub accepts"
    if field.past and iso_day > now:
        return f"{iso_day} is in the future"
    if iso_day > latest:
        return f"{iso_day} is more than {YEARS_AHEAD} years ahead (after {latest})"
    return None


def _implausible_month(planned: str, today: date) -> str | None:
    now = month_of(today)
    earliest, latest = months_after(now, -1), months_after(now, MONTHS_AHEAD)
    if planned < earliest:
        return (f"{planned} is past: plans are published from last month ({earliest}) on; "
                "retract a plan that was never carried out")  # fmt: skip
    if planned > latest:
        return f"{planned} is more than {MONTHS_AHEAD} months ahead (after {latest})"
    return None


StoredRows = Mapping[str, Sequence[Mapping[str, Any]]]


def first_versions(rows: StoredRows, seq: int, client: str) -> list[dict[str, Any]]:
    """Version 1 (record_version rows from ``seq`` + 1) of every record in ``rows``, with its
    data exactly as ``parse`` gives it had its owner published it: republished, it is
    unchanged. ``rows`` holds stored rows by table name, with every record's enterprise and
    the records and children it refers to (demo batches; migration 0004 backfills)."""
    usccs = {row["id"]: row["uscc"] for row in rows["enterprise"]}
    children: defaultdict[tuple[str, int], list[Any]] = defaultdict(list)
    for table_name, parent, published_as in (
        ("inspection_participant", "inspection_id", "participants"),
        ("inspection_finding", "inspection_id", "findings"),
        ("rectification_assistant", "rectification_id", "assistingDepartments"),
    ):
        for row in sorted(rows[table_name], key=lambda row: row.get("id") or 0):
            child = row.get("department") or {k: row[k] for k in ("category", "description")}
            children[published_as, row[parent]].append(child)
    # Kinds whose table a caller did not read have none (migration 0004 predates plans).
    stored = {kind.type_name: {row["id"]: row for row in rows.get(kind.table.name, ())}
              for kind in KINDS.values()}  # fmt: skip
    now = datetime.now(UTC)
    versions = []
    for kind in KINDS.values():
        references = {reference.field: reference for reference in kind.references}
        for row in stored[kind.type_name].values():
            data: dict[str, Any] = {}
            for field in kind.fields:
                name = field.name
                if name == "uscc":
                    value: Any = usccs[row["enterprise_id"]]
                elif name in references:
                    target = row[references[name].column]
                    reference = references[name]
                    value = None if target is None else stored[reference.kind][target]["source_id"]
                elif name in ("participants", "assistingDepartments"):
                    value = sorted(children[name, row["id"]])
                elif name == "requirementCodes":
                    value = sorted((row.get("requirement_codes") or "").split())
                elif name == "findings":
                    value = children[name, row["id"]]
                elif name == "amount":
                    value = amount(Decimal(row["amount_fen"]).scaleb(-2))
                else:
                    value = row.get(kind.column(name))
                    value = field.default if value is None else field.parse(value)
                data[name] = value
            if kind.via:
                via = references[kind.via]
                about = stored[via.kind][row[via.column]]
                uscc = usccs[about["enterprise_id"]]
            else:
                uscc = data["uscc"]
            seq += 1
            versions.append({
                "seq": seq, "kind": kind.type_name, "record_id": row["id"], "owner": row["owner"],
                "source_id": row["source_id"], "uscc": uscc, "version": 1, "change": "created",
                "data": json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
                "changed": "", "reason": None, "published_at": now, "publisher": row["owner"],
                "client": client, "trace_id": None,
            })  # fmt: skip
    return versions
