"""The access log: what a record holds, fail-closed writing, the hash chain and its checks."""

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, print_ast
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from starlette.testclient import TestClient

from hub.audit import AccessEntry, AccessLog, Outcome, Trail, record_hash, verify
from hub.audit.record import canonical, compact
from hub.audit.served import coordinates, denials, groups
from hub.checkpoint import CheckpointError, create_key, load_checkpoint, load_key, sign
from hub.db import create_engine, upgrade
from hub.settings import Settings
from tests.conftest import BACKENDS, graphql


def sql(settings: Settings, statement: str, **parameters: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(settings)
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), parameters)
            rows = list(result.all()) if result.returns_rows else []
        await engine.dispose()
        return rows

    return asyncio.run(run())


def last_record(settings: Settings) -> dict[str, Any]:
    (row,) = sql(settings, "SELECT * FROM access_record ORDER BY seq DESC LIMIT 1")
    return dict(row._mapping)


def an_enterprise_with_ecology_acceptances(settings: Settings) -> str:
    (row,) = sql(
        settings,
        """
        SELECT e.uscc FROM enterprise e JOIN rectification r ON r.enterprise_id = e.id
        JOIN acceptance a ON a.rectification_id = r.id
        JOIN penalty p ON p.enterprise_id = e.id
        WHERE r.owner = 'ecology' AND p.amount_fen > 0 ORDER BY e.uscc LIMIT 1""",
    )
    return str(row.uscc)


QUERY = """query Dossier($u: String!) { enterprise(uscc: $u) { name
  penalties { id caseNumber amount }
  rectifications { id acceptance { id verdict opinion } } } }"""


def test_a_record_says_who_read_which_fields_of_which_records_and_why(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    uscc = an_enterprise_with_ecology_acceptances(demo_database)
    response = hub.post(
        "/graphql",
        json={"query": QUERY, "variables": {"u": uscc}},
        headers={"Authorization": f"Bearer {tokens['market']}", "X-Hub-Case": "330106-2026-0042"},
    )
    answer = response.json()
    record = last_record(demo_database)
    client_id = record["client"]
    assert client_id.startswith("client:")
    assert {k: record[k] for k in ("department", "role", "operation_name", "operation_type",
                                   "purpose", "case_ref", "outcome", "remote_address")} == {
        "department": "market", "role": "department", "operation_name": "Dossier",
        "operation_type": "query", "purpose": None, "case_ref": "330106-2026-0042",
        "outcome": "partial", "remote_address": "testclient",
    }  # fmt: skip
    assert record["document_hash"] == hashlib.sha256(print_ast(parse(QUERY)).encode()).hexdigest()
    assert record["trace_id"] == answer["extensions"]["traceId"]
    assert record["enterprises"] == f" {uscc} "
    assert datetime.fromisoformat(record["recorded_at"]) <= datetime.now(UTC)

    served = groups(record)  # read back whole from the compact form
    dossier = answer["data"]["enterprise"]
    penalty_ids = [p["id"] for p in dossier["penalties"]]
    # market reads penalty decisions; their amounts only with a stated purpose
    assert {"enterprise": uscc, "type": "Penalty", "fields": ["caseNumber", "id"],
            "ids": penalty_ids} in served  # fmt: skip
    assert {"enterprise": uscc, "type": "Enterprise", "fields": ["name", "penalties", "rectifications"],
            "ids": [uscc]} in served  # fmt: skip
    acceptances = [r["acceptance"]["id"] for r in dossier["rectifications"] if r["acceptance"]]
    assert {"enterprise": uscc, "type": "Acceptance", "fields": ["id", "verdict"],
            "ids": acceptances} in served  # fmt: skip
    denied = denials(record)
    owners = {str(row.id): row.owner for row in sql(demo_database, "SELECT id, owner FROM penalty")}
    assert {(d["enterprise"], d["type"], d["id"], d["owner"], d["field"]) for d in denied} == {
        (uscc, "Acceptance", acceptance, "ecology", "Acceptance.opinion")
        for acceptance in acceptances
    } | {(uscc, "Penalty", penalty, owners[penalty], "Penalty.amount") for penalty in penalty_ids}
    # The search text names each Type.field served once; what of whom, the groups say.
    assert " Penalty.caseNumber " in record["fields"]
    assert "Penalty.amount" not in record["fields"]
    assert "Acceptance.opinion" not in record["fields"]
    assert f"{uscc}:Penalty.caseNumber" in coordinates(served)

    # names, never values
    stored = json.dumps(record, ensure_ascii=False, default=str)
    for penalty in dossier["penalties"]:
        assert penalty["caseNumber"] not in stored
    assert dossier["name"] not in stored


@pytest.mark.parametrize(
    ("headers", "body", "outcome"),
    [
        ({}, {"query": "{ departments { code } }"}, Outcome.DENIED),
        ({"Authorization": "Bearer hub_nope"}, {"query": "{ departments { code } }"}, Outcome.DENIED),
        ({"token": "market"}, {"query": "{ nothing }"}, Outcome.ERROR),
        ({"token": "market"}, [1], Outcome.ERROR),
        ({"token": "auditor"}, {"query": '{ enterprise(uscc: "91110000600037341L") { name } }'}, Outcome.OK),
        ({"token": "market"}, {"query": "{ accessLog { edges { node { seq } } } }"}, Outcome.DENIED),
    ],
)  # fmt: skip
def test_refused_and_failed_requests_are_recorded_too(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str],
    headers: dict[str, str], body: Any, outcome: str,
) -> None:  # fmt: skip
    if "token" in headers:
        headers = {"Authorization": f"Bearer {tokens[headers['token']]}"}
    before = last_record(demo_database)["seq"]
    response = hub.post("/graphql", json=body, headers=headers)
    record = last_record(demo_database)
    assert record["seq"] == before + 1
    assert record["outcome"] == outcome
    assert record["trace_id"] == response.json()["extensions"]["traceId"]


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        # The operator's condition (a full disk, a database away): said as such, 503.
        (OSError(28, "No space left on device"), 503, "SERVICE_UNAVAILABLE"),
        (RuntimeError("the chain is broken"), 500, "INTERNAL"),  # a defect
    ],
)
def test_no_record_no_answer(
    hub: TestClient,
    demo_database: Settings,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    status: int,
    code: str,
) -> None:
    async def unwritable(self: AccessLog, entry: AccessEntry) -> int:
        raise failure

    monkeypatch.setattr(AccessLog, "append", unwritable)
    uscc = an_enterprise_with_ecology_acceptances(demo_database)
    response = hub.post(
        "/graphql",
        json={"query": QUERY, "variables": {"u": uscc}},
        headers={"Authorization": f"Bearer {tokens['market']}"},
    )
    assert response.status_code == status
    answer = response.json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == code
    assert "杭州" not in response.text
    assert uscc not in response.text


def test_the_database_refuses_to_change_or_delete_records(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    hub.post("/graphql", json={"query": "{ departments { code } }"},
             headers={"Authorization": f"Bearer {tokens['fire']}"})  # fmt: skip
    for statement in ("UPDATE access_record SET outcome = 'ok'", "DELETE FROM access_record"):
        with pytest.raises(Exception, match="the access log is append-only"):
            sql(demo_database, statement)


# The hash chain, tampered with in every way an insider with database access might try.


def entry(number: int) -> AccessEntry:
    trail = Trail()
    trail.serve("91110000600037341L", "Penalty", str(number), ("amount", "caseNumber"))
    return AccessEntry(
        recorded_at=datetime(2026, 11, 1, 8, 0, number, tzinfo=UTC),
        outcome=Outcome.OK,
        trace_id=f"{number:032x}",
        duration_us=1000 + number,
        client="client:1",
        department="market",
        role="department",
        purpose="核查",
        trail=trail,
    )


def build_log(settings: Settings, records: int = 6) -> None:
    upgrade(settings)

    async def append() -> None:
        engine = create_engine(settings)
        log = AccessLog(engine)
        for number in range(1, records + 1):
            assert await log.append(entry(number)) == number
        await engine.dispose()

    asyncio.run(append())


def unlock(settings: Settings) -> list[str]:
    """What an insider with the database's owner rights runs first."""
    if settings.database_url.startswith("postgresql"):
        return ["ALTER TABLE access_record DISABLE TRIGGER USER"]
    return ["DROP TRIGGER access_record_no_update", "DROP TRIGGER access_record_no_delete"]


def check(settings: Settings, checkpoint: tuple[int, str] | None = None) -> Any:
    async def run() -> Any:
        engine = create_engine(settings)
        result = await verify(engine, *(checkpoint or (None, None)))
        await engine.dispose()
        return result

    return asyncio.run(run())


def head(settings: Settings, seq: int) -> tuple[int, str]:
    (row,) = sql(settings, "SELECT seq, hash FROM access_record WHERE seq = :s", s=seq)
    return row.seq, row.hash


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_an_untouched_log_verifies(empty_database: Settings) -> None:
    build_log(empty_database)
    result = check(empty_database, head(empty_database, 6))
    assert (result.ok, result.records, result.head_seq) == (True, 6, 6)


# What a record's hash and its served/withheld columns are made of: text (any code point but
# lone surrogates, which no record can hold), integers of a BIGINT, None, lists and objects.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=6), inner,
                      max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES)
def test_records_are_hashed_over_the_same_bytes_as_ever(value: Any) -> None:
    """The fast encoding (orjson) of what a record holds is byte for byte the canonical JSON
    its hash was always taken over: records written before it still verify."""
    assert compact(value) == canonical(value)
    assert compact({"seq": 2**70}) == canonical({"seq": 2**70})  # past orjson: the same too


TAMPERING = [
    ("one changed byte", ["UPDATE access_record SET purpose = '核査' WHERE seq = 3"], 3,
     "record 3 was changed after it was written: its hash does not match"),
    ("a changed hash", ["UPDATE access_record SET duration_us = 1, hash = 'f' || substr(hash, 2) WHERE seq = 4"], 4,
     "record 4 was changed after it was written: its hash does not match"),
    ("a deleted record", ["DELETE FROM access_record WHERE seq = 4"], 5,
     "record 5 follows record 3: records are missing"),
    ("a record inserted with a forged number", [
        "UPDATE access_record SET seq = seq + 100 WHERE seq >= 3",
        "INSERT INTO access_record SELECT 3, recorded_at, client, department, role, operation_name, operation_type,"
        " document_hash, purpose, case_ref, remote_address, outcome, enterprises, fields, served, denied,"
        " policy_version, trace_id, duration_us, prev_hash, 'forged', written, document_id"
        " FROM access_record WHERE seq = 103",
        "UPDATE access_record SET seq = seq - 99 WHERE seq >= 103"], 3,
     "record 3 was changed after it was written: its hash does not match"),
    # A later column (document_id, migration 0012) is hashed once set: naming a document a
    # record did not run, or another one, breaks its hash like any other change.
    ("a document id given to a record", [
        "UPDATE access_record SET document_id = 'sha256:' || hash WHERE seq = 3"], 3,
     "record 3 was changed after it was written: its hash does not match"),
    ("two records swapped", [
        "UPDATE access_record SET seq = 100 WHERE seq = 2",
        "UPDATE access_record SET seq = 2 WHERE seq = 3",
        "UPDATE access_record SET seq = 3 WHERE seq = 100"], 2,
     "record 2 does not chain to record 1: a record was inserted, removed or reordered before it"),
]  # fmt: skip


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("case", "statements", "broken", "problem"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
def test_tampering_is_found_at_the_right_record(
    empty_database: Settings, case: str, statements: list[str], broken: int, problem: str
) -> None:
    build_log(empty_database)
    for statement in unlock(empty_database) + statements:
        sql(empty_database, statement)
    result = check(empty_database)
    assert (result.ok, result.broken_seq, result.problem) == (False, broken, problem)


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_a_record_inserted_with_a_valid_hash_of_its_own_breaks_the_next_link(
    empty_database: Settings,
) -> None:
    build_log(empty_database)
    rows = [
        dict(r._mapping) for r in sql(empty_database, "SELECT * FROM access_record ORDER BY seq")
    ]
    forged = {**rows[2], "purpose": "（伪造）", "prev_hash": rows[1]["hash"]}
    forged["hash"] = record_hash(forged)  # consistent in itself
    statements = [*unlock(empty_database), "DELETE FROM access_record WHERE seq >= 3"]
    for statement in statements:
        sql(empty_database, statement)
    columns = ", ".join(forged)
    marks = ", ".join(f":{name}" for name in forged)
    for values in [forged, *({**row, "seq": row["seq"] + 1} for row in rows[2:])]:
        sql(empty_database, f"INSERT INTO access_record ({columns}) VALUES ({marks})", **values)
    result = check(empty_database)
    assert (result.ok, result.broken_seq, result.problem) == (
        False,
        4,
        "record 4 does not chain to record 3: a record was inserted, removed or reordered before it",
    )


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_a_checkpoint_catches_truncation_and_a_rewritten_chain(empty_database: Settings) -> None:
    build_log(empty_database)
    checkpoint = head(empty_database, 5)
    for statement in [*unlock(empty_database), "DELETE FROM access_record WHERE seq >= 5"]:
        sql(empty_database, statement)
    assert check(empty_database).ok  # the shorter chain is consistent in itself...
    truncated = check(empty_database, checkpoint)  # ...but not with what witnesses hold
    assert (truncated.ok, truncated.broken_seq, truncated.problem) == (
        False,
        5,
        "the log ends at record 4, before the checkpoint's record 5: it was truncated",
    )

    # Rewrite history from record 2 on, recomputing every hash: consistent, but not the same.
    async def rewrite() -> None:
        engine = create_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM access_record WHERE seq >= 2"))
        log = AccessLog(engine)
        for number in range(2, 7):
            forged = entry(number)
            forged.purpose = "（改写）"
            await log.append(forged)
        await engine.dispose()

    asyncio.run(rewrite())
    assert check(empty_database).ok
    rewritten = check(empty_database, checkpoint)
    assert (rewritten.ok, rewritten.broken_seq, rewritten.problem) == (
        False,
        5,
        "record 5 differs from the signed checkpoint: the chain was rewritten",
    )


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_concurrent_writers_keep_one_unbroken_chain(empty_database: Settings) -> None:
    """Several hub processes share one database: four engines append at once."""
    upgrade(empty_database)

    async def writers() -> list[int]:
        engines = [create_engine(empty_database) for _ in range(4)]
        logs = [AccessLog(engine) for engine in engines]
        seqs = await asyncio.gather(*(logs[i % 4].append(entry(i % 50 + 1)) for i in range(60)))
        for engine in engines:
            await engine.dispose()
        return list(seqs)

    seqs = asyncio.run(writers())
    assert sorted(seqs) == list(range(1, 61))
    result = check(empty_database)
    assert (result.ok, result.records) == (True, 60)


def test_checkpoints_are_signed(tmp_path: Path) -> None:
    key_path = tmp_path / "signing.pem"
    create_key(key_path)
    assert key_path.stat().st_mode & 0o777 == 0o600
    key = load_key(key_path)
    document = sign(key, 42, "ab" * 32)
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(document))
    checkpoint = load_checkpoint(path, key.public_key())
    assert (checkpoint.seq, checkpoint.head_hash) == (42, "ab" * 32)

    document["seq"] = 41
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="does not verify with the hub's key"):
        load_checkpoint(path, key.public_key())
    other = tmp_path / "other.pem"
    create_key(other)
    path.write_text(json.dumps(sign(load_key(other), 42, "ab" * 32)))
    with pytest.raises(CheckpointError, match="does not verify with the hub's key"):
        load_checkpoint(path, key.public_key())
    path.write_text("{}")
    with pytest.raises(CheckpointError, match="is not a checkpoint of this hub"):
        load_checkpoint(path, key.public_key())


# Auditors' questions, through GraphQL.

WHO_READ = """query($u: String!, $since: DateTime) {
  accessLog(filter: {enterprise: $u, field: "Acceptance.opinion", since: $since}) {
    edges { node { seq department client purpose caseRef outcome
      served { enterprise type fields ids grants { field grant } } } } } }"""


def test_an_auditor_finds_who_read_an_enterprises_acceptance_opinions_this_week(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    uscc = an_enterprise_with_ecology_acceptances(demo_database)
    dossier = """query($u: String!) { enterprise(uscc: $u) {
        rectifications { acceptance { opinion } } } }"""
    purpose = "rectification-check: 联合检查前核查整改验收"  # the demo data's grant
    reads = [("market", purpose), ("enforcement", purpose), ("fire", None)]
    before = last_record(demo_database)["seq"]  # other tests' reads are on record too
    for department, stated in reads:
        graphql(hub, dossier, token=tokens[department], purpose=stated, u=uscc)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    answer = graphql(hub, WHO_READ, token=tokens["auditor"], u=uscc, since=week_ago)
    nodes = [e["node"] for e in answer["data"]["accessLog"]["edges"] if e["node"]["seq"] > before]
    # market was served the opinions under its grant; enforcement has none, fire no rule
    assert [n["department"] for n in nodes] == ["market"]
    assert nodes[0]["purpose"] == purpose
    (opinions,) = [group for group in nodes[0]["served"] if group["type"] == "Acceptance"]
    (grant_id,) = [row[0] for row in sql(demo_database, "SELECT id FROM share_grant")]
    assert opinions["grants"] == [{"field": "Acceptance.opinion", "grant": str(grant_id)}]

    accesses = graphql(
        hub,
        "query($u: String!) { accessesTo(uscc: $u) { department purpose fields denied } }",
        token=tokens["auditor"],
        u=uscc,
    )["data"]["accessesTo"]
    latest = {a["department"]: a for a in accesses[:3]}
    assert set(latest) == {"enforcement", "market", "fire"}
    assert "Acceptance.opinion" in latest["market"]["fields"]
    assert latest["enforcement"]["denied"] == ["Acceptance.opinion"]


def test_departments_may_not_read_the_access_log(hub: TestClient, tokens: dict[str, str]) -> None:
    for query, field in [
        ("{ accessLog { edges { node { seq } } } }", "Query.accessLog"),
        ('{ accessesTo(uscc: "91110000600037341L") { seq } }', "Query.accessesTo"),
    ]:
        answer = graphql(hub, query, token=tokens["market"])
        assert answer["data"] == {field.split(".")[1]: None}
        (error,) = answer["errors"]
        assert error["extensions"] == {
            "code": "FORBIDDEN",
            "owner": "hub",
            "field": field,
            "reason": "only auditors read the access log (separation of duties)",
        }


def test_access_log_pages_and_filters(hub: TestClient, tokens: dict[str, str]) -> None:
    for _ in range(3):
        graphql(hub, "{ departments { code } }", token=tokens["culture"])
    query = """query($after: String) { accessLog(filter: {department: "culture", outcome: OK},
        first: 2, after: $after) { pageInfo { hasNextPage endCursor } edges { node { seq department
        outcome hash prevHash } } } }"""
    first = graphql(hub, query, token=tokens["auditor"])["data"]["accessLog"]
    second = graphql(hub, query, token=tokens["auditor"], after=first["pageInfo"]["endCursor"])
    nodes = [e["node"] for e in first["edges"]] + [
        e["node"] for e in second["data"]["accessLog"]["edges"]
    ]
    assert first["pageInfo"]["hasNextPage"]
    assert all(n["department"] == "culture" and n["outcome"] == "OK" for n in nodes)
    seqs = [n["seq"] for n in nodes]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs) >= 3

    bad = graphql(hub, '{ accessLog(filter: {field: "Penalty.amout"}) { edges { cursor } } }',
                  token=tokens["auditor"])  # fmt: skip
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "filter.field"}


APPENDER = """
import asyncio, sys
from hub.audit import AccessLog
from hub.db import create_engine
from hub.settings import Settings
from tests.test_audit import entry

async def main() -> None:
    engine = create_engine(Settings(database_url=sys.argv[1]))
    log = AccessLog(engine)
    for number in range(1, 21):
        await log.append(entry(number))
    await engine.dispose()

asyncio.run(main())
"""


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_hub_processes_appending_at_once_keep_one_chain(empty_database: Settings) -> None:
    import subprocess
    import sys

    upgrade(empty_database)
    root = Path(__file__).resolve().parent.parent
    processes = [
        subprocess.Popen([sys.executable, "-c", APPENDER, empty_database.database_url], cwd=root)
        for _ in range(3)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    result = check(empty_database)
    assert (result.ok, result.records) == (True, 60)


def test_concurrent_appends_share_a_transaction(tmp_path: Path, sql_statements: Any) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/group.db")
    upgrade(settings)

    async def appends() -> list[int]:
        engine = create_engine(settings)
        log = AccessLog(engine)
        seqs = await asyncio.gather(*(log.append(entry(n % 50 + 1)) for n in range(20)))
        await engine.dispose()
        return list(seqs)

    assert sorted(asyncio.run(appends())) == list(range(1, 21))
    inserts = [s for s in sql_statements.statements if s.startswith("INSERT INTO access_record")]
    assert 1 <= len(inserts) < 20  # group commit: far fewer transactions than records
    assert check(settings).ok


def test_a_batch_past_one_insert_is_still_one_transaction(
    tmp_path: Path, sql_statements: Any
) -> None:
    """On SQLite a batch is written by the driver itself (log._append_sqlite): in one
    transaction, the head read once and as many INSERTs as SQLite's parameter limit asks."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/batch.db")
    upgrade(settings)

    async def appends() -> list[int]:
        engine = create_engine(settings)
        log = AccessLog(engine)
        seqs = await asyncio.gather(*(log.append(entry(n % 50 + 1)) for n in range(100)))
        await engine.dispose()
        return list(seqs)

    assert sorted(asyncio.run(appends())) == list(range(1, 101))
    statements = [s.split(" (")[0] for s in sql_statements.statements]
    assert statements.count("SELECT seq, hash FROM access_record ORDER BY seq DESC LIMIT 1") == 1
    assert statements.count("INSERT INTO access_record") == 3  # 45 + 45 + 10 records
    assert (check(settings).ok, check(settings).records) == (True, 100)


def test_a_request_that_fails_inside_the_hub_is_recorded_as_an_error(
    hub: TestClient,
    demo_database: Settings,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub.auth import Authenticator

    async def unreachable(self: Authenticator, *_: Any) -> None:
        raise ConnectionRefusedError("database at 10.1.2.3 refused")

    monkeypatch.setattr(Authenticator, "authenticate", unreachable)
    before = last_record(demo_database)["seq"]
    response = hub.post("/graphql", json={"query": "{ departments { code } }"},
                        headers={"Authorization": f"Bearer {tokens['fire']}"})  # fmt: skip
    # The database cannot be reached: the operator's condition, not a defect.
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    answer = response.json()
    assert answer["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "10.1.2.3" not in response.text
    record = last_record(demo_database)
    assert (record["seq"], record["outcome"]) == (before + 1, "error")
    assert record["trace_id"] == answer["extensions"]["traceId"]
