"""The cost of a document: fields it would resolve, lists multiplied out, priced before it runs."""

from typing import Any

import pytest
from graphql import (
    GraphQLList,
    GraphQLObjectType,
    get_introspection_query,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    parse,
)

from bench.limit import DOSSIER
from hub.errors import QueryTooComplex
from hub.schema import build_schema
from hub.schema.cost import ESTIMATES, PAGED, Pricing, document_cost
from hub.settings import Settings
from tests.test_access import EVERYTHING

SCHEMA = build_schema()._schema
USCC = "91110000600037341L"
# A change feed page with a few fields of each record, as the security review sent it.
CHANGES = "changes(first: 500) { changes { kind sourceId record { id ... on Acceptance { verdict opinion } } } }"
THIRTY_FEEDS = "{ " + " ".join(f"a{i}: {CHANGES}" for i in range(30)) + " }"


def cost(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> int:
    return document_cost(SCHEMA, parse(query), variables, name)


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ __typename }", None, 1),
        # A list without a size of its own takes its estimate: ten departments.
        ("{ departments { code nameZh } }", None, 1 + 10 * 2),
        # The page's size goes to the list in it: 1 + (totalCount + edges of 5 × (node + 2)).
        ("{ enterprises(first: 5) { totalCount edges { node { uscc name } } } }", None, 1 + 1 + 1 + 5 * 3),
        ("{ enterprises { edges { node { uscc } } } }", None, 1 + 1 + 20 * 2),  # first = 20
        ("query($n: Int!) { enterprises(first: $n) { edges { node { uscc } } } }", {"n": 50}, 1 + 1 + 50 * 2),
        ("query($n: Int = 7) { enterprises(first: $n) { edges { node { uscc } } } }", None, 1 + 1 + 7 * 2),
        # Aliases are resolved each time; the same field twice is merged, as graphql-core does.
        ("{ a: enterprises(first: 5) { edges { node { uscc } } } b: enterprises(first: 5) { edges { node { uscc } } } }", None, 2 * (1 + 1 + 5 * 2)),
        ("{ departments { code } departments { nameZh } }", None, 1 + 10 * 2),
        ("{ departments { code } d: departments { code } }", None, 2 * (1 + 10)),
        # Fragments count where they are spread: 8 inspections × (id + findings of 2).
        (f'{{ enterprise(uscc: "{USCC}") {{ ...E }} }} fragment E on Enterprise {{ inspections {{ id findings {{ category }} }} }}', None, 1 + 1 + 8 * (1 + 1 + 2)),
        (f'{{ enterprise(uscc: "{USCC}") {{ ...E ...E name }} }} fragment E on Enterprise {{ name }}', None, 1 + 1),
        # One record is one of its types: the dearest of them counts.
        ("{ changes(first: 10) { changes { record { id ... on Acceptance { verdict opinion } ... on Inspection { result } } } } }", None, 1 + 1 + 10 * (1 + 3)),
        ("query($s: Boolean!) { departments @skip(if: $s) { code } __typename }", {"s": True}, 1),
        ("query($s: Boolean!) { departments @include(if: $s) { code } __typename }", {"s": True}, 1 + 10 + 1),
        # Introspection counts each field once, lists not multiplied.
        ("{ __schema { types { name fields { name } } } }", None, 1 + 4),
        # A live feed sends pages of up to 500 changes.
        ("subscription { changes { changes { sourceId } } }", None, 1 + 1 + 500),
        ("{ accessesTo(uscc: \"x\", first: 1000) { seq } }", None, 1 + 1000),
        ("{ enterprises(first: 100) { edges { node { inspections { participants { code } } } } } }", None, 1 + 1 + 100 * (1 + 1 + 8 * (1 + 3))),
        ("query A { departments { code } } query B { __typename }", None, 1),  # B, named below
        # The figures the budget was chosen by (hub/settings.py).
        (DOSSIER, None, 30_402),
        (EVERYTHING, None, 49_504),
        (THIRTY_FEEDS, None, 90_060),
        (get_introspection_query(), None, 220),
    ],
)  # fmt: skip
def test_document_costs(query: str, variables: dict[str, Any] | None, expected: int) -> None:
    name = "B" if query.startswith("query A") else None
    assert cost(query, variables, name) == expected


def test_aliases_through_fragments_multiply_at_every_level() -> None:
    def fan(alias: str, field: str, fragment: str) -> str:
        return " ".join(f"{alias}{i}: {field} {{ ...{fragment} }}" for i in range(10))

    query = (
        f'{{ enterprise(uscc: "{USCC}") {{ {fan("a", "rectifications", "R")} }} }}'
        f" fragment R on Rectification {{ {fan('b', 'inspection', 'I')} }}"
        f" fragment I on Inspection {{ {fan('c', 'history', 'H')} }}"
        " fragment H on RecordVersion { "
        + " ".join(f"d{i}: publisher {{ code }}" for i in range(10))
        + " }"
    )
    versions = 10 * (1 + 1)  # ten publishers of one version
    inspection = 10 * (1 + 2 * versions)  # ten histories of two versions
    rectification = 10 * (1 + inspection)
    assert cost(query) == 1 + 10 * (1 + 4 * rectification)  # four rectifications, ten times


def test_every_list_of_objects_has_a_size() -> None:
    """A new list field needs a `first`, a place in a page, or a measured estimate."""
    unsized = []
    for type_ in SCHEMA.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            coordinate = f"{type_.name}.{name}"
            if (
                isinstance(get_nullable_type(field.type), GraphQLList)  # type: ignore[arg-type]
                and is_composite_type(get_named_type(field.type))
                and "first" not in field.args
                and coordinate not in ESTIMATES
                and coordinate not in PAGED
            ):
                unsized.append(coordinate)
    assert unsized == []
    for coordinate in [*ESTIMATES, *PAGED]:  # and no estimate outlives its field
        type_name, name = coordinate.split(".")
        assert name in SCHEMA.type_map[type_name].fields  # type: ignore[union-attr]


def test_over_the_budget_is_query_too_complex_naming_cost_and_budget() -> None:
    pricing = Pricing(SCHEMA, Settings().query_cost_budget)
    assert pricing.cost(EVERYTHING, {"after": None}, None) == 49_504
    with pytest.raises(QueryTooComplex) as refused:
        pricing.cost(THIRTY_FEEDS, None, None)
    assert refused.value.message == (
        "this request would resolve about 90,060 fields (its cost), more than the 50,000 one "
        "request may: ask for fewer enterprises per page (first) or fewer fields, and fetch "
        "the rest with further requests"
    )
    assert refused.value.extensions() == {
        "code": "QUERY_TOO_COMPLEX",
        "cost": 90_060,
        "budget": 50_000,
    }


@pytest.mark.parametrize(
    ("query", "variables", "name"),
    [
        ("{ enterprise(uscc: ", None, None),  # syntax
        ("{ departments { nope } }", None, None),  # validation
        ("query($n: Int!) { enterprises(first: $n) { totalCount } }", {}, None),  # variables
        ("query A { __typename }", None, "B"),  # no such operation
        ("{ departments { " + "code " * 5001 + "} }", None, None),  # over the token limit
        ("{ " + " ".join(f"d{i}: departments {{ code }}" for i in range(31)) + " }", None, None),
    ],
)
def test_requests_that_will_fail_anyway_cost_one(
    query: str, variables: dict[str, Any] | None, name: str | None
) -> None:
    # Execution refuses them before any resolver runs, with its own message.
    assert Pricing(SCHEMA, 10).cost(query, variables, name) == 1


def test_only_short_queries_are_cached_and_the_cache_is_bounded() -> None:
    pricing = Pricing(SCHEMA, 50_000, cache_size=3)
    long = "{ departments { code } }" + " " * 20_000
    assert pricing.cost(long, None, None) == 11
    assert len(pricing._documents) == 0
    for n in range(5):
        pricing.cost(f"{{ enterprises(first: {n + 1}) {{ totalCount }} }}", None, None)
    assert list(pricing._documents) == [
        f"{{ enterprises(first: {n + 1}) {{ totalCount }} }}" for n in (2, 3, 4)
    ]
    assert len(pricing._costs) == 3


def test_a_remembered_cost_is_of_the_same_document_operation_and_variables() -> None:
    pricing = Pricing(SCHEMA, 100)
    query = (
        "query A($n: Int!) { enterprises(first: $n) { edges { node { uscc } } } } "
        "query B { departments { code } }"
    )
    for _ in range(2):  # priced, then remembered: the same answers
        assert pricing.cost(query, {"n": 10}, "A") == 1 + 1 + 10 * 2
        assert pricing.cost(query, {"n": 10}, "B") == 1 + 10
        with pytest.raises(QueryTooComplex):
            pricing.cost(query, {"n": 60}, "A")
        assert pricing.cost(query, {"n": "ten"}, "A") == 1  # fails anyway
    # Variables too large to remember, or JSON cannot hold: priced each time.
    assert pricing.cost(query, {"n": 2, "padding": "x" * 600}, "A") == 1 + 1 + 2 * 2
    assert pricing.cost(query, {"n": 3, "huge": 2**70}, "A") == 1 + 1 + 3 * 2
    assert len(pricing._costs) == 4
