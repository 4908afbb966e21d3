"""The trusted documents' store (hub/documents.py), `hub documents`, the access record's
document_id, developer credentials and migration 0012, on both databases. The request path
(hub/trusted.py) is tested in test_trusted.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import AccessEntry, AccessLog, Outcome, record_hash, verify
from hub.auth import Authenticator
from hub.clients import ClientLookup, create_client, revoke_client
from hub.db import alembic_config, create_engine, upgrade
from hub.documents import DocumentError, document_id, find, register, retire, usage
from hub.domain import Role
from hub.errors import BadUserInput, NotFound
from hub.schema import build_schema
from hub.schema.reader import Reader
from hub.settings import Settings
from tests.conftest import BACKENDS, HEAD, StatementCounter, fresh_database
from tests.test_serve import HUB

T = TypeVar("T")
SCHEMA = build_schema()._schema
NAMES = "query Names { departments { code } }"
CODES = "query Codes { departments { code nameZh } }\n"
BOTH = "query One { departments { code } }\nquery Two { departments { nameEn } }"
OPERATOR = "test operator"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def on(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def sql(settings: Settings, statement: str, **values: Any) -> list[Any]:
    async def run(engine: AsyncEngine) -> list[Any]:
        async with engine.begin() as connection:
            return list((await connection.execute(text(statement), values)).all())

    return on(settings, run)


async def found(engine: AsyncEngine, client: str, document: str) -> str | None:
    """What a request's reader finds for ``client`` under ``document``'s sha256."""
    reader = Reader(engine)
    try:
        return await find(reader, client, digest(document))
    finally:
        await reader.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A migrated database with market's system (two tokens: it rotated one) and ecology's."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)

        async def clients(engine: AsyncEngine) -> None:
            for department, name in (("market", "market system"), ("market", "market system"),
                                     ("ecology", "ecology system")):  # fmt: skip
                await create_client(engine, department=department, name=name,
                                    role=Role.DEPARTMENT)  # fmt: skip

        on(settings, clients)
        yield settings


def test_document_ids_are_the_sha256_of_the_utf8_text() -> None:
    assert document_id(NAMES) == f"sha256:{digest(NAMES)}"
    assert document_id("{ departments { nameZh } } # 市场") == (
        "sha256:" + hashlib.sha256("{ departments { nameZh } } # 市场".encode()).hexdigest()
    )


def test_registering_is_idempotent_and_a_retired_document_comes_back(store: Settings) -> None:
    def registered(*documents: tuple[str, str]) -> list[tuple[str, str, tuple[str, ...], bool]]:
        done, _ = on(store, lambda e: register(e, "market system", list(documents), OPERATOR,
                                               SCHEMA))  # fmt: skip
        return [(r.id, r.source, r.operations, r.new) for r in done]

    assert registered(("names.graphql", NAMES), ("both.graphql", BOTH)) == [
        (document_id(NAMES), "names.graphql", ("Names",), True),
        (document_id(BOTH), "both.graphql", ("One", "Two"), True),
    ]
    # Again, with one more: the two it has are reported, not refused, and not doubled.
    assert [r[3] for r in registered(("names.graphql", NAMES), ("codes.graphql", CODES))] == [
        False,
        True,
    ]
    assert sql(store, "SELECT count(*) FROM trusted_document")[0][0] == 3
    # Any token of the client's name finds them; another client finds none of them.
    assert on(store, lambda e: found(e, "market system", NAMES)) == NAMES
    assert on(store, lambda e: found(e, "ecology system", NAMES)) is None

    on(store, lambda e: retire(e, "market system", document_id(NAMES), OPERATOR))
    assert on(store, lambda e: found(e, "market system", NAMES)) is None
    with pytest.raises(NotFound) as twice:
        on(store, lambda e: retire(e, "market system", digest(NAMES).upper(), OPERATOR))
    assert "client 'market system' has no registered document sha256:" in twice.value.message
    with pytest.raises(NotFound):  # ecology cannot retire market's document
        on(store, lambda e: retire(e, "ecology system", document_id(CODES), OPERATOR))
    with pytest.raises(DocumentError, match="is not a document id: sha256:<64 hexadecimal"):
        on(store, lambda e: retire(e, "market system", "sha256:abc", OPERATOR))

    # Registered again, the retired document is live again, as new.
    assert registered(("names.graphql", NAMES)) == [
        (document_id(NAMES), "names.graphql", ("Names",), True)
    ]
    assert on(store, lambda e: found(e, "market system", NAMES)) == NAMES
    listed = {u.id: u for u in on(store, lambda e: usage(e, "market system"))}
    assert listed[document_id(NAMES)].retired_at is None
    # Each registration and retirement is an access record naming the operator; the chain
    # holds them.
    records = sql(store, "SELECT client, operation_name, operation_type FROM access_record "
                         "ORDER BY seq")  # fmt: skip
    assert [tuple(r) for r in records] == [
        (OPERATOR, "documents register", "mutation"),
        (OPERATOR, "documents register", "mutation"),
        (OPERATOR, "documents retire", "mutation"),
        (OPERATOR, "documents register", "mutation"),
    ]
    assert on(store, verify).ok


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ("query Names {\n  departments {\n    budget\n  }\n}",
         "bad.graphql:3:5: Cannot query field 'budget' on type 'Department'."),
        ("query Names {\n  departments { code }\n", "bad.graphql:3:1: Syntax Error: Expected Name"),
        ("fragment Codes on Department { code }",
         "bad.graphql:1:1: Fragment 'Codes' is never used."),
        ("# only a comment\n", "bad.graphql:2:1: Syntax Error: Unexpected <EOF>."),
        ("query Names { departments { code } }\x1b[2J",
         "bad.graphql: the document holds a control character (U+001B at position 37)"),
    ],
)  # fmt: skip
def test_a_bad_document_is_refused_naming_file_and_line_and_nothing_is_kept(
    store: Settings, document: str, said: str
) -> None:
    with pytest.raises(DocumentError) as refused:
        on(store, lambda e: register(e, "market system", [("good.graphql", NAMES),
                                                          ("bad.graphql", document)],
                                     OPERATOR, SCHEMA))  # fmt: skip
    assert said in refused.value.message
    assert refused.value.code == "BAD_USER_INPUT"
    assert sql(store, "SELECT count(*) FROM trusted_document")[0][0] == 0
    assert sql(store, "SELECT count(*) FROM access_record")[0][0] == 0


def test_documents_belong_to_a_client_name_the_hub_knows(store: Settings) -> None:
    with pytest.raises(DocumentError) as unknown:
        on(store, lambda e: register(e, "nobody", [("names.graphql", NAMES)], OPERATOR, SCHEMA))
    assert "no client is named 'nobody'" in unknown.value.message
    assert "`hub clients list`" in unknown.value.message
    assert sql(store, "SELECT count(*) FROM access_record")[0][0] == 0
    # A revoked client's name still holds documents: its next token keeps them.
    on(store, lambda e: revoke_client(e, 3))
    done, _ = on(store, lambda e: register(e, " ecology system ", [("n.graphql", NAMES)],
                                           OPERATOR, SCHEMA))  # fmt: skip
    assert [r.new for r in done] == [True]
    assert [(u.client, u.id) for u in on(store, usage)] == [("ecology system", document_id(NAMES))]
    # A JWT's caller is named by its subject.
    on(store, lambda e: register(e, "jwt:ops", [("n.graphql", NAMES)], OPERATOR, SCHEMA))
    assert on(store, lambda e: found(e, "jwt:ops", NAMES)) == NAMES


def test_a_client_cannot_take_a_jwt_callers_name(store: Settings) -> None:
    with pytest.raises(BadUserInput, match="a client's name cannot start with 'jwt:'"):
        on(store, lambda e: create_client(e, department="market", name="JWT:ops",
                                          role=Role.DEPARTMENT))  # fmt: skip


def entry(client: str, document: str | None, at: datetime, outcome: str = Outcome.OK) -> Any:
    return AccessEntry(recorded_at=at, outcome=outcome, trace_id=os.urandom(16).hex(),
                       duration_us=1, client=client, department="market", role="department",
                       operation_name="Names", operation_type="query",
                       document_hash=digest(NAMES), document_id=document)  # fmt: skip


def test_usage_counts_the_requests_of_each_clients_documents(
    store: Settings, sql_statements: StatementCounter
) -> None:
    for client, documents in (("market system", [("n.graphql", NAMES), ("c.graphql", CODES)]),
                              ("ecology system", [("n.graphql", NAMES)])):  # fmt: skip
        on(store, lambda e: register(e, client, documents, OPERATOR, SCHEMA))  # noqa: B023
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    names = document_id(NAMES)

    async def requests(engine: AsyncEngine) -> None:
        log = AccessLog(engine)
        # market's two tokens (clients 1 and 2) ran Names three times, ecology's once; a
        # request that named no document, and one that named an unknown id, count for none.
        for number, (client, document) in enumerate([
            ("client:1", names), ("client:2", names), ("client:1", None),
            ("client:3", names), ("client:2", names), ("client:1", "sha256:" + "0" * 64),
        ]):  # fmt: skip
            await log.append(entry(client, document, start + timedelta(minutes=number)))

    on(store, requests)
    sql_statements.statements.clear()
    every = on(store, usage)
    assert len(sql_statements.statements) <= 3  # not one per document
    counted = {(u.client, u.id): (u.requests, (u.last_used or "")[:16]) for u in every}
    assert counted == {
        ("market system", names): (3, "2026-11-01T09:04"),
        ("market system", document_id(CODES)): (0, ""),
        ("ecology system", names): (1, "2026-11-01T09:03"),
    }
    market = on(store, lambda e: usage(e, "market system"))
    assert {u.client for u in market} == {"market system"}
    first = next(u for u in market if u.id == names)
    assert (first.source, first.operations, first.registered_by) == ("n.graphql", ("Names",),
                                                                     OPERATOR)  # fmt: skip
    assert first.registered_at.tzinfo is not None
    # Records naming documents chain like any other.
    assert on(store, verify).ok


def test_find_is_one_statement(store: Settings, sql_statements: StatementCounter) -> None:
    on(store, lambda e: register(e, "market system", [("n.graphql", NAMES)], OPERATOR, SCHEMA))

    async def look(engine: AsyncEngine) -> tuple[str | None, int]:
        reader = Reader(engine)
        await find(reader, "market system", "0" * 64)  # the reader's connection, once
        sql_statements.statements.clear()
        body = await find(reader, "market system", digest(NAMES))
        await reader.close()
        return body, len([s for s in sql_statements.statements if "trusted_document" in s])

    assert on(store, look) == (NAMES, 1)


def test_document_id_is_hashed_only_when_set() -> None:
    """Records written before 0012 hold no document_id: their hash is the hash they had."""
    written = {"seq": 1, "recorded_at": "2026-11-01T09:00:00.000000Z", "client": "client:1",
               "outcome": "ok", "prev_hash": "0" * 64, "written": None}  # fmt: skip
    assert record_hash({**written, "document_id": None}) == record_hash(written)
    assert record_hash({**written, "document_id": document_id(NAMES)}) != record_hash(written)
    assert record_hash({**written, "document_id": document_id(NAMES)}) != record_hash(
        {**written, "document_id": document_id(CODES)}
    )


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_migration_0012_keeps_earlier_records_hashes_and_goes_down_and_up(
    empty_database: Settings,
) -> None:
    settings = empty_database
    upgrade(settings)
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)

    async def before(engine: AsyncEngine) -> None:
        await create_client(engine, department="market", name="market system",
                            role=Role.DEPARTMENT)  # fmt: skip
        for minute in range(3):
            await AccessLog(engine).append(
                entry("client:1", None, start + timedelta(minutes=minute))
            )

    on(settings, before)
    command.downgrade(alembic_config(settings), "0011")
    # At 0011 the records hash as they were written: the column 0012 adds was never in them.
    rows = [dict(r._mapping) for r in sql(settings, "SELECT * FROM access_record ORDER BY seq")]
    assert "document_id" not in rows[0]
    assert all(record_hash(row) == row["hash"] for row in rows)
    assert "developer" not in dict(sql(settings, "SELECT * FROM client")[0]._mapping)
    tables = sql(settings, "SELECT count(*) FROM information_schema.tables WHERE table_name = "
                           "'trusted_document'" if "postgresql" in settings.database_url else
                           "SELECT count(*) FROM sqlite_master WHERE name = 'trusted_document'")  # fmt: skip
    assert tables[0][0] == 0

    upgrade(settings)
    assert sql(settings, "SELECT version_num FROM alembic_version")[0][0] == HEAD
    assert [tuple(r) for r in sql(settings, "SELECT name, developer FROM client")] == [
        ("market system", False)
    ]
    on(settings, lambda e: AccessLog(e).append(entry("client:1", document_id(NAMES), start)))
    result = on(settings, verify)
    assert (result.ok, result.records) == (True, 4)
    # The log stays append-only after the column was added in place (its triggers kept).
    with pytest.raises(DBAPIError, match="the access log is append-only"):
        sql(settings, "UPDATE access_record SET document_id = NULL WHERE seq = 4")


def test_a_developer_credential_reads_as_its_department(store: Settings) -> None:
    async def developer(engine: AsyncEngine) -> Any:
        new = await create_client(engine, department="market", name="market developer",
                                  role=Role.DEPARTMENT, developer=True)  # fmt: skip
        reader = Reader(engine)
        try:
            return await Authenticator(Settings()).authenticate(
                f"Bearer {new.token}", ClientLookup(reader)
            )
        finally:
            await reader.close()

    principal = on(store, developer)
    assert (principal.department, principal.role, principal.developer) == (
        "market",
        Role.DEPARTMENT,
        True,
    )
    with pytest.raises(BadUserInput, match="--developer goes with role department, not auditor"):
        on(store, lambda e: create_client(e, department="market", name="x", role=Role.AUDITOR,
                                          developer=True))  # fmt: skip


COLUMNS = {"COLUMNS": "250"}


def hub(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **COLUMNS, "HUB_DATABASE_URL": settings.database_url}
    return subprocess.run([HUB, *arguments], env=environment, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_the_installed_command_registers_lists_and_retires(store: Settings, tmp_path: Path) -> None:
    # A folder whose name Rich would read as markup, a file whose name holds an escape
    # sequence: shown as they are, never obeyed.
    folder = tmp_path / "market[/]docs"
    folder.mkdir(parents=True)  # "market[" holding "]docs"
    (folder / "names.graphql").write_text(NAMES, encoding="utf-8")
    (folder / "codes\x1b[2J[red].graphql").write_text(CODES, encoding="utf-8")
    (folder / "notes.txt").write_text("not a document", encoding="utf-8")
    done = hub(store, "documents", "register", str(folder), "--client", "market system")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert document_id(NAMES) in done.stdout
    assert "2 of 2 documents newly registered for market system" in " ".join(done.stderr.split())
    again = hub(store, "documents", "register", str(folder / "names.graphql"), "--client",
                "market system")  # fmt: skip
    assert "already registered" in again.stdout
    assert "0 of 1 documents newly registered" in " ".join(again.stderr.split())

    listed = hub(store, "documents", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "\x1b" not in listed.stdout  # and "[/]" in the folder's name did not fail it
    assert "2 documents" in listed.stderr
    rows = [json.loads(line) for line in
            hub(store, "documents", "list", "--json", "--client", "market system").stdout.splitlines()]  # fmt: skip
    assert sorted(r["id"] for r in rows) == sorted([document_id(NAMES), document_id(CODES)])
    assert all(r["registeredBy"].startswith("hub documents (") for r in rows)
    assert sorted(Path(r["source"]).name for r in rows) == ["codes\\x1b[2J[red].graphql",
                                                           "names.graphql"]  # fmt: skip
    assert all(Path(r["source"]).parent == folder for r in rows)

    retired = hub(store, "documents", "retire", document_id(NAMES), "--client", "market system")
    assert retired.returncode == 0, retired.stdout + retired.stderr
    gone = hub(store, "documents", "retire", document_id(NAMES), "--client", "market system")
    assert gone.returncode == 1
    assert "has no registered document" in gone.stderr
    bad = hub(store, "documents", "register", str(tmp_path / "missing.graphql"), "--client",
              "market system")  # fmt: skip
    assert (bad.returncode, "no such file or folder" in bad.stderr) == (1, True)
    empty = tmp_path / "empty"
    empty.mkdir()
    none = hub(store, "documents", "register", str(empty), "--client", "market system")
    assert (none.returncode, "the folder holds no .graphql file" in none.stderr) == (1, True)

    rows = [
        json.loads(line) for line in hub(store, "documents", "list", "--json").stdout.splitlines()
    ]
    assert [r["retiredAt"] is not None for r in rows if r["id"] == document_id(NAMES)] == [True]
    # Three writes (the refused ones wrote nothing), three access records, a whole chain.
    operations = sql(store, "SELECT operation_name FROM access_record ORDER BY seq")
    assert [r[0] for r in operations] == [
        "documents register", "documents register", "documents retire"
    ]  # fmt: skip
    verified = hub(store, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_installed_command_creates_and_lists_developer_credentials(store: Settings) -> None:
    made = hub(store, "clients", "create", "--department", "market", "--name", "market developer",
               "--developer")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "department, developer" in " ".join(made.stderr.split())
    assert sql(store, "SELECT developer FROM client WHERE name = 'market developer'")[0][0]
    refused = hub(store, "clients", "create", "--department", "market", "--name", "auditor",
                  "--role", "auditor", "--developer")  # fmt: skip
    assert refused.returncode == 1
    assert "--developer goes with role department, not auditor" in " ".join(refused.stderr.split())
    listed = hub(store, "clients", "list")
    line = next(line for line in listed.stdout.splitlines() if "market developer" in line)
    assert "yes" in line


def test_registrations_at_the_same_time_both_succeed(store: Settings) -> None:
    """Two operators registering the same documents at once: on PostgreSQL both read that
    the client has none, and the second insert met the first's unique key (an internal
    error) unless registrations take their turn."""
    documents = [(f"d{n}.graphql", f"query D{n} {{ departments {{ code }} }}") for n in range(8)]

    async def together(engine: AsyncEngine) -> list[bool]:
        other = create_engine(store)
        try:
            done = await asyncio.gather(*(
                register(target, "market system", documents, OPERATOR, SCHEMA)
                for target in (engine, other, engine, other)
            ))  # fmt: skip
        finally:
            await other.dispose()
        return [r.new for registered, _ in done for r in registered]

    news = on(store, together)
    assert news.count(True) == len(documents)  # each new once, then already registered
    assert sql(store, "SELECT count(*) FROM trusted_document")[0][0] == len(documents)
    assert on(store, verify).ok
