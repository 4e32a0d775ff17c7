"""an order's history line keeps its wording's parameters, so the panel shows it in the seller's language

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 08:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    # Unset on the lines written before: their summary is shown as it was written, in English.
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_column("params")
