"""a line counts the units the panel stock holds for it, and the units cancelled off it while the rest
went on (Trendyol's partial cancellation), instead of two flags

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 10:45:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stock_held", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("cancelled_quantity", sa.Integer(), nullable=False, server_default="0"))
    # Taken and not given back: the stock holds the line's units.
    op.execute(
        "UPDATE order_lines SET stock_held = quantity WHERE stock_taken = true AND stock_returned = false"
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("stock_taken")
        batch_op.drop_column("stock_returned")


def downgrade():
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stock_taken", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("stock_returned", sa.Boolean(), nullable=False, server_default=sa.false()))
    # A line whose stock went back had been taken: both flags, as before.
    op.execute(
        "UPDATE order_lines SET stock_taken = true, stock_returned = (stock_held = 0) "
        "WHERE stock_held > 0 OR cancelled = true"
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("cancelled_quantity")
        batch_op.drop_column("stock_held")
