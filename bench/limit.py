"""P, the physical limit: the dossier read with raw sqlite3 cursors and turned into the same
JSON with plain dicts and json.dumps — what a hand-written export would cost; and new
records written with executemany — what a hand-written bulk load would cost."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

# The GraphQL query the hub answers; P produces the same JSON.
FIELDS = """
  uscc name legalRepresentative address industry region town registeredOn status
  creditRecords { id owner { code } kind level reason issuedOn expiresOn status
    repairs { id owner { code } appliedOn decidedOn status opinion } }
  inspections { id owner { code } actionCode kind inspectedOn result participants { code }
    findings { category description } }
  penalties { id owner { code } caseNumber violation legalBasis amount decidedOn status
    minorFirstOffenceExempt decisionIssued complianceSuggestionIssued creditRepairNoticeIssued }
  rectifications { id owner { code } requirement orderedOn deadline status
    assistingDepartments { code } acceptance { id owner { code } acceptedOn verdict opinion } }
"""
DOSSIER = "{ enterprises(first: 100) { edges { node {" + FIELDS + "} } } }"


def _children(
    cursor: sqlite3.Cursor, sql: str, ids: list[int]
) -> defaultdict[int, list[tuple[Any, ...]]]:
    grouped: defaultdict[int, list[tuple[Any, ...]]] = defaultdict(list)
    marks = ",".join("?" * len(ids))
    for row in cursor.execute(sql.format(marks=marks), ids):
        grouped[row[0]].append(row)
    return grouped


def dossier_json(connection: sqlite3.Connection) -> str:
    """The 100-enterprise dossier as the hub serves it, from raw rows."""
    cursor = connection.cursor()
    enterprises = cursor.execute(
        "SELECT id, uscc, name, legal_representative, address, industry, region, town, "
        "registered_on, status FROM enterprise ORDER BY uscc LIMIT 100"
    ).fetchall()
    ids = [e[0] for e in enterprises]
    credit = _children(cursor, "SELECT enterprise_id, id, owner, kind, level, reason, issued_on, "
                       "expires_on, status FROM credit_record WHERE enterprise_id IN ({marks}) "
                       "ORDER BY enterprise_id, issued_on, id", ids)  # fmt: skip
    credit_ids = [r[1] for rows in credit.values() for r in rows]
    repairs = _children(cursor, "SELECT credit_record_id, id, owner, applied_on, decided_on, status, "
                        "opinion FROM credit_repair WHERE credit_record_id IN ({marks}) "
                        "ORDER BY credit_record_id, applied_on, id", credit_ids)  # fmt: skip
    inspections = _children(cursor, "SELECT enterprise_id, id, owner, action_code, kind, inspected_on, "
                            "result FROM inspection WHERE enterprise_id IN ({marks}) "
                            "ORDER BY enterprise_id, inspected_on, id", ids)  # fmt: skip
    inspection_ids = [r[1] for rows in inspections.values() for r in rows]
    participants = _children(cursor, "SELECT inspection_id, department FROM inspection_participant "
                             "WHERE inspection_id IN ({marks}) ORDER BY inspection_id, department",
                             inspection_ids)  # fmt: skip
    findings = _children(cursor, "SELECT inspection_id, category, description FROM inspection_finding "
                         "WHERE inspection_id IN ({marks}) ORDER BY inspection_id, id",
                         inspection_ids)  # fmt: skip
    penalties = _children(cursor, "SELECT enterprise_id, id, owner, case_number, violation, legal_basis, "
                          "amount_fen, decided_on, status, minor_first_offence_exempt, decision_issued, "
                          "compliance_suggestion_issued, credit_repair_notice_issued FROM penalty "
                          "WHERE enterprise_id IN ({marks}) ORDER BY enterprise_id, decided_on, id",
                          ids)  # fmt: skip
    rectifications = _children(cursor, "SELECT enterprise_id, id, owner, requirement, ordered_on, "
                               "deadline, status FROM rectification WHERE enterprise_id IN ({marks}) "
                               "ORDER BY enterprise_id, ordered_on, id", ids)  # fmt: skip
    rectification_ids = [r[1] for rows in rectifications.values() for r in rows]
    assistants = _children(cursor, "SELECT rectification_id, department FROM rectification_assistant "
                           "WHERE rectification_id IN ({marks}) ORDER BY rectification_id, department",
                           rectification_ids)  # fmt: skip
    acceptances = _children(cursor, "SELECT rectification_id, id, owner, accepted_on, verdict, opinion "
                            "FROM acceptance WHERE rectification_id IN ({marks})",
                            rectification_ids)  # fmt: skip

    def owner(code: str) -> dict[str, str]:
        return {"code": code}

    edges = []
    for e in enterprises:
        edges.append({"node": {
            "uscc": e[1], "name": e[2], "legalRepresentative": e[3], "address": e[4],
            "industry": e[5], "region": e[6], "town": e[7], "registeredOn": e[8],
            "status": e[9].upper(),
            "creditRecords": [{
                "id": str(c[1]), "owner": owner(c[2]), "kind": c[3].upper(), "level": c[4],
                "reason": c[5], "issuedOn": c[6], "expiresOn": c[7], "status": c[8].upper(),
                "repairs": [{
                    "id": str(r[1]), "owner": owner(r[2]), "appliedOn": r[3], "decidedOn": r[4],
                    "status": r[5].upper(), "opinion": r[6],
                } for r in repairs[c[1]]],
            } for c in credit[e[0]]],
            "inspections": [{
                "id": str(i[1]), "owner": owner(i[2]), "actionCode": i[3], "kind": i[4].upper(),
                "inspectedOn": i[5], "result": i[6].upper(),
                "participants": [{"code": p[1]} for p in participants[i[1]]],
                "findings": [{"category": f[1], "description": f[2]} for f in findings[i[1]]],
            } for i in inspections[e[0]]],
            "penalties": [{
                "id": str(p[1]), "owner": owner(p[2]), "caseNumber": p[3], "violation": p[4],
                "legalBasis": p[5], "amount": f"{p[6] // 100}.{p[6] % 100:02d}", "decidedOn": p[7],
                "status": p[8].upper(), "minorFirstOffenceExempt": bool(p[9]),
                "decisionIssued": bool(p[10]), "complianceSuggestionIssued": bool(p[11]),
                "creditRepairNoticeIssued": bool(p[12]),
            } for p in penalties[e[0]]],
            "rectifications": [{
                "id": str(r[1]), "owner": owner(r[2]), "requirement": r[3], "orderedOn": r[4],
                "deadline": r[5], "status": r[6].upper(),
                "assistingDepartments": [{"code": a[1]} for a in assistants[r[1]]],
                "acceptance": next(({
                    "id": str(a[1]), "owner": owner(a[2]), "acceptedOn": a[3],
                    "verdict": a[4].upper(), "opinion": a[5],
                } for a in acceptances[r[1]]), None),
            } for r in rectifications[e[0]]],
        }})  # fmt: skip
    return json.dumps({"data": {"enterprises": {"edges": edges}}}, ensure_ascii=False)


# P for imports: the rows that publishing new inspections writes, with executemany.
IMPORT_BATCH = 500
INSERT_INSPECTION = """INSERT INTO inspection (id, owner, source_id, enterprise_id, action_code,
  kind, inspected_on, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
INSERT_VERSION = """INSERT INTO record_version (seq, kind, record_id, owner, source_id, uscc,
  version, change, data, changed, reason, published_at, publisher, client, trace_id)
  VALUES (?, 'Inspection', ?, ?, ?, ?, 1, 'created', ?, '', NULL, ?, ?, ?, NULL)"""


def import_inspections(
    connection: sqlite3.Connection, owner: str, client: str, records: list[dict[str, Any]]
) -> None:
    """New inspections (in their published form) stored as publishing stores them: the record,
    its participants and findings, its first version and the feed head, one transaction a
    batch. ``connection`` is in autocommit mode (isolation_level=None)."""
    for start in range(0, len(records), IMPORT_BATCH):
        batch = records[start : start + IMPORT_BATCH]
        published_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        first = cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM inspection").fetchone()[0]
        seq = cursor.execute("SELECT seq FROM feed_head WHERE id = 1").fetchone()[0]
        usccs = sorted({record["uscc"] for record in batch})
        marks = ",".join("?" * len(usccs))
        enterprise = dict(
            cursor.execute(f"SELECT uscc, id FROM enterprise WHERE uscc IN ({marks})", usccs)
        )
        rows, participants, findings, versions = [], [], [], []
        for offset, r in enumerate(batch):
            record_id = first + offset
            rows.append((record_id, owner, r["sourceId"], enterprise[r["uscc"]], r["actionCode"],
                         r["kind"], r["inspectedOn"], r["result"]))  # fmt: skip
            participants += [(record_id, code) for code in r["participants"]]
            findings += [(record_id, f["category"], f["description"]) for f in r["findings"]]
            data = json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            versions.append((seq + offset + 1, record_id, owner, r["sourceId"], r["uscc"], data,
                             published_at, owner, client))  # fmt: skip
        cursor.executemany(INSERT_INSPECTION, rows)
        cursor.executemany("INSERT INTO inspection_participant VALUES (?, ?)", participants)
        cursor.executemany(
            "INSERT INTO inspection_finding (inspection_id, category, description) "
            "VALUES (?, ?, ?)",
            findings,
        )
        cursor.executemany(INSERT_VERSION, versions)
        cursor.execute("UPDATE feed_head SET seq = ? WHERE id = 1", (seq + len(batch),))
        cursor.execute("COMMIT")
