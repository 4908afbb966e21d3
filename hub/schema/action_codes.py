"""Looking an inspection up by its administrative-action code (行政行为码, "亮码检查").

An inspector shows the code at the door; the enterprise, or another department, asks
``inspectionByActionCode`` what it stands for. The code is registered to one inspection
(hub/publishing/codes.py), so the answer is one inspection, as the caller may read it:

- the code is read through the loaders' statements (``Loaders.action_code``), so whatever
  narrows every statement of a caller narrows this one too: a code the caller's statements
  cannot see is answered exactly like an unknown one (NOT_FOUND);
- the inspection is then read as the change feed reads a record (``Loaders.published``:
  only owners that share something of inspections with the caller, or whose record the
  caller has a part in); an owner that shares nothing is FORBIDDEN, recorded as withheld
  under the inspection's own enterprise, as ``withheld_enterprise`` does for enterprises;
- a retracted inspection is NOT_FOUND, saying it was withdrawn (its code stays registered);
- otherwise the inspection is built with the same field decisions as anywhere else and
  entered in the access record under its own enterprise and owner, whether or not the query
  selects any of its fields: the lookup itself told the caller which enterprise it is about.

The enterprise is given by its USCC (the inspection's, as stored now), and as the dossier
shows it to the caller (``enterprise``): its name and other registration data come under the
Enterprise type's own decisions and access record, never copied past them.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy import Row

from hub.errors import BadUserInput, Forbidden, NotFound
from hub.records import ACTION_CODE
from hub.schema.context import Info
from hub.schema.query import withheld_enterprise
from hub.schema.types import Enterprise, Inspection, prefetch

__all__ = ["ActionCodeLookup", "ActionCodeQuery", "parse_action_code"]

FORMAT = (
    "an administrative-action code is 1 to 32 characters without whitespace, control or "
    "invisible characters, as the inspector shows it"
)


def parse_action_code(code: str) -> str:
    """The code as registered (surrounding whitespace dropped, as publishing does), or
    BadUserInput naming the rule it breaks."""
    try:
        parsed: str = ACTION_CODE.parse(code)
    except ValueError as error:
        raise BadUserInput(f"code {error}: {FORMAT}", argument="code") from None
    return parsed


@strawberry.type(description="What an administrative-action code (行政行为码) stands for.")
class ActionCodeLookup:
    code: str = strawberry.field(description="The code, as registered.")
    uscc: str = strawberry.field(description="The enterprise inspected: its credit code.")
    record: strawberry.Private[Inspection]

    @strawberry.field(description="The inspection, with the fields you may read of it.")
    async def inspection(self, info: Info) -> Inspection:
        await prefetch(info, Inspection, [self.record])
        return self.record

    @strawberry.field(
        description="The enterprise inspected, as its dossier shows it to you: null, with "
        "FORBIDDEN, where its registration authority shares nothing of it with you."
    )
    async def enterprise(self, info: Info) -> Enterprise | None:
        row = await info.context.loaders.enterprise.load(self.uscc)
        if row is None:  # an inspection's enterprise is never deleted
            return None
        if hidden := withheld_enterprise(info.context.access, row):
            raise hidden
        return info.context.access.build_one(Enterprise, row, info)


def _withheld(info: Info, held: Row[Any]) -> Forbidden:
    """The error in place of an inspection whose owner shares nothing of its inspections
    with the caller, recorded as withheld."""
    access = info.context.access
    reason = (
        f"no field of {held.owner_code}'s inspections is shared with {access.principal.subject}"
    )
    access.trail.deny(held.enterprise_uscc, "Inspection", str(held.id), held.owner_code,
                      "Inspection", reason)  # fmt: skip
    return Forbidden(held.owner_code, "Inspection", reason)


@strawberry.type
class ActionCodeQuery:
    @strawberry.field(
        description="The inspection an administrative-action code (行政行为码) shown at an "
        "inspection stands for (亮码检查), with its enterprise. NOT_FOUND for a code nobody "
        "registered, or one of a withdrawn inspection."
    )
    async def inspection_by_action_code(
        self,
        info: Info,
        code: Annotated[
            str, strawberry.argument(description="The code, e.g. 33010920260804010000547.")
        ],
    ) -> ActionCodeLookup:
        access, loaders = info.context.access, info.context.loaders
        wanted = parse_action_code(code)
        held = await loaders.action_code.load(wanted)
        if held is None:
            raise NotFound(
                f"no inspection is registered under action code {wanted}; check the code "
                "shown by the inspector"
            )
        row = await loaders.published["Inspection"].load(held.id)
        if row is None:
            raise _withheld(info, held)
        if held.retracted:
            raise NotFound(
                f"the inspection registered under action code {wanted} was withdrawn by "
                f"{held.owner_code}: it no longer stands as an inspection; ask {held.owner_code} "
                "why, or check the code shown by the inspector"
            )
        inspection = access.build_one(Inspection, row, info, below=("inspection",))
        assert inspection is not None  # noqa: S101 - built from a row
        return ActionCodeLookup(code=wanted, uscc=row.enterprise_uscc, record=inspection)
