"""exports of the Orders page written by a job, their progress and their file

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 07:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "order_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_order_exports_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_exports")),
    )
    with op.batch_alter_table("order_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_exports_account_id"), ["account_id"], unique=False)
        # Exports older than a day are deleted by age.
        batch_op.create_index(batch_op.f("ix_order_exports_created_at"), ["created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("order_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_exports_created_at"))
        batch_op.drop_index(batch_op.f("ix_order_exports_account_id"))
    op.drop_table("order_exports")
