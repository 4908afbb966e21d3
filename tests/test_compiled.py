"""The compiled read path (hub/compiled/) against strawberry's resolvers: the same answer,
errors and access record for every department, with and without purposes (the demo's grants
open conditional fields for one of them), over handwritten documents that reach every field
the compiler covers and documents generated from the read schema; the statements it reads;
the switch that turns it off; and the installed `hub serve` answering the same over HTTP
whichever path it takes.

tests/adversary/sameness.py compares; bench/sameness.py runs the same over thousands of
generated documents on both backends."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import httpx2
import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from graphql import GraphQLScalarType
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text
from starlette.testclient import TestClient

from bench.limit import DOSSIER, FIELDS
from hub.app import create_app
from hub.compiled import plan
from hub.compiled.run import _together
from hub.db import create_engine, upgrade
from hub.domain import DEPARTMENTS
from hub.metrics import EXECUTIONS
from hub.policy import Policy, load_policy
from hub.schema import build_schema, policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.adversary import documents, ground_of, pools
from tests.adversary.sameness import Sameness
from tests.conftest import BACKENDS, UNTHROTTLED, fresh_database
from tests.test_clients import metrics
from tests.test_serve import demo_with_clients, serving

PURPOSES = (None, "rectification-check: 整改验收核查", "随便看看")
# Every department, without a purpose, with the demo grant's and with a nonsense one.
CALLERS = [(department.code, purpose) for department in DEPARTMENTS for purpose in PURPOSES]
# Enterprises with the rarer records: an accepted rectification and findings, a credit
# repair, a transferred penalty (the demo may hold none of the last two).
RICH = [
    "SELECT min(e.uscc) FROM enterprise e JOIN rectification r ON r.enterprise_id = e.id "
    "JOIN acceptance a ON a.rectification_id = r.id JOIN inspection i ON i.enterprise_id = e.id "
    "JOIN inspection_finding f ON f.inspection_id = i.id",
    "SELECT min(e.uscc) FROM enterprise e JOIN credit_record c ON c.enterprise_id = e.id "
    "JOIN credit_repair x ON x.credit_record_id = c.id",
    "SELECT min(e.uscc) FROM enterprise e JOIN penalty p ON p.enterprise_id = e.id "
    "WHERE p.transferred_to IS NOT NULL",
    # Plans: one done by its inspection, and several departments' in one month.
    "SELECT min(e.uscc) FROM enterprise e JOIN inspection_plan p ON p.enterprise_id = e.id "
    "WHERE p.inspection_id IS NOT NULL",
    "SELECT min(e.uscc) FROM enterprise e WHERE (SELECT count(DISTINCT p.owner) FROM "
    "inspection_plan p WHERE p.enterprise_id = e.id) > 1",
]
GENERATED = 120  # per backend; bench/sameness.py runs thousands
RECORD = """fragment Rec on Record { __typename id sourceId owner { code nameZh } version }"""
# Every field the compiler covers, through aliases, fragments, directives and arguments; and
# documents it declines, which strawberry answers on both sides.
HANDWRITTEN = [
    DOSSIER,
    "query($u: String!) { enterprise(uscc: $u) {" + FIELDS + "} }",
    RECORD
    + """ query($u: String!) { __typename enterprise(uscc: $u) { __typename uscc owner { code }
      creditRecords { ...Rec repairs { ...Rec appliedOn status history { version change
        publishedAt publisher { code } client reason changedFields } } }
      first: inspections(until: "2026-01-01") { ...Rec findings { category } kind @skip(if: true) }
      later: inspections(since: "2026-01-01") { ... on Inspection { actionCode participants { code } } }
      penalties { ...Rec amount transferredTo { code nameEn } caseNumber history { version } }
      rectifications { ...Rec requirementCodes overdue deadline status
        inspection { ...Rec result findings { description } participants { code } }
        penalty { ...Rec amount status }
        assistingDepartments { code } acceptance { ...Rec verdict opinion history { change } } }
      open: rectifications(overdue: true) { id overdue }
      done: rectifications(overdue: false) { id status @include(if: false) } } }""",
    RECORD
    + """ query($u: String!) { enterprise(uscc: $u) { inspectionPlans { ...Rec uscc month
      subject kind status inspection { ...Rec kind result findings { category } }
      history { version change publisher { code } changedFields } }
      again: inspectionPlans { id status @skip(if: true) owner { nameEn } } } }""",
    """query($u: String!) { a: enterprise(uscc: $u) { name } b: enterprise(uscc: $u) {
      name legalRepresentative rectifications { acceptance { opinion } } } }""",
    """{ enterprises(first: 7, filter: {region: "西湖区"}) { __typename totalCount
      pageInfo { hasNextPage endCursor __typename } edges { cursor __typename
        node { uscc name status industry } again: node { address } } } }""",
    """{ enterprises(first: 3, filter: {status: ACTIVE, nameContains: "科技"}) {
      edges { node { uscc penalties { amount violation } } } pageInfo { endCursor } } }""",
    "{ departments { code nameZh nameEn __typename } __typename }",
    """query($u: String!) { enterprise(uscc: $u) { colourCode { __typename colour since
      reasons { rule colour description count records { __typename kind id sourceId
        owner { code nameEn } } } tone: colour } again: colourCode { since } uscc } }""",
    """{ enterprises(first: 20) { edges { node { colourCode { colour reasons { count } } } } } }""",
]
# Documents the compiled path declines: strawberry answers (and refuses) them on both sides.
DECLINED = [
    '{ enterprise(uscc: "91330106MA2KXXXX00") { name } }',  # not a USCC
    "{ enterprises(first: 1000) { totalCount } }",  # out of bounds
    "query($s: Boolean!) { departments { code @skip(if: $s) } }",  # a variable decides
    '{ myAccess(owner: "ecology", type: "Acceptance") { field decision } }',  # not covered
    "query($u: String!) { enterprise(uscc: $u) { colourHistory { colour previous since "
    "reasons { rule count records { kind } } } } }",  # not covered
    '{ enterprises(first: 2) { edges { node { inspections(since: "2026-02-01", '
    'until: "2025-01-01") { id } } } } }',  # since after until
]


def rich_usccs(database: Settings) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(database)
        async with engine.connect() as connection:
            found = [(await connection.execute(text(sql))).scalar() for sql in RICH]
        await engine.dispose()
        return [uscc for uscc in found if uscc is not None]

    return asyncio.run(read())


def compiled_count() -> float:
    counted: float = EXECUTIONS.labels("compiled")._value.get()
    return counted


@pytest.fixture(scope="session")
def sameness(demo_database: Settings) -> Iterator[Sameness]:
    with (
        TestClient(create_app(demo_database)) as compiled,
        TestClient(create_app(replace(demo_database, compiled_reads=False))) as interpreted,
    ):
        yield Sameness(compiled, interpreted, demo_database)


def send_handwritten(sameness: Sameness, tokens: dict[str, str], usccs: list[str]) -> int:
    """Every handwritten document (one per USCC where it takes one) as every caller; how
    many of the requests the compiled path should have answered."""
    compiled = 0
    for document in HANDWRITTEN + DECLINED:
        for variables in [{"u": uscc} for uscc in usccs] if "$u" in document else [None]:
            for department, purpose in CALLERS:
                sameness.send(document, tokens[department], department, purpose, variables)
                compiled += document not in DECLINED
    return compiled


def send_generated(
    sameness: Sameness, tokens: dict[str, str], database: Settings, count: int, every: int = 0
) -> list[str]:
    """``count`` documents generated from the read schema, rotating through the callers,
    their records compared every ``every`` documents if given (fewer kept waiting); the
    documents sent."""
    generated = documents(build_schema()._schema, pools(ground_of(database), POLICY),
                          fields=READ_FIELDS)  # fmt: skip
    sent: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(generated)
    def send(document: str) -> None:
        department, purpose = CALLERS[len(sent) % len(CALLERS)]
        sent.append(document)
        sameness.send(document, tokens[department], department, purpose)
        if every and len(sent) % every == 0:
            sameness.check()

    send()
    return sent


def test_handwritten_documents_are_answered_alike_by_every_department(
    sameness: Sameness, tokens: dict[str, str], demo_database: Settings
) -> None:
    usccs = rich_usccs(demo_database)
    assert usccs
    before = compiled_count()
    compiled = send_handwritten(sameness, tokens, usccs)
    assert sameness.check() == []
    assert compiled_count() - before == compiled


POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
READ_FIELDS = ["enterprise", "enterprises", "departments"]


def test_generated_documents_are_answered_alike(
    sameness: Sameness, tokens: dict[str, str], demo_database: Settings
) -> None:
    before = compiled_count()
    sent = send_generated(sameness, tokens, demo_database, GENERATED)
    assert sameness.check() == []
    # Most generated documents are within the compiler's reach (the rest are declined:
    # invalid ones, arguments out of bounds), so both paths were really compared.
    assert compiled_count() - before >= len(sent) / 3


def test_arguments_remembered_per_variables_are_those_variables(
    sameness: Sameness, tokens: dict[str, str]
) -> None:
    """A plan remembers its arguments per set of variables: each set answers as its own,
    refused ones (a page size out of bounds, a value of the wrong type) each time alike."""
    document = (
        "query($n: Int!, $c: Boolean) { enterprises(first: $n) "
        "{ edges { node { uscc rectifications(overdue: $c) { id } } } } }"
    )
    before = compiled_count()
    for n, c in [(2, None), (3, True), (2, None), (3, False), (0, None), (0, None), ("x", None)]:
        sameness.send(document, tokens["market"], "market", None, {"n": n, "c": c})
    assert sameness.check() == []
    assert compiled_count() - before == 4


def test_the_dossier_reads_the_same_statements_for_1_and_100_enterprises(
    sameness: Sameness, tokens: dict[str, str], demo_database: Settings, sql_statements: Any
) -> None:
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    counted = []
    for first in (1, 100):
        sql_statements.statements.clear()
        document = DOSSIER.replace("first: 100", f"first: {first}")
        before = compiled_count()
        answer = sameness.compiled.post("/graphql", json={"query": document}, headers=headers)
        assert answer.status_code == 200
        assert compiled_count() == before + 1
        counted.append([s for s in sql_statements.statements if "access_record" not in s])
    sql_statements.statements.clear()
    sameness.interpreted.post("/graphql", json={"query": DOSSIER}, headers=headers)
    interpreted = [s for s in sql_statements.statements if "access_record" not in s]
    # One statement per level and relation, however many enterprises (one without
    # inspections, say, needs no statement for their findings), never more than strawberry.
    assert len(counted[0]) <= len(counted[1]) <= len(interpreted)


def test_the_switch_sends_every_request_through_strawberry(
    demo_database: Settings, tokens: dict[str, str]
) -> None:
    assert Settings.from_env({"HUB_COMPILED_READS": "0"}).compiled_reads is False
    assert Settings.from_env({}).compiled_reads is True
    off = replace(demo_database, compiled_reads=False)
    before, interpreted = compiled_count(), EXECUTIONS.labels("strawberry")._value.get()
    with TestClient(create_app(off)) as hub:
        answer = hub.post("/graphql", json={"query": DOSSIER},
                          headers={"Authorization": f"Bearer {tokens['market']}"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["data"]["enterprises"]["edges"]
    assert compiled_count() == before
    assert EXECUTIONS.labels("strawberry")._value.get() == interpreted + 1


def test_dates_are_served_as_strawberry_serializes_them_and_kept_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled path's dates are strawberry's Date serialization, each made once and kept
    in a memo that publishers' choice of dates cannot grow past its bound."""
    scalar = build_schema()._schema.type_map["Date"]
    assert isinstance(scalar, GraphQLScalarType)
    serialize, strawberry_date = plan._serializer(scalar), scalar.serialize
    monkeypatch.setattr(plan._DATES, "limit", 3)
    plan._DATES.clear()
    days = [
        date(1, 1, 1),
        date(2026, 2, 28),
        date(9999, 12, 31),
        date(2026, 2, 28),
        date(1970, 1, 1),
    ]
    assert [serialize(day) for day in days] == [strawberry_date(day) for day in days]
    assert len(plan._DATES) <= 3


def test_what_the_policy_withholds_is_decided_once_per_caller_and_policy_version(
    demo_database: Settings, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the policy alone withholds of each owner's records is kept with the policy
    version for every request of the same department and purpose (stated or not): the
    second dossier asks the policy nothing."""
    asked: list[str] = []
    decide = Policy.decide

    def counted(self: Policy, subject: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(subject)
        return decide(self, subject, *args, **kwargs)

    monkeypatch.setattr(Policy, "decide", counted)
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    purpose = {**headers, "X-Hub-Purpose": "rectification-check"}
    with TestClient(create_app(replace(demo_database, **UNTHROTTLED)), headers=headers) as hub:
        counts = []
        for sent in (headers, headers, purpose, purpose, headers):
            asked.clear()
            answer = hub.post("/graphql", json={"query": DOSSIER}, headers=sent)
            assert answer.status_code == 200
            counts.append(len(asked))
    assert min(counts[0], counts[2]) > 100  # ten owners, every decided field, each type
    assert counts[1] == counts[3] == counts[4] == 0


def test_a_compiled_dossier_leaves_nothing_for_the_cyclic_collector(
    demo_database: Settings, tokens: dict[str, str]
) -> None:
    """What a request loaded is freed by reference counting when it ends: one cycle through
    the request's loaders or its run would keep every row and record of it until the
    collector's next pass, which, with a few dossiers in flight, cost the served hub a fifth
    of its time (bench/RESULTS.md). What the test client itself leaves is not the hub's."""
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    with TestClient(create_app(demo_database), headers=headers) as hub:
        hub.post("/graphql", json={"query": DOSSIER})  # parsed, validated and planned once
        before = compiled_count()
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a pass finds unreachable, kept to be looked at
        try:
            hub.post("/graphql", json={"query": DOSSIER})
            gc.collect()
            left = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert compiled_count() == before + 1
    loaded = {name: n for name, n in left.items() if name.startswith(("hub.", "sqlalchemy."))}
    assert loaded == {}
    assert left["builtins.dict"] < 10  # the answer's 6,500 values are in ~10,000 dicts


@pytest.fixture(params=BACKENDS)
def two_servers(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[int, int, str]]:
    """`hub serve` twice on one demo database: compiled reads on, and off."""
    with fresh_database(request.param, tmp_path) as database:
        upgrade(database)
        tokens = asyncio.run(demo_with_clients(database.database_url))
        environment = {**os.environ, "HUB_DATABASE_URL": database.database_url}
        with (
            serving(environment) as (_, compiled),
            serving({**environment, "HUB_COMPILED_READS": "0"}) as (_, interpreted),
        ):
            yield compiled, interpreted, tokens["market"]


def test_the_installed_server_answers_alike_over_http_whichever_path(
    two_servers: tuple[int, int, str],
) -> None:
    """gql (aiohttp) against the installed `hub serve`: the dossier and a one-enterprise
    query with a variable, from the server with compiled reads and the one without; the
    compiled server's /metrics shows that it compiled them."""
    compiled, interpreted, token = two_servers
    one = "query($u: String!) { enterprise(uscc: $u) {" + FIELDS + "} }"

    async def read(port: int, query: str, variables: dict[str, Any] | None = None) -> Any:
        transport = AIOHTTPTransport(url=f"http://127.0.0.1:{port}/graphql",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        async with Client(transport=transport) as session:
            try:
                return await session.execute(GraphQLRequest(query, variable_values=variables)), []
            except TransportQueryError as partial:  # data with errors (withheld fields)
                # in path order: the specification leaves the order of errors open
                return partial.data, sorted(partial.errors or [], key=json.dumps)

    dossier, errors = asyncio.run(read(compiled, DOSSIER))
    assert errors  # market may not read everything of everyone's
    assert (dossier, errors) == asyncio.run(read(interpreted, DOSSIER))
    uscc = dossier["enterprises"]["edges"][3]["node"]["uscc"]
    assert asyncio.run(read(compiled, one, {"u": uscc})) == asyncio.run(
        read(interpreted, one, {"u": uscc})
    )
    scraped = metrics(httpx2.get(f"http://127.0.0.1:{compiled}/metrics").text)
    assert scraped['hub_graphql_executions_total{path="compiled"}'] == 2
    scraped = metrics(httpx2.get(f"http://127.0.0.1:{interpreted}/metrics").text)
    assert 'hub_graphql_executions_total{path="compiled"}' not in scraped
    assert scraped['hub_graphql_executions_total{path="strawberry"}'] == 2


def test_a_levels_loads_run_in_order_and_a_failure_comes_out_as_itself() -> None:
    """A level's loads run as tasks (run._together): their results in their order, and the
    first failure raised as it is (what graphql_http tells a database away by), not as an
    ExceptionGroup, with the loads still running cancelled."""
    started: list[int] = []
    cancelled: list[int] = []

    async def load(number: int) -> int:
        started.append(number)
        await asyncio.sleep(0)
        return number

    async def away() -> int:
        raise ConnectionError("the database is unreachable")

    async def slow() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return 0

    assert asyncio.run(_together([load(1), load(2), load(3)])) == [1, 2, 3]
    assert started == [1, 2, 3]
    with pytest.raises(ConnectionError, match="unreachable"):
        asyncio.run(_together([slow(), away()]))
    assert cancelled == [1]
