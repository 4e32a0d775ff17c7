"""Every General setting on and off, on every marketplace and every shop the hub offers, over HTTP against
the sandbox: the same neutral pipeline, each platform in its own shapes (tests/markets.py, tests/shops.py).
Every marketplace into WooCommerce, and Trendyol into each other shop. A platform's own rules (what it
takes, what it cannot do) are tested beside its connector (test_n11_pipeline.py, test_shopify.py, …)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from connectors import shopify
from extensions import db
from models import Account, Integration, OrderAction, Product, TransferState
from models.base import utcnow
from sync.settings import Priority, TrackingCodeSource
from sync.statuses import CanonicalStatus as S
from tests.conftest import Client, make_account, running_app
from tests.markets import MARKETS, OIL, TRENDYOL, TSHIRT, Market, order_of
from tests.pipeline import configure, cycle, drain, free_port
from tests.sandbox_server import Sandbox
from tests.shops import IDEASOFT, SHOPIFY, TICIMAX, TSOFT, WOOCOMMERCE, Shop, ShopView, status_for
from tests.test_notifications import Inbox, send_all

PAIRS: list[tuple[Market, Shop]] = [(market, WOOCOMMERCE) for market in MARKETS]
PAIRS += [(TRENDYOL, SHOPIFY), (TRENDYOL, TSOFT), (TRENDYOL, IDEASOFT), (TRENDYOL, TICIMAX)]
pytestmark = pytest.mark.parametrize(
    ("market", "shop"), PAIRS, ids=[f"{market.kind}-{shop.kind}" for market, shop in PAIRS]
)


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def app(smtp_port: int) -> Iterator[Flask]:
    with running_app(MAIL_PORT=smtp_port, NOTIFY_WINDOW_SECONDS=60) as app:
        yield app


@pytest.fixture
def account(app: Flask) -> Account:
    return make_account(notification_email="alerts@shop.example", notification_email_confirmed_at=utcnow())


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    shopify.forget_tokens()  # a new sandbox shop, maybe at an address an earlier test's had
    yield
    shopify.forget_tokens()


@pytest.fixture
def hub(market: Market, shop: Shop, account: Account, sandbox: Sandbox) -> Integration:
    integration = market.join(account, sandbox)
    shop.join(integration, sandbox)
    return integration


def in_shop(shop: Shop, sandbox: Sandbox, package_id: str) -> ShopView:
    found = shop.view(sandbox, order_of(package_id))
    assert found is not None, f"package {package_id} has no {shop.kind} order"
    return found


def test_an_order_reaches_the_shop_once_at_the_marketplace_s_total(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox
) -> None:
    package_id = market.new_order(sandbox, [(TSHIRT, 2), (OIL, 1)])
    cycle(hub)
    cycle(hub)
    order = order_of(package_id)
    assert order.transfer_state == TransferState.TRANSFERRED
    assert shop.count(sandbox) == 1
    assert in_shop(shop, sandbox, package_id).total == order.total


@pytest.mark.parametrize(("on", "expected"), [(True, S.CANCELLED), (False, S.CREATED)])
def test_cancellation_status_transfer(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, on: bool, expected: S
) -> None:
    configure(hub, cancellation_transfer=on)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.cancel(sandbox, package_id)
    cycle(hub)
    assert in_shop(shop, sandbox, package_id).status == status_for(shop, expected)


@pytest.mark.parametrize(("on", "expected"), [(True, S.SHIPPED), (False, S.CREATED)])
def test_status_change_transfer(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, on: bool, expected: S
) -> None:
    """Shopify keeps a tracking code only on a fulfilment: with the code transferred, the order is
    fulfilled whatever this setting says; here it is off, to see the status alone."""
    configure(hub, status_change_transfer=on, tracking_code_transfer=False)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, package_id)
    cycle(hub)
    assert in_shop(shop, sandbox, package_id).status == status_for(shop, expected)


@pytest.mark.parametrize("source", list(TrackingCodeSource))
def test_tracking_code_transfer_writes_the_chosen_code(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, source: TrackingCodeSource
) -> None:
    configure(hub, tracking_code_source=source)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, package_id)
    cycle(hub)
    expected = market.code(sandbox, package_id, source)  # None: a code this marketplace has not
    view = in_shop(shop, sandbox, package_id)
    assert view.tracking == expected
    assert view.link == ""  # no link unless forced


def test_tracking_code_transfer_off_writes_nothing(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, tracking_code_transfer=False)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, package_id)
    cycle(hub)
    assert in_shop(shop, sandbox, package_id).tracking is None


def test_forcing_the_link_uses_the_marketplace_link_else_the_carrier_page(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox
) -> None:
    """Where the shop takes a link (T-Soft makes its own: the setting is not available there)."""
    configure(hub, force_tracking_link=True, tracking_code_source=TrackingCodeSource.TRACKING_NUMBER)
    with_link, without_link = market.new_order(sandbox), market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, with_link)
    market.ship_without_link(sandbox, without_link, "Aras Kargo", "7261234567")
    cycle(hub)
    if "force_tracking_link" in hub.shop.unavailable:
        assert hub.settings.to_domain().force_tracking_link is False
        assert in_shop(shop, sandbox, without_link).link == ""
        return
    assert in_shop(shop, sandbox, with_link).link == market.link(sandbox, with_link)
    assert (
        in_shop(shop, sandbox, without_link).link
        == "https://kargotakip.araskargo.com.tr/mainpage.aspx?code=7261234567"
    )


@pytest.mark.parametrize(("priority", "expected"), [(Priority.MARKETPLACE, S.SHIPPED), (Priority.SHOP, None)])
def test_transaction_priority_when_both_sides_changed(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, priority: Priority, expected: S | None
) -> None:
    """Where the shop has a status of the seller's own to give (Shopify has none: its orders are
    unfulfilled, fulfilled or cancelled, each of which a marketplace status also becomes)."""
    configure(hub, reverse_flow=True, priority=priority, tracking_code_transfer=False)
    package_id = market.new_order(sandbox)
    cycle(hub)
    hold = shop.hold or status_for(shop, S.CANCELLED)
    # Between two syncs the carrier picks the parcel up and the seller puts the shop order on hold.
    market.ship(sandbox, package_id)
    shop.set_status(sandbox, order_of(package_id), hold)
    cycle(hub)
    if shop.hold is None:  # the seller cancelled in the shop: nothing the marketplace says undoes that
        assert in_shop(shop, sandbox, package_id).status == hold
        return
    assert in_shop(shop, sandbox, package_id).status == (status_for(shop, expected) if expected else hold)


def _products(account: Account) -> tuple[Product, Product]:
    tshirt = Product(account_id=account.id, barcode=TSHIRT, stock_code="TS-BEYAZ-M", name="Tişört", stock=10)
    oil = Product(
        account_id=account.id, barcode="other", stock_code="ZEYTINYAGI-1L", name="Zeytinyağı", stock=5
    )
    db.session.add_all([tshirt, oil])
    db.session.commit()
    return tshirt, oil


@pytest.mark.parametrize(("on", "expected"), [(True, (8, 4)), (False, (10, 5))])
def test_decrease_stock_once_per_line(
    market: Market, hub: Integration, sandbox: Sandbox, account: Account, on: bool, expected: tuple[int, int]
) -> None:
    configure(hub, decrease_stock=on)
    tshirt, oil = _products(account)  # matched by barcode, and by stock code
    market.new_order(sandbox, [(TSHIRT, 2), (OIL, 1)])
    cycle(hub)
    hub.pull_cursor = None  # read the same orders again
    db.session.commit()
    cycle(hub)
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == expected


def test_a_cancellation_puts_the_stock_back_once(
    market: Market, hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    configure(hub, decrease_stock=True)
    tshirt, _ = _products(account)
    package_id = market.new_order(sandbox, [(TSHIRT, 3)])
    cycle(hub)
    db.session.refresh(tshirt)
    assert tshirt.stock == 7
    market.cancel(sandbox, package_id)
    cycle(hub)
    hub.pull_cursor = None
    db.session.commit()
    cycle(hub)
    db.session.refresh(tshirt)
    assert tshirt.stock == 10


@pytest.mark.parametrize("rate", [20, 0])
def test_shipment_vat_selection(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, rate: int
) -> None:
    """The shipping fee (where the marketplace charges the customer one: N11's sandbox does not) goes to
    the shop before tax at the chosen rate, and the order still comes to what the customer paid; a shop
    that takes no rate for it (T-Soft) keeps the setting off."""
    configure(hub, shipping_vat_rate=rate)
    package_id = market.new_order(sandbox)  # 149.90: below every marketplace's free-shipping line
    cycle(hub)
    order = order_of(package_id)
    view = in_shop(shop, sandbox, package_id)
    assert view.total == order.total
    if "shipping_vat_rate" in hub.shop.unavailable:
        assert hub.settings.to_domain().shipping_vat_rate is None and view.shipping_net is None
        return
    fee = order.total - sum((line.total for line in order.lines), Decimal(0))
    net = (fee / (1 + Decimal(rate) / 100)).quantize(Decimal("0.01"))
    assert view.shipping_net == net


@pytest.mark.parametrize(("on", "mails"), [(True, 1), (False, 0)])
def test_newly_added_orders_notification(
    market: Market, hub: Integration, sandbox: Sandbox, smtp_port: int, tmp_path: Any, on: bool, mails: int
) -> None:
    inbox = Inbox(tmp_path / "mail", smtp_port)
    inbox.start()
    try:
        configure(hub, notify_new_orders=on)
        package_id = market.new_order(sandbox)
        cycle(hub)
        send_all()
        assert len(inbox.mails()) == mails
        if on:
            (mail,) = inbox.mails()
            assert order_of(package_id).order_number in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert hub.marketplace.label in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    finally:
        inbox.stop()


# -- Marketplace Feedback: as far as each marketplace has the step --------------------------------------


def test_addition_approval_feedback(market: Market, hub: Integration, sandbox: Sandbox) -> None:
    for on in (True, False):
        configure(hub, approval_feedback=on)
        package_id = market.new_order(sandbox)
        cycle(hub)
        expected = market.accepted if on and market.accepted is not None else market.created
        assert market.status(sandbox, package_id) == expected, f"approval feedback {'on' if on else 'off'}"


def test_reverse_flow_sends_the_shop_s_status_back(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox
) -> None:
    """The seller sends the order from the shop: the marketplace hears of it as far as it lets a seller
    say (its accepted status), and no change pings back."""
    configure(hub, reverse_flow=True)
    package_id = market.new_order(sandbox)
    cycle(hub)
    sent = status_for(shop, S.SHIPPED)
    shop.set_status(sandbox, order_of(package_id), sent)
    cycle(hub)
    assert market.status(sandbox, package_id) == (market.accepted or market.created)
    actions = db.session.query(OrderAction).count()
    cycle(hub)
    cycle(hub)
    assert in_shop(shop, sandbox, package_id).status == sent
    assert db.session.query(OrderAction).count() == actions  # nothing more to do on either side


@pytest.mark.parametrize("on", [True, False])
def test_update_feedback_sends_the_seller_s_tracking_code(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, on: bool
) -> None:
    """Where the marketplace takes an own carrier's code, it gets the one the seller entered in the shop;
    where it cannot (N11), the setting stays off whatever is stored, and nothing is sent."""
    configure(hub, update_feedback=on, approval_feedback=True)
    package_id = market.new_order(sandbox)
    cycle(hub)
    cycle(hub)  # the approval, as the marketplace reports it
    shop.enter_tracking(sandbox, order_of(package_id), "Sürat Kargo", "SELLER123")
    cycle(hub)
    available = "update_feedback" not in hub.marketplace.unavailable
    assert market.seller_code(sandbox, package_id) == ("SELLER123" if on and available else None)
    assert hub.settings.to_domain().update_feedback is (on and available)


# -- Order Transfer: what is read, and when it goes -------------------------------------------------------


@pytest.mark.parametrize("on", [True, False])
def test_retrieve_marketplace_orders(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, on: bool
) -> None:
    configure(hub, retrieve_orders=on)
    market.new_order(sandbox)
    cycle(hub)
    assert shop.count(sandbox) == (1 if on else 0)
    assert any(path.startswith(f"/{market.kind}") for _, path, _ in sandbox.world.requests) is on


def test_automatic_transfer_off_waits_for_the_transfer_button(
    market: Market, shop: Shop, hub: Integration, sandbox: Sandbox, seller: Client
) -> None:
    configure(hub, auto_transfer=False)
    package_id = market.new_order(sandbox)
    cycle(hub)
    order = order_of(package_id)
    assert order.transfer_state == TransferState.WAITING and shop.count(sandbox) == 0
    assert seller.post(f"/orders/{order.id}/transfer", htmx=True).status_code == 200
    drain()
    assert order_of(package_id).transfer_state == TransferState.TRANSFERRED
    assert shop.count(sandbox) == 1
