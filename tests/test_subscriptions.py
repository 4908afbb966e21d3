"""Live updates over graphql-transport-ws, authenticated and audited like queries."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

import hub.live.listener
from hub.app import create_app
from hub.clients import create_client, revoke_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import Role
from hub.schema.feed import encode_cursor
from hub.settings import Settings
from hub.subscriptions import _cut
from tests.conftest import BACKENDS, fresh_database, graphql

PROTOCOL = "graphql-transport-ws"
SUBSCRIBE = """subscription($after: String, $kinds: [RecordKind!]) {
  changes(after: $after, kinds: $kinds) {
  endCursor changes { kind change sourceId owner { code }
  record { ... on Acceptance { verdict } } } } }"""
PUBLISH = """mutation($records: [AcceptanceInput!]!) {
  publishAcceptances(records: $records) { created updated } }"""


class LiveHub:
    def __init__(self, client: TestClient, settings: Settings, tokens: dict[str, Any]) -> None:
        self.client, self.settings, self.tokens = client, settings, tokens

    def sql(self, statement: str) -> list[Any]:
        async def run() -> list[Any]:
            engine = create_engine(self.settings)
            async with engine.connect() as connection:
                rows = list((await connection.execute(text(statement))).all())
            await engine.dispose()
            return rows

        return asyncio.run(run())


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveHub]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)

        async def prepare() -> dict[str, Any]:
            engine = create_engine(settings)
            await load_demo(engine, enterprises=30, seed=5)
            tokens: dict[str, Any] = {}
            for department in ("market", "ecology", "fire"):
                new = await create_client(
                    engine, department=department, name=f"{department} live", role=Role.DEPARTMENT
                )
                tokens[department], tokens[f"{department}-id"] = new.token, new.id
            for role in (Role.AUDITOR, Role.ADMIN):
                new = await create_client(engine, department="market", name=role, role=role)
                tokens[role.value] = new.token
            await engine.dispose()
            return tokens

        tokens = asyncio.run(prepare())
        fast = replace(settings, feed_poll_seconds=0.05)
        with TestClient(create_app(fast)) as client:
            yield LiveHub(client, settings, tokens)


def now(live: LiveHub) -> dict[str, str]:
    """Subscription variables that start at the feed's current end, whenever it starts."""
    ((seq,),) = live.sql("SELECT seq FROM feed_head")
    return {"after": encode_cursor("change", seq)}


def open_rectification(live: LiveHub) -> str:
    (row,) = live.sql(
        "SELECT r.source_id FROM rectification r LEFT JOIN acceptance a "
        "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
        "ORDER BY r.id LIMIT 1"
    )
    return str(row[0])


@contextmanager
def connect(live: LiveHub, token: str | None) -> Iterator[Any]:
    with live.client.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as session:
        payload = {} if token is None else {"Authorization": f"Bearer {token}"}
        session.send_json({"type": "connection_init", "payload": payload})
        yield session


def test_a_subscriber_gets_the_changes_it_may_read_as_they_happen(live: LiveHub) -> None:
    rectification = open_rectification(live)
    with connect(live, live.tokens["market"]) as market:
        assert market.receive_json() == {"type": "connection_ack"}
        market.send_json({"id": "1", "type": "subscribe",
                          "payload": {"query": SUBSCRIBE, "variables": {**now(live), "kinds": ["ACCEPTANCE"]}}})  # fmt: skip
        published = graphql(live.client, PUBLISH, live.tokens["ecology"], records=[{
            "sourceId": "ECO-LIVE-1", "rectificationSourceId": rectification,
            "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
        }])  # fmt: skip
        assert published == {"data": {"publishAcceptances": {"created": 1, "updated": 0}}}
        event = market.receive_json()
        assert event["type"] == "next"
        assert event["id"] == "1"
        assert event["payload"]["data"]["changes"]["changes"] == [
            {"kind": "ACCEPTANCE", "change": "CREATED", "sourceId": "ECO-LIVE-1",
             "owner": {"code": "ecology"}, "record": {"verdict": "PASSED"}},
        ]  # fmt: skip
        trace_id = event["payload"]["extensions"]["traceId"]
        market.send_json({"id": "1", "type": "complete"})
    # The event was recorded like any answer: who received which fields of which record.
    (record,) = live.sql(
        f"SELECT department, operation_type, outcome, served FROM access_record "
        f"WHERE trace_id = '{trace_id}'"
    )
    assert record[:3] == ("market", "subscription", "ok")
    assert '"type":"Acceptance"' in record[3]
    assert '"fields":["verdict"]' in record[3]


def test_a_subscriber_does_not_get_changes_it_may_not_read(live: LiveHub) -> None:
    rectification = open_rectification(live)
    with connect(live, live.tokens["fire"]) as fire:
        assert fire.receive_json() == {"type": "connection_ack"}
        fire.send_json(
            {
                "id": "f",
                "type": "subscribe",
                "payload": {"query": SUBSCRIBE, "variables": now(live)},
            }
        )
        graphql(live.client, PUBLISH, live.tokens["ecology"], records=[{
            "sourceId": "ECO-LIVE-2", "rectificationSourceId": rectification,
            "acceptedOn": "2026-11-10", "verdict": "FAILED", "opinion": "未整改到位",
        }])  # fmt: skip
        # Fire reads no ecology acceptance; its own next inspection is the next thing it sees.
        (inspection,) = live.sql(
            "SELECT source_id FROM inspection WHERE owner = 'fire' ORDER BY id LIMIT 1"
        )
        data = live.sql(f"SELECT data FROM record_version WHERE source_id = '{inspection[0]}'")
        record = json.loads(data[0][0])
        record["kind"] = record["kind"].upper()  # GraphQL names the enumeration's values
        record["result"] = "NOT_OPERATING"
        updated = graphql(live.client, """mutation($records: [InspectionInput!]!) {
            publishInspections(records: $records) { updated } }""", live.tokens["fire"],
            records=[record])  # fmt: skip
        assert updated == {"data": {"publishInspections": {"updated": 1}}}
        event = fire.receive_json()
        assert [c["sourceId"] for c in event["payload"]["data"]["changes"]["changes"]] == [
            inspection[0]
        ]


def test_subscriptions_need_a_valid_credential(live: LiveHub) -> None:
    with connect(live, None) as anonymous:
        with pytest.raises(WebSocketDisconnect) as closed:
            anonymous.receive_json()
        assert closed.value.code == 4403
        assert closed.value.reason.startswith("UNAUTHENTICATED: "), closed.value.reason
    (denied,) = live.sql(
        "SELECT outcome, operation_type FROM access_record ORDER BY seq DESC LIMIT 1"
    )
    assert tuple(denied) == ("denied", "subscription")


def test_a_revoked_client_is_cut_off_at_its_next_event(live: LiveHub) -> None:
    rectification = open_rectification(live)
    with connect(live, live.tokens["market"]) as market:
        assert market.receive_json() == {"type": "connection_ack"}
        market.send_json(
            {
                "id": "r",
                "type": "subscribe",
                "payload": {"query": SUBSCRIBE, "variables": now(live)},
            }
        )

        async def revoke() -> None:
            engine = create_engine(live.settings)
            await revoke_client(engine, live.tokens["market-id"])
            await engine.dispose()

        asyncio.run(revoke())
        graphql(live.client, PUBLISH, live.tokens["ecology"], records=[{
            "sourceId": "ECO-LIVE-3", "rectificationSourceId": rectification,
            "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
        }])  # fmt: skip
        # An error message ends the subscription: a client can tell it from the end of the
        # stream (complete), which never follows it.
        message = market.receive_json()
        assert (message["id"], message["type"]) == ("r", "error")
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        market.send_json({"type": "ping"})
        assert market.receive_json() == {"type": "pong"}
    (record,) = live.sql("SELECT outcome, client FROM access_record ORDER BY seq DESC LIMIT 1")
    assert tuple(record) == ("denied", f"client:{live.tokens['market-id']}")


def test_auditors_and_admins_get_no_change_events(live: LiveHub) -> None:
    rectification = open_rectification(live)
    with (
        connect(live, live.tokens["market"]) as market,
        connect(live, live.tokens["auditor"]) as auditor,
        connect(live, live.tokens["admin"]) as admin,
    ):
        for number, session in enumerate((market, auditor, admin)):
            assert session.receive_json() == {"type": "connection_ack"}
            session.send_json({"id": str(number), "type": "subscribe",
                               "payload": {"query": SUBSCRIBE, "variables": now(live)}})  # fmt: skip
        graphql(live.client, PUBLISH, live.tokens["ecology"], records=[{
            "sourceId": "ECO-LIVE-4", "rectificationSourceId": rectification,
            "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
        }])  # fmt: skip
        assert market.receive_json()["type"] == "next"
        time.sleep(0.3)  # several polls of every subscription (0.05 s apart)
        for session in (auditor, admin):
            session.send_json({"type": "ping"})
            assert session.receive_json() == {"type": "pong"}  # and no event before it


def test_live_subscriptions_are_capped_per_client_and_the_refusal_recorded(
    live: LiveHub,
) -> None:
    rectification = open_rectification(live)
    capped = replace(live.settings, feed_poll_seconds=0.05, client_subscriptions=2)
    with TestClient(create_app(capped)) as client:
        hub = LiveHub(client, live.settings, live.tokens)
        with connect(hub, live.tokens["market"]) as market:
            assert market.receive_json() == {"type": "connection_ack"}
            for operation in ("a", "b", "c"):
                market.send_json({"id": operation, "type": "subscribe",
                                  "payload": {"query": SUBSCRIBE, "variables": now(live)}})  # fmt: skip
            refused = market.receive_json()  # whichever came third
            assert refused == {
                "id": refused["id"],
                "type": "error",
                "payload": [{
                    "message": f"client:{live.tokens['market-id']} already has 2 live "
                    "subscriptions, the most one client may have (HUB_CLIENT_SUBSCRIPTIONS=2); "
                    "complete one before subscribing again, or subscribe once to several kinds "
                    "and owners",
                    "extensions": {"code": "RATE_LIMITED", "limit": "HUB_CLIENT_SUBSCRIPTIONS",
                                   "value": 2, "retryAfter": 1},
                }],
            }  # fmt: skip
            (record,) = live.sql(
                "SELECT outcome, operation_type FROM access_record ORDER BY seq DESC LIMIT 1"
            )
            assert tuple(record) == ("denied", "subscription")
            first, second = sorted({"a", "b", "c"} - {refused["id"]})
            # Completing one makes room for another.
            market.send_json({"id": first, "type": "complete"})
            market.send_json({"id": "d", "type": "subscribe",
                              "payload": {"query": SUBSCRIBE, "variables": now(live)}})  # fmt: skip
            graphql(client, PUBLISH, live.tokens["ecology"], records=[{
                "sourceId": "ECO-LIVE-4", "rectificationSourceId": rectification,
                "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
            }])  # fmt: skip
            events = [market.receive_json() for _ in range(2)]
            assert sorted((event["id"], event["type"]) for event in events) == sorted(
                [("d", "next"), (second, "next")]
            )


def test_operations_over_the_socket_are_priced_and_throttled_as_over_http(
    live: LiveHub,
) -> None:
    small = replace(
        live.settings, query_cost_budget=100, client_cost_burst=100, client_cost_per_second=1
    )
    with TestClient(create_app(small)) as client:
        hub = LiveHub(client, live.settings, live.tokens)
        with connect(hub, live.tokens["market"]) as market:
            assert market.receive_json() == {"type": "connection_ack"}
            market.send_json({"id": "feed", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            refused = market.receive_json()
            assert (refused["id"], refused["type"]) == ("feed", "error")
            assert refused["payload"][0]["extensions"] == {
                "code": "QUERY_TOO_COMPLEX", "cost": 3503, "budget": 100,
            }  # fmt: skip
            codes = []
            for n in range(5):  # 21 each, from a bucket of 100
                market.send_json({"id": f"q{n}", "type": "subscribe",
                                  "payload": {"query": "{ departments { code nameZh } }"}})  # fmt: skip
                answer = market.receive_json()
                if answer["type"] == "next":
                    assert market.receive_json() == {"id": f"q{n}", "type": "complete"}
                    codes.append("ok")
                else:
                    codes.append(answer["payload"][0]["extensions"]["code"])
            assert codes == ["ok", "ok", "ok", "ok", "RATE_LIMITED"]


FOLLOW = """subscription($after: String) { changes(after: $after, kinds: [ACCEPTANCE]) {
  endCursor changes { cursor change sourceId } } }"""


def subscribe(session: Any, operation: str, variables: dict[str, Any]) -> None:
    assert session.receive_json() == {"type": "connection_ack"}
    session.send_json({"id": operation, "type": "subscribe",
                       "payload": {"query": FOLLOW, "variables": variables}})  # fmt: skip


class Acceptance:
    """One acceptance of ecology's, published again with a new opinion: a change each time."""

    def __init__(self, live: LiveHub, source_id: str) -> None:
        self.live, self.source_id = live, source_id
        self.rectification, self.versions = open_rectification(live), 0

    def publish(self) -> None:
        self.versions += 1
        published = graphql(self.live.client, PUBLISH, self.live.tokens["ecology"], records=[{
            "sourceId": self.source_id, "rectificationSourceId": self.rectification,
            "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": f"同意验收 {self.versions}",
        }])  # fmt: skip
        counts = published["data"]["publishAcceptances"]
        assert counts["created"] + counts["updated"] == 1, published


def joined(live: LiveHub, members: int) -> None:
    """Until the feed listener holds ``members`` subscriptions: a pong says the hub read the
    subscribe message, not that the subscription has opened."""
    listener = live.client.app.state.listener  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while listener.members != members:
        assert time.monotonic() < deadline, f"{listener.members} of {members} joined"
        time.sleep(0.01)


def event_reads(statements: list[str]) -> list[str]:
    """What building live events read: not the feed listener's poll of the head (its pace is
    the clock's), nor the access log's appends (grouped as they arrive)."""
    return [
        s for s in statements
        if "access_record" not in s and "pg_advisory" not in s
        and not " ".join(s.split()).startswith("SELECT feed_head.seq FROM feed_head")
    ]  # fmt: skip


def test_an_event_is_built_once_for_all_subscribers_of_a_stream(
    live: LiveHub, sql_statements: Any
) -> None:
    """The statements of one publish and its event are the same for one subscriber as for
    six: one listener reads the feed and builds the event once per stream, not per poll of
    each subscriber; each subscriber still gets its own access record."""
    acceptance = Acceptance(live, "ECO-FAN")
    reads = []
    for subscribers in (1, 1, 6):  # the first warms the process's caches
        variables = now(live)
        with ExitStack() as sessions:
            opened = [
                sessions.enter_context(connect(live, live.tokens["market"]))
                for _ in range(subscribers)
            ]
            for number, session in enumerate(opened):
                subscribe(session, f"s{number}", variables)
            joined(live, subscribers)
            del sql_statements.statements[:]
            acceptance.publish()
            events = [session.receive_json() for session in opened]
            reads.append(event_reads(sql_statements.statements))
        assert {event["type"] for event in events} == {"next"}
        traces = {event["payload"]["extensions"]["traceId"] for event in events}
        assert len(traces) == subscribers  # a record each
        records = live.sql(
            "SELECT count(*) FROM access_record WHERE trace_id IN ("
            + ", ".join(f"'{trace}'" for trace in traces) + ")"
        )  # fmt: skip
        assert records == [(subscribers,)]
    assert len(reads[1]) == len(reads[2]), reads


def test_a_client_resumes_from_its_cursor_without_losing_or_repeating_a_change(
    live: LiveHub,
) -> None:
    acceptance = Acceptance(live, "ECO-RESUME")
    with connect(live, live.tokens["market"]) as market:
        subscribe(market, "a", now(live))
        acceptance.publish()
        first = market.receive_json()["payload"]["data"]["changes"]
    # Gone (a failed event, a dropped connection) while two more are published.
    acceptance.publish()
    acceptance.publish()
    with connect(live, live.tokens["market"]) as market:
        subscribe(market, "b", {"after": first["endCursor"]})
        seen: list[Any] = []
        while len(seen) < 2:
            seen += market.receive_json()["payload"]["data"]["changes"]["changes"]
        acceptance.publish()
        seen += market.receive_json()["payload"]["data"]["changes"]["changes"]
    assert [c["change"] for c in first["changes"]] == ["CREATED"]
    assert [c["change"] for c in seen] == ["UPDATED"] * 3
    cursors = [first["endCursor"]] + [c["cursor"] for c in seen]
    positions = [int(base64.urlsafe_b64decode(c).decode().split(":")[1]) for c in cursors]
    assert positions == sorted(set(positions))  # in order, none twice


def test_streams_go_when_their_members_do(live: LiveHub) -> None:
    """Subscriptions ended together (a revoked client's) leave no stream behind to be built
    at every publish for nobody."""
    acceptance = Acceptance(live, "ECO-GONE")
    listener = live.client.app.state.listener  # type: ignore[attr-defined]
    with connect(live, live.tokens["market"]) as market:
        assert market.receive_json() == {"type": "connection_ack"}
        start = now(live)
        for number in range(5):  # five streams: the operation names differ
            market.send_json({"id": f"z{number}", "type": "subscribe", "payload": {
                "query": FOLLOW.replace("subscription(", f"subscription Z{number}("),
                "variables": start}})  # fmt: skip
        joined(live, 5)
        assert listener.streams == 5

        async def revoke() -> None:
            engine = create_engine(live.settings)
            await revoke_client(engine, live.tokens["market-id"])
            await engine.dispose()

        asyncio.run(revoke())
        acceptance.publish()
        assert {market.receive_json()["type"] for _ in range(5)} == {"error"}
    deadline = time.monotonic() + 10
    while listener.streams:
        assert time.monotonic() < deadline, f"{listener.streams} streams left"
        time.sleep(0.05)


def test_a_refusal_that_cannot_be_recorded_still_ends_the_operation(live: LiveHub) -> None:
    """A bad subscribe message while the access log cannot be written: the operation ends
    with an error saying so (never silence, which would leave its id taken)."""
    if not live.settings.database_url.startswith("sqlite"):
        pytest.skip("locks the SQLite file")
    quick = replace(live.settings, feed_poll_seconds=0.05, lock_timeout_seconds=0.3)
    with TestClient(create_app(quick)) as client:
        hub = LiveHub(client, live.settings, live.tokens)
        with connect(hub, live.tokens["market"]) as market:
            assert market.receive_json() == {"type": "connection_ack"}
            path = live.settings.sqlite_path()
            assert path is not None
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another writer holds the file
            try:
                market.send_json({"id": "bad", "type": "subscribe", "payload": {"query": ""}})
                refused = market.receive_json()
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert (refused["id"], refused["type"]) == ("bad", "error")
            assert refused["payload"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            # The id is free again.
            market.send_json({"id": "bad", "type": "subscribe",
                              "payload": {"query": FOLLOW, "variables": now(live)}})  # fmt: skip
            market.send_json({"type": "ping"})
            assert market.receive_json() == {"type": "pong"}


def test_a_client_that_stops_reading_is_ended_and_only_what_it_was_sent_is_recorded_as_served(
    live: LiveHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.live.listener, "OUTBOX_LIMIT", 2)
    sending = Operation.send_operation_message

    async def slow(self: Any, message: Any) -> None:  # a client that reads slowly
        if message["type"] == "next":
            await asyncio.sleep(0.6)
        await sending(self, message)

    monkeypatch.setattr(Operation, "send_operation_message", slow)
    acceptance = Acceptance(live, "ECO-SLOW")
    ((before,),) = live.sql("SELECT coalesce(max(seq), 0) FROM access_record")
    with connect(live, live.tokens["market"]) as market:
        subscribe(market, "slow", now(live))
        joined(live, 1)
        for _ in range(5):
            acceptance.publish()
            time.sleep(0.1)
        received = [market.receive_json()]
        while received[-1]["type"] == "next":
            received.append(market.receive_json())
    assert received[-1]["payload"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "subscribe again with `after`" in received[-1]["payload"][0]["message"]
    sent = sorted(m["payload"]["extensions"]["traceId"] for m in received if m["type"] == "next")
    records = live.sql(
        f"SELECT outcome, trace_id, served FROM access_record WHERE seq > {before} "
        f"AND client = 'client:{live.tokens['market-id']}' ORDER BY seq"
    )
    served = sorted(trace for outcome, trace, _ in records if outcome == "ok")
    assert served == sent  # each event sent is recorded as served, none more
    assert [outcome for outcome, _, _ in records][-1] == "error"  # and the end, served nothing
    assert records[-1][2] == "[]"


def test_readyz_stays_ready_while_a_writer_holds_the_sqlite_file_for_a_moment(
    live: LiveHub,
) -> None:
    if not live.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    assert live.client.get("/readyz").status_code == 200
    path = live.settings.sqlite_path()
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as a publish in progress does, for its duration
    try:
        answer = live.client.get("/readyz")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 200, answer.json()


def test_a_close_reason_is_cut_to_whole_words_within_its_123_bytes() -> None:
    reason = ("UNAUTHENTICATED: the bearer token is not a token of this hub; check that it was "
              "copied whole, or ask the hub's administrator for a new one")  # fmt: skip
    cut = _cut(reason, 123)
    assert len(cut.encode()) <= 123
    assert cut.endswith(" the hub's…")
    assert _cut("审" * 60, 123) == "审" * 40 + "…"  # no space near: at a character
