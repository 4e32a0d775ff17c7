"""oauth tokens: a shop the seller connects on its own consent page (IdeaSoft) keeps its tokens apart from
the keys the seller enters, so a refresh and a save of the form never write over each other

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 20:00:00

"""

from alembic import op
import sqlalchemy as sa

import models.base


# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_tokens_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("shop_connected_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("shop_connected_at")
        batch_op.drop_column("shop_tokens_encrypted")
