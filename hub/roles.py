"""Database roles on PostgreSQL: the owner migrates, the serving role only appends to the log.

Triggers refuse UPDATE, DELETE and TRUNCATE on the access log, but the owner of a table may
disable or drop its triggers (``ALTER TABLE access_record DISABLE TRIGGER ALL``) and then
rewrite history. So a deployment keeps two roles: the **owner** runs migrations and this
grant, with credentials that stay off the serving machines; the **serving role** that the
hub connects as gets exactly what serving needs and no more:

- SELECT, INSERT, UPDATE, DELETE on the data tables (publishing updates records and replaces
  their participants; sharing decides requests; clients are revoked);
- SELECT and INSERT on ``access_record``: the log is append-only for the hub itself;
- SELECT on ``alembic_version`` (``/readyz`` compares revisions);
- USAGE on the sequences behind the data tables' ids, USAGE on the schema;
- no TRUNCATE, REFERENCES or TRIGGER anywhere, no ownership, no CREATE in the schema.

Granting first revokes everything the role held on those objects, so running it again after a
mistaken grant narrows the role back; it must run after every upgrade, because a migration's
new tables start with no grants. Privileges reach a role through PUBLIC and the roles it
belongs to too, so after granting the effective privileges are checked, and a role that could
still do more (a superuser, a member of the owner, a holder of ``pg_write_all_data``, a role
that may grant itself memberships) is refused with what it can still do: the transaction,
grants included, is rolled back.

SQLite has no roles: whoever can write the file can do anything to it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import HubError
from hub.models import AccessRecord, Base

__all__ = [
    "NO_ROLES",
    "RoleError",
    "access_log_exposure",
    "excess_privileges",
    "grant_serving_role",
]

ACCESS_LOG = AccessRecord.__tablename__
DATA = ("SELECT", "INSERT", "UPDATE", "DELETE")
EVERY = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
NO_ROLES = (
    "SQLite has no roles: whoever can write the database file can change it; serving roles "
    "are for PostgreSQL (see README, PostgreSQL)"
)


class RoleError(HubError):
    """A serving role that cannot be granted as asked; the message says why and what to do."""


def serving_privileges() -> dict[str, tuple[str, ...]]:
    """Table -> the privileges the serving role holds on it, and no others."""
    privileges: dict[str, tuple[str, ...]] = {
        table.name: DATA for table in Base.metadata.sorted_tables
    }
    privileges[ACCESS_LOG] = ("SELECT", "INSERT")
    privileges["alembic_version"] = ("SELECT",)
    return privileges


async def _one(connection: AsyncConnection, statement: str, **parameters: Any) -> Any:
    return (await connection.execute(text(statement), parameters)).one_or_none()


async def grant_serving_role(connection: AsyncConnection, role: str) -> list[str]:
    """Narrow ``role`` to what serving needs (see the module docstring); returns the tables.

    Run by the owner, inside a transaction: on RoleError nothing is granted or revoked.
    """
    if connection.dialect.name != "postgresql":
        raise RoleError(NO_ROLES)
    found = await _one(
        connection,
        "SELECT rolsuper, rolcreaterole, rolname = current_user AS current FROM pg_roles "
        "WHERE rolname = :role",
        role=role,
    )
    if found is None:
        raise RoleError(
            f"there is no role {role!r} on this server: create it first, e.g. "
            f"CREATE ROLE {role} LOGIN PASSWORD '...'"
        )
    if found.current:
        raise RoleError(
            f"{role!r} is the role you are connected as, which migrates and owns the tables: "
            "grant a separate role that the hub serves as"
        )
    if found.rolsuper or found.rolcreaterole:
        what = "a superuser" if found.rolsuper else "allowed to grant itself other roles"
        raise RoleError(
            f"{role!r} is {what}, so it could alter the access log whatever it is granted: "
            "serve with an ordinary LOGIN role"
        )
    privileges = serving_privileges()
    rows = await connection.execute(
        text(
            "SELECT c.relname, pg_has_role(:role, c.relowner, 'MEMBER') AS owner FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
            "AND c.relname = ANY(:tables)"
        ),
        {"role": role, "tables": list(privileges)},
    )
    owned = {row.relname: row.owner for row in rows}
    missing = sorted(set(privileges) - set(owned))
    if missing:
        raise RoleError(
            f"the database is not migrated (no {', '.join(missing)}): run `hub db upgrade` as the "
            "owner first"
        )
    if any(owned.values()):
        raise RoleError(
            f"{role!r} owns the hub's tables or is a member of their owner: migrate as another "
            "role (the owner) and serve as this one"
        )
    quote = connection.dialect.identifier_preparer.quote_identifier
    grantee = quote(role)
    for table, allowed in privileges.items():
        await connection.execute(text(f"REVOKE ALL ON TABLE {quote(table)} FROM {grantee}"))
        await connection.execute(
            text(f"GRANT {', '.join(allowed)} ON TABLE {quote(table)} TO {grantee}")
        )
    sequences = await connection.execute(
        text(
            "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
            "AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE s.relkind = 'S' AND t.relnamespace = current_schema()::regnamespace "
            "AND t.relname = ANY(:tables)"
        ),
        {"tables": list(privileges)},
    )
    for (sequence,) in sequences.all():
        await connection.execute(text(f"REVOKE ALL ON SEQUENCE {quote(sequence)} FROM {grantee}"))
        await connection.execute(text(f"GRANT USAGE ON SEQUENCE {quote(sequence)} TO {grantee}"))
    schema = quote((await _one(connection, "SELECT current_schema() AS name")).name)
    await connection.execute(text(f"REVOKE CREATE ON SCHEMA {schema} FROM {grantee}"))
    await connection.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {grantee}"))
    excess = await excess_privileges(connection, role)
    if excess:
        raise RoleError(
            f"{role!r} would still hold {', '.join(excess)}, through PUBLIC, a role it belongs to "
            "or another role's grant: revoke those (or remove it from that role) and grant again"
        )
    return sorted(privileges)


async def excess_privileges(
    connection: AsyncConnection, role: str, tables: list[str] | None = None
) -> list[str]:
    """What ``role`` may effectively do on the hub's tables beyond the serving privileges,
    e.g. ``["UPDATE on access_record"]``; ownership reads ``"owner of access_record"``."""
    privileges = serving_privileges()
    excess = []
    for table in tables or list(privileges):
        checks = ", ".join(
            f"has_table_privilege(:role, c.oid, '{privilege}') AS {privilege.lower()}"
            for privilege in EVERY
        )
        row = await _one(
            connection,
            f"SELECT pg_has_role(:role, c.relowner, 'MEMBER') AS owner, {checks} FROM pg_class c "  # noqa: S608 -- constants only
            "WHERE c.oid = to_regclass(:table)",
            role=role,
            table=table,
        )
        if row is None:
            continue  # not migrated yet: nothing to hold
        if row.owner:
            excess.append(f"owner of {table}")
            continue
        excess.extend(
            f"{privilege} on {table}"
            for privilege in EVERY
            if getattr(row, privilege.lower()) and privilege not in privileges[table]
        )
    return excess


async def access_log_exposure(connection: AsyncConnection) -> str | None:
    """Why the role connected now could rewrite the access log, or None (also on SQLite)."""
    if connection.dialect.name != "postgresql":
        return None
    me = await _one(connection, "SELECT current_user AS name, rolsuper FROM pg_roles "
                    "WHERE rolname = current_user")  # fmt: skip
    excess = await excess_privileges(connection, me.name, [ACCESS_LOG])
    if me.rolsuper or any(item.startswith("owner of") for item in excess):
        return (
            f"serving as the owner of the access log ({me.name}), which can disable its "
            "triggers: see README, PostgreSQL"
        )
    if excess:
        return (
            f"the serving role {me.name} holds {', '.join(excess)}: grant it with "
            "`hub db upgrade --serving-role ROLE` as the owner; see README, PostgreSQL"
        )
    return None
