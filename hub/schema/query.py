"""The root query: one enterprise's dossier, a filtered page of enterprises, the departments."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import strawberry
from sqlalchemy import ColumnElement, func, select

from hub import models
from hub.domain import EnterpriseStatus
from hub.errors import BadUserInput, InvalidUSCC
from hub.schema.context import Info
from hub.schema.loaders import ENTERPRISE
from hub.schema.types import Department, Enterprise, build
from hub.uscc import parse_uscc

__all__ = ["MAX_PAGE_SIZE", "Query"]

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

    def conditions(self) -> list[ColumnElement[bool]]:
        table = models.Enterprise.__table__.c
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (table.region, self.region),
            (table.town, self.town),
            (table.industry, self.industry),
            (table.status, self.status),
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
        statement = select(func.count()).select_from(models.Enterprise).where(*self.conditions)
        (row,) = await info.context.loaders.reader.rows(statement)
        return int(row[0])


@strawberry.type
class Query:
    @strawberry.field(description="One enterprise's dossier; null when the hub does not know it.")
    async def enterprise(
        self,
        info: Info,
        uscc: Annotated[str, strawberry.argument(description="Unified social credit code.")],
    ) -> Enterprise | None:
        row = await info.context.loaders.enterprise.load(parse_uscc(uscc))
        return None if row is None else Enterprise(**row._mapping)

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
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise BadUserInput(
                f"first must be between 1 and {MAX_PAGE_SIZE}, not {first}; "
                "fetch more with the after cursor",
                argument="first",
            )
        conditions = filter.conditions() if filter is not None else []
        uscc = models.Enterprise.__table__.c.uscc
        statement = select(*ENTERPRISE).where(*conditions)
        if after is not None:
            statement = statement.where(uscc > decode_cursor(after))
        rows = await info.context.loaders.reader.rows(statement.order_by(uscc).limit(first + 1))
        page = [Enterprise(**row._mapping) for row in rows[:first]]
        edges = [EnterpriseEdge(cursor=encode_cursor(node.uscc), node=node) for node in page]
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
        departments = await info.context.loaders.departments()
        return build(Department, list(departments.values()))
