"""The published form of each kind of record: its fields, their checks, its canonical data.

A department publishes records as JSON-like mappings named as in GraphQL (``sourceId``,
``acceptedOn``, ``rectificationSourceId``...), from a GraphQL mutation or an import file.
``parse`` turns one into canonical values (plain JSON: ISO days, enumeration values,
amounts as decimal text) or the problems that make it unusable, each naming its field.
Checks that need the database (enterprises, references) live in publishing.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any

from hub import models
from hub.domain import (
    DEPARTMENTS,
    AcceptanceVerdict,
    CreditKind,
    CreditStatus,
    InspectionKind,
    InspectionResult,
    PenaltyStatus,
    RectificationStatus,
    RepairStatus,
)
from hub.errors import InvalidUSCC
from hub.uscc import parse_uscc

__all__ = [
    "KINDS",
    "Field",
    "Kind",
    "Problem",
    "Reference",
    "first_versions",
    "parse",
    "today",
]

# China keeps one time zone and no daylight saving: "today" is the day in Beijing.
CHINA = timezone(timedelta(hours=8), "CST")
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
MAX_AMOUNT = Decimal("1e12")  # yuan; far beyond any fine, far within BIGINT fen


def today() -> date:
    return datetime.now(CHINA).date()


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


# A parser takes what a publisher sent and returns the canonical value, or raises ValueError
# whose message says what is wrong with it.
Parser = Callable[[Any], Any]


def text(limit: int) -> Parser:
    def parse_text(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, not {type(value).__name__}")
        stripped: str = value.strip()
        if not stripped:
            raise ValueError("must not be empty")
        if len(stripped) > limit:
            raise ValueError(f"must be at most {limit} characters, not {len(stripped)}")
        return stripped

    return parse_text


def choice(vocabulary: type[StrEnum]) -> Parser:
    # GraphQL sends members; files send values (passed) or GraphQL names (PASSED).
    accepted = {member.value: member.value for member in vocabulary}
    accepted |= {member.name: member.value for member in vocabulary}

    def parse_choice(value: Any) -> str:
        if isinstance(value, vocabulary):
            return str(value.value)
        if isinstance(value, str) and value.strip() in accepted:
            return accepted[value.strip()]
        raise ValueError(
            f"{value!r} is not one of {', '.join(member.value for member in vocabulary)}"
        )

    return parse_choice


def day(value: Any) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a day; write it as YYYY-MM-DD")


def amount(value: Any) -> str:
    """Yuan, to the fen: canonical as decimal text with two places."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{value!r} is not an amount in yuan")
    try:
        yuan = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount in yuan, e.g. 5000 or 1234.50") from None
    if not yuan.is_finite():
        raise ValueError(f"{value!r} is not an amount in yuan")
    if yuan < 0:
        raise ValueError(f"must not be negative, not {yuan}")
    # Before quantizing, which cannot hold a number as large as 1e999999.
    if yuan >= MAX_AMOUNT:
        raise ValueError(f"{yuan} is larger than any fine the hub accepts")
    if yuan != yuan.quantize(Decimal("0.01")):
        raise ValueError(f"{yuan} has more than two decimal places; amounts are to the fen")
    if yuan == 0:
        yuan = Decimal(0)  # not -0
    return str(yuan.quantize(Decimal("0.01")))


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and isinstance(value, int):  # as SQLite stores them
        return bool(value)
    words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ValueError(f"{value!r} is not true or false")


def departments(value: Any) -> list[str]:
    """Department codes, as a list or (from CSV) separated by semicolons."""
    if isinstance(value, str):
        value = [code for code in value.split(";") if code.strip()]
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValueError("must be a list of department codes")
    codes = sorted({code.strip() for code in value})
    unknown = [code for code in codes if code not in DEPARTMENT_CODES]
    if unknown:
        raise ValueError(
            f"unknown department {', '.join(map(repr, unknown))}; one of "
            f"{', '.join(DEPARTMENT_CODES)}"
        )
    return codes


def findings(value: Any) -> list[dict[str, str]]:
    """Problems found, each {category, description}; from CSV as a JSON array."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            raise ValueError('must be a JSON array of {"category", "description"}') from None
    if not isinstance(value, list):
        raise ValueError('must be a list of {"category", "description"}')
    parsed = []
    for position, finding in enumerate(value):
        if not isinstance(finding, Mapping) or set(finding) != {"category", "description"}:
            raise ValueError(f'finding {position} must have exactly "category" and "description"')
        try:
            parsed.append({
                "category": text(64)(finding["category"]),
                "description": text(2000)(finding["description"]),
            })  # fmt: skip
        except ValueError as error:
            raise ValueError(f"finding {position}: {error}") from None
    return parsed


def uscc(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an 18-character unified social credit code")
    try:
        return parse_uscc(value)
    except InvalidUSCC as error:
        raise ValueError(
            f"{value!r} is not a valid unified social credit code: {error.problem}"
        ) from None


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


SOURCE_ID = Field("sourceId", text(64))


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
    if values.get("minorFirstOffenceExempt") and values.get("amount") not in (None, "0.00"):
        return [("amount", "an exempted minor first offence (轻微不罚) carries no fine; use 0")]
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
                Field("actionCode", text(32)),
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
                Field("inspectionSourceId", text(64), required=False),
                Field("caseNumber", text(64)),
                Field("violation", text(2000)),
                Field("legalBasis", text(2000)),
                Field("amount", amount),
                Field("decidedOn", day, past=True),
                Field("status", choice(PenaltyStatus)),
                Field("minorFirstOffenceExempt", flag, required=False, default=False),
                Field("decisionIssued", flag, required=False, default=False),
                Field("complianceSuggestionIssued", flag, required=False, default=False),
                Field("creditRepairNoticeIssued", flag, required=False, default=False),
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
                Field("inspectionSourceId", text(64), required=False),
                Field("penaltySourceId", text(64), required=False),
                Field("requirement", text(4000)),
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
                Field("rectificationSourceId", text(64)),
                Field("acceptedOn", day, past=True),
                Field("verdict", choice(AcceptanceVerdict)),
                Field("opinion", text(4000)),
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
                Field("reason", text(2000)),
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
                Field("creditRecordSourceId", text(64)),
                Field("appliedOn", day, past=True),
                Field("decidedOn", day, required=False, past=True),
                Field("status", choice(RepairStatus)),
                Field("opinion", text(4000), required=False),
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
    )
}
BY_TYPE = {kind.type_name: kind for kind in KINDS.values()}
# Children stored in tables of their own, by published field.
CHILD_FIELDS = ("participants", "findings", "assistingDepartments")


def parse(kind: Kind, index: int, record: Any, today: date) -> tuple[dict[str, Any], list[Problem]]:
    """Canonical values of one published record, or the problems with it (all of them)."""
    if not isinstance(record, Mapping):
        return {}, [Problem(index, None, None, "a record must be an object of fields")]
    raw_id = record.get("sourceId")
    source_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else None
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    known = {field.name for field in kind.fields}
    for name in sorted(set(record) - known):
        problems.append(
            Problem(
                index, source_id, name,
                f"{kind.type_name} has no field {name!r}; its fields: {', '.join(sorted(known))}",
            )
        )  # fmt: skip
    for field in kind.fields:
        value = record.get(field.name)
        if value is None or value == "":
            if field.required:
                problems.append(Problem(index, source_id, field.name, "is required"))
            values[field.name] = copy(field.default)  # never one list shared by records
            continue
        try:
            values[field.name] = field.parse(value)
        except ValueError as error:
            problems.append(Problem(index, source_id, field.name, str(error)))
            continue
        if field.past and values[field.name] > today.isoformat():
            problems.append(
                Problem(index, source_id, field.name, f"{values[field.name]} is in the future")
            )
    if not problems and kind.check is not None:
        problems += [Problem(index, source_id, n, m) for n, m in kind.check(values)]
    return values, problems


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
    stored = {kind.type_name: {row["id"]: row for row in rows[kind.table.name]}
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
                elif name == "findings":
                    value = children[name, row["id"]]
                elif name == "amount":
                    value = amount(Decimal(row["amount_fen"]).scaleb(-2))
                else:
                    value = row[kind.column(name)]
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
