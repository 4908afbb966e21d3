"""Trusted documents on the request path: a request names its document by text or by id,
and with HUB_TRUSTED_DOCUMENTS on, department and enterprise systems run only documents
registered for them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import parse, print_ast
from sqlalchemy import text
from starlette.testclient import TestClient

from hub.app import create_app
from hub.db import create_engine, upgrade
from hub.documents import register, retire
from hub.params import BadRequest, asked_for
from hub.schema import build_schema
from hub.settings import Settings
from tests.conftest import BACKENDS, Hub, fresh_database
from tests.test_serve import HUB, demo_with_clients, serving

QUERY = "query Names { departments { code } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()


@pytest.mark.parametrize(
    ("payload", "text", "digest"),
    [
        ({"query": QUERY}, QUERY, None),
        ({"documentId": f"sha256:{DIGEST}"}, None, DIGEST),
        ({"documentId": DIGEST.upper()}, None, DIGEST),  # a bare digest, any case
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}}, None, DIGEST),
        # Apollo's retry: the text with its hash, which must agree.
        ({"query": QUERY, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}},
         QUERY, DIGEST),
        ({"query": QUERY, "documentId": f"sha256:{DIGEST}",
          "extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}}, QUERY, DIGEST),
    ],
)  # fmt: skip
def test_a_request_names_its_document_by_text_or_id(
    payload: dict[str, Any], text: str | None, digest: str | None
) -> None:
    asked = asked_for(payload)
    assert (asked.query, asked.digest) == (text, digest)


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({}, 'or "documentId" the id (sha256:<hex>) of a document registered'),
        ({"documentId": "sha256:abc"}, '"documentId" must be "sha256:" and the 64 hexadecimal'),
        ({"documentId": 7}, '"documentId" must be "sha256:"'),
        ({"documentId": f"md5:{DIGEST}"}, '"documentId" must be "sha256:"'),
        ({"documentId": f"sha256:{DIGEST}\n"}, '"documentId" must be "sha256:"'),
        ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": DIGEST}}},
         '"extensions.persistedQuery" must be {"version": 1'),
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ["x"]}}},
         '"extensions.persistedQuery" must be'),
        ({"extensions": {"persistedQuery": "yes"}}, '"extensions.persistedQuery" must be'),
        ({"query": "{ departments { code } }", "documentId": f"sha256:{DIGEST}"},
         "the document's id is not the sha256 of the query sent with it"),
        ({"documentId": f"sha256:{DIGEST}",
          "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
         '"documentId" and "extensions.persistedQuery" name different documents'),
    ],
)  # fmt: skip
def test_a_malformed_document_id_is_refused_saying_what_to_send(
    payload: dict[str, Any], said: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        asked_for(payload)
    assert said in refused.value.message
    assert refused.value.status == 400


# The document a department system registers, as gql prints it (gql sends the text it prints,
# and a registered document matches byte for byte).
DOSSIER = print_ast(parse(
    "query Dossier($uscc: String!) { enterprise(uscc: $uscc) { uscc name inspections { "
    "sourceId inspectedOn } } }"
))  # fmt: skip
DOSSIER_ID = "sha256:" + hashlib.sha256(DOSSIER.encode()).hexdigest()
FREE = "{ enterprises(first: 2) { totalCount } }"
COLUMNS = {"COLUMNS": "250"}


def hub_command(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *arguments], env={**environment, **COLUMNS}, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


@pytest.fixture(params=BACKENDS)
def production(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`hub serve` with HUB_TRUSTED_DOCUMENTS=1 on demo data: market's system with its
    dossier registered by the installed `hub documents register`, market's developer, and
    ecology's system, which registered nothing."""
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url,
                       "HUB_TRUSTED_DOCUMENTS": "1"}  # fmt: skip
        developer = hub_command(environment, "clients", "create", "--department", "market",
                                "--name", "market developer", "--developer")  # fmt: skip
        assert developer.returncode == 0, developer.stderr
        tokens["developer"] = developer.stdout.strip()
        folder = tmp_path / "market-documents"
        folder.mkdir()
        (folder / "dossier.graphql").write_text(DOSSIER, encoding="utf-8")
        registered = hub_command(environment, "documents", "register", str(folder),
                                 "--client", "market")  # fmt: skip
        assert registered.returncode == 0, registered.stderr
        assert DOSSIER_ID in registered.stdout
        ((uscc,),) = asyncio.run(
            rows(settings, "SELECT uscc FROM enterprise ORDER BY uscc LIMIT 1")
        )
        with serving(environment) as (_, port):
            yield {"port": port, "tokens": tokens, "settings": settings, "uscc": uscc,
                   "environment": environment}  # fmt: skip


async def rows(settings: Settings, statement: str, **values: Any) -> list[Any]:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        found = list((await connection.execute(text(statement), values)).all())
    await engine.dispose()
    return found


async def through_gql(port: int, token: str, document: str, **variables: Any) -> dict[str, Any]:
    transport = AIOHTTPTransport(url=f"http://127.0.0.1:{port}/graphql",
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    async with Client(transport=transport) as session:
        answer: dict[str, Any] = await session.execute(
            GraphQLRequest(document, variable_values=variables or None)
        )
        return answer


def test_in_production_a_department_runs_its_registered_documents_and_nothing_else(
    production: dict[str, Any],
) -> None:
    port, tokens, uscc = production["port"], production["tokens"], production["uscc"]
    # A free query from market's system is refused, saying what to do, before it runs.
    with pytest.raises(TransportQueryError) as refused:
        asyncio.run(through_gql(port, tokens["market"], FREE))
    (error,) = refused.value.errors or []
    assert error["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
    free_id = "sha256:" + hashlib.sha256(print_ast(parse(FREE)).encode()).hexdigest()
    assert error["extensions"]["documentId"] == free_id
    assert "hub documents register FILE --client market" in error["message"]
    assert refused.value.data is None

    # Its registered dossier runs: by its text (as gql sends it), by id with POST and GET.
    by_text = asyncio.run(through_gql(port, tokens["market"], DOSSIER, uscc=uscc))
    assert by_text["enterprise"]["uscc"] == uscc
    bearer = {"Authorization": f"Bearer {tokens['market']}"}
    by_id = httpx2.post(f"http://127.0.0.1:{port}/graphql", headers=bearer,
                        json={"documentId": DOSSIER_ID, "variables": {"uscc": uscc}})  # fmt: skip
    assert by_id.status_code == 200
    assert by_id.json()["data"] == by_text
    by_get = httpx2.get(f"http://127.0.0.1:{port}/graphql", headers=bearer,
                        params={"documentId": DOSSIER_ID, "variables": json.dumps({"uscc": uscc})})  # fmt: skip
    assert by_get.json()["data"] == by_text
    by_hash = httpx2.post(f"http://127.0.0.1:{port}/graphql", headers=bearer, json={
        "variables": {"uscc": uscc}, "extensions": {"persistedQuery": {
            "version": 1, "sha256Hash": DOSSIER_ID.removeprefix("sha256:")}}})  # fmt: skip
    assert by_hash.json()["data"] == by_text

    # An id market never registered, and market's id sent by ecology: not found, named.
    for token, document in ((tokens["market"], "sha256:" + "0" * 64),
                            (tokens["ecology"], DOSSIER_ID)):  # fmt: skip
        unknown = httpx2.post(f"http://127.0.0.1:{port}/graphql",
                              headers={"Authorization": f"Bearer {token}",
                                       "Accept": "application/graphql-response+json"},
                              json={"documentId": document, "variables": {"uscc": uscc}})  # fmt: skip
        assert unknown.status_code == 400
        (error,) = unknown.json()["errors"]
        assert error["extensions"] == {"code": "PERSISTED_QUERY_NOT_FOUND", "documentId": document}
        assert f"no document {document} is registered for your system" in error["message"]

    # A developer's credential keeps free queries (GraphiQL).
    assert asyncio.run(through_gql(port, tokens["developer"], FREE))["enterprises"]["totalCount"]

    # Every request is recorded; the ones that ran the dossier name it.
    records = asyncio.run(rows(production["settings"],
        "SELECT client, document_id, outcome FROM access_record WHERE client LIKE 'client:%' "
        "ORDER BY seq"))  # fmt: skip
    named = [r for r in records if r.document_id == DOSSIER_ID]
    assert [r.outcome for r in named] == ["ok"] * 4
    assert "denied" in {r.outcome for r in records if r.document_id is None}
    listed = hub_command(production["environment"], "documents", "list", "--json")
    (usage,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (usage["id"], usage["client"], usage["requests"]) == (DOSSIER_ID, "market", 4)
    assert usage["operations"] == ["Dossier"]
    # The records naming documents, and the registration's own, keep the chain whole.
    verified = hub_command(production["environment"], "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_registering_checks_every_document_and_keeps_none_of_a_bad_batch(
    production: dict[str, Any], tmp_path: Path
) -> None:
    environment = production["environment"]
    good, bad = tmp_path / "good.graphql", tmp_path / "bad.graphql"
    good.write_text("query Departments { departments { code } }", encoding="utf-8")
    bad.write_text("query Broken {\n  departments { budget }\n}", encoding="utf-8")
    refused = hub_command(environment, "documents", "register", str(good), str(bad),
                          "--client", "market")  # fmt: skip
    assert refused.returncode == 1
    assert f"{bad}:2:17: Cannot query field 'budget' on type 'Department'." in refused.stderr
    for arguments, said in (
        ((str(good), "--client", "nobody"), "no client is named 'nobody'"),
        ((str(tmp_path / "missing"), "--client", "market"), "no such file or folder"),
    ):
        failed = hub_command(environment, "documents", "register", *arguments)
        assert (failed.returncode, said in failed.stderr) == (1, True), failed.stderr
    listed = hub_command(environment, "documents", "list", "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [DOSSIER_ID]
    again = hub_command(environment, "documents", "register", str(good), "--client", "market")
    assert again.returncode == 0, again.stderr
    assert "1 of 1 documents newly registered for market" in " ".join(again.stderr.split())
    twice = hub_command(environment, "documents", "register", str(good), "--client", "market")
    assert "already registered" in twice.stdout


def test_in_production_a_websocket_runs_registered_documents_only(
    production: dict[str, Any],
) -> None:
    port, tokens, uscc = production["port"], production["tokens"], production["uscc"]

    async def over_websocket(document: str, **variables: Any) -> dict[str, Any]:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{port}/graphql",
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {tokens['market']}"},
        )
        async with Client(transport=transport) as session:
            answer: dict[str, Any] = await session.execute(
                GraphQLRequest(document, variable_values=variables or None)
            )
            return answer

    with pytest.raises(TransportQueryError) as refused:
        asyncio.run(over_websocket("subscription { changes { changes { sourceId } } }"))
    assert (refused.value.errors or [{}])[0]["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
    assert asyncio.run(over_websocket(DOSSIER, uscc=uscc))["enterprise"]["uscc"] == uscc
    named = asyncio.run(rows(production["settings"],
        "SELECT count(*) FROM access_record WHERE document_id = :id", id=DOSSIER_ID))  # fmt: skip
    assert named[0][0] == 1


def test_open_hubs_take_ids_and_the_automatic_persisted_query_retry(writable: Hub) -> None:
    """Trusted documents off (the default): an unknown hash is PERSISTED_QUERY_NOT_FOUND,
    which Apollo Client and urql answer by sending the text with its hash; that runs."""
    names = "query Names { departments { code } }"
    digest = hashlib.sha256(names.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    first = post(writable, "market", {"extensions": persisted})
    assert first["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert first["errors"][0]["message"].endswith("or send its text as query")
    retry = post(writable, "market", {"query": names, "extensions": persisted})
    assert len(retry["data"]["departments"]) == 10
    assert document_of(writable, retry) is None  # not a registered document
    # Registered, it runs by id on an open hub too, and its records name it.
    register_for(writable, "market system", names)
    by_id = post(writable, "market", {"documentId": f"sha256:{digest}"})
    assert by_id["data"] == retry["data"]
    assert document_of(writable, by_id) == f"sha256:{digest}"


def test_retired_documents_stop_and_auditors_keep_free_queries(writable: Hub) -> None:
    names = "query Names { departments { code } }"
    digest = hashlib.sha256(names.encode()).hexdigest()
    register_for(writable, "market system", names)
    trusted = replace(writable.settings, trusted_documents=True)
    with TestClient(create_app(trusted)) as client:
        production = Hub(client, trusted, writable.tokens)
        assert post(production, "market", {"documentId": f"sha256:{digest}"})["data"]
        assert post(production, "market", {"query": names})["data"]  # its text, byte for byte
        # Reformatted, it is another document.
        spaced = post(production, "market", {"query": names.replace(" {", "  {")})
        assert spaced["errors"][0]["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"
        asyncio.run(retire(create_engine(trusted), "market system", digest, "test operator"))
        gone = post(production, "market", {"documentId": f"sha256:{digest}"})
        assert gone["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert post(production, "auditor", {"query": "{ departments { code } }"})["data"]


def post(hub: Hub, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    response = hub.client.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {hub.tokens[caller]}"}
    )
    answer: dict[str, Any] = response.json()
    return answer


def document_of(hub: Hub, answer: dict[str, Any]) -> str | None:
    ((document,),) = hub.sql("SELECT document_id FROM access_record WHERE trace_id = :t",
                             t=answer["extensions"]["traceId"])  # fmt: skip
    return str(document) if document else None


def register_for(hub: Hub, client: str, document: str) -> None:
    engine = create_engine(hub.settings)
    registered, _ = asyncio.run(
        register(engine, client, [("names.graphql", document)], "test operator",
                 build_schema()._schema)
    )  # fmt: skip
    assert [r.new for r in registered] == [True]
