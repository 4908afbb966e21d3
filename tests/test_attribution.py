"""Attribution comes from the data: every record read is filed under its own enterprise.

Aliases, fragments and links cannot move a read to another enterprise (or to none), and a
record moved to another enterprise is decided and filed as that enterprise's on every path.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from hub.audit.served import denials, groups
from hub.cli import app as cli
from hub.db import create_engine
from hub.publishing import readers_of
from hub.settings import Settings
from tests.conftest import Hub, graphql
from tests.test_publish_api import feed_end

PURPOSE = "rectification-check: 核查整改验收结果"  # the demo data's grant to market

# The same read, with an alias at each level in turn, everywhere, and through fragments.
PLAIN = (
    "{ enterprises(first: 40) { edges { node { uscc "
    "creditRecords { id level } rectifications { id acceptance { id opinion } } } } } }"
)
ALIASED = [
    PLAIN,
    PLAIN.replace("{ enterprises(", "{ e: enterprises("),
    PLAIN.replace("{ edges {", "{ x: edges {"),
    PLAIN.replace("{ node {", "{ n: node {"),
    PLAIN.replace(" uscc ", " u: uscc "),
    PLAIN.replace("creditRecords {", "c: creditRecords {"),
    PLAIN.replace("rectifications {", "r: rectifications {"),
    PLAIN.replace("acceptance {", "a: acceptance {"),
    PLAIN.replace("opinion", "o: opinion"),
    "{ e: enterprises(first: 40) { x: edges { n: node { u: uscc c: creditRecords { i: id l: level }"
    " r: rectifications { i: id a: acceptance { i: id o: opinion } } } } } }",
    "{ e: enterprises(first: 40) { x: edges { n: node { ...Dossier } } } }"
    " fragment Dossier on Enterprise { c: creditRecords { ... on CreditRecord { l: level } }"
    " r: rectifications { a: acceptance { ...Verdict } } }"
    " fragment Verdict on Acceptance { i: id o: opinion }",
]


def sql(settings: Settings, statement: str, **parameters: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(statement), parameters)).all()
        await engine.dispose()
        return list(rows)

    return asyncio.run(run())


def last_record(settings: Settings) -> dict[str, Any]:
    (row,) = sql(settings, "SELECT * FROM access_record ORDER BY seq DESC LIMIT 1")
    return dict(row._mapping)


def enterprise_of(settings: Settings, type_name: str) -> dict[str, str]:
    """Each record's enterprise as stored: id -> USCC."""
    if type_name == "Acceptance":
        statement = (
            "SELECT a.id, e.uscc FROM acceptance a JOIN rectification r ON r.id = "
            "a.rectification_id JOIN enterprise e ON e.id = r.enterprise_id"
        )
    else:
        table = {"CreditRecord": "credit_record", "Rectification": "rectification"}[type_name]
        statement = (
            f"SELECT t.id, e.uscc FROM {table} t JOIN enterprise e ON e.id = t.enterprise_id"
        )
    return {str(row[0]): row[1] for row in sql(settings, statement)}


@pytest.mark.parametrize("query", ALIASED)
def test_every_record_read_is_filed_under_its_own_enterprise_whatever_the_aliases(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str], query: str
) -> None:
    answer = graphql(hub, query, tokens["market"], PURPOSE)
    # emergency's opinions need a grant of their own
    assert {e["extensions"]["code"] for e in answer.get("errors", [])} <= {"FORBIDDEN"}
    record = last_record(demo_database)
    served = groups(record)
    assert served, record
    filed: dict[str, set[tuple[str, str]]] = {}
    for group in served:
        assert group["enterprise"] != "", group
        for record_id in group["ids"]:
            filed.setdefault(group["type"], set()).add((record_id, group["enterprise"]))
    for type_name in ("CreditRecord", "Acceptance"):
        stored = enterprise_of(demo_database, type_name)
        assert filed[type_name], type_name
        assert filed[type_name] == {(i, stored[i]) for i, _ in filed[type_name]}
    opinions = {
        (group["enterprise"], tuple(group["fields"]))
        for group in served
        if group["type"] == "Acceptance" and "opinion" in group["fields"]
    }
    assert opinions, "the demo grant serves ecology's acceptance opinions"

    # Every way an auditor looks finds the read, under the enterprise it belongs to.
    uscc = next(iter(opinions))[0]
    seq = record["seq"]
    found = graphql(
        hub,
        """query($u: String!) { accessesTo(uscc: $u, first: 5) { seq fields }
             accessLog(filter: {enterprise: $u, field: "Acceptance.opinion"}, first: 5) {
               edges { node { seq } } } }""",
        tokens["auditor"],
        u=uscc,
    )["data"]
    assert {"seq": seq, "fields": sorted(found["accessesTo"][0]["fields"])} in [
        {"seq": a["seq"], "fields": sorted(a["fields"])} for a in found["accessesTo"]
    ]
    assert "Acceptance.opinion" in found["accessesTo"][0]["fields"]
    assert seq in [edge["node"]["seq"] for edge in found["accessLog"]["edges"]]
    result = CliRunner().invoke(
        cli,
        ["audit", "search", "--enterprise", uscc, "--field", "Acceptance.opinion", "--limit", "3"],
        env={"HUB_DATABASE_URL": demo_database.database_url, "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert f"│ {seq} " in result.output

    # The credit-repair notice finds market among the readers of another owner's record.
    owners = {str(r.id): r.owner for r in sql(demo_database, "SELECT id, owner FROM credit_record")}
    credit_id, credit_uscc = min(
        (i, uscc) for i, uscc in filed["CreditRecord"] if owners[i] != "market"
    )

    async def readers() -> list[str]:
        engine = create_engine(demo_database)
        async with engine.connect() as connection:
            found = await readers_of(
                connection, "CreditRecord", int(credit_id), credit_uscc, owners[credit_id]
            )
        await engine.dispose()
        return found

    assert "market" in asyncio.run(readers())


GRANT_REQUEST = """mutation($u: [String!]) { requestShare(owner: "ecology",
  fields: ["Penalty.amount"], purpose: "law-enforcement", purposeDetail: "核查罚款执行情况",
  legalBasis: "《行政处罚法》第二十六条", scope: {usccs: $u}, wantedFrom: "2026-01-01",
  wantedUntil: "2030-12-31") { id } }"""
APPROVE = """mutation($id: ID!) { decideShareRequest(id: $id, approve: true) { grantId } }"""
LAW = "law-enforcement: 核查罚款执行情况"


def test_a_grant_for_one_enterprise_never_serves_a_record_moved_to_another(writable: Hub) -> None:
    # An ecology penalty of enterprise A with a rectification of A that links to it.
    (row,) = writable.sql(
        "SELECT p.id, e.uscc, r.id FROM penalty p "
        "JOIN enterprise e ON e.id = p.enterprise_id "
        "JOIN rectification r ON r.penalty_id = p.id AND r.enterprise_id = p.enterprise_id "
        "WHERE p.owner = 'ecology' AND p.amount_fen > 0 ORDER BY p.id LIMIT 1"
    )
    penalty_id, first_uscc, rectification_id = row
    (other,) = writable.sql(
        "SELECT uscc FROM enterprise WHERE uscc <> :u ORDER BY uscc LIMIT 1", u=first_uscc
    )
    second_uscc = other[0]
    request = writable.ask("market", GRANT_REQUEST, u=[first_uscc])["data"]["requestShare"]
    writable.ask("ecology", APPROVE, id=request["id"])
    cursor = feed_end(writable, "market")

    link = """query($u: String!) { enterprise(uscc: $u) { rectifications { id
      p: penalty { id owner { code } m: amount } } } }"""
    before = writable.ask("market", link, LAW, u=first_uscc)
    (linked,) = [
        r["p"] for r in before["data"]["enterprise"]["rectifications"]
        if r["id"] == str(rectification_id)
    ]  # fmt: skip
    assert linked["m"] is not None  # the grant opens A's penalty amounts

    # Ecology corrects the penalty: it is about B, with another amount.
    (data,) = writable.sql(
        "SELECT data FROM record_version WHERE kind = 'Penalty' AND record_id = :i "
        "ORDER BY version DESC LIMIT 1",
        i=penalty_id,
    )
    published = json.loads(data[0])
    corrected = {**published, "uscc": second_uscc, "amount": "777.00",
                 "status": published["status"].upper()}  # fmt: skip
    corrected.pop("inspectionSourceId", None)  # that inspection is about A
    moved = writable.ask(
        "ecology",
        "mutation($r: [PenaltyInput!]!) { publishPenalties(records: $r) { updated } }",
        r=[corrected],
    )
    assert moved == {"data": {"publishPenalties": {"updated": 1}}}, moved

    # Through A's rectification, the feed's old and new versions, and B's dossier: withheld,
    # and filed under B.
    paths = {
        "link": (link, {"u": first_uscc}),
        "feed": (
            """query($after: String) { changes(after: $after, kinds: [PENALTY]) { changes {
                 uscc v: record { id ... on Penalty { m: amount } } } } }""",
            {"after": cursor},
        ),
        "dossier": (
            "query($u: String!) { enterprise(uscc: $u) { penalties { id m: amount } } }",
            {"u": second_uscc},
        ),
    }
    for path, (query, variables) in paths.items():
        answer = writable.ask("market", query, LAW, **variables)
        assert "777" not in json.dumps(answer), path
        record = last_record(writable.settings)
        served = [g for g in groups(record) if g["type"] == "Penalty"
                  and str(penalty_id) in g["ids"]]  # fmt: skip
        assert served, (path, record["served"])
        assert {g["enterprise"] for g in served} == {second_uscc}, path
        assert all("amount" not in g["fields"] for g in served), path
        denied = [d for d in denials(record) if d["id"] == str(penalty_id)]
        assert denied, path
        assert {(d["enterprise"], d["field"]) for d in denied} == {(second_uscc, "Penalty.amount")}
        assert denied[0]["reason"].startswith("out of scope"), denied
    history = writable.ask(
        "market",
        "query($u: String!) { enterprise(uscc: $u) { penalties { id history { version } } } }",
        LAW,
        u=second_uscc,
    )
    assert "errors" not in history
