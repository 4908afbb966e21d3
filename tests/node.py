"""The reference JavaScript clients of tests/conformance, installed from the npm registry.

The GraphQL over HTTP audit and the graphql-ws client are the specifications' own
implementations, so they run in Node.js (from the machine) against the served hub. Without
Node.js and npm those tests are skipped with a reason; `.ci/run` sets HUB_TEST_NODE=1,
which makes their absence a failure instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = Path(__file__).parent / "conformance"
NODE, NPM = shutil.which("node"), shutil.which("npm")


def node_packages() -> Path:
    """The folder of tests/conformance with its packages installed (``npm ci``, once: the
    lock file pins them), for ``node`` to run its scripts in."""
    if not (NODE and NPM):
        if os.environ.get("HUB_TEST_NODE") == "1":
            pytest.fail("HUB_TEST_NODE=1 but node or npm is not on PATH: install Node.js 20+")
        pytest.skip("Node.js and npm are not installed: the reference clients need them")
    installed = PACKAGES / "node_modules" / ".package-lock.json"
    lock = PACKAGES / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PACKAGES, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"npm ci in {PACKAGES} failed:\n{done.stderr}"
    return PACKAGES


def node(script: str, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``node script arguments`` in tests/conformance; its output as text."""
    folder = node_packages()
    assert NODE is not None
    return subprocess.run(
        [NODE, script, *arguments], cwd=folder, capture_output=True, text=True, timeout=timeout
    )


def started(script: str, *arguments: str, token: str) -> subprocess.Popen[str]:
    """``node script arguments`` in tests/conformance, running beside the test (a subscriber
    that waits for an event); its output as text once it ends. ``token`` goes in its
    environment as HUB_TOKEN: a command line is readable by every user of the machine."""
    folder = node_packages()
    assert NODE is not None
    return subprocess.Popen(
        [NODE, script, *arguments], cwd=folder, text=True,
        env={**os.environ, "HUB_TOKEN": token},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
