"""The README's example queries work on the demo data that `hub serve --demo` loads."""

import json
import re
from pathlib import Path

from starlette.testclient import TestClient

from tests.conftest import graphql

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_curl_example_shows_the_canonical_case(hub: TestClient, tokens: dict[str, str]) -> None:
    (body,) = re.findall(r"-d '(\{.*?\})'", README, flags=re.DOTALL)
    market = {"Authorization": f"Bearer {tokens['market']}"}
    answer = hub.post("/graphql", json=json.loads(body), headers=market).json()
    enterprise = answer["data"]["enterprise"]
    assert enterprise["name"] == "杭州恒华化工有限公司"
    owners = {r["owner"]["nameEn"] for r in enterprise["rectifications"]}
    assert owners == {"Ecology and Environment"}  # fire rescue's orders are not shared
    accepted = [r["acceptance"] for r in enterprise["rectifications"] if r["acceptance"]]
    assert accepted
    assert all(a["verdict"] in {"PASSED", "FAILED"} and a["opinion"] is None for a in accepted)
    assert {e["extensions"]["field"] for e in answer["errors"]} == {"Acceptance.opinion"}
    # The sample error the README shows is this answer's first, word for word.
    (sample,) = re.findall(r"```json\n(.*?)```", README, flags=re.DOTALL)
    assert json.loads(sample)["errors"] == answer["errors"][:1]

    (purpose,) = re.findall(r"X-Hub-Purpose: ([^']+)'", README)
    answer = hub.post(
        "/graphql", json=json.loads(body), headers={**market, "X-Hub-Purpose": purpose}
    ).json()
    assert "errors" not in answer
    assert all(
        r["acceptance"]["opinion"]
        for r in answer["data"]["enterprise"]["rectifications"]
        if r["acceptance"]
    )


def test_every_graphql_example_answers_with_data(hub: TestClient, tokens: dict[str, str]) -> None:
    examples = re.findall(r"```graphql\n(.*?)```", README, flags=re.DOTALL)
    assert len(examples) == 5
    for example in examples:
        caller = "auditor" if "accessLog" in example else "market"
        if "conflicts" in example:
            caller = "ecology"  # a party to the demo's conflict
        if "publishAcceptances" in example:
            assert "dryRun: true" in example  # the demo data these tests share stays as it is
            caller = "ecology"
        answer = graphql(hub, example, token=tokens[caller])
        assert {e["extensions"]["code"] for e in answer.get("errors", [])} <= {"FORBIDDEN"}
        assert all(answer["data"].values())
        if "enterprises(filter" in example:  # the paging example: a full page, and more
            page = answer["data"]["enterprises"]
            assert (page["totalCount"], len(page["edges"])) == (25, 10)
            assert page["pageInfo"]["hasNextPage"]


def test_every_test_the_security_section_names_exists() -> None:
    """The Security section cites tests as proof: each file, and each test named, is there."""
    section = README.split("## Security", 1)[1].split("\n## ", 1)[0]
    cited = re.findall(r"`(tests/test_\w+\.py)(?:::(\w+))?`", section)
    assert len(cited) >= 10
    root = Path(__file__).parent.parent
    for path, name in cited:
        source = (root / path).read_text(encoding="utf-8")
        if name:
            assert f"def {name}(" in source, f"{path}::{name}"
