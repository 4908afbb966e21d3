"""Documents generated from the hub's own schema, steered towards the data.

hypothesis-graphql generates valid queries and mutations of every root field with random
argument values; almost none of those would reach a record (a random string is no USCC).
So many arguments and input fields get, by name, a value the data holds or nearly holds (a
real USCC or one with a wrong check character, a department code or "mars", a source id, a
district, a cursor of the field's own kind, a page size at and past its bounds, a text no
record holds), publishing mostly for the caller's own department, and some fields get
aliases, so that nothing can depend on response keys. One document in ten stays as it was
generated, random strings and all. Custom scalars get realistic values, and one time in
twenty impossible ones.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from random import Random
from typing import Any, TypeVar

import graphql
from graphql import (
    ArgumentNode,
    FieldNode,
    IntValueNode,
    ListValueNode,
    NameNode,
    ObjectFieldNode,
    StringValueNode,
    ValueNode,
    Visitor,
)
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from hub.domain import DEPARTMENTS
from hub.plans import this_month
from hub.policy import Policy
from hub.records import months_after
from hub.schema import SHARED
from tests.adversary.secrets import Ground

__all__ = ["SCALARS", "Pools", "documents", "pools", "root_fields"]

DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
_Steered = TypeVar("_Steered", ArgumentNode, ObjectFieldNode)


def _mostly(usual: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``usual`` but one time in twenty: a document with one impossible value (of the many
    a document holds) reaches nothing."""
    return st.integers(0, 19).flatmap(lambda draw: rare if draw == 19 else usual)


SCALARS: dict[str, st.SearchStrategy[ValueNode]] = {
    "Date": _mostly(
        st.dates(date(2020, 1, 1), date(2026, 11, 1)).map(date.isoformat),
        st.one_of(
            st.dates().map(date.isoformat),
            st.sampled_from(["2025-02-30", "2025-13-01", "0000-00-00", "today", "", "2025-1-1"]),
        ),
    ).map(nodes.String),
    "DateTime": _mostly(
        st.datetimes(datetime(2020, 1, 1), datetime(2026, 11, 1)).map(datetime.isoformat),
        st.one_of(
            st.datetimes().map(datetime.isoformat),
            st.sampled_from(["2026-11-16T00:00:00Z", "2026-11-16T25:00:00", "2026-11-16", "x"]),
        ),
    ).map(nodes.String),
    "Decimal": _mostly(
        st.decimals(0, 10_000_000, places=2).map(str),
        st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False).map(str),
            st.sampled_from(["0.001", "-5", "1e999999", "NaN", "-Infinity", "1" * 400, "x"]),
        ),
    ).map(nodes.String),
    "JSON": st.just(graphql.NullValueNode()),
}
# Arguments and input fields steered to what the data holds, by name: pool names of Ground.
STEERED = {
    "uscc": "usccs", "usccs": "usccs", "enterprise": "usccs",
    "owner": "departments", "owners": "departments", "requester": "departments",
    "department": "departments", "participants": "departments",
    "assistingDepartments": "departments", "region": "regions", "regions": "regions",
    "town": "towns", "industry": "industries", "nameContains": "fragments",
    "type": "types", "field": "coordinates", "fields": "coordinates", "purpose": "purposes",
    "sourceId": "source_ids", "sourceIds": "source_ids", "rectificationSourceId": "source_ids",
    "creditRecordSourceId": "source_ids", "inspectionSourceId": "source_ids",
    "penaltySourceId": "source_ids", "id": "ids", "after": "after", "first": "sizes",
    "client": "clients", "caseNumber": "texts", "violation": "texts", "legalBasis": "texts",
    "requirement": "texts", "opinion": "texts", "reason": "texts", "purposeDetail": "texts",
    "description": "texts", "category": "texts", "level": "texts", "actionCode": "texts",
    # A plan filter's "until" is a month, a dossier list's a day: steered as neither.
    "subject": "texts", "month": "months", "from": "months",
}  # fmt: skip
# Root fields that serve records (the rest serve the hub's own data).
RECORD_FIELDS = ("enterprise", "enterprises", "changes")
ALIASES = ("amount", "opinion", "name", "legalBasis", "findings", "data", "x", "__typename")


# For each pool: values the data holds, and values that are nearly right.
Pools = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]


def pools(ground: Ground, policy: Policy) -> Pools:
    """Values for steered arguments: a sample of each kind the data holds, and a few that
    are nearly right (an unknown department, a USCC with a wrong check character)."""
    usccs = ground.pools["usccs"]
    sample = usccs[:: max(1, len(usccs) // 40)]
    source_ids = ground.pools["source_ids"]
    plans = (("2026-12", 1), ("2026-12", 60), ("2027-01", 100), ("9999-12", 10**6))

    def cursor(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode()

    return {
        "usccs": (sample, ("91110000600037341L", "91110000600037341A", usccs[0].lower())),
        "departments": (DEPARTMENT_CODES, ("mars", "auditor", "MARKET", "")),
        "regions": (ground.pools["regions"], ("", "西湖")),
        "towns": (ground.pools["towns"], ("",)),
        "industries": (ground.pools["industries"], ("",)),
        "fragments": (tuple(name[2:5] for name in ground.pools["names"][:30]), ("%", "_", "'")),
        "types": (tuple(SHARED), ("Query", "Department", "acceptance")),
        "coordinates": ((*policy.catalog, *policy.field_groups), ("Penalty.*", "Nothing.at")),
        "purposes": (tuple(policy.purposes), ("law-enforcement: 案件核查", "nonsense")),
        "source_ids": (source_ids[:: max(1, len(source_ids) // 60)], ("MARKET-INSP-9999999",)),
        "ids": (("1", "2", "3", "10"), ("0", "-1", "99999999999999999999", "x")),
        # Each field's own cursors (the one after which nothing follows too), and others'.
        "after:enterprises": (tuple(cursor(f"enterprise:{uscc}") for uscc in sample[:5]), ()),
        "after:changes": (tuple(cursor(f"change:{seq}") for seq in (0, 5, 10**6)), ()),
        "after:notifications": ((cursor("notification:0"), cursor("notification:1")), ()),
        "after:accessLog": (("1", "5", "100000"), ()),
        "after:inspectionPlans": (tuple(cursor(f"plan:{m}:{n}") for m, n in plans), ()),
        "after:jointInspectionSuggestions": (
            tuple(cursor(f"suggestion:{m}:{n}") for m, n in plans),
            (),
        ),
        "after:*": ((), (cursor("change:-1"), cursor("enterprise:x"), "bm9uZQ==", "%%", "-1")),
        "sizes": (("1", "2", "3", "5", "10", "20", "100"), ("0", "-1", "101", "501", "2147483647")),
        # Plans' months: publishable ones (last month to three ahead) and the demo's.
        "months": (
            (
                *(months_after(this_month(), n) for n in range(-1, 4)),
                "2026-10",
                "2026-12",
                "2027-01",
            ),
            ("2026-13", "2026-1", "2026-12-01", "0000-01", "", months_after(this_month(), 13)),
        ),
        # Texts no stored record holds: what a caller writes must never look like a value
        # that is withheld from it (it may read back what it wrote).
        "texts": (
            ("整改到位（模糊测试）", "《模糊测试条例》第一条", "FUZZ-3301", "fuzz"),
            ("", " ", "\t", "'; DROP TABLE penalty; --", "\u202e反转", "长" * 5000),
        ),
        "clients": (("client:1", "client:2", "demo data"), ("jwt:x", "")),
    }


class _Steer(Visitor):
    """Rewrites a generated document: steered arguments, aliases. Returns new nodes and
    never changes the generated ones (hypothesis-graphql may share them)."""

    def __init__(self, pools: Pools, rng: Random) -> None:
        super().__init__()
        self.pools, self.rng, self.aliases = pools, rng, 0

    def enter_argument(
        self, node: ArgumentNode, _key: Any, _parent: Any, _path: Any, ancestors: list[Any]
    ) -> ArgumentNode | None:
        field = next(a for a in reversed(ancestors) if isinstance(a, FieldNode)).name.value
        publishing = field.startswith(("publish", "retract"))
        if node.name.value == "owner" and publishing and self.rng.random() < 0.7:
            return replace(node, value=graphql.NullValueNode())  # the caller's own records
        if node.name.value == "after":  # a cursor of its own field, none, or another's
            own, _ = self.pools.get(f"after:{field}", ((), ()))
            _, foreign = self.pools["after:*"]
            draw = self.rng.random()
            value: ValueNode = graphql.NullValueNode()
            if draw > 0.95:
                value = StringValueNode(value=self.rng.choice(foreign))
            elif draw > 0.5 and own:
                value = StringValueNode(value=self.rng.choice(own))
            return replace(node, value=value)
        return self._steer(node)

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> ObjectFieldNode | None:
        return self._steer(node)

    def enter_field(self, node: FieldNode, *_: Any) -> FieldNode | None:
        if node.alias is not None or self.rng.random() < 0.85:
            return None
        self.aliases += 1
        word = self.rng.choice(ALIASES).lstrip("_") or "t"
        # Now and then the bare word, which may clash with a sibling (a validation error).
        alias = word if self.rng.random() > 0.95 else f"{word}{self.aliases}"
        return replace(node, alias=NameNode(value=alias))

    def _steer(self, node: _Steered) -> _Steered | None:
        name = STEERED.get(node.name.value)
        if name is None:
            return None
        good, odd = self.pools[name]
        return replace(
            node, value=self._value(node.value, odd if self.rng.random() > 0.97 else good)
        )

    def _value(self, value: ValueNode, pool: tuple[str, ...]) -> ValueNode:
        if isinstance(value, ListValueNode):
            return ListValueNode(values=tuple(self._value(item, pool) for item in value.values))
        if isinstance(value, StringValueNode):
            return StringValueNode(value=self.rng.choice(pool))
        if isinstance(value, IntValueNode):
            return IntValueNode(value=self.rng.choice(pool))
        return value


def documents(
    schema: graphql.GraphQLSchema,
    pools: Pools,
    *,
    mutation: bool = False,
    fields: Sequence[str] | None = None,
) -> st.SearchStrategy[str]:
    """Queries (or mutations) of every root field of ``schema`` (or of ``fields``), steered
    towards the data."""
    generate = mutations if mutation else queries
    generated = generate(
        schema, fields=fields, custom_scalars=SCALARS, print_ast=lambda document: document
    )
    if not mutation:  # half of them of one field that serves records, alone
        alone = [
            queries(schema, fields=[name], custom_scalars=SCALARS, print_ast=lambda doc: doc)
            for name in RECORD_FIELDS
        ]
        branches = [generated, generated, generated, *alone]
        generated = st.integers(0, len(branches) - 1).flatmap(branches.__getitem__)

    def steer(document: graphql.DocumentNode, rng: Random) -> str:
        if rng.random() < 0.1:  # as hypothesis-graphql made it, random strings and all
            return graphql.print_ast(document)
        return graphql.print_ast(graphql.visit(document, _Steer(pools, rng)))

    return st.builds(steer, generated, st.randoms(use_true_random=True))


def root_fields(document: str) -> set[str]:
    """The root fields a document selects (empty when it does not parse)."""
    try:
        parsed = graphql.parse(document)
    except graphql.GraphQLError:
        return set()
    return {
        selection.name.value
        for definition in parsed.definitions
        if isinstance(definition, graphql.OperationDefinitionNode)
        for selection in definition.selection_set.selections
        if isinstance(selection, FieldNode)
    }
