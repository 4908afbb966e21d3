import asyncio
from typing import Any

import pytest

from hub.db import create_engine, upgrade
from hub.domain import DEPARTMENTS
from hub.policy import Scope
from hub.schema.loaders import LevelLoader, Loaders, Reader
from hub.settings import Settings
from tests.conftest import BACKENDS


def test_callers_in_one_turn_share_one_load() -> None:
    calls: list[list[int]] = []

    async def load(keys: list[int]) -> list[str]:
        calls.append(keys)
        return [f"row {key}" for key in keys]

    async def level() -> list[list[str]]:
        loader = LevelLoader(load)
        return list(await asyncio.gather(loader.load_many([1, 2]), loader.load_many([2, 3]),
                                         loader.load_many([])))  # fmt: skip

    assert asyncio.run(level()) == [["row 1", "row 2"], ["row 2", "row 3"], []]
    assert calls == [[1, 2, 3]]


def test_a_failed_load_fails_every_caller() -> None:
    async def load(keys: list[int]) -> list[str]:
        raise ConnectionError("database gone")

    async def level() -> list[object]:
        loader = LevelLoader(load)
        return list(await asyncio.gather(loader.load_many([1]), loader.load_many([2]),
                                         return_exceptions=True))  # fmt: skip

    results = asyncio.run(level())
    assert [type(result) for result in results] == [ConnectionError, ConnectionError]
    with pytest.raises(ConnectionError):
        raise results[0]  # type: ignore[misc]


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_a_level_with_no_parents_reads_nothing(
    empty_database: Settings, sql_statements: Any
) -> None:
    """Children.of for no parents (a child list withheld on every record of a level) sends no
    statement; for some, one statement for all of them, whatever the caller's scope."""
    upgrade(empty_database)
    sql_statements.statements.clear()
    everyone = Scope(tuple(department.code for department in DEPARTMENTS), {})

    async def run() -> tuple[dict[int, Any], dict[int, Any]]:
        engine = create_engine(empty_database)
        reader = Reader(engine)
        loaders = Loaders(reader, lambda type_name: everyone)
        none = await loaders.findings.load_fn.of([])
        assert not sql_statements.statements
        some = await loaders.inspections.load_fn.of([1, 2, 3])
        await reader.close()
        await engine.dispose()
        return none, some

    assert asyncio.run(run()) == ({}, {})
    assert [s.split()[0] for s in sql_statements.statements] == ["SELECT"]
