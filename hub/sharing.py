"""Conditional sharing (有条件共享): share requests, decisions and the grants they make.

A department files a request for another department's ``conditional`` fields, stating a
purpose (a code from policies/purposes.csv and free text), a legal basis, a scope (all
enterprises, districts or listed USCCs) and a period. The owner approves, possibly narrowing
fields, scope or period, or refuses with a reason, within a number of working days. An
approval is a grant (enforced as grants.py says); the owner or an admin may revoke it with a
reason. Approvals and revocations move the grant version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Row, Select, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import models
from hub.auth import Principal
from hub.db import writing
from hub.domain import DEPARTMENTS, Role
from hub.errors import BadUserInput, Forbidden, NotFound
from hub.grants import GRANT, HEAD, Scope
from hub.policy import Policy, Sharing
from hub.records import today

__all__ = [
    "DECISION_DAYS",
    "REQUEST",
    "RequestStatus",
    "decide_request",
    "due_date",
    "file_request",
    "request_state",
    "revoke_grant",
    "visible_to",
]

DECISION_DAYS = 10  # working days the owner has to decide (configurable)
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
REQUEST = cast(Table, models.ShareRequest.__table__)

Rows = Callable[[Select[Any]], Awaitable[Sequence[Row[Any]]]]


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


def due_date(filed: date, working_days: int) -> date:
    """``working_days`` weekdays after ``filed`` (public holidays are not modelled)."""
    day = filed
    while working_days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            working_days -= 1
    return day


# The workflow -------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, what: str, argument: str) -> str:
    if value is None or not value.strip():
        raise BadUserInput(f"state the {what}", argument=argument)
    return value.strip()


def expand_fields(policy: Policy, owner: str, requester: str, names: Iterable[str]) -> list[str]:
    """Coordinates and field groups as the coordinates they stand for; refuses at once what
    no grant could open, saying why."""
    coordinates: set[str] = set()
    for name in names:
        name = name.strip()
        if name in policy.field_groups:
            coordinates |= policy.field_groups[name]
        elif name in policy.catalog:
            coordinates.add(name)
        else:
            raise BadUserInput(
                f"unknown field {name!r}: give Type.field coordinates or field groups "
                f"({', '.join(sorted(policy.field_groups))})",
                argument="fields",
            )
    if not coordinates:
        raise BadUserInput("name at least one field", argument="fields")
    conditional = []
    for coordinate in sorted(coordinates):
        entry = policy.catalog[coordinate]
        if entry.sharing is Sharing.NONE:
            raise BadUserInput(
                f"{coordinate} is not shared with other departments ({entry.basis}); no "
                "request can open it",
                argument="fields",
            )
        if entry.sharing is Sharing.UNCONDITIONAL:
            continue  # needs no grant; a field group may hold some
        decision = policy.decide(requester, owner, coordinate, purpose=True)
        if not decision.allowed:
            raise BadUserInput(
                f"{coordinate} of {owner}'s records cannot reach {requester} even with a grant: "
                f"{decision.reason}; ask for a policy change instead",
                argument="fields",
            )
        conditional.append(coordinate)
    if not conditional:
        raise BadUserInput(
            "every field asked for is shared without conditions already; request conditional "
            "fields only",
            argument="fields",
        )
    return conditional


def request_state(row: Any) -> dict[str, Any]:
    """A request or grant as the access log keeps its before and after state."""
    return {
        key: (value.isoformat() if isinstance(value, date | datetime) else value)
        for key, value in row._mapping.items()
    }


async def _bump(connection: AsyncConnection) -> None:
    await connection.execute(update(HEAD).where(HEAD.c.id == 1).values(version=HEAD.c.version + 1))


async def file_request(
    target: AsyncEngine | AsyncConnection,
    policy: Policy,
    requester: Principal,
    *,
    owner: str,
    fields: Sequence[str],
    purpose: str,
    purpose_detail: str,
    legal_basis: str,
    scope: Scope,
    wanted_from: date,
    wanted_until: date,
    decision_days: int = DECISION_DAYS,
) -> Any:
    """File a request; BadUserInput saying why when it is refused at once. The stored row."""
    if requester.role is not Role.DEPARTMENT:
        raise Forbidden(owner, "ShareRequest", "only department systems file share requests",
                        action="filing a share request")  # fmt: skip
    if owner not in DEPARTMENT_CODES:
        raise BadUserInput(
            f"unknown owner {owner!r}; one of {', '.join(DEPARTMENT_CODES)}", argument="owner"
        )
    if owner == requester.department:
        raise BadUserInput("your own records need no share request", argument="owner")
    if purpose not in policy.purposes:
        raise BadUserInput(
            f"unknown purpose {purpose!r}; one of {', '.join(policy.purposes)} "
            "(policies/purposes.csv)",
            argument="purpose",
        )
    coordinates = expand_fields(policy, owner, requester.department, fields)
    detail = _text(purpose_detail, "purpose in words (purposeDetail)", "purposeDetail")
    basis = _text(legal_basis, "legal basis", "legalBasis")
    day = today()
    if wanted_until < wanted_from:
        raise BadUserInput(
            f"the period ends ({wanted_until}) before it starts ({wanted_from})",
            argument="wantedUntil",
        )
    if wanted_until < day:
        raise BadUserInput(f"the period ended on {wanted_until}", argument="wantedUntil")
    values = {
        "requester": requester.department, "owner": owner, "fields": " ".join(coordinates),
        "purpose": purpose, "purpose_detail": detail, "legal_basis": basis, **scope.columns(),
        "wanted_from": wanted_from, "wanted_until": wanted_until,
        "status": RequestStatus.PENDING.value, "filed_at": _now(), "filed_by": requester.name,
        "due_on": due_date(day, decision_days),
    }  # fmt: skip
    async with writing(target) as transaction:
        statement = insert(REQUEST).values(values).returning(REQUEST)
        return (await transaction.connection.execute(statement)).one()


async def decide_request(
    target: AsyncEngine | AsyncConnection,
    policy: Policy,
    decider: Principal,
    request_id: int,
    *,
    approve: bool,
    reason: str | None = None,
    fields: Sequence[str] | None = None,
    scope: Scope | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> tuple[Any, Any, Any]:
    """Approve (possibly narrower) or refuse a pending request: (before, after, grant)."""
    async with writing(target) as transaction:
        connection = transaction.connection
        before = (
            # Locked until the decision commits: two deciders cannot both act on "pending".
            await connection.execute(
                select(REQUEST).where(REQUEST.c.id == request_id).with_for_update()
            )
        ).one_or_none()
        if before is None or not _sees(decider, before):
            raise NotFound(f"no share request {request_id}", argument="id")
        if decider.role is not Role.DEPARTMENT or decider.department != before.owner:
            raise Forbidden(before.owner, "ShareRequest",
                            f"only {before.owner}'s systems decide requests for its records",
                            action=f"deciding share request {request_id}")  # fmt: skip
        if before.status != RequestStatus.PENDING:
            raise BadUserInput(f"share request {request_id} was already {before.status}",
                               argument="id")  # fmt: skip
        decided = {"decided_at": _now(), "decided_by": decider.name}
        grant = None
        if not approve:
            text = _text(reason, "reason for the refusal", "reason")
            await connection.execute(
                update(REQUEST).where(REQUEST.c.id == request_id)
                .values(status=RequestStatus.REFUSED.value, reason=text, **decided)
            )  # fmt: skip
        else:
            asked = set(before.fields.split())
            granted = (
                set(expand_fields(policy, before.owner, before.requester, fields))
                if fields
                else asked
            )
            if wider := granted - asked:
                raise BadUserInput(
                    f"{', '.join(sorted(wider))} were not requested: an approval may only "
                    "narrow the fields",
                    argument="fields",
                )
            requested_scope = Scope.stored(before.regions, before.usccs)
            granted_scope = scope or requested_scope
            if not granted_scope.within(requested_scope):
                raise BadUserInput(
                    f"the scope {granted_scope} is wider than the one requested "
                    f"({requested_scope})",
                    argument="scope",
                )
            start = valid_from or max(before.wanted_from, today())
            end = valid_until or before.wanted_until
            if start < before.wanted_from or end > before.wanted_until or end < start:
                raise BadUserInput(
                    f"the period {start}..{end} is not within the one requested "
                    f"({before.wanted_from}..{before.wanted_until})",
                    argument="validUntil",
                )
            await connection.execute(
                update(REQUEST).where(REQUEST.c.id == request_id)
                .values(status=RequestStatus.APPROVED.value, reason=reason, **decided)
            )  # fmt: skip
            grant = (
                await connection.execute(
                    insert(GRANT).values(
                        request_id=request_id, requester=before.requester, owner=before.owner,
                        fields=" ".join(sorted(granted)), purpose=before.purpose,
                        **granted_scope.columns(), valid_from=start, valid_until=end,
                        approved_at=decided["decided_at"], approved_by=decider.name,
                    ).returning(GRANT)
                )
            ).one()  # fmt: skip
            await _bump(connection)
        after = (await connection.execute(select(REQUEST).where(REQUEST.c.id == request_id))).one()
    return before, after, grant


async def revoke_grant(
    target: AsyncEngine | AsyncConnection, revoker: Principal, grant_id: int, reason: str
) -> tuple[Any, Any]:
    """Revoke a grant, as its owner department or an admin: (before, after)."""
    text = _text(reason, "reason for the revocation", "reason")
    async with writing(target) as transaction:
        connection = transaction.connection
        before = (
            await connection.execute(select(GRANT).where(GRANT.c.id == grant_id).with_for_update())
        ).one_or_none()
        if before is None or not _sees(revoker, before):
            raise NotFound(f"no grant {grant_id}", argument="id")
        owner_system = revoker.role is Role.DEPARTMENT and revoker.department == before.owner
        if not owner_system and revoker.role is not Role.ADMIN:
            raise Forbidden(before.owner, "Grant",
                            f"only {before.owner}'s systems or an admin revoke its grants",
                            action=f"revoking grant {grant_id}")  # fmt: skip
        if before.revoked_at is not None:
            raise BadUserInput(f"grant {grant_id} was already revoked", argument="id")
        await connection.execute(
            update(GRANT).where(GRANT.c.id == grant_id)
            .values(revoked_at=_now(), revoked_by=revoker.name, revoke_reason=text)
        )  # fmt: skip
        await _bump(connection)
        after = (await connection.execute(select(GRANT).where(GRANT.c.id == grant_id))).one()
    return before, after


def _sees(principal: Principal, row: Any) -> bool:
    """Whether ``principal`` may know of a request or grant (as ``visible_to`` lists them):
    to anyone else it reads exactly like one that does not exist."""
    if principal.role in (Role.AUDITOR, Role.ADMIN):
        return True
    return principal.department in (row.requester, row.owner)


def visible_to(principal: Principal, table: Table) -> list[Any]:
    """Conditions on requests or grants a caller may list: its own department's, as
    requester or owner; everything for auditors and admins."""
    if principal.role in (Role.AUDITOR, Role.ADMIN):
        return []
    department = principal.department
    return [(table.c.requester == department) | (table.c.owner == department)]
