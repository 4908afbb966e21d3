"""Administrative-action codes (行政行为码) are registered: one inspection per code.

The plain index on ``inspection.action_code`` becomes a unique one. A database whose
inspections already share codes is not migrated: the migration names each shared code with
the inspections holding it (owner, sourceId) and says how to fix them, and changes nothing
(the duplicates are read first, under a lock on PostgreSQL, before any index is touched;
SQLite's transaction would refuse the index change had anyone written since).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 15:00:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

from hub.db import MigrationRefused


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = 'ix_inspection_action_code'
SHOWN = 10  # shared codes named in the message; the query in it lists them all

DUPLICATES = sa.text(
    "SELECT action_code, owner, source_id, retracted FROM inspection WHERE action_code IN "
    "(SELECT action_code FROM inspection GROUP BY action_code HAVING count(*) > 1) "
    "ORDER BY action_code, owner, source_id"
)


def refusal(rows: Sequence[sa.Row[tuple[str, str, str, bool]]]) -> str:
    """What is in the way of unique codes, and what to do about it."""
    holders: dict[str, list[str]] = {}
    for code, owner, source_id, retracted in rows:
        held = f"{owner} {source_id}" + (" (retracted)" if retracted else "")
        holders.setdefault(code, []).append(held)
    named = "; ".join(
        f"{code!r} is held by {', '.join(held)}" for code, held in list(holders.items())[:SHOWN]
    )
    more = f"; and {len(holders) - SHOWN} more codes" if len(holders) > SHOWN else ""
    return (
        f"administrative-action codes must become unique (revision {revision}), but "
        f"{len(holders)} {'code is' if len(holders) == 1 else 'codes are'} registered to more "
        f"than one inspection: {named}{more}. A code stands for one inspection (亮码检查), "
        "retracted ones too. Give all but one inspection of each code a code of its own "
        "(republish them with a new actionCode with the release you run now, or correct "
        "inspection.action_code in the database: SELECT owner, source_id, action_code FROM "
        "inspection WHERE action_code IN (SELECT action_code FROM inspection GROUP BY "
        "action_code HAVING count(*) > 1) lists them all), then run `hub db upgrade` again. "
        f"Nothing was changed: the database is still at revision {down_revision}."
    )


def upgrade() -> None:
    """Upgrade schema."""
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        # Publishers wait until the index is in place: no duplicate slips in after the check.
        op.execute('LOCK TABLE inspection IN SHARE MODE')
    duplicates = bind.execute(DUPLICATES).all()
    if duplicates:
        raise MigrationRefused(refusal(duplicates))
    op.drop_index(INDEX, table_name='inspection')
    op.create_index(INDEX, 'inspection', ['action_code'], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(INDEX, table_name='inspection')
    op.create_index(INDEX, 'inspection', ['action_code'], unique=False)
