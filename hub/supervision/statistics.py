"""What a district's command centre (驾驶舱) counts, as SQL statements over the shared records.

Each function here makes one statement that counts in the database (GROUP BY and conditional
sums), whatever the number of enterprises: the statements of a request stay as few as the
figures it asks for. Every statement is about the enterprises that meet ``where`` (conditions
on the enterprise table, which the caller's filter and scope make) and counts the records of
``owners`` only: the departments whose records of that type the caller may count (decided
in hub/schema/access.py, never here). Days are bound as values computed in Python (today in
China, the period's ends), so the same statements hold on SQLite and PostgreSQL.

One figure does not follow the caller's reading rights: where an enterprise stands against
its inspection limit (policies/inspection-limits.csv) counts every department's
inspections, as ``inspectionCheck`` does and for the same reason: the limit is about the
visits the enterprise bore, and two departments asking must hear the same. Each
enterprise's limit depends on its industry and colour: the limit lines become one CASE, so
that too is one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.types import Date, Integer

from hub import models
from hub.db import one_of
from hub.domain import AcceptanceVerdict, CreditKind, CreditStatus, PenaltyStatus
from hub.domain import RectificationStatus as Status
from hub.policy.supervision import ANY, Limits
from hub.supervision.inspections import period

__all__ = [
    "bad_credit",
    "by_column",
    "conflicting",
    "enterprises",
    "inspection_spread",
    "inspections",
    "limit_standing",
    "orders",
    "penalties",
    "warnings_raised",
]

ENTERPRISE = cast(Table, models.Enterprise.__table__)
INSPECTION = cast(Table, models.Inspection.__table__)
WARNING = cast(Table, models.InspectionWarning.__table__)
RECTIFICATION = cast(Table, models.Rectification.__table__)
ACCEPTANCE = cast(Table, models.Acceptance.__table__)
CONFLICT = cast(Table, models.Conflict.__table__)
PENALTY = cast(Table, models.Penalty.__table__)
CREDIT = cast(Table, models.CreditRecord.__table__)

Where = Sequence[ColumnElement[bool]]
Days = tuple[date, date]  # first and last day, both counted


def _tally(condition: ColumnElement[bool]) -> Any:
    """How many rows meet ``condition`` (0 where there are none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _of(table: Table) -> Any:
    """``table``'s records joined to their enterprise."""
    return table.join(ENTERPRISE, ENTERPRISE.c.id == table.c.enterprise_id)


def enterprises(where: Where) -> Select[Any]:
    """How many enterprises meet ``where``."""
    return select(func.count().label("count")).select_from(ENTERPRISE).where(*where)


def by_column(where: Where, column: str, owners: Sequence[str]) -> Select[Any]:
    """(key, enterprises): how many enterprises meeting ``where`` of registration authorities
    ``owners``, by the value of ``column`` (null where it has none)."""
    key = ENTERPRISE.c[column]
    return (
        select(key.label("key"), func.count().label("enterprises"))
        .where(*where, one_of(ENTERPRISE.c.owner, owners))
        .group_by(key)
    )


def _visits(owners: Sequence[str], days: Days) -> ColumnElement[bool]:
    """Current inspections of ``owners`` in ``days``."""
    return and_(
        INSPECTION.c.retracted == false(),
        one_of(INSPECTION.c.owner, owners),
        INSPECTION.c.inspected_on.between(*days),
    )


def inspections(where: Where, owners: Sequence[str], days: Days) -> Select[Any]:
    """How many inspections by ``owners`` of the enterprises meeting ``where`` there were in
    ``days`` (a joint inspection, one visit by several departments, is one)."""
    return (
        select(func.count().label("count"))
        .select_from(_of(INSPECTION))
        .where(*where, _visits(owners, days))
    )


def inspection_spread(where: Where, owners: Sequence[str], days: Days) -> Select[Any]:
    """(inspections, enterprises): how many of the enterprises meeting ``where`` had 0, 1,
    2... inspections by ``owners`` in ``days``, fewest first."""
    each = (
        select(ENTERPRISE.c.id, func.count(INSPECTION.c.id).label("visits"))
        .select_from(
            ENTERPRISE.outerjoin(
                INSPECTION,
                and_(INSPECTION.c.enterprise_id == ENTERPRISE.c.id, _visits(owners, days)),
            )
        )
        .where(*where)
        .group_by(ENTERPRISE.c.id)
        .subquery("each")
    )
    return (
        select(each.c.visits.label("inspections"), func.count().label("enterprises"))
        .group_by(each.c.visits)
        .order_by(each.c.visits)
    )


def limit_standing(where: Where, limits: Limits, today: date) -> Select[Any]:
    """(over, warning): how many enterprises meeting ``where`` had more inspections in their
    limit's period ending ``today`` than the limit allows, and how many from its warn_at up
    to the limit; every department's inspections, the limit by each enterprise's industry
    and colour (Limits.of). No limits: none is over or warned of."""
    if not limits:
        nothing = literal(0, Integer)
        return cast(Select[Any], select(nothing.label("over"), nothing.label("warning")))
    lines = limits.lines

    def applies(industry: str, colour: str) -> ColumnElement[bool]:
        conditions = [
            *([ENTERPRISE.c.industry == industry] if industry != ANY else []),
            *([ENTERPRISE.c.colour == colour] if colour != ANY else []),
        ]
        return and_(true(), *conditions)

    def per_line(value: Any) -> Any:
        return case(*((applies(line.industry, line.colour), value(line)) for line in lines))

    start = per_line(lambda line: literal(period(line, today)[0], Date))
    each = (
        select(
            func.count(INSPECTION.c.id).label("visits"),
            per_line(lambda line: literal(line.limit, Integer)).label("most"),
            per_line(lambda line: literal(line.warn_at, Integer)).label("warn_at"),
        )
        .select_from(
            ENTERPRISE.join(
                INSPECTION,
                and_(
                    INSPECTION.c.enterprise_id == ENTERPRISE.c.id,
                    INSPECTION.c.retracted == false(),
                    INSPECTION.c.inspected_on <= today,
                    INSPECTION.c.inspected_on >= start,
                ),
            )
        )
        .where(*where)
        .group_by(ENTERPRISE.c.id, ENTERPRISE.c.industry, ENTERPRISE.c.colour)
        .subquery("each")
    )
    return select(
        _tally(each.c.visits > each.c.most).label("over"),
        _tally(and_(each.c.visits >= each.c.warn_at, each.c.visits <= each.c.most)).label(
            "warning"
        ),
    )


def warnings_raised(where: Where, owners: Sequence[str], days: Days) -> Select[Any]:
    """How many warnings inspections by ``owners`` of enterprises meeting ``where`` raised on
    the days of ``days`` (a warning's day is the day of the inspection that raised it)."""
    return (
        select(func.count().label("count"))
        .select_from(_of(WARNING))
        .where(*where, one_of(WARNING.c.owner, owners), WARNING.c.period_until.between(*days))
    )


def orders(
    where: Where,
    owners: Sequence[str],
    accepters: Sequence[str],
    days: Days,
    today: date,
) -> Select[Any]:
    """Current orders of ``owners`` to enterprises meeting ``where``: ``ordered`` in
    ``days``; ``open`` (not accepted) now, of them ``overdue`` (past the deadline, before
    ``today``); ``accepted`` in ``days`` (the order accepted, its acceptance passed, by one
    of ``accepters``), of them ``on_time`` (on or before the deadline)."""
    r, a = RECTIFICATION.c, ACCEPTANCE.c
    unaccepted = r.status != Status.ACCEPTED.value
    accepted = and_(
        r.status == Status.ACCEPTED.value,
        a.verdict == AcceptanceVerdict.PASSED.value,
        one_of(a.owner, accepters),
        a.accepted_on.between(*days),
    )
    return (
        select(
            _tally(r.ordered_on.between(*days)).label("ordered"),
            _tally(unaccepted).label("open"),
            _tally(and_(unaccepted, r.deadline < today)).label("overdue"),
            _tally(accepted).label("accepted"),
            _tally(and_(accepted, a.accepted_on <= r.deadline)).label("on_time"),
        )
        .select_from(
            _of(RECTIFICATION).outerjoin(
                ACCEPTANCE, and_(a.rectification_id == r.id, a.retracted == false())
            )
        )
        .where(*where, r.retracted == false(), one_of(r.owner, owners))
    )


def conflicting(
    where: Where, listed: Sequence[ColumnElement[bool]], owners: Sequence[str]
) -> Select[Any]:
    """How many unsettled conflicts there are between orders to enterprises meeting
    ``where``: those the caller lists (``listed``, hub/conflicts.visible_to: its own, or
    all for the coordinator) and those between orders of two of ``owners``."""
    c = CONFLICT.c
    both = and_(one_of(c.first_owner, owners), one_of(c.second_owner, owners))
    seen = [] if not listed else [or_(and_(*listed), both)]
    return (
        select(func.count().label("count"))
        .select_from(_of(CONFLICT))
        .where(*where, c.settled_at.is_(None), *seen)
    )


def penalties(where: Where, owners: Sequence[str], days: Days) -> Select[Any]:
    """Current penalty decisions of ``owners`` against enterprises meeting ``where`` made in
    ``days``, revoked ones aside: ``decided``, and of them ``exempt`` (轻微不罚)."""
    p = PENALTY.c
    return (
        select(
            func.count().label("decided"),
            _tally(p.status == PenaltyStatus.EXEMPT.value).label("exempt"),
        )
        .select_from(_of(PENALTY))
        .where(
            *where,
            p.retracted == false(),
            one_of(p.owner, owners),
            p.decided_on.between(*days),
            p.status != PenaltyStatus.REVOKED.value,
        )
    )


def bad_credit(where: Where, owners: Sequence[str], today: date) -> Select[Any]:
    """How many enterprises meeting ``where`` have an active bad credit record of ``owners``
    on ``today`` (not repaired, revoked or expired), as the colour rules count one."""
    c = CREDIT.c
    return (
        select(func.count(func.distinct(ENTERPRISE.c.id)).label("count"))
        .select_from(_of(CREDIT))
        .where(
            *where,
            c.retracted == false(),
            one_of(c.owner, owners),
            c.kind == CreditKind.BAD_RECORD.value,
            c.status == CreditStatus.ACTIVE.value,
            or_(c.expires_on.is_(None), c.expires_on >= today),
        )
    )
