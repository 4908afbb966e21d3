"""Colours kept with the enterprises: computed again in the transaction that changes their
records, and on the day the same records would give another colour.

The colour, its reasons and the day to look again live on the enterprise's row, so a dossier
reads them with the enterprise at no extra statement. Every colour an enterprise takes is a
row of ``colour_change`` (its history); a change from one colour to another is also a
version in the change feed (kind ``ColourCode``, owned by the enterprise's registration
authority, numbered with the enterprise's colours), so departments following the feed hear
of it as of any record. An enterprise's first colour is history only: no colour changed.

``recolour`` runs inside publishing's transaction (the feed head is held), so the colour
commits with the records that changed it or not at all. ``review`` does the same for
enterprises whose day to look again has come or whose colour an older version of the rules
computed, in transactions of its own, a slice at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import models
from hub.audit import AccessEntry, AccessLog, Trail
from hub.audit.record import Outcome
from hub.policy.supervision import ColourRules
from hub.publishing.versions import (
    VERSION,
    Change,
    Publisher,
    advance_feed,
    lock_feed,
    new_version,
    now,
)
from hub.records import today
from hub.supervision import Computed, Facts, compute

__all__ = ["KIND", "ColourReview", "due", "reasons_json", "recolour", "review", "reviewer"]

logger = logging.getLogger("hub.colours")

KIND = "ColourCode"  # in the change feed
ENTERPRISE = cast(Table, models.Enterprise.__table__)
CHANGE = cast(Table, models.ColourChange.__table__)
SLICE = 500  # enterprises a statement reads and a review transaction recolours
REVIEWER = "hub: colour review"  # the client of colours the hub changes on its own


def reviewer(owner: str) -> Publisher:
    """Who a colour the hub computed on its own is published by: the registration authority
    of the enterprise, through the hub itself."""
    return Publisher(REVIEWER, owner, owner)


def reasons_json(computed: Computed) -> str:
    return json.dumps(
        [
            {
                "rule": rule,
                "colour": colour,
                "description": description,
                "records": [[ref.kind, ref.owner, ref.source_id, ref.id] for ref in records],
            }
            for rule, colour, description, records in computed.reasons
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


async def _facts(connection: AsyncConnection, ids: Sequence[int]) -> dict[int, Facts]:
    """The current records the colour rules read, of these enterprises."""
    facts = {enterprise_id: Facts() for enterprise_id in ids}
    credit = models.CreditRecord.__table__.c
    penalty = models.Penalty.__table__.c
    order = models.Rectification.__table__.c
    acceptance = models.Acceptance.__table__.c
    statements = (
        (
            "credit",
            select(credit.enterprise_id, credit.id, credit.owner, credit.source_id,
                   credit.kind, credit.level, credit.status, credit.expires_on)
            .where(credit.enterprise_id.in_(ids), credit.retracted.is_(False)),
        ),
        (
            "penalties",
            select(penalty.enterprise_id, penalty.id, penalty.owner, penalty.source_id,
                   penalty.decided_on, penalty.status)
            .where(penalty.enterprise_id.in_(ids), penalty.retracted.is_(False)),
        ),
        (
            "orders",
            select(order.enterprise_id, order.id, order.owner, order.source_id, order.deadline,
                   order.status, acceptance.id.label("acceptance_id"),
                   acceptance.owner.label("acceptance_owner"),
                   acceptance.source_id.label("acceptance_source_id"), acceptance.verdict,
                   acceptance.accepted_on)
            .select_from(models.Rectification.__table__.outerjoin(models.Acceptance.__table__, and_(
                acceptance.rectification_id == order.id, acceptance.retracted.is_(False))))
            .where(order.enterprise_id.in_(ids), order.retracted.is_(False)),
        ),
    )  # fmt: skip
    for name, statement in statements:
        for row in await connection.execute(statement):
            getattr(facts[row.enterprise_id], name).append(row)
    return facts


async def recolour(
    connection: AsyncConnection,
    colours: ColourRules,
    ids: Iterable[int],
    today: date,
    head: int,
    publisher: Publisher | None = None,
) -> int:
    """Compute the colours of these enterprises again in the caller's transaction, which
    holds the feed head ``head``; keep what changed; the new head. ``publisher``: whose
    write changed them (None: the hub's own review, see ``reviewer``)."""
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), SLICE):
        head = await _recolour(connection, colours, wanted[start : start + SLICE], today, head,
                               publisher)  # fmt: skip
    return head


async def _recolour(
    connection: AsyncConnection,
    colours: ColourRules,
    ids: list[int],
    today: date,
    head: int,
    publisher: Publisher | None,
) -> int:
    e = ENTERPRISE.c
    rows = await connection.execute(
        select(e.id, e.uscc, e.owner, e.colour, e.colour_since, e.colour_reasons,
               e.colour_review_on, e.colour_rules).where(e.id.in_(ids))
    )  # fmt: skip
    facts = await _facts(connection, ids)
    kept: list[dict[str, Any]] = []
    firsts: list[tuple[Any, dict[str, Any]]] = []
    changed: list[tuple[Any, dict[str, Any]]] = []
    for row in rows:
        computed = compute(colours.rules, facts[row.id], today)
        reasons = reasons_json(computed)
        colour = computed.colour.value
        same = row.colour == colour
        if same and (row.colour_reasons, row.colour_review_on, row.colour_rules) == (
            reasons, computed.review_on, colours.version
        ):  # fmt: skip
            continue
        since = row.colour_since if same else today
        kept.append({"_id": row.id, "colour": colour, "colour_since": since,
                     "colour_reasons": reasons, "colour_review_on": computed.review_on,
                     "colour_rules": colours.version})  # fmt: skip
        if not same:
            history = {"enterprise_id": row.id, "colour": colour, "previous": row.colour,
                       "since": since, "reasons": reasons, "rules": colours.version,
                       "changed_at": now()}  # fmt: skip
            (changed if row.colour is not None else firsts).append((row, history))
    if kept:
        await connection.execute(
            update(ENTERPRISE)
            .where(e.id == bindparam("_id"))
            .values({name: bindparam(name) for name in kept[0] if name != "_id"}),
            kept,
        )
    if firsts:
        await connection.execute(insert(CHANGE), [history for _, history in firsts])
    if changed:
        head = await _changes(connection, changed, head, publisher)
    return head


async def _changes(
    connection: AsyncConnection,
    changed: list[tuple[Any, dict[str, Any]]],
    head: int,
    publisher: Publisher | None,
) -> int:
    """History rows for colours that changed, each a version in the feed: one statement
    for the rows, one for their ids and numbers (an enterprise's newest row is the one just
    written), one for the versions."""
    await connection.execute(insert(CHANGE), [history for _, history in changed])
    written = {
        row.enterprise_id: (row.id, row.number)
        for row in await connection.execute(
            select(CHANGE.c.enterprise_id, func.max(CHANGE.c.id).label("id"),
                   func.count().label("number"))
            .where(CHANGE.c.enterprise_id.in_([row.id for row, _ in changed]))
            .group_by(CHANGE.c.enterprise_id)
        )
    }  # fmt: skip
    versions = []
    for row, history in changed:
        change_id, number = written[row.id]
        head += 1
        reasons = json.loads(history["reasons"])
        rules = ", ".join(reason["rule"] for reason in reasons) or "no rule is met"
        data = {"colour": history["colour"], "previous": row.colour,
                "since": history["since"].isoformat(), "reasons": reasons}  # fmt: skip
        versions.append(
            new_version(head, KIND, row.owner, row.uscc, change_id, row.uscc, number,
                        Change.UPDATED, data, "colour",
                        f"{row.colour} -> {history['colour']}: {rules}",
                        publisher or reviewer(row.owner))
        )  # fmt: skip
    await connection.execute(insert(VERSION), versions)
    return head


def due(colours: ColourRules, today: date) -> Any:
    """Enterprises whose colour must be computed again without a record changing."""
    e = ENTERPRISE.c
    return or_(
        e.colour.is_(None),
        e.colour_review_on <= today,
        e.colour_rules.is_(None),
        e.colour_rules != colours.version,
    )


async def review(engine: AsyncEngine, colours: ColourRules, today: date, log: AccessLog) -> int:
    """Compute again every colour that is due (``due``), a slice per transaction; how many
    enterprises were looked at. Each transaction takes the feed head, as publishers do, and
    the colours it changed are an access record in it (the hub's own write, by
    ``REVIEWER``): they commit together or not at all."""
    looked = 0
    after = 0
    while True:
        async with engine.begin() as connection:
            ids = list(
                (
                    await connection.execute(
                        select(ENTERPRISE.c.id)
                        .where(ENTERPRISE.c.id > after, due(colours, today))
                        .order_by(ENTERPRISE.c.id)
                        .limit(SLICE)
                    )
                ).scalars()
            )
            if not ids:
                return looked
            head = start = await lock_feed(connection)
            head = await recolour(connection, colours, ids, today, head)
            if head != start:
                await log.append_within(connection, await _entry(connection, start, head))
                await advance_feed(connection, head)
        looked += len(ids)
        after = ids[-1]


async def _entry(connection: AsyncConnection, start: int, head: int) -> AccessEntry:
    """The access record of the colour changes versioned after ``start`` up to ``head``."""
    trail = Trail()
    for version in await connection.execute(
        select(VERSION.c.uscc, VERSION.c.record_id).where(VERSION.c.seq.between(start + 1, head))
    ):
        trail.write(version.uscc, KIND, Change.UPDATED.value, str(version.record_id))
    return AccessEntry(
        recorded_at=now(), outcome=Outcome.OK, trace_id="0" * 32, duration_us=0,
        client=REVIEWER, department=None, role="hub", operation_name="colour review",
        operation_type="mutation", policy_version=None, trail=trail,
    )  # fmt: skip


class ColourReview:
    """Computes due colours (``due``) while the hub serves: at start, before the first
    request (so a change of the rules shows from the first answer), then every ``seconds``.
    Several hub processes may each run one: they take the feed head in turn, and what one
    computed is no longer due for the next."""

    def __init__(
        self, engine: AsyncEngine, policies: Any, log: AccessLog, seconds: float = 3600
    ) -> None:
        self.engine, self.policies, self.log, self.seconds = engine, policies, log, seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._once()
        self._task = asyncio.create_task(self._run(), name="colour review")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            await self._once()

    async def _once(self) -> None:
        try:
            colours = self.policies.current.colours
            looked = await review(self.engine, colours, today(), self.log)
            if looked:
                logger.info("colour review: %d enterprises computed again", looked)
        except Exception as error:  # the database away, a lock timeout: next period
            logger.error("colour review failed (%s); trying again in %d s",
                         type(error).__name__, self.seconds)  # fmt: skip
