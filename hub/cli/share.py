"""Conditional sharing for administrators: share requests, grants and revocation.

Departments file and decide share requests through the API (see hub/sharing.py); these
commands let the hub's administrators see what waits past its due date, what is granted,
and withdraw a grant, recorded in the access log like any change.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import AccessEntry, AccessLog, Outcome, Trail
from hub.auth import Principal
from hub.cli.common import (
    app,
    console,
    operator,
    print_problems,
    revision_problem,
    run,
    settings,
    with_engine,
)
from hub.db import transaction
from hub.domain import DEPARTMENTS, Role
from hub.errors import HubError, NotFound
from hub.grants import GrantRule, Scope
from hub.models import ShareGrant, ShareRequest
from hub.policy import Policy, PolicyError, load_policy
from hub.records import CHINA, today
from hub.settings import Settings
from hub.sharing import RequestStatus, request_state, revoke_grant

share_app = typer.Typer(
    help="Conditional sharing: share requests, grants, revocation.", no_args_is_help=True
)
app.add_typer(share_app, name="share")

DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
REQUESTS = ShareRequest.__table__
GRANTS = ShareGrant.__table__


def _department(value: str | None, option: str) -> str | None:
    if value is not None and value not in DEPARTMENT_CODES:
        raise typer.BadParameter(
            f"unknown department {value!r}; one of {', '.join(DEPARTMENT_CODES)}",
            param_hint=option,
        )
    return value


async def _rows(engine: AsyncEngine, config: Settings, statement: Select[Any]) -> list[Any]:
    if problem := await revision_problem(engine, config):
        raise HubError(problem)
    async with engine.connect() as connection:
        return list((await connection.execute(statement)).all())


def _table(*headers: str) -> Table:
    # Fold rather than cut: a field name or a date cut short is worse than a taller row.
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _period(start: date, end: date) -> str:
    return f"{start} to {end}"


def _china_day(moment: datetime) -> date:
    """The day in China of a stored time (SQLite returns UTC times without their zone)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(CHINA).date()


def _fields(coordinates: Iterable[str]) -> str:
    return "\n".join(sorted(coordinates))


@share_app.command("requests")
def share_requests(
    status: Annotated[RequestStatus | None, typer.Option(help="Only in this state.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only for this department.")] = None,
    requester: Annotated[str | None, typer.Option(help="Only by this department.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only pending requests past their due date.")
    ] = False,
) -> None:
    """Share requests, oldest first; pending ones past their due date are marked OVERDUE."""
    config = settings()
    day = today()
    statement = select(REQUESTS).order_by(REQUESTS.c.id)
    if status is not None:
        statement = statement.where(REQUESTS.c.status == status.value)
    if _department(owner, "--owner") is not None:
        statement = statement.where(REQUESTS.c.owner == owner)
    if _department(requester, "--requester") is not None:
        statement = statement.where(REQUESTS.c.requester == requester)
    if overdue:
        statement = statement.where(
            REQUESTS.c.status == RequestStatus.PENDING.value, REQUESTS.c.due_on < day
        )
    requests = run(with_engine(config, lambda engine: _rows(engine, config, statement)))
    table = _table(
        "id", "requester", "owner", "fields", "purpose", "scope", "wanted", "status", "due"
    )
    late = 0
    for request in requests:
        due = str(request.due_on)
        if request.status == RequestStatus.PENDING and request.due_on < day:
            late += 1
            due += " [bold red]OVERDUE[/bold red]"
        table.add_row(
            str(request.id),
            request.requester,
            request.owner,
            _fields(request.fields.split()),
            escape(request.purpose),
            escape(str(Scope.stored(request.regions, request.usccs))),
            _period(request.wanted_from, request.wanted_until),
            request.status,
            due,
        )
    Console().print(table)
    summary = _count(len(requests), "share request")
    if overdue and not late:
        summary = f"no pending share request is past its due date (today is {day} in China)"
    elif late:
        summary += (
            f", {late} pending past the due date (today is {day} in China): ask the owner "
            "departments to decide them"
        )
    console.print(summary, highlight=False)


@share_app.command("grants")
def share_grants(
    owner: Annotated[str | None, typer.Option(help="Only of this department.")] = None,
    requester: Annotated[str | None, typer.Option(help="Only to this department.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only grants in force today.")] = False,
) -> None:
    """Grants with their state today: active, expired, revoked or not yet valid."""
    config = settings()
    day = today()
    statement = select(GRANTS).order_by(GRANTS.c.id)
    if _department(owner, "--owner") is not None:
        statement = statement.where(GRANTS.c.owner == owner)
    if _department(requester, "--requester") is not None:
        statement = statement.where(GRANTS.c.requester == requester)
    rows = run(with_engine(config, lambda engine: _rows(engine, config, statement)))
    grants = [GrantRule.of(row) for row in rows]
    if active:
        grants = [grant for grant in grants if grant.state(day) == "active"]
    table = _table(
        "id", "request", "requester", "owner", "fields", "purpose", "scope", "valid", "state"
    )
    requests = {row.id: row.request_id for row in rows}
    for grant in grants:
        state = grant.state(day)
        if grant.revoked_at is not None:
            state += f" on {_china_day(grant.revoked_at)}: {escape(grant.revoke_reason or '')}"
        table.add_row(
            str(grant.id),
            str(requests[grant.id]),
            grant.requester,
            grant.owner,
            _fields(grant.fields),
            escape(grant.purpose),
            escape(str(grant.scope)),
            _period(grant.valid_from, grant.valid_until),
            state,
        )
    Console().print(table)
    console.print(f"{_count(len(grants), 'grant')} (as of {day} in China)", highlight=False)


def _policy(config: Settings) -> Policy:
    from hub.schema import policy_fields

    try:
        return load_policy(config.policy_dir, policy_fields())
    except PolicyError as error:
        print_problems(error.problems)
        console.print(f"[red]nothing revoked: the policies in {config.policy_dir} are unsound")
        raise typer.Exit(2) from None


async def _revoke(
    engine: AsyncEngine,
    config: Settings,
    policy: Policy,
    admin: Principal,
    grant_id: int,
    reason: str,
) -> tuple[Any, int]:
    if problem := await revision_problem(engine, config):
        raise HubError(problem)
    started, recorded_at = time.perf_counter(), datetime.now(UTC)
    # The revocation and its access record commit together, or neither does.
    async with transaction(engine) as connection:
        try:
            before, after = await revoke_grant(connection, admin, grant_id, reason)
        except NotFound as error:
            raise NotFound(f"{error.message}; `hub share grants` lists them") from None
        trail = Trail()
        trail.transition(
            "Grant", str(grant_id), "revoked", request_state(before), request_state(after)
        )
        seq = await AccessLog(engine).append_within(
            connection,
            AccessEntry(
                recorded_at=recorded_at,
                outcome=Outcome.OK,
                trace_id=secrets.token_hex(16),
                duration_us=int((time.perf_counter() - started) * 1_000_000),
                client=admin.client,
                department=admin.department,
                role=admin.role.value,
                operation_name="share revoke",
                operation_type="mutation",
                policy_version=policy.version,
                trail=trail,
            ),
        )
    return after, seq


@share_app.command("revoke")
def share_revoke(
    grant_id: Annotated[int, typer.Argument(metavar="GRANT_ID")],
    reason: Annotated[str, typer.Option(help="Why, for the requester and for auditors.")],
) -> None:
    """Revoke a grant as the hub's administrator; recorded in the access log."""
    config = settings()
    policy = _policy(config)
    # Admins hold no data rights: the department is only what access records need.
    name = operator("hub share")
    admin = Principal(name, name, "market", Role.ADMIN)
    after, seq = run(
        with_engine(config, lambda engine: _revoke(engine, config, policy, admin, grant_id, reason))
    )
    console.print(
        f"grant {after.id} revoked: {after.requester} no longer reads "
        f"{', '.join(sorted(after.fields.split()))} of {after.owner}'s records for "
        f"{after.purpose} (access record {seq})",
        highlight=False,
        soft_wrap=True,
    )
