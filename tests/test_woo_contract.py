"""The WooCommerce connector and the sandbox's shop against the community OpenAPI spec of WooCommerce REST v3.

Every request the connector sends and every answer the sandbox gives, over real HTTP, is validated with
openapi-core against `specs/woocommerce-wc-v3.openapi.yml`. The sandbox plays the real WooCommerce;
where the spec is known to be wrong about it, the deviation is named in DEVIATIONS, with the reason, and the
spec is read with exactly that changed (docs/ARCHITECTURE.md, "WooCommerce totals and the spec", lists them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI

from connectors.base import Permanent
from connectors.woocommerce import WooCommerceConnector
from tests.contract import Contract, Recording
from tests.sandbox_server import Sandbox, serve_sandbox
from tests.test_connectors import LOCAL, WOO_CREDENTIALS, plan

SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "woocommerce-wc-v3.openapi.yml"
BASE = "/wp-json/wc/v3"  # the spec's paths are relative to its server, http://localhost/wp-json/wc/v3


@dataclass(frozen=True)
class Deviation:
    """The real WooCommerce where the spec is wrong: the spec's node at `where` says `spec_says` (None: it
    says nothing there), and is read as `real`."""

    where: tuple[str, ...]
    spec_says: Any
    real: Any
    why: str


def created(schema: str) -> dict[str, Any]:
    return {
        "description": "Created",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


ORDER = ("components", "schemas", "shop_order", "properties")
DEVIATIONS = (
    Deviation(
        ("paths", "/orders", "post", "responses", "201"),
        None,
        created("shop_order"),
        "A create answers 201 Created (WC_REST_CRUD_Controller::create_item), not 200.",
    ),
    Deviation(
        ("paths", "/orders/{order_id}/notes", "post", "responses", "201"),
        None,
        created("order_note"),
        "A note's create answers 201 Created (WC_REST_Order_Notes_V1_Controller::create_item), not 200.",
    ),
    Deviation(
        ("paths", "/orders", "get", "responses", "401"),
        None,
        {"description": "Unauthorized"},
        "A request without valid keys is answered 401 (rest_authorization_required_code()); the spec lists "
        "no 401 anywhere.",
    ),
    Deviation(
        (*ORDER, "line_items", "items", "properties", "product_id"),
        {"type": "string", "description": "Product ID."},
        {"type": "integer"},
        "A line's product_id is the product's id, a number (the order schema types it 'mixed').",
    ),
    Deviation(
        (*ORDER, "meta_data", "items", "properties", "value"),
        {"type": "string", "description": "Meta value."},
        {},
        "A meta value is whatever was stored ('mixed'): the Shipment Tracking extension's "
        "_wc_shipment_tracking_items is a list of objects.",
    ),
    Deviation(
        (*ORDER, "tax_lines", "items", "properties", "rate_id"),
        {"type": "string", "description": "Tax rate ID."},
        {"type": "integer"},
        "A tax line's rate_id is the rate's id, a number (the order schema says integer).",
    ),
    Deviation(
        ("components", "schemas", "tax", "properties", "class", "enum"),
        ["standard", "reduced-rate", "zero-rate"],
        None,
        "A rate's class is one of the store's own classes: WooCommerce builds the list per store "
        "(array_merge(['standard'], WC_Tax::get_tax_class_slugs())); the spec lists a default store's.",
    ),
)


def read_spec() -> dict[str, Any]:
    """The spec with the deviations applied, each checked to still be one (a fixed spec drops its entry)."""
    spec: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    for deviation in DEVIATIONS:
        *path, last = deviation.where
        node = reduce(lambda parent, key: parent[key], path, spec)
        assert node.get(last) == deviation.spec_says, f"the spec changed at {'/'.join(deviation.where)}"
        if deviation.real is None:
            del node[last]
        else:
            node[last] = deviation.real
    return spec


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(OpenAPI.from_dict(read_spec()), "http://localhost", spec_path, base=BASE)


def spec_path(request: httpx.Request) -> str:
    """The request's path as the spec names it: what follows /wp-json/wc/v3."""
    _, found, rest = request.url.path.partition(BASE)
    assert found, f"not a WooCommerce REST path: {request.url.path}"
    return rest


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def recording() -> Iterator[Recording]:
    recording = Recording()
    yield recording
    recording.close()


def connector(sandbox: Sandbox, recording: Recording, **credentials: str) -> WooCommerceConnector:
    keys = {**WOO_CREDENTIALS, **credentials}
    return WooCommerceConnector(sandbox.shop_url, keys, LOCAL, transport=recording)


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, recording: Recording, contract: Contract
) -> None:
    """Every call the connector makes, both ways: the lookups (search, and the date window read over two
    pages by WordPress's paging headers), the create with the store's rates and the total's correction,
    reading, status, tracking with its note, the changes since, and a correction asked for again."""
    since = datetime.now(UTC) - timedelta(minutes=1)
    for number in range(101):  # more than a page of orders created since then
        sandbox.world.create_shop_order({"meta_data": [{"key": "hub_reference", "value": f"other-{number}"}]})
    woo = connector(sandbox, recording)
    assert woo.find_order("hub-7-1", since=since) is None
    made = woo.create_order(plan("hub-7-1"))
    # The seller ships with the Shipment Tracking extension: its meta value is a list.
    item = {"tracking_provider": "Aras Kargo", "tracking_number": "7261", "custom_tracking_link": ""}
    sandbox.world.update_shop_order(
        sandbox.world.shop_orders[int(made.shop_id)],
        {"meta_data": [{"key": "_wc_shipment_tracking_items", "value": [item]}]},
    )
    assert woo.find_order("hub-7-1", since=since) == woo.get_order(made.shop_id)
    woo.set_status(made.shop_id, "completed")
    woo.set_tracking(made.shop_id, "Aras Kargo", "7261", "https://kargo/7261")
    woo.add_note(made.shop_id, "Kargo: Aras Kargo. Takip no: 7261 https://kargo/7261")  # there already
    assert [order.reference for order in woo.changed_since(since)][-1] == "hub-7-1"
    assert made.total == plan("hub-7-1").total
    assert woo.settle_total(made.shop_id, made.total) == woo.get_order(made.shop_id)

    assert contract.operations(recording.calls) >= {
        ("GET", 200, "/taxes"),
        ("GET", 200, "/orders"),
        ("POST", 201, "/orders"),
        ("PUT", 200, "/orders/{id}"),
        ("GET", 200, "/orders/{id}"),
        ("GET", 200, "/orders/{id}/notes"),
        ("POST", 201, "/orders/{id}/notes"),
    }
    assert any(request.url.params.get("page") == "2" for request, _ in recording.calls)
    assert contract.violations(recording.calls) == []


def test_refusals_keep_to_the_spec(sandbox: Sandbox, recording: Recording, contract: Contract) -> None:
    """The answers the spec documents for a refusal: 404 for a missing order, 400 for an unknown SKU and
    for an update of a missing order (as WooCommerce answers it); and the 401 it does not document."""
    woo = connector(sandbox, recording)
    with pytest.raises(Permanent, match="404"):
        woo.get_order("999999")
    with pytest.raises(Permanent, match="400"):
        woo.set_status("999999", "completed")
    with pytest.raises(Permanent, match="400"):
        woo.create_order(plan("hub-7-2", sku="NOPE"))
    with pytest.raises(Permanent, match="401"):
        connector(sandbox, recording, consumer_secret="wrong").find_order("hub-7-2")
    assert {(method, status) for method, status, _ in contract.operations(recording.calls)} >= {
        ("GET", 404),
        ("PUT", 400),
        ("POST", 400),
        ("GET", 401),
    }
    assert contract.violations(recording.calls) == []
    for _, response in recording.calls:
        if response.status_code >= 400:  # WordPress's WP_Error, as the connector reads it
            assert set(response.json()) == {"code", "message", "data"}


def test_a_call_off_the_spec_is_caught(sandbox: Sandbox, recording: Recording, contract: Contract) -> None:
    """The check itself: a body the spec refuses, and an answer whose status the spec does not list (the
    401 is tolerated where DEVIATIONS names it, GET /orders, and nowhere else)."""
    with httpx.Client(transport=recording, auth=("ck_sandbox", "cs_sandbox")) as client:
        client.post(f"{sandbox.shop_url}{BASE}/orders", json={"status": "shipped", "line_items": []})
        client.get(f"{sandbox.shop_url}{BASE}/taxes/classes", auth=("ck_sandbox", "wrong"))
    first, second = contract.violations(recording.calls)
    assert first.startswith("POST") and "request" in first and "'shipped' is not one of" in first
    assert second.startswith("GET") and "401 answer" in second
