"""The `hub` command: serve, migrate, demo data, clients, policies, the access log, schema."""

from hub.cli import access, audit, documents, publish, setup, share
from hub.cli.common import app, explain_setup_mistakes

__all__ = ["app", "main"]

# The command modules register themselves on `app` when imported.
del access, audit, documents, publish, setup, share


def main() -> None:
    explain_setup_mistakes(app)
