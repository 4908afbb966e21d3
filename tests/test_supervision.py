"""Supervision from the shared records (issue 17): three-colour codes with their reasons,
kept as records change and as days pass, in the feed; inspection limits, the check before
inspecting, and the warnings publishing raises. Rules and limits are policy files, linted.
On SQLite and PostgreSQL."""

import asyncio
import shutil
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport

from hub.audit import AccessLog
from hub.db import create_engine
from hub.domain import Colour
from hub.policy import PolicyError, load_policy
from hub.publishing.colours import review
from hub.records import today
from hub.schema import policy_fields
from hub.schema.feed import encode_cursor
from hub.settings import DEFAULT_POLICY_DIR, Settings
from hub.supervision import Facts, compute
from tests.conftest import Hub
from tests.test_clients import one_row, served  # noqa: F401 (a fixture)

POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
TODAY = date(2026, 11, 28)
COLOUR = """query($uscc: String!) { enterprise(uscc: $uscc) { colourCode { colour since
  reasons { rule colour count records { kind owner { code } sourceId } } }
  colourHistory { colour previous since reasons { rule } } } }"""
FEED = """query($kinds: [RecordKind!]) { changes(kinds: $kinds, first: 500) { changes {
  kind change uscc sourceId owner { code } reason record { id }
  colour { colour previous reasons { rule count } }
  warning { verdict count limit warnAt periodFrom periodUntil reason } } } }"""
ORDER = """mutation($records: [RectificationInput!]!, $dry: Boolean!) {
  publishRectifications(records: $records, dryRun: $dry) { created updated } }"""
ACCEPT = """mutation($records: [AcceptanceInput!]!) {
  publishAcceptances(records: $records) { created accepted } }"""
INSPECT = """mutation($records: [InspectionInput!]!, $dry: Boolean!) {
  publishInspections(records: $records, dryRun: $dry) { created unchanged warned
  records { sourceId change } warnings { index sourceId uscc id
    warning { verdict count limit warnAt periodFrom periodUntil reason } } } }"""
CHECK = """query($uscc: String!, $on: Date, $inspector: String) {
  inspectionCheck(uscc: $uscc, on: $on, department: $inspector) {
  uscc on colour department { code }
  standing { verdict count limit warnAt periodFrom periodUntil reason }
  byDepartment { department { code } count } inspections { sourceId inspectedOn } } }"""


def row(**values: Any) -> SimpleNamespace:
    return SimpleNamespace(**values)


def order(n: int, deadline: date, status: str = "in_progress", **acceptance: Any) -> Any:
    return row(id=n, owner="ecology", source_id=f"R{n}", deadline=deadline, status=status,
               acceptance_id=acceptance.get("id"), acceptance_owner="ecology",
               acceptance_source_id=f"A{n}", verdict=acceptance.get("verdict"),
               accepted_on=acceptance.get("on"))  # fmt: skip


def colour_of(**facts: list[Any]) -> Any:
    return compute(POLICY.colours.rules, Facts(**facts), TODAY)


def test_no_rule_met_is_green_and_each_rule_gives_its_colour_with_its_records() -> None:
    assert colour_of().colour is Colour.GREEN
    assert colour_of().reasons == ()
    assert colour_of().review_on is None
    overdue = colour_of(orders=[order(1, TODAY - timedelta(days=1))])
    assert overdue.colour is Colour.BLACK
    assert [(r[0], r[1], [ref.source_id for ref in r[3]]) for r in overdue.reasons] == [
        ("overdue-rectification", "black", ["R1"])
    ]
    rectifying = colour_of(orders=[order(2, TODAY + timedelta(days=9))])
    assert (rectifying.colour, rectifying.reasons[0][0]) == (Colour.YELLOW, "rectifying")
    # The day the deadline passes, the same order makes it black: computed again that day.
    assert rectifying.review_on == TODAY + timedelta(days=10)
    accepted = colour_of(orders=[order(3, TODAY - timedelta(days=30), "accepted", id=7,
                                       verdict="passed", on=TODAY - timedelta(days=40))])  # fmt: skip
    assert (accepted.colour, accepted.reasons[0][0]) == (Colour.YELLOW, "rectified-in-time")
    assert accepted.reasons[0][3][0].kind == "Acceptance"
    assert accepted.review_on == TODAY - timedelta(days=40) + timedelta(days=180)


def test_the_most_severe_colour_wins_and_every_rule_met_is_a_reason() -> None:
    credit = row(id=5, owner="market", source_id="C5", kind="bad_record", level="serious",
                 status="active", expires_on=TODAY + timedelta(days=100))  # fmt: skip
    penalty = row(id=6, owner="fire", source_id="P6", decided_on=TODAY - timedelta(days=10),
                  status="decided")  # fmt: skip
    computed = colour_of(credit=[credit], penalties=[penalty])
    assert computed.colour is Colour.BLACK
    assert [r[0] for r in computed.reasons] == [
        "serious-bad-credit",
        "bad-credit",
        "recent-penalty",
    ]
    assert computed.review_on == TODAY + timedelta(days=101)  # the record expires
    # Repaired, expired, exempted and revoked records count for nothing.
    nothing = colour_of(
        credit=[row(**{**vars(credit), "status": "repaired"}),
                row(**{**vars(credit), "expires_on": TODAY - timedelta(days=1)})],
        penalties=[row(**{**vars(penalty), "status": "exempt"}),
                   row(**{**vars(penalty), "status": "revoked"}),
                   row(**{**vars(penalty), "decided_on": TODAY - timedelta(days=365)})],
    )  # fmt: skip
    assert (nothing.colour, nothing.reasons) == (Colour.GREEN, ())


def test_a_failed_acceptance_makes_black_until_the_order_is_accepted() -> None:
    failed = order(4, TODAY + timedelta(days=20), "in_progress", id=9, verdict="failed",
                   on=TODAY - timedelta(days=3))  # fmt: skip
    computed = colour_of(orders=[failed])
    assert computed.colour is Colour.BLACK
    assert [r[0] for r in computed.reasons] == ["failed-acceptance", "rectifying"]


@pytest.mark.parametrize(
    ("file", "line", "text", "message"),
    [
        (
            "colours.csv",
            2,
            "overdue,red,rectification-overdue,,x",
            "colour 'red' is not one a rule makes",
        ),
        ("colours.csv", 2, "overdue,black,late,,x", "unknown condition 'late'"),
        ("colours.csv", 2, "fresh,yellow,penalty,,x", "penalty counts records within a window"),
        (
            "colours.csv",
            2,
            "late,black,rectification-overdue,30,x",
            "has no window: leave days empty",
        ),
        ("colours.csv", 2, "Late,black,rectification-overdue,,x", "is not a rule name"),
        ("colours.csv", 2, "late,black,rectification-overdue,,", "say what rule late means"),
        ("inspection-limits.csv", 2, "*,*,365,5,4,b", "warn_at (5) is above limit (4)"),
        ("inspection-limits.csv", 2, "*,purple,365,2,4,b", "colour 'purple' is not one of"),
        ("inspection-limits.csv", 2, "*,*,0,2,4,b", "days '0' is not a number of days"),
        ("inspection-limits.csv", 2, "*,*,365,2,4,", "cite the standard"),
        ("inspection-limits.csv", 1, "化工,*,365,2,4,b", "add a *,* line"),
    ],
)
def test_rules_and_limits_are_linted_with_file_and_line(
    tmp_path: Path, file: str, line: int, text: str, message: str
) -> None:
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, directory)
    header = (directory / file).read_text(encoding="utf-8").splitlines()[0]
    needs_default = file == "inspection-limits.csv" and line > 1  # (only that line wrong)
    default = "*,*,365,3,4,b\n" if needs_default and "*,*" not in text else ""
    (directory / file).write_text(f"{header}\n{text}\n{default}", encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(directory, policy_fields())
    (problem,) = refused.value.problems
    assert (problem.path.name, problem.line) == (file, line)
    assert message in problem.message


def test_the_most_specific_limit_applies() -> None:
    limits = POLICY.limits
    assert (limits.of("化工", "green").line, limits.of("化工", "black").line) == (6, 5)
    assert (limits.of("餐饮服务", "green").line, limits.of("餐饮服务", None).line) == (3, 2)
    assert limits.of("餐饮服务", "black").limit == 8


def pick(hub: Hub, where: str) -> Any:
    (found,) = hub.sql(
        "SELECT e.id, e.uscc, e.colour, e.industry FROM enterprise e WHERE " + where
        + " ORDER BY e.id LIMIT 1"
    )  # fmt: skip
    return found


def a_green_enterprise(hub: Hub) -> Any:
    """A green enterprise with no order, no inspection in the last year and no warning."""
    return pick(hub, "e.colour = 'green' AND e.industry <> '化工' AND NOT EXISTS (SELECT 1 "
                "FROM rectification r WHERE r.enterprise_id = e.id) AND NOT EXISTS (SELECT 1 "
                "FROM inspection i WHERE i.enterprise_id = e.id AND i.inspected_on > :since) "
                "AND NOT EXISTS (SELECT 1 FROM inspection_warning w WHERE w.enterprise_id = e.id)"
                .replace(":since", f"'{today() - timedelta(days=400)}'"))  # fmt: skip


def an_order(uscc: str, source_id: str, deadline: date) -> dict[str, Any]:
    return {"sourceId": source_id, "uscc": uscc, "penaltySourceId": None,
            "inspectionSourceId": "ECOLOGY-INS-T1", "requirement": "修复废气处理设施",
            "orderedOn": str(today() - timedelta(days=20)), "deadline": str(deadline),
            "status": "IN_PROGRESS"}  # fmt: skip


def an_inspection(uscc: str, source_id: str, day: date, code: str) -> dict[str, Any]:
    return {"sourceId": source_id, "uscc": uscc, "actionCode": code, "kind": "ROUTINE",
            "inspectedOn": str(day), "result": "PROBLEMS_FOUND"}  # fmt: skip


def test_an_order_past_its_deadline_turns_the_enterprise_black_in_the_same_write(
    writable: Hub,
) -> None:
    enterprise = a_green_enterprise(writable)
    inspected = writable.ask("ecology", INSPECT, records=[an_inspection(
        enterprise.uscc, "ECOLOGY-INS-T1", today() - timedelta(days=21), "T-ECO-0001")],
        dry=False)  # fmt: skip
    assert inspected["data"]["publishInspections"]["created"] == 1
    before = writable.ask("market", COLOUR, uscc=enterprise.uscc)["data"]["enterprise"]
    assert before["colourCode"]["colour"] == "GREEN"
    late = an_order(enterprise.uscc, "ECOLOGY-RECT-T1", today() - timedelta(days=1))
    dry = writable.ask("ecology", ORDER, records=[late], dry=True)
    assert dry["data"]["publishRectifications"]["created"] == 1
    assert writable.ask("market", COLOUR, uscc=enterprise.uscc)["data"] == {"enterprise": before}
    writable.ask("ecology", ORDER, records=[late], dry=False)
    after = writable.ask("market", COLOUR, uscc=enterprise.uscc)["data"]["enterprise"]
    assert after["colourCode"] == {
        "colour": "BLACK",
        "since": str(today()),
        "reasons": [{"rule": "overdue-rectification", "colour": "BLACK", "count": 1,
                     "records": [{"kind": "Rectification", "owner": {"code": "ecology"},
                                  "sourceId": "ECOLOGY-RECT-T1"}]}],
    }  # fmt: skip
    assert [(c["colour"], c["previous"]) for c in after["colourHistory"]] == [
        ("GREEN", None),
        ("BLACK", "GREEN"),
    ]
    feed = writable.ask("fire", FEED, kinds=["COLOUR_CODE"])["data"]["changes"]["changes"]
    assert feed[-1] == {
        "kind": "COLOUR_CODE", "change": "UPDATED", "uscc": enterprise.uscc,
        "sourceId": enterprise.uscc, "owner": {"code": "market"},
        "reason": "green -> black: overdue-rectification", "record": None,
        "colour": {"colour": "BLACK", "previous": "GREEN",
                   "reasons": [{"rule": "overdue-rectification", "count": 1}]},
        "warning": None,
    }  # fmt: skip
    # Fire reads no ecology order: the reason's record is counted, not shown.
    seen = writable.ask("fire", COLOUR, uscc=enterprise.uscc)["data"]["enterprise"]
    assert seen["colourCode"]["reasons"][0]["records"] == []
    assert seen["colourCode"]["reasons"][0]["count"] == 1
    # Accepted: the order closes, the colour turns yellow (problems fixed), in the feed too.
    accepted = writable.ask("ecology", ACCEPT, records=[{
        "sourceId": "ECOLOGY-ACC-T1", "rectificationSourceId": "ECOLOGY-RECT-T1",
        "acceptedOn": str(today()), "verdict": "PASSED", "opinion": "整改到位"}])  # fmt: skip
    assert accepted["data"]["publishAcceptances"] == {"created": 1, "accepted": 1}
    now = writable.ask("market", COLOUR, uscc=enterprise.uscc)["data"]["enterprise"]
    assert now["colourCode"]["colour"] == "YELLOW"
    assert [r["rule"] for r in now["colourCode"]["reasons"]] == ["rectified-in-time"]
    black = writable.ask(
        "market",
        """{ enterprises(filter: {colour: BLACK}, first: 100) {
        totalCount edges { node { uscc colourCode { colour } } } } }""",
    )["data"]["enterprises"]
    (count,) = writable.sql("SELECT count(*) FROM enterprise WHERE colour = 'black'")
    assert black["totalCount"] == count[0] > 0
    assert {e["node"]["colourCode"]["colour"] for e in black["edges"]} == {"BLACK"}


def test_colours_are_computed_again_on_the_day_they_change_and_when_rules_change(
    writable: Hub, tmp_path: Path
) -> None:
    enterprise = a_green_enterprise(writable)
    writable.ask("ecology", INSPECT, records=[an_inspection(
        enterprise.uscc, "ECOLOGY-INS-T1", today() - timedelta(days=21), "T-ECO-0002")],
        dry=False)  # fmt: skip
    soon = today() + timedelta(days=3)
    writable.ask("ecology", ORDER, records=[an_order(enterprise.uscc, "ECOLOGY-RECT-T1", soon)],
                 dry=False)  # fmt: skip
    ((colour, review_on),) = writable.sql(
        "SELECT colour, colour_review_on FROM enterprise WHERE id = :id", id=enterprise.id
    )
    assert (colour, str(review_on)) == ("yellow", str(soon + timedelta(days=1)))

    async def review_on(day: date, directory: Path = DEFAULT_POLICY_DIR) -> int:
        engine = create_engine(writable.settings)
        try:
            colours = load_policy(directory, policy_fields()).colours
            return await review(engine, colours, day, AccessLog(engine))
        finally:
            await engine.dispose()

    assert asyncio.run(review_on(soon)) == 0  # nothing is due yet
    assert asyncio.run(review_on(soon + timedelta(days=1))) >= 1
    ((colour,),) = writable.sql("SELECT colour FROM enterprise WHERE id = :id", id=enterprise.id)
    assert colour == "black"
    entries = writable.sql(
        "SELECT publisher, client, reason FROM record_version WHERE kind = 'ColourCode' "
        "AND uscc = :uscc ORDER BY seq", uscc=enterprise.uscc)  # fmt: skip
    assert [tuple(entry) for entry in entries] == [
        ("ecology", "ecology system", "green -> yellow: rectifying"),
        ("market", "hub: colour review", "yellow -> black: overdue-rectification"),
    ]
    # The hub's own write is recorded for auditors, naming the colour it changed.
    ((client, role, written),) = writable.sql(
        "SELECT client, role, written FROM access_record WHERE operation_name = 'colour review'"
    )
    assert (client, role) == ("hub: colour review", "hub")
    assert enterprise.uscc in written
    # New rules (a softer one for overdue orders): every colour is computed again.
    softer = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, softer)
    rules = (softer / "colours.csv").read_text(encoding="utf-8")
    (softer / "colours.csv").write_text(
        rules.replace("overdue-rectification,black,", "overdue-rectification,yellow,"),
        encoding="utf-8",
    )
    (total,) = writable.sql("SELECT count(*) FROM enterprise")
    assert asyncio.run(review_on(soon + timedelta(days=1), softer)) == total[0]
    ((colour,),) = writable.sql("SELECT colour FROM enterprise WHERE id = :id", id=enterprise.id)
    assert colour == "yellow"


def test_colour_entries_cannot_be_retracted(writable: Hub) -> None:
    answer = writable.ask(
        "market",
        """mutation { retractRecords(kind: COLOUR_CODE,
        sourceIds: ["x"], reason: "wrong") { retracted } }""",
    )
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "retract the records behind them" in error["message"]


def test_inspections_past_the_limit_warn_in_the_answer_the_store_and_the_feed(
    writable: Hub,
) -> None:
    enterprise = a_green_enterprise(writable)  # green: warns at 2, over past 2 a year
    uscc = enterprise.uscc
    days = [today() - timedelta(days=n) for n in (200, 100, 10)]
    visits = [an_inspection(uscc, f"MARKET-INS-T{n}", day, f"T-MKT-{n:04d}")
              for n, day in enumerate(days)]  # fmt: skip
    first = writable.ask("market", INSPECT, records=visits[:1], dry=False)
    assert first["data"]["publishInspections"]["warnings"] == []
    check = writable.ask("fire", CHECK, uscc=uscc)["data"]["inspectionCheck"]
    limit_line = POLICY.limits.of(enterprise.industry, "green")
    assert check["standing"]["verdict"] == "WARN"  # one more would be the 2nd
    assert (check["standing"]["count"], check["standing"]["limit"]) == (2, limit_line.limit)
    assert check["byDepartment"] == [{"department": {"code": "market"}, "count": 1}]
    assert [i["sourceId"] for i in check["inspections"]] == ["MARKET-INS-T0"]
    assert (check["colour"], check["department"]) == ("GREEN", {"code": "fire"})
    dry = writable.ask("market", INSPECT, records=visits[1:], dry=True)["data"]
    warnings = dry["publishInspections"]["warnings"]
    assert [(w["sourceId"], w["id"], w["warning"]["verdict"], w["warning"]["count"])
            for w in warnings] == [("MARKET-INS-T1", None, "WARN", 2),
                                   ("MARKET-INS-T2", None, "OVER", 3)]  # fmt: skip
    mine = "SELECT count(*) FROM inspection_warning WHERE enterprise_id = :id"
    assert writable.sql(mine, id=enterprise.id)[0][0] == 0
    published = writable.ask("market", INSPECT, records=visits[1:], dry=False)["data"]
    result = published["publishInspections"]
    assert (result["created"], result["warned"]) == (2, 2)
    over = result["warnings"][1]["warning"]
    assert over["reason"].startswith(f"market's inspection MARKET-INS-T2 of {uscc}, the 3rd")
    assert "is past the limit: 3" in over["reason"]
    assert "inspection-limits.csv:3 allows 2" in over["reason"]
    assert (over["periodFrom"], over["periodUntil"]) == (
        str(days[2] - timedelta(days=364)),
        str(days[2]),
    )
    feed = writable.ask("health", FEED, kinds=["INSPECTION_WARNING"])["data"]["changes"]
    mine = [c for c in feed["changes"] if c["uscc"] == uscc]
    assert [(c["sourceId"], c["warning"]["verdict"], c["owner"]["code"]) for c in mine] == [
        ("MARKET-INS-T1", "WARN", "market"),
        ("MARKET-INS-T2", "OVER", "market"),
    ]
    again = writable.ask("market", INSPECT, records=visits, dry=False)["data"]
    assert again["publishInspections"]["unchanged"] == 3
    assert again["publishInspections"]["warnings"] == []
    after = writable.ask("fire", CHECK, uscc=uscc)["data"]["inspectionCheck"]["standing"]
    assert (after["verdict"], after["count"]) == ("OVER", 4)


def test_the_check_refuses_what_it_cannot_judge(writable: Hub) -> None:
    known = pick(writable, "1 = 1").uscc
    for variables, code, words in [
        ({"uscc": "91330106MA2KXXXX00"}, "BAD_USER_INPUT", "not a valid unified social"),
        ({"uscc": "91110000600037341L"}, "NOT_FOUND", "no enterprise 91110000600037341L"),
        ({"uscc": known, "inspector": "police"}, "BAD_USER_INPUT", "unknown department"),
        ({"uscc": known, "on": "1900-01-01"}, "BAD_USER_INPUT", "on=1900-01-01 is out of range"),
    ]:
        answer = writable.ask("market", CHECK, **variables)
        (error,) = answer["errors"]
        assert (error["extensions"]["code"], answer["data"]) == (code, None)
        assert words in error["message"]


def test_a_check_is_recorded_with_the_inspections_it_served(writable: Hub) -> None:
    (enterprise,) = writable.sql(
        "SELECT e.uscc, count(*) FROM enterprise e JOIN inspection i ON i.enterprise_id = e.id "
        "WHERE i.inspected_on > :since GROUP BY e.uscc ORDER BY count(*) DESC, e.uscc LIMIT 1",
        since=today() - timedelta(days=300),
    )
    check = writable.ask("ecology", CHECK, uscc=enterprise.uscc)["data"]["inspectionCheck"]
    assert len(check["inspections"]) == check["standing"]["count"] - 1 >= enterprise[1]
    log = writable.ask(
        "auditor",
        """{ accessLog(first: 1) { edges { node { operationName
        enterprises served { type fields } } } } }""",
    )["data"]["accessLog"]["edges"][0]["node"]
    assert log["enterprises"] == [enterprise.uscc]
    assert {"type": "Inspection", "fields": ["inspectedOn", "sourceId"]} in log["served"]


LIVE = """subscription($after: String) { changes(after: $after,
  kinds: [COLOUR_CODE, INSPECTION_WARNING]) { changes { kind uscc sourceId
  colour { colour previous reasons { rule } } warning { verdict count } } } }"""


def test_the_installed_server_tells_a_subscriber_of_a_colour_change_and_a_warning(
    served: tuple[int, dict[str, str], Settings],  # noqa: F811 (the fixture)
) -> None:
    """`hub serve` in a process of its own: ecology publishes over HTTP (gql), market hears
    over a real WebSocket (gql) that the enterprise turned black and that a visit warned."""
    port, tokens, settings = served
    enterprise = asyncio.run(one_row(settings,
        "SELECT e.uscc, e.colour FROM enterprise e WHERE e.colour = 'green' AND NOT EXISTS "
        "(SELECT 1 FROM inspection i WHERE i.enterprise_id = e.id) ORDER BY e.id LIMIT 1"))  # fmt: skip
    (seq,) = asyncio.run(one_row(settings, "SELECT seq FROM feed_head"))
    visits = [an_inspection(enterprise.uscc, f"ECOLOGY-INS-L{n}", today() - timedelta(days=n),
                            f"L-ECO-{n:04d}") for n in (30, 20, 10)]  # fmt: skip

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        live = WebsocketsTransport(
            url=f"ws://127.0.0.1:{port}/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {tokens['market']}"},
        )
        http = AIOHTTPTransport(url=f"http://127.0.0.1:{port}/graphql",
                                headers={"Authorization": f"Bearer {tokens['ecology']}"})  # fmt: skip
        async with Client(transport=live) as listener, Client(transport=http) as publisher:
            events = listener.subscribe(GraphQLRequest(
                LIVE, variable_values={"after": encode_cursor("change", seq)}))  # fmt: skip
            inspected = await publisher.execute(GraphQLRequest(
                INSPECT, variable_values={"records": visits, "dry": False}))  # fmt: skip
            ordered = await publisher.execute(GraphQLRequest(ORDER, variable_values={
                "records": [an_order(enterprise.uscc, "ECOLOGY-RECT-L1", today()
                                     - timedelta(days=1)) | {"inspectionSourceId":
                                                             "ECOLOGY-INS-L30"}],
                "dry": False}))  # fmt: skip
            heard: list[dict[str, Any]] = []
            while len(heard) < 3:
                event = await asyncio.wait_for(anext(events), timeout=30)
                heard += event["changes"]["changes"]
            return inspected, ordered, heard

    inspected, ordered, heard = asyncio.run(scenario())
    assert [w["warning"]["verdict"] for w in inspected["publishInspections"]["warnings"]] == [
        "WARN",
        "OVER",
    ]  # green: warns at the 2nd visit in a year, over past 2
    assert ordered == {"publishRectifications": {"created": 1, "updated": 0}}
    assert heard == [
        {"kind": "INSPECTION_WARNING", "uscc": enterprise.uscc, "sourceId": "ECOLOGY-INS-L20",
         "colour": None, "warning": {"verdict": "WARN", "count": 2}},
        {"kind": "INSPECTION_WARNING", "uscc": enterprise.uscc, "sourceId": "ECOLOGY-INS-L10",
         "colour": None, "warning": {"verdict": "OVER", "count": 3}},
        {"kind": "COLOUR_CODE", "uscc": enterprise.uscc, "sourceId": enterprise.uscc,
         "colour": {"colour": "BLACK", "previous": "GREEN",
                    "reasons": [{"rule": "overdue-rectification"}]}, "warning": None},
    ]  # fmt: skip


def test_the_check_names_other_departments_open_plans_in_the_month(writable: Hub) -> None:
    """Before inspecting, fire sees that ecology and market plan the same enterprise that
    month (综合查一次): their open plans, not its own, not cancelled ones, not another month's."""
    enterprise = a_green_enterprise(writable)
    on = today() + timedelta(days=40)
    month, later = f"{on:%Y-%m}", f"{on + timedelta(days=62):%Y-%m}"
    plans = """mutation($records: [InspectionPlanInput!]!) {
      publishInspectionPlans(records: $records) { created } }"""

    def plan(source_id: str, when: str, status: str = "PLANNED") -> dict[str, Any]:
        return {"sourceId": source_id, "uscc": enterprise.uscc, "month": when,
                "subject": "安全生产", "kind": "ROUTINE", "status": status}  # fmt: skip

    for department, records in {
        "ecology": [plan("ECO-PLAN-1", month), plan("ECO-PLAN-2", later)],
        "market": [plan("MKT-PLAN-1", month), plan("MKT-PLAN-2", month, "CANCELLED")],
        "fire": [plan("FIRE-PLAN-1", month)],
    }.items():
        published = writable.ask(department, plans, records=records)
        assert published["data"]["publishInspectionPlans"]["created"] == len(records)
    query = """query($uscc: String!, $on: Date) { inspectionCheck(uscc: $uscc, on: $on) {
      openPlans { sourceId owner { code } month status } } }"""
    check = writable.ask("fire", query, uscc=enterprise.uscc, on=str(on))["data"]
    assert check["inspectionCheck"]["openPlans"] == [
        {"sourceId": "ECO-PLAN-1", "owner": {"code": "ecology"}, "month": month,
         "status": "PLANNED"},
        {"sourceId": "MKT-PLAN-1", "owner": {"code": "market"}, "month": month,
         "status": "PLANNED"},
    ]  # fmt: skip
