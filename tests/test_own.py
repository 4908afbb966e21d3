"""An enterprise's own view (hub/schema/own.py): its dossier as the departments share it with
enterprises, every field of it walked; what its credential's statements can read at all
(hub/schema/loaders.py); and its Data Tracker, on SQLite and PostgreSQL, in-process and
against the installed `hub serve` with a client made by `hub clients create --enterprise`."""

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from graphql import GraphQLObjectType, get_named_type
from starlette.testclient import TestClient

from hub.auth import Principal
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.domain import DEPARTMENTS, Role
from hub.metrics import EXECUTIONS
from hub.policy import Scope
from hub.schema import SHARED, Access, build_schema
from hub.schema.loaders import Loaders, Parent, Reader
from hub.schema.query import page_of
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database, without_trace
from tests.test_access import POLICY, Checker, sql
from tests.test_serve import HUB, demo_with_clients, free_port, readyz, serving, wait_for

SCHEMA = build_schema()._schema
EVERYONE = Scope(tuple(department.code for department in DEPARTMENTS), {})
RECORDS = {"CreditRecord": "credit_record", "Inspection": "inspection", "Penalty": "penalty",
           "Rectification": "rectification"}  # fmt: skip
# Records about an enterprise through the record they are about.
THROUGH = {
    "CreditRepair": "SELECT x.id FROM credit_repair x JOIN credit_record p "
                    "ON p.id = x.credit_record_id WHERE p.enterprise_id = :id AND NOT x.retracted",
    "Acceptance": "SELECT x.id FROM acceptance x JOIN rectification p "
                  "ON p.id = x.rectification_id WHERE p.enterprise_id = :id AND NOT x.retracted",
}  # fmt: skip


def everything(type_name: str, seen: tuple[str, ...] = ()) -> str:
    """A selection of every field of a type, and of every type below it, with __typename."""
    graphql_type = SCHEMA.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    selected = ["__typename"]
    for name, field in graphql_type.fields.items():
        below = get_named_type(field.type)
        if isinstance(below, GraphQLObjectType):
            if below.name not in seen:
                selected.append(f"{name} {everything(below.name, (*seen, type_name))}")
        else:
            selected.append(name)
    return "{ " + " ".join(selected) + " }"


MY_ENTERPRISE = "{ myEnterprise " + everything("Enterprise") + " }"
TRACKER = """query Tracker($since: DateTime, $until: DateTime, $first: Int! = 20, $after: String) {
  myDataAccesses(since: $since, until: $until, first: $first, after: $after) {
    edges { cursor node { recordedAt department { code nameZh nameEn } purpose caseRef outcome
                          fields withheld published } }
    pageInfo { hasNextPage endCursor } } }"""


def ask(
    hub: TestClient, query: str, token: str, purpose: str | None = None,
    case: str | None = None, **variables: Any,
) -> dict[str, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    if purpose is not None:
        headers["X-Hub-Purpose"] = quote(purpose)
    if case is not None:
        headers["X-Hub-Case"] = quote(case)
    response = hub.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return without_trace(response.json())


class Own:
    """Two enterprises' own credentials: the first's dossier holds every kind of record."""

    def __init__(self, settings: Settings) -> None:
        ((self.uscc, self.id, self.owner),) = sql(settings, """
            SELECT e.uscc, e.id, e.owner FROM enterprise e
            WHERE EXISTS (SELECT 1 FROM credit_repair r JOIN credit_record c
                          ON c.id = r.credit_record_id WHERE c.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM inspection_finding f JOIN inspection i
                          ON i.id = f.inspection_id WHERE i.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM inspection_participant f JOIN inspection i
                          ON i.id = f.inspection_id WHERE i.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM acceptance a JOIN rectification r
                          ON r.id = a.rectification_id WHERE r.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM rectification_assistant a JOIN rectification r
                          ON r.id = a.rectification_id WHERE r.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM penalty p WHERE p.enterprise_id = e.id)
            ORDER BY e.uscc LIMIT 1""")  # fmt: skip
        # Another with records of each kind the first has, for its credential to look for.
        ((self.other, self.other_id),) = sql(settings, """
            SELECT e.uscc, e.id FROM enterprise e WHERE e.id <> :id
              AND EXISTS (SELECT 1 FROM credit_record c WHERE c.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM inspection i WHERE i.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM penalty p WHERE p.enterprise_id = e.id)
              AND EXISTS (SELECT 1 FROM rectification r WHERE r.enterprise_id = e.id)
            ORDER BY e.uscc DESC LIMIT 1""", id=self.id)  # fmt: skip
        assert self.uscc != self.other

        async def create() -> tuple[str, str]:
            engine = create_engine(settings)
            tokens = []
            for uscc in (self.uscc, self.other):
                made = await create_client(engine, enterprise=uscc, name=f"{uscc} itself",
                                           role=Role.ENTERPRISE)  # fmt: skip
                tokens.append(made.token)
            await engine.dispose()
            return tokens[0], tokens[1]

        self.token, self.other_token = asyncio.run(create())


@pytest.fixture(scope="module")
def own(demo_database: Settings) -> Own:
    return Own(demo_database)


def ids_about(settings: Settings, enterprise_id: int) -> dict[str, set[str]]:
    """The ids of every record about an enterprise, by type, as stored (none retracted)."""
    found = {
        type_name: {str(row[0]) for row in sql(settings, f"SELECT id FROM {table} "
                                                "WHERE enterprise_id = :id AND NOT retracted",
                                                id=enterprise_id)}
        for type_name, table in RECORDS.items()
    }  # fmt: skip
    for type_name, statement in THROUGH.items():
        found[type_name] = {str(row[0]) for row in sql(settings, statement, id=enterprise_id)}
    return found


def served_ids(value: Any, found: dict[str, set[str]]) -> dict[str, set[str]]:
    if isinstance(value, list):
        for item in value:
            served_ids(item, found)
    elif isinstance(value, dict):
        if value.get("__typename") in RECORDS.keys() | THROUGH.keys():
            found.setdefault(value["__typename"], set()).add(value["id"])
        for item in value.values():
            served_ids(item, found)
    return found


@pytest.mark.parametrize("purpose", [None, "law-enforcement: 企业自查"])
def test_my_enterprise_serves_every_shared_field_of_its_own_records_and_nothing_else(
    hub: TestClient, demo_database: Settings, own: Own, purpose: str | None
) -> None:
    answer = ask(hub, MY_ENTERPRISE, own.token, purpose)
    checker = Checker(POLICY, "enterprise", purpose, answer.get("errors", []))
    checker.walk(answer["data"], (), None)
    assert checker.errors == {}, "errors at paths that were not checked"
    # Inspection plans never reach an enterprise (spot checks are unannounced): its list of
    # them is empty, so their fields are never met.
    assert answer["data"]["myEnterprise"]["inspectionPlans"] == []
    decided = {f"{t}.{f}" for t, fields in SHARED.items() for f, field in fields.items()
               if field.decided and t != "InspectionPlan"}  # fmt: skip
    assert {coordinate for coordinate, _, _ in checker.seen} == decided  # every field walked
    withheld = {coordinate for coordinate, _, allowed in checker.seen if not allowed}
    # Shared on condition, and not shared at all: never to an enterprise, grant or purpose.
    assert withheld == {"Enterprise.legalRepresentative", "Penalty.amount", "Acceptance.opinion",
                        "CreditRepair.opinion", "Penalty.minorFirstOffenceExempt"}  # fmt: skip
    assert answer["data"]["myEnterprise"]["uscc"] == own.uscc
    # Every record of its own, and none of another enterprise's.
    assert served_ids(answer["data"], {}) == ids_about(demo_database, own.id)
    text = json.dumps(answer, ensure_ascii=False)
    others = sql(demo_database, "SELECT uscc, name FROM enterprise WHERE id <> :id", id=own.id)
    assert not [row for row in others if row.uscc in text or row.name in text]


def test_the_dossier_is_the_one_departments_ask_for_with_its_own_decisions(
    hub: TestClient, tokens: dict[str, str], own: Own
) -> None:
    """Same type, same records: where the policy decides alike, the answers are alike."""
    query = "{ %s { uscc name penalties { caseNumber legalBasis amount } " \
            "inspections { actionCode findings { category } } } }"  # fmt: skip
    mine = ask(hub, query % "myEnterprise", own.token)["data"]["myEnterprise"]
    theirs = ask(hub, query % f'enterprise(uscc: "{own.uscc}")', tokens["enforcement"],
                 "law-enforcement: 案件核查")["data"]["enterprise"]  # fmt: skip
    for penalty in theirs["penalties"]:
        penalty["amount"] = None  # under a grant for enforcement; never for the enterprise
    assert mine == theirs


def test_statements_of_an_enterprise_credential_read_only_its_own_rows(
    demo_database: Settings, own: Own
) -> None:
    """Whatever root asked, the loaders of an enterprise's credential find nothing of
    another enterprise: by key (as a lookup by action code would), as lists, as versions."""
    theirs = {
        kind: [row[0] for row in sql(demo_database, statement, id=own.other_id)]
        for kind, statement in {
            "inspection": "SELECT id FROM inspection WHERE enterprise_id = :id",
            "penalty": "SELECT id FROM penalty WHERE enterprise_id = :id",
            "rectification": "SELECT id FROM rectification WHERE enterprise_id = :id",
            "credit": "SELECT id FROM credit_record WHERE enterprise_id = :id",
        }.items()
    }
    assert all(theirs.values()), theirs  # the other enterprise has every kind to look for

    async def read(enterprise: str | None) -> list[Any]:
        engine = create_engine(demo_database)
        reader = Reader(engine)
        loaders = Loaders(reader, lambda type_name: EVERYONE, None, enterprise)
        parent = Parent(own.other_id)
        found = [
            await loaders.enterprise.load(own.other),
            await loaders.inspection.load_many(theirs["inspection"]),
            await loaders.penalty.load_many(theirs["penalty"]),
            await loaders.acceptance.load_many(theirs["rectification"]),
            await loaders.published["Inspection"].load_many(theirs["inspection"]),
            await loaders.credit_records.load(parent),
            await loaders.inspections.load(parent),
            await loaders.penalties.load(parent),
            await loaders.rectifications.load(parent),
            await loaders.credit_repairs.load_many([Parent(i) for i in theirs["credit"]]),
            await loaders.findings.load_many([Parent(i) for i in theirs["inspection"]]),
            await loaders.participants.load_many([Parent(i) for i in theirs["inspection"]]),
            await loaders.assistants.load_many([Parent(i) for i in theirs["rectification"]]),
            await loaders.history["Inspection"].load_many(theirs["inspection"]),
            await loaders.enterprise.load(own.uscc),
        ]
        await reader.close()
        await engine.dispose()
        return found

    held, free = asyncio.run(read(own.uscc)), asyncio.run(read(None))
    *others, mine = held
    assert mine is not None
    assert mine.uscc == own.uscc
    assert all(not value or value == [None] * len(value) or value == [[]] * len(value)
               for value in others), others  # fmt: skip
    assert all(free), "without an enterprise, the same loads find the other's rows"

    # A page of enterprises, were it ever asked: its own only.
    principal = Principal("client:0", "x", own.owner, Role.ENTERPRISE, own.uscc)
    access = Access(POLICY, principal, None, SHARED)
    statement, _ = page_of(access, None, 100, None)
    assert [row.uscc for row in sql_rows(demo_database, statement)] == [own.uscc]


def sql_rows(settings: Settings, statement: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = list((await connection.execute(statement)).all())
        await engine.dispose()
        return rows

    return asyncio.run(run())


def test_an_enterprise_credential_is_answered_by_strawberry_not_compiled_plans(
    hub: TestClient, tokens: dict[str, str], own: Own
) -> None:
    def count(path: str) -> float:
        return float(EXECUTIONS.labels(path)._value.get())

    compiled, strawberry = count("compiled"), count("strawberry")
    assert "errors" not in ask(hub, "{ departments { code } }", tokens["market"])
    assert (count("compiled"), count("strawberry")) == (compiled + 1, strawberry)
    assert "errors" not in ask(hub, "{ departments { code } }", own.token)
    assert (count("compiled"), count("strawberry")) == (compiled + 1, strawberry + 1)


def moment(answer: dict[str, Any]) -> list[datetime]:
    return [datetime.fromisoformat(edge["node"].pop("recordedAt"))
            for edge in answer["data"]["myDataAccesses"]["edges"]]  # fmt: skip


def test_the_data_tracker_shows_who_read_the_enterprise_when_and_why(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str], own: Own
) -> None:
    since = datetime.now(UTC)
    # Market regulation keeps the enterprise's registration, its legal representative too;
    # ecology's penalty amounts it reads only under a grant.
    read = "{ enterprise(uscc: $uscc) { name legalRepresentative penalties { amount } } }"
    read = read.replace("$uscc", json.dumps(own.uscc))
    market = ask(hub, read, tokens["market"], "law-enforcement: 案件核查", "杭市监罚〔2026〕12号")
    assert market["data"]["enterprise"]["legalRepresentative"]
    ask(hub, f'{{ enterprise(uscc: "{own.other}") {{ name }} }}', tokens["ecology"], "inspection")
    ask(hub, MY_ENTERPRISE, own.token)  # its own requests are not in its tracker
    ask(hub, "{ myEnterprise { name } }", own.other_token)
    answer = ask(hub, TRACKER, own.token, since=since.isoformat())
    when = moment(answer)
    assert answer == {"data": {"myDataAccesses": {
        "edges": [{"cursor": answer["data"]["myDataAccesses"]["edges"][0]["cursor"], "node": {
            "department": {"code": "market", "nameZh": "市场监督管理局",
                           "nameEn": "Market Regulation"},
            "purpose": "law-enforcement: 案件核查", "caseRef": "杭市监罚〔2026〕12号",
            "outcome": "PARTIAL", "fields": ["Enterprise.legalRepresentative", "Enterprise.name",
                                             "Enterprise.penalties"],
            "withheld": ["Penalty.amount"], "published": [],
        }}],
        "pageInfo": {"hasNextPage": False,
                     "endCursor": answer["data"]["myDataAccesses"]["edges"][0]["cursor"]},
    }}}  # fmt: skip
    assert since <= when[0] <= datetime.now(UTC)
    # The other enterprise sees ecology's read of it, and not market's of the first.
    theirs = ask(hub, TRACKER, own.other_token, since=since.isoformat())
    moment(theirs)
    assert [(edge["node"]["department"]["code"], edge["node"]["purpose"], edge["node"]["fields"])
            for edge in theirs["data"]["myDataAccesses"]["edges"]] == [
        ("ecology", "inspection", ["Enterprise.name"])
    ]  # fmt: skip
    # Asking is recorded like any request, and names the enterprise.
    (record,) = sql(demo_database, "SELECT role, client, enterprises, outcome FROM access_record "
                    "ORDER BY seq DESC LIMIT 1")  # fmt: skip
    assert (record.role, record.enterprises, record.outcome) == (
        "enterprise",
        f" {own.other} ",
        "ok",
    )
    assert record.client.startswith("client:")
    # Nothing of a department's request that is the department's own business.
    fields = set(SCHEMA.get_type("DataAccess").fields)  # type: ignore[union-attr]
    assert fields == {"recordedAt", "department", "purpose", "caseRef", "outcome", "fields",
                      "withheld", "published"}  # fmt: skip


def test_the_data_tracker_pages_newest_first_and_refuses_what_it_cannot_use(
    hub: TestClient, tokens: dict[str, str], own: Own
) -> None:
    since = datetime.now(UTC)
    for department in ("fire", "emergency", "enforcement"):
        ask(hub, f'{{ enterprise(uscc: "{own.uscc}") {{ status }} }}', tokens[department])
    first = ask(hub, TRACKER, own.token, since=since.isoformat(), first=2)
    page = first["data"]["myDataAccesses"]
    assert [edge["node"]["department"]["code"] for edge in page["edges"]] == [
        "enforcement",
        "emergency",
    ]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = ask(hub, TRACKER, own.token, since=since.isoformat(), first=2,
               after=page["pageInfo"]["endCursor"])["data"]["myDataAccesses"]  # fmt: skip
    assert [edge["node"]["department"]["code"] for edge in rest["edges"]] == ["fire"]
    assert rest["pageInfo"]["hasNextPage"] is False
    until = since - timedelta(seconds=1)
    assert ask(hub, TRACKER, own.token, since=since.isoformat(), until=until.isoformat()) == {
        "data": None, "errors": [{
            "message": f"since ({since.isoformat()}) is after until ({until.isoformat()}); give "
                       "the earlier moment as since",
            "locations": [{"line": 2, "column": 3}], "path": ["myDataAccesses"],
            "extensions": {"code": "BAD_USER_INPUT", "argument": "since"}}]}  # fmt: skip
    for variables, argument in (
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"after": "42"}, "after"),
        ({"after": "YWNjZXNzOi0x"}, "after"),
    ):
        answer = ask(hub, TRACKER, own.token, **variables)
        assert answer["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Any, Settings]]:
    """`hub serve` on a demo database of its own, with a market client."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url}
        with serving(environment) as (_, port):
            yield port, (tokens, environment), settings


def test_an_enterprise_client_made_by_the_command_asks_the_served_hub(
    served: tuple[int, Any, Settings],
) -> None:
    port, (tokens, environment), settings = served
    ((uscc, name),) = sql(settings, "SELECT uscc, name FROM enterprise ORDER BY uscc LIMIT 1")
    made = subprocess.run(
        [HUB, "clients", "create", "--enterprise", uscc.lower(), "--name", "its own system"],
        env=environment, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"(its own system, enterprise {uscc}, enterprise) created" in " ".join(
        made.stderr.split()
    )
    token = made.stdout.strip()
    listed = subprocess.run([HUB, "clients", "list"], capture_output=True, text=True, timeout=60,
                            env={**environment, "COLUMNS": "200"}, check=True)  # fmt: skip
    assert uscc in listed.stdout

    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

        def post(query: str, bearer: str, **headers: str) -> dict[str, Any]:
            response = http.post(
                "/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {bearer}", **headers},
            )
            assert response.status_code == 200, response.text
            return dict(response.json())  # fmt: skip

        read = post(
            f'{{ enterprise(uscc: "{uscc}") {{ name }} }}',
            tokens["market"],
            **{"X-Hub-Purpose": "inspection", "X-Hub-Case": "330100-2026-0001"},
        )
        assert read["data"] == {"enterprise": {"name": name}}
        mine = post("{ myEnterprise { uscc name owner { code } } }", token)
        assert mine["data"] == {"myEnterprise": {"uscc": uscc, "name": name,
                                                 "owner": {"code": "market"}}}  # fmt: skip
        tracked = post("{ myDataAccesses { edges { node { department { code } purpose caseRef "
                       "outcome fields withheld } } } }", token)  # fmt: skip
        assert tracked["data"]["myDataAccesses"]["edges"] == [{"node": {
            "department": {"code": "market"}, "purpose": "inspection",
            "caseRef": "330100-2026-0001", "outcome": "OK", "fields": ["Enterprise.name"],
            "withheld": [],
        }}]  # fmt: skip
        refused = post("{ enterprises { totalCount } }", token)
        assert [e["extensions"]["field"] for e in refused["errors"]] == ["Query.enterprises"]
        assert "data" not in refused


CANONICAL = "9133010985H96UB001"
CANONICAL_READ = (
    '{ enterprise(uscc: "9133010985H96UB001") { name industry rectifications { owner { nameEn } '
    "requirement deadline status acceptance { owner { code } verdict acceptedOn opinion } } } }"
)
README_DOSSIER = """{
  myEnterprise {
    uscc
    name
    legalRepresentative
    inspections(since: "2025-01-01") { owner { code } actionCode kind inspectedOn result findings { description } }
    penalties { owner { code } caseNumber violation legalBasis amount status }
    rectifications { owner { code } requirement deadline status acceptance { verdict acceptedOn opinion } }
  }
}"""
README_TRACKER = """{
  myDataAccesses(first: 5) {
    edges {
      node {
        recordedAt
        department { code nameZh }
        purpose
        caseRef
        outcome
        fields
        withheld
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""


def withheld_from_enterprises(owner: str, coordinate: str) -> dict[str, Any]:
    reason = POLICY.decide("enterprise", owner, coordinate, purpose=False).reason
    return {"code": "FORBIDDEN", "owner": owner, "field": coordinate, "reason": reason}


def test_the_demo_writes_an_enterprise_token_for_the_readme_examples(tmp_path: Path) -> None:
    """`hub serve --demo` as the README runs it: the enterprise's demo token reads the
    canonical enterprise's own dossier, and, after market regulation read it (the README's
    canonical query, without and then with its purpose), sees those reads and why."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--demo", "--port", str(port)], cwd=tmp_path,
                              env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: readyz(port)["status"] == "ready", seconds=90)
        tokens = dict(line.split() for line in
                      (tmp_path / "var" / "demo-tokens.txt").read_text().splitlines()
                      if line and not line.startswith("#"))  # fmt: skip
        assert set(tokens) == {"market", "ecology", "emergency", "enforcement", "fire",
                               "auditor", "enterprise"}  # fmt: skip
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            def post(query: str, who: str, **headers: str) -> dict[str, Any]:
                response = http.post("/graphql", json={"query": query},
                                     headers={"Authorization": f"Bearer {tokens[who]}",
                                              **headers})  # fmt: skip
                assert response.status_code == 200, response.text
                return without_trace(response.json())

            dossier = post(README_DOSSIER, "enterprise")
            assert [e["extensions"] for e in dossier["errors"]] == [
                withheld_from_enterprises("market", "Enterprise.legalRepresentative"),
                withheld_from_enterprises("ecology", "Penalty.amount"),
                withheld_from_enterprises("ecology", "Acceptance.opinion"),
            ]
            mine = dossier["data"]["myEnterprise"]
            assert (mine["uscc"], mine["name"], mine["legalRepresentative"]) == (
                CANONICAL,
                "杭州恒华化工有限公司",
                None,
            )
            assert [(i["owner"]["code"], i["actionCode"], [f["description"] for f in i["findings"]])
                    for i in mine["inspections"]] == [
                ("fire", "33010920260526040000546", ["疏散通道堆放杂物", "生产区电气线路私拉乱接"]),
                ("ecology", "33010920260804010000547", ["危险废物未按规定分类贮存"]),
            ]  # fmt: skip
            assert mine["penalties"] == [{
                "owner": {"code": "ecology"}, "caseNumber": "杭环罚〔2026〕4号",
                "violation": "未按照规定贮存危险废物",
                "legalBasis": "《中华人民共和国固体废物污染环境防治法》第一百一十二条",
                "amount": None, "status": "UNDER_REVIEW",
            }]  # fmt: skip
            # Fire rescue's order too: not shared with market regulation, but about the enterprise.
            assert [(r["owner"]["code"], r["acceptance"]) for r in mine["rectifications"]] == [
                ("fire", None),
                ("ecology", {"verdict": "FAILED", "acceptedOn": "2026-09-10", "opinion": None}),
            ]

            purpose = (
                "rectification-check:%20%E6%95%B4%E6%94%B9%E9%AA%8C%E6%94%B6%E6%A0%B8%E6%9F%A5"
            )
            assert post(CANONICAL_READ, "market")["errors"]
            assert "errors" not in post(CANONICAL_READ, "market", **{"X-Hub-Purpose": purpose})
            tracked = post(README_TRACKER, "enterprise")["data"]["myDataAccesses"]
        read = ["Acceptance.acceptedOn", "Acceptance.owner", "Acceptance.verdict",
                "Enterprise.industry", "Enterprise.name", "Enterprise.rectifications",
                "Rectification.acceptance", "Rectification.deadline", "Rectification.owner",
                "Rectification.requirement", "Rectification.status"]  # fmt: skip
        for edge in tracked["edges"]:
            datetime.fromisoformat(edge["node"].pop("recordedAt"))
        market = {"code": "market", "nameZh": "市场监督管理局"}
        assert tracked == {
            "edges": [
                {"node": {"department": market, "purpose": "rectification-check: 整改验收核查",
                          "caseRef": None, "outcome": "OK", "withheld": [],
                          "fields": sorted([*read, "Acceptance.opinion"])}},
                {"node": {"department": market, "purpose": None, "caseRef": None,
                          "outcome": "PARTIAL", "fields": read,
                          "withheld": ["Acceptance.opinion"]}},
            ],
            "pageInfo": {"hasNextPage": False, "endCursor": tracked["pageInfo"]["endCursor"]},
        }  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_roots_that_slipped_past_the_table_find_nothing_of_another_enterprise(
    demo_database: Settings, own: Own
) -> None:
    """Asked of the schema itself, past hub/schema/roots.py: an enterprise's credential finds
    only itself, and the enterprise view refuses every other caller in its resolvers too."""
    from hub.schema import Context

    schema = build_schema()

    async def run(principal: Principal, query: str) -> Any:
        engine = create_engine(demo_database)
        reader = Reader(engine)
        access = Access(POLICY, principal, None, SHARED)
        loaders = Loaders(reader, access.scope, access.caller, principal.enterprise)
        try:
            result = await schema.execute(
                query, context_value=await Context.create(access, loaders)
            )
        finally:
            await reader.close()
            await engine.dispose()
        return result

    itself = Principal("client:0", "x", own.owner, Role.ENTERPRISE, own.uscc)
    found = asyncio.run(run(itself, f'{{ enterprise(uscc: "{own.other}") {{ name }} '
                                    "enterprises(first: 100) { totalCount edges { node { uscc } } } "
                                    f'mine: enterprise(uscc: "{own.uscc}") {{ uscc }} }}'))  # fmt: skip
    assert found.errors is None
    assert found.data == {
        "enterprise": None,
        "enterprises": {"totalCount": 1, "edges": [{"node": {"uscc": own.uscc}}]},
        "mine": {"uscc": own.uscc},
    }
    market = Principal("client:0", "x", "market", Role.DEPARTMENT)
    refused = asyncio.run(run(market, "{ myEnterprise { uscc } }"))
    assert refused.data == {"myEnterprise": None}
    (error,) = refused.errors
    assert error.original_error.extensions()["field"] == "Query.myEnterprise"
    assert error.original_error.code == "FORBIDDEN"


def test_a_statement_not_narrowed_to_one_enterprise_is_refused_to_its_credential(
    demo_database: Settings, own: Own
) -> None:
    """A loader added later that says nothing of how its rows are one enterprise's fails
    closed for an enterprise's credential; saying it with own_enterprise_id narrows it."""
    from sqlalchemy import select

    from hub import models
    from hub.schema.sources import own_enterprise_id

    credit = models.CreditRecord.__table__.c

    def build() -> Any:
        return select(credit.id, credit.enterprise_id).where(credit.enterprise_id.in_(
            [own.id, own.other_id]))  # fmt: skip

    async def read(enterprise: str | None, narrowed: bool) -> list[Any]:
        engine = create_engine(demo_database)
        reader = Reader(engine)
        statements = Loaders(reader, lambda type_name: EVERYONE, None, enterprise).statements
        try:
            shape = ("test", narrowed)
            own_id = own_enterprise_id(credit.enterprise_id) if narrowed else None
            statement = statements.shaped(shape, None, build, own=own_id)
            assert statement is not None
            return sorted({row.enterprise_id for row in await statements.rows(statement, {})})
        finally:
            await reader.close()
            await engine.dispose()

    with pytest.raises(ValueError, match="is not narrowed to one enterprise's rows"):
        asyncio.run(read(own.uscc, narrowed=False))
    assert asyncio.run(read(own.uscc, narrowed=True)) == [own.id]
    assert asyncio.run(read(None, narrowed=True)) == sorted([own.id, own.other_id])


def test_an_enterprise_looks_up_its_own_action_codes_and_others_look_unknown(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str], own: Own
) -> None:
    """亮码检查: the enterprise checks the code an inspector shows it. Its own inspection's code
    is answered; another enterprise's is NOT_FOUND word for word as a code nobody holds."""
    lookup = "query($code: String!) { inspectionByActionCode(code: $code) { code uscc } }"
    first = "SELECT action_code, owner FROM inspection WHERE enterprise_id = :id ORDER BY id"
    ((mine, _), *_) = sql(demo_database, first, id=own.id)
    ((theirs, owner), *_) = sql(demo_database, first, id=own.other_id)
    answer = ask(hub, lookup, own.token, code=mine)
    assert answer == {"data": {"inspectionByActionCode": {"code": mine, "uscc": own.uscc}}}

    def refusal(code: str) -> dict[str, Any]:
        answer = ask(hub, lookup, own.token, code=code)
        (error,) = answer["errors"]
        return {"data": answer["data"], "code": error["extensions"]["code"],
                "message": error["message"].replace(code, "<code>")}  # fmt: skip

    assert refusal(theirs) == refusal("NO-SUCH-CODE-1")
    assert refusal(theirs)["code"] == "NOT_FOUND"
    # The department that inspected reads it, with the enterprise it is about.
    found = ask(hub, lookup, tokens[owner], code=theirs)
    assert found == {"data": {"inspectionByActionCode": {"code": theirs, "uscc": own.other}}}


def test_the_data_tracker_never_tells_of_inspection_plans(
    hub: TestClient, tokens: dict[str, str], own: Own
) -> None:
    """Random spot checks are unannounced: a department reading the enterprise's plans is
    not in its tracker, and a request that read plans and its name shows the name only."""
    tracker = "{ myDataAccesses(first: 100) { edges { node { fields } } } }"

    def seen() -> list[list[str]]:
        answer = ask(hub, tracker, own.token)
        return [edge["node"]["fields"] for edge in answer["data"]["myDataAccesses"]["edges"]]

    before = seen()
    plans = '{ inspectionPlans(filter: {uscc: "%s"}) { totalCount edges { node { subject } } } }'
    listed = ask(hub, plans % own.uscc, tokens["enforcement"])
    assert listed["data"]["inspectionPlans"]["totalCount"] >= 0
    assert seen() == before
    both = '{ enterprise(uscc: "%s") { name inspectionPlans { subject month } } }'
    ask(hub, both % own.uscc, tokens["enforcement"])
    assert seen() == [["Enterprise.name"], *before]
