"""The hub's GraphQL schema (strawberry); resolvers ask loaders and access, they do not decide."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from hub.policy import SharedFields
from hub.schema.access import Access, CollectCoordinates, SharedField, describe_shared_types
from hub.schema.action_codes import ActionCodeQuery
from hub.schema.audit import AuditQuery
from hub.schema.conflicts import ConflictMutation, ConflictQuery
from hub.schema.context import Context
from hub.schema.feed import FeedQuery, Subscription
from hub.schema.inspections import InspectionQuery
from hub.schema.limits import ShortParserCache, ShortValidationCache, limits
from hub.schema.loaders import Loaders, Reader
from hub.schema.own import OwnQuery
from hub.schema.plans import PlanQuery
from hub.schema.publish import Mutation
from hub.schema.query import Query
from hub.schema.sharing import SharingMutation, SharingQuery
from hub.schema.statistics import StatisticsQuery
from hub.schema.types import SHARED_TYPES

__all__ = [
    "SHARED",
    "Access",
    "Context",
    "Loaders",
    "Reader",
    "build_schema",
    "policy_fields",
    "sdl",
]

# Every field of every shared type, by GraphQL name, as policies and the catalogue name them.
SHARED: dict[str, dict[str, SharedField]] = describe_shared_types(SHARED_TYPES)


def policy_fields() -> SharedFields:
    """The shared fields as the policy module sees them: decided (nullable) or structural."""
    return {
        type_name: {name: field.decided for name, field in fields.items()}
        for type_name, fields in SHARED.items()
    }


class HubSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are classified and logged once, where answers are formatted."""


def build_schema() -> strawberry.Schema:
    return HubSchema(
        query=merge_types(
            "Query",
            (
                Query,
                FeedQuery,
                SharingQuery,
                ConflictQuery,
                AuditQuery,
                InspectionQuery,
                OwnQuery,
                StatisticsQuery,
                ActionCodeQuery,
                PlanQuery,
            ),
        ),
        mutation=merge_types("Mutation", (Mutation, SharingMutation, ConflictMutation)),
        subscription=Subscription,
        extensions=[
            *limits(),
            # Departments send the same few queries over and over: parse and validate once.
            lambda: ShortParserCache(maxsize=512),
            lambda: ShortValidationCache(maxsize=512),
            CollectCoordinates,
        ],
    )


def sdl() -> str:
    """The schema in GraphQL SDL, as committed in schema.graphql."""
    return build_schema().as_str() + "\n"
