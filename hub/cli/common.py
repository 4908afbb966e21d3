"""What every `hub` command shares: the command tree, the console, settings, helpers."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable, Coroutine
from importlib.metadata import version
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db import MigrationRefused, MissingFolder, create_engine, current_revision, head_revision
from hub.errors import HubError
from hub.policy import Problem
from hub.settings import Settings
from hub.text import HIDDEN, escaped

__all__ = [
    "app",
    "console",
    "explain_setup_mistakes",
    "operator",
    "plain_json",
    "print_problems",
    "revision_problem",
    "run",
    "settings",
    "visible",
    "with_engine",
]

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
debugging = False  # --debug: a setup mistake shows its traceback too


def print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"hub {version('hub')}")
        raise typer.Exit()


@app.callback()
def options(
    debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of a failure as well as what to do about it."
    ),
    _: bool = typer.Option(
        False, "--version", callback=print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    global debugging
    debugging = debug


T = TypeVar("T")


def setup_problem(error: BaseException, url: str) -> str | None:
    """What an operator did wrong, and what to do, when ``error`` comes from the database
    named by ``url`` (HUB_DATABASE_URL) being unreachable, unknown or not migrated; None for
    anything else."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = repr(url)
    example = "e.g. sqlite+aiosqlite:///var/hub.db or postgresql+asyncpg://user:password@host/hub"
    if isinstance(error, ArgumentError):
        return f"HUB_DATABASE_URL {shown} is not a database URL: {example}"
    if isinstance(error, ModuleNotFoundError | NoSuchModuleError):
        return (
            f"HUB_DATABASE_URL {shown} names a database driver the hub does not install: {example}"
        )
    if isinstance(error, MigrationRefused):
        return f"the database at {shown} was not migrated: {error}"
    if isinstance(error, MissingFolder):
        return (
            f"the folder {error.folder} of the SQLite database {shown} does not exist: create "
            "it, or set HUB_DATABASE_URL to a file in a folder that does"
        )
    if isinstance(error, OSError):  # refused, unknown host, timed out
        reason = error.strerror or str(error) or type(error).__name__
        return (
            f"cannot reach the database at {shown} ({reason}): is it running, and is "
            "HUB_DATABASE_URL right?"
        )
    if isinstance(error, DBAPIError):
        said = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        lowered = said.lower()
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            return f"the database at {shown} is not migrated ({said}): run `hub db upgrade`"
        return f"the database at {shown} refused: {said}; check HUB_DATABASE_URL"
    return None


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from None


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a HubError becomes its message and exit status 1."""
    try:
        return asyncio.run(work)
    except HubError as error:  # as text: a message may quote [brackets] of the caller's
        console.print(Text(error.message, style="red"), soft_wrap=True)
        raise typer.Exit(1) from None


def explain_setup_mistakes(command: Callable[[], T]) -> T:
    """Run the `hub` command: a setup mistake (see setup_problem) is one paragraph and exit
    status 2, its traceback only with --debug."""
    try:
        return command()
    except Exception as error:
        url = os.environ.get("HUB_DATABASE_URL", Settings().database_url)
        problem = setup_problem(error, url)
        if problem is None or debugging:
            raise
        console.print(Text(escaped(problem), style="red"), soft_wrap=True)
        raise SystemExit(2) from None


async def with_engine(config: Settings, use: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(config)
    try:
        return await use(engine)
    finally:
        await engine.dispose()


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        console.print(f"[red]{problem}[/red]", highlight=False, soft_wrap=True)


def plain_json(values: Any) -> str:
    """``values`` as JSON text (UTF-8, not ASCII) in which whatever a terminal would obey or
    hide is a \\u escape: the same values when read back, nothing to obey when shown."""
    text = json.dumps(values, ensure_ascii=False)
    return HIDDEN.sub(lambda found: f"\\u{ord(found[0]):04x}", text)


def visible(value: str, *, keep: str = "") -> str:
    """``value`` fit for a terminal (text.escaped)."""
    return escaped(value, keep=keep)


def operator(command: str) -> str:
    """Who runs ``command`` on this machine, as access records and versions name them."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        user = "unknown user"
    return f"{command} ({user})"


async def revision_problem(engine: AsyncEngine, config: Settings) -> str | None:
    """Why the database cannot be written by this code (not migrated to its revision)."""
    async with engine.connect() as connection:
        current = await current_revision(connection)
    head = head_revision(config)
    if current == head:
        return None
    return (
        f"the database is at revision {current or 'none (it is empty)'}, not {head}: "
        "run `hub db upgrade` first"
    )
