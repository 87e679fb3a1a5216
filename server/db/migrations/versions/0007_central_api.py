"""Central-compatible API: bearer sessions, form drafts, form assignments, datasets

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

import server.db.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_api_sessions_user_id', 'api_sessions', ['user_id'], unique=False)
    op.create_table('form_assignments',
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['form_id'], ['forms.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('form_id', 'user_id')
    )
    op.create_index('ix_form_assignments_user_id', 'form_assignments', ['user_id'],
                    unique=False)
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('approval_required', sa.Boolean(), nullable=False),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name')
    )
    op.create_table('dataset_properties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'name')
    )
    with op.batch_alter_table('entities') as batch:
        batch.add_column(sa.Column('deleted_at', server.db.models.UTCDateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table('entity_versions') as batch:
        batch.add_column(sa.Column('actor_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_entity_versions_actor', 'users', ['actor_id'], ['id'])
    with op.batch_alter_table('forms') as batch:
        batch.add_column(sa.Column('draft_version_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_forms_draft_version', 'form_versions',
                                 ['draft_version_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('forms') as batch:
        batch.drop_constraint('fk_forms_draft_version', type_='foreignkey')
        batch.drop_column('draft_version_id')
    with op.batch_alter_table('entity_versions') as batch:
        batch.drop_constraint('fk_entity_versions_actor', type_='foreignkey')
        batch.drop_column('actor_id')
    with op.batch_alter_table('entities') as batch:
        batch.drop_column('deleted_at')
    op.drop_table('dataset_properties')
    op.drop_table('datasets')
    op.drop_index('ix_form_assignments_user_id', table_name='form_assignments')
    op.drop_table('form_assignments')
    op.drop_index('ix_api_sessions_user_id', table_name='api_sessions')
    op.drop_table('api_sessions')
