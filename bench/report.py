"""bench/RESULTS.md: bench.run writes its head; other benchmarks each own a "## " section."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(section: str, path: Path = RESULTS) -> None:
    """Put ``section`` (starting with its "## " heading) in place of the one there with the
    same heading, or after everything else."""
    heading = section.split("\n", 1)[0]
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    before, found, after = current.partition(heading + "\n")
    rest = after[after.index("\n## ") :] if found and "\n## " in after else ""
    path.write_text(
        before.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n" + rest, encoding="utf-8"
    )


def measure_and_report(
    description: str | None,
    timing: Callable[[Path, int], Coroutine[Any, Any, dict[str, float]]],
    section: Callable[[dict[str, float], int], str],
    rounds: int,
) -> None:
    """A benchmark's command line: ``--rounds`` of ``timing`` in a scratch folder, its
    ``section`` printed, and with ``--write`` put in bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        medians = uvloop.run(timing(Path(scratch), arguments.rounds))
    text = section(medians, arguments.rounds)
    print(text)
    if arguments.write:
        write_section(text)
