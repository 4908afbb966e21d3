"""Inspection plans (综合查一次) on SQLite and PostgreSQL: published like every record
(versions, problems by field, retraction, import), read a page at a time and as joint
inspection suggestions under the policy, in the access record and in the change feed; and a
department's plan suggested to another by the installed `hub serve`, over HTTP with gql.

Months are counted from today in China, as the hub checks them: the plans written here are
five to seven months ahead, where the demo data (two months after its reference day) has
none."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from sqlalchemy import text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from hub.app import create_app
from hub.cli import app
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.plans import open_plans, this_month
from hub.policy import load_policy
from hub.records import months_after
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import BACKENDS, UNTHROTTLED, Hub, fresh_database, graphql
from tests.test_publish_api import feed_end
from tests.test_serve import demo_with_clients, serving

NOW = this_month()
M5, M6, M7 = (months_after(NOW, n) for n in (5, 6, 7))

PUBLISH = """mutation($records: [InspectionPlanInput!]!, $dryRun: Boolean! = false) {
  publishInspectionPlans(records: $records, dryRun: $dryRun) {
    dryRun created updated unchanged retracted records { index kind sourceId version change uscc }
  } }"""
RETRACT = """mutation($ids: [String!]!) {
  retractRecords(kind: INSPECTION_PLAN, sourceIds: $ids, reason: "录入有误，计划作废") {
    retracted records { sourceId version change } } }"""
PLANS = """query($filter: InspectionPlanFilter, $first: Int! = 20, $after: String) {
  inspectionPlans(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { sourceId owner { code } uscc month subject kind status version } } } }"""
SUGGESTIONS = """query($month: String, $first: Int! = 20, $after: String) {
  jointInspectionSuggestions(month: $month, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    suggestions { month enterprise { uscc name } plan { sourceId owner { code } subject }
      others { sourceId owner { code } subject kind } departments { code } } } }"""
LAST_RECORD = """{ accessLog(first: 1) { edges { node { department operationType
  enterprises served { enterprise type fields ids } denied { enterprise type id owner field }
  written { enterprise type change ids } } } } }"""


def plan(source_id: str, uscc: str, month: str = M5, **changes: Any) -> dict[str, Any]:
    return {"sourceId": source_id, "uscc": uscc, "month": month, "subject": "消防安全",
            "kind": "ROUTINE", "status": "PLANNED", **changes}  # fmt: skip


def active(hub: Hub, count: int) -> list[tuple[str, str, str]]:
    """The first ``count`` active enterprises: USCC, name and district."""
    rows = hub.sql(
        "SELECT uscc, name, region FROM enterprise WHERE status = 'active' ORDER BY id LIMIT :n",
        n=count,
    )
    return [(row[0], row[1], row[2]) for row in rows]


def publish(hub: Hub, department: str, *records: dict[str, Any]) -> dict[str, Any]:
    answer = hub.ask(department, PUBLISH, records=list(records))
    assert "errors" not in answer, answer
    published: dict[str, Any] = answer["data"]["publishInspectionPlans"]
    return published


def ids(hub: Hub, *source_ids: str) -> list[str]:
    found = dict(hub.sql("SELECT source_id, id FROM inspection_plan"))
    return [str(found[source_id]) for source_id in source_ids]


def last_record(hub: Hub) -> dict[str, Any]:
    (edge,) = hub.ask("auditor", LAST_RECORD)["data"]["accessLog"]["edges"]
    node: dict[str, Any] = edge["node"]
    node["served"] = sorted(node["served"], key=json.dumps)
    return node


# --- publishing ---------------------------------------------------------------------------


def test_a_plan_is_created_unchanged_updated_retracted_and_reinstated(writable: Hub) -> None:
    hub = writable
    ((uscc, _, _),) = active(hub, 1)
    first = plan("FIRE-PLAN-T1", uscc)

    def outcome(answer: dict[str, Any]) -> tuple[Any, ...]:
        (record,) = answer["records"]
        return (
            answer["created"],
            answer["updated"],
            answer["unchanged"],
            record["version"],
            (record["change"]),
        )

    assert outcome(publish(hub, "fire", first)) == (1, 0, 0, 1, "CREATED")
    assert outcome(publish(hub, "fire", first)) == (0, 0, 1, 1, "UNCHANGED")
    changed = first | {"subject": "消防安全（电气线路）", "kind": "JOINT"}
    assert outcome(publish(hub, "fire", changed)) == (0, 1, 0, 2, "UPDATED")
    retracted = hub.ask("fire", RETRACT, ids=["FIRE-PLAN-T1"])["data"]["retractRecords"]
    assert retracted == {
        "retracted": 1,
        "records": [{"sourceId": "FIRE-PLAN-T1", "version": 3, "change": "RETRACTED"}],
    }
    listed = hub.ask("ecology", PLANS, filter={"uscc": uscc, "from": M5})["data"]
    assert listed["inspectionPlans"]["edges"] == []
    assert outcome(publish(hub, "fire", changed)) == (0, 1, 0, 4, "UPDATED")  # reinstated
    history = hub.ask("ecology", """query($uscc: String!, $from: String!) {
      inspectionPlans(filter: {uscc: $uscc, from: $from}) { edges { node {
        sourceId version history { version change publisher { code } reason changedFields }
      } } } }""", uscc=uscc, **{"from": M5})  # fmt: skip
    assert history["data"]["inspectionPlans"]["edges"] == [{"node": {
        "sourceId": "FIRE-PLAN-T1", "version": 4, "history": [
            {"version": 1, "change": "CREATED", "publisher": {"code": "fire"}, "reason": None,
             "changedFields": []},
            {"version": 2, "change": "UPDATED", "publisher": {"code": "fire"}, "reason": None,
             "changedFields": ["kind", "subject"]},
            {"version": 3, "change": "RETRACTED", "publisher": {"code": "fire"},
             "reason": "录入有误，计划作废", "changedFields": []},
            {"version": 4, "change": "UPDATED", "publisher": {"code": "fire"}, "reason": None,
             "changedFields": []},
        ]}}]  # fmt: skip
    (stored,) = hub.sql(
        "SELECT month, subject, kind, status, inspection_id, version, retracted FROM "
        "inspection_plan WHERE source_id = 'FIRE-PLAN-T1'"
    )
    assert tuple(stored) == (M5, "消防安全（电气线路）", "joint", "planned", None, 4, False)
    (data,) = hub.sql("SELECT data FROM record_version WHERE kind = 'InspectionPlan' AND "
                      "source_id = 'FIRE-PLAN-T1' AND version = 4")[0]  # fmt: skip
    assert json.loads(data) == {
        "sourceId": "FIRE-PLAN-T1", "uscc": uscc, "month": M5, "subject": "消防安全（电气线路）",
        "kind": "joint", "status": "planned", "inspectionSourceId": None,
    }  # fmt: skip


def test_plans_that_cannot_be_published_name_every_problem_and_nothing_is_written(
    writable: Hub,
) -> None:
    hub = writable
    ((e1, _, _), (e2, _, _)) = active(hub, 2)
    (inspection, elsewhere) = hub.sql(
        "SELECT i.source_id, e.uscc FROM inspection i JOIN enterprise e ON e.id = "
        "i.enterprise_id WHERE i.owner = 'fire' AND e.uscc <> :u ORDER BY i.id LIMIT 1",
        u=e1,
    )[0]
    past, far = months_after(NOW, -2), months_after(NOW, 13)
    records = [
        plan("FIRE-PLAN-B0", e1),  # good, but in a batch that is not
        plan("FIRE-PLAN-B1", e1, month="2026-13"),
        plan("FIRE-PLAN-B2", e1, month=past),
        plan("FIRE-PLAN-B3", e1, month=far),
        plan("FIRE-PLAN-B4", e1, subject="   "),
        plan("FIRE-PLAN-B5", e1, subject="查" * 101),
        plan("FIRE-PLAN-B6", elsewhere, inspectionSourceId=inspection),
        plan("FIRE-PLAN-B7", e1, status="DONE", inspectionSourceId="FIRE-INS-404"),
        plan("FIRE-PLAN-B8", e1, status="DONE", inspectionSourceId=inspection),
        plan("FIRE-PLAN-B0", e2),
        plan("FIRE-PLAN-B9", "91110000600037341L"),
    ]
    before = hub.sql("SELECT count(*) FROM inspection_plan")[0][0]
    answer = hub.ask("fire", PUBLISH, records=records)
    assert answer["data"] is None
    (error,) = answer["errors"]
    problems = [(p["index"], p["sourceId"], p["field"], p["message"])
                for p in error["extensions"]["problems"]]  # fmt: skip
    earliest = months_after(NOW, -1)
    assert problems == [
        (1, "FIRE-PLAN-B1", "month", "'2026-13' is not a month; write it as YYYY-MM, e.g. 2026-12"),
        (2, "FIRE-PLAN-B2", "month", f"{past} is past: plans are published from last month "
         f"({earliest}) on; retract a plan that was never carried out"),
        (3, "FIRE-PLAN-B3", "month",
         f"{far} is more than 12 months ahead (after {months_after(NOW, 12)})"),
        (4, "FIRE-PLAN-B4", "subject", "must not be empty"),
        (5, "FIRE-PLAN-B5", "subject", "must be at most 100 characters, not 101"),
        (6, "FIRE-PLAN-B6", "inspectionSourceId", "names the inspection that carried the plan "
         "out: only a plan whose status is done has one"),
        (7, "FIRE-PLAN-B7", "inspectionSourceId",
         "fire has no Inspection 'FIRE-INS-404'; publish it first"),
        (8, "FIRE-PLAN-B8", "inspectionSourceId",
         f"Inspection {inspection!r} is about enterprise {elsewhere}, not {e1}"),
        (9, "FIRE-PLAN-B0", "sourceId", "repeats records[0] of this batch"),
        (10, "FIRE-PLAN-B9", "uscc", "no enterprise 91110000600037341L is registered in the "
         "hub; check the code, or wait until market regulation registers it"),
    ]  # fmt: skip
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("10 of 11 records cannot be published, so none was: ")
    assert hub.sql("SELECT count(*) FROM inspection_plan")[0][0] == before
    # Last month and twelve months ahead are the bounds, and both are plausible.
    edges = publish(hub, "fire", plan("FIRE-PLAN-E1", e1, month=earliest, status="CANCELLED"),
                    plan("FIRE-PLAN-E2", e1, month=months_after(NOW, 12)))  # fmt: skip
    assert edges["created"] == 2


def test_a_done_plan_names_the_inspection_that_carried_it_out(writable: Hub) -> None:
    hub = writable
    (inspection, uscc) = hub.sql(
        "SELECT i.source_id, e.uscc FROM inspection i JOIN enterprise e ON e.id = "
        "i.enterprise_id WHERE i.owner = 'fire' ORDER BY i.id LIMIT 1"
    )[0]
    month = months_after(NOW, -1)  # carried out last month, marked done now
    publish(hub, "fire", plan("FIRE-PLAN-D1", uscc, month=month, status="DONE",
                              inspectionSourceId=inspection))  # fmt: skip
    answer = hub.ask("market", """query($u: String!, $m: String!) {
      inspectionPlans(filter: {uscc: $u, from: $m, until: $m, owners: ["fire"]}) {
        edges { node { sourceId status inspection { sourceId owner { code } } } } } }""",
                     u=uscc, m=month)  # fmt: skip
    edges = answer["data"]["inspectionPlans"]["edges"]
    assert {
        "node": {
            "sourceId": "FIRE-PLAN-D1",
            "status": "DONE",
            "inspection": {"sourceId": inspection, "owner": {"code": "fire"}},
        }
    } in edges
    # A plan put back to PLANNED cannot keep the inspection.
    answer = hub.ask("fire", PUBLISH, records=[plan("FIRE-PLAN-D1", uscc, month=month,
                                                    inspectionSourceId=inspection)])  # fmt: skip
    assert answer["errors"][0]["extensions"]["problems"][0]["field"] == "inspectionSourceId"


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_plans_are_imported_from_ndjson_with_bad_lines_set_aside(
    empty_database: Settings, tmp_path: Path
) -> None:
    settings = empty_database
    upgrade(settings)

    async def prepare() -> list[str]:
        engine = create_engine(settings)
        await load_demo(engine, enterprises=20, seed=5)
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT uscc FROM enterprise ORDER BY id"))
            found = [row[0] for row in rows]
        await engine.dispose()
        return found

    e1, e2, *_ = asyncio.run(prepare())
    path = tmp_path / "plans.ndjson"
    lines = [
        {"sourceId": "ECO-PLAN-I1", "uscc": e1, "month": M5, "subject": "废气治理",
         "kind": "random", "status": "planned"},
        {"sourceId": "ECO-PLAN-I2", "uscc": e2, "month": M6, "subject": "危险废物",
         "kind": "CAMPAIGN", "status": "PLANNED"},
        {"sourceId": "ECO-PLAN-I3", "uscc": e1, "month": M5, "subject": "废水排放",
         "kind": "surprise", "status": "postponed"},
        {"sourceId": "ECO-PLAN-I4", "uscc": e1, "month": "12/2027", "subject": "废\x07气",
         "kind": "joint", "status": "planned"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    report = tmp_path / "rejected.ndjson"
    result = CliRunner().invoke(
        app, ["import", str(path), "--department", "ecology", "--kind", "inspectionPlans",
              "--report", str(report)],
        env={"HUB_DATABASE_URL": settings.database_url, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert [json.loads(line) for line in report.read_text().splitlines()] == [
        {"line": 3, "kind": "inspectionPlans", "sourceId": "ECO-PLAN-I3", "field": "kind",
         "message": "'surprise' is not one of routine, random, joint, campaign"},
        {"line": 3, "kind": "inspectionPlans", "sourceId": "ECO-PLAN-I3", "field": "status",
         "message": "'postponed' is not one of planned, done, cancelled"},
        {"line": 4, "kind": "inspectionPlans", "sourceId": "ECO-PLAN-I4", "field": "month",
         "message": "'12/2027' is not a month; write it as YYYY-MM, e.g. 2026-12"},
        {"line": 4, "kind": "inspectionPlans", "sourceId": "ECO-PLAN-I4", "field": "subject",
         "message": "must not contain control characters (U+0007 at position 2)"},
    ]  # fmt: skip

    async def stored() -> list[tuple[Any, ...]]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT p.source_id, p.owner, e.uscc, p.month, p.subject, p.kind, p.status, "
                "v.version FROM inspection_plan p JOIN enterprise e ON e.id = "
                "p.enterprise_id JOIN record_version v ON v.kind = 'InspectionPlan' AND "
                "v.record_id = p.id WHERE p.source_id LIKE 'ECO-PLAN-I%' ORDER BY p.source_id"
            ))  # fmt: skip
            found = [tuple(row) for row in rows]
        await engine.dispose()
        return found

    assert asyncio.run(stored()) == [
        ("ECO-PLAN-I1", "ecology", e1, M5, "废气治理", "random", "planned", 1),
        ("ECO-PLAN-I2", "ecology", e2, M6, "危险废物", "campaign", "planned", 1),
    ]


# --- reading ------------------------------------------------------------------------------


def _spread(hub: Hub) -> list[tuple[str, str, str]]:
    """Plans of several departments, months, districts and states, in months no demo plan
    is for; the enterprises planned."""
    enterprises = active(hub, 4)
    (e1, _, _), (e2, _, _), (e3, _, _), (e4, _, _) = enterprises
    publish(hub, "fire", plan("FIRE-P1", e1), plan("FIRE-P2", e2), plan("FIRE-P3", e4),
            plan("FIRE-P4", e1, month=M6, status="CANCELLED"))  # fmt: skip
    publish(hub, "ecology", plan("ECO-P1", e1, subject="废气治理", kind="JOINT"),
            plan("ECO-P2", e3, subject="废水排放"), plan("ECO-P3", e4, subject="危险废物"))  # fmt: skip
    publish(hub, "emergency", plan("EMG-P1", e1, subject="安全生产", status="CANCELLED"))
    publish(hub, "market", plan("MKT-P1", e1, subject="食品安全", status="DONE"),
            plan("MKT-P2", e1, month=M7, subject="计量器具"))  # fmt: skip
    publish(hub, "planning", plan("PLN-P1", e1, month=M6, subject="违法建筑", kind="RANDOM"))
    hub.ask("fire", RETRACT, ids=["FIRE-P3"])
    return enterprises


def expected_plans(hub: Hub, where: str = "", **parameters: Any) -> list[dict[str, Any]]:
    """What inspectionPlans should list, from the tables, in (month, id) order."""
    rows = hub.sql(
        "SELECT p.source_id, p.owner, e.uscc, p.month, p.subject, p.kind, p.status, p.version "
        "FROM inspection_plan p JOIN enterprise e ON e.id = p.enterprise_id "
        f"WHERE NOT p.retracted {where} ORDER BY p.month, p.id",
        **parameters,
    )
    return [
        {"sourceId": r[0], "owner": {"code": r[1]}, "uscc": r[2], "month": r[3], "subject": r[4],
         "kind": r[5].upper(), "status": r[6].upper(), "version": r[7]}
        for r in rows
    ]  # fmt: skip


def walk(hub: Hub, department: str, filter: dict[str, Any], first: int) -> list[dict[str, Any]]:
    """Every plan the filter lists, page by page; each page's totalCount checked."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        answer = hub.ask(department, PLANS, filter=filter, first=first, after=after)
        assert "errors" not in answer, answer
        page = answer["data"]["inspectionPlans"]
        nodes += [edge["node"] for edge in page["edges"]]
        assert len(page["edges"]) <= first
        if not page["pageInfo"]["hasNextPage"]:
            assert page["totalCount"] == len(nodes)
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_the_list_filters_and_pages(writable: Hub) -> None:
    hub = writable
    (e1, _, region1), (e2, _, _), _, _ = _spread(hub)
    ahead = {"from": M5, "until": M7}
    assert walk(hub, "culture", ahead, 2) == expected_plans(
        hub, "AND p.month BETWEEN :a AND :b", a=M5, b=M7
    )
    assert [p["sourceId"] for p in walk(hub, "culture", ahead, 100)] == [
        "FIRE-P1", "FIRE-P2", "ECO-P1", "ECO-P2", "ECO-P3", "EMG-P1", "MKT-P1", "FIRE-P4",
        "PLN-P1", "MKT-P2",
    ]  # fmt: skip
    assert walk(hub, "culture", {"uscc": e1.lower(), "from": M6}, 1) == expected_plans(
        hub, "AND e.uscc = :u AND p.month >= :m", u=e1, m=M6
    )
    assert walk(hub, "health", ahead | {"owners": ["fire", "planning"]}, 3) == expected_plans(
        hub, "AND p.month BETWEEN :a AND :b AND p.owner IN ('fire', 'planning')", a=M5, b=M7
    )
    assert walk(hub, "health", ahead | {"status": "CANCELLED"}, 5) == expected_plans(
        hub, "AND p.month BETWEEN :a AND :b AND p.status = 'cancelled'", a=M5, b=M7
    )
    assert walk(hub, "market", {"region": region1, "until": M5, "from": M5}, 2) == (
        expected_plans(hub, "AND e.region = :r AND p.month = :m", r=region1, m=M5)
    )
    # Every plan of every month, the demo's among them.
    assert walk(hub, "transport", {}, 100) == expected_plans(hub)
    assert walk(hub, "transport", {"uscc": e2}, 100) == expected_plans(hub, "AND e.uscc = :u",
                                                                       u=e2)  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "argument", "message"),
    [
        ({"after": "bm9wZQ=="}, "after", "after='bm9wZQ==' is not a plan cursor from this hub; "
         "pass pageInfo.endCursor of the previous page, or omit after to start at the beginning"),
        ({"after": "c3VnZ2VzdGlvbjoyMDI2LTEyOjEwNw=="}, "after",  # a suggestion's cursor
         "after='c3VnZ2VzdGlvbjoyMDI2LTEyOjEwNw==' is not a plan cursor from this hub; pass "
         "pageInfo.endCursor of the previous page, or omit after to start at the beginning"),
        ({"filter": {"from": "2026-1"}}, "from",
         "from: '2026-1' is not a month; write it as YYYY-MM, e.g. 2026-12"),
        ({"filter": {"until": "2026-12-01"}}, "until",
         "until: '2026-12-01' is not a month; write it as YYYY-MM, e.g. 2026-12"),
        ({"filter": {"from": "2027-02", "until": "2027-01"}}, "from",
         "from (2027-02) is after until (2027-01); give the earlier month as from"),
        ({"filter": {"owners": ["fire", "police"]}}, "owners",
         "unknown owner police; one of market, ecology, emergency, enforcement, fire, planning, "
         "transport, health, agriculture, culture"),
        ({"first": 0}, "first",
         "first must be between 1 and 100, not 0; fetch more with the after cursor"),
    ],
)  # fmt: skip
def test_the_list_refuses_what_is_not_a_cursor_a_month_or_a_page(
    hub: TestClient, tokens: dict[str, str], arguments: dict[str, Any], argument: str,
    message: str,
) -> None:  # fmt: skip
    answer = graphql(hub, PLANS, tokens["market"], **arguments)
    assert answer == {"data": None, "errors": [{
        "message": message, "locations": [{"line": 2, "column": 3}], "path": ["inspectionPlans"],
        "extensions": {"code": "BAD_USER_INPUT", "argument": argument}}]}  # fmt: skip


def test_the_dossier_lists_an_enterprises_plans(writable: Hub) -> None:
    hub = writable
    (e1, _, _), *_ = _spread(hub)
    answer = hub.ask(
        "culture",
        """query($u: String!) { enterprise(uscc: $u) { inspectionPlans {
      sourceId owner { code } uscc month subject kind status version } } }""",
        u=e1,
    )
    assert answer == {"data": {"enterprise": {"inspectionPlans": expected_plans(
        hub, "AND e.uscc = :u", u=e1)}}}  # fmt: skip


def expected_suggestions(hub: Hub, department: str, since: str) -> list[dict[str, Any]]:
    """The suggestions for ``department`` from ``since`` on, from the tables: its open plans
    that other departments' open plans meet (every department reads every plan)."""
    rows = hub.sql(
        "SELECT mine.source_id, mine.month, e.uscc, e.name, mine.subject, other.source_id, "
        "other.owner, other.subject, other.kind FROM inspection_plan mine "
        "JOIN inspection_plan other ON other.enterprise_id = mine.enterprise_id "
        "AND other.month = mine.month AND other.owner <> mine.owner "
        "JOIN enterprise e ON e.id = mine.enterprise_id "
        "WHERE mine.owner = :d AND mine.month >= :m AND mine.status = 'planned' "
        "AND NOT mine.retracted AND other.status = 'planned' AND NOT other.retracted "
        "ORDER BY mine.month, mine.id, other.owner, other.id",
        d=department, m=since,
    )  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for mine, month, uscc, name, subject, other, owner, their_subject, kind in rows:
        suggestion = found.setdefault(mine, {
            "month": month, "enterprise": {"uscc": uscc, "name": name},
            "plan": {"sourceId": mine, "owner": {"code": department}, "subject": subject},
            "others": [], "departments": []})  # fmt: skip
        suggestion["others"].append({"sourceId": other, "owner": {"code": owner},
                                     "subject": their_subject, "kind": kind.upper()})  # fmt: skip
        if {"code": owner} not in suggestion["departments"]:
            suggestion["departments"].append({"code": owner})
    for suggestion in found.values():
        suggestion["departments"].sort(key=lambda department: department["code"])
    return list(found.values())


def suggestions(hub: Hub, department: str, **arguments: Any) -> Any:
    answer = hub.ask(department, SUGGESTIONS, **arguments)
    assert "errors" not in answer, answer
    return answer["data"]["jointInspectionSuggestions"]


def test_suggestions_are_other_departments_open_plans_of_the_enterprise_that_month(
    writable: Hub,
) -> None:
    hub = writable
    (e1, name1, _), *_ = _spread(hub)
    fire = suggestions(hub, "fire", month=M5)
    # Not FIRE-P2 (nobody else plans e2), nor FIRE-P3 (retracted, though ecology plans e4),
    # nor FIRE-P4 (cancelled); of the others, not emergency's (cancelled) or market's (done)
    # plans of e1, nor planning's (another month).
    assert fire == {"pageInfo": {"hasNextPage": False, "endCursor": fire["pageInfo"]["endCursor"]},
                    "suggestions": [{
        "month": M5, "enterprise": {"uscc": e1, "name": name1},
        "plan": {"sourceId": "FIRE-P1", "owner": {"code": "fire"}, "subject": "消防安全"},
        "others": [{"sourceId": "ECO-P1", "owner": {"code": "ecology"}, "subject": "废气治理",
                    "kind": "JOINT"}],
        "departments": [{"code": "ecology"}]}]}  # fmt: skip
    # Ecology's: e1 with fire; not e3 (nobody else), nor e4 (fire's plan was retracted).
    ecology = suggestions(hub, "ecology", month=M5)["suggestions"]
    assert [suggestion["plan"]["sourceId"] for suggestion in ecology] == ["ECO-P1"]
    assert ecology == expected_suggestions(hub, "ecology", M5)
    # Plans of other months meet none: planning plans e1 in M6, where fire's is cancelled.
    assert suggestions(hub, "planning", month=M6)["suggestions"] == []
    assert suggestions(hub, "market", month=M7)["suggestions"] == []
    assert suggestions(hub, "emergency", month=M5)["suggestions"] == []  # its own is cancelled
    # Without a month: this month and later, the demo's plans among them, a page at a time.
    for department in ("fire", "ecology", "emergency", "market"):
        pages, after = [], None
        while True:
            page = suggestions(hub, department, first=2, after=after)
            pages += page["suggestions"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert pages == expected_suggestions(hub, department, NOW), department
        assert suggestions(hub, department, first=100)["suggestions"] == pages


@pytest.mark.parametrize(
    ("arguments", "argument", "message"),
    [
        ({"month": "2026-00"}, "month",
         "month: '2026-00' is not a month; write it as YYYY-MM, e.g. 2026-12"),
        ({"after": "cGxhbjoyMDI2LTEyOjEyMg=="}, "after",  # a plan's cursor
         "after='cGxhbjoyMDI2LTEyOjEyMg==' is not a suggestion cursor from this hub; pass "
         "pageInfo.endCursor of the previous page, or omit after to start at the beginning"),
        ({"first": 101}, "first",
         "first must be between 1 and 100, not 101; fetch more with the after cursor"),
    ],
)  # fmt: skip
def test_suggestions_refuse_what_is_not_a_month_a_cursor_or_a_page(
    hub: TestClient, tokens: dict[str, str], arguments: dict[str, Any], argument: str,
    message: str,
) -> None:  # fmt: skip
    answer = graphql(hub, SUGGESTIONS, tokens["fire"], **arguments)
    assert answer == {"data": None, "errors": [{
        "message": message, "locations": [{"line": 2, "column": 3}],
        "path": ["jointInspectionSuggestions"],
        "extensions": {"code": "BAD_USER_INPUT", "argument": argument}}]}  # fmt: skip


def test_reads_of_plans_are_filed_under_their_own_enterprise_and_owner(writable: Hub) -> None:
    hub = writable
    (e1, _, _), (e2, _, _), *_ = _spread(hub)
    fire1, eco1, fire2 = ids(hub, "FIRE-P1", "ECO-P1", "FIRE-P2")
    hub.ask("fire", """query($m: String!) { jointInspectionSuggestions(month: $m) {
      suggestions { alias: plan { subject } enterprise { name } others { owner { code } kind }
    } } }""", m=M5)  # fmt: skip
    record = last_record(hub)
    assert record == {
        "department": "fire", "operationType": "query", "enterprises": [e1],
        "served": sorted([
            {"enterprise": e1, "type": "Enterprise", "fields": ["name"], "ids": [e1]},
            {"enterprise": e1, "type": "InspectionPlan", "fields": ["subject"], "ids": [fire1]},
            {"enterprise": e1, "type": "InspectionPlan", "fields": ["kind", "owner"],
             "ids": [eco1]},
        ], key=json.dumps), "denied": [], "written": [],
    }  # fmt: skip
    hub.ask(
        "culture",
        """query($f: InspectionPlanFilter!) { inspectionPlans(filter: $f) {
      edges { node { month status } } } }""",
        f={"owners": ["fire"], "from": M5, "until": M5},
    )
    assert last_record(hub) == {
        "department": "culture", "operationType": "query", "enterprises": sorted([e1, e2]),
        "served": sorted([
            {"enterprise": e1, "type": "InspectionPlan", "fields": ["month", "status"],
             "ids": [fire1]},
            {"enterprise": e2, "type": "InspectionPlan", "fields": ["month", "status"],
             "ids": [fire2]},
        ], key=json.dumps), "denied": [], "written": [],
    }  # fmt: skip
    publish(hub, "fire", plan("FIRE-P9", e2, month=M6))
    written = last_record(hub)
    assert (written["operationType"], written["written"]) == ("mutation", [
        {"enterprise": e2, "type": "InspectionPlan", "change": "created",
         "ids": ids(hub, "FIRE-P9")}])  # fmt: skip


def test_plans_that_meet_none_of_the_callers_are_neither_served_nor_filed(writable: Hub) -> None:
    hub = writable
    (e1, _, _), (e2, _, _) = active(hub, 2)
    publish(hub, "fire", plan("FIRE-X1", e1, month=M5), plan("FIRE-X2", e2, month=M6))
    publish(hub, "ecology", plan("ECO-X1", e1, month=M5), plan("ECO-X2", e2, month=M6),
            plan("ECO-X3", e1, month=M6), plan("ECO-X4", e2, month=M5))  # fmt: skip
    answer = hub.ask("fire", """query($m: String!) { jointInspectionSuggestions(first: 100) {
      suggestions { month plan { sourceId } others { sourceId } } }
      other: jointInspectionSuggestions(month: $m) { suggestions { others { sourceId } } } }""",
                     m=M6)  # fmt: skip
    found = answer["data"]["jointInspectionSuggestions"]["suggestions"]
    assert [s for s in found if s["month"] >= M5] == [
        {"month": M5, "plan": {"sourceId": "FIRE-X1"}, "others": [{"sourceId": "ECO-X1"}]},
        {"month": M6, "plan": {"sourceId": "FIRE-X2"}, "others": [{"sourceId": "ECO-X2"}]},
    ]
    assert answer["data"]["other"] == {"suggestions": [{"others": [{"sourceId": "ECO-X2"}]}]}
    served = {plan_id for group in last_record(hub)["served"]
              if group["type"] == "InspectionPlan" for plan_id in group["ids"]}  # fmt: skip
    assert served & set(ids(hub, "ECO-X3", "ECO-X4")) == set()
    assert served >= set(ids(hub, "FIRE-X1", "FIRE-X2", "ECO-X1", "ECO-X2"))


def test_the_statements_of_suggestions_do_not_grow_with_them(
    writable: Hub, sql_statements: Any
) -> None:
    hub = writable
    enterprises = [row[0] for row in active(hub, 12)]
    publish(hub, "fire", plan("FIRE-S0", enterprises[0], month=M7))
    publish(hub, "ecology", plan("ECO-S0", enterprises[0], month=M7))
    query = """query($m: String!) { jointInspectionSuggestions(month: $m) { suggestions {
      plan { sourceId history { version } } enterprise { name inspections { kind } }
      others { sourceId } departments { code } } } }"""
    start = len(sql_statements)
    assert len(suggestions_of(hub, query, M7)) == 1
    one = len(sql_statements) - start
    publish(hub, "fire", *(plan(f"FIRE-S{n}", uscc, month=M7)
                           for n, uscc in enumerate(enterprises[1:], start=1)))  # fmt: skip
    publish(hub, "ecology", *(plan(f"ECO-S{n}", uscc, month=M7)
                              for n, uscc in enumerate(enterprises[1:], start=1)))  # fmt: skip
    publish(hub, "market", *(plan(f"MKT-S{n}", uscc, month=M7)
                             for n, uscc in enumerate(enterprises[1:], start=1)))  # fmt: skip
    start = len(sql_statements)
    assert len(suggestions_of(hub, query, M7)) == 12
    assert len(sql_statements) - start == one


def suggestions_of(hub: Hub, query: str, month: str) -> list[Any]:
    answer = hub.ask("fire", query, m=month)
    assert "errors" not in answer, answer
    found: list[Any] = answer["data"]["jointInspectionSuggestions"]["suggestions"]
    return found


def test_the_feed_shows_plan_changes(writable: Hub) -> None:
    hub = writable
    ((uscc, _, _),) = active(hub, 1)
    end = feed_end(hub, "culture")
    publish(hub, "fire", plan("FIRE-F1", uscc))
    publish(hub, "fire", plan("FIRE-F1", uscc, status="CANCELLED"))
    hub.ask("fire", RETRACT, ids=["FIRE-F1"])
    answer = hub.ask("culture", """query($after: String!) {
      changes(after: $after, kinds: [INSPECTION_PLAN]) { hasMore changes { kind change version
        owner { code } sourceId uscc reason record { id ... on InspectionPlan { month status } } }
      } }""", after=end)  # fmt: skip
    (plan_id,) = ids(hub, "FIRE-F1")
    record = {"id": plan_id, "month": M5, "status": "CANCELLED"}  # as it is now
    common = {"kind": "INSPECTION_PLAN", "owner": {"code": "fire"}, "sourceId": "FIRE-F1",
              "uscc": uscc, "record": record}  # fmt: skip
    assert answer == {"data": {"changes": {"hasMore": False, "changes": [
        common | {"change": "CREATED", "version": 1, "reason": None},
        common | {"change": "UPDATED", "version": 2, "reason": None},
        common | {"change": "RETRACTED", "version": 3, "reason": "录入有误，计划作废"},
    ]}}}  # fmt: skip


def test_core_open_plans_of_an_enterprise_are_its_planned_ones_of_others(writable: Hub) -> None:
    """hub.plans.open_plans, for code that reads on a connection of its own (and decides
    what it shows through Access, as the API does)."""
    hub = writable
    (e1, _, _), *_ = _spread(hub)
    (enterprise_id,) = hub.sql("SELECT id FROM enterprise WHERE uscc = :u", u=e1)[0]

    async def read() -> list[tuple[str, str, str]]:
        engine = create_engine(hub.settings)
        async with engine.connect() as connection:
            rows = await open_plans(connection, enterprise_id, M5, M6, excluding="fire")
        await engine.dispose()
        return [(row.source_id, row.owner, row.month) for row in rows]

    assert asyncio.run(read()) == [("ECO-P1", "ecology", M5), ("PLN-P1", "planning", M6)]


# --- policy -------------------------------------------------------------------------------


def policies_with(directory: Path, line: str | None) -> Path:
    """The shipped policies with the plans' read line replaced by ``line`` (or removed)."""
    shutil.copytree(DEFAULT_POLICY_DIR, directory)
    rules = (directory / "policy.csv").read_text(encoding="utf-8")
    shipped = "p, department, *, InspectionPlan.*, read, allow\n"
    assert shipped in rules
    (directory / "policy.csv").write_text(rules.replace(shipped, f"{line}\n" if line else ""))
    return directory


def test_a_department_no_line_lets_read_others_plans_is_refused(
    writable: Hub, tmp_path: Path
) -> None:
    hub = writable
    (e1, _, _), *_ = _spread(hub)
    policies = policies_with(tmp_path / "policies", None)
    settings = replace(hub.settings, policy_dir=policies, **UNTHROTTLED)
    with TestClient(create_app(settings)) as client:
        answer = graphql(client, SUGGESTIONS, hub.tokens["fire"], month=M5)
        reason = ("no policy line lets fire read other departments' inspection plans, so none "
                  "can be suggested; see policies/policy.csv")  # fmt: skip
        assert answer == {"data": None, "errors": [{
            "message": f"suggesting joint inspections is forbidden: {reason}",
            "locations": [{"line": 2, "column": 3}], "path": ["jointInspectionSuggestions"],
            "extensions": {"code": "FORBIDDEN", "owner": "fire", "field": "InspectionPlan",
                           "reason": reason}}]}  # fmt: skip
        # Its own plans it still reads (a department reads all of its own records).
        listed = graphql(client, PLANS, hub.tokens["fire"], filter={"uscc": e1, "from": M5})
        assert [edge["node"]["sourceId"] for edge in
                listed["data"]["inspectionPlans"]["edges"]] == ["FIRE-P1", "FIRE-P4"]  # fmt: skip
    # Auditors and admins are no departments' planners: refused whatever the policy.
    answer = hub.ask("auditor", SUGGESTIONS, month=M5)
    assert answer["data"] is None
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in answer["errors"]] == [
        ("FORBIDDEN", "Query.jointInspectionSuggestions")
    ]
    listed = hub.ask("auditor", PLANS, filter={"uscc": e1})["data"]["inspectionPlans"]
    assert listed == {"totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None},
                      "edges": []}  # fmt: skip


def test_fields_of_others_plans_are_decided_by_the_policy(writable: Hub, tmp_path: Path) -> None:
    hub = writable
    (e1, _, _), *_ = _spread(hub)
    policies = policies_with(tmp_path / "policies", "p, department, *, InspectionPlan.month, "
                             "read, allow")  # fmt: skip
    policy = load_policy(policies, policy_fields())
    reason = policy.decide("fire", "ecology", "InspectionPlan.subject", purpose=False).reason
    settings = replace(hub.settings, policy_dir=policies, **UNTHROTTLED)
    with TestClient(create_app(settings)) as client:
        answer = graphql(client, """query($m: String!) { jointInspectionSuggestions(month: $m) {
          suggestions { plan { subject } others { month subject } } } }""",
                         hub.tokens["fire"], m=M5)  # fmt: skip
    assert answer == {
        "data": {"jointInspectionSuggestions": {"suggestions": [
            {"plan": {"subject": "消防安全"}, "others": [{"month": M5, "subject": None}]}]}},
        "errors": [{
            "message": f"InspectionPlan.subject of ecology's records is withheld: {reason}",
            "locations": [{"line": 2, "column": 57}],
            "path": ["jointInspectionSuggestions", "suggestions", 0, "others", 0, "subject"],
            "extensions": {"code": "FORBIDDEN", "owner": "ecology",
                           "field": "InspectionPlan.subject", "reason": reason}}],
    }  # fmt: skip
    record = last_record(hub)
    assert record["denied"] == [{"enterprise": e1, "type": "InspectionPlan",
                                 "id": ids(hub, "ECO-P1")[0], "owner": "ecology",
                                 "field": "InspectionPlan.subject"}]  # fmt: skip


# --- the installed hub --------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Any, Settings]]:
    """`hub serve` on a demo database of its own, with market and ecology clients."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url}
        with serving(environment) as (_, port):
            yield port, tokens, settings


def test_the_installed_hub_suggests_one_departments_plan_to_another(
    served: tuple[int, dict[str, str], Settings],
) -> None:
    port, tokens, settings = served

    async def scenario() -> dict[str, Any]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            (uscc, name) = (await connection.execute(text(
                "SELECT uscc, name FROM enterprise WHERE status = 'active' ORDER BY id LIMIT 1"
            ))).one()  # fmt: skip
        await engine.dispose()
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for department, record in (
                ("market", plan("MKT-HTTP-1", uscc, subject="食品安全")),
                ("ecology", plan("ECO-HTTP-1", uscc, subject="废气治理", kind="JOINT")),
            ):
                published = await http.post(
                    "/graphql", headers={"Authorization": f"Bearer {tokens[department]}"},
                    json={"query": PUBLISH, "variables": {"records": [record]}},
                )  # fmt: skip
                assert published.json()["data"]["publishInspectionPlans"]["created"] == 1
        transport = AIOHTTPTransport(url=f"http://127.0.0.1:{port}/graphql",
                                     headers={"Authorization": f"Bearer {tokens['market']}"})  # fmt: skip
        async with Client(transport=transport) as session:
            found: dict[str, Any] = await session.execute(
                GraphQLRequest(SUGGESTIONS, variable_values={"month": M5})
            )
        return {"uscc": uscc, "name": name, "found": found}

    seen = asyncio.run(scenario())
    page = seen["found"]["jointInspectionSuggestions"]
    assert page["suggestions"] == [{
        "month": M5, "enterprise": {"uscc": seen["uscc"], "name": seen["name"]},
        "plan": {"sourceId": "MKT-HTTP-1", "owner": {"code": "market"}, "subject": "食品安全"},
        "others": [{"sourceId": "ECO-HTTP-1", "owner": {"code": "ecology"},
                    "subject": "废气治理", "kind": "JOINT"}],
        "departments": [{"code": "ecology"}],
    }]  # fmt: skip
    assert page["pageInfo"]["hasNextPage"] is False
