"""`statistics` for a district's command centre (驾驶舱): every figure checked against SQL of
its own on the same database, what the policy withholds left out of the counts, filters and
periods, roles refused, the access record, a constant number of statements, and the
installed `hub serve` answering a real client. On SQLite and PostgreSQL."""

import asyncio
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clients import create_client
from hub.db import create_engine, upgrade
from hub.demo import load_demo
from hub.domain import DEPARTMENTS, Role
from hub.policy import load_policy
from hub.records import today
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from tests.conftest import BACKENDS, UNTHROTTLED, StatementCounter, fresh_database, graphql
from tests.test_audit import last_record, sql
from tests.test_serve import serving

POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
EVERYTHING = """query($filter: StatisticsFilter, $since: Date, $until: Date) {
  statistics(filter: $filter, since: $since, until: $until) {
    periodFrom periodUntil enterprises
    byRegion { key count } byIndustry { key count } byColour { key count }
    inspections { total perEnterprise { inspections enterprises } overLimit atWarning
                  warningsRaised }
    orders { ordered open overdue accepted acceptedOnTime conflicting }
    penalties { decided exempt }
    badCredit } }"""
FIGURES = 12  # statements of EVERYTHING: one a figure, the orders' five sharing one
# Whose rectification orders and acceptances market regulation reads (policies/policy.csv):
# its own, the ecology and emergency departments'; not fire rescue's, nor anyone else's.
MARKET_READS_ORDERS = ("market", "ecology", "emergency")
ALL = tuple(d.code for d in DEPARTMENTS)


def day(value: Any) -> date:
    """A day as either database gives it back to plain SQL."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def expected(
    settings: Settings,
    filter: dict[str, str],
    order_owners: tuple[str, ...],
    since: date,
    until: date,
    *,
    conflicts_of: str | None = None,
    now: date | None = None,
) -> dict[str, Any]:
    """What the statistics of ``filter`` should be, from plain SQL of their own (every
    department's inspections, penalties and credit records; orders of ``order_owners``;
    conflicts of orders of those owners or with ``conflicts_of`` a party)."""
    where = " AND ".join(["1 = 1", *(f"e.{column} = :{column}" for column in filter)])
    now = now or today()

    def rows(statement: str, **values: Any) -> list[Any]:
        return sql(settings, statement, **filter, since=since, until=until, **values)

    def one(statement: str, **values: Any) -> int:
        return int(rows(statement, **values)[0][0] or 0)

    def ranked(pairs: Any, keys: Any = ()) -> list[dict[str, Any]]:
        counts = dict.fromkeys(keys, 0) | {key: int(n) for key, n in pairs}
        order = sorted(counts.items(), key=lambda p: (-p[1], p[0] is None, p[0] or ""))
        return [{"key": key, "count": n} for key, n in order]

    enterprises = rows(f"SELECT e.id, e.industry, e.colour FROM enterprise e WHERE {where}")
    visits: defaultdict[int, list[date]] = defaultdict(list)
    for enterprise_id, inspected_on in rows(
        f"SELECT i.enterprise_id, i.inspected_on FROM inspection i JOIN enterprise e "
        f"ON e.id = i.enterprise_id WHERE {where} AND NOT i.retracted"
    ):
        visits[enterprise_id].append(day(inspected_on))
    in_period = Counter(sum(since <= d <= until for d in visits[e.id]) for e in enterprises)
    over = warning = 0
    for enterprise in enterprises:
        limit = POLICY.limits.of(enterprise.industry, enterprise.colour)
        count = sum(now - timedelta(days=limit.days - 1) <= d <= now for d in visits[enterprise.id])
        over += count > limit.limit
        warning += limit.warn_at <= count <= limit.limit
    colours = Counter(e.colour for e in enterprises)
    owners = ", ".join(f"'{owner}'" for owner in order_owners)
    orders = f"""SELECT r.ordered_on, r.status, r.deadline, a.verdict, a.accepted_on, a.owner
        FROM rectification r JOIN enterprise e ON e.id = r.enterprise_id
        LEFT JOIN acceptance a ON a.rectification_id = r.id AND NOT a.retracted
        WHERE {where} AND NOT r.retracted AND r.owner IN ({owners})"""
    ordered = open_ = overdue = accepted = on_time = 0
    for ordered_on, status, deadline, verdict, accepted_on, accepter in rows(orders):
        ordered += since <= day(ordered_on) <= until
        open_ += status != "accepted"
        overdue += status != "accepted" and day(deadline) < now
        passed = (status == "accepted" and verdict == "passed" and accepter in order_owners
                  and since <= day(accepted_on) <= until)  # fmt: skip
        accepted += passed
        on_time += passed and day(accepted_on) <= day(deadline)
    conflicts = [
        (first, second)
        for first, second in rows(
            f"SELECT c.first_owner, c.second_owner FROM conflict c JOIN enterprise e "
            f"ON e.id = c.enterprise_id WHERE {where} AND c.settled_at IS NULL"
        )
        if {first, second} <= set(order_owners) or conflicts_of in (first, second)
    ]
    penalties = rows(
        f"SELECT p.status FROM penalty p JOIN enterprise e ON e.id = p.enterprise_id WHERE "
        f"{where} AND NOT p.retracted AND p.decided_on BETWEEN :since AND :until "
        f"AND p.status <> 'revoked'"
    )
    return {
        "periodFrom": str(since),
        "periodUntil": str(until),
        "enterprises": len(enterprises),
        "byRegion": ranked(
            rows(f"SELECT e.region, count(*) FROM enterprise e WHERE {where} GROUP BY e.region")
        ),
        "byIndustry": ranked(Counter(e.industry for e in enterprises).items()),
        "byColour": [
            {**entry, "key": entry["key"] and entry["key"].upper()}
            for entry in ranked(
                colours.items(),
                [None, "green", "yellow", "black"]
                if None in colours
                else ["green", "yellow", "black"],
            )
        ],
        "inspections": {
            "total": sum(sum(since <= d <= until for d in days) for days in visits.values()),
            "perEnterprise": [
                {"inspections": n, "enterprises": in_period[n]} for n in sorted(in_period)
            ],
            "overLimit": over,
            "atWarning": warning,
            "warningsRaised": one(
                f"SELECT count(*) FROM inspection_warning w JOIN enterprise e ON "
                f"e.id = w.enterprise_id WHERE {where} AND w.period_until BETWEEN :since AND :until"
            ),
        },
        "orders": {
            "ordered": ordered,
            "open": open_,
            "overdue": overdue,
            "accepted": accepted,
            "acceptedOnTime": on_time,
            "conflicting": len(conflicts),
        },
        "penalties": {
            "decided": len(penalties),
            "exempt": sum(status == "exempt" for (status,) in penalties),
        },
        "badCredit": one(
            f"SELECT count(DISTINCT e.id) FROM credit_record c JOIN enterprise e ON "
            f"e.id = c.enterprise_id WHERE {where} AND NOT c.retracted AND c.kind = 'bad_record' "
            f"AND c.status = 'active' AND (c.expires_on IS NULL OR c.expires_on >= :now)",
            now=now,
        ),
    }


def statistics(client: TestClient, token: str, **variables: Any) -> dict[str, Any]:
    answer = graphql(client, EVERYTHING, token, **variables)
    assert "errors" not in answer, answer
    figures: dict[str, Any] = answer["data"]["statistics"]
    return figures


def last_year(figures: dict[str, Any]) -> dict[str, date]:
    """The period ``figures`` report, checked to be the year up to the day the hub answered:
    today in China, or yesterday when China's midnight fell between the answer and this check.
    The expected figures are computed for that same day."""
    since = date.fromisoformat(figures["periodFrom"])
    until = date.fromisoformat(figures["periodUntil"])
    assert until in (today(), today() - timedelta(days=1)), figures
    assert since == until - timedelta(days=364), figures
    return {"since": since, "until": until, "now": until}


def test_a_districts_figures_are_what_the_records_say(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    figures = statistics(hub, tokens["market"], filter={"region": "西湖区"})
    assert figures == expected(
        demo_database, {"region": "西湖区"}, MARKET_READS_ORDERS, **last_year(figures)
    )
    # The demo's district has something to show in each section.
    assert figures["enterprises"] == 25
    assert figures["inspections"]["total"] > 0
    assert figures["inspections"]["warningsRaised"] > 0
    assert figures["orders"]["open"] > 0


@pytest.mark.parametrize(
    ("department", "order_owners"),
    [("market", MARKET_READS_ORDERS), ("enforcement", ALL), ("fire", ("fire",)),
     ("ecology", ("ecology",))],
)  # fmt: skip
def test_orders_are_counted_only_of_departments_whose_orders_the_caller_reads(
    hub: TestClient,
    demo_database: Settings,
    tokens: dict[str, str],
    department: str,
    order_owners: tuple[str, ...],
) -> None:
    since = date(2024, 1, 1)
    figures = statistics(hub, tokens[department], since=str(since))
    assert figures == expected(
        demo_database, {}, order_owners, since, today(), conflicts_of=department
    )
    # Fire rescue's orders are there, and market regulation's figures leave them out.
    every = expected(demo_database, {}, ALL, since, today())["orders"]
    if department == "market":
        assert figures["orders"]["open"] < every["open"]
        assert figures["orders"]["conflicting"] == 1  # ecology's and emergency's windows
    if department == "fire":
        assert figures["orders"]["conflicting"] == 0  # a party to no conflict


def test_filters_narrow_every_figure(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    (town,) = sql(demo_database, "SELECT town FROM enterprise WHERE region = '西湖区' "
                  "GROUP BY town ORDER BY count(*) DESC, town LIMIT 1")[0]  # fmt: skip
    since = date(2025, 1, 1)
    for given, stored in [
        ({"region": "西湖区", "industry": "医药制造"}, {"region": "西湖区", "industry": "医药制造"}),
        ({"town": town}, {"town": town}),
        ({"status": "ACTIVE"}, {"status": "active"}),
        ({"colour": "BLACK"}, {"colour": "black"}),
        ({"region": "西湖区", "colour": "GREEN", "status": "ACTIVE"},
         {"region": "西湖区", "colour": "green", "status": "active"}),
        ({"region": "无此区"}, {"region": "无此区"}),
    ]:  # fmt: skip
        figures = statistics(hub, tokens["market"], filter=given, since=str(since))
        assert figures == expected(demo_database, stored, MARKET_READS_ORDERS, since, today())
    nowhere = statistics(hub, tokens["market"], filter={"region": "无此区"})
    assert (nowhere["enterprises"], nowhere["byRegion"], nowhere["inspections"]["perEnterprise"]) \
        == (0, [], [])  # fmt: skip
    assert nowhere["byColour"] == [{"key": c, "count": 0} for c in ("BLACK", "GREEN", "YELLOW")]


def test_a_period_of_its_own(
    hub: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    since, until = date(2025, 3, 1), date(2025, 8, 31)
    figures = statistics(hub, tokens["market"], filter={"region": "西湖区"}, since=str(since),
                         until=str(until))  # fmt: skip
    assert figures == expected(demo_database, {"region": "西湖区"}, MARKET_READS_ORDERS, since,
                               until)  # fmt: skip
    until_only = statistics(hub, tokens["market"], until=str(until))
    assert (until_only["periodFrom"], until_only["periodUntil"]) == (
        str(until - timedelta(days=364)),
        str(until),
    )


@pytest.mark.parametrize(
    ("variables", "argument", "words"),
    [
        ({"filter": {"region": ""}}, "filter.region", "filter.region must be 1 to 64 characters"),
        ({"filter": {"industry": "化" * 65}}, "filter.industry", "must be 1 to 64 characters"),
        ({"since": "2026-01-02", "until": "2026-01-01"}, "since", "since=2026-01-02 is after"),
        ({"until": str(today() + timedelta(days=1))}, "until", "is after today"),
        ({"since": "1989-12-31"}, "since", "since=1989-12-31 is before 1990-01-01"),
    ],
)
def test_what_cannot_be_counted_is_refused_saying_why(
    hub: TestClient, tokens: dict[str, str], variables: dict[str, Any], argument: str, words: str
) -> None:
    answer = graphql(hub, EVERYTHING, tokens["market"], **variables)
    (error,) = answer["errors"]
    assert answer["data"] is None
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}
    assert words in error["message"]


def test_a_value_the_schema_does_not_know_is_refused(
    hub: TestClient, tokens: dict[str, str]
) -> None:
    for document, words in [
        ("{ statistics(filter: {colour: PURPLE}) { enterprises } }", "PURPLE"),
        ('{ statistics(filter: {owner: "market"}) { enterprises } }', "owner"),
        ('{ statistics(since: "yesterday") { enterprises } }', "yesterday"),
    ]:
        answer = graphql(hub, document, tokens["market"])
        (error,) = answer["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert words in error["message"]
        assert "data" not in answer


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_only_department_systems_may_ask(
    hub: TestClient, tokens: dict[str, str], role: str
) -> None:
    answer = graphql(hub, "{ statistics { enterprises } }", tokens[role])
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert error["path"] == ["statistics"]
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "owner": "hub",
        "field": "Query.statistics",
        "reason": "statistics count enterprises and their records, which are for department "
        "systems; auditors read the access log, and admins read no enterprise data",
    }
    assert error["message"].startswith("asking for statistics is forbidden: ")


@pytest.fixture(scope="module")
def no_colour_for_transport(
    demo_database: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The hub under the real policies but one line: transport may not read colour codes."""
    policies = tmp_path_factory.mktemp("policies") / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    with (policies / "policy.csv").open("a") as policy:
        policy.write("p, transport, *, colour-code, read, deny\n")
    settings = Settings(database_url=demo_database.database_url, policy_dir=policies,
                        **UNTHROTTLED)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_department_the_colour_code_is_withheld_from_sees_no_colours(
    no_colour_for_transport: TestClient, demo_database: Settings, tokens: dict[str, str]
) -> None:
    answer = graphql(no_colour_for_transport, EVERYTHING, tokens["transport"],
                     filter={"region": "西湖区"})  # fmt: skip
    (error,) = answer["errors"]
    assert error["path"] == ["statistics", "byColour"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (error["extensions"]["owner"], error["extensions"]["field"]) == (
        "market",
        "Enterprise.colourCode",
    )
    assert "denied by policy.csv:" in error["extensions"]["reason"]
    want = expected(demo_database, {"region": "西湖区"}, ("transport",),
                    **last_year(answer["data"]["statistics"]))  # fmt: skip
    assert answer["data"]["statistics"] == {**want, "byColour": None}
    # Nor does a colour in the filter tell it anything: no enterprise's colour is readable.
    black = graphql(no_colour_for_transport, "{ statistics(filter: {colour: BLACK}) { "
                    "enterprises } }", tokens["transport"])  # fmt: skip
    assert black == {"data": {"statistics": {"enterprises": 0}}}
    # Market regulation, under the same policy, still sees them.
    market = graphql(no_colour_for_transport, "{ statistics { byColour { key count } } }",
                     tokens["market"])["data"]["statistics"]["byColour"]  # fmt: skip
    assert sum(entry["count"] for entry in market) == 300


def test_the_request_is_recorded_naming_no_enterprise(
    hub: TestClient, no_colour_for_transport: TestClient, demo_database: Settings,
    tokens: dict[str, str],
) -> None:  # fmt: skip
    answer = hub.post("/graphql", json={"query": "query Cockpit { statistics(filter: "
                      '{region: "西湖区"}) { enterprises orders { open } } }'},
                      headers={"Authorization": f"Bearer {tokens['market']}"}).json()  # fmt: skip
    record = last_record(demo_database)
    assert {k: record[k] for k in ("department", "role", "operation_name", "operation_type",
                                   "outcome", "enterprises", "fields", "served", "denied",
                                   "written", "trace_id")} == {
        "department": "market", "role": "department", "operation_name": "Cockpit",
        "operation_type": "query", "outcome": "ok", "enterprises": "", "fields": "",
        "served": "[]", "denied": "[]", "written": None,
        "trace_id": answer["extensions"]["traceId"],
    }  # fmt: skip
    # A breakdown withheld is said in the record's outcome: nothing served, something denied.
    graphql(no_colour_for_transport, "{ statistics { enterprises byColour { key } } }",
            tokens["transport"])  # fmt: skip
    assert last_record(demo_database)["outcome"] == "denied"
    refused = graphql(hub, "{ statistics { enterprises } }", tokens["auditor"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (last_record(demo_database)["role"], last_record(demo_database)["outcome"]) == (
        "auditor",
        "denied",
    )


def statements_of(
    backend: str, directory: Path, enterprises: int, sql_statements: StatementCounter
) -> tuple[int, int]:
    """The SQL statements of the whole statistics query and of `{ __typename }` on a demo
    database of ``enterprises``."""
    with fresh_database(backend, directory) as settings:
        upgrade(settings)

        async def prepare() -> str:
            engine = create_engine(settings)
            await load_demo(engine, enterprises=enterprises, seed=11)
            token = (await create_client(engine, department="market", name="market",
                                         role=Role.DEPARTMENT)).token  # fmt: skip
            await engine.dispose()
            return token

        token = asyncio.run(prepare())
        with TestClient(create_app(settings)) as client:
            graphql(client, EVERYTHING, token)  # statements prepared, departments read
            before = len(sql_statements)
            statistics(client, token)
            figures = len(sql_statements) - before
            graphql(client, "{ __typename }", token)
            floor = len(sql_statements) - before - figures
        return figures, floor


@pytest.mark.parametrize("backend", BACKENDS)
def test_statements_do_not_grow_with_the_enterprises(
    backend: str, tmp_path: Path, sql_statements: StatementCounter
) -> None:
    few = statements_of(backend, tmp_path, 60, sql_statements)
    many = statements_of(backend, tmp_path, 240, sql_statements)
    assert few == many
    figures, floor = few
    assert figures - floor == FIGURES


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_installed_server_answers_a_real_client(backend: str, tmp_path: Path) -> None:
    """`hub serve` in a process of its own, asked through gql as a department and as an
    auditor."""
    with fresh_database(backend, tmp_path) as settings:
        upgrade(settings)
        asked = asyncio.run(_served(settings))
        figures = asked["market"]["statistics"]
        assert figures == expected(settings, {"region": "西湖区"}, MARKET_READS_ORDERS,
                                   **last_year(figures))  # fmt: skip
        assert figures["enterprises"] > 0
        assert asked["auditor"] == "FORBIDDEN"


async def _served(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings)
    await load_demo(engine, enterprises=100, seed=7)
    tokens = {
        role: (await create_client(engine, department="market", name=role, role=role)).token
        for role in (Role.DEPARTMENT, Role.AUDITOR)
    }
    await engine.dispose()
    environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url}
    request = GraphQLRequest(EVERYTHING, variable_values={"filter": {"region": "西湖区"}})

    def session(port: int, role: Role) -> Client:
        transport = AIOHTTPTransport(url=f"http://127.0.0.1:{port}/graphql",
                                     headers={"Authorization": f"Bearer {tokens[role]}"})  # fmt: skip
        return Client(transport=transport)

    with serving(environment) as (_, port):
        async with session(port, Role.DEPARTMENT) as market:
            answer = await market.execute(request)
        async with session(port, Role.AUDITOR) as auditor:
            with pytest.raises(TransportQueryError) as refused:
                await auditor.execute(request)
    assert refused.value.errors is not None
    return {"market": answer, "auditor": refused.value.errors[0]["extensions"]["code"]}


def test_the_limit_lines_are_tried_in_the_order_of_the_most_specific() -> None:
    """The over-limit count takes each enterprise's limit from the first line that names its
    industry and colour (Limits.lines, one CASE): the line Limits.of gives it."""
    lines = POLICY.limits.lines
    for industry in ("化工", "餐饮服务", "无此行业"):
        for colour in ("green", "yellow", "black", None):
            first = next(
                line for line in lines
                if line.industry in ("*", industry) and line.colour in ("*", colour)
            )  # fmt: skip
            assert first == POLICY.limits.of(industry, colour), (industry, colour)
    assert [(line.industry, line.colour) for line in lines] == [
        ("化工", "green"), ("化工", "*"), ("*", "green"), ("*", "black"), ("*", "*"),
    ]  # fmt: skip
