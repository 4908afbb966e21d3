import asyncio
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hub.db import alembic_config, create_engine, current_revision, head_revision, upgrade
from hub.domain import DEPARTMENTS
from hub.models import Base
from hub.settings import Settings
from tests.conftest import BACKENDS


async def _inspect(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        revision = await current_revision(connection)

        def read(sync_connection: Any) -> dict[str, Any]:
            context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
            return {
                "differences": compare_metadata(context, Base.metadata),
                "tables": set(inspect(sync_connection).get_table_names()),
            }

        found = await connection.run_sync(read)
        departments = []
        if "department" in found["tables"]:
            departments = (
                await connection.exec_driver_sql(
                    "SELECT code, name_zh, name_en FROM department ORDER BY code"
                )
            ).all()
    await engine.dispose()
    return {**found, "revision": revision, "departments": departments}


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_migrations_create_exactly_the_models(empty_database: Settings) -> None:
    upgrade(empty_database)
    found = asyncio.run(_inspect(empty_database))
    assert found["differences"] == []
    assert found["tables"] == set(Base.metadata.tables) | {"alembic_version"}
    assert found["revision"] == head_revision(empty_database)


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_migrations_seed_the_ten_departments(empty_database: Settings) -> None:
    upgrade(empty_database)
    departments = asyncio.run(_inspect(empty_database))["departments"]
    assert [tuple(row) for row in departments] == sorted(DEPARTMENTS)


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_migrations_downgrade_to_nothing_and_up_again(empty_database: Settings) -> None:
    upgrade(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    assert asyncio.run(_inspect(empty_database))["tables"] == {"alembic_version"}
    upgrade(empty_database)
    assert asyncio.run(_inspect(empty_database))["differences"] == []


def test_sqlite_enforces_foreign_keys(tmp_path: Any) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/fk.db")
    upgrade(settings)

    async def insert_orphan() -> None:
        engine = create_engine(settings)
        try:
            async with engine.begin() as connection:
                await connection.exec_driver_sql(
                    "INSERT INTO inspection_finding (inspection_id, category, description) "
                    "VALUES (999, 'x', 'y')"
                )
        finally:
            await engine.dispose()

    with pytest.raises(Exception, match="FOREIGN KEY constraint failed"):
        asyncio.run(insert_orphan())


def test_sqlite_file_and_folder_are_created(tmp_path: Any) -> None:
    """As var/hub.db is on a first run; a folder further from anything that exists is a
    mistyped URL (tests/test_setup_mistakes.py)."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/new/hub.db")
    upgrade(settings)
    assert (tmp_path / "new" / "hub.db").is_file()


def test_upgrade_works_from_inside_an_event_loop(tmp_path: Any) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/loop.db")

    async def migrate_then_inspect() -> dict[str, Any]:
        upgrade(settings)
        return await _inspect(settings)

    assert asyncio.run(migrate_then_inspect())["differences"] == []


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_only_an_enterprise_client_names_an_enterprise(empty_database: Settings) -> None:
    """The database holds the rule create_client keeps: role enterprise names a known
    enterprise, no other role names one."""
    upgrade(empty_database)

    async def insert(role: str, enterprise: str | None) -> str:
        engine = create_engine(empty_database)
        try:
            async with engine.begin() as connection:
                await connection.exec_driver_sql(
                    "INSERT INTO enterprise (uscc, owner, name, legal_representative, address, "
                    "industry, region, town, registered_on, status) VALUES ('9133010985H96UB001', "
                    "'market', 'n', 'l', 'a', 'i', 'r', 't', '2020-01-01', 'active') "
                    "ON CONFLICT DO NOTHING"
                )
            async with engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO client (name, department, role, token_hash, enterprise) "
                         "VALUES ('c', 'market', :role, :hash, :enterprise)"),
                    {"role": role, "hash": f"{role}{enterprise}", "enterprise": enterprise},
                )  # fmt: skip
            return "stored"
        except Exception as error:
            return type(error).__name__
        finally:
            await engine.dispose()

    assert asyncio.run(insert("enterprise", "9133010985H96UB001")) == "stored"
    assert asyncio.run(insert("department", None)) == "stored"
    assert asyncio.run(insert("enterprise", None)) == "IntegrityError"
    assert asyncio.run(insert("auditor", "9133010985H96UB001")) == "IntegrityError"
    assert asyncio.run(insert("enterprise", "91110000600037341L")) == "IntegrityError"  # unknown
    assert asyncio.run(insert("root", None)) == "IntegrityError"
