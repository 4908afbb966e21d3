"""The GraphQL over HTTP specification's own conformance suite, the `graphql-http` package's
server audits, run in Node.js against the installed `hub serve` as a department calls it:
not one MUST or SHOULD fails, and every MAY is offered."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from hub.db import upgrade
from tests.conftest import BACKENDS, fresh_database
from tests.node import node
from tests.test_serve import access_records, demo_with_clients, serving


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_graphql_over_http_audit_passes_every_must_should_and_may(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        environment = {**os.environ, "HUB_DATABASE_URL": settings.database_url}
        with serving(environment) as (_, port):
            audited = node("audit.mjs", f"http://127.0.0.1:{port}/graphql", tokens["market"])
        assert audited.returncode == 0, audited.stderr
        results = [json.loads(line) for line in audited.stdout.splitlines()]
        # error: a MUST failed; warn: a SHOULD; notice: a MAY not offered.
        assert [r for r in results if r["status"] != "ok"] == []
        assert len(results) >= 60, audited.stdout
        musts = [r for r in results if r["name"].startswith("MUST")]
        shoulds = [r for r in results if r["name"].startswith("SHOULD")]
        assert len(musts) >= 10  # the audit ran, not an empty list
        assert len(shoulds) >= 20
        # Each of the audit's requests is in the access log, refused ones too.
        records = asyncio.run(access_records(settings.database_url))
        assert len(records) >= len(results)
