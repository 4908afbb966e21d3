"""Publishing: record versions (the change feed), the feed head, notifications, and the
writes of each request in the access log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:30:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_TABLES = (
    "credit_record", "credit_repair", "inspection", "penalty", "rectification", "acceptance"
)


def upgrade() -> None:
    """Upgrade schema."""
    for table in RECORD_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
            batch.add_column(
                sa.Column('retracted', sa.Boolean(), server_default=sa.false(), nullable=False)
            )
    op.create_table('record_version',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('changed', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('publisher', sa.String(length=32), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_record_version_owner_department')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_record_version')),
    sa.UniqueConstraint('kind', 'record_id', 'version', name=op.f('uq_record_version_kind_record_id_version'))
    )
    op.create_index('ix_record_version_owner_kind', 'record_version', ['owner', 'kind', 'seq'], unique=False)
    op.create_index(op.f('ix_record_version_uscc'), 'record_version', ['uscc'], unique=False)
    feed_head = op.create_table('feed_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_head'))
    )
    op.bulk_insert(feed_head, [{"id": 1, "seq": 0}])
    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department'], ['department.code'], name=op.f('fk_notification_department_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    op.create_index('ix_notification_department_id', 'notification', ['department', 'id'], unique=False)
    backfill_first_versions(feed_head)
    # Adding a column does not touch the append-only triggers (they refuse UPDATE/DELETE).
    op.add_column('access_record', sa.Column('written', sa.Text(), nullable=True))


CHUNK = 1000  # enterprises at a time
OWNED_BY_ENTERPRISE = ("inspection", "penalty", "rectification", "credit_record")
BELOW = {  # table: (the record table it hangs from, its link column)
    "inspection_participant": ("inspection", "inspection_id"),
    "inspection_finding": ("inspection", "inspection_id"),
    "rectification_assistant": ("rectification", "rectification_id"),
    "acceptance": ("rectification", "rectification_id"),
    "credit_repair": ("credit_record", "credit_record_id"),
}
RECORD_VERSION = sa.table(
    "record_version",
    *(sa.column(name) for name in (
        "seq", "kind", "record_id", "owner", "source_id", "uscc", "version", "change", "data",
        "changed", "reason", "publisher", "client", "trace_id",
    )),
    sa.column("published_at", sa.DateTime(timezone=True)),
)


def backfill_first_versions(feed_head: sa.Table) -> None:
    """Records stored before publishing existed get their version 1, as if published then,
    so republishing them unchanged changes nothing and the feed starts with them."""
    # The published form of this release; a later release that changes it freezes a copy here.
    from hub.records import first_versions

    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT max(id) FROM enterprise")).scalar() or 0
    seq = 0
    for start in range(1, last + 1, CHUNK):
        span = {"first": start, "last": start + CHUNK - 1}
        within = "enterprise_id BETWEEN :first AND :last"
        rows = {"enterprise": bind.execute(
            sa.text("SELECT id, uscc FROM enterprise WHERE id BETWEEN :first AND :last"), span
        ).mappings().all()}
        for table in OWNED_BY_ENTERPRISE:
            rows[table] = bind.execute(
                sa.text(f"SELECT * FROM {table} WHERE {within}"), span
            ).mappings().all()
        for table, (parent, link) in BELOW.items():
            rows[table] = bind.execute(sa.text(
                f"SELECT c.* FROM {table} c JOIN {parent} p ON p.id = c.{link} WHERE p.{within}"
            ), span).mappings().all()
        versions = first_versions(rows, seq, "migration 0004 (stored before publishing)")
        if versions:
            op.bulk_insert(RECORD_VERSION, versions)
            seq += len(versions)
    bind.execute(feed_head.update().values(seq=seq))


def downgrade() -> None:
    """Downgrade schema."""
    # Not through batch mode on SQLite: copying the table would drop its append-only triggers.
    op.execute("ALTER TABLE access_record DROP COLUMN written")
    op.drop_index('ix_notification_department_id', table_name='notification')
    op.drop_table('notification')
    op.drop_table('feed_head')
    op.drop_index(op.f('ix_record_version_uscc'), table_name='record_version')
    op.drop_index('ix_record_version_owner_kind', table_name='record_version')
    op.drop_table('record_version')
    for table in reversed(RECORD_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('retracted')
            batch.drop_column('version')
