"""The warnings new inspections raise (hub/supervision/inspections.py judges them): each
recorded in publishing's transaction with a version in the change feed (kind
``InspectionWarning``, owned by the inspecting department), so departments following the
feed hear of it, and returned in the publish's answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.policy import Policy
from hub.policy.supervision import Limit
from hub.publishing.versions import VERSION, Change, Published, Publisher, new_version, now
from hub.supervision.inspections import (
    INSPECTION,
    Judgement,
    Verdict,
    judge,
    ordinal,
    period,
)

__all__ = ["KIND", "store", "warn"]

KIND = "InspectionWarning"  # in the change feed
WARNING = cast(Table, models.InspectionWarning.__table__)
SLICE = 1000  # inspection ids a statement names


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
                   e.uscc, e.industry, e.colour)
            .join_from(INSPECTION, models.Enterprise.__table__, e.id == c.enterprise_id)
            .where(c.id.in_(list(created)))
        )
    ).all()  # fmt: skip
    judged = []
    for row in sorted(rows, key=lambda r: created[r.id].index):
        limit = policy.limits.of(row.industry, row.colour) if policy.limits else None
        if limit is not None:
            judged.append((row, limit, period(limit, row.inspected_on)))
    if not judged:
        return [], head
    # Every current inspection of these enterprises in any of the periods: one statement.
    days: dict[int, list[date]] = defaultdict(list)
    for found in await connection.execute(
        select(c.enterprise_id, c.inspected_on).where(
            c.enterprise_id.in_({row.enterprise_id for row, _, _ in judged}),
            c.retracted.is_(False),
            c.inspected_on.between(min(p[0] for _, _, p in judged),
                                   max(p[1] for _, _, p in judged)),
        )
    ):  # fmt: skip
        days[found.enterprise_id].append(found.inspected_on)
    raised: list[tuple[Any, Limit, Published, Judgement]] = []
    for row, limit, (start, end) in judged:
        count = sum(start <= day <= end for day in days[row.enterprise_id])
        result = created[row.id]
        warning = judge(limit, count, (start, end),
                        f"{row.owner}'s inspection {row.source_id} of {result.uscc}, the "
                        f"{ordinal(count)}")  # fmt: skip
        if warning.verdict is not Verdict.ALLOWED:
            raised.append((row, limit, result, warning))
    if not raised:
        return [], head
    ids, head = await store(
        connection, [(row, limit, warning) for row, limit, _, warning in raised], head,
        lambda _: publisher,
    )  # fmt: skip
    return [
        Published(result.index, KIND, result.source_id, ids[row.id], 1, Change.WARNED,
                  result.uscc, warning)
        for row, _, result, warning in raised
    ], head  # fmt: skip


async def store(
    connection: AsyncConnection,
    raised: Sequence[tuple[Any, Limit, Judgement]],
    head: int,
    publisher: Callable[[Any], Publisher],
) -> tuple[dict[int, int], int]:
    """Store warnings (each an inspection's row: id, enterprise_id, owner, source_id, uscc;
    its limit; the judgement), each with a version in the feed after ``head``, published by
    ``publisher(row)``; the warnings' ids by inspection id, and the new head."""
    await connection.execute(insert(WARNING), [
        {"enterprise_id": row.enterprise_id, "inspection_id": row.id, "owner": row.owner,
         "verdict": warning.verdict.value, "count": warning.count, "limit": limit.limit,
         "warn_at": limit.warn_at, "period_from": warning.period_from,
         "period_until": warning.period_until, "reason": warning.reason, "created_at": now()}
        for row, limit, warning in raised
    ])  # fmt: skip
    ids: dict[int, int] = {}
    inspections = [row.id for row, _, _ in raised]
    for start in range(0, len(inspections), SLICE):  # the demo's can be tens of thousands
        ids.update(
            (
                await connection.execute(
                    select(WARNING.c.inspection_id, WARNING.c.id).where(
                        WARNING.c.inspection_id.in_(inspections[start : start + SLICE])
                    )
                )
            ).all()
        )
    versions = []
    for row, _, warning in raised:
        head += 1
        versions.append(
            new_version(head, KIND, row.owner, row.source_id, ids[row.id], row.uscc, 1,
                        Change.CREATED, warning.data(), "", warning.reason, publisher(row))
        )  # fmt: skip
    await connection.execute(insert(VERSION), versions)
    return ids, head
