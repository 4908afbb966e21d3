"""The adversarial run: a real `hub serve` under attack and under honest load at once.

    .venv/bin/python -m bench.fuzz [--documents 3000] [--malformed 2000] [--postgres URL]

For each backend (SQLite; PostgreSQL too with --postgres or HUB_TEST_POSTGRES_URL): demo
data (300 enterprises, as `hub serve --demo` loads), `hub serve` on a free port of
127.0.0.1, and over HTTP with an async client, at the same time:

- documents generated from the schema by the suite's adversary (tests/adversary/): mostly
  queries, a fifth mutations, sent by every department (without a purpose, with one of
  purposes.csv, with a nonsense one), the auditor and the admin in turn. Mutations write
  for real; approving share requests is left out, since a grant would open fields that the
  secret sets were computed without, and the records the honest clients use are left alone;
- malformed requests (bodies, content types, headers, credentials);
- a steady stream of honest requests from clients of their own: the README's canonical
  queries, a dossier of 20 enterprises, a publish with dryRun.

Counted: requests by kind, answers with a 5xx, with INTERNAL, with a withheld value (the
suite's scan), other answers that are no proper GraphQL answer, honest requests that failed
(anything but a 200 whose only errors are FORBIDDEN or PURPOSE_REQUIRED; the publish must
have none), and access records missing (every answer's trace id must be in the access log).
All must be 0. The figures go into the "Adversarial run" section of bench/RESULTS.md, which
`bench.run` keeps when it rewrites the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import httpx2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bench.limit import FIELDS
from bench.report import write_section
from bench.run import ROOT, machine
from bench.serving import fresh_postgres
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, Role
from hub.policy import load_policy
from hub.schema import build_schema, policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.adversary import (
    Caller,
    Malformed,
    Secrets,
    callers,
    documents,
    judge,
    malformed_requests,
    pools,
    read_ground,
)

SECTION = "## Adversarial run"
POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
SCHEMA = build_schema()._schema
README = (ROOT / "README.md").read_text(encoding="utf-8")
FUZZ_WORKERS, MALFORMED_WORKERS, HONEST_WORKERS = 4, 2, 3
T = TypeVar("T")


# --- what is sent ------------------------------------------------------------------------


def generate(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` distinct values of a strategy (or as many as it gives), the same ones every
    run: hypothesis repeats itself, so it is asked for more."""
    found: dict[T, None] = {}

    @settings(
        max_examples=count * 2,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: T) -> None:
        found[value] = None

    collect()
    return list(found)[:count]


@dataclass(frozen=True)
class Honest:
    """A request an honest client sends over and over; ``writes`` when it publishes."""

    name: str
    token: str
    query: str
    purpose: str | None = None
    writes: bool = False


def honest_requests() -> list[Honest]:
    """The README's canonical queries with their callers, and a dossier of 20 enterprises."""
    (curl,) = re.findall(r"-d '(\{.*?\})'", README, flags=re.DOTALL)
    (purpose,) = re.findall(r"X-Hub-Purpose: ([^']+)'", README)
    found = [
        Honest("canonical, no purpose", "market", json.loads(curl)["query"]),
        Honest("canonical, with the grant's purpose", "market", json.loads(curl)["query"],
               unquote(purpose)),
        Honest("dossier of 20 enterprises", "enforcement",
               "{ enterprises(first: 20) { edges { node {" + FIELDS + "} } } }",
               "law-enforcement: 案件核查"),
    ]  # fmt: skip
    for index, example in enumerate(re.findall(r"```graphql\n(.*?)```", README, re.DOTALL)):
        caller = "auditor" if "accessLog" in example else "market"
        writes = "publishAcceptances" in example
        if writes:
            if "dryRun: true" not in example:  # honest load changes nothing
                raise SystemExit(f"the README's example {index + 1} publishes for real")
            caller = "ecology"
        found.append(Honest(f"README example {index + 1}", caller, example, writes=writes))
    return found


def honest_source_ids() -> set[str]:
    """Records the honest requests name: the fuzzer leaves them alone."""
    return set(re.findall(r"[A-Z]+-[A-Z]+-\d{7}", README))


# --- the run -----------------------------------------------------------------------------


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    internal: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    improper: list[str] = field(default_factory=list)
    honest_failed: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    untraced: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def answer(self, what: str, status: int, body: bytes) -> dict[str, Any] | None:
        """Hold any answer to what every answer must be; the answer, if it is JSON."""
        try:
            answer = json.loads(body)
        except ValueError:
            self.improper.append(f"{what}: {status} {body[:300]!r}")
            return None
        problems = judge(status, answer)
        if status >= 500:
            self.server_errors.append(f"{what}: {status} {body[:300]!r}")
        codes = [e.get("extensions", {}).get("code") for e in _errors(answer)]
        if "INTERNAL" in codes:
            self.internal.append(f"{what}: {body[:300]!r}")
        if problems and status < 500 and "INTERNAL" not in codes:
            self.improper.append(f"{what}: {problems}")
        trace = answer.get("extensions", {}).get("traceId") if isinstance(answer, dict) else None
        if isinstance(trace, str):
            self.traces.append(trace)
        else:
            self.untraced.append(f"{what}: {status} {body[:300]!r}")
        return answer if isinstance(answer, dict) else None


def _errors(answer: Any) -> list[dict[str, Any]]:
    errors = answer.get("errors", []) if isinstance(answer, dict) else []
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def headers(token: str, purpose: str | None) -> dict[str, str]:
    found = {"Authorization": f"Bearer {token}"}
    if purpose is not None:  # header values are Latin-1: UTF-8 percent-encoded
        found["X-Hub-Purpose"] = quote(purpose)
    return found


async def attack(
    client: httpx2.AsyncClient,
    queue: asyncio.Queue[str],
    rotation: Callable[[], Caller],
    tokens: dict[str, str],
    secrets: Secrets,
    tally: Tally,
) -> None:
    while not queue.empty():
        document = queue.get_nowait()
        caller = rotation()
        kind = "mutation" if document.lstrip().startswith("mutation") else "query"
        tally.sent[f"generated {kind}"] += 1
        what = f"{caller}: {document[:1000]!r}"
        try:
            response = await client.post(
                "/graphql",
                json={"query": document},
                headers=headers(tokens[caller.token], caller.purpose),
            )
        except httpx2.HTTPError as error:  # no answer at all
            tally.server_errors.append(f"{what}: {error!r}")
            continue
        answer = tally.answer(what, response.status_code, response.content)
        if answer is not None:
            leaked = secrets.of(caller).leaks(answer, sent=document + (caller.purpose or ""))
            if leaked:
                tally.leaks.append(f"{what}: {sorted(leaked)[:5]}")


async def malform(
    client: httpx2.AsyncClient, queue: asyncio.Queue[Malformed], token: str, tally: Tally
) -> None:
    while not queue.empty():
        request = queue.get_nowait()
        tally.sent["malformed"] += 1
        try:
            response = await client.post(
                "/graphql", content=request.body, headers=request.headers(token)
            )
        except httpx2.HTTPError as error:  # not the hub's doing: say so, apart
            tally.unsent.append(f"{request.describe()}: {error!r}")
            continue
        tally.answer(request.describe(), response.status_code, response.content)


async def honest(
    client: httpx2.AsyncClient,
    requests: list[Honest],
    tokens: dict[str, str],
    secrets: Secrets,
    done: asyncio.Event,
    offset: int,
    tally: Tally,
) -> None:
    turn = offset
    while not done.is_set():
        request = requests[turn % len(requests)]
        turn += 1
        tally.sent[f"honest: {request.name}"] += 1
        what = f"honest {request.name}"
        try:
            response = await client.post(
                "/graphql",
                json={"query": request.query},
                headers=headers(tokens[f"honest {request.token}"], request.purpose),
            )
        except httpx2.HTTPError as error:  # no answer at all
            tally.honest_failed.append(f"{what}: {error!r}")
            continue
        answer = tally.answer(what, response.status_code, response.content)
        codes = {e.get("extensions", {}).get("code") for e in _errors(answer)}
        allowed = set() if request.writes else {"FORBIDDEN", "PURPOSE_REQUIRED"}
        if response.status_code != 200 or answer is None or not codes <= allowed:
            tally.honest_failed.append(f"{what}: {response.status_code} {response.text[:300]}")
        elif not answer.get("data") or None in answer["data"].values():
            tally.honest_failed.append(f"{what}: no data: {response.text[:300]}")
        caller = Caller(request.token, request.token, request.purpose)
        if answer is not None and (leaked := secrets.of(caller).leaks(answer)):
            tally.leaks.append(f"{what}: {sorted(leaked)[:5]}")


@asynccontextmanager
async def serving(database_url: str, log: Path) -> AsyncIterator[int]:
    """`hub serve` on a free port of 127.0.0.1, its output in ``log``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    environment = {**os.environ, "HUB_DATABASE_URL": database_url}
    with log.open("wb") as output:
        server = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "hub"), "serve", "--port", str(port),
            env=environment, stdout=output, stderr=output,
        )  # fmt: skip
        try:
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probe_client:
                for _ in range(150):
                    try:
                        if (await probe_client.get("/readyz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await asyncio.sleep(0.2)
                else:
                    output.flush()
                    raise SystemExit(f"the hub did not start; see {log}")
            yield port
        finally:
            server.terminate()
            await server.wait()


async def prepare(settings: Settings) -> tuple[dict[str, str], Secrets]:
    upgrade(settings)
    engine = create_engine(settings)
    await load_demo(engine, enterprises=300, seed=7)
    tokens: dict[str, str] = {}
    for department in DEPARTMENTS:
        for prefix in ("", "honest "):
            tokens[prefix + department.code] = (
                await create_client(
                    engine, department=department.code, name=f"{prefix}{department.code} system",
                    role=Role.DEPARTMENT,
                )
            ).token  # fmt: skip
    for role in (Role.AUDITOR, Role.ADMIN):
        for prefix in ("", "honest "):
            tokens[prefix + role.value] = (
                await create_client(engine, department="market", name=f"{prefix}{role}", role=role)
            ).token
    ground = await read_ground(engine)
    await engine.dispose()
    return tokens, Secrets(ground, POLICY)


async def recorded(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT trace_id FROM access_record"))
        found = {row.trace_id for row in rows}
    await engine.dispose()
    return found


@dataclass
class Outcome:
    backend: str
    tally: Tally
    seconds: float
    server_log: list[str]

    @property
    def clean(self) -> bool:
        tally = self.tally
        return not (
            tally.server_errors or tally.internal or tally.leaks or tally.honest_failed
            or tally.missing or tally.untraced or tally.improper
        )  # fmt: skip


def attacks(secrets: Secrets, count: int, malformed: int) -> tuple[list[str], list[Malformed]]:
    """The generated documents (a fifth of them mutations, shuffled among the queries the
    same way every run) and the malformed requests."""
    steering = dict(pools(secrets.ground, POLICY))
    good, odd = steering["source_ids"]
    steering["source_ids"] = (tuple(sorted(set(good) - honest_source_ids())), odd)
    mutation = SCHEMA.mutation_type
    writes = [name for name in mutation.fields if name != "decideShareRequest"] if mutation else []
    mutations = count // 5
    generated = generate(documents(SCHEMA, steering), count - mutations)
    generated += generate(documents(SCHEMA, steering, mutation=True, fields=writes), mutations)
    random.Random(7).shuffle(generated)
    return generated, generate(malformed_requests(), malformed)


async def run(
    backend: str, settings: Settings, count: int, malformed: int, scratch: Path
) -> Outcome:
    tokens, secrets = await prepare(settings)
    started = time.perf_counter()
    generated, bad = attacks(secrets, count, malformed)
    print(
        f"{backend}: generated {len(generated)} distinct documents and "
        f"{len(bad)} malformed requests in {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    everyone = callers(POLICY)
    turns = iter(range(10**9))

    def rotation() -> Caller:
        return everyone[next(turns) % len(everyone)]

    tally = Tally()
    documents_queue: asyncio.Queue[str] = asyncio.Queue()
    for document in generated:
        documents_queue.put_nowait(document)
    malformed_queue: asyncio.Queue[Malformed] = asyncio.Queue()
    for request in bad:
        malformed_queue.put_nowait(request)
    log = scratch / f"serve-{backend}.log"
    async with serving(settings.database_url, log) as port:
        limits = httpx2.Limits(max_connections=FUZZ_WORKERS + MALFORMED_WORKERS + HONEST_WORKERS)
        async with httpx2.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits
        ) as client:
            done = asyncio.Event()
            started = time.perf_counter()
            honest_load = [
                asyncio.create_task(
                    honest(client, honest_requests(), tokens, secrets, done, index * 3, tally)
                )
                for index in range(HONEST_WORKERS)
            ]
            await asyncio.gather(
                *(attack(client, documents_queue, rotation, tokens, secrets, tally)
                  for _ in range(FUZZ_WORKERS)),
                *(malform(client, malformed_queue, tokens["fire"], tally)
                  for _ in range(MALFORMED_WORKERS)),
            )  # fmt: skip
            done.set()
            await asyncio.gather(*honest_load)
            seconds = time.perf_counter() - started
    present = await recorded(settings)
    tally.missing = [trace for trace in tally.traces if trace not in present]
    server_log = [
        line for line in log.read_text(errors="replace").splitlines() if "internal error" in line
    ]
    return Outcome(backend, tally, seconds, server_log)


# --- the report --------------------------------------------------------------------------


def row(outcome: Outcome) -> str:
    tally, sent = outcome.tally, outcome.tally.sent
    honest_total = sum(n for kind, n in sent.items() if kind.startswith("honest"))
    cells = [
        outcome.backend,
        f"{sent['generated query']:,} / {sent['generated mutation']:,}",
        f"{sent['malformed']:,}",
        f"{honest_total:,}",
        f"{outcome.seconds:.0f} s",
        *(
            str(len(items))
            for items in (
                tally.server_errors,
                tally.internal,
                tally.leaks,
                tally.honest_failed,
                tally.missing + tally.untraced,
                tally.improper,
            )
        ),
    ]
    return "| " + " | ".join(cells) + " |"


def report(outcomes: list[Outcome]) -> str:
    lines = [
        SECTION,
        "",
        "Written by `.venv/bin/python -m bench.fuzz`; do not edit by hand. A real `hub serve` "
        "(one uvicorn worker, demo data of 300 enterprises) over HTTP: documents generated from "
        "the schema (a fifth of them mutations) by every department, the auditor and the admin, "
        f"and malformed requests, {FUZZ_WORKERS} + {MALFORMED_WORKERS} clients at once, while "
        f"{HONEST_WORKERS} honest clients send the README's queries, a 20-enterprise dossier and "
        "a publish with dryRun.",
        "",
        *machine(),
        "",
        "| backend | generated queries / mutations | malformed | honest | duration | 5xx "
        "| INTERNAL | leaks | honest failed | access records missing | other improper answers |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(outcome) for outcome in outcomes]
    lines += ["", "Targets: every count after the duration is 0."]
    return "\n".join(lines) + "\n"


def details(outcome: Outcome) -> list[str]:
    tally = outcome.tally
    found = [f"{outcome.backend}: sent {dict(tally.sent)} in {outcome.seconds:.0f} s"]
    names = ("server_errors", "internal", "leaks", "honest_failed", "missing", "untraced",
             "improper", "unsent")  # fmt: skip
    for name in names:
        items = getattr(tally, name)
        found.append(f"  {name}: {len(items)}")
        found += [f"    {item}" for item in items[:20]]
    found.append(f"  internal errors in the server log: {len(outcome.server_log)}")
    found += [f"    {line}" for line in outcome.server_log[:20]]
    return found


async def main(count: int, malformed: int, postgres: str | None) -> int:
    outcomes = []
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        sqlite = Settings(database_url=f"sqlite+aiosqlite:///{scratch}/fuzz.db")
        outcomes.append(await run("SQLite", sqlite, count, malformed, scratch))
        print("\n".join(details(outcomes[-1])), flush=True)
        if postgres:
            async with fresh_postgres(postgres, "hub_fuzz") as url:
                settings = Settings(database_url=url)
                outcomes.append(await run("PostgreSQL", settings, count, malformed, scratch))
            print("\n".join(details(outcomes[-1])), flush=True)
    section = report(outcomes)
    write_section(section)
    print(section)
    return 0 if all(outcome.clean for outcome in outcomes) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=3000)
    parser.add_argument("--malformed", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("HUB_TEST_POSTGRES_URL"))
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.documents, arguments.malformed, arguments.postgres)))
