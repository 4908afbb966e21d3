"""`hub serve` as a process: refuses unsound policies, reloads them on SIGHUP."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.db import upgrade
from hub.settings import DEFAULT_POLICY_DIR, Settings

HUB = str(Path(sys.executable).parent / "hub")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    database_url = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    upgrade(Settings(database_url=database_url))
    return {**os.environ, "HUB_DATABASE_URL": database_url, "HUB_POLICY_DIR": str(policies)}


def readyz(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
        answer: dict[str, str] = json.load(response)
        return answer


def wait_for(check: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the hub did not get there in time")


@pytest.fixture
def server(environment: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: readyz(port)["status"] == "ready")
        yield process, port, Path(environment["HUB_POLICY_DIR"])
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_sighup_reloads_sound_policies_and_keeps_serving_on_unsound_ones(
    server: tuple[subprocess.Popen[str], int, Path],
) -> None:
    process, port, policies = server
    first = readyz(port)["policy_version"]
    with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("p, fire, ecology, inspection-findings, read, allow\n")
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: readyz(port)["policy_version"] != first)
    second = readyz(port)["policy_version"]

    with (policies / "policy.csv").open("a", encoding="utf-8") as policy_csv:
        policy_csv.write("p, fire, mars, inspection-findings, read, allow\n")
    process.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert readyz(port) == {"status": "ready", "revision": "0005", "policy_version": second}
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert f"policy version {second} replaces {first}" in output
    assert "policy reload refused; still serving version " + second in output
    assert "unknown owner 'mars'" in output


def test_serve_refuses_unsound_policies_naming_file_and_line(environment: dict[str, str]) -> None:
    policy_csv = Path(environment["HUB_POLICY_DIR"]) / "policy.csv"
    lines = policy_csv.read_text(encoding="utf-8").splitlines()
    index = lines.index("g, fire, safety-inspectors")
    lines[index] = "g, fyre, safety-inspectors"
    policy_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [HUB, "serve", "--port", str(free_port())],
        env={**environment, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{policy_csv}:{index + 1}: unknown department 'fyre'" in result.stderr
    assert "the hub does not start with unsound policies" in result.stderr
