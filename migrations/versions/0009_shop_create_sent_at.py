"""when a transfer first sent its create to the shop

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_create_sent_at", sa.DateTime(timezone=True), nullable=True))
    # An order not in the shop whose transfer ran before (a lost answer, a retry waiting, the error queue)
    # may be there all the same: marked from its first sight, as the hub assumed until now, it is looked
    # up before the next create. (A manual Retry resets the attempts, never claimed_at.)
    op.execute(
        "UPDATE orders SET shop_create_sent_at = created_at WHERE shop_id IS NULL AND id IN ("
        "SELECT order_id FROM order_actions WHERE kind = 'transfer' AND claimed_at IS NOT NULL)"
    )


def downgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("shop_create_sent_at")
