"""Adversarial fuzzing through the real endpoint, on every backend: documents generated from
the schema as every department (without, with and with a nonsense purpose), the auditor and
the admin; malformed requests of every kind. No answer may be a 5xx, carry INTERNAL or an
error without a known code, or hold a value the policy withholds from its caller; every
request leaves exactly one access record, with the answer's trace id.

Deterministic (derandomized, no example database) and bounded: callers rotate across
examples rather than multiplying them. tests/adversary/ says how documents are steered and
how secrets are found; bench/fuzz.py runs the same adversary far longer, over HTTP, under
legitimate load.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient

from hub.clients import create_client
from hub.db import create_engine
from hub.domain import Role
from hub.policy import load_policy
from hub.schema import build_schema, policy_fields
from hub.schema.roots import ENTERPRISE_VIEW
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.adversary import (
    Caller,
    Malformed,
    Secrets,
    callers,
    documents,
    ground_of,
    judge,
    malformed_requests,
    pools,
    read_ground,
    root_fields,
)
from tests.conftest import Hub, graphql

POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
SCHEMA = build_schema()._schema
CALLERS = callers(POLICY)
# Every root field of Query but an enterprise's own view, which every caller here is refused
# before it runs (tests/test_roots.py asks it of each role).
ASKED = [name for name in SCHEMA.query_type.fields if f"Query.{name}" not in ENTERPRISE_VIEW]
QUERIES = 300  # per backend: every caller about nine times, every root field
MUTATIONS = 80
MALFORMED = 300
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class AccessRecords:
    """The access log of one database, read after each request: the hub's TestClient is
    synchronous, so the records since the last look are exactly the last request's."""

    def __init__(self, database: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine = create_engine(database)
        self.last = self._run("SELECT coalesce(max(seq), 0) FROM access_record")[0][0]

    def _run(self, statement: str, **parameters: Any) -> list[Any]:
        async def run() -> list[Any]:
            async with self.engine.connect() as connection:
                return list((await connection.execute(text(statement), parameters)).all())

        return self.loop.run_until_complete(run())

    def since_last(self) -> list[str]:
        """Trace ids of the records appended since the last call."""
        rows = self._run(
            "SELECT seq, trace_id FROM access_record WHERE seq > :last ORDER BY seq",
            last=self.last,
        )
        if rows:
            self.last = rows[-1].seq
        return [row.trace_id for row in rows]

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()


@pytest.fixture
def access_records(demo_database: Settings) -> Iterator[AccessRecords]:
    records = AccessRecords(demo_database)
    yield records
    records.close()


@pytest.fixture(scope="session")
def secrets(demo_database: Settings) -> Secrets:
    return Secrets(ground_of(demo_database), POLICY)


class Rotation:
    """Callers in turn, one per new document; a document seen again (hypothesis replays a
    failing one) goes to the same caller, so that a failure reproduces."""

    def __init__(self, callers: tuple[Caller, ...]) -> None:
        self.callers = callers
        self.assigned: dict[str, Caller] = {}

    def of(self, document: str) -> Caller:
        if document not in self.assigned:
            self.assigned[document] = self.callers[len(self.assigned) % len(self.callers)]
        return self.assigned[document]


def headers_of(caller: Caller, tokens: dict[str, str]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {tokens[caller.token]}"}
    if caller.purpose is not None:  # header values are Latin-1: UTF-8 percent-encoded
        headers["X-Hub-Purpose"] = quote(caller.purpose)
    return headers


def send(
    client: TestClient,
    records: AccessRecords,
    document: str,
    caller: Caller,
    tokens: dict[str, str],
    secrets: Secrets,
) -> dict[str, Any]:
    """Send one document as ``caller`` and hold the answer to everything it must be."""
    response = client.post("/graphql", json={"query": document}, headers=headers_of(caller, tokens))
    recorded = records.since_last()
    answer = response.json()
    context = f"{caller}\n{document}\n{response.status_code} {response.text[:2000]}"
    assert judge(response.status_code, answer) == [], context
    assert recorded == [answer["extensions"]["traceId"]], context
    leaks = secrets.of(caller).leaks(answer, sent=document + (caller.purpose or ""))
    assert not leaks, f"withheld values served: {sorted(leaks)[:5]}\n{context}"
    return answer


def test_generated_queries_answer_with_codes_and_withhold_what_the_policy_withholds(
    hub: TestClient,
    demo_database: Settings,
    tokens: dict[str, str],
    secrets: Secrets,
    access_records: AccessRecords,
) -> None:
    steering = pools(secrets.ground, POLICY)
    rotation = Rotation(CALLERS)
    tried: Counter[Caller] = Counter()
    fields: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=QUERIES)
    @given(document=documents(SCHEMA, steering, fields=ASKED))
    def fuzz(document: str) -> None:
        caller = rotation.of(document)
        answer = send(hub, access_records, document, caller, tokens, secrets)
        tried[caller] += 1
        fields.update(root_fields(document))
        codes = {error["extensions"]["code"] for error in answer.get("errors", [])}
        outcomes["data" if answer.get("data") else "no data"] += 1
        outcomes.update(codes)

    fuzz()
    # Every root field is tried: one the run above did not reach gets documents of its own
    # (which fields the run reaches moves with every change to the schema).
    for name in sorted(set(ASKED) - set(fields)):
        settings(FUZZ, max_examples=10)(
            given(document=documents(SCHEMA, steering, fields=[name]))(fuzz.hypothesis.inner_test)
        )()
    assert set(tried) == set(CALLERS), f"not tried: {set(CALLERS) - set(tried)}"
    assert set(fields) == set(ASKED), f"root fields tried: {fields}"
    # The steering works: most documents reach the data, and withheld fields are met.
    assert outcomes["data"] > QUERIES / 2, outcomes
    assert outcomes["FORBIDDEN"] > 0, outcomes
    assert outcomes["PURPOSE_REQUIRED"] > 0, outcomes


CANONICAL = """query($u: String!) { enterprise(uscc: $u) {
  name legalRepresentative
  penalties { violation legalBasis }
  rectifications { requirement acceptance { verdict opinion } } } }"""


def test_the_scan_finds_withheld_values_where_they_would_leak(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str], secrets: Secrets
) -> None:
    """What market may read of an enterprise holds values withheld from fire: fire's scan
    finds them in market's answer, market's does not."""
    stored = secrets.ground.stored
    opinions = {
        i.uscc for i in stored if i.coordinate == "Acceptance.opinion" and i.owner == "ecology"
    }
    bases = {i.uscc for i in stored if i.coordinate == "Penalty.legalBasis"}
    uscc = min(opinions & bases)
    market = Caller("market", "market", "rectification-check: 整改验收核查")
    response = hub.post(
        "/graphql",
        json={"query": CANONICAL, "variables": {"u": uscc}},
        headers=headers_of(market, tokens),
    )
    answer = response.json()
    assert "errors" not in answer
    fire = secrets.of(Caller("fire", "fire"))
    assert fire.secrets
    leaked = fire.leaks(answer)
    enterprise = answer["data"]["enterprise"]
    # The legal representative (conditional), the penalties' legal bases (market and
    # enforcement only) and the rectification requirements (not fire's to read).
    assert enterprise["legalRepresentative"] in leaked
    assert {p["legalBasis"] for p in enterprise["penalties"]} & leaked
    assert {r["requirement"] for r in enterprise["rectifications"]} & leaked
    # Under any key, or (a text of four characters or more) within an error message, it is
    # found all the same.
    basis = enterprise["penalties"][0]["legalBasis"]
    disguised = {"errors": [{"message": f"no: {basis}!"}],
                 "data": {"x": {"whatever": enterprise["legalRepresentative"]}}}  # fmt: skip
    assert fire.leaks(disguised) == {basis, enterprise["legalRepresentative"]}
    # ...unless the request itself held it.
    assert fire.leaks(disguised, sent=f"{{ x(y: {basis!r}) }}") == {
        enterprise["legalRepresentative"]
    }
    assert secrets.of(market).leaks(answer) == set()
    # Without the grant's purpose the opinions are market's secrets too.
    served = {r["acceptance"]["opinion"] for r in enterprise["rectifications"]
              if r["acceptance"] and r["acceptance"]["opinion"]}  # fmt: skip
    assert served
    without_purpose = secrets.of(Caller("market", "market"))
    assert without_purpose.leaks(answer) >= served - without_purpose.public


def test_generated_mutations_answer_with_codes_and_one_record_each(
    writable: Hub,
) -> None:
    """Mutations of every root field, writing for real into a database of the test's own."""

    async def prepare() -> Secrets:
        engine = create_engine(writable.settings)
        writable.tokens["admin"] = (
            await create_client(engine, department="market", name="admin", role=Role.ADMIN)
        ).token
        ground = await read_ground(engine)
        await engine.dispose()
        return Secrets(ground, POLICY)

    secrets = asyncio.run(prepare())
    records = AccessRecords(writable.settings)
    steering = pools(secrets.ground, POLICY)
    rotation = Rotation(CALLERS)
    tried: Counter[Caller] = Counter()
    fields: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=MUTATIONS)
    @given(document=documents(SCHEMA, steering, mutation=True))
    def fuzz(document: str) -> None:
        caller = rotation.of(document)
        answer = send(writable.client, records, document, caller, writable.tokens, secrets)
        outcomes["published" if answer.get("data") else "refused"] += 1
        tried[caller] += 1
        fields.update(root_fields(document))

    try:
        fuzz()
    finally:
        records.close()
    assert set(tried) == set(CALLERS), f"not tried: {set(CALLERS) - set(tried)}"
    assert set(fields) == set(SCHEMA.mutation_type.fields), f"root fields tried: {fields}"
    assert outcomes["published"] > 0, outcomes  # some get through the checks, and write


def test_malformed_requests_are_refused_with_a_code_and_recorded(
    hub: TestClient, tokens: dict[str, str], access_records: AccessRecords
) -> None:
    statuses: Counter[int] = Counter()

    @settings(FUZZ, max_examples=MALFORMED)
    @given(request=malformed_requests())
    def fuzz(request: Malformed) -> None:
        response = hub.post(
            "/graphql", content=request.body, headers=request.headers(tokens["fire"])
        )
        recorded = access_records.since_last()
        context = f"{request.describe()}\n{response.status_code} {response.text[:2000]}"
        assert response.headers["content-type"] == "application/json; charset=utf-8", context
        answer = json.loads(response.content)
        assert judge(response.status_code, answer) == [], context
        assert recorded == [answer["extensions"]["traceId"]], context
        statuses[response.status_code] += 1

    fuzz()
    assert {400, 401, 413, 415} <= set(statuses), statuses


# --- defects the fuzzer found, each reproduced in the fewest words ------------------------


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        ("notifications(first: 0) { hasMore }", "first must be between 1 and 500, not 0"),
        ("changes(first: 0) { hasMore }", "first must be between 1 and 500, not 0"),
        ('notifications(after: "bm9uZQ==") { hasMore }',
         "after='bm9uZQ==' is not a notification cursor from this hub; pass the endCursor of "
         "your previous call, or omit after to start from the beginning"),
    ],
)  # fmt: skip
def test_a_root_field_refusing_its_argument_leaves_its_siblings_reads_intact(
    hub: TestClient, secrets: Secrets, tokens: dict[str, str], failing: str, message: str
) -> None:
    """graphql-core cancels the siblings of a non-null field that fails; the enterprise's
    statement was cancelled midway and closing the broken connection answered 500 INTERNAL."""
    uscc = secrets.ground.pools["usccs"][0]
    document = f'{{ enterprise(uscc: "{uscc}") {{ status inspections {{ kind }} }} {failing} }}'
    answer = graphql(hub, document, token=tokens["market"])
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert (error["message"], error["extensions"]["code"]) == (message, "BAD_USER_INPUT")
    # The connection the cancelled read used is whole again: the next request reads.
    again = graphql(hub, f'{{ enterprise(uscc: "{uscc}") {{ uscc }} }}', token=tokens["market"])
    assert again == {"data": {"enterprise": {"uscc": uscc}}}


@pytest.mark.parametrize(("amount", "shown"), [("1e999999", "1E+999999"), ("1" * 400, "1.11E+399")])
def test_an_amount_beyond_any_precision_is_refused_as_too_large(
    hub: TestClient, secrets: Secrets, tokens: dict[str, str], amount: str, shown: str
) -> None:
    """Found by bench/fuzz.py: quantizing such an amount to the fen raised InvalidOperation
    (more digits than the decimal context holds), answered as INTERNAL."""
    uscc = secrets.ground.pools["usccs"][0]
    document = f"""mutation {{ publishPenalties(dryRun: true, records: [{{
        sourceId: "FUZZ-PEN-1", uscc: "{uscc}", caseNumber: "FUZZ-1", violation: "v",
        legalBasis: "b", amount: "{amount}", decidedOn: "2024-11-21", status: PAID
    }}]) {{ created }} }}"""
    answer = graphql(hub, document, token=tokens["market"])
    (error,) = answer["errors"]
    assert error["message"] == (
        "1 of 1 records cannot be published, so none was: records[0] (sourceId FUZZ-PEN-1) "
        f"amount: {shown} is larger than any fine the hub accepts"
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
