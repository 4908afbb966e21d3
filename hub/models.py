"""Database model: departments, enterprises and the kinds of shared record.

Every shared record has an ``owner`` department and the owner's own id ``source_id``,
unique per owner, so a department can republish a record idempotently.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    Role,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def choice(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A portable enumerated column: stored as its value, checked by the database."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_class),
        values_callable=lambda members: [member.value for member in members],
    )


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), sort_order=10
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), sort_order=10
    )


class Record(Timestamps):
    """Columns every shared record has; subclasses add UniqueConstraint(owner, source_id).

    A record's row holds its current version; every version, with who published it, is a
    RecordVersion. A retracted record stays, marked, and readers no longer see it.
    """

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-10)
    owner: Mapped[str] = mapped_column(ForeignKey("department.code"), index=True, sort_order=-10)
    source_id: Mapped[str] = mapped_column(String(64), sort_order=-10)
    version: Mapped[int] = mapped_column(default=1, server_default="1", sort_order=5)
    retracted: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), sort_order=5
    )


class Department(Timestamps, Base):
    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))


class Enterprise(Timestamps, Base):
    __tablename__ = "enterprise"

    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    # The registration authority that keeps the enterprise's base data.
    owner: Mapped[str] = mapped_column(ForeignKey("department.code"))
    name: Mapped[str] = mapped_column(String(200))
    legal_representative: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(300))
    industry: Mapped[str] = mapped_column(String(64), index=True)
    region: Mapped[str] = mapped_column(String(64), index=True)
    town: Mapped[str] = mapped_column(String(64))
    registered_on: Mapped[date] = mapped_column(Date)
    status: Mapped[EnterpriseStatus] = mapped_column(choice(EnterpriseStatus, "status"))
    # The three-colour code as last computed (hub/supervision), kept on the enterprise so
    # that a dossier reads it with the enterprise's own row: the colour, since when, the
    # rules that made it with their records (JSON), the day it must be computed again even
    # if no record changes (a deadline passing, a window ending) and the version of the
    # rules that computed it. Null until first computed.
    colour: Mapped[Colour | None] = mapped_column(choice(Colour, "colour"), index=True)
    colour_since: Mapped[date | None] = mapped_column(Date)
    colour_reasons: Mapped[str | None] = mapped_column(Text)
    colour_review_on: Mapped[date | None] = mapped_column(Date, index=True)
    colour_rules: Mapped[str | None] = mapped_column(String(16))


class CreditRecord(Record, Base):
    __tablename__ = "credit_record"
    __table_args__ = (
        UniqueConstraint("owner", "source_id"),
        Index("ix_credit_record_enterprise_issued", "enterprise_id", "issued_on"),
        CheckConstraint("expires_on IS NULL OR expires_on >= issued_on", name="expiry_order"),
    )

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    kind: Mapped[CreditKind] = mapped_column(choice(CreditKind, "kind"))
    level: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[CreditStatus] = mapped_column(choice(CreditStatus, "status"))


class CreditRepair(Record, Base):
    """A credit repair (信用修复) applied for against a credit record."""

    __tablename__ = "credit_repair"
    __table_args__ = (
        UniqueConstraint("owner", "source_id"),
        CheckConstraint("decided_on IS NULL OR decided_on >= applied_on", name="decision_order"),
    )

    credit_record_id: Mapped[int] = mapped_column(ForeignKey("credit_record.id"), index=True)
    applied_on: Mapped[date] = mapped_column(Date)
    decided_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[RepairStatus] = mapped_column(choice(RepairStatus, "status"))
    opinion: Mapped[str | None] = mapped_column(Text)


class Inspection(Record, Base):
    __tablename__ = "inspection"
    __table_args__ = (
        UniqueConstraint("owner", "source_id"),
        Index("ix_inspection_enterprise_inspected", "enterprise_id", "inspected_on"),
    )

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    # 行政行为码: the code shown to the enterprise at the door ("亮码检查"), registered to this
    # inspection alone, retracted or not (hub/publishing/codes.py).
    action_code: Mapped[str] = mapped_column(String(32), index=True, unique=True)
    kind: Mapped[InspectionKind] = mapped_column(choice(InspectionKind, "kind"))
    inspected_on: Mapped[date] = mapped_column(Date)
    result: Mapped[InspectionResult] = mapped_column(choice(InspectionResult, "result"))


class InspectionPlan(Record, Base):
    """An inspection a department plans (检查计划), published so that departments planning
    the same enterprise in the same month inspect it together (综合查一次).

    ``month`` is text, YYYY-MM, as published: it sorts and compares as months do on every
    database, and is served as stored on both read paths (a first-day Date would be
    converted back and forth, and compared with days nobody planned)."""

    __tablename__ = "inspection_plan"
    __table_args__ = (
        UniqueConstraint("owner", "source_id"),
        # Who else plans an enterprise in a month (suggestions, the dossier's list)...
        Index("ix_inspection_plan_enterprise_month", "enterprise_id", "month"),
        # ...and a department's own plans by month.
        Index("ix_inspection_plan_owner_month", "owner", "month"),
        CheckConstraint("month LIKE '____-__'", name="month_form"),
        CheckConstraint("inspection_id IS NULL OR status = 'done'", name="done_by_inspection"),
    )

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    month: Mapped[str] = mapped_column(String(7))
    subject: Mapped[str] = mapped_column(String(100))  # what will be inspected, e.g. 消防安全
    kind: Mapped[InspectionKind] = mapped_column(choice(InspectionKind, "kind"))
    status: Mapped[PlanStatus] = mapped_column(choice(PlanStatus, "status"))
    # The owner's inspection that carried the plan out, once done.
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspection.id"), index=True)


class InspectionParticipant(Base):
    """A department taking part in a joint inspection ("综合查一次") besides its owner."""

    __tablename__ = "inspection_participant"

    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("department.code"), primary_key=True)


class InspectionFinding(Base):
    __tablename__ = "inspection_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)


class Penalty(Record, Base):
    __tablename__ = "penalty"
    __table_args__ = (
        UniqueConstraint("owner", "source_id"),
        UniqueConstraint("owner", "case_number"),
        Index("ix_penalty_enterprise_decided", "enterprise_id", "decided_on"),
        CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
    )

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspection.id"), index=True)
    case_number: Mapped[str] = mapped_column(String(64))
    violation: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    # In fen (0.01 yuan): exact on every database.
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    decided_on: Mapped[date] = mapped_column(Date)
    status: Mapped[PenaltyStatus] = mapped_column(choice(PenaltyStatus, "status"))
    # 轻微不罚: a minor first offence, exempted from the fine.
    minor_first_offence_exempt: Mapped[bool]
    # 三书同达: the decision goes out with a compliance suggestion and a credit repair notice.
    decision_issued: Mapped[bool]
    compliance_suggestion_issued: Mapped[bool]
    credit_repair_notice_issued: Mapped[bool]
    # 案件移送: the department the case was transferred to, if it was.
    transferred_to: Mapped[str | None] = mapped_column(ForeignKey("department.code"))


class Rectification(Record, Base):
    """What an enterprise must fix, by when, ordered by ``owner`` after an inspection or penalty."""

    __tablename__ = "rectification"
    __table_args__ = (
        UniqueConstraint("owner", "source_id"),
        Index("ix_rectification_enterprise_ordered", "enterprise_id", "ordered_on"),
        CheckConstraint("deadline >= ordered_on", name="deadline_order"),
        CheckConstraint("inspection_id IS NOT NULL OR penalty_id IS NOT NULL", name="has_origin"),
    )

    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspection.id"), index=True)
    penalty_id: Mapped[int | None] = mapped_column(ForeignKey("penalty.id"), index=True)
    requirement: Mapped[str] = mapped_column(Text)
    # Codes from policies/requirements.csv, space-separated: what conflicts.csv compares.
    requirement_codes: Mapped[str] = mapped_column(Text, default="", server_default="")
    ordered_on: Mapped[date] = mapped_column(Date)
    deadline: Mapped[date] = mapped_column(Date)
    status: Mapped[RectificationStatus] = mapped_column(choice(RectificationStatus, "status"))


class RectificationAssistant(Base):
    """A department helping the enterprise rectify (联合帮扶整改)."""

    __tablename__ = "rectification_assistant"

    rectification_id: Mapped[int] = mapped_column(ForeignKey("rectification.id"), primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("department.code"), primary_key=True)


class Conflict(Base):
    """Two departments' open orders to one enterprise that contradict each other (标准打架):
    found when the second was published, settled by one of the two or by comprehensive law
    enforcement. ``first_id`` is the lower rectification id, so a pair is recorded once."""

    __tablename__ = "conflict"
    __table_args__ = (
        UniqueConstraint("first_id", "second_id", "first_code", "second_code"),
        Index("ix_conflict_enterprise_settled", "enterprise_id", "settled_at"),
        CheckConstraint("first_id < second_id", name="pair_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    first_id: Mapped[int] = mapped_column(ForeignKey("rectification.id"), index=True)
    first_owner: Mapped[str] = mapped_column(ForeignKey("department.code"))
    first_code: Mapped[str] = mapped_column(String(64))
    second_id: Mapped[int] = mapped_column(ForeignKey("rectification.id"), index=True)
    second_owner: Mapped[str] = mapped_column(ForeignKey("department.code"))
    second_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)  # why the codes contradict, from conflicts.csv
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_by: Mapped[str | None] = mapped_column(String(200))  # the settling client
    settled_department: Mapped[str | None] = mapped_column(ForeignKey("department.code"))
    settlement: Mapped[str | None] = mapped_column(Text)  # how it was settled


class Acceptance(Record, Base):
    """The accepting department's verdict (整改验收) on a rectification."""

    __tablename__ = "acceptance"
    __table_args__ = (UniqueConstraint("owner", "source_id"),)

    rectification_id: Mapped[int] = mapped_column(ForeignKey("rectification.id"), unique=True)
    accepted_on: Mapped[date] = mapped_column(Date)
    verdict: Mapped[AcceptanceVerdict] = mapped_column(choice(AcceptanceVerdict, "verdict"))
    opinion: Mapped[str] = mapped_column(Text)


class Client(Timestamps, Base):
    """A system or person allowed to call the hub with a bearer token.

    Only the SHA-256 of the token is kept: tokens are 256-bit random secrets, so a fast hash
    is enough to make a stolen table useless, and lookups stay one indexed read.
    """

    __tablename__ = "client"
    # An enterprise's own credential names its enterprise; no other client does.
    __table_args__ = (
        CheckConstraint(
            "(role = 'enterprise' AND enterprise IS NOT NULL) "
            "OR (role <> 'enterprise' AND enterprise IS NULL)",
            name="enterprise_role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # For an enterprise's credential: the enterprise's registration authority, so that its
    # access records name a department as every other record does.
    department: Mapped[str] = mapped_column(ForeignKey("department.code"))
    role: Mapped[Role] = mapped_column(choice(Role, "role"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The USCC of the enterprise whose own credential this is (role enterprise only).
    enterprise: Mapped[str | None] = mapped_column(ForeignKey("enterprise.uscc"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A developer's credential: reads as its department, and may send documents that are not
    # registered when the hub runs registered documents only (hub/trusted.py).
    developer: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class TrustedDocument(Base):
    """A GraphQL document registered for a client (`hub documents register`): named by the
    sha256 of its text, for the client's name (its rotated tokens keep it), with who
    registered it and when; retired documents stay, for the records that name them."""

    __tablename__ = "trusted_document"
    __table_args__ = (
        UniqueConstraint("client", "sha256", name="uq_trusted_document_client_sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(500))  # the file it came from, for people
    operations: Mapped[str] = mapped_column(String(2000))  # its operations' names, spaced
    registered_by: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_by: Mapped[str | None] = mapped_column(String(200))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessRecord(Base):
    """One request to the hub, as auditors see it: who read which fields of whose records.

    Records form a hash chain (see audit.py) and the database refuses to update or delete
    them (triggers created by the migration). Never the values served, only their names.
    """

    __tablename__ = "access_record"
    # Auditors' lookups by enterprise, on PostgreSQL (migration 0006; audit/search.py).
    __table_args__ = (
        Index(
            "ix_access_record_enterprise_words",
            text("string_to_array(btrim(enterprises), ' ')"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
        # Requests per registered document and client (`hub documents list`; migration 0012).
        Index("ix_access_record_client_document", "client", "document_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # ISO-8601 in UTC with microseconds: sorts as text and hashes the same on every database.
    recorded_at: Mapped[str] = mapped_column(String(32), index=True)
    client: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(16))
    operation_name: Mapped[str | None] = mapped_column(String(200))
    operation_type: Mapped[str | None] = mapped_column(String(16))
    document_hash: Mapped[str | None] = mapped_column(String(64))
    # The registered document the request ran ("sha256:<hex>"), if any (migration 0012).
    document_id: Mapped[str | None] = mapped_column(String(71))
    purpose: Mapped[str | None] = mapped_column(Text)
    case_ref: Mapped[str | None] = mapped_column(String(500))
    remote_address: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    # " USCC USCC " and " Type.field Type.field ": space-delimited for auditors' searches.
    enterprises: Mapped[str] = mapped_column(Text)
    fields: Mapped[str] = mapped_column(Text)
    # Canonical JSON, in groups naming records by their enterprise's place in ``enterprises``
    # (audit/served.py): [{"type", "fields", "grants", "records"}] served and [{"type",
    # "owner", "field", "reason", "records"}] denied.
    served: Mapped[str] = mapped_column(Text)
    denied: Mapped[str] = mapped_column(Text)
    # Canonical JSON [{"enterprise", "type", "change", "ids"}] of the records a request
    # published; null for requests that wrote nothing (and for records older than writing).
    written: Mapped[str | None] = mapped_column(Text)
    policy_version: Mapped[str | None] = mapped_column(String(16))
    trace_id: Mapped[str] = mapped_column(String(32))
    duration_us: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class RecordVersion(Base):
    """One version of a shared record, as its owner published it: the change feed.

    ``seq`` numbers versions in commit order across all kinds: publishers take the feed head
    (FeedHead) first, so a version with a higher number never commits before a lower one and
    a reader polling ``seq > cursor`` neither skips nor repeats a change.
    """

    __tablename__ = "record_version"
    __table_args__ = (
        UniqueConstraint("kind", "record_id", "version"),
        Index("ix_record_version_owner_kind", "owner", "kind", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))  # the GraphQL type, e.g. Acceptance
    record_id: Mapped[int]
    owner: Mapped[str] = mapped_column(ForeignKey("department.code"))
    source_id: Mapped[str] = mapped_column(String(64))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    version: Mapped[int]
    change: Mapped[str] = mapped_column(String(16))  # created, updated, retracted, repaired
    # The published fields as canonical JSON (the publishing input's names and forms), and
    # the names of the fields that differ from the previous version, space-separated.
    data: Mapped[str] = mapped_column(Text)
    changed: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    publisher: Mapped[str] = mapped_column(String(32))  # the publishing client's department
    client: Mapped[str] = mapped_column(String(200))
    trace_id: Mapped[str | None] = mapped_column(String(32))


class ColourChange(Base):
    """One colour an enterprise had: its history, each change also in the change feed."""

    __tablename__ = "colour_change"
    __table_args__ = (Index("ix_colour_change_enterprise", "enterprise_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"))
    colour: Mapped[Colour] = mapped_column(choice(Colour, "colour"))
    previous: Mapped[Colour | None] = mapped_column(choice(Colour, "previous"))
    since: Mapped[date] = mapped_column(Date)
    reasons: Mapped[str] = mapped_column(Text)  # JSON, as on the enterprise
    rules: Mapped[str] = mapped_column(String(16))  # the policy version that computed it
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InspectionWarning(Base):
    """An inspection that took its enterprise to or past the inspections a period bears
    (policies/inspection-limits.csv), as the hub warned when it was published."""

    __tablename__ = "inspection_warning"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspection.id"), index=True)
    owner: Mapped[str] = mapped_column(ForeignKey("department.code"))  # who inspected
    verdict: Mapped[str] = mapped_column(String(8))  # warn or over
    count: Mapped[int]  # inspections in the period, this one included
    limit: Mapped[int]
    warn_at: Mapped[int]
    period_from: Mapped[date] = mapped_column(Date)
    period_until: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedHead(Base):
    """The one row publishers lock and advance: it serializes them and numbers versions."""

    __tablename__ = "feed_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)


class Notification(Base):
    """A message for a department's systems, e.g. that a record they read was repaired."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_department_id", "department", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("department.code"))
    topic: Mapped[str] = mapped_column(String(32))  # credit_repaired
    kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int]
    owner: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    uscc: Mapped[str] = mapped_column(String(18))
    version: Mapped[int]
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ShareRequest(Base):
    """A department's application (有条件共享申请) for another's conditional fields."""

    __tablename__ = "share_request"
    __table_args__ = (
        Index("ix_share_request_owner_status", "owner", "status"),
        Index("ix_share_request_requester_status", "requester", "status"),
        CheckConstraint("wanted_until >= wanted_from", name="period_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    requester: Mapped[str] = mapped_column(ForeignKey("department.code"))
    owner: Mapped[str] = mapped_column(ForeignKey("department.code"))
    # Schema coordinates, space-separated (field groups are expanded when filed).
    fields: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(64))  # a code from policies/purposes.csv
    purpose_detail: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    # Scope: all enterprises when both are empty; else these districts and these USCCs.
    regions: Mapped[str] = mapped_column(Text, default="")
    usccs: Mapped[str] = mapped_column(Text, default="")
    wanted_from: Mapped[date] = mapped_column(Date)
    wanted_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # pending, approved, refused
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    filed_by: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)  # why it was refused


class ShareGrant(Base):
    """An approval: the requester reads these conditional fields of the owner's records, for
    this purpose, within this scope and period, until it expires or is revoked."""

    __tablename__ = "share_grant"
    __table_args__ = (
        Index("ix_share_grant_requester_owner", "requester", "owner"),
        CheckConstraint("valid_until >= valid_from", name="period_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("share_request.id"), unique=True)
    requester: Mapped[str] = mapped_column(ForeignKey("department.code"))
    owner: Mapped[str] = mapped_column(ForeignKey("department.code"))
    fields: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(64))
    regions: Mapped[str] = mapped_column(Text, default="")
    usccs: Mapped[str] = mapped_column(Text, default="")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class GrantHead(Base):
    """The grant version: every approval and revocation moves it, in every hub process."""

    __tablename__ = "grant_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
