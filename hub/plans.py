"""Inspection plans seen together: whose open plans meet on an enterprise in a month.

Departments publish what they plan to inspect (检查计划) as records of kind
``inspectionPlans`` (hub/records.py), written by hub/publishing/ like every record: versions,
retraction, the change feed. What the reform asks of them is that departments planning the
same enterprise in the same month go once, together (综合查一次), instead of one after
another. Here is what that takes, without any framework: which plans are open (planned, not
retracted), the months a planner means, and the open plans of an enterprise in a span of
months, as conditions the GraphQL layer narrows further and as ``open_plans`` for code that
reads on a connection of its own.

Nothing here decides who may read a plan. Code that serves these rows to a department builds
them through hub/schema/access.py (as hub/schema/plans.py does), so that each field is
decided by the policy for the plan's owner and each plan is filed in the access record under
its own enterprise and owner; enterprises themselves never see plans (random spot checks are
unannounced), which no policy line gives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Select, Table, and_, exists, false, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.db import one_of
from hub.domain import PlanStatus
from hub.records import month_of, today

__all__ = ["PLAN", "is_open", "joinable", "open_plans", "this_month"]

PLAN = cast(Table, models.InspectionPlan.__table__)
_ENTERPRISE = cast(Table, models.Enterprise.__table__)


def this_month(day: date | None = None) -> str:
    """The month of ``day`` (today in China by default), YYYY-MM: plans from it on are
    the ones still to be carried out."""
    return month_of(day or today())


def is_open(plan: Any = PLAN) -> ColumnElement[bool]:
    """``plan`` (the table or an alias of it) is still to be carried out: planned, and not
    retracted. Done and cancelled plans have nobody left to join."""
    return and_(plan.c.status == PlanStatus.PLANNED, plan.c.retracted == false())


def joinable(mine: Any, owners: Sequence[str]) -> ColumnElement[bool]:
    """Another department among ``owners`` has an open plan of the same enterprise in the
    same month as the plan ``mine`` (a row of the plan table or of an alias of it)."""
    other = PLAN.alias("other_plan")
    return exists().where(
        other.c.enterprise_id == mine.c.enterprise_id,
        other.c.month == mine.c.month,
        other.c.owner != mine.c.owner,
        one_of(other.c.owner, owners),
        is_open(other),
    )


def open_plans_statement(month_from: str, month_until: str | None) -> Select[Any]:
    """Open plans of the enterprise ``:enterprise_id`` from ``month_from`` (up to
    ``month_until`` when given), by month, owner and id; the enterprise's USCC with each."""
    statement = (
        select(PLAN.c.id, PLAN.c.owner, PLAN.c.source_id, PLAN.c.enterprise_id, PLAN.c.month,
               PLAN.c.subject, PLAN.c.kind, PLAN.c.status, PLAN.c.version, _ENTERPRISE.c.uscc)
        .join(_ENTERPRISE, _ENTERPRISE.c.id == PLAN.c.enterprise_id)
        .where(is_open(), PLAN.c.month >= month_from)
        .order_by(PLAN.c.month, PLAN.c.owner, PLAN.c.id)
    )  # fmt: skip
    if month_until is not None:
        statement = statement.where(PLAN.c.month <= month_until)
    return statement


async def open_plans(
    connection: AsyncConnection,
    enterprise_id: int,
    month_from: str,
    month_until: str | None = None,
    *,
    excluding: str | None = None,
) -> list[Row[Any]]:
    """The open plans of an enterprise from ``month_from`` to ``month_until`` (inclusive,
    YYYY-MM; open-ended without it), by month, owner and id; of departments other than
    ``excluding`` when given ("who else will be there"). Rows: id, owner, source_id,
    enterprise_id, month, subject, kind, status, version, uscc.

    Unchecked and undecided: months are as the caller parsed them (hub.values.month), and
    whoever shows the rows to a department decides them first (see the module docstring)."""
    statement = open_plans_statement(month_from, month_until).where(
        PLAN.c.enterprise_id == enterprise_id
    )
    if excluding is not None:
        statement = statement.where(PLAN.c.owner != excluding)
    return list((await connection.execute(statement)).all())
