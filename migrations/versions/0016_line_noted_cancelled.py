"""a line counts the units the shop order's notes named as cancelled, so a line cut in place again
(Hepsiburada, Amazon) is noted for its new cut only

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 14:50:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("noted_cancelled", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("noted_cancelled")
