"""Publishing through GraphQL, as department systems do it, and reading what was published."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Hub

PUBLISH_ACCEPTANCES = """
mutation($records: [AcceptanceInput!]!, $owner: String, $dryRun: Boolean! = false) {
  publishAcceptances(records: $records, owner: $owner, dryRun: $dryRun) {
    dryRun created updated unchanged retracted accepted reopened
    records { index kind sourceId version change uscc }
  }
}"""

ACCEPTANCE_OF = """
query($uscc: String!) {
  enterprise(uscc: $uscc) {
    rectifications { sourceId acceptance { sourceId verdict opinion version
      history { version change publisher { code } client changedFields } } }
  }
}"""

CHANGES = """
query($after: String, $kinds: [RecordKind!]) {
  changes(after: $after, kinds: $kinds) {
    endCursor hasMore
    changes { kind change version owner { code } sourceId uscc reason
      record { sourceId version ... on Acceptance { verdict opinion } } }
  }
}"""


PURPOSE = "rectification-check: 核查整改验收结果"  # the demo data's grant


def open_rectification(hub: Hub, owner: str) -> tuple[str, str, str]:
    """A rectification of ``owner`` still waiting for its acceptance: source id, USCC, day."""
    row = hub.sql(
        "SELECT r.source_id, e.uscc, r.ordered_on FROM rectification r "
        "JOIN enterprise e ON e.id = r.enterprise_id "
        "LEFT JOIN acceptance a ON a.rectification_id = r.id "
        "WHERE r.owner = :owner AND a.id IS NULL ORDER BY r.id LIMIT 1",
        owner=owner,
    )[0]
    return row[0], row[1], str(row[2])[:10]


def feed_end(hub: Hub, department: str) -> str:
    """Where the department's change feed ends now: paged through, as a new reader would."""
    after = None
    while True:
        page = hub.ask(department, "query($after: String) { changes(after: $after, first: 500) "
                       "{ endCursor hasMore } }", after=after)["data"]["changes"]  # fmt: skip
        after = page["endCursor"]
        if not page["hasMore"]:
            return str(after)


def acceptance(source_id: str, rectification: str, **changes: Any) -> dict[str, Any]:
    return {
        "sourceId": source_id,
        "rectificationSourceId": rectification,
        "acceptedOn": "2026-11-10",
        "verdict": "PASSED",
        "opinion": "整改到位，同意验收",
        **changes,
    }


def test_a_department_publishes_and_others_read_as_policies_allow(writable: Hub) -> None:
    hub = writable
    rectification, uscc, _ = open_rectification(hub, "ecology")
    published = hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[
        acceptance("ECO-ACC-NEW-1", rectification)
    ])  # fmt: skip
    (version,) = hub.sql("SELECT version FROM rectification WHERE source_id = :s",
                         s=rectification)[0]  # fmt: skip
    assert published == {
        "data": {
            "publishAcceptances": {
                "dryRun": False, "created": 1, "updated": 0, "unchanged": 0, "retracted": 0,
                "accepted": 1, "reopened": 0,
                "records": [{"index": 0, "kind": "ACCEPTANCE", "sourceId": "ECO-ACC-NEW-1",
                             "version": 1, "change": "CREATED", "uscc": uscc},
                            # the loop closes: the order it accepts is accepted, a new version
                            {"index": 0, "kind": "RECTIFICATION", "sourceId": rectification,
                             "version": version, "change": "ACCEPTED", "uscc": uscc}],
            }
        }
    }  # fmt: skip

    # Market regulation reads ecology's acceptance results (整改验收) directly, the opinion
    # with a stated purpose...
    dossier = hub.ask("market", ACCEPTANCE_OF, PURPOSE, uscc=uscc)["data"]["enterprise"]
    (order,) = [r for r in dossier["rectifications"] if r["sourceId"] == rectification]
    assert order["acceptance"] == {
        "sourceId": "ECO-ACC-NEW-1", "verdict": "PASSED", "opinion": "整改到位，同意验收",
        "version": 1,
        "history": [{"version": 1, "change": "CREATED", "publisher": {"code": "ecology"},
                     "client": "ecology system", "changedFields": []}],
    }  # fmt: skip
    # ...while fire rescue, with no policy line for them, sees no ecology rectification at all.
    fire = hub.ask("fire", ACCEPTANCE_OF, uscc=uscc)["data"]["enterprise"]
    assert rectification not in [r["sourceId"] for r in fire["rectifications"]]

    # Publishing it again changes nothing; an edit is version 2, in history and in the feed.
    again = hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[
        acceptance("ECO-ACC-NEW-1", rectification)
    ])  # fmt: skip
    assert again["data"]["publishAcceptances"]["unchanged"] == 1
    cursor = feed_end(hub, "market")
    edited = hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[
        acceptance("ECO-ACC-NEW-1", rectification, opinion="复查后确认整改到位")
    ])  # fmt: skip
    assert edited["data"]["publishAcceptances"]["records"][0]["version"] == 2
    for purpose, changed in ((PURPOSE, ["opinion"]), (None, [])):  # not even its name without
        dossier = hub.ask("market", ACCEPTANCE_OF, purpose, uscc=uscc)["data"]["enterprise"]
        (order,) = [r for r in dossier["rectifications"] if r["sourceId"] == rectification]
        assert [
            (v["version"], v["change"], v["changedFields"]) for v in order["acceptance"]["history"]
        ] == [(1, "CREATED", []), (2, "UPDATED", changed)]
    feed = hub.ask("market", CHANGES, PURPOSE, after=cursor)["data"]["changes"]
    assert feed["changes"] == [
        {"kind": "ACCEPTANCE", "change": "UPDATED", "version": 2, "owner": {"code": "ecology"},
         "sourceId": "ECO-ACC-NEW-1", "uscc": uscc, "reason": None,
         "record": {"sourceId": "ECO-ACC-NEW-1", "version": 2, "verdict": "PASSED",
                    "opinion": "复查后确认整改到位"}},
    ]  # fmt: skip
    assert feed["hasMore"] is False
    # Polling from the end finds nothing new and keeps the position.
    empty = hub.ask("market", CHANGES, PURPOSE, after=feed["endCursor"])["data"]["changes"]
    assert (empty["changes"], empty["endCursor"]) == ([], feed["endCursor"])
    # Fire may read no ecology acceptance, so the feed shows it none.
    fire_feed = hub.ask("fire", CHANGES, after=cursor)["data"]["changes"]
    assert fire_feed["changes"] == []


def test_a_bad_batch_is_refused_whole_with_every_problem_named(writable: Hub) -> None:
    hub = writable
    rectification, _, ordered_on = open_rectification(hub, "ecology")
    before = hub.sql("SELECT count(*) FROM acceptance")[0][0]
    versions = hub.sql("SELECT count(*) FROM record_version")[0][0]
    answer = hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[
        acceptance("ECO-ACC-GOOD", rectification),
        acceptance("ECO-ACC-EARLY", rectification, acceptedOn="2001-01-01"),
        acceptance("ECO-ACC-NONE", "NO-SUCH-RECT"),
    ])  # fmt: skip
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["problems"] == [
        {"index": 1, "sourceId": "ECO-ACC-EARLY", "field": "acceptedOn",
         "message": f"2001-01-01 is before the Rectification '{rectification}''s day {ordered_on}"},
        {"index": 2, "sourceId": "ECO-ACC-NONE", "field": "rectificationSourceId",
         "message": "ecology has no Rectification 'NO-SUCH-RECT'; publish it first"},
    ]  # fmt: skip
    assert error["message"] == (
        "2 of 3 records cannot be published, so none was: records[1] (sourceId ECO-ACC-EARLY) "
        f"acceptedOn: 2001-01-01 is before the Rectification '{rectification}''s day "
        f"{ordered_on}; records[2] (sourceId ECO-ACC-NONE) rectificationSourceId: ecology has "
        "no Rectification 'NO-SUCH-RECT'; publish it first"
    )
    assert hub.sql("SELECT count(*) FROM acceptance")[0][0] == before
    assert hub.sql("SELECT count(*) FROM record_version")[0][0] == versions


def test_writing_another_departments_records_is_forbidden(writable: Hub) -> None:
    hub = writable
    rectification, _, _ = open_rectification(hub, "market")
    answer = hub.ask("ecology", PUBLISH_ACCEPTANCES, owner="market", records=[
        acceptance("MKT-ACC-BY-ECO", rectification)
    ])  # fmt: skip
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "owner": "market",
        "field": "Acceptance",
        "reason": "no policy line lets ecology publish market's Acceptance records",
    }
    auditor = hub.ask("auditor", PUBLISH_ACCEPTANCES, records=[
        acceptance("MKT-ACC-BY-AUDITOR", rectification)
    ])  # fmt: skip
    assert auditor["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_writes_and_attempts_are_in_the_access_log(writable: Hub) -> None:
    hub = writable
    rectification, uscc, _ = open_rectification(hub, "ecology")
    hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[acceptance("ECO-ACC-LOG", rectification)])
    hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[acceptance("ECO-ACC-BAD", "NOPE")])
    log = hub.ask(
        "auditor",
        """{ accessLog(first: 2) { edges { node { department operationType outcome
        enterprises written { enterprise type change ids } } } } }""",
    )
    (failed, written) = [edge["node"] for edge in log["data"]["accessLog"]["edges"]]
    (record_id,) = hub.sql("SELECT id FROM acceptance WHERE source_id = 'ECO-ACC-LOG'")[0]
    (order_id,) = hub.sql("SELECT id FROM rectification WHERE source_id = :s",
                          s=rectification)[0]  # fmt: skip
    assert written == {
        "department": "ecology", "operationType": "mutation", "outcome": "OK",
        "enterprises": [uscc],
        "written": [{"enterprise": uscc, "type": "Acceptance", "change": "created",
                     "ids": [str(record_id)]},
                    {"enterprise": uscc, "type": "Rectification", "change": "accepted",
                     "ids": [str(order_id)]}],
    }  # fmt: skip
    assert failed == {
        "department": "ecology", "operationType": "mutation", "outcome": "ERROR",
        "enterprises": [], "written": [],
    }  # fmt: skip


def test_retraction_is_a_version_with_a_reason_and_leaves_the_dossier(writable: Hub) -> None:
    hub = writable
    rectification, uscc, _ = open_rectification(hub, "ecology")
    hub.ask("ecology", PUBLISH_ACCEPTANCES, records=[acceptance("ECO-ACC-OOPS", rectification)])
    cursor = feed_end(hub, "market")
    retracted = hub.ask(
        "ecology",
        """mutation { retractRecords(kind: ACCEPTANCE,
        sourceIds: ["ECO-ACC-OOPS"], reason: "entered against the wrong rectification") {
        retracted records { sourceId version change } } }""",
    )
    assert retracted["data"]["retractRecords"] == {
        "retracted": 1,
        "records": [{"sourceId": "ECO-ACC-OOPS", "version": 2, "change": "RETRACTED"}],
    }
    dossier = hub.ask("market", ACCEPTANCE_OF, uscc=uscc)["data"]["enterprise"]
    (order,) = [r for r in dossier["rectifications"] if r["sourceId"] == rectification]
    assert order["acceptance"] is None
    (change,) = hub.ask("market", CHANGES, after=cursor)["data"]["changes"]["changes"]
    assert (change["change"], change["reason"], change["record"]["sourceId"]) == (
        "RETRACTED",
        "entered against the wrong rectification",
        "ECO-ACC-OOPS",
    )
    assert hub.sql("SELECT retracted FROM acceptance WHERE source_id = 'ECO-ACC-OOPS'")[0][0]


def test_a_credit_repair_reaches_every_department_that_read_the_record(writable: Hub) -> None:
    hub = writable
    row = hub.sql(
        "SELECT c.source_id, e.uscc, c.owner, c.issued_on FROM credit_record c "
        "JOIN enterprise e ON e.id = c.enterprise_id "
        "WHERE c.kind = 'bad_record' AND c.status = 'active' ORDER BY c.id LIMIT 1"
    )[0]
    source_id, uscc, owner = row[0], row[1], row[2]
    # Market regulation's system reads the bad record; transport's reads nothing.
    read = hub.ask(
        "market", f'{{ enterprise(uscc: "{uscc}") {{ creditRecords {{ sourceId status }} }} }}'
    )
    assert {"sourceId": source_id, "status": "ACTIVE"} in read["data"]["enterprise"][
        "creditRecords"
    ]
    repair = {
        "sourceId": f"{source_id}-REPAIR", "creditRecordSourceId": source_id,
        "appliedOn": "2026-10-01", "decidedOn": "2026-10-20", "status": "APPROVED",
    }  # fmt: skip
    answer = hub.ask(
        owner,
        """mutation($records: [CreditRepairInput!]!) {
        publishCreditRepairs(records: $records) { created repaired
        records { kind sourceId change version } } }""",
        records=[repair],
    )
    assert answer["data"]["publishCreditRepairs"]["repaired"] == 1
    assert answer["data"]["publishCreditRepairs"]["records"][1] == {
        "kind": "CREDIT_RECORD",
        "sourceId": source_id,
        "change": "REPAIRED",
        "version": 2,
    }
    # Repaired once, synced everywhere: every reader sees the new status at once...
    again = hub.ask(
        "transport", f'{{ enterprise(uscc: "{uscc}") {{ creditRecords {{ sourceId status }} }} }}'
    )
    assert {"sourceId": source_id, "status": "REPAIRED"} in again["data"]["enterprise"][
        "creditRecords"
    ]
    # ...and the department that read the old record is told to correct its copy.
    notes = hub.ask(
        "market",
        "{ notifications { endCursor notifications { topic kind sourceId uscc version message } } }",
    )
    (note,) = notes["data"]["notifications"]["notifications"]
    assert {k: v for k, v in note.items() if k != "message"} == {
        "topic": "credit_repaired", "kind": "CREDIT_RECORD", "sourceId": source_id,
        "uscc": uscc, "version": 2,
    }  # fmt: skip
    assert "correct any copy you keep" in note["message"]
    cursor = notes["data"]["notifications"]["endCursor"]
    later = hub.ask(
        "market",
        "query($after: String) { notifications(after: $after) { notifications { topic } } }",
        after=cursor,
    )
    assert later["data"]["notifications"]["notifications"] == []
    transport = hub.ask("transport", "{ notifications { notifications { topic } } }")
    assert transport["data"]["notifications"]["notifications"] == []


def test_published_values_survive_the_round_trip(writable: Hub) -> None:
    """A penalty published through GraphQL reads back field by field, amount in yuan."""
    hub = writable
    inspection, uscc = hub.sql(
        "SELECT i.source_id, e.uscc FROM inspection i JOIN enterprise e ON e.id = i.enterprise_id "
        "WHERE i.owner = 'market' AND i.inspected_on < '2026-10-01' ORDER BY i.id LIMIT 1"
    )[0]
    penalty = {
        "sourceId": "MKT-PEN-NEW", "uscc": uscc, "inspectionSourceId": inspection,
        "caseNumber": "杭市监罚〔2026〕9999号", "violation": "未按规定公示", "legalBasis": "《企业信息公示暂行条例》第十八条",
        "amount": "12345.67", "decidedOn": "2026-11-01", "status": "DECIDED",
        "decisionIssued": True, "complianceSuggestionIssued": True, "creditRepairNoticeIssued": True,
    }  # fmt: skip
    answer = hub.ask(
        "market",
        """mutation($records: [PenaltyInput!]!) {
        publishPenalties(records: $records) { created } }""",
        records=[penalty],
    )
    assert answer == {"data": {"publishPenalties": {"created": 1}}}
    read = hub.ask(
        "market",
        f"""{{ enterprise(uscc: "{uscc}") {{ penalties {{ sourceId caseNumber
        amount decidedOn status decisionIssued minorFirstOffenceExempt }} }} }}""",
    )
    assert {
        "sourceId": "MKT-PEN-NEW", "caseNumber": "杭市监罚〔2026〕9999号", "amount": "12345.67",
        "decidedOn": "2026-11-01", "status": "DECIDED", "decisionIssued": True,
        "minorFirstOffenceExempt": False,
    } in read["data"]["enterprise"]["penalties"]  # fmt: skip
    stored = json.loads(
        hub.sql("SELECT data FROM record_version WHERE source_id = 'MKT-PEN-NEW'")[0][0]
    )
    assert (stored["amount"], stored["status"]) == ("12345.67", "decided")


PUBLISH_PENALTIES = """
mutation($records: [PenaltyInput!]!) {
  publishPenalties(records: $records) { created }
}"""


def test_hostile_values_are_bad_input_never_internal(writable: Hub) -> None:
    """Values that crashed the hub (1e400) or failed PostgreSQL's INSERT (NUL, lone
    surrogates) are problems named by record and field (issue 11)."""
    hub = writable
    uscc = hub.sql("SELECT uscc FROM enterprise ORDER BY id LIMIT 1")[0][0]

    def penalty(number: int, **changes: Any) -> dict[str, Any]:
        return {
            "sourceId": f"ECO-PEN-NEW-{number}", "uscc": uscc, "caseNumber": f"杭环罚〔2026〕第T{number}号",
            "violation": "超标排放大气污染物", "legalBasis": "《中华人民共和国大气污染防治法》第九十九条",
            "amount": "5000", "decidedOn": "2026-10-15", "status": "DECIDED", **changes,
        }  # fmt: skip

    before = hub.sql("SELECT count(*) FROM penalty")[0][0]

    def send(records: list[dict[str, Any]]) -> Any:
        # As JSON escapes (\u0000, \ud800), which any JSON parser reads into strings.
        body = json.dumps({"query": PUBLISH_PENALTIES, "variables": {"records": records}})
        return hub.client.post("/graphql", content=body, headers={
            "Authorization": f"Bearer {hub.tokens['ecology']}", "Content-Type": "application/json",
        })  # fmt: skip

    # Text no record may hold is refused at the door, naming where it is (hub/params.py)...
    for record, message in (
        (penalty(3, sourceId="ECO-PEN-NEW-\x00"), "variables.records[0].sourceId holds a "
         "control character (U+0000 at position 13); remove it"),
        (penalty(4, caseNumber="杭环罚\ud800"), "variables.records[0].caseNumber holds a "
         "lone surrogate (U+D800 at position 4); remove it"),
        (penalty(5, violation="超标\x1b[2J排放"), "variables.records[0].violation holds a "
         "control character (U+001B at position 3); remove it"),
    ):  # fmt: skip
        refused = send([record])
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"] == [
            {"message": message, "extensions": {"code": "BAD_USER_INPUT"}}
        ]
    # ...and values that are text but no amount or day the hub accepts, by record and field.
    response = send([penalty(1, amount="1e400"), penalty(2, amount="-1e-400"),
                     penalty(6, decidedOn="0001-01-01")])  # fmt: skip
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["problems"] == [
        {"index": 0, "sourceId": "ECO-PEN-NEW-1", "field": "amount",
         "message": "1E+400 is larger than any fine the hub accepts"},
        {"index": 1, "sourceId": "ECO-PEN-NEW-2", "field": "amount",
         "message": "must not be negative, not -1E-400"},
        {"index": 2, "sourceId": "ECO-PEN-NEW-6", "field": "decidedOn",
         "message": "0001-01-01 is before 1990-01-01, the earliest day the hub accepts"},
    ]  # fmt: skip
    assert hub.sql("SELECT count(*) FROM penalty")[0][0] == before
