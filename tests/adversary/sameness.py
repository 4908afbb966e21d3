"""Proof of sameness: the compiled read path (hub/compiled/) and strawberry's resolvers give
the same answer, errors and access record for the same request.

``Sameness`` sends each request to two hubs over the same database, one with compiled reads
and one without (``HUB_COMPILED_READS=0``), and holds them side by side:

- the status, and ``data`` as JSON text (key order included);
- the errors: message, locations, path and extensions, in path order (the specification
  leaves their order open; graphql-core's follows its scheduling of async resolvers);
- the access record: outcome, operation, the enterprises, the fields served and withheld
  (ids within a group in order), read back from the log by each answer's trace id.

Used by tests/test_compiled.py (a bounded number in CI) and bench/sameness.py (thousands).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import select

from hub import models
from hub.db import create_engine
from hub.settings import Settings

__all__ = ["RECORD_COLUMNS", "Sameness"]

RECORD_COLUMNS = (
    "outcome", "department", "operation_name", "operation_type", "document_hash", "purpose",
    "enterprises", "fields", "served", "denied",
)  # fmt: skip


class Poster(Protocol):
    def post(self, url: str, *, json: Any, headers: dict[str, str]) -> Any: ...


@dataclass
class Sameness:
    compiled: Poster  # a hub with compiled reads
    interpreted: Poster  # the same hub, HUB_COMPILED_READS=0
    settings: Settings  # their database
    sent: int = 0
    # (document, caller, purpose, trace id compiled, trace id interpreted) awaiting records
    _pending: list[tuple[str, str, str | None, str, str]] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def send(
        self,
        document: str,
        token: str,
        caller: str,
        purpose: str | None = None,
        variables: dict[str, Any] | None = None,
    ) -> None:
        """Send one request to both; what differs in the answers is noted at once, the
        records are compared by ``check``."""
        headers = {"Authorization": f"Bearer {token}"}
        if purpose is not None:
            headers["X-Hub-Purpose"] = quote(purpose)
        body = {"query": document, "variables": variables or {}}
        answers = []
        for hub in (self.compiled, self.interpreted):
            response = hub.post("/graphql", json=body, headers=headers)
            answer = response.json()
            trace = answer.pop("extensions", {}).get("traceId", "")
            answers.append((response.status_code, answer, trace))
        self.sent += 1
        (status, answer, trace), (status_, answer_, trace_) = answers
        where = f"{caller} purpose={purpose!r} variables={variables}\n{document}"
        if status != status_:
            self.differences.append(f"status {status} vs {status_}: {where}")
        elif json.dumps(answer.get("data")) != json.dumps(answer_.get("data")):
            self.differences.append(f"data differs: {where}")
        elif _errors(answer) != _errors(answer_):
            self.differences.append(
                f"errors differ: {where}\n{_errors(answer)[:3]}\n{_errors(answer_)[:3]}"
            )
        self._pending.append((document, caller, purpose, trace, trace_))

    def check(self) -> list[str]:
        """Compare the records of every request sent since the last check; every difference
        found so far."""
        pending, self._pending = self._pending, []
        traces = [trace for *_, one, other in pending for trace in (one, other)]
        records = asyncio.run(_records(self.settings, traces))
        for document, caller, purpose, one, other in pending:
            if one not in records or other not in records:
                self.differences.append(f"no access record: {caller} {purpose!r}\n{document}")
            elif records[one] != records[other]:
                differing = [c for c in RECORD_COLUMNS if records[one][c] != records[other][c]]
                self.differences.append(
                    f"records differ in {differing}: {caller} purpose={purpose!r}\n{document}"
                )
        return self.differences


def _errors(answer: dict[str, Any]) -> list[str]:
    return sorted(
        json.dumps(e, ensure_ascii=False, sort_keys=True) for e in answer.get("errors", [])
    )


async def _records(settings: Settings, traces: Iterable[str]) -> dict[str, dict[str, Any]]:
    record = models.AccessRecord
    wanted = list(traces)
    engine = create_engine(settings)
    found: dict[str, dict[str, Any]] = {}
    try:
        async with engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                statement = select(
                    record.trace_id, *(getattr(record, name) for name in RECORD_COLUMNS)
                ).where(record.trace_id.in_(wanted[start : start + 500]))
                for row in await connection.execute(statement):
                    found[row.trace_id] = {name: row._mapping[name] for name in RECORD_COLUMNS}
    finally:
        await engine.dispose()
    return found
