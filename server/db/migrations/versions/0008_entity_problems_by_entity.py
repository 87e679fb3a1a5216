"""entity problems found by entity: matching looks one up at ingest

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_entity_problems_entity_id'), 'entity_problems', ['entity_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_entity_problems_entity_id'), table_name='entity_problems')
