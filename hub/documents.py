"""Trusted documents (persisted queries): the GraphQL documents registered for each client.

A document is named by the sha256 of its text's UTF-8 bytes ("sha256:<hex>", the id a
request sends as ``documentId``) and belongs to a client's name: a system that rotates its
token (a new client of the same name) keeps its documents; a JWT's caller is "jwt:<sub>".
Registering checks each document against the hub's schema (it parses, validates and holds
an operation), all of a command's documents or none; registering and retiring are writes,
each with its access record in the same transaction, naming the operator. Retired documents
stay, for the records that name them. hub/trusted.py uses them on the request path.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse, validate
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit import AccessEntry, AccessLog, Outcome, Trail
from hub.db import transaction
from hub.domain import Role
from hub.errors import BadUserInput, NotFound
from hub.models import AccessRecord, Client, TrustedDocument
from hub.params import DOCUMENT_ID, text_digest
from hub.schema.limits import MAX_TOKENS
from hub.text import kept, problem

__all__ = [
    "DocumentError",
    "Registered",
    "Usage",
    "document_id",
    "find",
    "register",
    "retire",
    "shown",
    "usage",
]

MAX_OPERATIONS_TEXT = 2000  # the operations' names, as the column keeps them
MAX_SOURCE = 500  # the file's name, as the column keeps it
# PostgreSQL: registrations and retirements take turns (pg_advisory_xact_lock), or two at
# once both find a document missing and the second insert fails on the unique key.
DOCUMENTS_LOCK = 0x4855_4244_4F43_5321  # "HUBDOCS!"


class DocumentError(BadUserInput):
    """A document that cannot be registered, or a client or id that is not there."""


@dataclass(frozen=True, slots=True)
class Registered:
    id: str  # sha256:<hex>
    source: str
    operations: tuple[str, ...]
    new: bool  # False: the client had it already


@dataclass(frozen=True, slots=True)
class Usage:
    id: str
    client: str
    source: str
    operations: tuple[str, ...]
    registered_by: str
    registered_at: datetime
    retired_at: datetime | None
    requests: int
    last_used: str | None  # the last request's time, as its access record has it


def document_id(text: str) -> str:
    return f"sha256:{text_digest(text)}"


def checked(source: str, text: str, schema: Any) -> tuple[str, ...]:
    """The names of a document's operations ("" for an anonymous one); DocumentError
    naming the file and line of what is wrong with it. ``source`` as ``shown`` gives it."""
    if found := problem(text, prose=True):
        raise DocumentError(f"{source}: the document {found}; save it as plain UTF-8 text")
    try:
        document = parse(text, max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        raise DocumentError(_at(source, error)) from None
    if errors := validate(schema, document):
        raise DocumentError("\n".join(_at(source, error) for error in errors))
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise DocumentError(f"{source}: the document holds no operation (query, mutation or "
                            "subscription) to run")  # fmt: skip
    return tuple(operation.name.value if operation.name else "" for operation in operations)


def shown(source: str) -> str:
    """A file's name as documents and messages keep it (text.kept): a name may hold escape
    sequences or undecodable bytes, which nobody's terminal or database should receive."""
    return kept(source, MAX_SOURCE) or ""


def _at(source: str, error: GraphQLError) -> str:
    where = error.locations[0] if error.locations else None
    return (
        f"{source}:{where.line}:{where.column}: {error.message}"
        if where
        else (f"{source}: {error.message}")
    )


async def _holder_exists(connection: AsyncConnection, client: str) -> bool:
    if client.startswith("jwt:") and len(client) > 4:
        return True
    found = await connection.scalar(select(Client.id).where(Client.name == client).limit(1))
    return found is not None


async def register(
    engine: AsyncEngine, client: str, sources: list[tuple[str, str]], by: str, schema: Any
) -> tuple[list[Registered], int]:
    """Register documents (source name, text) for ``client``, checked against ``schema``
    first: all of them or none; a document the client has already is reported so, one it
    retired comes back. The registrations and their access record commit together; returns
    them and the record's sequence number."""
    client = client.strip()
    # File names are anyone's text: kept as records keep text (control characters escaped,
    # cut to the column), so neither the table, the access record nor a terminal obeys them.
    looked_at = [
        (shown(source), text, checked(shown(source), text, schema)) for source, text in sources
    ]
    started, now = time.perf_counter(), datetime.now(UTC)
    trail = Trail()
    registered: list[Registered] = []
    async with transaction(engine) as connection:
        await _take_turn(connection)
        if not await _holder_exists(connection, client):
            raise DocumentError(
                f"no client is named {client!r}: documents belong to a client's name as `hub "
                "clients list` shows it (or jwt:<sub> for a JWT's caller)"
            )
        for source, text, operations in looked_at:
            digest = text_digest(text)
            row = (await connection.execute(
                select(TrustedDocument.id, TrustedDocument.retired_at)
                .where(TrustedDocument.client == client, TrustedDocument.sha256 == digest)
            )).first()  # fmt: skip
            new = row is None or row.retired_at is not None
            names = " ".join(name or "(anonymous)" for name in operations)[:MAX_OPERATIONS_TEXT]
            if row is None:
                await connection.execute(insert(TrustedDocument).values(
                    client=client, sha256=digest, body=text, source=source,
                    operations=names, registered_by=by, registered_at=now,
                ))  # fmt: skip
            elif row.retired_at is not None:
                back = dict(retired_at=None, retired_by=None, registered_by=by, registered_at=now)
                await connection.execute(
                    update(TrustedDocument).where(TrustedDocument.id == row.id).values(**back)
                )
            if new:
                trail.transition("TrustedDocument", f"sha256:{digest}", "registered", None,
                                 {"client": client, "source": source})  # fmt: skip
            registered.append(Registered(f"sha256:{digest}", source, operations, new))
        seq = await _record(engine, connection, by, "documents register", trail, started, now)
    return registered, seq


async def retire(engine: AsyncEngine, client: str, document: str, by: str) -> int:
    """Retire a client's document (by id, "sha256:<hex>" or the bare hex): requests naming
    it are refused from then on. NotFound when the client has no such live document; returns
    the access record's sequence number."""
    found = DOCUMENT_ID.fullmatch(document.strip())
    if not found:
        raise DocumentError(f"{document!r} is not a document id: sha256:<64 hexadecimal digits>")
    digest = found.group(1).lower()
    started, now = time.perf_counter(), datetime.now(UTC)
    async with transaction(engine) as connection:
        await _take_turn(connection)
        done = await connection.execute(
            update(TrustedDocument)
            .where(TrustedDocument.client == client.strip(), TrustedDocument.sha256 == digest,
                   TrustedDocument.retired_at.is_(None))
            .values(retired_at=now, retired_by=by)
        )  # fmt: skip
        if done.rowcount != 1:
            raise NotFound(
                f"client {client.strip()!r} has no registered document sha256:{digest}: `hub "
                "documents list` shows them"
            )
        trail = Trail()
        trail.transition("TrustedDocument", f"sha256:{digest}", "retired",
                         {"client": client.strip()}, None)  # fmt: skip
        return await _record(engine, connection, by, "documents retire", trail, started, now)


async def _take_turn(connection: AsyncConnection) -> None:
    """Wait for other registrations and retirements to commit (SQLite's write transactions
    take turns already: db.transaction); what this one reads next is current."""
    if connection.dialect.name == "postgresql":
        lock = text("SELECT pg_advisory_xact_lock(:key)")
        await connection.execute(lock, {"key": DOCUMENTS_LOCK})


async def _record(
    engine: AsyncEngine,
    connection: AsyncConnection,
    by: str,
    what: str,
    trail: Trail,
    started: float,
    now: datetime,
) -> int:
    """The operator's access record, in the transaction of what it did: as an admin, which
    holds no data rights (the department is only what records need, as `hub share` has it)."""
    return await AccessLog(engine).append_within(
        connection,
        AccessEntry(
            recorded_at=now, outcome=Outcome.OK, trace_id=secrets.token_hex(16),
            duration_us=int((time.perf_counter() - started) * 1_000_000),
            client=by, department="market", role=Role.ADMIN.value,
            operation_name=what, operation_type="mutation", trail=trail,
        ),
    )  # fmt: skip


# A request's lookup: built once, the client's live document with that sha256.
FIND = (
    select(TrustedDocument.body)
    .where(
        TrustedDocument.client == bindparam("client"),
        TrustedDocument.sha256 == bindparam("sha256"),
        TrustedDocument.retired_at.is_(None),
    )
    .limit(1)
)


async def find(reader: Any, client: str, digest: str) -> str | None:
    """The text of ``client``'s live document with this sha256 (hex), through a request's
    reader (one indexed statement); None when it has none."""
    rows = await reader.rows(FIND, {"client": client, "sha256": digest})
    return str(rows[0].body) if rows else None


async def usage(engine: AsyncEngine, client: str | None = None) -> list[Usage]:
    """Every registered document (of ``client``, or all), retired ones too, with how many
    requests ran it and when last: three statements, whatever the number of documents."""
    documents = select(TrustedDocument).order_by(TrustedDocument.client, TrustedDocument.id)
    if client is not None:
        documents = documents.where(TrustedDocument.client == client.strip())
    async with engine.connect() as connection:
        rows = (await connection.execute(documents)).all()
        names = dict((await connection.execute(select(Client.id, Client.name))).all())
        counts = (await connection.execute(
            select(AccessRecord.client, AccessRecord.document_id, func.count(),
                   func.max(AccessRecord.recorded_at))
            .where(AccessRecord.document_id.is_not(None))
            .group_by(AccessRecord.client, AccessRecord.document_id)
        )).all()  # fmt: skip
    used: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, None])
    for caller, document, count, last in counts:
        number = str(caller).removeprefix("client:")
        holder = names.get(int(number), caller) if number.isdigit() else caller
        tally = used[str(holder), str(document)]
        tally[0] += count
        tally[1] = max(filter(None, (tally[1], last)), default=None)
    return [
        Usage(f"sha256:{row.sha256}", row.client, row.source, tuple(row.operations.split()),
              row.registered_by, _aware(row.registered_at), _aware(row.retired_at),
              *used.get((row.client, f"sha256:{row.sha256}"), (0, None)))
        for row in rows
    ]  # fmt: skip


def _aware(moment: datetime | None) -> Any:
    """A time as stored, in UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
