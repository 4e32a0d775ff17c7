"""Every General setting acting on real orders: sandbox over HTTP, the pipeline run step by step."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from extensions import db
from models import (
    Account,
    ActionState,
    Integration,
    Order,
    OrderAction,
    OrderEvent,
    Product,
    StatusMap,
    TransferState,
)
from models.base import utcnow
from sandbox.state import now_ms, woo_time
from sync import actions, pull
from sync.settings import Priority, TrackingCodeSource
from sync.statuses import CanonicalStatus
from tests.conftest import Client, join_sandbox, make_account, make_action, running_app
from tests.pipeline import configure, cycle, drain, due_now, english, order_for
from tests.sandbox_server import Sandbox, serve_sandbox

TSHIRT = "8680001000011"  # TS-BEYAZ-M, 149.90, VAT 10
OIL = "8680001000097"  # ZEYTINYAGI-1L, 389.00, VAT 1


def history(order: Order) -> list[tuple[str, str | None, str]]:
    """The order's history lines, in English."""
    return [
        (event.kind, event.rule, english(event.summary, event.params))
        for event in db.session.scalars(order.events.select())
    ]


def shop_calls(sandbox: Sandbox, since: int) -> list[tuple[str, str]]:
    """The calls the shop got after the first `since` requests of the sandbox: (method, path under v3)."""
    return [
        (method, path.split("/wc/v3", 1)[1])
        for method, path, _ in sandbox.world.requests[since:]
        if path.startswith("/woocommerce/")
    ]


def fill_shop(sandbox: Sandbox, count: int, *, days_ago: int = 0) -> None:
    """The seller's own orders in the shop, taken `days_ago`: what a lookup would read through."""
    modified = woo_time(now_ms() - days_ago * 24 * 3600 * 1000)
    for _ in range(count):
        order = sandbox.world.create_shop_order({"line_items": [{"sku": "TS-BEYAZ-M", "total": "149.90"}]})
        order["date_created_gmt"] = order["date_modified_gmt"] = modified


def transfer_of(integration: Integration) -> OrderAction:
    """Pull, and the transfer it queued (not run yet)."""
    (transfer,) = [
        action for action in pull.sync_integration(integration.id).actions if action.kind == "transfer"
    ]
    return transfer


def listing_calls(sandbox: Sandbox) -> int:
    return sum(
        1
        for method, path, _ in sandbox.world.requests
        if method == "GET" and path.endswith("/orders") and "trendyol" in path
    )


# -- Activation -----------------------------------------------------------------------------------


def test_retrieve_orders_off_means_no_pulls(hub: Integration, sandbox: Sandbox) -> None:
    sandbox.order()
    configure(hub, retrieve_orders=False)
    cycle(hub)
    assert listing_calls(sandbox) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    configure(hub, retrieve_orders=True)
    cycle(hub)
    assert listing_calls(sandbox) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1


def test_automatic_transfer_on_creates_the_shop_order(hub: Integration, sandbox: Sandbox) -> None:
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}])
    cycle(hub)
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None and shop_order["id"] == int(order.shop_id or 0)
    assert shop_order["status"] == "processing"
    assert [(item["sku"], item["quantity"]) for item in shop_order["line_items"]] == [("TS-BEYAZ-M", 2)]
    kinds = [(kind, rule) for kind, rule, _ in history(order)]
    assert (
        ("received", None) in kinds
        and ("decided", "auto_transfer") in kinds
        and ("sent", "auto_transfer") in kinds
    )


def test_automatic_transfer_off_waits_for_the_transfer_button(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, auto_transfer=False)
    package = sandbox.order()
    cycle(hub)
    order = order_for(package)
    assert order.transfer_state == TransferState.WAITING and sandbox.shop_orders() == []
    actions.request_transfer(order)
    db.session.commit()
    drain()
    db.session.expire_all()
    assert order_for(package).transfer_state == TransferState.TRANSFERRED
    assert sandbox.shop_order_for(package["shipmentPackageId"]) is not None


def test_an_order_cancelled_before_the_shop_ends_there(hub: Integration, sandbox: Sandbox) -> None:
    """Cancelled on the marketplace while it waited (automatic transfer off), in the error queue, or
    already when first read: each ends as cancelled first, never waits for ever; a transferred one is
    cancelled in the shop as before."""
    configure(hub, auto_transfer=False)
    waiting = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    del sandbox.world.shop_products["ZEYTINYAGI-1L"]
    failing = sandbox.order(lines=[{"barcode": OIL, "quantity": 1}])
    transferred = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    for package in (failing, transferred):
        actions.request_transfer(order_for(package))
    db.session.commit()
    drain()
    db.session.expire_all()
    assert order_for(failing).transfer_state == TransferState.ERROR
    assert order_for(transferred).transfer_state == TransferState.TRANSFERRED
    for package in (waiting, failing, transferred):
        sandbox.set_status(package["shipmentPackageId"], "Cancelled")
    already = sandbox.order(status="Cancelled", lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    drain()
    db.session.expire_all()
    for package in (waiting, failing, already):
        order = order_for(package)
        assert order.transfer_state == TransferState.CANCELLED, package["shipmentPackageId"]
        assert order.error_reason is None
        assert any("before it reached the shop" in summary for _, _, summary in history(order))
    assert order_for(transferred).transfer_state == TransferState.TRANSFERRED
    assert sandbox.shop_order_for(transferred["shipmentPackageId"])["status"] == "cancelled"  # type: ignore[index]
    assert len(sandbox.shop_orders()) == 1
    # A cancelled order is done: "Transfer now" does not send it.
    actions.request_transfer(order_for(waiting))
    db.session.commit()
    drain()
    assert len(sandbox.shop_orders()) == 1


def test_a_shop_order_deleted_in_the_shop_is_a_clear_state_with_a_way_out(
    hub: Integration, sandbox: Sandbox
) -> None:
    """The seller deleted the shop order: the next push to it answers 404. The order goes to the error
    queue once, as a deleted shop order (not retried), and Transfer again creates it anew."""
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    drain()
    order = order_for(package)
    gone = int(order.shop_id or 0)
    del sandbox.world.shop_orders[gone]
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    cycle(hub)
    drain()
    db.session.expire_all()
    order = order_for(package)
    assert order.transfer_state == TransferState.ERROR and order.error_category == "shop_order_gone"
    failed = db.session.scalars(sa.select(OrderAction).where(OrderAction.state == ActionState.FAILED)).all()
    assert failed and {action.attempts for action in failed} == {1}  # a 404 is no reason to try again

    assert actions.transfer_again(order)
    db.session.commit()
    drain()
    db.session.expire_all()
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED and order.shop_id != str(gone)
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == "completed"  # type: ignore[index]
    assert any("transfer again asked" in summary for _, _, summary in history(order))


# -- Marketplace Feedback -------------------------------------------------------------------------


@pytest.mark.parametrize(("on", "expected"), [(True, "Picking"), (False, "Created")])
def test_addition_approval_feedback(hub: Integration, sandbox: Sandbox, on: bool, expected: str) -> None:
    configure(hub, approval_feedback=on)
    package = sandbox.order()
    cycle(hub)
    assert sandbox.package(package["shipmentPackageId"])["status"] == expected


# -- Communication Options -----------------------------------------------------------------------


@pytest.mark.parametrize(("on", "expected"), [(True, "completed"), (False, "processing")])
def test_status_change_transfer(hub: Integration, sandbox: Sandbox, on: bool, expected: str) -> None:
    configure(hub, status_change_transfer=on)
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    cycle(hub)
    assert order_for(package).status == CanonicalStatus.SHIPPED
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == expected  # type: ignore[index]


def test_the_statuses_tab_map_is_used(hub: Integration, sandbox: Sandbox) -> None:
    hub.status_maps.append(StatusMap(status=CanonicalStatus.SHIPPED.value, shop_status="on-hold"))
    db.session.commit()
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    cycle(hub)
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == "on-hold"  # type: ignore[index]


@pytest.mark.parametrize(("on", "expected"), [(True, "cancelled"), (False, "processing")])
def test_cancellation_status_transfer(hub: Integration, sandbox: Sandbox, on: bool, expected: str) -> None:
    configure(hub, cancellation_transfer=on)
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Cancelled")
    cycle(hub)
    assert order_for(package).status == CanonicalStatus.CANCELLED
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == expected  # type: ignore[index]


def test_a_completed_shop_order_is_flagged_not_cancelled(hub: Integration, sandbox: Sandbox) -> None:
    package = sandbox.order()
    cycle(hub)
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None
    sandbox.world.set_shop_status(shop_order, "completed")
    sandbox.set_status(package["shipmentPackageId"], "Cancelled")
    cycle(hub)
    assert shop_order["status"] == "completed"
    order = order_for(package)
    assert order.review_reason and "refund by hand" in order.review_reason


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (TrackingCodeSource.TRACKING_NUMBER, "cargoTrackingNumber"),
        (TrackingCodeSource.SHIPMENT_BARCODE, "cargoSenderNumber"),
        (TrackingCodeSource.PACKAGE_NUMBER, "shipmentPackageId"),
    ],
)
def test_tracking_code_transfer_writes_the_chosen_code(
    hub: Integration, sandbox: Sandbox, source: TrackingCodeSource, expected: str
) -> None:
    configure(hub, tracking_code_source=source)
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    cycle(hub)
    meta = _meta(sandbox, package)
    assert meta["hub_tracking_number"] == str(sandbox.package(package["shipmentPackageId"])[expected])
    assert meta["hub_tracking_url"] == ""  # no link unless forced


def test_a_new_tracking_code_source_reaches_the_orders_already_in_the_shop(
    seller: Client, hub: Integration, sandbox: Sandbox
) -> None:
    """The package number is there from the start and never changes, so nothing told an order in the shop
    about it: the change of the setting does (what the seller sees is what the setting says)."""
    package, shipped = sandbox.order(), sandbox.order()
    cycle(hub)
    sandbox.set_status(shipped["shipmentPackageId"], "Shipped")
    cycle(hub)
    assert "hub_tracking_number" not in _meta(sandbox, package)
    tracking_number = str(sandbox.package(shipped["shipmentPackageId"])["cargoTrackingNumber"])
    assert _meta(sandbox, shipped)["hub_tracking_number"] == tracking_number
    response = seller.post(
        f"/integrations/{hub.id}/general/tracking_code",
        data={"tracking_code_source": "package_number", "tracking_code_transfer": "y"},
        htmx=True,
    )
    assert response.status_code == 200
    drain()  # no Redis here: the orders were looked at in place, their actions wait in the outbox
    assert _meta(sandbox, package)["hub_tracking_number"] == str(package["shipmentPackageId"])
    assert _meta(sandbox, shipped)["hub_tracking_number"] == str(shipped["shipmentPackageId"])
    saved_again = seller.post(
        f"/integrations/{hub.id}/general/tracking_code",
        data={"tracking_code_source": "package_number", "tracking_code_transfer": "y"},
        htmx=True,
    )
    assert saved_again.status_code == 200
    assert drain() == 0  # nothing changed, nothing to send


def test_tracking_code_transfer_off_writes_nothing(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, tracking_code_transfer=False)
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    cycle(hub)
    assert "hub_tracking_number" not in _meta(sandbox, package)


def test_forcing_the_link_uses_the_marketplace_link_else_the_carrier_page(
    hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, force_tracking_link=True)
    with_link, without_link = sandbox.order(), sandbox.order()
    cycle(hub)
    sandbox.set_status(with_link["shipmentPackageId"], "Shipped")
    package = sandbox.package(without_link["shipmentPackageId"])
    with sandbox.world.lock:
        package.update(cargoTrackingNumber="7261234567", cargoProviderName="Aras Kargo Marketplace")
        sandbox.world.set_status(package, "Shipped")
        package["cargoTrackingLink"] = None
    cycle(hub)
    assert (
        _meta(sandbox, with_link)["hub_tracking_url"]
        == sandbox.package(with_link["shipmentPackageId"])["cargoTrackingLink"]
    )
    assert (
        _meta(sandbox, without_link)["hub_tracking_url"]
        == "https://kargotakip.araskargo.com.tr/mainpage.aspx?code=7261234567"
    )
    notes = sandbox.shop_order_for(without_link["shipmentPackageId"])["notes"]  # type: ignore[index]
    assert len(notes) == 1 and "7261234567" in notes[0]["note"]


def _meta(sandbox: Sandbox, package: dict[str, Any]) -> dict[str, Any]:
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None
    return {entry["key"]: entry["value"] for entry in shop_order["meta_data"]}


# -- Reverse flow, Update Feedback, Transaction Priority ----------------------------------------


def _seller_changes(sandbox: Sandbox, package: dict[str, Any], **change: Any) -> None:
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None
    sandbox.world.update_shop_order(shop_order, change)


@pytest.mark.parametrize(("on", "expected"), [(True, "Picking"), (False, "Created")])
def test_reverse_flow_sends_the_shops_status_back(
    hub: Integration, sandbox: Sandbox, on: bool, expected: str
) -> None:
    configure(hub, reverse_flow=on)
    package = sandbox.order()
    cycle(hub)
    _seller_changes(sandbox, package, status="completed")  # the seller sent it: Picking on the marketplace
    cycle(hub)
    assert sandbox.package(package["shipmentPackageId"])["status"] == expected
    requests_before = len(sandbox.world.requests)
    cycle(hub)  # the marketplace reports Picking/Invoiced: the hub's own change, not news for the shop
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None and shop_order["status"] == "completed"
    writes = [r for r in sandbox.world.requests[requests_before:] if r[0] in ("PUT", "POST")]
    assert writes == []  # no ping-pong


def test_a_shop_cancellation_after_delivery_is_not_sent_to_the_marketplace(
    hub: Integration, sandbox: Sandbox
) -> None:
    """The marketplace takes no cancellation of a delivered package (the sandbox refuses it, as Trendyol
    does): the hub does not send one, and tells the seller why and what to do instead."""
    configure(hub, reverse_flow=True)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Delivered")
    cycle(hub)
    drain()
    _seller_changes(sandbox, package, status="cancelled")
    before = len(sandbox.world.requests)
    cycle(hub)
    drain()
    assert not [r for r in sandbox.world.requests[before:] if r[1].endswith("/items/unsupplied")]
    assert sandbox.package(package["shipmentPackageId"])["status"] == "Delivered"
    order = order_for(package)
    assert "no cancellation now" in (order.review_reason or "")
    assert order.transfer_state == TransferState.TRANSFERRED
    assert any("not cancelled on the marketplace" in summary for _, _, summary in history(order))


def test_reverse_flow_needs_the_own_shipping_agreement(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, reverse_flow=True)
    hub.own_shipping_agreement = False
    db.session.commit()
    package = sandbox.order()
    cycle(hub)
    _seller_changes(sandbox, package, status="completed")
    cycle(hub)
    assert sandbox.package(package["shipmentPackageId"])["status"] == "Created"


def _tracking_in_the_shop(sandbox: Sandbox, package: dict[str, Any], carrier: str, number: str) -> None:
    """The seller enters a tracking code of their own carrier in the shop (Shipment Tracking's meta)."""
    items = [{"tracking_provider": carrier, "tracking_number": number, "custom_tracking_link": ""}]
    _seller_changes(sandbox, package, meta_data=[{"key": "_wc_shipment_tracking_items", "value": items}])


@pytest.mark.parametrize(("on", "expected"), [(True, "SELLER123"), (False, None)])
def test_update_feedback_sends_the_sellers_tracking_code(
    hub: Integration, sandbox: Sandbox, on: bool, expected: str | None
) -> None:
    """Through Trendyol's current endpoint (tracking-details): the number as cargoSenderNumber, with the
    carrier's code; the package shows it back, which is no news for the hub."""
    configure(hub, update_feedback=on)
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Picking")  # accepted: Trendyol takes a code now
    cycle(hub)
    _tracking_in_the_shop(sandbox, package, "Sürat Kargo", "SELLER123")
    cycle(hub)
    now = sandbox.package(package["shipmentPackageId"])
    assert now.get("cargoSenderNumber") == expected
    if on:
        assert now["cargoProviderName"] == "Sürat Kargo Marketplace"
        calls = [(method, path) for method, path, _ in sandbox.world.requests if "tracking" in path]
        assert [method for method, _ in calls] == ["PUT"] and calls[0][1].endswith("/tracking-details")
        cycle(hub)  # the package comes back with the code: nothing goes out again
        assert drain() == 0 and len([call for call in sandbox.world.requests if "tracking" in call[1]]) == 1


@pytest.mark.parametrize(
    ("carrier", "accepted", "reason"),
    [
        ("Yurtiçi Kargo", False, "Shipment tracking number cannot be updated"),  # still Created there
        ("Bisiklet Kurye", True, "Trendyol has no carrier code for 'Bisiklet Kurye'"),
    ],
)
def test_a_tracking_code_trendyol_cannot_take_is_an_error_that_says_why(
    hub: Integration, sandbox: Sandbox, carrier: str, accepted: bool, reason: str
) -> None:
    configure(hub, update_feedback=True)
    package = sandbox.order()
    cycle(hub)
    if accepted:
        sandbox.set_status(package["shipmentPackageId"], "Picking")
        cycle(hub)
    _tracking_in_the_shop(sandbox, package, carrier, "SELLER9")
    cycle(hub)
    order = order_for(package)
    assert (order.transfer_state, order.error_category) == (TransferState.ERROR, "marketplace_refused")
    assert reason in (order.error_reason or "")
    assert not sandbox.package(package["shipmentPackageId"]).get("cargoSenderNumber")


@pytest.mark.parametrize(
    ("priority", "shop_status"), [(Priority.MARKETPLACE, "completed"), (Priority.SHOP, "on-hold")]
)
def test_transaction_priority_when_both_sides_changed(
    hub: Integration, sandbox: Sandbox, priority: Priority, shop_status: str
) -> None:
    configure(hub, reverse_flow=True, priority=priority)
    package = sandbox.order()
    cycle(hub)
    # Between two syncs the carrier picks the parcel up and the seller puts the shop order on hold.
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    _seller_changes(sandbox, package, status="on-hold")
    cycle(hub)
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == shop_status  # type: ignore[index]
    assert any(rule == "priority" for _, rule, _ in history(order_for(package)))


# -- Stock Management ----------------------------------------------------------------------------


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
    hub: Integration, sandbox: Sandbox, account: Account, on: bool, expected: tuple[int, int]
) -> None:
    configure(hub, decrease_stock=on)
    tshirt, oil = _products(account)  # matched by barcode, and by stock code
    sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    hub.pull_cursor = None  # read the same packages again
    db.session.commit()
    cycle(hub)
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == expected


def test_a_cancellation_puts_the_stock_back_once(
    hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    configure(hub, decrease_stock=True)
    tshirt, _ = _products(account)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 3}])
    cycle(hub)
    db.session.refresh(tshirt)
    assert tshirt.stock == 7
    sandbox.set_status(package["shipmentPackageId"], "Cancelled")
    cycle(hub)
    hub.pull_cursor = None
    db.session.commit()
    cycle(hub)
    db.session.refresh(tshirt)
    assert tshirt.stock == 10


def cancel_oil_line(sandbox: Sandbox, package: dict[str, Any]) -> dict[str, Any]:
    """Trendyol's line cancellation: the oil line cancelled, the rest moved to a new package (returned)."""
    oil_line = next(line for line in package["lines"] if line["barcode"] == OIL)
    with sandbox.world.lock:
        successor = sandbox.world.cancel_lines(
            sandbox.package(package["shipmentPackageId"]), {oil_line["lineId"]}
        )
    assert successor is not None
    return successor


def test_a_cancelled_line_splits_the_package_without_a_second_shop_order(
    hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    configure(hub, decrease_stock=True)
    tshirt, oil = _products(account)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = cancel_oil_line(sandbox, package)
    cycle(hub)
    assert len(sandbox.shop_orders()) == 1
    (shop_order,) = sandbox.shop_orders()
    assert shop_order["status"] == "processing"  # not cancelled: the t-shirts still go
    assert any("ZEYTINYAGI-1L" in note["note"] for note in shop_order["notes"])
    follower = order_for(successor)
    assert follower.shop_id == order_for(package).shop_id and follower.origin_id == order_for(package).id
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == (8, 5)


# -- Shipment VAT Selection -----------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "net"), [(20, "29.16"), (0, "34.99"), (None, "31.81")])
def test_shipment_vat_selection(hub: Integration, sandbox: Sandbox, rate: int | None, net: str) -> None:
    """The shipping fee goes before tax at the chosen rate; the store taxes it as its settings say (its
    shipping tax class), and the order still comes to what the customer paid on the marketplace."""
    configure(hub, shipping_vat_rate=rate)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])  # 149.90 < 300: a 34.99 cargo fee
    cycle(hub)
    shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
    assert shop_order is not None
    (line,) = shop_order["shipping_lines"]
    assert Decimal(line["total"]).quantize(Decimal("0.01")) == Decimal(net)
    assert shop_order["total"] == "184.89" == str(order_for(package).total)


def test_the_shop_order_comes_to_the_marketplace_s_total_whatever_the_store_s_taxes(
    hub: Integration, sandbox: Sandbox
) -> None:
    """WooCommerce calculates an order's taxes and total itself, from its own settings: with taxes on
    and rates like the marketplace's, and with taxes off, the shop order's total is the marketplace's."""
    mixed = [{"barcode": TSHIRT, "quantity": 3}, {"barcode": OIL, "quantity": 1}]
    on = sandbox.order(lines=mixed)
    cycle(hub)
    sandbox.world.taxes.update({"enabled": False})
    off = sandbox.order(lines=mixed)
    cycle(hub)
    for package in (on, off):
        shop_order = sandbox.shop_order_for(package["shipmentPackageId"])
        assert shop_order is not None
        assert Decimal(shop_order["total"]) == order_for(package).total
        assert order_for(package).review_reason is None
    taxed = sandbox.shop_order_for(on["shipmentPackageId"])
    assert taxed is not None and Decimal(taxed["total_tax"]) > 0


# -- Bad input ------------------------------------------------------------------------------------


def test_a_broken_package_becomes_an_error_and_the_page_goes_on(hub: Integration, sandbox: Sandbox) -> None:
    good, broken = sandbox.order(), sandbox.order()
    del broken["customerFirstName"]
    broken["orderDate"] = "27.11.2026"
    cycle(hub)
    assert order_for(good).transfer_state == TransferState.TRANSFERRED
    order = order_for(broken)
    assert order.transfer_state == TransferState.ERROR and order.error_category == "invalid_data"
    assert "orderDate" in (order.error_reason or "") and order.raw["orderDate"] == "27.11.2026"
    # The marketplace corrects it: the next pull brings it in whole, and it goes on to the shop.
    broken["orderDate"] = good["orderDate"]
    broken["lastModifiedDate"] += 1
    cycle(hub)
    order = order_for(broken)
    assert order.transfer_state == TransferState.TRANSFERRED and order.error_reason is None


def test_an_unknown_sku_is_an_error_until_the_shop_has_it(hub: Integration, sandbox: Sandbox) -> None:
    del sandbox.world.shop_products["ZEYTINYAGI-1L"]
    package = sandbox.order(lines=[{"barcode": OIL, "quantity": 1}])
    other = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    order = order_for(package)
    assert order.transfer_state == TransferState.ERROR and order.error_category == "unknown_product"
    assert "ZEYTINYAGI-1L" in (order.error_reason or "")
    assert order_for(other).transfer_state == TransferState.TRANSFERRED
    assert order.shop_create_sent_at is None  # the shop turned the create down: nothing to look for
    sandbox.world.shop_products["ZEYTINYAGI-1L"] = 999
    actions.retry(order)
    db.session.commit()
    before = len(sandbox.world.requests)
    drain()
    db.session.expire_all()
    assert order_for(package).transfer_state == TransferState.TRANSFERRED
    assert len(sandbox.shop_orders()) == 2
    assert shop_calls(sandbox, before) == [("POST", "/orders")]  # the store's rates were read before


# -- Idempotency ----------------------------------------------------------------------------------


def test_replayed_and_duplicated_pages_change_nothing(app: Flask, hub: Integration, sandbox: Sandbox) -> None:
    for _ in range(7):
        sandbox.order()
    sandbox.world.faults.update({"duplicate_rate": 1})  # every page repeats the end of the one before
    app.config["PULL_PAGE_SIZE"] = 3
    cycle(hub)
    hub.pull_cursor = None  # and the whole window again
    db.session.commit()
    cycle(hub)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 7
    assert len(sandbox.shop_orders()) == 7
    transfers = db.session.scalar(
        sa.select(sa.func.count()).select_from(OrderAction).where(OrderAction.kind == "transfer")
    )
    assert transfers == 7


def test_a_transfer_is_one_create_however_big_the_shop(hub: Integration, sandbox: Sandbox) -> None:
    """Nothing of the order can be in the shop before the hub's first create: no lookup before it."""
    sandbox.world.faults.update({"search_covers_meta": False})  # the store a lookup costs most
    fill_shop(sandbox, 250)  # changed just now: three pages to read for a lookup
    package = sandbox.order()
    transfer = transfer_of(hub)
    before = len(sandbox.world.requests)
    actions.run(transfer.id)
    assert shop_calls(sandbox, before) == [("GET", "/taxes"), ("POST", "/orders")]
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED and order.shop_create_sent_at is not None
    (_, _, summary) = next(event for event in history(order) if event[0] == "sent")
    assert summary == f"created in the shop as #{order.shop_id} (processing)"


@pytest.mark.parametrize("search_covers_meta", [True, False])
def test_a_lost_answer_never_creates_twice(
    app: Flask, hub: Integration, sandbox: Sandbox, search_covers_meta: bool
) -> None:
    app.config["CONNECTOR_TIMEOUT"] = 0.5
    sandbox.world.faults.update({"search_covers_meta": search_covers_meta})
    fill_shop(sandbox, 150, days_ago=2)  # two pages of history a lookup has no reason to read
    package = sandbox.order()
    transfer = transfer_of(hub)
    # The shop creates the order, but its answer never arrives.
    sandbox.world.faults.update({"timeout_rate": 1, "timeout_method": "POST", "timeout_seconds": 1})
    assert actions.run(transfer.id).retry_at is not None
    assert len(sandbox.shop_orders()) == 151
    db.session.expire_all()
    order = order_for(package)
    assert order.transfer_state == TransferState.WAITING
    assert (
        order.shop_create_sent_at is not None
    )  # committed before the create went out: no rollback undoes it
    sandbox.world.faults.update({"timeout_rate": 0})
    due_now()  # the retry's time has come
    before = len(sandbox.world.requests)
    actions.run(transfer.id)
    # Found by its reference: by the search where it reads meta, else among the orders changed since
    # the create went out (one page), never by a second create.
    lookup = [("GET", "/orders")] if search_covers_meta else [("GET", "/orders"), ("GET", "/orders")]
    assert shop_calls(sandbox, before) == lookup
    drain()
    db.session.expire_all()
    assert len(sandbox.shop_orders()) == 151
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED
    assert order.shop_id == str(sandbox.shop_order_for(package["shipmentPackageId"])["id"])  # type: ignore[index]
    assert any("found by reference" in summary for _, _, summary in history(order))


@pytest.mark.parametrize(
    ("fault", "lookup"),
    [
        ({"rate_limit_rate": 1}, []),  # a 429 made nothing: nothing to look for
        ({"error_rate": 1}, [("GET", "/orders"), ("GET", "/orders")]),  # a 5xx may have made it
    ],
)
def test_only_a_create_that_may_have_reached_the_shop_is_looked_up(
    hub: Integration, sandbox: Sandbox, fault: dict[str, int], lookup: list[tuple[str, str]]
) -> None:
    package = sandbox.order()
    transfer = transfer_of(hub)
    sandbox.world.faults.update(fault)
    assert actions.run(transfer.id).retry_at is not None
    sandbox.world.faults.update({"rate_limit_rate": 0, "error_rate": 0})
    due_now()  # the retry's time has come
    before = len(sandbox.world.requests)
    actions.run(transfer.id)
    assert shop_calls(sandbox, before) == [*lookup, ("POST", "/orders")]
    assert len(sandbox.shop_orders()) == 1
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED
    summaries = [summary for kind, _, summary in history(order) if kind == "sent"]
    assert ("was there yet" in summaries[-1]) == bool(lookup)


def test_a_create_turned_down_after_a_lost_one_keeps_the_first_note(
    hub: Integration, sandbox: Sandbox
) -> None:
    """A create went out and its answer was lost; the shop has not shown the order yet when the next
    attempt looks, so that attempt creates, and the shop turns it down (429). The note of the first create
    stays, so the attempt after that looks again and finds the first create's order: never two."""
    package = sandbox.order()
    transfer = transfer_of(hub)
    order = order_for(package)
    first = utcnow() - timedelta(seconds=30)
    order.shop_create_sent_at = first  # the first create went out; its order is not in the shop yet
    db.session.commit()
    sandbox.world.faults.update({"rate_limit_rate": 1, "rate_limit_method": "POST"})
    before = len(sandbox.world.requests)
    assert actions.run(transfer.id).retry_at is not None
    assert shop_calls(sandbox, before)[-1] == ("POST", "/orders")  # looked, found nothing, created: 429
    db.session.expire_all()
    assert order_for(package).shop_create_sent_at == first

    # The first create's order comes into the shop now, as the hub had sent it.
    sandbox.world.create_shop_order(
        {"status": "processing", "meta_data": [{"key": "hub_reference", "value": order.reference}]}
    )
    sandbox.world.faults.update({"rate_limit_rate": 0})
    due_now()  # the retry's time has come
    before = len(sandbox.world.requests)
    actions.run(transfer.id)
    assert ("POST", "/orders") not in shop_calls(sandbox, before)
    assert len(sandbox.shop_orders()) == 1
    assert order_for(package).transfer_state == TransferState.TRANSFERRED


def test_a_lost_create_is_found_by_the_package_split_from_it(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    """The package that goes in its origin's place carries the same reference, and so the same question."""
    app.config["CONNECTOR_TIMEOUT"] = 0.5
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    transfer = transfer_of(hub)
    sandbox.world.faults.update({"timeout_rate": 1, "timeout_method": "POST", "timeout_seconds": 1})
    actions.run(transfer.id)
    sandbox.world.faults.update({"timeout_rate": 0})
    successor = cancel_oil_line(sandbox, package)
    cycle(hub)
    (shop_order,) = sandbox.shop_orders()
    follower = order_for(successor)
    assert follower.transfer_state == TransferState.TRANSFERRED and follower.shop_id == str(shop_order["id"])
    assert any("found by reference" in summary for _, _, summary in history(follower))


def test_a_lost_create_is_found_on_the_first_page_however_busy_the_shop_since(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    """On a store whose search ignores meta, the lookup reads the orders created since the first create,
    oldest first: the lost one is on the first page, though the seller changed hundreds of older orders
    and took hundreds of new ones since."""
    app.config["CONNECTOR_TIMEOUT"] = 0.5
    fill_shop(sandbox, 250, days_ago=1)
    package = sandbox.order()
    transfer = transfer_of(hub)
    sandbox.world.faults.update(
        {"timeout_rate": 1, "timeout_method": "POST", "timeout_seconds": 1, "search_covers_meta": False}
    )
    assert actions.run(transfer.id).retry_at is not None  # the answer was lost; the order is there
    sandbox.world.faults.update({"timeout_rate": 0})
    with sandbox.world.lock:
        for shop_order in sandbox.world.shop_orders.values():  # the seller works through older orders
            shop_order["date_modified_gmt"] = woo_time(now_ms())
    fill_shop(sandbox, 250)  # and the shop goes on selling
    due_now()  # the retry's time has come
    before = len(sandbox.world.requests)
    actions.run(transfer.id)
    assert shop_calls(sandbox, before) == [("GET", "/orders"), ("GET", "/orders")]  # search, first page
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED
    assert [o["id"] for o in sandbox.shop_orders() if str(o["id"]) == order.shop_id]


@pytest.fixture
def shared_db(tmp_path: Path) -> dict[str, str]:
    """A database two threads reach on connections of their own: the test PostgreSQL, or a SQLite file."""
    if os.environ.get("TEST_DATABASE_URL"):
        return {}
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'hub.sqlite3'}"}


def test_the_create_is_noted_before_it_goes_out(shared_db: dict[str, str]) -> None:
    """A worker killed while the shop works on its create leaves the note behind, so the next attempt
    looks the order up: another connection sees it while the create is still on its way."""
    with running_app(**shared_db) as app, serve_sandbox() as sandbox:
        hub = join_sandbox(make_account(), sandbox)
        package = sandbox.order()
        transfer_id = transfer_of(hub).id
        order_id = order_for(package).id
        db.session.commit()
        sandbox.world.faults.update({"latency_ms": 1000})  # the shop takes a second before it creates
        failures: list[BaseException] = []

        def worker() -> None:
            with app.app_context():
                try:
                    actions.run(transfer_id)
                except BaseException as error:  # read below: the thread must not die with it
                    failures.append(error)

        thread = threading.Thread(target=worker)
        thread.start()
        noted, shop_orders_then, deadline = None, -1, time.monotonic() + 10
        while noted is None and time.monotonic() < deadline:
            with db.engine.connect() as other:
                noted = other.scalar(sa.select(Order.shop_create_sent_at).where(Order.id == order_id))
            shop_orders_then = len(sandbox.shop_orders())
            time.sleep(0.01)
        thread.join()
        assert failures == []
        assert noted is not None and shop_orders_then == 0
        assert len(sandbox.shop_orders()) == 1


def test_every_step_is_in_the_history(hub: Integration, sandbox: Sandbox) -> None:
    configure(hub, approval_feedback=True)
    package = sandbox.order()
    cycle(hub)
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    cycle(hub)
    events = history(order_for(package))
    kinds = {kind for kind, _, _ in events}
    assert {"received", "decided", "sent"} <= kinds
    rules = {rule for _, rule, _ in events if rule}
    assert {"approval_feedback", "auto_transfer", "status_change_transfer", "tracking_code_transfer"} <= rules
    received = db.session.scalars(
        sa.select(OrderEvent).where(OrderEvent.kind == "received").order_by(OrderEvent.id)
    ).first()
    assert received is not None and received.payload is not None
    assert received.payload["shipmentPackageId"] == package["shipmentPackageId"]
    done = db.session.scalars(sa.select(OrderAction.state)).all()
    assert set(done) == {ActionState.DONE}


# -- Retries and the sweeper ----------------------------------------------------------------------


def test_a_rate_limited_action_waits_for_retry_after(hub: Integration, sandbox: Sandbox) -> None:
    sandbox.order()
    outcome = pull.sync_integration(hub.id)
    (transfer,) = [action for action in outcome.actions if action.kind == "transfer"]
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 30})
    before = utcnow()
    result = actions.run(transfer.id)
    assert result.retry_at is not None
    assert timedelta(seconds=29) <= result.retry_at - before <= timedelta(seconds=32)
    row = db.session.get_one(OrderAction, transfer.id)
    assert (row.state, row.attempts, row.throttles) == (ActionState.PENDING, 0, 1)  # no attempt spent
    assert "429" in (row.last_error or "")


def test_a_spell_of_429s_spends_no_attempt_and_waits_longer_each_time(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    """A throttled approval used its 8 attempts in 32 s and went to the error queue: now each 429 gives
    its attempt back and the next wait is longer, at least Retry-After; the spell over, it goes through."""
    app.config.update(ACTION_MAX_ATTEMPTS=3)
    package = sandbox.order()
    transfer = transfer_of(hub)
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 1})
    waits = []
    for _ in range(8):  # more 429s than attempts
        before = utcnow()
        retry_at = actions.run(transfer.id).retry_at
        assert retry_at is not None
        waits.append((retry_at - before).total_seconds())
        due_now()
    row = db.session.get_one(OrderAction, transfer.id)
    assert (row.state, row.attempts, row.throttles) == (ActionState.PENDING, 0, 8)
    assert waits[-1] >= 128 > waits[0] >= 1  # 2 s doubling, with jitter: at least half of 2 × 2⁷
    sandbox.world.faults.update({"rate_limit_rate": 0})
    actions.run(transfer.id)
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED and len(sandbox.shop_orders()) == 1
    asked = [summary for kind, _, summary in history(order) if "asked the hub to wait" in summary]
    assert asked == ["transfer: the platform asked the hub to wait; it tries again by itself"]  # once


def test_an_endless_spell_of_429s_ends_in_the_error_queue(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    app.config.update(ACTION_MAX_THROTTLES=3)
    package = sandbox.order()
    transfer = transfer_of(hub)
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 1})
    for _ in range(4):
        actions.run(transfer.id)
        due_now()
    order = order_for(package)
    assert db.session.get_one(OrderAction, transfer.id).state == ActionState.FAILED
    assert order.transfer_state == TransferState.ERROR and order.error_category == "rate_limited"
    assert "3 answers in a row asking to wait" in (order.error_reason or "")


def test_an_action_never_runs_before_its_time(hub: Integration, sandbox: Sandbox) -> None:
    """Handed out early (RQ's scheduler keeps whole seconds), an action runs nothing and says when."""
    sandbox.order()
    transfer = transfer_of(hub)
    later = utcnow() + timedelta(seconds=30)
    transfer.next_attempt_at = later
    db.session.commit()
    before = len(sandbox.world.requests)
    outcome = actions.run(transfer.id)
    assert (outcome.ran, outcome.retry_at) == (False, later)
    assert len(sandbox.world.requests) == before
    assert db.session.get_one(OrderAction, transfer.id).state == ActionState.PENDING
    due_now()
    assert actions.run(transfer.id).ran is True


def test_a_rate_limited_pull_keeps_its_cursor_and_waits(hub: Integration, sandbox: Sandbox) -> None:
    sandbox.order()
    sandbox.world.faults.update({"rate_limit_rate": 1, "retry_after": 45})
    outcome = pull.sync_integration(hub.id)
    assert outcome.error and "429" in outcome.error
    db.session.expire_all()
    assert hub.pull_cursor is None and hub.pull_failures == 1
    assert hub.next_pull_at is not None and hub.next_pull_at - utcnow() > timedelta(seconds=40)


def test_the_sweeper_revives_actions_whose_worker_died(
    app: Flask, hub: Integration, sandbox: Sandbox
) -> None:
    configure(hub, approval_feedback=True)
    sandbox.order()
    outcome = pull.sync_integration(hub.id)
    stuck, forgotten = outcome.actions[0], outcome.actions[1]
    long_ago = utcnow() - timedelta(seconds=app.config["ACTION_LEASE_SECONDS"] + 1)
    stuck.state, stuck.claimed_at, stuck.attempts = ActionState.RUNNING, long_ago, 1
    forgotten.enqueued_at = forgotten.next_attempt_at = long_ago  # handed out, due, and never run
    db.session.commit()
    due = actions.stale_and_due(utcnow())
    assert {action.id for action in due} == {stuck.id, forgotten.id}
    assert db.session.get_one(OrderAction, stuck.id).state == ActionState.PENDING
    drain()
    assert len(sandbox.shop_orders()) == 1


# -- Orders that change before they reach the shop -----------------------------------------------


def test_an_order_cancelled_before_its_transfer_never_reaches_the_shop(
    hub: Integration, sandbox: Sandbox
) -> None:
    package = sandbox.order()
    pull.sync_integration(hub.id)  # the transfer is queued, not run yet
    sandbox.set_status(package["shipmentPackageId"], "Cancelled")
    cycle(hub)
    assert sandbox.shop_orders() == []
    assert any(
        "cancelled on the marketplace before" in summary for _, _, summary in history(order_for(package))
    )


def test_a_split_before_the_transfer_sends_the_lines_that_are_left(
    hub: Integration, sandbox: Sandbox
) -> None:
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    pull.sync_integration(hub.id)
    successor = cancel_oil_line(sandbox, package)
    cycle(hub)
    (shop_order,) = sandbox.shop_orders()
    assert [item["sku"] for item in shop_order["line_items"]] == ["TS-BEYAZ-M"]
    assert shop_order["status"] == "processing"
    assert order_for(successor).shop_id == str(shop_order["id"])


def test_a_cancellation_the_shop_sent_still_returns_the_stock(
    hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    configure(hub, decrease_stock=True, reverse_flow=True)
    tshirt, _ = _products(account)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 3}])
    cycle(hub)
    _seller_changes(sandbox, package, status="cancelled")
    cycle(hub)  # the hub unsupplies the lines on the marketplace
    assert sandbox.package(package["shipmentPackageId"])["status"] == "Cancelled"
    cycle(hub)  # the marketplace reports the cancellation the hub asked for
    db.session.refresh(tshirt)
    assert tshirt.stock == 10
    assert sandbox.shop_order_for(package["shipmentPackageId"])["status"] == "cancelled"  # type: ignore[index]


def test_a_tracking_code_entered_in_the_shop_is_not_dropped_for_a_status_the_hub_is_about_to_set(
    hub: Integration, sandbox: Any
) -> None:
    """Transaction Priority weighs changes to the same thing: a status the hub is about to write to the
    shop (marketplace first) does not drop the tracking code the seller entered there meanwhile."""
    configure(hub, update_feedback=True, approval_feedback=True, priority=Priority.MARKETPLACE)
    package = sandbox.order()
    cycle(hub)
    order = order_for(package)
    make_action(order, kind="shop_status", state="pending", rule="status_change_transfer",
                next_attempt_at=utcnow() + timedelta(minutes=5))  # fmt: skip
    items = [{"tracking_provider": "Sürat Kargo", "tracking_number": "SELLER7", "custom_tracking_link": ""}]
    with sandbox.world.lock:
        sandbox.world.update_shop_order(
            sandbox.shop_order_for(package["shipmentPackageId"]),
            {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": items}]},
        )
    pull.sync_integration(hub.id)
    pending = db.session.scalars(
        sa.select(OrderAction.kind).where(OrderAction.order_id == order.id, OrderAction.state == "pending")
    ).all()
    assert "marketplace_tracking" in pending
