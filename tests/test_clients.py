"""The hub as a department system's client sees it: the installed `hub serve` on a free port,
the change feed live over a real WebSocket with gql, and a publish over plain HTTP.

Starlette's TestClient speaks WebSocket without uvicorn, so it could not see that an install
from the README had no WebSocket protocol for uvicorn at all (every upgrade answered 405)."""

import asyncio
import importlib.metadata
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from hub.db import create_engine, upgrade
from hub.schema.feed import encode_cursor
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database
from tests.test_serve import demo_with_clients, readyz, serving
from tests.test_subscriptions import PUBLISH, SUBSCRIBE


def metrics(text: str) -> dict[str, float]:
    """Samples of a Prometheus scrape by name and labels, e.g. 'hub_requests_total{...}'."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found


async def one_row(settings: Settings, statement: str) -> Any:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        row = (await connection.execute(text(statement))).one()
    await engine.dispose()
    return row


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Any, Settings]]:
    """`hub serve` on a demo database of its own, with market and ecology clients."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {
            **os.environ,
            "HUB_DATABASE_URL": settings.database_url,
            "HUB_FEED_POLL_SECONDS": "0.1",
        }
        with serving(environment) as (_, port):
            yield port, tokens, settings


def test_a_subscriber_over_a_real_websocket_gets_another_departments_publish(
    served: tuple[int, dict[str, str], Settings],
) -> None:
    port, tokens, settings = served
    (rectification,) = asyncio.run(one_row(settings,
        "SELECT r.source_id FROM rectification r LEFT JOIN acceptance a "
        "ON a.rectification_id = r.id WHERE r.owner = 'ecology' AND a.id IS NULL "
        "ORDER BY r.id LIMIT 1"))  # fmt: skip
    (seq,) = asyncio.run(one_row(settings, "SELECT seq FROM feed_head"))

    async def scenario() -> dict[str, Any]:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{port}/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {tokens['market']}"},
        )
        async with Client(transport=transport) as session:
            changes = session.subscribe(
                GraphQLRequest(
                    SUBSCRIBE,
                    variable_values={
                        "after": encode_cursor("change", seq),
                        "kinds": ["ACCEPTANCE"],
                    },
                )
            )
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                published = await http.post(
                    "/graphql",
                    headers={"Authorization": f"Bearer {tokens['ecology']}"},
                    json={"query": PUBLISH, "variables": {"records": [{
                        "sourceId": "ECO-GQL-1", "rectificationSourceId": rectification,
                        "acceptedOn": "2026-11-10", "verdict": "PASSED", "opinion": "同意验收",
                    }]}},
                )  # fmt: skip
            assert published.json()["data"] == {"publishAcceptances": {"created": 1, "updated": 0}}
            event: dict[str, Any] = await asyncio.wait_for(anext(changes), timeout=30)
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                during = metrics((await http.get("/metrics")).text)
            assert during["hub_subscriptions_active"] == 1
            return event

    event = asyncio.run(scenario())
    assert event["changes"]["changes"] == [
        {"kind": "ACCEPTANCE", "change": "CREATED", "sourceId": "ECO-GQL-1",
         "owner": {"code": "ecology"}, "record": {"verdict": "PASSED"}},
    ]  # fmt: skip

    async def refused(token: str) -> str:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{port}/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {token}"},
        )
        with pytest.raises(TransportError) as closed:
            async with Client(transport=transport) as session:
                await anext(session.subscribe(GraphQLRequest(SUBSCRIBE)))
        frame = closed.value.__cause__.rcvd  # type: ignore[union-attr]
        return f"{frame.code} {frame.reason}"

    # The operator's dashboards: counts and timings from /metrics, nothing of what was read.
    scraped = httpx2.get(f"http://127.0.0.1:{port}/metrics")
    assert scraped.headers["content-type"].startswith("text/plain")
    after = metrics(scraped.text)
    assert after['hub_requests_total{code="none",outcome="ok"}'] >= 1  # the publish
    assert after["hub_subscriptions_active"] == 0
    assert after["hub_access_log_batch_records_count"] >= 2
    assert after['hub_request_seconds_count{operation="mutation"}'] == 1
    version = readyz(port)["policy_version"]
    assert after[f'hub_policy_version_info{{version="{version}"}}'] == 1
    assert "91" not in "".join(key for key in after if "uscc" in key.lower())

    # A bad token is told why, in the close frame a client library shows.
    said = asyncio.run(refused("hub_" + "x" * 43))
    assert said.startswith("4403 UNAUTHENTICATED: "), said


def test_the_install_itself_brings_uvicorn_a_websocket_protocol() -> None:
    """The test extras bring `websockets` too (gql needs it), so the test above would pass
    without it in the hub's own dependencies; the README's install has only those."""
    runtime = [r for r in importlib.metadata.requires("hub") or [] if "extra ==" not in r]
    assert any(re.match(r"(websockets|wsproto)\b", requirement) for requirement in runtime)


def test_gql_over_http_reads_the_canonical_case_with_and_without_a_purpose(
    served: tuple[int, dict[str, str], Settings],
) -> None:
    """The README's canonical case through gql's HTTP transport (aiohttp): market reads
    ecology's acceptance results, the opinion only with the purpose the demo's grant is for,
    sent percent-encoded as the README says."""
    port, tokens, settings = served
    (uscc,) = asyncio.run(one_row(settings,
        "SELECT e.uscc FROM acceptance a JOIN rectification r ON r.id = a.rectification_id "
        "JOIN enterprise e ON e.id = r.enterprise_id WHERE r.owner = 'ecology' "
        "ORDER BY a.id LIMIT 1"))  # fmt: skip
    query = """query($uscc: String!) { enterprise(uscc: $uscc) {
        rectifications { owner { code } acceptance { verdict opinion } } } }"""

    async def read(headers: dict[str, str]) -> Any:
        transport = AIOHTTPTransport(
            url=f"http://127.0.0.1:{port}/graphql",
            headers={"Authorization": f"Bearer {tokens['market']}", **headers},
        )
        async with Client(transport=transport) as session:
            try:
                return await session.execute(
                    GraphQLRequest(query, variable_values={"uscc": uscc})
                ), []
            except TransportQueryError as partial:  # data with errors: gql raises, with both
                return partial.data, partial.errors

    data, errors = asyncio.run(read({}))
    accepted = [r["acceptance"] for r in data["enterprise"]["rectifications"] if r["acceptance"]]
    assert accepted
    assert all(a["verdict"] and a["opinion"] is None for a in accepted)
    assert {e["extensions"]["code"] for e in errors} == {"PURPOSE_REQUIRED"}
    purpose = quote("rectification-check: 整改验收核查")
    data, errors = asyncio.run(read({"X-Hub-Purpose": purpose}))
    assert errors == []
    assert all(r["acceptance"]["opinion"] for r in data["enterprise"]["rectifications"]
               if r["acceptance"])  # fmt: skip
