"""A write and its access record commit together or not at all (hub/unit.py).

Each write path is tried with an access log that refuses appends (as a serving role without
INSERT on it would): the write must not be stored, and the retry once the log accepts again
is stored with its record. The same holds for a hub process killed while it publishes.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import text
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import create_engine
from hub.settings import Settings
from tests.conftest import Hub
from tests.test_serve import HUB, free_port, readyz, wait_for

REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_appends BEFORE INSERT ON access_record "
        "BEGIN SELECT RAISE(ABORT, 'the access log refuses appends'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_appends() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the access log refuses appends'; END $$",
        "CREATE TRIGGER refuse_appends BEFORE INSERT ON access_record "
        "FOR EACH ROW EXECUTE FUNCTION refuse_appends()",
    ],
}
ACCEPT = {
    "sqlite": ["DROP TRIGGER refuse_appends"],
    "postgresql": [
        "DROP TRIGGER refuse_appends ON access_record",
        "DROP FUNCTION refuse_appends()",
    ],
}
# Everything a write could have changed, and the log itself.
STATE = """SELECT (SELECT count(*) FROM acceptance), (SELECT count(*) FROM record_version),
  (SELECT seq FROM feed_head), (SELECT count(*) FROM acceptance WHERE retracted),
  (SELECT count(*) FROM share_request), (SELECT count(*) FROM share_request WHERE status = 'pending'),
  (SELECT count(*) FROM share_grant), (SELECT count(*) FROM share_grant WHERE revoked_at IS NOT NULL),
  (SELECT version FROM grant_head), (SELECT count(*) FROM access_record)"""


def execute(settings: Settings, *statements: str) -> None:
    async def run() -> None:
        engine = create_engine(settings)
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


def dialect(settings: Settings) -> str:
    return "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"


@contextmanager
def refusing_log(settings: Settings) -> Iterator[None]:
    execute(settings, *REFUSE[dialect(settings)])
    try:
        yield
    finally:
        execute(settings, *ACCEPT[dialect(settings)])


def state(hub: Hub) -> tuple[Any, ...]:
    return tuple(hub.sql(STATE)[0])


def post(hub: Hub, who: str, query: str, **variables: Any) -> httpx2.Response:
    return hub.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {hub.tokens[who]}"},
    )


REQUEST = """mutation { requestShare(owner: "ecology", fields: ["Penalty.amount"],
  purpose: "law-enforcement", purposeDetail: "核查罚款执行情况", legalBasis: "《行政处罚法》",
  wantedFrom: "2026-01-01", wantedUntil: "2030-12-31") { id } }"""
DECIDE = "mutation($id: ID!) { decideShareRequest(id: $id, approve: true) { status grantId } }"


def writes(hub: Hub) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each write through GraphQL: who, the document, its variables."""
    (rectification,) = hub.sql(
        "SELECT r.source_id FROM rectification r LEFT JOIN acceptance a "
        "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
        "ORDER BY r.id LIMIT 1"
    )[0]
    (accepted,) = hub.sql(
        "SELECT source_id FROM acceptance WHERE owner = 'ecology' AND NOT retracted "
        "ORDER BY id LIMIT 1"
    )[0]
    pending = post(hub, "market", REQUEST).json()["data"]["requestShare"]["id"]
    granted = post(hub, "market", REQUEST).json()["data"]["requestShare"]["id"]
    grant = post(hub, "ecology", DECIDE, id=granted).json()["data"]["decideShareRequest"]
    return {
        "publish": (
            "ecology",
            """mutation($r: [AcceptanceInput!]!) { publishAcceptances(records: $r) { created } }""",
            {"r": [{"sourceId": "ECO-ACC-UNIT", "rectificationSourceId": rectification,
                    "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "整改到位"}]},
        ),
        "retract": (
            "ecology",
            """mutation($s: [String!]!) { retractRecords(kind: ACCEPTANCE, sourceIds: $s,
                 reason: "录入错误") { retracted } }""",
            {"s": [accepted]},
        ),
        "request": ("market", REQUEST, {}),
        "decide": ("ecology", DECIDE, {"id": pending}),
        "revoke": (
            "ecology",
            """mutation($id: ID!) { revokeGrant(id: $id, reason: "案件已结") { state } }""",
            {"id": grant["grantId"]},
        ),
    }  # fmt: skip


def test_no_write_stands_without_its_access_record(writable: Hub) -> None:
    hub = writable
    for name, (who, query, variables) in writes(hub).items():
        before = state(hub)
        with refusing_log(hub.settings):
            refused = post(hub, who, query, **variables)
        assert refused.status_code == 500, (name, refused.text)
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "INTERNAL", name
        assert "data" not in refused.json(), name
        assert state(hub) == before, name  # nothing written, nothing recorded

        retried = post(hub, who, query, **variables)
        assert retried.status_code == 200, (name, retried.text)
        assert "errors" not in retried.json(), (name, retried.text)
        after = state(hub)
        assert after[:-1] != before[:-1], name  # the write is stored now...
        assert after[-1] == before[-1] + 1, name  # ...with its access record
        (record,) = hub.sql("SELECT trace_id, written, outcome FROM access_record "
                            "ORDER BY seq DESC LIMIT 1")  # fmt: skip
        assert record.trace_id == retried.json()["extensions"]["traceId"], name
        assert json.loads(record.written), name
        assert record.outcome == "ok", name


def test_a_refused_write_is_recorded_and_leaves_nothing(writable: Hub) -> None:
    """A write refused halfway (here: one bad record after a good one) is rolled back to its
    savepoint; the request's record still commits, naming the attempt."""
    hub = writable
    before = state(hub)
    answer = post(
        hub,
        "ecology",
        """mutation($r: [AcceptanceInput!]!) { publishAcceptances(records: $r) { created } }""",
        r=[{"sourceId": "ECO-ACC-X", "rectificationSourceId": "NO-SUCH", "acceptedOn": "2026-11-10",
            "verdict": "PASSED", "opinion": "整改到位"}],
    ).json()  # fmt: skip
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    after = state(hub)
    assert after[:-1] == before[:-1]
    assert after[-1] == before[-1] + 1
    (record,) = hub.sql("SELECT outcome, written FROM access_record ORDER BY seq DESC LIMIT 1")
    assert (record.outcome, record.written) == ("error", None)


def test_the_commands_write_with_their_records_or_not_at_all(writable: Hub, tmp_path: Path) -> None:
    hub = writable
    (rectification,) = hub.sql(
        "SELECT r.source_id FROM rectification r LEFT JOIN acceptance a "
        "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
        "ORDER BY r.id LIMIT 1"
    )[0]
    lines = tmp_path / "acceptances.ndjson"
    lines.write_text(
        json.dumps({"sourceId": "ECO-ACC-CLI", "rectificationSourceId": rectification,
                    "acceptedOn": "2026-11-10", "verdict": "passed", "opinion": "整改到位"},
                   ensure_ascii=False) + "\n", encoding="utf-8",
    )  # fmt: skip
    granted = post(hub, "market", REQUEST).json()["data"]["requestShare"]["id"]
    grant = post(hub, "ecology", DECIDE, id=granted).json()["data"]["decideShareRequest"]
    commands = {
        "import": ["import", str(lines), "--department", "ecology", "--kind", "acceptances"],
        "revoke": ["share", "revoke", grant["grantId"], "--reason", "案件已结"],
    }
    env = {"HUB_DATABASE_URL": hub.settings.database_url, "COLUMNS": "200"}
    runner = CliRunner()
    for name, arguments in commands.items():
        before = state(hub)
        with refusing_log(hub.settings):
            refused = runner.invoke(cli, arguments, env=env)
        assert refused.exit_code != 0, (name, refused.output)
        assert "Traceback" not in refused.output, name
        assert state(hub) == before, name

        retried = runner.invoke(cli, arguments, env=env)
        assert retried.exit_code == 0, (name, retried.output)
        after = state(hub)
        assert after[:-1] != before[:-1], name
        assert after[-1] == before[-1] + 1, name
        (record,) = hub.sql("SELECT client, written FROM access_record ORDER BY seq DESC LIMIT 1")
        assert record.client.endswith(f"({getpass.getuser()})"), name
        assert json.loads(record.written), name


PUBLISH = """mutation($r: [InspectionInput!]!) { publishInspections(records: $r) { created } }"""


def test_a_hub_killed_while_publishing_leaves_no_write_without_its_record(
    writable: Hub, tmp_path: Path
) -> None:
    """Publishers keep writing while the process is killed (SIGKILL): every version stored
    has the access record of the request that published it (versions keep its trace id)."""
    hub = writable
    usccs = [row[0] for row in hub.sql("SELECT uscc FROM enterprise ORDER BY uscc LIMIT 20")]
    port = free_port()
    env = {**os.environ, "HUB_DATABASE_URL": hub.settings.database_url}
    server = subprocess.Popen(
        [HUB, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stop = threading.Event()
    answered: list[int] = []

    def publisher(worker: int) -> None:
        headers = {"Authorization": f"Bearer {hub.tokens['ecology']}"}
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            number = 0
            while not stop.is_set():
                number += 1
                record = {"sourceId": f"KILL-{worker}-{number}", "uscc": usccs[number % 20],
                          "actionCode": f"K{worker}{number:06d}", "kind": "ROUTINE",
                          "inspectedOn": "2026-11-01", "result": "NO_PROBLEM"}  # fmt: skip
                try:
                    response = client.post(
                        "/graphql", json={"query": PUBLISH, "variables": {"r": [record]}}
                    )
                except httpx2.HTTPError:
                    return
                created = response.json().get("data") == {"publishInspections": {"created": 1}}
                answered.append(response.status_code if created else -1)

    try:
        wait_for(lambda: readyz(port)["status"] == "ready")
        workers = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(answered) >= 30, seconds=60)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait()
    for worker in workers:
        worker.join(timeout=30)
    published = hub.sql(
        "SELECT count(DISTINCT trace_id) FROM record_version WHERE source_id LIKE 'KILL-%'"
    )[0][0]
    assert published >= 30
    unrecorded = hub.sql(
        "SELECT count(*) FROM record_version v WHERE v.source_id LIKE 'KILL-%' AND NOT EXISTS "
        "(SELECT 1 FROM access_record a WHERE a.trace_id = v.trace_id AND a.written IS NOT NULL)"
    )[0][0]
    assert unrecorded == 0
    assert set(answered) == {200}
