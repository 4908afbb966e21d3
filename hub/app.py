"""The hub's web application: /graphql, /healthz and /readyz."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hub.db import create_engine, current_revision, head_revision
from hub.graphql_http import GraphQLEndpoint, internal_error_response
from hub.schema import build_schema
from hub.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings) -> Starlette:
    engine = create_engine(settings)
    expected_revision = head_revision(settings)

    async def healthz(_: Request) -> JSONResponse:
        """The process is up; says nothing about the database."""
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        """Ready to answer: the database is reachable and migrated to this code's revision."""
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                revision = await current_revision(connection)
        except Exception:
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
        return JSONResponse({"status": "ready", "revision": revision})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    graphql = GraphQLEndpoint(build_schema(), engine, settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static")),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: internal_error_response},
    )
    app.state.engine = engine
    return app
