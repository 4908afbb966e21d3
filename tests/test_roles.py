"""Deployment roles on PostgreSQL: the owner migrates and grants; the hub serves as a role
that reads and appends to the access log and can do nothing else to it."""

import asyncio
import json
import logging
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url
from starlette.testclient import TestClient

from hub.app import create_app
from hub.audit import AccessLog, verify
from hub.db import create_engine
from hub.roles import excess_privileges
from hub.settings import Settings
from tests.conftest import HEAD, OTHER_TABLES, POSTGRES_URL, _admin, fresh_database
from tests.test_audit import entry, sql
from tests.test_serve import free_port, readyz, wait_for

HUB = str(Path(sys.executable).parent / "hub")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="set HUB_TEST_POSTGRES_URL to test on PostgreSQL"
)


@contextmanager
def a_role(options: str = "") -> Iterator[str]:
    """A new login role; dropped after the databases it was granted in (enter it first)."""
    assert POSTGRES_URL is not None
    name = f"hub_serve_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(POSTGRES_URL, f'CREATE ROLE "{name}" LOGIN {options}'))
    try:
        yield name
    finally:
        asyncio.run(_admin(POSTGRES_URL, f'DROP ROLE "{name}"'))


def as_role(owner: Settings, role: str) -> Settings:
    url = make_url(owner.database_url).set(username=role, password=None)
    return Settings(database_url=url.render_as_string(hide_password=False))


def hub(*arguments: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *arguments],
        env={**os.environ, "HUB_DATABASE_URL": settings.database_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def flat(output: str) -> str:
    return " ".join(output.split())


ATTACKS = [
    "UPDATE access_record SET outcome = 'ok'",
    "DELETE FROM access_record",
    "TRUNCATE access_record",
    "TRUNCATE enterprise CASCADE",
    "ALTER TABLE access_record DISABLE TRIGGER ALL",
    "DROP TRIGGER access_record_append_only ON access_record",
    "ALTER TABLE access_record OWNER TO CURRENT_USER",
    "DROP TABLE access_record",
    "CREATE TRIGGER forged BEFORE INSERT ON access_record FOR EACH ROW "
    "EXECUTE FUNCTION access_record_append_only()",
    "CREATE OR REPLACE FUNCTION access_record_append_only() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NULL; END $$",
    "UPDATE alembic_version SET version_num = '0001'",
]


async def refusals(serving: Settings) -> dict[str, str]:
    """Each attack, as the serving role, with the SQLSTATE it was refused with."""
    url = make_url(serving.database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    refused = {}
    try:
        for statement in ATTACKS:
            try:
                await connection.execute(statement)
            except asyncpg.PostgresError as error:
                refused[statement] = error.sqlstate
            else:
                refused[statement] = "done"
    finally:
        await connection.close()
    return refused


@pytest.mark.postgres
@needs_postgres
def test_the_serving_role_appends_and_reads_the_log_and_can_do_nothing_else_to_it(
    tmp_path: Path,
) -> None:
    with a_role() as role, fresh_database("postgres", tmp_path) as owner:
        assert hub("db", "upgrade", settings=owner).returncode == 0
        # A mistaken grant first: granting again narrows the role back.
        sql(owner, f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        sql(owner, f'GRANT CREATE ON SCHEMA public TO "{role}"')
        granted = hub("db", "upgrade", "--serving-role", role, settings=owner)
        assert granted.returncode == 0, granted.stderr
        assert flat(granted.stderr) == (
            f"database at revision {HEAD} {role} may now serve: read and append to access_record, "
            f"read alembic_version, read and write the {OTHER_TABLES} other tables; nothing else"
        )
        serving = as_role(owner, role)
        insufficient_privilege = "42501"
        assert asyncio.run(refusals(serving)) == dict.fromkeys(ATTACKS, insufficient_privilege)

        async def append_and_verify() -> tuple[int, bool, int]:
            engine = create_engine(serving)
            seq = await AccessLog(engine).append(entry(1))
            result = await verify(engine)
            await engine.dispose()
            return seq, result.ok, result.records

        assert asyncio.run(append_and_verify()) == (1, True, 1)

        async def excess() -> list[str]:
            engine = create_engine(owner)
            async with engine.connect() as connection:
                found = await excess_privileges(connection, role)
            await engine.dispose()
            return found

        assert asyncio.run(excess()) == []


READ = "{ enterprises(first: 5) { totalCount } }"
WRITE = """mutation { requestShare(owner: "ecology", fields: ["Penalty.amount"],
  purpose: "law-enforcement", purposeDetail: "核查", legalBasis: "《行政处罚法》第二十六条",
  wantedFrom: "2026-12-01", wantedUntil: "2027-11-30") { id status } }"""


def ask(port: int, token: str, query: str) -> object:
    with urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        ),
        timeout=10,
    ) as response:
        assert response.status == 200
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


@pytest.mark.postgres
@needs_postgres
def test_the_hub_serves_as_the_serving_role_and_records_every_request(tmp_path: Path) -> None:
    with a_role() as role, fresh_database("postgres", tmp_path) as owner:
        assert hub("db", "upgrade", "--serving-role", role, settings=owner).returncode == 0
        assert hub("demo", "load", "--enterprises", "5", settings=owner).returncode == 0
        created = hub("clients", "create", "--department", "market", "--name", "m", settings=owner)
        token = created.stdout.strip()
        serving = as_role(owner, role)
        port = free_port()
        process = subprocess.Popen(
            [HUB, "serve", "--port", str(port)],
            env={**os.environ, "HUB_DATABASE_URL": serving.database_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(lambda: readyz(port)["status"] == "ready")
            (before,) = sql(owner, "SELECT count(*) FROM access_record")[0]
            answers = [ask(port, token, READ), ask(port, token, WRITE)]
            (after,) = sql(owner, "SELECT count(*) FROM access_record")[0]
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=10)
        assert answers == [
            {"enterprises": {"totalCount": 5}},
            {"requestShare": {"id": "2", "status": "PENDING"}},  # the demo holds request 1
        ]
        assert after == before + 2
        records = sql(owner, "SELECT department, outcome FROM access_record ORDER BY seq")
        assert [tuple(record) for record in records[-2:]] == [("market", "ok")] * 2
        assert "see README, PostgreSQL" not in output  # no warning: it cannot rewrite the log


@pytest.mark.postgres
@needs_postgres
def test_serving_as_the_owner_is_warned_about_once_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_database("postgres", tmp_path) as owner:
        assert hub("db", "upgrade", settings=owner).returncode == 0
        with caplog.at_level(logging.WARNING, logger="hub"), TestClient(create_app(owner)) as app:
            assert app.get("/readyz").status_code == 200
            assert app.get("/readyz").status_code == 200
    user = make_url(owner.database_url).username
    assert [r.getMessage() for r in caplog.records if r.name == "hub"] == [
        f"serving as the owner of the access log ({user}), which can disable its triggers: "
        "see README, PostgreSQL"
    ]


@pytest.mark.postgres
@needs_postgres
def test_roles_that_could_still_rewrite_the_log_are_refused_and_nothing_is_granted(
    tmp_path: Path,
) -> None:
    with (
        a_role() as role,
        a_role("SUPERUSER") as superuser,
        fresh_database("postgres", tmp_path) as owner,
    ):
        refused = hub("db", "upgrade", "--serving-role", superuser, settings=owner)
        assert (refused.returncode, flat(refused.stderr)) == (
            1,
            f"database at revision {HEAD} '{superuser}' is a superuser, so it could alter the "
            "access log whatever it is granted: serve with an ordinary LOGIN role",
        )
        missing = hub("db", "upgrade", "--serving-role", "hub_nobody_here", settings=owner)
        assert (missing.returncode, flat(missing.stderr)) == (
            1,
            f"database at revision {HEAD} there is no role 'hub_nobody_here' on this server: create "
            "it first, e.g. CREATE ROLE hub_nobody_here LOGIN PASSWORD '...'",
        )
        sql(owner, "GRANT UPDATE, TRUNCATE ON access_record TO PUBLIC")
        public = hub("db", "upgrade", "--serving-role", role, settings=owner)
        assert (public.returncode, flat(public.stderr)) == (
            1,
            f"database at revision {HEAD} '{role}' would still hold UPDATE on access_record, "
            "TRUNCATE on access_record, through PUBLIC, a role it belongs to or another role's "
            "grant: revoke those (or remove it from that role) and grant again",
        )
        (reads,) = sql(owner, f"SELECT has_table_privilege('{role}', 'client', 'SELECT')")[0]
        assert reads is False  # the refused grant was rolled back whole


def test_sqlite_has_no_roles(tmp_path: Path) -> None:
    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    refused = hub("db", "upgrade", "--serving-role", "hub_serve", settings=database)
    assert (refused.returncode, flat(refused.stderr)) == (
        1,
        "SQLite has no roles: whoever can write the database file can change it; serving roles "
        "are for PostgreSQL (see README, PostgreSQL)",
    )
    assert not (tmp_path / "hub.db").exists()  # refused before migrating
