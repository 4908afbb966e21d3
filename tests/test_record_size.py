"""The access record in its compact form: a tenth of the answer it describes, read back whole,
searched exactly as records written before it are, and found by enterprise through an index
on PostgreSQL."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from bench.limit import DOSSIER
from hub.audit import (
    AccessEntry,
    AccessFilter,
    AccessLog,
    Trail,
    canonical,
    find,
    search,
    verify,
)
from hub.audit.log import _append
from hub.audit.served import coordinates, denials, groups
from hub.db import create_engine, transaction, upgrade
from hub.settings import Settings
from tests.conftest import BACKENDS, graphql
from tests.test_audit import last_record

A, B = "91330100MA2AAAAA0A", "91330100MA2BBBBB0B"


def trail() -> Trail:
    served = Trail()
    served.serve(A, "Enterprise", A, ("name", "penalties"))
    served.serve(A, "Penalty", "1", ("amount", "caseNumber", "id"), (("Penalty.amount", 7),))
    served.serve(A, "Penalty", "2", ("amount", "caseNumber", "id"), (("Penalty.amount", 7),))
    served.serve(B, "Enterprise", B, ("name", "penalties"))
    served.serve(B, "Penalty", "3", ("id",))
    served.deny(B, "Penalty", "3", "ecology", "Penalty.caseNumber", "no grant")
    return served


def old_form(served: Trail) -> list[dict[str, Any]]:
    """How records were written before the compact form: an entry per enterprise."""
    entries = sorted(
        ((enterprise, type_name, fields, grants), ids)
        for (type_name, fields, grants, _), by_enterprise in served.served.items()
        for enterprise, ids in by_enterprise.items()
    )
    return [
        {"enterprise": enterprise, "type": type_name, "fields": list(fields), "ids": ids,
         **({"grants": dict(grants)} if grants else {})}
        for (enterprise, type_name, fields, grants), ids in entries
    ]  # fmt: skip


def test_the_compact_form_reads_back_every_group_the_old_form_held() -> None:
    served = trail()
    columns = AccessEntry(datetime.now(UTC), "ok", "0" * 32, 1, trail=served).columns()
    assert groups(columns) == old_form(served)
    assert groups({"enterprises": columns["enterprises"], "served": old_form(served)}) == old_form(
        served
    )
    # Each Type.field once in the search text, whatever the number of enterprises.
    assert columns["fields"] == " Enterprise.name Enterprise.penalties Penalty.amount " + (
        "Penalty.caseNumber Penalty.id "
    )
    assert f"{B}:Penalty.caseNumber" not in coordinates(groups(columns))


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_searches_are_exact_over_old_and_compact_records(empty_database: Settings) -> None:
    """B's penalty was served without its case number in the same record that served A's
    with it: a search for B's case numbers must not find that record, in either form."""
    upgrade(empty_database)

    async def scenario() -> dict[str, list[int]]:
        engine = create_engine(empty_database)
        log = AccessLog(engine)
        entry = AccessEntry(datetime.now(UTC), "ok", "1" * 32, 1, department="market",
                            trail=trail())  # fmt: skip
        compact = await log.append(entry)
        old = entry.columns()
        old["served"] = canonical(old_form(entry.trail)).decode()
        old["fields"] = " " + " ".join(coordinates(old_form(entry.trail))) + " "
        async with transaction(engine) as connection:
            (written,) = await _append(connection, [old])
        async with engine.connect() as connection:

            async def rows(statement: Any) -> Any:
                return (await connection.execute(statement)).all()

            found = {
                name: sorted(row.seq for row in await find(rows, access_filter, 10))
                for name, access_filter in {
                    "A's case numbers": AccessFilter(enterprise=A, field="Penalty.caseNumber"),
                    "B's case numbers": AccessFilter(enterprise=B, field="Penalty.caseNumber"),
                    "B's penalty ids": AccessFilter(enterprise=B, field="Penalty.id"),
                    "any case number": AccessFilter(field="Penalty.caseNumber"),
                    "B": AccessFilter(enterprise=B),
                }.items()
            }
        assert (await verify(engine)).ok
        await engine.dispose()
        assert (compact, written["seq"]) == (1, 2)
        return found

    both = [1, 2]
    assert asyncio.run(scenario()) == {
        "A's case numbers": both,
        "B's case numbers": [],
        "B's penalty ids": both,
        "any case number": both,
        "B": both,
    }


def test_the_record_of_a_100_enterprise_dossier_is_a_tenth_of_the_answer(
    hub: TestClient, tokens: dict[str, str], demo_database: Settings
) -> None:
    answer = graphql(hub, DOSSIER, tokens["market"])
    assert len(answer["data"]["enterprises"]["edges"]) == 100
    record = last_record(demo_database)
    stored = sum(len(str(value).encode()) for value in record.values() if value is not None)
    answered = len(json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode())
    assert stored <= answered / 10, (stored, answered)
    # And it still names every record served and every field withheld: penalties, say.
    served_penalties = {
        record_id for group in groups(record) if group["type"] == "Penalty"
        for record_id in group["ids"]
    }  # fmt: skip
    answered_penalties = {
        penalty["id"] for edge in answer["data"]["enterprises"]["edges"]
        for penalty in edge["node"]["penalties"]
    }  # fmt: skip
    assert served_penalties == answered_penalties
    forbidden = [e for e in answer["errors"] if e["extensions"]["code"] == "FORBIDDEN"]
    withheld = {denial["field"] for denial in denials(record)}
    assert forbidden
    assert {error["message"].split()[0] for error in forbidden} <= withheld


@pytest.mark.parametrize("empty_database", BACKENDS[1:], indirect=True)
def test_enterprise_lookups_use_the_index_on_postgresql(empty_database: Settings) -> None:
    """accessesTo, accessLog by enterprise and the readers of a credit record look the
    enterprise up in the GIN index on the words of ``enterprises``, not by scanning."""
    upgrade(empty_database)

    async def plan() -> str:
        engine = create_engine(empty_database)
        statement = search(AccessFilter(enterprise=A), 10)
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SET enable_seqscan = off")  # a small table
            sql = statement.compile(dialect=connection.dialect,
                                    compile_kwargs={"literal_binds": True})  # fmt: skip
            lines = (await connection.exec_driver_sql(f"EXPLAIN {sql}")).scalars().all()
        await engine.dispose()
        return "\n".join(lines)

    assert "ix_access_record_enterprise_words" in asyncio.run(plan())
