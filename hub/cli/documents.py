"""`hub documents`: the GraphQL documents registered for each client (trusted documents).

Files' and clients' names are anyone's text: every value is shown as plain text (Rich
``Text``, control characters escaped), never read as Rich markup, or a folder named
``a[/]b`` would fail the table after its registration committed, and every list after.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hub.cli.common import (
    app,
    console,
    operator,
    plain_json,
    revision_problem,
    run,
    settings,
    visible,
    with_engine,
)
from hub.documents import DocumentError, register, retire, shown, usage
from hub.errors import HubError
from hub.schema import build_schema

documents_app = typer.Typer(
    help="Trusted documents: the GraphQL documents each client may send by id.",
    no_args_is_help=True,
)
app.add_typer(documents_app, name="documents")

CLIENT = Annotated[
    str, typer.Option("--client", help="The client's name, as `hub clients list` shows it.")
]
MAX_FILES = 10_000


def _sources(paths: list[Path]) -> list[tuple[str, str]]:
    """(name, text) of each file named, and of each `*.graphql` file in each folder named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.graphql") if p.is_file())
            if not found:
                raise DocumentError(f"{shown(str(path))}: the folder holds no .graphql file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DocumentError(f"{shown(str(path))}: no such file or folder")
    if len(files) > MAX_FILES:
        raise DocumentError(f"{len(files)} files: register at most {MAX_FILES} at once")
    sources = []
    for file in files:
        try:
            sources.append((str(file), file.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            raise DocumentError(
                f"{shown(str(file))}: not UTF-8 text; save the document as UTF-8"
            ) from None
        except OSError as error:
            raise DocumentError(f"{shown(str(file))}: cannot be read ({error.strerror})") from None
    return sources


def _plain(*values: str) -> list[Text]:
    """Table cells shown as they are: no Rich markup, nothing a terminal would obey."""
    return [Text(visible(value)) for value in values]


def _said(error: HubError) -> None:
    console.print(Text(error.message, style="red"), soft_wrap=True)
    raise typer.Exit(1)


async def _checked(engine: Any, work: Any) -> Any:
    if problem := await revision_problem(engine, settings()):
        raise HubError(problem)
    return await work(engine)


@documents_app.command("register")
def documents_register(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="FILE_OR_FOLDER...", help="Documents, or folders of *.graphql."),
    ],
    client: CLIENT,
) -> None:
    """Register documents for a client: each checked against the schema, all or none."""
    try:
        sources = _sources(paths)
        schema = build_schema()._schema
        registered, seq = run(with_engine(settings(), lambda engine: _checked(
            engine, lambda e: register(e, client, sources, operator("hub documents"), schema)
        )))  # fmt: skip
    except DocumentError as error:
        _said(error)
    table = Table("id", "file", "operations", "")
    for document in registered:
        table.add_row(*_plain(document.id, document.source, " ".join(document.operations) or "-",
                              "registered" if document.new else "already registered"))  # fmt: skip
    Console(width=200).print(table)
    new = sum(document.new for document in registered)
    console.print(Text(visible(
        f"{new} of {len(registered)} documents newly registered for {client.strip()} "
        f"(access record {seq})"
    )), soft_wrap=True)  # fmt: skip


@documents_app.command("list")
def documents_list(
    client: Annotated[
        str | None, typer.Option("--client", help="Only this client's documents.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Registered documents with how many requests ran each, and when last."""
    found = run(with_engine(settings(), lambda engine: usage(engine, client)))
    if as_json:
        for document in found:
            sys.stdout.write(plain_json({
                "id": document.id, "client": document.client, "source": document.source,
                "operations": list(document.operations), "registeredBy": document.registered_by,
                "registeredAt": document.registered_at.isoformat(),
                "retiredAt": document.retired_at.isoformat() if document.retired_at else None,
                "requests": document.requests, "lastUsed": document.last_used,
            }) + "\n")  # fmt: skip
        return
    table = Table("id", "client", "operations", "file", "registered", "requests", "last used",
                  "retired")  # fmt: skip
    for document in found:
        table.add_row(*_plain(
            document.id, document.client, " ".join(document.operations), document.source,
            f"{document.registered_at:%Y-%m-%d %H:%M} by {document.registered_by}",
            str(document.requests), (document.last_used or "")[:16].replace("T", " "),
            f"{document.retired_at:%Y-%m-%d %H:%M}" if document.retired_at else "",
        ))  # fmt: skip
    Console(width=250).print(table)
    console.print(f"{len(found)} documents", highlight=False)


@documents_app.command("retire")
def documents_retire(
    document: Annotated[str, typer.Argument(metavar="ID", help="sha256:<hex>")],
    client: CLIENT,
) -> None:
    """Retire a client's document: requests naming it are refused from then on."""
    try:
        seq = run(with_engine(settings(), lambda engine: _checked(
            engine, lambda e: retire(e, client, document, operator("hub documents"))
        )))  # fmt: skip
    except DocumentError as error:
        _said(error)
    console.print(Text(visible(f"{document.strip()} retired for {client.strip()} "
                               f"(access record {seq})")), soft_wrap=True)  # fmt: skip
