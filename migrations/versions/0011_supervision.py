"""Supervision: three-colour codes kept on each enterprise with their history, and the
warnings of inspections past what a period bears.

Colours start null: `hub serve` computes them at start (and `hub demo load` for its data).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 13:30:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLOURS = ('green', 'yellow', 'black')


def _colour(name: str) -> sa.Enum:
    return sa.Enum(*COLOURS, name=name, native_enum=False, create_constraint=True, length=6)


def upgrade() -> None:
    """Upgrade schema."""
    # Columns added (and dropped) in place, never by a batch: on SQLite a batch copies the
    # table, and dropping the old enterprise table fails while records refer to it. SQLite
    # can neither add a named CHECK to a table nor drop a column a CHECK names, so there the
    # colour's values are the hub's to keep (it writes them from an enumeration).
    op.add_column('enterprise', sa.Column('colour', sa.String(length=6), nullable=True))
    if op.get_bind().dialect.name != 'sqlite':
        op.create_check_constraint(op.f('ck_enterprise_colour'), 'enterprise',
                                   "colour IN ('green', 'yellow', 'black')")
    op.add_column('enterprise', sa.Column('colour_since', sa.Date(), nullable=True))
    op.add_column('enterprise', sa.Column('colour_reasons', sa.Text(), nullable=True))
    op.add_column('enterprise', sa.Column('colour_review_on', sa.Date(), nullable=True))
    op.add_column('enterprise', sa.Column('colour_rules', sa.String(length=16), nullable=True))
    op.create_index(op.f('ix_enterprise_colour'), 'enterprise', ['colour'], unique=False)
    op.create_index(op.f('ix_enterprise_colour_review_on'), 'enterprise', ['colour_review_on'],
                    unique=False)
    op.create_table(
        'colour_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('colour', _colour('colour'), nullable=False),
        sa.Column('previous', _colour('previous'), nullable=True),
        sa.Column('since', sa.Date(), nullable=False),
        sa.Column('reasons', sa.Text(), nullable=False),
        sa.Column('rules', sa.String(length=16), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'],
                                name=op.f('fk_colour_change_enterprise_id_enterprise')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_colour_change')),
    )
    op.create_index('ix_colour_change_enterprise', 'colour_change', ['enterprise_id', 'id'])
    op.create_table(
        'inspection_warning',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('inspection_id', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=32), nullable=False),
        sa.Column('verdict', sa.String(length=8), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('limit', sa.Integer(), nullable=False),
        sa.Column('warn_at', sa.Integer(), nullable=False),
        sa.Column('period_from', sa.Date(), nullable=False),
        sa.Column('period_until', sa.Date(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'],
                                name=op.f('fk_inspection_warning_enterprise_id_enterprise')),
        sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'],
                                name=op.f('fk_inspection_warning_inspection_id_inspection')),
        sa.ForeignKeyConstraint(['owner'], ['department.code'],
                                name=op.f('fk_inspection_warning_owner_department')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_warning')),
    )
    op.create_index(op.f('ix_inspection_warning_enterprise_id'), 'inspection_warning',
                    ['enterprise_id'])
    op.create_index(op.f('ix_inspection_warning_inspection_id'), 'inspection_warning',
                    ['inspection_id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_inspection_warning_inspection_id'), table_name='inspection_warning')
    op.drop_index(op.f('ix_inspection_warning_enterprise_id'), table_name='inspection_warning')
    op.drop_table('inspection_warning')
    op.drop_index('ix_colour_change_enterprise', table_name='colour_change')
    op.drop_table('colour_change')
    op.drop_index(op.f('ix_enterprise_colour_review_on'), table_name='enterprise')
    op.drop_index(op.f('ix_enterprise_colour'), table_name='enterprise')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('ck_enterprise_colour'), 'enterprise', type_='check')
    for column in ('colour_rules', 'colour_review_on', 'colour_reasons', 'colour_since',
                   'colour'):
        op.drop_column('enterprise', column)
