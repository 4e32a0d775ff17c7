"""Turkish carriers' public tracking pages, for building a link when the marketplace gives none."""

from __future__ import annotations

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


def tracking_page(carrier: str) -> str | None:
    """The carrier's tracking-page template with a `{code}` slot, if the hub knows the carrier."""
    name = carrier.casefold()
    return next((template for prefix, template in TRACKING_PAGES.items() if name.startswith(prefix)), None)
