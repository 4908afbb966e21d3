"""Tracing: one span per operation, spans for SQL, none per field; ids link everything."""

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from hub.app import create_app
from hub.settings import Settings
from hub.telemetry import configure_tracing

DOSSIER = """query Dossier { enterprises(first: 20) { edges { node { uscc name
  inspections { owner { code } kind findings { category } }
  penalties { caseNumber amount } } } } }"""


@pytest.fixture(scope="module")
def traced(
    demo_database: Settings, tokens: dict[str, str]
) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    with TestClient(create_app(demo_database, tracer_provider=provider), headers=headers) as client:
        yield client, exporter


def test_one_span_per_operation_and_one_per_statement(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    exporter.clear()
    answer = client.post("/graphql", json={"query": DOSSIER}).json()
    spans = exporter.get_finished_spans()
    (operation,) = [span for span in spans if span.kind is SpanKind.SERVER]
    statements = [span for span in spans if span.kind is SpanKind.CLIENT]
    assert len(spans) == 1 + len(statements)  # nothing per field or per list item
    assert operation.name == "graphql query Dossier"
    assert f"{operation.context.trace_id:032x}" == answer["extensions"]["traceId"]
    attributes = dict(operation.attributes or {})
    assert attributes["graphql.operation.name"] == "Dossier"
    assert attributes["graphql.operation.type"] == "query"
    assert attributes["hub.department"] == "market"
    assert attributes["hub.outcome"] == "partial"
    assert attributes["hub.fields.served"] > 100
    assert attributes["hub.fields.denied"] > 0
    assert all(
        s.parent is not None and s.parent.span_id == operation.context.span_id for s in statements
    )
    assert all(s.context.trace_id == operation.context.trace_id for s in statements)
    sql = [str((s.attributes or {})["db.statement"]) for s in statements]
    assert any(
        statement.startswith("SELECT") and "FROM inspection" in statement for statement in sql
    )
    assert any(statement.startswith("INSERT INTO access_record") for statement in sql)
    assert not any("杭州" in statement for statement in sql)  # statements, never values


def test_a_callers_trace_context_is_continued(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, _ = traced
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.post(
        "/graphql",
        json={"query": "{ departments { code } }"},
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert response.json()["extensions"]["traceId"] == trace_id


def test_exporters_follow_the_otel_variables() -> None:
    assert configure_tracing({})._active_span_processor._span_processors == ()
    console = configure_tracing({"OTEL_TRACES_EXPORTER": "console"})
    assert len(console._active_span_processor._span_processors) == 1
    otlp = configure_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    (processor,) = otlp._active_span_processor._span_processors
    assert type(processor.span_exporter).__name__ == "OTLPSpanExporter"  # type: ignore[attr-defined]
    for provider in (console, otlp):
        provider.shutdown()
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'"):
        configure_tracing({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_trace_ids_do_not_repeat_when_the_random_module_is_seeded() -> None:
    """The access record files every request under its trace id: a generator seeding
    `random` (hypothesis does, per example) must not make two requests share one."""
    import random

    from hub.telemetry import configure_tracing

    tracer = configure_tracing({}).get_tracer("test")
    ids = []
    for _ in range(2):
        random.seed(17)
        with tracer.start_as_current_span("request") as span:
            ids.append(span.get_span_context().trace_id)
    assert ids[0] != ids[1]
