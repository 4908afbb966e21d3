"""Field-level authorization of one request, and the trail of what it served and withheld.

The policy decides (caller, owner department, Type.field) once per policy version; here a
request only looks decisions up. Records are built with every withheld value replaced by
its Forbidden error: graphql-core raises a resolved exception at that field's own path, so
the answer carries null plus the error exactly where the value would have been, through
any alias or fragment, and allowed fields cost nothing extra. Resolver fields (lists and
links) ask ``check`` before loading anything.

Records of owners that share nothing of their type with the caller are not loaded at all
(``scope`` goes into the SQL), so lists leave them out instead of showing shells.

A department's part in a record (hub/policy/relations.py: a participant of a joint
inspection, an assisting department...) comes with the record's row; the view of a record
is decided per (type, owner, relations), never per record, and the access record names the
relation that opened each field it served that way.

Every record built is entered in the request's audit trail with the fields the query selects
of it at that place, served or withheld, under its own enterprise and owner as stored now
(loaders.py reads them with every record): never under a response path or key the caller
chose, so an alias cannot misfile a read, and a record moved to another enterprise is decided
and filed as the other enterprise's wherever it is reached from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from sqlalchemy import Row
from strawberry.extensions import SchemaExtension
from strawberry.types.base import get_object_definition

from hub.audit import Grants, Trail
from hub.audit.record import ServedIds
from hub.auth import Principal
from hub.domain import DEPARTMENTS, Role
from hub.errors import Forbidden, PurposeRequired
from hub.grants import GrantBook
from hub.policy import Decision, Policy, Relations, Scope
from hub.records import today
from hub.schema.limits import cacheable

__all__ = [
    "Access",
    "Admitted",
    "CollectCoordinates",
    "SharedField",
    "describe_shared_types",
    "selected_names",
]

DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class View:
    """What a caller may read of one owner's records of one type (about one enterprise)."""

    withheld: dict[str, Forbidden]  # python name -> the error served in its place
    grants: Grants = ()  # (Type.field, grant id) of the conditional fields opened
    conditional: tuple[tuple[str, str], ...] = ()  # (python name, Type.field) grants decide
    opened: tuple[tuple[str, str], ...] = ()  # (Type.field, relation) a relation opened


class Admitted(NamedTuple):
    """A row admitted into an answer: its view, and what it is filed under."""

    row: Any  # Row[Any]; None for the parent Access.build makes of a record it is given
    withheld: Mapping[str, Forbidden]  # python name -> the error served in its place
    owner: str
    enterprise: str  # USCC, as stored now
    region: str
    id: str  # the record's id as served (an enterprise's is its USCC)
    relations: Relations


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
        grants: GrantBook | None = None,
    ) -> None:
        self.policy = policy
        self.principal = principal
        self.purpose = purpose
        # A purpose starts with its code ("rectification-check: 核查验收"); grants name codes.
        code = (purpose or "").split(":", 1)[0].strip()
        self.purpose_code = code if code in policy.purposes else None
        self.shared = shared
        self.grants = grants or GrantBook("", today())
        self.trail = Trail()
        # The departments as GraphQL objects, by code; set before execution (see Context).
        self.departments: Mapping[str, Any] = {}
        # Relations are a department's part in a record: for its own systems only.
        self.caller = principal.department if principal.role is Role.DEPARTMENT else None
        # Views the policy decides alone, by (type, owner, relations): the same for every
        # request of this subject and purpose (~55 views a dossier), so kept with the policy.
        self._withheld: dict[tuple[str, str, Relations], View] = policy.derived(
            ("views", principal.subject, purpose is not None)
        )
        self._granted: dict[tuple[str, str, Relations, str], View] = {}
        self._selections: dict[tuple[int, str, tuple[str, ...]], tuple[str, ...]] = {}

    def decide(self, owner: str, coordinate: str, relations: Relations = ()) -> Decision:
        return self.policy.decide(
            self.principal.subject,
            owner,
            coordinate,
            purpose=self.purpose is not None,
            relations=relations,
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

    def scope(self, type_name: str) -> Scope:
        """Whose records of this type the caller may read anything of, and through which of
        its relations to a record (see Statements.visible)."""
        return self.policy.scope(
            self.principal.subject,
            type_name,
            purpose=self.purpose is not None,
            related=self.caller is not None,
        )

    def visible_owners(self, type_name: str) -> tuple[str, ...]:
        """Departments whose records of this type the caller may read anything of."""
        return self.scope(type_name).owners

    def countable(self, type_name: str, *fields: str) -> tuple[str, ...]:
        """Departments whose records of this type the caller may count by ``fields``: those
        of its scope (as lists) whose every one of ``fields`` it reads without a condition.
        A count spans many enterprises, while a grant opens a conditional field for some
        (its scope) and a relation opens a field of one record: neither opens a count."""
        return tuple(
            owner
            for owner in self.visible_owners(type_name)
            if all(
                (decision := self.decide(owner, f"{type_name}.{field}")).allowed
                and not decision.needs_purpose
                for field in fields
            )
        )

    def view(
        self, type_name: str, owner: str, enterprise: str, region: str, relations: Relations = ()
    ) -> View:
        """What the caller may read of ``owner``'s records of a type about ``enterprise`` (in
        district ``region``) that it has these ``relations`` to: decided by the policy per
        owner and relations, then, for conditional fields, by the grants."""
        base = self._withheld.get((type_name, owner, relations))
        if base is None:
            withheld, conditional, opened = {}, [], []
            for field in self.shared[type_name].values():
                if field.decided:
                    coordinate = f"{type_name}.{field.name}"
                    decision = self.decide(owner, coordinate, relations)
                    if not decision.allowed:
                        error = PurposeRequired if decision.needs_purpose else Forbidden
                        withheld[field.python_name] = error(owner, coordinate, decision.reason)
                        continue
                    if decision.relation is not None:
                        opened.append((coordinate, decision.relation))
                    if decision.needs_purpose:  # allowed with a purpose: under a grant only
                        conditional.append((field.python_name, coordinate))
            base = self._withheld[type_name, owner, relations] = View(
                withheld, (), tuple(conditional), tuple(opened)
            )
        if not base.conditional:
            return base
        key = (type_name, owner, relations, enterprise)
        view = self._granted.get(key)
        if view is None:
            withheld, grants = dict(base.withheld), []
            for python_name, coordinate in base.conditional:
                grant, reason = self.grants.match(
                    self.principal.subject, owner, coordinate, self.purpose_code, enterprise, region
                )
                if grant is not None:
                    grants.append((coordinate, grant.id))
                    continue
                if self.purpose_code is None and not reason.startswith("no grant"):
                    reason = (
                        f"the purpose must start with its code, one of "
                        f"{', '.join(self.policy.purposes)} (e.g. 'law-enforcement: 案件核查'); "
                        + reason
                    )
                withheld[python_name] = Forbidden(owner, coordinate, reason)
            view = self._granted[key] = View(withheld, tuple(grants), (), base.opened)
        return view

    def build(
        self,
        cls: type[T],
        rows: Sequence[Row[Any]],
        info: Any,
        *,
        of: Any = None,
        below: tuple[str, ...] = (),
    ) -> list[T]:
        """Records of type ``cls`` from rows labelled as its fields, withheld values replaced.

        ``info`` is the resolver's; ``below`` the path from its field to the records (a
        connection's ``edges``, ``node``), by field name. ``of`` is the record that rows
        without an owner and enterprise of their own belong to (a finding is its
        inspection's).
        """
        type_name = cls.__name__
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        has_prefetched, has_relations = "prefetched" in fields, "relations" in fields
        has_owner, has_id = "owner" in self.shared[type_name], "id" in self.shared[type_name]
        parent = None if of is None else Admitted(
            None, {}, of.owner_code, of.enterprise_uscc, of.enterprise_region, "", of.relations
        )  # fmt: skip
        parents = None if parent is None else [parent] * len(rows)
        labels = [label for _, label in self.in_play(type_name, parents)]
        built = []
        selected = self._selected(info, type_name, below)
        for record in self.admit(type_name, rows, selected, parents, Admitted):
            values = dict(record.row._mapping)
            for label in labels:
                del values[label]
            for python_name, error in record.withheld.items():
                if python_name in values:
                    # A fresh error per value: one raised over and over would keep growing
                    # its traceback for the rest of the request.
                    values[python_name] = copy(error)
            values["withheld"] = record.withheld
            if has_prefetched:
                values["prefetched"] = {}
            if has_owner:
                values["owner"] = self.departments[record.owner]
            if has_id:
                values["record_id"] = record.id
            if has_relations:
                values["relations"] = record.relations
            built.append(cls(**values))
        return built

    def in_play(self, type_name: str, parents: Any = None) -> list[tuple[str, str]]:
        """The caller's relations to records of a type that the loader read with each row
        (Statements.visible), as (relation, column label); none for rows that take their
        parents' (findings)."""
        if self.caller is None or parents is not None:
            return []
        return [(name, f"as_{name}") for name in self.scope(type_name).relations]

    def admit(
        self,
        type_name: str,
        rows: Sequence[Row[Any]],
        selected: tuple[str, ...],
        parents: Sequence[Any] | None,
        make: Callable[[Any, Mapping[str, Forbidden], str, str, str, str, Relations], R],
    ) -> list[R]:
        """Each row's view (what of it is withheld, and why), entered in the trail with the
        ``selected`` fields of its type served or withheld: the one place both read paths
        (strawberry's resolvers and hub/compiled/) decide and record a record. Each admitted
        record is made by ``make`` from what Admitted holds (the compiled path makes its
        own objects straight away).

        Rows carry their owner and enterprise; rows without them (findings) come with
        ``parents``, the record each belongs to (a finding is its inspection's): anything
        with its ``owner``, ``enterprise``, ``region`` and ``relations``."""
        if not rows:
            return []
        # Columns by their place in the rows (one statement's, or one source's): a record's
        # owner, enterprise, district and id, or its parent's; and the caller's relations to it.
        at = rows[0]._fields.index
        related = [(name, at(label)) for name, label in self.in_play(type_name, parents)]
        record_at = at("uscc" if type_name == "Enterprise" else "id")
        filed = (
            None if parents is not None
            else itemgetter(at("owner_code"), record_at, at("region"), record_at)
            if type_name == "Enterprise"
            else itemgetter(at("owner_code"), at("enterprise_uscc"), at("enterprise_region"),
                            record_at)
        )  # fmt: skip
        # What is served and withheld of the selection follows from the view alone; views
        # are kept for the request (see view), so one split serves every record they decide.
        split: dict[int, Split] = {}
        # Splits of views that do not depend on the enterprise (no grant decides a field), by
        # owner and relations: found without a call.
        plain: dict[tuple[str, Relations], Split] = {}
        view, deny = self.view, self.trail.deny
        admitted = []
        for n, row in enumerate(rows):
            if filed is None:
                of = parents[n]  # type: ignore[index]
                owner, enterprise, region = of.owner, of.enterprise, of.region
                relations, record_id = of.relations, str(row[record_at])
            else:
                owner, enterprise, region, record = filed(row)
                relations = tuple(name for name, place in related if row[place]) if related else ()
                record_id = str(record)
            known = plain.get((owner, relations))
            if known is None:
                seen = view(type_name, owner, enterprise, region, relations)
                known = split.get(id(seen))
                if known is None:
                    known = split[id(seen)] = self._split(type_name, seen, selected)
                if seen is self._withheld[type_name, owner, relations]:  # the policy's alone
                    plain[owner, relations] = known
            withheld, denied, ids = known
            admitted.append(make(row, withheld, owner, enterprise, region, record_id, relations))
            ids[enterprise].append(record_id)
            for error in denied:
                deny(enterprise, type_name, record_id, owner, error.field, error.reason)
        return admitted

    def _split(self, type_name: str, seen: View, selected: tuple[str, ...]) -> Split:
        """What ``seen`` withholds, the errors of the ``selected`` fields it denies, and the
        trail's lists of the ids of records served that way, by enterprise."""
        shared, withheld = self.shared[type_name], seen.withheld
        denied = [withheld[shared[n].python_name] for n in selected
                  if shared[n].python_name in withheld]  # fmt: skip
        served = tuple(n for n in selected if shared[n].python_name not in withheld)
        opened = _used(seen.grants, served), _used(seen.opened, served)
        return withheld, denied, self.trail.group(type_name, served, *opened)

    def build_one(
        self, cls: type[T], row: Row[Any] | None, info: Any, below: tuple[str, ...] = ()
    ) -> T | None:
        return None if row is None else self.build(cls, [row], info, below=below)[0]

    def selected(self, info: Any, type_name: str) -> tuple[str, ...]:
        """The fields of ``type_name`` the query selects where ``info``'s field resolves."""
        return self._selected(info, type_name, ())

    def _selected(self, info: Any, type_name: str, below: tuple[str, ...]) -> tuple[str, ...]:
        """The fields of ``type_name`` the query selects where ``info``'s field resolves."""
        raw = info._raw_info  # graphql-core's resolve info: field nodes and fragments
        key = (id(raw.field_nodes[0]), type_name, below)
        selected = self._selections.get(key)
        if selected is None:
            selected = self._selections[key] = selected_names(
                raw.schema, self.shared[type_name], type_name, raw.field_nodes, raw.fragments, below
            )
        return selected


U = TypeVar("U")
# A view's split of a selection (see Access._split).
Split = tuple[Mapping[str, Forbidden], list[Forbidden], ServedIds]


def _used(pairs: tuple[tuple[str, U], ...], served: tuple[str, ...]) -> tuple[tuple[str, U], ...]:
    """The (Type.field, what opened it) pairs of the fields served."""
    return tuple(pair for pair in pairs if pair[0].partition(".")[2] in served)


def selected_fields(
    field_nodes: Sequence[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    type_conditions: set[str],
    below: tuple[str, ...] = (),
) -> set[str]:
    """Names of the fields selected under ``field_nodes`` (then ``below``) for an object of
    one of ``type_conditions``, through fragments and inline fragments."""
    names: set[str] = set()

    def collect(selection_set: SelectionSetNode | None, path: tuple[str, ...]) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if not path:
                    names.add(selection.name.value)
                elif selection.name.value == path[0]:
                    collect(selection.selection_set, path[1:])
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value in type_conditions or path:
                    collect(selection.selection_set, path)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                if fragment.type_condition.name.value in type_conditions or path:
                    collect(fragment.selection_set, path)

    for node in field_nodes:
        collect(node.selection_set, below)
    return names


def selected_names(
    schema: GraphQLSchema,
    shared: Mapping[str, SharedField],
    type_name: str,
    field_nodes: Sequence[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    below: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """The shared fields of ``type_name`` selected under ``field_nodes`` (then ``below``),
    sorted: what the trail records as served or withheld of each record built there."""
    graphql_type = schema.get_type(type_name)
    conditions = {type_name, *(i.name for i in getattr(graphql_type, "interfaces", ()))}
    names = selected_fields(field_nodes, fragments, conditions, below)
    return tuple(name for name in sorted(names) if name in shared)


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


def _selected_coordinates(
    schema: GraphQLSchema, document: DocumentNode
) -> frozenset[tuple[str, str]]:
    """Every (Type, field) a document selects, through aliases, fragments and interfaces."""
    type_info = TypeInfo(schema)
    collector = _Coordinates(schema, type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    return frozenset(collector.found)


selected_coordinates = lru_cache(maxsize=512)(_selected_coordinates)


class CollectCoordinates(SchemaExtension):
    """After validation: decide the coordinates the operation selects, so resolvers look up."""

    def on_execute(self) -> Any:
        context = self.execution_context
        access: Access | None = getattr(context.context, "access", None)
        if access is not None and context.graphql_document is not None:
            # Documents of long queries are not cached anywhere (see limits.py).
            select = selected_coordinates if cacheable(context.query) else _selected_coordinates
            access.prepare(select(context.schema._schema, context.graphql_document))
        yield
