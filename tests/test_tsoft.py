"""The T-Soft connector against the sandbox's T-Soft over HTTP: the token, orders made exact to the cent and
found again by their code, statuses (a store's own too), the sent-to-cargo update, notes, the poll; and
every call checked against specs/tsoft-rest1.openapi.yml with openapi-core."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_schema_validator import OAS30Validator

from connectors import tsoft
from connectors.base import (
    Address,
    Permanent,
    RateLimited,
    Retryable,
    ShippingCharge,
    ShopConnector,
    ShopLine,
    ShopOrderPlan,
)
from connectors.http import Guard
from connectors.tsoft import DEFAULT_STATUS_MAP, STATUSES, TsoftConnector
from sandbox.state import World
from sandbox.tsoft import CUSTOM_STATUS, SENT_TO_CARGO, TsoftShop
from sync.statuses import CanonicalStatus
from tests.contract import Contract, Recording
from tests.sandbox_server import Sandbox, serve_sandbox

CREDENTIALS = {"tsoft_user": "hub", "tsoft_password": "tsoft-sandbox-pass"}
# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "tsoft-rest1.openapi.yml"
SHIRT, MUG, OIL = "TS-BEYAZ-M", "KUPA-SERAMIK", "ZEYTINYAGI-1L"
ADDRESS = Address(
    first_name="Ayşe Nur",
    last_name="Yılmaz",
    address1="Caferağa Mah. Gül Sok. No:3 D:5",
    city="İstanbul",
    district="Kadıköy",
    postcode="34710",
    phone="5551112233",
)
BILLING = Address(
    "Mehmet", "Kaya", "Kızılay Mah. Atatürk Cad. 10", "Ankara", "Çankaya", "06420", company="Kaya Ltd"
)


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    tsoft.forget_tokens()
    yield
    tsoft.forget_tokens()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def store(sandbox: Sandbox) -> TsoftShop:
    return sandbox.world.tsoft


def connect(
    sandbox: Sandbox, transport: httpx.BaseTransport | None = None, **credentials: str
) -> TsoftConnector:
    return TsoftConnector(sandbox.tsoft_url, {**CREDENTIALS, **credentials}, LOCAL, transport=transport)


def plan(reference: str = "hub-7-1001", status: str = "3", **changes: Any) -> ShopOrderPlan:
    """A Trendyol package's shop order: three shirts at 10 % for 419.70, a mug at 20 %, 29.99 shipping."""
    lines = (
        ShopLine(SHIRT, "Pamuklu Basic Tişört Beyaz", 3, Decimal("419.70"), Decimal(10)),
        ShopLine(MUG, "El Yapımı Seramik Kupa", 1, Decimal("89.99"), Decimal(20)),
    )
    values: dict[str, Any] = {
        "reference": reference,
        "status": status,
        "marketplace": "trendyol",
        "order_number": "10293847",
        "package_id": reference.rsplit("-", 1)[-1],
        "currency": "TRY",
        "customer_email": "ayse@example.com",
        "billing": BILLING,
        "shipping": ADDRESS,
        "lines": lines,
        "shipping_charge": ShippingCharge("Kargo", Decimal("24.99"), Decimal("5.00"), Decimal(20)),
        "total": Decimal("539.68"),
    }
    return ShopOrderPlan(**{**values, **changes})


def tsoft_calls(sandbox: Sandbox, suffix: str) -> int:
    return sum(1 for _, path, _ in sandbox.world.requests if path.endswith(suffix))


# -- the token -------------------------------------------------------------------------------------


def test_one_login_serves_many_calls_until_shortly_before_it_ends(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token is kept per process, by store and credentials, and renewed before its expirationTime
    (store time): read from T-Soft's answer, not assumed."""
    shop = store(sandbox)
    shop.token_seconds = 1800
    connector = connect(sandbox)
    connector.create_order(plan())
    connector.statuses()
    connect(sandbox).get_order("hub-7-1001")  # another connector, same store and user
    assert shop.logins == 1
    cached = tsoft.TOKENS.tokens[connector.key]
    clock = tsoft.TOKENS.clock
    assert 1800 - tsoft.REFRESH_MARGIN - 5 < cached.refresh_at - clock() <= 1800 - tsoft.REFRESH_MARGIN
    later = clock() + 1800 - tsoft.REFRESH_MARGIN + 1
    monkeypatch.setattr(tsoft.TOKENS, "clock", lambda: later)
    connector.get_order("hub-7-1001")
    assert shop.logins == 2
    # Other credentials are another key: a password changed in the hub logs in afresh.
    with pytest.raises(Permanent):
        connect(sandbox, tsoft_password="old-password").get_order("hub-7-1001")


def test_a_token_refused_midway_gets_one_new_login(sandbox: Sandbox) -> None:
    """T-Soft ends a token early (its words name the token): one new login and the call again; a store
    that refuses the new one too stops there, as an auth error, instead of logging in forever."""
    shop = store(sandbox)
    connector = connect(sandbox)
    connector.create_order(plan())
    shop.expire_tokens()
    assert connector.get_order("hub-7-1001").status == "3"
    assert shop.logins == 2
    shop.expire_tokens()
    shop.token_seconds = 0  # every new token is dead on arrival
    with pytest.raises(Permanent, match="refused a new token") as refused:
        connector.get_order("hub-7-1001")
    assert refused.value.category == "auth" and shop.logins == 3


def test_a_wrong_password_is_an_auth_error_that_never_shows_the_password(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent) as refused:
        connect(sandbox, tsoft_password="Yanlış-Şifre-42").statuses()
    error = refused.value
    assert error.category == "auth"
    assert "Kullanıcı adı veya şifre hatalı" in str(error) and "'hub'" in str(error)
    assert "Yanlış-Şifre-42" not in str(error) and "tsoft-sandbox-pass" not in str(error)
    assert store(sandbox).logins == 0


def test_a_429_waits_as_long_as_has_helped(sandbox: Sandbox) -> None:
    """T-Soft sends no Retry-After with its 429: the connector waits RATE_LIMIT_WAIT (2–3 minutes helped)."""
    store(sandbox).rate_limited = 1
    with pytest.raises(RateLimited) as limited:
        connect(sandbox).statuses()
    assert limited.value.retry_after == tsoft.RATE_LIMIT_WAIT


# -- orders ----------------------------------------------------------------------------------------


def test_an_order_is_created_exact_to_the_cent_with_its_lines_and_addresses(sandbox: Sandbox) -> None:
    """Mixed VAT lines and shipping: T-Soft's order comes to the marketplace's total, each line at its
    VAT-inclusive unit price and rate, the district as Town, the reference as OrderCode."""
    made = connect(sandbox).create_order(plan())
    assert (made.shop_id, made.reference, made.status, made.total) == (
        "hub-7-1001",
        "hub-7-1001",
        "3",
        Decimal("539.68"),
    )
    assert made.modified_at is not None and abs(made.modified_at - datetime.now(UTC)) < timedelta(seconds=10)
    kept = store(sandbox).order_for_reference("hub-7-1001")
    assert kept is not None
    lines = {line["ProductCode"]: line for line in kept["OrderDetails"]}
    assert (lines[SHIRT]["Quantity"], lines[SHIRT]["Price"], lines[SHIRT]["Vat"]) == ("3", "139.90", "10")
    assert (lines[MUG]["Price"], lines[MUG]["Vat"], lines[MUG]["Total"]) == ("89.99", "20", "89.99")
    assert (
        kept["CargoChargeWithVat"] == "29.99"
        and kept["Currency"] == "TL"
        and kept["Email"] == "ayse@example.com"
    )
    assert (kept["DeliveryName"], kept["DeliveryCity"], kept["DeliveryTown"]) == (
        "Ayşe Nur Yılmaz",
        "İstanbul",
        "Kadıköy",
    )
    assert (kept["DeliveryAddress"], kept["DeliveryZipcode"], kept["DeliveryMobile"]) == (
        ADDRESS.address1,
        "34710",
        "5551112233",
    )
    assert (kept["InvoiceName"], kept["InvoiceTitle"], kept["InvoiceTown"], kept["InvoiceCountry"]) == (
        "Mehmet Kaya",
        "Kaya Ltd",
        "Çankaya",
        "Türkiye",
    )


def test_a_store_that_totals_the_lines_itself_is_shown_not_hidden(sandbox: Sandbox) -> None:
    """Three units for 100.00 go out at 33.3333 each; a store that totals the lines at the cent makes 99.99
    of them. REST1 cannot change an order's amounts: the order comes back with T-Soft's total, and
    settle_total says so with both figures, instead of pretending."""
    store(sandbox).recalculates_total = True
    odd = plan(
        lines=(ShopLine(OIL, "Zeytinyağı", 3, Decimal("100.00"), Decimal(1)),),
        shipping_charge=ShippingCharge("Kargo", Decimal("0"), Decimal("0"), Decimal(20)),
        total=Decimal("100.00"),
    )
    connector = connect(sandbox)
    made = connector.create_order(odd)
    assert made.total == Decimal("99.99")
    kept = store(sandbox).order_for_reference(odd.reference)
    assert kept is not None and kept["OrderDetails"][0]["Price"] == "33.3333"
    with pytest.raises(Permanent, match=r"comes to 99\.99, the marketplace's to 100\.00.*T-Soft panel"):
        connector.settle_total(made.shop_id, Decimal("100.00"))
    assert connector.settle_total(made.shop_id, Decimal("99.99")).total == Decimal("99.99")


class LosesAnswer(httpx.BaseTransport):
    """The real transport, but the answer to the first createOrders is lost after T-Soft acted on it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/createOrders") and not self.lost:
            self.lost = True
            response.read()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_create_asked_again_after_a_lost_answer_finds_the_order(sandbox: Sandbox) -> None:
    """The hub looks for its reference before creating again: found by OrderCode, never made twice (and
    T-Soft refuses a second order with the same code, in its words)."""
    transport = LosesAnswer()
    connector = connect(sandbox, transport=transport)
    with pytest.raises(Retryable):
        connector.create_order(plan())
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = connector.find_order("hub-7-1001", since)
    assert found is not None and found.shop_id == "hub-7-1001" and found.total == Decimal("539.68")
    assert connector.find_order("hub-7-404", since) is None
    with pytest.raises(Permanent, match="zaten mevcut"):
        connector.create_order(plan())
    assert store(sandbox).order_for_reference("hub-7-1001") is not None  # asserts there is one only
    transport.close()


def test_an_unknown_product_is_refused_in_t_softs_words(sandbox: Sandbox) -> None:
    unknown = plan(lines=(ShopLine("YOK-BOYLE-URUN", "?", 1, Decimal("539.68"), Decimal(20)),))
    with pytest.raises(Permanent, match="Ürün bulunamadı: YOK-BOYLE-URUN") as refused:
        connect(sandbox).create_order(unknown)
    assert refused.value.code == "PRODUCT_NOT_FOUND" and refused.value.category == "refused"
    assert store(sandbox).orders == {}


# -- statuses, tracking, notes ------------------------------------------------------------------------


def test_the_stores_own_statuses_come_through_and_are_set(sandbox: Sandbox) -> None:
    """The list is the store's (a status the seller added included); setting one is read back, and asked
    again it sends nothing."""
    connector = connect(sandbox)
    offered = connector.statuses()
    assert offered[CUSTOM_STATUS[0]] == CUSTOM_STATUS[1] and offered["9"] == "İptal Edildi"
    assert set(STATUSES) <= set(offered) and set(DEFAULT_STATUS_MAP) == set(CanonicalStatus)
    assert set(DEFAULT_STATUS_MAP.values()) <= set(STATUSES)
    connector.create_order(plan())
    moved = connector.set_status("hub-7-1001", CUSTOM_STATUS[0])
    assert moved.status == CUSTOM_STATUS[0] == connector.get_order("hub-7-1001").status
    assert connector.set_status("hub-7-1001", CUSTOM_STATUS[0]).status == CUSTOM_STATUS[0]
    assert tsoft_calls(sandbox, f"/updateOrderStatusAs/{CUSTOM_STATUS[0]}") == 1
    with pytest.raises(Permanent, match="Geçersiz sipariş durumu: 4242"):
        connector.set_status("hub-7-1001", "4242")
    with pytest.raises(Permanent, match="no order hub-7-404"):
        connector.set_status("hub-7-404", "4")


def test_tracking_goes_out_as_sent_to_cargo_and_comes_back(sandbox: Sandbox) -> None:
    """The carrier by the store's code for its name; T-Soft moves the order to sent-to-cargo; asked again,
    nothing is sent. A carrier the store lacks is refused, naming the store's; a code the seller enters
    in the panel is read back (the reverse flow)."""
    connector = connect(sandbox)
    connector.create_order(plan())
    connector.create_order(plan("hub-7-1002"))
    shipped = connector.set_tracking(
        "hub-7-1001", "Aras Kargo", "ARS123456", "https://kargotakip.example/ARS123456"
    )
    assert (shipped.tracking_number, shipped.carrier, shipped.status) == (
        "ARS123456",
        "Aras Kargo",
        SENT_TO_CARGO,
    )
    kept = store(sandbox).order_for_reference("hub-7-1001")
    assert kept is not None and kept["CargoCode"] == "ARAS"
    connector.set_tracking("hub-7-1001", "ARAS KARGO", "ARS123456", "")
    assert tsoft_calls(sandbox, "/updateOrderStatusAsSentToCargo") == 1
    with pytest.raises(Permanent, match=r"no cargo company 'Kolay Gelsin' \(it has: Yurtiçi Kargo, Aras"):
        connector.set_tracking("hub-7-1002", "Kolay Gelsin", "KG1", "")
    answer = httpx.post(
        f"{sandbox.url}/_control/tsoft/orders/hub-7-1002/cargo",
        json={"cargo_code": "YK", "tracking_code": "YK998877"},
    )
    assert answer.status_code == 200
    seen = connector.get_order("hub-7-1002")
    assert (seen.tracking_number, seen.carrier, seen.status) == ("YK998877", "Yurtiçi Kargo", SENT_TO_CARGO)


def test_a_note_is_added_once(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.create_order(plan())
    note = "Trendyol siparişi 10293847, paket 1001"
    connector.add_note("hub-7-1001", note)
    connector.add_note("hub-7-1001", note)  # asked again after a lost answer
    state = httpx.get(f"{sandbox.url}/_control/tsoft/state").json()
    (order,) = state["orders"]
    assert [entry["Note"] for entry in order["notes"]] == [note]


def test_a_restarted_store_keeps_its_orders_and_tokens(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.create_order(plan())
    connector.add_note("hub-7-1001", "not")
    shop = store(sandbox)
    restarted = TsoftShop()
    restarted.restore(json.loads(json.dumps(shop.snapshot())))
    sandbox.world.tsoft.restore(restarted.snapshot())  # the same store, through a restart's JSON
    assert connector.get_order("hub-7-1001").total == Decimal("539.68") and shop.logins == 1
    created = shop.create_store_order()
    assert int(created["OrderId"]) > int(shop.orders["hub-7-1001"]["OrderId"])
    assert restarted.orders["hub-7-1001"]["_notes"][0]["Note"] == "not"


def test_no_webhooks(sandbox: Sandbox) -> None:
    shop: ShopConnector = connect(sandbox)  # and the connector is a ShopConnector (mypy checks)
    with pytest.raises(Permanent, match="no webhooks") as refused:
        shop.subscribe("https://hub.example.com/hooks/tsoft", "secret")
    assert refused.value.category == "refused"


# -- the poll ----------------------------------------------------------------------------------------


def test_changed_since_reads_every_page_and_keeps_only_the_hubs_changed_orders(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's clock is moved, not waited for: orders made at t0, two of them changed at t0 + 100 s
    (a status set in the panel, a parcel shipped there). Pages of two, so the listing pages."""
    monkeypatch.setattr(tsoft, "PAGE", 2)
    shop = store(sandbox)
    t0 = float(int(datetime.now(UTC).timestamp()) - 300)
    now = [t0]
    shop.clock = lambda: now[0]
    shop.token_seconds = 10_000
    connector = connect(sandbox)
    for number in range(1, 5):
        connector.create_order(plan(f"hub-7-{number}"))
    shop.create_store_order()  # the store's own checkout: not the hub's
    now[0] = t0 + 100
    httpx.post(
        f"{sandbox.url}/_control/tsoft/orders/hub-7-2/status", json={"status_id": "4"}
    ).raise_for_status()
    shop.ship("hub-7-4", "MNG", "MNG555")
    since = datetime.fromtimestamp(t0 + 50, UTC)
    changed = {order.shop_id: order for order in connector.changed_since(since)}
    assert set(changed) == {"hub-7-2", "hub-7-4"}
    assert changed["hub-7-2"].status == "4" and changed["hub-7-4"].tracking_number == "MNG555"
    assert changed["hub-7-4"].modified_at == datetime.fromtimestamp(t0 + 100, UTC)
    everything = connector.changed_since(datetime.fromtimestamp(t0 - 10, UTC))
    assert sorted(order.shop_id for order in everything) == ["hub-7-1", "hub-7-2", "hub-7-3", "hub-7-4"]
    assert all(order.reference == order.shop_id for order in everything)


# -- the contract ----------------------------------------------------------------------------------


def spec_path(request: httpx.Request) -> str:
    """The request's path as the spec names it: what follows the sandbox's /tsoft."""
    path = request.url.path
    assert path.startswith("/tsoft/"), f"not a T-Soft path: {path}"
    return path.removeprefix("/tsoft")


def template(path: str) -> str:
    path = re.sub(r"/auth/login/[^/]+$", "/auth/login/{user}", path)
    return re.sub(r"/updateOrderStatusAs/[^/]+$", "/updateOrderStatusAs/{OrderStatusId}", path)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def contract(spec: dict[str, Any]) -> Contract:
    return Contract(OpenAPI.from_dict(spec), "https://www.example-store.com", spec_path)


@pytest.fixture
def recording() -> Iterator[Recording]:
    recording = Recording()
    yield recording
    recording.close()


def form_violations(spec: dict[str, Any], calls: list[tuple[httpx.Request, httpx.Response]]) -> list[str]:
    """What openapi-core leaves unchecked in a form body: a field the operation does not take (it reads
    the schema's properties only), and the JSON text in each write's `data` field, against the
    operation's …Data schema."""
    found: list[str] = []
    schemas = spec["components"]["schemas"]
    for request, _ in calls:
        path = template(spec_path(request))
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"][
            "schema"
        ]
        if "$ref" in body:
            body = schemas[body["$ref"].rsplit("/", 1)[-1]]
        form = dict(parse_qsl(request.content.decode()))
        found.extend(
            f"{path} form: {name!r} is not taken" for name in sorted(set(form) - set(body["properties"]))
        )
        if "data" in form:
            parts = path.rsplit("/", 2)
            name = f"{parts[-2] if parts[-1] == '{OrderStatusId}' else parts[-1]}Data"
            schema = {"components": spec["components"], **schemas[name]}
            for error in OAS30Validator(schema).iter_errors(json.loads(form["data"])):
                found.append(f"{path} data: {error.message}")
    return found


def test_every_call_of_the_connector_keeps_to_the_spec(
    sandbox: Sandbox, recording: Recording, contract: Contract, spec: dict[str, Any]
) -> None:
    """Both ways, every call the connector makes and every operation of the spec made: the writes'
    data too, refusals (a wrong password, an unknown product, a token ended early) and a 429."""
    connector = connect(sandbox, transport=recording)
    connector.create_order(plan())
    connector.find_order("hub-7-2", datetime.now(UTC) - timedelta(minutes=1))
    connector.set_status("hub-7-1001", "4")
    connector.set_tracking("hub-7-1001", "Yurtiçi Kargo", "YK1", "")
    connector.add_note("hub-7-1001", "not")
    connector.statuses()
    connector.changed_since(datetime.now(UTC) - timedelta(hours=1))
    store(sandbox).expire_tokens()
    connector.get_order("hub-7-1001")
    with pytest.raises(Permanent):
        connector.create_order(plan("hub-7-9", lines=(ShopLine("YOK", "?", 1, Decimal(1), Decimal(20)),)))
    with pytest.raises(Permanent):
        connect(sandbox, transport=recording, tsoft_password="wrong").statuses()
    store(sandbox).rate_limited = 1
    with pytest.raises(RateLimited):
        connector.statuses()

    made = {(request.method, template(spec_path(request))) for request, _ in recording.calls}
    in_spec = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}
    assert made == in_spec
    refusals = [
        json.loads(response.content) for _, response in recording.calls if response.status_code == 200
    ]
    assert sum(1 for answer in refusals if answer["success"] is False) == 3  # password, token, product
    assert contract.violations(recording.calls) == []
    assert form_violations(spec, recording.calls) == []


def test_a_call_off_the_spec_is_caught(
    sandbox: Sandbox, recording: Recording, contract: Contract, spec: dict[str, Any]
) -> None:
    """The check itself: a page over 500, a field T-Soft does not take, a create without its products."""
    token = store(sandbox).login("hub", "tsoft-sandbox-pass")["token"]
    with httpx.Client(transport=recording) as client:
        client.post(f"{sandbox.tsoft_url}/rest1/order2/getOrders", data={"token": token, "limit": "501"})
        client.post(
            f"{sandbox.tsoft_url}/rest1/order2/getOrderStatusList", data={"token": token, "Page": "1"}
        )
        client.post(
            f"{sandbox.tsoft_url}/rest1/order2/createOrders",
            data={"token": token, "data": json.dumps([{"OrderCode": "hub-1-1", "Currency": "TL"}])},
        )
    (first,) = contract.violations(recording.calls)
    assert first.startswith("POST /rest1/order2/getOrders") and "501" in first
    unknown, *missing = form_violations(spec, recording.calls)
    assert unknown == "/rest1/order2/getOrderStatusList form: 'Page' is not taken"
    assert "/rest1/order2/createOrders data: 'Products' is a required property" in missing
