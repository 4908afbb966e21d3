"""The compiled read path: read documents answered from plans compiled once, without
strawberry's per-field resolution; whatever it does not cover goes through strawberry.

Both paths give the same answer, errors and access record (tests/test_compiled.py holds
them side by side); ``HUB_COMPILED_READS=0`` turns this one off.
"""

from __future__ import annotations

from functools import lru_cache

import strawberry

from hub.compiled.plan import Decline, Plan, compile_plan
from hub.compiled.run import answer
from hub.schema.limits import cacheable

__all__ = ["Decline", "Plan", "Plans", "answer"]


class Plans:
    """Plans of the documents a process is sent, compiled once each (bounded; long
    documents are never cached, so they are never compiled either)."""

    def __init__(self, schema: strawberry.Schema, size: int = 512) -> None:
        graphql_schema = schema._schema
        self._compile = lru_cache(maxsize=size)(
            lambda query, name: compile_plan(graphql_schema, query, name)
        )

    def get(self, query: str, operation_name: str | None) -> Plan | None:
        """The document's plan; None where strawberry answers it."""
        return self._compile(query, operation_name) if cacheable(query) else None
