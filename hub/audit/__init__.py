"""The access log: what a record holds (record.py), written for every request (log.py),
verified (chain.py), searched and exported for auditors (search.py)."""

from hub.audit.chain import Verification, verify, verify_after
from hub.audit.log import CHAIN_LOCK, AccessLog
from hub.audit.record import (
    COLUMNS,
    GENESIS,
    AccessEntry,
    Grants,
    Outcome,
    Trail,
    canonical,
    record_hash,
    timestamp,
)
from hub.audit.search import AccessFilter, export, exported, find, search

__all__ = [
    "CHAIN_LOCK",
    "COLUMNS",
    "GENESIS",
    "AccessEntry",
    "AccessFilter",
    "AccessLog",
    "Grants",
    "Outcome",
    "Trail",
    "Verification",
    "canonical",
    "export",
    "exported",
    "find",
    "record_hash",
    "search",
    "timestamp",
    "verify",
    "verify_after",
]
