"""Orders that contradict each other (标准打架): found when published, shown, settled.

Rectification requirements carry codes from ``policies/requirements.csv``; ``conflicts.csv``
lists the pairs of codes that cannot both be obeyed (a VOC workshop sealed against fumes and
opened against explosions). Whenever orders are published, every open order of another
department to the same enterprise is compared with them, in the publishing transaction: a
contradiction is recorded once per pair of orders and codes, with when it was found, and
both departments and comprehensive law enforcement are told. From then on each party reads
the other's order (the ``conflicting`` relation of the policy) until, and after, one of
them or law enforcement settles it, saying how.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import models
from hub.auth import Principal
from hub.db import writing
from hub.domain import RectificationStatus, Role
from hub.errors import BadUserInput, Forbidden, NotFound
from hub.values import text

__all__ = [
    "CONFLICT",
    "COORDINATOR",
    "OPEN",
    "Found",
    "find_conflicts",
    "parties",
    "settle",
    "visible_to",
]

CONFLICT = cast(Table, models.Conflict.__table__)
RECTIFICATION = cast(Table, models.Rectification.__table__)
ENTERPRISE = cast(Table, models.Enterprise.__table__)
NOTIFICATION = cast(Table, models.Notification.__table__)
# Orders still to be carried out: an accepted one binds nobody any more.
OPEN = (
    RectificationStatus.IN_PROGRESS,
    RectificationStatus.SUBMITTED,
    RectificationStatus.FAILED,
    RectificationStatus.OVERDUE,
)
# Comprehensive law enforcement coordinates the departments (大综合一体化): it sees and
# settles every conflict.
COORDINATOR = "enforcement"
SETTLEMENT = text(2000, lines=True)
CHUNK = 5000  # enterprises per statement: far below SQLite's and asyncpg's parameter limits


@dataclass(frozen=True, slots=True)
class Found:
    """A conflict recorded now."""

    id: int
    uscc: str
    first: tuple[int, str, str, str]  # (rectification id, owner, source id, code)
    second: tuple[int, str, str, str]
    reason: str


def parties(row: Any) -> set[str]:
    """Who sees and may settle a conflict: both ordering departments and the coordinator."""
    return {row.first_owner, row.second_owner, COORDINATOR}


def visible_to(principal: Principal) -> list[Any]:
    """Conditions on the conflicts a caller may list: its department's, every one for the
    coordinator. Auditors and admins read none (they name enterprises and orders)."""
    if principal.role is not Role.DEPARTMENT:
        raise Forbidden(principal.department, "Query.conflicts",
                        "conflicts are for the departments of the orders and comprehensive law "
                        "enforcement; auditors read the access log, and admins read no "
                        "enterprise data", action="reading conflicts")  # fmt: skip
    department = principal.department
    if department == COORDINATOR:
        return []
    return [or_(CONFLICT.c.first_owner == department, CONFLICT.c.second_owner == department)]


async def find_conflicts(
    connection: AsyncConnection,
    pairs: Mapping[frozenset[str], str],
    enterprise_ids: Iterable[int],
) -> list[Found]:
    """Record every conflict between open orders of different departments to these
    enterprises that is not recorded yet, tell the parties, and return the new ones."""
    wanted = sorted(set(enterprise_ids))
    if not pairs or not wanted:
        return []
    by_enterprise: defaultdict[int, list[Any]] = defaultdict(list)
    for start in range(0, len(wanted), CHUNK):  # parameters per statement stay few
        for order in await connection.execute(
            select(
                RECTIFICATION.c.id,
                RECTIFICATION.c.owner,
                RECTIFICATION.c.source_id,
                RECTIFICATION.c.enterprise_id,
                RECTIFICATION.c.requirement_codes,
                RECTIFICATION.c.version,
                ENTERPRISE.c.uscc,
            )
            .join(ENTERPRISE, ENTERPRISE.c.id == RECTIFICATION.c.enterprise_id)
            .where(
                RECTIFICATION.c.enterprise_id.in_(wanted[start : start + CHUNK]),
                RECTIFICATION.c.status.in_(OPEN),
                RECTIFICATION.c.retracted.is_(False),
                RECTIFICATION.c.requirement_codes != "",
            )
            .order_by(RECTIFICATION.c.id)
        ):
            by_enterprise[order.enterprise_id].append(order)
    candidates = []
    for orders in by_enterprise.values():  # only orders to one enterprise can conflict
        for index, first in enumerate(orders):
            for second in orders[index + 1 :]:
                if first.owner == second.owner:
                    continue
                for a in first.requirement_codes.split():
                    for b in second.requirement_codes.split():
                        reason = pairs.get(frozenset((a, b)))
                        if reason is not None:
                            candidates.append((first, a, second, b, reason))
    if not candidates:
        return []
    known = {
        tuple(row)
        for row in await connection.execute(
            select(
                CONFLICT.c.first_id,
                CONFLICT.c.second_id,
                CONFLICT.c.first_code,
                CONFLICT.c.second_code,
            ).where(CONFLICT.c.first_id.in_({first.id for first, *_ in candidates}))
        )
    }
    found: list[Found] = []
    now = datetime.now(UTC)
    for first, a, second, b, reason in candidates:
        if (first.id, second.id, a, b) in known:
            continue
        conflict_id = (
            await connection.execute(
                insert(CONFLICT).values(
                    enterprise_id=first.enterprise_id,
                    first_id=first.id,
                    first_owner=first.owner,
                    first_code=a,
                    second_id=second.id,
                    second_owner=second.owner,
                    second_code=b,
                    reason=reason,
                    found_at=now,
                )
            )
        ).inserted_primary_key
        if conflict_id is None:  # every database here returns the new key
            raise RuntimeError("the database returned no id for a new conflict")
        found.append(
            Found(
                conflict_id[0],
                first.uscc,
                (first.id, first.owner, first.source_id, a),
                (second.id, second.owner, second.source_id, b),
                reason,
            )
        )
        await _tell(connection, "conflict_found", first, second, now,
                    f"{first.owner}'s order {first.source_id} ({a}) and {second.owner}'s order "
                    f"{second.source_id} ({b}) to enterprise {first.uscc} contradict: {reason}; "
                    f"settle it with settleConflict(id: {conflict_id[0]})")  # fmt: skip
    return found


async def settle(
    target: AsyncEngine | AsyncConnection, settler: Principal, conflict_id: int, settlement: str
) -> tuple[Any, Any]:
    """Settle a conflict, as one of its parties: (before, after)."""
    if not settlement.strip():
        raise BadUserInput("say how the conflict was settled", argument="settlement")
    try:
        how = SETTLEMENT(settlement).strip()
    except ValueError as error:
        raise BadUserInput(f"the settlement {error}", argument="settlement") from None
    async with writing(target) as transaction:
        connection = transaction.connection
        statement = select(CONFLICT).where(CONFLICT.c.id == conflict_id)
        before = (await connection.execute(statement.with_for_update())).one_or_none()
        # Anyone else reads a conflict that exists exactly like one that does not.
        if before is None or not _sees(settler, before):
            raise NotFound(f"no conflict {conflict_id}", argument="id")
        if before.settled_at is not None:
            raise BadUserInput(
                f"conflict {conflict_id} was settled on {before.settled_at:%Y-%m-%d} by "
                f"{before.settled_department}: {before.settlement}",
                argument="id",
            )
        now = datetime.now(UTC)
        await connection.execute(
            update(CONFLICT).where(CONFLICT.c.id == conflict_id).values(
                settled_at=now, settled_by=settler.name, settled_department=settler.department,
                settlement=how,
            )
        )  # fmt: skip
        after = (await connection.execute(statement)).one()
        orders = {
            row.id: row
            for row in await connection.execute(
                select(
                    RECTIFICATION.c.id,
                    RECTIFICATION.c.owner,
                    RECTIFICATION.c.source_id,
                    RECTIFICATION.c.version,
                    ENTERPRISE.c.uscc,
                )
                .join(ENTERPRISE, ENTERPRISE.c.id == RECTIFICATION.c.enterprise_id)
                .where(RECTIFICATION.c.id.in_((after.first_id, after.second_id)))
            )
        }
        first, second = orders[after.first_id], orders[after.second_id]
        await _tell(connection, "conflict_settled", first, second, now,
                    f"the conflict {conflict_id} between {first.owner}'s order {first.source_id} "
                    f"and {second.owner}'s order {second.source_id} was settled by "
                    f"{settler.department}: {how}")  # fmt: skip
    return before, after


def state(row: Any) -> dict[str, Any]:
    """A conflict as the access record keeps its transitions."""
    return {
        "first": row.first_id, "second": row.second_id,
        "codes": [row.first_code, row.second_code],
        "settled": row.settled_at is not None, "by": row.settled_department,
    }  # fmt: skip


def _sees(principal: Principal, row: Any) -> bool:
    return principal.role is Role.DEPARTMENT and principal.department in parties(row)


async def _tell(
    connection: AsyncConnection, topic: str, first: Any, second: Any, now: datetime, message: str
) -> None:
    """A notification to each party, about the other party's order (the coordinator's is
    about the second order)."""
    notes = []
    for department in sorted({first.owner, second.owner, COORDINATOR}):
        other = first if department == second.owner else second
        notes.append({
            "department": department, "topic": topic, "kind": "Rectification",
            "record_id": other.id, "owner": other.owner, "source_id": other.source_id,
            "uscc": other.uscc, "version": other.version, "message": message, "created_at": now,
        })  # fmt: skip
    await connection.execute(insert(NOTIFICATION), notes)
