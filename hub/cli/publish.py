"""`hub import`: a department's records from an NDJSON or CSV file (see hub/importing.py).

For initial loads and nightly syncs, run by an administrator on the hub's machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.cli.common import (
    app,
    console,
    operator,
    print_problems,
    revision_problem,
    settings,
    visible,
)
from hub.db import create_engine
from hub.errors import Forbidden
from hub.importing import CHANGES, DEPARTMENT_CODES, Importer, Tally
from hub.policy import PolicyError, load_policy
from hub.publishing import MAX_BATCH
from hub.reading import (
    EXTENSIONS,
    Format,
    Line,
    Stop,
    batches,
    count_lines,
    listing,
    read_csv,
    read_ndjson,
    unknown,
)
from hub.records import KINDS
from hub.settings import Settings

# The command ----------------------------------------------------------------------------


def _database_failure(error: Exception) -> str:
    cause = error.orig if isinstance(error, DBAPIError) else error
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"the database failed: {first}"


@dataclass
class Ending:
    """How an import ended: why it stopped (None when it did not) and where."""

    tally: Tally
    stopped: str | None = None
    at: int | None = None  # first line of the batch it stopped in
    failed: bool = False  # the database failed: the batch it was in was rolled back


async def _import(
    config: Settings,
    importer_for: Callable[[AsyncEngine], Importer],
    lines: Iterator[Line],
    size: int,
    total: int,
    label: str,
) -> Ending:
    engine = create_engine(config)
    importer: Importer | None = None
    at: int | None = None
    try:
        if problem := await revision_problem(engine, config):
            raise Stop(problem)
        importer = importer_for(engine)
        # The label (a file name) is the task's description: not a format string, not markup.
        label_column = TextColumn("{task.description}", markup=False)
        columns = (label_column, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(visible(label), total=total)
            for batch in batches(lines, size):
                at = batch[0].number
                await importer.batch(batch)
                progress.update(task, completed=batch[-1].number)
                at = None
        return Ending(importer.tally)
    except (Stop, Forbidden) as error:
        ending = Ending(Tally(), error.message if isinstance(error, Forbidden) else str(error), at)
    except (SQLAlchemyError, OSError) as error:
        ending = Ending(Tally(), _database_failure(error), at, failed=True)
    finally:
        await engine.dispose()
    ending.tally = importer.tally if importer else ending.tally
    return ending


def _print(tally: Tally, title: str, report: Path | None) -> None:
    out = Console()
    summary = Table("", "count", title=Text(visible(title)), title_justify="left")
    for change in CHANGES:
        summary.add_row(change.value, str(tally.changes[change.value]))
    if tally.deferred:
        summary.add_row("checked on import", str(tally.deferred))
    summary.add_row("rejected", str(tally.rejected))
    out.print(summary)
    if tally.shown:
        out.print("rejected lines:")
    for rejection in tally.shown:
        out.print(visible(str(rejection)), highlight=False, soft_wrap=True, markup=False)
    if tally.deferred:
        console.print(
            f"{tally.deferred} lines refer to records that lines before them would create: a dry "
            "run stores nothing, so those references are checked on import"
        )
    if tally.problems > len(tally.shown):
        where = f"all are in {report}" if report else "pass --report PATH to get them all"
        console.print(
            f"the first {len(tally.shown)} of {tally.problems} problems shown; {visible(where)}",
            markup=False,
        )


@app.command("import")
def import_records(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="NDJSON (.ndjson, .jsonl) or CSV (.csv), UTF-8.",
        ),
    ],
    department: Annotated[
        str,
        typer.Option(
            help="The department whose records these are: it publishes them, the policy's write "
            "rules decide.",
            show_default=False,
        ),
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            help=f"Every line's kind of record: {listing(KINDS)}. Required for CSV; without it "
            'each NDJSON line names its own in "recordKind".'
        ),
    ] = None,
    format: Annotated[
        Format | None, typer.Option(help="ndjson or csv (default: from the file's extension).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH, help="Lines committed together.")
    ] = 500,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Check every line and count what would change; writes nothing, not even an "
            "access record."
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write every rejected line here: NDJSON, one problem per line, with its line "
            "number.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Publish a department's records from a file, committed in batches.

    NDJSON: one record (a JSON object) a line. CSV: a header row of field names
    (sourceId, acceptedOn... as in GraphQL); an empty cell is an absent field;
    participants and assistingDepartments as codes separated by ';', findings
    as a JSON array.

    Each batch publishes its kinds in dependency order (inspections, penalties,
    rectifications, acceptances, creditRecords, creditRepairs), so a line may
    refer to a record on another line of its batch. Rejected lines are listed
    with their line numbers; the rest is published. Each batch is one access
    record. Importing a file again is safe: imported lines come out unchanged.

    Exit status: 0 every line imported, 1 some lines rejected, 2 the import
    could not start or was stopped (the message says why and what to do).
    """
    if department not in DEPARTMENT_CODES:
        raise typer.BadParameter(
            unknown("department", department, DEPARTMENT_CODES), param_hint="--department"
        )
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(unknown("kind", kind, tuple(KINDS)), param_hint="--kind")
    file_format = format or EXTENSIONS.get(file.suffix.lower())
    if file_format is None:
        raise typer.BadParameter(
            f"cannot tell the format of {file.name} from its extension; "
            "pass --format ndjson or --format csv",
            param_hint="--format",
        )
    if file_format is Format.CSV and kind is None:
        raise typer.BadParameter(
            f"a CSV file holds one kind of record: pass it ({listing(KINDS)})", param_hint="--kind"
        )
    if report is not None and report.resolve() == file.resolve():
        raise typer.BadParameter(f"{report} is the file to import", param_hint="--report")
    config = settings()
    from hub.schema import policy_fields

    try:
        policy = load_policy(config.policy_dir, policy_fields())
    except PolicyError as error:
        print_problems(error.problems)
        console.print(f"[red]nothing imported: the policies in {config.policy_dir} are unsound")
        raise typer.Exit(2) from None
    spec = KINDS[kind] if kind else None
    try:
        total = count_lines(file)
        stream = report.open("w", encoding="utf-8") if report else None
    except (Stop, OSError) as error:
        console.print(
            f"[red]nothing imported:[/red] {escape(visible(str(error)))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    lines = read_csv(file, spec) if spec and file_format is Format.CSV else read_ndjson(file, spec)
    client = operator("hub import")

    def importer(engine: AsyncEngine) -> Importer:
        return Importer(engine, policy, department, client, dry_run=dry_run, report=stream)

    try:
        ending = asyncio.run(
            _import(config, importer, lines, batch_size, total, f"importing {file.name}")
        )
    finally:
        if stream:
            stream.close()
    tally = ending.tally
    _print(tally, f"{file.name} ({'dry run, nothing written' if dry_run else department})", report)
    if ending.stopped:
        if dry_run:
            kept = "nothing was written (dry run)"
        elif ending.failed:
            kept = (
                "the lines counted above were imported, none of the batch that failed: "
                "import the file again once the database is back (lines already imported "
                "come out unchanged)"
            )
        elif tally.lines:
            kept = "the lines counted above were imported, none after them"
        else:
            kept = "nothing was imported"
        where = f" at line {ending.at}" if ending.at else ""
        console.print(
            f"[red]import stopped{where}:[/red] {escape(visible(ending.stopped))}; {kept}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if tally.rejected:
        console.print(
            f"{tally.rejected} of {tally.lines} lines rejected: fix them and import "
            "the file again (lines already imported come out unchanged)"
        )
        raise typer.Exit(1)
