"""The Ticimax connector against the sandbox's Ticimax over HTTP, through zeep and the hub's guarded client:
the WSDL read once per store, orders made exact to the cent for a member and found again by their SiparisNo,
statuses by enum name, tracking codes, the poll by edit time, and Ticimax's refusals in its own words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors import ticimax
from connectors.base import (
    Address,
    Blocked,
    InvalidAnswer,
    Permanent,
    Retryable,
    ShippingCharge,
    ShopConnector,
    ShopLine,
    ShopOrderPlan,
)
from connectors.http import Guard
from connectors.registry import SHOPS
from connectors.ticimax import DEFAULT_STATUS_MAP, STATUSES, TicimaxConnector
from sandbox import ticimax as store_module
from sandbox.state import World
from sandbox.ticimax import TicimaxShop
from sync.statuses import CanonicalStatus
from tests.sandbox_server import Sandbox, serve_sandbox

# The sandbox listens on a loopback port: allowlisted, as in development.
LOCAL = Guard(https_only=False, allowlist=frozenset({"127.0.0.1"}), timeout=5)
SHIRT, MUG = "TS-BEYAZ-M", "KUPA-SERAMIK"
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
def fresh_wsdls() -> Iterator[None]:
    ticimax.forget_wsdls()
    yield
    ticimax.forget_wsdls()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with serve_sandbox(World()) as sandbox:
        yield sandbox


def store(sandbox: Sandbox) -> TicimaxShop:
    return sandbox.world.ticimax


def connect(sandbox: Sandbox, code: str | None = None, guard: Guard = LOCAL) -> TicimaxConnector:
    return TicimaxConnector(sandbox.ticimax_url, {"ticimax_ws_code": code or store(sandbox).ws_code}, guard)


def plan(reference: str = "hub-7-1001", status: str = "Onaylandi", **changes: Any) -> ShopOrderPlan:
    """A Trendyol package's shop order: three shirts at 10 % for 419.70 (a unit price that does not divide to
    the cent net of VAT), a mug at 20 %, 29.99 shipping: 539.68."""
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


def calls(sandbox: Sandbox, method: str, service: str) -> int:
    return sum(
        1 for verb, path, _ in sandbox.world.requests if verb == method and path.endswith(f"/{service}.svc")
    )


# -- orders -----------------------------------------------------------------------------------------


def test_an_order_is_made_exact_to_the_cent_for_a_member_by_variation(sandbox: Sandbox) -> None:
    connector: ShopConnector = connect(sandbox)
    assert connector.find_order("hub-7-1001") is None
    created = connector.create_order(plan())
    assert (created.reference, created.status, created.total) == (
        "hub-7-1001",
        "Onaylandi",
        Decimal("539.68"),
    )
    (kept,) = store(sandbox).orders.values()
    assert kept["SiparisToplamTutari"] == "539.68" and kept["ReferansNo"] == "hub-7-1001"
    assert [(line["StokKodu"], line["Adet"]) for line in kept["Urunler"]] == [(SHIRT, 3), (MUG, 1)]
    assert kept["KargoTutari"] == "29.99"  # with its VAT
    (member,) = store(sandbox).members.values()
    assert (member["Mail"], member["Isim"], member["Soyisim"]) == ("ayse@example.com", "Mehmet", "Kaya")
    assert kept["UyeID"] == member["ID"]
    assert kept["TeslimatAdres"]["Ilce"] == "Kadıköy" and kept["FaturaAdres"]["FirmaAdi"] == "Kaya Ltd"
    assert connector.find_order("hub-7-1001") == connector.get_order(created.shop_id)


def test_asked_again_after_a_lost_answer_the_order_is_not_made_twice(sandbox: Sandbox) -> None:
    """SaveSiparis refuses a SiparisNo the store has, in Ticimax's words: that is the order made before."""
    connector = connect(sandbox)
    first = connector.create_order(plan())
    again = connector.create_order(plan())
    assert again.shop_id == first.shop_id
    assert len(store(sandbox).orders) == 1


def test_one_customer_is_one_member(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.create_order(plan("hub-7-1001"))
    connector.create_order(plan("hub-7-1002", customer_email="AYSE@example.com"))
    assert len(store(sandbox).members) == 1
    assert len({order["UyeID"] for order in store(sandbox).orders.values()}) == 1


def test_a_customer_without_a_mail_gets_a_member_of_the_package(sandbox: Sandbox) -> None:
    connect(sandbox).create_order(plan(customer_email=""))
    (member,) = store(sandbox).members.values()
    assert member["Mail"] == "trendyol-1001@musteri.invalid"


def test_an_unknown_stock_code_is_refused_naming_it_and_nothing_is_made(sandbox: Sandbox) -> None:
    line = ShopLine("YOK-BOYLE-BIR-URUN", "?", 1, Decimal("10.00"), Decimal(20))
    with pytest.raises(Permanent, match="YOK-BOYLE-BIR-URUN"):
        connect(sandbox).create_order(plan(lines=(line,), total=Decimal("39.99")))
    assert store(sandbox).orders == {}


def test_a_refused_order_is_permanent_in_ticimaxs_words(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.create_order(plan("hub-7-1001"))
    del store(sandbox).variations[20001]  # the seller deletes the shirt; the connector knew its id
    with pytest.raises(Permanent, match=r"Ürün bulunamadı\. UrunID: 20001"):
        connector.create_order(plan("hub-7-1002"))
    assert len(store(sandbox).orders) == 1


def test_a_wrong_ws_code_stops_with_ticimaxs_words(sandbox: Sandbox) -> None:
    with pytest.raises(Permanent, match="Geçersiz UyeKodu") as refused:
        connect(sandbox, code="WRONG").find_order("hub-7-1001")
    assert refused.value.category == "auth"


def test_the_total_is_settled_only_where_it_matches(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(plan())
    assert connector.settle_total(created.shop_id, Decimal("539.68")) == created
    with pytest.raises(Permanent, match=r"539\.68.*540\.00.*Ticimax panel"):
        connector.settle_total(created.shop_id, Decimal("540.00"))


# -- statuses and tracking --------------------------------------------------------------------------


def test_a_status_is_set_by_its_enum_name_and_read_back(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(plan())
    moved = connector.set_status(created.shop_id, "KargoyaVerildi")
    assert moved.status == "KargoyaVerildi"
    assert store(sandbox).orders[int(created.shop_id)]["Durum"] == 6
    with pytest.raises(Permanent, match="no order status 'Shipped'"):
        connector.set_status(created.shop_id, "Shipped")


def test_a_status_the_store_ignores_is_caught(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """WCF ignores a Durum it cannot read without a word: the order read back says so."""
    connector = connect(sandbox)
    created = connector.create_order(plan())
    monkeypatch.delitem(store_module.NUMBERS, "KismiIptal")
    with pytest.raises(InvalidAnswer, match="still Onaylandi"):
        connector.set_status(created.shop_id, "KismiIptal")


def test_a_tracking_code_is_saved_once(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(plan())
    link = "https://kargotakip.araskargo.com.tr/mainpage.aspx?code=7261234567"
    saved = connector.set_tracking(created.shop_id, "Aras Kargo", "7261234567", link)
    assert (saved.tracking_number, saved.tracking_link, saved.carrier) == ("7261234567", link, "Aras Kargo")
    assert saved.status == "Onaylandi"  # the status is set_status's business
    before = calls(sandbox, "POST", "SiparisServis")
    assert connector.set_tracking(created.shop_id, "Aras Kargo", "7261234567", link) == saved
    assert calls(sandbox, "POST", "SiparisServis") == before + 1  # read, not written again


def test_a_tracking_code_the_store_refuses_is_permanent_in_its_words(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    created = connector.create_order(plan())
    with pytest.raises(Permanent, match="Kargo takip numarası boş olamaz"):
        connector.set_tracking(created.shop_id, "Aras Kargo", " ", "")


def test_statuses_are_ticimaxs_enum_and_the_defaults_are_in_it() -> None:
    assert ticimax.NAMES[:11] == tuple(name for name, _ in store_module.STATUSES[:11])
    assert set(DEFAULT_STATUS_MAP.values()) <= set(STATUSES)
    assert set(DEFAULT_STATUS_MAP) == set(CanonicalStatus)
    kind = SHOPS["ticimax"]
    assert kind.default_status_map[CanonicalStatus.SHIPPED] == "KargoyaVerildi"
    assert "shipping_vat_rate" in kind.unavailable


def test_no_webhooks_and_no_notes_say_so(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    assert connector.statuses()["Paketleniyor"] == "Paketleniyor"
    with pytest.raises(Permanent, match="no webhooks"):
        connector.subscribe("https://hub.example/hooks/1", "secret")
    with pytest.raises(Permanent, match="cannot add a note"):
        connector.add_note("1001", "Pazaryerinde iptal edilen satırlar: …")


# -- the poll ---------------------------------------------------------------------------------------


def test_changed_since_reads_every_page_of_the_hubs_changed_orders(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By DuzenlemeTarihiBas/Son, -1 for every other filter (a filter left out is 0, a real value)."""
    monkeypatch.setattr(ticimax, "PAGE", 2)
    shop = store(sandbox)
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()]
    shop.clock = lambda: now[0]
    connector = connect(sandbox)
    made = [connector.create_order(plan(f"hub-7-{100 + n}")) for n in range(5)]
    shop.create_store_order()  # the store's own checkout: not the hub's
    since = datetime.fromtimestamp(now[0], UTC) + timedelta(minutes=1)
    now[0] += 600
    for order in made[1:4]:
        shop.set_status(int(order.shop_id), "Paketleniyor")
    shop.set_status(max(shop.orders), "Paketleniyor")
    changed = connector.changed_since(since)
    assert [order.shop_id for order in changed] == [order.shop_id for order in made[1:4]]
    assert {order.status for order in changed} == {"Paketleniyor"}
    assert changed[0].modified_at == datetime.fromtimestamp(now[0], UTC)


def test_an_order_status_filter_left_out_would_list_pre_orders_only(sandbox: Sandbox) -> None:
    """The sandbox plays WCF's default: the connector's -1 is what lists every order."""
    connect(sandbox).create_order(plan())
    assert store(sandbox).select_orders({}, {"KayitSayisi": "10"}) == []
    assert (
        store(sandbox).select_orders({"SiparisDurumu": "-1"}, {"KayitSayisi": "10"}) == []
    )  # paid: 1, not 0
    every = {"SiparisDurumu": "-1", "OdemeDurumu": "-1"}
    assert len(store(sandbox).select_orders(every, {"KayitSayisi": "10"})) == 1


# -- the transport ----------------------------------------------------------------------------------


def test_the_wsdl_is_read_once_per_store_and_process(sandbox: Sandbox) -> None:
    connect(sandbox).create_order(plan("hub-7-1001"))
    connect(sandbox).create_order(plan("hub-7-1002"))
    assert [calls(sandbox, "GET", service) for service in ("SiparisServis", "UyeServis", "UrunServis")] == [
        1,
        1,
        1,
    ]


def test_the_store_is_reached_through_the_hubs_guard_only(sandbox: Sandbox) -> None:
    """The default guard refuses a private plain-http address: zeep's requests session is never used."""
    with pytest.raises(Blocked):
        connect(sandbox, guard=Guard()).find_order("hub-7-1001")
    assert sandbox.world.requests == []


def test_a_store_that_fails_is_retryable(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    connector.find_order("hub-7-1001")  # the WSDL read while the store is well
    sandbox.world.faults.error_rate = 1.0
    with pytest.raises(Retryable):
        connector.find_order("hub-7-1001")


def test_a_server_fault_is_retryable(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """WCF's own fault for a failure inside the service (InternalServiceFault) is worth trying again."""

    def failing(mail: str | None) -> list[dict[str, Any]]:
        raise store_module.Fault(
            "a:InternalServiceFault", "The server was unable to process the request due to an internal error."
        )

    monkeypatch.setattr(store(sandbox), "select_members", failing)
    with pytest.raises(Retryable, match="internal error"):
        connect(sandbox).create_order(plan())
    assert store(sandbox).orders == {}


def test_an_address_that_is_not_a_ticimax_store_says_so(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No WSDL there (404), or something at the address that is not one."""
    with pytest.raises(Permanent, match="404"):
        TicimaxConnector(f"{sandbox.url}/trendyol", {"ticimax_ws_code": "x"}, LOCAL).find_order("hub-7-1001")
    monkeypatch.setitem(store_module.WSDLS, "SiparisServis", "README.md")  # some other text at the address
    with pytest.raises(InvalidAnswer, match="cannot be read"):
        connect(sandbox).find_order("hub-7-1001")


def test_a_parsed_wsdl_is_read_again_when_it_is_old(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(sandbox).find_order("hub-7-1001")
    monkeypatch.setattr(ticimax, "WSDL_LIFE", -1.0)
    connect(sandbox).find_order("hub-7-1001")
    assert calls(sandbox, "GET", "SiparisServis") == 2


def test_an_order_the_store_renumbered_is_found_by_its_reference_since_the_first_try(
    sandbox: Sandbox,
) -> None:
    """Were a store to number orders itself, the ReferansNo of orders placed since the first create still
    finds it (find_order's `since`), so a retry makes no second order."""
    connector = connect(sandbox)
    created = connector.create_order(plan())
    store(sandbox).orders[int(created.shop_id)]["SiparisNo"] = "TCX1001"
    assert connector.find_order("hub-7-1001") is None
    found = connector.find_order("hub-7-1001", since=datetime.now(UTC) - timedelta(minutes=1))
    assert found is not None and found.shop_id == created.shop_id


def test_the_store_survives_a_restart(sandbox: Sandbox) -> None:
    connect(sandbox).create_order(plan())
    state = json.loads(json.dumps(store(sandbox).snapshot()))
    again = TicimaxShop()
    again.restore(state)
    assert again.orders == store(sandbox).orders and again.members == store(sandbox).members
    assert again.create_store_order()["ID"] == 1002
