"""Shared fixtures: real databases (SQLite always, PostgreSQL when HUB_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from hub import models
from hub.app import create_app
from hub.clients import create_client
from hub.db import create_engine, head_revision, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, Role
from hub.settings import DEFAULT_POLICY_DIR, Settings

POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL")
# The revision `hub db upgrade` migrates to, as messages name it.
HEAD = head_revision(Settings())
# Tables the serving role reads and writes (all but the access log, which it only appends to).
OTHER_TABLES = len(models.Base.metadata.tables) - 1

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL, reason="set HUB_TEST_POSTGRES_URL to test on PostgreSQL"
            ),
        ],
    ),
]
DEMO_ENTERPRISES = 300  # the size `hub serve --demo` loads, so README examples hold
DEMO_SEED = 7
# Per-second rate limits measure time: the shared test hubs lift them, so that no test's
# outcome depends on how fast the machine answers (the RATE_LIMITED tests set their own).
UNTHROTTLED: dict[str, Any] = {"client_cost_per_second": 10**9, "client_cost_burst": 10**9}


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(statement)
    await engine.dispose()


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[Settings]:
    """An empty database of its own: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        path = directory / f"hub-{uuid.uuid4().hex[:8]}.db"
        yield Settings(database_url=f"sqlite+aiosqlite:///{path}")
        return
    assert POSTGRES_URL is not None
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(POSTGRES_URL).set(database=name)
        yield Settings(database_url=url.render_as_string(hide_password=False))
    finally:
        asyncio.run(_admin(POSTGRES_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Parametrize with ``indirect=True`` over BACKENDS."""
    with fresh_database(request.param, tmp_path) as settings:
        yield settings


@pytest.fixture(scope="session", params=BACKENDS)
def demo_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A migrated database with demo dossiers, shared by read-only tests."""
    with fresh_database(request.param, tmp_path_factory.mktemp("demo")) as settings:
        upgrade(settings)

        async def load() -> None:
            engine = create_engine(settings)
            await load_demo(engine, enterprises=DEMO_ENTERPRISES, seed=DEMO_SEED)
            await engine.dispose()

        asyncio.run(load())
        yield settings


@pytest.fixture(scope="session")
def tokens(demo_database: Settings) -> dict[str, str]:
    """A bearer token for each department's system, and for an auditor and an admin."""

    async def create() -> dict[str, str]:
        engine = create_engine(demo_database)
        created = {}
        for department in DEPARTMENTS:
            new = await create_client(
                engine,
                department=department.code,
                name=f"{department.name_en} system",
                role=Role.DEPARTMENT,
            )
            created[department.code] = new.token
        for role in (Role.AUDITOR, Role.ADMIN):
            new = await create_client(engine, department="market", name=role, role=role)
            created[role.value] = new.token
        await engine.dispose()
        return created

    return asyncio.run(create())


@pytest.fixture(scope="session")
def open_policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Policies under which every department reads everything: for tests of the data layer."""
    directory = tmp_path_factory.mktemp("open-policies")
    for name in ("model.conf", "colours.csv", "inspection-limits.csv"):
        (directory / name).write_text((DEFAULT_POLICY_DIR / name).read_text())
    catalog = (DEFAULT_POLICY_DIR / "catalog.csv").read_text().splitlines()
    (directory / "catalog.csv").write_text(
        "\n".join(
            [catalog[0]]
            + [
                line.replace(",conditional,", ",unconditional,").replace(
                    ",none,", ",unconditional,"
                )
                for line in catalog[1:]
            ]
        )
    )
    (directory / "policy.csv").write_text("p, department, *, *, read, allow\n")
    return directory


@pytest.fixture(scope="session")
def client(
    demo_database: Settings, open_policies: Path, tokens: dict[str, str]
) -> Iterator[TestClient]:
    """The hub under open policies, calling as market regulation's system."""
    settings = Settings(
        database_url=demo_database.database_url, policy_dir=open_policies, **UNTHROTTLED
    )
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    with TestClient(create_app(settings), headers=headers) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def hub(demo_database: Settings, tokens: dict[str, str]) -> Iterator[TestClient]:
    """The hub under the real policies in policies/, with no credentials of its own."""
    with TestClient(create_app(replace(demo_database, **UNTHROTTLED))) as test_client:
        yield test_client


def graphql(
    client: TestClient,
    query: str,
    token: str | None = None,
    purpose: str | None = None,
    **variables: Any,
) -> dict[str, Any]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if purpose is not None:  # header values are Latin-1: the hub takes UTF-8 percent-encoded
        headers["X-Hub-Purpose"] = quote(purpose)
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return without_trace(response.json())


def without_trace(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer without its extensions, after checking they carry a trace id."""
    extensions = answer.pop("extensions")
    assert set(extensions) == {"traceId"}
    assert re.fullmatch("[0-9a-f]{32}", extensions["traceId"])
    assert extensions["traceId"] != "0" * 32
    return answer


class StatementCounter:
    """The queries sent; SQLite's BEGIN (transaction control, sent by the hub itself there
    and by the driver on PostgreSQL) is not one."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            self.statements.append(statement)

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def sql_statements() -> Iterator[StatementCounter]:
    """Every SQL statement any engine sends while the test runs."""
    counter = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counter)
    yield counter
    event.remove(Engine, "before_cursor_execute", counter)


class Hub:
    """A hub with demo data of its own, which these tests change."""

    def __init__(self, client: TestClient, settings: Settings, tokens: dict[str, str]) -> None:
        self.client, self.settings, self.tokens = client, settings, tokens

    def ask(
        self, department: str, query: str, purpose: str | None = None, **variables: Any
    ) -> dict[str, Any]:
        return graphql(self.client, query, self.tokens[department], purpose, **variables)

    def sql(self, statement: str, **parameters: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = create_engine(self.settings)
            async with engine.connect() as connection:
                rows = (await connection.execute(text(statement), parameters)).all()
            await engine.dispose()
            return list(rows)

        return asyncio.run(run())


@pytest.fixture(params=BACKENDS)
def writable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hub]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)

        async def prepare() -> dict[str, str]:
            engine = create_engine(settings)
            await load_demo(engine, enterprises=60, seed=11)
            tokens = {}
            for department in DEPARTMENTS:
                tokens[department.code] = (
                    await create_client(
                        engine, department=department.code, name=f"{department.code} system",
                        role=Role.DEPARTMENT,
                    )
                ).token  # fmt: skip
            tokens["auditor"] = (
                await create_client(engine, department="market", name="audit", role=Role.AUDITOR)
            ).token
            await engine.dispose()
            return tokens

        tokens = asyncio.run(prepare())
        with TestClient(create_app(settings)) as client:
            yield Hub(client, settings, tokens)


def pin_today(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """Hold the hub's day (in China) at ``day``: tests that computed their expectations from
    today at import must not see the day change at midnight in China halfway through a run."""
    for name in ("hub.grants", "hub.sharing", "hub.schema.sharing", "hub.schema.access",
                 "hub.cli.share"):  # fmt: skip
        monkeypatch.setattr(importlib.import_module(name), "today", lambda: day)
