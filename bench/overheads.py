"""Audit and tracing on versus off: the 100-enterprise dossier over the hub's endpoint.

    .venv/bin/python bench/overheads.py [--rounds 30] [--enterprises 300]

Each variant is the real /graphql endpoint, called in-process over ASGI as a department
under a policy that permits everything: "baseline" writes no access record and traces
nothing; "audit" appends the hash-chained record before answering; "tracing" makes the
operation span and SQL spans with the SDK and a batch processor (exporting nowhere).
Rounds are interleaved with garbage collected between them; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider, Tracer
from starlette.applications import Starlette
from starlette.routing import Route

from hub.audit import AccessEntry, AccessLog
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import Role
from hub.graphql_http import GraphQLEndpoint
from hub.policy import PolicyStore
from hub.schema import build_schema, policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from hub.telemetry import instrument_engine

DOSSIER = """{ enterprises(first: 100) { edges { node {
  uscc name legalRepresentative address industry region town registeredOn status
  creditRecords { id owner { code } kind level reason issuedOn expiresOn status
    repairs { id appliedOn decidedOn status opinion } }
  inspections { id owner { code } actionCode kind inspectedOn result participants { code }
    findings { category description } }
  penalties { id owner { code } caseNumber violation legalBasis amount decidedOn status
    minorFirstOffenceExempt decisionIssued complianceSuggestionIssued creditRepairNoticeIssued }
  rectifications { id owner { code } requirement orderedOn deadline status
    assistingDepartments { code } acceptance { id owner { code } acceptedOn verdict opinion } }
} } } }"""


class NoLog(AccessLog):
    async def append(self, entry: AccessEntry) -> int:
        return 0


class Nowhere(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def open_policies(directory: Path) -> Path:
    shutil.copy(DEFAULT_POLICY_DIR / "model.conf", directory / "model.conf")
    catalog = (DEFAULT_POLICY_DIR / "catalog.csv").read_text(encoding="utf-8")
    catalog = catalog.replace(",conditional,", ",unconditional,").replace(
        ",none,", ",unconditional,"
    )
    (directory / "catalog.csv").write_text(catalog, encoding="utf-8")
    (directory / "policy.csv").write_text("p, department, *, *, read, allow\n", encoding="utf-8")
    return directory


def endpoint_app(settings: Settings, audited: bool, tracer: Tracer, traced_sql: bool) -> Starlette:
    engine = create_engine(settings)
    if traced_sql:
        instrument_engine(engine.sync_engine, tracer)
    log = AccessLog(engine) if audited else NoLog(engine)
    policies = PolicyStore(settings.policy_dir, policy_fields())
    endpoint = GraphQLEndpoint(build_schema(), engine, settings, policies, log, tracer)
    return Starlette(routes=[Route("/graphql", endpoint.handle, methods=["POST"])])


async def main(rounds: int, enterprises: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{scratch}/bench.db",
            policy_dir=open_policies(Path(scratch)),
        )
        upgrade(settings)
        engine = create_engine(settings)
        await load_demo(engine, enterprises=enterprises, seed=7)
        token = (await create_client(engine, department="market", name="bench",
                                     role=Role.DEPARTMENT)).token  # fmt: skip
        await engine.dispose()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Nowhere()))
        silent = NoOpTracerProvider().get_tracer("hub")
        traced = provider.get_tracer("hub")
        variants = {
            "baseline": endpoint_app(settings, audited=False, tracer=silent, traced_sql=False),
            "audit": endpoint_app(settings, audited=True, tracer=silent, traced_sql=False),
            "tracing": endpoint_app(settings, audited=False, tracer=traced, traced_sql=True),
        }
        clients = {
            name: httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://hub")
            for name, app in variants.items()
        }
        headers = {"Authorization": f"Bearer {token}"}

        async def once(name: str) -> float:
            started = time.perf_counter()
            response = await clients[name].post(
                "/graphql", json={"query": DOSSIER}, headers=headers
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or "errors" in response.json():
                raise SystemExit(f"{name}: {response.status_code} {response.text[:300]}")
            return elapsed

        for name in variants:
            await once(name)  # warm up
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_number in range(rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in order:
                gc.collect()
                times[name].append(await once(name))
        for client in clients.values():
            await client.aclose()
        provider.shutdown()
    baseline = statistics.median(times["baseline"])
    print(f"100-enterprise dossier over the endpoint, {rounds} interleaved rounds, SQLite")
    print(f"{'variant':<12} {'median ms':>10} {'ratio':>7}  target")
    for name, target in (("baseline", ""), ("audit", "<= 1.10x"), ("tracing", "<= 1.05x")):
        median = statistics.median(times[name])
        print(f"{name:<12} {median * 1000:>10.1f} {median / baseline:>6.2f}x  {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--enterprises", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.enterprises))
