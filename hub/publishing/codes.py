"""Administrative-action codes (行政行为码) are registered: one code, one inspection.

The code an inspector shows at the door ("亮码检查") is how the enterprise, and any
department after it, finds the inspection it stands for (``inspectionByActionCode``), so no
two inspections hold the same code, whoever owns them. A retracted inspection keeps its
code: it was shown to an enterprise, and a lookup of it must say the inspection was
withdrawn, not name another visit.

A batch is checked after its publisher took the feed head (publishers run one at a time, in
every process), against the codes as stored then: a code held by another inspection, or by
two records of the batch, is a problem of the record that wants it, reported like any other
(index, sourceId, field ``actionCode``), dry runs too. Republishing an inspection with its own
code, or moving it to a free one, is fine. A code is held by the inspection that has it when
the batch starts: moving a code from one inspection to another (or swapping two) takes two
batches, the one that frees it first.

Who holds a code is said where the policy lets the publisher read that owner's
``Inspection.actionCode``; otherwise it is "another department's inspection".

The unique index ``ix_inspection_action_code`` is the last guard, against writers that do
not take the feed head (SQL by hand, a demo load into a database in use): ``taken_meanwhile``
turns its violation into the same kind of problem, and the batch is rolled back whole.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.errors import InvalidRecords
from hub.policy import Policy
from hub.records import Problem

if TYPE_CHECKING:
    from hub.publishing.batch import Batch

__all__ = ["FIELD", "INDEX", "check_codes", "taken_meanwhile"]

FIELD = "actionCode"
INDEX = "ix_inspection_action_code"
ONE_EACH = "every inspection needs a code of its own: check the code shown at the inspection"
# PostgreSQL names the value in the error's detail: Key (action_code)=(3301...) already exists.
_TAKEN = re.compile(r"Key \(action_code\)=\((.*)\) already exists")


async def check_codes(batch: Batch, policy: Policy, subject: str) -> None:
    """Add a problem for each record of ``batch`` whose action code is held by another
    inspection, stored or of the batch; ``subject`` publishes it."""
    wanting: dict[str, list[int]] = {}
    for index, values in enumerate(batch.values):
        if values.get(FIELD) and values.get("sourceId"):
            wanting.setdefault(values[FIELD], []).append(index)
    if not wanting:
        return
    table = batch.kind.table
    holders = {
        row.action_code: row
        for row in await batch.connection.execute(
            select(table.c.action_code, table.c.owner, table.c.source_id, table.c.retracted)
            .where(table.c.action_code.in_(list(wanting)))
        )
    }  # fmt: skip
    # The code each of the owner's inspections in the batch wants, and where it is.
    moving = {batch.values[i]["sourceId"]: (i, code) for code, indexes in wanting.items()
              for i in indexes}  # fmt: skip
    for code, indexes in wanting.items():
        holder = holders.get(code)
        first = batch.values[indexes[0]]["sourceId"]
        for index in indexes:
            source_id = batch.values[index]["sourceId"]
            if holder is not None:  # the inspection holding it keeps it
                if (holder.owner, holder.source_id) != (batch.owner, source_id):
                    said = _held(code, holder, batch.owner, policy, subject, moving)
                    batch.problem(index, FIELD, said)
            elif index != indexes[0] and source_id != first:  # a repeated sourceId is said
                batch.problem(index, FIELD, f"is also the action code of records[{indexes[0]}] "
                              f"of this batch (sourceId {first}); {ONE_EACH}")  # fmt: skip


def _held(
    code: str,
    holder: Any,
    owner: str,
    policy: Policy,
    subject: str,
    moving: dict[str, tuple[int, str]],
) -> str:
    """Why ``code`` is not free: ``holder`` (its owner, sourceId, retracted) has it."""
    told = policy.decide(subject, holder.owner, f"Inspection.{FIELD}", purpose=False).allowed
    if holder.owner != owner and not told:
        return (
            f"{code} is already registered to another department's inspection (a retracted "
            f"inspection keeps its code too); {ONE_EACH}"
        )
    said = f"{code} is already registered to {holder.owner}'s inspection {holder.source_id}"
    if holder.retracted:
        said += ", which was retracted: a retracted inspection keeps its code"
    if holder.owner == owner and holder.source_id in moving:
        index, wanted = moving[holder.source_id]
        if wanted != code:
            return (
                f"{said}; records[{index}] of this batch gives it another code, but a code is "
                "free only once that is published: publish that change first, then this"
            )
    return f"{said}; {ONE_EACH}"


def taken_meanwhile(error: IntegrityError, batch: Batch, total: int) -> InvalidRecords | None:
    """The problems of a batch whose write broke the unique index of action codes (a writer
    that did not wait for the feed head registered a code first); None for another error."""
    said = str(error.orig)
    if INDEX not in said and "inspection.action_code" not in said:
        return None
    found = _TAKEN.search(str(getattr(error.orig, "detail", None) or ""))
    indexes = [
        index
        for index, values in enumerate(batch.values)
        if values.get(FIELD) and (found is None or values[FIELD] == found[1])
    ]
    what = found[1] if found is not None else "an action code of this batch"
    message = (
        f"{what} was registered to another inspection while this batch was being written, by "
        f"a write that did not wait its turn; nothing of the batch was written: {ONE_EACH}, "
        "and publish again"
    )
    problems = [
        Problem(index, batch.values[index].get("sourceId"), FIELD, message) for index in indexes
    ]
    return InvalidRecords(problems, total)
