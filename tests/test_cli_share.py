"""`hub share` as an administrator runs it: requests, grants and revocation on a real database."""

import asyncio
import getpass
import re
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner, Result

from hub.audit import exported, verify
from hub.auth import Principal
from hub.cli import app
from hub.db import create_engine, upgrade
from hub.domain import Role
from hub.grants import Scope
from hub.models import ShareGrant
from hub.policy import load_policy
from hub.records import CHINA, today
from hub.schema import policy_fields
from hub.settings import DEFAULT_POLICY_DIR, Settings
from hub.sharing import DECISION_DAYS, decide_request, due_date, file_request, revoke_grant
from tests.conftest import BACKENDS, HEAD, fresh_database, pin_today

runner = CliRunner()
CLIENT = f"hub share ({getpass.getuser()})"
POLICY = load_policy(DEFAULT_POLICY_DIR, policy_fields())
TODAY = today()


@pytest.fixture(autouse=True)
def same_day(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_today(monkeypatch, TODAY)


FIRST = "91110000600037341L"
LATE = (
    f"1 pending past the due date (today is {TODAY} in China): ask the owner departments to "
    "decide them"
)
SYSTEMS = {
    code: Principal(f"client:{n}", f"{code} system", code, Role.DEPARTMENT)
    for n, code in enumerate(("market", "ecology", "emergency", "enforcement"), start=1)
}


def days(n: int) -> str:
    return str(TODAY + timedelta(days=n))


async def sharing_history(settings: Settings) -> None:
    """Seven requests in every state, and four grants: active, revoked, expired, future."""
    engine = create_engine(settings)

    async def file(requester: str, owner: str, fields: list[str], purpose: str, **more: Any) -> int:
        asked: dict[str, Any] = {
            "scope": Scope(), "wanted_from": TODAY, "wanted_until": TODAY + timedelta(days=90),
            **more,
        }  # fmt: skip
        request = await file_request(
            engine, POLICY, SYSTEMS[requester], owner=owner, fields=fields, purpose=purpose,
            purpose_detail="why, in words", legal_basis="the law", **asked,
        )  # fmt: skip
        return int(request.id)

    async def approve(request_id: int, owner: str) -> None:
        await decide_request(engine, POLICY, SYSTEMS[owner], request_id, approve=True)

    try:
        # 1: pending past its due date; 2: pending, due later
        await file("market", "ecology", ["Penalty.amount", "Acceptance.opinion"],
                   "rectification-check", scope=Scope.of(["西湖区"], []))  # fmt: skip
        await file("enforcement", "ecology", ["penalty-grounds"], "law-enforcement",
                   scope=Scope.of([], [FIRST]))  # fmt: skip
        # 3: approved, grant 1 active
        await approve(await file("market", "emergency", ["Acceptance.opinion"], "joint-inspection"),
                      "emergency")  # fmt: skip
        # 4: refused, its due date past too
        refused = await file("enforcement", "market", ["registration"], "law-enforcement")
        await decide_request(engine, POLICY, SYSTEMS["market"], refused, approve=False,
                             reason="personal data")  # fmt: skip
        # 5: grant 2, which ended yesterday (below); 6: grant 3, revoked by its owner
        await approve(await file("market", "ecology", ["Penalty.amount"], "law-enforcement"),
                      "ecology")  # fmt: skip
        await approve(await file("enforcement", "emergency", ["Acceptance.opinion"],
                                 "rectification-check"), "emergency")  # fmt: skip
        await revoke_grant(engine, SYSTEMS["emergency"], 3, "the case is closed")
        # 7: grant 4 starts in ten days
        await approve(await file("market", "ecology", ["Acceptance.opinion"], "risk-warning",
                                 wanted_from=TODAY + timedelta(days=10)), "ecology")  # fmt: skip
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE share_request SET due_on = :day WHERE id IN (1, 4)"),
                {"day": TODAY - timedelta(days=3)},
            )
            await connection.execute(
                text("UPDATE share_grant SET valid_from = :start, valid_until = :end "
                     "WHERE id = 2"),
                {"start": TODAY - timedelta(days=30), "end": TODAY - timedelta(days=1)},
            )  # fmt: skip
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with fresh_database(request.param, tmp_path) as settings:
        upgrade(settings)
        asyncio.run(sharing_history(settings))
        yield settings


def share(settings: Settings, *arguments: str) -> Result:
    env = {"HUB_DATABASE_URL": settings.database_url, "COLUMNS": "250"}
    return runner.invoke(app, ["share", *arguments], env=env)


def flat(output: str) -> str:
    return " ".join(output.split())


def rows(output: str) -> list[list[str]]:
    """The body of a rich table: one list of cells per row, cells over several lines joined."""
    found: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells[0]:
            found.append(cells)
        else:
            found[-1] = [
                " ".join(filter(None, pair)) for pair in zip(found[-1], cells, strict=True)
            ]
    return found


def test_requests_lists_every_request_and_marks_the_overdue(database: Settings) -> None:
    listed = share(database, "requests")
    assert listed.exit_code == 0, listed.output
    late, due = days(-3), str(due_date(TODAY, DECISION_DAYS))
    whole = f"{TODAY} to {days(90)}"
    assert rows(listed.stdout) == [
        ["1", "market", "ecology", "Acceptance.opinion Penalty.amount", "rectification-check",
         "西湖区", whole, "pending", f"{late} OVERDUE"],
        ["2", "enforcement", "ecology", "Penalty.amount", "law-enforcement",
         f"enterprise {FIRST}", whole, "pending", due],
        ["3", "market", "emergency", "Acceptance.opinion", "joint-inspection", "all enterprises",
         whole, "approved", due],
        ["4", "enforcement", "market", "Enterprise.legalRepresentative", "law-enforcement",
         "all enterprises", whole, "refused", late],
        ["5", "market", "ecology", "Penalty.amount", "law-enforcement", "all enterprises", whole,
         "approved", due],
        ["6", "enforcement", "emergency", "Acceptance.opinion", "rectification-check",
         "all enterprises", whole, "approved", due],
        ["7", "market", "ecology", "Acceptance.opinion", "risk-warning", "all enterprises",
         f"{days(10)} to {days(90)}", "approved", due],
    ]  # fmt: skip
    assert flat(listed.stderr) == f"7 share requests, {LATE}"


@pytest.mark.parametrize(
    ("options", "ids", "summary"),
    [
        (["--overdue"], ["1"], f"1 share request, {LATE}"),
        (["--status", "pending"], ["1", "2"], f"2 share requests, {LATE}"),
        (["--status", "refused"], ["4"], "1 share request"),
        (["--status", "approved", "--owner", "ecology"], ["5", "7"], "2 share requests"),
        (["--requester", "enforcement"], ["2", "4", "6"], "3 share requests"),
        (["--owner", "emergency", "--requester", "market"], ["3"], "1 share request"),
        (
            ["--overdue", "--owner", "emergency"], [],
            f"no pending share request is past its due date (today is {TODAY} in China)",
        ),
    ],
)  # fmt: skip
def test_requests_filters(
    database: Settings, options: list[str], ids: list[str], summary: str
) -> None:
    listed = share(database, "requests", *options)
    assert listed.exit_code == 0, listed.output
    assert [row[0] for row in rows(listed.stdout)] == ids
    assert flat(listed.stderr) == summary


def test_grants_with_their_state(database: Settings) -> None:
    listed = share(database, "grants")
    assert listed.exit_code == 0, listed.output
    assert rows(listed.stdout) == [
        ["1", "3", "market", "emergency", "Acceptance.opinion", "joint-inspection",
         "all enterprises", f"{TODAY} to {days(90)}", "active"],
        ["2", "5", "market", "ecology", "Penalty.amount", "law-enforcement", "all enterprises",
         f"{days(-30)} to {days(-1)}", "expired"],
        ["3", "6", "enforcement", "emergency", "Acceptance.opinion", "rectification-check",
         "all enterprises", f"{TODAY} to {days(90)}",
         f"revoked on {revoked_on(database, 3)}: the case is closed"],
        ["4", "7", "market", "ecology", "Acceptance.opinion", "risk-warning", "all enterprises",
         f"{days(10)} to {days(90)}", "not yet valid"],
    ]  # fmt: skip
    assert flat(listed.stderr) == f"4 grants (as of {TODAY} in China)"

    active = share(database, "grants", "--active")
    assert [row[0] for row in rows(active.stdout)] == ["1"]
    assert flat(active.stderr) == f"1 grant (as of {TODAY} in China)"
    of_ecology = share(database, "grants", "--owner", "ecology", "--requester", "market")
    assert [row[0] for row in rows(of_ecology.stdout)] == ["2", "4"]


def revoked_on(settings: Settings, grant_id: int) -> str:
    async def read() -> str:
        engine = create_engine(settings)
        async with engine.connect() as connection:
            moment = (
                await connection.execute(
                    select(ShareGrant.revoked_at).where(ShareGrant.id == grant_id)
                )
            ).scalar_one()
        await engine.dispose()
        return str(moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(CHINA).date())

    return asyncio.run(read())


async def access_records(settings: Settings) -> list[dict[str, Any]]:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        found = await connection.execute(text("SELECT * FROM access_record ORDER BY seq"))
        records = [exported(dict(row._mapping)) for row in found]
    assert (await verify(engine)).ok
    await engine.dispose()
    return records


def test_revoke_as_the_administrator_is_recorded(database: Settings) -> None:
    revoked = share(database, "revoke", "1", "--reason", " the requester's system was breached ")
    assert revoked.exit_code == 0, revoked.output
    assert flat(revoked.stderr) == (
        "grant 1 revoked: market no longer reads Acceptance.opinion of emergency's records for "
        "joint-inspection (access record 1)"
    )
    (record,) = asyncio.run(access_records(database))
    assert re.fullmatch("[0-9a-f]{32}", record.pop("trace_id"))
    assert record.pop("duration_us") >= 0
    for moving in ("recorded_at", "hash", "prev_hash"):
        record.pop(moving)
    (change,) = record.pop("written")
    before, after = change.pop("before"), change.pop("after")
    assert change == {"enterprise": "", "type": "Grant", "change": "revoked", "ids": ["1"]}
    assert (before["revoked_at"], before["revoke_reason"]) == (None, None)
    assert after["revoke_reason"] == "the requester's system was breached"
    assert after["revoked_by"] == CLIENT
    unchanged = {k: v for k, v in after.items() if not k.startswith("revoke")}
    assert unchanged == {k: v for k, v in before.items() if not k.startswith("revoke")}
    assert record == {
        "seq": 1, "client": CLIENT, "department": "market", "role": "admin",
        "operation_name": "share revoke", "operation_type": "mutation", "document_hash": None,
        "document_id": None,
        "purpose": None, "case_ref": None, "remote_address": None, "outcome": "ok",
        "enterprises": [], "fields": [], "served": [], "denied": [],
        "policy_version": POLICY.version,
    }  # fmt: skip

    listed = share(database, "grants", "--active")
    assert rows(listed.stdout) == []
    (first, *_) = rows(share(database, "grants").stdout)
    assert first[-1] == (
        f"revoked on {revoked_on(database, 1)}: the requester's system was breached"
    )

    # Refusals change nothing and leave no record.
    for arguments, code, message in [
        (["1", "--reason", "again"], 1, "grant 1 was already revoked"),
        (["99", "--reason", "gone"], 1, "no grant 99; `hub share grants` lists them"),
        (["4", "--reason", "  "], 1, "state the reason for the revocation"),
        (["4"], 2, "Missing option '--reason'"),
        (["four", "--reason", "x"], 2, "Invalid value for 'GRANT_ID'"),
    ]:
        refused = share(database, "revoke", *arguments)
        assert refused.exit_code == code, refused.output
        assert message in flat(refused.output)
        assert "Traceback" not in refused.output
    assert len(asyncio.run(access_records(database))) == 1
    assert [row[-1] for row in rows(share(database, "grants").stdout)][3] == "not yet valid"


def test_bad_options_and_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    for command in (["requests"], ["grants"], ["revoke", "1", "--reason", "x"]):
        refused = share(settings, *command)
        assert refused.exit_code == 1, refused.output
        assert flat(refused.output) == (
            f"the database is at revision none (it is empty), not {HEAD}: run `hub db upgrade` first"
        )
    for command, option in [
        (["requests", "--owner", "treasury"], "--owner"),
        (["requests", "--requester", "treasury"], "--requester"),
        (["grants", "--owner", "treasury"], "--owner"),
    ]:
        refused = share(settings, *command)
        assert refused.exit_code == 2
        assert (
            f"Invalid value for {option}: unknown department 'treasury'; one of market, "
            "ecology, emergency" in flat(refused.output)
        )
    wrong = share(settings, "requests", "--status", "lost")
    assert wrong.exit_code == 2
    assert "'lost' is not one of 'pending', 'approved', 'refused'" in flat(wrong.output)
