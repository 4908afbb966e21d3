"""The policy files: lint with file and line, decisions with the line that decided them."""

import shutil
from pathlib import Path

import pytest

from hub.policy import PolicyError, PolicyStore, Sharing, lint, load_policy
from hub.schema import SHARED, policy_fields
from hub.settings import DEFAULT_POLICY_DIR

FIELDS = policy_fields()
# Where the catalogue says CreditRepair.opinion is not shared.
OPINION_LINE = next(
    n
    for n, line in enumerate((DEFAULT_POLICY_DIR / "catalog.csv").read_text().splitlines(), 1)
    if line.startswith("CreditRepair,opinion,")
)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, directory)
    return directory


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def test_the_shipped_policies_are_sound() -> None:
    assert lint(DEFAULT_POLICY_DIR, FIELDS) == []


def test_every_field_of_every_shared_type_is_catalogued() -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, FIELDS)
    assert set(policy.catalog) == {f"{t}.{f}" for t, fields in SHARED.items() for f in fields}


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "policy.csv",
            "g, fire, safety-inspectors",
            "g, fires, safety-inspectors",
            "unknown department 'fires': agriculture, culture, ecology, emergency, "
            "enforcement, fire, health, market, planning, transport",
        ),
        (
            "policy.csv",
            "g2, Acceptance.verdict, acceptance-results",
            "g2, Acceptance.verdikt, acceptance-results",
            "unknown field 'Acceptance.verdikt'; catalog.csv lists the fields",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, market, ecology, acceptance-result, read, allow",
            "unknown object 'acceptance-result': Type.field, Type.*, a field group or *",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, markt, ecology, acceptance-results, read, allow",
            "unknown subject 'markt': a department, a group, a role or *",
        ),
        (
            "policy.csv",
            "p, participant, *, inspection-findings, read, allow",
            "p, participant, *, penalty-grounds, read, allow",
            "participant is a part in Inspection and Finding records only; penalty-grounds "
            "reaches Penalty.amount, Penalty.legalBasis",
        ),
        (
            "policy.csv",
            "p, participant, *, inspection-findings, read, allow",
            "p, participant, self, inspection-findings, read, allow",
            "participant is a part in another department's record; self is the caller's own",
        ),
        (
            "policy.csv",
            "p, assisting, *, rectification-orders, read, allow",
            "p, assisting, *, Rectification, write, allow",
            "assisting is a part in a record: it opens fields to read, never to publish",
        ),
        (
            "policy.csv",
            "g, fire, safety-inspectors",
            "g, fire, participant",
            "group 'participant' is named like a department, a role or a relation",
        ),
        (
            "conflicts.csv",
            "voc-enclosed,ventilation-open,"
            '"标准打架: ecology orders VOC workshops sealed against fumes, emergency orders them '
            'open against explosions; one window cannot be both"',
            "voc-enclosed,windows-ajar,because",
            "unknown requirement code 'windows-ajar'; requirements.csv lists the codes",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, market, ecology, acceptance-results, publish, allow",
            "the action must be one of read, write, not 'publish'",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, market, ecology, acceptance-results, read, maybe",
            "the effect must be allow or deny, not 'maybe'",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, market, ecology, acceptance-results, read",
            "a p line has 5 values, not 4",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, market, ecology, CreditRepair.*, read, allow",
            "shares CreditRepair.opinion with other departments (e.g. market reading "
            f"ecology's), but catalog.csv:{OPINION_LINE} says it is not shared: Internal review notes of "
            "the handling department (内部审查意见)",
        ),
        # Roles are never a record's owner: no line may serve them a `none` field either.
        (
            "policy.csv",
            "p, enterprise, *, credit-repair-outcome, read, allow",
            "p, enterprise, *, CreditRepair.*, read, allow",
            "shares CreditRepair.opinion with enterprise credentials (e.g. enterprise reading "
            f"market's), but catalog.csv:{OPINION_LINE} says it is not shared: Internal review notes of the "
            "handling department (内部审查意见)",
        ),
        (
            "policy.csv",
            "p, market, ecology, acceptance-results, read, allow",
            "p, auditor, *, *, read, allow",
            "shares CreditRepair.opinion with auditor credentials (e.g. auditor reading "
            f"market's), but catalog.csv:{OPINION_LINE} says it is not shared: Internal review notes of the "
            "handling department (内部审查意见)",
        ),
        (
            "catalog.csv",
            "Acceptance.opinion",
            "Acceptance,opinions,conditional,x,y",
            "Acceptance has no field 'opinions': acceptedOn, history, id, opinion, owner, "
            "sourceId, verdict, version",
        ),
        (
            "catalog.csv",
            "Acceptance.opinion",
            "Acceptance,opinion,secret,x,y",
            "sharing must be one of conditional, none, unconditional, not 'secret'",
        ),
        (
            "catalog.csv",
            "Inspection.owner",
            "Inspection,owner,conditional,Record identity,Inspecting department",
            "Inspection.owner is served with every Inspection (identity or link); it must be "
            "unconditional",
        ),
    ],
)
def test_lint_names_file_line_and_problem(
    policies: Path, file: str, old: str, new: str, message: str
) -> None:
    path = policies / file
    lines = path.read_text(encoding="utf-8").splitlines()
    if file == "catalog.csv":  # `old` names the coordinate of the line to replace
        type_name, field_name = old.split(".")
        (index,) = [
            i for i, line in enumerate(lines) if line.startswith(f"{type_name},{field_name},")
        ]
    else:
        index = lines.index(old)
    lines[index] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = lint(policies, FIELDS)
    # The first problem is the one made; others may follow from it (a field now uncatalogued).
    assert str(problems[0]) == f"{path}:{index + 1}: {message}"
    with pytest.raises(PolicyError) as raised:
        load_policy(policies, FIELDS)
    assert raised.value.problems == problems


def test_a_field_missing_from_the_catalogue_is_named(policies: Path) -> None:
    path = policies / "catalog.csv"
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.startswith("Penalty,amount,")
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (problem,) = lint(policies, FIELDS)
    assert problem.message == (
        "Penalty.amount has no catalogue entry; add a line "
        "Penalty,amount,<sharing>,<basis>,<description>"
    )


@pytest.mark.parametrize(
    ("subject", "owner", "field", "purpose", "allowed", "reason"),
    [
        ("market", "ecology", "Acceptance.verdict", False, True,
         "allowed by policy.csv:{acceptance}: p, market, ecology, acceptance-results, read, allow"),
        ("market", "ecology", "Acceptance.opinion", False, False,
         "Acceptance.opinion is shared on condition: state the purpose of the request in the "
         "X-Hub-Purpose header"),
        ("market", "ecology", "Acceptance.opinion", True, True,
         "allowed with a stated purpose by policy.csv:{acceptance}: p, market, ecology, "
         "acceptance-results, read, allow"),
        ("market", "ecology", "Inspection.findings", True, False,
         "no policy line shares Inspection.findings of ecology with market; open to a "
         "participant of the joint inspection (综合查一次) by policy.csv:{participant}: p, "
         "participant, *, inspection-findings, read, allow"),
        ("fire", "emergency", "Finding.description", False, True,
         "allowed by policy.csv:{safety}: p, safety-inspectors, safety-inspectors, "
         "inspection-findings, read, allow"),
        ("enforcement", "health", "Penalty.amount", True, False,
         "denied by policy.csv:{deny}: p, enforcement, health, Penalty.amount, read, deny"),
        ("ecology", "ecology", "Penalty.minorFirstOffenceExempt", False, True,
         "allowed by policy.csv:{own}: p, department, self, *, read, allow"),
        ("market", "ecology", "Penalty.minorFirstOffenceExempt", True, False,
         "no policy line shares Penalty.minorFirstOffenceExempt of ecology with market"),
        ("enforcement", "ecology", "Penalty.minorFirstOffenceExempt", False, True,
         "allowed by policy.csv:{exempt}: p, enforcement, *, Penalty.minorFirstOffenceExempt, "
         "read, allow"),
        ("market", "ecology", "CreditRepair.opinion", True, False,
         "CreditRepair.opinion is not shared with other departments: Internal review notes of "
         "the handling department (内部审查意见)"),
        ("auditor", "market", "Enterprise.name", False, False,
         "no policy line shares Enterprise.name of market with auditor"),
        ("culture", "market", "Enterprise.name", False, True,
         "allowed by policy.csv:{registration}: p, department, market, registration, read, allow"),
    ],
)  # fmt: skip
def test_decisions_cite_the_deciding_line(
    subject: str, owner: str, field: str, purpose: bool, allowed: bool, reason: str
) -> None:
    policy_csv = DEFAULT_POLICY_DIR / "policy.csv"
    lines = {
        "acceptance": line_of(policy_csv, "p, market, ecology, acceptance-results, read, allow"),
        "safety": line_of(
            policy_csv, "p, safety-inspectors, safety-inspectors, inspection-findings, read, allow"
        ),
        "deny": line_of(policy_csv, "p, enforcement, health, Penalty.amount, read, deny"),
        "own": line_of(policy_csv, "p, department, self, *, read, allow"),
        "registration": line_of(policy_csv, "p, department, market, registration, read, allow"),
        "participant": line_of(policy_csv, "p, participant, *, inspection-findings, read, allow"),
        "exempt": line_of(
            policy_csv, "p, enforcement, *, Penalty.minorFirstOffenceExempt, read, allow"
        ),
    }
    policy = load_policy(DEFAULT_POLICY_DIR, FIELDS)
    decision = policy.decide(subject, owner, field, purpose=purpose)
    assert (decision.allowed, decision.reason) == (allowed, reason.format(**lines))
    assert decision.version == policy.version  # the version travels with every decision


def test_decisions_are_evaluated_once_per_version() -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, FIELDS)
    first = policy.decide("market", "ecology", "Acceptance.verdict", purpose=False)
    evaluations = policy.evaluations
    assert evaluations > 0
    for _ in range(100):
        assert policy.decide("market", "ecology", "Acceptance.verdict", purpose=False) is first
    assert policy.evaluations == evaluations


def test_none_fields_are_never_served_to_others_whatever_the_rules(policies: Path) -> None:
    catalog = load_policy(policies, FIELDS).catalog
    unshared = [entry.coordinate for entry in catalog.values() if entry.sharing is Sharing.NONE]
    assert unshared  # the shipped catalogue withholds some fields from everyone else
    policy = load_policy(policies, FIELDS)
    for coordinate in unshared:
        for owner in ("market", "ecology", "fire"):
            for subject in ("market", "ecology", "fire", "enforcement"):
                decision = policy.decide(subject, owner, coordinate, purpose=True)
                assert decision.allowed is (subject == owner), (subject, owner, coordinate)


def test_a_reload_swaps_versions_or_keeps_the_old_one(policies: Path) -> None:
    store = PolicyStore(policies, FIELDS)
    old = store.current
    assert not old.decide("fire", "ecology", "Inspection.findings", purpose=False).allowed
    with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("p, fire, ecology, inspection-findings, read, allow\n")
    assert store.reload() == []
    assert store.current.version != old.version
    assert store.current.decide("fire", "ecology", "Inspection.findings", purpose=False).allowed

    good = store.current
    with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("p, nobody, ecology, inspection-findings, read, allow\n")
    (problem,) = store.reload()
    assert "unknown subject 'nobody'" in problem.message
    assert store.current is good


# --- publishing: write lines ----------------------------------------------------------------

WRITE_OBJECTS = (
    "Acceptance, CreditRecord, CreditRepair, Inspection, InspectionPlan, Penalty, Rectification "
    "or *"
)


def append_lines(policies: Path, *lines: str) -> list[int]:
    """Append policy lines; returns their line numbers."""
    path = policies / "policy.csv"
    first = len(path.read_text(encoding="utf-8").splitlines()) + 1
    with path.open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("".join(f"{line}\n" for line in lines))
    return list(range(first, first + len(lines)))


@pytest.mark.parametrize(
    ("subject", "owner", "type_name", "allowed", "reason"),
    [
        ("ecology", "ecology", "Inspection", True,
         "allowed by policy.csv:{write}: p, department, self, *, write, allow"),
        ("market", "market", "CreditRepair", True,
         "allowed by policy.csv:{write}: p, department, self, *, write, allow"),
        ("ecology", "market", "Acceptance", False,
         "no policy line lets ecology publish market's Acceptance records"),
        # Reading another department's records is no licence to write them.
        ("market", "ecology", "Acceptance", False,
         "no policy line lets market publish ecology's Acceptance records"),
        ("enforcement", "health", "Rectification", False,
         "no policy line lets enforcement publish health's Rectification records"),
        # Auditors and admins are not departments: they publish nothing, not even "their own".
        ("auditor", "market", "CreditRecord", False,
         "no policy line lets auditor publish market's CreditRecord records"),
        ("admin", "market", "Penalty", False,
         "no policy line lets admin publish market's Penalty records"),
    ],
)  # fmt: skip
def test_write_decisions_cite_the_deciding_line(
    subject: str, owner: str, type_name: str, allowed: bool, reason: str
) -> None:
    write = line_of(DEFAULT_POLICY_DIR / "policy.csv", "p, department, self, *, write, allow")
    policy = load_policy(DEFAULT_POLICY_DIR, FIELDS)
    decision = policy.decide_write(subject, owner, type_name)
    rule = f"policy.csv:{write}: p, department, self, *, write, allow" if allowed else None
    assert (decision.allowed, decision.reason, decision.rule) == (
        allowed,
        reason.format(write=write),
        rule,
    )
    assert decision.version == policy.version


def test_write_lines_grant_deny_and_never_read(policies: Path) -> None:
    deny, grant, group = append_lines(
        policies,
        "p, ecology, self, Penalty, write, deny",
        "p, fire, ecology, Inspection, write, allow",
        "p, safety-inspectors, safety-inspectors, CreditRepair, write, allow",
    )
    policy = load_policy(policies, FIELDS)

    def decided(subject: str, owner: str, type_name: str) -> tuple[bool, str]:
        decision = policy.decide_write(subject, owner, type_name)
        return decision.allowed, decision.reason

    assert decided("ecology", "ecology", "Penalty") == (
        False,
        f"denied by policy.csv:{deny}: p, ecology, self, Penalty, write, deny",
    )
    assert decided("ecology", "ecology", "Inspection")[0] is True
    assert decided("fire", "ecology", "Inspection") == (
        True,
        f"allowed by policy.csv:{grant}: p, fire, ecology, Inspection, write, allow",
    )
    assert decided("fire", "ecology", "Penalty") == (
        False,
        "no policy line lets fire publish ecology's Penalty records",
    )
    assert decided("emergency", "fire", "CreditRepair") == (
        True,
        f"allowed by policy.csv:{group}: p, safety-inspectors, safety-inspectors, "
        "CreditRepair, write, allow",
    )
    assert decided("ecology", "fire", "CreditRepair")[0] is False
    # Writing a type grants no reading of its fields.
    assert not policy.decide("fire", "ecology", "Inspection.findings", purpose=True).allowed


def test_write_decisions_are_evaluated_once_per_version() -> None:
    policy = load_policy(DEFAULT_POLICY_DIR, FIELDS)
    first = policy.decide_write("ecology", "ecology", "Acceptance")
    evaluations = policy.evaluations
    assert evaluations > 0
    for _ in range(100):
        assert policy.decide_write("ecology", "ecology", "Acceptance") is first
    assert policy.evaluations == evaluations


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("p, ecology, self, Enterprise, write, allow",
         f"unknown object 'Enterprise' to write: one of {WRITE_OBJECTS}"),
        ("p, ecology, self, Penalty.amount, write, allow",
         f"unknown object 'Penalty.amount' to write: one of {WRITE_OBJECTS}"),
        ("p, ecology, self, Penalty.*, write, allow",
         f"unknown object 'Penalty.*' to write: one of {WRITE_OBJECTS}"),
        ("p, ecology, self, penalty-grounds, write, allow",
         f"unknown object 'penalty-grounds' to write: one of {WRITE_OBJECTS}"),
        ("p, ecology, self, Finding, write, allow",
         f"unknown object 'Finding' to write: one of {WRITE_OBJECTS}"),
        ("p, ecology, self, Acceptance, read, allow",
         "unknown object 'Acceptance': Type.field, Type.*, a field group or *"),
        ("p, ecology, self, Acceptance, publish, allow",
         "the action must be one of read, write, not 'publish'"),
    ],
)  # fmt: skip
def test_lint_refuses_bad_write_lines(policies: Path, line: str, message: str) -> None:
    (number,) = append_lines(policies, line)
    assert [str(problem) for problem in lint(policies, FIELDS)] == [
        f"{policies / 'policy.csv'}:{number}: {message}"
    ]


def test_lint_accepts_write_lines_for_publishable_types(policies: Path) -> None:
    append_lines(
        policies,
        "p, market, *, *, write, allow",  # writing never serves an unshared field
        "p, fire, ecology, Inspection, write, allow",
        "p, safety-inspectors, self, CreditRepair, write, deny",
        "p, department, self, Acceptance, write, allow",
    )
    assert lint(policies, FIELDS) == []
    assert load_policy(policies, FIELDS).decide_write("market", "health", "Penalty").allowed
