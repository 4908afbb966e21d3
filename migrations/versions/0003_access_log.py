"""The access log: hash-chained records of every request, which the database will not let
anyone update or delete.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:12:23.706199

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


APPEND_ONLY = "the access log is append-only: records cannot be changed or deleted"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('access_record',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('recorded_at', sa.String(length=32), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=True),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('operation_name', sa.String(length=200), nullable=True),
    sa.Column('operation_type', sa.String(length=16), nullable=True),
    sa.Column('document_hash', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=True),
    sa.Column('case_ref', sa.String(length=500), nullable=True),
    sa.Column('remote_address', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('enterprises', sa.Text(), nullable=False),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('served', sa.Text(), nullable=False),
    sa.Column('denied', sa.Text(), nullable=False),
    sa.Column('policy_version', sa.String(length=16), nullable=True),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('duration_us', sa.BigInteger(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_access_record')),
    sa.UniqueConstraint('hash', name=op.f('uq_access_record_hash'))
    )
    op.create_index(op.f('ix_access_record_recorded_at'), 'access_record', ['recorded_at'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION access_record_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY}';
            END $$""")
        op.execute("""
            CREATE TRIGGER access_record_append_only BEFORE UPDATE OR DELETE ON access_record
            FOR EACH ROW EXECUTE FUNCTION access_record_append_only()""")
        op.execute("""
            CREATE TRIGGER access_record_no_truncate BEFORE TRUNCATE ON access_record
            FOR EACH STATEMENT EXECUTE FUNCTION access_record_append_only()""")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER access_record_no_{event.lower()} BEFORE {event} ON access_record
                BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER access_record_no_truncate ON access_record")
        op.execute("DROP TRIGGER access_record_append_only ON access_record")
        op.execute("DROP FUNCTION access_record_append_only()")
    else:
        op.execute("DROP TRIGGER access_record_no_update")
        op.execute("DROP TRIGGER access_record_no_delete")
    op.drop_index(op.f('ix_access_record_recorded_at'), table_name='access_record')
    op.drop_table('access_record')
