"""orders cancelled on the marketplace before they reached the shop end as such

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:30:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    # Until now such an order waited for ever (or stayed in the error queue). An order whose lines moved
    # to a newer package is left as it is: that package carries it.
    op.execute(
        "UPDATE orders SET transfer_state = 'cancelled', error_category = NULL, error_reason = NULL "
        "WHERE shop_id IS NULL AND transfer_state IN ('waiting', 'error') "
        "AND status IN ('Cancelled', 'UnSupplied') "
        "AND NOT EXISTS (SELECT 1 FROM orders AS successor WHERE successor.origin_id = orders.id)"
    )


def downgrade():
    op.execute("UPDATE orders SET transfer_state = 'waiting' WHERE transfer_state = 'cancelled'")
