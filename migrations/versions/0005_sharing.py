"""Conditional sharing: share requests, grants and the grant version.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:20:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('share_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('purpose_detail', sa.Text(), nullable=False),
    sa.Column('legal_basis', sa.Text(), nullable=False),
    sa.Column('regions', sa.Text(), nullable=False),
    sa.Column('usccs', sa.Text(), nullable=False),
    sa.Column('wanted_from', sa.Date(), nullable=False),
    sa.Column('wanted_until', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('filed_by', sa.String(length=200), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint('wanted_until >= wanted_from', name=op.f('ck_share_request_period_order')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_share_request_owner_department')),
    sa.ForeignKeyConstraint(['requester'], ['department.code'], name=op.f('fk_share_request_requester_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_request'))
    )
    op.create_index('ix_share_request_owner_status', 'share_request', ['owner', 'status'], unique=False)
    op.create_index('ix_share_request_requester_status', 'share_request', ['requester', 'status'], unique=False)
    op.create_table('share_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('requester', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=False),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('regions', sa.Text(), nullable=False),
    sa.Column('usccs', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=200), nullable=True),
    sa.Column('revoke_reason', sa.Text(), nullable=True),
    sa.CheckConstraint('valid_until >= valid_from', name=op.f('ck_share_grant_period_order')),
    sa.ForeignKeyConstraint(['owner'], ['department.code'], name=op.f('fk_share_grant_owner_department')),
    sa.ForeignKeyConstraint(['request_id'], ['share_request.id'], name=op.f('fk_share_grant_request_id_share_request')),
    sa.ForeignKeyConstraint(['requester'], ['department.code'], name=op.f('fk_share_grant_requester_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_grant')),
    sa.UniqueConstraint('request_id', name=op.f('uq_share_grant_request_id'))
    )
    op.create_index('ix_share_grant_requester_owner', 'share_grant', ['requester', 'owner'], unique=False)
    grant_head = op.create_table('grant_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_head'))
    )
    op.bulk_insert(grant_head, [{"id": 1, "version": 0}])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('grant_head')
    op.drop_index('ix_share_grant_requester_owner', table_name='share_grant')
    op.drop_table('share_grant')
    op.drop_index('ix_share_request_requester_status', table_name='share_request')
    op.drop_index('ix_share_request_owner_status', table_name='share_request')
    op.drop_table('share_request')
