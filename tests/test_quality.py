"""The code's own checks: lint, formatting, strict types, and the core's independence."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", "hub", "tests", "migrations", "bench", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    result = run(
        str(BIN / "ruff"),
        "format",
        "--check",
        "hub",
        "tests",
        "migrations/env.py",
        "bench",
        "examples",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes() -> None:
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_no_web_framework() -> None:
    core = (
        "hub.uscc, hub.domain, hub.errors, hub.settings, hub.models, hub.db, hub.demo, hub.throttle"
    )
    frameworks = "{'strawberry', 'starlette', 'graphql'}"
    probe = f"import sys, {core}; print(sorted({{m.split('.')[0] for m in sys.modules}} & {frameworks}))"
    result = run(sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
