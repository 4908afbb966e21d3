"""Enterprise lookups in the access log by index: on PostgreSQL, a GIN index on the words of
``access_record.enterprises`` (hub/audit/search.py, ``mentions``). SQLite, the embedded
database, keeps scanning that text.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 17:10:00.000000

"""
from collections.abc import Sequence

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_access_record_enterprise_words"


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {INDEX} ON access_record "
            "USING gin (string_to_array(btrim(enterprises), ' '))"
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {INDEX}")
