"""Trusted documents: the GraphQL documents registered for each client, developer
credentials, and the document id in access records.

A document belongs to a client's name (a system that rotates its token keeps its documents)
and is named by the sha256 of its text. Access records gain ``document_id``, hashed only
when set (hub/audit/record.py LATER_COLUMNS), so the records before keep their hashes; it is
added in place (ALTER TABLE), which keeps the access log's triggers.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 17:00:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('trusted_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('operations', sa.String(length=2000), nullable=False),
    sa.Column('registered_by', sa.String(length=200), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_by', sa.String(length=200), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trusted_document')),
    sa.UniqueConstraint('client', 'sha256', name='uq_trusted_document_client_sha256')
    )
    op.add_column('client', sa.Column('developer', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.add_column('access_record', sa.Column('document_id', sa.String(length=71), nullable=True))
    op.create_index('ix_access_record_client_document', 'access_record',
                    ['client', 'document_id'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_access_record_client_document', table_name='access_record')
    op.execute("ALTER TABLE access_record DROP COLUMN document_id")
    op.execute("ALTER TABLE client DROP COLUMN developer")
    op.drop_table('trusted_document')
