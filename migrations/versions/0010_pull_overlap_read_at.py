"""when a pull last read the overlap before its cursor again

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:50:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    # Unset: the next pull of every integration reads the overlap again, as every pull did until now.
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pull_overlap_read_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("pull_overlap_read_at")
