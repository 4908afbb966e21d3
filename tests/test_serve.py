"""`hub serve` as a process: refuses unsound policies, reloads them on SIGHUP, holds each
client to its limits while serving the others."""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import text

from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import Role
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import BACKENDS, HEAD

HUB = str(Path(sys.executable).parent / "hub")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    database_url = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    upgrade(Settings(database_url=database_url))
    return {**os.environ, "HUB_DATABASE_URL": database_url, "HUB_POLICY_DIR": str(policies)}


def readyz(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
        answer: dict[str, str] = json.load(response)
        return answer


def wait_for(check: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the hub did not get there in time")


@contextmanager
def serving(
    environment: dict[str, str], *options: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port), *options],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: readyz(port)["status"] == "ready")
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def server(environment: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    with serving(environment) as (process, port):
        yield process, port, Path(environment["HUB_POLICY_DIR"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_drains_and_exits_0(environment: dict[str, str], workers: str) -> None:
    """Stopping when asked is a clean exit for systemd and Kubernetes, not 143."""
    with serving(environment, "--workers", workers) as (process, port):
        assert readyz(port)["status"] == "ready"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "Traceback" not in output


def test_sighup_reloads_sound_policies_and_keeps_serving_on_unsound_ones(
    server: tuple[subprocess.Popen[str], int, Path],
) -> None:
    process, port, policies = server
    first = readyz(port)["policy_version"]
    with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("p, fire, ecology, inspection-findings, read, allow\n")
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: readyz(port)["policy_version"] != first)
    second = readyz(port)["policy_version"]

    with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("p, fire, mars, inspection-findings, read, allow\n")
    process.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert readyz(port) == {"status": "ready", "revision": HEAD, "policy_version": second}
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert f"policy version {second} replaces {first}" in output
    assert "policy reload refused; still serving version " + second in output
    assert "unknown owner 'mars'" in output


def test_the_log_holds_the_hubs_own_lines_not_libraries_chatter(
    server: tuple[subprocess.Popen[str], int, Path],
) -> None:
    """Decisions are in the access log; the server log is not flooded with Casbin's view of
    each (denials as warnings), its model at each reload, or alembic's context per /readyz."""
    process, port, _ = server
    for _ in range(3):
        readyz(port)
    refused = httpx2.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"})
    assert refused.status_code == 401  # no token: refused, and recorded
    forged = "X\nERROR:     [hub.graphql] forged\x1b[2J"
    httpx2.post(f"http://127.0.0.1:{port}/graphql",
                json={"query": "query X { __typename }", "operationName": forged})  # fmt: skip
    process.send_signal(signal.SIGHUP)
    time.sleep(1)
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert "policy files reloaded: version" in output
    for chatter in ("[casbin", "Context impl", "Will assume"):
        assert chatter not in output
    # What a caller sends reaches the log escaped: it forges no line, moves no cursor.
    assert not any(
        line.startswith("ERROR:     [hub.graphql] forged") for line in output.splitlines()
    )
    assert "\x1b" not in output
    # One line per GraphQL request: what, by whom, how it ended, how long, its trace.
    trace = refused.json()["extensions"]["traceId"]
    (line, _) = [line for line in output.splitlines() if "[hub.requests]" in line]
    assert re.fullmatch(
        rf"INFO: +\[hub.requests\] query - by -: denied 401 in [0-9.]+ ms trace {trace}", line
    ), line


def test_the_log_as_json_lines(environment: dict[str, str]) -> None:
    """For a log collector: every line of the server log a JSON object, uvicorn's too."""
    with serving(environment, "--log-format", "json") as (process, port):
        answer = httpx2.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ x }"})
        process.terminate()
        output, _ = process.communicate(timeout=10)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == len([line for line in output.splitlines() if line.strip()]), output
    (request,) = [line for line in lines if line["logger"] == "hub.requests"]
    assert request | {"time": None, "duration_ms": None} == {
        "time": None, "level": "INFO", "logger": "hub.requests",
        "message": request["message"], "trace_id": answer.json()["extensions"]["traceId"],
        "department": None, "client": None, "operation_type": "query", "operation_name": None,
        "outcome": "denied", "status": 401, "duration_ms": None,
    }  # fmt: skip
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    bad = subprocess.run([HUB, "serve", "--log-format", "xml"], env=environment,
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "text or json, not 'xml'" in bad.stderr


def test_serve_refuses_unsound_policies_naming_file_and_line(environment: dict[str, str]) -> None:
    policy_csv = Path(environment["HUB_POLICY_DIR"]) / "policy.csv"
    lines = policy_csv.read_text(encoding="utf-8").splitlines()
    index = lines.index("g, fire, safety-inspectors")
    lines[index] = "g, fyre, safety-inspectors"
    policy_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [HUB, "serve", "--port", str(free_port())],
        env={**environment, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{policy_csv}:{index + 1}: unknown department 'fyre'" in result.stderr
    assert "the hub does not start with unsound policies" in result.stderr


async def demo_with_clients(database_url: str) -> dict[str, str]:
    engine = create_engine(Settings(database_url=database_url))
    await load_demo(engine, enterprises=30, seed=3)
    tokens = {}
    for department in ("market", "ecology"):
        new = await create_client(
            engine, department=department, name=department, role=Role.DEPARTMENT
        )
        tokens[department] = new.token
    await engine.dispose()
    return tokens


async def access_records(database_url: str) -> list[dict[str, Any]]:
    engine = create_engine(Settings(database_url=database_url))
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT client, outcome FROM access_record ORDER BY seq")
        )
        records = [dict(row._mapping) for row in rows]
    await engine.dispose()
    return records


# 1 + 1 + 30 × (node, uscc, name, 8 inspections of 3 fields, 2 penalties of 2 fields) = 992
HEAVY = """{ enterprises(first: 30) { edges { node { uscc name
  inspections { id kind result } penalties { id amount } } } } }"""


def test_one_client_over_its_limits_is_refused_while_another_is_served(
    environment: dict[str, str],
) -> None:
    url = environment["HUB_DATABASE_URL"]
    tokens = asyncio.run(demo_with_clients(url))
    limits = {
        "HUB_QUERY_COST_BUDGET": "2000",
        "HUB_CLIENT_COST_BURST": "2000",  # two heavy requests, then one unit a second
        "HUB_CLIENT_COST_PER_SECOND": "1",
        "HUB_CLIENT_CONCURRENCY": "4",
    }

    async def load(port: int) -> tuple[list[httpx2.Response], list[httpx2.Response], Any]:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def ask(token: str, query: str) -> httpx2.Response:
                headers = {"Authorization": f"Bearer {token}"}
                return await http.post("/graphql", json={"query": query}, headers=headers)

            async def others() -> list[httpx2.Response]:
                return [await ask(tokens["ecology"], "{ departments { code } }") for _ in range(10)]

            heavy, light = await asyncio.gather(
                asyncio.gather(*(ask(tokens["market"], HEAVY) for _ in range(8))), others()
            )
            over = await ask(tokens["ecology"], HEAVY.replace("first: 30", "first: 100"))
            return list(heavy), light, over

    with serving({**environment, **limits}) as (_, port):
        heavy, light, over = asyncio.run(load(port))

    assert [response.status_code for response in light] == [200] * 10
    assert all(len(response.json()["data"]["departments"]) == 10 for response in light)
    assert sorted(response.status_code for response in heavy) == [200] * 2 + [429] * 6
    for response in heavy:
        if response.status_code == 429:
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["limit"] == "HUB_CLIENT_COST_PER_SECOND"
            # 992 needed and less than a hundred left, at one a second.
            assert 900 <= int(response.headers["retry-after"]) <= 992
            assert error["extensions"]["retryAfter"] == int(response.headers["retry-after"])
        else:
            assert len(response.json()["data"]["enterprises"]["edges"]) == 30
    assert over.status_code == 200
    assert over.json()["errors"] == [
        {
            "message": "this request would resolve about 3,302 fields (its cost), more than the "
            "2,000 one request may: ask for fewer enterprises per page (first) or fewer fields, "
            "and fetch the rest with further requests",
            "extensions": {"code": "QUERY_TOO_COMPLEX", "cost": 3302, "budget": 2000},
        }
    ]
    records = asyncio.run(access_records(url))
    assert len(records) == 8 + 10 + 1  # every answer, refused ones too
    market, ecology = sorted({r["client"] for r in records})  # client:1, client:2
    outcomes = sorted(r["outcome"] for r in records if r["client"] == market)
    assert outcomes == ["denied"] * 6 + ["partial"] * 2  # some fields of those are withheld
    assert [r["outcome"] for r in records if r["client"] == ecology][-1] == "error"


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_workers_share_one_chain_and_every_worker_sees_revocation_and_reloads(
    empty_database: Settings, tmp_path: Path
) -> None:
    """`hub serve --workers 2`: every answer recorded in one intact chain; a revoked token
    refused by every worker at its next request; SIGHUP reloads the policy files in every
    worker, and unsound files leave each serving the policy it has."""
    url = empty_database.database_url
    upgrade(empty_database)
    tokens = asyncio.run(demo_with_clients(url))
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    environment = {**os.environ, "HUB_DATABASE_URL": url, "HUB_POLICY_DIR": str(policies)}

    async def ask(port: int, token: str, count: int) -> list[int]:
        # A connection per request: the kernel hands each to either worker. Four at a time,
        # within a client's concurrency.
        turns = asyncio.Semaphore(4)

        async def one() -> int:
            async with turns, httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                response = await http.post(
                    "/graphql",
                    json={"query": "{ departments { code } }"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                return response.status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))

    def versions(port: int) -> set[str]:
        return {readyz(port)["policy_version"] for _ in range(12)}

    with serving(environment, "--workers", "2") as (process, port):
        assert asyncio.run(ask(port, tokens["market"], 120)) == [200] * 120
        cli = subprocess.run(
            [HUB, "clients", "revoke", "1"], env=environment, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        assert "client 1 (market) revoked" in cli.stderr
        assert asyncio.run(ask(port, tokens["market"], 24)) == [401] * 24
        assert asyncio.run(ask(port, tokens["ecology"], 24)) == [200] * 24

        (first,) = versions(port)
        with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
            policy_csv.write("p, fire, ecology, inspection-findings, read, allow\n")
        process.send_signal(signal.SIGHUP)
        # Every worker reloaded: each answer names the new version.
        wait_for(lambda: len(now := versions(port)) == 1 and first not in now, seconds=60)
        (second,) = versions(port)
        with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
            policy_csv.write("p, fire, mars, inspection-findings, read, allow\n")
        process.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert versions(port) == {second}
        assert asyncio.run(ask(port, tokens["ecology"], 12)) == [200] * 12

    records = asyncio.run(access_records(url))
    assert len(records) == 120 + 24 + 24 + 12
    verify = subprocess.run(
        [HUB, "audit", "verify"], env=environment, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has ended


def test_a_second_hub_on_the_address_is_refused_and_workers_end_with_their_supervisor(
    environment: dict[str, str],
) -> None:
    """Workers' sockets let any process of the user join their port: a second
    `hub serve --workers` there is refused rather than sharing its connections; and workers
    whose supervisor is killed end rather than serve on unsupervised."""
    with serving(environment, "--workers", "2") as (process, port):
        second = subprocess.run(
            [HUB, "serve", "--port", str(port), "--workers", "2"],
            env={**environment, "COLUMNS": "200"}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"another `hub serve --workers` serves on 127.0.0.1:{port}" in second.stderr
        workers = [pid for pid in children(process.pid) if running(pid)]
        assert len(workers) >= 2  # and multiprocessing's resource tracker, perhaps
        process.kill()
        process.wait(timeout=10)
        wait_for(lambda: not any(running(pid) for pid in workers), seconds=15)
