"""Trendyol's line cancellation, as the platform behaves: some lines (or units) of a package are cancelled,
the package is cancelled and the rest goes on in a new package id. Which lines the cancelled package still
lists is not documented, so every test runs with each thing it might list (`cancelled_package_lists`)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from extensions import db
from models import Account, Integration, OrderAction, TransferState
from sandbox.state import now_ms
from sync import actions, pull
from sync.actions import TOTAL_DIFFERS
from tests.pipeline import configure, cycle, order_for
from tests.sandbox_server import Sandbox
from tests.test_pipeline import OIL, TSHIRT, _products, history

LISTINGS = ("cancelled", "all", "none")


@pytest.fixture(params=LISTINGS)
def listing(request: pytest.FixtureRequest, sandbox: Sandbox) -> str:
    sandbox.world.faults.update({"cancelled_package_lists": request.param})
    return str(request.param)


def unsupply(
    sandbox: Sandbox, package: dict[str, Any], barcode: str, units: int | None = None, *, status: str = ""
) -> dict[str, Any]:
    """The seller unsupplies a line (or `units` of it) on Trendyol; the rest goes on in a new package,
    in `status` if given (Trendyol may create it anew, Created)."""
    line = next(
        line for line in sandbox.package(package["shipmentPackageId"])["lines"] if line["barcode"] == barcode
    )
    with sandbox.world.lock:
        successor = sandbox.world.cancel_lines(
            sandbox.package(package["shipmentPackageId"]),
            {line["lineId"]},
            {line["lineId"]: units} if units else None,
        )
        assert successor is not None
        if status:
            successor["status"] = successor["shipmentPackageStatus"] = status
    return successor


def lines_of(package: dict[str, Any]) -> list[tuple[str, int, bool, int]]:
    """The hub's lines of the package: (stock code, quantity, cancelled, units cancelled off it)."""
    order = order_for(package)
    return [(line.stock_code, line.quantity, line.cancelled, line.cancelled_quantity) for line in order.lines]


def notes(sandbox: Sandbox) -> list[str]:
    (shop_order,) = sandbox.shop_orders()
    return [note["note"] for note in shop_order["notes"]]


def test_lines_belong_to_the_package_that_holds_them_now(
    hub: Integration, sandbox: Sandbox, account: Account, listing: str
) -> None:
    configure(hub, decrease_stock=True, cancellation_transfer=True)
    tshirt, oil = _products(account)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = unsupply(sandbox, package, OIL)
    cycle(hub)
    assert lines_of(successor) == [("TS-BEYAZ-M", 2, False, 0)]
    assert lines_of(package) == [("ZEYTINYAGI-1L", 1, True, 0)]
    (shop_order,) = sandbox.shop_orders()
    assert shop_order["status"] == "processing"  # the t-shirts still go
    # The note names the oil, and only the oil.
    assert notes(sandbox) == [
        "Pazaryerinde iptal edilen satırlar: Soğuk Sıkım Zeytinyağı 1 L (ZEYTINYAGI-1L) × 1"
    ]
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == (8, 5)


def test_units_cancelled_off_a_line_are_named_and_go_back_to_stock(
    hub: Integration, sandbox: Sandbox, account: Account, listing: str
) -> None:
    configure(hub, decrease_stock=True, cancellation_transfer=True)
    tshirt, oil = _products(account)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 3}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = unsupply(sandbox, package, TSHIRT, units=1)
    cycle(hub)
    assert lines_of(successor) == [("TS-BEYAZ-M", 2, False, 1), ("ZEYTINYAGI-1L", 1, False, 0)]
    assert notes(sandbox) == [
        "Pazaryerinde iptal edilen satırlar: Pamuklu Basic Tişört Beyaz (TS-BEYAZ-M) × 1"
    ]
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == (8, 4)
    cycle(hub)  # a replay moves nothing again
    db.session.refresh(tshirt)
    assert tshirt.stock == 8


@pytest.mark.parametrize(("on", "expected"), [(True, "Picking"), (False, "Created")])
def test_the_new_package_is_approved_like_any_other(
    hub: Integration, sandbox: Sandbox, listing: str, on: bool, expected: str
) -> None:
    configure(hub, approval_feedback=False)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    configure(hub, approval_feedback=on)
    successor = unsupply(sandbox, package, OIL, status="Created")
    cycle(hub)
    assert sandbox.package(successor["shipmentPackageId"])["status"] == expected
    assert len(sandbox.shop_orders()) == 1


def test_the_new_package_is_followed_and_the_shop_hears_its_status(
    hub: Integration, sandbox: Sandbox, listing: str
) -> None:
    configure(hub, status_change_transfer=True)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = unsupply(sandbox, package, OIL)
    cycle(hub)
    sandbox.set_status(successor["shipmentPackageId"], "Shipped")
    cycle(hub)
    (shop_order,) = sandbox.shop_orders()
    assert shop_order["status"] == "completed"
    assert order_for(successor).status == "Shipped"


def test_the_shop_s_cancellation_unsupplies_the_lines_of_the_new_package(
    hub: Integration, sandbox: Sandbox, listing: str
) -> None:
    """The reverse flow talks to the package that holds the lines now, naming them (never `lines: []`)."""
    configure(hub, reverse_flow=True)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = unsupply(sandbox, package, OIL)
    cycle(hub)
    with sandbox.world.lock:
        (shop_order,) = sandbox.world.shop_orders.values()
        sandbox.world.update_shop_order(shop_order, {"status": "cancelled"})
    cycle(hub)
    assert sandbox.package(successor["shipmentPackageId"])["status"] == "Cancelled"
    follower = order_for(successor)
    assert follower.transfer_state == TransferState.TRANSFERRED and follower.error_reason is None


def test_the_cancelled_package_seen_first_gives_its_lines_up_to_the_new_one(
    hub: Integration, sandbox: Sandbox, account: Account, listing: str
) -> None:
    """A pull may read the cancelled package before the new one (another page, the next pull): what the
    new package holds lives again, and the stock follows."""
    configure(hub, decrease_stock=True, cancellation_transfer=False)
    tshirt, oil = _products(account)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 3}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = unsupply(sandbox, package, TSHIRT, units=1)
    with sandbox.world.lock:
        held_back = sandbox.world.packages.pop(successor["shipmentPackageId"])
    cycle(hub)
    assert not any(not cancelled for _, _, cancelled, _ in lines_of(package))
    with sandbox.world.lock:
        held_back["lastModifiedDate"] = now_ms()
        sandbox.world.packages[held_back["shipmentPackageId"]] = held_back
    cycle(hub)
    assert lines_of(successor) == [("TS-BEYAZ-M", 2, False, 1), ("ZEYTINYAGI-1L", 1, False, 0)]
    assert lines_of(package) == []  # one row per line: the unit cut off is counted on the line that went on
    db.session.refresh(tshirt)
    db.session.refresh(oil)
    assert (tshirt.stock, oil.stock) == (8, 4)


def test_a_cancelled_package_listing_no_lines_is_read(
    hub: Integration, sandbox: Sandbox, account: Account
) -> None:
    configure(hub, decrease_stock=True)
    tshirt, _ = _products(account)
    sandbox.world.faults.update({"cancelled_package_lists": "none"})
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    line_id = package["lines"][0]["lineId"]
    with sandbox.world.lock:
        assert sandbox.world.cancel_lines(sandbox.package(package["shipmentPackageId"]), {line_id}) is None
    cycle(hub)
    order = order_for(package)
    assert order.error_reason is None and order.status == "Cancelled"
    assert lines_of(package) == [("TS-BEYAZ-M", 1, True, 0)]
    db.session.refresh(tshirt)
    assert tshirt.stock == 10


def test_a_whole_cancellation_waits_for_the_package_the_rest_went_on_in(
    hub: Integration, sandbox: Sandbox, listing: str
) -> None:
    """Read alone, the cancelled package looks like a cancelled order; before the shop order is cancelled
    the hub asks Trendyol for the order's packages, and waits for the pull to read the live one."""
    configure(hub, cancellation_transfer=True)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 2}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    successor = unsupply(sandbox, package, OIL)
    with sandbox.world.lock:  # this pull does not read it (another page, a window behind)
        successor["lastModifiedDate"] = now_ms() - 3_600_000
    pull.sync_integration(hub.id)
    cancel = db.session.scalars(sa.select(OrderAction).where(OrderAction.kind == "shop_cancel")).one()
    before = len(sandbox.world.requests)
    assert actions.run(cancel.id).retry_at is not None
    asked = [(method, path) for method, path, _ in sandbox.world.requests[before:]]
    assert [method for method, path in asked if path.endswith("/orders") and "sellers" in path] == ["GET"]
    assert not any(method == "PUT" for method, _ in asked)  # nothing changed in the shop
    (shop_order,) = sandbox.shop_orders()
    assert shop_order["status"] == "processing"
    with sandbox.world.lock:
        successor["lastModifiedDate"] = now_ms()
    cycle(hub)
    (shop_order,) = sandbox.shop_orders()
    assert shop_order["status"] == "processing"
    assert notes(sandbox) == [
        "Pazaryerinde iptal edilen satırlar: Soğuk Sıkım Zeytinyağı 1 L (ZEYTINYAGI-1L) × 1"
    ]
    assert lines_of(successor) == [("TS-BEYAZ-M", 2, False, 0)]


def test_a_line_cut_twice_is_named_once_per_cut(hub: Integration, sandbox: Sandbox, listing: str) -> None:
    configure(hub, cancellation_transfer=True)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 3}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    second = unsupply(sandbox, package, TSHIRT, units=1)
    cycle(hub)
    third = unsupply(sandbox, second, TSHIRT, units=1)
    cycle(hub)
    assert lines_of(third) == [("TS-BEYAZ-M", 1, False, 1), ("ZEYTINYAGI-1L", 1, False, 0)]
    cut = "Pazaryerinde iptal edilen satırlar: Pamuklu Basic Tişört Beyaz (TS-BEYAZ-M) × 1"
    assert notes(sandbox) == [cut]  # the same words twice: the shop keeps one note of them
    assert [summary for _, _, summary in history(order_for(second)) if "note on the shop" in summary] == [
        f"note on the shop order: {cut}"
    ]


def test_two_cuts_read_in_one_pull_keep_one_shop_order(
    hub: Integration, sandbox: Sandbox, listing: str
) -> None:
    """The package split from a split package may come first on the page, its own origin not known yet:
    it is still of the same order (its lines are), and the shop order is neither doubled nor cancelled."""
    configure(hub, cancellation_transfer=True)
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 3}, {"barcode": OIL, "quantity": 1}])
    cycle(hub)
    second = unsupply(sandbox, package, TSHIRT, units=1)
    third = unsupply(sandbox, second, TSHIRT, units=1)
    with sandbox.world.lock:  # made before its origin's cancellation was written: first on the page
        third["lastModifiedDate"] = sandbox.package(second["shipmentPackageId"])["lastModifiedDate"] - 5
    cycle(hub)
    (shop_order,) = sandbox.shop_orders()
    assert shop_order["status"] == "processing"
    assert lines_of(third) == [("TS-BEYAZ-M", 1, False, 2), ("ZEYTINYAGI-1L", 1, False, 0)]
    assert order_for(third).reference == order_for(package).reference
    units = [int(note.rsplit("× ", 1)[1]) for note in notes(sandbox)]
    assert sum(units) == 2


def test_a_total_the_shop_will_not_correct_is_put_before_the_seller(
    hub: Integration, sandbox: Sandbox
) -> None:
    """The shop order is made; its total cannot be corrected (the store turns every update down): the
    order is in the shop all the same, and the seller is told the totals differ."""
    sandbox.world.taxes.update({"enabled": False})  # the store adds no VAT: a correction is needed
    sandbox.world.faults.update({"rate_limit_rate": 1, "rate_limit_method": "PUT", "retry_after": 1})
    package = sandbox.order(lines=[{"barcode": TSHIRT, "quantity": 1}])
    cycle(hub)
    order = order_for(package)
    assert order.transfer_state == TransferState.TRANSFERRED and order.shop_id is not None
    assert order.review_reason == TOTAL_DIFFERS
    assert any("is not the marketplace's" in summary for _, _, summary in history(order))
    assert len(sandbox.shop_orders()) == 1
