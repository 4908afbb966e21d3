"""The reader's own way of running a statement (one call to the driver: one hand-off to
aiosqlite's thread, one asyncpg fetch) gives exactly what SQLAlchemy's execution gives, and
keeps what SQLAlchemy does around it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import (
    BigInteger,
    Integer,
    Numeric,
    Select,
    String,
    bindparam,
    column,
    event,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import await_
from starlette.testclient import TestClient

from hub import models
from hub.db import condition, create_engine, one_of
from hub.domain import InspectionResult
from hub.schema import reader
from hub.settings import Settings
from hub.telemetry import instrument_engine
from tests.conftest import BACKENDS, graphql
from tests.test_compiled import FIELDS


def test_rows_are_sqlalchemys_own(
    demo_database: Settings, hub: TestClient, tokens: dict[str, str], monkeypatch: Any
) -> None:
    """Every statement of a dossier (and of links, history and a count), as three departments
    read it: the same values, of the same types, under the same keys, in the same order."""
    read: list[tuple[Select[Any], Any, bool]] = []
    original = reader.Reader._rows

    async def noting(
        self: reader.Reader, statement: Select[Any], parameters: Any, brief: bool
    ) -> Any:
        read.append((statement, parameters, brief))
        return await original(self, statement, parameters, brief)

    monkeypatch.setattr(reader.Reader, "_rows", noting)
    linked = (
        "{ enterprises(first: 20) { totalCount edges { node { uscc creditRecords "
        "{ history { version change publisher { code } } } rectifications "
        "{ inspection { id } penalty { amount } } } } } }"
    )
    for department in ("market", "ecology", "fire"):
        for query in ("{ enterprises(first: 100) { edges { node {" + FIELDS + "} } } }", linked):
            assert graphql(hub, query, tokens[department]).get("data")
    monkeypatch.undo()
    assert len(read) > 30
    assert {brief for *_, brief in read} == {True, False}  # both ways compared

    async def compare() -> int:
        engine = create_engine(demo_database)
        compared = 0
        async with engine.connect() as connection:
            await connection.execute(select(1))  # in a transaction, as a reader's snapshot
            for statement, parameters, brief in read:
                theirs = (await connection.execute(statement, parameters)).all()
                ours = await reader._direct(connection, statement, parameters, brief)
                assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
                assert [[type(v) for v in row] for row in ours] == [
                    [type(v) for v in row] for row in theirs
                ]
                for mine, its in zip(ours, theirs, strict=True):
                    assert list(mine._mapping) == list(its._mapping)
                compared += len(theirs)
        await engine.dispose()
        return compared

    assert asyncio.run(compare()) > 1000


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_a_driver_error_is_sqlalchemys_and_statements_are_events(
    empty_database: Settings, sql_statements: Any
) -> None:
    """A failing statement raises SQLAlchemy's wrapped error (what graphql_http classifies),
    and every statement reaches the engine's statement listeners (deadline, span, counter)."""

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))

    async def run() -> None:
        engine = create_engine(empty_database)
        instrument_engine(engine.sync_engine, provider.get_tracer("test"))
        async with engine.connect() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
            one = select(literal_column("1").label("one"))
            assert [row.one for row in await reader._direct(connection, one, None)] == [1]
            # Textual columns are named by the cursor alone: SQLAlchemy runs those.
            rows = await reader._direct(connection, select(text("2 AS two")), None)
            assert [row.two for row in rows] == [2]
            with pytest.raises(DBAPIError, match="missing"):
                await reader._direct(
                    connection, select(text("n")).select_from(text("missing")), None
                )
        await engine.dispose()

    asyncio.run(run())
    # Each statement a span of its own, the failed one marked so.
    statuses = {
        span.attributes["db.statement"]: span.status.status_code
        for span in spans.get_finished_spans()
        if span.attributes and "db.statement" in span.attributes
    }
    assert statuses["SELECT 1 AS one"] == StatusCode.UNSET
    assert statuses["SELECT n \nFROM missing"] == StatusCode.ERROR
    assert [s for s in sql_statements.statements if "AS" in s or "missing" in s] == [
        "SELECT 1 AS one",
        "SELECT 2 AS two",
        "SELECT n \nFROM missing",
    ]


@pytest.mark.parametrize("brief", [False, True], ids=["drivers thread", "brief"])
@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_a_failing_first_statement_is_sqlalchemys_error_and_the_connection_goes_on(
    empty_database: Settings, brief: bool
) -> None:
    """A request's first statement runs outside a transaction, where SQLAlchemy's handling of
    a driver error rolls back, waiting on the driver: the error is still its wrapped one (a
    "missing table" would otherwise surface as MissingGreenlet), and the connection reads on."""
    missing = table("missing", column("n", Integer))

    async def run() -> list[int]:
        engine = create_engine(empty_database)
        read = reader.Reader(engine)
        with pytest.raises(DBAPIError, match="missing"):
            await read.rows(select(missing.c.n), brief=brief)
        rows = await read.rows(select(literal_column("1").label("one")), brief=brief)
        await read.close()
        await engine.dispose()
        return [row.one for row in rows]

    assert asyncio.run(run()) == [1]


@pytest.mark.parametrize("brief", [False, True], ids=["drivers thread", "brief"])
@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
def test_an_error_not_the_drivers_is_raised_as_it_is(empty_database: Settings, brief: bool) -> None:
    """An error the driver raises that is not a database error (an integer too large for
    SQLite) comes out as itself, as SQLAlchemy raises it: first statement or in a snapshot."""

    async def run() -> list[str]:
        engine = create_engine(empty_database)
        read = reader.Reader(engine)
        raised = []
        for _ in range(2):
            with pytest.raises(OverflowError) as error:
                await read.rows(
                    select(bindparam("n", 2**70, type_=BigInteger).label("n")), brief=brief
                )
            raised.append(type(error.value).__name__)
        await read.close()
        await engine.dispose()
        return raised

    assert asyncio.run(run()) == ["OverflowError", "OverflowError"]


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
@pytest.mark.parametrize("released", [False, True], ids=["held", "released"])
def test_reads_after_the_first_see_one_snapshot(empty_database: Settings, released: bool) -> None:
    """From its second statement on, a request reads one snapshot: a commit by someone else
    meanwhile is not seen, also when the request gave its connection back while it waited
    its turn (the next statement opens another)."""
    rows = table("reader_snapshot", column("n"))
    counted = select(func.count()).select_from(rows)

    async def run() -> list[int]:
        engine = create_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE reader_snapshot (n INTEGER)"))
        request = reader.Reader(engine)
        await request.rows(select(literal_column("1").label("caller")))  # alone, as a lookup
        if released:
            await request.release()
        seen = [(await request.rows(counted))[0][0]]
        async with engine.begin() as connection:
            await connection.execute(rows.insert().values(n=1))
        seen += [(await request.rows(counted))[0][0], (await request.rows(counted))[0][0]]
        await request.close()
        async with engine.connect() as connection:
            seen.append((await connection.execute(counted)).scalar_one())
        await engine.dispose()
        return seen

    assert asyncio.run(run()) == [0, 0, 0, 1]


@pytest.mark.parametrize("empty_database", ["postgres"], indirect=True)
def test_a_snapshot_is_read_only_and_ends_however_the_request_went(
    empty_database: Settings,
) -> None:
    """On PostgreSQL the reader begins its snapshot on the driver (READ ONLY: a read path
    cannot write) and ends it itself, since SQLAlchemy's adapter ends only transactions it
    began: after a request that read, one whose statement failed in the snapshot, and one
    given back while it waited, no connection is left idle in a transaction, and the pool's
    next request reads what others committed."""
    idle = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%'"
    )
    one = select(literal_column("1").label("one"))

    async def run() -> list[int]:
        engine, watcher = create_engine(empty_database), create_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE SEQUENCE reader_sequence"))
        left = []
        for way in ("read", "failed", "released"):
            request = reader.Reader(engine)
            await request.rows(one)  # alone, as a caller's lookup
            if way == "failed":
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    await request.rows(select(func.nextval("reader_sequence")))
            else:
                await request.rows(one)
            if way == "released":
                await request.release()
            await request.close()
            async with watcher.connect() as connection:
                left.append((await connection.execute(idle)).scalar_one())
        after = reader.Reader(engine)  # on a connection the pool lends again
        assert [tuple(row) for _ in range(2) for row in await after.rows(one)] == [(1,), (1,)]
        await after.close()
        await engine.dispose()
        await watcher.dispose()
        return left

    assert asyncio.run(run()) == [0, 0, 0]


# Text a list may hold that an array's text form must quote: separators, braces, quotes,
# backslashes, the word NULL, spaces around, nothing at all, and more than ASCII.
AWKWARD = ["a,b", "{c}", 'say "hi"', "back\\slash", "NULL", " pad ", "", "已验收", "'", '\\"']


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_a_list_of_any_text_or_numbers_finds_exactly_its_rows(empty_database: Settings) -> None:
    """``one_of``'s list is one parameter (on PostgreSQL the text of an array, cast in the
    statement): every value finds its own row and no other, through SQLAlchemy and through
    the reader, for text as for integers past 32 bits."""
    rows = table("reader_one_of", column("word", String), column("big", BigInteger))
    values = [{"word": word, "big": 5_000_000_000 + n} for n, word in enumerate(AWKWARD)]

    async def run() -> None:
        engine = create_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE reader_one_of (word TEXT, big BIGINT)"))
            await connection.execute(rows.insert(), [*values, {"word": "other", "big": 1}])
        request = reader.Reader(engine)
        await request.rows(select(literal_column("1").label("caller")))  # alone, as a lookup
        for chosen in ([], AWKWARD[:1], AWKWARD, AWKWARD[3:7]):
            by_word = select(rows.c.word).where(one_of(rows.c.word, chosen))
            bigs = [5_000_000_000 + AWKWARD.index(word) for word in chosen]
            by_big = select(rows.c.big).where(one_of(rows.c.big, bigs))
            async with engine.connect() as connection:
                assert sorted((await connection.execute(by_word)).scalars()) == sorted(chosen)
            assert sorted(row.word for row in await request.rows(by_word)) == sorted(chosen)
            assert sorted(row.big for row in await request.rows(by_big)) == sorted(bigs)
        await request.close()
        await engine.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_what_the_reader_cannot_run_itself_sqlalchemy_runs(empty_database: Settings) -> None:
    """Values rendered into the SQL at each execution, types whose rows need the cursor's
    description (asyncpg's Numeric), columns named twice: the same rows as SQLAlchemy's.
    Rows are found by column objects as well as by name; a BIGINT list is one BIGINT array."""
    numbers = table("reader_numbers", column("n", Integer), column("big", BigInteger),
                    column("amount", Numeric(10, 2)))  # fmt: skip
    statements = [
        select(numbers.c.n).where(numbers.c.n == bindparam("x", 2, literal_execute=True)),
        select(numbers.c.amount),
        select(numbers.c.n.label("x"), numbers.c.big.label("x")),
        select(numbers.c.big).where(one_of(numbers.c.big, [5_000_000_000])),
    ]

    async def run() -> None:
        engine = create_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(
                text("CREATE TABLE reader_numbers (n INTEGER, big BIGINT, amount NUMERIC(10,2))")
            )
            await connection.execute(
                numbers.insert().values(n=2, big=5_000_000_000, amount=Decimal("1.50"))
            )
        async with engine.connect() as connection:
            for statement in statements:
                theirs = (await connection.execute(statement)).all()
                ours = await reader._direct(connection, statement, None)
                assert [tuple(row) for row in ours] == [tuple(row) for row in theirs] != []
            (row,) = await reader._direct(connection, select(numbers.c.n, numbers.c.big), None)
            assert (row._mapping[numbers.c.n], row._mapping["big"]) == (2, 5_000_000_000)
        await engine.dispose()

    asyncio.run(run())


@pytest.mark.parametrize("dialect", [sqlite_dialect(), asyncpg_dialect()], ids=["sqlite", "pg"])
def test_an_enumeration_reads_as_sqlalchemy_reads_it(dialect: Any) -> None:
    """The reader looks a stored enumeration value up itself: the same member for each value
    and None, and the same LookupError for a value the enumeration does not have."""
    column_type = models.Inspection.__table__.c.result.type
    ours = reader._result_processor(column_type, dialect)
    theirs = column_type.dialect_impl(dialect).result_processor(dialect, None)
    assert ours is not None
    assert theirs is not None
    for value in [*(member.value for member in InspectionResult), None]:
        assert ours(value) is theirs(value)
    with pytest.raises(LookupError) as mine:
        ours("passed-ish")
    with pytest.raises(LookupError) as its:
        theirs("passed-ish")
    assert str(mine.value) == str(its.value)
    assert "'passed-ish' is not among the defined enum values" in str(mine.value)


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
def test_brief_sqlite_reads_run_in_the_loops_thread_and_stop_at_their_deadline(
    empty_database: Settings,
) -> None:
    """On SQLite a brief read runs in the event loop's thread once its snapshot reads (the
    statement that begins a read transaction may wait, so it runs in aiosqlite's thread, as
    any other read does); a brief one past its deadline is stopped as any statement is."""
    numbers = select(literal_column("1").label("x")).cte("n", recursive=True)
    endless = select(func.count()).select_from(
        numbers.union_all(select(numbers.c.x + 1).select_from(numbers))
    )  # never ends by itself

    async def run() -> tuple[list[bool], str]:
        engine = create_engine(replace(empty_database, statement_timeout_seconds=0.3))
        read = reader.Reader(engine)
        threads = []
        # The first statement alone; the snapshot's first; brief in it; not brief in it.
        for brief in (True, True, True, False):
            (row,) = await read.rows(select(func.hub_thread().label("thread")), brief=brief)
            threads.append(row.thread == threading.get_ident())
        with pytest.raises(DBAPIError) as stopped:
            await read.rows(endless, brief=True)
        (row,) = await read.rows(select(literal_column("2").label("two")), brief=True)
        assert row.two == 2
        await read.close()
        await engine.dispose()
        return threads, condition(stopped.value)

    @event.listens_for(Engine, "connect")
    def thread_function(dbapi_connection: Any, _: Any) -> None:
        await_(dbapi_connection.driver_connection.create_function(
            "hub_thread", 0, threading.get_ident))  # fmt: skip

    try:
        threads, stopped = asyncio.run(run())
    finally:
        event.remove(Engine, "connect", thread_function)
    assert threads == [False, False, True, False]
    assert stopped == "a statement ran past HUB_STATEMENT_TIMEOUT_SECONDS"
