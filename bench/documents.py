"""What trusted documents cost a request (issue 18): on a hub that runs registered documents
only, a department's system sending a registered document by id against a developer's
credential sending the same text freely (no lookup), interleaved in one run through one
endpoint (two endpoints on one database would each find the access log's head moved by the
other, a cost of the bench, not of documents).

    .venv/bin/python -m bench.documents [--rounds 40] [--write]

In-process, compiled reads, authorization, audit and tracing on (as bench.supervision
measures the dossier), SQLite with 1,000 demo enterprises: a tiny query (one enterprise's
name, where a request's fixed costs show most) and the 100-enterprise dossier. By id the
hub reads the document (one indexed statement) and then runs its text as any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.limit import FIELDS
from bench.report import measure_and_report
from bench.run import Nowhere, endpoint, interleaved, machine, open_policies, prepare
from hub.clients import create_client
from hub.db import create_engine
from hub.documents import register
from hub.domain import Role
from hub.schema import build_schema

SECTION = "## Trusted documents"
TINY = 'query Tiny { enterprise(uscc: "9133010985H96UB001") { name } }'
DOSSIER = "query Dossier { enterprises(first: 100) { edges { node {" + FIELDS + "} } } }"


def sender(
    client: httpx2.AsyncClient, token: str, body: dict[str, Any]
) -> Callable[[], Awaitable[None]]:
    headers = {"Authorization": f"Bearer {token}"}

    async def send() -> None:
        response = await client.post("/graphql", json=body, headers=headers)
        if response.status_code != 200 or not response.content.startswith(b'{"data":'):
            raise SystemExit(f"unexpected answer: {response.status_code} {response.text[:300]}")

    return send


def by_id(text: str) -> dict[str, Any]:
    return {"documentId": "sha256:" + hashlib.sha256(text.encode()).hexdigest()}


async def timing(directory: Path, rounds: int) -> dict[str, float]:
    policies = open_policies(directory)
    settings, token = await prepare(f"sqlite+aiosqlite:///{directory}/documents.db", 1000,
                                    policies)  # fmt: skip
    engine = create_engine(settings)
    await register(engine, "bench", [("tiny.graphql", TINY), ("dossier.graphql", DOSSIER)],
                   "bench", build_schema()._schema)  # fmt: skip
    developer = await create_client(engine, department="market", name="bench developer",
                                    role=Role.DEPARTMENT, developer=True)  # fmt: skip
    await engine.dispose()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    hub = endpoint(replace(settings, trusted_documents=True), audited=True,
                   tracer=provider.get_tracer("hub"), traced_sql=True)  # fmt: skip
    medians = await interleaved(
        {
            "tiny by text": sender(hub, developer.token, {"query": TINY}),
            "tiny by id": sender(hub, token, by_id(TINY)),
            "dossier by text": sender(hub, developer.token, {"query": DOSSIER}),
            "dossier by id": sender(hub, token, by_id(DOSSIER)),
        },
        rounds,
    )
    await hub.aclose()
    provider.shutdown()
    return medians


def section(medians: dict[str, float], rounds: int) -> str:
    def row(what: str, a: str, b: str) -> str:
        ratio = medians[a] / medians[b]
        return (
            f"| {what} | {a} | {b} | {medians[a] * 1000:.2f} ms | {medians[b] * 1000:.2f} ms "
            f"| {ratio:.2f}x |"
        )

    lines = [
        SECTION,
        "",
        "Written by `.venv/bin/python -m bench.documents --write`; do not edit by hand.",
        "",
        *machine(),
        f"- {rounds} interleaved rounds; medians; SQLite, 1,000 demo enterprises; in-process, "
        "compiled reads, authorization, audit and tracing on",
        "",
        "| comparison | A | B | median A | median B | A/B |",
        "|---|---|---|---|---|---|",
        row("one enterprise's name, on a trusted hub: a department's registered document by "
            "id, against a developer's free text", "tiny by id", "tiny by text"),
        row("the 100-enterprise dossier, the same way", "dossier by id", "dossier by text"),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    measure_and_report(__doc__, timing, section, rounds=40)


if __name__ == "__main__":
    main()
