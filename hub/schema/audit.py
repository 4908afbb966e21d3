"""What auditors ask: the access log, and who read one enterprise's records.

Only clients with the auditor role may ask; department clients get FORBIDDEN. Auditors in
turn read no enterprise data unless a policy grants it (separation of duties).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from hub.audit import AccessFilter, Outcome, find, served
from hub.domain import Role
from hub.errors import BadUserInput, Forbidden
from hub.schema.context import Info
from hub.uscc import parse_uscc
from hub.values import whole

__all__ = ["AuditQuery"]

MAX_PAGE_SIZE = 100
MAX_ACCESSES = 1000


@strawberry.enum(description="How a request ended.")
class AccessOutcome(Enum):
    OK = Outcome.OK
    PARTIAL = Outcome.PARTIAL
    DENIED = Outcome.DENIED
    ERROR = Outcome.ERROR


@strawberry.type(description="A conditional field served under a grant.")
class GrantedField:
    field: str = strawberry.field(description="Type.field, e.g. Penalty.amount.")
    grant: strawberry.ID


@strawberry.type(description="A field served because of the caller's part in the record.")
class OpenedField:
    field: str = strawberry.field(description="Type.field, e.g. Inspection.findings.")
    relation: str = strawberry.field(description="e.g. participant (hub/policy/relations.py).")


@strawberry.type(description="Records of one type served from one enterprise's dossier.")
class ServedRecords:
    enterprise: str
    type: str
    fields: list[str] = strawberry.field(description="The field names served of each record.")
    ids: list[str]
    grants: list[GrantedField] = strawberry.field(
        description="The grant that opened each conditional field served."
    )
    relations: list[OpenedField] = strawberry.field(
        description="The caller's part in the records that opened fields served."
    )

    @classmethod
    def of(cls, group: dict[str, Any]) -> ServedRecords:
        granted, opened = group.get("grants", {}), group.get("relations", {})
        return cls(
            enterprise=group["enterprise"],
            type=group["type"],
            fields=group["fields"],
            ids=group["ids"],
            grants=[GrantedField(field=k, grant=strawberry.ID(str(v))) for k, v in granted.items()],
            relations=[OpenedField(field=k, relation=v) for k, v in opened.items()],
        )


@strawberry.type(description="A field withheld from the caller.")
class DeniedField:
    enterprise: str
    type: str
    id: str
    owner: str
    field: str
    reason: str


@strawberry.type(description="Records of one type of one enterprise that a request published.")
class WrittenRecords:
    enterprise: str
    type: str
    change: str = strawberry.field(description="created, updated, unchanged, retracted...")
    ids: list[str]
    before: JSON | None = strawberry.field(
        default=None, description="A share request's or grant's state before the change."
    )
    after: JSON | None = strawberry.field(default=None, description="...and after it.")


@strawberry.type(name="AccessRecord", description="One request to the hub, as recorded.")
class AccessRecordNode:
    seq: int = strawberry.field(description="Position in the hash chain.")
    recorded_at: datetime
    client: str | None
    department: str | None
    role: str | None
    operation_name: str | None
    operation_type: str | None
    document_hash: str | None = strawberry.field(description="SHA-256 of the normalized query.")
    document_id: str | None = strawberry.field(
        description="The registered document the request ran (sha256:<hex>), if it ran one."
    )
    purpose: str | None
    case_ref: str | None
    remote_address: str | None
    outcome: AccessOutcome
    enterprises: list[str]
    served: list[ServedRecords]
    denied: list[DeniedField]
    written: list[WrittenRecords] = strawberry.field(
        description="Records the request published, by enterprise, type and change."
    )
    policy_version: str | None
    trace_id: str
    duration_ms: float
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: Any) -> AccessRecordNode:
        values = dict(row._mapping)
        return cls(
            seq=values["seq"],
            recorded_at=datetime.fromisoformat(values["recorded_at"]),
            client=values["client"],
            department=values["department"],
            role=values["role"],
            operation_name=values["operation_name"],
            operation_type=values["operation_type"],
            document_hash=values["document_hash"],
            document_id=values.get("document_id"),
            purpose=values["purpose"],
            case_ref=values["case_ref"],
            remote_address=values["remote_address"],
            outcome=AccessOutcome(values["outcome"]),
            enterprises=values["enterprises"].split(),
            served=[ServedRecords.of(group) for group in served.groups(values)],
            denied=[DeniedField(**denial) for denial in served.denials(values)],
            written=[WrittenRecords(**group) for group in json.loads(values["written"] or "[]")],
            policy_version=values["policy_version"],
            trace_id=values["trace_id"],
            duration_ms=values["duration_us"] / 1000,
            prev_hash=values["prev_hash"],
            hash=values["hash"],
        )


@strawberry.type(description="One enterprise's records read (or withheld) in one request.")
class EnterpriseAccess:
    seq: int
    recorded_at: datetime
    department: str | None
    client: str | None
    role: str | None
    purpose: str | None
    case_ref: str | None
    fields: list[str] = strawberry.field(description="Type.field names served of its records.")
    denied: list[str] = strawberry.field(description="Type.field names withheld.")
    trace_id: str


@strawberry.input(description="Conditions a record must meet; all given ones apply.")
class AccessLogFilter:
    department: str | None = None
    client: str | None = strawberry.field(default=None, description='e.g. "client:12".')
    enterprise: str | None = strawberry.field(default=None, description="A USCC.")
    field: str | None = strawberry.field(
        default=None,
        description="A Type.field that was served, e.g. Penalty.amount; with enterprise, "
        "served of that enterprise's records.",
    )
    outcome: AccessOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None


@strawberry.type
class AccessRecordEdge:
    cursor: str
    node: AccessRecordNode


@strawberry.type
class AccessLogPage:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="Access records, newest first.")
class AccessLogConnection:
    edges: list[AccessRecordEdge]
    page_info: AccessLogPage


def _auditor_only(info: Info, field: str) -> None:
    if info.context.access.principal.role is not Role.AUDITOR:
        raise Forbidden("hub", field, "only auditors read the access log (separation of duties)")


def _access_filter(info: Info, given: AccessLogFilter | None) -> AccessFilter:
    if given is None:
        return AccessFilter()
    if given.field is not None:
        type_name, _, name = given.field.partition(".")
        if name not in info.context.access.shared.get(type_name, {}):
            raise BadUserInput(
                f"{given.field!r} is not a Type.field of a shared type, e.g. Penalty.amount",
                argument="filter.field",
            )
    return AccessFilter(
        department=given.department,
        client=given.client,
        enterprise=parse_uscc(given.enterprise) if given.enterprise is not None else None,
        field=given.field,
        outcome=given.outcome.value if given.outcome is not None else None,
        since=given.since,
        until=given.until,
    )


def _cursor(after: str | None) -> int | None:
    if after is None:
        return None
    position = whole(after)
    if position is None:
        raise BadUserInput(
            f"after={after!r} is not a cursor of the access log; pass pageInfo.endCursor",
            argument="after",
        )
    return position


@strawberry.type
class AuditQuery:
    @strawberry.field(description="The access log, newest first (auditors only).")
    async def access_log(
        self,
        info: Info,
        filter: AccessLogFilter | None = None,
        first: Annotated[int, strawberry.argument(description="1 to 100.")] = 20,
        after: str | None = None,
    ) -> AccessLogConnection | None:
        _auditor_only(info, "Query.accessLog")
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise BadUserInput(
                f"first must be between 1 and {MAX_PAGE_SIZE}, not {first}", argument="first"
            )
        access_filter = _access_filter(info, filter)
        rows = await find(
            info.context.loaders.reader.rows, access_filter, first + 1, _cursor(after)
        )
        nodes = [AccessRecordNode.of(row) for row in rows[:first]]
        edges = [AccessRecordEdge(cursor=str(node.seq), node=node) for node in nodes]
        return AccessLogConnection(
            edges=edges,
            page_info=AccessLogPage(
                has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    @strawberry.field(
        description="Who read this enterprise's records, when, why and which fields, newest "
        "first (auditors only)."
    )
    async def accesses_to(
        self,
        info: Info,
        uscc: str,
        since: datetime | None = None,
        until: datetime | None = None,
        first: Annotated[int, strawberry.argument(description="1 to 1000.")] = 100,
    ) -> list[EnterpriseAccess] | None:
        _auditor_only(info, "Query.accessesTo")
        code = parse_uscc(uscc)
        if not 1 <= first <= MAX_ACCESSES:
            raise BadUserInput(
                f"first must be between 1 and {MAX_ACCESSES}, not {first}", argument="first"
            )
        access_filter = AccessFilter(enterprise=code, since=since, until=until)
        rows = await find(info.context.loaders.reader.rows, access_filter, first)
        accesses = []
        for row in rows:
            read, denied = served.of_enterprise(row._mapping, code)
            accesses.append(
                EnterpriseAccess(
                    seq=row.seq,
                    recorded_at=datetime.fromisoformat(row.recorded_at),
                    department=row.department,
                    client=row.client,
                    role=row.role,
                    purpose=row.purpose,
                    case_ref=row.case_ref,
                    fields=read,
                    denied=denied,
                    trace_id=row.trace_id,
                )
            )
        return accesses
