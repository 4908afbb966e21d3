"""Inspection plans in the API (综合查一次): a page of plans, and, for a department's
planner, the other departments' open plans that meet its own on an enterprise in a month.

Plans are records like any other (``InspectionPlan`` in types.py, published through
``publishInspectionPlans``): read only of the owners the caller's scope names, and built
through Access, so that each field is decided by the policy for its owner and every plan
served (the caller's own and the others') is filed in the access record under its own
enterprise and owner. The enterprise a suggestion names is built as ``enterprise`` builds
it. hub/plans.py says which plans are open and which meet; nothing here decides.

Suggestions are for departments' systems: auditors and admins are refused, as they are for
notifications, and so is a department that no policy line lets read another's plans (it
would only ever get an empty list, and not know why).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from typing import Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from hub import models
from hub.db import one_of
from hub.domain import PlanStatus, Role
from hub.errors import BadUserInput, Forbidden
from hub.plans import PLAN, is_open, joinable, this_month
from hub.schema.context import Info
from hub.schema.feed import check_owners
from hub.schema.query import PageInfo, withheld_enterprise
from hub.schema.sources import INSPECTION_PLAN
from hub.schema.types import Department, Enterprise, InspectionPlan
from hub.uscc import parse_uscc
from hub.values import month, whole

__all__ = ["MAX_PAGE_SIZE", "PlanQuery"]

MAX_PAGE_SIZE = 100
_ENTERPRISE = models.Enterprise.__table__


def encode_cursor(prefix: str, planned: str, plan_id: int) -> str:
    return base64.urlsafe_b64encode(f"{prefix}:{planned}:{plan_id}".encode()).decode()


def after(prefix: str, cursor: str | None) -> ColumnElement[bool] | None:
    """Plans after the one a cursor of ``prefix`` names, in (month, id) order; None without
    a cursor; BadUserInput for one this hub did not issue."""
    if cursor is None:
        return None
    try:
        kind, planned, number = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        plan_id = whole(number)
        if kind != prefix or plan_id is None:
            raise ValueError(cursor)
        planned = month(planned)
    except (ValueError, binascii.Error, UnicodeError):
        raise BadUserInput(
            f"after={cursor!r} is not a {prefix} cursor from this hub; pass pageInfo.endCursor "
            "of the previous page, or omit after to start at the beginning",
            argument="after",
        ) from None
    return or_(PLAN.c.month > planned, and_(PLAN.c.month == planned, PLAN.c.id > plan_id))


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(
            f"first must be between 1 and {MAX_PAGE_SIZE}, not {first}; "
            "fetch more with the after cursor",
            argument="first",
        )
    return first


def month_argument(value: str, argument: str) -> str:
    try:
        return month(value)
    except ValueError as error:
        raise BadUserInput(f"{argument}: {error}", argument=argument) from None


@strawberry.input(description="Conditions a plan must meet; all given ones apply.")
class InspectionPlanFilter:
    uscc: str | None = strawberry.field(default=None, description="Plans of this enterprise.")
    owners: list[str] | None = strawberry.field(
        default=None,
        description="Plans of these departments (codes); when not given, of every department "
        "whose plans you may read.",
    )
    since: str | None = strawberry.field(
        default=None, name="from", description="Plans for this month (YYYY-MM) or later."
    )
    until: str | None = strawberry.field(
        default=None, description="Plans for this month (YYYY-MM) or earlier."
    )
    region: str | None = strawberry.field(
        default=None, description="Plans of enterprises in this district, e.g. 西湖区."
    )
    status: PlanStatus | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The filter as conditions on INSPECTION_PLAN's rows; BadUserInput for a value
        that is not one."""
        conditions: list[ColumnElement[bool]] = []
        if self.uscc is not None:
            conditions.append(_ENTERPRISE.c.uscc == parse_uscc(self.uscc))
        if self.owners is not None:
            check_owners(self.owners)
            conditions.append(one_of(PLAN.c.owner, sorted(set(self.owners))))
        since = None if self.since is None else month_argument(self.since, "from")
        until = None if self.until is None else month_argument(self.until, "until")
        if since is not None and until is not None and since > until:
            raise BadUserInput(
                f"from ({since}) is after until ({until}); give the earlier month as from",
                argument="from",
            )
        if since is not None:
            conditions.append(PLAN.c.month >= since)
        if until is not None:
            conditions.append(PLAN.c.month <= until)
        if self.region is not None:
            conditions.append(_ENTERPRISE.c.region == self.region)
        if self.status is not None:
            conditions.append(PLAN.c.status == self.status)
        return conditions


@strawberry.type
class InspectionPlanEdge:
    cursor: str
    node: InspectionPlan


@strawberry.type(description="A page of inspection plans, by month, in the order published.")
class InspectionPlanConnection:
    edges: list[InspectionPlanEdge]
    page_info: PageInfo
    matching: strawberry.Private[Select[Any] | None]

    @strawberry.field(description="How many plans you may read match the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        if self.matching is None:
            return 0
        counted = select(func.count()).select_from(self.matching.subquery())
        (row,) = await info.context.loaders.reader.rows(counted)
        return int(row[0])


@strawberry.type(
    description="One of your open plans that other departments' open plans meet: the same "
    "enterprise in the same month. Agree on one visit (综合查一次) with `departments`."
)
class JointInspectionSuggestion:
    uscc: strawberry.Private[str]
    month: str = strawberry.field(description="The month all these plans are for, YYYY-MM.")
    plan: InspectionPlan = strawberry.field(description="Your department's plan.")
    others: list[InspectionPlan] = strawberry.field(
        description="The other departments' open plans of the enterprise that month."
    )
    departments: list[Department] = strawberry.field(
        description="The departments to inspect together with, each once."
    )

    @strawberry.field(description="The enterprise, as its registration authority shares it.")
    async def enterprise(self, info: Info) -> Enterprise | None:
        row = await info.context.loaders.enterprise.load(self.uscc)
        if row is None:
            return None
        if hidden := withheld_enterprise(info.context.access, row):
            raise hidden
        return info.context.access.build_one(Enterprise, row, info)


@strawberry.type(description="A page of joint inspection suggestions, by month.")
class JointInspectionPage:
    suggestions: list[JointInspectionSuggestion]
    page_info: PageInfo


def _page_info(rows: list[Any], first: int, prefix: str) -> PageInfo:
    last = rows[min(len(rows), first) - 1] if rows else None
    return PageInfo(
        has_next_page=len(rows) > first,
        end_cursor=None if last is None else encode_cursor(prefix, last.month, last.id),
    )


async def _page(info: Info, statement: Select[Any], first: int, prefix: str,
                cursor: str | None) -> list[Any]:  # fmt: skip
    """A page of ``statement``'s plans (one more than ``first``: whether another follows)."""
    if (following := after(prefix, cursor)) is not None:
        statement = statement.where(following)
    page = statement.order_by(PLAN.c.month, PLAN.c.id).limit(first + 1)
    return list(await info.context.loaders.reader.rows(page))


@strawberry.type
class PlanQuery:
    @strawberry.field(
        description="Inspection plans (检查计划) of the departments whose plans you may read, "
        "by month, a page at a time."
    )
    async def inspection_plans(
        self,
        info: Info,
        filter: InspectionPlanFilter | None = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 1 to {MAX_PAGE_SIZE}.")
        ] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page.")
        ] = None,
    ) -> InspectionPlanConnection:
        first = page_size(first)
        conditions = (filter or InspectionPlanFilter()).conditions()
        statements = info.context.loaders.statements
        matching = statements.visible(
            INSPECTION_PLAN.select().where(*conditions), models.InspectionPlan
        )
        rows = [] if matching is None else await _page(info, matching, first, "plan", after)
        access = info.context.access
        nodes = access.build(InspectionPlan, rows[:first], info, below=("edges", "node"))
        return InspectionPlanConnection(
            edges=[
                InspectionPlanEdge(cursor=encode_cursor("plan", row.month, row.id), node=node)
                for row, node in zip(rows[:first], nodes, strict=True)
            ],
            page_info=_page_info(rows, first, "plan"),
            matching=matching,
        )

    @strawberry.field(
        description="For your department's planner: each of your open plans (PLANNED) that "
        "other departments' open plans meet, on the same enterprise in the same month, with "
        "theirs, so that you inspect it once together (综合查一次). For `month`, or from this "
        "month (in China) on."
    )
    async def joint_inspection_suggestions(
        self,
        info: Info,
        month: Annotated[
            str | None,
            strawberry.argument(description="Only plans for this month, YYYY-MM."),
        ] = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 1 to {MAX_PAGE_SIZE}.")
        ] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page.")
        ] = None,
    ) -> JointInspectionPage:
        first = page_size(first)
        planned = None if month is None else month_argument(month, "month")
        access, statements = info.context.access, info.context.loaders.statements
        principal = access.principal
        if principal.role is not Role.DEPARTMENT:
            raise Forbidden(
                principal.department, "Query.jointInspectionSuggestions",
                "suggestions are for the planning systems of departments, not for a "
                f"client of role {principal.role.value}",
                action="suggesting joint inspections",
            )  # fmt: skip
        caller = principal.department
        others = [o for o in access.visible_owners("InspectionPlan") if o != caller]
        if not others:
            raise Forbidden(
                caller, "InspectionPlan",
                f"no policy line lets {principal.subject} read other departments' inspection "
                "plans, so none can be suggested; see policies/policy.csv",
                action="suggesting joint inspections",
            )  # fmt: skip
        when = PLAN.c.month == planned if planned else PLAN.c.month >= this_month()
        mine = statements.visible(
            INSPECTION_PLAN.select().where(
                PLAN.c.owner == caller, is_open(), when, joinable(PLAN, others)
            ),
            models.InspectionPlan,
        )
        rows = [] if mine is None else await _page(info, mine, first, "suggestion", after)
        rows, more = rows[:first], rows
        theirs = statements.visible(
            INSPECTION_PLAN.select()
            .where(
                one_of(PLAN.c.enterprise_id, sorted({row.enterprise_id for row in rows})),
                one_of(PLAN.c.month, sorted({row.month for row in rows})),
                one_of(PLAN.c.owner, others),
                is_open(),
            )
            .order_by(PLAN.c.month, PLAN.c.owner, PLAN.c.id),
            models.InspectionPlan,
        )
        found = [] if not rows or theirs is None else await info.context.loaders.reader.rows(theirs)
        # The statement reads every month of every enterprise asked about: only the plans
        # that meet one of the caller's are served, and so filed in the access record.
        pairs = {(row.enterprise_id, row.month) for row in rows}
        found = [row for row in found if (row.enterprise_id, row.month) in pairs]
        plans = access.build(InspectionPlan, rows, info, below=("suggestions", "plan"))
        other_plans = access.build(InspectionPlan, found, info, below=("suggestions", "others"))
        meeting: defaultdict[tuple[int, str], list[InspectionPlan]] = defaultdict(list)
        owners: defaultdict[tuple[int, str], dict[str, None]] = defaultdict(dict)
        for row, other in zip(found, other_plans, strict=True):
            meeting[row.enterprise_id, row.month].append(other)
            owners[row.enterprise_id, row.month][row.owner_code] = None
        departments = access.departments
        return JointInspectionPage(
            suggestions=[
                JointInspectionSuggestion(
                    uscc=row.uscc,
                    month=row.month,
                    plan=plan,
                    others=meeting[meets],
                    departments=[departments[code] for code in sorted(owners[meets])],
                )
                for row, plan in zip(rows, plans, strict=True)
                for meets in [(row.enterprise_id, row.month)]
            ],
            page_info=_page_info(more, first, "suggestion"),
        )
