"""Products: add and edit by hand, import an XML feed (all or nothing), tenant isolation, CSRF."""

from __future__ import annotations

import io

import sqlalchemy as sa

from extensions import db
from models import Account, Product
from tests.conftest import Client, make_account

FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<products>
  <product><barcode>8680001000011</barcode><stock_code>TS-BEYAZ-M</stock_code><name>Tisort</name>
    <stock>25</stock><price>149,90</price><vat>10</vat></product>
  <urun><barkod>8680001000097</barkod><stok_kodu>ZEYTINYAGI-1L</stok_kodu><urun_adi>Zeytinyagi</urun_adi>
    <stok>4</stok><fiyat>389.00</fiyat><kdv>1</kdv></urun>
</products>"""


def products() -> dict[str, Product]:
    return {product.barcode: product for product in db.session.scalars(sa.select(Product))}


def upload(client: Client, data: bytes) -> object:
    return client.post(
        "/products/import", data={"feed": (io.BytesIO(data), "feed.xml")}, content_type="multipart/form-data"
    )


def test_add_and_edit_a_product(seller: Client, account: Account) -> None:
    data = {
        "barcode": " 123 ",
        "stock_code": "SKU-1",
        "name": "Kupa",
        "stock": "7",
        "price": "89.90",
        "vat_rate": "20",
    }
    assert seller.post("/products/new", data=data).status_code == 302
    product = products()["123"]
    assert (product.stock, product.vat_rate, str(product.price)) == (7, 20, "89.90")
    assert (
        seller.post(f"/products/{product.id}/edit", data={**data, "stock": "-2", "vat_rate": ""}).status_code
        == 302
    )
    db.session.expire_all()
    assert (product.stock, product.vat_rate) == (-2, None)
    page = seller.get("/products?q=kup").get_data(as_text=True)
    assert "Kupa" in page and "SKU-1" in page


def test_bad_product_input_is_refused(seller: Client, account: Account) -> None:
    seller.post("/products/new", data={"barcode": "123", "name": "Kupa", "stock": "1"})
    cases = [
        ({"barcode": "", "name": "X", "stock": "1"}, "This field is required."),
        ({"barcode": "9", "name": "X", "stock": "many"}, "Not a valid integer value."),
        ({"barcode": "123", "name": "X", "stock": "1"}, "already have a product with this barcode"),
        (
            {"barcode": "9", "name": "X", "stock": "1", "price": "-1"},
            "Enter a price from 0 to 9,999,999,999.",
        ),
        (
            {"barcode": "9", "name": "X", "stock": "1", "price": "1e15"},
            "Enter a price from 0 to 9,999,999,999.",
        ),
        (
            {"barcode": "9", "name": "X", "stock": "1", "price": "NaN"},
            "Enter a price from 0 to 9,999,999,999.",
        ),
        ({"barcode": "9", "name": "X", "stock": "99999999999"}, "Number must be between"),
    ]
    for data, message in cases:
        response = seller.post("/products/new", data=data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), data
    assert len(products()) == 1


def test_import_adds_and_updates_by_barcode(seller: Client, account: Account) -> None:
    seller.post("/products/new", data={"barcode": "8680001000011", "name": "Old", "stock": "1"})
    response = upload(seller, FEED)
    assert response.status_code == 302  # type: ignore[attr-defined]
    found = products()
    assert (found["8680001000011"].name, found["8680001000011"].stock, str(found["8680001000011"].price)) == (
        "Tisort",
        25,
        "149.90",
    )
    assert (found["8680001000097"].stock_code, found["8680001000097"].vat_rate) == ("ZEYTINYAGI-1L", 1)
    assert "1 added, 1 updated" in seller.get("/products").get_data(as_text=True)


def test_a_bad_row_imports_nothing_and_says_which(seller: Client, account: Account) -> None:
    bad = FEED.replace(b"<stok>4</stok>", b"<stok>four</stok>").replace(b"<vat>10</vat>", b"<vat>7</vat>")
    bad = bad.replace(
        b"</products>",
        b"<product><barcode>1</barcode><name>x</name><stock>9999999999</stock>"
        b"<price>NaN</price></product></products>",
    )
    response = upload(seller, bad)
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Row 1: barcode 8680001000011: VAT 7 is not 0, 1, 10 or 20." in text
    assert "Row 2: barcode 8680001000097: stock four is not a whole number up to 1,000,000,000." in text
    assert "Row 3: barcode 1: stock 9999999999 is not a whole number up to 1,000,000,000." in text
    assert products() == {}


def test_hostile_or_broken_files_change_nothing(seller: Client, account: Account) -> None:
    bomb = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
    <products><product><barcode>&lol2;</barcode><name>x</name></product></products>"""
    for data, message in (
        (bomb, "not a readable XML file"),
        (b"<products>", "not a readable XML file"),
        (b"<x/>", "no &lt;product&gt;"),
    ):
        response = upload(seller, data)
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert message in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert products() == {}


def test_another_accounts_product_answers_404(seller: Client) -> None:
    other = make_account("other@example.com")
    product = Product(account_id=other.id, barcode="1", name="Not yours", stock=3)
    db.session.add(product)
    db.session.commit()
    assert seller.get(f"/products/{product.id}/edit").status_code == 404
    assert (
        seller.post(
            f"/products/{product.id}/edit", data={"barcode": "1", "name": "Mine", "stock": "0"}
        ).status_code
        == 404
    )
    assert "Not yours" not in seller.get("/products").get_data(as_text=True)
    db.session.expire_all()
    assert (product.name, product.stock) == ("Not yours", 3)


def test_product_mutations_need_the_csrf_token(seller: Client, account: Account) -> None:
    data = {"barcode": "1", "name": "X", "stock": "1"}
    assert seller.post("/products/new", data=data, csrf=False).status_code == 400
    response = seller.post(
        "/products/import",
        data={"feed": (io.BytesIO(FEED), "f.xml")},
        content_type="multipart/form-data",
        csrf=False,
    )
    assert response.status_code == 400
    assert products() == {}


def test_products_need_login(client: Client) -> None:
    for page in ("/products", "/products/new", "/products/import"):
        assert client.get(page).status_code == 302
