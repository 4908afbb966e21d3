"""Deterministic demo dossiers for a first run and for benchmarks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import models
from hub.demo.generator import AS_OF, TABLES, DemoGenerator

__all__ = ["AS_OF", "TABLES", "DemoGenerator", "count_enterprises", "load_demo"]

BATCH_SIZE = 1000


async def count_enterprises(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(select(func.count()).select_from(models.Enterprise)) or 0
        )


async def load_demo(
    engine: AsyncEngine,
    *,
    enterprises: int,
    seed: int,
    as_of: date = AS_OF,
    progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Insert demo dossiers into an empty, migrated database in one transaction.

    Returns the number of rows written per table. Ids are assigned here rather than by the
    database, which keeps bulk inserts free of RETURNING round trips.
    """
    generator = DemoGenerator(seed, as_of)
    written: Counter[str] = Counter()
    async with engine.begin() as connection:
        for start in range(0, enterprises, BATCH_SIZE):
            size = min(BATCH_SIZE, enterprises - start)
            for table, table_rows in generator.batch(size).items():
                if table_rows:
                    await connection.execute(insert(table), table_rows)
                    written[table.name] += len(table_rows)
            if progress is not None:
                progress(size)
        if connection.dialect.name == "postgresql":
            # Explicit ids leave the serial sequences behind; move them past the data.
            for table in TABLES:
                if "id" in table.c:
                    await connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                            f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                        )
                    )
    return written
