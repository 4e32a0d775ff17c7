"""Amazon joined to the shop: what differs from the other marketplaces, over HTTP against the sandbox's
Amazon (Login with Amazon, the Orders API, shipment confirmation, the order acknowledgement feed). The
General settings on and off are in test_every_marketplace.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from extensions import db
from models import Account, ActionState, Integration, OrderAction, Product, TransferState
from sync import actions, pull
from tests.conftest import Client
from tests.markets import AMAZON, OIL, TSHIRT, order_of
from tests.pipeline import configure, cycle, due_now
from tests.sandbox_server import Sandbox
from tests.test_integrations import NEW


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    return AMAZON.join(account, sandbox)


def amazon_order(sandbox: Sandbox, *lines: tuple[str, int], **spec: Any) -> dict[str, Any]:
    items = [{"barcode": barcode, "quantity": quantity} for barcode, quantity in lines or [(TSHIRT, 1)]]
    return sandbox.world.amazon.create_order({"items": items, **spec})


def shop_order(sandbox: Sandbox) -> dict[str, Any]:
    (only,) = sandbox.shop_orders()
    return only


def cancel_in_the_shop(sandbox: Sandbox) -> None:
    with sandbox.world.lock:
        sandbox.world.update_shop_order(shop_order(sandbox), {"status": "cancelled"})


def test_approval_feedback_is_not_available_on_amazon(hub: Integration, seller: Client) -> None:
    page = seller.get(f"/integrations/{hub.id}/general").get_data(as_text=True)
    assert "Not available on Amazon:" in page and "Amazon has no approval step" in page
    hub.settings.approval_feedback = True  # stored on before Amazon said it cannot
    db.session.commit()
    assert hub.settings.to_domain().approval_feedback is False


def test_a_pending_order_waits_for_its_payment_then_goes_to_the_shop(
    hub: Integration, sandbox: Sandbox
) -> None:
    """A pending order has no address yet (Amazon gives it once the payment is confirmed): it is in the
    hub, not in the shop, until it is to be shipped."""
    order = amazon_order(sandbox, status="PENDING")
    cycle(hub)
    assert order_of(order["orderId"]).transfer_state == TransferState.WAITING
    assert sandbox.shop_orders() == []
    with sandbox.world.amazon.lock:
        sandbox.world.amazon.set_status(order, "UNSHIPPED")
    cycle(hub)
    assert order_of(order["orderId"]).transfer_state == TransferState.TRANSFERRED
    assert shop_order(sandbox)["shipping"]["city"]


def test_update_feedback_confirms_the_shipment_with_the_seller_s_code(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, update_feedback=True)
    order = amazon_order(sandbox, (TSHIRT, 2), (OIL, 1))
    cycle(hub)
    items = [{"tracking_provider": "Aras Kargo", "tracking_number": "ARAS555", "custom_tracking_link": ""}]
    with sandbox.world.lock:
        sandbox.world.update_shop_order(
            shop_order(sandbox), {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]}
        )
    cycle(hub)
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    (parcel,) = order["packages"]
    assert (parcel["carrier"], parcel["trackingNumber"]) == ("Aras Kargo", "ARAS555")
    assert sorted(item["quantity"] for item in parcel["packageItems"]) == [1, 2]
    cycle(hub)  # Amazon reports it shipped: the shop said so first, nothing goes out again
    confirmations = [r for r in sandbox.world.requests if r[1].endswith("/shipmentConfirmation")]
    assert len(confirmations) == 1


def test_a_shop_cancellation_goes_to_amazon_as_an_acknowledgement_feed(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, reverse_flow=True)
    order = amazon_order(sandbox, (TSHIRT, 1), (OIL, 1))
    cycle(hub)
    cancel_in_the_shop(sandbox)
    cycle(hub)
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    (feed,) = sandbox.world.amazon.feeds
    assert feed["merchantIdentifier"] == sandbox.world.amazon.seller_id
    # The upload's pre-signed address went into the history with its signature masked.
    (document,) = sandbox.world.amazon.documents.values()
    history = str([event.payload for event in db.session.scalars(order_of(order["orderId"]).events.select())])
    assert "X-Amz-Signature" in history and document["signature"] not in history
    cycle(hub)  # Amazon reports the cancellation the shop sent: no note, no second feed
    assert shop_order(sandbox)["notes"] == [] and len(sandbox.world.amazon.feeds) == 1


def test_without_the_merchant_token_a_shop_cancellation_says_what_to_enter(
    hub: Integration, sandbox: Sandbox
) -> None:
    credentials = hub.credentials(hub.marketplace.side)
    hub.set_credentials(hub.marketplace.side, {**credentials, "merchant_token": ""})
    configure(hub, reverse_flow=True)
    order = amazon_order(sandbox)
    cycle(hub)
    cancel_in_the_shop(sandbox)
    cycle(hub)
    assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    failed = db.session.scalars(sa.select(OrderAction).where(OrderAction.state == ActionState.FAILED)).one()
    assert "Merchant Token" in (failed.last_error or "")
    assert "Merchant Token" in (order_of(order["orderId"]).error_reason or "")


def test_an_item_the_buyer_cancels_is_noted_and_its_stock_comes_back(
    hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    configure(hub, decrease_stock=True, cancellation_transfer=True)
    oil = Product(account_id=account.id, barcode=OIL, stock_code="ZEYTINYAGI-1L", name="Zeytinyağı", stock=5)
    db.session.add(oil)
    db.session.commit()
    order = amazon_order(sandbox, (TSHIRT, 1), (OIL, 2))
    cycle(hub)
    db.session.refresh(oil)
    assert oil.stock == 3
    oil_item = next(item for item in order["orderItems"] if item["product"]["sellerSku"] == "ZEYTINYAGI-1L")
    sandbox.world.amazon.cancel(order["orderId"], {oil_item["orderItemId"]: 1})
    cycle(hub)
    assert shop_order(sandbox)["status"] == "processing"
    (note,) = [note["note"] for note in shop_order(sandbox)["notes"]]
    assert note.startswith("Pazaryerinde iptal edilen satırlar:") and note.endswith("(ZEYTINYAGI-1L) × 1")
    db.session.refresh(oil)
    assert oil.stock == 4


def test_amazon_is_read_at_most_every_three_minutes(
    hub: Integration, seller: Client, sandbox: Sandbox
) -> None:
    """searchOrders refills a request every three minutes: a shorter interval is refused on the form, and
    one stored before is read as three minutes."""
    data = {
        **{name: value for name, value in NEW.items() if not name.startswith("marketplace_")},
        "name": hub.name,
        "marketplace_base_url": hub.marketplace_base_url,
        "shop_base_url": hub.shop_base_url,
        "pull_interval": "60",
    }
    page = seller.post(f"/integrations/{hub.id}/edit", data=data).get_data(as_text=True)
    assert "Amazon allows reading its orders at most every 180 seconds." in page
    assert re.search(r'id="pull_interval"[^>]*min="180"|min="180"[^>]*id="pull_interval"', page)
    assert pull.interval(hub).total_seconds() == 180  # make_integration stored 60


def test_test_connection_asks_login_with_amazon_then_the_orders(seller: Client, sandbox: Sandbox) -> None:
    market = sandbox.world.amazon
    data = {
        **{name: value for name, value in NEW.items() if not name.startswith("marketplace_")},
        "marketplace_kind": "amazon",
        "marketplace_base_url": sandbox.amazon_url,
        "marketplace_refresh_token": market.refresh_token,
        "marketplace_client_id": market.client_id,
        "marketplace_client_secret": market.client_secret,
        "shop_base_url": sandbox.shop_url,
        "shop_consumer_key": "ck_sandbox",
        "shop_consumer_secret": "cs_sandbox",
    }
    for _ in range(12):  # more orders than a page of one: the test still reads one, once
        amazon_order(sandbox)
    answer = seller.post("/integrations/connection", data=data, htmx=True).get_data(as_text=True)
    assert answer.count("Connected:") == 2  # the Merchant Token is optional
    searches = [r for r in sandbox.world.requests if r[1] == "/amazon/orders/2026-01-01/orders"]
    assert len(searches) == 1  # one of the quota the pulls live on
    wrong = {**data, "marketplace_refresh_token": "Atzr|revoked"}
    answer = seller.post("/integrations/connection", data=wrong, htmx=True).get_data(as_text=True)
    assert "Amazon refused the keys. Check them and enter them again." in answer
    assert "Atzr|revoked" not in answer


def test_units_cut_twice_are_noted_once_each(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, cancellation_transfer=True)
    order = amazon_order(sandbox, (TSHIRT, 1), (OIL, 3))
    cycle(hub)
    oil_item = next(item for item in order["orderItems"] if item["product"]["sellerSku"] == "ZEYTINYAGI-1L")
    for _ in range(2):
        # Amazon's times have whole seconds: each cut a second after what the pull read last.
        sandbox.world.amazon.stamped_behind -= 1
        sandbox.world.amazon.cancel(order["orderId"], {oil_item["orderItemId"]: 1})
        cycle(hub)
    notes = [note["note"] for note in shop_order(sandbox)["notes"]]
    assert [note.split(": ", 1)[1] for note in notes] == [
        "Soğuk Sıkım Zeytinyağı 1 L (ZEYTINYAGI-1L) × 1",
        "Soğuk Sıkım Zeytinyağı 1 L (ZEYTINYAGI-1L) × 1 (toplam 2)",
    ]


def test_a_pending_order_transferred_by_hand_goes_once_amazon_gives_its_address(
    hub: Integration, sandbox: Sandbox, seller: Client
) -> None:
    """Transfer now, before the payment is confirmed: the transfer waits (no attempt spent, no error),
    saying why, and goes as soon as the pull brings the address."""
    configure(hub, auto_transfer=False)
    order = amazon_order(sandbox, status="PENDING")
    cycle(hub)
    hub_order = order_of(order["orderId"])
    assert seller.post(f"/orders/{hub_order.id}/transfer", htmx=True).status_code == 200
    due_now()
    (transfer,) = db.session.scalars(sa.select(OrderAction).where(OrderAction.kind == "transfer")).all()
    actions.run(transfer.id)
    db.session.refresh(transfer)
    assert (transfer.state, transfer.attempts) == (ActionState.PENDING, 0)
    assert "once the payment is confirmed" in (transfer.last_error or "")
    assert order_of(order["orderId"]).transfer_state != TransferState.ERROR
    with sandbox.world.amazon.lock:
        sandbox.world.amazon.set_status(order, "UNSHIPPED")
    cycle(hub)
    assert order_of(order["orderId"]).transfer_state == TransferState.TRANSFERRED
    assert len(sandbox.shop_orders()) == 1
