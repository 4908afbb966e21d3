"""Before inspecting (综合查一次): ``inspectionCheck`` tells a department how many inspections
an enterprise has had in the period its limit counts, by whom, and whether one more is
allowed, warns, or is over (hub/supervision/inspections.py judges; the limits are
policies/inspection-limits.csv).

The count takes every department's inspections, whatever the caller reads of them: two
departments asking about the same enterprise get the same verdict. What it lists (the
inspections themselves) is built with the caller's own decisions and entered in its access
record, as any read of them.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Annotated

import strawberry

from hub.domain import DEPARTMENTS, Colour, PlanStatus
from hub.errors import BadUserInput, NotFound
from hub.records import EARLIEST_DAY, month_of, today
from hub.schema.context import Info
from hub.schema.loaders import Parent
from hub.schema.query import withheld_enterprise
from hub.schema.supervision import InspectionWarning
from hub.schema.types import Department, Inspection, InspectionPlan, built, date_range
from hub.supervision import judge, ordinal, period, within
from hub.uscc import parse_uscc

__all__ = ["InspectionCheck", "InspectionQuery"]

DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)


@strawberry.type(description="How many inspections of the enterprise one department made.")
class DepartmentCount:
    department: Department
    count: int


@strawberry.type(
    description="Whether one more inspection of an enterprise on a day is within what the "
    "period bears, with what it rests on."
)
class InspectionCheck:
    uscc: str
    department: Department = strawberry.field(description="The department that would inspect.")
    on: date = strawberry.field(description="The day it would inspect.")
    colour: Colour | None = strawberry.field(
        description="The enterprise's colour, which chose the limit (null where its colour "
        "code is withheld from you, or not yet computed)."
    )
    standing: InspectionWarning = strawberry.field(
        description="The verdict on one more inspection: count includes it."
    )
    by_department: list[DepartmentCount] = strawberry.field(
        description="Inspections in the period by department (of the departments whose "
        "inspections you may read), most first."
    )
    enterprise_id: strawberry.Private[int]

    @strawberry.field(
        description="The inspections in the period, oldest first, with the fields you may read."
    )
    async def inspections(self, info: Info) -> list[Inspection]:
        days = self.standing.period_from, self.standing.period_until
        rows = await info.context.loaders.inspections.load(date_range(self.enterprise_id, *days))
        return await built(info, Inspection, rows)

    @strawberry.field(
        description="Other departments' open plans to inspect the enterprise in the month of "
        "`on` (of departments whose plans you may read): join them instead (综合查一次)."
    )
    async def open_plans(self, info: Info) -> list[InspectionPlan]:
        month = month_of(self.on)
        rows = await info.context.loaders.inspection_plans.load(Parent(self.enterprise_id))
        others = [row for row in rows if row.month == month and row.status == PlanStatus.PLANNED
                  and row.owner_code != self.department.code]  # fmt: skip
        return await built(info, InspectionPlan, others)


def _day(on: date | None) -> date:
    day = today() if on is None else on
    if not EARLIEST_DAY <= day <= today() + timedelta(days=366):
        raise BadUserInput(
            f"on={day} is out of range: give a day from {EARLIEST_DAY} to a year from today",
            argument="on",
        )
    return day


@strawberry.type
class InspectionQuery:
    @strawberry.field(
        description="Before inspecting an enterprise: its inspections by all departments in "
        "the period its limit counts (policies/inspection-limits.csv), and whether one more "
        "on `on` is ALLOWED, WARNs or is OVER the limit, with the reason (综合查一次)."
    )
    async def inspection_check(
        self,
        info: Info,
        uscc: Annotated[str, strawberry.argument(description="The enterprise.")],
        department: Annotated[
            str | None, strawberry.argument(description="Who would inspect; yours if not given.")
        ] = None,
        on: Annotated[
            date | None, strawberry.argument(description="The day; today in China if not given.")
        ] = None,
    ) -> InspectionCheck:
        access, loaders = info.context.access, info.context.loaders
        code = parse_uscc(uscc)
        inspector = department or access.principal.department
        if inspector not in DEPARTMENT_CODES:
            raise BadUserInput(
                f"unknown department {inspector!r}; one of {', '.join(DEPARTMENT_CODES)}",
                argument="department",
            )
        day = _day(on)
        row = await loaders.enterprise.load(code)
        if row is None:
            raise NotFound(f"no enterprise {code} is registered in the hub; check the code")
        if hidden := withheld_enterprise(access, row):
            raise hidden
        limits = access.policy.limits
        limit = limits.of(row.industry, row.colour) if limits else None
        days = period(limit, day)
        found = await loaders.reader.rows(within(row.id, days))
        count = len(found) + 1
        standing = judge(limit, count, days, f"an inspection of {code} on {day}, the "
                         f"{ordinal(count)}")  # fmt: skip
        readable = set(access.visible_owners("Inspection"))
        by_owner = Counter(r.owner for r in found if r.owner in readable)
        colour_open = access.decide(row.owner_code, "Enterprise.colourCode").allowed
        return InspectionCheck(
            uscc=code,
            department=access.departments[inspector],
            on=day,
            colour=Colour(row.colour) if colour_open and row.colour else None,
            standing=InspectionWarning.of(standing.data()),
            by_department=[
                DepartmentCount(department=access.departments[owner], count=n)
                for owner, n in sorted(by_owner.items(), key=lambda item: (-item[1], item[0]))
            ],
            enterprise_id=row.id,
        )
