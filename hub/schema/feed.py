"""Keeping readers in sync: the change feed and the notifications of each department.

The feed lists record versions in commit order (hub/publishing/versions.py numbers them
under the feed head), only of the owners and types the caller may read and of the records
it has a part in; each change points at the record as it is now, built with the same field
decisions as the dossier.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import and_, case, false, or_, select

from hub import models
from hub.domain import DEPARTMENTS, Colour, Role
from hub.errors import BadUserInput, Forbidden
from hub.policy import Scope
from hub.publishing import Change
from hub.schema.context import Info
from hub.schema.publish import RecordKind
from hub.schema.sources import relations
from hub.schema.supervision import ColourChange, InspectionWarning, reasons
from hub.schema.types import PUBLISHED_TYPES, Department, Record, built
from hub.values import LARGEST_ID, LARGEST_INTEGER, whole

__all__ = ["FeedQuery", "Subscription", "read_changes"]

MAX_PAGE_SIZE = 500
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)


def encode_cursor(prefix: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{prefix}:{seq}".encode()).decode()


def decode_cursor(prefix: str, cursor: str | None, largest: int = LARGEST_ID) -> int:
    """The position a cursor stands for (0 without one), at most ``largest``; BadUserInput
    for a foreign one."""
    if cursor is None:
        return 0
    try:
        kind, _, seq = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        position = whole(seq, largest)
        if kind != prefix or position is None:
            raise ValueError(cursor)
        return position
    except (ValueError, binascii.Error, UnicodeError):
        raise BadUserInput(
            f"after={cursor!r} is not a {prefix} cursor from this hub; pass the endCursor of "
            "your previous call, or omit after to start from the beginning",
            argument="after",
        ) from None


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(
            f"first must be between 1 and {MAX_PAGE_SIZE}, not {first}", argument="first"
        )
    return first


@strawberry.type(description="A record created or changed: one version, in commit order.")
class RecordChange:
    record_pk: strawberry.Private[int]
    cursor: str = strawberry.field(description="Pass as `after` to continue after this change.")
    kind: RecordKind
    change: Change
    version: int
    owner: Department
    source_id: str
    uscc: str = strawberry.field(description="The enterprise the record is about.")
    published_at: datetime
    reason: str | None = strawberry.field(description="Why it was retracted or repaired.")
    data: strawberry.Private[str | None]  # what a derived entry says (DERIVED kinds only)

    @strawberry.field(
        description="The record as it is now (retracted ones too), with the fields you may "
        "read; later changes of it follow in the feed. Null for COLOUR_CODE and "
        "INSPECTION_WARNING entries, which are the hub's own."
    )
    async def record(self, info: Info) -> Record | None:
        if self.kind.value in DERIVED:
            return None
        row = await info.context.loaders.published[self.kind.value].load(self.record_pk)
        if row is None:
            return None
        (record,) = await built(info, PUBLISHED_TYPES[self.kind.value], [row])
        return record

    @strawberry.field(
        description="For COLOUR_CODE entries: the colour the enterprise took, and why (`uscc` "
        "is the enterprise, `sourceId` its code too)."
    )
    def colour(self, info: Info) -> ColourChange | None:
        if self.kind is not RecordKind.COLOUR_CODE or self.data is None:
            return None
        data = json.loads(self.data)
        return ColourChange(
            colour=Colour(data["colour"]),
            previous=None if data["previous"] is None else Colour(data["previous"]),
            since=date.fromisoformat(data["since"]), changed_at=self.published_at,
            reasons=reasons(info.context.access, data["reasons"]),
        )  # fmt: skip

    @strawberry.field(
        description="For INSPECTION_WARNING entries: the warning (`sourceId` is the inspection's)."
    )
    def warning(self) -> InspectionWarning | None:
        if self.kind is not RecordKind.INSPECTION_WARNING or self.data is None:
            return None
        return InspectionWarning.of(json.loads(self.data))


# Kinds in the feed that are the hub's own (hub/supervision), by the field a caller must be
# able to read of the owner's records to see them: a colour as the enterprise's, a warning
# as the inspection facts it counts.
DERIVED = {
    RecordKind.COLOUR_CODE.value: "Enterprise.colourCode",
    RecordKind.INSPECTION_WARNING.value: "Inspection.inspectedOn",
}


def feed_scope(access: Any, kind: str) -> Scope:
    """Whose entries of ``kind`` the caller may read, and through which relations."""
    if kind not in DERIVED:
        return access.scope(kind)  # type: ignore[no-any-return]
    owners = tuple(o for o in DEPARTMENT_CODES if access.decide(o, DERIVED[kind]).allowed)
    return Scope(owners, {})


@strawberry.type(description="A page of the change feed.")
class ChangePage:
    changes: list[RecordChange]
    end_cursor: str = strawberry.field(
        description="Where to continue: after the last change, or where you were if none."
    )
    has_more: bool = strawberry.field(description="More changes wait: call again right away.")


@strawberry.type(description="A message for your department's systems.")
class Notification:
    id: strawberry.ID
    topic: str = strawberry.field(description="e.g. credit_repaired.")
    kind: RecordKind
    owner: Department
    source_id: str
    uscc: str
    version: int = strawberry.field(description="The record's version the message is about.")
    message: str
    created_at: datetime


@strawberry.type(description="A page of notifications, oldest first.")
class NotificationPage:
    notifications: list[Notification]
    end_cursor: str
    has_more: bool


Kinds = Annotated[
    list[RecordKind] | None, strawberry.argument(description="Only these kinds; all if not given.")
]
Owners = Annotated[
    list[str] | None,
    strawberry.argument(description="Only these owner departments' records; all if not given."),
]
After = Annotated[str | None, strawberry.argument(description="endCursor of your previous call.")]


def check_owners(owners: list[str] | None) -> None:
    if owners is not None and (unknown := set(owners) - set(DEPARTMENT_CODES)):
        raise BadUserInput(
            f"unknown owner {', '.join(sorted(unknown))}; one of {', '.join(DEPARTMENT_CODES)}",
            argument="owners",
        )


async def read_changes(
    info: Info,
    seq: int,
    kinds: list[RecordKind] | None,
    owners: list[str] | None,
    first: int,
) -> ChangePage:
    """The changes after ``seq`` that the caller may read, oldest first."""
    first = page_size(first)
    check_owners(owners)
    access = info.context.access
    version = models.RecordVersion
    readable = []
    # Records the caller has a part in (relations.py) are in its feed as in its dossier.
    record_id = models.RecordVersion.__table__.c.record_id
    related = relations(access.caller, record_id) if access.caller else {}
    for kind in kinds or list(RecordKind):
        scope = feed_scope(access, kind.value)
        visible = [o for o in scope.owners if owners is None or o in owners]
        if visible:
            readable.append(and_(version.kind == kind.value, version.owner.in_(visible)))
        for name, opened in scope.relations.items():
            opened = tuple(o for o in opened if owners is None or o in owners)
            if opened:
                readable.append(and_(version.kind == kind.value, version.owner.in_(opened),
                                     related[kind.value][name]))  # fmt: skip
    statement = (
        select(version.seq, version.kind, version.record_id, version.version, version.change,
               version.owner, version.source_id, version.uscc, version.published_at,
               version.reason,
               case((version.kind.in_(DERIVED), version.data), else_=None).label("data"))
        .where(version.seq > seq, or_(*readable) if readable else false())
        .order_by(version.seq)
        .limit(first + 1)
    )  # fmt: skip
    rows = await info.context.loaders.reader.rows(statement)
    departments = access.departments
    changes = [
        RecordChange(
            record_pk=row.record_id,
            cursor=encode_cursor("change", row.seq),
            kind=RecordKind(row.kind),
            change=Change(row.change),
            version=row.version,
            owner=departments[row.owner],
            source_id=row.source_id,
            uscc=row.uscc,
            published_at=row.published_at,
            reason=row.reason,
            data=row.data,
        )
        for row in rows[:first]
    ]
    return ChangePage(
        changes=changes,
        end_cursor=changes[-1].cursor if changes else encode_cursor("change", seq),
        has_more=len(rows) > first,
    )


@strawberry.type
class FeedQuery:
    @strawberry.field(
        description="Records created or changed since a cursor, in commit order, of the owners "
        "and kinds you may read. Poll it with the last endCursor to stay in sync: no change is "
        "skipped or repeated."
    )
    async def changes(
        self,
        info: Info,
        after: After = None,
        kinds: Kinds = None,
        owners: Owners = None,
        first: Annotated[int, strawberry.argument(description="Page size.")] = 100,
    ) -> ChangePage:
        return await read_changes(info, decode_cursor("change", after), kinds, owners, first)

    @strawberry.field(
        description="Messages for your department, oldest first, e.g. that a credit record your "
        "systems read was repaired. Poll with the last endCursor."
    )
    async def notifications(
        self,
        info: Info,
        after: After = None,
        first: Annotated[int, strawberry.argument(description="Page size.")] = 100,
    ) -> NotificationPage:
        position = decode_cursor("notification", after, LARGEST_INTEGER)
        first = page_size(first)
        access = info.context.access
        principal = access.principal
        if principal.role is not Role.DEPARTMENT:  # messages name enterprises and records
            raise Forbidden(
                principal.department, "Query.notifications",
                "notifications are messages for department systems; auditors read the access "
                "log, and admins read no enterprise data",
                action="reading notifications",
            )  # fmt: skip
        notification = models.Notification
        rows = await info.context.loaders.reader.rows(
            select(notification.__table__)
            .where(
                notification.department == access.principal.department,
                notification.id > position,
            )
            .order_by(notification.id)
            .limit(first + 1)
        )
        page = []
        for row in rows[:first]:
            access.trail.serve(row.uscc, "Notification", str(row.id), ("message",))
            page.append(
                Notification(
                    id=strawberry.ID(str(row.id)),
                    topic=row.topic,
                    kind=RecordKind(row.kind),
                    owner=access.departments[row.owner],
                    source_id=row.source_id,
                    uscc=row.uscc,
                    version=row.version,
                    message=row.message,
                    created_at=row.created_at,
                )
            )
        end = int(page[-1].id) if page else position
        return NotificationPage(
            notifications=page,
            end_cursor=encode_cursor("notification", end),
            has_more=len(rows) > first,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The change feed, live: a page of changes whenever records you may read are "
        "created or changed. From `after`, or from now when not given. Over WebSocket "
        "(graphql-transport-ws) at /graphql, with the same token as queries. It never "
        "completes; an event that cannot be served ends it with an `error` message: subscribe "
        "again with `after` set to the last endCursor you received, and nothing is lost or "
        "repeated."
    )
    async def changes(
        self, info: Info, after: After = None, kinds: Kinds = None, owners: Owners = None
    ) -> AsyncGenerator[ChangePage, None]:
        # One event per call (hub/live/ runs it once per event for all of a stream's
        # subscribers); opening, it only says where the subscription starts.
        live = info.context.live
        if live is None:
            raise BadUserInput("subscribe over WebSocket (graphql-transport-ws) at /graphql")
        check_owners(owners)
        if live.seq is None:
            if after is not None:
                live.seq = decode_cursor("change", after)
            else:
                head = models.FeedHead
                (row,) = await info.context.loaders.reader.rows(
                    select(head.seq).where(head.id == 1)
                )
                live.seq = int(row.seq)
            return
        page = await read_changes(info, live.seq, kinds, owners, MAX_PAGE_SIZE)
        end = decode_cursor("change", page.end_cursor)
        # Every change up to the head was committed before the page was read: a page that is
        # not full holds all of them the caller may see.
        live.seq = end if page.has_more else max(end, live.head)
        if page.changes:
            yield page
