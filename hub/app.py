"""The hub's web application: /graphql (HTTP and WebSocket), /healthz and /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from hub.answers import internal_error_response
from hub.audit import AccessLog
from hub.checkpoint import CheckpointSchedule
from hub.db import create_engine, current_revision, head_revision
from hub.graphql_http import GraphQLEndpoint
from hub.logs import configure_logging
from hub.metrics import CONTENT_TYPE_LATEST, POLICY_VERSION, exposition
from hub.policy import PolicyError, PolicyStore
from hub.publishing.colours import ColourReview
from hub.roles import access_log_exposure
from hub.schema import build_schema, policy_fields
from hub.settings import Settings
from hub.subscriptions import SubscriptionEndpoint
from hub.telemetry import configure_tracing, exporters, instrument_engine

__all__ = ["configure_logging", "create_app", "from_environment"]

logger = logging.getLogger("hub")


def show_policy(policies: PolicyStore) -> None:
    """The policy version in force, for /metrics."""
    POLICY_VERSION.clear()
    POLICY_VERSION.labels(policies.current.version).set(1)


def reload_on_hangup(policies: PolicyStore) -> None:
    """Reload the policy files on SIGHUP, where the server runs in the main thread."""

    def reload() -> None:
        policies.reload()
        show_policy(policies)

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (RuntimeError, ValueError, NotImplementedError):
        logger.info("policy reload on SIGHUP is unavailable outside the main thread")


async def warn_if_the_log_is_exposed(engine: AsyncEngine) -> None:
    """Warn once, at start, when the hub serves as a role that could rewrite the access log
    (its owner, a superuser): a first run works so, a deployment should not."""
    if engine.dialect.name != "postgresql":
        return
    try:
        async with engine.connect() as connection:
            exposure = await access_log_exposure(connection)
    except Exception:  # unreachable or not yet migrated: /readyz says so
        return
    if exposure:
        logger.warning("%s", exposure)


def from_environment() -> Starlette:
    """The hub as the ``HUB_*`` variables configure it: each of `hub serve --workers`."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    try:
        return create_app(settings)
    except PolicyError as error:  # the others keep serving the policy they have
        logger.error("this worker does not start with unsound policies:\n%s", error)
        raise SystemExit(1) from None


# Allocations (net of what is freed) between the collector's passes over young objects. A
# dossier request holds ~100,000 objects until its answer is sent: at Python's default (700)
# the collector walked them ~8 times a request, ~10% of its time; at this, once in ~15
# requests (bench/RESULTS.md, "Compiled reads").
YOUNG_OBJECTS = 20_000


def settle_heap() -> None:
    """Once start-up is done: what it built (schema, policies, modules) lives as long as the
    process, so it is taken out of the full collections whose pauses, under heavy requests,
    set everyone's p99; and the collector looks for cycles among young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])


def create_app(settings: Settings, tracer_provider: TracerProvider | None = None) -> Starlette:
    """The hub; raises PolicyError, naming every problem, when the policy files are unsound.

    Tracing follows the ``OTEL_*`` variables unless a ``tracer_provider`` is given.
    """
    policies = PolicyStore(settings.policy_dir, policy_fields())
    provider = tracer_provider or configure_tracing()
    tracer = provider.get_tracer("hub")
    engine = create_engine(settings)
    if tracer_provider is not None or exporters():  # a span per statement, where they go
        instrument_engine(engine.sync_engine, tracer)
    expected_revision = head_revision(settings)

    async def healthz(_: Request) -> JSONResponse:
        """The process is up; says nothing about the database."""
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        """Ready to answer: the database is reachable, migrated to this code's revision, and
        the access log can be written."""
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                revision = await current_revision(connection)
        except Exception:  # any failure means not ready; the details stay out of the answer
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        if revision != expected_revision:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "database": "not migrated: run `hub db upgrade`",
                    "revision": revision,
                    "expected_revision": expected_revision,
                },
                503,
            )
        # A hub that cannot record what it serves serves nothing: not ready either.
        if problem := await access_log.problem():
            return JSONResponse({"status": "unavailable", "access_log": problem}, 503)
        return JSONResponse(
            {"status": "ready", "revision": revision, "policy_version": policies.current.version}
        )

    async def metrics(_: Request) -> Response:
        """Prometheus metrics: counts and timings, nothing of what was read."""
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        show_policy(policies)
        reload_on_hangup(policies)
        await warn_if_the_log_is_exposed(engine)
        checkpoints = CheckpointSchedule(settings) if settings.checkpoint_seconds else None
        if checkpoints is not None:
            checkpoints.start()
        colours = ColourReview(engine, policies, access_log)
        await colours.start()
        settle_heap()
        yield
        await colours.stop()
        if checkpoints is not None:
            await checkpoints.stop()
        await subscriptions.listener.stop()
        await engine.dispose()
        if tracer_provider is None:
            provider.shutdown()  # flush spans still waiting for export

    access_log = AccessLog(engine)
    graphql = GraphQLEndpoint(build_schema(), engine, settings, policies, access_log, tracer)
    subscriptions = SubscriptionEndpoint(graphql)
    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", subscriptions),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static")),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: internal_error_response},
    )
    app.state.engine = engine
    app.state.policies = policies
    app.state.listener = subscriptions.listener
    return app
