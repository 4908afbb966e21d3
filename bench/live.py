"""Live sync under load: many subscriptions in one `hub serve` on PostgreSQL while
departments publish. Writes the "## Live sync" section of bench/RESULTS.md.

    .venv/bin/python -m bench.live --postgres URL [--subscribers 1000] [--every 1]
        [--publishes 60] [--enterprises 300]

The subscribers are real WebSocket clients (graphql-transport-ws, the `websockets` library)
spread over every department, each subscribed from the same cursor; a publisher sends one
inspection at a time, rotating the publishing department, every ``--every`` seconds. The
same publishes first run with no subscriber: the baseline of publish latency in this run.
What each subscriber should receive comes from the hub itself: the `changes` query over HTTP
from the same cursor, as each department. Reported: deliveries against that (none missing,
none repeated, no error message), event latency from the publish being sent to its arrival,
publish latency against the baseline, and the database connections the hub held (sampled
from pg_stat_activity) against its pool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.report import write_section
from bench.run import machine
from bench.serving import answer, cpu_seconds, fresh_postgres, request, serve
from hub.clients import create_client
from hub.db import POOL_SIZE, create_engine, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, Role
from hub.schema.feed import encode_cursor
from hub.settings import Settings

SECTION = "## Live sync"
SUBSCRIBE = """subscription($after: String) { changes(after: $after) { endCursor
  changes { cursor sourceId kind owner { code }
    record { ... on Inspection { kind inspectedOn result } } } } }"""
PUBLISH = """mutation($records: [InspectionInput!]!) {
  publishInspections(records: $records) { created updated } }"""
CHANGES = """query($after: String) { changes(after: $after, first: 500) { endCursor hasMore
  changes { sourceId } } }"""
PUBLISHERS = ("market", "ecology", "emergency", "fire", "transport", "health")
POLICIES = Path(__file__).resolve().parent.parent / "policies"
BATCH = 100  # subscribers connecting at once
WARMUP = 3  # publishes before those timed, in each phase
PER_CLIENT = 10  # subscriptions per client token (the limit is 20)


@dataclass
class Subscriber:
    department: str
    token: str
    received: list[str] = field(default_factory=list)  # source ids, in arrival order
    arrived: dict[str, float] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    completed: bool = False


def graphql_request(token: str, query: str, **variables: Any) -> bytes:
    body = json.dumps({"query": query, "variables": variables})
    headers = f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    return request("POST", "/graphql", headers, body)


async def ask(port: int, token: str, query: str, **variables: Any) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        status, body = await answer(reader, writer, graphql_request(token, query, **variables))
    finally:
        writer.close()
    if status != 200:
        raise SystemExit(f"HTTP {status}: {body[:300]!r}")
    said: dict[str, Any] = json.loads(body)
    return said


async def follow(port: int, subscriber: Subscriber, after: str, opened: asyncio.Event) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_size=None, open_timeout=60, ping_interval=None,
    ) as socket:  # fmt: skip
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {subscriber.token}"}}))  # fmt: skip
        if json.loads(await socket.recv())["type"] != "connection_ack":
            raise SystemExit("the hub refused a subscriber's connection")
        await socket.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": SUBSCRIBE, "variables": {"after": after}}}))  # fmt: skip
        opened.set()
        async for message in socket:
            said = json.loads(message)
            if said["type"] == "next":
                now = time.time()
                page = said["payload"]["data"]["changes"]
                for change in page["changes"]:
                    subscriber.received.append(change["sourceId"])
                    subscriber.arrived.setdefault(change["sourceId"], now)
                if said["payload"].get("errors"):
                    subscriber.errors.append(said["payload"]["errors"])
            elif said["type"] == "error":
                subscriber.errors.append(said["payload"])
                return
            elif said["type"] == "complete":
                subscriber.completed = True
                return


async def publish_all(
    port: int, tokens: dict[str, str], usccs: list[str], count: int, every: float, tag: str
) -> tuple[dict[str, float], list[float]]:
    """``count`` publishes, one every ``every`` seconds (open loop: a slow one does not
    delay the next), after WARMUP that are not timed (the first event of each department's
    view decides its fields: policy decisions are cached per view); when each timed one was
    sent, and how long it took."""
    sent: dict[str, float] = {}
    took: list[float] = []

    async def one(n: int) -> None:
        department = PUBLISHERS[n % len(PUBLISHERS)]
        source_id = f"LIVE-{tag}-{n}"
        record = {"sourceId": source_id, "uscc": usccs[n % len(usccs)], "kind": "ROUTINE",
                  "actionCode": f"{source_id}-CODE",
                  "inspectedOn": "2026-11-20", "result": "NO_PROBLEM"}  # fmt: skip
        started = time.time()
        said = await ask(port, tokens[department], PUBLISH, records=[record])
        if n >= WARMUP:
            sent[source_id] = started
            took.append(time.time() - started)
        if said.get("errors") or said["data"]["publishInspections"]["created"] != 1:
            raise SystemExit(f"publish failed: {said}")

    start = time.time()
    tasks = []
    for n in range(WARMUP + count):
        await asyncio.sleep(max(0.0, start + n * every - time.time()))
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return sent, took


def publisher(port: int, tokens: dict[str, str], usccs: list[str], count: int, every: float,
              tag: str) -> tuple[dict[str, float], list[float]]:  # fmt: skip
    """publish_all in a process of its own: the subscribers' event loop (a thousand sockets
    in this process) must not delay the publishes it times."""
    return asyncio.run(publish_all(port, tokens, usccs, count, every, tag))


async def published(*args: Any) -> tuple[dict[str, float], list[float]]:
    with ProcessPoolExecutor(1) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, publisher, *args)


async def expected(port: int, token: str, after: str) -> list[str]:
    """What one department may see after ``after``: the hub's own changes query."""
    seen: list[str] = []
    while True:
        page = (await ask(port, token, CHANGES, after=after))["data"]["changes"]
        seen += [change["sourceId"] for change in page["changes"]]
        after = page["endCursor"]
        if not page["hasMore"]:
            return seen


async def connections(url: str, samples: list[tuple[int, int]], stop: asyncio.Event) -> None:
    """The hub's connections to its database, every half second: (all, idle in transaction)."""
    engine = create_async_engine(url)
    database = url.rsplit("/", 1)[1]
    try:
        async with engine.connect() as connection:
            while not stop.is_set():
                row = (await connection.execute(text(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'idle in transaction') "
                    "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
                ), {"db": database})).one()  # fmt: skip
                samples.append((int(row[0]), int(row[1])))
                await connection.commit()
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def prepare(url: str, subscribers: int, enterprises: int) -> dict[str, Any]:
    settings = Settings(database_url=url)
    upgrade(settings)
    engine = create_engine(settings)
    await load_demo(engine, enterprises=enterprises, seed=7)
    tokens: dict[str, str] = {}
    for department in PUBLISHERS:
        tokens[department] = (await create_client(
            engine, department=department, name=f"{department} publisher", role=Role.DEPARTMENT
        )).token  # fmt: skip
    readers: list[tuple[str, str]] = []
    codes = [d.code for d in DEPARTMENTS]
    for n in range((subscribers + PER_CLIENT - 1) // PER_CLIENT):
        department = codes[n % len(codes)]
        new = await create_client(
            engine, department=department, name=f"{department} reader {n}", role=Role.DEPARTMENT
        )
        readers += [(department, new.token)] * PER_CLIENT
    async with engine.connect() as connection:
        usccs = [row[0] for row in await connection.execute(
            text("SELECT uscc FROM enterprise ORDER BY uscc LIMIT 60")
        )]  # fmt: skip
    await engine.dispose()
    return {"tokens": tokens, "readers": readers[:subscribers], "usccs": usccs}


async def head_cursor(url: str) -> str:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        seq = (await connection.execute(text("SELECT seq FROM feed_head"))).scalar_one()
    await engine.dispose()
    return encode_cursor("change", int(seq))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_postgres(args.postgres, "hub_live") as url:
        setup = await prepare(url, args.subscribers, args.enterprises)
        settings = Settings(database_url=url, policy_dir=POLICIES)
        server, port = await serve(settings)
        try:
            # Baseline: the same publishes with nobody subscribed.
            _, alone = await published(port, setup["tokens"], setup["usccs"], args.publishes,
                                         args.every, "alone")  # fmt: skip
            after = await head_cursor(url)
            subscribers = [Subscriber(d, t) for d, t in setup["readers"]]
            opened = [asyncio.Event() for _ in subscribers]
            following = []
            for batch in range(0, len(subscribers), BATCH):  # as systems come up, not all at once
                for subscriber, ready in zip(subscribers[batch:batch + BATCH],
                                             opened[batch:batch + BATCH], strict=True):  # fmt: skip
                    following.append(asyncio.create_task(follow(port, subscriber, after, ready)))
                await asyncio.wait_for(
                    asyncio.gather(*(e.wait() for e in opened[batch : batch + BATCH])), 120
                )
            await asyncio.sleep(2)  # every subscribe message has arrived and opened
            samples: list[tuple[int, int]] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(connections(url, samples, stop))
            cpu_before = cpu_seconds(server.pid)
            started = time.time()
            sent, together = await published(port, setup["tokens"], setup["usccs"],
                                               args.publishes, args.every, "live")  # fmt: skip
            # Every subscriber should have it all within a few seconds of the last publish.
            oracle: dict[str, list[str]] = {}
            for department, token in {d: t for d, t in setup["readers"]}.items():
                oracle[department] = await expected(port, token, after)
            deadline = time.time() + 30
            while time.time() < deadline and any(  # noqa: ASYNC110 - polls counts
                len(s.received) < len(oracle[s.department]) and not s.errors for s in subscribers
            ):
                await asyncio.sleep(0.2)
            elapsed = time.time() - started
            cpu = cpu_seconds(server.pid) - cpu_before
            stop.set()
            await sampler
            for task in following:
                task.cancel()
            await asyncio.gather(*following, return_exceptions=True)
        finally:
            server.terminate()
            await server.wait()
    latencies = [
        s.arrived[source] - sent[source]
        for s in subscribers for source in s.received if source in sent and source in s.arrived
    ]  # fmt: skip
    want = sum(len(oracle[s.department]) for s in subscribers)
    exact = sum(s.received == oracle[s.department] for s in subscribers)
    by_department: dict[str, int] = defaultdict(int)
    for department, seen in oracle.items():
        by_department[department] = len(seen)
    return {
        "subscribers": len(subscribers),
        "publishes": args.publishes,
        "every": args.every,
        "expected": want,
        "delivered": sum(len(s.received) for s in subscribers),
        "exact": exact,
        "missing": sum(
            max(0, len(oracle[s.department]) - len(set(s.received))) for s in subscribers
        ),
        "repeated": sum(len(s.received) - len(set(s.received)) for s in subscribers),
        "errors": sum(bool(s.errors) for s in subscribers),
        "completed": sum(s.completed for s in subscribers),
        "first_error": next((s.errors[0] for s in subscribers if s.errors), None),
        "latency_p50": percentile(latencies, 0.5),
        "latency_p99": percentile(latencies, 0.99),
        "latency_max": max(latencies, default=0.0),
        "publish_alone_p99": percentile(alone, 0.99),
        "publish_live_p99": percentile(together, 0.99),
        "publish_alone_p50": statistics.median(alone),
        "publish_live_p50": statistics.median(together),
        "connections_max": max((a for a, _ in samples), default=0),
        "idle_in_transaction_max": max((i for _, i in samples), default=0),
        "pool": POOL_SIZE * 2,
        "hub_cpu": cpu / elapsed,
        "by_department": dict(by_department),
    }


def table(r: dict[str, Any]) -> list[str]:
    ratio = r["publish_live_p99"] / r["publish_alone_p99"] if r["publish_alone_p99"] else 0.0
    lines = [
        f"### {r['subscribers']:,} subscriptions, a publish every {r['every']:g} s "
        f"({WARMUP} + {r['publishes']} publishes)",
        "",
        f"`python -m bench.live --subscribers {r['subscribers']} --publishes {r['publishes']} "
        f"--every {r['every']:g}`",
        "",
        "| what | measured | target |",
        "|---|---|---|",
        f"| deliveries | {r['delivered']:,} of {r['expected']:,} expected; "
        f"{r['exact']:,} of {r['subscribers']:,} subscribers got exactly their department's "
        "feed | all |",
        f"| missing / repeated / error messages / complete | {r['missing']} / {r['repeated']} / "
        f"{r['errors']} / {r['completed']} | 0 |",
        f"| event latency p50 / p99 / max | {r['latency_p50']:.3f} / {r['latency_p99']:.3f} / "
        f"{r['latency_max']:.3f} s | p99 ≤ 2 s |",
        f"| publish p99 with subscribers / without | {r['publish_live_p99'] * 1000:.0f} / "
        f"{r['publish_alone_p99'] * 1000:.0f} ms = {ratio:.2f}× | ≤ 1.5× |",
        f"| publish p50 with / without | {r['publish_live_p50'] * 1000:.0f} / "
        f"{r['publish_alone_p50'] * 1000:.0f} ms | |",
        f"| the hub's database connections (max sampled) / idle in transaction (max sampled) "
        f"| {r['connections_max']} / {r['idle_in_transaction_max']} | ≤ pool ({r['pool']}) + "
        "1 listener / only between a build's statements |",
        f"| hub CPU while live | {r['hub_cpu']:.2f} cores | |",
        "",
        "Changes each department may see of the timed publishes and the warm-up: "
        + ", ".join(f"{d} {n}" for d, n in sorted(r["by_department"].items()))
        + ".",
    ]
    if r["first_error"]:
        lines += [
            "",
            f"First error message: `{json.dumps(r['first_error'], ensure_ascii=False)[:300]}`",
        ]
    return lines


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        "Live subscriptions (issue 15), on PostgreSQL with one `hub serve` process: `python -m "
        "bench.live` (both runs below). The subscribers are spread over the ten departments "
        "(ten per client token); each run first times the same publishes with no subscriber.",
        "",
        "Before (each subscription polled the feed and built its own events, on a connection it "
        "held while its record was written; issue 15's measurement): of 50 subscriptions with a "
        "publish every 3 s, 7 got all 81 events (619 of 4,050 deliveries), 24 were ended with "
        "`INTERNAL`, 19 got `INTERNAL` and then `complete`; publish p99 24.5 s; 15 connections "
        "idle in transaction for ~45 s.",
        "",
        *machine(),
        "",
    ]
    for result in results:
        lines += [*table(result), ""]
    lines += [
        "A p99 over 60 to 81 publishes is their slowest one or two: on this shared machine one "
        "slow publish moves it by a third either way, so read the two runs' ratios together.",
        "",
    ]
    return "\n".join(lines)


# The scenario, and the bench's own figure.
SCENARIOS = ((50, 81, 3.0), (1000, 60, 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("HUB_TEST_POSTGRES_URL"))
    parser.add_argument("--subscribers", type=int, help="one run of this many (else both)")
    parser.add_argument("--publishes", type=int, default=60)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--enterprises", type=int, default=300)
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("PostgreSQL is needed: --postgres URL or HUB_TEST_POSTGRES_URL")
    runs = [(args.subscribers, args.publishes, args.every)] if args.subscribers else SCENARIOS
    results = []
    for subscribers, publishes, every in runs:
        scenario = argparse.Namespace(**{**vars(args), "subscribers": subscribers,
                                         "publishes": publishes, "every": every})  # fmt: skip
        results.append(asyncio.run(run(scenario)))
        print("\n".join(table(results[-1])), flush=True)
    if args.write:
        write_section(report(results))


if __name__ == "__main__":
    main()
