"""office records for reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import server.db.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('household_statuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('date', sa.String(length=10), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('household_statuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_statuses_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_statuses_project_id'), ['project_id'], unique=False)

    op.create_table('volunteer_trainings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.String(length=10), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volunteer_trainings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volunteer_trainings_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volunteer_trainings_user_id'), ['user_id'], unique=False)

    op.create_table('service_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('service_code', sa.String(length=50), nullable=False),
    sa.Column('member_id', sa.String(length=36), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('checked_by', sa.Integer(), nullable=True),
    sa.Column('checked_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checked_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_checks_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_checks_submission_id'), ['submission_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('service_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_checks_submission_id'))
        batch_op.drop_index(batch_op.f('ix_service_checks_project_id'))

    op.drop_table('service_checks')
    with op.batch_alter_table('volunteer_trainings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volunteer_trainings_user_id'))
        batch_op.drop_index(batch_op.f('ix_volunteer_trainings_project_id'))

    op.drop_table('volunteer_trainings')
    with op.batch_alter_table('household_statuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_statuses_project_id'))
        batch_op.drop_index(batch_op.f('ix_household_statuses_entity_id'))

    op.drop_table('household_statuses')
