"""Which root fields each role may ask for: one table, checked before anything runs.

Separation of duties starts at the root of an operation. An enterprise's own credential
reads its own dossier and who read it, nothing else: every other root field of Query,
Mutation and Subscription is refused to it, whatever the field would have withheld on its
own. Departments, auditors and admins in turn have no enterprise's own view to ask for.

The table below is the one place that says so. ``refused`` reads the root fields of the
operation a request runs (through aliases, fragments and inline fragments; introspection is
open to everyone) and gives a FORBIDDEN error for each field the caller's role may not ask
for; the HTTP endpoint and the WebSocket endpoint answer such a request with those errors
and no data, before it is priced or reads anything, and record it (outcome ``denied``). So
a root field added later is refused to an enterprise until this table names it, and the
compiled read path, which answers before strawberry would, never sees such a request.

Resolvers keep their own checks too (auditors only for the access log, departments only for
notifications): those are about who reads what inside a field this table lets through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
    parse,
)

from hub.auth import Principal
from hub.domain import Role
from hub.errors import Forbidden
from hub.schema.limits import MAX_TOKENS, cacheable

__all__ = ["ENTERPRISE_ASKS", "ENTERPRISE_VIEW", "ROOTS", "Roots", "refused", "root_fields"]

# An enterprise's own view: its dossier, and who read it (the Data Tracker).
ENTERPRISE_VIEW = frozenset({"Query.myEnterprise", "Query.myDataAccesses"})


@dataclass(frozen=True, slots=True)
class Roots:
    """The root fields (``Type.field``) a role may ask for: ``only`` these, or (None) every
    one ``but`` these; ``why`` is the reason its refusals give."""

    only: frozenset[str] | None
    but: frozenset[str]
    why: str

    @classmethod
    def just(cls, coordinates: frozenset[str], why: str) -> Roots:
        return cls(coordinates, frozenset(), why)

    @classmethod
    def every_but(cls, coordinates: frozenset[str], why: str) -> Roots:
        return cls(None, coordinates, why)

    def allows(self, coordinate: str) -> bool:
        if self.only is not None:
            return coordinate in self.only
        return coordinate not in self.but


# What an enterprise's own credential may ask for: its own view, an inspection shown to it
# by its administrative-action code (亮码检查), and the departments' names.
ENTERPRISE_ASKS = ENTERPRISE_VIEW | {"Query.inspectionByActionCode", "Query.departments"}
FOR_ENTERPRISES = (
    "myEnterprise and myDataAccesses are an enterprise's own view, for its own credential "
    "(`hub clients create --enterprise USCC`)"
)
WHAT_ENTERPRISES_ASK = (
    "an enterprise credential may ask only for myEnterprise (its own dossier), "
    "myDataAccesses (who read it), inspectionByActionCode, departments, __typename and "
    "introspection"
)

# Which root fields each role may ask for; every other is FORBIDDEN before anything runs.
ROOTS: Mapping[Role, Roots] = {
    Role.DEPARTMENT: Roots.every_but(ENTERPRISE_VIEW, FOR_ENTERPRISES),
    Role.AUDITOR:    Roots.every_but(ENTERPRISE_VIEW, FOR_ENTERPRISES),
    Role.ADMIN:      Roots.every_but(ENTERPRISE_VIEW, FOR_ENTERPRISES),
    Role.ENTERPRISE: Roots.just(ENTERPRISE_ASKS, WHAT_ENTERPRISES_ASK),
}  # fmt: skip

ROOT_TYPES = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}


def refused(principal: Principal, query: str, operation_name: str | None) -> list[Forbidden]:
    """A FORBIDDEN error for each root field of the operation that the caller's role may not
    ask for, in the document's order; [] when it may ask for all (or when the document
    cannot be read: strawberry then says what is wrong with it)."""
    roots = ROOTS[principal.role]
    # A root field is named in the text (aliases only add names): where no field a role is
    # refused appears at all, the document need not be read.
    if roots.only is None and not any(c.partition(".")[2] in query for c in roots.but):
        return []
    asked = root_fields(query, operation_name)
    return [
        Forbidden("hub", coordinate, roots.why, action=f"asking for {coordinate}")
        for coordinate in asked or ()
        if not roots.allows(coordinate)
    ]


def root_fields(query: str, operation_name: str | None) -> tuple[str, ...] | None:
    """The root fields (``Type.field``, introspection left out) of the operation the request
    runs, each once, in the document's order; None when the document does not parse or
    names no such operation."""
    if cacheable(query):  # long texts are never cached (see hub/schema/limits.py)
        return _cached_root_fields(query, operation_name)
    return _root_fields(query, operation_name)


def _root_fields(query: str, operation_name: str | None) -> tuple[str, ...] | None:
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    root = ROOT_TYPES[operation.operation.value]
    names = _names(operation.selection_set, fragments, set())
    return tuple(dict.fromkeys(f"{root}.{name}" for name in names if not name.startswith("__")))


_cached_root_fields = lru_cache(maxsize=512)(_root_fields)


def _names(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    spread: set[str],
) -> Iterator[str]:
    """The field names of a selection set, through fragments (each spread once: a cycle,
    which validation refuses later, ends here)."""
    for selection in selections.selections if selections else ():
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _names(selection.selection_set, fragments, spread)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in spread:
                spread.add(name)
                yield from _names(fragments[name].selection_set, fragments, spread)
