"""settings change values as text: a changed 500-character address must fit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("settings_changes") as batch_op:
        batch_op.alter_column("old_value", existing_type=sa.String(length=255), type_=sa.Text())
        batch_op.alter_column("new_value", existing_type=sa.String(length=255), type_=sa.Text())


def downgrade():
    with op.batch_alter_table("settings_changes") as batch_op:
        batch_op.alter_column("old_value", existing_type=sa.Text(), type_=sa.String(length=255))
        batch_op.alter_column("new_value", existing_type=sa.Text(), type_=sa.String(length=255))
