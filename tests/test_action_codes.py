"""Administrative-action codes (行政行为码, "亮码检查"): registered to one inspection each, by
the migration, publishing and import, and looked up as any read of an inspection is made."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.script import ScriptDirectory
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient
from typer.testing import CliRunner

import hub.publishing.write
from hub.audit.served import denials, groups
from hub.cli import app
from hub.db import MigrationRefused, alembic_config, create_engine, current_revision, upgrade
from hub.demo import AS_OF, load_demo
from hub.errors import InvalidRecords
from hub.policy import load_policy
from hub.publishing import Change, Publisher, publish, retract
from hub.records import KINDS
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import BACKENDS, Hub, fresh_database, graphql
from tests.test_serve import HUB, free_port, readyz, wait_for

T = TypeVar("T")
POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
INSPECTIONS = KINDS["inspections"]
ECOLOGY = Publisher("client:2", "ecology", "ecology")
MARKET = Publisher("client:1", "market", "market")
ONE_EACH = "every inspection needs a code of its own: check the code shown at the inspection"
FIELDS = (
    "id sourceId owner { code } version actionCode kind inspectedOn result participants { code } "
    "findings { category description }"
)
LOOKUP = (
    "query($code: String!) { inspectionByActionCode(code: $code) { code uscc "
    f"enterprise {{ uscc name }} inspection {{ {FIELDS} }} }} }}"
)
PUBLISH = """mutation($records: [InspectionInput!]!, $dryRun: Boolean) {
  publishInspections(records: $records, dryRun: $dryRun) { created updated unchanged } }"""


# --- helpers ------------------------------------------------------------------------------


def run(settings: Settings, scenario: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(settings)
        try:
            return await scenario(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def sql(settings: Settings, statement: str, **parameters: Any) -> list[Any]:
    async def rows(engine: AsyncEngine) -> list[Any]:
        async with engine.connect() as connection:
            return list((await connection.execute(text(statement), parameters)).all())

    return run(settings, rows)


def last_record(settings: Settings) -> dict[str, Any]:
    (row,) = sql(settings, "SELECT * FROM access_record ORDER BY seq DESC LIMIT 1")
    return dict(row._mapping)


def an_inspection(settings: Settings, condition: str = "") -> Any:
    """An ecology inspection with findings that market took no part in: market reads its
    facts, never its findings."""
    return sql(
        settings,
        "SELECT i.id, i.source_id, i.action_code, e.uscc, e.name FROM inspection i "
        "JOIN enterprise e ON e.id = i.enterprise_id WHERE i.owner = 'ecology' "
        "AND EXISTS (SELECT 1 FROM inspection_finding f WHERE f.inspection_id = i.id) "
        "AND NOT EXISTS (SELECT 1 FROM inspection_participant p WHERE p.inspection_id = i.id "
        f"AND p.department = 'market') {condition} ORDER BY i.id LIMIT 1",
    )[0]


def new_inspection(source_id: str, uscc: str, code: str) -> dict[str, Any]:
    return {"sourceId": source_id, "uscc": uscc, "actionCode": code, "kind": "ROUTINE",
            "inspectedOn": "2026-10-20", "result": "NO_PROBLEM"}  # fmt: skip


def column(location: str, query: str) -> dict[str, int]:
    return {"line": 1, "column": query.index(location) + 1}


# --- the lookup ---------------------------------------------------------------------------


def test_a_code_stands_for_its_inspection_read_as_the_dossier_reads_it(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    found = an_inspection(demo_database)
    looked_up = graphql(hub, LOOKUP, tokens["market"], code=found.action_code)
    record = last_record(demo_database)
    dossier = graphql(
        hub,
        f"query($uscc: String!) {{ enterprise(uscc: $uscc) {{ uscc name inspections {{ {FIELDS} }} }} }}",
        tokens["market"],
        uscc=found.uscc,
    )

    # The same inspection, with the same field withheld for the same reason, as the dossier.
    listed = dossier["data"]["enterprise"]["inspections"]
    (place,) = [n for n, inspection in enumerate(listed) if inspection["id"] == str(found.id)]
    (withheld,) = [e for e in dossier["errors"]
                   if e["path"] == ["enterprise", "inspections", place, "findings"]]  # fmt: skip
    assert listed[place]["findings"] is None
    assert listed[place]["actionCode"] == found.action_code
    assert looked_up == {
        "data": {
            "inspectionByActionCode": {
                "code": found.action_code,
                "uscc": found.uscc,
                "enterprise": {"uscc": found.uscc, "name": found.name},
                "inspection": listed[place],
            }
        },
        "errors": [
            {
                "message": withheld["message"],
                "locations": [column("findings", LOOKUP)],
                "path": ["inspectionByActionCode", "inspection", "findings"],
                "extensions": withheld["extensions"],
            }
        ],
    }
    assert withheld["extensions"]["code"] == "FORBIDDEN"
    assert withheld["extensions"]["field"] == "Inspection.findings"

    # The access record files the inspection and the enterprise under the enterprise itself.
    assert record["department"] == "market"
    assert record["outcome"] == "partial"
    assert groups(record) == [
        {"enterprise": found.uscc, "type": "Enterprise", "fields": ["name", "uscc"],
         "ids": [found.uscc]},
        {"enterprise": found.uscc, "type": "Inspection",
         "fields": ["actionCode", "id", "inspectedOn", "kind", "owner", "participants", "result",
                    "sourceId", "version"],
         "ids": [str(found.id)]},
    ]  # fmt: skip
    assert denials(record) == [
        {"enterprise": found.uscc, "type": "Inspection", "id": str(found.id), "owner": "ecology",
         "field": "Inspection.findings", "reason": withheld["extensions"]["reason"]}
    ]  # fmt: skip


def test_a_lookup_is_recorded_even_when_it_selects_nothing_of_the_inspection(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    found = an_inspection(demo_database)
    query = "query($code: String!) { x: inspectionByActionCode(code: $code) { code uscc } }"
    answer = graphql(hub, query, tokens["ecology"], code=f"  {found.action_code}\n")
    assert answer == {"data": {"x": {"code": found.action_code, "uscc": found.uscc}}}
    record = last_record(demo_database)
    assert (record["department"], record["outcome"]) == ("ecology", "ok")
    assert groups(record) == [
        {"enterprise": found.uscc, "type": "Inspection", "fields": [], "ids": [str(found.id)]}
    ]
    assert denials(record) == []


def test_an_owner_that_shares_nothing_of_its_inspections_is_forbidden(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    found = an_inspection(demo_database)
    answer = graphql(hub, LOOKUP, tokens["auditor"], code=found.action_code)
    reason = "no field of ecology's inspections is shared with auditor"
    assert answer == {
        "data": None,
        "errors": [
            {
                "message": f"Inspection of ecology's records is withheld: {reason}",
                "locations": [column("inspectionByActionCode", LOOKUP)],
                "path": ["inspectionByActionCode"],
                "extensions": {"code": "FORBIDDEN", "owner": "ecology", "field": "Inspection",
                               "reason": reason},
            }
        ],
    }  # fmt: skip
    record = last_record(demo_database)
    assert groups(record) == []
    assert denials(record) == [
        {"enterprise": found.uscc, "type": "Inspection", "id": str(found.id), "owner": "ecology",
         "field": "Inspection", "reason": reason}
    ]  # fmt: skip


def test_an_unknown_code_is_not_found(hub: TestClient, tokens: dict[str, str]) -> None:
    answer = graphql(hub, LOOKUP, tokens["market"], code="33010620261101019999999")
    assert answer == {
        "data": None,
        "errors": [
            {
                "message": "no inspection is registered under action code "
                "33010620261101019999999; check the code shown by the inspector",
                "locations": [column("inspectionByActionCode", LOOKUP)],
                "path": ["inspectionByActionCode"],
                "extensions": {"code": "NOT_FOUND"},
            }
        ],
    }


RULE = (
    "an administrative-action code is 1 to 32 characters without whitespace, control or "
    "invisible characters, as the inspector shows it"
)


@pytest.mark.parametrize(
    ("literal", "problem"),
    [
        ('""', "must not be empty"),
        ('"   "', "must not be empty"),
        (f'"{"3" * 33}"', "must be at most 32 characters, not 33"),
        ('"3301 0620"', "must not contain whitespace or invisible characters (U+0020 at position 5)"),
        ('"3301\\t0620"', "must not contain control characters (U+0009 at position 5)"),
        ('"\\u200b3301"', "must not contain whitespace or invisible characters (U+200B at position 1)"),
    ],
)  # fmt: skip
def test_a_malformed_code_is_bad_user_input_naming_the_rule(
    hub: TestClient, tokens: dict[str, str], literal: str, problem: str
) -> None:
    query = f"{{ inspectionByActionCode(code: {literal}) {{ uscc }} }}"
    answer = graphql(hub, query, tokens["market"])
    assert answer == {
        "data": None,
        "errors": [
            {
                "message": f"code {problem}: {RULE}",
                "locations": [{"line": 1, "column": 3}],
                "path": ["inspectionByActionCode"],
                "extensions": {"code": "BAD_USER_INPUT", "argument": "code"},
            }
        ],
    }


def test_nul_and_lone_surrogates_never_reach_the_lookup(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    """The request's own checks refuse them first (hub/params.py, the document's strings)."""
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    query = "query($code: String!) { inspectionByActionCode(code: $code) { uscc } }"
    response = hub.post("/graphql", json={"query": query, "variables": {"code": "33\u0000"}},
                        headers=headers)  # fmt: skip
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "variables.code holds a control character (U+0000 at position 3); remove it",
         "extensions": {"code": "BAD_USER_INPUT"}}
    ]  # fmt: skip
    inline = '{ inspectionByActionCode(code: "3301\\u00000620") { uscc } }'
    assert graphql(hub, inline, tokens["market"]) == {
        "errors": [
            {"message": "A string of the document holds a control character (U+0000 at "
             "position 5).", "locations": [{"line": 1, "column": 32}],
             "extensions": {"code": "BAD_USER_INPUT"}}
        ]
    }  # fmt: skip
    surrogate = '{ inspectionByActionCode(code: "3301\\ud800") { uscc } }'
    assert graphql(hub, surrogate, tokens["market"]) == {
        "errors": [
            {"message": "Syntax Error: Invalid Unicode escape sequence: '\\ud800'.",
             "locations": [{"line": 1, "column": 37}], "extensions": {"code": "BAD_USER_INPUT"}}
        ]
    }  # fmt: skip


# --- publishing ---------------------------------------------------------------------------


def problems(answer: dict[str, Any]) -> list[tuple[int, str | None, str | None, str]]:
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return [(p["index"], p["sourceId"], p["field"], p["message"])
            for p in error["extensions"]["problems"]]  # fmt: skip


def test_publishing_refuses_a_code_held_by_another_inspection_and_a_lookup_follows(
    writable: Hub,
) -> None:
    mine, other_mine, market = (
        sql(writable.settings, "SELECT i.source_id, i.action_code, e.uscc FROM inspection i JOIN "
            f"enterprise e ON e.id = i.enterprise_id WHERE i.owner = '{owner}' ORDER BY i.id "
            f"LIMIT 1 OFFSET {offset}")[0]
        for owner, offset in (("ecology", 0), ("ecology", 1), ("market", 0))
    )  # fmt: skip
    uscc = mine.uscc
    batch = [
        new_inspection("ECOLOGY-INS-T1", uscc, market.action_code),
        new_inspection("ECOLOGY-INS-T2", uscc, other_mine.action_code),
        new_inspection("ECOLOGY-INS-T3", uscc, "T-CODE-3"),
        new_inspection("ECOLOGY-INS-T4", uscc, "T-CODE-3"),
        new_inspection("ECOLOGY-INS-T5", uscc, "T-CODE-5"),
    ]
    expected = [
        (0, "ECOLOGY-INS-T1", "actionCode", f"{market.action_code} is already registered to "
         f"market's inspection {market.source_id}; {ONE_EACH}"),
        (1, "ECOLOGY-INS-T2", "actionCode", f"{other_mine.action_code} is already registered to "
         f"ecology's inspection {other_mine.source_id}; {ONE_EACH}"),
        (3, "ECOLOGY-INS-T4", "actionCode", "is also the action code of records[2] of this batch "
         f"(sourceId ECOLOGY-INS-T3); {ONE_EACH}"),
    ]  # fmt: skip
    before = sql(writable.settings, "SELECT count(*), max(seq) FROM record_version")
    for dry_run in (True, False):
        answer = writable.ask("ecology", PUBLISH, records=batch, dryRun=dry_run)
        assert answer["data"] is None
        assert problems(answer) == expected, dry_run
    assert sql(writable.settings, "SELECT count(*), max(seq) FROM record_version") == before
    assert sql(writable.settings, "SELECT count(*) FROM inspection WHERE action_code LIKE "
               "'T-CODE-%'") == [(0,)]  # fmt: skip

    # Republishing an inspection with its own code is fine; so is a free code. A code is free
    # once the change that freed it is published, not in the same batch.
    (own,) = sql(writable.settings, "SELECT data FROM record_version WHERE source_id = :s "
                 "ORDER BY version DESC LIMIT 1", s=mine.source_id)  # fmt: skip
    stored = json.loads(own.data)  # as GraphQL names its choices
    again = stored | {"kind": stored["kind"].upper(), "result": stored["result"].upper()}
    assert writable.ask("ecology", PUBLISH, records=[again]) == {
        "data": {"publishInspections": {"created": 0, "updated": 0, "unchanged": 1}}
    }
    moved = again | {"actionCode": "T-CODE-MOVED"}
    taker = new_inspection("ECOLOGY-INS-T6", uscc, mine.action_code)
    assert problems(writable.ask("ecology", PUBLISH, records=[moved, taker])) == [
        (1, "ECOLOGY-INS-T6", "actionCode", f"{mine.action_code} is already registered to "
         f"ecology's inspection {mine.source_id}; records[0] of this batch gives it another "
         "code, but a code is free only once that is published: publish that change first, "
         "then this"),
    ]  # fmt: skip
    for records in ([moved], [taker]):
        answer = writable.ask("ecology", PUBLISH, records=records)
        assert "errors" not in answer, answer
    looked_up = writable.ask("market", LOOKUP, code=mine.action_code)["data"]
    assert looked_up["inspectionByActionCode"]["inspection"]["sourceId"] == "ECOLOGY-INS-T6"

    # A retracted inspection keeps its code: a lookup says it was withdrawn, and nobody else
    # may have it.
    retracted = writable.ask("ecology", """mutation($ids: [String!]!) {
        retractRecords(kind: INSPECTION, sourceIds: $ids, reason: "录入错误") { retracted } }""",
        ids=["ECOLOGY-INS-T6"])  # fmt: skip
    assert retracted == {"data": {"retractRecords": {"retracted": 1}}}
    answer = writable.ask("market", LOOKUP, code=mine.action_code)
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    assert answer["errors"][0]["message"] == (
        f"the inspection registered under action code {mine.action_code} was withdrawn by "
        "ecology: it no longer stands as an inspection; ask ecology why, or check the code "
        "shown by the inspector"
    )
    answer = writable.ask("market", PUBLISH, records=[
        new_inspection("MARKET-INS-T1", uscc, mine.action_code)])  # fmt: skip
    assert problems(answer) == [
        (0, "MARKET-INS-T1", "actionCode", f"{mine.action_code} is already registered to "
         "ecology's inspection ECOLOGY-INS-T6, which was retracted: a retracted inspection "
         f"keeps its code; {ONE_EACH}"),
    ]  # fmt: skip
    # Republishing the retracted inspection with its own code reinstates it.
    reinstated = writable.ask("ecology", PUBLISH, records=[taker])
    assert reinstated == {"data": {"publishInspections": {"created": 0, "updated": 1,
                                                          "unchanged": 0}}}  # fmt: skip
    looked_up = writable.ask("market", LOOKUP, code=mine.action_code)["data"]
    assert looked_up["inspectionByActionCode"]["inspection"]["sourceId"] == "ECOLOGY-INS-T6"


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A migrated database of its own with a few demo enterprises, for a test that writes."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        run(settings, lambda engine: load_demo(engine, enterprises=20, seed=5))
        yield settings


def test_who_holds_a_code_is_said_only_as_far_as_the_policy_lets_the_publisher_read(
    database: Settings, tmp_path: Path
) -> None:
    (held,) = sql(database, "SELECT i.action_code, e.uscc FROM inspection i JOIN enterprise e "
                  "ON e.id = i.enterprise_id WHERE i.owner = 'market' ORDER BY i.id LIMIT 1")  # fmt: skip
    closed = tmp_path / "closed-policies"
    closed.mkdir()
    for name in ("model.conf", "catalog.csv"):
        (closed / name).write_text((DEFAULT_POLICY_DIR / name).read_text())
    (closed / "policy.csv").write_text(
        "p, department, self, *, read, allow\np, department, self, *, write, allow\n"
    )
    policy = load_policy(closed, policy_fields())
    record = new_inspection("ECOLOGY-INS-T1", held.uscc, held.action_code)

    async def scenario(engine: AsyncEngine) -> InvalidRecords:
        with pytest.raises(InvalidRecords) as refused:
            await publish(engine, policy, ECOLOGY, INSPECTIONS, "ecology", [record], on=AS_OF)
        return refused.value

    refused = run(database, scenario)
    assert [p.as_dict() for p in refused.problems] == [
        {"index": 0, "sourceId": "ECOLOGY-INS-T1", "field": "actionCode",
         "message": f"{held.action_code} is already registered to another department's "
         f"inspection (a retracted inspection keeps its code too); {ONE_EACH}"},
    ]  # fmt: skip


def test_of_two_publishers_racing_for_a_code_one_registers_it_and_the_other_is_told(
    database: Settings,
) -> None:
    (uscc,) = sql(database, "SELECT uscc FROM enterprise ORDER BY id LIMIT 1")[0]

    async def race(engine: AsyncEngine) -> list[Any]:
        async def one(publisher: Publisher) -> Any:
            record = new_inspection(f"{publisher.department.upper()}-INS-T1", uscc, "T-RACE")
            try:
                return await publish(engine, POLICY, publisher, INSPECTIONS,
                                     publisher.department, [record], on=AS_OF)  # fmt: skip
            except InvalidRecords as error:
                return error

        return list(await asyncio.gather(one(MARKET), one(ECOLOGY)))

    outcomes = run(database, race)
    refused = [o for o in outcomes if isinstance(o, InvalidRecords)]
    (published,) = [o for o in outcomes if not isinstance(o, InvalidRecords)]
    assert len(refused) == 1
    (won,) = [result for result in published if result.kind == "Inspection"]
    assert won.change is Change.CREATED
    (loser,) = {"MARKET", "ECOLOGY"} - {won.source_id.split("-")[0]}
    assert [p.as_dict() for p in refused[0].problems] == [
        {"index": 0, "sourceId": f"{loser}-INS-T1", "field": "actionCode",
         "message": f"T-RACE is already registered to {won.source_id.split('-')[0].lower()}'s "
         f"inspection {won.source_id}; {ONE_EACH}"},
    ]  # fmt: skip
    assert sql(database, "SELECT owner, source_id FROM inspection WHERE action_code = "
               "'T-RACE'") == [(won.source_id.split("-")[0].lower(), won.source_id)]  # fmt: skip


def written(settings: Settings) -> list[Any]:
    """What a refused batch must leave as it was."""
    return [
        *sql(settings, "SELECT count(*), max(id) FROM inspection"),
        *sql(settings, "SELECT count(*), max(seq) FROM record_version"),
        *sql(settings, "SELECT seq FROM feed_head"),
    ]


def test_the_unique_index_is_the_last_guard_when_the_check_is_bypassed(
    database: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the check ever skipped, the index refuses the write: BAD_USER_INPUT, not INTERNAL,
    and nothing of the batch is written."""
    (held,) = sql(database, "SELECT i.action_code, e.uscc FROM inspection i JOIN enterprise e "
                  "ON e.id = i.enterprise_id WHERE i.owner = 'market' ORDER BY i.id LIMIT 1")  # fmt: skip

    async def unchecked(*_: Any) -> None:
        return None

    monkeypatch.setattr(hub.publishing.write, "check_codes", unchecked)
    batch = [new_inspection("ECOLOGY-INS-T1", held.uscc, "T-FREE"),
             new_inspection("ECOLOGY-INS-T2", held.uscc, held.action_code)]  # fmt: skip
    before = written(database)

    async def scenario(engine: AsyncEngine) -> InvalidRecords:
        with pytest.raises(InvalidRecords) as refused:
            await publish(engine, POLICY, ECOLOGY, INSPECTIONS, "ecology", batch, on=AS_OF)
        return refused.value

    refused = run(database, scenario)
    assert refused.code == "BAD_USER_INPUT"
    if database.database_url.startswith("postgresql"):  # PostgreSQL names the code
        assert [(p.index, p.message) for p in refused.problems] == [
            (1, f"{held.action_code} was registered to another inspection while this batch "
             "was being written, by a write that did not wait its turn; nothing of the batch "
             f"was written: {ONE_EACH}, and publish again"),
        ]  # fmt: skip
    else:
        assert [(p.index, p.message) for p in refused.problems] == [
            (index, "an action code of this batch was registered to another inspection while "
             "this batch was being written, by a write that did not wait its turn; nothing of "
             f"the batch was written: {ONE_EACH}, and publish again")
            for index in (0, 1)
        ]  # fmt: skip
    assert written(database) == before


@pytest.mark.postgres
def test_a_writer_that_skips_the_write_lock_loses_to_the_index_cleanly(
    database: Settings,
) -> None:
    """A row written past the feed lock (by hand, in a transaction still open) while a batch
    is checked: the batch's INSERT waits on it, then fails on the index when it commits."""
    if not database.database_url.startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time in: the check always sees the row")
    (enterprise_id, uscc) = sql(database, "SELECT id, uscc FROM enterprise ORDER BY id LIMIT 1")[0]
    before = written(database)

    async def scenario(engine: AsyncEngine) -> InvalidRecords:
        async with engine.connect() as outside, engine.connect() as watcher:
            await outside.execute(text(
                "INSERT INTO inspection (owner, source_id, enterprise_id, action_code, kind, "
                "inspected_on, result) VALUES ('market', 'BY-HAND-1', :e, 'T-BY-HAND', "
                "'routine', '2026-10-01', 'no_problem')"
            ), {"e": enterprise_id})  # fmt: skip
            record = new_inspection("ECOLOGY-INS-T1", uscc, "T-BY-HAND")
            batch = asyncio.create_task(
                publish(engine, POLICY, ECOLOGY, INSPECTIONS, "ecology", [record], on=AS_OF)
            )
            for _ in range(200):  # until the batch's INSERT waits for the row's transaction
                waiting = (await watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                ))).scalar_one()  # fmt: skip
                await watcher.rollback()
                if waiting or batch.done():
                    break
                await asyncio.sleep(0.02)
            assert not batch.done()
            await outside.commit()
            with pytest.raises(InvalidRecords) as refused:
                await batch
            return refused.value

    refused = run(database, scenario)
    assert [p.as_dict() for p in refused.problems] == [
        {"index": 0, "sourceId": "ECOLOGY-INS-T1", "field": "actionCode",
         "message": "T-BY-HAND was registered to another inspection while this batch was being "
         "written, by a write that did not wait its turn; nothing of the batch was written: "
         f"{ONE_EACH}, and publish again"},
    ]  # fmt: skip
    after = written(database)
    assert after[0][0] == before[0][0] + 1  # the row written by hand, and nothing else
    assert after[1:] == before[1:]


@pytest.mark.postgres
def test_over_graphql_a_batch_that_loses_to_the_index_is_bad_user_input_and_recorded(
    writable: Hub,
) -> None:
    """The same race through a mutation: the batch's savepoint is rolled back, the request
    goes on and commits its access record, and the caller gets BAD_USER_INPUT."""
    if not writable.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time in: the check always sees the row")
    (enterprise_id, uscc) = sql(writable.settings,
                                "SELECT id, uscc FROM enterprise ORDER BY id LIMIT 1")[0]  # fmt: skip
    inserted, commit = threading.Event(), threading.Event()

    async def by_hand(engine: AsyncEngine) -> None:
        async with engine.connect() as outside:
            await outside.execute(text(
                "INSERT INTO inspection (owner, source_id, enterprise_id, action_code, kind, "
                "inspected_on, result) VALUES ('market', 'BY-HAND-1', :e, 'T-BY-HAND', "
                "'routine', '2026-10-01', 'no_problem')"
            ), {"e": enterprise_id})  # fmt: skip
            inserted.set()
            await asyncio.to_thread(commit.wait, 60)
            await outside.commit()

    outside = threading.Thread(target=run, args=(writable.settings, by_hand))
    outside.start()
    assert inserted.wait(60)
    answers: list[dict[str, Any]] = []
    record = new_inspection("ECOLOGY-INS-T1", uscc, "T-BY-HAND")
    request = threading.Thread(
        target=lambda: answers.append(writable.ask("ecology", PUBLISH, records=[record]))
    )
    request.start()
    for _ in range(500):  # until the batch's INSERT waits for the row's transaction
        waiting = sql(writable.settings, "SELECT count(*) FROM pg_stat_activity WHERE "
                      "datname = current_database() AND wait_event_type = 'Lock'")[0][0]  # fmt: skip
        if waiting or not request.is_alive():
            break
        time.sleep(0.02)
    assert request.is_alive()
    commit.set()
    outside.join(60)
    request.join(60)
    (answer,) = answers
    assert answer["data"] is None
    assert problems(answer) == [
        (0, "ECOLOGY-INS-T1", "actionCode", "T-BY-HAND was registered to another inspection "
         "while this batch was being written, by a write that did not wait its turn; nothing of "
         f"the batch was written: {ONE_EACH}, and publish again"),
    ]  # fmt: skip
    assert sql(writable.settings, "SELECT owner, source_id FROM inspection WHERE action_code = "
               "'T-BY-HAND'") == [("market", "BY-HAND-1")]  # fmt: skip
    last = last_record(writable.settings)
    assert (last["department"], last["outcome"], last["operation_type"]) == (
        "ecology",
        "error",
        "mutation",
    )


def test_a_retraction_keeps_the_code_for_publishing_directly_too(database: Settings) -> None:
    (uscc,) = sql(database, "SELECT uscc FROM enterprise ORDER BY id LIMIT 1")[0]

    async def scenario(engine: AsyncEngine) -> InvalidRecords:
        first = new_inspection("ECOLOGY-INS-T1", uscc, "T-KEPT")
        await publish(engine, POLICY, ECOLOGY, INSPECTIONS, "ecology", [first], on=AS_OF)
        await retract(engine, POLICY, ECOLOGY, INSPECTIONS, "ecology", ["ECOLOGY-INS-T1"], "错")
        second = new_inspection("ECOLOGY-INS-T2", uscc, "T-KEPT")
        with pytest.raises(InvalidRecords) as refused:
            await publish(engine, POLICY, ECOLOGY, INSPECTIONS, "ecology", [second], on=AS_OF,
                          dry_run=True)  # fmt: skip
        return refused.value

    assert [p.message for p in run(database, scenario).problems] == [
        "T-KEPT is already registered to ecology's inspection ECOLOGY-INS-T1, which was "
        f"retracted: a retracted inspection keeps its code; {ONE_EACH}"
    ]


# --- import -------------------------------------------------------------------------------


def test_import_rejects_a_taken_or_repeated_code_line_by_line(
    database: Settings, tmp_path: Path
) -> None:
    (held,) = sql(database, "SELECT i.source_id, i.action_code, e.uscc FROM inspection i JOIN "
                  "enterprise e ON e.id = i.enterprise_id WHERE i.owner = 'fire' ORDER BY i.id "
                  "LIMIT 1")  # fmt: skip
    lines = [
        new_inspection("ECOLOGY-INS-T1", held.uscc, "T-IMPORT-1"),
        new_inspection("ECOLOGY-INS-T2", held.uscc, held.action_code),
        new_inspection("ECOLOGY-INS-T3", held.uscc, "T-IMPORT-3"),
        new_inspection("ECOLOGY-INS-T4", held.uscc, " T-IMPORT-1"),
        new_inspection("ECOLOGY-INS-T5", held.uscc, "T-IMPORT-5"),
    ]
    path = tmp_path / "inspections.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rejected = (
        f"line 2 (sourceId ECOLOGY-INS-T2) actionCode: {held.action_code} is already registered "
        f"to fire's inspection {held.source_id}; {ONE_EACH} "
        "line 4 (sourceId ECOLOGY-INS-T4) actionCode: repeats the action code of line 1 "
        f"(sourceId ECOLOGY-INS-T1); {ONE_EACH}"
    )
    env = {"HUB_DATABASE_URL": database.database_url, "COLUMNS": "200"}
    # Batches of two: line 4 repeats a code of another batch, which a dry run never stores.
    arguments = ["import", str(path), "--department", "ecology", "--kind", "inspections",
                 "--batch-size", "2"]  # fmt: skip
    for dry_run in (["--dry-run"], []):
        result = CliRunner().invoke(app, [*arguments, *dry_run], env=env)
        assert result.exit_code == 1, result.output
        assert rejected in " ".join(result.stdout.split()), result.stdout
    assert [tuple(row) for row in sql(
        database, "SELECT source_id, action_code FROM inspection WHERE source_id LIKE "
        "'ECOLOGY-INS-T%' ORDER BY source_id"
    )] == [("ECOLOGY-INS-T1", "T-IMPORT-1"), ("ECOLOGY-INS-T3", "T-IMPORT-3"),
           ("ECOLOGY-INS-T5", "T-IMPORT-5")]  # fmt: skip


# --- the migration ------------------------------------------------------------------------


def _before_unique_codes(settings: Settings) -> str:
    """The revision before 0008, wherever the chain puts it."""
    revision = ScriptDirectory.from_config(alembic_config(settings)).get_revision("0008")
    assert isinstance(revision.down_revision, str)
    return revision.down_revision


def _action_code_index(settings: Settings) -> tuple[str | None, list[dict[str, Any]]]:
    async def read(engine: AsyncEngine) -> tuple[str | None, list[dict[str, Any]]]:
        async with engine.connect() as connection:
            revision = await current_revision(connection)
            indexes = await connection.run_sync(
                lambda sync: inspect(sync).get_indexes("inspection")
            )
        return revision, [
            {"name": i["name"], "unique": bool(i["unique"])}
            for i in indexes
            if i["column_names"] == ["action_code"]
        ]

    return run(settings, read)


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_the_migration_stops_on_shared_codes_naming_them_and_changes_nothing(
    empty_database: Settings,
) -> None:
    before = _before_unique_codes(empty_database)
    upgrade(empty_database, before)
    rows = [  # owner, source id, code, retracted
        ("ecology", "ECOLOGY-INS-1", "DUP-A", False),
        ("market", "MARKET-INS-9", "DUP-A", True),
        ("fire", "FIRE-INS-2", "ONLY-ONE", False),
        ("fire", "FIRE-INS-3", "DUP-B", False),
        ("fire", "FIRE-INS-4", "DUP-B", False),
    ]

    async def store(engine: AsyncEngine) -> None:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO enterprise (id, uscc, owner, name, legal_representative, address, "
                "industry, region, town, registered_on, status) VALUES (1, '91330105UK47AB3T6H', "
                "'market', '杭州卓越物流有限公司', '沈斌', '浙江省杭州市拱墅区半山街道湖州街491号', "
                "'道路运输', '拱墅区', '半山街道', '2019-09-15', 'active')"
            ))  # fmt: skip
            for number, (owner, source_id, code, retracted) in enumerate(rows, start=1):
                await connection.execute(text(
                    "INSERT INTO inspection (id, owner, source_id, enterprise_id, action_code, "
                    "kind, inspected_on, result, retracted) VALUES (:id, :owner, :source_id, 1, "
                    ":code, 'routine', '2026-09-01', 'no_problem', :retracted)"
                ), {"id": number, "owner": owner, "source_id": source_id, "code": code,
                    "retracted": retracted})  # fmt: skip

    run(empty_database, store)
    with pytest.raises(MigrationRefused) as refused:
        upgrade(empty_database)
    assert str(refused.value) == (
        "administrative-action codes must become unique (revision 0008), but 2 codes are "
        "registered to more than one inspection: 'DUP-A' is held by ecology ECOLOGY-INS-1, "
        "market MARKET-INS-9 (retracted); 'DUP-B' is held by fire FIRE-INS-3, fire FIRE-INS-4. "
        "A code stands for one inspection (亮码检查), retracted ones too. Give all but one "
        "inspection of each code a code of its own (republish them with a new actionCode with "
        "the release you run now, or correct inspection.action_code in the database: SELECT "
        "owner, source_id, action_code FROM inspection WHERE action_code IN (SELECT "
        "action_code FROM inspection GROUP BY action_code HAVING count(*) > 1) lists them "
        "all), then run `hub db upgrade` again. Nothing was changed: the database is still at "
        f"revision {before}."
    )
    expected_before = (before, [{"name": "ix_inspection_action_code", "unique": False}])
    assert _action_code_index(empty_database) == expected_before

    # The command says it in one paragraph, exit status 2, no traceback.
    command = subprocess.run(
        [HUB, "db", "upgrade"], env={**os.environ, "HUB_DATABASE_URL": empty_database.database_url,
                                     "COLUMNS": "300"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert command.returncode == 2, command.stdout + command.stderr
    said = " ".join((command.stdout + command.stderr).split())
    assert "was not migrated: administrative-action codes must become unique" in said, said
    assert "Traceback" not in command.stdout + command.stderr
    assert _action_code_index(empty_database) == expected_before

    # Once each code is held once, the index becomes unique, and a downgrade undoes it.
    run(empty_database, lambda engine: _fix(engine))
    upgrade(empty_database)
    assert _action_code_index(empty_database)[1] == [
        {"name": "ix_inspection_action_code", "unique": True}
    ]
    from alembic import command as alembic

    alembic.downgrade(alembic_config(empty_database), before)
    assert _action_code_index(empty_database) == expected_before


async def _fix(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(
            "UPDATE inspection SET action_code = action_code || '-' || id WHERE source_id IN "
            "('MARKET-INS-9', 'FIRE-INS-4')"
        ))  # fmt: skip


# --- the served hub -----------------------------------------------------------------------


def test_hub_serve_demo_looks_up_a_demo_code_and_an_unknown_one(tmp_path: Path) -> None:
    environment = {**os.environ, "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db"}
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--demo", "--port", str(port)], cwd=tmp_path,
                              env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: readyz(port)["status"] == "ready", seconds=90)
        tokens = dict(
            line.split()
            for line in (tmp_path / "var" / "demo-tokens.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
        settings = Settings(database_url=environment["HUB_DATABASE_URL"])
        found = an_inspection(settings)

        async def ask(code: str) -> dict[str, Any]:
            transport = AIOHTTPTransport(
                url=f"http://127.0.0.1:{port}/graphql",
                headers={"Authorization": f"Bearer {tokens['market']}"},
            )
            async with Client(transport=transport) as session:
                query = gql(
                    "query($code: String!) { inspectionByActionCode(code: $code) { code uscc "
                    "enterprise { name } inspection { sourceId owner { code } actionCode } } }"
                )
                query.variable_values = {"code": code}
                answer: dict[str, Any] = await session.execute(query)
                return answer

        assert asyncio.run(ask(found.action_code)) == {
            "inspectionByActionCode": {
                "code": found.action_code,
                "uscc": found.uscc,
                "enterprise": {"name": found.name},
                "inspection": {"sourceId": found.source_id, "owner": {"code": "ecology"},
                               "actionCode": found.action_code},
            }
        }  # fmt: skip
        with pytest.raises(TransportQueryError) as unknown:
            asyncio.run(ask("33010620261101019999999"))
        assert unknown.value.errors == [
            {
                "message": "no inspection is registered under action code "
                "33010620261101019999999; check the code shown by the inspector",
                "locations": [{"line": 2, "column": 3}],  # as gql prints the document
                "path": ["inspectionByActionCode"],
                "extensions": {"code": "NOT_FOUND"},
            }
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_codes_are_unique_and_fit_at_benchmark_scale() -> None:
    """`hub demo load --enterprises 100000`: every inspection's code differs, and fits."""
    from hub.demo.generator import INSPECTION, DemoGenerator

    generator = DemoGenerator(7)  # as `hub demo load` makes them: 1,000 enterprises a batch
    codes: set[str] = set()
    inspections = 0
    for _ in range(100):
        for row in generator.batch(1000)[INSPECTION]:
            codes.add(row["action_code"])
            inspections += 1
    assert inspections == 261_245  # cut to five digits, the serial repeated 3 codes
    assert len(codes) == inspections
    assert max(map(len, codes)) == 23
