"""CLI: the demo seed (development only, safe to run twice)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask

from config import ProductionConfig
from connectors.registry import Side
from extensions import db
from models import Account, Integration


def test_seed_demo_creates_the_demo_account_and_sandbox_integration(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo@example.com / demo1234" in first.output
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    account = db.session.scalar(sa.select(Account))
    assert account is not None and account.check_password("demo1234")
    assert account.notification_email == "demo@example.com"  # so Order Notifications can be switched on
    assert account.notification_email_confirmed  # the demo's own address in the local sink: mails go
    integrations = db.session.scalars(sa.select(Integration)).all()
    assert len(integrations) == 1
    sandbox = app.config["SANDBOX_URL"]
    assert integrations[0].marketplace_base_url.startswith(sandbox)
    assert integrations[0].shop_base_url.startswith(sandbox)
    assert integrations[0].credentials(Side.MARKETPLACE)["seller_id"]


def test_seed_demo_honours_demo_email_and_password(app: Flask) -> None:
    app.config.update(DEMO_EMAIL="Me@Example.com", DEMO_PASSWORD="another-pass")
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0
    account = db.session.scalar(sa.select(Account))
    assert account is not None
    assert account.email == "me@example.com" and account.check_password("another-pass")


def test_seed_demo_refuses_in_production(app: Flask) -> None:
    app.config["DEMO_SEED_ALLOWED"] = ProductionConfig.DEMO_SEED_ALLOWED
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "disabled" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0


def test_production_config_refuses_to_start_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECRET_KEY", "CREDENTIALS_KEY", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY, CREDENTIALS_KEY, DATABASE_URL, REDIS_URL"):
        ProductionConfig()


def test_rotate_credentials_reencrypts_with_the_newest_key(app: Flask, integration: Integration) -> None:
    old_key = app.config["CREDENTIALS_KEY"]
    new_key = Fernet.generate_key().decode()
    app.config["CREDENTIALS_KEY"] = f"{new_key},{old_key}"
    result = app.test_cli_runner().invoke(args=["rotate-credentials"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 2 credential sets" in result.output
    app.config["CREDENTIALS_KEY"] = new_key  # the old key can go now
    db.session.expire_all()
    assert integration.credentials(Side.MARKETPLACE)["api_secret"] == "S3CRET-1"
    assert integration.credentials(Side.SHOP)["consumer_secret"] == "cs_xyz"
