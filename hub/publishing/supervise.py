"""What follows a publish for supervision: the colours of the enterprises whose records
changed, and the warnings of new inspections past what a period bears (hub/supervision),
in the publishing transaction, so that they commit with the records or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.policy import Policy
from hub.publishing.colours import recolour
from hub.publishing.versions import Change, Published, Publisher
from hub.publishing.warnings import warn

__all__ = ["supervise"]

ENTERPRISE = cast(Table, models.Enterprise.__table__)
# Kinds whose records the colour rules read (hub/supervision/colours.py).
COLOURING = ("CreditRecord", "CreditRepair", "Penalty", "Rectification", "Acceptance")


async def supervise(
    connection: AsyncConnection,
    policy: Policy,
    published: Sequence[Published],
    head: int,
    publisher: Publisher,
    today: date,
) -> tuple[list[Published], int]:
    """Recolour and warn after ``published``; the warnings raised, as published results
    (change WARNED, the warning in ``detail``), and the new feed head."""
    written = [p for p in published if p.change is not Change.UNCHANGED]
    usccs = {p.uscc for p in written if p.kind in COLOURING}
    if usccs:
        ids = (
            await connection.execute(select(ENTERPRISE.c.id).where(ENTERPRISE.c.uscc.in_(usccs)))
        ).scalars()
        head = await recolour(connection, policy.colours, list(ids), today, head, publisher)
    return await warn(connection, policy, written, head, publisher)
