"""The GraphQL schema against real demo data: dossiers, filters, pages, batching."""

import asyncio
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from hub.db import create_engine
from hub.schema import sdl
from hub.settings import Settings
from tests.conftest import DEMO_ENTERPRISES, StatementCounter, graphql

DOSSIER = """
fragment Dossier on Enterprise {
  uscc name legalRepresentative address industry region town registeredOn status
  owner { code }
  creditRecords { id sourceId owner { code } kind level reason issuedOn expiresOn status
    repairs { id sourceId owner { code } appliedOn decidedOn status opinion } }
  inspections { id sourceId owner { code } actionCode kind inspectedOn result
    participants { code nameZh } findings { category description } }
  penalties { id sourceId owner { code } caseNumber violation legalBasis amount decidedOn status
    minorFirstOffenceExempt decisionIssued complianceSuggestionIssued creditRepairNoticeIssued }
  rectifications { id sourceId owner { code } requirement orderedOn deadline status
    inspection { id } penalty { id caseNumber } assistingDepartments { code }
    acceptance { id sourceId owner { code nameEn } acceptedOn verdict opinion } }
}
"""


def sql(settings: Settings, statement: str, **parameters: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            from sqlalchemy import text

            rows = (await connection.execute(text(statement), parameters)).all()
        await engine.dispose()
        return list(rows)

    return asyncio.run(run())


def enterprise_with_everything(settings: Settings) -> str:
    """A demo enterprise with a joint inspection, a penalty and an accepted rectification."""
    (row,) = sql(
        settings,
        """
        SELECT e.uscc FROM enterprise e
        WHERE EXISTS (SELECT 1 FROM inspection i JOIN inspection_participant p
                      ON p.inspection_id = i.id WHERE i.enterprise_id = e.id)
          AND EXISTS (SELECT 1 FROM penalty p WHERE p.enterprise_id = e.id)
          AND EXISTS (SELECT 1 FROM rectification r JOIN acceptance a
                      ON a.rectification_id = r.id WHERE r.enterprise_id = e.id)
        ORDER BY e.uscc LIMIT 1
    """,
    )
    return str(row.uscc)


def test_schema_graphql_is_current() -> None:
    committed = (Path(__file__).parent.parent / "schema.graphql").read_text(encoding="utf-8")
    assert committed == sdl(), (
        "schema.graphql is stale: run `hub schema export --output schema.graphql`"
    )


def test_dossier_matches_the_database(client: TestClient, demo_database: Settings) -> None:
    uscc = enterprise_with_everything(demo_database)
    answer = graphql(
        client,
        DOSSIER + "query($uscc: String!) { enterprise(uscc: $uscc) { ...Dossier } }",
        uscc=uscc,
    )
    assert "errors" not in answer
    dossier = answer["data"]["enterprise"]
    (enterprise,) = sql(demo_database, "SELECT * FROM enterprise WHERE uscc = :u", u=uscc)
    assert dossier["name"] == enterprise.name
    assert dossier["registeredOn"] == str(enterprise.registered_on)
    assert dossier["status"] == enterprise.status.upper()
    assert dossier["owner"] == {"code": "market"}

    inspections = sql(
        demo_database,
        """
        SELECT id, owner, action_code, inspected_on FROM inspection
        WHERE enterprise_id = :e ORDER BY inspected_on, id""",
        e=enterprise.id,
    )
    assert [
        (int(i["id"]), i["owner"]["code"], i["actionCode"], i["inspectedOn"])
        for i in dossier["inspections"]
    ] == [(row.id, row.owner, row.action_code, str(row.inspected_on)) for row in inspections]
    participants = sql(
        demo_database,
        """
        SELECT p.inspection_id, p.department FROM inspection_participant p
        JOIN inspection i ON i.id = p.inspection_id WHERE i.enterprise_id = :e""",
        e=enterprise.id,
    )
    assert {
        (int(i["id"]), d["code"]) for i in dossier["inspections"] for d in i["participants"]
    } == {(row.inspection_id, row.department) for row in participants}

    penalties = sql(
        demo_database,
        "SELECT case_number, amount_fen FROM penalty "
        "WHERE enterprise_id = :e ORDER BY decided_on, id",
        e=enterprise.id,
    )
    assert [(p["caseNumber"], p["amount"]) for p in dossier["penalties"]] == [
        (row.case_number, f"{row.amount_fen / 100:.2f}") for row in penalties
    ]

    acceptances = sql(
        demo_database,
        """
        SELECT r.id, a.verdict, a.owner FROM rectification r
        LEFT JOIN acceptance a ON a.rectification_id = r.id
        WHERE r.enterprise_id = :e ORDER BY r.ordered_on, r.id""",
        e=enterprise.id,
    )
    assert [
        (
            int(r["id"]),
            r["acceptance"] and (r["acceptance"]["verdict"], r["acceptance"]["owner"]["code"]),
        )
        for r in dossier["rectifications"]
    ] == [(row.id, row.verdict and (row.verdict.upper(), row.owner)) for row in acceptances]
    credit = sql(
        demo_database,
        "SELECT count(*) AS n FROM credit_record WHERE enterprise_id = :e",
        e=enterprise.id,
    )
    assert len(dossier["creditRecords"]) == credit[0].n


def test_unknown_enterprise_is_null_without_error(client: TestClient) -> None:
    answer = graphql(client, '{ enterprise(uscc: "91110000600037341L") { name } }')
    assert answer == {"data": {"enterprise": None}}


def test_lower_case_codes_find_the_enterprise(client: TestClient, demo_database: Settings) -> None:
    uscc = enterprise_with_everything(demo_database)
    answer = graphql(client, "query($u: String!) { enterprise(uscc: $u) { uscc } }", u=uscc.lower())
    assert answer == {"data": {"enterprise": {"uscc": uscc}}}


def test_date_range_filters_each_list(client: TestClient, demo_database: Settings) -> None:
    uscc = enterprise_with_everything(demo_database)
    query = """query($u: String!, $since: Date, $until: Date) { enterprise(uscc: $u) {
        inspections(since: $since, until: $until) { inspectedOn }
        all: inspections { inspectedOn }
        penalties(since: $since) { decidedOn }
        rectifications(until: $until) { orderedOn }
        creditRecords(since: $since, until: $until) { issuedOn } } }"""
    answer = graphql(client, query, u=uscc, since="2025-01-01", until="2025-12-31")
    dossier = answer["data"]["enterprise"]
    everything = [i["inspectedOn"] for i in dossier["all"]]
    assert [i["inspectedOn"] for i in dossier["inspections"]] == [
        day for day in everything if "2025-01-01" <= day <= "2025-12-31"
    ]
    assert all(p["decidedOn"] >= "2025-01-01" for p in dossier["penalties"])
    assert all(r["orderedOn"] <= "2025-12-31" for r in dossier["rectifications"])
    assert all("2025-01-01" <= c["issuedOn"] <= "2025-12-31" for c in dossier["creditRecords"])


def test_pages_walk_every_enterprise_once(client: TestClient) -> None:
    query = """query($after: String) { enterprises(first: 25, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { uscc } } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = graphql(client, query, after=after)["data"]["enterprises"]
        assert page["totalCount"] == DEMO_ENTERPRISES
        seen += [edge["node"]["uscc"] for edge in page["edges"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen)
    assert len(set(seen)) == DEMO_ENTERPRISES


def test_filters_combine(client: TestClient, demo_database: Settings) -> None:
    (sample,) = sql(
        demo_database, "SELECT region, industry, name FROM enterprise ORDER BY uscc LIMIT 1"
    )
    expected = sql(
        demo_database,
        "SELECT uscc FROM enterprise WHERE region = :r AND industry = :i ORDER BY uscc",
        r=sample.region,
        i=sample.industry,
    )
    query = """query($f: EnterpriseFilter) { enterprises(filter: $f, first: 100) {
        totalCount edges { node { uscc region industry } } } }"""
    answer = graphql(client, query, f={"region": sample.region, "industry": sample.industry})
    page = answer["data"]["enterprises"]
    assert [e["node"]["uscc"] for e in page["edges"]] == [row.uscc for row in expected]
    assert page["totalCount"] == len(expected)

    name_part = sample.name[2:4]
    answer = graphql(client, query, f={"nameContains": name_part})
    names = sql(
        demo_database,
        "SELECT uscc FROM enterprise WHERE name LIKE :n ORDER BY uscc",
        n=f"%{name_part}%",
    )
    assert [e["node"]["uscc"] for e in answer["data"]["enterprises"]["edges"]] == [
        r.uscc for r in names
    ]

    answer = graphql(client, query, f={"nameContains": "%"})
    assert answer["data"]["enterprises"]["edges"] == []  # wildcards are matched literally


def test_departments_list_all_ten(client: TestClient) -> None:
    answer = graphql(client, "{ departments { code nameZh nameEn } }")
    departments = answer["data"]["departments"]
    assert [d["code"] for d in departments] == sorted(
        [
            "agriculture",
            "culture",
            "ecology",
            "emergency",
            "enforcement",
            "fire",
            "health",
            "market",
            "planning",
            "transport",
        ]
    )
    assert {
        "code": "ecology",
        "nameZh": "生态环境局",
        "nameEn": "Ecology and Environment",
    } in departments


def test_statements_do_not_grow_with_rows(
    client: TestClient, demo_database: Settings, sql_statements: StatementCounter
) -> None:
    uscc = enterprise_with_everything(demo_database)
    graphql(client, "{ departments { code } }")  # departments and grants: read once, cached

    def reads(query: str, **variables: Any) -> tuple[dict[str, Any], list[str]]:
        """The answer, and the statements the request read with; not its record's (how many
        of those depends on whether others appended since: see AccessLog)."""
        before = len(sql_statements)
        answer = graphql(client, query, **variables)
        sent = sql_statements.statements[before:]
        assert sum("INSERT INTO access_record" in s for s in sent) == 1
        return answer, [s for s in sent if "access_record" not in s and "advisory" not in s]

    one, for_one = reads(
        DOSSIER + "query($u: String!) { enterprise(uscc: $u) { ...Dossier } }", u=uscc
    )
    assert one["data"]["enterprise"]["rectifications"]
    many, for_fifty = reads(
        DOSSIER + "{ enterprises(first: 50) { edges { node { ...Dossier } } } }"
    )
    assert len(many["data"]["enterprises"]["edges"]) == 50
    # the caller's client with the grant version (grants themselves and departments are read
    # when their version changes, here by an earlier request), enterprises, and one per
    # relation: credit records, repairs, inspections, participants, findings, penalties,
    # rectifications, their inspections, their penalties, assistants, acceptances.
    assert len(for_one) == len(for_fifty) == 13, for_one
