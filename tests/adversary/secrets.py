"""The values each caller must never see, and what any answer must be.

``Secrets`` holds, per caller, every text of a decided field of a stored record that the
policy withholds from it (decided per caller, owner and ``Type.field`` by ``hub.policy``
exactly as tests/test_access.py's Checker holds answers to it; conditional fields are opened
only by an active grant), less every text the caller may legitimately get: values it may
read, and the hub's own vocabulary (departments, catalogue, purposes, share requests and
grants, client names). A secret found anywhere in an answer, in data or in an error message,
under any alias, is a leak.

A department's part in a record (hub/policy/relations.py: a participant, an assisting
department...) is read from the database with the record, as the hub reads it.

Both sides are computed from the database before requests are sent. A text that is part of
a public text is no secret either (a finding may repeat a phrase of another one); short or
plain-ASCII secrets (names, amounts, codes) count only as whole values, so that a
timestamp's digits or a longer public text can never raise a false alarm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db import create_engine
from hub.domain import DEPARTMENTS
from hub.grants import GRANT, GrantRule
from hub.policy import Policy
from hub.records import today
from hub.settings import Settings

__all__ = [
    "CODES",
    "Caller",
    "Ground",
    "Scanner",
    "Secrets",
    "callers",
    "ground_of",
    "judge",
    "read_ground",
]

# Every code an answer may carry (README, "Errors"); INTERNAL is a defect.
CODES = frozenset({
    "UNAUTHENTICATED", "FORBIDDEN", "PURPOSE_REQUIRED", "BAD_USER_INPUT", "NOT_FOUND",
    "QUERY_TOO_COMPLEX", "RATE_LIMITED",
})  # fmt: skip
NONSENSE_PURPOSE = "随便看看 just looking"
DEPARTMENT_CODES = tuple(department.code for department in DEPARTMENTS)
WINDOW = 4  # secrets at least this long (and not plain ASCII) are looked for inside texts


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sends a request: ``token`` names a client in the tests' tokens; ``subject`` is who
    policies speak of (the department, or the role)."""

    token: str
    subject: str
    purpose: str | None = None

    def __str__(self) -> str:
        return f"{self.token} ({self.purpose or 'no purpose'})"


def callers(policy: Policy) -> tuple[Caller, ...]:
    """Every department without a purpose, with a purpose of purposes.csv and with a
    nonsense one; market also with the purpose of the demo grant and a wrong one; the
    auditor and the admin without and with a purpose."""
    codes = sorted(policy.purposes)
    found: list[Caller] = []
    for index, code in enumerate(DEPARTMENT_CODES):
        purposes: list[str | None] = [None, f"{codes[index % len(codes)]}: 核查", NONSENSE_PURPOSE]
        if code == "market":
            purposes += ["rectification-check: 整改验收核查", "law-enforcement: 案件核查"]
        found += [Caller(code, code, purpose) for purpose in dict.fromkeys(purposes)]
    for role in ("auditor", "admin"):
        found += [Caller(role, role), Caller(role, role, "risk-warning: 风险预警")]
    return tuple(found)


# Decided text fields of each shared type: (FROM clause with the record as t and its
# enterprise as e, the owner, {GraphQL field: column}).
_STORED = {
    "Enterprise": ("enterprise t JOIN enterprise e ON e.id = t.id", "t.owner", {
        "name": "name", "legalRepresentative": "legal_representative", "address": "address",
        "industry": "industry", "region": "region", "town": "town"}),
    "CreditRecord": ("credit_record t JOIN enterprise e ON e.id = t.enterprise_id", "t.owner",
                     {"level": "level", "reason": "reason"}),
    "CreditRepair": ("credit_repair t JOIN credit_record c ON c.id = t.credit_record_id "
                     "JOIN enterprise e ON e.id = c.enterprise_id", "t.owner",
                     {"opinion": "opinion"}),
    "Inspection": ("inspection t JOIN enterprise e ON e.id = t.enterprise_id", "t.owner",
                   {"actionCode": "action_code"}),
    "Finding": ("inspection_finding t JOIN inspection i ON i.id = t.inspection_id "
                "JOIN enterprise e ON e.id = i.enterprise_id", "i.owner",
                {"category": "category", "description": "description"}),
    "Penalty": ("penalty t JOIN enterprise e ON e.id = t.enterprise_id", "t.owner",
                {"caseNumber": "case_number", "violation": "violation",
                 "legalBasis": "legal_basis", "amount": "amount_fen"}),
    "Rectification": ("rectification t JOIN enterprise e ON e.id = t.enterprise_id", "t.owner",
                      {"requirement": "requirement"}),
    "Acceptance": ("acceptance t JOIN rectification r ON r.id = t.rectification_id "
                   "JOIN enterprise e ON e.id = r.enterprise_id", "t.owner",
                   {"opinion": "opinion"}),
    # What a department plans to inspect: no role's, never an enterprise's (unannounced).
    "InspectionPlan": ("inspection_plan t JOIN enterprise e ON e.id = t.enterprise_id",
                       "t.owner", {"subject": "subject"}),
}  # fmt: skip
# The record through which a department has a part in each (hub/policy/relations.py): the
# inspection of a finding, the rectification of an acceptance.
_RELATED_BY = {
    "Inspection": "t.id", "Finding": "i.id", "Penalty": "t.id", "Rectification": "t.id",
    "Acceptance": "t.rectification_id",
}  # fmt: skip
# (type of the record related through, relation, SQL of (record id, department)).
_PARTS = (
    ("Inspection", "participant", "SELECT inspection_id, department FROM inspection_participant"),
    ("Rectification", "assisting",
     "SELECT rectification_id, department FROM rectification_assistant"),
    ("Rectification", "conflicting",
     "SELECT c.first_id, c.second_owner FROM conflict c JOIN rectification a ON a.id = "
     "c.first_id JOIN rectification b ON b.id = c.second_id WHERE c.settled_at IS NULL "
     "AND a.status IN ('in_progress', 'submitted', 'failed', 'overdue') AND NOT a.retracted "
     "AND b.status IN ('in_progress', 'submitted', 'failed', 'overdue') AND NOT b.retracted "
     "UNION SELECT c.second_id, c.first_owner FROM conflict c JOIN rectification a ON a.id = "
     "c.first_id JOIN rectification b ON b.id = c.second_id WHERE c.settled_at IS NULL "
     "AND a.status IN ('in_progress', 'submitted', 'failed', 'overdue') AND NOT a.retracted "
     "AND b.status IN ('in_progress', 'submitted', 'failed', 'overdue') AND NOT b.retracted"),
    ("Penalty", "transferee",
     "SELECT id, transferred_to FROM penalty WHERE transferred_to IS NOT NULL"),
)  # fmt: skip
# Which record an item is related through, by type.
_THROUGH = {"Inspection": "Inspection", "Finding": "Inspection", "Penalty": "Penalty",
            "Rectification": "Rectification", "Acceptance": "Rectification"}  # fmt: skip
# The hub's own texts, which any caller may meet in answers and messages.
_GOVERNANCE = (
    "SELECT code, name_zh, name_en FROM department",
    "SELECT purpose, purpose_detail, legal_basis, reason, regions, usccs, filed_by, decided_by "
    "FROM share_request",
    "SELECT purpose, regions, usccs, approved_by, revoked_by, revoke_reason FROM share_grant",
    "SELECT name FROM client",
)
_POOLS = {
    "usccs": "SELECT uscc FROM enterprise ORDER BY uscc",
    "regions": "SELECT DISTINCT region FROM enterprise ORDER BY 1",
    "towns": "SELECT DISTINCT town FROM enterprise ORDER BY 1",
    "industries": "SELECT DISTINCT industry FROM enterprise ORDER BY 1",
    "names": "SELECT name FROM enterprise ORDER BY uscc",
    "source_ids": "SELECT source_id FROM inspection UNION SELECT source_id FROM penalty "
    "UNION SELECT source_id FROM rectification UNION SELECT source_id FROM acceptance "
    "UNION SELECT source_id FROM credit_record UNION SELECT source_id FROM credit_repair "
    "UNION SELECT source_id FROM inspection_plan ORDER BY 1",
}


@dataclass(frozen=True, slots=True)
class Stored:
    """One text of a decided field of one stored record."""

    coordinate: str
    owner: str
    uscc: str
    region: str
    value: str
    # (department, relation): who has a part in the record, and which (relations.py).
    parts: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Ground:
    """What the database holds, as the adversary needs it."""

    stored: tuple[Stored, ...]
    grants: tuple[GrantRule, ...]
    governance: frozenset[str]
    pools: Mapping[str, tuple[str, ...]]


async def read_ground(engine: AsyncEngine) -> Ground:
    stored: list[Stored] = []
    governance: set[str] = set()
    pools: dict[str, tuple[str, ...]] = {}
    async with engine.connect() as connection:
        parts: dict[tuple[str, int], set[tuple[str, str]]] = {}
        for through, relation, statement in _PARTS:
            for record_id, department in await connection.execute(text(statement)):
                parts.setdefault((through, record_id), set()).add((department, relation))
        for type_name, (source, owner, columns) in _STORED.items():
            selected = ", ".join(f"t.{column} AS {column}" for column in columns.values())
            related = _RELATED_BY.get(type_name, "NULL")
            statement = (
                f"SELECT {owner} AS owner, e.uscc, e.region AS e_region, {related} AS related, "
                f"{selected} FROM {source}"
            )
            rows = await connection.execute(text(statement))
            for row in rows.mappings():
                for name, column in columns.items():
                    value = row[column]
                    if value is None:
                        continue
                    if column == "amount_fen":  # as the Decimal scalar serializes it
                        value = str(Decimal(value).scaleb(-2))
                    part = parts.get((_THROUGH.get(type_name, ""), row["related"]), set())
                    stored.append(
                        Stored(f"{type_name}.{name}", row["owner"], row["uscc"], row["e_region"],
                               str(value), frozenset(part))
                    )  # fmt: skip
        for statement in _GOVERNANCE:
            for found in await connection.execute(text(statement)):
                governance.update(str(value) for value in found if value)
        grants = tuple(GrantRule.of(row) for row in await connection.execute(select(GRANT)))
        for name, statement in _POOLS.items():
            pools[name] = tuple(str(row[0]) for row in await connection.execute(text(statement)))
    return Ground(tuple(stored), grants, frozenset(governance), pools)


def ground_of(database: Settings) -> Ground:
    """``read_ground`` of a database, from synchronous code."""

    async def read() -> Ground:
        engine = create_engine(database)
        try:
            return await read_ground(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _plain(value: str) -> bool:
    """Found only as a whole value: short, or plain ASCII (amounts, codes)."""
    return len(value) < WINDOW or value.isascii()


class Secrets:
    """The scanner of each caller, from one reading of the database."""

    def __init__(self, ground: Ground, policy: Policy, day: date | None = None) -> None:
        self.ground, self.policy, self.day = ground, policy, day or today()
        governance = set(ground.governance) | set(policy.purposes) | set(policy.purposes.values())
        for entry in policy.catalog.values():
            governance |= {entry.coordinate, entry.basis, entry.description}
        self.governance = frozenset(governance)
        # Which texts hold which other texts: a secret inside a public text is no secret.
        universe = {item.value for item in ground.stored} | self.governance
        self._holders = _holders(universe)
        self._scanners: dict[tuple[str, bool, str | None], Scanner] = {}

    def of(self, caller: Caller) -> Scanner:
        stated = caller.purpose is not None
        code = (caller.purpose or "").split(":", 1)[0].strip()
        key = (caller.subject, stated, code if code in self.policy.purposes else None)
        scanner = self._scanners.get(key)
        if scanner is None:
            scanner = self._scanners[key] = self._scanner(*key)
        return scanner

    def _scanner(self, subject: str, stated: bool, code: str | None) -> Scanner:
        readable: set[str] = set()
        withheld: set[str] = set()
        for item in self.ground.stored:
            relations = tuple(sorted(r for d, r in item.parts if d == subject))
            decision = self.policy.decide(
                subject, item.owner, item.coordinate, purpose=stated, relations=relations
            )
            allowed = decision.allowed and (
                not decision.needs_purpose or self._granted(subject, item, code)
            )
            (readable if allowed else withheld).add(item.value)
        public = readable | self.governance
        secrets = {
            value
            for value in withheld - public
            if not any(holder in public for holder in self._holders.get(value, ()))
        }
        return Scanner(frozenset(secrets), frozenset(public))

    def _granted(self, subject: str, item: Stored, code: str | None) -> bool:
        return any(
            grant.requester == subject
            and grant.owner == item.owner
            and item.coordinate in grant.fields
            and grant.purpose == code
            and grant.state(self.day) == "active"
            and grant.scope.covers(item.uscc, item.region)
            for grant in self.ground.grants
        )


def _holders(universe: Iterable[str]) -> dict[str, set[str]]:
    """For each text that is looked for inside others, the other texts that hold it."""
    by_window: dict[str, list[str]] = {}
    texts = list(universe)
    for value in texts:
        if not _plain(value):
            by_window.setdefault(value[:WINDOW], []).append(value)
    holders: dict[str, set[str]] = {}
    for holder in texts:
        for start in range(len(holder) - WINDOW + 1):
            for value in by_window.get(holder[start : start + WINDOW], ()):
                if value != holder and holder.startswith(value, start):
                    holders.setdefault(value, set()).add(holder)
    return holders


@dataclass(frozen=True)
class Scanner:
    """Finds one caller's secrets in an answer."""

    secrets: frozenset[str]
    public: frozenset[str]
    _by_window: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_window: dict[str, list[str]] = {}
        for value in self.secrets:
            if not _plain(value):
                by_window.setdefault(value[:WINDOW], []).append(value)
        self._by_window.update((key, tuple(values)) for key, values in by_window.items())

    def leaks(self, answer: Any, sent: str = "") -> set[str]:
        """The secrets in ``answer`` (keys too), less those the request itself held."""
        found: set[str] = set()
        for leaf in _texts(answer):
            if leaf in self.public:
                continue  # a public text holds no secret: see Secrets
            if leaf in self.secrets:
                found.add(leaf)
            for start in range(len(leaf) - WINDOW + 1):
                for value in self._by_window.get(leaf[start : start + WINDOW], ()):
                    if leaf.startswith(value, start):
                        found.add(value)
        return {value for value in found if value not in sent}


def _texts(value: Any) -> Iterator[str]:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from (key for key in item if isinstance(key, str))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def judge(status: int, answer: Any) -> list[str]:
    """What is wrong with an answer of any request: a 5xx, a body that is not a GraphQL
    answer, an error without a message or with a code callers do not know, INTERNAL."""
    problems = []
    if not (status == 200 or 400 <= status < 500):
        problems.append(f"status {status}")
    if not isinstance(answer, dict) or not set(answer) <= {"data", "errors", "extensions"}:
        return [*problems, f"not a GraphQL answer: {str(answer)[:200]}"]
    errors = answer.get("errors", [])
    if status != 200 and not errors:
        problems.append(f"status {status} without errors")
    if not isinstance(errors, list):
        return [*problems, f"errors is not a list: {errors!r}"]
    for error in errors:
        code = error.get("extensions", {}).get("code") if isinstance(error, dict) else None
        if code not in CODES:
            problems.append(f"error with code {code!r}: {str(error)[:300]}")
        elif not isinstance(error.get("message"), str) or not error["message"]:
            problems.append(f"error without a message: {error!r}")
    return problems
