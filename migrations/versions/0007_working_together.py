"""Working together: requirement codes on rectification orders, conflicts between orders,
case transfers, and exempted first offences as a penalty status of their own.

Exempted first offences (首违不罚) were stored as ``decided``: they become ``exempt``, each
with a new version in the change feed saying so, so every reader's copy follows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 19:40:00.000000

"""
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ('decided', 'paid', 'enforced', 'under_review', 'revoked')
AFTER = (*BEFORE, 'exempt')


def _status(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='status', native_enum=False, create_constraint=True,
                   length=12)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('rectification') as batch:
        batch.add_column(
            sa.Column('requirement_codes', sa.Text(), server_default='', nullable=False)
        )
    with op.batch_alter_table('penalty') as batch:
        batch.add_column(sa.Column('transferred_to', sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            op.f('fk_penalty_transferred_to_department'), 'department', ['transferred_to'],
            ['code'],
        )
        batch.alter_column('status', existing_type=_status(BEFORE), type_=_status(AFTER),
                           existing_nullable=False)
    op.create_table('conflict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('first_id', sa.Integer(), nullable=False),
    sa.Column('first_owner', sa.String(length=32), nullable=False),
    sa.Column('first_code', sa.String(length=64), nullable=False),
    sa.Column('second_id', sa.Integer(), nullable=False),
    sa.Column('second_owner', sa.String(length=32), nullable=False),
    sa.Column('second_code', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_by', sa.String(length=200), nullable=True),
    sa.Column('settled_department', sa.String(length=32), nullable=True),
    sa.Column('settlement', sa.Text(), nullable=True),
    sa.CheckConstraint('first_id < second_id', name=op.f('ck_conflict_pair_order')),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_conflict_enterprise_id_enterprise')),
    sa.ForeignKeyConstraint(['first_id'], ['rectification.id'], name=op.f('fk_conflict_first_id_rectification')),
    sa.ForeignKeyConstraint(['first_owner'], ['department.code'], name=op.f('fk_conflict_first_owner_department')),
    sa.ForeignKeyConstraint(['second_id'], ['rectification.id'], name=op.f('fk_conflict_second_id_rectification')),
    sa.ForeignKeyConstraint(['second_owner'], ['department.code'], name=op.f('fk_conflict_second_owner_department')),
    sa.ForeignKeyConstraint(['settled_department'], ['department.code'], name=op.f('fk_conflict_settled_department_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conflict')),
    sa.UniqueConstraint('first_id', 'second_id', 'first_code', 'second_code', name=op.f('uq_conflict_first_id_second_id_first_code_second_code'))
    )
    op.create_index('ix_conflict_enterprise_settled', 'conflict', ['enterprise_id', 'settled_at'], unique=False)
    op.create_index(op.f('ix_conflict_first_id'), 'conflict', ['first_id'], unique=False)
    op.create_index(op.f('ix_conflict_second_id'), 'conflict', ['second_id'], unique=False)
    _exempt_first_offences()


def _exempt_first_offences() -> None:
    """Exempted first offences stored as decided become exempt, each with a new version."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT p.id, p.owner, p.source_id, p.version, e.uscc, v.data FROM penalty p "
        "JOIN enterprise e ON e.id = p.enterprise_id "
        "LEFT JOIN record_version v ON v.kind = 'Penalty' AND v.record_id = p.id "
        "AND v.version = p.version "
        "WHERE p.minor_first_offence_exempt AND p.status = 'decided'"
    )).all()
    if not rows:
        return
    seq = bind.execute(sa.text("SELECT seq FROM feed_head WHERE id = 1")).scalar_one()
    now = datetime.now(UTC)
    for row in rows:
        seq += 1
        data = {**json.loads(row.data or '{}'), 'status': 'exempt'}
        bind.execute(
            sa.text("UPDATE penalty SET status = 'exempt', version = :version WHERE id = :id"),
            {'version': row.version + 1, 'id': row.id},
        )
        bind.execute(
            sa.text(
                "INSERT INTO record_version (seq, kind, record_id, owner, source_id, uscc, "
                "version, change, data, changed, reason, published_at, publisher, client) "
                "VALUES (:seq, 'Penalty', :id, :owner, :source_id, :uscc, :version, 'updated', "
                ":data, 'status', :reason, :now, :owner, 'hub migration 0007')"
            ),
            {'seq': seq, 'id': row.id, 'owner': row.owner, 'source_id': row.source_id,
             'uscc': row.uscc, 'version': row.version + 1,
             'data': json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(',', ':')),
             'reason': 'an exempted first offence (首违不罚) is no penalty: status exempt',
             'now': now},
        )
    bind.execute(sa.text("UPDATE feed_head SET seq = :seq WHERE id = 1"), {'seq': seq})


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE penalty SET status = 'decided' WHERE status = 'exempt'")
    op.drop_index(op.f('ix_conflict_second_id'), table_name='conflict')
    op.drop_index(op.f('ix_conflict_first_id'), table_name='conflict')
    op.drop_index('ix_conflict_enterprise_settled', table_name='conflict')
    op.drop_table('conflict')
    with op.batch_alter_table('penalty') as batch:
        batch.alter_column('status', existing_type=_status(AFTER), type_=_status(BEFORE),
                           existing_nullable=False)
        batch.drop_constraint(op.f('fk_penalty_transferred_to_department'), type_='foreignkey')
        batch.drop_column('transferred_to')
    with op.batch_alter_table('rectification') as batch:
        batch.drop_column('requirement_codes')
