"""The hub's GraphQL schema (strawberry); resolvers ask loaders, they do not decide."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import ExecutionContext

from hub.schema.context import Context
from hub.schema.loaders import Loaders, Reader
from hub.schema.query import Query

__all__ = ["Context", "Loaders", "Reader", "build_schema", "sdl"]


class HubSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are classified and logged once, where answers are formatted (app.py)."""


def build_schema() -> strawberry.Schema:
    return HubSchema(
        query=Query,
        # Departments send the same few queries over and over: parse and validate them once.
        extensions=[lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)],
    )


def sdl() -> str:
    """The schema in GraphQL SDL, as committed in schema.graphql."""
    return build_schema().as_str() + "\n"
