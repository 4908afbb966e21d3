"""The README's example queries work on the demo data that `hub serve --demo` loads."""

import json
import re
from pathlib import Path

from starlette.testclient import TestClient

from tests.conftest import graphql

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
EXAMPLE_USCC = "9133010985H96UB001"


def test_the_curl_example_returns_a_dossier_with_acceptances(client: TestClient) -> None:
    (body,) = re.findall(r"-d '(\{.*?\})'", README, flags=re.DOTALL)
    response = client.post("/graphql", json=json.loads(body))
    answer = response.json()
    assert "errors" not in answer
    enterprise = answer["data"]["enterprise"]
    assert enterprise["name"] == "杭州恒华化工有限公司"
    accepted = [r["acceptance"] for r in enterprise["rectifications"] if r["acceptance"]]
    assert {"owner": {"code": "ecology"}} in [{"owner": a["owner"]} for a in accepted]


def test_every_graphql_example_answers_with_data(client: TestClient) -> None:
    examples = re.findall(r"```graphql\n(.*?)```", README, flags=re.DOTALL)
    assert len(examples) == 2
    for example in examples:
        answer = graphql(client, example, uscc=EXAMPLE_USCC)
        assert "errors" not in answer, answer
        (result,) = answer["data"].values()
        assert result is not None
        assert result.get("edges") or result.get("inspections")
