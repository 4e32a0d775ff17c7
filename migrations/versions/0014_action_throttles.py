"""an action counts the platform's "later" (429) answers in a row apart from its attempts; an order
keeps the carrier the seller named in the shop

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 08:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("order_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("throttles", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_carrier", sa.String(length=120), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("shop_carrier")
    with op.batch_alter_table("order_actions", schema=None) as batch_op:
        batch_op.drop_column("throttles")
