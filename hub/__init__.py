"""hub: one GraphQL schema over departments' shared enterprise records."""

__version__ = "0.1.0"
