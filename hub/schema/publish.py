"""Mutations through which a department publishes its records (see hub/publishing/).

Resolvers turn GraphQL input into the published form and ask hub/publishing/, which checks
the policy's ``write`` rule, validates and writes; every record written is entered in the
request's audit trail.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

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
from hub.errors import BadUserInput
from hub.publishing import MAX_BATCH, Change, Published, Publisher, publish, retract
from hub.records import BY_TYPE, KINDS
from hub.schema.context import Info
from hub.schema.supervision import InspectionWarning

__all__ = ["Change", "Mutation", "RecordKind"]

strawberry.enum(Change, description="What publishing did to a record.")


@strawberry.enum(description="The kinds of record departments publish.")
class RecordKind(Enum):
    CREDIT_RECORD = "CreditRecord"
    CREDIT_REPAIR = "CreditRepair"
    INSPECTION = "Inspection"
    PENALTY = "Penalty"
    RECTIFICATION = "Rectification"
    ACCEPTANCE = "Acceptance"
    # What the hub records as records change (hub/supervision): in the feed, never published.
    COLOUR_CODE = "ColourCode"
    INSPECTION_WARNING = "InspectionWarning"
    INSPECTION_PLAN = "InspectionPlan"


@strawberry.input(description="A problem found during an inspection.")
class FindingInput:
    category: str
    description: str


@strawberry.input(description="An inspection, as its department publishes it.")
class InspectionInput:
    source_id: str = strawberry.field(description="Your own id, unique among your records.")
    uscc: str
    action_code: str = strawberry.field(
        description="Administrative-action code (行政行为码), registered to this inspection alone: "
        "a code another inspection holds (a retracted one too) is refused."
    )
    kind: InspectionKind
    inspected_on: date
    result: InspectionResult
    participants: list[str] | None = strawberry.field(
        default=None, description="Codes of the other departments on a joint inspection."
    )
    findings: list[FindingInput] | None = None


@strawberry.input(description="A penalty decision, as its department publishes it.")
class PenaltyInput:
    source_id: str
    uscc: str
    inspection_source_id: str | None = strawberry.field(
        default=None, description="sourceId of your inspection that led to the penalty."
    )
    case_number: str
    violation: str
    legal_basis: str
    amount: Decimal = strawberry.field(description="The fine in yuan, to the fen; 0 if none.")
    decided_on: date
    status: PenaltyStatus
    minor_first_offence_exempt: bool = strawberry.field(
        default=False, description="A minor first offence exempted (首违不罚): status EXEMPT."
    )
    decision_issued: bool = False
    compliance_suggestion_issued: bool = False
    credit_repair_notice_issued: bool = False
    transferred_to: str | None = strawberry.field(
        default=None, description="Code of the department the case was transferred to (案件移送)."
    )


@strawberry.input(description="A rectification order, as its department publishes it.")
class RectificationInput:
    source_id: str
    uscc: str
    inspection_source_id: str | None = strawberry.field(
        default=None, description="sourceId of your inspection that found the problems."
    )
    penalty_source_id: str | None = strawberry.field(
        default=None, description="sourceId of your penalty decision that ordered it."
    )
    requirement: str
    requirement_codes: list[str] | None = strawberry.field(
        default=None,
        description="Codes of what must be fixed, from policies/requirements.csv: orders of "
        "other departments to the same enterprise whose codes contradict them are recorded as "
        "conflicts.",
    )
    ordered_on: date
    deadline: date
    status: RectificationStatus
    assisting_departments: list[str] | None = strawberry.field(
        default=None, description="Codes of departments helping the enterprise (联合帮扶整改)."
    )


@strawberry.input(description="An acceptance verdict (整改验收) on one of your rectifications.")
class AcceptanceInput:
    source_id: str
    rectification_source_id: str
    accepted_on: date
    verdict: AcceptanceVerdict
    opinion: str


@strawberry.input(description="A credit rating, bad record or commendation.")
class CreditRecordInput:
    source_id: str
    uscc: str
    kind: CreditKind
    level: str
    reason: str
    issued_on: date
    expires_on: date | None = None
    status: CreditStatus


@strawberry.input(
    description="A credit repair (信用修复) of one of your credit records; approving it marks "
    "the record repaired for every reader and notifies the departments that read it."
)
class CreditRepairInput:
    source_id: str
    credit_record_source_id: str
    applied_on: date
    decided_on: date | None = None
    status: RepairStatus
    opinion: str | None = None


@strawberry.input(
    description="An inspection your department plans: departments planning the same enterprise "
    "in the same month are shown each other's plans, to inspect it together (综合查一次)."
)
class InspectionPlanInput:
    source_id: str = strawberry.field(description="Your own id, unique among your records.")
    uscc: str
    month: str = strawberry.field(
        description="The month planned, YYYY-MM: from last month to 12 months ahead."
    )
    subject: str = strawberry.field(
        description="What will be inspected, e.g. 消防安全; at most 100 characters."
    )
    kind: InspectionKind
    status: PlanStatus = strawberry.field(
        description="PLANNED while open; DONE when carried out; CANCELLED."
    )
    inspection_source_id: str | None = strawberry.field(
        default=None, description="sourceId of your inspection that carried it out (DONE only)."
    )


def published_form(record: Any) -> dict[str, Any]:
    """An input object as the published form: GraphQL names, nested inputs as mappings."""
    form = {}
    for field in dataclass_fields(record):
        value = getattr(record, field.name)
        if isinstance(value, list):
            value = [vars(item) if hasattr(item, "__dict__") else item for item in value]
        if value is not None:
            form[to_camel_case(field.name)] = value
    return form


@strawberry.type(description="What publishing did to one record.")
class PublishedRecord:
    index: int = strawberry.field(description="Its position in the batch, from 0.")
    kind: RecordKind
    source_id: str
    id: strawberry.ID | None = strawberry.field(description="Null for a dry run's new record.")
    version: int
    change: Change
    uscc: str = strawberry.field(description="The enterprise the record is about.")


@strawberry.type(description="A warning a published inspection raised.")
class PublishedWarning:
    index: int = strawberry.field(description="The inspection's position in the batch.")
    source_id: str = strawberry.field(description="The inspection's sourceId.")
    uscc: str
    id: strawberry.ID | None = strawberry.field(description="Null for a dry run.")
    warning: InspectionWarning


@strawberry.type(description="What a batch did, record by record.")
class PublishResult:
    dry_run: bool = strawberry.field(description="True when nothing was written.")
    created: int
    updated: int
    unchanged: int
    retracted: int
    repaired: int = strawberry.field(description="Credit records repaired by approved repairs.")
    accepted: int = strawberry.field(description="Orders accepted by passed acceptances.")
    reopened: int = strawberry.field(
        description="Orders back in progress after failed acceptances."
    )
    warned: int = strawberry.field(description="Warnings raised (see warnings).")
    records: list[PublishedRecord]
    warnings: list[PublishedWarning] = strawberry.field(
        description="New inspections that take their enterprise to or past what a period "
        "bears (policies/inspection-limits.csv), each recorded and in the change feed."
    )

    @classmethod
    def of(cls, published: list[Published], dry_run: bool) -> PublishResult:
        counts = {change: 0 for change in Change}
        for result in published:
            counts[result.change] += 1
        records = [result for result in published if result.change is not Change.WARNED]
        return cls(
            dry_run=dry_run,
            created=counts[Change.CREATED],
            updated=counts[Change.UPDATED],
            unchanged=counts[Change.UNCHANGED],
            retracted=counts[Change.RETRACTED],
            repaired=counts[Change.REPAIRED],
            accepted=counts[Change.ACCEPTED],
            reopened=counts[Change.REOPENED],
            warned=counts[Change.WARNED],
            records=[
                PublishedRecord(
                    index=result.index,
                    kind=RecordKind(result.kind),
                    source_id=result.source_id,
                    id=None if result.record_id is None else strawberry.ID(str(result.record_id)),
                    version=result.version,
                    change=result.change,
                    uscc=result.uscc,
                )
                for result in records
            ],
            warnings=[
                PublishedWarning(
                    index=result.index, source_id=result.source_id, uscc=result.uscc,
                    id=None if result.record_id is None else strawberry.ID(str(result.record_id)),
                    warning=InspectionWarning.of(result.detail.data()),
                )
                for result in published
                if result.change is Change.WARNED
            ],
        )  # fmt: skip


def _publisher(info: Info) -> Publisher:
    principal = info.context.access.principal
    return Publisher(principal.name, principal.department, principal.subject, info.context.trace_id)


def _record(info: Info, published: list[Published]) -> None:
    for result in published:
        info.context.access.trail.write(
            result.uscc, result.kind, result.change.value, str(result.record_id)
        )


Owner = Annotated[
    str | None,
    strawberry.argument(
        description="The department whose records these are; yours when not given."
    ),
]
DryRun = Annotated[
    bool, strawberry.argument(description="Check everything and report, write nothing.")
]


async def _publish(
    info: Info, kind: str, records: list[Any], owner: str | None, dry_run: bool
) -> PublishResult:
    access = info.context.access
    info.context.admit(len(records))  # before the write lock is taken
    writer = await info.context.writer()
    published = await publish(
        writer,
        access.policy,
        _publisher(info),
        KINDS[kind],
        owner or access.principal.department,
        [published_form(record) for record in records],
        dry_run=dry_run,
    )
    if not dry_run:
        _record(info, published)
    return PublishResult.of(published, dry_run)


BATCH = f"At most {MAX_BATCH} records; all are published or, if any is invalid, none."


@strawberry.type
class Mutation:
    @strawberry.mutation(description=f"Publish inspections. {BATCH}")
    async def publish_inspections(
        self,
        info: Info,
        records: list[InspectionInput],
        owner: Owner = None,
        dry_run: DryRun = False,
    ) -> PublishResult:
        return await _publish(info, "inspections", records, owner, dry_run)

    @strawberry.mutation(description=f"Publish penalty decisions. {BATCH}")
    async def publish_penalties(
        self, info: Info, records: list[PenaltyInput], owner: Owner = None, dry_run: DryRun = False
    ) -> PublishResult:
        return await _publish(info, "penalties", records, owner, dry_run)

    @strawberry.mutation(description=f"Publish rectification orders. {BATCH}")
    async def publish_rectifications(
        self,
        info: Info,
        records: list[RectificationInput],
        owner: Owner = None,
        dry_run: DryRun = False,
    ) -> PublishResult:
        return await _publish(info, "rectifications", records, owner, dry_run)

    @strawberry.mutation(description=f"Publish acceptance verdicts. {BATCH}")
    async def publish_acceptances(
        self,
        info: Info,
        records: list[AcceptanceInput],
        owner: Owner = None,
        dry_run: DryRun = False,
    ) -> PublishResult:
        return await _publish(info, "acceptances", records, owner, dry_run)

    @strawberry.mutation(description=f"Publish credit records. {BATCH}")
    async def publish_credit_records(
        self,
        info: Info,
        records: list[CreditRecordInput],
        owner: Owner = None,
        dry_run: DryRun = False,
    ) -> PublishResult:
        return await _publish(info, "creditRecords", records, owner, dry_run)

    @strawberry.mutation(description=f"Publish credit repairs. {BATCH}")
    async def publish_credit_repairs(
        self,
        info: Info,
        records: list[CreditRepairInput],
        owner: Owner = None,
        dry_run: DryRun = False,
    ) -> PublishResult:
        return await _publish(info, "creditRepairs", records, owner, dry_run)

    @strawberry.mutation(
        description="Publish inspection plans (检查计划): departments planning the same "
        f"enterprise in the same month see each other's. {BATCH}"
    )
    async def publish_inspection_plans(
        self,
        info: Info,
        records: list[InspectionPlanInput],
        owner: Owner = None,
        dry_run: DryRun = False,
    ) -> PublishResult:
        return await _publish(info, "inspectionPlans", records, owner, dry_run)

    @strawberry.mutation(
        description="Withdraw records: each gets a new version marked retracted, with the "
        "reason, and readers no longer see it. Nothing is deleted; publishing a record again "
        "reinstates it."
    )
    async def retract_records(
        self,
        info: Info,
        kind: RecordKind,
        source_ids: list[str],
        reason: Annotated[str, strawberry.argument(description="Why, for the readers.")],
        owner: Owner = None,
    ) -> PublishResult:
        access = info.context.access
        if kind.value not in BY_TYPE:
            raise BadUserInput(
                f"{kind.name} entries are the hub's own, computed from the records: retract "
                "the records behind them instead",
                argument="kind",
            )
        info.context.admit(len(source_ids))  # before the write lock is taken
        writer = await info.context.writer()
        published = await retract(
            writer,
            access.policy,
            _publisher(info),
            BY_TYPE[kind.value],
            owner or access.principal.department,
            source_ids,
            reason,
        )
        _record(info, published)
        return PublishResult.of(published, dry_run=False)
