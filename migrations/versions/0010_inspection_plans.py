"""Inspection plans (检查计划): what each department plans to inspect, by enterprise and
month, so that departments planning the same enterprise in the same month inspect it
together (综合查一次).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 13:30:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('inspection_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.Enum('routine', 'random', 'joint', 'campaign', name='kind', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('status', sa.Enum('planned', 'done', 'cancelled', name='status', native_enum=False, create_constraint=True, length=9), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('retracted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("month LIKE '____-__'", name=op.f('ck_inspection_plan_month_form')),
    sa.CheckConstraint("inspection_id IS NULL OR status = 'done'", name=op.f('ck_inspection_plan_done_by_inspection')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_inspection_plan_enterprise_id_enterprise')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], name=op.f('fk_inspection_plan_inspection_id_inspection')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_inspection_plan_owner_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_plan')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_inspection_plan_owner_source_id'))
    )
    op.create_index('ix_inspection_plan_enterprise_month', 'inspection_plan', ['enterprise_id', 'month'], unique=False)
    op.create_index(op.f('ix_inspection_plan_inspection_id'), 'inspection_plan', ['inspection_id'], unique=False)
    op.create_index(op.f('ix_inspection_plan_owner'), 'inspection_plan', ['owner'], unique=False)
    op.create_index('ix_inspection_plan_owner_month', 'inspection_plan', ['owner', 'month'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    # Their versions in the change feed go with them: the feed names no record that is gone.
    op.execute("DELETE FROM record_version WHERE kind = 'InspectionPlan'")
    op.drop_index('ix_inspection_plan_owner_month', table_name='inspection_plan')
    op.drop_index(op.f('ix_inspection_plan_owner'), table_name='inspection_plan')
    op.drop_index(op.f('ix_inspection_plan_inspection_id'), table_name='inspection_plan')
    op.drop_index('ix_inspection_plan_enterprise_month', table_name='inspection_plan')
    op.drop_table('inspection_plan')
