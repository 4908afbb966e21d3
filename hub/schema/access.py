"""Field-level authorization of one request, looked up in the current policy's decisions.

The policy decides (caller, owner department, Type.field) once per policy version; here a
request only looks decisions up. Records are built with every withheld value replaced by
its Forbidden error: graphql-core raises a resolved exception at that field's own path, so
the answer carries null plus the error exactly where the value would have been, through
any alias or fragment, and allowed fields cost nothing extra. Resolver fields (lists and
links) ask ``check`` before loading anything.

Records of owners that share nothing of their type with the caller are not loaded at all
(``visible_owners`` goes into the SQL), so lists leave them out instead of showing shells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from sqlalchemy import Row
from strawberry.extensions import SchemaExtension
from strawberry.types.base import get_object_definition

from hub.auth import Principal
from hub.domain import DEPARTMENTS
from hub.errors import Forbidden
from hub.policy import Decision, Policy

__all__ = ["Access", "CollectCoordinates", "SharedField", "describe_shared_types"]

DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SharedField:
    name: str  # in GraphQL
    python_name: str
    decided: bool  # nullable, so it can be withheld; otherwise served with its record


def describe_shared_types(types: Iterable[type]) -> dict[str, dict[str, SharedField]]:
    """Every field of each shared type, from its strawberry definition."""
    from strawberry.schema.name_converter import NameConverter
    from strawberry.types.base import StrawberryOptional
    from strawberry.types.private import is_private

    names = NameConverter()
    described: dict[str, dict[str, SharedField]] = {}
    for cls in types:
        definition = get_object_definition(cls, strict=True)
        described[definition.name] = {
            (graphql_name := names.get_graphql_name(field)): SharedField(
                graphql_name, field.python_name, isinstance(field.type, StrawberryOptional)
            )
            for field in definition.fields
            if not is_private(field.type)
        }
    return described


class Access:
    """What this request's caller may read."""

    def __init__(
        self,
        policy: Policy,
        principal: Principal,
        purpose: str | None,
        shared: Mapping[str, Mapping[str, SharedField]],
    ) -> None:
        self.policy = policy
        self.principal = principal
        self.purpose = purpose
        self.shared = shared
        self._withheld: dict[tuple[str, str], dict[str, Forbidden]] = {}
        self._owners: dict[str, tuple[str, ...]] = {}

    def decide(self, owner: str, coordinate: str) -> Decision:
        return self.policy.decide(
            self.principal.subject, owner, coordinate, purpose=self.purpose is not None
        )

    def explain(self, owner: str, coordinate: str) -> Decision:
        """The decision as it would be with a stated purpose: what the caller could read."""
        return self.policy.decide(self.principal.subject, owner, coordinate, purpose=True)

    def prepare(self, coordinates: Iterable[tuple[str, str]]) -> None:
        """Decide every selected coordinate for every owner before execution starts."""
        for type_name, field_name in coordinates:
            field = self.shared.get(type_name, {}).get(field_name)
            if field is not None and field.decided:
                for owner in DEPARTMENT_CODES:
                    self.decide(owner, f"{type_name}.{field_name}")

    def visible_owners(self, type_name: str) -> tuple[str, ...]:
        """Departments whose records of this type the caller may read anything of."""
        owners = self._owners.get(type_name)
        if owners is None:
            purpose = self.purpose is not None
            owners = self._owners[type_name] = tuple(
                owner
                for owner in DEPARTMENT_CODES
                if self.policy.readable(self.principal.subject, owner, type_name, purpose=purpose)
            )
        return owners

    def withheld(self, type_name: str, owner: str) -> dict[str, Forbidden]:
        """The decided fields of ``owner``'s records of this type the caller may not read."""
        key = (type_name, owner)
        withheld = self._withheld.get(key)
        if withheld is None:
            withheld = self._withheld[key] = {}
            for field in self.shared[type_name].values():
                if field.decided:
                    coordinate = f"{type_name}.{field.name}"
                    decision = self.decide(owner, coordinate)
                    if not decision.allowed:
                        withheld[field.python_name] = Forbidden(owner, coordinate, decision.reason)
        return withheld

    def build(self, cls: type[T], rows: Sequence[Row[Any]], owner: str | None = None) -> list[T]:
        """Records of type ``cls`` from rows labelled as its fields, withheld values replaced.

        ``owner`` is for types that have no owner of their own (a finding is its inspection's).
        """
        type_name = cls.__name__
        built = []
        for row in rows:
            values = dict(row._mapping)
            withheld = self.withheld(type_name, owner or values["owner_code"])
            for python_name, error in withheld.items():
                if python_name in values:
                    # A fresh error per value: one raised over and over would keep growing
                    # its traceback for the rest of the request.
                    values[python_name] = copy(error)
            values["withheld"] = withheld
            built.append(cls(**values))
        return built

    def build_one(self, cls: type[T], row: Row[Any] | None) -> T | None:
        return None if row is None else self.build(cls, [row])[0]


def check(record: Any, python_name: str) -> None:
    """Raise the Forbidden error of a withheld resolver field of ``record``."""
    error = record.withheld.get(python_name)
    if error is not None:
        raise copy(error)


class _Coordinates(Visitor):
    def __init__(self, schema: GraphQLSchema, type_info: TypeInfo) -> None:
        super().__init__()
        self.schema = schema
        self.type_info = type_info
        self.found: set[tuple[str, str]] = set()

    def enter_field(self, node: Any, *_: Any) -> None:
        if node.name.value.startswith("__"):
            return  # introspection, and __typename, which every caller may see
        parent = self.type_info.get_parent_type()
        if isinstance(parent, GraphQLInterfaceType):
            for possible in self.schema.get_possible_types(parent):
                self.found.add((possible.name, node.name.value))
        elif isinstance(parent, GraphQLObjectType):
            self.found.add((parent.name, node.name.value))


@lru_cache(maxsize=512)
def selected_coordinates(
    schema: GraphQLSchema, document: DocumentNode
) -> frozenset[tuple[str, str]]:
    """Every (Type, field) a document selects, through aliases, fragments and interfaces."""
    type_info = TypeInfo(schema)
    collector = _Coordinates(schema, type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    return frozenset(collector.found)


class CollectCoordinates(SchemaExtension):
    """After validation: decide the coordinates the operation selects, so resolvers look up."""

    def on_execute(self) -> Any:
        context = self.execution_context
        access: Access | None = getattr(context.context, "access", None)
        if access is not None and context.graphql_document is not None:
            access.prepare(selected_coordinates(context.schema._schema, context.graphql_document))
        yield
