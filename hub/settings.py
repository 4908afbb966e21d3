"""Settings: read from the environment once, into one frozen object that is passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/hub.db"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # Larger request bodies are refused before they are parsed.
    max_request_bytes: int = 1_000_000
    # GraphiQL for developers at GET /graphql; deployments may switch it off.
    graphiql: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read ``HUB_*`` variables; anything unset keeps its default."""
        defaults = cls()
        max_request_bytes = environ.get("HUB_MAX_REQUEST_BYTES", str(defaults.max_request_bytes))
        if not max_request_bytes.isdigit():
            raise ValueError(
                f"HUB_MAX_REQUEST_BYTES must be a whole number of bytes, not {max_request_bytes!r}"
            )
        return cls(
            database_url=environ.get("HUB_DATABASE_URL", defaults.database_url),
            max_request_bytes=int(max_request_bytes),
            graphiql=environ.get("HUB_GRAPHIQL", "1").lower() not in {"0", "false", "no", "off"},
        )

    def sqlite_path(self) -> Path | None:
        """The file of an SQLite database URL (None for other databases or in-memory)."""
        prefix = "sqlite+aiosqlite:///"
        path = self.database_url.removeprefix(prefix)
        if path == self.database_url or path in {"", ":memory:"}:
            return None
        return Path(path)
