"""The `hub` command as an operator uses it, on a real SQLite file."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.schema import sdl

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}


def test_upgrade_then_demo_load_then_refuse_to_load_twice(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert "database at revision 0002" in result.output

    result = runner.invoke(app, ["demo", "load", "--enterprises", "25", "--seed", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert "loaded 25 enterprise," in " ".join(result.output.split())

    result = runner.invoke(app, ["demo", "load", "--enterprises", "25"], env=env)
    assert result.exit_code == 1
    assert "already holds 25 enterprises" in " ".join(result.output.split())

    result = runner.invoke(app, ["demo", "load", "--if-empty"], env=env)
    assert result.exit_code == 0
    assert "demo not loaded" in result.output


def test_demo_load_rejects_a_bad_reference_day(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["demo", "load", "--as-of", "2026-02-30"], env=env)
    assert result.exit_code == 2
    assert "'2026-02-30' is not a day like 2026-11-01" in result.output


def test_bad_configuration_is_reported_without_a_traceback(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={**env, "HUB_MAX_REQUEST_BYTES": "big"})
    assert result.exit_code == 2
    assert "HUB_MAX_REQUEST_BYTES must be a whole number of bytes, not 'big'" in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output


def test_schema_export_prints_the_committed_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "export"])
    assert result.exit_code == 0
    assert result.output == sdl()
    target = tmp_path / "schema.graphql"
    assert runner.invoke(app, ["schema", "export", "--output", str(target)]).exit_code == 0
    assert target.read_text(encoding="utf-8") == sdl()
