"""An enterprise's three-colour code (三色码) from its shared records, by named rules.

Each rule of policies/colours.csv names a condition (below) and the colour it makes; an
enterprise's colour is the most severe colour of the rules its records meet, green when none
does, and its reasons are those rules each with the records that met it: a colour is never
asserted, always explained. Conditions read only what every department publishes (credit
records, penalties, rectification orders and their acceptance), current and not retracted.

A colour also changes with no record changing: a deadline passes, a penalty leaves the
window. So the computation also gives the first day on which the same records would give a
different answer (``review_on``); the hub computes the colour again on that day
(store.py), and whenever a record of the enterprise is published or retracted.

Pure functions over rows: no database, no web framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from hub.domain import (
    AcceptanceVerdict,
    Colour,
    CreditKind,
    CreditStatus,
    PenaltyStatus,
    RectificationStatus,
)
from hub.policy.supervision import ColourRule

__all__ = ["Computed", "Facts", "Ref", "compute"]

ACCEPTED = RectificationStatus.ACCEPTED.value
NOT_PENALTIES = (PenaltyStatus.EXEMPT.value, PenaltyStatus.REVOKED.value)


class Ref(NamedTuple):
    """A record a reason rests on, as every reader names it."""

    kind: str  # the GraphQL type, e.g. Rectification
    owner: str
    source_id: str
    id: int


@dataclass(slots=True)
class Facts:
    """One enterprise's current records, as the conditions read them (rows with labels:
    credit ``id owner source_id kind level status expires_on``; penalties ``id owner
    source_id decided_on status``; orders ``id owner source_id deadline status`` with their
    acceptance ``acceptance_id acceptance_owner acceptance_source_id verdict accepted_on``)."""

    credit: list[Any] = field(default_factory=list)
    penalties: list[Any] = field(default_factory=list)
    orders: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Computed:
    colour: Colour
    # (rule, colour, description, records) of every rule met, in the rules' order.
    reasons: tuple[tuple[str, str, str, tuple[Ref, ...]], ...]
    review_on: date | None  # the day the same records could give another answer


# A condition: the records of one enterprise that meet it today, within ``days`` where it
# has a window, and the days after today on which that could change.
Met = tuple[list[Ref], list[date]]
Condition = Callable[[Facts, date, int], Met]


def _order(row: Any) -> Ref:
    return Ref("Rectification", row.owner, row.source_id, row.id)


def _acceptance(row: Any) -> Ref:
    return Ref("Acceptance", row.acceptance_owner, row.acceptance_source_id, row.acceptance_id)


def _credit(row: Any) -> Ref:
    return Ref("CreditRecord", row.owner, row.source_id, row.id)


def _overdue(facts: Facts, today: date, _: int) -> Met:
    met, later = [], []
    for row in facts.orders:
        if row.status != ACCEPTED:
            if row.deadline < today:
                met.append(_order(row))
            else:
                later.append(row.deadline + timedelta(days=1))
    return met, later


def _open(facts: Facts, today: date, _: int) -> Met:
    met, later = [], []
    for row in facts.orders:
        if row.status != ACCEPTED and row.deadline >= today:
            met.append(_order(row))
            later.append(row.deadline + timedelta(days=1))
    return met, later


def _windowed(rows: Iterable[Any], day: str, today: date, days: int) -> Met:
    """Rows whose ``day`` is within the last ``days`` days (today included)."""
    met, later = [], []
    for row in rows:
        ends = getattr(row, day) + timedelta(days=days)  # the first day it no longer counts
        if ends > today:
            met.append(row)
            later.append(ends)
    return met, later


def _failed(facts: Facts, today: date, days: int) -> Met:
    failed = [
        row
        for row in facts.orders
        if row.status != ACCEPTED and row.verdict == AcceptanceVerdict.FAILED.value
    ]
    rows, later = _windowed(failed, "accepted_on", today, days)
    return [_acceptance(row) for row in rows], later


def _accepted(facts: Facts, today: date, days: int) -> Met:
    passed = [
        row
        for row in facts.orders
        if row.status == ACCEPTED and row.verdict == AcceptanceVerdict.PASSED.value
    ]
    rows, later = _windowed(passed, "accepted_on", today, days)
    return [_acceptance(row) for row in rows], later


def _penalty(facts: Facts, today: date, days: int) -> Met:
    decided = [row for row in facts.penalties if row.status not in NOT_PENALTIES]
    rows, later = _windowed(decided, "decided_on", today, days)
    return [Ref("Penalty", row.owner, row.source_id, row.id) for row in rows], later


def _bad_credit(serious: bool) -> Condition:
    def condition(facts: Facts, today: date, _: int) -> Met:
        met, later = [], []
        for row in facts.credit:
            if (
                row.kind == CreditKind.BAD_RECORD.value
                and row.status == CreditStatus.ACTIVE.value
                and (row.expires_on is None or row.expires_on >= today)
                and (not serious or row.level == "serious")
            ):
                met.append(_credit(row))
                if row.expires_on is not None:
                    later.append(row.expires_on + timedelta(days=1))
        return met, later

    return condition


CONDITIONS: dict[str, Condition] = {
    "rectification-overdue": _overdue,
    "acceptance-failed": _failed,
    "bad-credit-serious": _bad_credit(serious=True),
    "bad-credit": _bad_credit(serious=False),
    "penalty": _penalty,
    "rectification-open": _open,
    "rectification-accepted": _accepted,
}


def compute(rules: Sequence[ColourRule], facts: Facts, today: date) -> Computed:
    """The colour ``facts`` give ``today`` under ``rules``, with its reasons."""
    colour, reasons, later = Colour.GREEN, [], []
    for rule in rules:
        met, changes = CONDITIONS[rule.condition](facts, today, rule.days or 0)
        later += changes
        if met:
            reasons.append((rule.name, rule.colour.value, rule.description, tuple(sorted(met))))
            if rule.colour.severity > colour.severity:
                colour = rule.colour
    review_on = min((day for day in later if day > today), default=None)
    return Computed(colour, tuple(reasons), review_on)
