"""GraphQL over HTTP: what a caller gets back for good and bad requests."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from hub import graphql_http
from hub.app import create_app
from hub.compiled import Plans
from hub.db import create_engine
from hub.schema import Access, build_schema
from hub.schema.access import selected_coordinates
from hub.schema.limits import MAX_CACHED_QUERY, ShortParserCache, ShortValidationCache
from hub.schema.loaders import Reader
from hub.settings import Settings


def post(client: TestClient, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    if isinstance(body, dict | list):
        response = client.post("/graphql", json=body, headers=headers)
    else:
        response = client.post("/graphql", content=body, headers=headers)
    return response.status_code, response.json()


def only_error(answer: dict[str, Any]) -> dict[str, Any]:
    (error,) = answer["errors"]
    assert set(error) <= {"message", "locations", "path", "extensions"}
    return error


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (
            '{ enterprise(uscc: "91110000600037341X") { name } }',
            None,
            "'91110000600037341X' is not a valid unified social credit code: the check "
            "character (position 18) should be 'L', not 'X'; the code was probably mistyped",
        ),
        (
            '{ enterprise(uscc: "123") { name } }',
            None,
            "'123' is not a valid unified social credit code: it must be 18 characters long, not 3",
        ),
        (
            "{ enterprises(first: 0) { totalCount } }",
            None,
            "first must be between 1 and 100, not 0; fetch more with the after cursor",
        ),
        (
            "{ enterprises(first: 101) { totalCount } }",
            None,
            "first must be between 1 and 100, not 101; fetch more with the after cursor",
        ),
        (
            "{ enterprises(first: -5) { totalCount } }",
            None,
            "first must be between 1 and 100, not -5; fetch more with the after cursor",
        ),
        (
            '{ enterprises(after: "bm90LWEtY3Vyc29y") { totalCount } }',
            None,
            "after='bm90LWEtY3Vyc29y' is not a cursor from this hub; pass pageInfo.endCursor "
            "of the previous page, or omit after to start at the beginning",
        ),
        (
            "query($s: Date, $u: Date) { enterprises(first: 1) { edges { node {"
            " penalties(since: $s, until: $u) { id } } } } }",
            {"s": "2025-02-01", "u": "2025-01-01"},
            "since (2025-02-01) is after until (2025-01-01); give the earlier day as since",
        ),
    ],
)
def test_bad_arguments_are_bad_user_input_with_a_path(
    client: TestClient, query: str, variables: Any, message: str
) -> None:
    status, answer = post(client, {"query": query, "variables": variables})
    assert status == 200
    error = only_error(answer)
    assert error["message"] == message
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"][0] in {"enterprise", "enterprises"}
    assert "data" in answer  # execution ran: the rest of the answer could still come back


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        ("{ enterprise { nme } }", None, "Cannot query field 'nme' on type 'Enterprise'."),
        ("{ enterprise(uscc: 5) { name } }", None, "String cannot represent a non string value"),
        ("{ enterprises(first: 99999999999) { totalCount } }", None, "non 32-bit signed integer"),
        ("{ enterprise(uscc: ", None, "Syntax Error"),
        (
            "query($d: Date) { enterprises { edges { node { inspections(since: $d) { id } } } } }",
            {"d": "2024-13-01"},
            'Value cannot represent a Date: "2024-13-01". month must be in 1..12',
        ),
        ("query($n: Int!) { enterprises(first: $n) { totalCount } }", {}, "'Int!' to be provided"),
        ("mutation { publish }", None, "Cannot query field 'publish' on type 'Mutation'."),
    ],
)
def test_rejected_documents_are_bad_user_input_without_data(
    client: TestClient, query: str, variables: Any, message: str
) -> None:
    status, answer = post(client, {"query": query, "variables": variables})
    assert status == 200
    assert "data" not in answer
    assert answer["errors"]
    assert all(error["extensions"] == {"code": "BAD_USER_INPUT"} for error in answer["errors"])
    assert message in answer["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ("{not json", {"content-type": "application/json"}, 400, "the request body is not valid JSON"),
        ([1, 2], {}, 400, 'the request body must be a JSON object {"query": ...}'),
        ({"query": ""}, {}, 400, '"query" must be a non-empty string with a GraphQL document'),
        ({"query": 7}, {}, 400, '"query" must be a non-empty string with a GraphQL document'),
        ({"query": "{ departments { code } }", "variables": [1]}, {}, 400, '"variables" must be a JSON object'),
        ({"query": "{ departments { code } }", "operationName": 3}, {}, 400, '"operationName" must be a string'),
        ({"query": "query A { departments { code } }", "operationName": "B"}, {}, 400, 'Unknown operation named "B".'),
        ("query=x", {"content-type": "application/x-www-form-urlencoded"}, 415, "send the GraphQL request as JSON"),
        ({"query": "subscription { departments { code } }"}, {}, 400, "subscriptions are not allowed"),
    ],
)  # fmt: skip
def test_malformed_requests_get_an_http_error_with_a_code(
    client: TestClient, body: Any, headers: dict[str, str], status: int, message: str
) -> None:
    got_status, answer = post(client, body, **headers)
    assert got_status == status
    error = only_error(answer)
    assert error["message"].startswith(message)
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}


def test_large_bodies_are_refused_before_parsing(
    demo_database: Settings, tokens: dict[str, str]
) -> None:
    settings = Settings(database_url=demo_database.database_url, max_request_bytes=200)
    auth = {"Authorization": f"Bearer {tokens['ecology']}"}
    with TestClient(create_app(settings), headers=auth) as small:
        status, answer = post(small, {"query": "{ departments { code } }" + " " * 300})
        assert status == 413
        assert only_error(answer) == {
            "message": "the request body is larger than 200 bytes",
            "extensions": {"code": "BAD_USER_INPUT"},
        }
        status, answer = post(small, {"query": "{ departments { code } }"})
        assert status == 200
        assert len(answer["data"]["departments"]) == 10


def test_defects_are_internal_with_a_reference_and_nothing_else(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Access, type_name: str) -> tuple[str, ...]:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    monkeypatch.setattr(Access, "visible_owners", broken)
    status, answer = post(client, {"query": "{ enterprises { totalCount } }"})
    assert status == 200
    assert answer["data"] is None
    error = only_error(answer)
    reference = error["extensions"]["reference"]
    assert error == {
        "message": f"The hub failed to answer this part (reference {reference}); please report it.",
        "locations": [{"line": 1, "column": 3}],
        "path": ["enterprises"],
        "extensions": {"code": "INTERNAL", "reference": reference},
    }
    assert "hunter2" in caplog.text  # operators get the details, under the same reference
    assert reference in caplog.text


def test_failures_outside_graphql_are_internal_json_too(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    close = Reader.close

    async def broken(self: Reader) -> None:
        await close(self)
        raise RuntimeError("the reader at 10.0.0.7 broke")

    monkeypatch.setattr(Reader, "close", broken)
    # An app of its own: an engine's connections belong to the event loop that opened them,
    # and each TestClient runs its app on a loop of its own.
    settings = Settings(
        database_url=str(client.app.state.engine.url.render_as_string(hide_password=False)),
        policy_dir=client.app.state.policies.directory,
    )
    with TestClient(
        create_app(settings), headers=client.headers, raise_server_exceptions=False
    ) as plain:
        response = plain.post("/graphql", json={"query": "{ departments { code } }"})
    assert response.status_code == 500
    error = only_error(response.json())
    reference = error["extensions"]["reference"]
    assert error == {
        "message": f"The hub failed to answer this part (reference {reference}); please report it.",
        "extensions": {"code": "INTERNAL", "reference": reference},
    }
    assert "10.0.0.7" in caplog.text


def test_server_keeps_answering_after_errors(client: TestClient) -> None:
    for body in ("{", {"query": "{ nope }"}, {"query": '{ enterprise(uscc: "x") { name } }'}):
        post(client, body, **{"content-type": "application/json"})
    status, answer = post(client, {"query": "{ departments { code } }"})
    assert (status, len(answer["data"]["departments"])) == (200, 10)


def test_answers_keep_chinese_text_readable(client: TestClient) -> None:
    response = client.post("/graphql", json={"query": "{ departments { nameZh } }"})
    assert "生态环境局" in response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def last_records(settings: Settings, count: int) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT client, outcome, operation_type FROM access_record "
                    "ORDER BY seq DESC LIMIT :count"
                ),
                {"count": count},
            )
            records = [dict(row._mapping) for row in rows]
        await engine.dispose()
        return records[::-1]

    return asyncio.run(read())


def test_a_document_over_the_budget_is_refused_before_it_runs_and_recorded(
    demo_database: Settings, tokens: dict[str, str], sql_statements: Any
) -> None:
    settings = replace(demo_database, query_cost_budget=1_000, client_cost_burst=1_000)
    auth = {"Authorization": f"Bearer {tokens['ecology']}"}
    query = "{ enterprises(first: 100) { edges { node { uscc inspections { id } } } } }"
    with TestClient(create_app(settings), headers=auth) as small:
        statements = len(sql_statements)
        status, answer = post(small, {"query": query})
        assert status == 200
        assert "data" not in answer
        assert only_error(answer) == {
            "message": "this request would resolve about 1,102 fields (its cost), more than the "
            "1,000 one request may: ask for fewer enterprises per page (first) or fewer fields, "
            "and fetch the rest with further requests",
            "extensions": {"code": "QUERY_TOO_COMPLEX", "cost": 1102, "budget": 1000},
        }
        # Only the caller's credential was read (with the grant version, in one statement);
        # then the refusal was recorded after the log's head.
        tables = [
            s.split("FROM ")[1].split()[:2]
            for s in sql_statements.statements[statements:]
            if "FROM " in s
        ]
        assert tables == [["grant_head", "LEFT"], ["access_record", "ORDER"]]
        ((record),) = last_records(settings, 1)
        assert record["outcome"] == "error"
        assert record["client"].startswith("client:")
        status, answer = post(small, {"query": query.replace("100", "50")})
        assert status == 200
        assert len(answer["data"]["enterprises"]["edges"]) == 50


def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_do_not(
    demo_database: Settings, tokens: dict[str, str]
) -> None:
    settings = replace(
        demo_database, query_cost_budget=50, client_cost_burst=50, client_cost_per_second=1
    )
    ecology = {"Authorization": f"Bearer {tokens['ecology']}"}
    fire = {"Authorization": f"Bearer {tokens['fire']}"}
    departments = {"query": "{ departments { code nameZh } }"}  # costs 21
    with TestClient(create_app(settings)) as limited:
        for _ in range(2):
            assert post(limited, departments, **ecology)[0] == 200
        response = limited.post("/graphql", json=departments, headers=ecology)
        assert response.status_code == 429
        ((record),) = last_records(settings, 1)
        assert record["outcome"] == "denied"
        # 21 needed, 8 left and refilling at 1 a second (9 left on a slow machine).
        wait = int(response.headers["retry-after"])
        assert wait in {13, 12}
        assert only_error(response.json()) == {
            "message": f"this request costs 21 and {record['client']} has {21 - wait} left of "
            f"HUB_CLIENT_COST_PER_SECOND=1 (burst 50); retry after {wait} s, or ask for fewer "
            "enterprises per page (first) or fewer fields",
            "extensions": {
                "code": "RATE_LIMITED",
                "limit": "HUB_CLIENT_COST_PER_SECOND",
                "value": 1,
                "retryAfter": wait,
            },
        }
        assert post(limited, departments, **fire)[0] == 200  # fire's budget is its own
        assert post(limited, {"query": "{ __typename }"}, **ecology)[0] == 200  # costs 1


def test_long_queries_are_answered_but_never_cached(client: TestClient) -> None:
    """A cache keyed on whole query texts would hold whatever it is sent."""
    caches = (
        ShortParserCache(maxsize=512).cached_parse_document,
        ShortValidationCache(maxsize=512).cached_validate_document,
        selected_coordinates,
        graphql_http._described,
    )

    def calls() -> list[int]:
        return [cache.cache_info().hits + cache.cache_info().misses for cache in caches]

    before = calls()
    padded = "# " + "x" * MAX_CACHED_QUERY + "\n{ departments { code } }"
    status, answer = post(client, {"query": padded})
    assert (status, len(answer["data"]["departments"])) == (200, 10)
    assert calls() == before
    # A short one the compiled path declines goes through strawberry's caches (one it
    # compiles is answered from its plan, cached in Plans the same way).
    status, answer = post(
        client, {"query": '{ myAccess(owner: "market") { field } x: __typename }'}
    )
    assert status == 200
    assert calls() == [count + 1 for count in before]
    plans = Plans(build_schema())
    assert plans.get(padded, None) is None
    assert plans.get("{ departments { code } }", None) is not None
    assert plans._compile.cache_info().currsize == 1


def test_a_request_that_waits_its_turn_gives_back_its_connection_and_then_answers(
    demo_database: Settings, tokens: dict[str, str]
) -> None:
    """Heavy requests beyond the process's workload wait without a database connection
    (Reader.release); once their turn comes they read again and answer in full."""
    settings = replace(demo_database, cost_in_flight=1_000, client_cost_burst=50_000)
    query = "{ enterprises(first: 40) { edges { node { uscc inspections { id kind } } } } }"
    auth = {"Authorization": f"Bearer {tokens['market']}"}
    with (
        TestClient(create_app(settings), headers=auth) as limited,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        answers = list(pool.map(lambda _: post(limited, {"query": query}), range(4)))
    assert [status for status, _ in answers] == [200] * 4
    assert all(len(a["data"]["enterprises"]["edges"]) == 40 and "errors" not in a
               for _, a in answers)  # fmt: skip


def test_a_small_request_reads_once_and_appends_its_record_after_the_head_it_knows(
    demo_database: Settings, tokens: dict[str, str], sql_statements: Any
) -> None:
    """{ __typename } costs one read (who is calling, with the grant version) and its
    record, chained on the head this process wrote last without reading it again.
    Statements are counted, not timed (bench/run.py times them)."""
    auth = {"Authorization": f"Bearer {tokens['market']}"}
    with TestClient(create_app(demo_database), headers=auth) as client:
        assert post(client, {"query": "{ __typename }"})[0] == 200
        for _ in range(3):
            before = len(sql_statements)
            status, answer = post(client, {"query": "{ __typename }"})
            assert (status, answer["data"]) == (200, {"__typename": "Query"})
            sent = [" ".join(s.split()[:4]) for s in sql_statements.statements[before:]]
            postgresql = client.app.state.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
            assert sent == [
                "SELECT grant_head.version AS grant_version,",
                # The chain's lock across processes (SQLite's write lock is in its BEGIN).
                *(["SELECT pg_advisory_xact_lock($1)"] if postgresql else []),
                "INSERT INTO access_record (seq,",
            ]
