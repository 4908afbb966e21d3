"""Setup mistakes, as an operator meets them with the installed `hub` command: one paragraph
saying what is wrong and what to do, exit status 2, no traceback unless --debug asks for it;
and `hub serve` refuses to start on a database it could not serve from."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.test_serve import HUB, free_port


def hub(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HUB_DATABASE_URL": url, "COLUMNS": "300"}
    return subprocess.run([HUB, *arguments], env=environment, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+asyncpg://hub:secret@127.0.0.1:{port}/hub",
         "cannot reach the database at postgresql+asyncpg://hub:***@127.0.0.1:{port}/hub"),
        ("postgresql://hub@127.0.0.1:{port}/hub",
         "names a database driver the hub does not install: e.g. sqlite+aiosqlite:///"),
        ("not a url", "HUB_DATABASE_URL 'not a url' is not a database URL"),
        ("sqlite+aiosqlite:///{tmp}/empty.db", "is not migrated (no such table: client): run "
         "`hub db upgrade`"),
        # A mistyped folder is not made: only the folder of a database file whose parent is.
        ("sqlite+aiosqlite:///{tmp}/no/such/hub.db", "the folder {tmp}/no/such of the SQLite "
         "database sqlite+aiosqlite:///{tmp}/no/such/hub.db does not exist: create it"),
    ],
)  # fmt: skip
def test_a_setup_mistake_is_one_paragraph_and_exit_status_2(
    url: str, said: str, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    url, said = (text.format(port=port, tmp=tmp_path) for text in (url, said))
    result = hub(url, "clients", "list")
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "secret" not in result.stderr  # the password stays out of the message
    assert not (tmp_path / "no").exists()
    debugged = hub(url, "--debug", "clients", "list")
    assert debugged.returncode != 0
    assert "Traceback" in debugged.stderr


def test_serve_refuses_a_database_it_could_not_serve_from(tmp_path: Path) -> None:
    empty = hub(f"sqlite+aiosqlite:///{tmp_path}/empty.db", "serve", "--port", str(free_port()))
    assert empty.returncode == 1
    assert "the hub does not start: the database is at revision none (it is empty)" in (
        empty.stderr
    )
    away = hub(f"postgresql+asyncpg://hub@127.0.0.1:{free_port()}/hub", "serve", "--port",
               str(free_port()))  # fmt: skip
    assert away.returncode == 2
    assert "cannot reach the database" in away.stderr
