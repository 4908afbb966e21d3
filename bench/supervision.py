"""What the three-colour code and the inspection warnings cost (issue 17: no more than 10 %).

    .venv/bin/python -m bench.supervision [--rounds 15] [--write]

1. Reading: the 100-enterprise dossier in-process (compiled reads, authorization, audit and
   tracing on, as bench.compiled measures it) with and without each enterprise's
   ``colourCode`` and its reasons, interleaved in the same run.
2. Writing (reported, no target: the issue's target is the dossier's): publishing a batch of 100 inspections (the warnings judged) and 100 rectification
   orders (the colours computed again) with and without what follows a publish for
   supervision (``hub.publishing.write.supervise``, replaced by a no-op for the baseline),
   interleaved; every batch is a dry run, so every round publishes the same records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import hub.publishing.write as write
from bench.limit import FIELDS
from bench.report import measure_and_report
from bench.run import Nowhere, endpoint, interleaved, machine, open_policies, poster, prepare
from hub.publishing import Published
from hub.records import today

SECTION = "## Supervision"
COLOUR = "colourCode { colour since reasons { rule colour count records { kind sourceId } } }"
DOSSIER = "{ enterprises(first: 100) { edges { node {" + FIELDS + "} } } }"
WITH_COLOUR = "{ enterprises(first: 100) { edges { node {" + FIELDS + COLOUR + "} } } }"
PUBLISH = """mutation($inspections: [InspectionInput!]!, $orders: [RectificationInput!]!) {
  publishInspections(records: $inspections, dryRun: true) { created warned }
  publishRectifications(records: $orders, dryRun: true) { created } }"""


async def _nothing(
    connection: Any, policy: Any, published: Any, head: int, publisher: Any, today: Any
) -> tuple[list[Published], int]:
    return [], head


def batches(database: Path) -> dict[str, Any]:
    """100 new inspections and 100 new orders (each following one of market's inspections)
    of 100 enterprises."""
    day = today()
    with sqlite3.connect(database) as connection:
        inspected = connection.execute(
            "SELECT i.source_id, min(i.inspected_on), e.uscc FROM inspection i JOIN enterprise e "
            "ON e.id = i.enterprise_id WHERE i.owner = 'market' GROUP BY e.uscc LIMIT 100"
        ).fetchall()
    inspections = [
        {"sourceId": f"BENCH-INS-{n}", "uscc": uscc, "actionCode": f"BENCH{n:08d}",
         "kind": "ROUTINE", "inspectedOn": str(day), "result": "PROBLEMS_FOUND"}
        for n, (_, _, uscc) in enumerate(inspected)
    ]  # fmt: skip
    orders = [
        {"sourceId": f"BENCH-RECT-{n}", "uscc": uscc, "inspectionSourceId": source_id,
         "requirement": "整改", "orderedOn": str(day), "deadline": str(day + timedelta(days=30)),
         "status": "IN_PROGRESS"}
        for n, (source_id, _, uscc) in enumerate(inspected)
    ]  # fmt: skip
    return {"inspections": inspections, "orders": orders}


async def timing(directory: Path, rounds: int) -> dict[str, float]:
    policies = open_policies(directory)
    with (policies / "policy.csv").open("a", encoding="utf-8") as rules:
        rules.write("p, department, self, *, write, allow\n")
    settings, token = await prepare(f"sqlite+aiosqlite:///{directory}/supervision.db", 1000,
                                    policies)  # fmt: skip
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    client = endpoint(settings, audited=True, tracer=provider.get_tracer("hub"), traced_sql=True)
    publish = poster(client, token, PUBLISH, **batches(directory / "supervision.db"))
    supervise = write.supervise

    def without(run: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def bare() -> None:
            write.supervise = _nothing
            try:
                await run()
            finally:
                write.supervise = supervise

        return bare

    medians = await interleaved(
        {
            "dossier": poster(client, token, DOSSIER),
            "dossier with colour codes": poster(client, token, WITH_COLOUR),
            "publish": without(publish),
            "publish with supervision": publish,
        },
        rounds,
    )
    await client.aclose()
    provider.shutdown()
    return medians


def section(medians: dict[str, float], rounds: int) -> str:
    def row(what: str, a: str, b: str, target: float | None) -> str:
        ratio = medians[a] / medians[b]
        met = "" if target is None else ("met" if ratio <= target else "**not met**")
        return (
            f"| {what} | {a} | {b} | {medians[a] * 1000:.1f} ms | {medians[b] * 1000:.1f} ms "
            f"| {ratio:.2f}x | {f'<= {target:.2f}x: {met}' if target else 'reported'} |"
        )

    lines = [
        SECTION,
        "",
        "Written by `.venv/bin/python -m bench.supervision --write`; do not edit by hand.",
        "",
        *machine(),
        f"- {rounds} interleaved rounds; medians; SQLite, 1,000 demo enterprises",
        "",
        "| comparison | A | B | median A | median B | A/B | target |",
        "|---|---|---|---|---|---|---|",
        row("100-enterprise dossier (compiled reads, authz, audit, tracing) with each "
            "enterprise's colour code and reasons, against without",
            "dossier with colour codes", "dossier", 1.10),
        row("a dry-run publish of 100 inspections and 100 orders, with the warnings judged and "
            "the colours computed again, against the same with neither",
            "publish with supervision", "publish", None),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    measure_and_report(__doc__, timing, section, rounds=15)


if __name__ == "__main__":
    main()
