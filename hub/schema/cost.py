"""What a request costs before it runs: the fields it would resolve, lists multiplied out.

Depth, alias and token limits (limits.py) bound the document, not the work: thirty aliases
of ``changes(first: 500)`` with their records pass all three and resolve some 200,000 fields
(10.8 s and 5.7 MB in the security review). The cost of a document is therefore the number
of fields it would resolve, estimated from the document alone, so a request is refused
before any resolver runs or any database is read:

- every field counts 1, each time it is selected under its own response key, so aliases
  count each time while the same field selected twice (as graphql-core merges it) counts
  once; fragments and inline fragments count where they are spread;
- a list of objects multiplies its selection by its size: its ``first`` (or ``limit``)
  argument, variables resolved, defaults applied; a page object (``enterprises(first: 100)``
  returns a connection) hands its size to the list inside it (``edges``); lists without a
  size of their own take the estimate in ``ESTIMATES``, measured on the demo data;
- an abstract type (``RecordChange.record``) costs the most of its possible types, since
  one value is one of them; fields skipped by ``@skip``/``@include`` count nothing;
- introspection counts each selected field once, without multiplying (the schema is
  small and held in memory): GraphiQL's introspection query must never be refused.

``document_cost`` is pure and works on a validated document; ``Pricing`` parses and
validates a request's query (cached for short queries only, so a cache of large texts
cannot hold the memory of the process), prices it and refuses what is over the budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_abstract_type,
    is_composite_type,
    parse,
    specified_rules,
    type_from_ast,
    validate,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from hub.errors import QueryTooComplex
from hub.schema.limits import MAX_TOKENS, cacheable, limit_rules, variables_key

__all__ = ["DEFAULT_ESTIMATE", "ESTIMATES", "PAGED", "Pricing", "document_cost"]

# Sizes of lists that have no `first` of their own, by schema coordinate. The dossier lists
# are near the 99th percentile of the demo data (`hub demo load`, 300 enterprises: per
# enterprise 1.2 credit records on average (at most 4), 2.5 inspections (8), 0.3 penalties
# (3), 1.0 rectifications (4), 0.5 inspection plans (4); per inspection 0.2 participants (3)
# and 0.7 findings (2); per rectification 0.3 assisting departments (2)): about 18 records
# per enterprise, so a real dossier with more history than the demo's still fits the
# budget it was priced for.
ESTIMATES: dict[str, int] = {
    "Enterprise.creditRecords": 4,
    "Enterprise.inspections": 8,
    "Enterprise.penalties": 2,
    "Enterprise.rectifications": 4,
    "Enterprise.inspectionPlans": 3,  # last month's and the next two months' plans
    "CreditRecord.repairs": 1,
    "Inspection.participants": 3,
    "Inspection.findings": 2,
    "Rectification.assistingDepartments": 2,
    # Versions of one record: the demo has one; a record corrected once has two.
    **{
        f"{kind}.history": 2
        for kind in (
            "Acceptance",
            "CreditRecord",
            "CreditRepair",
            "Inspection",
            "Penalty",
            "Rectification",
            "InspectionPlan",
        )
    },
    "Query.departments": 10,  # the ten departments of hub.domain
    "Query.myAccess": 550,  # ten owners × the 55 decided fields of the shared types today
    "FieldAccess.relations": 1,  # a field is opened by one relation at most in policies/
    "Query.conflicts": 20,
    # The other departments meeting one plan: the demo has two or three at most.
    "JointInspectionSuggestion.others": 3,
    "JointInspectionSuggestion.departments": 3,
    "Query.shareRequests": 50,
    "Query.grants": 50,
    # Statistics: a city's districts (ten in the demo), industries (eleven), the three
    # colours and one not computed, and enterprises' inspections in a year (0 to 8 in the demo).
    "Statistics.byRegion": 15,
    "Statistics.byIndustry": 15,
    "Statistics.byColour": 4,
    "InspectionStatistics.perEnterprise": 10,
    "AccessRecord.served": 10,
    "AccessRecord.denied": 10,
    "AccessRecord.written": 10,
    "ServedRecords.grants": 5,
    "ServedRecords.relations": 3,
    "PublishResult.records": 1000,  # a batch holds at most 1,000 records
    "PublishResult.warnings": 1000,  # one per inspection at most
    # Colours (policies/colours.csv has 7 rules; the demo meets 1.4 of them an enterprise,
    # each with 1.3 records, and an enterprise's colour changes a few times a year).
    "ColourCode.reasons": 3,
    "ColourChange.reasons": 3,
    "ColourReason.records": 2,
    "Enterprise.colourHistory": 4,
    "InspectionCheck.byDepartment": 10,
    "InspectionCheck.inspections": 8,
    "InspectionCheck.openPlans": 5,
    # A live change feed sends pages of up to 500 changes (feed.py's MAX_PAGE_SIZE).
    "Subscription.changes": 500,
}
# Lists that hold the page of the object around them (sized by that object's `first`).
PAGED = frozenset(
    {
        "EnterpriseConnection.edges",
        "AccessLogConnection.edges",
        "DataAccessConnection.edges",
        "ChangePage.changes",
        "NotificationPage.notifications",
        "InspectionPlanConnection.edges",
        "JointInspectionPage.suggestions",
    }
)
DEFAULT_ESTIMATE = 20  # a list nobody has measured yet
SIZE_ARGUMENTS = ("first", "limit")


class _Walk:
    """One pricing of one operation; costs of shared selections are remembered."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        # A fragment spread in many places (or many aliases) is priced once per type and
        # page size: the walk stays linear in the document, however it multiplies out.
        self.known: dict[tuple[str, tuple[int, ...], int | None], int] = {}

    def selections(
        self, type_: Any, selection_sets: Sequence[SelectionSetNode], page: int | None
    ) -> int:
        """The cost of one value of composite ``type_`` with these selections."""
        if is_abstract_type(type_):
            possible = self.schema.get_possible_types(type_)
            return max((self.selections(t, selection_sets, page) for t in possible), default=0)
        key = (type_.name, tuple(id(s) for s in selection_sets), page)
        if key not in self.known:
            fields: dict[str, list[FieldNode]] = {}
            for selection_set in selection_sets:
                self.collect(type_, selection_set, fields, set())
            self.known[key] = sum(self.field(type_, nodes, page) for nodes in fields.values())
        return self.known[key]

    def collect(
        self,
        type_: GraphQLObjectType,
        selection_set: SelectionSetNode,
        fields: dict[str, list[FieldNode]],
        spread: set[str],
    ) -> None:
        """The fields selected on ``type_``, by response key, as graphql-core groups them."""
        for selection in selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self.applies(selection.type_condition, type_):
                    self.collect(type_, selection.selection_set, fields, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in spread or fragment is None:
                    continue  # graphql-core spreads a fragment once per selection set
                spread.add(name)
                if self.applies(fragment.type_condition, type_):
                    self.collect(type_, fragment.selection_set, fields, spread)

    def applies(self, condition: Any, type_: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        conditional = type_from_ast(self.schema, condition)
        if conditional is type_:
            return True
        return is_abstract_type(conditional) and self.schema.is_sub_type(conditional, type_)

    def included(self, node: Any) -> bool:
        """False for a selection that @skip or @include leaves out."""
        for directive in node.directives or ():
            if directive.name.value not in {"skip", "include"}:
                continue
            definition = (
                GraphQLSkipDirective if directive.name.value == "skip" else GraphQLIncludeDirective
            )
            value = get_argument_values(definition, directive, self.variables).get("if")
            if value is (directive.name.value == "skip"):
                return False
        return True

    def field(self, parent: GraphQLObjectType, nodes: list[FieldNode], page: int | None) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 1 + sum(introspection(node.selection_set, self.fragments) for node in nodes)
        definition = parent.fields[name]
        named = get_named_type(definition.type)
        subselections = [node.selection_set for node in nodes if node.selection_set]
        if not is_composite_type(named) or not subselections:
            return 1
        coordinate = f"{parent.name}.{name}"
        size = self.size(definition, nodes[0])
        if size is None:
            size = ESTIMATES.get(coordinate)
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            if size is None:
                size = page if page is not None and coordinate in PAGED else DEFAULT_ESTIMATE
            return 1 + size * self.selections(named, subselections, None)
        # One object; if it is a page, its size goes to the list it holds.
        return 1 + self.selections(named, subselections, size)

    def size(self, definition: Any, node: FieldNode) -> int | None:
        if not any(argument in definition.args for argument in SIZE_ARGUMENTS):
            return None
        try:
            arguments = get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return None  # execution reports the argument; price it as unsized
        for argument in SIZE_ARGUMENTS:
            value = arguments.get(argument)
            if isinstance(value, int) and not isinstance(value, bool):
                # A negative page is refused by its resolver; it cannot lower the cost.
                return max(value, 1)
        return None


def introspection(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    spread: frozenset[str] = frozenset(),
) -> int:
    """Fields selected below an introspection field, each once, lists not multiplied."""
    if selection_set is None:
        return 0
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += 1 + introspection(selection.selection_set, fragments, spread)
        elif isinstance(selection, InlineFragmentNode):
            count += introspection(selection.selection_set, fragments, spread)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in spread:
                count += introspection(fragment.selection_set, fragments, spread | {name})
    return count


def document_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
) -> int:
    """The estimated number of fields the operation resolves (see the module's docstring).

    ``document`` must be valid for ``schema``; ValueError when the operation is not in it or
    the variables do not fit its definitions (execution reports those to the caller).
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise ValueError(f"the document has no operation {operation_name or '(anonymous)'}")
    coerced = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables or {})
    )
    if isinstance(coerced, list):
        raise ValueError(coerced[0].message)
    root = schema.get_root_type(operation.operation)
    if root is None:
        raise ValueError(f"the schema has no {operation.operation.value} type")
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return _Walk(schema, fragments, coerced).selections(root, [operation.selection_set], None)


class Pricing:
    """Prices requests and refuses those over the budget, as QUERY_TOO_COMPLEX."""

    def __init__(self, schema: GraphQLSchema, budget: int, cache_size: int = 256) -> None:
        self.schema = schema
        self.budget = budget
        self.rules = (*specified_rules, *limit_rules())
        self.cache_size = cache_size
        self._documents: OrderedDict[str, DocumentNode | None] = OrderedDict()
        self._costs: OrderedDict[tuple[str, str | None, bytes], int] = OrderedDict()

    def document(self, query: str) -> DocumentNode | None:
        """The parsed document if it is valid, else None (execution will say what is wrong)."""
        if query in self._documents:
            self._documents.move_to_end(query)
            return self._documents[query]
        try:
            # Without locations: nothing here reports a position, and a cached document
            # would keep every token of the query alive.
            document: DocumentNode | None = parse(query, no_location=True, max_tokens=MAX_TOKENS)
        except GraphQLError:
            document = None
        if document is not None and validate(self.schema, document, self.rules):
            document = None
        if cacheable(query):
            self._documents[query] = document
            if len(self._documents) > self.cache_size:
                self._documents.popitem(last=False)
        return document

    def cost(
        self, query: str, variables: Mapping[str, Any] | None, operation_name: str | None
    ) -> int:
        """The request's cost (at least 1); QueryTooComplex when it is over the budget.

        A request that will fail anyway (syntax, validation, variables) costs 1: execution
        refuses it before any resolver runs, with its own message.
        """
        # The same document, operation and variables always cost the same (walking the
        # dossier's document took ~1 ms a request).
        remembered = variables_key(variables) if cacheable(query) else None
        key = None if remembered is None else (query, operation_name, remembered)
        cost = self._costs.get(key) if key is not None else None
        if cost is None:
            cost = self._price(query, variables, operation_name)
            if key is not None:
                self._costs[key] = cost
                if len(self._costs) > self.cache_size:
                    self._costs.popitem(last=False)
        if cost > self.budget:
            raise QueryTooComplex(
                f"this request would resolve about {cost:,} fields (its cost), more than the "
                f"{self.budget:,} one request may: ask for fewer enterprises per page (first) "
                "or fewer fields, and fetch the rest with further requests",
                cost=cost,
                budget=self.budget,
            )
        return max(cost, 1)

    def _price(
        self, query: str, variables: Mapping[str, Any] | None, operation_name: str | None
    ) -> int:
        document = self.document(query)
        if document is None:
            return 1
        try:
            return document_cost(self.schema, document, variables, operation_name)
        except ValueError:
            return 1
