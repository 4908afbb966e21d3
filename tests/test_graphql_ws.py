"""The graphql-transport-ws protocol's reference client, graphql-ws (npm, run in Node.js by
tests/conformance/subscribe.mjs), against the installed `hub serve`: it subscribes beside
gql's WebSocket transport and both receive the same event when another department
publishes; a wrong token is refused with the close code and reason graphql-ws reports; a
subscription the hub cannot open ends in an ``error`` message graphql-ws accepts; a query
over the socket ends in ``complete``.

graphql-ws checks every message it receives (validateMessage) and closes the socket with
4004 "Bad response" on one it rejects, so these runs would fail on a malformed message."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import text

from hub.db import create_engine, upgrade
from hub.schema.feed import encode_cursor
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database
from tests.node import started
from tests.test_clients import metrics, one_row
from tests.test_serve import demo_with_clients, serving
from tests.test_subscriptions import PUBLISH, SUBSCRIBE

SECONDS = 20  # the longest a node subscriber may take; it exits with status 3 after


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`hub serve` on a demo database of its own, with market and ecology clients; shared
    by this module's tests (one server start per backend)."""
    with fresh_database(request.param, tmp_path_factory.mktemp("graphql-ws")) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url,
                       "HUB_FEED_POLL_SECONDS": "0.1"}  # fmt: skip
        with serving(environment) as (_, port):
            yield {"port": port, "tokens": tokens, "settings": settings}


def subscriber(port: int, token: str, *options: str) -> subprocess.Popen[str]:
    """graphql-ws subscribing to the change feed (subscribe.mjs's fixed document)."""
    return started("subscribe.mjs", "--url", f"ws://127.0.0.1:{port}/graphql",
                   "--timeout", str(SECONDS), *options, token=token)  # fmt: skip


def outcome_of(process: subprocess.Popen[str]) -> tuple[int, list[Any], Any]:
    """A node subscriber's exit status, the payloads it printed, and what ended it."""
    try:
        output, said = process.communicate(timeout=SECONDS + 10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    lines = [json.loads(line) for line in output.splitlines()]
    last = said.strip().rpartition("\n")[2]  # after any warning Node.js printed
    try:
        return process.returncode, lines, json.loads(last) if last else None
    except json.JSONDecodeError:  # node itself failed: its words, for the assertion
        return process.returncode, lines, said


def live(port: int, members: int, node: subprocess.Popen[str] | None = None) -> None:
    """Until the hub holds ``members`` open subscriptions (so the event comes to them live,
    not as a replay from the cursor); fails at once with its words if ``node`` ends first."""
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        if node is not None and node.poll() is not None:
            raise AssertionError(f"graphql-ws ended first: {outcome_of(node)}")
        found = metrics(httpx2.get(f"http://127.0.0.1:{port}/metrics").text)
        if found["hub_subscriptions_active"] == members:
            return
        time.sleep(0.05)
    raise AssertionError(f"{members} subscriptions did not open in {SECONDS} s")


async def traced(settings: Settings, *trace_ids: str) -> list[tuple[str, str, str]]:
    """The access records with these trace ids: client, outcome, operation type."""
    engine = create_engine(settings)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT trace_id, client, outcome, operation_type FROM access_record")
        )
        found = sorted((row[1], row[2], row[3]) for row in rows if row[0] in trace_ids)
    await engine.dispose()
    return found


def test_graphql_ws_and_gql_receive_the_same_event_of_another_departments_publish(
    served: dict[str, Any],
) -> None:
    port, tokens, settings = served["port"], served["tokens"], served["settings"]
    (rectification,) = asyncio.run(one_row(settings,
        "SELECT r.source_id FROM rectification r LEFT JOIN acceptance a "
        "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
        "ORDER BY r.id LIMIT 1"))  # fmt: skip
    (seq,) = asyncio.run(one_row(settings, "SELECT seq FROM feed_head"))
    variables = {"after": encode_cursor("change", seq), "kinds": ["ACCEPTANCE"]}
    node = subscriber(port, tokens["market"], "--variables", json.dumps(variables))

    async def scenario() -> Any:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{port}/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {tokens['market']}"},
        )
        async with Client(transport=transport) as session:
            changes = session.subscribe(
                GraphQLRequest(SUBSCRIBE, variable_values=variables), get_execution_result=True
            )
            first = asyncio.create_task(anext(changes))
            await asyncio.to_thread(live, port, 2, node)  # graphql-ws's and gql's, side by side
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                published = await http.post(
                    "/graphql",
                    headers={"Authorization": f"Bearer {tokens['ecology']}"},
                    json={"query": PUBLISH, "variables": {"records": [{
                        "sourceId": "ECO-WS-1", "rectificationSourceId": rectification,
                        "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
                    }]}},
                )  # fmt: skip
            assert published.json()["data"] == {"publishAcceptances": {"created": 1, "updated": 0}}
            event = await asyncio.wait_for(first, timeout=SECONDS)
            # Stopped here, not by leaving the session: gql's close would wait 10 s for this
            # suspended generator to take the end it queues for it.
            await changes.aclose()
            return event

    try:
        by_gql = asyncio.run(scenario())
    finally:
        status, payloads, said = outcome_of(node)
    assert (status, said) == (0, None)
    (by_graphql_ws,) = payloads
    assert by_graphql_ws["data"] == by_gql.data
    assert by_gql.data["changes"]["changes"] == [
        {"kind": "ACCEPTANCE", "change": "CREATED", "sourceId": "ECO-WS-1",
         "owner": {"code": "ecology"}, "record": {"verdict": "PASSED"}},
    ]  # fmt: skip
    # The same event, and each subscriber's own access record of it, named in the payload.
    assert set(by_graphql_ws) == {"data", "extensions"}
    trace_ids = (by_graphql_ws["extensions"]["traceId"], by_gql.extensions["traceId"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", trace_id) for trace_id in trace_ids)
    assert trace_ids[0] != trace_ids[1]
    market = asyncio.run(one_row(settings, "SELECT id FROM client WHERE name = 'market'"))[0]
    records = asyncio.run(traced(settings, *trace_ids))
    assert records == [(f"client:{market}", "ok", "subscription")] * 2
    live(port, 0)  # both have left, graphql-ws by its complete and close


def test_graphql_ws_reports_a_wrong_token_as_the_hubs_refusal(served: dict[str, Any]) -> None:
    """The hub refuses connection_init with 4403 and its reason; graphql-ws hands both to the
    application (its default would retry a 4403 five times: subscribe.mjs does not)."""
    status, payloads, said = outcome_of(subscriber(served["port"], "hub_" + "x" * 43))
    assert (status, payloads) == (1, [])
    assert said["closed"]["code"] == 4403
    reason = said["closed"]["reason"]
    assert reason.startswith("UNAUTHENTICATED: the bearer token is not a token of this hub; "
                             "check that it was copied whole"), reason  # fmt: skip
    assert len(reason.encode()) <= 123  # what a close frame holds


def test_graphql_ws_accepts_the_hubs_error_for_a_subscription_it_cannot_open(
    served: dict[str, Any],
) -> None:
    """A foreign cursor: the hub answers ``error`` with its code (no ``next``, no close), a
    message graphql-ws validates and passes on."""
    variables = json.dumps({"after": encode_cursor("enterprise", 1)})  # not the feed's
    process = subscriber(served["port"], served["tokens"]["market"], "--variables", variables)
    status, payloads, said = outcome_of(process)
    assert (status, payloads) == (1, [])
    cursor = encode_cursor("enterprise", 1)
    assert said == {"errors": [{
        "message": f"after={cursor!r} is not a change cursor from this hub; pass the endCursor "
                   "of your previous call, or omit after to start from the beginning",
        "extensions": {"code": "BAD_USER_INPUT", "argument": "after"},
    }]}  # fmt: skip


def test_graphql_ws_gets_a_query_over_the_socket_as_one_next_then_complete(
    served: dict[str, Any],
) -> None:
    """The protocol runs queries too: one ``next``, then the hub's ``complete`` (subscribe.mjs
    waits for a second event, so it ends on the complete and says after how many)."""
    process = subscriber(served["port"], served["tokens"]["market"],
                         "--query", "query Who { __typename }", "--events", "2")  # fmt: skip
    status, payloads, said = outcome_of(process)
    assert (status, said) == (4, {"completed": 1})
    (answer,) = payloads
    assert answer["data"] == {"__typename": "Query"}
    assert re.fullmatch(r"[0-9a-f]{32}", answer["extensions"]["traceId"])
