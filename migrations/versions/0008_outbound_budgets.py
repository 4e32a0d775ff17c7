"""pull resume points, pull error categories, one live import per integration

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 23:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pull_resume_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_pull_error_category", sa.String(length=32), nullable=True))
    with op.batch_alter_table("backfills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resume_from", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_order_actions_integration_state", "order_actions", ["integration_id", "state", "id"], unique=False
    )
    # An import waiting or running twice for one integration: keep the newest, fail the others.
    op.execute(
        "UPDATE backfills SET state = 'failed', error = 'another import of this integration ran instead' "
        "WHERE state IN ('queued', 'running') AND id NOT IN ("
        "SELECT MAX(id) FROM backfills WHERE state IN ('queued', 'running') GROUP BY integration_id)"
    )
    op.create_index(
        "uq_backfills_one_live",
        "backfills",
        ["integration_id"],
        unique=True,
        sqlite_where=sa.text("state IN ('queued', 'running')"),
        postgresql_where=sa.text("state IN ('queued', 'running')"),
    )


def downgrade():
    op.drop_index("ix_order_actions_integration_state", table_name="order_actions")
    op.drop_index("uq_backfills_one_live", table_name="backfills")
    with op.batch_alter_table("backfills", schema=None) as batch_op:
        batch_op.drop_column("resume_from")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("last_pull_error_category")
        batch_op.drop_column("pull_resume_from")
