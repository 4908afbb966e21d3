"""`hub import` as an administrator runs it: real files, a real database, the access log."""

import asyncio
import getpass
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from hub.audit import verify
from hub.cli import app
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.reading import read_ndjson
from hub.records import today
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import BACKENDS, HEAD, fresh_database

runner = CliRunner()
CLIENT = f"hub import ({getpass.getuser()})"
TABLES = (
    "inspection", "inspection_participant", "inspection_finding", "penalty", "rectification",
    "rectification_assistant", "acceptance", "credit_record", "credit_repair", "record_version",
    "access_record", "feed_head",
)  # fmt: skip


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A database of its own with 40 demo enterprises: imports change it."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)

        async def load() -> None:
            engine = create_engine(settings)
            await load_demo(engine, enterprises=40, seed=7)
            await engine.dispose()

        asyncio.run(load())
        yield settings


def sql(settings: Settings, statement: str, **parameters: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = list((await connection.execute(text(statement), parameters)).all())
        await engine.dispose()
        return rows

    return asyncio.run(run())


def hub_import(settings: Settings, *arguments: str | Path, policies: Path | None = None) -> Result:
    env = {"HUB_DATABASE_URL": settings.database_url, "COLUMNS": "200"}
    if policies is not None:
        env["HUB_POLICY_DIR"] = str(policies)
    return runner.invoke(app, ["import", *map(str, arguments)], env=env)


def flat(output: str) -> str:
    """The words of an output, without the lines that draw tables."""
    return " ".join(output.translate(BOX).split())


BOX = str.maketrans(dict.fromkeys("┏━┳┓┃┡╇┩│└─┴┘", " "))


def summary(created: int, updated: int, unchanged: int, rejected: int, title: str,
            checked_on_import: int = 0) -> str:  # fmt: skip
    """The summary table as printed, flattened."""
    later = f"checked on import {checked_on_import} " if checked_on_import else ""
    return (
        f"{title} count created {created} updated {updated} unchanged {unchanged} repaired 0 "
        f"{later}rejected {rejected}"
    )


def published(settings: Settings, kind: str, source_id: str) -> dict[str, Any]:
    (row,) = sql(
        settings,
        "SELECT * FROM record_version WHERE kind = :kind AND source_id = :source_id "
        "ORDER BY version DESC LIMIT 1",
        kind=kind,
        source_id=source_id,
    )
    return dict(row._mapping)


def counts(settings: Settings) -> dict[str, Any]:
    counted = {t: sql(settings, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    return counted | {"feed": sql(settings, "SELECT seq FROM feed_head")[0][0]}


def stored_acceptance(settings: Settings, kind: str, source_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(published(settings, kind, source_id)["data"])
    return data


def ndjson(path: Path, *lines: dict[str, Any] | str) -> Path:
    path.write_text(
        "".join(
            (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
            for line in lines
        ),
        encoding="utf-8",
    )
    return path


def rectification(source_id: str, inspection: str, uscc: str, ordered_on: str) -> dict[str, Any]:
    return {
        "sourceId": source_id, "uscc": uscc, "inspectionSourceId": inspection,
        "requirement": "修复废气处理设施并建立运行台账", "orderedOn": ordered_on,
        "deadline": "2026-12-31", "status": "submitted", "assistingDepartments": ["fire"],
    }  # fmt: skip


# Two ecology rectifications awaiting acceptance, on inspections of the demo data.
NEW_RECTIFICATIONS = (
    rectification("ECOLOGY-RECT-NEW-1", "ECOLOGY-INS-0000078", "923301113JMJ1JGT5T", "2026-09-10"),
    rectification("ECOLOGY-RECT-NEW-2", "ECOLOGY-INS-0000053", "91330112NRPJA9BQ0M", "2026-04-01"),
)


def acceptances_file(settings: Settings, path: Path) -> Path:
    """Acceptances as ecology's system exports them: four good lines, five bad ones."""
    stored = {
        source_id: {"recordKind": "acceptances", **stored_acceptance(settings, "Acceptance", source_id)}
        for source_id in ("ECOLOGY-ACC-0000001", "ECOLOGY-ACC-0000006", "ECOLOGY-ACC-0000020",
                          "ECOLOGY-ACC-0000027")
    }  # fmt: skip
    tomorrow = (today() + timedelta(days=1)).isoformat()
    new = {"recordKind": "acceptances", "verdict": "passed", "opinion": "整改到位，同意通过验收"}
    return ndjson(
        path,
        new | {"sourceId": "ECOLOGY-ACC-NEW-1", "rectificationSourceId": "ECOLOGY-RECT-NEW-1",
               "acceptedOn": "2026-10-12"},
        stored["ECOLOGY-ACC-0000001"],
        stored["ECOLOGY-ACC-0000006"] | {"opinion": "复查确认整改到位"},
        new | {"sourceId": "ECOLOGY-ACC-NEW-9", "rectificationSourceId": "ECOLOGY-RECT-NEW-2",
               "acceptedOn": "2026-03-01"},  # before the rectification was ordered
        stored["ECOLOGY-ACC-0000020"] | {"acceptedOn": tomorrow},
        "",
        new | {"sourceId": "ECOLOGY-ACC-NEW-4", "rectificationSourceId": "ECOLOGY-RECT-9999999",
               "acceptedOn": "2026-10-01"},
        stored["ECOLOGY-ACC-0000027"] | {"verdict": "maybe"},
        '{"recordKind": "acceptances", "sourceId": "ECOLOGY-ACC-NEW-5", "verdict": "passed"',
        new | {"sourceId": "ECOLOGY-ACC-NEW-2", "rectificationSourceId": "ECOLOGY-RECT-NEW-2",
               "acceptedOn": "2026-11-20"},
    )  # fmt: skip


def expected_rejections() -> list[dict[str, Any]]:
    tomorrow = (today() + timedelta(days=1)).isoformat()
    return [
        {"line": 4, "kind": "acceptances", "sourceId": "ECOLOGY-ACC-NEW-9", "field": "acceptedOn",
         "message": "2026-03-01 is before the Rectification 'ECOLOGY-RECT-NEW-2''s day 2026-04-01"},
        {"line": 5, "kind": "acceptances", "sourceId": "ECOLOGY-ACC-0000020", "field": "acceptedOn",
         "message": f"{tomorrow} is in the future"},
        {"line": 7, "kind": "acceptances", "sourceId": "ECOLOGY-ACC-NEW-4",
         "field": "rectificationSourceId",
         "message": "ecology has no Rectification 'ECOLOGY-RECT-9999999'; publish it first"},
        {"line": 8, "kind": "acceptances", "sourceId": "ECOLOGY-ACC-0000027", "field": "verdict",
         "message": "'maybe' is not one of passed, failed"},
        {"line": 9, "kind": None, "sourceId": None, "field": None,
         "message": "is not JSON (Expecting ',' delimiter at column 83); a line holds one JSON "
                    "object"},
    ]  # fmt: skip


def import_new_rectifications(settings: Settings, tmp_path: Path) -> None:
    path = ndjson(tmp_path / "rectifications.ndjson", *NEW_RECTIFICATIONS)
    result = hub_import(settings, path, "--department", "ecology", "--kind", "rectifications")
    assert result.exit_code == 0, result.output
    assert summary(2, 0, 0, 0, "rectifications.ndjson (ecology)") in flat(result.stdout)


def test_acceptances_with_bad_lines_are_reported_by_line_and_the_good_ones_stored(
    database: Settings, tmp_path: Path
) -> None:
    import_new_rectifications(database, tmp_path)
    path = acceptances_file(database, tmp_path / "acceptances.ndjson")
    report = tmp_path / "rejected.ndjson"

    result = hub_import(database, path, "--department", "ecology", "--batch-size", "4",
                        "--report", report)  # fmt: skip

    assert result.exit_code == 1, result.output
    rejections = expected_rejections()
    assert [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()] == (
        rejections
    )
    listed = "\n".join(
        f"line {r['line']}" + (f" (sourceId {r['sourceId']})" if r["sourceId"] else "")
        + (f" {r['field']}: " if r["field"] else " ") + r["message"]
        for r in rejections
    )  # fmt: skip
    assert flat(result.stdout) == flat(
        summary(2, 1, 1, 5, "acceptances.ndjson (ecology)") + "\nrejected lines:\n" + listed
    )
    assert flat(result.stderr) == (
        "5 of 9 lines rejected: fix them and import the file again (lines already imported come "
        "out unchanged)"
    )

    # The good lines are stored, as published, by ecology through the import.
    rows = sql(
        database,
        "SELECT a.source_id, a.owner, a.version, a.accepted_on, a.verdict, a.opinion, "
        "r.source_id AS rectification FROM acceptance a JOIN rectification r "
        "ON r.id = a.rectification_id WHERE a.owner = 'ecology' ORDER BY a.source_id",
    )
    assert [(r.source_id, r.version, str(r.accepted_on), r.verdict, r.opinion, r.rectification)
            for r in rows] == [
        ("ECOLOGY-ACC-0000001", 1, "2024-03-11", "passed", "资料齐全，整改措施落实到位",
         "ECOLOGY-RECT-0000001"),
        ("ECOLOGY-ACC-0000006", 2, "2024-05-13", "passed", "复查确认整改到位",
         "ECOLOGY-RECT-0000008"),
        ("ECOLOGY-ACC-0000007", 1, "2025-06-11", "passed", "现场复核问题已整改完毕，予以通过",
         "ECOLOGY-RECT-0000009"),
        ("ECOLOGY-ACC-0000020", 1, "2024-12-15", "failed", "整改措施未落实，需重新整改",
         "ECOLOGY-RECT-0000025"),
        ("ECOLOGY-ACC-0000027", 1, "2024-12-16", "passed", "整改到位，同意通过验收",
         "ECOLOGY-RECT-0000034"),
        ("ECOLOGY-ACC-0000029", 1, "2025-05-24", "failed", "现场复查仍存在同类问题，验收不通过",
         "ECOLOGY-RECT-0000036"),
        ("ECOLOGY-ACC-NEW-1", 1, "2026-10-12", "passed", "整改到位，同意通过验收",
         "ECOLOGY-RECT-NEW-1"),
        ("ECOLOGY-ACC-NEW-2", 1, "2026-11-20", "passed", "整改到位，同意通过验收",
         "ECOLOGY-RECT-NEW-2"),
    ]  # fmt: skip
    version = published(database, "Acceptance", "ECOLOGY-ACC-0000006")
    assert (version["version"], version["change"], version["changed"], version["publisher"],
            version["client"]) == (2, "updated", "opinion", "ecology", CLIENT)  # fmt: skip
    assert json.loads(version["data"]) == {
        "sourceId": "ECOLOGY-ACC-0000006", "rectificationSourceId": "ECOLOGY-RECT-0000008",
        "acceptedOn": "2024-05-13", "verdict": "passed", "opinion": "复查确认整改到位",
    }  # fmt: skip
    created = published(database, "Acceptance", "ECOLOGY-ACC-NEW-1")
    assert (created["version"], created["change"], created["uscc"]) == (
        1, "created", "923301113JMJ1JGT5T"
    )  # fmt: skip
    assert json.loads(created["data"]) == {
        "sourceId": "ECOLOGY-ACC-NEW-1", "rectificationSourceId": "ECOLOGY-RECT-NEW-1",
        "acceptedOn": "2026-10-12", "verdict": "passed", "opinion": "整改到位，同意通过验收",
    }  # fmt: skip

    # The same file again: every good line is unchanged, the bad ones are still bad.
    before = counts(database)
    again = hub_import(database, path, "--department", "ecology", "--batch-size", "4")
    assert again.exit_code == 1
    assert flat(again.stdout).startswith(summary(0, 0, 4, 5, "acceptances.ndjson (ecology)"))
    after = counts(database)
    assert after["record_version"] == before["record_version"]
    assert after["feed"] == before["feed"]
    assert after["access_record"] == before["access_record"] + 3  # one per batch


def test_every_batch_is_an_access_record_of_what_it_wrote(
    database: Settings, tmp_path: Path
) -> None:
    import_new_rectifications(database, tmp_path)
    (first,) = sql(database, "SELECT max(seq) FROM access_record")
    path = acceptances_file(database, tmp_path / "acceptances.ndjson")
    assert hub_import(database, path, "--department", "ecology", "--batch-size", "4").exit_code == 1

    ids = {
        row.source_id: str(row.id)
        for row in sql(database, "SELECT source_id, id FROM acceptance WHERE owner = 'ecology'")
    }
    # What acceptances closed (整改闭环): the orders they accept, by acceptance.
    orders = {
        row.source_id: str(row.order_id)
        for row in sql(database, "SELECT a.source_id, r.id AS order_id FROM acceptance a "
                       "JOIN rectification r ON r.id = a.rectification_id WHERE a.owner = 'ecology'")
    }  # fmt: skip
    records = sql(database, "SELECT * FROM access_record WHERE seq > :seq ORDER BY seq",
                  seq=first[0] or 0)  # fmt: skip
    assert [
        {key: record._mapping[key] for key in ("client", "department", "role", "operation_name",
                                               "operation_type", "outcome", "served", "denied")}
        for record in records
    ] == [
        {"client": CLIENT, "department": "ecology", "role": "department",
         "operation_name": "import", "operation_type": "mutation", "outcome": outcome,
         "served": "[]", "denied": "[]"}
        for outcome in ("partial", "error", "ok")
    ]  # fmt: skip
    assert [json.loads(record.written) if record.written else None for record in records] == [
        [
            {"enterprise": "913301081Q84DWR86D", "type": "Acceptance", "change": "updated",
             "ids": [ids["ECOLOGY-ACC-0000006"]]},
            {"enterprise": "913301102GB1F1D287", "type": "Acceptance", "change": "unchanged",
             "ids": [ids["ECOLOGY-ACC-0000001"]]},
            {"enterprise": "923301113JMJ1JGT5T", "type": "Acceptance", "change": "created",
             "ids": [ids["ECOLOGY-ACC-NEW-1"]]},
            {"enterprise": "923301113JMJ1JGT5T", "type": "Rectification", "change": "accepted",
             "ids": [orders["ECOLOGY-ACC-NEW-1"]]},
        ],
        None,  # every line of the second batch was rejected
        [
            {"enterprise": "91330112NRPJA9BQ0M", "type": "Acceptance", "change": "created",
             "ids": [ids["ECOLOGY-ACC-NEW-2"]]},
            {"enterprise": "91330112NRPJA9BQ0M", "type": "Rectification", "change": "accepted",
             "ids": [orders["ECOLOGY-ACC-NEW-2"]]},
        ],
    ]  # fmt: skip
    assert [record.enterprises for record in records] == [
        " 913301081Q84DWR86D 913301102GB1F1D287 923301113JMJ1JGT5T ", "",
        " 91330112NRPJA9BQ0M ",
    ]  # fmt: skip
    policy_versions = {record.policy_version for record in records}
    assert len(policy_versions) == 1
    assert None not in policy_versions
    # Each version written names the trace of its batch's access record.
    assert published(database, "Acceptance", "ECOLOGY-ACC-NEW-1")["trace_id"] == records[0].trace_id
    assert published(database, "Acceptance", "ECOLOGY-ACC-NEW-2")["trace_id"] == records[2].trace_id
    assert len({record.trace_id for record in records}) == 3

    async def chain() -> bool:
        engine = create_engine(database)
        result = await verify(engine)
        await engine.dispose()
        return result.ok

    assert asyncio.run(chain())


CSV = (
    "\ufeffsourceId,uscc,actionCode,kind,inspectedOn,result,participants,findings\r\n"
    "ECOLOGY-INS-NEW-1,913301102GB1F1D287,330110202611010100901,joint,2026-11-01,problems_found,"
    'fire;emergency,"[{""category"": ""废气治理"", ""description"": ""VOCs收集处理设施未正常运行""}]"\r\n'
    "ECOLOGY-INS-NEW-2,913301102GB1F1D287,330110202611020100902,ROUTINE,2026-11-02,no_problem,,\r\n"
    "\r\n"
    "ECOLOGY-INS-NEW-3,913301102GB1F1D287,330110202611030100903,random,2026-11-03,problems_found,,"
    '"[{""category"": ""危险废物"",\r\n""description"": ""贮存场所无标识，\\n台账缺失""}]"\r\n'
    "ECOLOGY-INS-NEW-4,913301102GB1F1D28X,330110202611040100904,random,2026-11-04,no_problem,,\r\n"
    "ECOLOGY-INS-NEW-5,913301102GB1F1D287,330110202611040100905,random\r\n"
    "ECOLOGY-INS-NEW-6,913301102GB1F1D287,330110202611040100906,random,2026-11-04,no_problem,"
    "market;treasury,\r\n"
)


def test_csv_inspections_with_participants_and_findings(database: Settings, tmp_path: Path) -> None:
    path = tmp_path / "inspections.csv"
    path.write_text(CSV, encoding="utf-8", newline="")
    report = tmp_path / "report.ndjson"

    result = hub_import(database, path, "--department", "ecology", "--kind", "inspections",
                        "--report", report)  # fmt: skip

    assert result.exit_code == 1, result.output
    assert flat(result.stdout) == flat(
        summary(3, 0, 0, 3, "inspections.csv (ecology)")
        + """
rejected lines:
line 7 (sourceId ECOLOGY-INS-NEW-4) uscc: '913301102GB1F1D28X' is not a valid unified social credit code: the check character (position 18) should be '7', not 'X'; the code was probably mistyped
line 8 has 4 cells where the header has 8; quote cells that hold commas
line 9 (sourceId ECOLOGY-INS-NEW-6) participants: unknown department 'treasury'; one of market, ecology, emergency, enforcement, fire, planning, transport, health, agriculture, culture"""
    )
    assert [json.loads(line)["line"] for line in report.read_text().splitlines()] == [7, 8, 9]
    inspections = sql(
        database,
        "SELECT i.id, i.source_id, i.owner, i.kind, i.result, i.action_code, e.uscc "
        "FROM inspection i JOIN enterprise e ON e.id = i.enterprise_id "
        "WHERE i.source_id LIKE 'ECOLOGY-INS-NEW-%' ORDER BY i.source_id",
    )
    assert [(i.source_id, i.owner, i.kind, i.result, i.uscc) for i in inspections] == [
        ("ECOLOGY-INS-NEW-1", "ecology", "joint", "problems_found", "913301102GB1F1D287"),
        ("ECOLOGY-INS-NEW-2", "ecology", "routine", "no_problem", "913301102GB1F1D287"),
        ("ECOLOGY-INS-NEW-3", "ecology", "random", "problems_found", "913301102GB1F1D287"),
    ]
    ids = [i.id for i in inspections]
    participants = sql(
        database,
        f"SELECT inspection_id, department FROM inspection_participant WHERE inspection_id IN "
        f"({', '.join(map(str, ids))}) ORDER BY inspection_id, department",
    )
    assert [tuple(row) for row in participants] == [(ids[0], "emergency"), (ids[0], "fire")]
    findings = sql(
        database,
        f"SELECT inspection_id, category, description FROM inspection_finding WHERE inspection_id "
        f"IN ({', '.join(map(str, ids))}) ORDER BY inspection_id",
    )
    assert [tuple(row) for row in findings] == [
        (ids[0], "废气治理", "VOCs收集处理设施未正常运行"),
        (ids[2], "危险废物", "贮存场所无标识，\n台账缺失"),
    ]
    assert json.loads(published(database, "Inspection", "ECOLOGY-INS-NEW-1")["data"]) == {
        "sourceId": "ECOLOGY-INS-NEW-1", "uscc": "913301102GB1F1D287",
        "actionCode": "330110202611010100901", "kind": "joint", "inspectedOn": "2026-11-01",
        "result": "problems_found", "participants": ["emergency", "fire"],
        "findings": [{"category": "废气治理", "description": "VOCs收集处理设施未正常运行"}],
    }  # fmt: skip


MIXED = (
    # The acceptance comes first; its rectification is published before it all the same.
    {"recordKind": "acceptances", "sourceId": "ECOLOGY-ACC-NEW-1", "rectificationSourceId":
     "ECOLOGY-RECT-NEW-1", "acceptedOn": "2026-10-12", "verdict": "passed", "opinion": "同意"},
    {"recordKind": "rectifications", **NEW_RECTIFICATIONS[0]},
    {"recordKind": "penalties", "sourceId": "ECOLOGY-PEN-0000002", "caseNumber": "X"},
    {"recordKind": "inspections", "sourceId": "ECOLOGY-INS-NEW-1", "kind": "joint"},
)  # fmt: skip
MIXED_REJECTED = [
    "line 3 (sourceId ECOLOGY-PEN-0000002) uscc: is required",
    "line 3 (sourceId ECOLOGY-PEN-0000002) violation: is required",
    "line 3 (sourceId ECOLOGY-PEN-0000002) legalBasis: is required",
    "line 3 (sourceId ECOLOGY-PEN-0000002) amount: is required",
    "line 3 (sourceId ECOLOGY-PEN-0000002) decidedOn: is required",
    "line 3 (sourceId ECOLOGY-PEN-0000002) status: is required",
    *(f"line 4 (sourceId ECOLOGY-INS-NEW-1) {field}: is required"
      for field in ("uscc", "actionCode", "inspectedOn", "result")),
]  # fmt: skip


def test_a_dry_run_writes_nothing_and_counts_what_an_import_would_do(
    database: Settings, tmp_path: Path
) -> None:
    path = ndjson(tmp_path / "sync.ndjson", *MIXED)
    before = counts(database)

    dry = hub_import(database, path, "--department", "ecology", "--dry-run")

    assert dry.exit_code == 1, dry.output
    assert counts(database) == before
    assert flat(dry.stderr) == (
        "1 lines refer to records that lines before them would create: a dry run stores nothing, "
        "so those references are checked on import 2 of 4 lines rejected: fix them and import the "
        "file again (lines already imported come out unchanged)"
    )
    # The acceptance refers to a rectification that only the import would create.
    assert flat(dry.stdout) == flat(
        summary(1, 0, 0, 2, "sync.ndjson (dry run, nothing written)", checked_on_import=1)
        + "\nrejected lines:\n" + "\n".join(MIXED_REJECTED)
    )  # fmt: skip

    real = hub_import(database, path, "--department", "ecology")
    assert real.exit_code == 1, real.output
    assert flat(real.stdout) == flat(
        summary(2, 0, 0, 2, "sync.ndjson (ecology)") + "\nrejected lines:\n"
        + "\n".join(MIXED_REJECTED)
    )  # fmt: skip
    (row,) = sql(
        database,
        "SELECT a.owner, r.source_id, r.owner AS rectification_owner FROM acceptance a "
        "JOIN rectification r ON r.id = a.rectification_id WHERE a.source_id = 'ECOLOGY-ACC-NEW-1'",
    )
    assert tuple(row) == ("ecology", "ECOLOGY-RECT-NEW-1", "ecology")


def test_records_are_the_importing_departments_own(database: Settings, tmp_path: Path) -> None:
    """Market regulation imports: its records, and no reference to ecology's."""
    path = ndjson(
        tmp_path / "market.ndjson",
        {"recordKind": "rectifications", **NEW_RECTIFICATIONS[0], "sourceId": "MARKET-RECT-NEW-1"},
        {"recordKind": "acceptances", "sourceId": "MARKET-ACC-NEW-1", "verdict": "passed",
         "rectificationSourceId": "ECOLOGY-RECT-NEW-1", "acceptedOn": "2026-10-12",
         "opinion": "同意"},
    )  # fmt: skip

    result = hub_import(database, path, "--department", "market")

    assert result.exit_code == 1, result.output
    assert flat(result.stdout) == flat(
        summary(0, 0, 0, 2, "market.ndjson (market)")
        + """
rejected lines:
line 1 (sourceId MARKET-RECT-NEW-1) inspectionSourceId: market has no Inspection 'ECOLOGY-INS-0000078'; publish it first
line 2 (sourceId MARKET-ACC-NEW-1) rectificationSourceId: market has no Rectification 'ECOLOGY-RECT-NEW-1'; publish it first"""
    )
    import_new_rectifications(database, tmp_path)
    again = hub_import(database, path, "--department", "market")
    assert flat(again.stdout).endswith(
        "line 2 (sourceId MARKET-ACC-NEW-1) rectificationSourceId: market has no Rectification "
        "'ECOLOGY-RECT-NEW-1'; publish it first"
    )
    inspections = ndjson(
        tmp_path / "inspections.ndjson",
        {"sourceId": "MARKET-INS-NEW-1", "uscc": "923301113JMJ1JGT5T", "actionCode": "A-1",
         "kind": "routine", "inspectedOn": "2026-11-02", "result": "no_problem"},
    )  # fmt: skip
    result = hub_import(database, inspections, "--department", "market", "--kind", "inspections")
    assert result.exit_code == 0, result.output
    assert [tuple(row) for row in sql(
        database, "SELECT owner, source_id FROM inspection WHERE source_id LIKE '%-NEW-%'"
    )] == [("market", "MARKET-INS-NEW-1")]  # fmt: skip
    assert published(database, "Inspection", "MARKET-INS-NEW-1")["owner"] == "market"
    assert sql(database, "SELECT department FROM access_record ORDER BY seq DESC LIMIT 1")[0][
        0
    ] == ("market")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--department", "ecolgy"],
         "Invalid value for --department: unknown department 'ecolgy' (did you mean ecology?); "
         "one of market, ecology, emergency, enforcement, fire, planning, transport, health, "
         "agriculture, culture"),
        (["--department", "ecology", "--kind", "acceptance"],
         "Invalid value for --kind: unknown kind 'acceptance' (did you mean acceptances?); one of "
         "inspections, penalties, rectifications, acceptances, creditRecords, creditRepairs, "
         "inspectionPlans"),
        (["--department", "ecology", "--format", "csv"],
         "Invalid value for --kind: a CSV file holds one kind of record: pass it (inspections, "
         "penalties, rectifications, acceptances, creditRecords, creditRepairs, "
         "inspectionPlans)"),
        (["--department", "ecology", "--batch-size", "1001"],
         "Invalid value for '--batch-size': 1001 is not in the range 1<=x<=1000"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_before_touching_the_database(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    path = ndjson(tmp_path / "acceptances.ndjson", {"recordKind": "acceptances"})
    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")

    result = hub_import(database, path, *arguments)

    assert result.exit_code == 2
    assert message in flat(result.output)
    assert "Traceback" not in result.output
    assert not (tmp_path / "hub.db").exists()


def test_a_file_of_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    path = ndjson(tmp_path / "acceptances.txt", {"recordKind": "acceptances"})
    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    result = hub_import(database, path, "--department", "ecology")
    assert result.exit_code == 2
    assert (
        "Invalid value for --format: cannot tell the format of acceptances.txt from its "
        "extension; pass --format ndjson or --format csv"
    ) in flat(result.output)


def test_a_write_the_policy_denies_stops_the_import(database: Settings, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    with (policies / "policy.csv").open("a", encoding="utf-8") as rules:
        rules.write("p, ecology, self, Acceptance, write, deny\n")
    number = len((policies / "policy.csv").read_text(encoding="utf-8").splitlines())
    path = ndjson(tmp_path / "sync.ndjson", *MIXED[:2])
    before = counts(database)

    result = hub_import(database, path, "--department", "ecology", policies=policies)

    assert result.exit_code == 2
    assert flat(result.stderr) == (
        "import stopped at line 1: publishing ecology's Acceptance records is forbidden: denied "
        f"by policy.csv:{number}: p, ecology, self, Acceptance, write, deny; nothing was imported"
    )
    assert counts(database) == before


def test_a_file_that_is_not_utf8_is_refused_whole(database: Settings, tmp_path: Path) -> None:
    path = tmp_path / "inspections.csv"
    path.write_bytes(CSV.removeprefix("\ufeff").encode("gbk"))
    before = counts(database)

    result = hub_import(database, path, "--department", "ecology", "--kind", "inspections")

    assert result.exit_code == 2
    assert flat(result.stderr) == (
        f"nothing imported: {path} is not UTF-8 text (line 2 is not; GBK perhaps): save it as "
        "UTF-8 (in Excel: CSV UTF-8) and import it again"
    )
    assert counts(database) == before


def test_a_csv_header_naming_no_field_is_refused(database: Settings, tmp_path: Path) -> None:
    path = tmp_path / "acceptances.csv"
    path.write_text("sourceId,verdict,acceptedOn,remark\nA,passed,2026-01-01,x\n")

    result = hub_import(database, path, "--department", "ecology", "--kind", "acceptances")

    assert result.exit_code == 2
    assert flat(result.stderr) == (
        f"import stopped: the header of {path} names 'remark', which acceptances have no field "
        "for; the fields of acceptances: sourceId, rectificationSourceId, acceptedOn, verdict, "
        "opinion; nothing was imported"
    )


def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    path = ndjson(tmp_path / "acceptances.ndjson", {"recordKind": "acceptances"})
    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")

    result = hub_import(database, path, "--department", "ecology")

    assert result.exit_code == 2
    assert flat(result.stderr) == (
        f"import stopped: the database is at revision none (it is empty), not {HEAD}: run `hub db "
        "upgrade` first; nothing was imported"
    )


def test_the_screen_shows_50_problems_and_the_report_all(
    database: Settings, tmp_path: Path
) -> None:
    path = ndjson(tmp_path / "broken.ndjson", *(["[]"] * 60))
    report = tmp_path / "report.ndjson"

    result = hub_import(database, path, "--department", "ecology", "--report", report)

    assert result.exit_code == 1
    shown = [line for line in result.stdout.splitlines() if line.startswith("line ")]
    assert shown == [f"line {n} holds a JSON array, not an object of fields" for n in range(1, 51)]
    assert flat(result.stderr) == (
        f"the first 50 of 60 problems shown; all are in {report} 60 of 60 lines rejected: fix them "
        "and import the file again (lines already imported come out unchanged)"
    )
    assert [json.loads(line)["line"] for line in report.read_text().splitlines()] == list(
        range(1, 61)
    )
    # Nothing was published: each batch is recorded as an error.
    assert [tuple(row) for row in sql(
        database, "SELECT outcome, written FROM access_record ORDER BY seq"
    )] == [("error", None)]  # fmt: skip


ACCEPTANCE = {"sourceId": "A-1", "verdict": "passed"}


@pytest.mark.parametrize(
    ("line", "kind", "expected"),
    [
        # Without --kind, a line names its kind in "recordKind", which is not published.
        ({"recordKind": "acceptances", **ACCEPTANCE}, None, ("acceptances", ACCEPTANCE, None, None)),
        (ACCEPTANCE, None, (None, ACCEPTANCE, 'has no "recordKind": name the kind of record on '
         "each line (inspections, penalties, rectifications, acceptances, creditRecords, "
         "creditRepairs, inspectionPlans), or pass --kind", None)),
        ({"recordKind": 7}, None, (None, {}, "unknown recordKind '7'; one of inspections, "
         "penalties, rectifications, acceptances, creditRecords, creditRepairs, inspectionPlans",
         "recordKind")),
        # Inspections and credit records keep their own "kind" on a mixed file.
        ({"recordKind": "creditRecords", "kind": "rating"}, None, ("creditRecords",
         {"kind": "rating"}, None, None)),
        # With --kind, a line may still name it, or not.
        ({"recordKind": "acceptances", **ACCEPTANCE}, "acceptances", ("acceptances", ACCEPTANCE,
                                                                       None, None)),
        (ACCEPTANCE, "acceptances", ("acceptances", ACCEPTANCE, None, None)),
        ({"recordKind": "penalties", **ACCEPTANCE}, "acceptances", ("acceptances", ACCEPTANCE,
         "is a line of penalties, not of acceptances (--kind)", None)),
        ({"kind": "routine"}, "inspections", ("inspections", {"kind": "routine"}, None, None)),
        ('{"sourceId": "A-1"', "acceptances", ("acceptances", {}, "is not JSON (Expecting ',' "
         "delimiter at column 19); a line holds one JSON object", None)),
        ('"A-1"', "acceptances", ("acceptances", {}, "holds a JSON string, not an object of fields",
                                  None)),
    ],
)  # fmt: skip
def test_reading_a_line_of_ndjson(
    tmp_path: Path, line: dict[str, Any] | str, kind: str | None, expected: tuple[Any, ...]
) -> None:
    from hub.records import KINDS

    path = ndjson(tmp_path / "lines.ndjson", "", line)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # a BOM, then a blank line
    (read,) = read_ndjson(path, KINDS[kind] if kind else None)
    assert read.number == 2
    assert (read.kind.name if read.kind else None, read.record, read.problem, read.field) == (
        expected
    )


# Lines that crashed the import or stopped it (issue 11): each is set aside with its line
# number and reason now, and the lines around it are imported.
def penalty(number: int, **changes: Any) -> dict[str, Any]:
    return {
        "recordKind": "penalties", "sourceId": f"ECOLOGY-PEN-NEW-{number}",
        "uscc": "923301113JMJ1JGT5T", "caseNumber": f"杭环罚〔2026〕{900 + number}号",
        "violation": "超标排放大气污染物", "legalBasis": "《中华人民共和国大气污染防治法》第九十九条",
        "amount": "5000", "decidedOn": "2026-10-15", "status": "decided", **changes,
    }  # fmt: skip


def line(record: dict[str, Any], **raw: str) -> str:
    """A record as a JSON line, with some values written exactly as given (numbers JSON
    cannot hold in Python, escapes json.dumps would not write)."""
    text = json.dumps(record | {k: "@" + k for k in raw}, ensure_ascii=False)
    for key, value in raw.items():
        text = text.replace(json.dumps("@" + key), value)
    return text


HOSTILE_LINES = [
    penalty(1),
    penalty(2, amount="1e400"),  # a traceback, after every batch before it was committed
    line(penalty(3), amount="1e400"),  # a JSON number: float inf
    line(penalty(4), amount="1" + "0" * 5000),  # past Python's 4,300 digits for an int
    line(penalty(5), amount="NaN"),  # Python's json reads NaN, which is not JSON
    line(penalty(6), sourceId='"ECOLOGY-PEN-NEW-\\u0000"'),  # PostgreSQL: the import stopped
    line(penalty(7), sourceId='"ECOLOGY-PEN-NEW-\\ud800"'),  # a traceback on SQLite
    json.dumps(penalty(8))[:-1] + ', "\\ud800": 1}',  # a traceback writing the report
    "[" * 100_000,  # RecursionError
    line(penalty(10), findings="[" * 100 + "]" * 100),
    penalty(11, violation="超标\x1b[2J排放"),  # cleared the operator's screen
    penalty(12, decidedOn="0001-01-01"),
    '{"recordKind": "penalties", "sourceId": "' + "x" * 1_000_000 + '"}',
    penalty(14, amount="1e-400"),
    penalty(15, caseNumber="[/]"),  # Rich markup: a MarkupError
    penalty(16, sourceId="ECOLOGY PEN NEW 16"),
    penalty(17),
]
HOSTILE_REJECTED = [
    (2, "ECOLOGY-PEN-NEW-2", "amount", "1E+400 is larger than any fine the hub accepts"),
    (3, "ECOLOGY-PEN-NEW-3", "amount", "1E+400 is larger than any fine the hub accepts"),
    (4, "ECOLOGY-PEN-NEW-4", "amount", "1.00E+5000 is larger than any fine the hub accepts"),
    (5, None, None, "is not JSON (NaN is not a JSON number); a line holds one JSON object"),
    (6, None, None, 'holds a NUL character (U+0000) in "sourceId", which no record may contain'),
    (7, None, None, 'holds a lone surrogate (U+D800) in "sourceId", which no record may contain'),
    (8, None, None, "holds a lone surrogate (U+D800) in a field name, which no record may contain"),
    (9, None, None, "nests arrays and objects more than 8 levels deep; a line holds one object of fields"),
    (10, None, None, "nests arrays and objects more than 8 levels deep; a line holds one object of fields"),
    (11, "ECOLOGY-PEN-NEW-11", "violation", "must not contain control characters (U+001B at position 3)"),
    (12, "ECOLOGY-PEN-NEW-12", "decidedOn", "0001-01-01 is before 1990-01-01, the earliest day the hub accepts"),
    (13, None, None, "is longer than 1,000,000 characters; a line holds one record"),
    (14, "ECOLOGY-PEN-NEW-14", "amount", "1E-400 has more than two decimal places; amounts are to the fen"),
    (16, None, "sourceId", "must not contain whitespace or invisible characters (U+0020 at position 8)"),
]  # fmt: skip


def test_hostile_lines_are_set_aside_and_the_rest_imported(
    database: Settings, tmp_path: Path
) -> None:
    path = ndjson(tmp_path / "penalties.ndjson", *HOSTILE_LINES)
    report = tmp_path / "rejected.ndjson"

    result = hub_import(database, path, "--department", "ecology", "--batch-size", "2",
                        "--report", report)  # fmt: skip

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    rejected = [
        {"line": number, "kind": None if field is None and source_id is None else "penalties",
         "sourceId": source_id, "field": field, "message": message}
        for number, source_id, field, message in HOSTILE_REJECTED
    ]  # fmt: skip
    for rejection in rejected:  # lines read whole name their kind
        if rejection["line"] in (2, 3, 4, 11, 12, 14, 16):
            rejection["kind"] = "penalties"
    assert [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()] == (
        rejected
    )
    listed = "\n".join(
        f"line {r['line']}" + (f" (sourceId {r['sourceId']})" if r["sourceId"] else "")
        + (f" {r['field']}: " if r["field"] else " ") + r["message"]
        for r in rejected
    )  # fmt: skip
    assert flat(result.stdout) == flat(
        summary(3, 0, 0, 14, "penalties.ndjson (ecology)") + "\nrejected lines:\n" + listed
    )
    assert flat(result.stderr) == (
        "14 of 17 lines rejected: fix them and import the file again (lines already imported come "
        "out unchanged)"
    )
    assert [tuple(row) for row in sql(
        database, "SELECT source_id, case_number, amount_fen FROM penalty "
        "WHERE source_id LIKE 'ECOLOGY-PEN-NEW-%' ORDER BY id"
    )] == [("ECOLOGY-PEN-NEW-1", "杭环罚〔2026〕901号", 500000),
           ("ECOLOGY-PEN-NEW-15", "[/]", 500000),
           ("ECOLOGY-PEN-NEW-17", "杭环罚〔2026〕917号", 500000)]  # fmt: skip


CSV_HOSTILE = (
    "sourceId,uscc,actionCode,kind,inspectedOn,result,participants,findings\n"
    "ECOLOGY-INS-NEW-1,913301102GB1F1D287,330110202611010100901,joint,2026-11-01,no_problem,,\n"
    "ECOLOGY-INS-NEW-2,913301102GB1F1D287,3301102026\x00,joint,2026-11-01,no_problem,,\n"
    f"ECOLOGY-INS-NEW-3,913301102GB1F1D287,{'9' * 1_000_000},joint,2026-11-01,no_problem,,\n"
    "ECOLOGY-INS-NEW-4,913301102GB1F1D287,330110202611010100904,joint,1900-01-01,no_problem,,\n"
    'ECOLOGY-INS-NEW-5,913301102GB1F1D287,330110202611010100905,joint,2026-11-01,no_problem,,"'
    + "["
    * 100_000
    + '"\n'
    "ECOLOGY-\x1b]0;owned\x07,913301102GB1F1D287,330110202611010100906,joint,2026-11-01,"
    "no_problem,,\n"
    "ECOLOGY-INS-NEW-8,913301102GB1F1D287,330110202611010100908,joint,2026-11-01,no_problem,,\n"
)


def test_hostile_csv_rows_are_set_aside_and_the_rest_imported(
    database: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "inspections.csv"
    path.write_text(CSV_HOSTILE, encoding="utf-8", newline="")

    result = hub_import(database, path, "--department", "ecology", "--kind", "inspections")

    assert result.exit_code == 1, result.output
    assert flat(result.stdout) == flat(
        summary(2, 0, 0, 5, "inspections.csv (ecology)")
        + """
rejected lines:
line 3 (sourceId ECOLOGY-INS-NEW-2) actionCode: must not contain control characters (U+0000 at position 11)
line 4 is longer than 1,000,000 characters; a line holds one record
line 5 (sourceId ECOLOGY-INS-NEW-4) inspectedOn: 1900-01-01 is before 1990-01-01, the earliest day the hub accepts
line 6 (sourceId ECOLOGY-INS-NEW-5) findings: must be a JSON array of {"category", "description"}
line 7 sourceId: must not contain control characters (U+001B at position 9)"""
    )
    assert [row[0] for row in sql(
        database, "SELECT source_id FROM inspection WHERE source_id LIKE 'ECOLOGY-INS-NEW-%' "
        "ORDER BY source_id"
    )] == ["ECOLOGY-INS-NEW-1", "ECOLOGY-INS-NEW-8"]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        # Names and headers are shown as written: neither Rich markup nor a format string.
        ("{x}[red]a.ndjson", "[]\n", "{x}[red]a.ndjson (ecology)"),
        ("acceptances.csv", "sourceId,[/],verdict\nA,b,passed\n",
         "import stopped: the header of {path} names '[/]', which acceptances have no field for; "
         "the fields of acceptances: sourceId, rectificationSourceId, acceptedOn, verdict, "
         "opinion; nothing was imported"),
    ],
)  # fmt: skip
def test_file_names_and_headers_are_shown_as_written(
    database: Settings, tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    result = hub_import(database, path, "--department", "ecology", "--kind", "acceptances")

    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert expected.replace("{path}", str(path)) in flat(result.output)


@pytest.mark.parametrize(
    "row",
    [
        '"ECOLOGY-INS-NEW-2\n' + ("x" * 999_999 + "\n") * 2 + '",913301102GB1F1D287\n',
        'ECOLOGY-INS-NEW-2,913301102GB1F1D287,"' + "x" * 1_000_000 + "\n",
    ],
    ids=["over-lines", "quoted"],
)
def test_a_csv_row_too_long_to_read_past_stops_the_import(
    database: Settings, tmp_path: Path, row: str
) -> None:
    """A quote may carry a CSV row over lines: past a row this long, rows cannot be found."""
    path = tmp_path / "inspections.csv"
    path.write_text(
        "sourceId,uscc,actionCode,kind,inspectedOn,result\n"
        "ECOLOGY-INS-NEW-1,913301102GB1F1D287,330110202611010100901,joint,2026-11-01,no_problem\n"
        + row
        + "ECOLOGY-INS-NEW-3,913301102GB1F1D287,330110202611010100903,joint,2026-11-01,no_problem\n",
        encoding="utf-8",
    )

    result = hub_import(database, path, "--department", "ecology", "--kind", "inspections",
                        "--batch-size", "1")  # fmt: skip

    assert result.exit_code == 2, result.output
    assert flat(result.stdout) == summary(1, 0, 0, 0, "inspections.csv (ecology)")
    assert flat(result.stderr) == (
        f"import stopped: the row from line 3 of {path} runs past 1,000,000 characters, and CSV "
        "cannot be read past it (a quote not closed?): fix it and import the file again; the "
        "lines counted above were imported, none after them"
    )
    assert [row[0] for row in sql(
        database, "SELECT source_id FROM inspection WHERE source_id LIKE 'ECOLOGY-INS-NEW-%'"
    )] == ["ECOLOGY-INS-NEW-1"]  # fmt: skip
