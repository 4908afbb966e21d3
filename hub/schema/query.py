"""The root query: one enterprise's dossier, a filtered page of enterprises, the departments."""

from __future__ import annotations

import base64
import binascii
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, Row, Select, func, select

from hub import models
from hub.db import one_of
from hub.domain import DEPARTMENTS, Colour, EnterpriseStatus
from hub.errors import BadUserInput, Forbidden, InvalidUSCC
from hub.grants import describe
from hub.policy import Decision, Relation, Sharing
from hub.schema.access import Access
from hub.schema.context import Info
from hub.schema.sources import ENTERPRISE
from hub.schema.types import Department, Enterprise
from hub.uscc import parse_uscc

__all__ = ["MAX_PAGE_SIZE", "EnterpriseFilter", "Query", "dossier", "matching"]

MAX_PAGE_SIZE = 100
_CURSOR_PREFIX = "enterprise:"


def encode_cursor(uscc: str) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{uscc}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    """The USCC a cursor points after; BadUserInput for anything this hub did not issue."""
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not decoded.startswith(_CURSOR_PREFIX):
            raise ValueError(decoded)
        return parse_uscc(decoded.removeprefix(_CURSOR_PREFIX))
    except (ValueError, binascii.Error, UnicodeError, InvalidUSCC):
        raise BadUserInput(
            f"after={cursor!r} is not a cursor from this hub; pass pageInfo.endCursor "
            "of the previous page, or omit after to start at the beginning",
            argument="after",
        ) from None


@strawberry.input(description="Conditions an enterprise must meet; all given ones apply.")
class EnterpriseFilter:
    region: str | None = strawberry.field(default=None, description="District, e.g. 西湖区.")
    town: str | None = strawberry.field(default=None, description="Town, e.g. 三墩镇.")
    industry: str | None = strawberry.field(default=None, description="Industry, e.g. 化工.")
    name_contains: str | None = strawberry.field(
        default=None, description="Part of the enterprise name."
    )
    status: EnterpriseStatus | None = None
    colour: Colour | None = strawberry.field(
        default=None, description="Three-colour code (三色码), e.g. BLACK."
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        table = models.Enterprise.__table__.c
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (table.region, self.region),
            (table.town, self.town),
            (table.industry, self.industry),
            (table.status, self.status),
            (table.colour, self.colour),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.name_contains:
            conditions.append(table.name.contains(self.name_contains, autoescape=True))
        return conditions


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type
class EnterpriseEdge:
    cursor: str
    node: Enterprise


@strawberry.type(description="A page of enterprises in order of their credit codes.")
class EnterpriseConnection:
    edges: list[EnterpriseEdge]
    page_info: PageInfo
    conditions: strawberry.Private[list[ColumnElement[bool]]]

    @strawberry.field(description="How many enterprises match the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        (row,) = await info.context.loaders.reader.rows(count(self.conditions))
        return int(row[0])


@strawberry.enum(description="Whether a field can be read.")
class AccessDecision(Enum):
    ALLOWED = "allowed"
    CONDITIONAL = "conditional"  # allowed when the request states its purpose
    DENIED = "denied"


strawberry.enum(Sharing, description="The sharing attribute of a field (政务数据共享属性).")


@strawberry.type(description="A part the caller may have in a record that opens a field of it.")
class RelationAccess:
    relation: str = strawberry.field(description="e.g. participant, assisting, conflicting.")
    description: str
    rule: str = strawberry.field(description="The policy line that opens the field.")


@strawberry.type(description="Whether the caller may read one field of one department's records.")
class FieldAccess:
    owner_code: strawberry.Private[str]
    field: str = strawberry.field(description="Schema coordinate, e.g. Acceptance.verdict.")
    sharing: Sharing
    decision: AccessDecision
    rule: str | None = strawberry.field(description="The policy line that decided, if one did.")
    reason: str
    policy_version: str = strawberry.field(description="The version of the policy files.")
    grants: list[strawberry.ID] = strawberry.field(
        description="Active grants that open this conditional field for you."
    )
    condition: str | None = strawberry.field(
        description="For conditional fields: what the grants allow, or what is missing."
    )
    relations: list[RelationAccess] = strawberry.field(
        description="Where the decision is DENIED: your parts in a record that open the "
        "field of that record (a participant of a joint inspection reads its findings)."
    )

    @classmethod
    def of(
        cls,
        owner: str,
        coordinate: str,
        decision: Decision,
        grants: tuple[list[int], str] | None = None,
    ) -> FieldAccess:
        verdict = (
            AccessDecision.DENIED
            if not decision.allowed
            else AccessDecision.CONDITIONAL
            if decision.needs_purpose
            else AccessDecision.ALLOWED
        )
        return cls(
            owner_code=owner,
            field=coordinate,
            sharing=decision.sharing,
            decision=verdict,
            rule=decision.rule,
            reason=decision.reason,
            policy_version=decision.version,
            grants=[strawberry.ID(str(g)) for g in grants[0]] if grants else [],
            condition=grants[1] if grants else None,
            relations=[
                RelationAccess(relation=name, description=Relation(name).description, rule=rule)
                for name, rule in decision.openers
            ],
        )

    @strawberry.field(description="The department whose records this is about.")
    def owner(self, info: Info) -> Department:
        department: Department = info.context.access.departments[self.owner_code]
        return department


def withheld_enterprise(access: Access, row: Row[Any]) -> Forbidden | None:
    """The error in place of an enterprise whose registration authority shares nothing of
    it with the caller, recorded as withheld; None when the caller may read it."""
    if row.owner_code in access.visible_owners("Enterprise"):
        return None
    reason = (
        f"no field of {row.owner_code}'s enterprise records is shared with "
        f"{access.principal.subject}"
    )
    access.trail.deny(row.uscc, "Enterprise", row.uscc, row.owner_code, "Enterprise", reason)
    return Forbidden(row.owner_code, "Enterprise", reason)


async def dossier(info: Info, uscc: str) -> Enterprise | None:
    """One enterprise's dossier as the caller may read it: None when the hub does not know
    it, Forbidden when its registration authority shares nothing of it with the caller."""
    row = await info.context.loaders.enterprise.load(uscc)
    if row is None:
        return None
    if hidden := withheld_enterprise(info.context.access, row):
        raise hidden
    return info.context.access.build_one(Enterprise, row, info)


def matching(access: Access, filter: EnterpriseFilter | None) -> list[ColumnElement[bool]]:
    """The conditions on the enterprise table of the enterprises ``filter`` asks for that the
    caller may see: of registration authorities that share something of them with it, and,
    for a colour asked for, whose colour code it may read."""
    conditions = filter.conditions() if filter is not None else []
    # Enterprises whose registration authority shares nothing are not counted either.
    owners = access.visible_owners("Enterprise")
    if filter is not None and filter.colour is not None:  # only where the colour is readable
        owners = tuple(o for o in owners if access.decide(o, "Enterprise.colourCode").allowed)
    conditions.append(one_of(models.Enterprise.__table__.c.owner, owners))
    return conditions


def page_of(
    access: Access, filter: EnterpriseFilter | None, first: int, after: str | None
) -> tuple[Select[Any], list[ColumnElement[bool]]]:
    """The statement of a page of enterprises (one row more than ``first``, which tells
    whether another page follows), and the conditions every page shares; BadUserInput for
    a size or cursor out of bounds."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(
            f"first must be between 1 and {MAX_PAGE_SIZE}, not {first}; "
            "fetch more with the after cursor",
            argument="first",
        )
    conditions = matching(access, filter)
    uscc = models.Enterprise.__table__.c.uscc
    if access.principal.enterprise is not None:  # its own credential: only itself (roots.py)
        conditions.append(uscc == access.principal.enterprise)
    statement = ENTERPRISE.select().where(*conditions)
    if after is not None:
        statement = statement.where(uscc > decode_cursor(after))
    return statement.order_by(uscc).limit(first + 1), conditions


def count(conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """How many enterprises match ``conditions``, on all pages."""
    return select(func.count()).select_from(models.Enterprise).where(*conditions)


@strawberry.type
class Query:
    @strawberry.field(description="One enterprise's dossier; null when the hub does not know it.")
    async def enterprise(
        self,
        info: Info,
        uscc: Annotated[str, strawberry.argument(description="Unified social credit code.")],
    ) -> Enterprise | None:
        return await dossier(info, parse_uscc(uscc))

    @strawberry.field(description="Enterprises matching a filter, a page at a time.")
    async def enterprises(
        self,
        info: Info,
        filter: EnterpriseFilter | None = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 1 to {MAX_PAGE_SIZE}.")
        ] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page.")
        ] = None,
    ) -> EnterpriseConnection:
        statement, conditions = page_of(info.context.access, filter, first, after)
        rows = await info.context.loaders.reader.rows(statement)
        nodes = info.context.access.build(Enterprise, rows[:first], info, below=("edges", "node"))
        edges = [EnterpriseEdge(cursor=encode_cursor(node.uscc), node=node) for node in nodes]
        return EnterpriseConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            conditions=conditions,
        )

    @strawberry.field(description="The departments that share records through the hub.")
    async def departments(self, info: Info) -> list[Department]:
        return list(info.context.access.departments.values())

    @strawberry.field(
        description="What the caller may read: per owner department and Type.field, whether it "
        "is allowed, allowed with a stated purpose (CONDITIONAL) or denied, and the deciding "
        "policy line."
    )
    async def my_access(
        self,
        info: Info,
        owner: Annotated[
            str | None, strawberry.argument(description="Only this department's records.")
        ] = None,
        type: Annotated[
            str | None, strawberry.argument(description="Only this type, e.g. Acceptance.")
        ] = None,
    ) -> list[FieldAccess]:
        access = info.context.access
        owners = [d.code for d in DEPARTMENTS]
        if owner is not None and owner not in owners:
            raise BadUserInput(
                f"unknown owner {owner!r}; one of {', '.join(owners)}", argument="owner"
            )
        if type is not None and type not in access.shared:
            raise BadUserInput(
                f"unknown type {type!r}; one of {', '.join(access.shared)}", argument="type"
            )
        answer = []
        for owner_code in [owner] if owner else owners:
            for type_name in [type] if type else access.shared:
                for field in access.shared[type_name].values():
                    if field.decided:
                        coordinate = f"{type_name}.{field.name}"
                        decision = access.explain(owner_code, coordinate)
                        grants = None
                        if decision.allowed and decision.needs_purpose:
                            grants = describe(
                                access.grants, access.principal.subject, owner_code, coordinate
                            )
                        answer.append(FieldAccess.of(owner_code, coordinate, decision, grants))
        return answer
