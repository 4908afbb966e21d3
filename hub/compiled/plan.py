"""A read document compiled once into a plan: what each level of records loads, and how
every field of the answer is made from the rows.

The compiler works on a document that passed the same validation strawberry applies (the
specified rules and the hub's limits); it collects fields with graphql-core's own
``collect_subfields`` (aliases merged, fragments and literal ``@skip``/``@include``
applied), so a plan's response keys are exactly those graphql-core would produce. It
declines (``compile_plan`` gives None) whatever it does not cover: mutations,
subscriptions, introspection other than ``__typename``, fields outside the dossier,
directives whose condition is a variable. Declined documents go through strawberry.

A plan does not depend on the caller: what is withheld is looked up per request for each
(type, owner, relations) as the strawberry path does (hub/schema/access.py), so one plan
serves every department and policy version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    get_named_type,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues

from hub.schema import SHARED
from hub.schema.access import SharedField, describe_shared_types, selected_names
from hub.schema.limits import MAX_TOKENS, PlainStrings, limit_rules
from hub.schema.sources import ENTERPRISE, FINDING, RECORDS, Source
from hub.schema.supervision import ColourCode, ColourReason, ReasonRecord
from hub.schema.types import CHILDREN, Department, RecordVersion

__all__ = ["Field", "Place", "Plan", "Shape", "compile_plan"]

logger = logging.getLogger("hub.compiled")
NO_VARIABLES = VariableValues({}, {})
# Where each shared type's rows come from; the labels of their columns are field names.
SOURCES: dict[str, Source] = {
    "Enterprise": ENTERPRISE,
    "Finding": FINDING,
    **{type_name: source for type_name, (_, source) in RECORDS.items()},
}
# The lists of an enterprise, each loaded per response key with its own date range.
LISTS = {
    "creditRecords": "CreditRecord",
    "inspections": "Inspection",
    "penalties": "Penalty",
    "rectifications": "Rectification",
    "inspectionPlans": "InspectionPlan",
}
# Children loaded with their parents' whole level, by field name (types.prefetch).
PREFETCHED = {"repairs": "CreditRepair", "findings": "Finding", "acceptance": "Acceptance"}
DEPARTMENT_LISTS = ("participants", "assistingDepartments")
LINKS = {"inspection": "Inspection", "penalty": "Penalty"}
# Fields computed from other values of the row, by (type, field): the kind that makes them.
COMPUTED = {
    ("Penalty", "amount"): "amount",
    ("Penalty", "transferredTo"): "transferred",
    ("Rectification", "requirementCodes"): "codes",
    ("Rectification", "overdue"): "overdue",
}


# Plain objects of the answer: their fields are attributes (or row labels) by python name.
PLAIN = {
    type_name: {name: field.python_name for name, field in fields.items()}
    for type_name, fields in describe_shared_types(
        (Department, RecordVersion, ColourCode, ColourReason, ReasonRecord)
    ).items()
}
RULES = (*specified_rules, *limit_rules(), PlainStrings)


@dataclass(eq=False, slots=True)
class Shape:
    """What one response key selects of an object: its fields in answer order."""

    type_name: str
    fields: tuple[Field, ...]
    make: Any = None  # the function that makes its dicts (see assemble.py), once generated


@dataclass(eq=False, slots=True)
class Place:
    """Where records of a type are built: the fields the trail records of each (as
    strawberry's path computes them, see access.selected_names), and the children loaded
    with them, by field name (None for lists of departments)."""

    type_name: str
    selected: tuple[str, ...]
    children: tuple[tuple[str, Place | None], ...] = ()


NOTHING = Shape("", ())
NOWHERE = Place("", ())


@dataclass(eq=False, slots=True)
class Field:
    """One response key of an object: how its value is made from the object."""

    key: str
    name: str
    kind: str
    nodes: tuple[FieldNode, ...]
    locations: list[dict[str, int]]
    definition: GraphQLField | None = None
    python_name: str = ""
    index: int = -1  # the value's place in the row, for columns
    serialize: Any = None  # the GraphQL type's serializer, for leaves
    shape: Shape = field(default_factory=lambda: NOTHING)  # what is selected, for objects
    place: Place = field(default_factory=lambda: NOWHERE)  # where records are built
    value: Any = None  # for __typename


@dataclass(eq=False, slots=True)
class Plan:
    operation: OperationDefinitionNode
    roots: tuple[Field, ...]
    argued: tuple[Field, ...] = field(default=())  # fields whose arguments the request sets
    # The argued fields' arguments as their resolvers take them, by the request's variables
    # (JSON): the same variables give the same arguments (see run.py).
    arguments: dict[bytes, dict[Field, Any] | Decline] = field(default_factory=dict)


class Decline(Exception):
    """The compiled path does not answer this document or request; strawberry does."""


class _NoVariableDirectives(Visitor):
    """Declines a document whose directives take variables (their fields vary by request)."""

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        if node.name.value not in ("skip", "include"):
            raise Decline(node.name.value)
        if any(argument.value.kind == "variable" for argument in node.arguments or ()):
            raise Decline(node.name.value)


def compile_plan(schema: GraphQLSchema, query: str, operation_name: str | None) -> Plan | None:
    """The plan of a query document, or None where the compiled path declines it (strawberry
    answers, and reports whatever is wrong with the document)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    if validate(schema, document, list(RULES)):
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    try:
        visit(document, _NoVariableDirectives())
        return _Compiler(schema, document, operation).plan()
    except Decline:
        return None
    except Exception:  # a defect of the compiler: logged, and strawberry answers
        logger.exception("compiling a read document failed; strawberry answers it")
        return None


def _serializer(type_: Any) -> Any:
    """The leaf type's serializer; enums' memoized (a few values, served thousands of times:
    a dict's own lookup once each value is known), and dates'."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLEnumType):
        return Memo(named.serialize).__getitem__
    if named.name == "Date":
        return _DATES.__getitem__
    return getattr(named, "serialize", None)  # none for objects


class Memo(dict[Any, Any]):
    """What ``make`` gives for each key, made on first use: then a dict's own lookup, no
    call (values served thousands of times a request). With a ``limit``, emptied when full
    (keys the stored data chooses)."""

    def __init__(self, make: Callable[[Any], Any], limit: int | None = None) -> None:
        super().__init__()
        self.make, self.limit = make, limit

    def __missing__(self, key: Any) -> Any:
        if self.limit is not None and len(self) >= self.limit:
            self.clear()
        made = self[key] = self.make(key)
        return made


# Dates as served (ISO 8601, as strawberry's Date serializes them), each made once: a date's
# isoformat goes through PyUnicode_FromFormat, ~3,000 instructions a call, 800 dates a
# dossier. Publishers choose dates, so the memo is bounded.
MAX_DATES = 100_000  # every day of 270 years, more than the records hold
_DATES = Memo(date.isoformat, limit=MAX_DATES)


class _Compiler:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.definitions = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.fragments = {name: FragmentDetails(d) for name, d in self.definitions.items()}
        self.argued: list[Field] = []

    def plan(self) -> Plan:
        collected = collect_fields(
            self.schema, self.fragments, NO_VARIABLES, self.object("Query"), self.operation
        )
        if collected.new_defer_usages:
            raise Decline("defer")
        roots = tuple(
            self.root(key, [d.node for d in found])
            for key, found in collected.grouped_field_set.items()
        )
        return Plan(self.operation, roots, tuple(self.argued))

    def subfields(
        self, type_: GraphQLObjectType, nodes: list[FieldNode]
    ) -> dict[str, list[FieldNode]]:
        details = [FieldDetails(node, None) for node in nodes]
        collected = collect_subfields(
            self.schema, self.fragments, NO_VARIABLES, self.operation, type_, details
        )
        if collected.new_defer_usages:
            raise Decline("defer")
        return {key: [d.node for d in found] for key, found in collected.grouped_field_set.items()}

    def object(self, type_name: str) -> GraphQLObjectType:
        found = self.schema.get_type(type_name)
        if not isinstance(found, GraphQLObjectType):
            raise Decline(type_name)
        return found

    def new(self, parent: str, key: str, nodes: list[FieldNode], kind: str, **more: Any) -> Field:
        name = nodes[0].name.value
        definition = None if name == "__typename" else self.object(parent).fields.get(name)
        locations = [
            {"line": at.line, "column": at.column}
            for node in nodes
            if node.loc is not None
            for at in [node.loc.source.get_location(node.loc.start)]
        ]
        made = Field(key, name, kind, tuple(nodes), locations, definition, **more)
        if definition is not None and definition.args:
            self.argued.append(made)
        return made

    def shape(self, type_name: str, nodes: list[FieldNode]) -> Shape:
        fields = tuple(
            self.field(type_name, key, found)
            for key, found in self.subfields(self.object(type_name), nodes).items()
        )
        return Shape(type_name, fields)

    def place(self, type_name: str, nodes: list[FieldNode], below: tuple[str, ...] = ()) -> Place:
        selected = selected_names(
            self.schema, SHARED[type_name], type_name, nodes, self.definitions, below
        )
        children = tuple(
            (
                name,
                self.place(PREFETCHED[name], nodes, (*below, name)) if name in PREFETCHED else None,
            )
            for name in CHILDREN.get(type_name, ())
            if name in selected
        )
        return Place(type_name, selected, children)

    def root(self, key: str, nodes: list[FieldNode]) -> Field:
        name = nodes[0].name.value
        if name == "__typename":
            return self.new("Query", key, nodes, "typename", value="Query")
        if name == "enterprise":
            return self.new(
                "Query", key, nodes, "enterprise",
                shape=self.shape("Enterprise", nodes), place=self.place("Enterprise", nodes),
            )  # fmt: skip
        if name == "enterprises":
            return self.new(
                "Query", key, nodes, "enterprises",
                shape=self.shape("EnterpriseConnection", nodes),
                place=self.place("Enterprise", nodes, ("edges", "node")),
            )  # fmt: skip
        if name == "departments":
            return self.new(
                "Query", key, nodes, "departments", shape=self.shape("Department", nodes)
            )
        raise Decline(name)

    def field(self, parent: str, key: str, nodes: list[FieldNode]) -> Field:
        name = nodes[0].name.value
        if name == "__typename":
            return self.new(parent, key, nodes, "typename", value=parent)
        if parent in SHARED:
            return self.record_field(parent, key, name, nodes, SHARED[parent].get(name))
        if parent in PLAIN and name in PLAIN[parent]:
            definition = self.object(parent).fields[name]
            made = {"publisher": "publisher", "change": "change", "changedFields": "changed"}
            if parent == "RecordVersion" and name in made:
                shape = self.shape("Department", nodes) if name == "publisher" else NOTHING
                return self.new(
                    parent, key, nodes, made[name],
                    serialize=_serializer(definition.type), shape=shape,
                )  # fmt: skip
            named = get_named_type(definition.type)
            if isinstance(named, GraphQLObjectType):  # a plain object (or list) in a plain one
                return self.new(
                    parent, key, nodes, "plain",
                    python_name=PLAIN[parent][name], shape=self.shape(named.name, nodes),
                )  # fmt: skip
            return self.new(
                parent, key, nodes, "attribute",
                python_name=PLAIN[parent][name], serialize=_serializer(definition.type),
            )  # fmt: skip
        simple = {
            ("EnterpriseConnection", "totalCount"): "total_count",
            ("EnterpriseEdge", "cursor"): "cursor",
            ("PageInfo", "hasNextPage"): "has_next_page",
            ("PageInfo", "endCursor"): "end_cursor",
        }
        if (parent, name) in simple:
            return self.new(parent, key, nodes, simple[parent, name])
        nested = {
            ("EnterpriseConnection", "edges"): ("edges", "EnterpriseEdge"),
            ("EnterpriseConnection", "pageInfo"): ("page_info", "PageInfo"),
            ("EnterpriseEdge", "node"): ("node", "Enterprise"),
        }
        if (parent, name) in nested:
            kind, child = nested[parent, name]
            return self.new(parent, key, nodes, kind, shape=self.shape(child, nodes))
        raise Decline(f"{parent}.{name}")

    def record_field(
        self, parent: str, key: str, name: str, nodes: list[FieldNode], shared: SharedField | None
    ) -> Field:
        """A field of a shared record type (or of Enterprise)."""
        if shared is None:
            raise Decline(f"{parent}.{name}")
        python_name = shared.python_name
        definition = self.object(parent).fields[name]

        def new(kind: str, **more: Any) -> Field:
            return self.new(parent, key, nodes, kind, python_name=python_name, **more)

        if parent == "Enterprise" and name in LISTS:
            child = LISTS[name]
            return new("records", shape=self.shape(child, nodes), place=self.place(child, nodes))
        if name == "id":
            return new("id", serialize=_serializer(definition.type))
        if name == "owner":
            return new("owner", shape=self.shape("Department", nodes))
        if name == "colourCode":
            return new("colour", shape=self.shape("ColourCode", nodes))
        if name == "history":
            return new("history", shape=self.shape("RecordVersion", nodes))
        if name in PREFETCHED:
            kind = "prefetched_one" if name == "acceptance" else "prefetched"
            return new(kind, shape=self.shape(PREFETCHED[name], nodes))
        if name in DEPARTMENT_LISTS:
            return new("departments", shape=self.shape("Department", nodes))
        labels = [column.name for column in SOURCES[parent].columns]
        if name in LINKS and f"{python_name}_id" in labels:  # a rectification's, a plan's
            child = LINKS[name]
            return new(
                "link", index=labels.index(f"{python_name}_id"),
                shape=self.shape(child, nodes), place=self.place(child, nodes),
            )  # fmt: skip
        if (parent, name) in COMPUTED:
            kind = COMPUTED[parent, name]
            shape = self.shape("Department", nodes) if kind == "transferred" else NOTHING
            return new(kind, serialize=_serializer(definition.type), shape=shape)
        if python_name not in labels:
            raise Decline(f"{parent}.{name}")
        return new(
            "column", index=labels.index(python_name), serialize=_serializer(definition.type)
        )
