"""Setting up and serving: migrations, demo data, the schema, the server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.checkpoint import create_key
from hub.cli.common import (
    app,
    console,
    db_app,
    demo_app,
    print_problems,
    revision_problem,
    run,
    schema_app,
    settings,
    with_engine,
)
from hub.db import create_engine, head_revision, upgrade
from hub.demo import (
    AS_OF,
    count_enterprises,
    ensure_demo_tokens,
    load_demo,
    read_demo_tokens,
    write_demo_tokens,
)
from hub.logs import FORMATS
from hub.policy import PolicyError
from hub.roles import NO_ROLES, grant_serving_role
from hub.settings import MAX_CHECKPOINT_SECONDS, Settings

DEFAULT_ENTERPRISES = 300
DEFAULT_SEED = 7


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    serving_role: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL: then grant this role what serving needs and no more (the access "
            "log: read and append only). Run as the owner, after every upgrade."
        ),
    ] = None,
) -> None:
    """Create or migrate the database (HUB_DATABASE_URL) to the latest schema."""
    config = settings()
    if serving_role is not None and config.database_url.startswith("sqlite"):
        console.print(f"[red]{NO_ROLES}[/red]")
        raise typer.Exit(1)
    upgrade(config, revision)
    reached = head_revision(config) if revision == "head" else revision
    console.print(f"[green]database at revision {reached}[/green]")
    if serving_role is not None:
        role = serving_role

        async def grant(engine: AsyncEngine) -> list[str]:
            async with engine.begin() as connection:
                return await grant_serving_role(connection, role)

        tables = run(with_engine(config, grant))
        console.print(
            f"[green]{role} may now serve[/green]: read and append to access_record, read "
            f"alembic_version, read and write the {len(tables) - 2} other tables; nothing else",
            highlight=False,
        )


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


def _stopped(*_: object) -> None:
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(help="First run: migrate the database and load demo data when it is empty."),
    ] = False,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=MAX_CHECKPOINT_SECONDS,
            metavar="SECONDS",
            help="Sign the access log's head this often into HUB_CHECKPOINT_DIR, for witnesses; "
            "0: never. [default: HUB_CHECKPOINT_SECONDS, else 0]",
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Also print a line per HTTP request (every GraphQL request is in the hub's "
            "own access log anyway)."
        ),
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(
            metavar="text|json",
            help="The server log: text, or a JSON object per line for a log collector. "
            "[default: HUB_LOG_FORMAT, else text]",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Processes serving the same port, e.g. one per core; SIGHUP to the first "
            "reloads the policy files in each.",
        ),
    ] = 1,
) -> None:
    """Serve the hub: GraphQL at /graphql (GraphiQL in a browser), /healthz, /readyz."""
    import uvicorn

    from hub.app import create_app
    from hub.logs import configure_logging

    if log_format is not None:
        if log_format not in FORMATS:
            raise typer.BadParameter(f"text or json, not {log_format!r}", param_hint="--log-format")
        os.environ["HUB_LOG_FORMAT"] = log_format  # for workers too
    config = settings()
    if checkpoint_every is not None:
        config = replace(config, checkpoint_seconds=checkpoint_every)
        os.environ["HUB_CHECKPOINT_SECONDS"] = str(checkpoint_every)  # for workers
    try:
        hub = create_app(config)
    except PolicyError as error:
        print_problems(error.problems)
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
        tokens = run(with_engine(config, lambda engine: ensure_demo_tokens(engine, known)))
        if tokens != known:
            write_demo_tokens(path, tokens)
        console.print(
            f"demo bearer tokens for {', '.join(tokens)} are in {path}; e.g. market regulation:"
            f"\n  Authorization: Bearer {tokens['market']}",
            highlight=False,
            soft_wrap=True,
        )
    # An operator's mistake is said now, not answered as INTERNAL to the first caller.
    if problem := run(with_engine(config, lambda engine: revision_problem(engine, config))):
        console.print(Text(f"the hub does not start: {problem}", style="red"), soft_wrap=True)
        raise typer.Exit(1)
    configure_logging(config.log_format)
    if config.log_format == "json":
        logging.getLogger("hub").info("hub on http://%s:%d/graphql", host, port)
    else:
        console.print(f"hub on [bold]http://{host}:{port}/graphql[/bold] (GraphiQL in a browser)")
    # A WebSocket message is held to the size of a request body (HUB_MAX_REQUEST_BYTES):
    # larger ones close the socket (1009), as larger bodies are refused (413).
    options: dict[str, Any] = {"log_level": "info", "access_log": access_log,
                               "ws_max_size": config.max_request_bytes}  # fmt: skip
    # As JSON, uvicorn's lines go through the hub's formatter: uvicorn configures nothing.
    if config.log_format == "json":
        options["log_config"] = None
    if workers == 1:
        # uvicorn drains, then raises the SIGTERM it caught again, which would end the process
        # with 143: stopping when asked is a clean exit (0), as supervisors expect.
        signal.signal(signal.SIGTERM, _stopped)
        uvicorn.run(hub, host=host, port=port, **options)
        return
    from hub.workers import supervise

    # Each worker makes its own hub from the same settings, checked above.
    try:
        supervise(host, port, workers, options)
    except OSError as error:
        console.print(f"[red]cannot serve on {host}:{port}: {error.strerror or error}")
        raise typer.Exit(1) from None
