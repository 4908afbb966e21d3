"""What an access record holds, and its hash.

Each record holds who asked (client, department, role), why (purpose, case), what was
served (per enterprise: record type, ids and field names, never values) and what was
withheld, under which policy version, with the trace id. Its hash covers a canonical JSON
encoding of all of that plus its sequence number and the previous record's hash (see
log.py for the chain, chain.py for its checks).

Caller-controlled text (operation name, purpose, case reference...) is checked at the door;
what reaches a record anyway, such as the value of a refused header, is kept escaped and
cut to its column (text.kept), so no value can make an append fail.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import String

from hub.audit import served
from hub.models import AccessRecord
from hub.text import kept

GENESIS = "0" * 64
COLUMNS = [column.name for column in AccessRecord.__table__.columns]
# The text columns a caller's values reach, and how long each may be.
TEXT_LIMITS = {
    column.name: column.type.length or 2000
    for column in AccessRecord.__table__.columns
    if column.name in {"client", "department", "role", "operation_name", "operation_type",
                       "purpose", "case_ref", "remote_address", "policy_version"}
    and isinstance(column.type, String)
}  # fmt: skip


class Outcome:
    OK = "ok"  # everything asked for was served
    PARTIAL = "partial"  # served with some fields withheld, or published with some lines rejected
    DENIED = "denied"  # no credential, or nothing the caller may read
    ERROR = "error"  # a bad request or a failure in the hub

    ALL = (OK, PARTIAL, DENIED, ERROR)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(values: Any) -> bytes:
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compact(values: Any) -> bytes:
    """``canonical`` bytes of values made of text, integers, None, lists and dicts only (a
    record's columns, what it says was served and withheld), by orjson: the same bytes
    (tests/test_audit.py holds them equal) in a fraction of the time."""
    try:
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson does not take (an integer past 64 bits)
        return canonical(values)


# Columns added after records were first written: hashed only when set, so the records
# written before them keep their hashes.
LATER_COLUMNS = frozenset({"written", "document_id"})


def record_hash(values: Mapping[str, Any]) -> str:
    """The hash of a record: over every column but the hash itself."""
    hashed = {
        k: v for k, v in values.items() if k != "hash" and not (k in LATER_COLUMNS and v is None)
    }
    return hashlib.sha256(compact(hashed)).hexdigest()


# (Type.field, grant id) of the conditional fields served under a grant (see sharing.py).
Grants = tuple[tuple[str, int], ...]
Opened = tuple[tuple[str, str], ...]  # (Type.field, the relation that opened it)


class ServedIds(dict[str, list[str]]):
    """Ids of records served, by enterprise; a list made on first use, its enterprise then
    entered in the trail's ``enterprises``."""

    def __init__(self, enterprises: set[str]) -> None:
        super().__init__()
        self.enterprises = enterprises

    def __missing__(self, enterprise: str) -> list[str]:
        self.enterprises.add(enterprise)
        ids: list[str] = []
        self[enterprise] = ids
        return ids


@dataclass
class Trail:
    """What one request served and withheld, collected while it runs."""

    enterprises: set[str] = field(default_factory=set)
    # (type, fields served, grants that opened conditional ones, relations that opened
    # fields) -> enterprise -> ids of the records served with exactly those fields that way
    served: dict[tuple[str, tuple[str, ...], Grants, Opened], ServedIds] = field(
        default_factory=dict
    )
    denied: list[dict[str, str]] = field(default_factory=list)
    # (enterprise, type, change) -> ids of the records the request published so
    written: defaultdict[tuple[str, str, str], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # State changes of workflow objects, with their state before and after.
    transitions: list[dict[str, Any]] = field(default_factory=list)
    frozen: dict[str, Any] | None = None  # see freeze

    def serve(
        self,
        enterprise: str,
        type_name: str,
        record_id: str,
        fields: tuple[str, ...],
        grants: Grants = (),
        opened: Opened = (),
    ) -> None:
        self.group(type_name, fields, grants, opened)[enterprise].append(record_id)

    def group(
        self, type_name: str, fields: tuple[str, ...], grants: Grants, opened: Opened
    ) -> ServedIds:
        """The ids of the records of a type served with ``fields`` that way, by enterprise:
        ``group[enterprise].append(id)`` enters one (``serve`` for many)."""
        key = (type_name, fields, grants, opened)
        found = self.served.get(key)
        if found is None:
            found = self.served[key] = ServedIds(self.enterprises)
        return found

    def deny(self, enterprise: str, type_name: str, record_id: str, owner: str, coordinate: str,
             reason: str) -> None:  # fmt: skip
        self.enterprises.add(enterprise)
        self.denied.append({
            "enterprise": enterprise, "type": type_name, "id": record_id, "owner": owner,
            "field": coordinate, "reason": reason,
        })  # fmt: skip

    def mention(self, enterprise: str) -> None:
        """A request about an enterprise that serves none of its records (its own Data
        Tracker) names it all the same."""
        self.enterprises.add(enterprise)

    def forget_reads(self) -> None:
        """Drop what was entered as served and withheld: an answer abandoned before it was
        sent (see graphql_http.GraphQLEndpoint.execute) served nothing."""
        self.enterprises.clear()
        self.served.clear()
        self.denied.clear()

    def write(self, enterprise: str, type_name: str, change: str, record_id: str) -> None:
        """A record published (created, updated, retracted...) or found unchanged."""
        self.enterprises.add(enterprise)
        self.written[enterprise, type_name, change].append(record_id)

    def transition(
        self, type_name: str, record_id: str, change: str, before: Any, after: Any
    ) -> None:
        """A workflow object changed state (a share request decided, a grant revoked)."""
        self.transitions.append({
            "enterprise": "", "type": type_name, "change": change, "ids": [record_id],
            "before": before, "after": after,
        })  # fmt: skip

    def written_json(self) -> list[dict[str, Any]] | None:
        if not self.written and not self.transitions:
            return None
        return [
            {"enterprise": enterprise, "type": type_name, "change": change, "ids": ids}
            for (enterprise, type_name, change), ids in sorted(self.written.items())
        ] + self.transitions

    @property
    def served_fields(self) -> int:
        return sum(
            len(key[1]) * sum(map(len, group.values())) for key, group in self.served.items()
        )

    def served_json(self) -> list[dict[str, Any]]:
        """What was served, in the record's compact form (served.py)."""
        return served.pack(self.served, sorted(self.enterprises))

    def columns(self) -> dict[str, Any]:
        """The record's columns that say what was served, withheld and written; once
        ``frozen``, computed once for every record of the same trail (a live event's
        subscribers)."""
        if self.frozen is not None:
            return self.frozen
        written = self.written_json()
        return {
            "enterprises": _spaced(sorted(self.enterprises)),
            "fields": _spaced(served.search_text(self.served)),
            "served": compact(self.served_json()).decode(),
            "denied": compact(served.pack_denied(self.denied, sorted(self.enterprises))).decode(),
            "written": None if written is None else canonical(written).decode(),
        }

    def freeze(self) -> None:
        """Nothing more will be entered: compute the columns once."""
        self.frozen = None
        self.frozen = self.columns()


@dataclass
class AccessEntry:
    """A record to append: what the hub knows of a request once it has its answer."""

    recorded_at: datetime
    outcome: str
    trace_id: str
    duration_us: int
    client: str | None = None
    department: str | None = None
    role: str | None = None
    operation_name: str | None = None
    operation_type: str | None = None
    document_hash: str | None = None
    document_id: str | None = None  # the registered document it ran, "sha256:<hex>"
    purpose: str | None = None
    case_ref: str | None = None
    remote_address: str | None = None
    policy_version: str | None = None
    trail: Trail = field(default_factory=Trail)

    def columns(self) -> dict[str, Any]:
        fitted = {name: kept(getattr(self, name), limit) for name, limit in TEXT_LIMITS.items()}
        return {
            "recorded_at": timestamp(self.recorded_at),
            "document_hash": self.document_hash,
            "document_id": self.document_id,
            **fitted,
            "outcome": self.outcome,
            **self.trail.columns(),
            "trace_id": self.trace_id,
            "duration_us": self.duration_us,
        }


def _spaced(words: list[str]) -> str:
    """a b c : every word between spaces, so LIKE '% word %' finds exactly it."""
    return f" {' '.join(words)} " if words else ""
