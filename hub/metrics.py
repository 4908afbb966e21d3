"""Prometheus metrics at /metrics, for the operator's existing dashboards.

Counts and timings only, never what was read (that is the access log's): requests by outcome
and error code, their latency, the access log's appends (latency and how many records each
group commit took), withheld fields, live subscriptions and their events, and the policy
version in force.

Each process counts its own. Under `hub serve --workers N` a scrape reaches one worker at a
time, unless ``PROMETHEUS_MULTIPROC_DIR`` names an empty folder shared by the workers:
prometheus_client then keeps the values there and /metrics adds up every worker's.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "ACCESS_LOG_APPEND_SECONDS",
    "ACCESS_LOG_BATCH_RECORDS",
    "CONTENT_TYPE_LATEST",
    "EXECUTIONS",
    "LIVE_EVENTS",
    "LIVE_MESSAGES",
    "POLICY_VERSION",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SUBSCRIPTIONS",
    "WITHHELD_FIELDS",
    "exposition",
]

REQUESTS = Counter(
    "hub_requests", "GraphQL requests answered, by outcome and first error code.",
    ["outcome", "code"],
)  # fmt: skip
REQUEST_SECONDS = Histogram(
    "hub_request_seconds", "Time to answer a GraphQL request, its access record included.",
    ["operation"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
ACCESS_LOG_APPEND_SECONDS = Histogram(
    "hub_access_log_append_seconds", "Time to commit one group of access records.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)  # fmt: skip
ACCESS_LOG_BATCH_RECORDS = Histogram(
    "hub_access_log_batch_records", "Access records committed together (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)  # fmt: skip
WITHHELD_FIELDS = Counter("hub_withheld_fields", "Field values withheld from callers.")
EXECUTIONS = Counter(
    "hub_graphql_executions",
    "GraphQL requests executed, by path: from a compiled plan (hub/compiled/) or through "
    "strawberry's resolvers (mutations, and whatever the compiler declines).",
    ["path"],
)
LIVE_EVENTS = Counter(
    "hub_live_events",
    "Live events built: one per stream of like subscribers behind the feed's "
    "head, however many subscribers it has (hub/live/).",
)
LIVE_MESSAGES = Counter(
    "hub_live_messages", "Live event messages queued for subscribers, by type (next, error).",
    ["type"],
)  # fmt: skip
SUBSCRIPTIONS = Gauge(
    "hub_subscriptions_active", "Live subscriptions in this process.", multiprocess_mode="livesum"
)
POLICY_VERSION = Gauge(
    "hub_policy_version_info", "The policy version in force (1 for the current one).",
    ["version"], multiprocess_mode="liveall",
)  # fmt: skip


def exposition() -> bytes:
    """The metrics in Prometheus' text format: every worker's, in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
