"""The hub as users run it, for benchmarks: `hub serve` processes on free ports, driven
over raw HTTP/1.1 by clients in the benchmark's own event loop (no client library's cost in
the figures), and the CPU time they spend."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.settings import Settings

__all__ = [
    "answer",
    "closed_loop",
    "cpu_seconds",
    "exchange",
    "flood",
    "fresh_postgres",
    "machine_ticks",
    "ok",
    "one",
    "open_loop",
    "request",
    "serve",
    "wait_ready",
]


def request(method: str, path: str, headers: str, body: str) -> bytes:
    data = body.encode()
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def wait_ready(port: int, probe: bytes | None = None) -> None:
    """Until the server on ``port`` answers ``probe`` (the hub's /readyz by default)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            await one(port, probe or request("GET", "/readyz", "", ""))
            return
        except (OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not start")


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """The status of the answer to ``request``, read whole."""
    status, _ = await answer(reader, writer, request)
    return status


async def answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """The status and body of the answer to ``request``."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    body = await reader.readexactly(int(match.group(1)) if match else 0)
    return int(head.split()[1]), body


def ok(status: int) -> None:
    if status != 200:  # e.g. 429: a limit measured instead of the hub
        raise SystemExit(f"unexpected answer: HTTP {status}")


async def one(port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await exchange(reader, writer, request)
    finally:
        writer.close()


async def closed_loop(port: int, request: bytes, seconds: float, connections: int = 8) -> float:
    """Requests per second with ``connections`` clients each sending as fast as answered."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            ok(await exchange(reader, writer, request))
            done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return done / (time.perf_counter() - started)


async def open_loop(
    port: int, request: bytes, rate: float, seconds: float, connections: int = 16
) -> list[float]:
    """Latencies at a fixed offered rate, measured from each request's scheduled time."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.1
    slots = iter(range(total))
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for slot in slots:
            scheduled = start + slot / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ok(await exchange(reader, writer, request))
            latencies.append(time.perf_counter() - scheduled)
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies


async def serve(settings: Settings, *options: str) -> tuple[asyncio.subprocess.Process, int]:
    """`hub serve` on a free port of 127.0.0.1 with ``settings`` (and command-line
    ``options``), once it is ready."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    environment = {
        **os.environ,
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_POLICY_DIR": str(settings.policy_dir),
        "HUB_CLIENT_COST_PER_SECOND": str(settings.client_cost_per_second),
        "HUB_CLIENT_COST_BURST": str(settings.client_cost_burst),
        "HUB_COST_IN_FLIGHT": str(settings.cost_in_flight),
    }
    server = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "hub"), "serve", "--port", str(port), *options,
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await wait_ready(port)
    return server, port


async def flood(port: int, request: bytes, seconds: float, connections: int) -> Counter[int]:
    """Statuses of ``request`` sent back to back from ``connections``, as a flooder would:
    without waiting for Retry-After."""
    deadline = time.perf_counter() + seconds
    statuses: Counter[int] = Counter()

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            statuses[await exchange(reader, writer, request)] += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return statuses


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` and its children (a server's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


@asynccontextmanager
async def fresh_postgres(server: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new database on the PostgreSQL ``server``, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.dispose()
