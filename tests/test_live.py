"""Live sync as department systems run it: many subscribers of the installed `hub serve`
over real WebSockets while departments publish. Each subscriber receives exactly what the
`changes` query shows its department from the same cursor (nothing lost, nothing repeated,
no error), each event is built once per stream of like subscribers (the metrics count both),
and the hub holds no database connection for a subscriber between events."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import websockets
from sqlalchemy import text

from hub.clients import create_client
from hub.db import POOL_SIZE, create_engine, upgrade
from hub.domain import Role
from hub.schema.feed import encode_cursor
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database
from tests.test_clients import metrics
from tests.test_serve import demo_with_clients, serving

FOLLOW = """subscription($after: String) { changes(after: $after) { endCursor
  changes { cursor sourceId owner { code } record { ... on Inspection { result } } } } }"""
PUBLISH = """mutation($records: [InspectionInput!]!) {
  publishInspections(records: $records) { created } }"""
ACCEPT = """mutation($records: [AcceptanceInput!]!) {
  publishAcceptances(records: $records) { created } }"""
CHANGES = (
    """query($after: String) { changes(after: $after, first: 500) { changes { sourceId } } }"""
)
PUBLISHERS = ("ecology", "market", "fire")
SUBSCRIBERS = {"market": 10, "ecology": 8, "fire": 6}


async def prepare(settings: Settings) -> tuple[dict[str, str], list[str], int, str]:
    tokens = await demo_with_clients(settings.database_url)
    engine = create_engine(settings)
    tokens["fire"] = (
        await create_client(engine, department="fire", name="fire", role=Role.DEPARTMENT)
    ).token
    async with engine.connect() as connection:
        usccs = [row[0] for row in await connection.execute(
            text("SELECT uscc FROM enterprise ORDER BY uscc LIMIT 6")
        )]  # fmt: skip
        seq = (await connection.execute(text("SELECT seq FROM feed_head"))).scalar_one()
        rectification = (await connection.execute(text(
            "SELECT r.source_id FROM rectification r LEFT JOIN acceptance a "
            "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
            "ORDER BY r.id LIMIT 1"
        ))).scalar_one()  # fmt: skip
    await engine.dispose()
    return tokens, usccs, int(seq), rectification


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        tokens, usccs, seq, rectification = asyncio.run(prepare(settings))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url,
                       "HUB_FEED_POLL_SECONDS": "0.2"}  # fmt: skip
        with serving(environment) as (_, port):
            yield {"port": port, "tokens": tokens, "usccs": usccs, "seq": seq,
                   "settings": settings, "rectification": rectification}  # fmt: skip


async def follow(port: int, token: str, after: str, received: list[dict[str, Any]],
                 opened: asyncio.Event) -> None:  # fmt: skip
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]  # type: ignore[list-item]
    ) as socket:  # fmt: skip
        await socket.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {token}"}}))  # fmt: skip
        assert json.loads(await socket.recv()) == {"type": "connection_ack"}
        await socket.send(json.dumps({"id": "feed", "type": "subscribe",
                                      "payload": {"query": FOLLOW, "variables": {"after": after}}}))  # fmt: skip
        # Opened once the hub has handled the subscribe message (it answers pings in order).
        await socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await socket.recv()) == {"type": "pong"}
        opened.set()
        async for message in socket:
            received.append(json.loads(message))


def joined(http: httpx2.Client, members: int) -> None:
    """Until the hub holds ``members`` live subscriptions (a pong says it read the subscribe
    message, not that the subscription has opened)."""
    for _ in range(200):
        if metrics(http.get("/metrics").text)["hub_subscriptions_active"] == members:
            return
        time.sleep(0.05)
    raise AssertionError(f"{members} subscriptions did not open")


async def hub_connections(settings: Settings) -> tuple[int, int]:
    """The hub's connections to PostgreSQL: all, and those idle inside a transaction."""
    engine = create_engine(settings)
    async with engine.connect() as connection:
        row = (await connection.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE state = 'idle in transaction') "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ))).one()  # fmt: skip
    await engine.dispose()
    return int(row[0]), int(row[1])


def test_every_subscriber_gets_exactly_its_departments_feed(served: dict[str, Any]) -> None:
    port, tokens = served["port"], served["tokens"]
    after = encode_cursor("change", served["seq"])
    http = httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def ask(department: str, query: str, **variables: Any) -> dict[str, Any]:
        answer = http.post("/graphql", json={"query": query, "variables": variables},
                           headers={"Authorization": f"Bearer {tokens[department]}"})  # fmt: skip
        said: dict[str, Any] = answer.json()
        assert "errors" not in said, said
        return said["data"]

    async def scenario() -> dict[str, list[list[dict[str, Any]]]]:
        inboxes: dict[str, list[list[dict[str, Any]]]] = {}
        tasks, opened = [], []
        for department, count in SUBSCRIBERS.items():
            inboxes[department] = [[] for _ in range(count)]
            for inbox in inboxes[department]:
                opened.append(asyncio.Event())
                tasks.append(asyncio.create_task(
                    follow(port, tokens[department], after, inbox, opened[-1])
                ))  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 60)
        await asyncio.to_thread(joined, http, len(opened))
        # An acceptance of ecology's: market may read it, fire may not.
        await asyncio.to_thread(ask, "ecology", ACCEPT, records=[{
            "sourceId": "LIVE-T-ACCEPT", "rectificationSourceId": served["rectification"],
            "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
        }])  # fmt: skip
        for n in range(9):
            department = PUBLISHERS[n % len(PUBLISHERS)]
            await asyncio.to_thread(ask, department, PUBLISH, records=[{
                "sourceId": f"LIVE-T-{n}", "uscc": served["usccs"][n % 6], "kind": "ROUTINE",
                "actionCode": f"LIVE-T-CODE-{n}", "inspectedOn": "2026-11-20",
                "result": "NO_PROBLEM",
            }])  # fmt: skip
        expected = {d: await asyncio.to_thread(seen, d) for d in SUBSCRIBERS}
        for _ in range(300):  # until every inbox holds its department's changes
            if all(
                len(sources(inbox)) >= len(expected[department])
                for department, boxes in inboxes.items() for inbox in boxes
            ):  # fmt: skip
                break
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        inboxes["expected"] = [[{"sources": expected[d]} for d in SUBSCRIBERS]]
        return inboxes

    def seen(department: str) -> list[str]:
        page = ask(department, CHANGES, after=after)["changes"]["changes"]
        return [change["sourceId"] for change in page]

    def sources(inbox: list[dict[str, Any]]) -> list[str]:
        return [change["sourceId"] for message in inbox if message["type"] == "next"
                for change in message["payload"]["data"]["changes"]["changes"]]  # fmt: skip

    during = served["settings"].database_url.startswith("postgresql")
    inboxes = asyncio.run(scenario())
    expected = dict(
        zip(SUBSCRIBERS, (e["sources"] for e in inboxes.pop("expected")[0]), strict=True)
    )
    assert "LIVE-T-ACCEPT" in expected["market"]
    assert "LIVE-T-ACCEPT" not in expected["fire"]
    assert all(f"LIVE-T-{n}" in expected["fire"] for n in range(9))
    for department, boxes in inboxes.items():
        for inbox in boxes:
            assert {message["type"] for message in inbox} == {"next"}, inbox
            assert sources(inbox) == expected[department]
            for message in inbox:  # each event recorded for this subscriber, not an error
                assert "errors" not in message["payload"]
                assert len(message["payload"]["extensions"]["traceId"]) == 32
    scraped = metrics(http.get("/metrics").text)
    sent = scraped['hub_live_messages_total{type="next"}']
    assert sent == sum(len(inbox) for boxes in inboxes.values() for inbox in boxes)
    # Built once per stream (a department's subscribers here): the same pages for all of
    # them, and fewer events built than sent.
    for boxes in inboxes.values():
        pages = [[m["payload"]["data"] for m in inbox] for inbox in boxes]
        assert all(page == pages[0] for page in pages)
    assert scraped["hub_live_events_total"] < sent
    if during:
        total, idle_in_transaction = asyncio.run(hub_connections(served["settings"]))
        assert idle_in_transaction == 0  # between events, nothing held open
        # The pool's idle connections and the listener's: not one per subscriber.
        assert total <= POOL_SIZE + 1 < sum(SUBSCRIBERS.values())
    http.close()


def test_sigterm_ends_live_subscriptions_and_exits_0(tmp_path: Path) -> None:
    """Waits that end: a hub asked to stop while subscribers wait for events closes their
    sockets as restarting (1012: reconnect and resume) and exits 0."""
    with fresh_database("sqlite", tmp_path) as settings:
        upgrade(settings)
        tokens, _, seq, _ = asyncio.run(prepare(settings))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url}
        with serving(environment) as (process, port):

            async def scenario() -> list[BaseException | None]:
                opened = [asyncio.Event() for _ in range(5)]
                inboxes: list[list[dict[str, Any]]] = [[] for _ in opened]
                tasks = [asyncio.create_task(follow(port, tokens["market"],
                                                    encode_cursor("change", seq), inbox, event))
                         for inbox, event in zip(inboxes, opened, strict=True)]  # fmt: skip
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 30)
                process.terminate()
                ended = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
                assert all(not inbox for inbox in inboxes)  # no error, no complete
                return ended

            ended = asyncio.run(scenario())
            assert process.wait(timeout=30) == 0
    for closed in ended:
        assert isinstance(closed, websockets.ConnectionClosed), closed
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1012


def test_a_websocket_message_is_held_to_the_request_body_limit(served: dict[str, Any]) -> None:
    """Over WebSocket as over HTTP (413), a caller cannot hand the hub more than
    HUB_MAX_REQUEST_BYTES at once: a larger message closes the socket (1009)."""
    port, token = served["port"], served["tokens"]["market"]

    async def scenario() -> tuple[int | None, dict[str, Any]]:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            max_size=None,
        ) as socket:  # fmt: skip
            await socket.send(json.dumps({"type": "connection_init",
                                          "payload": {"Authorization": f"Bearer {token}"}}))  # fmt: skip
            assert json.loads(await socket.recv()) == {"type": "connection_ack"}
            huge = {"after": None, "junk": "x" * 1_200_000}  # over the 1,000,000-byte default
            await socket.send(json.dumps({"id": "big", "type": "subscribe",
                                          "payload": {"query": FOLLOW, "variables": huge}}))  # fmt: skip
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
        async with websockets.connect(  # and the hub serves on
            f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]  # type: ignore[list-item]
        ) as again:  # fmt: skip
            await again.send(json.dumps({"type": "connection_init",
                                         "payload": {"Authorization": f"Bearer {token}"}}))  # fmt: skip
            acked = json.loads(await again.recv())
        return (closed.value.rcvd.code if closed.value.rcvd else None), acked

    code, acked = asyncio.run(scenario())
    assert code == 1009
    assert acked == {"type": "connection_ack"}
