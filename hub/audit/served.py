"""What a record says was served and withheld: stored compactly, read back whole.

A record names each record served, by enterprise, type, id, the fields served of it and the
grants that opened conditional ones; and each field withheld, of which record, whose, and
why. Stored an entry per enterprise and per withheld field, as first written, that took 1.5
times the bytes of the answer itself for a 100-enterprise dossier: the same field lists,
reasons and USCCs over and over, and again in the search text. Records are now written in
groups (one type, field list and grant set served; one type, owner, field and reason
withheld), each naming its records as ``[enterprise, id, id, ...]``, the enterprise by its
place in the record's own ``enterprises``; the search text (``fields``) holds each
``Type.field`` once. Nothing is lost: ``groups`` and ``denials`` give back every entry of both
forms, and every auditor's question is answered from them exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "Group",
    "coordinates",
    "denials",
    "groups",
    "of_enterprise",
    "pack",
    "pack_denied",
    "search_text",
]

# (type, fields served, (Type.field, grant id) pairs, (Type.field, relation) pairs) ->
# enterprise -> ids of the records
Served = Mapping[
    tuple[str, tuple[str, ...], tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]],
    Mapping[str, list[str]],
]
Group = dict[str, Any]  # {"enterprise", "type", "fields", "ids", "grants"?, "relations"?}


def pack(served: Served, enterprises: list[str]) -> list[dict[str, Any]]:
    """``served`` as stored: ``enterprises`` is the record's sorted list of enterprises. Groups
    come in the order of their first enterprise, then type, fields and how they were opened;
    each group's records in the order of their enterprises."""
    place = {uscc: index for index, uscc in enumerate(enterprises)}
    packed = []
    for key, by_enterprise in served.items():
        if by_enterprise:
            records = sorted(([place[e], *ids] for e, ids in by_enterprise.items()), key=_first)
            packed.append(((records[0][0], *key), records))
    packed.sort(key=_first)
    return [
        {"type": type_name, "fields": list(fields), "records": records,
         **({"grants": dict(grants)} if grants else {}),
         **({"relations": dict(opened)} if opened else {})}
        for (_, type_name, fields, grants, opened), records in packed
    ]  # fmt: skip


def _first(pair: Any) -> Any:
    return pair[0]


def search_text(served: Served) -> list[str]:
    """Every Type.field served, once: what ``fields`` holds for searches by field."""
    selections = {(key[0], key[1]) for key, group in served.items() if group}
    return sorted({f"{type_name}.{name}" for type_name, names in selections for name in names})


def groups(record: Mapping[Any, Any]) -> list[Group]:
    """Every group of records served, one per (enterprise, type, fields, grants), from a
    stored record (its ``enterprises`` and ``served`` columns) of either form."""
    stored = record["served"]
    entries: list[dict[str, Any]] = json.loads(stored) if isinstance(stored, str) else stored
    if not entries or "records" not in entries[0]:
        return entries  # written before the compact form: one entry per enterprise already
    enterprises = record["enterprises"]
    if isinstance(enterprises, str):
        enterprises = enterprises.split()
    found: list[Group] = []
    for entry in entries:
        how: Group = {name: entry[name] for name in ("grants", "relations") if name in entry}
        for place, *ids in entry["records"]:
            found.append({
                "enterprise": enterprises[place], "type": entry["type"],
                "fields": entry["fields"], "ids": ids, **how,
            })  # fmt: skip
    return sorted(found, key=lambda group: (group["enterprise"], group["type"]))


def coordinates(found: Iterable[Group]) -> list[str]:
    """Every enterprise:Type.field served."""
    return sorted({
        f"{group['enterprise']}:{group['type']}.{name}" for group in found
        for name in group["fields"]
    })  # fmt: skip


def pack_denied(denied: list[dict[str, str]], enterprises: list[str]) -> list[dict[str, Any]]:
    """Withheld fields as stored, grouped by type, owner, field and reason."""
    place = {uscc: index for index, uscc in enumerate(enterprises)}
    packed: dict[tuple[str, str, str, str], dict[int, list[str]]] = {}
    for denial in denied:
        key = (denial["type"], denial["owner"], denial["field"], denial["reason"])
        ids = packed.setdefault(key, {}).setdefault(place[denial["enterprise"]], [])
        if denial["id"] not in ids:
            ids.append(denial["id"])
    return [
        {"type": type_name, "owner": owner, "field": field, "reason": reason,
         "records": [[at, *ids] for at, ids in sorted(records.items())]}
        for (type_name, owner, field, reason), records in sorted(packed.items())
    ]  # fmt: skip


def denials(record: Mapping[Any, Any]) -> list[dict[str, str]]:
    """Every field withheld, one entry per record and field, from a stored record of either
    form."""
    stored = record["denied"]
    entries: list[dict[str, Any]] = json.loads(stored) if isinstance(stored, str) else stored
    if not entries or "records" not in entries[0]:
        return entries
    enterprises = record["enterprises"]
    if isinstance(enterprises, str):
        enterprises = enterprises.split()
    found = [
        {"enterprise": enterprises[place], "type": entry["type"], "id": record_id,
         "owner": entry["owner"], "field": entry["field"], "reason": entry["reason"]}
        for entry in entries for place, *ids in entry["records"] for record_id in ids
    ]  # fmt: skip
    return sorted(found, key=lambda d: (d["enterprise"], d["type"], d["id"], d["field"]))


def of_enterprise(record: Mapping[Any, Any], uscc: str) -> tuple[list[str], list[str]]:
    """The Type.field names served of one enterprise's records in a stored record, and those
    withheld of them, each sorted: what one request read of that enterprise."""
    prefix = f"{uscc}:"
    served = [c.removeprefix(prefix) for c in coordinates(groups(record)) if c.startswith(prefix)]
    withheld = sorted({d["field"] for d in denials(record) if d["enterprise"] == uscc})
    return served, withheld
