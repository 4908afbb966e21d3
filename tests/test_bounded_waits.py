"""Every wait ends: a statement past its timeout is stopped, a lock is waited for only so long,
and only so many requests wait for a database connection. Past any of them the installed
`hub serve` answers 503 SERVICE_UNAVAILABLE with Retry-After, says the operator's condition
in one log line (never "please report it", never a traceback), reports not ready while the
access log cannot be written, and serves again once the condition is gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.db import DatabaseBusy, condition, create_engine, upgrade
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database
from tests.test_serve import demo_with_clients, serving

QUERY = {"query": "{ enterprises(first: 2) { edges { node { uscc name } } } }"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_statement_past_its_timeout_is_stopped(backend: str, tmp_path: Path) -> None:
    slow = {
        "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
        "SELECT count(*) FROM n",  # never ends by itself
        "postgres": "SELECT pg_sleep(30)",
    }[backend]

    async def run(settings: Settings) -> BaseException:
        engine = create_engine(replace(settings, statement_timeout_seconds=0.3))
        try:
            async with engine.connect() as connection:
                with pytest.raises(DBAPIError) as stopped:
                    await connection.execute(text(slow))
                # The connection is usable after: the next statement runs.
                await connection.rollback()
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
            return stopped.value
        finally:
            await engine.dispose()

    with fresh_database(backend, tmp_path) as settings:
        error = asyncio.run(run(settings))
    assert condition(error) == "a statement ran past HUB_STATEMENT_TIMEOUT_SECONDS"


def test_only_so_many_requests_wait_for_a_connection(tmp_path: Path) -> None:
    """With every pooled connection in use, the first request past the bound is refused at
    once (DatabaseBusy: a 503), while those within it wait their turn."""

    async def run() -> None:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/pool.db")
        engine = create_engine(replace(settings, database_waiting=1, lock_timeout_seconds=30))
        held = [await engine.connect() for _ in range(engine.pool.size() * 2)]  # 20 + 20
        for connection in held:
            await connection.execute(text("SELECT 1"))

        async def connect() -> Any:
            return await engine.connect()

        waiting = asyncio.create_task(connect())
        await asyncio.sleep(0.1)
        assert not waiting.done()  # within the bound: waits
        with pytest.raises(DatabaseBusy) as refused:
            await engine.connect()
        assert "HUB_DATABASE_WAITING=1" in str(refused.value)
        assert condition(refused.value) == "the database is busy"
        await held.pop().close()
        await (await waiting).close()  # its turn came
        for connection in held:
            await connection.close()
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {
            **os.environ,
            "HUB_DATABASE_URL": settings.database_url,
            "HUB_LOCK_TIMEOUT_SECONDS": "1",
        }
        yield {"backend": request.param, "settings": settings, "tokens": tokens,
               "environment": environment}  # fmt: skip


class Holder:
    """Holds the access log locked from another connection, as an operator or a stuck job
    would: LOCK TABLE on PostgreSQL, the file's write lock on SQLite."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = settings.database_url.startswith("postgresql")

    def __enter__(self) -> Holder:
        if self.postgres:
            url = self.settings.database_url.replace("postgresql+asyncpg", "postgresql")
            self.session = subprocess.Popen(  # psql holds the lock until its input ends
                ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-t", "-A"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            assert self.session.stdin is not None
            self.session.stdin.write("BEGIN; LOCK TABLE access_record; SELECT 'locked';\n")
            self.session.stdin.flush()
            assert self.session.stdout is not None
            assert "locked" in self.session.stdout.readline()
        else:
            path = self.settings.sqlite_path()
            assert path is not None
            self.connection = sqlite3.connect(path, isolation_level=None)
            self.connection.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *_: object) -> None:
        if self.postgres:
            assert self.session.stdin is not None
            self.session.stdin.write("ROLLBACK;\n")
            self.session.stdin.close()
            self.session.wait(timeout=10)
        else:
            self.connection.execute("ROLLBACK")
            self.connection.close()


def until_served(http: httpx2.Client, headers: dict[str, str]) -> httpx2.Response:
    deadline = time.monotonic() + 20
    while (answer := http.post("/graphql", json=QUERY, headers=headers)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    return answer


def refused_for_now(answer: httpx2.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert "data" not in answer.json()
    (error,) = answer.json()["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "retryAfter": 5}


def test_a_locked_access_log_is_503_after_the_lock_timeout_and_not_ready(
    served: dict[str, Any],
) -> None:
    headers = {"Authorization": f"Bearer {served['tokens']['market']}"}
    with (
        serving(served["environment"]) as (process, port),
        httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        assert http.post("/graphql", json=QUERY, headers=headers).status_code == 200
        with Holder(served["settings"]):
            for _ in range(2):
                refused_for_now(http.post("/graphql", json=QUERY, headers=headers))
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert "lock" in ready.json()["access_log"]
        answer = until_served(http, headers)
        assert len(answer.json()["data"]["enterprises"]["edges"]) == 2
        deadline = time.monotonic() + 20
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        process.terminate()
        log = process.communicate(timeout=10)[0]
    said = [line for line in log.splitlines() if "database unavailable at access log" in line]
    assert said, log
    assert "HUB_LOCK_TIMEOUT_SECONDS" in said[0]
    assert "Traceback" not in log
    assert "please report it" not in log


def test_a_full_disk_is_503_and_not_ready_until_there_is_room(tmp_path: Path) -> None:
    """SQLite on a small filesystem of its own, filled up while the hub serves."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        url = f"sqlite+aiosqlite:///{disk}/hub.db"
        upgrade(Settings(database_url=url))
        tokens = asyncio.run(demo_with_clients(url))
        headers = {"Authorization": f"Bearer {tokens['market']}"}
        with (
            serving({**os.environ, "HUB_DATABASE_URL": url}) as (process, port),
            httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):
            assert http.post("/graphql", json=QUERY, headers=headers).status_code == 200
            filler = disk / "filler"
            with filler.open("wb") as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * (1 << 16))
                    out.flush()
            for _ in range(3):
                refused_for_now(http.post("/graphql", json=QUERY, headers=headers))
            ready = http.get("/readyz")
            assert (ready.status_code, ready.json().get("access_log")) == (503, "the disk is full")
            filler.unlink()
            until_served(http, headers)
            assert http.get("/readyz").status_code == 200
            process.terminate()
            log = process.communicate(timeout=10)[0]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    said = [line for line in log.splitlines() if "database unavailable at" in line]
    assert said, log
    assert all("the disk is full" in line for line in said), said
    assert "Traceback" not in log
    assert "please report it" not in log
