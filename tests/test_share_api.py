"""Conditional sharing through GraphQL, as departments and auditors meet it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import Role
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database, graphql


class Hubs:
    """Two hub processes' apps on one database, with the clients of a few departments."""

    def __init__(self, one: TestClient, two: TestClient, settings: Settings,
                 tokens: dict[str, str]) -> None:  # fmt: skip
        self.one, self.two, self.settings, self.tokens = one, two, settings, tokens

    def ask(self, who: str, query: str, purpose: str | None = None, *, via: int = 1,
            **variables: Any) -> dict[str, Any]:  # fmt: skip
        client = self.one if via == 1 else self.two
        return graphql(client, query, self.tokens[who], purpose, **variables)

    def sql(self, statement: str, **parameters: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = create_engine(self.settings)
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), parameters)
                rows = list(result.all()) if result.returns_rows else []
            await engine.dispose()
            return rows

        return asyncio.run(run())


@pytest.fixture(params=BACKENDS)
def hubs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hubs]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)

        async def prepare() -> dict[str, str]:
            engine = create_engine(settings)
            await load_demo(engine, enterprises=80, seed=3)
            tokens = {}
            for label, department, role in (
                ("market", "market", Role.DEPARTMENT), ("ecology", "ecology", Role.DEPARTMENT),
                ("fire", "fire", Role.DEPARTMENT), ("admin", "market", Role.ADMIN),
                ("auditor", "market", Role.AUDITOR),
            ):  # fmt: skip
                new = await create_client(engine, department=department, name=f"{label} system",
                                          role=role)  # fmt: skip
                tokens[label] = new.token
            await engine.dispose()
            return tokens

        tokens = asyncio.run(prepare())
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            yield Hubs(one, two, settings, tokens)


REQUEST = """mutation($regions: [String!]) { requestShare(owner: "ecology",
  fields: ["penalty-grounds"], purpose: "law-enforcement",
  purposeDetail: "核查企业环境违法罚款执行情况", legalBasis: "《行政处罚法》第二十六条",
  scope: {regions: $regions}, wantedFrom: "2026-01-01", wantedUntil: "2030-12-31") {
  id fields status overdue dueOn requester { code } owner { code } scope { allEnterprises regions } } }"""
DECIDE = """mutation($id: ID!, $approve: Boolean!, $reason: String, $regions: [String!]) {
  decideShareRequest(id: $id, approve: $approve, reason: $reason, scope: {regions: $regions}) {
  id status reason grantId } }"""
AMOUNTS = """query($u: String!) { enterprise(uscc: $u) { penalties { owner { code } amount } } }"""
LAW = "law-enforcement: 核查罚款执行情况"


def ecology_penalties(hubs: Hubs) -> list[tuple[str, str]]:
    """Enterprises (USCC, district) with ecology penalties, in two districts at least."""
    rows = hubs.sql(
        "SELECT DISTINCT e.uscc, e.region FROM penalty p JOIN enterprise e ON e.id = p.enterprise_id "
        "WHERE p.owner = 'ecology' ORDER BY e.uscc"
    )
    return [(row[0], row[1]) for row in rows]


def amount_errors(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["extensions"] for e in answer.get("errors", []) if e["path"][-1] == "amount"
        and e["extensions"]["owner"] == "ecology"
    ]  # fmt: skip


def ecology_amounts(answer: dict[str, Any]) -> list[Any]:
    return [p["amount"] for p in answer["data"]["enterprise"]["penalties"]
            if p["owner"]["code"] == "ecology"]  # fmt: skip


def test_the_whole_story_of_a_grant(hubs: Hubs) -> None:
    enterprises = ecology_penalties(hubs)
    inside, region = enterprises[0]
    outside = next(uscc for uscc, other in enterprises if other != region)

    filed = hubs.ask("market", REQUEST)["data"]["requestShare"]
    assert filed["fields"] == ["Penalty.amount"]  # the group's conditional field
    assert (filed["status"], filed["overdue"], filed["scope"]["allEnterprises"]) == (
        "PENDING",
        False,
        True,
    )
    # Before approval: withheld, saying there is no grant; without a purpose, asking for one.
    before = hubs.ask("market", AMOUNTS, LAW, u=inside)
    assert set(ecology_amounts(before)) == {None}
    assert {e["code"] for e in amount_errors(before)} == {"FORBIDDEN"}
    assert amount_errors(before)[0]["reason"].startswith("no grant: Penalty.amount of ecology's")
    bare = hubs.ask("market", AMOUNTS, u=inside)
    assert {e["code"] for e in amount_errors(bare)} == {"PURPOSE_REQUIRED"}

    # Only ecology decides; it approves for one district only.
    # To a third department, a request it has no part in reads exactly like none at all.
    stranger = hubs.ask("fire", DECIDE, id=filed["id"], approve=True)
    nothing = hubs.ask("fire", DECIDE, id="999999", approve=True)
    assert stranger["errors"][0]["extensions"] == nothing["errors"][0]["extensions"] == {
        "code": "NOT_FOUND", "argument": "id"}  # fmt: skip
    assert stranger["errors"][0]["message"] == f"no share request {filed['id']}"
    assert nothing["errors"][0]["message"] == "no share request 999999"
    requester = hubs.ask("market", DECIDE, id=filed["id"], approve=True)
    assert requester["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    approved = hubs.ask("ecology", DECIDE, id=filed["id"], approve=True, regions=[region],
                        via=2)["data"]["decideShareRequest"]  # fmt: skip
    assert approved["status"] == "APPROVED"
    grant = approved["grantId"]

    # The other process obeys at once: in the district, with the purpose, the amounts come.
    served = hubs.ask("market", AMOUNTS, LAW, u=inside)
    assert amount_errors(served) == []  # other departments' amounts need grants of their own
    assert all(amount is not None for amount in ecology_amounts(served))
    out_of_scope = amount_errors(hubs.ask("market", AMOUNTS, LAW, u=outside))
    assert out_of_scope[0]["reason"].startswith("out of scope: enterprise ")
    wrong = amount_errors(hubs.ask("market", AMOUNTS, "credit-supervision: 信用评价", u=inside))
    assert wrong[0]["reason"].startswith(
        "wrong purpose: grants of Penalty.amount are for law-enforcement"
    )
    access = hubs.ask(
        "market",
        """{ myAccess(owner: "ecology", type: "Penalty") {
        field decision grants condition } }""",
    )["data"]["myAccess"]
    (amount,) = [a for a in access if a["field"] == "Penalty.amount"]
    assert amount["decision"] == "CONDITIONAL"
    assert amount["grants"] == [grant]
    assert amount["condition"].startswith(f"grant {grant}: for law-enforcement, {region}, until")

    # Revoked in one process, withheld in the other at its next request.
    revoked = hubs.ask(
        "ecology",
        """mutation($id: ID!) { revokeGrant(id: $id,
        reason: "案件已办结") { state revokeReason } }""",
        id=grant,
        via=2,
    )
    assert revoked["data"]["revokeGrant"] == {"state": "revoked", "revokeReason": "案件已办结"}
    after = amount_errors(hubs.ask("market", AMOUNTS, LAW, u=inside))
    assert after[0]["reason"].startswith(f"revoked: grant {grant} was revoked on ")
    assert after[0]["reason"].endswith("(案件已办结)")

    # Auditors see the whole story: the request, the decision, the reads under the grant,
    # the revocation, each with the state before and after.
    log = hubs.ask(
        "auditor",
        """{ accessLog(first: 100) { edges { node { department
        operationType served { type fields grants { field grant } }
        written { type change ids before after } } } } }""",
    )["data"]["accessLog"]["edges"]
    nodes = [edge["node"] for edge in reversed(log)]
    changes = [(w["type"], w["change"]) for n in nodes for w in n["written"]]
    assert changes == [
        ("ShareRequest", "filed"), ("ShareRequest", "approved"), ("Grant", "approved"),
        ("Grant", "revoked"),
    ]  # fmt: skip
    (revocation,) = [w for n in nodes for w in n["written"] if w["change"] == "revoked"]
    assert (revocation["before"]["revoked_at"], revocation["after"]["revoke_reason"]) == (
        None,
        "案件已办结",
    )
    under_grant = [g for n in nodes for s in n["served"] for g in s["grants"]]
    assert under_grant
    assert set(map(str, (g["grant"] for g in under_grant))) == {grant}


def test_requests_refused_at_once_say_why(hubs: Hubs) -> None:
    for fields, message in (
        (["CreditRepair.opinion"], "CreditRepair.opinion is not shared"),
        (["Penalty.amounts"], "unknown field 'Penalty.amounts'"),
        (["Penalty.caseNumber"], "every field asked for is shared without conditions already"),
    ):
        answer = hubs.ask("market", """mutation($fields: [String!]!) { requestShare(
            owner: "ecology", fields: $fields, purpose: "law-enforcement", purposeDetail: "x",
            legalBasis: "y", wantedFrom: "2026-01-01", wantedUntil: "2030-01-01") { id } }""",
            fields=fields)  # fmt: skip
        (error,) = answer["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert message in error["message"], error["message"]
    # Fire may never receive penalty grounds: no grant could change that.
    fire = hubs.ask("fire", REQUEST)["errors"][0]
    assert "cannot reach fire even with a grant" in fire["message"]


def test_a_refusal_needs_a_reason_and_overdue_requests_reach_the_admin(hubs: Hubs) -> None:
    first = hubs.ask("market", REQUEST)["data"]["requestShare"]["id"]
    second = hubs.ask("market", REQUEST, regions=["西湖区"])["data"]["requestShare"]["id"]
    silent = hubs.ask("ecology", DECIDE, id=first, approve=False)
    assert silent["errors"][0]["message"] == "state the reason for the refusal"
    refused = hubs.ask("ecology", DECIDE, id=first, approve=False, reason="与执法职责无关")
    assert refused["data"]["decideShareRequest"] == {
        "id": first, "status": "REFUSED", "reason": "与执法职责无关", "grantId": None,
    }  # fmt: skip
    hubs.sql("UPDATE share_request SET due_on = '2026-01-05' WHERE id = :id", id=int(second))
    overdue = hubs.ask(
        "admin",
        """{ shareRequests(filter: {overdue: true}) {
        id overdue status requester { code } owner { code } } }""",
    )["data"]["shareRequests"]
    assert overdue == [{"id": second, "overdue": True, "status": "PENDING",
                        "requester": {"code": "market"}, "owner": {"code": "ecology"}}]  # fmt: skip
    # A department sees its own requests, as requester or owner, and nobody else's.
    assert hubs.ask("fire", "{ shareRequests { id } }")["data"]["shareRequests"] == []
    mine = hubs.ask("ecology", "{ shareRequests { id } }")["data"]["shareRequests"]
    assert [r["id"] for r in mine] == [second, first, "1"]  # "1": the demo data's, approved
