"""The `hub` command: serve, migrate, demo data, clients, policies, schema."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import nullcontext
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import COLUMNS, AccessFilter, export, exported, search, verify
from hub.checkpoint import CheckpointError, create_key, load_checkpoint, load_key, sign
from hub.clients import create_client, list_clients, revoke_client
from hub.db import create_engine, head_revision, upgrade
from hub.demo import (
    AS_OF,
    count_enterprises,
    ensure_demo_tokens,
    load_demo,
    read_demo_tokens,
    write_demo_tokens,
)
from hub.domain import Role
from hub.errors import HubError
from hub.policy import PolicyError, Problem, lint, load_policy
from hub.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="GraphQL data-sharing hub for departments' enterprise records.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data for a first run and for benchmarks.", no_args_is_help=True)
schema_app = typer.Typer(help="The GraphQL schema.", no_args_is_help=True)
clients_app = typer.Typer(help="Clients and their bearer tokens.", no_args_is_help=True)
policy_app = typer.Typer(help="Who may read what: policies/.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The access log: verify, checkpoint, export, search.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(schema_app, name="schema")
app.add_typer(clients_app, name="clients")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")

console = Console(stderr=True)

T = TypeVar("T")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


DEFAULT_ENTERPRISES = 300
DEFAULT_SEED = 7


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the database (HUB_DATABASE_URL) to the latest schema."""
    config = settings()
    upgrade(config, revision)
    reached = head_revision(config) if revision == "head" else revision
    console.print(f"[green]database at revision {reached}[/green]")


async def _load(config: Settings, enterprises: int, seed: int, as_of: date, if_empty: bool) -> None:
    engine = create_engine(config)
    try:
        existing = await count_enterprises(engine)
        if existing:
            if if_empty:
                console.print(f"database already holds {existing} enterprises; demo not loaded")
                return
            console.print(
                f"[red]the database already holds {existing} enterprises[/red]: demo data goes "
                "into an empty database (point HUB_DATABASE_URL at a new one, or pass --if-empty "
                "to skip quietly)"
            )
            raise typer.Exit(1)
        started = time.perf_counter()
        columns = (
            TextColumn("loading demo"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("enterprises", total=enterprises)
            written = await load_demo(
                engine,
                enterprises=enterprises,
                seed=seed,
                as_of=as_of,
                progress=lambda n: progress.advance(task, n),
            )
        summary = ", ".join(f"{count} {table}" for table, count in written.items())
        console.print(f"[green]loaded[/green] {summary} in {time.perf_counter() - started:.1f} s")
    finally:
        await engine.dispose()


@demo_app.command("load")
def demo_load(
    enterprises: Annotated[
        int, typer.Option(min=1, help="How many enterprises.")
    ] = DEFAULT_ENTERPRISES,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = DEFAULT_SEED,
    as_of: Annotated[
        str, typer.Option(help="Reference day of the demo history.")
    ] = AS_OF.isoformat(),
    if_empty: Annotated[bool, typer.Option(help="Skip quietly when data exists.")] = False,
) -> None:
    """Fill an empty, migrated database with deterministic demo dossiers."""
    try:
        reference = date.fromisoformat(as_of)
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a day like 2026-11-01", param_hint="--as-of"
        ) from None
    asyncio.run(_load(settings(), enterprises, seed, reference, if_empty))


@schema_app.command("export")
def schema_export(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Print the GraphQL schema (SDL), as committed in schema.graphql."""
    from hub.schema import sdl

    if output is None:
        sys.stdout.write(sdl())
    else:
        output.write_text(sdl(), encoding="utf-8")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a HubError becomes its message and exit status 1."""
    try:
        return asyncio.run(work)
    except HubError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from None


async def _with_engine(config: Settings, use: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(config)
    try:
        return await use(engine)
    finally:
        await engine.dispose()


@clients_app.command("create")
def clients_create(
    department: Annotated[str, typer.Option(help="The client's department, e.g. market.")],
    name: Annotated[str, typer.Option(help="Which system or person this is.")],
    role: Annotated[Role, typer.Option(help="What the client is for.")] = Role.DEPARTMENT,
) -> None:
    """Register a client and print its bearer token: shown once, only its hash is kept."""
    new = _run(
        _with_engine(
            settings(),
            lambda engine: create_client(engine, department=department, name=name, role=role),
        )
    )
    console.print(
        f"client {new.id} ({name}, {department}, {role.value}) created. Its token follows; "
        "store it now, the hub cannot show it again:"
    )
    sys.stdout.write(new.token + "\n")


@clients_app.command("list")
def clients_list() -> None:
    """Every client, revoked ones included."""
    clients = _run(_with_engine(settings(), list_clients))
    table = Table("id", "name", "department", "role", "created", "revoked")
    for client, created in clients:
        revoked = f"{client.revoked_at:%Y-%m-%d %H:%M}" if client.revoked_at else ""
        table.add_row(
            str(client.id),
            client.name,
            client.department,
            client.role.value,
            f"{created:%Y-%m-%d %H:%M}",
            revoked,
        )
    Console().print(table)


@clients_app.command("revoke")
def clients_revoke(client_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke a client: its token stops working on its next request."""
    client = _run(_with_engine(settings(), lambda engine: revoke_client(engine, client_id)))
    console.print(
        f"client {client.id} ({client.name}) revoked at {client.revoked_at:%Y-%m-%d %H:%M} UTC"
    )


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        console.print(f"[red]{problem}[/red]", highlight=False, soft_wrap=True)


@policy_app.command("lint")
def policy_lint() -> None:
    """Check policies/ against the schema; every problem names its file and line."""
    from hub.schema import policy_fields

    directory = settings().policy_dir
    problems = lint(directory, policy_fields())
    if problems:
        _print_problems(problems)
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
    role: Annotated[Role, typer.Option(help="The caller's role.")] = Role.DEPARTMENT,
) -> None:
    """Print what the policy decides for one field, and the line that decided it."""
    from hub.auth import Principal
    from hub.schema import policy_fields

    try:
        policy = load_policy(settings().policy_dir, policy_fields())
    except PolicyError as error:
        _print_problems(error.problems)
        raise typer.Exit(1) from None
    if field not in policy.catalog:
        raise typer.BadParameter(f"{field!r} is not a catalogued Type.field", param_hint="--field")
    subject = Principal("cli", "cli", department, role).subject
    decision = policy.decide(subject, owner, field, purpose=purpose is not None)
    verdict = "[green]ALLOWED[/green]" if decision.allowed else "[red]DENIED[/red]"
    console.print(
        f"{verdict} {subject} reading {field} of {owner}'s records "
        f"({decision.sharing.value} field, policy version {policy.version})"
    )
    console.print(f"because {decision.reason}", highlight=False, soft_wrap=True)


def _public_key(public_key: Path | None, config: Settings) -> Ed25519PublicKey:
    if public_key is None:
        return load_key(config.audit_signing_key).public_key()
    try:
        key = serialization.load_pem_public_key(public_key.read_bytes())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read the public key {public_key}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{public_key} is not an Ed25519 public key")
    return key


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option(help="A signed checkpoint the log must still agree with.")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="PEM public key for the checkpoint (default: the hub's own key)."),
    ] = None,
) -> None:
    """Walk the hash chain; name the first record that breaks it."""
    config = settings()
    signed = None
    if checkpoint is not None:
        try:
            signed = load_checkpoint(checkpoint, _public_key(public_key, config))
        except CheckpointError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    result = _run(_with_engine(config, lambda engine: verify(
        engine, signed.seq if signed else None, signed.head_hash if signed else None
    )))  # fmt: skip
    if not result.ok:
        console.print(
            f"[red]the access log is broken at record {result.broken_seq}:[/red] {result.problem}",
            highlight=False,
        )
        raise typer.Exit(1)
    against = f", agreeing with the checkpoint of record {signed.seq}" if signed else ""
    console.print(
        f"[green]the access log is intact[/green]: {result.records} records, head "
        f"{result.head_seq} {result.head_hash}{against}",
        highlight=False,
    )


@audit_app.command("keygen")
def audit_keygen(
    output: Annotated[
        Path | None, typer.Option(help="Where (default: HUB_AUDIT_SIGNING_KEY).")
    ] = None,
) -> None:
    """Create the Ed25519 key that signs checkpoints (keep it out of version control)."""
    path = output or settings().audit_signing_key
    if path.exists():
        console.print(f"[red]{path} exists[/red]; move it away first to replace the key")
        raise typer.Exit(1)
    create_key(path)
    console.print(f"signing key written to {path} (readable by you only)")


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[Path | None, typer.Option(help="Where to write it.")] = None,
) -> None:
    """Sign the log's current head, after verifying the chain, for witnesses to keep."""
    config = settings()
    try:
        key = load_key(config.audit_signing_key)
    except CheckpointError as error:
        console.print(f"[red]{error}[/red]; create one with `hub audit keygen`")
        raise typer.Exit(1) from None
    result = _run(_with_engine(config, lambda engine: verify(engine)))
    if not result.ok:
        console.print(f"[red]refusing to sign a broken log[/red]: {result.problem}")
        raise typer.Exit(1)
    document = sign(key, result.head_seq, result.head_hash)
    path = output or Path(f"var/checkpoints/checkpoint-{result.head_seq}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    console.print(f"checkpoint of record {result.head_seq} written to {path}")


def _day_or_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date or time like 2026-11-22 or 2026-11-22T08:00",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="From this day or time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this day or time (UTC).")] = None,
    format: Annotated[ExportFormat, typer.Option(help="jsonl or csv.")] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export access records, oldest first."""
    access_filter = AccessFilter(
        since=_day_or_time(since, "--since"), until=_day_or_time(until, "--until")
    )

    async def write(engine: AsyncEngine) -> int:
        count = 0
        with (output.open("w", encoding="utf-8", newline="") if output else nullcontext(
            sys.stdout
        )) as stream:  # fmt: skip
            writer = csv.DictWriter(stream, fieldnames=COLUMNS) if format is ExportFormat.CSV \
                else None  # fmt: skip
            if writer:
                writer.writeheader()
            async for record in export(engine, access_filter):
                if writer:
                    writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list)
                                     else v for k, v in record.items()})  # fmt: skip
                else:
                    stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        return count

    count = _run(_with_engine(settings(), write))
    console.print(f"{count} access records exported")


@audit_app.command("search")
def audit_search(
    enterprise: Annotated[str | None, typer.Option(help="USCC of the enterprise.")] = None,
    field: Annotated[
        str | None, typer.Option(help="A Type.field served, e.g. Penalty.amount.")
    ] = None,
    department: Annotated[str | None, typer.Option(help="The reading department.")] = None,
    since: Annotated[str | None, typer.Option(help="From this day or time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this day or time (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
) -> None:
    """Who read what: matching access records, newest first."""
    from hub.uscc import parse_uscc

    try:
        code = parse_uscc(enterprise) if enterprise else None
    except HubError as error:
        raise typer.BadParameter(error.message, param_hint="--enterprise") from None
    access_filter = AccessFilter(
        department=department,
        enterprise=code,
        field=field,
        since=_day_or_time(since, "--since"),
        until=_day_or_time(until, "--until"),
    )

    async def find(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as connection:
            rows = await connection.execute(search(access_filter, limit))
            return [exported(dict(row._mapping)) for row in rows]

    records = _run(_with_engine(settings(), find))
    table = Table("seq", "time (UTC)", "department", "client", "purpose", "outcome", "fields")
    for record in records:
        fields = record["fields"]
        if code:
            fields = [f for f in fields if f.startswith(f"{code}:")]
        table.add_row(
            str(record["seq"]),
            record["recorded_at"][:19].replace("T", " "),
            record["department"] or "",
            record["client"] or "",
            record["purpose"] or "",
            record["outcome"],
            " ".join(sorted({f.split(":")[-1] for f in fields})),
        )
    Console().print(table)
    console.print(f"{len(records)} access records")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(help="First run: migrate the database and load demo data when it is empty."),
    ] = False,
) -> None:
    """Serve the hub: GraphQL at /graphql (GraphiQL in a browser), /healthz, /readyz."""
    import uvicorn

    from hub.app import create_app

    config = settings()
    try:
        hub = create_app(config)
    except PolicyError as error:
        _print_problems(error.problems)
        console.print(f"[red]the hub does not start with unsound policies in {config.policy_dir}")
        raise typer.Exit(1) from None
    if demo:
        upgrade(config)
        asyncio.run(_load(config, DEFAULT_ENTERPRISES, DEFAULT_SEED, AS_OF, if_empty=True))
        if not config.audit_signing_key.exists():
            create_key(config.audit_signing_key)
            console.print(f"checkpoint signing key created at {config.audit_signing_key}")
        path = Path("var/demo-tokens.txt")
        known = read_demo_tokens(path)
        tokens = _run(_with_engine(config, lambda engine: ensure_demo_tokens(engine, known)))
        if tokens != known:
            write_demo_tokens(path, tokens)
        console.print(
            f"demo bearer tokens for {', '.join(tokens)} are in {path}; e.g. market regulation:"
            f"\n  Authorization: Bearer {tokens['market']}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"hub on [bold]http://{host}:{port}/graphql[/bold] (GraphiQL in a browser)")
    # The hub's own records (policy reloads, internal errors with their references) go
    # where uvicorn's do.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     [%(name)s] %(message)s")
    uvicorn.run(hub, host=host, port=port, log_level="info")


def main() -> None:
    app()
