"""How many inspections one enterprise bears (综合查一次), and the warnings past that.

policies/inspection-limits.csv sets, by industry and colour, how many inspections of one
enterprise by all departments together a period of days bears: from ``warn_at`` on the hub
warns, past ``limit`` the enterprise is over. Every department's inspections count, whoever
asks: a warning that depended on the caller's reading rights would tell two departments
different things about the same visits. A joint inspection (one visit by several
departments) is one inspection.

``judge`` is the verdict for a count; hub/publishing/warnings.py records the warnings that
newly published inspections raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Select, Table, select

from hub import models
from hub.policy.supervision import Limit

__all__ = ["Judgement", "Verdict", "judge", "ordinal", "period", "within"]

INSPECTION = cast(Table, models.Inspection.__table__)


class Verdict(StrEnum):
    ALLOWED = "allowed"
    WARN = "warn"  # at or past warn_at, within the limit
    OVER = "over"  # past the limit


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict on an enterprise's inspections in one period, with its reason."""

    verdict: Verdict
    count: int  # inspections in the period, the one judged included
    limit: Limit | None  # None: no limit is set
    period_from: date
    period_until: date
    reason: str

    def data(self) -> dict[str, Any]:
        """As the change feed and the warning's row keep it."""
        limit = self.limit
        return {
            "verdict": self.verdict.value,
            "count": self.count,
            "limit": limit.limit if limit else None,
            "warnAt": limit.warn_at if limit else None,
            "periodFrom": self.period_from.isoformat(),
            "periodUntil": self.period_until.isoformat(),
            "reason": self.reason,
        }


def period(limit: Limit | None, on: date) -> tuple[date, date]:
    """The days whose inspections count on day ``on``: the limit's days, ``on`` the last."""
    return on - timedelta(days=(limit.days if limit else 365) - 1), on


def within(enterprise_id: int, days: tuple[date, date]) -> Select[Any]:
    """The current inspections of an enterprise in a period."""
    c = INSPECTION.c
    return select(c.id, c.owner, c.inspected_on).where(
        c.enterprise_id == enterprise_id,
        c.retracted.is_(False),
        c.inspected_on.between(*days),
    )


def judge(limit: Limit | None, count: int, days: tuple[date, date], what: str) -> Judgement:
    """The verdict on ``count`` inspections in ``days`` (``what`` says whose and which:
    "an inspection of 91330... on 2026-11-28, the 4th"), with its reason."""
    start, end = days
    if limit is None:
        return Judgement(Verdict.ALLOWED, count, None, start, end,
                       "no inspection limit is set (policies/inspection-limits.csv)")  # fmt: skip
    scope = f"from {start} to {end} by all departments together"
    bound = (
        f"{limit.cited} allows {limit.limit} and warns from {limit.warn_at} "
        f"({limit.industry if limit.industry != '*' else 'any industry'}, "
        f"{limit.colour if limit.colour != '*' else 'any colour'}): {limit.basis}"
    )
    if count > limit.limit:
        return Judgement(Verdict.OVER, count, limit, start, end,
                       f"{what}, is past the limit: {count} {scope}; {bound}")  # fmt: skip
    if count >= limit.warn_at:
        return Judgement(Verdict.WARN, count, limit, start, end,
                       f"{what}, reaches the warning level: {count} {scope}; {bound}")  # fmt: skip
    return Judgement(Verdict.ALLOWED, count, limit, start, end,
                   f"{what}, is within the limit: {count} {scope}; {bound}")  # fmt: skip


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
