"""What follows from a published record for other records: an approved credit repair
repairs its credit record (一处修复、处处同步) and tells the departments that read it; an
acceptance closes or reopens the order it accepts (整改闭环)."""

from __future__ import annotations

import json
from enum import StrEnum

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import models
from hub.audit import served
from hub.audit.search import mentions
from hub.domain import (
    AcceptanceVerdict,
    CreditStatus,
    RectificationStatus,
    RepairStatus,
)
from hub.publishing.batch import Batch
from hub.publishing.versions import (
    VERSION,
    Change,
    Published,
    Publisher,
    is_current_version,
    new_version,
    now,
)
from hub.records import KINDS, Kind


async def readers_of(connection: AsyncConnection, kind: str, record_id: int, uscc: str,
                     owner: str) -> list[str]:  # fmt: skip
    """Departments other than ``owner`` that were served this record, from the access log."""
    access = models.AccessRecord.__table__
    rows = await connection.execute(
        select(access.c.department, access.c.enterprises, access.c.served).where(
            mentions(access.c.enterprises, uscc),
            or_(access.c.fields.like(f"% {kind}.%"), access.c.fields.like(f"% {uscc}:{kind}.%")),
            access.c.department != owner,
        )
    )
    readers = set()
    for row in rows:
        for group in served.groups(row._mapping):
            if (group["enterprise"], group["type"]) == (uscc, kind) and str(record_id) in group[
                "ids"
            ]:
                readers.add(row.department)
                break
    return sorted(readers)


async def _restate(
    connection: AsyncConnection,
    kind: Kind,
    owner: str,
    record_id: int,
    uscc: str,
    status: StrEnum,
    change: Change,
    reason: str,
    head: int,
    publisher: Publisher,
    index: int,
) -> tuple[Published | None, int]:
    """Give a record of ``kind`` a new ``status``: a new version of it in the change feed, as
    if its owner had published it; None when it has that status already."""
    table = kind.table
    row = (
        await connection.execute(
            select(table.c.source_id, table.c.version, table.c.status, VERSION.c.data)
            .outerjoin(VERSION, is_current_version(kind))
            .where(table.c.id == record_id)
        )
    ).one()
    if row.status == status:
        return None, head
    version = row.version + 1
    await connection.execute(
        update(table)
        .where(table.c.id == record_id)
        .values(status=status, version=version, updated_at=now())
    )
    data = {**(json.loads(row.data) if row.data else {}), "status": status.value}
    head += 1
    await connection.execute(
        insert(VERSION),
        [new_version(head, kind.type_name, owner, row.source_id, record_id, uscc, version,
                     change, data, "status", reason, publisher)],
    )  # fmt: skip
    return Published(index, kind.type_name, row.source_id, record_id, version, change, uscc), head


async def repair_credit(
    connection: AsyncConnection,
    batch: Batch,
    published: list[Published],
    head: int,
    publisher: Publisher,
) -> tuple[list[Published], int]:
    """Approved repairs mark their credit records repaired, for every reader at once, and
    tell each department that read the old record."""
    credit = KINDS["creditRecords"]
    repaired: list[Published] = []
    for result in published:
        values = batch.values[result.index]
        before = batch.current.get(result.source_id)
        newly = values["status"] == RepairStatus.APPROVED.value and (
            before is None or before.status != RepairStatus.APPROVED
        )
        if result.change is Change.UNCHANGED or not newly:
            continue
        record_id = batch.ids[result.index]["credit_record_id"]
        reason = f"credit repair {result.source_id} approved on {values['decidedOn']}"
        done, head = await _restate(connection, credit, batch.owner, record_id, result.uscc,
                                    CreditStatus.REPAIRED, Change.REPAIRED, reason, head,
                                    publisher, result.index)  # fmt: skip
        if done is None:
            continue
        readers = await readers_of(
            connection, credit.type_name, record_id, result.uscc, batch.owner
        )
        if readers:
            await connection.execute(
                insert(models.Notification),
                [
                    {
                        "department": department,
                        "topic": "credit_repaired",
                        "kind": credit.type_name,
                        "record_id": record_id,
                        "owner": batch.owner,
                        "source_id": done.source_id,
                        "uscc": result.uscc,
                        "version": done.version,
                        "message": (
                            f"{batch.owner}'s credit record {done.source_id} of enterprise "
                            f"{result.uscc}, which your systems read, was repaired ({reason}); "
                            "its status is now repaired: correct any copy you keep"
                        ),
                        "created_at": now(),
                    }
                    for department in readers
                ],
            )
        repaired.append(done)
    return repaired, head


# What an acceptance's verdict makes of the order it accepts (整改闭环).
FOLLOWS = {
    AcceptanceVerdict.PASSED.value: (RectificationStatus.ACCEPTED, Change.ACCEPTED, ""),
    AcceptanceVerdict.FAILED.value: (
        RectificationStatus.IN_PROGRESS,
        Change.REOPENED,
        ": back in progress; the acceptance's opinion says what is missing",
    ),
}


async def follow_acceptance(
    connection: AsyncConnection,
    batch: Batch,
    published: list[Published],
    head: int,
    publisher: Publisher,
) -> tuple[list[Published], int]:
    """Close the loop: a passed acceptance makes its order accepted, a failed one puts it
    back in progress (the acceptance's opinion says what is missing), each a new version of
    the order in the change feed, as if its owner had published it."""
    followed: list[Published] = []
    for result in published:
        if result.change is Change.UNCHANGED:
            continue
        values = batch.values[result.index]
        status, change, why = FOLLOWS[values["verdict"]]
        # Not which acceptance, nor when: who reads the order (an assisting or conflicting
        # department) need not read its acceptance.
        reason = f"its acceptance {values['verdict']}"
        done, head = await _restate(connection, KINDS["rectifications"], batch.owner,
                                    batch.ids[result.index]["rectification_id"], result.uscc,
                                    status, change, reason + why, head, publisher,
                                    result.index)  # fmt: skip
        if done is not None:
            followed.append(done)
    return followed, head
