"""Every General setting on and off, on every marketplace the hub offers, over HTTP against the sandbox:
the same neutral pipeline, each marketplace in its own shapes (tests/markets.py). A marketplace's own
rules (what it takes, what it cannot do) are tested beside its connector (test_n11_pipeline.py, …)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from extensions import db
from models import Account, Integration, Product, TransferState
from models.base import utcnow
from sync.settings import Priority, TrackingCodeSource
from tests.conftest import Client, make_account, running_app
from tests.markets import MARKETS, OIL, TSHIRT, Market, order_of
from tests.pipeline import configure, cycle, drain, free_port
from tests.sandbox_server import Sandbox
from tests.test_notifications import Inbox, send_all

pytestmark = pytest.mark.parametrize("market", MARKETS, ids=[market.kind for market in MARKETS])


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


@pytest.fixture
def hub(market: Market, account: Account, sandbox: Sandbox) -> Integration:
    return market.join(account, sandbox)


def shop_order(sandbox: Sandbox, package_id: str) -> dict[str, Any]:
    found = sandbox.shop_order_for(package_id)
    assert found is not None, f"package {package_id} has no shop order"
    return found


def meta(sandbox: Sandbox, package_id: str) -> dict[str, Any]:
    return {entry["key"]: entry["value"] for entry in shop_order(sandbox, package_id)["meta_data"]}


def test_an_order_reaches_the_shop_once_at_the_marketplace_s_total(
    market: Market, hub: Integration, sandbox: Sandbox
) -> None:
    package_id = market.new_order(sandbox, [(TSHIRT, 2), (OIL, 1)])
    cycle(hub)
    cycle(hub)
    order = order_of(package_id)
    assert order.transfer_state == TransferState.TRANSFERRED
    assert len(sandbox.shop_orders()) == 1
    assert shop_order(sandbox, package_id)["total"] == f"{order.total:.2f}"


@pytest.mark.parametrize(("on", "expected"), [(True, "cancelled"), (False, "processing")])
def test_cancellation_status_transfer(
    market: Market, hub: Integration, sandbox: Sandbox, on: bool, expected: str
) -> None:
    configure(hub, cancellation_transfer=on)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.cancel(sandbox, package_id)
    cycle(hub)
    assert shop_order(sandbox, package_id)["status"] == expected


@pytest.mark.parametrize(("on", "expected"), [(True, "completed"), (False, "processing")])
def test_status_change_transfer(
    market: Market, hub: Integration, sandbox: Sandbox, on: bool, expected: str
) -> None:
    configure(hub, status_change_transfer=on)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, package_id)
    cycle(hub)
    assert shop_order(sandbox, package_id)["status"] == expected


@pytest.mark.parametrize("source", list(TrackingCodeSource))
def test_tracking_code_transfer_writes_the_chosen_code(
    market: Market, hub: Integration, sandbox: Sandbox, source: TrackingCodeSource
) -> None:
    configure(hub, tracking_code_source=source)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, package_id)
    cycle(hub)
    expected = market.code(sandbox, package_id, source)
    if expected is None:  # a code this marketplace has not (Amazon's shipment barcode)
        assert "hub_tracking_number" not in meta(sandbox, package_id)
        return
    assert meta(sandbox, package_id)["hub_tracking_number"] == expected
    assert meta(sandbox, package_id)["hub_tracking_url"] == ""  # no link unless forced


def test_tracking_code_transfer_off_writes_nothing(
    market: Market, hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, tracking_code_transfer=False)
    package_id = market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, package_id)
    cycle(hub)
    assert "hub_tracking_number" not in meta(sandbox, package_id)


def test_forcing_the_link_uses_the_marketplace_link_else_the_carrier_page(
    market: Market, hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, force_tracking_link=True, tracking_code_source=TrackingCodeSource.TRACKING_NUMBER)
    with_link, without_link = market.new_order(sandbox), market.new_order(sandbox)
    cycle(hub)
    market.ship(sandbox, with_link)
    market.ship_without_link(sandbox, without_link, "Aras Kargo", "7261234567")
    cycle(hub)
    assert meta(sandbox, with_link)["hub_tracking_url"] == market.link(sandbox, with_link)
    assert (
        meta(sandbox, without_link)["hub_tracking_url"]
        == "https://kargotakip.araskargo.com.tr/mainpage.aspx?code=7261234567"
    )


@pytest.mark.parametrize(
    ("priority", "shop_status"), [(Priority.MARKETPLACE, "completed"), (Priority.SHOP, "on-hold")]
)
def test_transaction_priority_when_both_sides_changed(
    market: Market, hub: Integration, sandbox: Sandbox, priority: Priority, shop_status: str
) -> None:
    configure(hub, reverse_flow=True, priority=priority)
    package_id = market.new_order(sandbox)
    cycle(hub)
    # Between two syncs the carrier picks the parcel up and the seller puts the shop order on hold.
    market.ship(sandbox, package_id)
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox, package_id), {"status": "on-hold"})
    cycle(hub)
    assert shop_order(sandbox, package_id)["status"] == shop_status


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
def test_shipment_vat_selection(market: Market, hub: Integration, sandbox: Sandbox, rate: int) -> None:
    """The shipping fee (where the marketplace charges the customer one: N11's sandbox does not) goes to
    the shop before tax at the chosen rate, and the order still comes to what the customer paid."""
    configure(hub, shipping_vat_rate=rate)
    package_id = market.new_order(sandbox)  # 149.90: below every marketplace's free-shipping line
    cycle(hub)
    order = order_of(package_id)
    fee = order.total - sum((line.total for line in order.lines), Decimal(0))
    net = (fee / (1 + Decimal(rate) / 100)).quantize(Decimal("0.01"))
    shipping = shop_order(sandbox, package_id)["shipping_lines"]
    assert sum((Decimal(line["total"]) for line in shipping), Decimal(0)).quantize(Decimal("0.01")) == net
    assert shop_order(sandbox, package_id)["total"] == f"{order.total:.2f}"


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
    market: Market, hub: Integration, sandbox: Sandbox
) -> None:
    """The seller sends the order from the shop: the marketplace hears of it as far as it lets a seller
    say (its accepted status), and no change pings back."""
    configure(hub, reverse_flow=True)
    package_id = market.new_order(sandbox)
    cycle(hub)
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox, package_id), {"status": "completed"})
    cycle(hub)
    assert market.status(sandbox, package_id) == (market.accepted or market.created)
    before = len(sandbox.world.requests)
    cycle(hub)
    assert shop_order(sandbox, package_id)["status"] == "completed"
    assert [r for r in sandbox.world.requests[before:] if r[0] in ("PUT", "POST", "PATCH")] == []


@pytest.mark.parametrize("on", [True, False])
def test_update_feedback_sends_the_seller_s_tracking_code(
    market: Market, hub: Integration, sandbox: Sandbox, on: bool
) -> None:
    """Where the marketplace takes an own carrier's code, it gets the one the seller entered in the shop;
    where it cannot (N11), the setting stays off whatever is stored, and nothing is sent."""
    configure(hub, update_feedback=on, approval_feedback=True)
    package_id = market.new_order(sandbox)
    cycle(hub)
    cycle(hub)  # the approval, as the marketplace reports it
    items = [{"tracking_provider": "Sürat Kargo", "tracking_number": "SELLER123", "custom_tracking_link": ""}]
    with sandbox.world.lock:
        sandbox.world.update_shop_order(
            shop_order(sandbox, package_id),
            {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]},
        )
    cycle(hub)
    available = "update_feedback" not in hub.marketplace.unavailable
    assert market.seller_code(sandbox, package_id) == ("SELLER123" if on and available else None)
    assert hub.settings.to_domain().update_feedback is (on and available)


# -- Order Transfer: what is read, and when it goes -------------------------------------------------------


@pytest.mark.parametrize("on", [True, False])
def test_retrieve_marketplace_orders(market: Market, hub: Integration, sandbox: Sandbox, on: bool) -> None:
    configure(hub, retrieve_orders=on)
    package_id = market.new_order(sandbox)
    cycle(hub)
    assert (sandbox.shop_order_for(package_id) is not None) is on
    assert any(path.startswith(f"/{market.kind}") for _, path, _ in sandbox.world.requests) is on


def test_automatic_transfer_off_waits_for_the_transfer_button(
    market: Market, hub: Integration, sandbox: Sandbox, seller: Client
) -> None:
    configure(hub, auto_transfer=False)
    package_id = market.new_order(sandbox)
    cycle(hub)
    order = order_of(package_id)
    assert order.transfer_state == TransferState.WAITING and sandbox.shop_orders() == []
    assert seller.post(f"/orders/{order.id}/transfer", htmx=True).status_code == 200
    drain()
    assert order_of(package_id).transfer_state == TransferState.TRANSFERRED
    assert len(sandbox.shop_orders()) == 1
