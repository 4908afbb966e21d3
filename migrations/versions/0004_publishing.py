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
    # Adding a column does not touch the append-only triggers (they refuse UPDATE/DELETE).
    op.add_column('access_record', sa.Column('written', sa.Text(), nullable=True))


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
