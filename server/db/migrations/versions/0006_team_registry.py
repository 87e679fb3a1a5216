"""team registry: members' joined/left dates, training sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

import server.db.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('training_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.String(length=10), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('organiser', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', server.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('training_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_sessions_project_id'), ['project_id'], unique=False)

    # Existing accounts keep joined_on empty: reports then use the day they were created.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('joined_on', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('left_on', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('left_recorded_at', server.db.models.UTCDateTime(timezone=True), nullable=True))

    # Attendance stays one row per member (what I07 reads); earlier rows have no session.
    with op.batch_alter_table('volunteer_trainings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('organiser', sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f('ix_volunteer_trainings_session_id'), ['session_id'], unique=False)
        batch_op.create_unique_constraint('uq_volunteer_trainings_session_user', ['session_id', 'user_id'])
        batch_op.create_foreign_key('fk_volunteer_trainings_session', 'training_sessions', ['session_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('volunteer_trainings', schema=None) as batch_op:
        batch_op.drop_constraint('fk_volunteer_trainings_session', type_='foreignkey')
        batch_op.drop_constraint('uq_volunteer_trainings_session_user', type_='unique')
        batch_op.drop_index(batch_op.f('ix_volunteer_trainings_session_id'))
        batch_op.drop_column('organiser')
        batch_op.drop_column('session_id')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('left_recorded_at')
        batch_op.drop_column('left_on')
        batch_op.drop_column('joined_on')

    with op.batch_alter_table('training_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_sessions_project_id'))

    op.drop_table('training_sessions')
