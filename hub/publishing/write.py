"""Publishing and retracting a batch of one kind of record of one owner, all or nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.conflicts import find_conflicts
from hub.db import writing
from hub.domain import (
    DEPARTMENTS,
)
from hub.errors import BadUserInput, Forbidden, InvalidRecords
from hub.policy import Policy
from hub.publishing.batch import Batch
from hub.publishing.codes import check_codes, taken_meanwhile
from hub.publishing.follow import follow_acceptance, repair_credit
from hub.publishing.supervise import supervise
from hub.publishing.versions import (
    VERSION,
    Change,
    Published,
    Publisher,
    advance_feed,
    lock_feed,
    new_version,
    now,
    stored_records,
)
from hub.records import SOURCE_ID, Kind, Problem, parse, today
from hub.values import text

__all__ = ["MAX_BATCH", "publish", "requirement_problems", "retract", "supervise"]

MAX_BATCH = 1000
NEW = (Change.CREATED, Change.WARNED)  # rows a dry run only pretended to write
RETRACTION_REASON = text(2000, lines=True)
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)


def authorize(policy: Policy, publisher: Publisher, kind: Kind, owner: str) -> None:
    if owner not in DEPARTMENT_CODES:
        raise BadUserInput(
            f"unknown owner {owner!r}; one of {', '.join(DEPARTMENT_CODES)}", argument="owner"
        )
    decision = policy.decide_write(publisher.subject, owner, kind.type_name)
    if not decision.allowed:
        raise Forbidden(owner, kind.type_name, decision.reason, writing=True)


async def publish(
    target: AsyncEngine | AsyncConnection,
    policy: Policy,
    publisher: Publisher,
    kind: Kind,
    owner: str,
    records: Sequence[Any],
    *,
    dry_run: bool = False,
    on: date | None = None,
) -> list[Published]:
    """Publish ``records`` of ``owner`` (up to MAX_BATCH), all or none: in a transaction of
    its own for an engine, in a savepoint of the caller's transaction for a connection.

    ``dry_run`` does everything and reports it, then rolls it back: nothing is written (new
    records have no id yet). ``on`` is the day dates are checked against (today in China by
    default).
    """
    authorize(policy, publisher, kind, owner)
    if len(records) > MAX_BATCH:
        raise BadUserInput(
            f"{len(records)} records in one batch; publish at most {MAX_BATCH} at a time",
            argument="records",
        )
    day = on or today()
    values: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for index, record in enumerate(records):
        parsed, found = parse(kind, index, record, day)
        values.append(parsed)
        problems += found
        problems += requirement_problems(policy, owner, index, parsed)
    async with writing(target) as transaction:
        connection = transaction.connection
        head = await lock_feed(connection)
        batch = Batch(connection, kind, owner, values, problems)
        await batch.resolve()
        if kind.type_name == "Inspection":
            await check_codes(batch, policy, publisher.subject)
        if problems:
            raise InvalidRecords(sorted(problems, key=lambda p: p.index), len(records))
        try:
            published, head = await batch.write(head, publisher)
        except IntegrityError as error:  # rolled back with the batch, as it leaves this block
            if (meanwhile := taken_meanwhile(error, batch, len(records))) is None:
                raise
            raise meanwhile from None
        if kind.type_name == "CreditRepair":
            repaired, head = await repair_credit(connection, batch, published, head, publisher)
            published += repaired
        elif kind.type_name == "Acceptance":
            followed, head = await follow_acceptance(connection, batch, published, head,
                                                      publisher)  # fmt: skip
            published += followed
        if kind.type_name in ("Rectification", "Acceptance"):  # orders opened or closed
            await find_conflicts(connection, policy.conflicts, set(batch.enterprise_ids))
        warnings, head = await supervise(connection, policy, published, head, publisher, day)
        published += warnings
        await advance_feed(connection, head)
        if dry_run:  # everything a real publish does, then undone
            await transaction.rollback()
            return [
                replace(result, record_id=None) if result.change in NEW else result
                for result in published
            ]
    return published


def requirement_problems(
    policy: Policy, owner: str, index: int, values: dict[str, Any]
) -> list[Problem]:
    """The requirement codes of an order: catalogued, in the owner's remit (so that no
    department can make up a conflict to read another's orders), and not contradicting each
    other."""
    found, codes = [], values.get("requirementCodes") or []
    source_id = values.get("sourceId")
    for code in codes:
        if code not in policy.requirements:
            known = ", ".join(sorted(policy.requirements)) or "none yet"
            found.append(f"unknown requirement code {code!r}; policies/requirements.csv lists "
                         f"them ({known})")  # fmt: skip
        elif owner not in policy.requirement_departments[code]:
            remit = ", ".join(sorted(policy.requirement_departments[code]))
            found.append(f"{code} is not a requirement {owner} orders: policies/requirements.csv"
                         f" gives it to {remit}")  # fmt: skip
    for position, code in enumerate(codes):
        for other in codes[position + 1 :]:
            if frozenset((code, other)) in policy.conflicts:
                found.append(f"{code} and {other} contradict each other (policies/conflicts.csv):"
                             " one order cannot require both")  # fmt: skip
    return [Problem(index, source_id, "requirementCodes", message) for message in found]


async def retract(
    target: AsyncEngine | AsyncConnection,
    policy: Policy,
    publisher: Publisher,
    kind: Kind,
    owner: str,
    source_ids: Sequence[str],
    reason: str,
) -> list[Published]:
    """Withdraw records: a new version marked retracted, with the reason; nothing deleted.
    All or none, as ``publish``."""
    authorize(policy, publisher, kind, owner)
    if len(source_ids) > MAX_BATCH:
        raise BadUserInput(
            f"{len(source_ids)} records in one call; retract at most {MAX_BATCH} at a time",
            argument="sourceIds",
        )
    if not reason.strip():
        raise BadUserInput("say why the records are retracted", argument="reason")
    try:
        reason = RETRACTION_REASON(reason)
    except ValueError as error:
        raise BadUserInput(f"the reason {error}", argument="reason") from None
    malformed = []
    for index, source_id in enumerate(source_ids):
        try:
            SOURCE_ID.parse(source_id)
        except ValueError as error:
            malformed.append(Problem(index, None, "sourceId", str(error)))
    if malformed:
        raise InvalidRecords(malformed, len(source_ids))
    table = kind.table
    async with writing(target) as transaction:
        connection = transaction.connection
        head = await lock_feed(connection)
        current = await stored_records(connection, kind, owner, source_ids)
        missing = [
            Problem(index, source_id, "sourceId", f"{owner} has no {kind.type_name} {source_id!r}")
            for index, source_id in enumerate(source_ids)
            if source_id not in current
        ]
        if missing:
            raise InvalidRecords(missing, len(source_ids))
        published, versions = [], []
        done: dict[str, Published] = {}
        for index, source_id in enumerate(source_ids):
            row = current[source_id]
            if row.retracted or source_id in done:
                version = done[source_id].version if source_id in done else row.version
                published.append(
                    Published(index, kind.type_name, source_id, row.id, version,
                              Change.UNCHANGED, row.uscc)
                )  # fmt: skip
                continue
            head += 1
            version = row.version + 1
            await connection.execute(
                update(table)
                .where(table.c.id == row.id)
                .values(retracted=True, version=version, updated_at=now())
            )
            versions.append(
                new_version(head, kind.type_name, owner, source_id, row.id, row.uscc, version,
                            Change.RETRACTED, json.loads(row.data or "{}"), "", reason.strip(),
                            publisher)
            )  # fmt: skip
            done[source_id] = Published(
                index, kind.type_name, source_id, row.id, version, Change.RETRACTED, row.uscc
            )
            published.append(done[source_id])
        if versions:
            await connection.execute(insert(VERSION), versions)
            _, head = await supervise(connection, policy, published, head, publisher, today())
            await advance_feed(connection, head)
    return published
