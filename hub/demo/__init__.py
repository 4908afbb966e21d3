"""Deterministic demo dossiers for a first run and for benchmarks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import models
from hub.audit import AccessLog
from hub.auth import hash_token
from hub.clients import create_client
from hub.conflicts import find_conflicts
from hub.demo.generator import AS_OF, TABLES, DemoGenerator
from hub.demo.warnings import raise_warnings
from hub.domain import Role
from hub.policy.files import read_colours, read_conflicts, read_inspection_limits
from hub.publishing.colours import review
from hub.records import first_versions, today
from hub.settings import DEFAULT_POLICY_DIR

__all__ = [
    "AS_OF",
    "CANONICAL_ENTERPRISE",
    "TABLES",
    "DemoGenerator",
    "count_enterprises",
    "ensure_demo_tokens",
    "load_demo",
    "read_demo_tokens",
    "write_demo_tokens",
]

BATCH_SIZE = 1000


async def count_enterprises(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(select(func.count()).select_from(models.Enterprise)) or 0
        )


async def load_demo(
    engine: AsyncEngine,
    *,
    enterprises: int,
    seed: int,
    as_of: date = AS_OF,
    progress: Callable[[int], None] | None = None,
    policy_dir: Path = DEFAULT_POLICY_DIR,
) -> Counter[str]:
    """Insert demo dossiers into an empty, migrated database in one transaction, with the
    conflicts between their orders that ``policy_dir``'s conflicts.csv finds; then every
    enterprise's first colour (colours.csv) and the warnings its inspections raise
    (inspection-limits.csv, hub/demo/warnings.py), each in transactions of their own.

    Returns the number of rows written per table. Ids are assigned here rather than by the
    database, which keeps bulk inserts free of RETURNING round trips.
    """
    generator = DemoGenerator(seed, as_of)
    written: Counter[str] = Counter()
    async with engine.begin() as connection:
        for start in range(0, enterprises, BATCH_SIZE):
            size = min(BATCH_SIZE, enterprises - start)
            rows = generator.batch(size)
            for table, table_rows in rows.items():
                if table_rows:
                    await connection.execute(insert(table), table_rows)
                    written[table.name] += len(table_rows)
            versions = first_versions(
                {table.name: table_rows for table, table_rows in rows.items()},
                seq=written["record_version"],
                client="demo data",
            )
            await connection.execute(insert(models.RecordVersion), versions)
            written["record_version"] += len(versions)
            if progress is not None:
                progress(size)
        await connection.execute(update(models.FeedHead).values(seq=written["record_version"]))
        written["share_grant"] = await grant_demo_sharing(connection)
        if connection.dialect.name == "postgresql":  # ids were given: move the sequences on
            await _advance_sequences(connection)
        enterprise_ids = range(1, written["enterprise"] + 1)
        found = await find_conflicts(connection, read_conflicts(policy_dir), enterprise_ids)
        written["conflict"] = len(found)
    # Every enterprise's first colour, as `hub serve` would compute it at start.
    written["colour_change"] = await review(
        engine, read_colours(policy_dir), today(), AccessLog(engine)
    )
    # The warnings its inspections raise by those colours, as if each had been published.
    written["inspection_warning"] = await raise_warnings(engine, read_inspection_limits(policy_dir))
    written["record_version"] += written["inspection_warning"]
    if engine.dialect.name == "postgresql":
        # Statistics of what was just loaded, as after any bulk load: without them the
        # planner takes the fresh tables for empty (a dossier's statements ran 17 ms on
        # sequential scans, 11 ms with them) until autovacuum gets round to them.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("ANALYZE")
    return written


async def _advance_sequences(connection: AsyncConnection) -> None:
    """Explicit ids leave PostgreSQL's serial sequences behind; move them past the data."""
    for table in TABLES:
        if "id" in table.c:
            await connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                )
            )


async def grant_demo_sharing(connection: AsyncConnection) -> int:
    """The canonical case, approved: market regulation reads the ecology department's
    acceptance opinions (有条件共享) to check rectifications, for a year from today."""
    start = today()
    request = {
        "requester": "market", "owner": "ecology", "fields": "Acceptance.opinion",
        "purpose": "rectification-check", "purpose_detail": "核查企业整改验收意见，避免重复检查",
        "legal_basis": "《优化营商环境条例》第五十六条（跨部门协同监管）", "regions": "",
        "usccs": "", "wanted_from": start, "wanted_until": start + timedelta(days=365),
        "status": "approved", "filed_at": datetime.now(UTC), "filed_by": "demo market client",
        "due_on": start, "decided_at": datetime.now(UTC), "decided_by": "demo ecology client",
    }  # fmt: skip
    request_id = (
        await connection.execute(insert(models.ShareRequest).values(request))
    ).inserted_primary_key
    if request_id is None:
        return 0
    await connection.execute(
        insert(models.ShareGrant).values(
            request_id=request_id[0], requester="market", owner="ecology",
            fields="Acceptance.opinion", purpose="rectification-check", regions="", usccs="",
            valid_from=start, valid_until=start + timedelta(days=365),
            approved_at=datetime.now(UTC), approved_by="demo ecology client",
        )
    )  # fmt: skip
    head = models.GrantHead
    await connection.execute(update(head).values(version=head.version + 1))
    return 1


# The README's enterprise: a chemical plant with the canonical case in its dossier.
CANONICAL_ENTERPRISE = "9133010985H96UB001"
# label: (department, role, enterprise) of the demo clients a new user explores with; the
# enterprise's own credential takes its department from the enterprise.
DEMO_CLIENTS: dict[str, tuple[str | None, Role, str | None]] = {
    "market": ("market", Role.DEPARTMENT, None),
    "ecology": ("ecology", Role.DEPARTMENT, None),
    "emergency": ("emergency", Role.DEPARTMENT, None),
    "enforcement": ("enforcement", Role.DEPARTMENT, None),
    "fire": ("fire", Role.DEPARTMENT, None),
    "auditor": ("market", Role.AUDITOR, None),
    "enterprise": (None, Role.ENTERPRISE, CANONICAL_ENTERPRISE),
}
TOKENS_HEADER = (
    "# Demo bearer tokens written by `hub serve --demo`; send one as\n"
    "#   Authorization: Bearer <token>\n"
    "# They are secrets like any other: revoke them (`hub clients revoke ID`) off a demo.\n"
)


def read_demo_tokens(path: Path) -> dict[str, str]:
    """The demo tokens written earlier, by label; {} when there is no file."""
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            label, _, token = line.partition(" ")
            if label in DEMO_CLIENTS and token.strip():
                known[label] = token.strip()
    return known


def write_demo_tokens(path: Path, tokens: dict[str, str]) -> None:
    """Keep the tokens where only the hub's operator can read them: hashes can't be undone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        TOKENS_HEADER
        + "".join(f"{label:<12} {tokens[label]}\n" for label in DEMO_CLIENTS if label in tokens),
        encoding="utf-8",
    )


async def ensure_demo_tokens(engine: AsyncEngine, known: dict[str, str]) -> dict[str, str]:
    """Usable tokens for every demo client: the known ones still valid, new ones for the rest
    (the enterprise's only where the database holds the README's enterprise)."""
    tokens: dict[str, str] = {}
    async with engine.connect() as connection:
        for label, token in known.items():
            usable = await connection.scalar(
                select(models.Client.id).where(
                    models.Client.token_hash == hash_token(token),
                    models.Client.revoked_at.is_(None),
                )
            )
            if usable is not None:
                tokens[label] = token
        canonical = await connection.scalar(
            select(models.Enterprise.id).where(models.Enterprise.uscc == CANONICAL_ENTERPRISE)
        )
    for label, (department, role, enterprise) in DEMO_CLIENTS.items():
        if label in tokens or (enterprise is not None and canonical is None):
            continue
        new = await create_client(
            engine,
            department=department,
            enterprise=enterprise,
            name=f"demo {label} client",
            role=role,
        )
        tokens[label] = new.token
    return tokens
