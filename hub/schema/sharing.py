"""Share requests and grants in GraphQL (the workflow is hub/sharing.py).

Every state change is entered in the request's access record with the state before and
after it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from hub import sharing
from hub.errors import BadUserInput
from hub.grants import GRANT, GrantRule, Scope
from hub.records import today
from hub.schema.context import Info
from hub.schema.types import Department
from hub.sharing import REQUEST, RequestStatus
from hub.values import LARGEST_INTEGER, whole

__all__ = ["SharingMutation", "SharingQuery", "id_of"]

strawberry.enum(RequestStatus, description="Where a share request stands.")


@strawberry.input(description="Which enterprises: all when neither list is given.")
class ScopeInput:
    regions: list[str] | None = strawberry.field(default=None, description="Districts.")
    usccs: list[str] | None = strawberry.field(default=None, description="Enterprises.")

    def scope(self) -> Scope:
        return Scope.of(self.regions, self.usccs)


@strawberry.type(description="Which enterprises a request or grant covers.")
class ShareScope:
    all_enterprises: bool
    regions: list[str]
    usccs: list[str]

    @classmethod
    def of(cls, regions: str, usccs: str) -> ShareScope:
        scope = Scope.stored(regions, usccs)
        return cls(
            all_enterprises=scope.everything, regions=list(scope.regions), usccs=list(scope.usccs)
        )


@strawberry.type(description="An application for another department's conditional fields.")
class ShareRequest:
    id: strawberry.ID
    requester: Department
    owner: Department
    fields: list[str] = strawberry.field(description="Schema coordinates asked for.")
    purpose: str = strawberry.field(description="Purpose code (policies/purposes.csv).")
    purpose_detail: str
    legal_basis: str
    scope: ShareScope
    wanted_from: date
    wanted_until: date
    status: RequestStatus
    filed_at: datetime
    filed_by: str
    due_on: date = strawberry.field(description="When the owner's decision is due.")
    overdue: bool = strawberry.field(description="Pending past its due day: for escalation.")
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None = strawberry.field(description="Why it was refused (or a note).")
    grant_id: strawberry.ID | None = strawberry.field(description="The grant an approval made.")


@strawberry.type(description="An approval: conditional fields for one purpose, scope and period.")
class Grant:
    id: strawberry.ID
    request_id: strawberry.ID
    requester: Department
    owner: Department
    fields: list[str]
    purpose: str
    scope: ShareScope
    valid_from: date
    valid_until: date
    approved_at: datetime
    approved_by: str
    state: str = strawberry.field(description="active, expired, revoked or not yet valid.")
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


def _request(info: Info, row: Any, grant_id: int | None = None) -> ShareRequest:
    departments = info.context.access.departments
    return ShareRequest(
        id=strawberry.ID(str(row.id)),
        requester=departments[row.requester],
        owner=departments[row.owner],
        fields=row.fields.split(),
        purpose=row.purpose,
        purpose_detail=row.purpose_detail,
        legal_basis=row.legal_basis,
        scope=ShareScope.of(row.regions, row.usccs),
        wanted_from=row.wanted_from,
        wanted_until=row.wanted_until,
        status=RequestStatus(row.status),
        filed_at=row.filed_at,
        filed_by=row.filed_by,
        due_on=row.due_on,
        overdue=row.status == RequestStatus.PENDING and today() > row.due_on,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        reason=row.reason,
        grant_id=None if grant_id is None else strawberry.ID(str(grant_id)),
    )


def _grant(info: Info, row: Any) -> Grant:
    departments = info.context.access.departments
    return Grant(
        id=strawberry.ID(str(row.id)),
        request_id=strawberry.ID(str(row.request_id)),
        requester=departments[row.requester],
        owner=departments[row.owner],
        fields=row.fields.split(),
        purpose=row.purpose,
        scope=ShareScope.of(row.regions, row.usccs),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        approved_at=row.approved_at,
        approved_by=row.approved_by,
        state=GrantRule.of(row).state(today()),
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
    )


def id_of(value: strawberry.ID, what: str) -> int:
    """The id a caller gave for a ``what``; BadUserInput for anything that is not one."""
    number = whole(value, LARGEST_INTEGER)
    if number is None:
        raise BadUserInput(f"{value!r} is not the id of a {what}", argument="id")
    return number


@strawberry.input(description="Which share requests; every condition given applies.")
class ShareRequestFilter:
    status: RequestStatus | None = None
    owner: str | None = None
    requester: str | None = None
    overdue: bool | None = strawberry.field(
        default=None, description="Only pending requests past their due day."
    )


@strawberry.input(description="Which grants; every condition given applies.")
class GrantFilter:
    owner: str | None = None
    requester: str | None = None
    active: bool | None = strawberry.field(default=None, description="Only active grants.")


@strawberry.type
class SharingQuery:
    @strawberry.field(
        description="Share requests your department filed or must decide (all of them for "
        "auditors and admins), newest first. Admins escalate with filter: {overdue: true}."
    )
    async def share_requests(
        self, info: Info, filter: ShareRequestFilter | None = None
    ) -> list[ShareRequest]:
        conditions = sharing.visible_to(info.context.access.principal, REQUEST)
        wanted = filter or ShareRequestFilter()
        if wanted.status is not None:
            conditions.append(REQUEST.c.status == wanted.status.value)
        if wanted.owner is not None:
            conditions.append(REQUEST.c.owner == wanted.owner)
        if wanted.requester is not None:
            conditions.append(REQUEST.c.requester == wanted.requester)
        if wanted.overdue:
            conditions += [REQUEST.c.status == RequestStatus.PENDING.value,
                           REQUEST.c.due_on < today()]  # fmt: skip
        statement = (
            select(REQUEST, GRANT.c.id.label("grant_id"))
            .outerjoin(GRANT, GRANT.c.request_id == REQUEST.c.id)
            .where(*conditions)
            .order_by(REQUEST.c.id.desc())
        )
        rows = await info.context.loaders.reader.rows(statement)
        return [_request(info, row, row.grant_id) for row in rows]

    @strawberry.field(
        description="Grants to or from your department (all of them for auditors and "
        "admins), newest first."
    )
    async def grants(self, info: Info, filter: GrantFilter | None = None) -> list[Grant]:
        conditions = sharing.visible_to(info.context.access.principal, GRANT)
        wanted = filter or GrantFilter()
        if wanted.owner is not None:
            conditions.append(GRANT.c.owner == wanted.owner)
        if wanted.requester is not None:
            conditions.append(GRANT.c.requester == wanted.requester)
        if wanted.active:
            day = today()
            conditions += [GRANT.c.revoked_at.is_(None), GRANT.c.valid_from <= day,
                           GRANT.c.valid_until >= day]  # fmt: skip
        rows = await info.context.loaders.reader.rows(
            select(GRANT).where(*conditions).order_by(GRANT.c.id.desc())
        )
        return [_grant(info, row) for row in rows]


@strawberry.type
class SharingMutation:
    @strawberry.mutation(
        description="Apply for another department's conditional fields (有条件共享申请). "
        "Refused at once, with the reason, for fields that are not shared or need no request."
    )
    async def request_share(
        self,
        info: Info,
        owner: str,
        fields: Annotated[
            list[str],
            strawberry.argument(description="Type.field coordinates or field groups."),
        ],
        purpose: Annotated[str, strawberry.argument(description="A purpose code.")],
        purpose_detail: Annotated[str, strawberry.argument(description="The purpose in words.")],
        legal_basis: str,
        wanted_from: date,
        wanted_until: date,
        scope: ScopeInput | None = None,
    ) -> ShareRequest:
        access, writer = info.context.access, await info.context.writer()
        row = await sharing.file_request(
            writer, access.policy, access.principal, owner=owner, fields=fields,
            purpose=purpose, purpose_detail=purpose_detail, legal_basis=legal_basis,
            scope=scope.scope() if scope else Scope(), wanted_from=wanted_from,
            wanted_until=wanted_until, decision_days=info.context.share_decision_days,
        )  # fmt: skip
        access.trail.transition("ShareRequest", str(row.id), "filed", None,
                                sharing.request_state(row))  # fmt: skip
        return _request(info, row)

    @strawberry.mutation(
        description="Approve (possibly for fewer fields, a narrower scope or a shorter "
        "period) or refuse with a reason a request for your department's records."
    )
    async def decide_share_request(
        self,
        info: Info,
        id: strawberry.ID,
        approve: bool,
        reason: Annotated[
            str | None, strawberry.argument(description="Required to refuse.")
        ] = None,
        fields: list[str] | None = None,
        scope: ScopeInput | None = None,
        valid_from: date | None = None,
        valid_until: date | None = None,
    ) -> ShareRequest:
        access, writer = info.context.access, await info.context.writer()
        before, after, grant = await sharing.decide_request(
            writer, access.policy, access.principal, id_of(id, "share request"),
            approve=approve, reason=reason, fields=fields,
            scope=scope.scope() if scope else None, valid_from=valid_from,
            valid_until=valid_until,
        )  # fmt: skip
        state = sharing.request_state
        access.trail.transition(
            "ShareRequest", str(after.id), after.status, state(before), state(after)
        )
        if grant is not None:
            access.trail.transition("Grant", str(grant.id), "approved", None,
                                    sharing.request_state(grant))  # fmt: skip
        return _request(info, after, grant.id if grant is not None else None)

    @strawberry.mutation(description="Revoke a grant (its owner department, or an admin).")
    async def revoke_grant(
        self,
        info: Info,
        id: strawberry.ID,
        reason: Annotated[str, strawberry.argument(description="Why, for the requester.")],
    ) -> Grant:
        access = info.context.access
        before, after = await sharing.revoke_grant(
            await info.context.writer(), access.principal, id_of(id, "grant"), reason
        )
        state = sharing.request_state
        access.trail.transition("Grant", str(after.id), "revoked", state(before), state(after))
        return _grant(info, after)
