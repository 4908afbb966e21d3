"""An enterprise's own view: its dossier as the departments share it, and its Data Tracker.

An enterprise's own credential (role enterprise, hub/schema/roots.py) asks ``myEnterprise``:
the same ``Enterprise`` type as ``enterprise(uscc)``, decided field by field for the subject
``enterprise`` by the policy and recorded like any read, so every field the dossier has
comes with it under the same rules; and ``myDataAccesses``, which departments read its
records, when, why, and which fields they were served or refused, newest first (the "Data
Tracker" X-Road countries give their citizens). The tracker reads the access log through
the auditors' own search (hub/audit/search.py, by the log's index of enterprises), shows
nothing of the requests that a department's systems keep to themselves (client, address,
trace id, document hash) and leaves out the enterprise's own requests. Asking is recorded
too: its access record names the enterprise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import get_named_type

from hub.audit import AccessFilter, find, served
from hub.domain import Role
from hub.errors import BadUserInput, Forbidden
from hub.schema.audit import AccessOutcome
from hub.schema.context import Info
from hub.schema.feed import decode_cursor, encode_cursor
from hub.schema.query import PageInfo, dossier
from hub.schema.roots import FOR_ENTERPRISES
from hub.schema.types import Department, Enterprise

__all__ = ["MAX_PAGE_SIZE", "OwnQuery"]

MAX_PAGE_SIZE = 100
CURSOR = "access"  # cursors of myDataAccesses: "access:<seq>", as the feed makes them


@strawberry.type(description="One request that read, or was refused, records of your enterprise.")
class DataAccess:
    recorded_at: datetime = strawberry.field(description="When the request was answered (UTC).")
    department: Department | None = strawberry.field(
        description="The department whose system sent it."
    )
    purpose: str | None = strawberry.field(description="The purpose it stated (X-Hub-Purpose).")
    case_ref: str | None = strawberry.field(
        description="The case reference it stated (X-Hub-Case): an action code or case number."
    )
    outcome: AccessOutcome
    fields: list[str] = strawberry.field(
        description="Type.field names it was served of your records, e.g. Inspection.result."
    )
    withheld: list[str] = strawberry.field(
        description="Type.field names of your records withheld from it."
    )
    published: list[str] = strawberry.field(
        description="Types of your records it published (created, changed or retracted)."
    )


@strawberry.type
class DataAccessEdge:
    cursor: str
    node: DataAccess


@strawberry.type(description="Requests about your enterprise, newest first.")
class DataAccessConnection:
    edges: list[DataAccessEdge]
    page_info: PageInfo


def own_enterprise(info: Info, field: str) -> str:
    """The USCC of the caller's enterprise; Forbidden for every other caller (roots.py
    refuses them first)."""
    principal = info.context.access.principal
    if principal.role is not Role.ENTERPRISE or principal.enterprise is None:
        raise Forbidden("hub", field, FOR_ENTERPRISES, action=f"asking for {field}")
    return principal.enterprise


def data_access(
    row: Any, uscc: str, departments: Any, readable: Callable[[str], bool]
) -> DataAccess | None:
    """A stored access record as the enterprise it names sees it: of the types of record it
    may read itself (``readable``), so that the tracker never tells it of records kept from
    it (inspection plans: spot checks are unannounced); None when nothing is left."""
    values = row._mapping
    fields, withheld = (
        [coordinate for coordinate in names if readable(coordinate)]
        for names in served.of_enterprise(values, uscc)
    )
    written = json.loads(values["written"] or "[]")
    published = sorted({group["type"] for group in written
                        if group["enterprise"] == uscc and readable(group["type"])})  # fmt: skip
    if not (fields or withheld or published):
        return None
    return DataAccess(
        recorded_at=datetime.fromisoformat(values["recorded_at"]),
        department=departments.get(values["department"]),
        purpose=values["purpose"],
        case_ref=values["case_ref"],
        outcome=AccessOutcome(values["outcome"]),
        fields=fields,
        withheld=withheld,
        published=published,
    )


@strawberry.type
class OwnQuery:
    @strawberry.field(
        description="Your enterprise's dossier, as the departments share it with enterprises "
        "(enterprise credentials only)."
    )
    async def my_enterprise(self, info: Info) -> Enterprise | None:
        return await dossier(info, own_enterprise(info, "Query.myEnterprise"))

    @strawberry.field(
        description="Which departments read your enterprise's records, when, why and what, "
        "newest first; your own requests left out, and what is kept from you (inspection "
        "plans): a page may hold fewer than `first` (enterprise credentials only)."
    )
    async def my_data_accesses(
        self,
        info: Info,
        since: Annotated[
            datetime | None, strawberry.argument(description="Only requests at or after this.")
        ] = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Only requests at or before this.")
        ] = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 1 to {MAX_PAGE_SIZE}.")
        ] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page.")
        ] = None,
    ) -> DataAccessConnection:
        uscc = own_enterprise(info, "Query.myDataAccesses")
        info.context.access.trail.mention(uscc)
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise BadUserInput(
                f"first must be between 1 and {MAX_PAGE_SIZE}, not {first}", argument="first"
            )
        if since is not None and until is not None and since > until:
            raise BadUserInput(
                f"since ({since.isoformat()}) is after until ({until.isoformat()}); give the "
                "earlier moment as since",
                argument="since",
            )
        before = decode_cursor(CURSOR, after) if after is not None else None
        wanted = AccessFilter(
            enterprise=uscc, since=since, until=until, excluded_role=Role.ENTERPRISE.value
        )
        rows = await find(info.context.loaders.reader.rows, wanted, first + 1, before)
        access = info.context.access
        page = rows[:first]
        types = info._raw_info.schema.type_map

        def readable(coordinate: str) -> bool:
            """A type (or a field leading to one) of records the enterprise may read."""
            type_name, _, field = coordinate.partition(".")
            if not access.visible_owners(type_name):
                return False
            if field and (found := getattr(types.get(type_name), "fields", {}).get(field)):
                target = get_named_type(found.type).name
                return target not in access.shared or bool(access.visible_owners(target))
            return True

        edges = [
            DataAccessEdge(cursor=encode_cursor(CURSOR, row.seq), node=node)
            for row in page
            if (node := data_access(row, uscc, access.departments, readable))
        ]
        return DataAccessConnection(
            edges=edges,
            # After the last record looked at: one that named only what is kept from the
            # enterprise is skipped, not looked at again.
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=encode_cursor(CURSOR, page[-1].seq) if page else None,
            ),
        )
