"""The README's examples work as written against what its first command starts: `hub serve
--demo` in a folder of its own, its curl command run by bash, its GraphQL examples sent over
HTTP with the demo tokens it wrote."""

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.test_serve import HUB, free_port, readyz, wait_for

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, dict[str, str]]]:
    """`hub serve --demo` as the README's first command runs it, in a folder of its own:
    its port, its folder, and the demo tokens it wrote there."""
    folder = tmp_path_factory.mktemp("first-run")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--demo", "--port", str(port)], cwd=folder,
                              env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: readyz(port)["status"] == "ready", seconds=90)
        tokens = dict(
            line.split()
            for line in (folder / "var" / "demo-tokens.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
        yield port, folder, tokens
    finally:
        server.terminate()
        server.wait(timeout=10)


def curl(command: str, port: int, folder: Path) -> dict[str, Any]:
    """A README shell command run as written, but for the port this test's server has."""
    ran = subprocess.run(["bash", "-c", command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
                         cwd=folder, capture_output=True, text=True, timeout=60,
                         check=True)  # fmt: skip
    answer: dict[str, Any] = json.loads(ran.stdout)
    return answer


def test_the_curl_example_runs_verbatim_and_shows_the_canonical_case(
    demo: tuple[int, Path, dict[str, str]],
) -> None:
    port, folder, _ = demo
    command, *_ = [block for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
                   if "curl" in block]  # fmt: skip
    answer = curl(command, port, folder)
    enterprise = answer["data"]["enterprise"]
    assert enterprise["name"] == "杭州恒华化工有限公司"
    owners = {r["owner"]["nameEn"] for r in enterprise["rectifications"]}
    assert owners == {"Ecology and Environment"}  # fire rescue's orders are not shared
    accepted = [r["acceptance"] for r in enterprise["rectifications"] if r["acceptance"]]
    assert accepted
    assert all(a["verdict"] in {"PASSED", "FAILED"} and a["opinion"] is None for a in accepted)
    assert {e["extensions"]["field"] for e in answer["errors"]} == {"Acceptance.opinion"}
    # The sample error the README shows (its first answer) is this answer's first, word for
    # word.
    sample = re.findall(r"```json\n(.*?)```", README, flags=re.DOTALL)[0]
    assert json.loads(sample)["errors"] == answer["errors"][:1]

    # With the purpose header the README gives, the opinions are served too.
    (purpose,) = re.findall(r"(-H 'X-Hub-Purpose: [^']+')", README)
    answer = curl(command.replace(" -d '", f" {purpose} -d '"), port, folder)
    assert "errors" not in answer
    assert all(
        r["acceptance"]["opinion"]
        for r in answer["data"]["enterprise"]["rectifications"]
        if r["acceptance"]
    )


def test_both_ways_of_sending_a_query_run_as_written(
    demo: tuple[int, Path, dict[str, str]],
) -> None:
    """A query by GET, and a registered document by its id, as "Sending requests" shows."""
    port, folder, _ = demo
    by_get, by_id = [block for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
                     if "curl" in block][1:]  # fmt: skip
    assert "curl -s -G" in by_get
    answer = curl(by_get, port, folder)
    assert answer["data"]["enterprise"] == {"name": "杭州恒华化工有限公司", "industry": "化工"}
    assert "documentId" in by_id
    said = subprocess.run(["bash", "-c", by_id.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                           .replace(".venv/bin/hub", HUB)], cwd=folder, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert "registered" in said.stdout
    answer = json.loads(said.stdout.splitlines()[-1])
    assert {d["code"] for d in answer["data"]["departments"]} >= {"market", "ecology"}


def test_every_graphql_example_answers_with_data(demo: tuple[int, Path, dict[str, str]]) -> None:
    port, _, tokens = demo
    examples = re.findall(r"```graphql\n(.*?)```", README, flags=re.DOTALL)
    assert len(examples) == 13
    for example in examples:
        caller = "auditor" if "accessLog" in example else "market"
        if "conflicts" in example:
            caller = "ecology"  # a party to the demo's conflict
        if "mutation" in example:
            assert "dryRun: true" in example  # the demo data these tests share stays as it is
        if "publishAcceptances" in example or "publishInspections(" in example:
            caller = "ecology"
        if "inspectionCheck" in example:
            caller = "fire"
        if "myEnterprise" in example:
            caller = "enterprise"  # the enterprise's own credential
        response = httpx2.post(f"http://127.0.0.1:{port}/graphql", json={"query": example},
                               headers={"Authorization": f"Bearer {tokens[caller]}"},
                               timeout=60)  # fmt: skip
        answer = response.json()
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
