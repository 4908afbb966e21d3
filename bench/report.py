"""bench/RESULTS.md: bench.run writes its head; other benchmarks each own a "## " section."""

from __future__ import annotations

from pathlib import Path

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
