import asyncio

import pytest

from hub.schema.loaders import LevelLoader


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
