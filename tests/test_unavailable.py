"""While the database is away, the installed `hub serve` answers 503 SERVICE_UNAVAILABLE with
Retry-After, says so in one log line (no traceback, no "please report it"), and serves again
when the database is back. The database goes away the way it does in production: the
connection to it breaks (a TCP proxy in front of this machine's PostgreSQL is cut)."""

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import make_url

from hub.db import upgrade
from tests.conftest import POSTGRES_URL, fresh_database
from tests.test_serve import demo_with_clients, free_port, serving

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="set HUB_TEST_POSTGRES_URL to test on PostgreSQL"
)


class Proxy:
    """Forwards 127.0.0.1:port to the database; ``cut`` breaks every connection and refuses
    new ones, ``mend`` accepts them again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def call(self, work: object) -> None:
        asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=10)  # type: ignore[arg-type]

    def mend(self) -> None:
        async def listen() -> None:
            self.server = await asyncio.start_server(self.relay, "127.0.0.1", self.port)

        self.call(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()

        self.call(close())

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[tuple[Proxy, str, dict[str, str]]]:
    with fresh_database("postgres", tmp_path) as settings:
        upgrade(settings)
        tokens = asyncio.run(demo_with_clients(settings.database_url))
        url = make_url(settings.database_url)
        proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
        proxy.mend()
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        yield proxy, proxied, tokens
        proxy.cut()


def test_a_database_away_is_503_with_retry_after_and_one_log_line(
    behind_proxy: tuple[Proxy, str, dict[str, str]],
) -> None:
    proxy, url, tokens = behind_proxy
    environment = {**os.environ, "HUB_DATABASE_URL": url}
    query = {"query": "{ departments { code } }"}
    headers = {"Authorization": f"Bearer {tokens['market']}"}
    with (
        serving(environment) as (process, port),
        httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
    ):
        assert http.post("/graphql", json=query, headers=headers).status_code == 200
        proxy.cut()
        for _ in range(3):  # new connections and the pooled ones alike
            away = http.post("/graphql", json=query, headers=headers)
            assert away.status_code == 503, away.text
            assert away.headers["Retry-After"] == "5"
            (error,) = away.json()["errors"]
            assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "retryAfter": 5}
            assert "try again in 5 seconds" in error["message"]
            assert "data" not in away.json()
        assert http.get("/readyz").status_code == 503
        proxy.mend()
        deadline = time.monotonic() + 20
        while (back := http.post("/graphql", json=query, headers=headers)).status_code != 200:
            assert time.monotonic() < deadline, back.text
            time.sleep(0.2)
        assert len(back.json()["data"]["departments"]) == 10
        process.terminate()
        log = process.communicate(timeout=10)[0]
    assert "database unavailable at" in log
    assert "Traceback" not in log
    assert "please report it" not in log


def test_the_proxy_really_cuts(behind_proxy: tuple[Proxy, str, dict[str, str]]) -> None:
    """The test above proves nothing if the proxy let connections through while cut."""
    proxy, _, _ = behind_proxy
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2):
        pass
    proxy.cut()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2),
    ):
        pass
