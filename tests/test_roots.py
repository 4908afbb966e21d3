"""Which root fields each role may ask for (hub/schema/roots.py), against every root field of
the schema as built: a field added later is walked too, and refused to an enterprise until
the table names it."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    get_named_type,
    is_composite_type,
    is_required_argument,
    is_required_input_field,
    parse,
    validate,
)
from starlette.testclient import TestClient

from hub.auth import Principal
from hub.clients import create_client
from hub.db import create_engine
from hub.domain import Role
from hub.schema import build_schema
from hub.schema.roots import ENTERPRISE_ASKS, ENTERPRISE_VIEW, ROOTS, refused, root_fields
from hub.settings import Settings
from tests.conftest import graphql
from tests.test_access import sql

SCHEMA: GraphQLSchema = build_schema()._schema
ENTERPRISE_MESSAGE = (
    "an enterprise credential may ask only for myEnterprise (its own dossier), myDataAccesses "
    "(who read it), inspectionByActionCode, departments, __typename and introspection"
)
VIEW_MESSAGE = (
    "myEnterprise and myDataAccesses are an enterprise's own view, for its own credential "
    "(`hub clients create --enterprise USCC`)"
)


def test_the_table_names_a_rule_for_every_role() -> None:
    assert set(ROOTS) == set(Role)
    query = set(SCHEMA.query_type.fields)  # type: ignore[union-attr]
    assert {c.removeprefix("Query.") for c in ENTERPRISE_VIEW} <= query
    # inspectionByActionCode comes with the action-codes work; the rest are here already.
    assert {c.removeprefix("Query.") for c in ENTERPRISE_ASKS} - query <= {"inspectionByActionCode"}


@pytest.mark.parametrize(
    ("document", "name", "fields"),
    [
        ("{ departments { code } }", None, ("Query.departments",)),
        ("{ a: departments { code } b: departments { nameEn } __typename }", None,
         ("Query.departments",)),
        # Through fragments, nested and repeated, and inline fragments; introspection is open.
        ("query Q { ...F ... on Query { myEnterprise { name } } __schema { types { name } } } "
         "fragment F on Query { accessLog { edges { cursor } } ...G } "
         "fragment G on Query { ...F x: enterprise(uscc: \"1\") { name } }", "Q",
         ("Query.accessLog", "Query.enterprise", "Query.myEnterprise")),
        ("mutation { settleConflict(id: \"1\", settlement: \"x\") { settledAt } }", None,
         ("Mutation.settleConflict",)),
        ("subscription { changes { endCursor } }", None, ("Subscription.changes",)),
        ("query A { departments { code } } mutation B { x }", "B", ("Mutation.x",)),
        # Documents strawberry refuses itself, saying why: not read here.
        ("query A { departments { code } } query B { accessLog { edges { cursor } } }", None,
         None),
        ("{ departments { code } }", "Missing", None),
        ("{ departments { ", None, None),
    ],
)  # fmt: skip
def test_root_fields_are_read_through_aliases_and_fragments(
    document: str, name: str | None, fields: tuple[str, ...] | None
) -> None:
    assert root_fields(document, name) == fields


def test_a_department_asking_nothing_of_the_enterprise_view_is_not_even_parsed() -> None:
    market = Principal("client:1", "m", "market", Role.DEPARTMENT)
    # Not a document at all: had it been read, it would not parse. No field is refused.
    assert refused(market, "{ accessLog { edges { cursor } } ", None) == []
    (error,) = refused(market, "{ myEnterprise { name } }", None)
    assert error.extensions() == {"code": "FORBIDDEN", "owner": "hub",
                                  "field": "Query.myEnterprise", "reason": VIEW_MESSAGE}  # fmt: skip


# A value of each scalar that validates; a String is another enterprise's credit code, so
# that `enterprise(uscc: ...)` and the like are real attempts.
def literal(type_: Any, uscc: str) -> str:
    if isinstance(type_, GraphQLNonNull):
        return literal(type_.of_type, uscc)
    if isinstance(type_, GraphQLList):
        return f"[{literal(type_.of_type, uscc)}]"
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        required = [f"{name}: {literal(field.type, uscc)}" for name, field in
                    type_.fields.items() if is_required_input_field(field)]  # fmt: skip
        return "{" + ", ".join(required) + "}"
    return {
        "String": json.dumps(uscc), "ID": '"1"', "Int": "1", "Float": "1.5",
        "Boolean": "true", "Date": '"2026-01-05"', "DateTime": '"2026-01-05T00:00:00Z"',
        "Decimal": '"1.00"', "JSON": "{}",
    }[type_.name]  # fmt: skip


def documents(uscc: str) -> Iterator[tuple[str, str]]:
    """(Type.field, a valid document asking for it) for every root field of the schema."""
    for operation, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type),
                            ("subscription", SCHEMA.subscription_type)):  # fmt: skip
        assert root is not None
        for name, field in root.fields.items():
            arguments = ", ".join(f"{argument}: {literal(value.type, uscc)}"
                                  for argument, value in field.args.items()
                                  if is_required_argument(value))  # fmt: skip
            document = (
                f"{operation} {{ {name}{f'({arguments})' if arguments else ''}"
                f"{' { __typename }' if is_composite_type(get_named_type(field.type)) else ''} }}"
            )
            assert validate(SCHEMA, parse(document)) == [], document
            yield f"{root.name}.{name}", document


@pytest.fixture(scope="module")
def enterprise_token(demo_database: Settings) -> tuple[str, str]:
    """An enterprise's own credential, and its enterprise's USCC."""
    (row,) = sql(demo_database, "SELECT uscc FROM enterprise ORDER BY uscc LIMIT 1")

    async def create() -> str:
        engine = create_engine(demo_database)
        new = await create_client(engine, enterprise=row.uscc, name="roots", role=Role.ENTERPRISE)
        await engine.dispose()
        return new.token

    return asyncio.run(create()), row.uscc


def other_enterprise(settings: Settings, uscc: str) -> str:
    (row,) = sql(settings, "SELECT uscc FROM enterprise WHERE uscc <> :uscc "
                 "ORDER BY uscc DESC LIMIT 1", uscc=uscc)  # fmt: skip
    return str(row.uscc)


def test_an_enterprise_gets_forbidden_and_no_data_for_every_root_field_not_its_own(
    hub: TestClient, demo_database: Settings, enterprise_token: tuple[str, str]
) -> None:
    token, own = enterprise_token
    other = other_enterprise(demo_database, own)
    asked = set()
    for coordinate, document in documents(other):
        if coordinate in ENTERPRISE_ASKS:
            continue
        asked.add(coordinate)
        answer = graphql(hub, document, token=token)
        assert answer == {"errors": [{
            "message": f"asking for {coordinate} is forbidden: {ENTERPRISE_MESSAGE}",
            "extensions": {"code": "FORBIDDEN", "owner": "hub", "field": coordinate,
                           "reason": ENTERPRISE_MESSAGE},
        }]}, coordinate  # fmt: skip
    assert {
        "Query.enterprise",
        "Query.enterprises",
        "Query.changes",
        "Query.accessesTo",
        "Mutation.publishInspections",
        "Mutation.requestShare",
        "Subscription.changes",
    } <= asked
    # Several at once, through aliases and fragments: each named, nothing run.
    answer = graphql(hub, "query { mine: myEnterprise { uscc } ...F } fragment F on Query { "
                     f'theirs: enterprise(uscc: "{other}") {{ name }} grants {{ id }} }}',
                     token=token)  # fmt: skip
    assert [error["extensions"]["field"] for error in answer["errors"]] == [
        "Query.enterprise",
        "Query.grants",
    ]
    assert "data" not in answer
    (record,) = sql(demo_database, "SELECT role, department, outcome, enterprises, operation_type "
                    "FROM access_record ORDER BY seq DESC LIMIT 1")  # fmt: skip
    owner = sql(demo_database, "SELECT owner FROM enterprise WHERE uscc = :uscc", uscc=own)[0][0]
    assert tuple(record) == ("enterprise", owner, "denied", "", "query")


def test_what_an_enterprise_may_ask_is_answered(
    hub: TestClient, enterprise_token: tuple[str, str]
) -> None:
    token, own = enterprise_token
    answer = graphql(hub, "{ __typename departments { code } myEnterprise { uscc } "
                     "__schema { queryType { name } } }", token=token)  # fmt: skip
    assert answer["data"]["myEnterprise"] == {"uscc": own}
    assert answer["data"]["__schema"] == {"queryType": {"name": "Query"}}
    assert len(answer["data"]["departments"]) == 10
    assert "errors" not in answer


@pytest.mark.parametrize("role", ["market", "ecology", "auditor", "admin"])
def test_departments_auditors_and_admins_get_forbidden_for_the_enterprise_view(
    hub: TestClient, tokens: dict[str, str], role: str
) -> None:
    for coordinate, document in documents("9133010985H96UB001"):
        if coordinate not in ENTERPRISE_VIEW:
            continue
        answer = graphql(hub, document, token=tokens[role])
        assert answer == {"errors": [{
            "message": f"asking for {coordinate} is forbidden: {VIEW_MESSAGE}",
            "extensions": {"code": "FORBIDDEN", "owner": "hub", "field": coordinate,
                           "reason": VIEW_MESSAGE},
        }]}, (role, coordinate)  # fmt: skip


def test_an_enterprise_cannot_subscribe_or_query_others_over_websocket(
    hub: TestClient, demo_database: Settings, enterprise_token: tuple[str, str]
) -> None:
    token, own = enterprise_token
    with hub.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as session:
        session.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert session.receive_json() == {"type": "connection_ack"}
        session.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { changes { endCursor } }"},
            }
        )
        refusal = session.receive_json()
        assert refusal == {"id": "1", "type": "error", "payload": [{
            "message": f"asking for Subscription.changes is forbidden: {ENTERPRISE_MESSAGE}",
            "extensions": {"code": "FORBIDDEN", "owner": "hub", "field": "Subscription.changes",
                           "reason": ENTERPRISE_MESSAGE},
        }]}  # fmt: skip
        (record,) = sql(demo_database, "SELECT role, outcome, operation_type FROM access_record "
                        "ORDER BY seq DESC LIMIT 1")  # fmt: skip
        assert tuple(record) == ("enterprise", "denied", "subscription")
        session.send_json(
            {"id": "2", "type": "subscribe", "payload": {"query": "{ enterprises { totalCount } }"}}
        )
        assert session.receive_json()["payload"][0]["extensions"]["field"] == "Query.enterprises"
        # What it may ask, it may ask over the socket too.
        session.send_json(
            {"id": "3", "type": "subscribe", "payload": {"query": "{ myEnterprise { uscc } }"}}
        )
        answer = session.receive_json()
        assert answer["type"] == "next"
        assert answer["payload"]["data"] == {"myEnterprise": {"uscc": own}}
        assert session.receive_json() == {"id": "3", "type": "complete"}
