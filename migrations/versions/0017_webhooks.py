"""webhooks: the inbox of verified deliveries, each integration's address and secret for them and what
each side registered; the shop's own statuses as read from it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 17:10:00

"""

from alembic import op
import sqlalchemy as sa

import models.base


# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("received_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("handled_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_webhook_deliveries_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "integration_id", "side", "key", name="uq_webhook_deliveries_integration_side_key"
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_waiting", "webhook_deliveries", ["integration_id", "handled_at", "id"]
    )
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("marketplace_webhooks", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("marketplace_webhooks_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("shop_webhooks", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("shop_webhooks_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("webhooks_refused", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("webhook_refused_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("shop_status_names", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("shop_statuses_read_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(batch_op.f("uq_integrations_webhook_token"), ["webhook_token"])


def downgrade():
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_integrations_webhook_token"), type_="unique")
        for column in (
            "shop_statuses_read_at",
            "shop_status_names",
            "webhook_refused_at",
            "webhooks_refused",
            "shop_webhooks_at",
            "shop_webhooks",
            "marketplace_webhooks_at",
            "marketplace_webhooks",
            "webhook_secret_encrypted",
            "webhook_token",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_webhook_deliveries_waiting", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
