"""Reading an XML product feed: every row checked first, so a bad file changes nothing.

Accepts the shapes Turkish shops export: `<product>`, `<item>` or `<urun>` elements whose children name
the barcode, stock code, name, stock, price and VAT in English or Turkish. Parsed with defusedxml, so a
hostile file cannot expand entities or reach the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from flask_babel import gettext as _

from sync.settings import SHIPPING_VAT_RATES

ROWS = ("product", "item", "urun", "Urun", "Product")
FIELDS = {
    "barcode": ("barcode", "barkod", "Barkod", "gtin"),
    "stock_code": ("stock_code", "stockCode", "stok_kodu", "StokKodu", "sku"),
    "name": ("name", "title", "urun_adi", "UrunAdi"),
    "stock": ("stock", "quantity", "stok", "Stok", "miktar"),
    "price": ("price", "fiyat", "Fiyat", "satis_fiyati"),
    "vat_rate": ("vat", "vat_rate", "kdv", "KDV"),
}
MAX_BYTES = 10 * 1024 * 1024
ERROR_LENGTH = 200


@dataclass(frozen=True)
class FeedProduct:
    barcode: str
    stock_code: str
    name: str
    stock: int
    price: Decimal | None
    vat_rate: int | None


class FeedError(ValueError):
    """The file as a whole cannot be read."""


def read_feed(data: bytes) -> tuple[list[FeedProduct], list[str]]:
    """The products of the feed, and one message per row that is wrong (with its number)."""
    if len(data) > MAX_BYTES:
        raise FeedError(_("The file is larger than %(size)d MB.", size=MAX_BYTES // 1024 // 1024))
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as error:
        raise FeedError(_("This is not a readable XML file (%(error)s).", error=error)) from None
    except (LookupError, ValueError) as error:
        # The encoding the file declares is unknown, or one the XML parser cannot read (multi-byte ones).
        raise FeedError(
            _(
                "The file's character encoding cannot be read (%(error)s); save it as UTF-8.",
                error=str(error)[:ERROR_LENGTH],
            )
        ) from None
    rows = [element for element in root.iter() if element.tag in ROWS]
    if not rows:
        raise FeedError(_("The file has no <product>, <item> or <urun> elements."))
    products, errors = [], []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        try:
            product = _product(row)
        except ValueError as error:
            errors.append(_("Row %(number)d: %(problem)s", number=number, problem=error))
            continue
        if product.barcode in seen:
            errors.append(
                _(
                    "Row %(number)d: barcode %(barcode)s appears twice.",
                    number=number,
                    barcode=product.barcode,
                )
            )
            continue
        seen.add(product.barcode)
        products.append(product)
    return products, errors


def _product(row: Element) -> FeedProduct:
    values = {name: _text(row, tags) for name, tags in FIELDS.items()}
    if not values["barcode"]:
        raise ValueError(_("the barcode is missing."))
    if not values["name"]:
        raise ValueError(_("barcode %(barcode)s: the name is missing.", barcode=values["barcode"]))
    try:
        stock = int(values["stock"] or "0")
        if not -(10**6) <= stock <= 10**9:
            raise ValueError(values["stock"])
    except ValueError:
        raise ValueError(
            _(
                "barcode %(barcode)s: stock %(value)s is not a whole number up to 1,000,000,000.",
                barcode=values["barcode"],
                value=values["stock"],
            )
        ) from None
    price = None
    if values["price"]:
        try:
            price = Decimal(values["price"].replace(",", "."))
            if not price.is_finite() or not 0 <= price < 10**10:
                raise InvalidOperation(values["price"])
        except InvalidOperation:
            raise ValueError(
                _(
                    "barcode %(barcode)s: price %(value)s is not an amount.",
                    barcode=values["barcode"],
                    value=values["price"],
                )
            ) from None
    vat = _vat(values["vat_rate"], values["barcode"])
    return FeedProduct(
        barcode=values["barcode"][:64],
        stock_code=values["stock_code"][:120],
        name=values["name"][:300],
        stock=stock,
        price=price,
        vat_rate=vat,
    )


def _vat(text: str, barcode: str) -> int | None:
    if not text:
        return None
    try:
        rate = Decimal(text.replace(",", "."))
    except InvalidOperation:
        rate = Decimal(-1)
    if rate not in SHIPPING_VAT_RATES:
        raise ValueError(
            _("barcode %(barcode)s: VAT %(value)s is not 0, 1, 10 or 20.", barcode=barcode, value=text)
        )
    return int(rate)


def _text(row: Element, tags: tuple[str, ...]) -> str:
    for tag in tags:
        child = row.find(tag)
        if child is not None and child.text and child.text.strip():
            return child.text.strip()
        if row.get(tag):
            return str(row.get(tag)).strip()
    return ""
