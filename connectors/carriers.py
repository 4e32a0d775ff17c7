"""Turkish carriers' public tracking pages, for building a link when the marketplace gives none, and the
lookup by a carrier's name that the platforms' own carrier tables share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")

# Matched by the start of the carrier name the marketplace reports, case and "Marketplace" aside.
TRACKING_PAGES = {
    "trendyol express": "https://kargotakip.trendyol.com/?trackingNumber={code}",
    "yurtiçi": "https://www.yurticikargo.com/tr/online-servisler/gonderi-sorgula?code={code}",
    "aras": "https://kargotakip.araskargo.com.tr/mainpage.aspx?code={code}",
    "mng": "https://kargotakip.mngkargo.com.tr/?takipNo={code}",
    "ptt": "https://gonderitakip.ptt.gov.tr/Track/Verify?q={code}",
    "sürat": "https://suratkargo.com.tr/KargoTakip/?kargotakipno={code}",
    "ups": "https://www.ups.com.tr/WaybillSorgu.aspx?Waybill={code}",
}


def by_name(table: Mapping[str, T], carrier: str) -> T | None:
    """What `table` holds for a carrier, matched by the start of its name (case and "Marketplace"
    aside): the first key it starts with counts."""
    name = carrier.casefold()
    return next((value for prefix, value in table.items() if name.startswith(prefix)), None)


def tracking_page(carrier: str) -> str | None:
    """The carrier's tracking-page template with a `{code}` slot, if the hub knows the carrier."""
    return by_name(TRACKING_PAGES, carrier)
