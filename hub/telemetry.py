"""Tracing: one span per GraphQL operation and one per SQL statement, never one per field.

Configured from the standard OpenTelemetry variables: ``OTEL_TRACES_EXPORTER`` (``otlp``,
``console`` or ``none``; ``otlp`` by default when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, else ``none``), the exporter's own
``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and
``OTEL_TRACES_SAMPLER``. A request's span is made even with no exporter: its trace id links
a client's log, the answer's ``extensions.traceId`` and the access record. Spans of SQL
statements are made only where they go somewhere.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["SystemIds", "configure_tracing", "exporters", "instrument_engine"]

_SPAN = "_hub_span"


class SystemIds(IdGenerator):
    """Trace and span ids from the operating system's randomness. The access record files
    every request under its trace id; the SDK's default draws from the ``random`` module,
    whose ids repeat wherever something seeds it (a library, a test's generator): two
    requests, one id."""

    def generate_span_id(self) -> int:
        while (span_id := secrets.randbits(64)) == INVALID_SPAN_ID:
            pass
        return span_id

    def generate_trace_id(self) -> int:
        while (trace_id := secrets.randbits(128)) == INVALID_TRACE_ID:
            pass
        return trace_id

    def is_trace_id_random(self) -> bool:
        return True


def configure_tracing(environ: Mapping[str, str] = os.environ) -> TracerProvider:
    """A tracer provider exporting where the ``OTEL_*`` variables say."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "hub")}),
        id_generator=SystemIds(),
    )
    for name in exporters(environ):
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; otlp, console or none"
            )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def exporters(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters the ``OTEL_*`` variables name; none when nothing would receive spans."""
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    names = environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none")
    return [name for name in (n.strip() for n in names.split(",")) if name not in {"none", ""}]


def instrument_engine(engine: Engine, tracer: Tracer) -> None:
    """A span around every SQL statement (its text, never its parameters)."""

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:  # fmt: skip
        span = tracer.start_span(
            statement.split(None, 1)[0].upper() if statement.strip() else "SQL",
            kind=SpanKind.CLIENT,
            attributes={"db.system": conn.dialect.name, "db.statement": statement},
        )
        setattr(context, _SPAN, span)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:  # fmt: skip
        span = getattr(context, _SPAN, None)
        if span is not None:
            span.end()

    def failed(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, _SPAN, None)
        if span is not None:
            span.set_status(
                Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
            )
            span.end()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)
