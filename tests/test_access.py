"""Field-level authorization through the API, against the real policies in policies/."""

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from hub.db import create_engine
from hub.domain import DEPARTMENTS
from hub.policy import Policy, load_policy
from hub.schema import SHARED, policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import graphql

POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
CODES = [d.code for d in DEPARTMENTS]
EVERYTHING = """
query Matrix($after: String) { enterprises(first: 100, after: $after) {
  pageInfo { endCursor } edges { node {
  __typename uscc owner { code } name legalRepresentative address industry region town registeredOn status
  colourCode { colour since reasons { rule count records { kind sourceId } } }
  colourHistory { colour previous since }
  creditRecords { __typename id owner { code } kind level reason issuedOn expiresOn status
    repairs { __typename id owner { code } appliedOn decidedOn status opinion } }
  inspections { __typename id owner { code } actionCode kind inspectedOn result participants { code }
    findings { __typename category description } }
  penalties { __typename id owner { code } caseNumber violation legalBasis amount decidedOn status
    minorFirstOffenceExempt decisionIssued complianceSuggestionIssued creditRepairNoticeIssued
    transferredTo { code } }
  rectifications { __typename id owner { code } requirement requirementCodes orderedOn deadline
    status overdue
    inspection { __typename id owner { code } actionCode result }
    penalty { __typename id owner { code } caseNumber amount }
    assistingDepartments { code }
    acceptance { __typename id owner { code } acceptedOn verdict opinion } }
  inspectionPlans { __typename id owner { code } month subject kind status
    inspection { __typename id owner { code } } }
} } } }
"""
RECORD_TABLES = {
    "CreditRecord": "credit_record",
    "Inspection": "inspection",
    "Penalty": "penalty",
    "Rectification": "rectification",
}


def sql(settings: Settings, statement: str, **parameters: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(statement), parameters)).all()
        await engine.dispose()
        return list(rows)

    return asyncio.run(run())


class Checker:
    """Walks an answer and holds every decided field against the policy's decision."""

    def __init__(
        self,
        policy: Policy,
        subject: str,
        purpose: str | None,
        errors: list[dict[str, Any]],
        related: dict[tuple[str, str], tuple[str, ...]] | None = None,
    ):
        self.policy, self.subject, self.purpose = policy, subject, purpose is not None
        self.related = related or {}  # (type, id) -> the caller's relations to the record
        self.code = (purpose or "").split(":")[0]
        self.errors = {tuple(error["path"]): error for error in errors}
        self.seen: Counter[tuple[str, str, bool]] = Counter()
        self.records: Counter[tuple[str, str]] = Counter()

    def walk(
        self, value: Any, path: tuple[Any, ...], owner: str | None, relations: tuple[str, ...] = ()
    ) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, (*path, index), owner, relations)
        elif isinstance(value, dict):
            type_name = value.get("__typename")
            if type_name in SHARED:
                owner = value["owner"]["code"] if "owner" in value else owner
                assert owner is not None
                self.records[type_name, owner] += 1
                if "id" in value:  # a finding is decided with its inspection
                    relations = self.related.get((type_name, value["id"]), ())
            for key, item in value.items():
                if type_name in SHARED and key in SHARED[type_name]:
                    self.check(type_name, owner, key, item, (*path, key), relations)
                self.walk(item, (*path, key), owner, relations)

    def check(
        self,
        type_name: str,
        owner: Any,
        field: str,
        value: Any,
        path: tuple[Any, ...],
        relations: tuple[str, ...] = (),
    ) -> None:
        if not SHARED[type_name][field].decided:
            assert path not in self.errors
            return
        coordinate = f"{type_name}.{field}"
        decision = self.policy.decide(
            self.subject, owner, coordinate, purpose=self.purpose, relations=relations
        )
        error = self.errors.pop(path, None)
        # A conditional field the policy allows with a purpose is served under a grant only:
        # the demo data grants market ecology's acceptance opinions for rectification-check.
        granted = (self.subject, owner, coordinate, self.code) == DEMO_GRANT
        allowed = decision.allowed and (not decision.needs_purpose or granted)
        if allowed:
            assert error is None, (path, error)
        elif decision.allowed:  # conditional, and no grant opens it here
            assert value is None, (path, value)
            assert error is not None, path
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert error["extensions"]["field"] == coordinate
            reason = error["extensions"]["reason"]
            assert "no grant" in reason or "wrong purpose" in reason, reason
        else:
            assert value is None, (path, value)
            assert error is not None, path
            assert error["extensions"] == {
                "code": "PURPOSE_REQUIRED" if decision.needs_purpose else "FORBIDDEN",
                "owner": owner,
                "field": coordinate,
                "reason": decision.reason,
            }
            assert (
                error["message"]
                == f"{coordinate} of {owner}'s records is withheld: {decision.reason}"
            )
        self.seen[coordinate, owner, allowed] += 1


DEMO_GRANT = ("market", "ecology", "Acceptance.opinion", "rectification-check")
# Each record type's relations to a department, as SQL over the demo data (the oracle's own
# reading of hub/policy/relations.py).
RELATIONS_SQL = {
    "Inspection": [("participant", "SELECT inspection_id FROM inspection_participant "
                                   "WHERE department = :department")],
    "Rectification": [
        ("assisting", "SELECT rectification_id FROM rectification_assistant "
                      "WHERE department = :department"),
        ("conflicting", "SELECT first_id FROM conflict WHERE second_owner = :department "
                        "UNION SELECT second_id FROM conflict WHERE first_owner = :department"),
    ],
    "Acceptance": [("assisting", "SELECT a.id FROM acceptance a JOIN rectification_assistant r "
                                 "ON r.rectification_id = a.rectification_id "
                                 "WHERE r.department = :department")],
    "Penalty": [("transferee", "SELECT id FROM penalty WHERE transferred_to = :department")],
}  # fmt: skip


def related(settings: Settings, department: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(type, id) -> the department's relations to the record, sorted."""
    found: dict[tuple[str, str], list[str]] = {}
    for type_name, queries in RELATIONS_SQL.items():
        for relation, statement in queries:
            for (record_id,) in sql(settings, statement, department=department):
                found.setdefault((type_name, str(record_id)), []).append(relation)
    return {key: tuple(sorted(names)) for key, names in found.items()}


@pytest.mark.parametrize(
    "purpose", [None, "联合检查前核查整改情况", "rectification-check: 联合检查前核查整改情况"]
)
def test_what_each_department_is_served_agrees_with_casbin(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str], purpose: str | None
) -> None:
    seen: Counter[tuple[str, str, bool]] = Counter()
    stored = {
        type_name: sql(demo_database, f"SELECT id, owner FROM {table} WHERE NOT retracted")
        for type_name, table in RECORD_TABLES.items()
    }
    for department in CODES:
        relations = related(demo_database, department)
        checker = Checker(POLICY, department, purpose, [], relations)
        after = None
        for _ in range(3):  # all 300 demo enterprises, 100 a page
            answer = graphql(
                hub, EVERYTHING, token=tokens[department], purpose=purpose, after=after
            )
            checker.errors = {tuple(error["path"]): error for error in answer.get("errors", [])}
            checker.walk(answer["data"], (), None)
            assert checker.errors == {}, "errors at paths that were not checked"
            after = answer["data"]["enterprises"]["pageInfo"]["endCursor"]
        for type_name in ("CreditRecord", "Rectification"):  # Inspection, Penalty: also linked
            for owner in CODES:
                readable = [
                    row
                    for row in stored[type_name]
                    if row.owner == owner
                    and POLICY.readable(
                        department, owner, type_name, purpose=purpose is not None,
                        relations=relations.get((type_name, str(row.id)), ()),
                    )
                ]  # fmt: skip
                listed = checker.records[type_name, owner]
                assert listed == len(readable), (department, type_name, owner)
        seen += checker.seen
    decided = {
        f"{t}.{f}" for t, fields in SHARED.items() for f, field in fields.items() if field.decided
    }
    assert {coordinate for coordinate, _, _ in seen} == decided  # every decided field was tried
    assert any(not allowed for _, _, allowed in seen)
    assert any(allowed for _, _, allowed in seen)


def test_lists_leave_out_owners_that_share_nothing(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    query = "{ enterprises(first: 100) { edges { node { inspections { owner { code } } penalties { owner { code } } } } } }"
    for department in ("culture", "market"):
        answer = graphql(hub, query, token=tokens[department])
        assert "errors" not in answer
        for kind in ("inspections", "penalties"):
            owners = {
                record["owner"]["code"]
                for edge in answer["data"]["enterprises"]["edges"]
                for record in edge["node"][kind]
            }
            type_name = {"inspections": "Inspection", "penalties": "Penalty"}[kind]
            assert owners <= set(POLICY_visible(department, type_name))


def POLICY_visible(subject: str, type_name: str) -> list[str]:
    return [o for o in CODES if POLICY.readable(subject, o, type_name, purpose=False)]


def canonical_enterprise(settings: Settings) -> str:
    """An enterprise with an ecology rectification accepted or failed, and another's penalty."""
    (row,) = sql(
        settings,
        """
        SELECT e.uscc FROM enterprise e
        WHERE EXISTS (SELECT 1 FROM rectification r JOIN acceptance a ON a.rectification_id = r.id
                      WHERE r.enterprise_id = e.id AND r.owner = 'ecology')
          AND EXISTS (SELECT 1 FROM inspection i JOIN inspection_finding f ON f.inspection_id = i.id
                      WHERE i.enterprise_id = e.id AND i.owner = 'ecology')
        ORDER BY e.uscc LIMIT 1""",
    )
    return str(row.uscc)


def test_market_reads_ecology_acceptance_verdicts_but_not_their_findings(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    uscc = canonical_enterprise(demo_database)
    query = """query($u: String!) { enterprise(uscc: $u) {
        rectifications { owner { code } status acceptance { owner { code } verdict opinion } }
        inspections { owner { code } result findings { category } } } }"""
    answer = graphql(hub, query, token=tokens["market"], u=uscc)
    dossier = answer["data"]["enterprise"]
    ecology = [
        r for r in dossier["rectifications"] if r["owner"]["code"] == "ecology" and r["acceptance"]
    ]
    assert ecology
    assert all(r["acceptance"]["verdict"] in {"PASSED", "FAILED"} for r in ecology)
    assert all(r["acceptance"]["opinion"] is None for r in ecology)  # conditional: no purpose
    reasons = {
        (e["extensions"]["field"], e["extensions"]["owner"]): e["extensions"]["reason"]
        for e in answer["errors"]
    }
    assert reasons[("Acceptance.opinion", "ecology")] == (
        "Acceptance.opinion is shared on condition: state the purpose of the request in the "
        "X-Hub-Purpose header"
    )
    assert reasons[("Inspection.findings", "ecology")].startswith(
        "no policy line shares Inspection.findings of ecology with market; open to a "
        "participant of the joint inspection (综合查一次) by policy.csv:"
    )
    # The demo data's grant opens the opinions for its purpose, and for no other.
    for purpose, served in (("rectification-check: 整改验收核查", True), ("整改验收核查", False),
                            ("law-enforcement: 案件核查", False)):  # fmt: skip
        with_purpose = graphql(hub, query, token=tokens["market"], purpose=purpose, u=uscc)
        opinions = [
            r["acceptance"]["opinion"]
            for r in with_purpose["data"]["enterprise"]["rectifications"]
            if r["owner"]["code"] == "ecology" and r["acceptance"]
        ]
        assert opinions
        assert all(opinions) if served else not any(opinions)


@pytest.mark.parametrize(
    ("caller", "selection"),
    [
        ("fire", "penalties { owner { code } amount minorFirstOffenceExempt }"),
        ("fire", "penalties { owner { code } a: amount b: amount x: minorFirstOffenceExempt }"),
        (
            "fire",
            "penalties { owner { code } ...P } } } fragment P on Penalty { amount minorFirstOffenceExempt",
        ),
        (
            "fire",
            "penalties { owner { code } ... on Penalty { amount } ... on Record { ... on Penalty { minorFirstOffenceExempt } } }",
        ),
        ("fire", "penalties { __typename owner { code } amount amount __typename }"),
        (
            "enforcement",
            "rectifications { penalty { owner { code } amount minorFirstOffenceExempt } }",
        ),
    ],
)
def test_aliases_fragments_and_duplicates_do_not_reveal_withheld_values(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str], caller: str, selection: str
) -> None:
    # fire may read penalty decisions but neither their amounts nor first-offence exemptions;
    # enforcement may read amounts, but only with a stated purpose.
    rows = sql(
        demo_database,
        """
        SELECT e.uscc, p.amount_fen FROM penalty p JOIN enterprise e ON e.id = p.enterprise_id
        JOIN rectification r ON r.penalty_id = p.id
        WHERE p.owner NOT IN ('fire', 'enforcement', 'health') AND p.amount_fen > 0
        ORDER BY e.uscc LIMIT 1""",
    )
    uscc, amount_fen = rows[0]
    query = f'{{ enterprise(uscc: "{uscc}") {{ {selection} }} }}'
    if "fragment" in selection:
        query = f'{{ enterprise(uscc: "{uscc}") {{ {selection} }}'
    response = hub.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {tokens[caller]}"}
    )
    answer = response.json()
    assert f"{amount_fen / 100:.2f}" not in response.text
    assert answer["errors"]
    # neither may read an amount without a purpose; the first-offence exemption (首违不罚) is
    # comprehensive law enforcement's to weigh
    withheld = {"Penalty.amount"} if "amount" in selection else set()
    if "minorFirstOffenceExempt" in selection and caller != "enforcement":
        withheld.add("Penalty.minorFirstOffenceExempt")
    assert {e["extensions"]["field"] for e in answer["errors"]} == withheld
    for error in answer["errors"]:  # each withheld selection is null, with its own error
        purpose_missing = (
            caller == "enforcement" and error["extensions"]["field"] == "Penalty.amount"
        )
        assert error["extensions"]["code"] == (
            "PURPOSE_REQUIRED" if purpose_missing else "FORBIDDEN"
        )
        value: Any = answer["data"]
        for step in error["path"]:
            value = value[step]
        assert value is None
    assert len(answer["errors"]) == len({tuple(e["path"]) for e in answer["errors"]})


def test_operation_name_picks_one_operation_and_batches_are_refused(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['fire']}"}
    document = "query A { departments { code } } query B { enterprises(first: 1) { edges { node { penalties { amount } } } } }"
    answer = hub.post(
        "/graphql", json={"query": document, "operationName": "A"}, headers=headers
    ).json()
    assert list(answer["data"]) == ["departments"]
    batch = [{"query": "{ departments { code } }"}, {"query": "{ departments { code } }"}]
    response = hub.post("/graphql", json=batch, headers=headers)
    assert response.status_code == 400
    assert "data" not in response.json()


def test_auditors_read_no_enterprise_data_without_a_policy(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    uscc = canonical_enterprise(demo_database)
    answer = graphql(hub, f'{{ enterprise(uscc: "{uscc}") {{ name }} }}', token=tokens["auditor"])
    assert answer["data"] == {"enterprise": None}
    (error,) = answer["errors"]
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "owner": "market",
        "field": "Enterprise",
        "reason": "no field of market's enterprise records is shared with auditor",
    }
    page = graphql(
        hub, "{ enterprises { totalCount edges { node { uscc } } } }", token=tokens["auditor"]
    )
    assert page == {"data": {"enterprises": {"totalCount": 0, "edges": []}}}


def test_my_access_agrees_with_the_policy(hub: TestClient, tokens: dict[str, str]) -> None:
    query = "{ myAccess { owner { code } field sharing decision rule reason policyVersion relations { relation rule } } }"
    entries = graphql(hub, query, token=tokens["market"])["data"]["myAccess"]
    decided = sum(1 for fields in SHARED.values() for field in fields.values() if field.decided)
    assert len(entries) == decided * len(CODES)
    by_key = {(e["owner"]["code"], e["field"]): e for e in entries}
    for (owner, coordinate), entry in by_key.items():
        decision = POLICY.decide("market", owner, coordinate, purpose=True)
        expected = (
            "CONDITIONAL"
            if decision.allowed and decision.needs_purpose
            else "ALLOWED"
            if decision.allowed
            else "DENIED"
        )
        assert (entry["decision"], entry["rule"], entry["reason"], entry["policyVersion"]) == (
            expected,
            decision.rule,
            decision.reason,
            POLICY.version,
        )
    assert by_key[("ecology", "Acceptance.verdict")]["decision"] == "ALLOWED"
    assert by_key[("ecology", "Acceptance.opinion")]["decision"] == "CONDITIONAL"
    assert by_key[("ecology", "Inspection.findings")]["decision"] == "DENIED"
    assert by_key[("ecology", "CreditRepair.opinion")]["sharing"] == "NONE"
    # A field a relation opens says so, with the line that opens it.
    (opener,) = by_key[("ecology", "Inspection.findings")]["relations"]
    assert opener["relation"] == "participant"
    assert opener["rule"].endswith("p, participant, *, inspection-findings, read, allow")

    narrowed = graphql(
        hub, '{ myAccess(owner: "ecology", type: "Acceptance") { field } }', token=tokens["market"]
    )
    assert [e["field"] for e in narrowed["data"]["myAccess"]] == [
        "Acceptance.acceptedOn",
        "Acceptance.verdict",
        "Acceptance.opinion",
    ]
    wrong = graphql(hub, '{ myAccess(owner: "mars") { field } }', token=tokens["market"])
    assert wrong["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "owner"}


def test_a_warm_request_makes_no_casbin_evaluations(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    policy = hub.app.state.policies.current  # type: ignore[attr-defined]
    graphql(hub, EVERYTHING, token=tokens["emergency"])
    before = policy.evaluations
    answer = graphql(hub, EVERYTHING, token=tokens["emergency"])
    assert len(answer["data"]["enterprises"]["edges"]) == 100
    assert policy.evaluations == before


def test_query_limits_answer_query_too_complex(hub: TestClient, tokens: dict[str, str]) -> None:
    aliases = " ".join(f"d{i}: departments {{ code }}" for i in range(31))
    answer = graphql(hub, f"{{ {aliases} }}", token=tokens["fire"])
    assert "data" not in answer
    assert answer["errors"][0]["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert answer["errors"][0]["message"] == "31 aliases found. Allowed: 30"

    tokens_query = "{ departments { " + "code " * 5001 + "} }"
    answer = graphql(hub, tokens_query, token=tokens["fire"])
    assert answer["errors"][0]["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert "Document contains more than 5000 tokens" in answer["errors"][0]["message"]


def test_depth_limit_is_coded_too() -> None:
    from graphql import parse, validate
    from strawberry.extensions import QueryDepthLimiter

    from hub.schema import build_schema
    from hub.schema.limits import too_complex

    schema = build_schema()
    rule = too_complex(QueryDepthLimiter(max_depth=3).validation_rules[0])
    document = parse("{ enterprises { edges { node { inspections { findings { category } } } } } }")
    (error,) = validate(schema._schema, document, [rule])
    assert error.message == "'anonymous' exceeds maximum operation depth of 3"
    assert error.original_error is not None
    assert error.original_error.code == "QUERY_TOO_COMPLEX"  # type: ignore[attr-defined]


# Every root field, with what auditors and admins get of it. Enterprise data: nothing (a
# FORBIDDEN error or an empty list). Governance data (the departments, their own access,
# share requests and grants, the access log for auditors) carries no record's values.
ROOT_FIELDS = {
    "enterprise": ('{ enterprise(uscc: "$USCC") { uscc name } }', "forbidden"),
    "enterprises": ("{ enterprises(first: 100) { totalCount edges { node { uscc name } } } }",
                    {"enterprises": {"totalCount": 0, "edges": []}}),
    "changes": ("{ changes(first: 500) { hasMore changes { uscc sourceId } } }",
                {"changes": {"hasMore": False, "changes": []}}),
    "notifications": ("{ notifications { notifications { uscc message } } }", "forbidden"),
    "conflicts": ("{ conflicts { id uscc } }", "forbidden"),
    "inspectionCheck": ('{ inspectionCheck(uscc: "$USCC") { uscc } }', "forbidden"),
    "inspectionByActionCode": ('{ inspectionByActionCode(code: "$CODE") { uscc } }', "forbidden"),
    "statistics": ("{ statistics { enterprises } }", "forbidden"),
    "inspectionPlans": ("{ inspectionPlans(first: 100) { totalCount edges { node { uscc } } } }",
                        {"inspectionPlans": {"totalCount": 0, "edges": []}}),
    "jointInspectionSuggestions": ("{ jointInspectionSuggestions { suggestions { month } } }",
                                   "forbidden"),
    "departments": ("{ departments { code } }", "governance"),
    "myAccess": ("{ myAccess { field decision } }", "governance"),
    "shareRequests": ("{ shareRequests { id fields } }", "governance"),
    "grants": ("{ grants { id fields } }", "governance"),
    "accessLog": ("{ accessLog { edges { node { seq } } } }", "governance"),
    "accessesTo": ('{ accessesTo(uscc: "$USCC") { seq fields } }', "governance"),
    # An enterprise's own view: refused before it runs (hub/schema/roots.py, tests/test_roots.py).
    "myEnterprise": ("{ myEnterprise { uscc name } }", "forbidden"),
    "myDataAccesses": ("{ myDataAccesses { edges { node { purpose } } } }", "forbidden"),
}  # fmt: skip


def test_auditors_and_admins_get_no_enterprise_data_through_any_field(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    from hub.schema import build_schema

    schema = build_schema()._schema
    assert set(schema.query_type.fields) == set(ROOT_FIELDS)  # a new field must be listed
    # The subscription is the change feed, read through the same filter as Query.changes.
    assert set(schema.subscription_type.fields) == {"changes"}
    uscc = canonical_enterprise(demo_database)
    (names,) = sql(demo_database, f"SELECT name FROM enterprise WHERE uscc = '{uscc}'")
    ((code,), *_) = sql(demo_database, "SELECT i.action_code FROM inspection i JOIN enterprise "
                        f"e ON e.id = i.enterprise_id WHERE e.uscc = '{uscc}'")  # fmt: skip
    for role in ("auditor", "admin"):
        for field, (query, expected) in ROOT_FIELDS.items():
            query = query.replace("$USCC", uscc).replace("$CODE", code)
            answer = graphql(hub, query, token=tokens[role])
            text = json.dumps(answer, ensure_ascii=False)
            assert names[0] not in text, (role, field)
            if expected == "forbidden":
                assert answer.get("data") in (None, {field: None}), (role, field)
                assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", (role, field)
            elif expected == "governance":
                codes = {e["extensions"]["code"] for e in answer.get("errors", [])}
                assert codes <= {"FORBIDDEN"}, (role, field, answer)  # accessLog: auditors only
            else:
                assert answer == {"data": expected}, (role, field)
