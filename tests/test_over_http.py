"""GraphQL over HTTP as the specification has it: media types by Accept, GET for queries
(never mutations), the specification's status codes, nothing kept by caches."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from starlette.testclient import TestClient

from hub.over_http import GRAPHQL_RESPONSE, JSON, browses, media_type, read_query_string
from hub.params import BadRequest
from tests.conftest import Hub
from tests.test_publish_api import PUBLISH_ACCEPTANCES, open_rectification

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
CANONICAL = "9133010985H96UB001"
DOSSIER = "query Dossier($uscc: String!) { enterprise(uscc: $uscc) { uscc name } }"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),  # no Accept: application/json, as legacy clients expect
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        # At equal weight the specification's own type; otherwise the caller's preference.
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", JSON),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON;q=0.9, application/json;q=0.8", GRAPHQL_RESPONSE),
        ("application/json;q=banana", JSON),  # a malformed weight counts as 1
        (BROWSER, JSON),
    ],
)
def test_the_answer_comes_in_the_type_the_caller_prefers(accept: str | None, chosen: str) -> None:
    assert media_type(accept) == chosen


@pytest.mark.parametrize("accept", ["text/html", "application/json;q=0", "image/png, text/*"])
def test_an_accept_header_that_takes_neither_type_is_406(accept: str) -> None:
    with pytest.raises(BadRequest) as refused:
        media_type(accept)
    assert refused.value.status == 406
    assert f"{GRAPHQL_RESPONSE} or {JSON}" in refused.value.message


def test_a_browser_is_one_that_asks_for_html_and_names_no_graphql_type() -> None:
    assert browses(BROWSER)
    assert not browses(f"text/html, {GRAPHQL_RESPONSE}")
    assert not browses("text/html;q=0, */*")
    assert not browses(None)


@pytest.mark.parametrize(
    ("query_string", "status", "said"),
    [
        ("variables=%7B%7D", 400, "needs ?query="),
        ("query=%7Bx%7D&query=%7By%7D", 400, '"query" is given more than once'),
        ("query=%7Bx%7D&variables=%7Bnot%20json", 400, '"variables" is not valid JSON text'),
        ("query=%7Bx%7D&extensions=NaN", 400, "NaN, which is not a JSON number"),
        ("query=%ff", 400, "must be UTF-8"),
        ("query=" + "x" * 2000, 414, "send it with POST"),
        ("&".join(f"p{i}=1" for i in range(100)), 400, "too many parameters"),
    ],
)
def test_a_get_query_string_is_checked(query_string: str, status: int, said: str) -> None:
    with pytest.raises(BadRequest) as refused:
        read_query_string(query_string, 1000)
    assert (refused.value.status, said in refused.value.message) == (status, True), (
        refused.value.message
    )


def test_a_get_query_string_reads_as_a_post_body_would() -> None:
    query_string = urlencode({
        "query": DOSSIER, "variables": json.dumps({"uscc": CANONICAL}), "operationName":
        "Dossier", "extensions": "", "_": "cache-buster",
    })  # fmt: skip
    assert read_query_string(query_string, 10_000) == {
        "query": DOSSIER,
        "variables": {"uscc": CANONICAL},
        "operationName": "Dossier",
        "extensions": None,
    }


def get(
    hub: TestClient, token: str, accept: str | None = JSON, /, **parameters: Any
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept"] = accept
    response = hub.get("/graphql", params=parameters, headers=headers)
    return response.status_code, dict(response.headers), response.json()


def record_of(hub: Hub, answer: dict[str, Any]) -> Any:
    (record,) = hub.sql(
        "SELECT department, operation_type, operation_name, purpose, outcome FROM access_record "
        "WHERE trace_id = :trace",
        trace=answer["extensions"]["traceId"],
    )
    return record


def test_a_query_runs_with_get_under_the_same_headers_and_record_as_post(writable: Hub) -> None:
    purpose = "rectification-check: 核查整改验收结果"
    ((uscc,),) = writable.sql("SELECT uscc FROM enterprise ORDER BY uscc LIMIT 1")
    response = writable.client.get(
        "/graphql",
        params={"query": DOSSIER, "variables": json.dumps({"uscc": uscc})},
        headers={"Authorization": f"Bearer {writable.tokens['market']}",
                 "Accept": GRAPHQL_RESPONSE, "X-Hub-Purpose": quote(purpose, safe=": ")},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["data"]["enterprise"]["uscc"] == uscc
    record = record_of(writable, answer)
    assert (record.department, record.operation_type, record.operation_name, record.purpose,
            record.outcome) == ("market", "query", "Dossier", purpose, "ok")  # fmt: skip


def test_a_mutation_is_never_run_by_get(writable: Hub) -> None:
    rectification, _, _ = open_rectification(writable, "ecology")
    record = {"sourceId": "ECO-ACC-BY-GET", "rectificationSourceId": rectification,
              "acceptedOn": "2026-01-05", "verdict": "PASSED", "opinion": "合格"}  # fmt: skip
    status, headers, answer = get(
        writable.client, writable.tokens["ecology"], JSON,
        query=PUBLISH_ACCEPTANCES, variables=json.dumps({"records": [record]}),
    )  # fmt: skip
    assert (status, headers["allow"]) == (405, "POST")
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "send it with POST" in answer["errors"][0]["message"]
    assert "data" not in answer
    assert not writable.sql("SELECT 1 FROM acceptance WHERE source_id = 'ECO-ACC-BY-GET'")
    assert (record_of(writable, answer).operation_type, record_of(writable, answer).outcome) == (
        "mutation", "error",
    )  # fmt: skip
    # Nor in a document of several operations, by naming the mutation.
    both = f"query Q {{ __typename }}\n{PUBLISH_ACCEPTANCES.replace('mutation(', 'mutation M(')}"
    status, _, _ = get(writable.client, writable.tokens["ecology"], JSON, query=both,
                       operationName="M", variables=json.dumps({"records": [record]}))  # fmt: skip
    assert status == 405
    assert not writable.sql("SELECT 1 FROM acceptance WHERE source_id = 'ECO-ACC-BY-GET'")


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ enterprise(uscc: ", None),  # does not parse
        ("{ enterprise(uscc: 1) { nope } }", None),  # does not validate
        ("query($u: String!) { enterprise(uscc: $u) { uscc } }", {"u": 7}),  # does not coerce
    ],
)
def test_an_answer_without_data_is_400_in_the_specifications_type_and_200_in_json(
    hub: TestClient, tokens: dict[str, str], query: str, variables: dict[str, Any] | None
) -> None:
    for accept, status in ((GRAPHQL_RESPONSE, 400), (JSON, 200)):
        response = hub.post(
            "/graphql", json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {tokens['market']}", "Accept": accept},
        )  # fmt: skip
        assert response.status_code == status, (accept, response.text)
        assert response.headers["content-type"].startswith(accept)
        answer = response.json()
        assert "data" not in answer
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_root_field_the_role_may_not_ask_for_is_403_in_the_specifications_type(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    mine = "{ myEnterprise { uscc } }"  # an enterprise's own view, not a department's
    status, _, answer = get(hub, tokens["market"], GRAPHQL_RESPONSE, query=mine)
    assert status == 403
    assert {e["extensions"]["code"] for e in answer["errors"]} == {"FORBIDDEN"}
    assert "data" not in answer
    status, _, _ = get(hub, tokens["market"], JSON, query=mine)
    assert status == 200


def test_partial_answers_stay_200_in_both_types(hub: TestClient, tokens: dict[str, str]) -> None:
    """Fields withheld by policy: data and errors together, which is a 200 in either type."""
    query = (
        f'{{ enterprise(uscc: "{CANONICAL}") {{ rectifications {{ acceptance {{ opinion }} }} }} }}'
    )
    for accept in (GRAPHQL_RESPONSE, JSON):
        status, _, answer = get(hub, tokens["market"], accept, query=query)
        assert status == 200
        assert answer["data"]["enterprise"] is not None
        assert {e["extensions"]["code"] for e in answer["errors"]} == {"PURPOSE_REQUIRED"}


def test_a_browser_gets_graphiql_and_a_client_its_answer_at_the_same_address(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    page = hub.get("/graphql", headers={"Accept": BROWSER})
    assert page.headers["content-type"].startswith("text/html")
    status, headers, answer = get(hub, tokens["market"], f"{GRAPHQL_RESPONSE}, {BROWSER}",
                                  query="{ __typename }")  # fmt: skip
    assert (status, answer["data"]) == (200, {"__typename": "Query"})
    assert headers["vary"] == "Accept, Authorization"


def test_other_methods_and_unacceptable_types_are_refused_with_what_to_do(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    bearer = {"Authorization": f"Bearer {tokens['market']}"}
    head = hub.head("/graphql", params={"query": "{ __typename }"}, headers=bearer)
    assert (head.status_code, head.headers["allow"]) == (405, "GET, POST")
    refused = hub.post("/graphql", json={"query": "{ __typename }"},
                       headers={**bearer, "Accept": "text/csv"})  # fmt: skip
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/json; charset=utf-8"
    assert "accept one of them" in refused.json()["errors"][0]["message"]
    # Without a credential, the same 401 whichever the method.
    status, _, answer = get(hub, "not-a-token", GRAPHQL_RESPONSE, query="{ __typename }")
    assert (status, answer["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")
