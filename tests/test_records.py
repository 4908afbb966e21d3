"""The published form of each kind of record: canonical values, or every problem by field."""

import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import AcceptanceVerdict, InspectionResult
from hub.records import KINDS, Problem, latest_day, parse

TODAY = date(2026, 11, 1)
USCC = "91110000600037341L"  # the example of GB 32100-2015
DEPARTMENT_LIST = (
    "market, ecology, emergency, enforcement, fire, planning, transport, health, agriculture, "
    "culture"
)

# A valid record of each kind, in the plainest published form.
VALID: dict[str, dict[str, Any]] = {
    "inspections": {
        "sourceId": "ECOLOGY-INS-1",
        "uscc": USCC,
        "actionCode": "330106202610010100001",
        "kind": "joint",
        "inspectedOn": "2026-10-01",
        "result": "problems_found",
        "participants": ["fire", "emergency"],
        "findings": [{"category": "废气治理", "description": "VOCs收集处理设施未正常运行"}],
    },
    "penalties": {
        "sourceId": "ECOLOGY-PEN-1",
        "uscc": USCC,
        "inspectionSourceId": "ECOLOGY-INS-1",
        "caseNumber": "杭环罚〔2026〕12号",
        "violation": "超标排放大气污染物",
        "legalBasis": "《中华人民共和国大气污染防治法》第九十九条",
        "amount": "125000.5",
        "decidedOn": "2026-10-15",
        "status": "decided",
        "minorFirstOffenceExempt": False,
        "decisionIssued": True,
        "complianceSuggestionIssued": True,
        "creditRepairNoticeIssued": True,
    },
    "rectifications": {
        "sourceId": "ECOLOGY-RECT-1",
        "uscc": USCC,
        "inspectionSourceId": "ECOLOGY-INS-1",
        "penaltySourceId": "ECOLOGY-PEN-1",
        "requirement": "修复废气收集处理设施，整改完成后申请验收。",
        "orderedOn": "2026-10-15",
        "deadline": "2026-12-15",  # deadlines may lie ahead
        "status": "in_progress",
        "assistingDepartments": ["enforcement"],
    },
    "acceptances": {
        "sourceId": "ECOLOGY-ACC-1",
        "rectificationSourceId": "ECOLOGY-RECT-1",
        "acceptedOn": "2026-10-30",
        "verdict": "passed",
        "opinion": "资料齐全，整改措施落实到位",
    },
    "creditRecords": {
        "sourceId": "ECOLOGY-CRD-1",
        "uscc": USCC,
        "kind": "bad_record",
        "level": "serious",
        "reason": "超标排放大气污染物，罚款125000元（杭环罚〔2026〕12号）",
        "issuedOn": "2026-10-15",
        "expiresOn": "2029-10-14",
        "status": "active",
    },
    "creditRepairs": {
        "sourceId": "ECOLOGY-REP-1",
        "creditRecordSourceId": "ECOLOGY-CRD-1",
        "appliedOn": "2026-10-20",
        "decidedOn": "2026-10-28",
        "status": "approved",
        "opinion": "已履行行政处罚决定，同意信用修复",
    },
    "inspectionPlans": {
        "sourceId": "ECOLOGY-PLAN-1",
        "uscc": USCC,
        "month": "2026-12",  # plans lie ahead
        "subject": "废气治理",
        "kind": "joint",
        "status": "done",
        "inspectionSourceId": "ECOLOGY-INS-1",
    },
}

# What parse makes of each VALID record: every field of the kind, optional ones filled in.
CANONICAL: dict[str, dict[str, Any]] = {
    "inspections": VALID["inspections"] | {"participants": ["emergency", "fire"]},
    "penalties": VALID["penalties"] | {"amount": "125000.50", "transferredTo": None},
    "rectifications": VALID["rectifications"] | {"requirementCodes": []},
    "acceptances": VALID["acceptances"],
    "creditRecords": VALID["creditRecords"],
    "creditRepairs": VALID["creditRepairs"],
    "inspectionPlans": VALID["inspectionPlans"],
}


def test_the_kinds_and_their_types() -> None:
    assert {name: kind.type_name for name, kind in KINDS.items()} == {
        "inspections": "Inspection",
        "penalties": "Penalty",
        "rectifications": "Rectification",
        "acceptances": "Acceptance",
        "creditRecords": "CreditRecord",
        "creditRepairs": "CreditRepair",
        "inspectionPlans": "InspectionPlan",
    }


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_valid_record_parses_to_its_canonical_plain_json(kind: str) -> None:
    values, problems = parse(KINDS[kind], 0, VALID[kind], TODAY)
    assert problems == []
    assert values == CANONICAL[kind]
    # Plain JSON (no dates, enumeration members or decimals): stored and compared as is.
    assert json.loads(json.dumps(values)) == values
    assert {type(value) for value in values.values()} <= {str, bool, list, type(None)}
    assert all(type(value) is str for value in values.values() if isinstance(value, str))


@pytest.mark.parametrize(
    ("kind", "record", "canonical"),
    [
        (
            "inspections",
            {
                "sourceId": "  ECOLOGY-INS-2 ",
                "uscc": " 91110000600037341l ",  # copied from a document: case and spaces
                "actionCode": "330106202610010100002",
                "kind": "JOINT",  # a GraphQL enumeration name, as files may send it
                "inspectedOn": date(2026, 10, 2),
                "result": InspectionResult.NO_PROBLEM,  # a member, as GraphQL sends it
                "participants": "fire; emergency;fire",  # from CSV
                "findings": '[{"category": " 消防 ", "description": "通道堵塞"}]',  # from CSV
            },
            {
                "sourceId": "ECOLOGY-INS-2",
                "uscc": USCC,
                "actionCode": "330106202610010100002",
                "kind": "joint",
                "inspectedOn": "2026-10-02",
                "result": "no_problem",
                "participants": ["emergency", "fire"],
                "findings": [{"category": "消防", "description": "通道堵塞"}],
            },
        ),
        (
            "inspections",
            {
                "sourceId": "ECOLOGY-INS-3",
                "uscc": USCC,
                "actionCode": "330106202610010100003",
                "kind": "routine",
                "inspectedOn": "2026-11-01",  # today is not the future
                "result": "no_problem",
                "participants": "",
                "findings": "",
            },
            {
                "sourceId": "ECOLOGY-INS-3",
                "uscc": USCC,
                "actionCode": "330106202610010100003",
                "kind": "routine",
                "inspectedOn": "2026-11-01",
                "result": "no_problem",
                "participants": [],
                "findings": [],
            },
        ),
        (
            "penalties",
            {
                "sourceId": "ECOLOGY-PEN-2",
                "uscc": USCC,
                "caseNumber": "杭环罚〔2026〕13号",
                "violation": "未按规定设置危险废物识别标志",
                "legalBasis": "《中华人民共和国固体废物污染环境防治法》第一百一十二条",
                "amount": 0,
                "decidedOn": "2026-10-16",
                "status": "EXEMPT",
                "minorFirstOffenceExempt": "yes",
            },
            {
                "sourceId": "ECOLOGY-PEN-2",
                "uscc": USCC,
                "inspectionSourceId": None,
                "caseNumber": "杭环罚〔2026〕13号",
                "violation": "未按规定设置危险废物识别标志",
                "legalBasis": "《中华人民共和国固体废物污染环境防治法》第一百一十二条",
                "amount": "0.00",
                "decidedOn": "2026-10-16",
                "status": "exempt",
                "minorFirstOffenceExempt": True,
                "decisionIssued": False,
                "complianceSuggestionIssued": False,
                "creditRepairNoticeIssued": False,
                "transferredTo": None,
            },
        ),
        (
            "penalties",
            {
                **VALID["penalties"],
                "amount": Decimal("1234.5"),
                "decisionIssued": "1",
                "complianceSuggestionIssued": "FALSE",
                "creditRepairNoticeIssued": "no",
            },
            CANONICAL["penalties"]
            | {
                "amount": "1234.50",
                "decisionIssued": True,
                "complianceSuggestionIssued": False,
                "creditRepairNoticeIssued": False,
            },
        ),
        (
            "penalties",
            VALID["penalties"] | {"amount": 5000},
            CANONICAL["penalties"] | {"amount": "5000.00"},
        ),
        (
            "penalties",
            VALID["penalties"] | {"amount": 99.5},
            CANONICAL["penalties"] | {"amount": "99.50"},
        ),
        (
            "rectifications",
            VALID["rectifications"] | {"inspectionSourceId": None, "assistingDepartments": None},
            CANONICAL["rectifications"] | {"inspectionSourceId": None, "assistingDepartments": []},
        ),
        (
            "acceptances",
            VALID["acceptances"] | {"verdict": AcceptanceVerdict.FAILED, "opinion": " 未整改到位 "},
            CANONICAL["acceptances"] | {"verdict": "failed", "opinion": "未整改到位"},
        ),
        (
            "creditRecords",
            VALID["creditRecords"] | {"kind": "COMMENDATION", "expiresOn": ""},
            CANONICAL["creditRecords"] | {"kind": "commendation", "expiresOn": None},
        ),
        (
            "creditRepairs",
            {
                key: value
                for key, value in VALID["creditRepairs"].items()
                if key not in ("decidedOn", "opinion")
            }
            | {"status": "pending"},
            CANONICAL["creditRepairs"] | {"decidedOn": None, "status": "pending", "opinion": None},
        ),
    ],
)
def test_published_forms_are_made_canonical(
    kind: str, record: dict[str, Any], canonical: dict[str, Any]
) -> None:
    assert parse(KINDS[kind], 0, record, TODAY) == (canonical, [])


# (kind, fields changed in VALID, or None to remove them, problems as (field, message)).
BAD = [
    ("inspections", {"actionCode": None}, [("actionCode", "is required")]),
    ("inspections", {"actionCode": ""}, [("actionCode", "is required")]),
    ("creditRepairs", {"creditRecordSourceId": None}, [("creditRecordSourceId", "is required")]),
    (
        "inspections",
        {"inspector": "张三", "Result": "no_problem"},
        [
            ("Result", "Inspection has no field 'Result'; its fields: actionCode, findings, inspectedOn, kind, participants, result, sourceId, uscc"),
            ("inspector", "Inspection has no field 'inspector'; its fields: actionCode, findings, inspectedOn, kind, participants, result, sourceId, uscc"),
        ],
    ),
    (
        "inspections",
        {"uscc": "91110000600037341M"},
        [("uscc", "'91110000600037341M' is not a valid unified social credit code: the check character (position 18) should be 'L', not 'M'; the code was probably mistyped")],
    ),
    (
        "creditRecords",
        {"uscc": "9111000060003734"},
        [("uscc", "'9111000060003734' is not a valid unified social credit code: it must be 18 characters long, not 16")],
    ),
    ("penalties", {"uscc": 91110000}, [("uscc", "must be an 18-character unified social credit code")]),
    ("inspections", {"kind": "surprise"}, [("kind", "'surprise' is not one of routine, random, joint, campaign")]),
    ("acceptances", {"verdict": "maybe"}, [("verdict", "'maybe' is not one of passed, failed")]),
    ("creditRepairs", {"status": 1}, [("status", "1 is not one of pending, approved, rejected")]),
    ("inspections", {"inspectedOn": "2026-02-30"}, [("inspectedOn", "'2026-02-30' is not a day; write it as YYYY-MM-DD")]),
    ("acceptances", {"acceptedOn": "30/10/2026"}, [("acceptedOn", "'30/10/2026' is not a day; write it as YYYY-MM-DD")]),
    ("penalties", {"decidedOn": 20261015}, [("decidedOn", "20261015 is not a day; write it as YYYY-MM-DD")]),
    ("inspections", {"inspectedOn": "2026-11-02"}, [("inspectedOn", "2026-11-02 is in the future")]),
    ("penalties", {"decidedOn": "2027-01-01"}, [("decidedOn", "2027-01-01 is in the future")]),
    ("rectifications", {"orderedOn": "2026-11-02"}, [("orderedOn", "2026-11-02 is in the future")]),
    ("acceptances", {"acceptedOn": "2026-11-02"}, [("acceptedOn", "2026-11-02 is in the future")]),
    ("creditRecords", {"issuedOn": "2026-11-02", "expiresOn": None}, [("issuedOn", "2026-11-02 is in the future")]),
    ("creditRepairs", {"decidedOn": "2026-11-02"}, [("decidedOn", "2026-11-02 is in the future")]),
    ("penalties", {"amount": "-5"}, [("amount", "must not be negative, not -5")]),
    ("penalties", {"amount": -0.01}, [("amount", "must not be negative, not -0.01")]),
    ("penalties", {"amount": "12.345"}, [("amount", "12.345 has more than two decimal places; amounts are to the fen")]),
    ("penalties", {"amount": 0.1 + 0.2}, [("amount", "0.30000000000000004 has more than two decimal places; amounts are to the fen")]),
    ("penalties", {"amount": "5千元"}, [("amount", "'5千元' is not an amount in yuan, e.g. 5000 or 1234.50")]),
    ("penalties", {"amount": "NaN"}, [("amount", "'NaN' is not an amount in yuan")]),
    ("penalties", {"amount": True}, [("amount", "True is not an amount in yuan")]),
    ("penalties", {"amount": "1000000000000"}, [("amount", "1000000000000 is larger than any fine the hub accepts")]),
    (
        "penalties",
        {"minorFirstOffenceExempt": True},
        [("amount", "an exempted minor first offence (轻微不罚) carries no fine; use 0")],
    ),
    (
        "penalties",
        {"minorFirstOffenceExempt": True, "amount": "0"},
        [("status", "an exempted minor first offence (首违不罚) is no penalty: its status is exempt")],
    ),
    (
        "penalties",
        {"status": "exempt"},
        [("minorFirstOffenceExempt", "status exempt is for exempted minor first offences: set "
          "minorFirstOffenceExempt")],
    ),
    ("penalties", {"transferredTo": "police"}, [("transferredTo", "'police' is not a department; one of " + DEPARTMENT_LIST)]),
    ("rectifications", {"requirementCodes": ["Windows Open"]}, [("requirementCodes", "'Windows Open' is not a code: lower-case letters, digits, -")]),
    ("penalties", {"decisionIssued": "maybe"}, [("decisionIssued", "'maybe' is not true or false")]),
    ("penalties", {"caseNumber": "号" * 65}, [("caseNumber", "must be at most 64 characters, not 65")]),
    ("penalties", {"violation": 5}, [("violation", "must be text, not a number")]),
    ("penalties", {"violation": ["超标排放"]}, [("violation", "must be text, not a list")]),
    ("acceptances", {"opinion": "   "}, [("opinion", "must not be empty")]),
    (
        "rectifications",
        {"deadline": "2026-10-14"},
        [("deadline", "2026-10-14 is before the order day 2026-10-15")],
    ),
    (
        "creditRecords",
        {"expiresOn": "2026-10-14"},
        [("expiresOn", "2026-10-14 is before the issue day 2026-10-15")],
    ),
    (
        "creditRepairs",
        {"decidedOn": "2026-10-19"},
        [("decidedOn", "2026-10-19 is before the application day 2026-10-20")],
    ),
    (
        "creditRepairs",
        {"status": "pending"},
        [("decidedOn", "a pending repair has no decision day yet; leave it out")],
    ),
    (
        "creditRepairs",
        {"status": "rejected", "decidedOn": None},
        [("decidedOn", "a rejected repair needs its decision day")],
    ),
    (
        "creditRepairs",
        {"decidedOn": None},
        [("decidedOn", "an approved repair needs its decision day")],
    ),
    (
        "rectifications",
        {"inspectionSourceId": None, "penaltySourceId": ""},
        [("inspectionSourceId", "a rectification follows an inspection or a penalty: give inspectionSourceId, penaltySourceId or both")],
    ),
    (
        "inspections",
        {"participants": ["fire", "firemen", "Market"]},
        [("participants", f"unknown department 'Market', 'firemen'; one of {DEPARTMENT_LIST}")],
    ),
    (
        "rectifications",
        {"assistingDepartments": "enforcement;police"},
        [("assistingDepartments", f"unknown department 'police'; one of {DEPARTMENT_LIST}")],
    ),
    ("inspections", {"participants": [1, 2]}, [("participants", "must be a list of department codes")]),
    (
        "inspections",
        {"findings": [{"category": "废气治理"}]},
        [("findings", 'finding 0 must have exactly "category" and "description"')],
    ),
    (
        "inspections",
        {"findings": [{"category": "a", "description": "b"}, {"category": "a", "description": "b", "severity": "high"}]},
        [("findings", 'finding 1 must have exactly "category" and "description"')],
    ),
    (
        "inspections",
        {"findings": [{"category": "废气治理", "description": " "}]},
        [("findings", "finding 0 description: must not be empty")],
    ),
    ("inspections", {"findings": "not json"}, [("findings", 'must be a JSON array of {"category", "description"}')]),
    ("inspections", {"findings": {"category": "a", "description": "b"}}, [("findings", 'must be a list of {"category", "description"}')]),
    ("inspections", {"findings": "[" * 100_000}, [("findings", 'must be a JSON array of {"category", "description"}')]),
    (
        "inspections",
        {"findings": [{"category": "消\x85防", "description": "通道堵塞"}]},
        [("findings", "finding 0 category: must not contain control characters (U+0085 at position 2)")],
    ),
    (
        "inspections",
        {"findings": [{"category": "消防", "description": "通道\ud800堵塞"}]},
        [("findings", "finding 0 description: must not contain lone surrogates (U+D800 at position 3)")],
    ),
    (
        "inspections",
        {"findings": [{"category": "消防", "description": "通道堵塞"}] * 101},
        [("findings", "must list at most 100 findings, not 101")],
    ),
    # Amounts too large, too small or not numbers at all, in every form they arrive in: none
    # may reach decimal arithmetic that raises (1E+400 cannot be rounded to the fen).
    ("penalties", {"amount": "1e400"}, [("amount", "1E+400 is larger than any fine the hub accepts")]),
    ("penalties", {"amount": Decimal("1e400")}, [("amount", "1E+400 is larger than any fine the hub accepts")]),
    ("penalties", {"amount": 10**400}, [("amount", "1.00E+400 is larger than any fine the hub accepts")]),
    ("penalties", {"amount": 1e400}, [("amount", "inf is not an amount in yuan")]),
    ("penalties", {"amount": "-1e400"}, [("amount", "must not be negative, not -1E+400")]),
    ("penalties", {"amount": "1e-400"}, [("amount", "1E-400 has more than two decimal places; amounts are to the fen")]),
    ("penalties", {"amount": Decimal("1e-400")}, [("amount", "1E-400 has more than two decimal places; amounts are to the fen")]),
    ("penalties", {"amount": "Infinity"}, [("amount", "'Infinity' is not an amount in yuan")]),
    ("penalties", {"amount": Decimal("sNaN")}, [("amount", "sNaN is not an amount in yuan")]),
    ("penalties", {"amount": "1e999999999999999999"}, [("amount", "1E+999999999999999999 is larger than any fine the hub accepts")]),
    ("penalties", {"amount": "9" * 41}, [("amount", "'99999999999999999...999999999999999999' is not an amount in yuan, e.g. 5000 or 1234.50")]),
    # Days: plausible, from 1990 to ten years ahead of the day checked on (2026-11-01).
    ("penalties", {"decidedOn": "0001-01-01"}, [("decidedOn", "0001-01-01 is before 1990-01-01, the earliest day the hub accepts")]),
    ("inspections", {"inspectedOn": date(1989, 12, 31)}, [("inspectedOn", "1989-12-31 is before 1990-01-01, the earliest day the hub accepts")]),
    ("rectifications", {"deadline": "2036-11-02"}, [("deadline", "2036-11-02 is more than 10 years ahead (after 2036-11-01)")]),
    ("creditRecords", {"expiresOn": "9999-12-31"}, [("expiresOn", "9999-12-31 is more than 10 years ahead (after 2036-11-01)")]),
    ("creditRecords", {"expiresOn": "20291014"}, [("expiresOn", "'20291014' is not a day; write it as YYYY-MM-DD")]),
    ("creditRepairs", {"appliedOn": "2026-W43-1"}, [("appliedOn", "'2026-W43-1' is not a day; write it as YYYY-MM-DD")]),
    ("penalties", {"decisionIssued": Decimal("sNaN")}, [("decisionIssued", "sNaN is not true or false")]),
    (
        "inspections",
        {"\x1b[2J": "x"},
        [("'\\x1b[2J'", "Inspection has no field '\\x1b[2J'; its fields: actionCode, findings, inspectedOn, kind, participants, result, sourceId, uscc")],
    ),
]  # fmt: skip


def _case_id(case: Any) -> str:
    kind, changes, _ = getattr(case, "values", case)
    return f"{kind}:{'+'.join(changes)}"


@pytest.mark.parametrize(("kind", "changes", "problems"), BAD, ids=[_case_id(c) for c in BAD])
def test_bad_fields_are_named_with_what_is_wrong(
    kind: str, changes: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    record = {k: v for k, v in (VALID[kind] | changes).items() if changes.get(k, "") is not None}
    source_id = VALID[kind]["sourceId"]
    _, found = parse(KINDS[kind], 3, record, TODAY)
    assert found == [Problem(3, source_id, field, message) for field, message in problems]


@pytest.mark.parametrize("minus_zero", ["-0", "-0.00", -0.0])
def test_minus_zero_is_zero(minus_zero: Any) -> None:
    exempt = {"minorFirstOffenceExempt": True, "status": "exempt"}
    record = VALID["penalties"] | {"amount": minus_zero} | exempt
    assert parse(KINDS["penalties"], 0, record, TODAY) == (
        CANONICAL["penalties"] | {"amount": "0.00"} | exempt,
        [],
    )


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    record = {
        "sourceId": "ECOLOGY-INS-9",
        "uscc": "91110000600037341M",
        "kind": "surprise",
        "inspectedOn": "2026-11-02",
        "result": "no_problem",
        "inspector": "张三",
    }
    _, problems = parse(KINDS["inspections"], 7, record, TODAY)
    assert [str(problem) for problem in problems] == [
        "records[7] (sourceId ECOLOGY-INS-9) inspector: Inspection has no field 'inspector'; "
        "its fields: actionCode, findings, inspectedOn, kind, participants, result, sourceId, uscc",
        "records[7] (sourceId ECOLOGY-INS-9) uscc: '91110000600037341M' is not a valid unified "
        "social credit code: the check character (position 18) should be 'L', not 'M'; the code "
        "was probably mistyped",
        "records[7] (sourceId ECOLOGY-INS-9) actionCode: is required",
        "records[7] (sourceId ECOLOGY-INS-9) kind: 'surprise' is not one of routine, random, "
        "joint, campaign",
        "records[7] (sourceId ECOLOGY-INS-9) inspectedOn: 2026-11-02 is in the future",
    ]


def test_a_record_without_a_usable_source_id_is_named_by_its_index() -> None:
    record = VALID["acceptances"] | {"sourceId": "   "}
    _, problems = parse(KINDS["acceptances"], 2, record, TODAY)
    assert problems == [Problem(2, None, "sourceId", "must not be empty")]
    assert str(problems[0]) == "records[2] sourceId: must not be empty"
    assert problems[0].as_dict() == {
        "index": 2,
        "sourceId": None,
        "field": "sourceId",
        "message": "must not be empty",
    }


@pytest.mark.parametrize("record", ["ECOLOGY-INS-1", ["sourceId", "x"], None, 42])
def test_a_record_must_be_an_object(record: Any) -> None:
    (problem,) = parse(KINDS["inspections"], 4, record, TODAY)[1]
    assert problem == Problem(4, None, None, "a record must be an object of fields")
    assert str(problem) == "records[4]: a record must be an object of fields"


def test_the_day_checked_against_is_the_one_given() -> None:
    record = VALID["inspections"] | {"inspectedOn": "2026-11-02"}
    assert parse(KINDS["inspections"], 0, record, date(2026, 11, 2))[1] == []
    assert parse(KINDS["inspections"], 0, record, date(2026, 11, 1))[1] == [
        Problem(0, "ECOLOGY-INS-1", "inspectedOn", "2026-11-02 is in the future")
    ]


def test_parsed_defaults_are_not_shared_between_records() -> None:
    bare = {k: v for k, v in VALID["inspections"].items() if k not in ("participants", "findings")}
    first, _ = parse(KINDS["inspections"], 0, bare, TODAY)
    first["participants"].append("fire")
    first["findings"].append({"category": "a", "description": "b"})
    second, _ = parse(KINDS["inspections"], 1, bare, TODAY)
    assert (second["participants"], second["findings"]) == ([], [])


# Text that PostgreSQL cannot store (NUL, lone surrogates), that a terminal would obey (ESC...)
# or that hides in an id: (kind, field, value, the record's sourceId in problems, message).
CHARACTERS = [
    ("penalties", "sourceId", "ECOLOGY-PEN-\x00", None, "must not contain control characters (U+0000 at position 13)"),
    ("penalties", "sourceId", " ECOLOGY PEN 1", None, "must not contain whitespace or invisible characters (U+0020 at position 9)"),
    ("penalties", "sourceId", "ECOLOGY-\x1b[2J", None, "must not contain control characters (U+001B at position 9)"),
    ("penalties", "sourceId", "ECOLOGY-PEN-\ud800", None, "must not contain lone surrogates (U+D800 at position 13)"),
    ("acceptances", "rectificationSourceId", "ECOLOGY-RECT-1\u200b", "ECOLOGY-ACC-1", "must not contain whitespace or invisible characters (U+200B at position 15)"),
    ("inspections", "actionCode", "3301\ud800", "ECOLOGY-INS-1", "must not contain lone surrogates (U+D800 at position 5)"),
    ("inspections", "actionCode", "3301\t0620", "ECOLOGY-INS-1", "must not contain control characters (U+0009 at position 5)"),
    ("penalties", "caseNumber", "杭环罚〔2026〕\x1b[2J12号", "ECOLOGY-PEN-1", "must not contain control characters (U+001B at position 10)"),
    ("penalties", "violation", "超标\x00排放", "ECOLOGY-PEN-1", "must not contain control characters (U+0000 at position 3)"),
    ("penalties", "legalBasis", "第九十九条\x9b2J", "ECOLOGY-PEN-1", "must not contain control characters (U+009B at position 6)"),
    ("acceptances", "opinion", "  同意\x07", "ECOLOGY-ACC-1", "must not contain control characters (U+0007 at position 5)"),
    ("creditRecords", "level", "A\nA", "ECOLOGY-CRD-1", "must not contain control characters (U+000A at position 2)"),
    ("creditRepairs", "opinion", "同意\x7f", "ECOLOGY-REP-1", "must not contain control characters (U+007F at position 3)"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "field", "value", "source_id", "message"), CHARACTERS)
def test_text_holds_no_control_characters_and_ids_no_whitespace(
    kind: str, field: str, value: str, source_id: str | None, message: str
) -> None:
    _, problems = parse(KINDS[kind], 0, VALID[kind] | {field: value}, TODAY)
    assert problems == [Problem(0, source_id, field, message)]


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("penalties", {"caseNumber": "杭环罚 〔2026〕 12号"}),  # spaces inside one-line text
        ("penalties", {"violation": "超标排放\n大气污染物", "legalBasis": "第九十九条\r\n第一款"}),
        ("acceptances", {"opinion": "资料齐全\t整改措施落实到位"}),
        ("inspections", {"inspectedOn": "1990-01-01"}),  # the earliest day
        ("rectifications", {"deadline": "2036-11-01"}),  # ten years ahead, exactly
        ("creditRecords", {"expiresOn": "2036-11-01"}),
        ("penalties", {"amount": "999999999999.99"}),  # the largest fine
    ],
)
def test_what_is_plausible_is_kept(kind: str, changes: dict[str, Any]) -> None:
    assert parse(KINDS[kind], 0, VALID[kind] | changes, TODAY) == (
        CANONICAL[kind] | changes,
        [],
    )


def test_ten_years_from_a_leap_day() -> None:
    assert latest_day(date(2028, 2, 29)) == date(2038, 2, 28)
    assert latest_day(date(2026, 11, 1)) == date(2036, 11, 1)


# Values that broke parsing before, or come close: every field of every kind gets each.
HOSTILE = [
    "1e400", "-1e400", "1e-400", "NaN", "sNaN", "Infinity", "-Infinity", "1e999999999999999999",
    "0001-01-01", "9999-12-31", "2026-02-30", "\x00", "\ud800", "\x1b[2J", "[bold]x[/]", " ", "",
    "=HYPERLINK(\"http://x\")", 10**400, -(10**400), 1e400, float("nan"), -0.0, Decimal("1e400"),
    Decimal("-1e-400"), Decimal("sNaN"), Decimal("NaN"), date(1, 1, 1), date(9999, 12, 31),
    datetime(2026, 1, 1), "[" * 5000, '[{"category": "a", "description": "\\u0000"}]', [[[[[]]]]],
    {"category": "\x00", "description": "\ud800"}, [{"category": 1e400, "description": None}],
]  # fmt: skip


def assert_sound(kind: str, record: Any) -> None:
    """parse returns, with problems fit to show and store, or values fit to store."""
    values, problems = parse(KINDS[kind], 0, record, TODAY)
    for problem in problems:
        # Problems are shown on terminals and stored as UTF-8: printable, and quoted briefly.
        for shown in (problem.message, problem.field or "", problem.source_id or ""):
            assert isinstance(shown, str), problem
            assert shown.isprintable(), problem
            shown.encode("utf-8")
        assert len(problem.message) < 300, problem
    if not problems:  # what is stored: plain JSON that PostgreSQL takes
        assert set(values) == {field.name for field in KINDS[kind].fields}
        assert json.loads(json.dumps(values)) == values
        for text in strings(values):
            text.encode("utf-8")
            assert "\x00" not in text


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_field_takes_every_hostile_value(kind: str) -> None:
    for field in KINDS[kind].fields:
        for value in HOSTILE:
            assert_sound(kind, VALID[kind] | {field.name: value})
    for value in HOSTILE:
        assert_sound(kind, value)
        assert_sound(kind, VALID[kind] | {"inspector": value, str(value)[:20]: value})
        if kind == "inspections":
            for part in ("category", "description"):
                finding = {"category": "消防", "description": "通道堵塞", part: value}
                assert_sound(kind, VALID[kind] | {"findings": [finding]})


SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | st.dates()
    | st.text(st.characters(exclude_categories=())) | st.sampled_from(HOSTILE)
)  # fmt: skip
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=()), max_size=12), inner, max_size=4
        )
    ),
    max_leaves=12,
)
KEEP = object()


@st.composite
def records(draw: st.DrawFn, kind: str) -> Any:
    """A valid record with about half its fields replaced, a field added, or anything."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_LIKE)
    record = {}
    for name, valid in VALID[kind].items():
        value = draw(st.sampled_from([KEEP, KEEP, None]) | JSON_LIKE)
        record[name] = valid if value is KEEP else value
    if draw(st.booleans()):
        record[draw(st.text(max_size=8))] = draw(JSON_LIKE)
    if kind == "inspections" and draw(st.booleans()):  # findings, one value at a time
        record["findings"] = [{"category": draw(JSON_LIKE), "description": draw(JSON_LIKE)}]
    return record


@pytest.mark.parametrize("kind", list(KINDS))
@settings(derandomize=True, max_examples=40, deadline=None, database=None)
@given(data=st.data())
def test_parse_returns_values_or_problems_whatever_it_is_given(
    kind: str, data: st.DataObject
) -> None:
    assert_sound(kind, data.draw(records(kind)))
