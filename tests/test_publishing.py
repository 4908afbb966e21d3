"""Publishing records: versions, all-or-nothing batches, authorization, repairs and the feed."""

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import AccessEntry, AccessLog, Outcome, Trail
from hub.db import create_engine, upgrade
from hub.demo import AS_OF, load_demo
from hub.domain import DEPARTMENTS
from hub.errors import BadUserInput, Forbidden, InvalidRecords
from hub.models import Base
from hub.policy import load_policy
from hub.publishing import MAX_BATCH, Change, Published, Publisher, publish, retract
from hub.records import KINDS
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import BACKENDS, DEMO_SEED, fresh_database

T = TypeVar("T")
POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
ON = AS_OF  # the day the demo data was made: every date is checked against it
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ECOLOGY = Publisher("client:2", "ecology", "ecology", TRACE)
MARKET = Publisher("client:1", "market", "market")
UNREGISTERED = "91110000600037341L"  # a valid code no demo enterprise has (demo codes: 9x33...)
CODES = ", ".join(department.code for department in DEPARTMENTS)


# --- databases and helpers ----------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A migrated database of its own with a few demo enterprises, for a test that writes."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        run(settings, lambda engine: load_demo(engine, enterprises=20, seed=DEMO_SEED))
        yield settings


@pytest.fixture(scope="module", params=BACKENDS)
def demo_copy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """The demo dossiers the shared demo database has, in a database these tests may write."""
    with fresh_database(request.param, tmp_path_factory.mktemp("republish")) as settings:
        upgrade(settings)
        run(settings, lambda engine: load_demo(engine, enterprises=300, seed=DEMO_SEED))
        yield settings


def run(settings: Settings, scenario: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(settings)
        try:
            return await scenario(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def rows(engine: AsyncEngine, statement: str, **parameters: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(statement), parameters)).all())


async def scalar(engine: AsyncEngine, statement: str, **parameters: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(text(statement), parameters)).scalar_one()


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Rows in every table, and the feed head: what a refused batch must leave as it was."""
    async with engine.connect() as connection:
        counts: dict[str, Any] = {
            table.name: (
                await connection.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in Base.metadata.sorted_tables
        }
        counts["feed_head.seq"] = (
            await connection.execute(text("SELECT seq FROM feed_head WHERE id = 1"))
        ).scalar_one()
    return counts


async def usccs(engine: AsyncEngine) -> list[str]:
    found = [row.uscc for row in await rows(engine, "SELECT uscc FROM enterprise ORDER BY id")]
    assert UNREGISTERED not in found
    return found


async def record_id(engine: AsyncEngine, table: str, source_id: str) -> int:
    return int(await scalar(engine, f"SELECT id FROM {table} WHERE source_id = :s", s=source_id))


async def versions(engine: AsyncEngine, kind: str, source_id: str) -> list[tuple[Any, ...]]:
    found = await rows(
        engine,
        "SELECT version, change, changed, reason, publisher, client, trace_id, data "
        "FROM record_version WHERE kind = :k AND source_id = :s ORDER BY seq",
        k=kind,
        s=source_id,
    )
    return [(*row[:7], json.loads(row.data)) for row in found]


def inspection(source_id: str, uscc: str, **changes: Any) -> dict[str, Any]:
    """An inspection in canonical form, every field given: what its version stores."""
    return {
        "sourceId": source_id,
        "uscc": uscc,
        "actionCode": f"AC-{source_id}",  # registered to one inspection each
        "kind": "joint",
        "inspectedOn": "2026-09-01",
        "result": "problems_found",
        "participants": ["fire"],
        "findings": [{"category": "废气治理", "description": "VOCs收集处理设施未正常运行"}],
    } | changes


def penalty(source_id: str, uscc: str, case: int, **changes: Any) -> dict[str, Any]:
    return {
        "sourceId": source_id,
        "uscc": uscc,
        "inspectionSourceId": "T-INS-1",
        "caseNumber": f"杭环罚〔2026〕{case}号",
        "violation": "超标排放大气污染物",
        "legalBasis": "《中华人民共和国大气污染防治法》第九十九条",
        "amount": "125000.50",
        "decidedOn": "2026-09-10",
        "status": "decided",
        "minorFirstOffenceExempt": False,
        "decisionIssued": True,
        "complianceSuggestionIssued": True,
        "creditRepairNoticeIssued": True,
    } | changes


def rectification(source_id: str, uscc: str, **changes: Any) -> dict[str, Any]:
    return {
        "sourceId": source_id,
        "uscc": uscc,
        "inspectionSourceId": "T-INS-1",
        "penaltySourceId": None,
        "requirement": "修复废气收集处理设施，整改完成后申请验收。",
        "orderedOn": "2026-09-15",
        "deadline": "2026-10-15",
        "status": "submitted",
        "assistingDepartments": [],
    } | changes


def acceptance(source_id: str, rectification_source_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "sourceId": source_id,
        "rectificationSourceId": rectification_source_id,
        "acceptedOn": "2026-10-16",
        "verdict": "passed",
        "opinion": "资料齐全，整改措施落实到位",
    } | changes


def credit_record(source_id: str, uscc: str, **changes: Any) -> dict[str, Any]:
    return {
        "sourceId": source_id,
        "uscc": uscc,
        "kind": "bad_record",
        "level": "serious",
        "reason": "生产经营不合格产品，罚款150000元（杭市监罚〔2026〕901号）",
        "issuedOn": "2026-05-01",
        "expiresOn": "2029-04-30",
        "status": "active",
    } | changes


def credit_repair(source_id: str, credit_record_source_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "sourceId": source_id,
        "creditRecordSourceId": credit_record_source_id,
        "appliedOn": "2026-10-20",
        "decidedOn": None,
        "status": "pending",
        "opinion": None,
    } | changes


async def put(
    engine: AsyncEngine, publisher: Publisher, kind: str, records: list[dict[str, Any]]
) -> list[Published]:
    """What publishing did to the records (the warnings that inspections raise as well are
    tests/test_supervision.py's)."""
    return mine(
        await publish(engine, POLICY, publisher, KINDS[kind], publisher.department, records, on=ON)
    )


def mine(published: list[Published]) -> list[Published]:
    return [result for result in published if result.change is not Change.WARNED]


# --- versions ---------------------------------------------------------------------------


def test_created_unchanged_updated_retracted_reinstated(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        head = (await snapshot(engine))["feed_head.seq"]
        a = inspection("T-INS-1", e1)
        b = inspection("T-INS-2", e1, result="no_problem", participants=[], findings=[])

        created = await put(engine, ECOLOGY, "inspections", [a, b])
        id_a = await record_id(engine, "inspection", "T-INS-1")
        id_b = await record_id(engine, "inspection", "T-INS-2")
        assert created == [
            Published(0, "Inspection", "T-INS-1", id_a, 1, Change.CREATED, e1),
            Published(1, "Inspection", "T-INS-2", id_b, 1, Change.CREATED, e1),
        ]
        assert await put(engine, ECOLOGY, "inspections", [a, b]) == [
            Published(0, "Inspection", "T-INS-1", id_a, 1, Change.UNCHANGED, e1),
            Published(1, "Inspection", "T-INS-2", id_b, 1, Change.UNCHANGED, e1),
        ]

        a2 = a | {"result": "no_problem", "findings": [], "participants": ["fire", "emergency"]}
        assert await put(engine, ECOLOGY, "inspections", [b, a2]) == [
            Published(0, "Inspection", "T-INS-2", id_b, 1, Change.UNCHANGED, e1),
            Published(1, "Inspection", "T-INS-1", id_a, 2, Change.UPDATED, e1),
        ]
        stored = a2 | {"participants": ["emergency", "fire"]}
        assert await rows(
            engine, "SELECT department FROM inspection_participant WHERE inspection_id = :i", i=id_a
        ) == [("emergency",), ("fire",)]
        assert (
            await rows(
                engine, "SELECT category FROM inspection_finding WHERE inspection_id = :i", i=id_a
            )
            == []
        )

        kind = KINDS["inspections"]
        gone = await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-INS-1"], " 录入错误 ")
        assert gone == [Published(0, "Inspection", "T-INS-1", id_a, 3, Change.RETRACTED, e1)]
        assert await rows(
            engine, "SELECT version, retracted FROM inspection WHERE id = :i", i=id_a
        ) == [(3, True)]
        # Retracting again changes nothing; the record stays, marked.
        assert await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-INS-1"], "again") == [
            Published(0, "Inspection", "T-INS-1", id_a, 3, Change.UNCHANGED, e1)
        ]

        assert await put(engine, ECOLOGY, "inspections", [stored]) == [
            Published(0, "Inspection", "T-INS-1", id_a, 4, Change.UPDATED, e1)
        ]
        assert await rows(
            engine, "SELECT version, retracted FROM inspection WHERE id = :i", i=id_a
        ) == [(4, False)]

        who = ("ecology", "client:2", TRACE)
        assert await versions(engine, "Inspection", "T-INS-1") == [
            (1, "created", "", None, *who, a),
            (2, "updated", "findings participants result", None, *who, stored),
            (3, "retracted", "", "录入错误", *who, stored),
            (4, "updated", "", None, *who, stored),
        ]
        assert await versions(engine, "Inspection", "T-INS-2") == [
            (1, "created", "", None, *who, b)
        ]
        # Versions are numbered in the order they were written, with no gap.
        # (Both inspections took the enterprise past its limit: each warning is a version too.)
        seqs = await rows(
            engine, "SELECT seq, kind, source_id, version FROM record_version WHERE seq > :h "
            "ORDER BY seq", h=head,
        )  # fmt: skip
        assert [tuple(row) for row in seqs] == [
            (head + 1, "Inspection", "T-INS-1", 1),
            (head + 2, "Inspection", "T-INS-2", 1),
            (head + 3, "InspectionWarning", "T-INS-1", 1),
            (head + 4, "InspectionWarning", "T-INS-2", 1),
            (head + 5, "Inspection", "T-INS-1", 2),
            (head + 6, "Inspection", "T-INS-1", 3),
            (head + 7, "Inspection", "T-INS-1", 4),
        ]
        assert (await snapshot(engine))["feed_head.seq"] == head + 7

    run(database, scenario)


def test_an_update_rewrites_the_row_its_links_and_its_children(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        await put(engine, ECOLOGY, "inspections", [inspection("T-INS-1", e1)])
        await put(engine, ECOLOGY, "penalties", [penalty("T-PEN-1", e1, 901)])
        rect = rectification("T-RECT-1", e1, assistingDepartments=["enforcement", "fire"])
        await put(engine, ECOLOGY, "rectifications", [rect])
        pen_id = await record_id(engine, "penalty", "T-PEN-1")
        rect_id = await record_id(engine, "rectification", "T-RECT-1")

        changed = penalty(
            "T-PEN-1", e1, 902, amount="0.00", minorFirstOffenceExempt=True, status="exempt"
        )
        assert await put(engine, ECOLOGY, "penalties", [changed]) == [
            Published(0, "Penalty", "T-PEN-1", pen_id, 2, Change.UPDATED, e1)
        ]
        assert await rows(
            engine,
            "SELECT case_number, amount_fen, minor_first_offence_exempt, version FROM penalty "
            "WHERE id = :i",
            i=pen_id,
        ) == [("杭环罚〔2026〕902号", 0, True, 2)]
        assert (await versions(engine, "Penalty", "T-PEN-1"))[-1][2] == (
            "amount caseNumber minorFirstOffenceExempt status"
        )

        moved = rect | {
            "penaltySourceId": "T-PEN-1",
            "assistingDepartments": ["planning"],
            "deadline": "2026-11-15",
        }
        assert await put(engine, ECOLOGY, "rectifications", [moved]) == [
            Published(0, "Rectification", "T-RECT-1", rect_id, 2, Change.UPDATED, e1)
        ]
        (row,) = await rows(
            engine, "SELECT penalty_id, deadline FROM rectification WHERE id = :i", i=rect_id
        )
        assert (row.penalty_id, str(row.deadline)) == (pen_id, "2026-11-15")
        assert await rows(
            engine,
            "SELECT department FROM rectification_assistant WHERE rectification_id = :i",
            i=rect_id,
        ) == [("planning",)]
        assert (await versions(engine, "Rectification", "T-RECT-1"))[-1][2] == (
            "assistingDepartments deadline penaltySourceId"
        )

    run(database, scenario)


def test_records_without_an_enterprise_of_their_own_take_their_parents(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e2 = (await usccs(engine))[1]
        await put(engine, ECOLOGY, "inspections", [inspection("T-INS-1", e2)])
        await put(engine, ECOLOGY, "rectifications", [rectification("T-RECT-1", e2)])
        accepted = acceptance("T-ACC-1", "T-RECT-1")
        await put(engine, ECOLOGY, "acceptances", [accepted])
        acc_id = await record_id(engine, "acceptance", "T-ACC-1")
        kind = KINDS["acceptances"]
        assert await retract(
            engine, POLICY, ECOLOGY, kind, "ecology", ["T-ACC-1"], "验收结论有误"
        ) == [Published(0, "Acceptance", "T-ACC-1", acc_id, 2, Change.RETRACTED, e2)]
        rect_id = await record_id(engine, "rectification", "T-RECT-1")
        assert await put(engine, ECOLOGY, "acceptances", [accepted | {"verdict": "failed"}]) == [
            Published(0, "Acceptance", "T-ACC-1", acc_id, 3, Change.UPDATED, e2),
            # the order follows its acceptance: passed, then failed, so back in progress
            Published(0, "Rectification", "T-RECT-1", rect_id, 3, Change.REOPENED, e2),
        ]
        assert await rows(
            engine,
            "SELECT version, change, changed, uscc FROM record_version WHERE kind = 'Acceptance' "
            "AND source_id = 'T-ACC-1' ORDER BY seq",
        ) == [(1, "created", "", e2), (2, "retracted", "", e2), (3, "updated", "verdict", e2)]

    run(database, scenario)


@pytest.mark.parametrize(
    "kind",
    [
        "inspections",
        "penalties",
        "rectifications",
        "acceptances",
        "creditRecords",
        "creditRepairs",
    ],
)
def test_every_demo_record_republished_as_stored_is_unchanged(
    demo_copy: Settings, kind: str
) -> None:
    async def scenario(engine: AsyncEngine) -> Counter[str]:
        type_name = KINDS[kind].type_name
        stored = await rows(
            engine,
            "SELECT owner, data FROM record_version WHERE kind = :k AND version = 1 ORDER BY seq",
            k=type_name,
        )
        assert len(stored) == await scalar(engine, f"SELECT count(*) FROM {KINDS[kind].table}")
        by_owner: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for owner, data in stored:
            by_owner[owner].append(json.loads(data))
        changes: Counter[str] = Counter()
        for owner, records in by_owner.items():
            publisher = Publisher("client:1", owner, owner)
            for start in range(0, len(records), MAX_BATCH):
                batch = records[start : start + MAX_BATCH]
                for published in await publish(
                    engine, POLICY, publisher, KINDS[kind], owner, batch, on=ON
                ):
                    changes[published.change.value] += 1
        return changes

    changes = run(demo_copy, scenario)
    assert list(changes) == ["unchanged"]
    assert changes["unchanged"] > 0


# --- all or nothing ------------------------------------------------------------------------


async def _chain(engine: AsyncEngine) -> tuple[str, str]:
    """Ecology's inspection, penalty, two rectifications (one accepted) and a retracted
    inspection; market's inspection of the same enterprise."""
    e1, e2 = (await usccs(engine))[:2]
    await put(engine, ECOLOGY, "inspections", [
        inspection("T-INS-1", e1),
        inspection("T-INS-2", e2, inspectedOn="2026-09-02"),
        inspection("T-INS-3", e1, inspectedOn="2026-09-03"),
    ])  # fmt: skip
    await put(engine, ECOLOGY, "penalties", [penalty("T-PEN-1", e1, 901)])
    await put(engine, ECOLOGY, "rectifications", [
        rectification("T-RECT-1", e1, penaltySourceId="T-PEN-1", orderedOn="2026-09-10"),
        rectification("T-RECT-2", e1),
    ])  # fmt: skip
    await put(engine, ECOLOGY, "acceptances", [acceptance("T-ACC-1", "T-RECT-1")])
    await retract(engine, POLICY, ECOLOGY, KINDS["inspections"], "ecology", ["T-INS-3"], "重复录入")
    await put(engine, MARKET, "inspections", [inspection("M-INS-1", e1, participants=[])])
    return e1, e2


# (kind, batch, problems): in the batch and the problems, {e1} and {e2} stand for two
# enterprises. Each batch but its bad records would publish.
BATCHES = {
    "unknown enterprise": (
        "inspections",
        [inspection("T-INS-10", "{e1}"), inspection("T-INS-11", UNREGISTERED)],
        [(1, "T-INS-11", "uscc", f"no enterprise {UNREGISTERED} is registered in the hub; check the code, or wait until market regulation registers it")],
    ),
    "another owner's record": (
        "penalties",
        [penalty("T-PEN-10", "{e1}", 910), penalty("T-PEN-11", "{e1}", 911, inspectionSourceId="M-INS-1")],
        [(1, "T-PEN-11", "inspectionSourceId", "ecology has no Inspection 'M-INS-1'; publish it first")],
    ),
    "a missing record": (
        "rectifications",
        [rectification("T-RECT-10", "{e1}"), rectification("T-RECT-11", "{e1}", inspectionSourceId="T-INS-404")],
        [(1, "T-RECT-11", "inspectionSourceId", "ecology has no Inspection 'T-INS-404'; publish it first")],
    ),
    "a retracted record": (
        "penalties",
        [penalty("T-PEN-10", "{e1}", 910), penalty("T-PEN-11", "{e1}", 911, inspectionSourceId="T-INS-3")],
        [(1, "T-PEN-11", "inspectionSourceId", "Inspection 'T-INS-3' was retracted")],
    ),
    "another enterprise's record": (
        "penalties",
        [penalty("T-PEN-10", "{e1}", 910), penalty("T-PEN-11", "{e2}", 911)],
        [(1, "T-PEN-11", "inspectionSourceId", "Inspection 'T-INS-1' is about enterprise {e1}, not {e2}")],
    ),
    "acceptance before the order day": (
        "acceptances",
        [acceptance("T-ACC-1", "T-RECT-1"), acceptance("T-ACC-2", "T-RECT-2", acceptedOn="2026-09-14")],
        [(1, "T-ACC-2", "acceptedOn", "2026-09-14 is before the Rectification 'T-RECT-2''s day 2026-09-15")],
    ),
    "penalty before its inspection": (
        "penalties",
        [penalty("T-PEN-10", "{e1}", 910), penalty("T-PEN-11", "{e1}", 911, decidedOn="2026-08-31")],
        [(1, "T-PEN-11", "decidedOn", "2026-08-31 is before the Inspection 'T-INS-1''s day 2026-09-01")],
    ),
    "repair applied before the record": (
        "creditRepairs",
        [credit_repair("T-REP-10", "T-CRD-1"), credit_repair("T-REP-11", "T-CRD-1", appliedOn="2026-04-30")],
        [(1, "T-REP-11", "appliedOn", "2026-04-30 is before the CreditRecord 'T-CRD-1''s day 2026-05-01")],
    ),
    "a sourceId twice in the batch": (
        "inspections",
        [inspection("T-INS-10", "{e1}"), inspection("T-INS-10", "{e2}")],
        [(1, "T-INS-10", "sourceId", "repeats records[0] of this batch")],
    ),
    "case number of another penalty": (
        "penalties",
        [penalty("T-PEN-10", "{e1}", 910), penalty("T-PEN-11", "{e1}", 901)],
        [(1, "T-PEN-11", "caseNumber", "the case number is Penalty 'T-PEN-1''s")],
    ),
    "case number twice in the batch": (
        "penalties",
        [penalty("T-PEN-10", "{e1}", 910), penalty("T-PEN-11", "{e1}", 910)],
        [(1, "T-PEN-11", "caseNumber", "the case number is records[0]'s")],
    ),
    "second acceptance of a rectification": (
        "acceptances",
        [acceptance("T-ACC-2", "T-RECT-2"), acceptance("T-ACC-3", "T-RECT-1")],
        [(1, "T-ACC-3", "rectificationSourceId", "the rectification already has Acceptance 'T-ACC-1'")],
    ),
    "two acceptances of a rectification in the batch": (
        "acceptances",
        [acceptance("T-ACC-2", "T-RECT-2"), acceptance("T-ACC-3", "T-RECT-2")],
        [(1, "T-ACC-3", "rectificationSourceId", "the rectification already has records[0]")],
    ),
    "the owner among the participants": (
        "inspections",
        [inspection("T-INS-10", "{e1}"), inspection("T-INS-11", "{e1}", participants=["ecology", "fire"])],
        [(1, "T-INS-11", "participants", "names the owner ecology itself")],
    ),
    "problems of form and of the database together": (
        "inspections",
        [
            inspection("T-INS-11", UNREGISTERED),
            inspection("T-INS-10", "{e1}"),
            inspection("T-INS-12", "{e2}", kind="surprise", inspectedOn="2026-11-02"),
        ],
        [
            (0, "T-INS-11", "uscc", f"no enterprise {UNREGISTERED} is registered in the hub; check the code, or wait until market regulation registers it"),
            (2, "T-INS-12", "kind", "'surprise' is not one of routine, random, joint, campaign"),
            (2, "T-INS-12", "inspectedOn", "2026-11-02 is in the future"),
        ],
    ),
}  # fmt: skip


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_fill(v, names) for v in value)
    return value


@pytest.mark.parametrize("case", list(BATCHES))
def test_a_batch_with_a_bad_record_publishes_nothing_and_names_every_problem(
    database: Settings, case: str
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1, e2 = await _chain(engine)
        await put(engine, ECOLOGY, "creditRecords", [credit_record("T-CRD-1", e1)])
        kind, batch, problems = _fill(BATCHES[case], {"e1": e1, "e2": e2})
        before = await snapshot(engine)
        with pytest.raises(InvalidRecords) as raised:
            await put(engine, ECOLOGY, kind, batch)
        assert await snapshot(engine) == before
        assert [p.as_dict() for p in raised.value.problems] == [
            {"index": i, "sourceId": s, "field": f, "message": m} for i, s, f, m in problems
        ]
        bad = {index for index, *_ in problems}
        shown = "; ".join(f"records[{i}] (sourceId {s}) {f}: {m}" for i, s, f, m in problems)
        assert raised.value.message == (
            f"{len(bad)} of {len(batch)} records cannot be published, so none was: {shown}"
        )
        assert raised.value.extensions()["code"] == "BAD_USER_INPUT"
        # The rest of the batch was good: without the bad records it publishes.
        good = [record for index, record in enumerate(batch) if index not in bad]
        assert {p.change for p in await put(engine, ECOLOGY, kind, good)} <= {
            Change.CREATED,
            Change.UNCHANGED,
            Change.ACCEPTED,  # a passed acceptance accepts its order
        }

    run(database, scenario)


def test_a_long_list_of_problems_is_shortened_in_the_message(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        batch = [inspection(f"T-INS-{n}", e1, result="unknown") for n in range(7)]
        with pytest.raises(InvalidRecords) as raised:
            await put(engine, ECOLOGY, "inspections", batch)
        problem = "result: 'unknown' is not one of no_problem, problems_found, not_operating"
        assert raised.value.message == (
            "7 of 7 records cannot be published, so none was: "
            + "; ".join(f"records[{n}] (sourceId T-INS-{n}) {problem}" for n in range(5))
            + "; and 2 more"
        )
        assert len(raised.value.extensions()["problems"]) == 7

    run(database, scenario)


# --- who may publish -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("publisher", "owner", "kind", "reason"),
    [
        (ECOLOGY, "market", "inspections",
         "no policy line lets ecology publish market's Inspection records"),
        (Publisher("client:3", "fire", "fire"), "ecology", "acceptances",
         "no policy line lets fire publish ecology's Acceptance records"),
        (Publisher("client:8", "market", "auditor"), "market", "creditRecords",
         "no policy line lets auditor publish market's CreditRecord records"),
        (Publisher("client:9", "market", "admin"), "market", "penalties",
         "no policy line lets admin publish market's Penalty records"),
        (Publisher("client:9", "market", "admin"), "ecology", "creditRepairs",
         "no policy line lets admin publish ecology's CreditRepair records"),
    ],
)  # fmt: skip
def test_publishing_or_retracting_others_records_is_forbidden(
    database: Settings, publisher: Publisher, owner: str, kind: str, reason: str
) -> None:
    type_name = KINDS[kind].type_name

    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        await put(
            engine, Publisher("client:1", owner, owner), "inspections", [inspection("T-INS-1", e1)]
        )
        before = await snapshot(engine)
        record = inspection("T-INS-1", e1, result="no_problem")
        with pytest.raises(Forbidden) as published:
            await publish(engine, POLICY, publisher, KINDS[kind], owner, [record], on=ON)
        with pytest.raises(Forbidden) as retracted:
            await retract(engine, POLICY, publisher, KINDS[kind], owner, ["T-INS-1"], "不再有效")
        assert await snapshot(engine) == before
        for raised in (published, retracted):
            error = raised.value
            assert (
                error.message == f"publishing {owner}'s {type_name} records is forbidden: {reason}"
            )
            assert error.extensions() == {
                "code": "FORBIDDEN", "owner": owner, "field": type_name, "reason": reason,
            }  # fmt: skip
            assert error.writing is True

    run(database, scenario)


def test_an_unknown_owner_or_a_batch_too_big_is_bad_input(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        kind = KINDS["inspections"]
        with pytest.raises(BadUserInput) as unknown:
            await publish(engine, POLICY, ECOLOGY, kind, "police", [inspection("T-1", e1)])
        assert unknown.value.message == f"unknown owner 'police'; one of {CODES}"
        assert unknown.value.extensions() == {"code": "BAD_USER_INPUT", "argument": "owner"}
        batch = [inspection(f"T-INS-{n}", e1) for n in range(MAX_BATCH + 1)]
        with pytest.raises(BadUserInput) as big:
            await publish(engine, POLICY, ECOLOGY, kind, "ecology", batch, on=ON)
        assert big.value.message == "1001 records in one batch; publish at most 1000 at a time"
        assert big.value.extensions() == {"code": "BAD_USER_INPUT", "argument": "records"}
        with pytest.raises(BadUserInput) as no_reason:
            await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-1"], "  ")
        assert no_reason.value.message == "say why the records are retracted"
        with pytest.raises(InvalidRecords) as missing:
            await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-404"], "录入错误")
        assert [p.as_dict() for p in missing.value.problems] == [
            {"index": 0, "sourceId": "T-404", "field": "sourceId",
             "message": "ecology has no Inspection 'T-404'"},
        ]  # fmt: skip
        # What the database could not store never reaches it.
        with pytest.raises(BadUserInput) as hostile_reason:
            await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-1"], "录入\x00错误")
        assert hostile_reason.value.message == (
            "the reason must not contain control characters (U+0000 at position 3)"
        )
        with pytest.raises(InvalidRecords) as hostile_ids:
            await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-1", "T\ud800"], "错")
        assert [p.as_dict() for p in hostile_ids.value.problems] == [
            {"index": 1, "sourceId": None, "field": "sourceId",
             "message": "must not contain lone surrogates (U+D800 at position 2)"},
        ]  # fmt: skip
        with pytest.raises(BadUserInput) as many:
            await retract(engine, POLICY, ECOLOGY, kind, "ecology", ["T-1"] * 1001, "错")
        assert many.value.message == "1001 records in one call; retract at most 1000 at a time"

    run(database, scenario)


def test_retracting_the_same_record_twice_in_one_call_retracts_it_once(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        await put(engine, ECOLOGY, "inspections", [inspection("T-INS-1", e1)])
        id_a = await record_id(engine, "inspection", "T-INS-1")
        kind = KINDS["inspections"]
        assert await retract(
            engine, POLICY, ECOLOGY, kind, "ecology", ["T-INS-1", "T-INS-1"], "录入错误"
        ) == [
            Published(0, "Inspection", "T-INS-1", id_a, 2, Change.RETRACTED, e1),
            Published(1, "Inspection", "T-INS-1", id_a, 2, Change.UNCHANGED, e1),
        ]

    run(database, scenario)


# --- dry runs --------------------------------------------------------------------------------


def test_a_dry_run_reports_the_changes_and_writes_nothing(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        a, b, c = (inspection(f"T-INS-{n}", e1) for n in (1, 2, 3))
        await put(engine, ECOLOGY, "inspections", [a, b, c])
        await retract(engine, POLICY, ECOLOGY, KINDS["inspections"], "ecology", ["T-INS-3"], "错")
        ids = [await record_id(engine, "inspection", f"T-INS-{n}") for n in (1, 2, 3)]
        batch = [a, b | {"result": "no_problem"}, c, inspection("T-INS-4", e1)]
        before = await snapshot(engine)
        planned = mine(await publish(
            engine, POLICY, ECOLOGY, KINDS["inspections"], "ecology", batch, dry_run=True, on=ON
        ))  # fmt: skip
        assert planned == [
            Published(0, "Inspection", "T-INS-1", ids[0], 1, Change.UNCHANGED, e1),
            Published(1, "Inspection", "T-INS-2", ids[1], 2, Change.UPDATED, e1),
            Published(2, "Inspection", "T-INS-3", ids[2], 3, Change.UPDATED, e1),  # reinstated
            Published(3, "Inspection", "T-INS-4", None, 1, Change.CREATED, e1),
        ]
        assert await snapshot(engine) == before
        with pytest.raises(InvalidRecords):
            await publish(
                engine, POLICY, ECOLOGY, KINDS["inspections"], "ecology",
                [*batch, inspection("T-INS-5", UNREGISTERED)], dry_run=True, on=ON,
            )  # fmt: skip
        # The real thing does what the dry run said.
        done = await put(engine, ECOLOGY, "inspections", batch)
        new_id = await record_id(engine, "inspection", "T-INS-4")
        assert done == [
            *planned[:3],
            Published(3, "Inspection", "T-INS-4", new_id, 1, Change.CREATED, e1),
        ]

    run(database, scenario)


def test_a_dry_run_of_an_approved_repair_reports_the_repaired_credit_record(
    database: Settings,
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        await put(engine, MARKET, "creditRecords", [credit_record("T-CRD-1", e1)])
        credit_id = await record_id(engine, "credit_record", "T-CRD-1")
        approved = credit_repair("T-REP-1", "T-CRD-1", status="approved", decidedOn="2026-10-28")
        planned = await publish(
            engine,
            POLICY,
            MARKET,
            KINDS["creditRepairs"],
            "market",
            [approved],
            dry_run=True,
            on=ON,
        )
        assert planned == [
            Published(0, "CreditRepair", "T-REP-1", None, 1, Change.CREATED, e1),
            Published(0, "CreditRecord", "T-CRD-1", credit_id, 2, Change.REPAIRED, e1),
        ]

    run(database, scenario)


# --- credit repair: repaired once, synced everywhere -----------------------------------------


async def _served(
    engine: AsyncEngine, department: str, uscc: str, type_name: str, ids: list[int]
) -> None:
    trail = Trail()
    for served_id in ids:
        trail.serve(uscc, type_name, str(served_id), ("level", "status"))
    await AccessLog(engine).append(
        AccessEntry(
            recorded_at=datetime.now(UTC), outcome=Outcome.OK, trace_id="ab" * 16,
            duration_us=1500, client="client:5", department=department, role="department",
            trail=trail,
        )
    )  # fmt: skip


def test_an_approved_repair_repairs_the_record_and_tells_its_readers(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        record = credit_record("T-CRD-1", e1)
        await put(engine, MARKET, "creditRecords", [record, credit_record("T-CRD-2", e1)])
        credit_id = await record_id(engine, "credit_record", "T-CRD-1")
        other_id = await record_id(engine, "credit_record", "T-CRD-2")
        await _served(engine, "fire", e1, "CreditRecord", [other_id, credit_id])
        await _served(engine, "enforcement", e1, "CreditRecord", [credit_id])
        await _served(engine, "enforcement", e1, "CreditRecord", [credit_id])  # read twice
        await _served(engine, "transport", e1, "CreditRecord", [other_id])  # another record
        # The same id, but of an inspection: not the credit record.
        await _served(engine, "health", e1, "Inspection", [credit_id])
        await _served(engine, "market", e1, "CreditRecord", [credit_id])  # the owner itself
        emergency = Trail()  # asked, but was refused every field
        emergency.deny(e1, "CreditRecord", str(credit_id), "market", "CreditRecord.level", "denied")
        await AccessLog(engine).append(
            AccessEntry(datetime.now(UTC), Outcome.PARTIAL, "cd" * 16, 900, "client:6",
                        "emergency", "department", trail=emergency)
        )  # fmt: skip

        pending = credit_repair("T-REP-1", "T-CRD-1")
        created = await put(engine, MARKET, "creditRepairs", [pending])
        repair_id = await record_id(engine, "credit_repair", "T-REP-1")
        assert created == [
            Published(0, "CreditRepair", "T-REP-1", repair_id, 1, Change.CREATED, e1)
        ]
        assert await rows(
            engine, "SELECT status, version FROM credit_record WHERE id = :i", i=credit_id
        ) == [("active", 1)]
        repaired = "SELECT * FROM notification WHERE topic = 'credit_repaired'"
        assert await rows(engine, repaired) == []

        approved = pending | {
            "status": "approved",
            "decidedOn": "2026-10-28",
            "opinion": "同意修复",
        }
        assert await put(engine, MARKET, "creditRepairs", [approved]) == [
            Published(0, "CreditRepair", "T-REP-1", repair_id, 2, Change.UPDATED, e1),
            Published(0, "CreditRecord", "T-CRD-1", credit_id, 2, Change.REPAIRED, e1),
        ]
        assert await rows(
            engine, "SELECT status, version, retracted FROM credit_record ORDER BY id DESC LIMIT 2"
        ) == [("active", 1, False), ("repaired", 2, False)]
        reason = "credit repair T-REP-1 approved on 2026-10-28"
        assert await versions(engine, "CreditRecord", "T-CRD-1") == [
            (1, "created", "", None, "market", "client:1", None, record),
            (2, "repaired", "status", reason, "market", "client:1", None,
             record | {"status": "repaired"}),
        ]  # fmt: skip
        message = (
            f"market's credit record T-CRD-1 of enterprise {e1}, which your systems read, was "
            f"repaired ({reason}); its status is now repaired: correct any copy you keep"
        )
        notified = await rows(
            engine,
            "SELECT department, topic, kind, record_id, owner, source_id, uscc, version, message "
            "FROM notification WHERE topic = 'credit_repaired' ORDER BY department",
        )
        assert [tuple(row) for row in notified] == [
            (department, "credit_repaired", "CreditRecord", credit_id, "market", "T-CRD-1", e1, 2, message)
            for department in ("enforcement", "fire")
        ]  # fmt: skip

        # Published again, approved: nothing more happens, nobody is told twice.
        before = await snapshot(engine)
        assert await put(engine, MARKET, "creditRepairs", [approved]) == [
            Published(0, "CreditRepair", "T-REP-1", repair_id, 2, Change.UNCHANGED, e1)
        ]
        reworded = approved | {"opinion": "已履行处罚决定，同意修复"}
        assert await put(engine, MARKET, "creditRepairs", [reworded]) == [
            Published(0, "CreditRepair", "T-REP-1", repair_id, 3, Change.UPDATED, e1)
        ]
        after = await snapshot(engine)
        assert (after["record_version"], after["notification"]) == (
            before["record_version"] + 1,
            before["notification"],
        )

    run(database, scenario)


def test_an_approved_repair_published_new_repairs_at_once(database: Settings) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        e1 = (await usccs(engine))[0]
        await put(engine, MARKET, "creditRecords", [credit_record("T-CRD-1", e1)])
        credit_id = await record_id(engine, "credit_record", "T-CRD-1")
        rejected = credit_repair("T-REP-0", "T-CRD-1", status="rejected", decidedOn="2026-10-21")
        approved = credit_repair("T-REP-1", "T-CRD-1", status="approved", decidedOn="2026-10-28")
        published = await put(engine, MARKET, "creditRepairs", [rejected, approved])
        ids = [await record_id(engine, "credit_repair", f"T-REP-{n}") for n in (0, 1)]
        assert published == [
            Published(0, "CreditRepair", "T-REP-0", ids[0], 1, Change.CREATED, e1),
            Published(1, "CreditRepair", "T-REP-1", ids[1], 1, Change.CREATED, e1),
            Published(1, "CreditRecord", "T-CRD-1", credit_id, 2, Change.REPAIRED, e1),
        ]
        told = "SELECT count(*) FROM notification WHERE topic = 'credit_repaired'"
        assert await rows(engine, told) == [(0,)]

    run(database, scenario)


# --- the change feed under concurrent publishers ---------------------------------------------

PUBLISHERS = 6
BATCH = 5


async def _seqs_after(engine: AsyncEngine, cursor: int) -> list[int]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT seq FROM record_version WHERE seq > :c ORDER BY seq"), {"c": cursor}
        )
        return [int(seq) for seq in result.scalars()]


def test_concurrent_publishers_number_versions_without_gap_in_commit_order(
    database: Settings,
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        # On PostgreSQL a second engine stands for a second hub process.
        postgres = engine.dialect.name == "postgresql"
        engines = [engine, create_engine(database)] if postgres else [engine]
        enterprises = await usccs(engine)
        head = (await snapshot(engine))["feed_head.seq"]
        total = PUBLISHERS * (BATCH * 2 + 1)
        done = asyncio.Event()
        seen: list[int] = []

        async def publisher(number: int) -> list[Published]:
            """Creates a batch, updates it, retracts one record of it."""
            owner = DEPARTMENTS[number].code
            who = Publisher(f"client:{number}", owner, owner)
            target = engines[number % len(engines)]
            kind = KINDS["inspections"]
            batch = [
                inspection(f"T-{number}-{n}", enterprises[n], participants=[]) for n in range(BATCH)
            ]
            changed = [record | {"result": "no_problem", "findings": []} for record in batch]
            return [
                *await publish(target, POLICY, who, kind, owner, batch, on=ON),
                *await publish(target, POLICY, who, kind, owner, changed, on=ON),
                *await retract(target, POLICY, who, kind, owner, [f"T-{number}-0"], "录入错误"),
            ]

        async def reader() -> None:
            """Polls the feed as a subscriber does, from a cursor, while publishers write."""
            cursor = head
            while True:
                finished = done.is_set()
                new = await _seqs_after(engines[-1], cursor)
                seen.extend(new)
                cursor = new[-1] if new else cursor
                if finished:
                    return
                await asyncio.sleep(0.002)

        async def publishers() -> list[list[Published]]:
            try:
                return await asyncio.gather(*(publisher(n) for n in range(PUBLISHERS)))
            finally:
                done.set()

        try:
            results, _ = await asyncio.gather(publishers(), reader())
        finally:
            for extra in engines[1:]:
                await extra.dispose()

        assert [[p.change for p in mine(result)] for result in results] == [
            [Change.CREATED] * BATCH + [Change.UPDATED] * BATCH + [Change.RETRACTED]
        ] * PUBLISHERS
        # Every version numbered, the warnings new inspections raised too.
        total = sum(p.change is not Change.UNCHANGED for result in results for p in result)
        expected = list(range(head + 1, head + total + 1))
        assert await _seqs_after(engine, head) == expected
        assert (await snapshot(engine))["feed_head.seq"] == head + total
        assert seen == expected  # every version once, in order: none committed behind the cursor
        # Each call is numbered as one block: publishers never interleave.
        written = await rows(
            engine,
            "SELECT seq, kind, source_id, version FROM record_version WHERE seq > :h ORDER BY seq",
            h=head,
        )
        for number in range(PUBLISHERS):
            own = [row for row in written if row.source_id.startswith(f"T-{number}-")
                   and row.kind == "Inspection"]  # fmt: skip
            for version, size in ((1, BATCH), (2, BATCH), (3, 1)):
                block = [row.seq for row in own if row.version == version]
                assert block == list(range(block[0], block[0] + size))

    run(database, scenario)


def test_the_same_record_published_at_once_by_two_processes_is_created_once(
    database: Settings,
) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        other = create_engine(database)  # another hub process, on PostgreSQL
        try:
            e1 = (await usccs(engine))[0]
            record = [inspection("T-INS-1", e1)]
            kind = KINDS["inspections"]
            results = await asyncio.gather(*(
                publish(target, POLICY, ECOLOGY, kind, "ecology", record, on=ON)
                for target in (engine, other, engine, other)
            ))  # fmt: skip
        finally:
            await other.dispose()
        created_id = await record_id(engine, "inspection", "T-INS-1")
        assert sorted(published.change for (published,) in results) == [
            Change.CREATED, Change.UNCHANGED, Change.UNCHANGED, Change.UNCHANGED,
        ]  # fmt: skip
        assert {(p.record_id, p.version) for (p,) in results} == {(created_id, 1)}
        assert len(await versions(engine, "Inspection", "T-INS-1")) == 1

    run(database, scenario)


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_records_stored_before_publishing_existed_republish_unchanged(
    empty_database: Settings,
) -> None:
    upgrade(empty_database, "0003")

    async def store(engine: AsyncEngine) -> None:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO enterprise (id, uscc, owner, name, legal_representative, address, "
                "industry, region, town, registered_on, status) VALUES (1, '91330105UK47AB3T6H', "
                "'market', '杭州卓越物流有限公司', '沈斌', '浙江省杭州市拱墅区半山街道湖州街491号', "
                "'道路运输', '拱墅区', '半山街道', '2019-09-15', 'active')"
            ))  # fmt: skip
            await connection.execute(text(
                "INSERT INTO inspection (id, owner, source_id, enterprise_id, action_code, kind, "
                "inspected_on, result) VALUES (1, 'ecology', 'T-INS-1', 1, "
                "'AC-T-INS-1', 'routine', '2026-09-01', 'no_problem')"
            ))  # fmt: skip

    run(empty_database, store)
    upgrade(empty_database)
    record = inspection(
        "T-INS-1", "91330105UK47AB3T6H", kind="routine", result="no_problem", participants=[],
        findings=[],
    )  # fmt: skip

    async def republish(engine: AsyncEngine) -> None:
        assert await put(engine, ECOLOGY, "inspections", [record]) == [
            Published(0, "Inspection", "T-INS-1", 1, 1, Change.UNCHANGED, "91330105UK47AB3T6H")
        ]

    run(empty_database, republish)
