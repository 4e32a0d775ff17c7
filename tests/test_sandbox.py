"""The sandbox's control endpoints and its Trendyol-shaped rules, over HTTP."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.state import World
from tests.conftest import free_port
from tests.sandbox_server import Sandbox, serve_sandbox

ROOT = Path(__file__).resolve().parents[1]

AUTH = ("sandbox-key", "sandbox-secret")
AGENT = {"User-Agent": "100200 - OrderHub"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def test_control_endpoints_drive_both_sides(sandbox: Sandbox) -> None:
    created = httpx.post(
        f"{sandbox.url}/_control/packages?count=2", json={"lines": [{"barcode": "8680001000011"}]}
    )
    assert created.status_code == 201
    first = created.json()[0]
    moved = httpx.post(
        f"{sandbox.url}/_control/packages/{first['shipmentPackageId']}/status", json={"status": "Shipped"}
    )
    assert moved.json()["status"] == "Shipped" and moved.json()["cargoTrackingNumber"]
    state = httpx.get(f"{sandbox.url}/_control/state").json()
    assert len(state["packages"]) == 2 and state["shop_orders"] == []
    assert "Trendyol packages" in httpx.get(sandbox.url).text


def test_fault_knobs_refuse_unknown_names(sandbox: Sandbox) -> None:
    assert httpx.post(f"{sandbox.url}/_control/faults", json={"chaos": 1}).status_code == 400
    assert httpx.post(f"{sandbox.url}/_control/faults", json={"error_rate": 0.5}).json()["error_rate"] == 0.5


def test_listing_follows_trendyols_limits(sandbox: Sandbox) -> None:
    url = f"{sandbox.marketplace_url}/order/sellers/100200/orders"
    assert httpx.get(url, params={"size": 201}, auth=AUTH, headers=AGENT).status_code == 400
    week = 7 * 24 * 3600 * 1000
    too_long = {"startDate": 1, "endDate": 3 * week}
    assert httpx.get(url, params=too_long, auth=AUTH, headers=AGENT).status_code == 400
    assert httpx.get(url, auth=("sandbox-key", "wrong"), headers=AGENT).status_code == 401


def test_statuses_only_move_forward_and_only_seller_ones(sandbox: Sandbox) -> None:
    package = sandbox.order()
    url = f"{sandbox.marketplace_url}/order/sellers/100200/shipment-packages/{package['shipmentPackageId']}"
    lines = [{"lineId": line["lineId"], "quantity": line["quantity"]} for line in package["lines"]]
    invoiced = {"lines": lines, "params": {"invoiceNumber": "A1"}, "status": "Invoiced"}
    assert httpx.put(url, json=invoiced, auth=AUTH, headers=AGENT).status_code == 200
    back = {"lines": lines, "params": {}, "status": "Picking"}
    assert httpx.put(url, json=back, auth=AUTH, headers=AGENT).status_code == 400
    shipped = {"lines": lines, "params": {}, "status": "Shipped"}
    assert httpx.put(url, json=shipped, auth=AUTH, headers=AGENT).status_code == 400


def test_cancelling_a_line_creates_a_new_package(sandbox: Sandbox) -> None:
    package = sandbox.order(lines=[{"barcode": "8680001000011"}, {"barcode": "8680001000097"}])
    packages_url = f"{sandbox.marketplace_url}/order/sellers/100200/shipment-packages"
    url = f"{packages_url}/{package['shipmentPackageId']}/items/unsupplied"
    body = {"lines": [{"lineId": package["lines"][0]["lineId"], "quantity": 1}], "reasonId": 500}
    assert httpx.put(url, json=body, auth=AUTH, headers=AGENT).status_code == 200
    packages = list(sandbox.world.packages.values())
    assert len(packages) == 2
    old, new = packages
    assert old["status"] == "Cancelled" and len(old["lines"]) == 1
    assert new["originPackageIds"] == [old["shipmentPackageId"]] and new["createdBy"] == "cancel"
    assert new["orderNumber"] == old["orderNumber"]


def unsupply(sandbox: Sandbox, package: dict[str, object], lines: list[dict[str, int]]) -> httpx.Response:
    url = (
        f"{sandbox.marketplace_url}/order/sellers/100200/shipment-packages/"
        f"{package['shipmentPackageId']}/items/unsupplied"
    )
    return httpx.put(url, json={"lines": lines, "reasonId": 500}, auth=AUTH, headers=AGENT)


def test_unsupplying_part_of_a_line_splits_its_units(sandbox: Sandbox) -> None:
    """Two of three t-shirts cancelled: the old package holds the two, the new one the third under the
    same lineId, both priced from the unit price; the mug moves on whole."""
    package = sandbox.order(
        lines=[{"barcode": "8680001000011", "quantity": 3}, {"barcode": "8680001000059", "quantity": 1}]
    )
    shirt, mug = (line["lineId"] for line in package["lines"])
    assert unsupply(sandbox, package, [{"lineId": shirt, "quantity": 2}]).status_code == 200
    old, new = sandbox.world.packages.values()
    assert [(line["lineId"], line["quantity"], line["lineGrossAmount"]) for line in old["lines"]] == [
        (shirt, 2, 299.80)
    ]
    assert [(line["lineId"], line["quantity"], line["lineGrossAmount"]) for line in new["lines"]] == [
        (shirt, 1, 149.90),
        (mug, 1, 89.99),
    ]
    assert old["status"] == "Cancelled" and old["packageGrossAmount"] == 299.80
    assert new["status"] == "Created" and new["packageTotalPrice"] == 274.88  # 239.89 + the 34.99 fee


@pytest.mark.parametrize("quantity", [0, 4, "2", None])
def test_unsupplying_more_units_than_the_line_holds_is_refused(sandbox: Sandbox, quantity: object) -> None:
    package = sandbox.order(lines=[{"barcode": "8680001000011", "quantity": 3}])
    line_id = package["lines"][0]["lineId"]
    answer = unsupply(sandbox, package, [{"lineId": line_id, "quantity": quantity}])  # type: ignore[dict-item]
    assert answer.status_code == 400 and f"quantity of line {line_id} must be from 1 to 3" in answer.text
    assert list(sandbox.world.packages.values()) == [package] and package["status"] == "Created"
    assert package["lines"][0]["quantity"] == 3


@pytest.mark.parametrize(
    ("listing", "lists"),
    [("cancelled", [(0, 1)]), ("all", [(0, 2), (1, 1)]), ("none", [])],
)
def test_what_the_cancelled_package_lists_is_a_knob(
    sandbox: Sandbox, listing: str, lists: list[tuple[int, int]]
) -> None:
    """Trendyol's docs do not say what a package it cancelled lines of still lists: the sandbox plays each
    reading, while the new package is the same every time."""
    httpx.post(f"{sandbox.url}/_control/faults", json={"cancelled_package_lists": listing}).raise_for_status()
    package = sandbox.order(
        lines=[{"barcode": "8680001000011", "quantity": 2}, {"barcode": "8680001000097", "quantity": 1}]
    )
    ids = [line["lineId"] for line in package["lines"]]
    successor = sandbox.world.cancel_lines(package, {ids[0]}, {ids[0]: 1})
    assert [(line["lineId"], line["quantity"]) for line in package["lines"]] == [
        (ids[index], quantity) for index, quantity in lists
    ]
    assert package["status"] == "Cancelled" and package["packageGrossAmount"] == 149.90
    assert successor is not None
    assert [(line["lineId"], line["quantity"]) for line in successor["lines"]] == [(ids[0], 1), (ids[1], 1)]
    assert all(line["orderLineItemStatusName"] == "Created" for line in successor["lines"])


def test_the_cancelled_package_listing_knob_takes_only_its_choices(sandbox: Sandbox) -> None:
    answer = httpx.post(f"{sandbox.url}/_control/faults", json={"cancelled_package_lists": "some"})
    assert answer.status_code == 400 and "cancelled, all, none" in answer.text


def test_tracking_details_as_trendyol_takes_them(sandbox: Sandbox) -> None:
    """Trendyol's Update Tracking Number: the carrier's number and code, once the package is accepted,
    changed at most until it is shipped; the deprecated endpoint is not played."""
    package = sandbox.order()
    url = f"{sandbox.marketplace_url}/order/sellers/100200/shipment-packages/{package['shipmentPackageId']}"

    def put(body: dict[str, str], path: str = "/tracking-details") -> int:
        return httpx.put(url + path, json=body, auth=AUTH, headers=AGENT).status_code

    code = {"cargoSenderNumber": "SELLER1", "providerCode": "YKMP"}
    assert put(code) == 400  # still Created: not accepted yet
    sandbox.set_status(package["shipmentPackageId"], "Picking")
    assert put({"cargoSenderNumber": "SELLER1"}) == 400  # no carrier code
    assert put({**code, "providerCode": "BISIKLET"}) == 400  # a carrier Trendyol does not list
    assert put({"trackingNumber": "SELLER1"}, "/update-tracking-number") == 404
    assert put(code) == 200
    now = sandbox.package(package["shipmentPackageId"])
    assert (now["cargoSenderNumber"], now["cargoProviderName"]) == ("SELLER1", "Yurtiçi Kargo Marketplace")
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    assert put({**code, "cargoSenderNumber": "SELLER2"}) == 400  # no new code once shipped
    assert put(code) == 200  # the same one again is harmless


def test_the_sandbox_keeps_its_orders_across_a_restart(tmp_path: Path) -> None:
    """`make run` twice: the sandbox process stopped with Ctrl-C (no traceback) and started again on the
    same state file still has the orders and shop orders of before, and goes on with new ids."""
    state, port = tmp_path / "sandbox.json", free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "sandbox", "--port", str(port), "--orders-per-minute", "0"]

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*command, "--state", str(state)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/_control/state", timeout=1).status_code == 200:
                    return process
            time.sleep(0.1)  # polling for the port to open, bounded by the deadline
        process.kill()
        raise AssertionError(f"the sandbox did not start: {process.communicate()}")

    def stop(process: subprocess.Popen[str]) -> str:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0 and "Traceback" not in errors, errors
        return errors

    first = start()
    [package] = httpx.post(f"{url}/_control/packages", json={}, timeout=5).json()
    created = httpx.post(
        f"{url}/woocommerce/wp-json/wc/v3/orders",
        json={
            "status": "processing",
            "line_items": [],
            "meta_data": [{"key": "hub_reference", "value": "r1"}],
        },
        auth=("ck_sandbox", "cs_sandbox"),
        timeout=5,
    ).json()
    stop(first)
    assert str(package["shipmentPackageId"]) in state.read_text()

    second = start()
    try:
        kept = httpx.get(f"{url}/_control/state", timeout=5).json()
        assert package in kept["packages"]
        shop = httpx.get(
            f"{url}/woocommerce/wp-json/wc/v3/orders/{created['id']}",
            auth=("ck_sandbox", "cs_sandbox"),
            timeout=5,
        )
        assert shop.status_code == 200 and shop.json()["status"] == "processing"
        [newer] = httpx.post(f"{url}/_control/packages", json={}, timeout=5).json()
        assert newer["shipmentPackageId"] > package["shipmentPackageId"]  # no id given twice
    finally:
        stop(second)


def test_a_shipped_package_cannot_be_unsupplied(sandbox: Sandbox) -> None:
    package = sandbox.order()
    sandbox.set_status(package["shipmentPackageId"], "Shipped")
    url = (
        f"{sandbox.url}/trendyol/integration/order/sellers/{sandbox.world.seller_id}"
        f"/shipment-packages/{package['shipmentPackageId']}/items/unsupplied"
    )
    line = package["lines"][0]
    answer = httpx.put(
        url,
        json={"lines": [{"lineId": line["lineId"], "quantity": line["quantity"]}], "reasonId": 500},
        auth=(sandbox.world.api_key, sandbox.world.api_secret),
        headers={"User-Agent": f"{sandbox.world.seller_id} - SelfIntegration"},
    )
    assert answer.status_code == 400 and "cannot be unsupplied" in answer.text
    assert sandbox.package(package["shipmentPackageId"])["status"] == "Shipped"
