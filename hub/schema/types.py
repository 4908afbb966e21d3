"""GraphQL types of the enterprise dossier.

Types are built from database rows whose labels match their fields (see loaders.py); they
are not ORM models. Fields that a policy may withhold are nullable; identity fields and
links are not, and are served with every record that is served (see access.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import strawberry
from sqlalchemy import Row

from hub.domain import (
    AcceptanceVerdict,
    Colour,
    CreditKind,
    CreditStatus,
    EnterpriseStatus,
    InspectionKind,
    InspectionResult,
    PenaltyStatus,
    PlanStatus,
    RectificationStatus,
    RepairStatus,
)
from hub.errors import BadUserInput, Forbidden
from hub.records import snake_case, today
from hub.schema.access import check
from hub.schema.context import Info
from hub.schema.loaders import Parent
from hub.schema.publish import Change
from hub.schema.supervision import ColourChange, ColourCode, colour_code, reasons, stored

for vocabulary in (
    AcceptanceVerdict,
    CreditKind,
    CreditStatus,
    EnterpriseStatus,
    InspectionKind,
    InspectionResult,
    PenaltyStatus,
    PlanStatus,
    RectificationStatus,
    RepairStatus,
):
    strawberry.enum(vocabulary)

Since = Annotated[
    date | None, strawberry.argument(description="Only records on or after this day.")
]
Until = Annotated[
    date | None, strawberry.argument(description="Only records on or before this day.")
]


def date_range(parent_id: int, since: date | None, until: date | None) -> Parent:
    if since is not None and until is not None and since > until:
        raise BadUserInput(
            f"since ({since}) is after until ({until}); give the earlier day as since",
            argument="since",
        )
    return Parent(parent_id, since, until)


@strawberry.type(description="A department that owns records shared through the hub.")
class Department:
    code: str = strawberry.field(description="Stable code, e.g. `market` or `ecology`.")
    name_zh: str = strawberry.field(description="Chinese name, e.g. 市场监督管理局.")
    name_en: str = strawberry.field(description="English name.")


def _departments(info: Info, codes: list[str]) -> list[Department]:
    departments = info.context.access.departments
    return [departments[code] for code in codes]


T = TypeVar("T")
Withheld = strawberry.Private[Mapping[str, Forbidden]]
# Children loaded with their parents' whole level (see prefetch), by GraphQL field name.
Prefetched = strawberry.Private[dict[str, Any]]


@strawberry.type(description="One version of a record, as its owner published it.")
class RecordVersion:
    version: int
    change: Change
    published_at: datetime
    publisher: Department = strawberry.field(description="The department that published it.")
    client: str = strawberry.field(description="The publishing system, as registered.")
    reason: str | None = strawberry.field(description="Why it was retracted or repaired.")
    changed_fields: list[str] = strawberry.field(
        description="Fields that differ from the previous version (those the caller may read)."
    )


@strawberry.interface(description="A record kept by one department and shared through the hub.")
class Record:
    # Set by Access.build: plain fields resolve without a call per record.
    id: strawberry.Private[int]
    owner_code: strawberry.Private[str]
    # The enterprise the record is about, as stored now (see loaders._owned).
    enterprise_uscc: strawberry.Private[str]
    enterprise_region: strawberry.Private[str]
    withheld: Withheld
    # The caller's part in the record (hub/policy/relations.py), as Access.build found it.
    relations: strawberry.Private[tuple[str, ...]]
    record_id: strawberry.ID = strawberry.field(
        name="id", description="The hub's id of this record."
    )
    source_id: str = strawberry.field(
        description="The owner department's own id for this record, unique per owner."
    )
    owner: Department = strawberry.field(
        description="The department that owns and publishes this record."
    )
    version: int = strawberry.field(description="The current version, from 1.")

    @strawberry.field(description="Every version, oldest first, with who published it and when.")
    async def history(self, info: Info) -> list[RecordVersion]:
        rows = await info.context.loaders.history[type(self).__name__].load(self.id)
        departments = info.context.access.departments
        hidden = self.withheld
        return [
            RecordVersion(
                version=row.version,
                change=Change(row.change),
                published_at=row.published_at,
                publisher=departments[row.publisher],
                client=row.client,
                reason=row.reason,
                changed_fields=[
                    name
                    for name in row.changed.split()
                    if snake_case(name.removesuffix("SourceId")) not in hidden
                ],
            )
            for row in rows
        ]


@strawberry.type(description="A credit repair (信用修复) applied for against a credit record.")
class CreditRepair(Record):
    credit_record_id: strawberry.Private[int]
    applied_on: date | None
    decided_on: date | None = strawberry.field(description="Null while the repair is pending.")
    status: RepairStatus | None
    opinion: str | None


@strawberry.type(description="A credit rating, bad record (失信记录) or commendation.")
class CreditRecord(Record):
    enterprise_id: strawberry.Private[int]
    kind: CreditKind | None
    level: str | None = strawberry.field(
        description="Rating grade (A–D, or green/blue/yellow/red for environmental credit), "
        "general/serious for bad records, municipal/provincial for commendations."
    )
    reason: str | None
    issued_on: date | None
    expires_on: date | None
    status: CreditStatus | None

    prefetched: Prefetched

    @strawberry.field(description="Repairs applied for against this record, oldest first.")
    def repairs(self) -> list[CreditRepair]:
        repairs: list[CreditRepair] = self.prefetched["repairs"]
        return repairs


@strawberry.type(description="A problem found during an inspection.")
class Finding:
    id: strawberry.Private[int]
    inspection_id: strawberry.Private[int]
    withheld: Withheld
    category: str | None = strawberry.field(description="The inspecting department's category.")
    description: str | None


@strawberry.type(description="An inspection (检查) of an enterprise.")
class Inspection(Record):
    enterprise_id: strawberry.Private[int]
    action_code: str | None = strawberry.field(
        description="Administrative-action code (行政行为码) shown to the enterprise: "
        "registered to this inspection alone (see inspectionByActionCode)."
    )
    kind: InspectionKind | None
    inspected_on: date | None
    result: InspectionResult | None

    prefetched: Prefetched

    @strawberry.field(
        description="Departments that took part besides the owner (joint inspections)."
    )
    def participants(self) -> list[Department] | None:
        check(self, "participants")
        participants: list[Department] = self.prefetched["participants"]
        return participants

    @strawberry.field(description="Problems found, if any.")
    def findings(self) -> list[Finding] | None:
        check(self, "findings")
        findings: list[Finding] = self.prefetched["findings"]
        return findings


@strawberry.type(description="An administrative penalty decision (行政处罚).")
class Penalty(Record):
    enterprise_id: strawberry.Private[int]
    amount_fen: strawberry.Private[int]
    case_number: str | None
    violation: str | None
    legal_basis: str | None
    decided_on: date | None
    status: PenaltyStatus | None
    minor_first_offence_exempt: bool | None = strawberry.field(
        description="A minor first offence exempted from the fine (轻微不罚)."
    )
    transferred_to_code: strawberry.Private[str | None]
    decision_issued: bool | None = strawberry.field(description="Decision document issued.")
    compliance_suggestion_issued: bool | None = strawberry.field(
        description="Compliance suggestion issued with the decision (三书同达)."
    )
    credit_repair_notice_issued: bool | None = strawberry.field(
        description="Credit repair notice issued with the decision (三书同达)."
    )

    @strawberry.field(description="The fine in yuan.")
    def amount(self) -> Decimal | None:
        check(self, "amount")
        return Decimal(self.amount_fen).scaleb(-2)

    @strawberry.field(description="The department the case was transferred to (案件移送), if any.")
    def transferred_to(self, info: Info) -> Department | None:
        check(self, "transferred_to")
        if self.transferred_to_code is None:
            return None
        department: Department = info.context.access.departments[self.transferred_to_code]
        return department


@strawberry.type(description="The accepting department's verdict on a rectification (整改验收).")
class Acceptance(Record):
    rectification_id: strawberry.Private[int]
    accepted_on: date | None
    verdict: AcceptanceVerdict | None
    opinion: str | None


@strawberry.type(description="A rectification (整改) ordered after an inspection or a penalty.")
class Rectification(Record):
    enterprise_id: strawberry.Private[int]
    inspection_id: strawberry.Private[int | None]
    penalty_id: strawberry.Private[int | None]
    codes: strawberry.Private[str]
    due: strawberry.Private[date]
    state: strawberry.Private[str]
    requirement: str | None
    ordered_on: date | None
    deadline: date | None
    status: RectificationStatus | None

    prefetched: Prefetched

    @strawberry.field(
        description="Codes of what must be fixed, from the hub's catalogue "
        "(policies/requirements.csv): what finds orders that contradict each other."
    )
    def requirement_codes(self) -> list[str] | None:
        check(self, "requirement_codes")
        return self.codes.split()

    @strawberry.field(description="Past its deadline (in China) and not accepted.")
    def overdue(self) -> bool | None:
        check(self, "overdue")
        return is_overdue(self.due, self.state)

    @strawberry.field(description="The inspection that led to this order, if any.")
    async def inspection(self, info: Info) -> Inspection | None:
        check(self, "inspection")
        if self.inspection_id is None:
            return None
        row = await info.context.loaders.inspection.load(self.inspection_id)
        (inspection,) = await built(info, Inspection, [row]) if row else [None]
        return inspection

    @strawberry.field(description="The penalty that led to this order, if any.")
    async def penalty(self, info: Info) -> Penalty | None:
        check(self, "penalty")
        if self.penalty_id is None:
            return None
        row = await info.context.loaders.penalty.load(self.penalty_id)
        (penalty,) = await built(info, Penalty, [row]) if row else [None]
        return penalty

    @strawberry.field(description="Departments helping the enterprise rectify (联合帮扶整改).")
    def assisting_departments(self) -> list[Department] | None:
        check(self, "assisting_departments")
        assistants: list[Department] = self.prefetched["assistingDepartments"]
        return assistants

    @strawberry.field(description="The acceptance verdict; null until one is recorded.")
    def acceptance(self) -> Acceptance | None:
        check(self, "acceptance")
        acceptance: Acceptance | None = self.prefetched["acceptance"]
        return acceptance


@strawberry.type(
    description="An inspection a department plans (检查计划), published so that departments "
    "planning the same enterprise in the same month inspect it together (综合查一次)."
)
class InspectionPlan(Record):
    enterprise_id: strawberry.Private[int]
    inspection_id: strawberry.Private[int | None]
    uscc: str = strawberry.field(description="The enterprise the plan is about.")
    month: str | None = strawberry.field(description="The month planned, YYYY-MM.")
    subject: str | None = strawberry.field(description="What will be inspected, e.g. 消防安全.")
    kind: InspectionKind | None
    status: PlanStatus | None

    @strawberry.field(description="The inspection that carried the plan out, once done.")
    async def inspection(self, info: Info) -> Inspection | None:
        check(self, "inspection")
        if self.inspection_id is None:
            return None
        row = await info.context.loaders.inspection.load(self.inspection_id)
        (inspection,) = await built(info, Inspection, [row]) if row else [None]
        return inspection


@strawberry.type(description="An enterprise, keyed by its unified social credit code.")
class Enterprise:
    id: strawberry.Private[int]
    owner_code: strawberry.Private[str]
    withheld: Withheld
    # The three-colour code as last computed (see colours.py).
    colour: strawberry.Private[str | None]
    colour_since: strawberry.Private[date | None]
    colour_reasons: strawberry.Private[str | None]
    uscc: str = strawberry.field(description="Unified social credit code (统一社会信用代码).")
    name: str | None
    legal_representative: str | None
    address: str | None
    industry: str | None
    region: str | None = strawberry.field(description="District, e.g. 西湖区.")
    town: str | None = strawberry.field(description="Town or sub-district, e.g. 三墩镇.")
    registered_on: date | None
    status: EnterpriseStatus | None
    owner: Department = strawberry.field(
        description="The registration authority that keeps the base data."
    )

    @strawberry.field(
        description="Its three-colour code (三色码) with the rules that made it; null until the "
        "hub first computes it."
    )
    def colour_code(self, info: Info) -> ColourCode | None:
        check(self, "colour_code")
        return colour_code(info.context.access, self)

    @strawberry.field(description="Every colour it took, oldest first, with the reasons.")
    async def colour_history(self, info: Info) -> list[ColourChange] | None:
        check(self, "colour_history")
        access = info.context.access
        return [
            ColourChange(colour=Colour(row.colour),
                         previous=None if row.previous is None else Colour(row.previous),
                         since=row.since, changed_at=row.changed_at,
                         reasons=reasons(access, stored(row.reasons)))
            for row in await info.context.loaders.colours.load(self.id)
        ]  # fmt: skip

    @strawberry.field(description="Credit records by issue date, oldest first.")
    async def credit_records(
        self, info: Info, since: Since = None, until: Until = None
    ) -> list[CreditRecord]:
        rows = await info.context.loaders.credit_records.load(date_range(self.id, since, until))
        return await built(info, CreditRecord, rows)

    @strawberry.field(description="Inspections by day, oldest first.")
    async def inspections(
        self, info: Info, since: Since = None, until: Until = None
    ) -> list[Inspection]:
        rows = await info.context.loaders.inspections.load(date_range(self.id, since, until))
        return await built(info, Inspection, rows)

    @strawberry.field(description="Penalty decisions by decision day, oldest first.")
    async def penalties(
        self, info: Info, since: Since = None, until: Until = None
    ) -> list[Penalty]:
        rows = await info.context.loaders.penalties.load(date_range(self.id, since, until))
        return await built(info, Penalty, rows)

    @strawberry.field(description="Rectification orders by order day, oldest first.")
    async def rectifications(
        self,
        info: Info,
        since: Since = None,
        until: Until = None,
        overdue: Annotated[
            bool | None,
            strawberry.argument(description="Only overdue orders (true) or only others (false)."),
        ] = None,
    ) -> list[Rectification]:
        rows = await info.context.loaders.rectifications.load(date_range(self.id, since, until))
        if overdue is not None:
            rows = [row for row in rows if is_overdue(row.due, row.state) is overdue]
        return await built(info, Rectification, rows)

    @strawberry.field(
        description="Inspections departments plan of the enterprise, by month, oldest first: "
        "who else will be there (综合查一次)."
    )
    async def inspection_plans(self, info: Info) -> list[InspectionPlan]:
        rows = await info.context.loaders.inspection_plans.load(Parent(self.id))
        return await built(info, InspectionPlan, rows)


def is_overdue(deadline: date, status: str) -> bool:
    """An order past its deadline (today in China) that is not accepted."""
    return status != RectificationStatus.ACCEPTED and deadline < today()


async def built(info: Info, cls: type[T], rows: Sequence[Row[Any]]) -> list[T]:
    """A level of records of type ``cls``, built, with the children the query selects."""
    records = info.context.access.build(cls, rows, info)
    await prefetch(info, cls, records)
    return records


async def prefetch(info: Info, cls: type[Any], records: list[Any]) -> None:
    """Load the children the query selects of ``records`` and attach them, built.

    Called where a level of records is built, each relation is one loader call for the
    records of this parent; the loaders batch the calls of all parents at that level into
    one statement, and the children's own resolvers stay synchronous: no coroutine per record.
    """
    access, loaders = info.context.access, info.context.loaders
    selected = access.selected(info, cls.__name__)
    shared = access.shared[cls.__name__]

    async def relation(name: str) -> None:
        readable = [r for r in records if shared[name].python_name not in r.withheld]
        if name == "acceptance":
            found = await getattr(loaders, LOADERS[name]).load_many([r.id for r in readable])
            for record, row in zip(readable, found, strict=True):
                record.prefetched[name] = access.build_one(Acceptance, row, info, (name,))
            return
        loader = getattr(loaders, LOADERS[name])
        lists = await loader.load_many([Parent(r.id) for r in readable])
        for record, rows in zip(readable, lists, strict=True):
            if name == "repairs":
                record.prefetched[name] = access.build(CreditRepair, rows, info, below=(name,))
            elif name == "findings":
                record.prefetched[name] = access.build(
                    Finding, rows, info, of=record, below=(name,)
                )
            else:
                record.prefetched[name] = _departments(info, [row.department for row in rows])

    names = [name for name in CHILDREN.get(cls.__name__, ()) if name in selected]
    await asyncio.gather(*(relation(name) for name in names))


# The Loaders attribute that reads each list (or child) of a record, by GraphQL field name.
LOADERS = {
    "creditRecords": "credit_records",
    "inspections": "inspections",
    "penalties": "penalties",
    "rectifications": "rectifications",
    "inspectionPlans": "inspection_plans",
    "repairs": "credit_repairs",
    "findings": "findings",
    "participants": "participants",
    "assistingDepartments": "assistants",
    "acceptance": "acceptance",
    "inspection": "inspection",
    "penalty": "penalty",
}
CHILDREN = {
    "CreditRecord": ("repairs",),
    "Inspection": ("findings", "participants"),
    "Rectification": ("assistingDepartments", "acceptance"),
}

SHARED_TYPES = (
    Enterprise,
    CreditRecord,
    CreditRepair,
    Inspection,
    Finding,
    Penalty,
    Rectification,
    Acceptance,
    InspectionPlan,
)
# The types departments publish, by name.
PUBLISHED_TYPES: dict[str, type[Record]] = {
    cls.__name__: cls
    for cls in (
        CreditRecord,
        CreditRepair,
        Inspection,
        Penalty,
        Rectification,
        Acceptance,
        InspectionPlan,
    )
}
