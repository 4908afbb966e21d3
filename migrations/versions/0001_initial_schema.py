"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:30:49.921329

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    department = op.create_table('department',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_department'))
    )
    # The departments of the integrated law-enforcement reform; policies refer to these codes.
    op.bulk_insert(department, [
        {'code': 'market', 'name_zh': '市场监督管理局', 'name_en': 'Market Regulation'},
        {'code': 'ecology', 'name_zh': '生态环境局', 'name_en': 'Ecology and Environment'},
        {'code': 'emergency', 'name_zh': '应急管理局', 'name_en': 'Emergency Management'},
        {'code': 'enforcement', 'name_zh': '综合行政执法局', 'name_en': 'Comprehensive Law Enforcement'},
        {'code': 'fire', 'name_zh': '消防救援大队', 'name_en': 'Fire and Rescue'},
        {'code': 'planning', 'name_zh': '自然资源和规划局', 'name_en': 'Natural Resources and Planning'},
        {'code': 'transport', 'name_zh': '交通运输局', 'name_en': 'Transport'},
        {'code': 'health', 'name_zh': '卫生健康局', 'name_en': 'Health'},
        {'code': 'agriculture', 'name_zh': '农业农村局', 'name_en': 'Agriculture and Rural Affairs'},
        {'code': 'culture', 'name_zh': '文化广电旅游局', 'name_en': 'Culture and Tourism'},
    ])
    op.create_table('enterprise',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('legal_representative', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('industry', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('town', sa.String(length=64), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', 'revoked', 'deregistered', name='status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_enterprise_owner_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enterprise')),
    sa.UniqueConstraint('uscc', name=op.f('uq_enterprise_uscc'))
    )
    op.create_index(op.f('ix_enterprise_industry'), 'enterprise', ['industry'], unique=False)
    op.create_index(op.f('ix_enterprise_region'), 'enterprise', ['region'], unique=False)
    op.create_table('credit_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('rating', 'bad_record', 'commendation', name='kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('active', 'repaired', 'expired', 'revoked', name='status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('expires_on IS NULL OR expires_on >= issued_on', name=op.f('ck_credit_record_expiry_order')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_credit_record_enterprise_id_enterprise')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_credit_record_owner_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_record')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_credit_record_owner_source_id'))
    )
    op.create_index('ix_credit_record_enterprise_issued', 'credit_record', ['enterprise_id', 'issued_on'], unique=False)
    op.create_index(op.f('ix_credit_record_owner'), 'credit_record', ['owner'], unique=False)
    op.create_table('inspection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('action_code', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.Enum('routine', 'random', 'joint', 'campaign', name='kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('inspected_on', sa.Date(), nullable=False),
    sa.Column('result', sa.Enum('no_problem', 'problems_found', 'not_operating', name='result', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_inspection_enterprise_id_enterprise')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_inspection_owner_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_inspection_owner_source_id'))
    )
    op.create_index(op.f('ix_inspection_action_code'), 'inspection', ['action_code'], unique=False)
    op.create_index('ix_inspection_enterprise_inspected', 'inspection', ['enterprise_id', 'inspected_on'], unique=False)
    op.create_index(op.f('ix_inspection_owner'), 'inspection', ['owner'], unique=False)
    op.create_table('credit_repair',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('credit_record_id', sa.Integer(), nullable=False),
    sa.Column('applied_on', sa.Date(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('opinion', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('decided_on IS NULL OR decided_on >= applied_on', name=op.f('ck_credit_repair_decision_order')),
    sa.ForeignKeyConstraint(['credit_record_id'], ['credit_record.id'], name=op.f('fk_credit_repair_credit_record_id_credit_record')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_credit_repair_owner_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_repair')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_credit_repair_owner_source_id'))
    )
    op.create_index(op.f('ix_credit_repair_credit_record_id'), 'credit_repair', ['credit_record_id'], unique=False)
    op.create_index(op.f('ix_credit_repair_owner'), 'credit_repair', ['owner'], unique=False)
    op.create_table('inspection_finding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], name=op.f('fk_inspection_finding_inspection_id_inspection')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_finding'))
    )
    op.create_index(op.f('ix_inspection_finding_inspection_id'), 'inspection_finding', ['inspection_id'], unique=False)
    op.create_table('inspection_participant',
    sa.Column('inspection_id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['department'], ['department.code'], name=op.f('fk_inspection_participant_department_department')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], name=op.f('fk_inspection_participant_inspection_id_inspection')),
    sa.PrimaryKeyConstraint('inspection_id', 'department', name=op.f('pk_inspection_participant'))
    )
    op.create_table('penalty',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=True),
    sa.Column('case_number', sa.String(length=64), nullable=False),
    sa.Column('violation', sa.Text(), nullable=False),
    sa.Column('legal_basis', sa.Text(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('decided', 'paid', 'enforced', 'under_review', 'revoked', name='status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('minor_first_offence_exempt', sa.Boolean(), nullable=False),
    sa.Column('decision_issued', sa.Boolean(), nullable=False),
    sa.Column('compliance_suggestion_issued', sa.Boolean(), nullable=False),
    sa.Column('credit_repair_notice_issued', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_penalty_amount_not_negative')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_penalty_enterprise_id_enterprise')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], name=op.f('fk_penalty_inspection_id_inspection')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_penalty_owner_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_penalty')),
    sa.UniqueConstraint('owner', 'case_number', name=op.f('uq_penalty_owner_case_number')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_penalty_owner_source_id'))
    )
    op.create_index('ix_penalty_enterprise_decided', 'penalty', ['enterprise_id', 'decided_on'], unique=False)
    op.create_index(op.f('ix_penalty_inspection_id'), 'penalty', ['inspection_id'], unique=False)
    op.create_index(op.f('ix_penalty_owner'), 'penalty', ['owner'], unique=False)
    op.create_table('rectification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=True),
    sa.Column('penalty_id', sa.Integer(), nullable=True),
    sa.Column('requirement', sa.Text(), nullable=False),
    sa.Column('ordered_on', sa.Date(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('in_progress', 'submitted', 'accepted', 'failed', 'overdue', name='status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('deadline >= ordered_on', name=op.f('ck_rectification_deadline_order')),
    sa.CheckConstraint('inspection_id IS NOT NULL OR penalty_id IS NOT NULL', name=op.f('ck_rectification_has_origin')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_rectification_enterprise_id_enterprise')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], name=op.f('fk_rectification_inspection_id_inspection')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_rectification_owner_department')),
    sa.ForeignKeyConstraint(['penalty_id'], ['penalty.id'], name=op.f('fk_rectification_penalty_id_penalty')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rectification')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_rectification_owner_source_id'))
    )
    op.create_index('ix_rectification_enterprise_ordered', 'rectification', ['enterprise_id', 'ordered_on'], unique=False)
    op.create_index(op.f('ix_rectification_inspection_id'), 'rectification', ['inspection_id'], unique=False)
    op.create_index(op.f('ix_rectification_owner'), 'rectification', ['owner'], unique=False)
    op.create_index(op.f('ix_rectification_penalty_id'), 'rectification', ['penalty_id'], unique=False)
    op.create_table('acceptance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('rectification_id', sa.Integer(), nullable=False),
    sa.Column('accepted_on', sa.Date(), nullable=False),
    sa.Column('verdict', sa.Enum('passed', 'failed', name='verdict', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('opinion', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_acceptance_owner_department')),
    sa.ForeignKeyConstraint(['rectification_id'], ['rectification.id'], name=op.f('fk_acceptance_rectification_id_rectification')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acceptance')),
    sa.UniqueConstraint('owner', 'source_id', name=op.f('uq_acceptance_owner_source_id')),
    sa.UniqueConstraint('rectification_id', name=op.f('uq_acceptance_rectification_id'))
    )
    op.create_index(op.f('ix_acceptance_owner'), 'acceptance', ['owner'], unique=False)
    op.create_table('rectification_assistant',
    sa.Column('rectification_id', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['department'], ['department.code'], name=op.f('fk_rectification_assistant_department_department')),
    sa.ForeignKeyConstraint(['rectification_id'], ['rectification.id'], name=op.f('fk_rectification_assistant_rectification_id_rectification')),
    sa.PrimaryKeyConstraint('rectification_id', 'department', name=op.f('pk_rectification_assistant'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('rectification_assistant')
    op.drop_index(op.f('ix_acceptance_owner'), table_name='acceptance')
    op.drop_table('acceptance')
    op.drop_index(op.f('ix_rectification_penalty_id'), table_name='rectification')
    op.drop_index(op.f('ix_rectification_owner'), table_name='rectification')
    op.drop_index(op.f('ix_rectification_inspection_id'), table_name='rectification')
    op.drop_index('ix_rectification_enterprise_ordered', table_name='rectification')
    op.drop_table('rectification')
    op.drop_index(op.f('ix_penalty_owner'), table_name='penalty')
    op.drop_index(op.f('ix_penalty_inspection_id'), table_name='penalty')
    op.drop_index('ix_penalty_enterprise_decided', table_name='penalty')
    op.drop_table('penalty')
    op.drop_table('inspection_participant')
    op.drop_index(op.f('ix_inspection_finding_inspection_id'), table_name='inspection_finding')
    op.drop_table('inspection_finding')
    op.drop_index(op.f('ix_credit_repair_owner'), table_name='credit_repair')
    op.drop_index(op.f('ix_credit_repair_credit_record_id'), table_name='credit_repair')
    op.drop_table('credit_repair')
    op.drop_index(op.f('ix_inspection_owner'), table_name='inspection')
    op.drop_index('ix_inspection_enterprise_inspected', table_name='inspection')
    op.drop_index(op.f('ix_inspection_action_code'), table_name='inspection')
    op.drop_table('inspection')
    op.drop_index(op.f('ix_credit_record_owner'), table_name='credit_record')
    op.drop_index('ix_credit_record_enterprise_issued', table_name='credit_record')
    op.drop_table('credit_record')
    op.drop_index(op.f('ix_enterprise_region'), table_name='enterprise')
    op.drop_index(op.f('ix_enterprise_industry'), table_name='enterprise')
    op.drop_table('enterprise')
    op.drop_table('department')
