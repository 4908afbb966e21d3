"""Registering, listing and revoking the hub's clients (used by the CLI and the demo).

A department's system, an auditor or an admin is registered with its department. An
enterprise's own credential is registered with the enterprise's USCC instead: its department
is the enterprise's registration authority (``enterprise.owner``) as stored, so its access
records name a department as every other record does, and nobody can choose it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Row, Select, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.auth import ClientRecord, FindClient, hash_token, new_token
from hub.domain import DEPARTMENTS, Role
from hub.errors import BadUserInput, NotFound
from hub.grants import HEAD
from hub.models import Client, Enterprise
from hub.uscc import parse_uscc

__all__ = [
    "ClientLookup",
    "NewClient",
    "create_client",
    "find_clients",
    "list_clients",
    "revoke_client",
]

CLIENT = (
    Client.id,
    Client.name,
    Client.department,
    Client.role,
    Client.revoked_at,
    Client.enterprise,
    Client.developer,
)


@dataclass(frozen=True, slots=True)
class NewClient:
    id: int
    token: str  # shown once; only its hash is stored


async def create_client(
    engine: AsyncEngine,
    *,
    name: str,
    role: Role,
    department: str | None = None,
    enterprise: str | None = None,
    developer: bool = False,
) -> NewClient:
    """Register a client: a department's (``department``) or, for role enterprise, an
    enterprise's own (``enterprise``, a USCC the hub knows); a ``developer``'s credential
    reads as its department and may send unregistered documents. BadUserInput saying what
    to give otherwise."""
    if not name.strip():
        raise BadUserInput("a client needs a name that says which system or person it is")
    if name.strip().lower().startswith("jwt:"):
        # Trusted documents belong to a client's name, and a JWT's caller is "jwt:<sub>":
        # a client so named would run the documents registered for that JWT subject.
        raise BadUserInput(
            f"a client's name cannot start with 'jwt:' ({name.strip()[:60]!r}): the hub names "
            "JWT callers so; choose a name that says which system or person it is"
        )
    if developer and role is not Role.DEPARTMENT:
        raise BadUserInput(
            f"a developer's credential reads as a department: --developer goes with role "
            f"department, not {role.value}"
        )
    uscc = _enterprise_of(role, department, enterprise)
    if uscc is None:
        codes = [d.code for d in DEPARTMENTS]
        if department not in codes:
            raise BadUserInput(f"unknown department {department!r}; one of {', '.join(codes)}")
    token = new_token()
    async with engine.begin() as connection:
        if uscc is not None:
            department = await connection.scalar(
                select(Enterprise.owner).where(Enterprise.uscc == uscc)
            )
            if department is None:
                raise BadUserInput(
                    f"the hub knows no enterprise {uscc}: check the code, or load the "
                    "enterprise's records before registering its credential"
                )
        client_id = await connection.scalar(
            insert(Client)
            .values(
                name=name.strip(),
                department=department,
                role=role,
                enterprise=uscc,
                developer=developer,
                token_hash=hash_token(token),
            )
            .returning(Client.id)
        )
    return NewClient(int(client_id or 0), token)


def _enterprise_of(role: Role, department: str | None, enterprise: str | None) -> str | None:
    """The enterprise's USCC for an enterprise's credential, None for any other; whatever
    does not fit the role is refused."""
    if role is not Role.ENTERPRISE:
        if enterprise is not None:
            raise BadUserInput(
                f"a client of role {role.value} names no enterprise: an enterprise's own "
                "credential is created with --enterprise USCC alone (role enterprise)"
            )
        if department is None:
            raise BadUserInput(
                "give the client's department (--department D), or --enterprise USCC for an "
                "enterprise's own credential"
            )
        return None
    if enterprise is None:
        raise BadUserInput("an enterprise's credential names its enterprise: --enterprise USCC")
    if department is not None:
        raise BadUserInput(
            "an enterprise's credential takes no department: its department is the "
            "enterprise's registration authority, as the hub has it; leave --department out"
        )
    return parse_uscc(enterprise)


async def list_clients(engine: AsyncEngine) -> list[tuple[ClientRecord, datetime]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(*CLIENT, Client.created_at).order_by(Client.id))
        return [(_record(row), row.created_at) for row in rows]


async def revoke_client(engine: AsyncEngine, client_id: int) -> ClientRecord:
    """Revoke a client; its token stops working on its next request."""
    async with engine.begin() as connection:
        await connection.execute(
            update(Client)
            .where(Client.id == client_id, Client.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC), updated_at=func.now())
        )
        row = (await connection.execute(select(*CLIENT).where(Client.id == client_id))).first()
    if row is None:
        raise NotFound(f"there is no client {client_id}; `hub clients list` shows them")
    return _record(row)


CLIENTS = cast(Table, Client.__table__)
# Built once: a statement built per request cost more than running it.
LOOKUP = (
    select(HEAD.c.version.label("grant_version"), *CLIENT)
    .select_from(HEAD.outerjoin(CLIENTS, CLIENTS.c.token_hash == bindparam("token_hash")))
    .where(HEAD.c.id == 1)
)


class Reads(Protocol):
    async def rows(
        self, statement: Select[Any], parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]: ...


class ClientLookup:
    """Finds a client by token hash through a request's reader, and reads the grant version
    (grants.py) in the same statement: one indexed read per request tells who is calling
    and whether the grants changed. ``grant_version`` is None until a lookup ran."""

    def __init__(self, reader: Reads) -> None:
        self._reader = reader
        self.grant_version: int | None = None

    async def __call__(self, token_hash: str) -> ClientRecord | None:
        found = await self._reader.rows(LOOKUP, {"token_hash": token_hash})
        if not found:
            return None
        self.grant_version = found[0].grant_version
        return None if found[0].id is None else _record(found[0])


async def find_clients(reader: Reads, token_hashes: Iterable[str]) -> FindClient:
    """Who holds each of these token hashes, read in one statement (the subscribers of a live
    event, checked again together): a FindClient for Authenticator.authenticate."""
    wanted = sorted(set(token_hashes))
    statement = select(Client.token_hash, *CLIENT).where(Client.token_hash.in_(wanted))
    rows = await reader.rows(cast(Select[Any], statement)) if wanted else []
    found = {row.token_hash: _record(row) for row in rows}

    async def find(token_hash: str) -> ClientRecord | None:
        return found.get(token_hash)

    return find


def _record(row: Row[*tuple[Any, ...]]) -> ClientRecord:
    return ClientRecord(
        row.id, row.name, row.department, row.role, row.revoked_at, row.enterprise, row.developer
    )
