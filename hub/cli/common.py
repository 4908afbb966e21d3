"""What every `hub` command shares: the command tree, the console, settings, helpers."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db import create_engine, current_revision, head_revision
from hub.errors import HubError
from hub.policy import Problem
from hub.settings import Settings
from hub.text import HIDDEN, escaped

__all__ = [
    "app",
    "console",
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

T = TypeVar("T")


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
    except HubError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from None


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
