"""Compiled reads (hub/compiled/): the dossier against P and against strawberry's resolvers,
where a compiled dossier request spends its time, and the proof of sameness over thousands
of generated documents.

    .venv/bin/python -m bench.compiled --documents 2000 --write

1. The 100-enterprise dossier in-process (authorization, audit and tracing on, as bench.run
   measures it), interleaved: the hub with compiled reads, the same hub with
   ``compiled_reads=False``, and P (raw sqlite3 + json.dumps).
2. Where a compiled dossier request's wall time goes: each phase timed around its own call.
3. Sameness (tests/adversary/sameness.py): the test suite's handwritten documents and
   ``--documents`` generated from the read schema, as every department with and without
   purposes (the demo's grant opens conditional fields for one), answered by a hub with
   compiled reads and one without over the same SQLite database: answers, errors and access
   records compared.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.testclient import TestClient

import hub.compiled.run as compiled_run
from bench.limit import DOSSIER, dossier_json
from bench.report import write_section
from bench.run import Nowhere, endpoint, interleaved, machine, open_policies, poster, prepare
from hub.app import create_app
from hub.audit import AccessLog
from hub.auth import Authenticator
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, Role
from hub.graphql_http import Answer, GraphQLEndpoint
from hub.metrics import EXECUTIONS
from hub.schema import Access, reader
from hub.settings import Settings
from tests.adversary.sameness import Sameness
from tests.test_compiled import rich_usccs, send_generated, send_handwritten

SECTION = "## Compiled reads"


async def timing(directory: Path, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of the dossier three ways; and the phases of a compiled request."""
    settings, token = await prepare(
        f"sqlite+aiosqlite:///{directory}/timing.db", 1000, open_policies(directory)
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    tracer = provider.get_tracer("hub")
    compiled = endpoint(settings, audited=True, tracer=tracer, traced_sql=True)
    off = replace(settings, compiled_reads=False)
    interpreted = endpoint(off, audited=True, tracer=tracer, traced_sql=True)
    database = sqlite3.connect(f"{directory}/timing.db")

    async def limit() -> None:
        dossier_json(database)

    medians = await interleaved(
        {
            "compiled": poster(compiled, token, DOSSIER),
            "strawberry": poster(interpreted, token, DOSSIER),
            "P": limit,
        },
        rounds,
    )
    with phases() as (spent, done):
        post = poster(compiled, token, DOSSIER)
        for _ in range(rounds * 2):
            started = time.perf_counter()
            await post()
            done(time.perf_counter() - started)
    for client in (compiled, interpreted):
        await client.aclose()
    provider.shutdown()
    return medians, {name: statistics.median(times) for name, times in spent.items()}


# The phases of a compiled dossier request, each timed around its own calls; "of which"
# phases run inside the phase above them.
PHASES: list[tuple[Any, str, str]] = [
    (Authenticator, "authenticate", "reading the caller (its credential: 1 statement)"),
    (GraphQLEndpoint, "admit", "pricing and admitting the request"),
    (compiled_run._Run, "load", "loading every level (11 statements)"),
    # Under the reader's turn, so one at a time; the rows of one are admitted while the next
    # runs (run._together), so these two overlap.
    (reader, "fetch", "of which the statements on the driver (with the caller's), one at a time"),
    (Access, "admit", "of which deciding and recording each record (Access.admit)"),
    (compiled_run._Run, "data", "assembling the answer (generated functions)"),
    (AccessLog, "append", "appending the access record (group commit, durable)"),
    (Answer, "render", "encoding the answer's JSON (orjson)"),
]
OF_WHICH = "of which "


@contextmanager
def phases() -> Iterator[tuple[defaultdict[str, list[float]], Callable[[float], None]]]:
    """Each phase of a request timed around its own calls; ``done(total)`` after each
    request files its phases and its whole time."""
    spent: defaultdict[str, list[float]] = defaultdict(list)
    current: defaultdict[str, float] = defaultdict(float)
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def add(started: float) -> None:
            current[label] += time.perf_counter() - started

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                add(started)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(started)

        patched.append((owner, name, original))
        setattr(owner, name, timed_async if inspect.iscoroutinefunction(original) else timed)

    def done(total: float) -> None:
        for label, seconds in current.items():
            spent[label].append(seconds)
        current.clear()
        spent["the whole request"].append(total)

    for owner, name, label in PHASES:
        wrap(owner, name, label)
    try:
        yield spent, done
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)


async def demo(path: Path) -> dict[str, str]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    upgrade(settings)
    engine = create_engine(settings)
    await load_demo(engine, enterprises=300, seed=7)
    tokens = {}
    for department in DEPARTMENTS:
        made = await create_client(
            engine, department=department.code, name=department.code, role=Role.DEPARTMENT
        )
        tokens[department.code] = made.token
    await engine.dispose()
    return tokens


def sameness(directory: Path, generated: int) -> tuple[int, int, int, list[str]]:
    """Documents sent, of them compiled, of them generated; the differences found."""
    database = Settings(database_url=f"sqlite+aiosqlite:///{directory}/sameness.db")
    tokens = asyncio.run(demo(directory / "sameness.db"))
    before = EXECUTIONS.labels("compiled")._value.get()
    with (
        TestClient(create_app(database)) as on,
        TestClient(create_app(replace(database, compiled_reads=False))) as off,
    ):
        check = Sameness(on, off, database)
        send_handwritten(check, tokens, rich_usccs(database))
        sent = send_generated(check, tokens, database, generated, every=200)
        differences = check.check()  # every difference found, handwritten ones included
    compiled = EXECUTIONS.labels("compiled")._value.get() - before
    return check.sent, int(compiled), len(sent), differences


def section(
    medians: dict[str, float],
    spent: dict[str, float],
    same: tuple[int, int, int, list[str]],
    rounds: int,
) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f} ms"

    sent, compiled, generated, differences = same
    whole = spent.pop("the whole request")
    outer = sum(seconds for name, seconds in spent.items() if not name.startswith(OF_WHICH))
    lines = [
        SECTION,
        "",
        "Written by `.venv/bin/python -m bench.compiled --write`; do not edit by hand.",
        "",
        *machine(),
        f"- {rounds} interleaved rounds; medians",
        "",
        "| comparison | A | B | median A | median B | A/B | target |",
        "|---|---|---|---|---|---|---|",
        f"| 100-enterprise dossier, compiled reads vs P (authz, audit, tracing on) | compiled "
        f"| P | {ms(medians['compiled'])} | {ms(medians['P'])} "
        f"| {medians['compiled'] / medians['P']:.2f}x | <= 6x, then <= 2.5x |",
        f"| 100-enterprise dossier, strawberry's resolvers vs P (`HUB_COMPILED_READS=0`) "
        f"| strawberry | P | {ms(medians['strawberry'])} | {ms(medians['P'])} "
        f"| {medians['strawberry'] / medians['P']:.2f}x | |",
        f"| 100-enterprise dossier, compiled vs strawberry | compiled | strawberry "
        f"| {ms(medians['compiled'])} | {ms(medians['strawberry'])} "
        f"| {medians['compiled'] / medians['strawberry']:.2f}x | |",
        "",
        "Where a compiled dossier request's wall time goes (each phase timed around its own "
        f"calls, medians of {rounds * 2} requests):",
        "",
        "| phase | per request | share |",
        "|---|---|---|",
        *(
            f"| {'&nbsp;&nbsp;' * name.startswith(OF_WHICH)}{name} | {ms(spent[name])} "
            f"| {spent[name] / whole:.0%} |"
            for _, _, name in PHASES
            if name in spent
        ),
        f"| everything else (HTTP in-process, reading the body, plan lookup, arguments, "
        f"context, spans) | {ms(whole - outer)} | {(whole - outer) / whole:.0%} |",
        f"| the whole request | {ms(whole)} | 100% |",
        "",
        f"Sameness: {sent:,} requests ({generated:,} generated documents and the test suite's "
        f"handwritten ones, as the ten departments without a purpose, with the demo grant's "
        f"and with a nonsense one), {compiled:,} of them answered by the compiled path, the "
        f"rest declined to strawberry on both sides: **{len(differences)} differences** in "
        "answers, errors or access records (target 0).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        # uvloop, as uvicorn runs the hub in production (and bench.run measures it).
        medians, spent = uvloop.run(timing(directory, arguments.rounds))
        same = sameness(directory, arguments.documents)
    text = section(medians, spent, same, arguments.rounds)
    print(text)
    for difference in same[3][:10]:
        print(difference)
    if arguments.write:
        write_section(text)
    if same[3]:
        raise SystemExit(f"{len(same[3])} differences between the compiled path and strawberry")


if __name__ == "__main__":
    main()
