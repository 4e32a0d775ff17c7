"""One bad package never stops the page: values are checked where they enter, and a failure is a readable
error on that order alone, never the SQL, the payload or a 500 on the order page."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.wrappers import Response

from connectors.registry import Side
from extensions import db
from models import Account, Integration, Order, OrderNotice, TransferState
from sandbox.state import World
from sync import pull
from tests.conftest import Client, make_integration
from tests.fake_platform import FakePlatform, serve_fake

Change = Callable[[dict[str, Any]], None]


def _set(field: str, value: Any) -> Change:
    return lambda package: package.__setitem__(field, value)


def _line(field: str, value: Any) -> Change:
    return lambda package: package["lines"][0].__setitem__(field, value)


# (name, change, the field the reason must name)
HOSTILE: list[tuple[str, Change, str]] = [
    ("package id longer than the column", _set("shipmentPackageId", "9" * 100), "shipmentPackageId"),
    ("NUL in the order number", _set("orderNumber", "104\x00999"), "orderNumber"),
    ("NUL in an address", lambda p: p["shipmentAddress"].__setitem__("city", "Ank\x00ara"), "city"),
    ("line price Infinity", _line("lineUnitPrice", "Infinity"), "lineUnitPrice"),
    ("line price 1e40", _line("lineUnitPrice", 1e40), "lineUnitPrice"),
    ("total NaN", _set("packageTotalPrice", "NaN"), "packageTotalPrice"),
    ("negative total", _set("packageTotalPrice", -5), "packageTotalPrice"),
    ("quantity 2.5", _line("quantity", 2.5), "quantity"),
    ("quantity true", _line("quantity", True), "quantity"),
    ("VAT rate 1e6", _line("vatRate", 1e6), "vatRate"),
    ("currency as text", _set("currencyCode", "Turkish lira"), "currencyCode"),
    ("line id as an object", _line("lineId", {"id": 1}), "lineId"),
    ("tracking number 5000 long", _set("cargoTrackingNumber", "7" * 5000), "cargoTrackingNumber"),
    # The cursor would follow it into 2100, and every later pull would read nothing.
    ("modified in 2100", _set("lastModifiedDate", 4_102_444_800_000), "lastModifiedDate"),
]


@pytest.fixture
def listing() -> Iterator[tuple[FakePlatform, list[dict[str, Any]]]]:
    """A Trendyol listing the test writes by hand: packages shaped by the sandbox, then spoilt."""
    packages: list[dict[str, Any]] = []

    def answer(request: Any) -> Response:
        body = {"page": 0, "size": 200, "totalPages": 1, "totalElements": len(packages), "content": packages}
        # allow_nan: NaN and Infinity as bare words, as a careless platform writes them.
        return Response(json.dumps(body, allow_nan=True), mimetype="application/json")

    with serve_fake(answer) as fake:
        yield fake, packages


def joined(account: Account, fake: FakePlatform) -> Integration:
    integration = make_integration(account, marketplace_base_url=f"{fake.url}/integration")
    integration.set_credentials(Side.MARKETPLACE, {"seller_id": "100200", "api_key": "k", "api_secret": "s"})
    db.session.commit()
    return integration


@pytest.mark.parametrize(("name", "change", "field"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_bad_package_is_an_error_of_its_own_and_the_page_goes_on(
    account: Account,
    seller: Client,
    listing: tuple[FakePlatform, list[dict[str, Any]]],
    name: str,
    change: Change,
    field: str,
) -> None:
    fake, packages = listing
    world = World()
    good_before, bad, good_after = (world.create_package() for _ in range(3))
    bad = copy.deepcopy(bad)
    change(bad)
    packages.extend([good_before, bad, good_after])
    integration = joined(account, fake)

    outcome = pull.sync_integration(integration.id)
    db.session.expire_all()

    assert outcome.error is None and outcome.result.new == 2 and outcome.result.errors == 1
    orders = db.session.scalars(sa.select(Order).order_by(Order.id)).all()
    good = {str(good_before["shipmentPackageId"]), str(good_after["shipmentPackageId"])}
    assert {order.package_id for order in orders if order.status} == good
    (broken,) = [order for order in orders if order.status is None]
    assert broken.transfer_state == TransferState.ERROR and broken.error_category == "invalid_data"
    reason = broken.error_reason or ""
    assert field in reason and len(reason) < 200
    for leak in ("INSERT", "UPDATE", "SELECT", "parameters", "Traceback"):
        assert leak not in reason
    assert seller.get(f"/orders/{broken.id}").status_code == 200
    assert seller.get("/orders").status_code == 200
    assert seller.get("/orders/errors").status_code == 200


def test_the_same_bad_package_tells_once(
    account: Account, listing: tuple[FakePlatform, list[dict[str, Any]]]
) -> None:
    """A reason without timestamps or counters: pulling the same bad package again is no new error."""
    fake, packages = listing
    bad = World().create_package()
    bad["packageTotalPrice"] = "NaN"
    packages.append(bad)
    integration = joined(account, fake)
    integration.settings.notify_error_orders = True
    db.session.commit()
    for _ in range(3):
        pull.sync_integration(integration.id)
        db.session.execute(sa.update(Integration).values(next_pull_at=None, pull_resume_from=None))
        db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(OrderNotice.id))) == 1
