"""``statistics``: what a district's command centre (驾驶舱) shows, as counts.

Counts are aggregates over records, so the policy decides them as it decides lists: each
figure counts only the records of departments whose records of that type the caller may
read, and of those only by fields it may read without a condition (``Access.countable``):
market regulation counts the ecology and emergency departments' orders, not fire rescue's;
a department the colour code is withheld from gets no colour breakdown (null, with the
FORBIDDEN error a withheld field gets). The enterprises counted are those the caller's
filter and scope give ``enterprises`` (query.py ``matching``). Where an enterprise stands
against its inspection limit is the one figure counted from every department's inspections,
as ``inspectionCheck`` does: the limit is about the enterprise, not about who asks.

Only department systems may ask: the figures are about enterprises, which auditors and
admins read nothing of. The request is recorded like every other; it serves no record, so
its access record names no enterprise.

The resolvers only ask: the counting statements are hub/supervision/statistics.py, one per
figure asked for (figures of one statement share it), whatever the number of enterprises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Annotated, Any, cast

import strawberry
from sqlalchemy import ColumnElement, Row, Select, String

from hub import conflicts, models
from hub.auth import Principal
from hub.domain import Colour, EnterpriseStatus, Role
from hub.errors import BadUserInput, Forbidden
from hub.records import EARLIEST_DAY, today
from hub.schema.access import Access
from hub.schema.context import Info
from hub.schema.query import EnterpriseFilter, matching
from hub.supervision import statistics as counting

__all__ = ["StatisticsQuery"]

COORDINATE = "Query.statistics"
DEFAULT_DAYS = 365
# The longest district, town and industry an enterprise can be registered with.
LONGEST = {
    name: cast(String, models.Enterprise.__table__.c[name].type).length or 0
    for name in ("region", "town", "industry")
}


def departments_only(principal: Principal) -> None:
    """Statistics are for department systems; FORBIDDEN for every other role."""
    if principal.role is not Role.DEPARTMENT:
        raise Forbidden(
            "hub", COORDINATE,
            "statistics count enterprises and their records, which are for department "
            "systems; auditors read the access log, and admins read no enterprise data",
            action="asking for statistics",
        )  # fmt: skip


@strawberry.input(description="Which enterprises the statistics count; all given conditions apply.")
class StatisticsFilter:
    region: str | None = strawberry.field(default=None, description="District, e.g. 西湖区.")
    town: str | None = strawberry.field(default=None, description="Town, e.g. 三墩镇.")
    industry: str | None = strawberry.field(default=None, description="Industry, e.g. 化工.")
    status: EnterpriseStatus | None = None
    colour: Colour | None = strawberry.field(
        default=None,
        description="Three-colour code (三色码), e.g. BLACK: only where you may read it.",
    )

    def enterprises(self) -> EnterpriseFilter:
        """The same conditions as ``enterprises(filter:)``; BadUserInput for a name no
        enterprise can have."""
        for name, value in (("region", self.region), ("town", self.town),
                            ("industry", self.industry)):  # fmt: skip
            longest = LONGEST[name]
            if value is not None and not 0 < len(value) <= longest:
                raise BadUserInput(
                    f"filter.{name} must be 1 to {longest} characters, as enterprises are "
                    f"registered (e.g. 西湖区, 化工); leave it out to count them all",
                    argument=f"filter.{name}",
                )
        return EnterpriseFilter(
            region=self.region, town=self.town, industry=self.industry,
            status=self.status, colour=self.colour,
        )  # fmt: skip


@strawberry.type(description="How many enterprises have one value of a field.")
class KeyCount:
    key: str
    count: int


@strawberry.type(description="How many enterprises have one colour.")
class ColourCount:
    key: Colour | None = strawberry.field(
        description="The colour; null for enterprises whose colour is not computed yet."
    )
    count: int


@strawberry.type(description="How many enterprises had so many inspections in the period.")
class InspectionSpread:
    inspections: int
    enterprises: int


Make = Callable[[], Select[Any]]


class Shared:
    """The rows of statements that several fields answer from, each run once however many
    of its fields the query selects (they resolve concurrently)."""

    def __init__(self) -> None:
        self._found: dict[str, asyncio.Future[Row[Any]]] = {}

    def one(self, info: Info, name: str, make: Make) -> Awaitable[Row[Any]]:
        found = self._found.get(name)
        if found is None:
            found = self._found[name] = asyncio.ensure_future(_one(info, make()))
        return found


async def _one(info: Info, statement: Select[Any]) -> Row[Any]:
    (row,) = await info.context.loaders.reader.rows(statement)
    return row


async def _count(info: Info, statement: Select[Any]) -> int:
    return int((await _one(info, statement))[0])


@strawberry.type(description="Inspections of the enterprises counted.")
class InspectionStatistics:
    where: strawberry.Private[list[ColumnElement[bool]]]
    days: strawberry.Private[tuple[date, date]]
    today: strawberry.Private[date]
    shared: strawberry.Private[Shared]

    @strawberry.field(
        description="Inspections in the period, by departments whose inspection dates you "
        "may read (a joint inspection, one visit by several departments, counts once)."
    )
    async def total(self, info: Info) -> int:
        owners = info.context.access.countable("Inspection", "inspectedOn")
        return await _count(info, counting.inspections(self.where, owners, self.days))

    @strawberry.field(
        description="How many enterprises had 0, 1, 2... inspections in the period (counted "
        "as `total`), fewest first; every enterprise counted is in one entry."
    )
    async def per_enterprise(self, info: Info) -> list[InspectionSpread]:
        owners = info.context.access.countable("Inspection", "inspectedOn")
        rows = await info.context.loaders.reader.rows(
            counting.inspection_spread(self.where, owners, self.days)
        )
        return [InspectionSpread(inspections=r.inspections, enterprises=r.enterprises)
                for r in rows]  # fmt: skip

    async def _standing(self, info: Info) -> Row[Any]:
        limits = info.context.access.policy.limits
        return await self.shared.one(
            info, "standing", lambda: counting.limit_standing(self.where, limits, self.today)
        )

    @strawberry.field(
        description="Enterprises with more inspections than their limit allows "
        "(policies/inspection-limits.csv, by industry and colour) in the limit's period "
        "ending today, whatever the period asked for. Every department's inspections count, "
        "whichever you may read, as in inspectionCheck: the limit is about the enterprise."
    )
    async def over_limit(self, info: Info) -> int:
        return int((await self._standing(info)).over)

    @strawberry.field(
        description="Enterprises at the warning level of their limit: from its warnAt up to "
        "the limit itself, counted as overLimit."
    )
    async def at_warning(self, info: Info) -> int:
        return int((await self._standing(info)).warning)

    @strawberry.field(
        description="Warnings raised by inspections made in the period (each warns of the "
        "enterprise reaching or passing its limit; see inspectionCheck), of departments "
        "whose inspection dates you may read."
    )
    async def warnings_raised(self, info: Info) -> int:
        owners = info.context.access.countable("Inspection", "inspectedOn")
        return await _count(info, counting.warnings_raised(self.where, owners, self.days))


@strawberry.type(
    description="Rectification orders (整改) to the enterprises counted, of departments whose "
    "orders' status, deadline and order date you may read."
)
class OrderStatistics:
    ordered: int = strawberry.field(description="Orders made in the period.")
    open: int = strawberry.field(
        description="Orders not accepted yet, whenever they were made: being rectified, "
        "awaiting acceptance, failed or overdue."
    )
    overdue: int = strawberry.field(
        description="Of the open orders, those past their deadline (before today in China), "
        "as Rectification.overdue."
    )
    accepted: int = strawberry.field(
        description="Orders accepted in the period (整改验收 passed), where you may read the "
        "acceptance's verdict and date."
    )
    accepted_on_time: int = strawberry.field(
        description="Of the accepted orders, those accepted by their deadline."
    )
    where: strawberry.Private[list[ColumnElement[bool]]]

    @strawberry.field(
        description="Unsettled conflicts between orders to the enterprises counted (标准打架): "
        "those you list in `conflicts` (your department's; all of them for comprehensive "
        "law enforcement) and those between orders of two departments whose orders you may "
        "read. Now, whatever the period."
    )
    async def conflicting(self, info: Info) -> int:
        access = info.context.access
        owners = access.countable("Rectification", "status", "deadline", "orderedOn")
        listed = conflicts.visible_to(access.principal)
        return await _count(info, counting.conflicting(self.where, listed, owners))


@strawberry.type(description="Penalty decisions (行政处罚) against the enterprises counted.")
class PenaltyStatistics:
    decided: int = strawberry.field(
        description="Decisions made in the period, revoked ones aside, of departments whose "
        "decision dates and status you may read."
    )
    exempt: int = strawberry.field(
        description="Of them, minor first offences exempted from any penalty (首违不罚)."
    )


@strawberry.type(
    description="What a command centre (驾驶舱) shows of the enterprises a filter gives, each "
    "figure counted from what the policy lets you read (each field says what it counts)."
)
class Statistics:
    period_from: date = strawberry.field(description="The first day of the period counted.")
    period_until: date = strawberry.field(description="The last day of the period counted.")
    where: strawberry.Private[list[ColumnElement[bool]]]
    today: strawberry.Private[date]
    shared: strawberry.Private[Shared]

    @property
    def days(self) -> tuple[date, date]:
        return self.period_from, self.period_until

    @strawberry.field(
        description="Enterprises matching the filter, as enterprises(filter:) counts them "
        "(of registration authorities that share something of them with you), now."
    )
    async def enterprises(self, info: Info) -> int:
        return await _count(info, counting.enterprises(self.where))

    @strawberry.field(
        description="The enterprises counted by district, most first (then by name); only "
        "those whose district you may read."
    )
    async def by_region(self, info: Info) -> list[KeyCount] | None:
        rows = await self._by(info, "region", "region")
        return [KeyCount(key=key, count=n) for key, n in _ranked(rows)]

    @strawberry.field(
        description="The enterprises counted by industry, most first (then by name); only "
        "those whose industry you may read."
    )
    async def by_industry(self, info: Info) -> list[KeyCount] | None:
        rows = await self._by(info, "industry", "industry")
        return [KeyCount(key=key, count=n) for key, n in _ranked(rows)]

    @strawberry.field(
        description="The enterprises counted by three-colour code (三色码) now, most first: "
        "all three colours, and a null colour for enterprises not computed yet where there "
        "are any; only those whose colour code you may read (null, FORBIDDEN, where you may "
        "read none)."
    )
    async def by_colour(self, info: Info) -> list[ColourCount] | None:
        found = dict.fromkeys(Colour, 0) | {
            None if key is None else Colour(key): n
            for key, n in await self._by(info, "colour", "colourCode")
        }
        if not found.get(None):
            found.pop(None, None)
        return [ColourCount(key=key, count=n) for key, n in _ranked(found.items())]

    async def _by(self, info: Info, column: str, field: str) -> list[tuple[Any, int]]:
        owners = _breakdown(info.context.access, field)
        rows = await info.context.loaders.reader.rows(
            counting.by_column(self.where, column, owners)
        )
        return [(row.key, int(row.enterprises)) for row in rows]

    @strawberry.field(description="Inspections of the enterprises counted.")
    def inspections(self) -> InspectionStatistics:
        return InspectionStatistics(
            where=self.where, days=self.days, today=self.today, shared=self.shared
        )

    @strawberry.field(description="Rectification orders to the enterprises counted.")
    async def orders(self, info: Info) -> OrderStatistics:
        access = info.context.access
        row = await _one(info, counting.orders(
            self.where,
            access.countable("Rectification", "status", "deadline", "orderedOn"),
            access.countable("Acceptance", "verdict", "acceptedOn"),
            self.days,
            self.today,
        ))  # fmt: skip
        ordered, open, overdue, accepted, on_time = (int(n) for n in row)
        return OrderStatistics(ordered=ordered, open=open, overdue=overdue, accepted=accepted,
                               accepted_on_time=on_time, where=self.where)  # fmt: skip

    @strawberry.field(description="Penalty decisions against the enterprises counted.")
    async def penalties(self, info: Info) -> PenaltyStatistics:
        owners = info.context.access.countable("Penalty", "decidedOn", "status")
        row = await _one(info, counting.penalties(self.where, owners, self.days))
        return PenaltyStatistics(decided=int(row.decided), exempt=int(row.exempt))

    @strawberry.field(
        description="Enterprises counted with an active bad credit record (失信记录: not "
        "repaired, revoked or expired) today, of departments whose credit records' kind, "
        "status and expiry you may read."
    )
    async def bad_credit(self, info: Info) -> int:
        owners = info.context.access.countable("CreditRecord", "kind", "status", "expiresOn")
        return await _count(info, counting.bad_credit(self.where, owners, self.today))


def _breakdown(access: Access, field: str) -> tuple[str, ...]:
    """The registration authorities whose enterprises a breakdown by ``field`` counts;
    FORBIDDEN where the caller may read that field of none of those it sees."""
    owners = access.countable("Enterprise", field)
    visible = access.visible_owners("Enterprise")
    if visible and not owners:
        coordinate = f"Enterprise.{field}"
        raise Forbidden(visible[0], coordinate, access.decide(visible[0], coordinate).reason)
    return owners


def _ranked(counts: Any) -> list[tuple[Any, int]]:
    """(key, count) pairs, most first, then by key (null last)."""
    return sorted(counts, key=lambda pair: (-pair[1], pair[0] is None, pair[0] or ""))


def _period(since: date | None, until: date | None, now: date) -> tuple[date, date]:
    """The days counted: ``since`` to ``until``, by default the year ending ``now`` (today in
    China); BadUserInput for a period that is not one, or reaches past today."""
    last = now if until is None else until
    first = last - timedelta(days=DEFAULT_DAYS - 1) if since is None else since
    if last > now:
        raise BadUserInput(
            f"until={last} is after today ({now} in China): statistics count what has "
            "happened; leave until out to count up to today",
            argument="until",
        )
    if first > last:
        raise BadUserInput(f"since={first} is after until={last}: give since on or before "
                           "until", argument="since")  # fmt: skip
    if first < EARLIEST_DAY:
        raise BadUserInput(
            f"since={first} is before {EARLIEST_DAY}, earlier than any record the hub keeps",
            argument="since",
        )
    return first, last


@strawberry.type
class StatisticsQuery:
    @strawberry.field(
        description="For a district's command centre (驾驶舱): how many enterprises match the "
        "filter, by district, industry and colour, and what their inspections, orders, "
        f"penalties and credit records add up to in a period (by default the {DEFAULT_DAYS} "
        "days ending today in China). Each figure counts what the policy lets your "
        "department read (its description says what); department systems only."
    )
    async def statistics(
        self,
        info: Info,
        filter: StatisticsFilter | None = None,
        since: Annotated[
            date | None,
            strawberry.argument(
                description=f"First day; by default the period is the {DEFAULT_DAYS} days "
                "ending on until."
            ),
        ] = None,
        until: Annotated[
            date | None, strawberry.argument(description="Last day; today in China.")
        ] = None,
    ) -> Statistics:
        access = info.context.access
        departments_only(access.principal)
        now = today()
        first, last = _period(since, until, now)
        where = matching(access, filter.enterprises() if filter is not None else None)
        return Statistics(period_from=first, period_until=last, where=where, today=now,
                          shared=Shared())  # fmt: skip
