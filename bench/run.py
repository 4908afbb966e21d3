"""The hub measured against the physical limit, in one run: writes bench/RESULTS.md.

    .venv/bin/python -m bench.run [--rounds 20] [--quick] [--postgres URL]
    .venv/bin/python -m bench.run --fairness     # only one client's flood vs another's p99

Builds deterministic data sets with the demo loader, runs every comparison in interleaved
rounds (A B, B A, ... with garbage collected before each), and writes medians and ratios
with the machine's description. --quick skips the 100,000-enterprise scale comparison and
imports 2,000 records a round instead of 10,000; --postgres (or HUB_TEST_POSTGRES_URL) adds
the scale comparison on PostgreSQL, in a database of its own. --fairness runs only the
measurement of one client's heavy load against another client's latency and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import pstats
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import uvloop
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider, Tracer
from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.routing import Route

from bench.limit import DOSSIER, FIELDS, IMPORT_BATCH, dossier_json, import_inspections
from bench.serving import flood, ok, one, open_loop, request, serve
from hub.app import settle_heap
from hub.audit import AccessEntry, AccessLog
from hub.auth import Principal
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, InspectionKind, InspectionResult, Role
from hub.errors import Forbidden
from hub.graphql_http import GraphQLEndpoint
from hub.policy import PolicyStore, Relations, Scope, load_policy
from hub.publishing import Publisher, publish
from hub.records import KINDS
from hub.schema import SHARED, Access, Context, Loaders, Reader, build_schema, policy_fields
from hub.schema.access import View
from hub.settings import DEFAULT_POLICY_DIR, Settings
from hub.telemetry import instrument_engine

ROOT = Path(__file__).resolve().parent.parent
# One enterprise's dossier, with the same selection as the 100-enterprise one.
ONE = "query($u: String!) { enterprise(uscc: $u) {" + FIELDS + "} }"
FULL_DOSSIER = """SELECT e.uscc FROM enterprise e
  WHERE EXISTS (SELECT 1 FROM inspection i JOIN inspection_participant p ON p.inspection_id = i.id
                JOIN inspection_finding f ON f.inspection_id = i.id WHERE i.enterprise_id = e.id)
    AND EXISTS (SELECT 1 FROM rectification r JOIN acceptance a ON a.rectification_id = r.id
                JOIN rectification_assistant s ON s.rectification_id = r.id WHERE r.enterprise_id = e.id)
    AND EXISTS (SELECT 1 FROM credit_record c JOIN credit_repair x ON x.credit_record_id = c.id
                WHERE c.enterprise_id = e.id)
    AND EXISTS (SELECT 1 FROM penalty p WHERE p.enterprise_id = e.id)
  ORDER BY e.uscc LIMIT 1"""
TINY = '{"query": "{ __typename }"}'
EVERYONE = tuple(d.code for d in DEPARTMENTS)


@dataclass
class Row:
    comparison: str
    a: str
    b: str
    median_a: float
    median_b: float
    target: str = ""
    unit: str = "ms"

    @property
    def ratio(self) -> float:
        return self.median_a / self.median_b


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    facts: list[tuple[str, str, str]] = field(default_factory=list)  # (what, value, target)
    notes: list[str] = field(default_factory=list)
    profile: list[tuple[str, int, float, float]] = field(default_factory=list)


class NoLog(AccessLog):
    async def append(self, entry: AccessEntry) -> int:
        return 0


class Nowhere(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


SERVE_ALL = View({})


class NoAccessControl(Access):
    """Serves everything without consulting a policy."""

    def scope(self, type_name: str) -> Scope:
        return Scope(EVERYONE, {})

    def view(
        self, type_name: str, owner: str, enterprise: str, region: str, relations: Relations = ()
    ) -> View:
        return SERVE_ALL


def open_policies(directory: Path) -> Path:
    """A department may read everything: the dossier is complete, as P's is."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("model.conf", "colours.csv", "inspection-limits.csv"):
        shutil.copy(DEFAULT_POLICY_DIR / name, directory / name)
    catalog = (DEFAULT_POLICY_DIR / "catalog.csv").read_text(encoding="utf-8")
    catalog = catalog.replace(",conditional,", ",unconditional,").replace(
        ",none,", ",unconditional,"
    )
    (directory / "catalog.csv").write_text(catalog, encoding="utf-8")
    (directory / "policy.csv").write_text("p, department, *, *, read, allow\n", encoding="utf-8")
    return directory


async def interleaved(
    variants: dict[str, Callable[[], Awaitable[Any]]], rounds: int
) -> dict[str, float]:
    """Median seconds per variant, rounds interleaved in rotating order. The heap is settled
    after the warm-up as `hub serve` settles it after its start-up (app.settle_heap): a full
    pass over the bench's own heap is no cost of a request."""
    for run in variants.values():
        await run()  # warm up
    settle_heap()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(rounds):
        for name in names[round_number % len(names) :] + names[: round_number % len(names)]:
            gc.collect()
            started = time.perf_counter()
            await variants[name]()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(samples) for name, samples in times.items()}


# The hub is measured here, not its limits: one client sends dossiers back to back. fairness()
# measures the limits, with their defaults.
UNLIMITED: dict[str, Any] = {
    "client_cost_per_second": 10**9,
    "client_cost_burst": 10**9,
    "cost_in_flight": 10**9,
}


async def prepare(url: str, enterprises: int, policies: Path) -> tuple[Settings, str]:
    settings = Settings(database_url=url, policy_dir=policies, **UNLIMITED)
    upgrade(settings)
    engine = create_engine(settings)
    await load_demo(engine, enterprises=enterprises, seed=7)
    token = (
        await create_client(engine, department="market", name="bench", role=Role.DEPARTMENT)
    ).token
    await engine.dispose()
    return settings, token


def endpoint(
    settings: Settings, *, audited: bool, tracer: Tracer, traced_sql: bool
) -> httpx2.AsyncClient:
    engine = create_engine(settings)
    if traced_sql:
        instrument_engine(engine.sync_engine, tracer)
    log = AccessLog(engine) if audited else NoLog(engine)
    policies = PolicyStore(settings.policy_dir, policy_fields())
    handler = GraphQLEndpoint(build_schema(), engine, settings, policies, log, tracer)
    app = Starlette(routes=[Route("/graphql", handler.handle, methods=["POST"])])
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://hub")


def poster(
    client: httpx2.AsyncClient, token: str, query: str, **variables: Any
) -> Callable[[], Awaitable[None]]:
    headers = {"Authorization": f"Bearer {token}"}

    async def post() -> None:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        # An answer with errors starts with them (graphql_http.py); P does not parse its JSON
        # back either, so neither does this.
        if response.status_code != 200 or not response.content.startswith(b'{"data":'):
            raise SystemExit(f"unexpected answer: {response.status_code} {response.text[:300]}")

    return post


async def in_process(settings: Settings, token: str, rounds: int, results: Results) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    traced, silent = provider.get_tracer("hub"), NoOpTracerProvider().get_tracer("hub")
    full = endpoint(settings, audited=True, tracer=traced, traced_sql=True)
    baseline = endpoint(settings, audited=False, tracer=silent, traced_sql=False)
    audit_only = endpoint(settings, audited=True, tracer=silent, traced_sql=False)
    tracing_only = endpoint(settings, audited=False, tracer=traced, traced_sql=True)

    # 1. The dossier against P, the same JSON from raw cursors.
    database = sqlite3.connect(settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    hub_answer = (
        await full.post(
            "/graphql", json={"query": DOSSIER}, headers={"Authorization": f"Bearer {token}"}
        )
    ).json()
    hub_answer.pop("extensions")
    if hub_answer != json.loads(dossier_json(database)):
        raise SystemExit("P does not produce the hub's answer; the comparison would be unfair")

    async def limit() -> None:
        dossier_json(database)

    medians = await interleaved({"hub": poster(full, token, DOSSIER), "P": limit}, rounds)
    results.rows.append(
        Row(
            "100-enterprise dossier vs the limit P (authz, audit, tracing on)",
            "hub, in-process",
            "P: raw sqlite3 + json.dumps",
            medians["hub"],
            medians["P"],
            "<= 8x (goal 4x)",
        )
    )

    # 2. Overheads, each on vs off.
    medians = await interleaved(
        {
            "baseline": poster(baseline, token, DOSSIER),
            "audit": poster(audit_only, token, DOSSIER),
            "tracing": poster(tracing_only, token, DOSSIER),
        },
        rounds,
    )
    results.rows.append(
        Row(
            "audit overhead (dossier)",
            "audit on",
            "off",
            medians["audit"],
            medians["baseline"],
            "<= 1.10x",
        )
    )
    results.rows.append(
        Row(
            "tracing overhead (dossier)",
            "tracing on",
            "off",
            medians["tracing"],
            medians["baseline"],
            "<= 1.05x",
        )
    )

    engine = create_engine(settings)
    schema = build_schema()
    market = Principal("bench", "bench", "market", Role.DEPARTMENT)
    policy = PolicyStore(settings.policy_dir, policy_fields()).current

    def executor(kind: type[Access]) -> Callable[[], Awaitable[None]]:
        async def execute() -> None:
            reader = Reader(engine)
            access = kind(policy, market, None, SHARED)
            context = await Context.create(access, Loaders(reader, access.scope, access.caller))
            result = await schema.execute(DOSSIER, context_value=context)
            await reader.close()
            # Withheld fields are expected under the real policies; nothing else is.
            for error in result.errors or ():
                if not isinstance(error.original_error, Forbidden):
                    raise SystemExit(str(error))

        return execute

    medians = await interleaved({"on": executor(Access), "off": executor(NoAccessControl)}, rounds)
    results.rows.append(
        Row(
            "authorization overhead (dossier, schema level)",
            "authz on",
            "off",
            medians["on"],
            medians["off"],
            "<= 1.10x",
        )
    )
    # The same under the real policies/, where the caller's relations to records (a
    # participant, an assisting department...) are read with every row and open fields.
    policy = PolicyStore(DEFAULT_POLICY_DIR, policy_fields()).current
    medians = await interleaved({"on": executor(Access), "off": executor(NoAccessControl)}, rounds)
    results.rows.append(
        Row(
            "authorization overhead (dossier, policies/ with relations, as market)",
            "authz on",
            "off",
            medians["on"],
            medians["off"],
            "<= 1.25x",
        )
    )

    # 3. Counts: statements per request do not grow with rows; a warm request decides nothing.
    statements: list[str] = []

    def count(*arguments: Any) -> None:
        # Reads only: not transaction control, and not the access record's statements, whose
        # number depends on whether the process knows the chain's head (audit/log.py).
        statement: str = arguments[2]
        if not statement.startswith("BEGIN") and "access_record" not in statement:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    # An enterprise with every kind of record, so that each relation is read for it too.
    complete = database.execute(FULL_DOSSIER).fetchone()[0]
    await poster(full, token, ONE, u=complete)()
    one = len(statements)
    statements.clear()
    await poster(full, token, DOSSIER)()
    hundred = len(statements)
    event.remove(Engine, "before_cursor_execute", count)
    results.facts.append(
        ("SQL statements read, dossier of 1 enterprise / of 100", f"{one} / {hundred}", "equal")
    )
    store = PolicyStore(settings.policy_dir, policy_fields())
    warm = store.current
    for _ in range(2):
        reader = Reader(engine)
        access = Access(warm, market, None, SHARED)
        context = await Context.create(access, Loaders(reader, access.scope, access.caller))
        before = warm.evaluations
        await schema.execute(DOSSIER, context_value=context)
        await reader.close()
    results.facts.append(
        ("Casbin evaluations on a warm request", str(warm.evaluations - before), "0")
    )

    # Where the dossier's time goes: the evidence for the targets not met.
    profiler = cProfile.Profile()
    run = poster(full, token, DOSSIER)
    profiler.enable()
    for _ in range(3):
        await run()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:12]
    results.profile = [
        (f"{Path(file).name}:{line} {name}", calls, own / 3, own / total)
        for (file, line, name), (_, calls, own, _, _) in top
    ]
    await engine.dispose()
    for client in (full, baseline, audit_only, tracing_only):
        await client.aclose()
    provider.shutdown()


async def http(settings: Settings, token: str, rounds: int, results: Results) -> None:
    """The dossier over HTTP from one uvicorn worker, against the same in-process (small
    requests per second are bench/throughput.py's)."""
    server, port = await serve(settings)
    try:
        auth = f"Authorization: Bearer {token}\r\n"
        dossier = request(
            "POST",
            "/graphql",
            auth + "Content-Type: application/json\r\n",
            json.dumps({"query": DOSSIER}),
        )
        client = endpoint(
            settings, audited=True, tracer=TracerProvider().get_tracer("hub"), traced_sql=True
        )

        async def over_http() -> None:
            ok(await one(port, dossier))

        medians = await interleaved(
            {"http": over_http, "in-process": poster(client, token, DOSSIER)}, rounds
        )
        await client.aclose()
        results.rows.append(
            Row(
                "dossier over HTTP vs in-process",
                "uvicorn",
                "in-process",
                medians["http"],
                medians["in-process"],
                "<= 1.1x",
            )
        )
    finally:
        server.terminate()
        await server.wait()


async def fairness(settings: Settings, heavy: str, light: str, results: Results) -> None:
    """Client B's tiny queries alone, then while client A floods 100-enterprise dossiers from
    eight connections; with the default limits of one `hub serve` process."""
    defaults = Settings()
    server, port = await serve(
        replace(settings, **{limit: getattr(defaults, limit) for limit in UNLIMITED})
    )
    try:
        json_type = "Content-Type: application/json\r\n"
        tiny = request("POST", "/graphql", f"Authorization: Bearer {light}\r\n{json_type}", TINY)
        dossier = request(
            "POST", "/graphql", f"Authorization: Bearer {heavy}\r\n{json_type}",
            json.dumps({"query": DOSSIER}),
        )  # fmt: skip
        rate, seconds = 40.0, 15.0
        await open_loop(port, tiny, rate=rate, seconds=2)  # warm up
        alone = await open_loop(port, tiny, rate=rate, seconds=seconds)
        loaded, statuses = await asyncio.gather(
            open_loop(port, tiny, rate=rate, seconds=seconds),
            flood(port, dossier, seconds=seconds, connections=8),
        )
    finally:
        server.terminate()
        await server.wait()
    (a50, a99), (l50, l99) = [
        [statistics.quantiles(samples, n=100)[i] for i in (49, 98)] for samples in (alone, loaded)
    ]
    offered = f"B: {{ __typename }} at {rate:.0f}/s for {seconds:.0f} s"
    results.rows.append(
        Row(f"{offered}: p50 with A flooding vs alone", "A flooding", "alone", l50, a50, "")
    )
    results.rows.append(
        Row(f"{offered}: p99 with A flooding vs alone", "A flooding", "alone", l99, a99, "<= 3x")
    )
    answered = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
    results.facts.append(
        ("A: 100-enterprise dossiers back to back from 8 connections, answers", answered, "429s")
    )
    print(
        f"fairness: B p50 {a50 * 1000:.1f} -> {l50 * 1000:.1f} ms, p99 {a99 * 1000:.1f} -> "
        f"{l99 * 1000:.1f} ms ({l99 / a99:.2f}x); A: {answered}",
        flush=True,
    )


async def scale(
    url_for: Callable[[str], str], label: str, policies: Path, rounds: int, results: Results
) -> None:
    """The single-enterprise dossier with 1,000 vs 100,000 enterprises in the database."""
    clients = {}
    for size in (1_000, 100_000):
        started = time.perf_counter()
        settings, token = await prepare(url_for(f"scale{size}"), size, policies)
        results.notes.append(
            f"{label}: demo load of {size:,} enterprises took {time.perf_counter() - started:.0f} s"
        )
        engine = create_async_engine(settings.database_url)
        async with engine.connect() as connection:
            uscc = (
                await connection.exec_driver_sql(
                    "SELECT uscc FROM enterprise ORDER BY uscc LIMIT 1 OFFSET 500"
                )
            ).scalar()
        await engine.dispose()
        client = endpoint(
            settings, audited=True, tracer=TracerProvider().get_tracer("hub"), traced_sql=True
        )
        clients[size] = (client, poster(client, token, ONE, u=uscc))
    medians = await interleaved({str(size): run for size, (_, run) in clients.items()}, rounds)
    for client, _ in clients.values():
        await client.aclose()
    results.rows.append(
        Row(
            f"scale, {label}: one dossier with 100,000 vs 1,000 enterprises",
            "100,000",
            "1,000",
            medians["100000"],
            medians["1000"],
            "<= 1.5x",
        )
    )


def new_inspections(prefix: str, usccs: list[str], count: int) -> list[dict[str, Any]]:
    """``count`` inspections nobody has published yet, canonical as publishing stores them."""
    kinds, results = list(InspectionKind), list(InspectionResult)
    return [
        {
            "sourceId": f"{prefix}-{n:07d}", "uscc": usccs[n % len(usccs)],
            "actionCode": f"{prefix}-AC{n:07d}", "kind": kinds[n % len(kinds)].value,
            "inspectedOn": "2026-10-01", "result": results[n % len(results)].value,
            "participants": ["emergency", "fire"] if n % 3 == 0 else [],
            "findings": [{"category": "消防通道", "description": f"疏散通道堵塞 {n}"}]
            if n % 2 == 0 else [],
        }
        for n in range(count)
    ]  # fmt: skip


# What an import stored under a source-id prefix, without ids, the prefix and times. Action
# codes carry the prefix too: each round's inspections need codes of their own.
WRITTEN = (
    "SELECT substr(source_id, :skip), owner, enterprise_id, substr(action_code, :skip), kind, "
    "inspected_on, result, version, retracted FROM inspection WHERE source_id LIKE :like "
    "ORDER BY 1",
    "SELECT substr(i.source_id, :skip), p.department FROM inspection_participant p "
    "JOIN inspection i ON i.id = p.inspection_id WHERE i.source_id LIKE :like ORDER BY 1, 2",
    "SELECT substr(i.source_id, :skip), f.category, f.description FROM inspection_finding f "
    "JOIN inspection i ON i.id = f.inspection_id WHERE i.source_id LIKE :like ORDER BY 1, f.id",
    "SELECT substr(source_id, :skip), kind, owner, uscc, version, change, changed, reason, "
    'publisher, client, trace_id, replace(replace(data, :quoted, \'"sourceId":"\'), :coded, '
    '\'"actionCode":"\') FROM record_version WHERE source_id LIKE :like ORDER BY 1',
)


def written_rows(database: sqlite3.Connection, prefix: str) -> list[list[Any]]:
    parameters = {"skip": len(prefix) + 1, "like": f"{prefix}-%", "quoted": f'"sourceId":"{prefix}',
                  "coded": f'"actionCode":"{prefix}'}  # fmt: skip
    return [database.execute(statement, parameters).fetchall() for statement in WRITTEN]


async def import_rate(scratch: Path, rounds: int, quick: bool, results: Results) -> None:
    """New inspections through publish() in batches of 500 vs the same rows by executemany."""
    count = 2_000 if quick else 10_000
    path = scratch / "import.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    upgrade(settings)
    engine = create_engine(settings)
    await load_demo(engine, enterprises=1_000, seed=7)
    database = sqlite3.connect(path, isolation_level=None)
    for pragma in ("foreign_keys = ON", "journal_mode = WAL", "busy_timeout = 5000"):
        database.execute(f"PRAGMA {pragma}")  # as the hub's engine sets them
    usccs = [row[0] for row in database.execute("SELECT uscc FROM enterprise ORDER BY uscc")]
    policy = load_policy(DEFAULT_POLICY_DIR, policy_fields())  # ecology publishes its own
    publisher = Publisher("bench import", "ecology", "ecology")
    inspections = KINDS["inspections"]
    rounds_run = {"hub": 0, "P": 0}

    async def hub() -> None:
        rounds_run["hub"] += 1
        records = new_inspections(f"HUB{rounds_run['hub']}", usccs, count)
        for start in range(0, count, IMPORT_BATCH):
            batch = records[start : start + IMPORT_BATCH]
            await publish(engine, policy, publisher, inspections, "ecology", batch)

    async def limit() -> None:
        rounds_run["P"] += 1
        records = new_inspections(f"P{rounds_run['P']}", usccs, count)
        import_inspections(database, "ecology", "bench import", records)

    medians = await interleaved({"hub": hub, "P": limit}, rounds)
    if written_rows(database, "HUB1") != written_rows(database, "P1"):
        raise SystemExit("P does not store what publish() stores; the comparison would be unfair")
    database.close()
    await engine.dispose()
    row = Row(
        f"import: {count:,} new inspections, batches of {IMPORT_BATCH} (records/s)",
        "hub: publish()",
        "P: raw sqlite3 executemany",
        count / medians["hub"],
        count / medians["P"],
        # Checks, references, a version row and the audit of every record cost something;
        # more than three times the raw insert would be waste.
        ">= 0.33x",
        unit="rec/s",
    )
    results.rows.append(row)
    print(
        f"import: hub {row.median_a:,.0f} records/s, P {row.median_b:,.0f} records/s, "
        f"hub/P {row.ratio:.2f}x",
        flush=True,
    )


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "?",
    )
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {int(memory) // 1024 // 1024} GiB",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}",
        f"- measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the machine is shared and noisy, so only ratios"
        " within one run are meaningful",
    ]


def write(results: Results, rounds: int, path: Path) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by `.venv/bin/python -m bench.run`; do not edit by hand.",
        "",
        *machine(),
        f"- {rounds} interleaved rounds per comparison; medians",
        "",
        "| comparison | A | B | median A | median B | A/B | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results.rows:
        fmt = "{:.1f} ms" if row.unit == "ms" else "{:.0f} " + row.unit
        a = fmt.format(row.median_a * 1000 if row.unit == "ms" else row.median_a)
        b = fmt.format(row.median_b * 1000 if row.unit == "ms" else row.median_b)
        lines.append(
            f"| {row.comparison} | {row.a} | {row.b} | {a} | {b} | {row.ratio:.2f}x | {row.target} |"
        )
    lines += ["", "| count | value | target |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {target} |" for what, value, target in results.facts]
    if results.notes:
        lines += ["", *(f"- {note}" for note in results.notes)]
    if results.profile:
        lines += [
            "",
            "Where one in-process dossier request spends its own time (cProfile, top 12):",
            "",
            "| function | calls | own time per request | share |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{where}` | {calls // 3} | {seconds * 1000:.1f} ms | {share:.0%} |"
            for where, calls, seconds, share in results.profile
        ]
    # Sections other commands write (bench.fuzz's "## Adversarial run") stay as they are.
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    others = current[current.index("\n## ") :] if "\n## " in current else ""
    path.write_text("\n".join(lines) + "\n" + others, encoding="utf-8")


async def second_client(settings: Settings) -> str:
    engine = create_engine(settings)
    token = (
        await create_client(engine, department="ecology", name="bench B", role=Role.DEPARTMENT)
    ).token
    await engine.dispose()
    return token


async def fairness_only() -> None:
    results = Results()
    with tempfile.TemporaryDirectory() as scratch:
        policies = open_policies(Path(scratch) / "policies")
        settings, token = await prepare(f"sqlite+aiosqlite:///{scratch}/bench.db", 1_000, policies)
        await fairness(settings, token, await second_client(settings), results)


async def main(rounds: int, quick: bool, postgres: str | None) -> None:
    results = Results()
    with tempfile.TemporaryDirectory() as scratch:
        policies = open_policies(Path(scratch) / "policies")
        settings, token = await prepare(f"sqlite+aiosqlite:///{scratch}/bench.db", 1_000, policies)
        await in_process(settings, token, rounds, results)
        await http(settings, token, rounds, results)
        await fairness(settings, token, await second_client(settings), results)
        await import_rate(Path(scratch), rounds, quick, results)
        if not quick:
            await scale(
                lambda name: f"sqlite+aiosqlite:///{scratch}/{name}.db",
                "SQLite",
                policies,
                rounds,
                results,
            )
            if postgres:
                created: list[str] = []

                def database(name: str) -> str:
                    created.append(f"hub_bench_{name}_{uuid.uuid4().hex[:8]}")
                    return (
                        make_url(postgres)
                        .set(database=created[-1])
                        .render_as_string(hide_password=False)
                    )

                admin = create_async_engine(postgres, isolation_level="AUTOCOMMIT")
                names = [database("scale1000"), database("scale100000")]
                async with admin.connect() as connection:
                    for name in created:
                        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
                try:
                    urls = iter(names)
                    await scale(lambda name: next(urls), "PostgreSQL", policies, rounds, results)
                finally:
                    async with admin.connect() as connection:
                        for name in created:
                            await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
                    await admin.dispose()
    write(results, rounds, ROOT / "bench" / "RESULTS.md")
    print((ROOT / "bench" / "RESULTS.md").read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--quick", action="store_true", help="skip the 100,000-enterprise scale runs"
    )
    parser.add_argument("--postgres", default=os.environ.get("HUB_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--fairness",
        action="store_true",
        help="only measure one client's flood against another's latency; print, write nothing",
    )
    arguments = parser.parse_args()
    # uvloop, as uvicorn runs the hub in production.
    if arguments.fairness:
        uvloop.run(fairness_only())
    else:
        uvloop.run(main(arguments.rounds, arguments.quick, arguments.postgres))
