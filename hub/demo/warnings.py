"""The warnings the demo's inspections raise, as if each had been published on its day.

Demo records are loaded, not published, so publishing never judged their inspections against
policies/inspection-limits.csv (hub/publishing/warnings.py). Here each enterprise's
inspections are judged one after another, by day, as a publish judges a new one: the
inspections of the enterprise in the limit's period ending that day, this one and those
before it counted, the limit by the enterprise's industry and the colour it has after
loading (its only colour). Each warning is stored and put in the change feed by publishing's own
``store``, so the feed, ``statistics`` and the README's examples show warnings from the first run.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import models
from hub.policy.supervision import Limit, Limits
from hub.publishing.versions import Publisher, advance_feed, lock_feed
from hub.publishing.warnings import store
from hub.supervision import Judgement, Verdict, judge, ordinal, period

__all__ = ["raise_warnings"]

INSPECTION = cast(Table, models.Inspection.__table__)
ENTERPRISE = cast(Table, models.Enterprise.__table__)
CLIENT = "demo data"


async def raise_warnings(engine: AsyncEngine, limits: Limits) -> int:
    """Store the warnings the current inspections raise under ``limits`` (see the module
    docstring), each with its version in the feed, in one transaction; how many."""
    if not limits:
        return 0
    i, e = INSPECTION.c, ENTERPRISE.c
    async with engine.begin() as connection:
        head = await lock_feed(connection)  # as publishers take it, before reading
        rows = (
            await connection.execute(
                select(i.id, i.owner, i.source_id, i.enterprise_id, i.inspected_on,
                       e.uscc, e.industry, e.colour)
                .join_from(INSPECTION, ENTERPRISE, e.id == i.enterprise_id)
                .where(i.retracted.is_(False))
                .order_by(i.enterprise_id, i.inspected_on, i.id)
            )
        ).all()  # fmt: skip
        before: defaultdict[int, list[date]] = defaultdict(list)  # days judged, by enterprise
        raised: list[tuple[Any, Limit, Judgement]] = []
        for row in rows:
            limit = limits.of(row.industry, row.colour)
            start, end = period(limit, row.inspected_on)
            days = before[row.enterprise_id]
            days.append(row.inspected_on)
            count = sum(start <= day <= end for day in days)
            judged = judge(limit, count, (start, end),
                           f"{row.owner}'s inspection {row.source_id} of {row.uscc}, the "
                           f"{ordinal(count)}")  # fmt: skip
            if judged.verdict is not Verdict.ALLOWED:
                raised.append((row, limit, judged))
        if not raised:
            return 0
        _, head = await store(connection, raised, head,
                              lambda row: Publisher(CLIENT, row.owner, row.owner))  # fmt: skip
        await advance_feed(connection, head)
    return len(raised)
