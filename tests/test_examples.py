"""The files in examples/ work as the README says: `hub serve --demo` as a first user starts
it, fire rescue imports the sample NDJSON and CSV with the installed `hub import`, and the
sample gql client, run as emergency management (which assists the order fire rescue issues),
reads the canonical dossier and then sees that order arrive in its live change feed."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.test_serve import HUB, free_port, readyz, wait_for

EXAMPLES = Path(__file__).parent.parent / "examples"
CANONICAL = "9133010985H96UB001"


def test_the_sample_files_import_and_the_sample_client_follows_the_feed(tmp_path: Path) -> None:
    environment = {**os.environ, "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db"}
    port = free_port()
    server = subprocess.Popen([HUB, "serve", "--demo", "--port", str(port)], cwd=tmp_path,
                              env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    client = None
    try:
        wait_for(lambda: readyz(port)["status"] == "ready", seconds=60)
        tokens = dict(
            line.split()
            for line in (tmp_path / "var" / "demo-tokens.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
        client = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "client.py"), CANONICAL, "--once"],
            env={**environment, "HUB_URL": f"ws://127.0.0.1:{port}/graphql",
                 "HUB_TOKEN": tokens["emergency"]},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert client.stdout is not None
        read: list[str] = []
        deadline = time.monotonic() + 60
        while not read or read[-1].strip() != "waiting for changes...":
            assert time.monotonic() < deadline, "".join(read)
            assert client.poll() is None, "".join(read)
            read.append(client.stdout.readline())
        assert read[0].strip() == "杭州恒华化工有限公司", read

        for name, kind in (("inspections.ndjson", "inspections"),
                           ("rectifications.csv", "rectifications")):  # fmt: skip
            imported = subprocess.run(
                [HUB, "import", str(EXAMPLES / name), "--department", "fire", "--kind", kind],
                cwd=tmp_path, env={**environment, "COLUMNS": "200"}, capture_output=True,
                text=True, timeout=120, check=False,
            )  # fmt: skip
            # Exit status 0: every line was published (1 would mean some were rejected).
            assert imported.returncode == 0, imported.stdout + imported.stderr

        output, _ = client.communicate(timeout=60)
        assert client.returncode == 0, output
        assert f"CREATED RECTIFICATION FIRE-EX-RECT-1 of {CANONICAL} by fire" in output, output
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        server.terminate()
        server.wait(timeout=10)
