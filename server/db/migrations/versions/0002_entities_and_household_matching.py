"""entities and household matching

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text  # noqa: F401  (autogenerate writes JSONB(astext_type=Text()))
from sqlalchemy.dialects import postgresql

import server.db.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('entities',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=100), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('tdp', sa.String(length=20), nullable=True),
    sa.Column('canonical_id', sa.String(length=36), nullable=True),
    sa.Column('erased', sa.Boolean(), nullable=False),
    sa.Column('conflict', sa.String(length=10), nullable=True),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entities_canonical_id'), ['canonical_id'], unique=False)
        batch_op.create_index('ix_entities_list', ['project_id', 'dataset', 'tdp'], unique=False)

    op.create_table('list_revisions',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=100), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('project_id', 'dataset')
    )
    op.create_table('merge_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('canonical_id', sa.String(length=36), nullable=False),
    sa.Column('alias_id', sa.String(length=36), nullable=False),
    sa.Column('rule', sa.String(length=20), nullable=True),
    sa.Column('score', sa.Double(), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('undone_by', sa.Integer(), nullable=True),
    sa.Column('undone_at', server.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['undone_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('merge_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merge_log_project_id'), ['project_id'], unique=False)

    op.create_table('entity_problems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('submission_version_id', sa.Integer(), nullable=True),
    sa.Column('entity_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', server.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['submission_version_id'], ['submission_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('entity_problems', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entity_problems_project_id'), ['project_id'], unique=False)

    op.create_table('entity_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('submission_version_id', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.String(length=255), nullable=True),
    sa.Column('base_version', sa.Integer(), nullable=True),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('changed_properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('conflict', sa.String(length=10), nullable=True),
    sa.Column('at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], ),
    sa.ForeignKeyConstraint(['submission_version_id'], ['submission_versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entity_id', 'version')
    )
    with op.batch_alter_table('entity_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entity_versions_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_entity_versions_submission_version_id'), ['submission_version_id'], unique=False)

    op.create_table('household_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('submission_version_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('tdp', sa.String(length=20), nullable=True),
    sa.Column('survey_date', sa.String(length=10), nullable=True),
    sa.Column('consent', sa.Boolean(), nullable=False),
    sa.Column('updated_entity', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('uploaded_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('member_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['submission_version_id'], ['submission_versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_version_id')
    )
    with op.batch_alter_table('household_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_snapshots_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_snapshots_project_id'), ['project_id'], unique=False)

    op.create_table('dedupe_pairs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('snapshot_a', sa.Integer(), nullable=False),
    sa.Column('snapshot_b', sa.Integer(), nullable=False),
    sa.Column('entity_a', sa.String(length=36), nullable=False),
    sa.Column('entity_b', sa.String(length=36), nullable=False),
    sa.Column('rule', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('score', sa.Double(), nullable=False),
    sa.Column('features', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', server.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['snapshot_a'], ['household_snapshots.id'], ),
    sa.ForeignKeyConstraint(['snapshot_b'], ['household_snapshots.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('snapshot_a', 'snapshot_b')
    )
    with op.batch_alter_table('dedupe_pairs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dedupe_pairs_entity_a'), ['entity_a'], unique=False)
        batch_op.create_index(batch_op.f('ix_dedupe_pairs_entity_b'), ['entity_b'], unique=False)
        batch_op.create_index(batch_op.f('ix_dedupe_pairs_project_id'), ['project_id'], unique=False)

    op.create_table('household_block_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['household_snapshots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('household_block_keys', schema=None) as batch_op:
        batch_op.create_index('ix_household_block_keys_key', ['project_id', 'key'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_block_keys_snapshot_id'), ['snapshot_id'], unique=False)

    op.create_table('household_members',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('sex', sa.String(length=10), nullable=True),
    sa.Column('last_snapshot_id', sa.Integer(), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['last_snapshot_id'], ['household_snapshots.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_members_household_id'), ['household_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_members_household_id'))

    op.drop_table('household_members')
    with op.batch_alter_table('household_block_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_block_keys_snapshot_id'))
        batch_op.drop_index('ix_household_block_keys_key')

    op.drop_table('household_block_keys')
    with op.batch_alter_table('dedupe_pairs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dedupe_pairs_project_id'))
        batch_op.drop_index(batch_op.f('ix_dedupe_pairs_entity_b'))
        batch_op.drop_index(batch_op.f('ix_dedupe_pairs_entity_a'))

    op.drop_table('dedupe_pairs')
    with op.batch_alter_table('household_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_snapshots_project_id'))
        batch_op.drop_index(batch_op.f('ix_household_snapshots_entity_id'))

    op.drop_table('household_snapshots')
    with op.batch_alter_table('entity_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entity_versions_submission_version_id'))
        batch_op.drop_index(batch_op.f('ix_entity_versions_entity_id'))

    op.drop_table('entity_versions')
    with op.batch_alter_table('entity_problems', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entity_problems_project_id'))

    op.drop_table('entity_problems')
    with op.batch_alter_table('merge_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merge_log_project_id'))

    op.drop_table('merge_log')
    op.drop_table('list_revisions')
    with op.batch_alter_table('entities', schema=None) as batch_op:
        batch_op.drop_index('ix_entities_list')
        batch_op.drop_index(batch_op.f('ix_entities_canonical_id'))

    op.drop_table('entities')
