"""Models: typed settings with one list of defaults, credentials encrypted at rest, colours, history."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from connectors.registry import TRENDYOL, Side
from extensions import db
from models import Account, Integration, IntegrationSettings, SettingsChange
from sync.settings import DEFAULTS, GeneralSettings, TrackingCodeSource
from sync.statuses import CanonicalStatus
from tests.conftest import make_integration


def test_settings_columns_are_the_domain_fields() -> None:
    columns = {column.name for column in IntegrationSettings.__table__.columns} - {"integration_id"}
    assert columns == {field.name for field in dataclasses.fields(GeneralSettings)}


def test_new_settings_take_the_defaults(integration: Integration) -> None:
    db.session.expire_all()
    assert integration.settings.to_domain() == DEFAULTS


def test_credentials_are_encrypted_at_rest(integration: Integration) -> None:
    row = db.session.execute(
        sa.text("SELECT marketplace_credentials_encrypted, shop_credentials_encrypted FROM integrations")
    ).one()
    stored = " ".join(row)
    for secret in ("KEY-1", "S3CRET-1", "ck_abc", "cs_xyz", "1234"):
        assert secret not in stored
    assert integration.credentials(Side.MARKETPLACE)["api_secret"] == "S3CRET-1"
    assert integration.credentials(Side.SHOP) == {"consumer_key": "ck_abc", "consumer_secret": "cs_xyz"}


def test_credentials_survive_key_rotation(app, integration: Integration) -> None:
    from cryptography.fernet import Fernet

    app.config["CREDENTIALS_KEY"] = f"{Fernet.generate_key().decode()},{app.config['CREDENTIALS_KEY']}"
    assert integration.credentials(Side.SHOP)["consumer_secret"] == "cs_xyz"


def test_status_colors_start_from_the_marketplace_and_record_changes(integration: Integration) -> None:
    assert integration.status_color_map() == dict(TRENDYOL.status_colors)
    changed = integration.change_status_colors(
        {
            CanonicalStatus.CREATED: TRENDYOL.status_colors[CanonicalStatus.CREATED],
            CanonicalStatus.SHIPPED: "#000000",
        },
        actor="someone@example.com",
    )
    db.session.commit()
    assert changed == ["Shipped"]
    assert integration.status_color_map()[CanonicalStatus.SHIPPED] == "#000000"
    change = integration.latest_changes(5)[0]
    assert (change.field, change.new_value) == ("color:Shipped", "#000000")


def test_change_settings_records_only_real_changes(integration: Integration) -> None:
    changed = integration.change_settings(
        {
            "decrease_stock": True,
            "tracking_code_source": TrackingCodeSource.PACKAGE_NUMBER,
            "retrieve_orders": True,
        },
        actor="a@example.com",
    )
    db.session.commit()
    assert changed == ["decrease_stock", "tracking_code_source"]
    rows = db.session.scalars(sa.select(SettingsChange).order_by(SettingsChange.id)).all()
    assert [(r.field, r.old_value, r.new_value, r.actor) for r in rows] == [
        ("decrease_stock", "off", "on", "a@example.com"),
        ("tracking_code_source", "tracking_number", "package_number", "a@example.com"),
    ]


def test_database_refuses_out_of_range_values(integration: Integration) -> None:
    for bad in ({"color_coding_rate": 101}, {"shipping_vat_rate": 7}):
        for name, value in bad.items():
            setattr(integration.settings, name, value)
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_deleting_an_account_deletes_its_integrations(account: Account) -> None:
    make_integration(account)
    db.session.delete(account)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Integration)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IntegrationSettings)) == 0
