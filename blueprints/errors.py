"""What each error category means to a seller: a short label and what to do about it.

The pipeline files every failure under a category (connectors/http.py for the platforms' answers,
sync/ingest.py and sync/actions.py for packages and actions); the panel shows the label and the short,
sanitised reason, never a remote body.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

ERROR_CATEGORIES: dict[str, LazyString] = {
    "unknown_product": _l("Unknown product"),
    "shop_refused": _l("Shop refused"),
    "shop_order_gone": _l("Shop order deleted"),
    "marketplace_refused": _l("Marketplace refused"),
    "rate_limited": _l("Rate limited"),
    "unavailable": _l("Platform unavailable"),
    "invalid_data": _l("Invalid data"),
    "invalid_answer": _l("Unreadable answer"),
    "blocked": _l("Address refused"),
    "auth": _l("Keys refused"),
    "refused": _l("Request refused"),
    "internal": _l("Internal error"),
}

ERROR_ADVICE: dict[str, LazyString] = {
    "unknown_product": _l("Add the product with this stock code or barcode to your shop, then Retry."),
    "shop_refused": _l(
        "Your shop refused the order as it is: check the reason, fix it in the shop, then Retry."
    ),
    "shop_order_gone": _l(
        "The order is no longer in your shop (it was deleted there): Transfer again creates it anew, or "
        "ignore it."
    ),
    "marketplace_refused": _l("The marketplace refused the change: check the package on the marketplace."),
    "rate_limited": _l("The platform asked the hub to slow down; it tries again by itself."),
    "unavailable": _l("The platform did not answer; the hub tries again by itself."),
    "invalid_data": _l(
        "The marketplace sent a package the hub cannot read; the field is named in the reason."
    ),
    "invalid_answer": _l(
        "The platform answered with something the hub cannot read; it tries again by itself."
    ),
    "blocked": _l("The hub calls public https addresses only: check the address on the integration's page."),
    "auth": _l("The platform did not accept the keys: enter them again on the integration's page."),
    "refused": _l("The platform refused the request: check the reason and the integration's settings."),
    "internal": _l("Something went wrong inside the hub; it is logged. Retry, or write to support."),
}


def init_app(app: Flask) -> None:
    @app.context_processor
    def error_words() -> dict[str, object]:
        return {"error_categories": ERROR_CATEGORIES, "error_advice": ERROR_ADVICE}
