"""Ticimax's SOAP web services in the sandbox, under /ticimax: one store's SiparisServis, UyeServis and
UrunServis as the hub's Ticimax connector reaches them.

Written from the research notes (marketplace-apis-next.md §9) and the public material cited in the WSDL
subsets it serves (specs/ticimax-*.wsdl, at `/Servis/{Servis}.svc?singleWsdl` as a store serves its own):
WCF's SOAP 1.1, the operation named by the SOAPAction header (`http://tempuri.org/I{Servis}/{Operation}`),
`UyeKodu` (the store's WS yetki kodu) as every operation's first parameter, answers in tempuri.org with
DataContract members in alphabetical order, a SOAP fault (HTTP 500) for what WCF itself refuses,
`WebServisResponse{IsError, ErrorMessage}` for what Ticimax refuses. Filters take -1 for "all" where the notes
say so, and a member left out is WCF's default (0): a real value, so an order-status filter left out lists
pre-orders only. Times are the store's wall clock, Europe/Istanbul, written without an offset as WCF writes a
local DateTime. Where nothing public says what Ticimax does (its words for most refusals, how it totals an
order) the choice is marked [sandbox] where it is made.

The seller's panel is played by methods the tests call (`set_status`, `enter_tracking`) and by control
endpoints under /_control/ticimax.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from lxml import etree

from sandbox import generator

if TYPE_CHECKING:
    from sandbox.state import World

PREFIX = "/ticimax"
SERVIS = f"{PREFIX}/Servis"
SPECS = Path(__file__).resolve().parents[1] / "specs"
WSDLS = {
    "SiparisServis": "ticimax-siparis.wsdl",
    "UyeServis": "ticimax-uye.wsdl",
    "UrunServis": "ticimax-urun.wsdl",
}
DATA = "http://schemas.datacontract.org/2004/07/Ticimax.Servis."  # + Siparis / Uye / Urun, as the WSDLs say
NAMESPACES = {"SiparisServis": f"{DATA}Siparis", "UyeServis": f"{DATA}Uye", "UrunServis": f"{DATA}Urun"}
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TEMPURI = "http://tempuri.org/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ISTANBUL = timezone(timedelta(hours=3), "Europe/Istanbul")
STAMP = "%Y-%m-%dT%H:%M:%S"
CENT = Decimal("0.01")
MAX_PAGE = 500  # [sandbox] the largest KayitSayisi is not public (the PDF's example uses 100)
# The order statuses by number (SiparisServis.pdf): the enum name SetSiparisDurum takes, and the text the
# store shows. The names of 11–17 are [sandbox], as in the WSDL.
STATUSES: tuple[tuple[str, str], ...] = (
    ("OnSiparis", "Ön Sipariş"),
    ("OnayBekliyor", "Onay Bekliyor"),
    ("Onaylandi", "Onaylandı"),
    ("OdemeBekliyor", "Ödeme Bekliyor"),
    ("Paketleniyor", "Paketleniyor"),
    ("TedarikEdiliyor", "Tedarik Ediliyor"),
    ("KargoyaVerildi", "Kargoya Verildi"),
    ("TeslimEdildi", "Teslim Edildi"),
    ("Iptal", "İptal Edildi"),
    ("Iade", "İade Edildi"),
    ("Silinmis", "Silinmiş"),
    ("IadeTalebiAlindi", "İade Talebi Alındı"),
    ("IadeUlasti", "İade Ulaştı"),
    ("IadeReddedildi", "İade Reddedildi"),
    ("IptalTalebiAlindi", "İptal Talebi Alındı"),
    ("IptalTalebiReddedildi", "İptal Talebi Reddedildi"),
    ("KismiIade", "Kısmi İade"),
    ("KismiIptal", "Kısmi İptal"),
)
NUMBERS = {name: number for number, (name, _) in enumerate(STATUSES)}
# Ticimax's words where public material gives them; the rest [sandbox].
DUPLICATE = "Bu Sipariş Numarasına Ait Kayıt Bulunmaktadır."  # a 3P integrator's log of SaveSiparis
BAD_CODE = "Geçersiz UyeKodu."
NO_ORDER = "Sipariş bulunamadı."
# WCF's own words for an action the service does not have.
CONTRACT_MISMATCH = (
    "The message with Action '{}' cannot be processed at the receiver, due to a ContractFilter mismatch at "
    "the EndpointDispatcher."
)


class Refusal(Exception):
    """What Ticimax answers with IsError true (or, for an operation without WebServisResponse, a fault)."""


class Fault(Exception):
    """A SOAP fault, as WCF writes one: faultcode and faultstring, HTTP 500."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def store_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, ISTANBUL).strftime(STAMP)


def parse_time(text: str) -> float:
    """An xs:dateTime as a client sends it: without an offset it is the store's wall clock."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ISTANBUL)
    return moment.timestamp()


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class TicimaxShop:
    """Ticimax's side of the world: one store, its WS yetki kodu, its members, products and orders. It has its
    own lock; nothing holds it while taking another."""

    ws_code: str = "TCX-SANDBOX-7Q4M2K9X"
    # [sandbox] True: the store totals an order from its lines' net amounts and VAT at the cent plus the
    # cargo charge, ignoring the header amounts it was sent. False: it keeps UrunTutari + UrunTutariKdv +
    # KargoTutari - IndirimTutari as sent (after checking them against the lines, within a cent each).
    recalculates_total: bool = False
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.time  # a seam: the tests move the store's clock
        self._order_ids = itertools.count(1001)
        self._member_ids = itertools.count(501)
        # The catalogue as product cards of one variation each: card 2001…, variation 20001….
        self.variations = {20001 + index: product for index, product in enumerate(generator.CATALOGUE)}

    # -- kept across restarts, with the rest of the world ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counters = {"order_id": next(self._order_ids), "member_id": next(self._member_ids)}
            self._order_ids = itertools.count(counters["order_id"])
            self._member_ids = itertools.count(counters["member_id"])
            return {
                "orders": list(self.orders.values()),
                "members": list(self.members.values()),
                "counters": counters,
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.orders = {int(order["ID"]): order for order in state.get("orders", [])}
            self.members = {int(member["ID"]): member for member in state.get("members", [])}
            counters = state.get("counters") or {}
            self._order_ids = itertools.count(int(counters.get("order_id", 1001)))
            self._member_ids = itertools.count(int(counters.get("member_id", 501)))

    # -- members (UyeServis) -----------------------------------------------------------------------

    def select_members(self, mail: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(member)
                for member in self.members.values()
                if not mail or member["Mail"].casefold() == mail.casefold()
            ]

    def save_member(self, member: dict[str, Any]) -> int:
        """SaveUye with ID 0: a new member; a mail already registered is refused ([sandbox] words)."""
        mail = str(member.get("Mail") or "").strip()
        if not mail or "@" not in mail:
            raise Refusal("Geçerli bir mail adresi giriniz.")
        with self.lock:
            if self.select_members(mail):
                raise Refusal("Bu mail adresi ile kayıtlı üye bulunmaktadır.")
            member_id = next(self._member_ids)
            self.members[member_id] = {
                "ID": member_id,
                "Mail": mail,
                "Isim": str(member.get("Isim") or ""),
                "Soyisim": str(member.get("Soyisim") or ""),
                "CepTelefonu": str(member.get("CepTelefonu") or ""),
                "MailIzin": 0,
                "SmsIzin": 0,
            }
            return member_id

    # -- products (UrunServis) ---------------------------------------------------------------------

    def select_products(self, stock_code: str | None) -> list[dict[str, Any]]:
        cards = []
        for variation_id, product in self.variations.items():
            if stock_code and product.stock_code != stock_code:
                continue
            variation = {
                "Barkod": product.barcode,
                "ID": variation_id,
                "KdvOrani": float(product.vat_rate),
                "SatisFiyati": float(product.price),
                "StokKodu": product.stock_code,
            }
            cards.append({"ID": variation_id - 18000, "UrunAdi": product.name, "Varyasyonlar": [variation]})
        return cards

    # -- orders (SiparisServis) --------------------------------------------------------------------

    def save_order(self, request_: dict[str, Any]) -> dict[str, Any]:
        """SaveSiparis: checked and kept, or refused with Ticimax's words (IsError)."""
        with self.lock:
            number = str(request_.get("SiparisNo") or "").strip()
            if number and any(order["SiparisNo"] == number for order in self.orders.values()):
                raise Refusal(DUPLICATE)
            member = self.members.get(_int(request_.get("UyeId")))
            if member is None:
                raise Refusal("Üye bulunamadı.")  # [sandbox]
            lines = request_.get("Urunler") or []
            if not lines:
                raise Refusal("Siparişte en az bir ürün olmalıdır.")  # [sandbox]
            kept, net_total, vat_total = [], Decimal(0), Decimal(0)
            for line in lines:
                variation_id = _int(line.get("UrunID"))
                product = self.variations.get(variation_id)
                if product is None:
                    raise Refusal(f"Ürün bulunamadı. UrunID: {variation_id}")  # [sandbox]
                quantity = _decimal(line.get("Adet"))
                if quantity <= 0 or quantity != quantity.to_integral_value():
                    raise Refusal("Adet pozitif bir tam sayı olmalıdır.")  # [sandbox]
                net, vat = _decimal(line.get("Tutar")), _decimal(line.get("KdvTutari"))
                net_total += (net * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
                vat_total += (vat * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
                kept.append(
                    {
                        "UrunID": variation_id,
                        "StokKodu": product.stock_code,
                        "UrunAdi": product.name,
                        "Adet": int(quantity),
                        "Tutar": str(net),
                        "KdvTutari": str(vat),
                        "KdvOrani": str(_decimal(line.get("KdvOrani"))),
                    }
                )
            goods, goods_vat = _decimal(request_.get("UrunTutari")), _decimal(request_.get("UrunTutariKdv"))
            # [sandbox] the header amounts must agree with the lines, to the cent each line rounds to.
            slack = CENT * len(kept)
            if abs(goods - net_total) > slack or abs(goods_vat - vat_total) > slack:
                raise Refusal("Ürün tutarları sipariş tutarı ile uyuşmuyor.")
            cargo, discount = _decimal(request_.get("KargoTutari")), _decimal(request_.get("IndirimTutari"))
            if self.recalculates_total:
                total = net_total + vat_total + cargo - discount
            else:
                total = goods + goods_vat + cargo - discount
            payment = request_.get("Odeme") or {}
            if _decimal(payment.get("Tutar")) != total.quantize(CENT, rounding=ROUND_HALF_UP):
                raise Refusal("Ödeme tutarı sipariş tutarı ile uyuşmuyor.")  # [sandbox]
            now = int(self.clock())
            order_id = next(self._order_ids)
            order: dict[str, Any] = {
                "ID": order_id,
                "SiparisNo": number or f"TCX{order_id}",
                "ReferansNo": str(request_.get("ReferansNo") or ""),
                "SiparisKaynagi": str(request_.get("SiparisKaynagi") or ""),
                "SiparisNotu": str(request_.get("SiparisNotu") or ""),
                "Durum": NUMBERS["OnayBekliyor"],  # [sandbox] where a new order starts
                "UyeID": member["ID"],
                "AdiSoyadi": f"{member['Isim']} {member['Soyisim']}".strip(),
                "SiparisTarihi": now,
                "DuzenlemeTarihi": now,
                "SiparisToplamTutari": _money(total),
                "KargoTutari": _money(cargo),
                "ParaBirimi": str(request_.get("ParaBirimi") or "TL"),
                "KargoFirmaAdi": "",
                "KargoTakipNo": "",
                "KargoTakipLink": "",
                "OdemeDurumu": _int(payment.get("OdemeDurumu")),
                "Urunler": kept,
                "TeslimatAdres": dict(request_.get("TeslimatAdres") or {}),
                "FaturaAdres": dict(request_.get("FaturaAdres") or {}),
            }
            self.orders[order_id] = order
            return order

    def select_orders(self, filters: dict[str, Any], paging: dict[str, Any]) -> list[dict[str, Any]]:
        """SelectSiparis: -1 is "all" for SiparisDurumu and OdemeDurumu; a member left out is 0, a real value
        (pre-orders, payment awaiting approval). SiparisID and UyeID filter when above 0."""
        order_id, member_id = _int(filters.get("SiparisID")), _int(filters.get("UyeID"))
        status, payment = _int(filters.get("SiparisDurumu")), _int(filters.get("OdemeDurumu"))
        number = str(filters.get("SiparisNo") or "")
        windows = []
        for name, key in (("SiparisTarihi", "SiparisTarihi"), ("DuzenlemeTarihi", "DuzenlemeTarihi")):
            low, high = filters.get(f"{name}Bas"), filters.get(f"{name}Son")
            try:
                windows.append((key, parse_time(low) if low else None, parse_time(high) if high else None))
            except ValueError:
                raise Fault("a:DeserializationFailed", f"{name}Bas/Son: geçersiz tarih.") from None
        start, count = _int(paging.get("BaslangicIndex")), min(_int(paging.get("KayitSayisi")), MAX_PAGE)
        descending = str(paging.get("SiralamaYonu") or "ASC").upper() == "DESC"
        with self.lock:
            matches = []
            for order in sorted(self.orders.values(), key=lambda order: int(order["ID"]), reverse=descending):
                if order_id > 0 and order["ID"] != order_id:
                    continue
                if member_id > 0 and order["UyeID"] != member_id:
                    continue
                if status != -1 and order["Durum"] != status:
                    continue
                if payment != -1 and order["OdemeDurumu"] != payment:
                    continue
                if number and order["SiparisNo"] != number:
                    continue
                # Whole seconds, both ends included.
                if all(
                    (low is None or order[key] >= int(low)) and (high is None or order[key] <= int(high))
                    for key, low, high in windows
                ):
                    matches.append(order)
            return [public(order) for order in matches[max(start, 0) : max(start, 0) + max(count, 0)]]

    def order(self, order_id: int) -> dict[str, Any]:
        with self.lock:
            found = self.orders.get(order_id)
            if found is None:
                raise Refusal(NO_ORDER)
            return found

    def order_for_reference(self, reference: str) -> dict[str, Any] | None:
        """The store's order carrying the hub's reference (its SiparisNo), asserting there is at most one."""
        with self.lock:
            matches = [order for order in self.orders.values() if order["SiparisNo"] == reference]
            assert len(matches) <= 1, f"{reference} is in Ticimax {len(matches)} times"
            return matches[0] if matches else None

    def set_status(self, order_id: int, name: str) -> dict[str, Any]:
        """SetSiparisDurum, or the seller in the panel. A Durum that is not an enum name is ignored without
        a word, as WCF ignores a number there (the 3P support note); the edit time moves on a change."""
        with self.lock:
            order = self.order(order_id)
            number = NUMBERS.get(name)
            if number is not None and order["Durum"] != number:
                order["Durum"] = number
                self._touch(order)
            return order

    def save_tracking(self, order_id: int, carrier: str, code: str, link: str) -> dict[str, Any]:
        """SaveKargoTakipNo, or the seller entering the code in the panel: the order's status stays."""
        with self.lock:
            order = self.order(order_id)
            if not code.strip():
                raise Refusal("Kargo takip numarası boş olamaz.")  # [sandbox]
            changed = (order["KargoFirmaAdi"], order["KargoTakipNo"], order["KargoTakipLink"]) != (
                carrier,
                code,
                link,
            )
            order["KargoFirmaAdi"], order["KargoTakipNo"], order["KargoTakipLink"] = carrier, code, link
            if changed:
                self._touch(order)
            return order

    def create_store_order(self) -> dict[str, Any]:
        """An order the store took itself (its own checkout): not the hub's to follow."""
        with self.lock:
            member_id = self.save_member({"Mail": f"musteri{len(self.members) + 1}@example.com"})
            product_id, product = next(iter(self.variations.items()))
            net = (product.price / (1 + Decimal(product.vat_rate) / 100)).quantize(CENT)
            vat = product.price - net
            return self.save_order(
                {
                    "UyeId": member_id,
                    "Urunler": [
                        {"UrunID": product_id, "Adet": "1", "Tutar": str(net), "KdvTutari": str(vat)}
                    ],
                    "UrunTutari": str(net),
                    "UrunTutariKdv": str(vat),
                    "Odeme": {"Tutar": str(product.price)},
                }
            )

    def _touch(self, order: dict[str, Any]) -> None:
        order["DuzenlemeTarihi"] = int(self.clock())


def public(order: dict[str, Any]) -> dict[str, Any]:
    """The order as SelectSiparis gives it (WebSiparis): Durum the number, SiparisDurumu the store's text."""
    return {
        "AdiSoyadi": order["AdiSoyadi"],
        "Durum": order["Durum"],
        "DuzenlemeTarihi": store_time(order["DuzenlemeTarihi"]),
        "ID": order["ID"],
        "KargoFirmaAdi": order["KargoFirmaAdi"],
        "KargoTakipLink": order["KargoTakipLink"],
        "KargoTakipNo": order["KargoTakipNo"],
        "ReferansNo": order["ReferansNo"],
        "SiparisDurumu": STATUSES[order["Durum"]][1],
        "SiparisKaynagi": order["SiparisKaynagi"],
        "SiparisNo": order["SiparisNo"],
        "SiparisNotu": order["SiparisNotu"],
        "SiparisTarihi": store_time(order["SiparisTarihi"]),
        "SiparisToplamTutari": order["SiparisToplamTutari"],
        "UyeID": order["UyeID"],
    }


def _int(value: Any) -> int:
    """An xs:int as sent; left out, WCF's default 0."""
    if value is None or value == "":
        return 0
    try:
        return int(str(value))
    except ValueError:
        raise Fault("a:DeserializationFailed", f"'{value}' geçerli bir sayı değil.") from None


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise Fault("a:DeserializationFailed", f"'{value}' geçerli bir sayı değil.")
    return number


# -- SOAP ---------------------------------------------------------------------------------------------


def _read(element: Any) -> Any:
    """An element of the request as Python: nil → None, text → str, children → dict by local name; an element
    whose children share one name (an ArrayOf…) → a list."""
    if element.get(f"{{{XSI}}}nil") == "true":
        return None
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return element.text or ""
    names = [etree.QName(child).localname for child in children]
    if etree.QName(element).localname in ARRAYS:
        return [_read(child) for child in children]
    return {name: _read(child) for name, child in zip(names, children, strict=True)}


ARRAYS = {"Urunler"}


def _write(parent: Any, namespace: str, name: str, value: Any) -> None:
    """A DataContract member: nil for None, members of a dict in alphabetical order (as WCF writes them),
    a list as items named by `ITEMS`."""
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if value is None:
        element.set(f"{{{XSI}}}nil", "true")
    elif isinstance(value, dict):
        for key in sorted(value):
            _write(element, namespace, key, value[key])
    elif isinstance(value, list):
        for item in value:
            _write(element, namespace, ITEMS[name], item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = str(value)


ITEMS = {"Varyasyonlar": "Varyasyon"}


def _envelope(service: str, operation: str, result: Any, item: str | None = None) -> Response:
    """`<{Operation}Response><{Operation}Result>…` in tempuri.org, the result's members in the service's
    DataContract namespace; `item` names a list result's entries (WebSiparis, Uye, UrunKarti)."""
    namespace = NAMESPACES[service]
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    body = etree.SubElement(envelope, f"{{{SOAP}}}Body")
    answer = etree.SubElement(body, f"{{{TEMPURI}}}{operation}Response", nsmap={None: TEMPURI})
    holder = etree.SubElement(answer, f"{{{TEMPURI}}}{operation}Result", nsmap={"a": namespace, "i": XSI})
    if item is not None:
        for entry in result:
            _write(holder, namespace, item, entry)
    elif isinstance(result, dict):
        for key in sorted(result):
            _write(holder, namespace, key, result[key])
    else:
        holder.text = str(result)
    return Response(etree.tostring(envelope, xml_declaration=False), content_type="text/xml; charset=utf-8")


def _fault(fault: Fault) -> Response:
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    body = etree.SubElement(envelope, f"{{{SOAP}}}Body")
    element = etree.SubElement(body, f"{{{SOAP}}}Fault")
    code = etree.SubElement(
        element, "faultcode", nsmap={"a": "http://schemas.microsoft.com/ws/2005/05/addressing/none"}
    )
    code.text = fault.code
    text = etree.SubElement(element, "faultstring")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "tr-TR")
    text.text = fault.text
    return Response(etree.tostring(envelope), status=500, content_type="text/xml; charset=utf-8")


def _response(error: str | None) -> dict[str, Any]:
    """WebServisResponse."""
    return {"ErrorCode": None, "ErrorMessage": error, "IsError": error is not None}


PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def register(app: Flask, world: World) -> None:
    """The three services' WSDLs and SOAP endpoints and the control endpoints on the sandbox app; the app's
    fault knobs reach them through its own hooks (every path under PREFIX)."""
    shop = world.ticimax

    @app.get(f"{SERVIS}/<service>.svc")
    def ticimax_wsdl(service: str) -> ResponseReturnValue:
        """`?singleWsdl` (or `?wsdl`): the service's WSDL, as a store serves it."""
        if service not in WSDLS or not ({"singleWsdl", "wsdl"} & set(request.args)):
            return Response("Not found", status=404, content_type="text/plain")
        return Response((SPECS / WSDLS[service]).read_bytes(), content_type="text/xml; charset=utf-8")

    @app.post(f"{SERVIS}/<service>.svc")
    def ticimax_soap(service: str) -> ResponseReturnValue:
        if service not in WSDLS:
            return Response("Not found", status=404, content_type="text/plain")
        if request.mimetype != "text/xml":  # basicHttpBinding: SOAP 1.1 only, WCF's own words
            given, expected = request.content_type, "the expected type 'text/xml; charset=utf-8'"
            text = f"Cannot process the message because the content type '{given}' was not {expected}."
            return Response(text, status=415, content_type="text/plain")
        action = request.headers.get("SOAPAction", "").strip().strip('"')
        prefix = f"{TEMPURI}I{service}/"
        try:
            try:
                envelope = etree.fromstring(request.get_data(), PARSER)
            except etree.XMLSyntaxError:
                raise Fault("a:BadRequest", "The message could not be read.") from None
            body = envelope.find(f"{{{SOAP}}}Body")
            call = (
                next((child for child in body if isinstance(child.tag, str)), None)
                if body is not None
                else None
            )
            operation = action[len(prefix) :] if action.startswith(prefix) else ""
            if (
                call is None
                or etree.QName(call).localname != operation
                or operation not in OPERATIONS[service]
            ):
                raise Fault("a:ActionNotSupported", CONTRACT_MISMATCH.format(action))
            arguments = {
                etree.QName(child).localname: _read(child) for child in call if isinstance(child.tag, str)
            }
            if arguments.get("UyeKodu") != shop.ws_code:
                raise Fault("s:Client", BAD_CODE)  # [sandbox] words
            return OPERATIONS[service][operation](shop, arguments)
        except Fault as fault:
            return _fault(fault)

    # -- control: the seller in Ticimax's panel -------------------------------------------------------

    @app.post("/_control/ticimax/orders/<int:order_id>/status")
    def control_ticimax_status(order_id: int) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        try:
            return jsonify(public(shop.set_status(order_id, str(body.get("durum", "")))))
        except Refusal as refusal:
            return jsonify({"error": str(refusal)}), 400

    @app.post("/_control/ticimax/orders/<int:order_id>/cargo")
    def control_ticimax_cargo(order_id: int) -> ResponseReturnValue:
        body = request.get_json(silent=True) or {}
        try:
            order = shop.save_tracking(
                order_id, str(body.get("carrier", "")), str(body.get("code", "")), str(body.get("link", ""))
            )
        except Refusal as refusal:
            return jsonify({"error": str(refusal)}), 400
        return jsonify(public(order))

    @app.get("/_control/ticimax/state")
    def control_ticimax_state() -> ResponseReturnValue:
        with shop.lock:
            return jsonify(
                {
                    "orders": [public(order) for order in shop.orders.values()],
                    "members": list(shop.members.values()),
                    "now": datetime.now(UTC).isoformat(),
                }
            )


# -- the operations: (shop, arguments) → the SOAP answer -------------------------------------------------


def _select_siparis(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    orders = shop.select_orders(arguments.get("f") or {}, arguments.get("s") or {})
    return _envelope("SiparisServis", "SelectSiparis", orders, item="WebSiparis")


def _save_siparis(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    try:
        shop.save_order(arguments.get("siparis") or {})
    except Refusal as refusal:
        return _envelope("SiparisServis", "SaveSiparis", _response(str(refusal)))
    return _envelope("SiparisServis", "SaveSiparis", _response(None))


def _set_siparis_durum(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    change = arguments.get("request") or {}
    try:
        shop.set_status(_int(change.get("SiparisID")), str(change.get("Durum") or ""))
    except Refusal as refusal:
        return _envelope("SiparisServis", "SetSiparisDurum", _response(str(refusal)))
    return _envelope("SiparisServis", "SetSiparisDurum", _response(None))


def _save_kargo_takip_no(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    """Its answer is a string ([sandbox]: empty on success, Ticimax's words otherwise)."""
    try:
        shop.save_tracking(
            _int(arguments.get("siparisId")),
            str(arguments.get("kargoKodu") or ""),
            str(arguments.get("kargoTakipNo") or ""),
            str(arguments.get("kargoTakipLink") or ""),
        )
    except Refusal as refusal:
        return _envelope("SiparisServis", "SaveKargoTakipNo", str(refusal))
    return _envelope("SiparisServis", "SaveKargoTakipNo", "")


def _select_uyeler(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    mail = (arguments.get("filtre") or {}).get("Mail")
    members = shop.select_members(str(mail) if mail else None)
    return _envelope("UyeServis", "SelectUyeler", members, item="Uye")


def _save_uye(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    try:
        member_id = shop.save_member(arguments.get("uye") or {})
    except Refusal as refusal:
        raise Fault("s:Client", str(refusal)) from None  # [sandbox] SaveUye has no IsError to say it in
    return _envelope("UyeServis", "SaveUye", member_id)


def _select_urun(shop: TicimaxShop, arguments: dict[str, Any]) -> Response:
    stock_code = (arguments.get("f") or {}).get("StokKodu")
    cards = shop.select_products(str(stock_code) if stock_code else None)
    return _envelope("UrunServis", "SelectUrun", cards, item="UrunKarti")


OPERATIONS: dict[str, dict[str, Callable[[TicimaxShop, dict[str, Any]], Response]]] = {
    "SiparisServis": {
        "SelectSiparis": _select_siparis,
        "SaveSiparis": _save_siparis,
        "SetSiparisDurum": _set_siparis_durum,
        "SaveKargoTakipNo": _save_kargo_takip_no,
    },
    "UyeServis": {"SelectUyeler": _select_uyeler, "SaveUye": _save_uye},
    "UrunServis": {"SelectUrun": _select_urun},
}
