"""Departments acting as one (issue 13), on SQLite and PostgreSQL: a department's part in a
record opens fields of it, conflicting orders are found, shown and settled, and acceptances
close the loop of their orders."""

import asyncio
from typing import Any

from hub.conflicts import find_conflicts
from hub.db import create_engine
from hub.policy import load_policy
from hub.policy.files import read_conflicts
from hub.publishing.write import requirement_problems
from hub.records import today
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR
from tests.conftest import Hub

POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
INSPECTIONS = """query($uscc: String!) { enterprise(uscc: $uscc) { inspections {
  id owner { code } participants { code } findings { category description } } } }"""
ORDERS = """query($uscc: String!) { enterprise(uscc: $uscc) { rectifications {
  id sourceId owner { code } requirement requirementCodes status overdue
  assistingDepartments { code } acceptance { verdict } } } }"""
LAST_SERVED = """{ accessLog(first: 1) { edges { node { department
  served { type ids fields relations { field relation } } } } } }"""
CONFLICTS = """query($settled: Boolean) { conflicts(filter: {settled: $settled}) {
  id uscc reason settledAt settledBy { code } settlement
  first { owner { code } sourceId code rectification { requirement } }
  second { owner { code } sourceId code rectification { requirement } } } }"""
SETTLE = """mutation($id: ID!, $how: String!) { settleConflict(id: $id, settlement: $how) {
  id settledBy { code } settlement } }"""


def records(answer: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in answer["data"]["enterprise"][kind]}


def errors_at(answer: dict[str, Any], field: str) -> list[dict[str, Any]]:
    return [e for e in answer.get("errors", []) if e["extensions"].get("field") == field]


def test_every_participant_reads_the_findings_and_others_do_not(writable: Hub) -> None:
    hub = writable
    joint = hub.sql(
        "SELECT i.id, i.owner, p.department, e.uscc FROM inspection i "
        "JOIN inspection_participant p ON p.inspection_id = i.id "
        "JOIN enterprise e ON e.id = i.enterprise_id "
        "WHERE EXISTS (SELECT 1 FROM inspection_finding f WHERE f.inspection_id = i.id) "
        "ORDER BY i.id"
    )
    opened = 0
    for inspection_id, owner, participant, uscc in joint:
        mine = records(hub.ask(participant, INSPECTIONS, uscc=uscc), "inspections")
        assert mine[str(inspection_id)]["findings"], (inspection_id, participant)
        opened += not POLICY.decide(
            participant, owner, "Inspection.findings", purpose=False
        ).allowed
    assert opened  # some participants read the findings only because they took part
    # Departments that took no part and inspect with no group of the owner's do not.
    checked = 0
    for inspection_id, owner, _, uscc in joint:
        taking_part = {row[0] for row in hub.sql(
            "SELECT department FROM inspection_participant WHERE inspection_id = :i",
            i=inspection_id)}  # fmt: skip
        for outsider in ("culture", "transport", "agriculture", "planning"):
            if outsider in taking_part | {owner}:
                continue
            if POLICY.decide(outsider, owner, "Inspection.findings", purpose=False).allowed:
                continue
            answer = hub.ask(outsider, INSPECTIONS, uscc=uscc)
            assert records(answer, "inspections")[str(inspection_id)]["findings"] is None
            (error, *_) = errors_at(answer, "Inspection.findings")
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert "open to a participant of the joint inspection" in error["extensions"]["reason"]
            checked += 1
            break
    assert checked


def test_the_access_record_names_the_relation_that_served_a_field(writable: Hub) -> None:
    hub = writable
    inspection_id, _owner, participant, uscc = next(
        row for row in hub.sql(
            "SELECT i.id, i.owner, p.department, e.uscc FROM inspection i "
            "JOIN inspection_participant p ON p.inspection_id = i.id "
            "JOIN enterprise e ON e.id = i.enterprise_id "
            "WHERE EXISTS (SELECT 1 FROM inspection_finding f WHERE f.inspection_id = i.id) "
            "ORDER BY i.id")
        if not POLICY.decide(row[2], row[1], "Inspection.findings", purpose=False).allowed
    )  # fmt: skip
    hub.ask(participant, INSPECTIONS, uscc=uscc)
    (node,) = [e["node"] for e in hub.ask("auditor", LAST_SERVED)["data"]["accessLog"]["edges"]]
    assert node["department"] == participant
    (group,) = [g for g in node["served"]
                if g["type"] == "Inspection" and str(inspection_id) in g["ids"]]  # fmt: skip
    assert "findings" in group["fields"]
    assert {"field": "Inspection.findings", "relation": "participant"} in group["relations"]
    findings = [g for g in node["served"] if g["type"] == "Finding"]
    assert findings
    assert all(
        {"field": "Finding.description", "relation": "participant"} in g["relations"]
        for g in findings
    )


def test_every_assisting_department_reads_the_order_it_helps_with(writable: Hub) -> None:
    hub = writable
    assisted = hub.sql(
        "SELECT r.id, r.owner, a.department, e.uscc FROM rectification r "
        "JOIN rectification_assistant a ON a.rectification_id = r.id "
        "JOIN enterprise e ON e.id = r.enterprise_id ORDER BY r.id"
    )
    assert assisted
    opened = 0
    for order_id, owner, helper, uscc in assisted:
        orders = records(hub.ask(helper, ORDERS, uscc=uscc), "rectifications")
        order = orders[str(order_id)]
        assert order["requirement"] is not None
        assert order["status"] is not None
        accepted = hub.sql("SELECT verdict FROM acceptance WHERE rectification_id = :r",
                           r=order_id)  # fmt: skip
        if accepted:
            assert order["acceptance"]["verdict"] == accepted[0][0].upper()
        opened += not POLICY.readable(helper, owner, "Rectification", purpose=False)
    assert opened  # most helpers read the order only because they help
    # A department that neither helps nor reads the owner's orders does not see them at all.
    order_id, owner, _, uscc = next(
        row for row in assisted if not POLICY.readable("culture", row[1], "Rectification",
                                                      purpose=False)
        and "culture" not in {r[0] for r in hub.sql(
            "SELECT department FROM rectification_assistant WHERE rectification_id = :r",
            r=row[0])}
    )  # fmt: skip
    assert str(order_id) not in records(hub.ask("culture", ORDERS, uscc=uscc), "rectifications")


def test_the_window_conflict_is_found_shown_to_both_and_settled(writable: Hub) -> None:
    hub = writable
    (found,) = hub.ask("ecology", CONFLICTS)["data"]["conflicts"]
    assert (found["first"]["owner"]["code"], found["first"]["code"]) == ("ecology", "voc-enclosed")
    assert (found["second"]["owner"]["code"], found["second"]["code"]) == (
        "emergency",
        "ventilation-open",
    )
    assert "标准打架" in found["reason"]
    assert found["settledAt"] is None
    # Each side reads the other's requirement through the conflict; law enforcement reads both.
    assert "门窗常开" in found["second"]["rectification"]["requirement"]
    assert hub.ask("emergency", CONFLICTS)["data"]["conflicts"] == [found]
    assert hub.ask("enforcement", CONFLICTS)["data"]["conflicts"] == [found]
    (read,) = [e["node"] for e in hub.ask("auditor", LAST_SERVED)["data"]["accessLog"]["edges"]]
    assert read["department"] == "enforcement"  # what each party read is in the access log
    assert {
        "type": "Conflict",
        "ids": [found["id"]],
        "fields": ["first", "second", "reason", "foundAt", "settledAt", "settledBy", "settlement"],
        "relations": [],
    } in read["served"]
    assert not POLICY.readable("ecology", "emergency", "Rectification", purpose=False)
    for outsider in ("market", "fire", "culture"):  # fire helps emergency, but is no party
        assert hub.ask(outsider, CONFLICTS)["data"]["conflicts"] == []
        refused = hub.ask(outsider, SETTLE, id=found["id"], how="我方认为应当开窗")
        assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # The parties were told, and are told again when it is settled.
    notes = "{ notifications { notifications { topic sourceId message } } }"
    told = hub.ask("ecology", notes)["data"]["notifications"]["notifications"]
    assert [n["topic"] for n in told] == ["conflict_found"]
    assert told[0]["sourceId"] == found["second"]["sourceId"]

    how = "联合会商：喷涂作业时密闭门窗并开启防爆型负压排风，两项要求同时满足"
    settled = hub.ask("emergency", SETTLE, id=found["id"], how=how)["data"]["settleConflict"]
    assert settled == {"id": found["id"], "settledBy": {"code": "emergency"}, "settlement": how}
    assert hub.ask("ecology", CONFLICTS)["data"]["conflicts"] == []  # no longer open
    (closed,) = hub.ask("ecology", CONFLICTS, settled=True)["data"]["conflicts"]
    assert (closed["settledBy"], closed["settlement"]) == ({"code": "emergency"}, how)
    told = hub.ask("ecology", notes)["data"]["notifications"]["notifications"]
    assert [n["topic"] for n in told] == ["conflict_found", "conflict_settled"]
    # Settled, the conflict opens nothing any more: each side is back to what its lines give.
    orders = records(hub.ask("ecology", ORDERS, uscc=found["uscc"]), "rectifications")
    assert found["second"]["sourceId"] not in {o["sourceId"] for o in orders.values()}
    again = hub.ask("enforcement", SETTLE, id=found["id"], how="再次处理")
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "was settled" in again["errors"][0]["message"]
    log = hub.ask("auditor", "{ accessLog(first: 6) { edges { node { department written "
                  "{ type change ids } } } } }")["data"]["accessLog"]["edges"]  # fmt: skip
    assert {"type": "Conflict", "change": "settled", "ids": [found["id"]]} in [
        w for edge in log for w in edge["node"]["written"]
    ]


PUBLISH_ORDERS = """mutation($records: [RectificationInput!]!) {
  publishRectifications(records: $records) { created records { sourceId change } } }"""


def test_publishing_an_order_that_contradicts_another_records_a_conflict(writable: Hub) -> None:
    hub = writable
    (found,) = hub.ask("emergency", CONFLICTS)["data"]["conflicts"]
    uscc = found["uscc"]
    (inspection,) = hub.sql(
        "SELECT i.source_id FROM inspection i JOIN enterprise e ON e.id = i.enterprise_id "
        "WHERE e.uscc = :u AND i.owner = 'emergency' ORDER BY i.id DESC", u=uscc
    )[:1]  # fmt: skip
    order = {
        "sourceId": "EMG-RECT-WINDOWS-2", "uscc": uscc, "inspectionSourceId": inspection[0],
        "requirement": "仓库区门窗保持开启通风", "requirementCodes": ["ventilation-open"],
        "orderedOn": "2026-11-20", "deadline": "2027-01-20", "status": "IN_PROGRESS",
    }  # fmt: skip
    for department, codes, said in (
        ("emergency", ["windows-half-open"], "unknown requirement code 'windows-half-open'"),
        # Nobody makes up a conflict to read another's orders: codes are the owner's remit...
        ("culture", ["voc-enclosed"], "voc-enclosed is not a requirement culture orders: "
         "policies/requirements.csv gives it to ecology"),
        # ...and one order cannot contradict itself.
        ("emergency", ["ventilation-open", "voc-enclosed"], "voc-enclosed is not a "
         "requirement emergency orders"),
    ):  # fmt: skip
        refused = hub.ask(department, PUBLISH_ORDERS, records=[order | {
            "sourceId": f"{department.upper()}-RECT-X", "requirementCodes": codes,
            "inspectionSourceId": None, "penaltySourceId": None,
        }])  # fmt: skip
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert said in error["message"], error["message"]
    contradicting = {"sourceId": "X", "requirementCodes": ["ventilation-open", "voc-enclosed"]}
    assert [p.message for p in requirement_problems(POLICY, "ecology", 0, contradicting)][-1] == (
        "ventilation-open and voc-enclosed contradict each other (policies/conflicts.csv): one "
        "order cannot require both"
    )
    assert hub.ask("emergency", CONFLICTS)["data"]["conflicts"] == [found]  # nothing half-done

    published = hub.ask("emergency", PUBLISH_ORDERS, records=[order])
    assert published["data"]["publishRectifications"]["created"] == 1
    conflicts = hub.ask("ecology", CONFLICTS)["data"]["conflicts"]
    assert [c["second"]["sourceId"] for c in conflicts] == [
        found["second"]["sourceId"],
        "EMG-RECT-WINDOWS-2",
    ]
    assert conflicts[1]["second"]["rectification"]["requirement"] == "仓库区门窗保持开启通风"


PUBLISH_ACCEPTANCES = """mutation($records: [AcceptanceInput!]!) {
  publishAcceptances(records: $records) { accepted reopened records { kind change } } }"""


def test_an_acceptance_closes_its_order_and_a_failed_one_reopens_it(writable: Hub) -> None:
    hub = writable
    source_id, uscc, order_id = hub.sql(
        "SELECT r.source_id, e.uscc, r.id FROM rectification r "
        "JOIN enterprise e ON e.id = r.enterprise_id "
        "LEFT JOIN acceptance a ON a.rectification_id = r.id "
        "WHERE r.owner = 'ecology' AND a.id IS NULL AND r.status = 'submitted' ORDER BY r.id"
    )[0]
    before = records(hub.ask("ecology", ORDERS, uscc=uscc), "rectifications")[str(order_id)]
    assert before["status"] == "SUBMITTED"
    failed = {
        "sourceId": "ECO-ACC-LOOP",
        "rectificationSourceId": source_id,
        "acceptedOn": "2026-11-20",
        "verdict": "FAILED",
        "opinion": "废气收集率仍不达标",
    }
    answer = hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[failed])["data"]
    assert answer["publishAcceptances"] == {
        "accepted": 0, "reopened": 1,
        "records": [{"kind": "ACCEPTANCE", "change": "CREATED"},
                    {"kind": "RECTIFICATION", "change": "REOPENED"}],
    }  # fmt: skip
    order = records(hub.ask("ecology", ORDERS, uscc=uscc), "rectifications")[str(order_id)]
    assert order["status"] == "IN_PROGRESS"
    passed = failed | {"acceptedOn": "2026-11-25", "verdict": "PASSED", "opinion": "整改到位"}
    answer = hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[passed])["data"]
    assert answer["publishAcceptances"]["accepted"] == 1
    order = records(hub.ask("ecology", ORDERS, uscc=uscc), "rectifications")[str(order_id)]
    assert (order["status"], order["overdue"]) == ("ACCEPTED", False)
    # Every step is a version in the change feed, readable by whoever reads the order.
    feed = hub.ask("market", "{ changes(first: 500) { changes { kind change sourceId reason } } }")
    steps = [(c["change"], c["reason"]) for c in feed["data"]["changes"]["changes"]
             if c["kind"] == "RECTIFICATION" and c["sourceId"] == source_id]  # fmt: skip
    assert [change for change, _ in steps][-2:] == ["REOPENED", "ACCEPTED"]
    assert "废气收集率" not in str(steps)  # the opinion is the acceptance's, not the feed's
    # An accepted order leaves the overdue list; the owner can still correct it.
    overdue = (
        "query($uscc: String!) { enterprise(uscc: $uscc) { rectifications(overdue: true) { id } } }"
    )
    assert {"id": str(order_id)} not in hub.ask("ecology", overdue, uscc=uscc)["data"][
        "enterprise"]["rectifications"]  # fmt: skip


def test_overdue_is_computed_from_the_deadline_and_can_be_filtered_on(writable: Hub) -> None:
    hub = writable
    late = hub.sql(
        "SELECT e.uscc, r.id FROM rectification r JOIN enterprise e ON e.id = r.enterprise_id "
        "WHERE r.owner = 'ecology' AND r.status <> 'accepted' AND r.deadline < :today",
        today=today(),
    )
    assert late
    query = """query($uscc: String!, $overdue: Boolean) { enterprise(uscc: $uscc) {
      rectifications(overdue: $overdue) { id overdue deadline status } } }"""
    for uscc, order_id in late[:5]:
        listed = hub.ask("ecology", query, uscc=uscc, overdue=True)["data"]["enterprise"]
        assert str(order_id) in {r["id"] for r in listed["rectifications"]}
        assert all(r["overdue"] and r["status"] != "ACCEPTED" for r in listed["rectifications"])
        others = hub.ask("ecology", query, uscc=uscc, overdue=False)["data"]["enterprise"]
        assert not any(r["overdue"] for r in others["rectifications"])


PENALTIES = """query($uscc: String!) { enterprise(uscc: $uscc) { penalties {
  id owner { code } status minorFirstOffenceExempt legalBasis transferredTo { code } } } }"""


def test_first_offence_exemptions_are_no_penalty_and_law_enforcement_weighs_them(
    writable: Hub,
) -> None:
    hub = writable
    penalty_id, _owner, uscc = hub.sql(
        "SELECT p.id, p.owner, e.uscc FROM penalty p JOIN enterprise e ON e.id = p.enterprise_id "
        "WHERE p.minor_first_offence_exempt AND p.owner <> 'market' ORDER BY p.id"
    )[0]
    seen = records(hub.ask("enforcement", PENALTIES, uscc=uscc), "penalties")[str(penalty_id)]
    assert (seen["status"], seen["minorFirstOffenceExempt"]) == ("EXEMPT", True)
    answer = hub.ask("market", PENALTIES, uscc=uscc)
    seen = records(answer, "penalties")[str(penalty_id)]
    assert (seen["status"], seen["minorFirstOffenceExempt"]) == ("EXEMPT", None)
    assert errors_at(answer, "Penalty.minorFirstOffenceExempt")


PUBLISH_PENALTIES = """mutation($records: [PenaltyInput!]!) {
  publishPenalties(records: $records) { created } }"""


def test_the_department_a_case_is_transferred_to_reads_its_grounds(writable: Hub) -> None:
    hub = writable
    (inspection, uscc) = hub.sql(
        "SELECT i.source_id, e.uscc FROM inspection i JOIN enterprise e ON e.id = i.enterprise_id "
        "WHERE i.owner = 'ecology' ORDER BY i.id"
    )[0]
    case = {
        "sourceId": "ECO-PEN-MOVED", "uscc": uscc, "inspectionSourceId": inspection,
        "caseNumber": "杭环罚〔2026〕9001号", "violation": "非法倾倒危险化学品",
        "legalBasis": "《危险化学品安全管理条例》第八十条", "amount": "0", "decidedOn": "2026-11-20",
        "status": "DECIDED", "transferredTo": "emergency",
    }  # fmt: skip
    assert not POLICY.decide("emergency", "ecology", "Penalty.legalBasis", purpose=False).allowed
    to_self = hub.ask("ecology", PUBLISH_PENALTIES, records=[case | {"transferredTo": "ecology"}])
    assert "not to its owner" in to_self["errors"][0]["message"]
    assert hub.ask("ecology", PUBLISH_PENALTIES, records=[case])["data"] == {
        "publishPenalties": {"created": 1}
    }
    (moved_id,) = hub.sql("SELECT id FROM penalty WHERE source_id = 'ECO-PEN-MOVED'")[0]
    answer = hub.ask("emergency", PENALTIES, uscc=uscc)
    moved = records(answer, "penalties")[str(moved_id)]
    assert moved["legalBasis"] == case["legalBasis"]
    assert moved["transferredTo"] == {"code": "emergency"}
    others = [p for i, p in records(answer, "penalties").items() if i != str(moved_id)]
    assert all(p["legalBasis"] is None for p in others if p["owner"]["code"] == "ecology")


def test_relations_cost_no_casbin_evaluation_on_a_warm_request(writable: Hub) -> None:
    hub = writable
    policy = hub.client.app.state.policies.current  # type: ignore[attr-defined]
    (uscc,) = hub.sql("SELECT uscc FROM enterprise e JOIN conflict c "
                      "ON c.enterprise_id = e.id")[0]  # fmt: skip
    query = INSPECTIONS.replace("inspections {", "rectifications { requirement } inspections {")
    for department in ("fire", "ecology", "emergency"):
        hub.ask(department, query, uscc=uscc)
    before = policy.evaluations
    for department in ("fire", "ecology", "emergency"):
        answer = hub.ask(department, query, uscc=uscc)
        assert answer["data"]["enterprise"]["inspections"]
    assert policy.evaluations == before


def test_the_change_feed_holds_the_records_a_department_has_a_part_in(writable: Hub) -> None:
    hub = writable
    order_id, owner, helper = next(
        row for row in hub.sql(
            "SELECT r.id, r.owner, a.department FROM rectification r "
            "JOIN rectification_assistant a ON a.rectification_id = r.id ORDER BY r.id")
        if not POLICY.readable(row[2], row[1], "Rectification", purpose=False)
    )  # fmt: skip
    feed = """query($after: String) { changes(kinds: [RECTIFICATION], first: 500, after: $after) {
      endCursor hasMore changes { owner { code } record { id } } } }"""
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = hub.ask(helper, feed, after=after)["data"]["changes"]
        seen += page["changes"]
        after = page["endCursor"]
        if not page["hasMore"]:
            break
    from_owner = {c["record"]["id"] for c in seen if c["owner"]["code"] == owner}
    assert str(order_id) in from_owner  # the order it helps with...
    helped = {str(row[0]) for row in hub.sql(
        "SELECT rectification_id FROM rectification_assistant WHERE department = :d",
        d=helper)}  # fmt: skip
    assert from_owner <= helped  # ...and no other order of that owner


def test_finding_conflicts_takes_any_number_of_enterprises(writable: Hub) -> None:
    """A demo load of 100,000 enterprises asks about all of them at once: more than one
    statement may hold parameters for (asyncpg: 32,767)."""

    async def find() -> int:
        engine = create_engine(writable.settings)
        async with engine.begin() as connection:
            found = await find_conflicts(
                connection, read_conflicts(DEFAULT_POLICY_DIR), range(1, 100_001)
            )
        await engine.dispose()
        return len(found)

    assert asyncio.run(find()) == 0  # the demo's one conflict is recorded already
    assert writable.sql("SELECT count(*) FROM conflict") == [(1,)]


def test_hostile_ids_and_cursors_are_bad_input_never_internal(writable: Hub) -> None:
    """Digits of other scripts (str.isdigit takes ３, ³ and ٣, int takes some of them) and
    numbers past their column (a BIGINT, the INTEGER of a conflict's, a grant's or a
    notification's id) are nobody's id: BAD_USER_INPUT, and nothing is settled."""
    import base64

    for hostile in ("①", "³", "٣", "１", "9" * 20, str(2**63), "-1", "1e3", " 1", str(2**31)):
        for caller, query, variables in (
            ("ecology", SETTLE, {"id": hostile, "how": "x"}),
            ("ecology", "mutation($id: ID!) { revokeGrant(id: $id, reason: \"x\") { id } }",
             {"id": hostile}),
            ("market", "query($after: String) { changes(after: $after) { endCursor } }",
             {"after": base64.urlsafe_b64encode(f"change:{hostile}".encode()).decode()}),
            ("market", "query($after: String) { notifications(after: $after) { endCursor } }",
             {"after": base64.urlsafe_b64encode(f"notification:{hostile}".encode()).decode()}),
        ):  # fmt: skip
            if "changes" in query and hostile == str(2**31):
                continue  # a position in the feed (a BIGINT): no record after it, no error
            answer = writable.ask(caller, query, **variables)
            codes = {e["extensions"]["code"] for e in answer["errors"]}
            assert codes == {"BAD_USER_INPUT"}, (hostile, query, answer)
    assert writable.sql("SELECT count(*) FROM conflict WHERE settled_at IS NOT NULL") == [(0,)]


def test_a_request_writes_at_most_one_batch_however_many_aliases(writable: Hub) -> None:
    """Twenty aliased dry runs of 1,000 records each held the write lock for 15 s while
    others' requests waited: a request writes at most 1,000 records in all."""
    owner, inspection, uscc = writable.sql(
        "SELECT i.owner, i.source_id, e.uscc FROM inspection i "
        "JOIN enterprise e ON e.id = i.enterprise_id ORDER BY i.id LIMIT 1"
    )[0]
    records = [{"sourceId": f"RECT-{n}", "uscc": uscc, "inspectionSourceId": inspection,
                "requirement": "x", "orderedOn": "2026-11-20", "deadline": "2026-12-20",
                "status": "IN_PROGRESS"} for n in range(600)]  # fmt: skip
    aliases = " ".join(
        f"a{n}: publishRectifications(records: $records, dryRun: true) {{ created }}"
        for n in range(2)
    )
    answer = writable.ask(
        owner, f"mutation($records: [RectificationInput!]!) {{ {aliases} }}", records=records
    )
    (error,) = answer["errors"]
    assert error["path"] == ["a1"]  # the first 600 were checked; the next 600 are refused
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "records"}
    assert "this request would write 1200 records; write at most 1000" in error["message"]
    assert answer["data"] is None  # publishing answers are never null: the whole answer is
