"""Who may call and read: clients and their tokens, policies."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.cli.common import (
    clients_app,
    console,
    policy_app,
    print_problems,
    run,
    settings,
    with_engine,
)
from hub.clients import create_client, list_clients, revoke_client
from hub.domain import DEPARTMENTS, Role
from hub.grants import GrantBook, Grants, describe
from hub.models import Enterprise
from hub.policy import PolicyError, Relation, lint, load_policy
from hub.schema.loaders import Reader


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="Which system or person this is.")],
    department: Annotated[
        str | None, typer.Option(help="The client's department, e.g. market.")
    ] = None,
    enterprise: Annotated[
        str | None,
        typer.Option(
            metavar="USCC",
            help="An enterprise's own credential (role enterprise), instead of --department: "
            "it reads that enterprise's dossier and who read it, nothing else.",
        ),
    ] = None,
    role: Annotated[
        Role | None,
        typer.Option(
            metavar="ROLE",
            help="What the client is for: department (the default), auditor or admin; "
            "enterprise with --enterprise.",
        ),
    ] = None,
    developer: Annotated[
        bool,
        typer.Option(
            "--developer",
            help="A developer's credential: reads as its department, and may send documents "
            "that are not registered when the hub runs registered documents only "
            "(HUB_TRUSTED_DOCUMENTS).",
        ),
    ] = False,
) -> None:
    """Register a client and print its bearer token: shown once, only its hash is kept."""
    role = role or (Role.ENTERPRISE if enterprise is not None else Role.DEPARTMENT)
    new = run(
        with_engine(
            settings(),
            lambda engine: create_client(engine, department=department, enterprise=enterprise,
                                         name=name, role=role, developer=developer),
        )
    )  # fmt: skip
    whose = department if enterprise is None else f"enterprise {enterprise.strip().upper()}"
    kind = f"{role.value}, developer" if developer else role.value
    console.print(
        f"client {new.id} ({name}, {whose}, {kind}) created. Its token follows; "
        "store it now, the hub cannot show it again:",
        highlight=False,
    )
    sys.stdout.write(new.token + "\n")


@clients_app.command("list")
def clients_list() -> None:
    """Every client, revoked ones included."""
    clients = run(with_engine(settings(), list_clients))
    table = Table("id", "name", "department", "role", "enterprise", "developer", "created",
                  "revoked")  # fmt: skip
    for client, created in clients:
        revoked = f"{client.revoked_at:%Y-%m-%d %H:%M}" if client.revoked_at else ""
        table.add_row(
            str(client.id),
            client.name,
            client.department,
            client.role.value,
            client.enterprise or "",
            "yes" if client.developer else "",
            f"{created:%Y-%m-%d %H:%M}",
            revoked,
        )
    Console().print(table)


@clients_app.command("revoke")
def clients_revoke(client_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke a client: its token stops working on its next request."""
    client = run(with_engine(settings(), lambda engine: revoke_client(engine, client_id)))
    console.print(
        f"client {client.id} ({client.name}) revoked at {client.revoked_at:%Y-%m-%d %H:%M} UTC"
    )


@policy_app.command("lint")
def policy_lint() -> None:
    """Check policies/ against the schema; every problem names its file and line."""
    from hub.schema import policy_fields

    directory = settings().policy_dir
    problems = lint(directory, policy_fields())
    if problems:
        print_problems(problems)
        console.print(f"{len(problems)} problem(s) in {directory}")
        raise typer.Exit(1)
    policy = load_policy(directory, policy_fields())
    console.print(
        f"[green]{directory} is sound[/green]: version {policy.version}, "
        f"{len(policy.catalog)} catalogued fields"
    )


@policy_app.command("explain")
def policy_explain(
    department: Annotated[str, typer.Option(help="The caller's department.")],
    owner: Annotated[str, typer.Option(help="The department owning the records.")],
    field: Annotated[str, typer.Option(help="Type.field, e.g. Acceptance.verdict.")],
    purpose: Annotated[str | None, typer.Option(help="The purpose the request states.")] = None,
    role: Annotated[
        Role,
        typer.Option(
            metavar="ROLE", help="The caller's role: department, auditor, admin or enterprise."
        ),
    ] = Role.DEPARTMENT,
    enterprise: Annotated[
        str | None, typer.Option(help="USCC of an enterprise, for grants scoped to some.")
    ] = None,
    relation: Annotated[
        list[Relation] | None,
        typer.Option(
            metavar="RELATION",
            help="The caller's part in the record (repeatable): participant, assisting, "
            "conflicting or transferee.",
        ),
    ] = None,
) -> None:
    """Print what the policy decides for one field, and the line that decided it (and the
    relation that opened it, or would); for conditional fields, the grants that open it or
    what is missing (read from the database)."""
    from hub.auth import Principal
    from hub.schema import policy_fields

    try:
        policy = load_policy(settings().policy_dir, policy_fields())
    except PolicyError as error:
        print_problems(error.problems)
        raise typer.Exit(1) from None
    if field not in policy.catalog:
        raise typer.BadParameter(f"{field!r} is not a catalogued Type.field", param_hint="--field")
    codes = [d.code for d in DEPARTMENTS]
    for value, hint in ((department, "--department"), (owner, "--owner")):
        if value not in codes:
            raise typer.BadParameter(
                f"{value!r} is not a department; one of {', '.join(codes)}", param_hint=hint
            )
    subject = Principal("cli", "cli", department, role).subject
    relations = tuple(sorted({r.value for r in relation or ()}))
    decision = policy.decide(
        subject, owner, field, purpose=purpose is not None, relations=relations
    )
    # As myAccess says it: a field served with a stated purpose (under a grant) is
    # CONDITIONAL, not DENIED, when no purpose is given.
    verdict = (
        "[green]ALLOWED[/green]"
        if decision.allowed
        else "[yellow]CONDITIONAL[/yellow]"
        if decision.needs_purpose
        else "[red]DENIED[/red]"
    )
    part = f" as {', '.join(relations)} of the record" if relations else ""
    console.print(
        f"{verdict} {subject} reading {field} of {owner}'s records{part} "
        f"({decision.sharing.value} field, policy version {policy.version})"
    )
    if decision.relation:
        console.print(f"opened by the relation: {decision.relation}", highlight=False)
    console.print(f"because {decision.reason}", highlight=False, soft_wrap=True)
    if decision.needs_purpose:  # conditional: grants decide the rest
        code = (purpose or "").split(":", 1)[0].strip() or None
        try:
            book, region = run(with_engine(settings(), lambda engine: _grants(engine, enterprise)))
        except SQLAlchemyError as error:
            console.print(f"the grants could not be read: {error.__class__.__name__}; is the "
                          "database migrated (`hub db upgrade`)?")  # fmt: skip
            return
        ids, condition = describe(book, subject, owner, field)
        if purpose is not None:
            grant, condition = book.match(subject, owner, field, code, enterprise, region)
            verdict = "[green]SERVED[/green]" if grant else "[red]WITHHELD[/red]"
            where = f" for enterprise {enterprise}" if enterprise else ""
            console.print(f"{verdict} under the grants{where}: {condition}", highlight=False,
                          soft_wrap=True)  # fmt: skip
        else:
            opening = "open under " if ids else "no active grant: "
            console.print(f"conditional, {opening}{condition}", highlight=False, soft_wrap=True)


async def _grants(engine: AsyncEngine, enterprise: str | None) -> tuple[GrantBook, str | None]:
    reader = Reader(engine)
    try:
        book = await Grants().current(reader.rows)
        region = None
        if enterprise is not None:
            rows = await reader.rows(select(Enterprise.region).where(Enterprise.uscc == enterprise))
            region = rows[0].region if rows else None
        return book, region
    finally:
        await reader.close()
