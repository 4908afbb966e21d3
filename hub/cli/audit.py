"""The access log from the command line: verify, checkpoint, keygen, export, search.

Access records hold what callers sent (purpose, case reference, operation name), so what
the commands show is treated as hostile: ``search`` prints every value as plain text (no
Rich markup, control and invisible characters as escapes such as \\x1b); ``export`` writes
JSON lines whose values read back exactly yet hold nothing a terminal obeys (\\u escapes),
and CSV for spreadsheets: control characters but tab and line feed escaped as in ``search``,
and no cell a spreadsheet would run as a formula (OWASP's advice against CSV injection: a
cell starting with = + - @, a tab or a carriage return gets a leading single quote, which
the spreadsheet shows as text).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit import COLUMNS, AccessFilter, export, exported, find, verify
from hub.checkpoint import (
    CheckpointError,
    checkpoint_path,
    create_key,
    load_checkpoint,
    load_key,
    sign,
    write_checkpoint,
)
from hub.cli.common import (
    audit_app,
    console,
    plain_json,
    run,
    settings,
    visible,
    with_engine,
)
from hub.errors import HubError
from hub.settings import Settings


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


# What makes a spreadsheet read a cell as a formula (=HYPERLINK(...), @SUM(...), +, -), or
# skip to one (tab, carriage return).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as an exported CSV cell: lists as JSON; control characters as escapes; text a
    spreadsheet would take for a formula behind a single quote, which it shows as text."""
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        return value
    value = visible(value, keep="\t\n")
    return f"'{value}" if value.startswith(FORMULA_START) else value


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
    result = run(with_engine(config, lambda engine: verify(
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
    output: Annotated[
        Path | None, typer.Option(help="Where to write it (default: in HUB_CHECKPOINT_DIR).")
    ] = None,
) -> None:
    """Sign the log's current head, after verifying the chain, for witnesses to keep."""
    config = settings()
    try:
        key = load_key(config.audit_signing_key)
    except CheckpointError as error:
        console.print(f"[red]{error}[/red]; create one with `hub audit keygen`")
        raise typer.Exit(1) from None
    result = run(with_engine(config, lambda engine: verify(engine)))
    if not result.ok:
        console.print(f"[red]refusing to sign a broken log[/red]: {result.problem}")
        raise typer.Exit(1)
    path = output or checkpoint_path(config.checkpoint_dir, result.head_seq)
    write_checkpoint(path, sign(key, result.head_seq, result.head_hash))
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
    format: Annotated[
        ExportFormat,
        typer.Option(
            help="jsonl (values exact; characters a terminal would obey as \\u escapes) or csv "
            "(for spreadsheets: control characters but tab and line feed as escapes like \\x1b, "
            "and a cell starting with =, +, -, @, a tab or a carriage return behind a single "
            "quote ', so that it is shown and never run as a formula)."
        ),
    ] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export access records, oldest first.

    JSONL holds every value exactly; CSV is for spreadsheets, where no cell can run as a
    formula (see --format).
    """
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
                    writer.writerow({k: csv_cell(v) for k, v in record.items()})
                else:
                    stream.write(plain_json(record) + "\n")
                count += 1
        return count

    count = run(with_engine(settings(), write))
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

    async def matching(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as connection:

            async def rows(statement: Select[Any]) -> Sequence[Row[Any]]:
                found: Sequence[Row[Any]] = (await connection.execute(statement)).all()
                return found

            return [exported(dict(row._mapping)) for row in await find(rows, access_filter, limit)]

    records = run(with_engine(settings(), matching))
    table = Table(
        "seq", "time (UTC)", "department", "client", "operation", "purpose", "case", "outcome",
        "fields",
    )  # fmt: skip
    for record in records:
        fields = record["fields"]
        if code:
            fields = [f for f in fields if f.startswith(f"{code}:")]
        # Text, not str: stored values are shown as they are, never read as Rich markup.
        table.add_row(*(Text(visible(value or "")) for value in (
            str(record["seq"]),
            record["recorded_at"][:19].replace("T", " "),
            record["department"],
            record["client"],
            record["operation_name"],
            record["purpose"],
            record["case_ref"],
            record["outcome"],
            " ".join(sorted({f.split(":")[-1] for f in fields})),
        )))  # fmt: skip
    Console().print(table)
    console.print(f"{len(records)} access records")
