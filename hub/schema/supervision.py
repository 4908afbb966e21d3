"""Supervision in the schema: the three-colour code (``Enterprise.colourCode``, its
history) and the warnings of inspections past what a period bears.

A colour is read from the enterprise's own row (hub/publishing/colours.py keeps it there),
so the dossier pays no statement for it, and both read paths make it with ``colour_code``.
Its reasons name the records that met each rule; a caller sees the records of owners and
types it may read anything of (the policy's scope, as for lists) and, for the rest, only
how many there are: the colour and its rules are shared, where the records are is not.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from hub.domain import Colour
from hub.supervision import Verdict

if TYPE_CHECKING:
    from hub.schema.access import Access
    from hub.schema.types import Department

__all__ = [
    "ColourChange",
    "ColourCode",
    "ColourReason",
    "InspectionWarning",
    "ReasonRecord",
    "colour_code",
    "reasons",
    "stored",
]

strawberry.enum(Colour, description="Three-colour code (三色码): green, yellow, black.")
DepartmentType = Annotated["Department", strawberry.lazy("hub.schema.types")]


@strawberry.type(description="A record that met a colour rule.")
class ReasonRecord:
    kind: str = strawberry.field(description="Its type, e.g. Rectification.")
    owner: DepartmentType
    source_id: str
    record_id: strawberry.ID = strawberry.field(name="id", description="The hub's id of it.")


@strawberry.type(description="A rule of policies/colours.csv that an enterprise's records meet.")
class ColourReason:
    rule: str = strawberry.field(description="The rule's name, e.g. overdue-rectification.")
    colour: Colour = strawberry.field(description="The colour the rule makes.")
    description: str
    count: int = strawberry.field(description="How many records meet it.")
    records: list[ReasonRecord] = strawberry.field(
        description="Those of them you may read (of owners and types the policy shares with "
        "you); the others are counted only."
    )


@strawberry.type(description="An enterprise's three-colour code, with the rules that made it.")
class ColourCode:
    colour: Colour = strawberry.field(
        description="The most severe colour of the rules met; green when none is."
    )
    since: date = strawberry.field(description="The day the enterprise took this colour.")
    reasons: list[ColourReason] = strawberry.field(
        description="Every rule met, most severe first as policies/colours.csv orders them."
    )


@strawberry.type(description="A colour an enterprise took, and why.")
class ColourChange:
    colour: Colour
    previous: Colour | None = strawberry.field(description="Null for its first colour.")
    since: date
    changed_at: datetime
    reasons: list[ColourReason]


@lru_cache(maxsize=10_000)
def stored(reasons: str) -> Any:
    """Stored reasons (JSON) as read, once per distinct text: enterprises share a few."""
    return json.loads(reasons)


def reasons(access: Access, kept: list[dict[str, Any]]) -> list[ColourReason]:
    """Reasons as kept (``stored``, or the feed's) as ``access``'s caller may see them."""
    made = []
    for reason in kept:
        records = reason["records"]
        visible = [
            ReasonRecord(kind=kind, owner=access.departments[owner], source_id=source_id,
                         record_id=strawberry.ID(str(record_id)))
            for kind, owner, source_id, record_id in records
            if owner in access.visible_owners(kind)
        ]  # fmt: skip
        made.append(
            ColourReason(rule=reason["rule"], colour=Colour(reason["colour"]),
                         description=reason["description"], count=len(records), records=visible)
        )  # fmt: skip
    return made


def colour_code(access: Access, row: Any) -> ColourCode | None:
    """An enterprise's colour code from its row; None until first computed."""
    if row.colour is None:
        return None
    return ColourCode(
        colour=Colour(row.colour),
        since=row.colour_since,
        reasons=reasons(access, stored(row.colour_reasons)),
    )


strawberry.enum(Verdict, description="Whether one more inspection is within what the period bears.")


@strawberry.type(
    description="How an enterprise's inspections in a period stand against its limit "
    "(policies/inspection-limits.csv), all departments' inspections counted together."
)
class InspectionWarning:
    verdict: Verdict
    count: int = strawberry.field(description="Inspections in the period, the one judged included.")
    limit: int | None = strawberry.field(description="More than this is over; null: none set.")
    warn_at: int | None = strawberry.field(description="From this many on, the hub warns.")
    period_from: date
    period_until: date
    reason: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> InspectionWarning:
        """From a warning as the feed keeps it (Judgement.data)."""
        return cls(
            verdict=Verdict(data["verdict"]), count=data["count"], limit=data["limit"],
            warn_at=data["warnAt"], period_from=date.fromisoformat(data["periodFrom"]),
            period_until=date.fromisoformat(data["periodUntil"]), reason=data["reason"],
        )  # fmt: skip
