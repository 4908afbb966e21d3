"""Every value a caller controls is checked before it enters a record (hub/params.py), and
one request's record can never fail another's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from hub.audit import AccessEntry, AccessLog, verify
from hub.db import create_engine, upgrade
from hub.params import BadRequest, header_text, params, parse_body
from hub.settings import Settings
from tests.conftest import BACKENDS, fresh_database
from tests.test_serve import HUB, free_port, readyz, wait_for

DEEP = "[" * 40 + "]" * 40


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1], 'the request body must be a JSON object {"query": ...}'),
        ({"query": 5}, '"query" must be a non-empty string with a GraphQL document'),
        ({"query": "{ a }", "operationName": {}}, '"operationName" must be a string naming an operation of the document'),
        ({"query": "{ a }", "operationName": []}, '"operationName" must be a string naming an operation of the document'),
        ({"query": "{ a }", "operationName": "A" * 201}, '"operationName" must be a GraphQL name (letters, digits, _) of at most 200 characters, naming an operation of the document'),
        ({"query": "{ a }", "operationName": "A\x00"}, '"operationName" must be a GraphQL name (letters, digits, _) of at most 200 characters, naming an operation of the document'),
        ({"query": "{ a }", "variables": []}, '"variables" must be a JSON object of variable values, or null'),
        ({"query": "{ a }", "variables": "x"}, '"variables" must be a JSON object of variable values, or null'),
        ({"query": "{ a }", "extensions": [1]}, '"extensions" must be a JSON object, or null'),
        ({"query": "{ a(b: 1) }\x00"}, '"query" holds a control character (U+0000 at position 12); send the document as plain text'),
        ({"query": "{ a }", "variables": {"r": [{"o": "ok\ud800"}]}}, "variables.r[0].o holds a lone surrogate (U+D800 at position 3); remove it"),
        ({"query": "{ a }", "variables": {"r": {"o": "\x1b[2J"}}}, "variables.r.o holds a control character (U+001B at position 1); remove it"),
        ({"query": "{ a }", "variables": {"k\x00": 1}}, "a key in variables holds a control character (U+0000 at position 2)"),
        ({"query": "{ a }", "variables": {"n": float("inf")}}, "variables.n is not a number the hub can take"),
        ({"query": "{ a }", "variables": {"d": json.loads(DEEP)}}, "variables nest deeper than 32 levels"),
    ],
)  # fmt: skip
def test_parameters_are_refused_naming_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        params(payload)
    assert refused.value.message == message
    assert refused.value.status == 400


def test_good_parameters_pass_whole() -> None:
    checked = params({"query": "query Q($t: String) { a(t: $t) }", "operationName": "Q",
                      "variables": {"t": "整改到位\n同意验收\t"}, "extensions": None})  # fmt: skip
    assert (checked.query, checked.variables, checked.operation_name) == (
        "query Q($t: String) { a(t: $t) }", {"t": "整改到位\n同意验收\t"}, "Q"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "the request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b'{"query": NaN}', "the request body holds NaN, which is not a JSON number"),
        (b'{"query": "{ a }", "variables": {"x": -Infinity}}', "the request body holds -Infinity, which is not a JSON number"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "the request body nests deeper than 32 levels"),
        (b"\xff\xfe", "the request body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ],
)  # fmt: skip
def test_bodies_that_are_not_json_a_client_could_mean(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_body(body)
    assert refused.value.message == message


@pytest.mark.parametrize(
    ("raw", "value", "problem"),
    [
        ("rectification-check:%20%E6%95%B4%E6%94%B9", "rectification-check: 整改", None),
        ("  ", None, None),
        ("%00", "\x00", "X-Hub-Purpose holds a control character (U+0000 at position 1); send plain text"),
        ("a%1B[31m", "a\x1b[31m", "X-Hub-Purpose holds a control character (U+001B at position 2); send plain text"),
        ("%FF", "%FF", "X-Hub-Purpose must be UTF-8 text (percent-encoding is fine)"),
        ("x" * 501, "x" * 501, "X-Hub-Purpose is longer than 500 characters"),
    ],
)  # fmt: skip
def test_free_text_headers(raw: str, value: str | None, problem: str | None) -> None:
    assert header_text(raw, "X-Hub-Purpose") == (value, problem)


def last_records(settings: Settings, count: int) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT * FROM access_record ORDER BY seq DESC LIMIT :n"), {"n": count}
            )
            found = [dict(row._mapping) for row in rows]
        await engine.dispose()
        return found

    return asyncio.run(run())


HOSTILE = [
    ({"X-Hub-Purpose": "%00"}, {"query": "{ departments { code } }"},
     "X-Hub-Purpose holds a control character (U+0000 at position 1); send plain text",
     {"purpose": "\\x00"}),
    ({"X-Hub-Case": "330106%00-2026"}, {"query": "{ departments { code } }"},
     "X-Hub-Case holds a control character (U+0000 at position 7); send plain text",
     {"case_ref": "330106\\x00-2026"}),
    ({}, {"query": "{ departments { code } }", "operationName": "Q" * 300},
     '"operationName" must be a GraphQL name (letters, digits, _) of at most 200 characters, '
     "naming an operation of the document",
     {"operation_name": "Q" * 199 + "…"}),
    ({}, {"query": "{ departments { code } }", "operationName": "Q\x00"},
     '"operationName" must be a GraphQL name (letters, digits, _) of at most 200 characters, '
     "naming an operation of the document",
     {"operation_name": "Q\\x00"}),
    ({}, {"query": "{ departments { code } }", "operationName": {}},
     '"operationName" must be a string naming an operation of the document', {}),
    ({}, {"query": "{ x }", "variables": {"a": "\ud800"}},
     "variables.a holds a lone surrogate (U+D800 at position 1); remove it", {}),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "body", "message", "kept"), HOSTILE)
def test_hostile_values_are_refused_and_the_refusal_recorded(
    hub: TestClient,
    demo_database: Settings,
    tokens: dict[str, str],
    headers: dict[str, str],
    body: dict[str, Any],
    message: str,
    kept: dict[str, str],
) -> None:
    for token in (None, tokens["market"]):  # with and without a credential
        sent = {**headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        content = json.dumps(body, ensure_ascii=True)  # lone surrogates travel as escapes
        response = hub.post(
            "/graphql", content=content, headers={**sent, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        answer = response.json()
        assert answer["errors"] == [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]
        (record,) = last_records(demo_database, 1)
        assert record["trace_id"] == answer["extensions"]["traceId"]
        assert record["outcome"] == "error"
        assert {name: record[name] for name in kept} == kept


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ('"\\u0000"', "A string of the document holds a control character (U+0000 at position 1)."),
        ('"\\u001b[2J"', "A string of the document holds a control character (U+001B at position 1)."),
        ('"a\\uD800"', "Syntax Error: Invalid Unicode escape sequence: '\\uD800'."),
    ],
)  # fmt: skip
def test_escapes_in_the_documents_strings_are_checked_too(
    hub: TestClient, tokens: dict[str, str], literal: str, message: str
) -> None:
    query = f"{{ enterprises(filter: {{region: {literal}}}) {{ totalCount }} }}"
    response = hub.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {tokens['market']}"}
    )
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert error["message"] == message
    assert "data" not in response.json()


# One member of a group commit that the database refuses: the others are written.
POISON = {
    "sqlite": ["CREATE TRIGGER poison BEFORE INSERT ON access_record WHEN NEW.operation_name = "
               "'Poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"],
    "postgresql": ["CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.operation_name = 'Poison' THEN RAISE EXCEPTION 'refused'; END IF; "
                   "RETURN NEW; END $$",
                   "CREATE TRIGGER poison BEFORE INSERT ON access_record FOR EACH ROW "
                   "EXECUTE FUNCTION poison()"],
}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        yield settings


def test_a_record_the_database_refuses_fails_only_its_own_request(migrated: Settings) -> None:
    async def scenario() -> list[Any]:
        engine = create_engine(migrated)
        async with engine.begin() as connection:
            for statement in POISON[engine.dialect.name]:
                await connection.execute(text(statement))
        log = AccessLog(engine)
        entries = [
            AccessEntry(recorded_at=datetime.now(UTC), outcome="ok", trace_id=f"{n:032x}",
                        duration_us=1, operation_name="Poison" if n == 3 else f"Q{n}")
            for n in range(8)
        ]  # fmt: skip
        results = await asyncio.gather(*(log.append(e) for e in entries), return_exceptions=True)
        verification = await verify(engine)
        left = 0  # connections the pool keeps inside a transaction (PostgreSQL tells)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as connection:
                left = (await connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%'"
                ))).scalar_one()  # fmt: skip
        await engine.dispose()
        return [*results, verification, left]

    *results, verification, left = asyncio.run(scenario())
    assert left == 0
    failed = [n for n, result in enumerate(results) if isinstance(result, Exception)]
    assert failed == [3]
    assert sorted(r for r in results if isinstance(r, int)) == list(range(1, 8))
    assert (verification.ok, verification.records) == (True, 7)


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Settings, str]]:
    """`hub serve` on a demo database of its own, with a market client."""
    with fresh_database(request.param, tmp_path) as settings:
        # The crowd's honest requests share one token, 50 at once: within its limit here.
        env = {**os.environ, "HUB_DATABASE_URL": settings.database_url, "COLUMNS": "200",
               "HUB_CLIENT_CONCURRENCY": "64"}  # fmt: skip
        subprocess.run([HUB, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([HUB, "demo", "load", "--enterprises", "20"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        created = subprocess.run(
            [HUB, "clients", "create", "--department", "market", "--name", "market system"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        token = next(w for w in created.stdout.split() if w.startswith("hub_"))
        port = free_port()
        process = subprocess.Popen([HUB, "serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for(lambda: readyz(port)["status"] == "ready")
            yield port, settings, token
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_hostile_requests_in_a_crowd_fail_no_one_else(served: tuple[int, Settings, str]) -> None:
    """200 honest requests and 100 hostile ones (no token, values a database cannot store)
    at once, against the hub as it runs: every honest one is answered, every hostile one
    refused, and each is on the record."""
    port, settings, token = served
    before = len(last_records(settings, 100_000))
    hostile = [
        ({"X-Hub-Purpose": "%00"}, {"query": "{ departments { code } }"}),
        ({"X-Hub-Case": "a%00b"}, {"query": "{ departments { code } }"}),
        ({}, {"query": "{ departments { code } }", "operationName": "Q" * 250}),
        ({}, {"query": "{ departments { code } }", "operationName": "Q\u0000"}),
    ]

    async def crowd() -> Counter[tuple[str, int]]:
        limits = httpx2.Limits(max_connections=50)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                      timeout=60) as client:  # fmt: skip

            async def honest() -> tuple[str, int]:
                response = await client.post(
                    "/graphql", json={"query": "{ departments { code } }"},
                    headers={"Authorization": f"Bearer {token}"},
                )  # fmt: skip
                ok = response.status_code == 200 and "errors" not in response.json()
                return "honest", 200 if ok else response.status_code

            async def attack(n: int) -> tuple[str, int]:
                headers, body = hostile[n % len(hostile)]
                response = await client.post("/graphql", json=body, headers=headers)
                return "hostile", response.status_code

            calls = [honest() for _ in range(200)] + [attack(n) for n in range(100)]
            return Counter(await asyncio.gather(*calls))

    assert asyncio.run(crowd()) == {("honest", 200): 200, ("hostile", 400): 100}
    records = last_records(settings, 100_000)
    assert len(records) == before + 300
    assert Counter(r["outcome"] for r in records[:300]) == {"ok": 200, "error": 100}

    async def check() -> Any:
        engine = create_engine(settings)
        verification = await verify(engine)
        await engine.dispose()
        return verification

    assert asyncio.run(check()).ok


def test_connection_init_values_are_text_already() -> None:
    """Over WebSocket the purpose arrives in JSON: raw UTF-8 text works as well as
    percent-encoded (over HTTP a header holds Latin-1 bytes, so only the latter can)."""
    for raw in ("rectification-check: 整改验收核查", "rectification-check:%20%E6%95%B4%E6%94%B9%E9%AA%8C%E6%94%B6%E6%A0%B8%E6%9F%A5"):  # fmt: skip
        assert header_text(raw, "X-Hub-Purpose", decoded=True) == (
            "rectification-check: 整改验收核查",
            None,
        )
    assert header_text("café", "X-Hub-Purpose", decoded=True) == ("café", None)
