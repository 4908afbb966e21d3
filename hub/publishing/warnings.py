"""The warnings new inspections raise (hub/supervision/inspections.py judges them): each
recorded in publishing's transaction with a version in the change feed (kind
``InspectionWarning``, owned by the inspecting department), so departments following the
feed hear of it, and returned in the publish's answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.policy import Policy
from hub.publishing.versions import VERSION, Change, Published, Publisher, new_version, now
from hub.supervision.inspections import (
    INSPECTION,
    Judgement,
    Verdict,
    judge,
    ordinal,
    period,
    within,
)

__all__ = ["KIND", "warn"]

KIND = "InspectionWarning"  # in the change feed
WARNING = cast(Table, models.InspectionWarning.__table__)


async def warn(
    connection: AsyncConnection,
    policy: Policy,
    published: Sequence[Published],
    head: int,
    publisher: Publisher,
) -> tuple[list[Published], int]:
    """The warnings that the inspections ``published`` newly raise, recorded with a version
    each in the feed (in the caller's transaction, which holds the feed head ``head``), as
    results of the publish (change WARNED, the Judgement in ``detail``); and the new head.
    Only created inspections warn: a correction of one is no new visit."""
    created = {p.record_id: p for p in published if p.kind == "Inspection"
               and p.change is Change.CREATED and p.record_id is not None}  # fmt: skip
    if not created:
        return [], head
    c, e = INSPECTION.c, models.Enterprise.__table__.c
    rows = (
        await connection.execute(
            select(c.id, c.owner, c.source_id, c.enterprise_id, c.inspected_on,
                   e.industry, e.colour)
            .join_from(INSPECTION, models.Enterprise.__table__, e.id == c.enterprise_id)
            .where(c.id.in_(list(created)))
        )
    ).all()  # fmt: skip
    raised: list[tuple[Published, Judgement]] = []
    stored, versions, warned = [], [], []
    for row in sorted(rows, key=lambda r: created[r.id].index):
        limit = policy.limits.of(row.industry, row.colour) if policy.limits else None
        days = period(limit, row.inspected_on)
        count = (
            await connection.execute(
                select(func.count()).select_from(within(row.enterprise_id, days).subquery())
            )
        ).scalar_one()
        result = created[row.id]
        warning = judge(limit, count, days,
                        f"{row.owner}'s inspection {row.source_id} of {result.uscc}, the "
                        f"{ordinal(count)} from {days[0]} to {days[1]},")  # fmt: skip
        if warning.verdict is Verdict.ALLOWED or limit is None:
            continue
        raised.append((result, warning))
        stored.append({"enterprise_id": row.enterprise_id, "inspection_id": row.id,
                       "owner": row.owner, "verdict": warning.verdict.value, "count": count,
                       "limit": limit.limit, "warn_at": limit.warn_at, "period_from": days[0],
                       "period_until": days[1], "reason": warning.reason,
                       "created_at": now()})  # fmt: skip
    for (result, warning), values in zip(raised, stored, strict=True):
        warning_id = (
            await connection.execute(insert(WARNING).values(values).returning(WARNING.c.id))
        ).scalar_one()
        head += 1
        versions.append(
            new_version(head, KIND, values["owner"], result.source_id, warning_id, result.uscc,
                        1, Change.CREATED, warning.data(), "", warning.reason, publisher)
        )  # fmt: skip
        warned.append(Published(result.index, KIND, result.source_id, warning_id, 1,
                                Change.WARNED, result.uscc, warning))  # fmt: skip
    if versions:
        await connection.execute(insert(VERSION), versions)
    return warned, head
