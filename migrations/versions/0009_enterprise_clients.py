"""Enterprise clients: an enterprise's own credential names its enterprise (USCC).

A client of role ``enterprise`` reads its own dossier and who read it (hub/schema/roots.py);
its row names the enterprise, and only its row does (a check constraint). The role's own
check constraint learns the new value.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 10:00:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ('department', 'auditor', 'admin')
AFTER = (*BEFORE, 'enterprise')
ENTERPRISE_ROLE = (
    "(role = 'enterprise' AND enterprise IS NOT NULL) "
    "OR (role <> 'enterprise' AND enterprise IS NULL)"
)


def _role(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='role', native_enum=False, create_constraint=True,
                   length=10)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('client') as batch:
        batch.add_column(sa.Column('enterprise', sa.String(length=18), nullable=True))
        batch.create_foreign_key(
            op.f('fk_client_enterprise_enterprise'), 'enterprise', ['enterprise'], ['uscc'],
        )
        batch.alter_column('role', existing_type=_role(BEFORE), type_=_role(AFTER),
                           existing_nullable=False)
        batch.create_check_constraint(op.f('ck_client_enterprise_role'), ENTERPRISE_ROLE)


def downgrade() -> None:
    """Downgrade schema: enterprise clients cannot be kept (their role goes), so they go."""
    op.execute("DELETE FROM client WHERE role = 'enterprise'")
    with op.batch_alter_table('client') as batch:
        batch.drop_constraint(op.f('ck_client_enterprise_role'), type_='check')
        batch.alter_column('role', existing_type=_role(AFTER), type_=_role(BEFORE),
                           existing_nullable=False)
        batch.drop_constraint(op.f('fk_client_enterprise_enterprise'), type_='foreignkey')
        batch.drop_column('enterprise')
