"""Webhook intake: registration from the panel, deliveries proven before they are read, kept once,
handled by the worker through the same ingest and decision table as a pull, and the pull kept as the
reconciliation. The sandbox's Trendyol and WooCommerce send the deliveries in their real shapes; here they
are held and handed to the hub in the test's thread (`deliver`), with the sandbox's knobs (twice, late,
forged, lost) acting on them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from connectors import hepsiburada, shopify
from connectors.registry import Side
from extensions import db
from models import Account, Integration, Order, OrderAction, OrderEvent, TransferState, WebhookDelivery
from models.base import utcnow
from sandbox.webhooks import Delivery
from sync import pull, webhooks
from sync.guards import INTERNAL_ERROR
from tests.conftest import Client, join_sandbox
from tests.markets import HEPSIBURADA
from tests.pipeline import configure, cycle, drain
from tests.sandbox_server import Sandbox
from tests.shops import SHOPIFY


@pytest.fixture
def hub(account: Account, sandbox: Sandbox) -> Integration:
    sandbox.world.webhooks.hold = True
    return join_sandbox(account, sandbox)


@pytest.fixture
def registered(seller: Client, hub: Integration, sandbox: Sandbox) -> Integration:
    response = seller.post(f"/integrations/{hub.id}/webhooks", htmx=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    db.session.expire_all()
    assert hub.marketplace_webhooks_at and hub.shop_webhooks_at
    sandbox.world.webhooks.release(lambda delivery: 200)  # WooCommerce's pings
    return hub


def deliver(client: Client, sandbox: Sandbox) -> list[int]:
    """Hand the deliveries the sandbox made to the hub, as its platforms would; their answers."""

    def send(delivery: Delivery) -> int:
        path = urlsplit(delivery.url).path
        headers = dict(delivery.headers)
        return client.open(path, method=delivery.method, data=delivery.body, headers=headers).status_code

    return [sent.status for sent in sandbox.world.webhooks.release(send)]


def handle(integration: Integration) -> None:
    """The worker's turn: the waiting deliveries, then the actions they set off."""
    webhooks.handle(integration.id, lambda actions: None)
    drain()
    db.session.expire_all()


def deliveries() -> list[WebhookDelivery]:
    return list(db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))


def shop_order_of(sandbox: Sandbox, package: dict[str, Any]) -> dict[str, Any]:
    found = sandbox.shop_order_for(package["shipmentPackageId"])
    assert found is not None
    return found


# -- registration ------------------------------------------------------------------------------------


def test_registering_from_the_panel_points_both_platforms_at_the_hub(
    seller: Client, registered: Integration, sandbox: Sandbox
) -> None:
    token = registered.webhook_token
    assert token and registered.webhook_secret()
    [trendyol] = sandbox.world.hooks.trendyol.values()
    assert trendyol["url"] == f"http://hub.test/webhooks/{token}/marketplace"
    assert trendyol["authenticationType"] == "API_KEY"
    assert trendyol["apiKey"] == registered.webhook_secret()
    woo = sorted(sandbox.world.hooks.woo.values(), key=lambda hook: hook["topic"])
    assert [hook["topic"] for hook in woo] == ["order.created", "order.updated"]
    assert {hook["delivery_url"] for hook in woo} == {f"http://hub.test/webhooks/{token}/shop"}
    assert {hook["secret"] for hook in woo} == {registered.webhook_secret()}
    page = seller.get(f"/integrations/{registered.id}/webhooks").get_data(as_text=True)
    assert "Trendyol webhook" in page and "WooCommerce webhooks for order.created and order.updated" in page
    assert registered.webhook_secret() not in page

    # Again (a platform turned its webhook off after failures): brought back, not doubled.
    for hook in sandbox.world.hooks.trendyol.values():
        hook["status"] = "PASSIVE"
    sandbox.world.hooks.woo[woo[0]["id"]]["status"] = "disabled"
    assert seller.post(f"/integrations/{registered.id}/webhooks", htmx=True).status_code == 200
    assert [hook["status"] for hook in sandbox.world.hooks.trendyol.values()] == ["ACTIVE"]
    assert sorted(hook["status"] for hook in sandbox.world.hooks.woo.values()) == ["active", "active"]


def test_a_platform_refusing_the_registration_is_told_plainly(
    seller: Client, hub: Integration, sandbox: Sandbox
) -> None:
    hub.set_credentials(Side.SHOP, {"consumer_key": "ck_wrong", "consumer_secret": "cs_wrong"})
    db.session.commit()
    page = seller.post(f"/integrations/{hub.id}/webhooks", htmx=True).get_data(as_text=True)
    assert "WooCommerce refused the keys" in page
    db.session.expire_all()
    assert hub.marketplace_webhooks_at is not None and hub.shop_webhooks_at is None


def test_another_shop_address_forgets_the_registrations_and_the_address(
    seller: Client, registered: Integration, sandbox: Sandbox
) -> None:
    data = {
        "name": registered.name,
        "marketplace_kind": "trendyol",
        "marketplace_base_url": registered.marketplace_base_url,
        "shop_kind": "woocommerce",
        "shop_base_url": sandbox.shop_url + "/",
        "marketplace_seller_id": "100200",
        "own_shipping_agreement": "y",
        "active": "y",
        "pull_interval": "60",
    }
    response = seller.post(f"/integrations/{registered.id}/edit", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    # The old shop may go on sending to the old address with the old secret: both are new ones now.
    assert registered.marketplace_webhooks_at is None and registered.shop_webhooks_at is None
    assert registered.webhook_token is None and registered.webhook_secret() == ""


# -- the intake ------------------------------------------------------------------------------------------


def test_a_new_order_reaches_the_shop_by_webhook_without_a_pull(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    package = sandbox.order()
    assert deliver(client, sandbox) == [200]
    handle(registered)
    order = db.session.scalar(sa.select(Order))
    assert order is not None and order.package_id == str(package["shipmentPackageId"])
    assert order.transfer_state == TransferState.TRANSFERRED
    assert registered.pull_cursor is None  # no pull ran
    assert shop_order_of(sandbox, package)["status"] == "processing"
    [delivery] = deliveries()
    assert (delivery.outcome, delivery.subject, delivery.topic) == ("handled", order.package_id, "Created")


def test_the_same_change_sent_twice_and_pulled_is_taken_once(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    sandbox.world.faults.webhook_duplicate_rate = 1.0
    package = sandbox.order()
    assert deliver(client, sandbox) == [200, 200]
    assert len(deliveries()) == 1
    handle(registered)
    cycle(registered)  # the reconciling pull reads the same package: no news
    assert len(sandbox.shop_orders()) == 1
    order = db.session.scalar(sa.select(Order))
    assert order is not None and order.package_id == str(package["shipmentPackageId"])


def test_deliveries_out_of_order_leave_the_order_where_the_platform_has_it(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    package = sandbox.order()
    deliver(client, sandbox)
    handle(registered)
    sandbox.world.faults.webhook_delay_ms = 1000  # held back at random: they arrive shuffled
    for status in ("Picking", "Invoiced", "Shipped"):
        sandbox.set_status(package["shipmentPackageId"], status)
    assert set(deliver(client, sandbox)) == {200}
    handle(registered)
    order = db.session.scalar(sa.select(Order))
    assert order is not None and order.marketplace_status == "Shipped"
    assert shop_order_of(sandbox, package)["status"] == "completed"


def test_a_forged_delivery_is_refused_counted_and_kept_nowhere(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    sandbox.world.faults.webhook_forged_rate = 1.0
    sandbox.order()
    assert sorted(deliver(client, sandbox)) == [200, 401]
    assert len(deliveries()) == 1
    db.session.expire_all()
    assert registered.webhooks_refused == 1 and registered.webhook_refused_at is not None


def test_what_the_intake_turns_away(client: Client, registered: Integration, sandbox: Sandbox) -> None:
    token = registered.webhook_token
    secret = registered.webhook_secret()
    body = json.dumps({"id": 1}).encode()
    signed = {
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Signature": base64.b64encode(
            hmac.new(secret.encode(), body, hashlib.sha256).digest()
        ).decode(),
    }
    assert client.post(f"/webhooks/{token}x/shop", data=body, headers=signed, csrf=False).status_code == 404
    assert client.post(f"/webhooks/{token}/orders", data=body, headers=signed, csrf=False).status_code == 404
    assert client.post(f"/webhooks/{token}/shop", data=body, csrf=False).status_code == 401
    huge = b"x" * (client.application.config["WEBHOOK_MAX_BYTES"] + 1)
    assert client.post(f"/webhooks/{token}/shop", data=huge, headers=signed, csrf=False).status_code == 413
    # WooCommerce's ping when a webhook is made: no signature, and nothing to keep.
    ping = client.post(
        f"/webhooks/{token}/shop",
        data=b"webhook_id=7",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        csrf=False,
    )
    assert ping.status_code == 200
    assert client.post(f"/webhooks/{token}/shop", data=body, headers=signed, csrf=False).status_code == 200
    assert [(delivery.side, delivery.subject) for delivery in deliveries()] == [("shop", "1")]


def test_a_paused_integration_takes_deliveries_and_does_nothing_with_them(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    registered.active = False
    db.session.commit()
    sandbox.order()
    assert deliver(client, sandbox) == [200]
    assert deliveries() == []


def test_an_order_the_platform_cannot_answer_for_is_tried_again_then_left_to_the_pull(
    app: Flask, client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    package = sandbox.order()
    deliver(client, sandbox)
    sandbox.world.faults.error_rate = 1.0
    for attempt in range(1, app.config["WEBHOOK_ATTEMPTS"] + 1):
        handle(registered)
        [delivery] = deliveries()
        if attempt < app.config["WEBHOOK_ATTEMPTS"]:
            assert delivery.handled_at is None and delivery.attempts == attempt
            assert delivery.next_try_at is not None and delivery.next_try_at > utcnow()
            delivery.next_try_at = utcnow()  # its time comes
            db.session.commit()
    assert (delivery.outcome, delivery.attempts) == ("left to the pull", app.config["WEBHOOK_ATTEMPTS"])
    assert "503" in (delivery.last_error or "")
    sandbox.world.faults.error_rate = 0.0
    cycle(registered)
    assert sandbox.shop_order_for(package["shipmentPackageId"]) is not None


def test_a_sync_cycle_holding_the_integration_makes_the_deliveries_wait(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    sandbox.order()
    deliver(client, sandbox)
    held = utcnow() + timedelta(minutes=1)
    registered.pull_lease_until = held
    db.session.commit()
    handled = webhooks.handle(registered.id, lambda actions: None)
    assert handled.busy and handled.again is not None
    assert deliveries()[0].handled_at is None
    db.session.refresh(registered)
    assert registered.pull_lease_until == held  # the holder's lease, untouched


def test_deliveries_of_a_deleted_integration_end_their_job(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    sandbox.order()
    deliver(client, sandbox)
    integration_id = registered.id
    db.session.delete(registered)
    db.session.commit()
    assert webhooks.handle(integration_id, lambda actions: None).again is None


def test_the_sweeper_hands_out_deliveries_redis_did_not_take(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    sandbox.order()
    deliver(client, sandbox)  # the test's Redis is not there: nothing was handed out
    now = utcnow()
    assert webhooks.stale(now) == [registered.id]
    webhooks.handed_out(registered.id, now)
    assert webhooks.stale(now) == []
    later = now + timedelta(seconds=client.application.config["OUTBOX_REQUEUE_SECONDS"] + 1)
    assert webhooks.stale(later) == [registered.id]  # handed out, and no worker got to it


def test_a_bug_in_handling_is_tried_again_then_left_to_the_pull(
    app: Flask, client: Client, registered: Integration, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a platform's failure but the hub's own (here an ingest that raises): the delivery does not
    block the ones behind it for ever."""
    sandbox.order()
    deliver(client, sandbox)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(webhooks, "ingest", broken)
    for _ in range(app.config["WEBHOOK_ATTEMPTS"]):
        webhooks.handle(registered.id, lambda actions: None)
        db.session.execute(sa.update(WebhookDelivery).values(next_try_at=None))
        db.session.commit()
    [delivery] = deliveries()
    assert delivery.outcome == "left to the pull" and delivery.last_error == INTERNAL_ERROR


def test_handled_deliveries_are_deleted_after_some_days(
    app: Flask, client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    sandbox.order()
    deliver(client, sandbox)
    handle(registered)
    webhooks.forget_handled(utcnow())
    assert len(deliveries()) == 1
    webhooks.forget_handled(utcnow() + timedelta(days=app.config["WEBHOOK_KEEP_DAYS"], seconds=1))
    assert deliveries() == []


# -- the shop's side -----------------------------------------------------------------------------------


def test_a_tracking_code_entered_in_the_shop_reaches_the_marketplace_by_webhook(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    configure(registered, update_feedback=True, approval_feedback=True)
    package = sandbox.order()
    deliver(client, sandbox)
    handle(registered)
    deliver(client, sandbox)  # the shop's order.created and the approval's echoes
    handle(registered)
    items = [{"tracking_provider": "Sürat Kargo", "tracking_number": "SELLER123", "custom_tracking_link": ""}]
    with sandbox.world.lock:
        sandbox.world.update_shop_order(
            shop_order_of(sandbox, package),
            {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]},
        )
    assert deliver(client, sandbox) == [200]
    handle(registered)
    assert sandbox.package(package["shipmentPackageId"]).get("cargoSenderNumber") == "SELLER123"


def test_the_hub_s_own_writes_come_back_as_no_news(
    client: Client, registered: Integration, sandbox: Sandbox
) -> None:
    configure(registered, reverse_flow=True)
    package = sandbox.order()
    deliver(client, sandbox)
    handle(registered)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    deliver(client, sandbox)
    handle(registered)
    assert shop_order_of(sandbox, package)["status"] == "completed"
    before = len(sandbox.world.requests)
    assert set(deliver(client, sandbox)) == {
        200
    }  # the shop's order.created and order.updated for the hub's writes
    handle(registered)
    writes = [request for request in sandbox.world.requests[before:] if request[0] in ("PUT", "POST")]
    assert writes == []
    summaries = db.session.scalars(sa.select(OrderEvent.summary)).all()
    assert summaries and not any("(in the shop)" in summary for summary in summaries)


# -- pulls as reconciliation ------------------------------------------------------------------------------


def test_pulls_slow_down_only_while_every_side_they_read_pushes(app: Flask, registered: Integration) -> None:
    slow = timedelta(seconds=app.config["WEBHOOK_PULL_INTERVAL"])
    assert pull.interval(registered) == slow  # the shop is not read: the marketplace's push is enough
    configure(registered, reverse_flow=True)
    assert pull.interval(registered) == slow
    registered.forget_webhooks(Side.SHOP)
    assert pull.interval(registered) == timedelta(seconds=registered.pull_interval)
    configure(registered, reverse_flow=False)
    assert pull.interval(registered) == slow


# -- Shopify -------------------------------------------------------------------------------------------


@pytest.fixture
def on_shopify(app: Flask, seller: Client, hub: Integration, sandbox: Sandbox) -> Iterator[Integration]:
    app.config["PUBLIC_URL"] = "https://hub.test"  # Shopify calls https addresses only
    shopify.forget_tokens()
    SHOPIFY.join(hub, sandbox)
    configure(hub, update_feedback=True, approval_feedback=True, reverse_flow=True)
    assert seller.post(f"/integrations/{hub.id}/webhooks", htmx=True).status_code == 200
    db.session.expire_all()
    assert hub.shop_webhooks_at is not None
    topics = sorted(sub["topic"] for sub in sandbox.world.shopify.subscriptions.values())
    assert topics == ["FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE", "ORDERS_CANCELLED", "ORDERS_UPDATED"]
    yield hub
    shopify.forget_tokens()


def test_shopify_s_signed_webhooks_carry_the_seller_s_fulfilment_to_the_marketplace(
    client: Client, on_shopify: Integration, sandbox: Sandbox
) -> None:
    package = sandbox.order()
    deliver(client, sandbox)
    handle(on_shopify)
    deliver(client, sandbox)  # Shopify's deliveries for the hub's own order: no news
    handle(on_shopify)
    order = db.session.scalar(sa.select(Order))
    assert order is not None and order.shop_id
    assert sandbox.package(package["shipmentPackageId"])["status"] == "Picking"  # approved
    # Another channel's order in the same store: its deliveries are taken, and it is not read.
    sandbox.world.shopify.create_order({"lineItems": [{"title": "Elsewhere", "quantity": 1, "priceSet": {
        "shopMoney": {"amount": "10.00", "currencyCode": "TRY"}}}]})  # fmt: skip
    sandbox.world.shopify.fulfil(order.shop_id, tracking_number="SELLER9", company="Sürat Kargo")
    assert set(deliver(client, sandbox)) == {200}
    handle(on_shopify)
    assert sandbox.package(package["shipmentPackageId"]).get("cargoSenderNumber") == "SELLER9"
    elsewhere = [d for d in deliveries() if d.side == "shop" and d.subject != order.shop_id]
    assert elsewhere and {delivery.outcome for delivery in elsewhere} == {"not ours"}


def test_the_fulfilment_the_hub_makes_with_a_tracking_code_is_not_read_back_as_the_seller_s(
    client: Client, on_shopify: Integration, sandbox: Sandbox
) -> None:
    """Shopify keeps a tracking code on a fulfilment: passing the marketplace's code fulfils the order.
    That is the hub's doing, and with the reverse flow on it must not go back to the marketplace."""
    package = sandbox.order()
    deliver(client, sandbox)
    handle(on_shopify)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    deliver(client, sandbox)
    handle(on_shopify)
    order = db.session.scalar(sa.select(Order))
    assert order is not None and order.shop_status == "fulfilled"
    actions = db.session.query(OrderAction).count()
    assert set(deliver(client, sandbox)) == {200}  # Shopify's deliveries for the fulfilment
    handle(on_shopify)
    assert db.session.query(OrderAction).count() == actions
    summaries = db.session.scalars(sa.select(OrderEvent.summary)).all()
    assert not any("(in the shop)" in summary for summary in summaries)


def test_junk_sent_to_an_address_does_not_use_up_what_its_platform_needs(
    app: Flask, client: Client, registered: Integration
) -> None:
    app.config.update(WEBHOOK_RATE_LIMIT="3 per minute", WEBHOOK_REFUSED_LIMIT="2 per minute")
    secret = registered.webhook_secret()
    path = f"/webhooks/{registered.webhook_token}/shop"

    def post(body: bytes, key: str, client_address: str) -> int:
        signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
        headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Signature": signature}
        sent = client.post(
            path, data=body, headers=headers, csrf=False, environ_base={"REMOTE_ADDR": client_address}
        )
        return sent.status_code

    forged = [post(b'{"id": 1}', "guessed", "203.0.113.9") for _ in range(4)]
    assert forged == [401, 401, 429, 429]
    taken = [post(json.dumps({"id": number}).encode(), secret, "192.0.2.1") for number in range(4)]
    assert taken == [200, 200, 200, 429]  # the platform's own limit, untouched by the junk
    db.session.expire_all()
    assert registered.webhooks_refused == 2


# -- Hepsiburada: set up by a ticket --------------------------------------------------------------------


@pytest.fixture
def on_hepsiburada(seller: Client, account: Account, sandbox: Sandbox) -> Integration:
    """A Hepsiburada integration whose seller has asked the hub for the address and password, and given
    them to HB's support in a ticket (the sandbox's control endpoint plays the support)."""
    sandbox.world.webhooks.hold = True
    integration = HEPSIBURADA.join(account, sandbox)
    page = seller.post(f"/integrations/{integration.id}/webhooks", htmx=True).get_data(as_text=True)
    db.session.expire_all()
    address = f"http://hub.test/webhooks/{integration.webhook_token}/marketplace"
    assert "by a ticket to its integration support" in page and address in page
    assert hepsiburada.WEBHOOK_USER in page and integration.webhook_secret() not in page
    assert integration.marketplace_webhooks_at is None  # nothing arrived yet: pulls as before
    shown = seller.post(f"/integrations/{integration.id}/webhooks/password", htmx=True)
    assert shown.headers["Cache-Control"] == "no-store"
    assert integration.webhook_secret() in shown.get_data(as_text=True)
    ticket = {"url": address, "username": hepsiburada.WEBHOOK_USER, "password": integration.webhook_secret()}
    sandbox.world.webhooks.release(lambda delivery: 200)  # WooCommerce's pings
    sandbox.world.hepsiburada.hook = ticket
    return integration


def test_hepsiburada_s_events_carry_new_orders_parcels_and_cancellations_without_a_pull(
    client: Client, on_hepsiburada: Integration, sandbox: Sandbox
) -> None:
    configure(on_hepsiburada, approval_feedback=False)  # HB packs on its own
    market = sandbox.world.hepsiburada
    number = HEPSIBURADA.new_order(sandbox)
    other = HEPSIBURADA.new_order(sandbox, [("8680001000011", 1), ("8680001000097", 1)])
    assert deliver(client, sandbox) == [200, 200]  # POST orders, twice
    db.session.expire_all()
    assert on_hepsiburada.marketplace_webhooks_at is not None  # the first delivery says the ticket worked
    handle(on_hepsiburada)
    orders = {order.package_id: order for order in db.session.scalars(sa.select(Order))}
    assert set(orders) == {number, other} and on_hepsiburada.pull_cursor is None
    assert {order.transfer_state for order in orders.values()} == {TransferState.TRANSFERRED}

    HEPSIBURADA.ship(sandbox, number)  # HB packs it on its own, and its carrier takes the parcel
    first, second = market.orders[other]["items"]
    market.cancel_lines(other, [first["id"]])  # the customer cancels one line
    # POST packages, PUT …/intransit, PUT …/cancel (and the shop's own for the orders the hub made)
    assert set(deliver(client, sandbox)) == {200}
    handle(on_hepsiburada)
    subjects = {
        delivery.topic: (delivery.subject, delivery.outcome)
        for delivery in deliveries()
        if delivery.side == "marketplace"
    }
    assert subjects["packages"] == (number, "handled")  # HB packed it: the order read again
    assert subjects["packages/intransit"] == (number, "handled")
    assert subjects["lineitems/cancel"] == (f"line:{first['id']}", "handled")
    shipped, partly = (
        db.session.get_one(Order, orders[number].id),
        db.session.get_one(Order, orders[other].id),
    )
    assert shipped.marketplace_status == "InTransit" and shipped.tracking_number
    cut = {line.line_id: (line.cancelled or line.cancelled_quantity > 0) for line in partly.lines}
    assert cut == {first["id"]: True, second["id"]: False}
    # A parcel event naming no order: the order the hub knows the parcel of.
    parcel = market.orders[number]["items"][0]["packageNumber"]
    with market.lock:
        market.set_package_status(parcel, "Delivered", notify=False)
    auth = {
        "Authorization": "Basic "
        + base64.b64encode(f"orderhub:{on_hepsiburada.webhook_secret()}".encode()).decode()
    }
    path = f"/webhooks/{on_hepsiburada.webhook_token}/marketplace/packages/{parcel}/deliver"
    assert client.put(path, data=b"{}", headers=auth).status_code == 200
    handle(on_hepsiburada)
    assert db.session.get_one(Order, orders[number].id).marketplace_status == "Delivered"
    assert deliveries()[-1].subject == f"parcel:{parcel}" and deliveries()[-1].outcome == "handled"


def test_hepsiburada_s_deliveries_are_proven_by_the_ticket_s_password(
    client: Client, on_hepsiburada: Integration, sandbox: Sandbox
) -> None:
    sandbox.world.faults.webhook_forged_rate = 1.0
    HEPSIBURADA.new_order(sandbox)
    assert sorted(deliver(client, sandbox)) == [200, 401]
    db.session.expire_all()
    assert on_hepsiburada.webhooks_refused == 1 and len(deliveries()) == 1
    # A parcel or line the hub holds no order for (its order not in yet): left to the pull, nothing read.
    base = f"/webhooks/{on_hepsiburada.webhook_token}/marketplace"
    password = on_hepsiburada.webhook_secret()
    auth = {"Authorization": "Basic " + base64.b64encode(f"orderhub:{password}".encode()).decode()}
    assert client.put(f"{base}/packages/999/deliver", data=b"{}", headers=auth).status_code == 200
    assert client.put(f"{base}/lineitems/abc/cancel", data=b"{}", headers=auth).status_code == 200
    # A path HB may add one day: taken, and nothing kept (the endpoint must not block HB's flow).
    assert client.post(f"{base}/claims", data=b"{}", headers=auth).status_code == 200
    handle(on_hepsiburada)
    outcomes = {delivery.subject: delivery.outcome for delivery in deliveries()}
    assert outcomes["parcel:999"] == outcomes["line:abc"] == "not ours"
    assert len(outcomes) == 3


def test_what_the_hub_does_through_hepsiburada_s_api_is_not_sent_back(
    client: Client, on_hepsiburada: Integration, sandbox: Sandbox
) -> None:
    configure(on_hepsiburada, approval_feedback=True)
    number = HEPSIBURADA.new_order(sandbox)
    deliver(client, sandbox)
    handle(on_hepsiburada)
    assert HEPSIBURADA.status(sandbox, number) == "Packaged"  # the hub packed it through the API
    held = [delivery.url for delivery, _ in sandbox.world.webhooks.held]
    assert not [url for url in held if "/marketplace" in url]  # the shop's own only


def test_another_shop_keeps_the_address_hepsiburada_s_ticket_gave(
    client: Client, on_hepsiburada: Integration, sandbox: Sandbox
) -> None:
    HEPSIBURADA.new_order(sandbox)
    deliver(client, sandbox)
    db.session.expire_all()
    token, secret = on_hepsiburada.webhook_token, on_hepsiburada.webhook_secret()
    assert on_hepsiburada.marketplace_webhooks_at is not None
    on_hepsiburada.platform_changed(Side.SHOP)  # another shop: HB cannot be pointed at a new address
    db.session.commit()
    assert (on_hepsiburada.webhook_token, on_hepsiburada.webhook_secret()) == (token, secret)
    assert on_hepsiburada.marketplace_webhooks_at is not None and on_hepsiburada.shop_webhooks_at is None
    on_hepsiburada.platform_changed(Side.MARKETPLACE)  # another HB account: a new ticket, a new address
    assert on_hepsiburada.webhook_token is None and on_hepsiburada.marketplace_webhooks_at is None
