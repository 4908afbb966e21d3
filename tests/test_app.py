"""The web application's routes besides GraphQL: health, readiness and GraphiQL."""

import re
from pathlib import Path

from starlette.testclient import TestClient

from hub.app import create_app
from hub.policy import load_policy
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import HEAD


def test_healthz_says_the_process_is_up(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_checks_the_database_and_reports_the_policy_version(hub: TestClient) -> None:
    response = hub.get("/readyz")
    policy = load_policy(DEFAULT_POLICY_DIR, policy_fields())
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "revision": HEAD, "policy_version": policy.version},
    )


def test_readyz_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "not migrated: run `hub db upgrade`",
        "revision": None,
        "expected_revision": HEAD,
    }


def test_readyz_refuses_an_unreachable_database() -> None:
    settings = Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


def test_graphiql_is_served_from_the_hub_itself(client: TestClient) -> None:
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "://" not in page.text  # nothing loaded from the internet
    # No other site frames it to have a user run its query with the user's token.
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    scripts = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "static/graphiql/graphiql.min.js" in scripts
    for asset in scripts:
        response = client.get("/" + asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100


def test_graphiql_can_be_switched_off(demo_database: Settings) -> None:
    settings = Settings(database_url=demo_database.database_url, graphiql=False)
    with TestClient(create_app(settings)) as client:
        response = client.get("/graphql", headers={"accept": "text/html"})
    # No page: a browser that accepts only HTML is told which media types GraphQL speaks.
    assert response.status_code == 406
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "application/graphql-response+json" in error["message"]
    assert "<html" not in response.text
