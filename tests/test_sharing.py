"""Conditional sharing (hub/sharing.py): requests, decisions, grants and the grant book."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Row, Select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import hub.grants
from hub import sharing
from hub.auth import Principal
from hub.db import create_engine, upgrade
from hub.domain import Role
from hub.errors import BadUserInput, Forbidden, HubError, NotFound
from hub.grants import GrantBook, GrantRule, Grants, Scope
from hub.policy import load_policy
from hub.records import today
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from hub.sharing import (
    decide_request,
    due_date,
    file_request,
    revoke_grant,
)
from hub.uscc import check_character
from tests.conftest import BACKENDS, StatementCounter, pin_today

T = TypeVar("T")
POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
DATABASES = pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)

MARKET = Principal("client:1", "market system", "market", Role.DEPARTMENT)
ECOLOGY = Principal("client:2", "ecology system", "ecology", Role.DEPARTMENT)
EMERGENCY = Principal("client:3", "emergency system", "emergency", Role.DEPARTMENT)
ENFORCEMENT = Principal("client:4", "enforcement system", "enforcement", Role.DEPARTMENT)
AUDITOR = Principal("client:8", "audit office", "market", Role.AUDITOR)
ADMIN = Principal("client:9", "hub operator", "market", Role.ADMIN)


def uscc(first17: str) -> str:
    return first17 + check_character(first17)


FIRST = "91110000600037341L"
SECOND = uscc("91330106MA2AAAAA1")
THIRD = uscc("92330108MA2BBBBB2")


# --- working days and scopes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filed", "working_days", "due"),
    [
        (date(2026, 11, 18), 0, date(2026, 11, 18)),  # Wednesday: due the same day
        (date(2026, 11, 18), 2, date(2026, 11, 20)),  # Wednesday -> Friday
        (date(2026, 11, 20), 1, date(2026, 11, 23)),  # Friday -> Monday, over the weekend
        (date(2026, 11, 21), 1, date(2026, 11, 23)),  # filed on Saturday
        (date(2026, 11, 22), 1, date(2026, 11, 23)),  # filed on Sunday
        (date(2026, 11, 23), 5, date(2026, 11, 30)),  # a whole week
        (date(2026, 11, 20), 10, date(2026, 12, 4)),  # the default: two weekends
        (date(2026, 12, 31), 2, date(2027, 1, 4)),  # over the new year and a weekend
    ],
)
def test_due_date_counts_weekdays_only(filed: date, working_days: int, due: date) -> None:
    assert due_date(filed, working_days) == due


REGION = Scope(regions=("西湖区",))
ENTERPRISE = Scope(usccs=(FIRST,))


@pytest.mark.parametrize(
    ("scope", "code", "region", "covered"),
    [
        (Scope(), FIRST, "西湖区", True),
        (Scope(), None, None, True),
        (REGION, SECOND, "西湖区", True),
        (REGION, SECOND, "滨江区", False),
        (REGION, SECOND, None, False),
        (ENTERPRISE, FIRST, "滨江区", True),
        (ENTERPRISE, SECOND, "西湖区", False),
        (Scope(("西湖区",), (FIRST,)), FIRST, "滨江区", True),
        (Scope(("西湖区",), (FIRST,)), SECOND, "西湖区", True),
        (Scope(("西湖区",), (FIRST,)), SECOND, "滨江区", False),
    ],
)
def test_scope_covers(scope: Scope, code: str | None, region: str | None, covered: bool) -> None:
    assert scope.covers(code, region) is covered


@pytest.mark.parametrize(
    ("narrower", "wider", "within"),
    [
        (Scope(), Scope(), True),
        (REGION, Scope(), True),
        (ENTERPRISE, Scope(), True),
        (Scope(), REGION, False),
        (REGION, REGION, True),
        (Scope(("西湖区", "滨江区")), REGION, False),
        (REGION, Scope(("西湖区", "滨江区")), True),
        (ENTERPRISE, Scope(usccs=(FIRST, SECOND)), True),
        (Scope(usccs=(FIRST, SECOND)), ENTERPRISE, False),
        (ENTERPRISE, REGION, False),  # the scope alone cannot tell where FIRST is
        (REGION, ENTERPRISE, False),
        (Scope(("西湖区",), (FIRST,)), Scope(("西湖区",), (FIRST, SECOND)), True),
    ],
)
def test_scope_within(narrower: Scope, wider: Scope, within: bool) -> None:
    assert narrower.within(wider) is within


def test_scope_of_cleans_what_a_caller_gives() -> None:
    scope = Scope.of([" 西湖区 ", "", "滨江区", "西湖区"], [SECOND.lower(), f" {FIRST} ", SECOND])
    assert scope == Scope(("滨江区", "西湖区"), (FIRST, SECOND))
    assert str(scope) == f"滨江区, 西湖区, enterprise {FIRST}, enterprise {SECOND}"
    assert Scope.of(None, None) == Scope()
    assert Scope.of(["  "], []).everything
    assert str(Scope()) == "all enterprises"
    assert Scope.stored(**scope.columns()) == scope
    assert Scope.stored(**Scope().columns()) == Scope()


def test_scope_of_refuses_a_bad_credit_code() -> None:
    with pytest.raises(BadUserInput) as refused:
        Scope.of([], [FIRST, "91110000600037341X"])
    assert refused.value.message == (
        "'91110000600037341X' is not a valid unified social credit code: the check character "
        "(position 18) should be 'L', not 'X'; the code was probably mistyped"
    )
    assert refused.value.extensions() == {"code": "BAD_USER_INPUT", "argument": "scope.usccs"}


# --- the grant book -------------------------------------------------------------------------

DAY = date(2026, 11, 23)
OPINION = "Acceptance.opinion"
CHECK = "rectification-check"


def grant(
    number: int,
    *,
    requester: str = "market",
    fields: Sequence[str] = (OPINION,),
    purpose: str = CHECK,
    scope: Scope = REGION,
    valid: tuple[date, date] = (DAY - timedelta(days=30), DAY + timedelta(days=30)),
    revoked: str | None = None,
) -> GrantRule:
    return GrantRule(
        number, requester, "ecology", frozenset(fields), purpose, scope, *valid,
        datetime(2026, 11, 20, 9, 30, tzinfo=UTC) if revoked else None, revoked,
    )  # fmt: skip


NO_GRANT = (
    "no grant: Acceptance.opinion of ecology's records is shared on condition; file a share "
    "request (requestShare) with ecology stating your purpose"
)


@pytest.mark.parametrize(
    ("grants", "asked", "granted_by", "reason"),
    [
        ([grant(1)], ("market", OPINION, CHECK, SECOND, "西湖区"), 1, "allowed by grant 1"),
        (
            [grant(1, valid=(DAY, DAY))],  # the first and the last day count
            ("market", OPINION, CHECK, SECOND, "西湖区"), 1, "allowed by grant 1",
        ),
        (
            [grant(1, scope=Scope())],
            ("market", OPINION, CHECK, SECOND, None), 1, "allowed by grant 1",
        ),
        (
            [grant(1), grant(2, scope=ENTERPRISE)],
            ("market", OPINION, CHECK, FIRST, "滨江区"), 2, "allowed by grant 2",
        ),
        (
            [grant(1, revoked="leak"), grant(2)],
            ("market", OPINION, CHECK, SECOND, "西湖区"), 2, "allowed by grant 2",
        ),
        (
            [grant(1)],
            ("market", OPINION, CHECK, SECOND, "滨江区"), None,
            f"out of scope: enterprise {SECOND} is not within grant 1: 西湖区",
        ),
        (
            [grant(1, scope=ENTERPRISE)],
            ("market", OPINION, CHECK, SECOND, "西湖区"), None,
            f"out of scope: enterprise {SECOND} is not within grant 1: enterprise {FIRST}",
        ),
        (
            [grant(1), grant(2, scope=ENTERPRISE)],
            ("market", OPINION, CHECK, THIRD, "滨江区"), None,
            f"out of scope: enterprise {THIRD} is not within grant 1: 西湖区; grant 2: "
            f"enterprise {FIRST}",
        ),
        (
            [grant(1)],
            ("market", OPINION, "law-enforcement", SECOND, "西湖区"), None,
            "wrong purpose: grants of Acceptance.opinion are for rectification-check, not "
            "law-enforcement; start X-Hub-Purpose with one of them",
        ),
        (
            [grant(1), grant(2, purpose="risk-warning")],
            ("market", OPINION, None, SECOND, "西湖区"), None,
            "wrong purpose: grants of Acceptance.opinion are for rectification-check, "
            "risk-warning, not the purpose stated; start X-Hub-Purpose with one of them",
        ),
        (
            [grant(1, revoked="the officer left the case")],
            ("market", OPINION, CHECK, SECOND, "西湖区"), None,
            "revoked: grant 1 was revoked on 2026-11-20 (the officer left the case)",
        ),
        (
            [grant(1, valid=(DAY - timedelta(days=30), DAY - timedelta(days=1)))],
            ("market", OPINION, CHECK, SECOND, "西湖区"), None,
            "expired: grant 1 ended on 2026-11-22",
        ),
        (
            [grant(1, valid=(DAY + timedelta(days=1), DAY + timedelta(days=30)))],
            ("market", OPINION, CHECK, SECOND, "西湖区"), None,
            "not yet valid: grant 1 starts on 2026-11-24",
        ),
        (
            # the newest grant that ended says why
            [
                grant(1, valid=(DAY - timedelta(days=30), DAY - timedelta(days=1))),
                grant(2, revoked="request withdrawn"),
            ],
            ("market", OPINION, CHECK, SECOND, "西湖区"), None,
            "revoked: grant 2 was revoked on 2026-11-20 (request withdrawn)",
        ),
        ([], ("market", OPINION, CHECK, SECOND, "西湖区"), None, NO_GRANT),
        ([grant(1)], ("enforcement", OPINION, CHECK, SECOND, "西湖区"), None, NO_GRANT),
        (
            [grant(1, fields=("Penalty.amount",))],
            ("market", OPINION, CHECK, SECOND, "西湖区"), None, NO_GRANT,
        ),
    ],
)  # fmt: skip
def test_grant_book_match(
    grants: list[GrantRule],
    asked: tuple[str, str, str | None, str, str | None],
    granted_by: int | None,
    reason: str,
) -> None:
    requester, coordinate, purpose, code, region = asked
    book = GrantBook("1@2026-11-23", DAY, tuple(grants))
    found, why = book.match(requester, "ecology", coordinate, purpose, code, region)
    assert (found.id if found else None, why) == (granted_by, reason)


def test_a_revocation_is_dated_by_the_day_in_china() -> None:
    early = GrantRule(
        1, "market", "ecology", frozenset({OPINION}), CHECK, Scope(), DAY, DAY,
        datetime(2026, 11, 22, 17, 30, tzinfo=UTC), "withdrawn",
    )  # fmt: skip  # 2026-11-23 01:30 in China
    book = GrantBook("1@2026-11-23", DAY, (early,))
    assert book.match("market", "ecology", OPINION, CHECK, FIRST, None) == (
        None, "revoked: grant 1 was revoked on 2026-11-23 (withdrawn)"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("valid", "revoked", "state"),
    [
        ((DAY, DAY), None, "active"),
        ((DAY - timedelta(days=9), DAY - timedelta(days=1)), None, "expired"),
        ((DAY + timedelta(days=1), DAY + timedelta(days=9)), None, "not yet valid"),
        ((DAY, DAY), "withdrawn", "revoked"),
        ((DAY - timedelta(days=9), DAY - timedelta(days=1)), "withdrawn", "revoked"),
    ],
)
def test_grant_state_by_the_day(valid: tuple[date, date], revoked: str | None, state: str) -> None:
    assert grant(1, valid=valid, revoked=revoked).state(DAY) == state


# --- the workflow on real databases --------------------------------------------------------


@pytest.fixture
def database(empty_database: Settings) -> Settings:
    upgrade(empty_database)
    return empty_database


def run(settings: Settings, scenario: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(settings)
        try:
            return await scenario(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def file(engine: AsyncEngine, requester: Principal = MARKET, **changes: Any) -> Any:
    """A request of market regulation for ecology's acceptance opinions, with changes."""
    request: dict[str, Any] = {
        "owner": "ecology",
        "fields": [OPINION],
        "purpose": CHECK,
        "purpose_detail": "checking rectifications before a joint inspection",
        "legal_basis": "浙江省综合行政执法条例 第十八条",
        "scope": Scope.of(["西湖区", "滨江区"], []),
        "wanted_from": TODAY,
        "wanted_until": TODAY + timedelta(days=90),
    }
    return await file_request(engine, POLICY, requester, **{**request, **changes})


async def fetch(engine: AsyncEngine, statement: str, **parameters: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(statement), parameters)).all())


async def version(engine: AsyncEngine) -> int:
    (head,) = await fetch(engine, "SELECT version FROM grant_head")
    return int(head.version)


def recent(moment: datetime) -> bool:
    """Whether a stored time is within a minute of now (SQLite returns it without a zone)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return abs(aware - datetime.now(UTC)) < timedelta(minutes=1)


def policy_line(line: str) -> int:
    lines = (DEFAULT_POLICY_DIR / "policy.csv").read_text(encoding="utf-8").splitlines()
    return lines.index(line) + 1


TODAY = today()


@pytest.fixture(autouse=True)
def same_day(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_today(monkeypatch, TODAY)


YESTERDAY = TODAY - timedelta(days=1)
DENY = "p, enforcement, health, Penalty.amount, read, deny"
ASSISTING = (DEFAULT_POLICY_DIR / "policy.csv").read_text(encoding="utf-8").splitlines().index(
    "p, assisting, *, acceptance-results, read, allow"
) + 1
REFUSALS = [
    pytest.param(
        MARKET, {"fields": ["CreditRepair.opinion"]},
        "CreditRepair.opinion is not shared with other departments (Internal review notes of the "
        "handling department (内部审查意见)); no request can open it",
        id="field not shared",
    ),
    pytest.param(
        MARKET, {"fields": ["Acceptance.opinion", "Acceptance.remarks"]},
        "unknown field 'Acceptance.remarks': give Type.field coordinates or field groups "
        "(acceptance-results, colour-code, credit-repair-outcome, inspection-facts, inspection-findings, order-terms, "
        "penalty-grounds, penalty-publicity, rectification-orders, registration)",
        id="unknown field",
    ),
    pytest.param(MARKET, {"fields": []}, "name at least one field", id="no field"),
    pytest.param(
        MARKET, {"fields": ["Acceptance.verdict", "penalty-publicity"]},
        "every field asked for is shared without conditions already; request conditional "
        "fields only",
        id="unconditional fields only",
    ),
    pytest.param(
        EMERGENCY, {},
        "Acceptance.opinion of ecology's records cannot reach emergency even with a grant: no "
        "policy line shares Acceptance.opinion of ecology with emergency; open to an assisting "
        f"department of the rectification (联合帮扶整改) by policy.csv:{ASSISTING}: p, assisting, "
        "*, acceptance-results, read, allow; ask for a policy change instead",
        id="no policy line reaches the requester",
    ),
    pytest.param(
        ENFORCEMENT, {"owner": "health", "fields": ["Penalty.amount"]},
        "Penalty.amount of health's records cannot reach enforcement even with a grant: denied "
        f"by policy.csv:{policy_line(DENY)}: {DENY}; ask for a policy change instead",
        id="a policy line denies the requester",
    ),
    pytest.param(
        MARKET, {"owner": "market", "fields": ["Penalty.amount"]},
        "your own records need no share request", id="own records",
    ),
    pytest.param(
        MARKET, {"owner": "treasury"},
        "unknown owner 'treasury'; one of market, ecology, emergency, enforcement, fire, "
        "planning, transport, health, agriculture, culture",
        id="unknown owner",
    ),
    pytest.param(
        MARKET, {"purpose": "curiosity"},
        "unknown purpose 'curiosity'; one of law-enforcement, rectification-check, "
        "credit-supervision, joint-inspection, risk-warning (policies/purposes.csv)",
        id="unknown purpose",
    ),
    pytest.param(MARKET, {"purpose": "整改验收核查"}, "unknown purpose '整改验收核查'; one of "
                 "law-enforcement, rectification-check, credit-supervision, joint-inspection, "
                 "risk-warning (policies/purposes.csv)", id="purpose by name, not code"),
    pytest.param(
        MARKET, {"purpose_detail": " "}, "state the purpose in words (purposeDetail)",
        id="no purpose in words",
    ),
    pytest.param(MARKET, {"legal_basis": ""}, "state the legal basis", id="empty legal basis"),
    pytest.param(MARKET, {"legal_basis": " \n "}, "state the legal basis", id="blank legal basis"),
    pytest.param(
        MARKET, {"wanted_until": YESTERDAY},
        f"the period ends ({YESTERDAY}) before it starts ({TODAY})", id="ends before it starts",
    ),
    pytest.param(
        MARKET, {"wanted_from": TODAY - timedelta(days=30), "wanted_until": YESTERDAY},
        f"the period ended on {YESTERDAY}", id="period in the past",
    ),
]  # fmt: skip


@DATABASES
@pytest.mark.parametrize(("requester", "changes", "message"), REFUSALS)
def test_file_request_refusals(
    database: Settings, requester: Principal, changes: dict[str, Any], message: str
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        with pytest.raises(BadUserInput) as refused:
            await file(engine, requester, **changes)
        assert refused.value.message == message
        assert await fetch(engine, "SELECT id FROM share_request") == []

    run(database, scenario)


@DATABASES
@pytest.mark.parametrize("caller", [AUDITOR, ADMIN], ids=["auditor", "admin"])
def test_only_department_systems_file_requests(database: Settings, caller: Principal) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        with pytest.raises(Forbidden) as refused:
            await file(engine, caller)
        assert refused.value.extensions() == {
            "code": "FORBIDDEN", "owner": "ecology", "field": "ShareRequest",
            "reason": "only department systems file share requests",
        }  # fmt: skip
        assert await fetch(engine, "SELECT id FROM share_request") == []

    run(database, scenario)


def test_a_refused_share_request_does_not_speak_of_publishing() -> None:
    async def scenario(engine: AsyncEngine) -> None:
        with pytest.raises(Forbidden) as refused:
            await file(engine, AUDITOR)
        assert "publishing" not in refused.value.message
        assert "only department systems file share requests" in refused.value.message

    # The role is checked before the database is touched.
    run(Settings(database_url="sqlite+aiosqlite:///:memory:"), scenario)


@DATABASES
def test_file_request_expands_field_groups_and_stores_the_request(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        # penalty-grounds holds Penalty.legalBasis (unconditional) and Penalty.amount;
        # acceptance-results holds two unconditional fields and Acceptance.opinion.
        first = await file(
            engine, fields=["penalty-grounds", "Penalty.amount", " acceptance-results "],
            scope=Scope.of(["西湖区"], [SECOND]), decision_days=3,
        )  # fmt: skip
        second = await file(engine, ECOLOGY, owner="market", fields=["registration"],
                            purpose="joint-inspection", scope=Scope())  # fmt: skip
        return first, second

    first, second = run(database, scenario)
    stored = dict(first._mapping)
    filed_at = stored.pop("filed_at")
    assert stored == {
        "id": 1, "requester": "market", "owner": "ecology",
        "fields": "Acceptance.opinion Penalty.amount", "purpose": CHECK,
        "purpose_detail": "checking rectifications before a joint inspection",
        "legal_basis": "浙江省综合行政执法条例 第十八条", "regions": "西湖区", "usccs": SECOND,
        "wanted_from": TODAY, "wanted_until": TODAY + timedelta(days=90), "status": "pending",
        "filed_by": "market system", "due_on": due_date(TODAY, 3), "decided_at": None,
        "decided_by": None, "reason": None,
    }  # fmt: skip
    assert recent(filed_at)
    assert (second.fields, second.regions, second.usccs) == (
        "Enterprise.legalRepresentative",
        "",
        "",
    )
    assert second.due_on == due_date(TODAY, sharing.DECISION_DAYS)


# --- deciding -------------------------------------------------------------------------------


@DATABASES
def test_approval_creates_a_grant_and_moves_the_version(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        request = await file(engine, fields=[OPINION, "Penalty.amount"])
        assert await version(engine) == 0
        before, after, created = await decide_request(
            engine, POLICY, ECOLOGY, request.id, approve=True, reason="for the joint campaign"
        )
        assert before.status == "pending"
        assert (after.status, after.decided_by, after.reason) == (
            "approved", "ecology system", "for the joint campaign"
        )  # fmt: skip
        assert await version(engine) == 1
        stored = dict(created._mapping)
        assert recent(stored.pop("approved_at"))
        assert stored == {
            "id": 1, "request_id": request.id, "requester": "market", "owner": "ecology",
            "fields": "Acceptance.opinion Penalty.amount", "purpose": CHECK,
            "regions": "滨江区\n西湖区", "usccs": "", "valid_from": TODAY,
            "valid_until": TODAY + timedelta(days=90), "approved_by": "ecology system",
            "revoked_at": None, "revoked_by": None, "revoke_reason": None,
        }  # fmt: skip
        assert len(await fetch(engine, "SELECT id FROM share_grant")) == 1

    run(database, scenario)


@DATABASES
def test_approval_may_narrow_fields_scope_and_period(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        request = await file(
            engine, fields=[OPINION, "Penalty.amount"],
            wanted_from=TODAY - timedelta(days=5), wanted_until=TODAY + timedelta(days=60),
        )  # fmt: skip
        _, _, created = await decide_request(
            engine, POLICY, ECOLOGY, request.id, approve=True, fields=["Penalty.amount"],
            scope=Scope(("西湖区",)), valid_from=TODAY + timedelta(days=1),
            valid_until=TODAY + timedelta(days=30),
        )  # fmt: skip
        assert (
            created.fields, created.regions, created.usccs, created.valid_from, created.valid_until
        ) == (
            "Penalty.amount", "西湖区", "", TODAY + timedelta(days=1), TODAY + timedelta(days=30)
        )  # fmt: skip
        # Without a period, a grant starts today at the earliest, not in the past.
        other = await file(engine, wanted_from=TODAY - timedelta(days=5))
        _, _, default = await decide_request(engine, POLICY, ECOLOGY, other.id, approve=True)
        assert (default.valid_from, default.valid_until) == (TODAY, TODAY + timedelta(days=90))
        assert await version(engine) == 2

    run(database, scenario)


WIDER = [
    pytest.param(
        {"fields": [OPINION, "Penalty.amount"]},
        "Penalty.amount were not requested: an approval may only narrow the fields",
        id="more fields",
    ),
    pytest.param(
        {"fields": ["CreditRepair.opinion"]},
        "CreditRepair.opinion is not shared with other departments (Internal review notes of the "
        "handling department (内部审查意见)); no request can open it",
        id="a field never shared",
    ),
    pytest.param(
        {"scope": Scope()},
        "the scope all enterprises is wider than the one requested (滨江区, 西湖区)",
        id="all enterprises",
    ),
    pytest.param(
        {"scope": Scope.of(["西湖区", "上城区"], [])},
        "the scope 上城区, 西湖区 is wider than the one requested (滨江区, 西湖区)",
        id="another district",
    ),
    pytest.param(
        {"scope": Scope(usccs=(FIRST,))},
        f"the scope enterprise {FIRST} is wider than the one requested (滨江区, 西湖区)",
        id="an enterprise by code",
    ),
    pytest.param(
        {"valid_until": TODAY + timedelta(days=91)},
        f"the period {TODAY}..{TODAY + timedelta(days=91)} is not within the one requested "
        f"({TODAY}..{TODAY + timedelta(days=90)})",
        id="ends later",
    ),
    pytest.param(
        {"valid_from": YESTERDAY},
        f"the period {YESTERDAY}..{TODAY + timedelta(days=90)} is not within the one requested "
        f"({TODAY}..{TODAY + timedelta(days=90)})",
        id="starts earlier",
    ),
    pytest.param(
        {"valid_from": TODAY + timedelta(days=10), "valid_until": TODAY + timedelta(days=5)},
        f"the period {TODAY + timedelta(days=10)}..{TODAY + timedelta(days=5)} is not within "
        f"the one requested ({TODAY}..{TODAY + timedelta(days=90)})",
        id="ends before it starts",
    ),
]


@DATABASES
@pytest.mark.parametrize(("changes", "message"), WIDER)
def test_approval_may_not_widen_the_request(
    database: Settings, changes: dict[str, Any], message: str
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        request = await file(engine)
        with pytest.raises(BadUserInput) as refused:
            await decide_request(engine, POLICY, ECOLOGY, request.id, approve=True, **changes)
        assert refused.value.message == message
        # Nothing of the refused decision stays.
        (stored,) = await fetch(engine, "SELECT status, decided_at FROM share_request")
        assert tuple(stored) == ("pending", None)
        assert await fetch(engine, "SELECT id FROM share_grant") == []
        assert await version(engine) == 0

    run(database, scenario)


@DATABASES
@pytest.mark.parametrize(
    "decider", [MARKET, EMERGENCY, AUDITOR, ADMIN], ids=["requester", "other", "auditor", "admin"]
)
def test_only_the_owner_decides(database: Settings, decider: Principal) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        request = await file(engine)
        for approve in (True, False):
            with pytest.raises(HubError) as refused:
                await decide_request(
                    engine, POLICY, decider, request.id, approve=approve, reason="because"
                )
            if decider is EMERGENCY:  # no part in it: reads exactly like a missing request
                assert (refused.value.message, refused.value.extensions()) == (
                    f"no share request {request.id}",
                    {"code": "NOT_FOUND", "argument": "id"},
                )
                continue
            assert refused.value.extensions() == {
                "code": "FORBIDDEN", "owner": "ecology", "field": "ShareRequest",
                "reason": "only ecology's systems decide requests for its records",
            }  # fmt: skip
        (stored,) = await fetch(engine, "SELECT status FROM share_request")
        assert stored.status == "pending"
        assert await version(engine) == 0

    run(database, scenario)


@DATABASES
def test_refusal_needs_a_reason_and_creates_no_grant(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        request = await file(engine)
        for reason in (None, "", "  "):
            with pytest.raises(BadUserInput) as refused:
                await decide_request(engine, POLICY, ECOLOGY, request.id, approve=False,
                                     reason=reason)  # fmt: skip
            assert refused.value.message == "state the reason for the refusal"
        _, after, created = await decide_request(
            engine, POLICY, ECOLOGY, request.id, approve=False, reason=" personal data "
        )
        assert created is None
        assert (after.status, after.reason, after.decided_by) == (
            "refused", "personal data", "ecology system"
        )  # fmt: skip
        assert await fetch(engine, "SELECT id FROM share_grant") == []
        assert await version(engine) == 0

    run(database, scenario)


@DATABASES
def test_a_request_is_decided_once(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        approved = await file(engine)
        refused = await file(engine)
        await decide_request(engine, POLICY, ECOLOGY, approved.id, approve=True)
        await decide_request(engine, POLICY, ECOLOGY, refused.id, approve=False, reason="no")
        for request, status in ((approved, "approved"), (refused, "refused")):
            for approve in (True, False):
                with pytest.raises(BadUserInput) as twice:
                    await decide_request(
                        engine, POLICY, ECOLOGY, request.id, approve=approve, reason="again"
                    )
                assert twice.value.message == f"share request {request.id} was already {status}"
        with pytest.raises(NotFound) as missing:
            await decide_request(engine, POLICY, ECOLOGY, 99, approve=True)
        assert missing.value.message == "no share request 99"
        assert len(await fetch(engine, "SELECT id FROM share_grant")) == 1
        assert await version(engine) == 1

    run(database, scenario)


POSTGRES_ONLY = pytest.mark.parametrize("empty_database", BACKENDS[1:], indirect=True)


@POSTGRES_ONLY
def test_a_decision_racing_another_does_not_overwrite_it(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        request = await file(engine)
        async with engine.connect() as approving:
            # Another hub process approves: its transaction holds the request row...
            await approving.execute(
                text("UPDATE share_request SET status = 'approved', decided_by = 'ecology desk' "
                     "WHERE id = :id"), {"id": request.id},
            )  # fmt: skip
            refusing = asyncio.create_task(
                decide_request(engine, POLICY, ECOLOGY, request.id, approve=False, reason="no")
            )
            for _ in range(100):  # ...while this one reads it as pending and waits for it
                waiting = await fetch(
                    engine,
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()",
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            assert waiting, "the refusal never waited for the approval"
            await approving.commit()
        with pytest.raises(BadUserInput, match="was already approved"):
            await refusing
        (stored,) = await fetch(engine, "SELECT status FROM share_request")
        assert stored.status == "approved"

    run(database, scenario)


# --- revoking -------------------------------------------------------------------------------


async def granted(engine: AsyncEngine) -> Any:
    request = await file(engine)
    _, _, created = await decide_request(engine, POLICY, ECOLOGY, request.id, approve=True)
    return created


@DATABASES
@pytest.mark.parametrize("revoker", [ECOLOGY, ADMIN], ids=["owner", "admin"])
def test_revoke_grant(database: Settings, revoker: Principal) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        created = await granted(engine)
        assert await version(engine) == 1
        before, after = await revoke_grant(engine, revoker, created.id, " data leaked ")
        assert before.revoked_at is None
        assert (after.revoked_by, after.revoke_reason) == (revoker.name, "data leaked")
        assert recent(after.revoked_at)
        assert await version(engine) == 2
        with pytest.raises(BadUserInput) as twice:
            await revoke_grant(engine, revoker, created.id, "again")
        assert twice.value.message == f"grant {created.id} was already revoked"
        (stored,) = await fetch(engine, "SELECT revoke_reason FROM share_grant")
        assert stored.revoke_reason == "data leaked"
        assert await version(engine) == 2

    run(database, scenario)


@DATABASES
@pytest.mark.parametrize(
    "revoker", [MARKET, EMERGENCY, AUDITOR], ids=["requester", "other", "auditor"]
)
def test_only_the_owner_or_an_admin_revokes(database: Settings, revoker: Principal) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        created = await granted(engine)
        with pytest.raises(HubError) as refused:
            await revoke_grant(engine, revoker, created.id, "no longer needed")
        if revoker is EMERGENCY:  # no part in it: reads exactly like a missing grant
            assert (refused.value.message, refused.value.extensions()) == (
                f"no grant {created.id}",
                {"code": "NOT_FOUND", "argument": "id"},
            )
        else:
            assert refused.value.extensions() == {
                "code": "FORBIDDEN", "owner": "ecology", "field": "Grant",
                "reason": "only ecology's systems or an admin revoke its grants",
            }  # fmt: skip
        (stored,) = await fetch(engine, "SELECT revoked_at FROM share_grant")
        assert stored.revoked_at is None
        assert await version(engine) == 1

    run(database, scenario)


@DATABASES
def test_revoke_needs_a_reason_and_a_grant(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        created = await granted(engine)
        problems: list[HubError] = []
        for grant_id, reason in ((created.id, ""), (created.id, "  "), (99, "gone")):
            with pytest.raises(HubError) as refused:
                await revoke_grant(engine, ADMIN, grant_id, reason)
            problems.append(refused.value)
        assert [(type(p), p.message) for p in problems] == [
            (BadUserInput, "state the reason for the revocation"),
            (BadUserInput, "state the reason for the revocation"),
            (NotFound, "no grant 99"),
        ]
        assert await version(engine) == 1

    run(database, scenario)


# --- the grant book of a process ------------------------------------------------------------


@DATABASES
def test_grants_reload_after_approvals_and_revocations_only(
    database: Settings, sql_statements: StatementCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        grants = Grants()

        async def rows(statement: Select[Any]) -> Sequence[Row[Any]]:
            async with engine.connect() as connection:
                return (await connection.execute(statement)).all()

        async def current() -> tuple[GrantBook, int]:
            before = len(sql_statements)
            book = await grants.current(rows)
            return book, len(sql_statements) - before

        pending = await file(engine)  # also opens the engine's first connection
        book, statements = await current()
        assert (book.version, book.grants, statements) == (f"0@{TODAY}", (), 2)
        assert await current() == (book, 1)

        created = await granted(engine)
        approved, statements = await current()
        assert (approved.version, statements) == (f"1@{TODAY}", 2)
        assert [(g.id, g.state(TODAY)) for g in approved.grants] == [(created.id, "active")]
        assert approved.match("market", "ecology", OPINION, CHECK, FIRST, "西湖区") == (
            approved.grants[0], f"allowed by grant {created.id}"
        )  # fmt: skip

        # Filing, refusing and failed decisions leave the grants as they were.
        await file(engine)
        await decide_request(engine, POLICY, ECOLOGY, pending.id, approve=False, reason="no")
        with pytest.raises(BadUserInput):
            await revoke_grant(engine, ADMIN, created.id, "")
        assert await current() == (approved, 1)

        await revoke_grant(engine, ECOLOGY, created.id, "case closed")
        revoked, statements = await current()
        assert (revoked.version, statements) == (f"2@{TODAY}", 2)
        assert [g.state(TODAY) for g in revoked.grants] == ["revoked"]
        assert await current() == (revoked, 1)

        # Grants start and end by the day: a new day is a new book.
        monkeypatch.setattr(hub.grants, "today", lambda: TODAY + timedelta(days=1))
        tomorrow, statements = await current()
        assert (tomorrow.version, tomorrow.day, statements) == (
            f"2@{TODAY + timedelta(days=1)}", TODAY + timedelta(days=1), 2
        )  # fmt: skip

    run(database, scenario)
