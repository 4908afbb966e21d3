import asyncio
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from hub import models
from hub.db import create_engine, upgrade
from hub.demo import AS_OF, TABLES, DemoGenerator, count_enterprises, load_demo
from hub.domain import (
    AcceptanceVerdict,
    InspectionKind,
    InspectionResult,
    RectificationStatus,
)
from hub.policy import load_policy
from hub.records import KINDS
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from hub.uscc import parse_uscc
from tests.conftest import BACKENDS

ENTERPRISES = 400


def _rows(seed: int = 7, enterprises: int = ENTERPRISES) -> dict[str, list[dict[str, Any]]]:
    batch = DemoGenerator(seed).batch(enterprises)
    return {table.name: rows for table, rows in batch.items()}


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert _rows(seed=7) == _rows(seed=7)
    assert _rows(seed=7)["enterprise"] != _rows(seed=8)["enterprise"]


def test_enterprises_have_valid_unique_codes_and_chinese_names() -> None:
    enterprises = _rows()["enterprise"]
    codes = [e["uscc"] for e in enterprises]
    assert [parse_uscc(code) for code in codes] == codes
    assert len(set(codes)) == len(codes)
    assert {code[:2] for code in codes} >= {"91", "92"}  # enterprises and individual businesses
    assert all(e["name"].startswith("杭州") for e in enterprises)
    assert all(
        e["address"].startswith("浙江省杭州市" + e["region"] + e["town"]) for e in enterprises
    )
    assert len({e["region"] for e in enterprises}) == 10
    assert len({e["industry"] for e in enterprises}) >= 10


def test_histories_are_a_believable_mix() -> None:
    rows = _rows()
    inspections = rows["inspection"]
    kinds = Counter(i["kind"] for i in inspections)
    assert set(kinds) == set(InspectionKind)
    joint = {i["id"] for i in inspections if i["kind"] is InspectionKind.JOINT}
    assert {p["inspection_id"] for p in rows["inspection_participant"]} == joint
    with_problems = {i["id"] for i in inspections if i["result"] is InspectionResult.PROBLEMS_FOUND}
    assert {f["inspection_id"] for f in rows["inspection_finding"]} == with_problems
    assert {i["owner"] for i in inspections} >= {"market", "ecology", "emergency", "fire"}

    rectifications = {r["id"]: r for r in rows["rectification"]}
    statuses = Counter(r["status"] for r in rectifications.values())
    # Orders follow their acceptances (a failed one puts the order back in progress); overdue
    # is computed, never stored.
    assert set(statuses) == {
        RectificationStatus.ACCEPTED, RectificationStatus.IN_PROGRESS, RectificationStatus.SUBMITTED
    }  # fmt: skip
    verdicts = Counter(a["verdict"] for a in rows["acceptance"])
    assert verdicts[AcceptanceVerdict.PASSED] > verdicts[AcceptanceVerdict.FAILED] > 0
    for acceptance in rows["acceptance"]:
        rectification = rectifications[acceptance["rectification_id"]]
        expected = {
            AcceptanceVerdict.PASSED: RectificationStatus.ACCEPTED,
            AcceptanceVerdict.FAILED: RectificationStatus.IN_PROGRESS,
        }[acceptance["verdict"]]
        assert rectification["status"] is expected
        assert rectification["ordered_on"] <= acceptance["accepted_on"] <= AS_OF
    late = [r for r in rectifications.values()
            if r["status"] is not RectificationStatus.ACCEPTED and r["deadline"] < AS_OF]  # fmt: skip
    assert late
    # Requirement codes for the orders whose requirements have one, and the window conflict.
    coded = Counter(
        code for r in rectifications.values() for code in r["requirement_codes"].split()
    )
    assert coded["voc-enclosed"] == coded["ventilation-open"] == 1
    assert len(coded) > 5

    penalties = rows["penalty"]
    assert any(p["minor_first_offence_exempt"] and p["amount_fen"] == 0 for p in penalties)
    assert any(p["amount_fen"] > 0 for p in penalties)
    assert len({(p["owner"], p["case_number"]) for p in penalties}) == len(penalties)
    assert {c["kind"] for c in rows["credit_record"]} == {"rating", "bad_record", "commendation"}
    assert rows["credit_repair"]


def test_no_record_is_dated_after_the_reference_day() -> None:
    rows = _rows()
    for table, column in [
        ("inspection", "inspected_on"),
        ("penalty", "decided_on"),
        ("rectification", "ordered_on"),
        ("acceptance", "accepted_on"),
        ("credit_record", "issued_on"),
        ("credit_repair", "applied_on"),
    ]:
        assert max(row[column] for row in rows[table]) <= AS_OF, table
    assert min(e["registered_on"] for e in rows["enterprise"]) >= date(1998, 1, 1)


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_load_writes_every_generated_row(empty_database: Settings) -> None:
    upgrade(empty_database)
    expected = {name: len(rows) for name, rows in _rows(enterprises=120).items()}
    # Version 1 of every published record, as its owner would have published it.
    expected["record_version"] = sum(expected[kind.table.name] for kind in KINDS.values())
    expected["share_grant"] = 1  # the canonical case: market reads ecology's opinions
    expected["conflict"] = 1  # the windows: sealed against VOCs, open against explosions
    expected["colour_change"] = 120  # every enterprise's first colour
    progress: list[int] = []

    async def load_and_count() -> tuple[Counter[str], dict[str, int], int, int]:
        engine = create_engine(empty_database)
        written = await load_demo(engine, enterprises=120, seed=7, progress=progress.append)
        async with engine.begin() as connection:
            stored = {
                table.name: int(await connection.scalar(select(func.count()).select_from(table)))
                for table in (
                    *TABLES,
                    models.RecordVersion.__table__,
                    models.ShareGrant.__table__,
                    models.Conflict.__table__,
                    models.ColourChange.__table__,
                    models.InspectionWarning.__table__,
                )
            }
            # Later writers get fresh ids although the demo chose its own.
            next_id = await connection.scalar(
                text(
                    "INSERT INTO inspection_finding (inspection_id, category, description) "
                    "VALUES (1, '消防通道', '复查') RETURNING id"
                )
            )
        enterprises = await count_enterprises(engine)
        await engine.dispose()
        return written, stored, enterprises, int(next_id or 0)

    written, stored, enterprises, next_id = asyncio.run(load_and_count())
    # And the warnings its inspections raise (test_the_demo_warns_as_publishing_would), each
    # with its version in the feed.
    assert written["inspection_warning"] > 0
    expected["inspection_warning"] = written["inspection_warning"]
    expected["record_version"] += written["inspection_warning"]
    assert dict(written) == stored == expected
    assert enterprises == 120
    assert sum(progress) == 120
    assert next_id == stored["inspection_finding"] + 1


def test_demo_tokens_hold_an_enterprise_token_where_the_readme_enterprise_is(
    tmp_path: Any,
) -> None:
    """The enterprise's demo token is its own credential for the README's enterprise; a
    database without that enterprise gets the others only, and the file lists what it got."""
    from hub.demo import (
        CANONICAL_ENTERPRISE,
        ensure_demo_tokens,
        read_demo_tokens,
        write_demo_tokens,
    )

    async def tokens(enterprises: int, seed: int) -> tuple[dict[str, str], list[Any]]:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/{seed}.db")
        upgrade(settings)
        engine = create_engine(settings)
        await load_demo(engine, enterprises=enterprises, seed=seed)
        made = await ensure_demo_tokens(engine, {})
        async with engine.connect() as connection:
            clients = (await connection.execute(text(
                "SELECT name, department, role, enterprise FROM client ORDER BY id"
            ))).all()  # fmt: skip
        await engine.dispose()
        return made, [tuple(row) for row in clients]

    made, clients = asyncio.run(tokens(300, 7))
    assert clients[-1] == ("demo enterprise client", "market", "enterprise", CANONICAL_ENTERPRISE)
    assert len(clients) == 7
    path = tmp_path / "demo-tokens.txt"
    write_demo_tokens(path, made)
    assert read_demo_tokens(path) == made
    assert path.read_text().splitlines()[-1] == f"enterprise   {made['enterprise']}"

    made, clients = asyncio.run(tokens(5, 3))
    assert set(made) == {"market", "ecology", "emergency", "enforcement", "fire", "auditor"}
    assert [role for _, _, role, _ in clients] == ["department"] * 5 + ["auditor"]
    write_demo_tokens(path, made)
    assert read_demo_tokens(path) == made


def test_the_demo_warns_as_publishing_each_inspection_on_its_day_would(
    demo_database: Settings,
) -> None:
    """Each enterprise's inspections, taken by day: the one that brings the inspections of
    its limit's period ending that day to warn_at or past the limit has a warning with the
    count and the limit, and a version of it in the feed; no other has one."""
    policy = load_policy(DEFAULT_POLICY_DIR, policy_fields())
    i, e, w, v = (models.Inspection.__table__.c, models.Enterprise.__table__.c,
                  models.InspectionWarning.__table__.c, models.RecordVersion.__table__.c)  # fmt: skip

    async def read() -> tuple[list[Any], list[Any], list[Any]]:
        engine = create_engine(demo_database)
        async with engine.connect() as connection:
            inspections = (await connection.execute(
                select(i.id, i.owner, i.source_id, i.enterprise_id, i.inspected_on, e.industry,
                       e.colour).join_from(models.Inspection, models.Enterprise)
                .where(i.retracted.is_(False)).order_by(i.id)
            )).all()  # fmt: skip
            warnings = (await connection.execute(
                select(w.inspection_id, w.owner, w.verdict, w.count, w.limit, w.warn_at,
                       w.period_from, w.period_until, w.id)
            )).all()  # fmt: skip
            versions = (await connection.execute(
                select(v.record_id, v.source_id, v.owner, v.change, v.data)
                .where(v.kind == "InspectionWarning")
            )).all()  # fmt: skip
        await engine.dispose()
        return inspections, warnings, versions

    inspections, warnings, versions = asyncio.run(read())
    by_enterprise: dict[int, list[Any]] = {}
    for row in inspections:
        by_enterprise.setdefault(row.enterprise_id, []).append(row)
    due = {}
    for row in inspections:
        limit = policy.limits.of(row.industry, row.colour)
        first = row.inspected_on - timedelta(days=limit.days - 1)
        count = sum(
            first <= other.inspected_on <= row.inspected_on
            and (other.inspected_on, other.id) <= (row.inspected_on, row.id)
            for other in by_enterprise[row.enterprise_id]
        )
        verdict = "over" if count > limit.limit else "warn" if count >= limit.warn_at else None
        if verdict is not None:
            due[row.id] = (row.owner, verdict, count, limit.limit, limit.warn_at, first,
                           row.inspected_on)  # fmt: skip
    assert {warning[0]: tuple(warning[1:8]) for warning in warnings} == due
    assert len(due) > 50  # the demo's busiest enterprises bear more than their limits
    sources = {row.id: row.source_id for row in inspections}
    assert sorted((version.record_id, version.source_id, version.owner, version.change)
                  for version in versions) == sorted(
        (warning.id, sources[warning.inspection_id], warning.owner, "created")
        for warning in warnings
    )  # fmt: skip
