"""Authorization on versus off: the 100-enterprise dossier, in-process, in one run.

    .venv/bin/python bench/authz.py [--rounds 30] [--enterprises 300]

"off" serves every field of every record without asking anything; "on (open policy)" asks
the real machinery under a policy that allows every field, so both answers are identical
and the ratio is the cost of authorization itself; "on (market)" is market regulation under
the shipped policies, with its FORBIDDEN errors, for reference. Rounds are interleaved
(A B C, B C A, ...) with garbage collected between them; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hub.auth import Principal
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, Role
from hub.errors import Forbidden
from hub.policy import load_policy
from hub.schema import SHARED, Access, Context, Loaders, Reader, build_schema, policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings

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
EVERYONE = tuple(d.code for d in DEPARTMENTS)


class NoAccessControl(Access):
    """Serves everything without consulting a policy: the baseline."""

    def visible_owners(self, type_name: str) -> tuple[str, ...]:
        return EVERYONE

    def withheld(self, type_name: str, owner: str) -> dict[str, Forbidden]:
        return {}


def open_policies(directory: Path) -> Path:
    shutil.copy(DEFAULT_POLICY_DIR / "model.conf", directory / "model.conf")
    catalog = (DEFAULT_POLICY_DIR / "catalog.csv").read_text(encoding="utf-8")
    catalog = catalog.replace(",conditional,", ",unconditional,").replace(
        ",none,", ",unconditional,"
    )
    (directory / "catalog.csv").write_text(catalog, encoding="utf-8")
    (directory / "policy.csv").write_text("p, department, *, *, read, allow\n", encoding="utf-8")
    return directory


async def main(rounds: int, enterprises: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{scratch}/bench.db")
        upgrade(settings)
        engine = create_engine(settings)
        await load_demo(engine, enterprises=enterprises, seed=7)
        schema = build_schema()
        market = Principal("bench", "bench", "market", Role.DEPARTMENT)
        opened = load_policy(open_policies(Path(scratch)), policy_fields())
        shipped = load_policy(DEFAULT_POLICY_DIR, policy_fields())

        variants: dict[str, Callable[[], Access]] = {
            "off": lambda: NoAccessControl(opened, market, None, SHARED),
            "on (open policy)": lambda: Access(opened, market, None, SHARED),
            "on (market, shipped policy)": lambda: Access(shipped, market, None, SHARED),
        }

        async def once(make: Callable[[], Access]) -> tuple[float, object]:
            reader = Reader(engine)
            access = make()
            context = Context(access, Loaders(reader, access.visible_owners))
            started = time.perf_counter()
            result = await schema.execute(DOSSIER, context_value=context)
            elapsed = time.perf_counter() - started
            await reader.close()
            return elapsed, result

        answers = {name: (await once(make))[1] for name, make in variants.items()}  # warm up
        if answers["off"].data != answers["on (open policy)"].data:  # type: ignore[attr-defined]
            raise SystemExit("the open policy must serve exactly what no access control serves")
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_number in range(rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in order:
                gc.collect()
                times[name].append((await once(variants[name]))[0])
        await engine.dispose()
    baseline = statistics.median(times["off"])
    print(
        f"100-enterprise dossier, {rounds} interleaved rounds, {enterprises} enterprises in SQLite"
    )
    print(f"{'variant':<30} {'median ms':>10} {'ratio':>7}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<30} {median * 1000:>10.1f} {median / baseline:>6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--enterprises", type=int, default=300)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.enterprises))
