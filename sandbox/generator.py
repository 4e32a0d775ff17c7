"""Realistic Turkish orders for the sandbox: names, addresses, a product catalogue with barcodes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

FIRST_NAMES = (
    "Ayşe", "Fatma", "Emine", "Hatice", "Zeynep", "Elif", "Merve", "Büşra", "Şule", "Gülşen",
    "Mehmet", "Mustafa", "Ahmet", "Ali", "Hüseyin", "Hasan", "İbrahim", "Murat", "Ömer", "Çağrı",
)  # fmt: skip
LAST_NAMES = (
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Özdemir",
    "Arslan", "Doğan", "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özkan", "Şimşek",
)  # fmt: skip
PLACES = (
    ("İstanbul", 34, "Kadıköy", "Caferağa Mah."),
    ("İstanbul", 34, "Şişli", "Teşvikiye Mah."),
    ("İstanbul", 34, "Üsküdar", "Altunizade Mah."),
    ("Ankara", 6, "Çankaya", "Kızılay Mah."),
    ("Ankara", 6, "Keçiören", "Etlik Mah."),
    ("İzmir", 35, "Karşıyaka", "Bostanlı Mah."),
    ("İzmir", 35, "Bornova", "Kazımdirik Mah."),
    ("Bursa", 16, "Nilüfer", "Görükle Mah."),
    ("Antalya", 7, "Muratpaşa", "Lara Mah."),
    ("Eskişehir", 26, "Tepebaşı", "Hoşnudiye Mah."),
)
STREETS = ("Atatürk Cad.", "Cumhuriyet Cad.", "İnönü Sok.", "Gül Sok.", "Bağdat Cad.", "Menekşe Sok.")


@dataclass(frozen=True)
class Product:
    barcode: str
    stock_code: str
    name: str
    price: Decimal
    vat_rate: int
    color: str = "No Color"
    size: str = "Tek Ebat"


CATALOGUE = (
    Product("8680001000011", "TS-BEYAZ-M", "Pamuklu Basic Tişört Beyaz", Decimal("149.90"), 10, "Beyaz", "M"),
    Product("8680001000028", "TS-SIYAH-L", "Pamuklu Basic Tişört Siyah", Decimal("149.90"), 10, "Siyah", "L"),
    Product("8680001000035", "KP-LACI-32", "Slim Fit Kot Pantolon", Decimal("399.00"), 10, "Lacivert", "32"),
    Product("8680001000042", "AYK-SPOR-42", "Günlük Spor Ayakkabı", Decimal("749.50"), 10, "Beyaz", "42"),
    Product("8680001000059", "KUPA-SERAMIK", "El Yapımı Seramik Kupa", Decimal("89.99"), 20),
    Product("8680001000066", "CAY-DEMLIK", "Çelik Çaydanlık Takımı", Decimal("629.00"), 20),
    Product("8680001000073", "HAVLU-SET-3", "Pamuk Havlu Seti 3'lü", Decimal("279.00"), 10),
    Product("8680001000080", "KITAP-AYRAC", "Deri Kitap Ayracı", Decimal("49.90"), 20),
    Product("8680001000097", "ZEYTINYAGI-1L", "Soğuk Sıkım Zeytinyağı 1 L", Decimal("389.00"), 1),
    Product("8680001000103", "LOKUM-500", "Fıstıklı Lokum 500 g", Decimal("219.00"), 1),
)  # fmt: skip

CARRIERS = (
    ("733", "Trendyol Express Marketplace"),
    ("725", "Yurtiçi Kargo Marketplace"),
    ("726", "Aras Kargo Marketplace"),
    ("728", "MNG Kargo Marketplace"),
    ("734", "PTT Kargo Marketplace"),
)

# Orders under this total carry a cargo fee inside packageTotalPrice, VAT included.
FREE_SHIPPING_FROM = Decimal("300")
CARGO_FEE = Decimal("34.99")


def customer(rng: random.Random) -> dict[str, object]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, city_code, district, neighborhood = rng.choice(PLACES)
    street = f"{neighborhood} {rng.choice(STREETS)} No:{rng.randint(1, 180)} D:{rng.randint(1, 24)}"
    address = {
        "firstName": first,
        "lastName": last,
        "company": "",
        "address1": street,
        "address2": "",
        "city": city,
        "cityCode": city_code,
        "district": district,
        "neighborhood": neighborhood,
        "postalCode": f"{city_code:02d}{rng.randint(100, 999)}",
        "countryCode": "TR",
        "phone": f"05{rng.randint(30, 59)}{rng.randint(1000000, 9999999)}",
        "fullName": f"{first} {last}",
        "fullAddress": f"{street} {district}/{city}",
    }
    return {"firstName": first, "lastName": last, "address": address}


def lines(rng: random.Random) -> list[tuple[Product, int]]:
    count = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    quantities = rng.choices((1, 2, 3), weights=(8, 2, 1), k=count)
    return list(zip(rng.sample(CATALOGUE, count), quantities, strict=True))
