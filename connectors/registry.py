"""The connector kinds a seller can pick, with the credential fields and defaults each one needs.

Only kinds the pipeline can really drive are listed; a new marketplace or shop is one entry here plus
its connector module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from connectors import (
    amazon,
    ciceksepeti,
    hepsiburada,
    ideasoft,
    n11,
    pazarama,
    shopify,
    ticimax,
    trendyol,
    tsoft,
    woocommerce,
)
from connectors.base import Address, WebhookNotice
from connectors.http import Guard
from sync.statuses import CanonicalStatus as S


class Side(StrEnum):
    MARKETPLACE = "marketplace"
    SHOP = "shop"


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: LazyString
    secret: bool = True
    # What a value looks like (a regular expression); every value is printable ASCII, since it travels
    # in an HTTP header.
    pattern: str = r"[\x21-\x7e]+"
    pattern_help: LazyString | str = ""
    # An optional one may be left blank: what needs it says so when it is asked for.
    required: bool = True


@dataclass(frozen=True)
class PayloadReader:
    """How the core reads a marketplace's stored payload (`Order.raw`) again, for the order page and the
    shop order: each marketplace's own shape, into the normalised order. Raise ValueError (or a
    subclass) for a payload that cannot be read."""

    # The billing and shipping address, without reading the whole order again (every transfer needs them).
    addresses: Callable[[Mapping[str, Any]], tuple[Address, Address]]


@dataclass(frozen=True)
class WebhookIntake:
    """How a platform pushes its changes to the hub, where it does."""

    # Checks the delivery's proof against the secret, then reads what it names; raises WebhookRefused.
    # Called with the headers, the raw body, the secret and the path under the address ("" for most;
    # Hepsiburada calls paths of its own under it).
    read: Callable[[Mapping[str, str], bytes, str, str], WebhookNotice]
    # The secret it proves itself with: the hub's own, made at registration (""), or one of the seller's
    # credentials (Shopify signs with its app's client secret).
    secret_credential: str = ""
    # Set where the platform registers its webhooks only on request (a ticket to its support), not through
    # an API: what the seller asks it, shown with the address, user name and password to give.
    by_request: LazyString | None = None
    # The user name it sends with the secret (Basic auth), where it takes one the hub gives.
    user: str = ""


@dataclass(frozen=True)
class OAuthFlow:
    """A shop the seller connects on its own consent page (OAuth2 authorisation code, IdeaSoft): where the
    page is, how its code is traded for tokens, and how the tokens are kept (a JSON object, encrypted on
    the integration, apart from the keys the seller enters)."""

    # (the store's address, the client id, the hub's return address, the state) → the consent page
    authorize_url: Callable[[str, str, str, str], str]
    # (the guard, the store's address, the client id and secret, the code, the return address) → tokens
    exchange_code: Callable[[Guard, str, str, str, str, str], Any]
    dump: Callable[[Any], dict[str, str]]
    load: Callable[[Mapping[str, str]], Any]
    # The names of the credentials the seller enters for the app.
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class ConnectorKind:
    key: str
    label: str
    side: Side
    credential_fields: tuple[CredentialField, ...]
    default_base_url: str = ""
    # The only hosts a marketplace kind may be reached at (the allowlist aside); empty: any public host.
    pinned_hosts: tuple[str, ...] = ()
    base_url_help: LazyString | str = ""
    # Where the seller finds the credentials, in the platform's own menu names.
    credentials_help: LazyString | str = ""
    status_colors: Mapping[S, str] = field(default_factory=dict)
    # Marketplaces: the statuses from which a seller may still cancel a package (Trendyol: unsupply it),
    # i.e. before it is handed to the carrier; after that it comes back as a return, not a cancellation.
    cancellable: frozenset[S] = frozenset({S.AWAITING, S.CREATED, S.PICKING, S.INVOICED})
    # Marketplaces: the statuses a seller sets through the API, in their order (the reverse flow steps
    # through them), and how a stored payload is read again.
    settable: tuple[S, ...] = ()
    payload: PayloadReader | None = None
    # Its webhooks, registered from the panel through its API (None: the hub reads it by pulls only), and
    # what the seller reads where it has none the hub can register.
    webhooks: WebhookIntake | None = None
    no_webhooks: LazyString | str = ""
    # Marketplaces: the payload keys holding identity and tax numbers, masked wherever a payload is shown.
    masked_keys: frozenset[str] = frozenset()
    # Marketplaces: how late a change may show in the listing, when longer than the hub's overlap: the
    # pull reads that far back again.
    pull_overlap: timedelta = timedelta(0)
    # Marketplaces: the fewest seconds between two pulls its rate limits allow over a day.
    min_pull_interval: int = 10
    # Its rate limit is per seller and tight (Çiçeksepeti: a request per 5 s): the connector books its
    # turns in the hub's shared Redis (`connectors.turns`), so two workers cannot break it together.
    shared_pace: bool = False
    # Marketplaces: at most this many of an integration's actions at once, where fewer than
    # ACTIONS_IN_FLIGHT (None): one whose every request waits its turn gains nothing from two.
    actions_in_flight: int | None = None
    # The General settings its API cannot carry out, each with why, in the seller's words. The General
    # page shows them as not available on the marketplace (or the shop), and the pipeline keeps them off.
    unavailable: Mapping[str, LazyString] = field(default_factory=dict)
    # Settings that work but for a part its API cannot do: shown under the setting, which stays on.
    caveats: Mapping[str, LazyString] = field(default_factory=dict)
    # Shops: the statuses the shop knows, each with its name as the shop shows it to the seller, and which
    # one each canonical status becomes (Statuses tab).
    shop_statuses: Mapping[str, LazyString | str] = field(default_factory=dict)
    default_status_map: Mapping[S, str] = field(default_factory=dict)
    # Shops the seller connects on the platform's consent page (the keys alone are not enough).
    oauth: OAuthFlow | None = None

    def reader(self) -> PayloadReader:
        """How this marketplace's stored payloads are read (a shop has none)."""
        if self.payload is None:
            raise LookupError(f"{self.label} keeps no order payloads")
        return self.payload

    def status_name(self, status: str) -> str:
        """A shop status as the seller knows it; one the hub has no name for, as the shop sent it."""
        return str(self.shop_statuses.get(status, status))


# Colours a marketplace starts from when it has no palette of its own; readable under white text.
DEFAULT_STATUS_COLORS: Mapping[S, str] = {
    S.AWAITING: "#757575",
    S.CREATED: "#1565c0",
    S.PICKING: "#ef6c00",
    S.INVOICED: "#6a1b9a",
    S.SHIPPED: "#00838f",
    S.AT_COLLECTION_POINT: "#00695c",
    S.DELIVERED: "#2e7d32",
    S.UNDELIVERED: "#ad1457",
    S.CANCELLED: "#c62828",
    S.UNSUPPLIED: "#5d4037",
    S.RETURNED: "#4527a0",
}

TRENDYOL = ConnectorKind(
    key="trendyol",
    label="Trendyol",
    side=Side.MARKETPLACE,
    default_base_url="https://apigw.trendyol.com/integration",
    pinned_hosts=("apigw.trendyol.com", "stageapigw.trendyol.com"),
    base_url_help=_l("Trendyol's API gateway; change it only for the stage environment or the sandbox."),
    credentials_help=_l(
        "In the Trendyol seller panel: your name at the top right › Hesap Bilgilerim › Entegrasyon Bilgileri."
    ),
    credential_fields=(
        CredentialField(
            "seller_id",
            _l("Seller ID"),
            secret=False,
            pattern=r"[0-9]{1,20}",
            pattern_help=_l("Enter digits only."),
        ),
        CredentialField("api_key", _l("API Key")),
        CredentialField("api_secret", _l("API Secret")),
    ),
    # Trendyol's own orange for new orders, the rest from the shared palette.
    status_colors={**DEFAULT_STATUS_COLORS, S.CREATED: "#c2410c"},
    settable=tuple(trendyol.SETTABLE),  # Picking: Invoiced needs the real invoice number
    payload=PayloadReader(addresses=trendyol.addresses),
    masked_keys=frozenset({"identityNumber", "taxNumber"}),
    webhooks=WebhookIntake(read=trendyol.read_webhook),
)

WOOCOMMERCE = ConnectorKind(
    key="woocommerce",
    label="WooCommerce",
    side=Side.SHOP,
    base_url_help=_l("Your shop's address, e.g. https://shop.example.com"),
    credentials_help=_l(
        "In WordPress: WooCommerce › Settings › Advanced › REST API › Add key, with Read/Write permissions."
    ),
    credential_fields=(
        CredentialField("consumer_key", _l("Consumer key (ck_…)")),
        CredentialField("consumer_secret", _l("Consumer secret (cs_…)")),
    ),
    # WooCommerce's own names (its Turkish ones in the hub's catalog, as a Turkish WooCommerce shows them).
    shop_statuses={
        "pending": _l("Pending payment"),
        "processing": _l("Processing"),
        "on-hold": _l("On hold"),
        "completed": _l("Completed"),
        "cancelled": _l("Cancelled"),
        "refunded": _l("Refunded"),
        "failed": _l("Failed"),
    },
    webhooks=WebhookIntake(read=woocommerce.read_webhook),
    # WooCommerce has no "shipped": an order on its way is completed, as most Woo shops do it.
    default_status_map={
        S.AWAITING: "pending",
        S.CREATED: "processing",
        S.PICKING: "processing",
        S.INVOICED: "processing",
        S.SHIPPED: "completed",
        S.AT_COLLECTION_POINT: "completed",
        S.DELIVERED: "completed",
        S.UNDELIVERED: "on-hold",
        S.CANCELLED: "cancelled",
        S.UNSUPPLIED: "cancelled",
        S.RETURNED: "refunded",
    },
)

SHOPIFY = ConnectorKind(
    key="shopify",
    label="Shopify",
    side=Side.SHOP,
    base_url_help=_l("Your shop's Shopify address, e.g. https://your-shop.myshopify.com"),
    credentials_help=_l(
        "In Shopify's Dev Dashboard: your app › Settings, its Client ID and Secret; the app installed on "
        "your shop with the scopes read_orders, write_orders, read_products and "
        "read/write_merchant_managed_fulfillment_orders."
    ),
    credential_fields=(
        CredentialField("shopify_client_id", _l("Client ID"), secret=False),
        CredentialField("shopify_client_secret", _l("Client secret")),
    ),
    # Shopify has no free status: what its order shows (the hub's words for it: connectors/shopify.py).
    shop_statuses={
        "unfulfilled": _l("Unfulfilled"),
        "partially_fulfilled": _l("Partially fulfilled"),
        "fulfilled": _l("Fulfilled"),
        "cancelled": _l("Canceled"),
    },
    default_status_map=shopify.DEFAULT_STATUS_MAP,
    # Shopify signs its webhooks with the app's client secret.
    webhooks=WebhookIntake(read=shopify.read_webhook, secret_credential="shopify_client_secret"),
)

TSOFT = ConnectorKind(
    key="tsoft",
    label="T-Soft",
    side=Side.SHOP,
    base_url_help=_l(
        "Your store's address, e.g. https://www.example-store.com (its web service is under /rest1)."
    ),
    credentials_help=_l(
        "In the T-Soft panel, a web service user with the REST1 (Gelişmiş Web Servis) licence and permission "
        "for the order methods; if the user is limited to some IP addresses, add the hub's."
    ),
    credential_fields=(
        CredentialField("tsoft_user", _l("Web service user name"), secret=False),
        # Sent in the form body, not a header: any printable character.
        CredentialField("tsoft_password", _l("Web service password"), pattern=r"[^\x00-\x1f\x7f]+"),
    ),
    # A stock store's statuses; each store's own (its custom ones too) are read on the Statuses tab.
    shop_statuses=dict(tsoft.STATUSES),
    default_status_map=tsoft.DEFAULT_STATUS_MAP,
    no_webhooks=_l("T-Soft sends no webhooks."),
    unavailable={
        "shipping_vat_rate": _l(
            "T-Soft's web service takes the shipping charge with VAT included and no rate: your store "
            "applies its own cargo VAT."
        ),
        "force_tracking_link": _l(
            "T-Soft makes the tracking link itself from its cargo settings: the hub passes the code and "
            "the carrier."
        ),
    },
)

N11 = ConnectorKind(
    key="n11",
    label="N11",
    side=Side.MARKETPLACE,
    default_base_url=n11.DEFAULT_BASE_URL,
    pinned_hosts=("api.n11.com",),
    base_url_help=_l("N11's API address; change it only for the sandbox."),
    credentials_help=_l("In the n11 seller panel: Hesabım › API Hesapları."),
    credential_fields=(
        CredentialField("app_key", _l("App key")),
        CredentialField("app_secret", _l("App secret")),
    ),
    status_colors=DEFAULT_STATUS_COLORS,
    # N11 takes a seller's cancellation only once the package is accepted; a new one is rejected in its panel.
    cancellable=frozenset({S.PICKING}),
    settable=tuple(n11.SETTABLE),
    pull_overlap=timedelta(minutes=15),  # N11's advice: keep the cursor 15 minutes back
    payload=PayloadReader(addresses=n11.addresses),
    masked_keys=frozenset({"tcId", "taxId"}),
    no_webhooks=_l("N11 sends no webhooks."),
    unavailable={
        "update_feedback": _l(
            "N11 takes the tracking number of your own carrier only through its old SOAP service, which the "
            "hub does not use: enter it in the n11 seller panel."
        ),
    },
)

HEPSIBURADA = ConnectorKind(
    key="hepsiburada",
    label="Hepsiburada",
    side=Side.MARKETPLACE,
    default_base_url=hepsiburada.DEFAULT_BASE_URL,
    pinned_hosts=("oms-external.hepsiburada.com", "oms-external-sit.hepsiburada.com"),
    base_url_help=_l(
        "Hepsiburada's order API; change it only for its test environment (SIT) or the sandbox."
    ),
    credentials_help=_l(
        "In the Hepsiburada merchant panel, on its integration page: the Merchant ID and the Servis Anahtarı."
    ),
    credential_fields=(
        CredentialField(
            "merchant_id",
            _l("Merchant ID"),
            secret=False,
            pattern=r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}",
            pattern_help=_l(
                "Enter the Merchant ID as Hepsiburada shows it, e.g. 1b2c3d4e-0000-4a5b-8c9d-0123456789ab."
            ),
        ),
        CredentialField("service_key", _l("Service key (Servis Anahtarı)")),
    ),
    status_colors=DEFAULT_STATUS_COLORS,
    # A line is cancelled by the seller while open or packed; once the carrier has it, it is a return.
    cancellable=frozenset({S.CREATED, S.PICKING}),
    settable=tuple(hepsiburada.SETTABLE),  # Picking: packing the open lines
    # Hepsiburada's lists are asked to the minute: read a little back, for a change in the minute a pull ends.
    pull_overlap=timedelta(minutes=2),
    payload=PayloadReader(addresses=hepsiburada.addresses),
    masked_keys=hepsiburada.MASKED_KEYS,
    webhooks=WebhookIntake(
        read=hepsiburada.read_webhook,
        user=hepsiburada.WEBHOOK_USER,
        by_request=_l(
            "Hepsiburada registers webhooks by a ticket to its integration support: open one in the "
            "merchant panel (Destek › Entegrasyon), asking for order webhooks with the address, user name "
            "and password below. Once Hepsiburada's first delivery arrives, the hub shows the webhooks as "
            "registered."
        ),
    ),
)

AMAZON = ConnectorKind(
    key="amazon",
    label="Amazon",
    side=Side.MARKETPLACE,
    default_base_url=amazon.DEFAULT_BASE_URL,
    # The token comes from Login with Amazon (api.amazon.com), which the connector asks itself: it is no
    # address a seller enters.
    pinned_hosts=("sellingpartnerapi-eu.amazon.com", "sandbox.sellingpartnerapi-eu.amazon.com"),
    base_url_help=_l(
        "Amazon's Selling Partner API for Europe, which serves Amazon.com.tr; change it only for the sandbox."
    ),
    credentials_help=_l(
        "In Seller Central: Apps and Services › Develop Apps: your app's LWA client identifier and secret, "
        "and the refresh token its authorisation gave (renewed every 365 days). The Merchant Token is under "
        "Settings › Account Info › Business Information."
    ),
    credential_fields=(
        CredentialField(
            "refresh_token",
            _l("Refresh token"),
            pattern=r"Atzr\|[\x21-\x7e]+",
            pattern_help=_l("Enter the refresh token as Amazon gives it: it starts with Atzr|."),
        ),
        CredentialField(
            "client_id",
            _l("LWA client identifier"),
            secret=False,
            pattern=r"amzn1\.application-oa2-client\.[0-9a-z]+",
            pattern_help=_l("Enter the client identifier as Amazon shows it: amzn1.application-oa2-client.…"),
        ),
        CredentialField("client_secret", _l("LWA client secret")),
        CredentialField(
            "merchant_token",
            _l("Merchant Token (to cancel orders from the shop)"),
            secret=False,
            pattern=r"A[0-9A-Z]{9,20}",
            pattern_help=_l("Enter the Merchant Token as Seller Central shows it, e.g. A1B2C3D4E5F6G7."),
            required=False,
        ),
    ),
    status_colors={**DEFAULT_STATUS_COLORS, S.CREATED: "#232f3e"},
    # A seller cancels an order not shipped yet (the order acknowledgement feed); Amazon has no approval.
    cancellable=frozenset({S.CREATED}),
    settable=(),
    # Amazon lists a change only two minutes after it (lastUpdatedBefore): read back further than that.
    pull_overlap=timedelta(minutes=5),
    # searchOrders refills one request every three minutes (a burst of 20): no more often over a day.
    min_pull_interval=180,
    payload=PayloadReader(addresses=amazon.addresses),
    masked_keys=amazon.MASKED_KEYS,
    no_webhooks=_l("Amazon sends its order notifications to AWS queues, not to a web address."),
    unavailable={
        "approval_feedback": _l(
            "Amazon has no approval step: a paid order is to be shipped at once, and waits for its shipment."
        ),
    },
)

CICEKSEPETI = ConnectorKind(
    key="ciceksepeti",
    label="Çiçeksepeti",
    side=Side.MARKETPLACE,
    default_base_url=ciceksepeti.DEFAULT_BASE_URL,
    pinned_hosts=("apis.ciceksepeti.com", "sandbox-apis.ciceksepeti.com"),
    base_url_help=_l("Çiçeksepeti's API address; change it only for its test environment or the sandbox."),
    credentials_help=_l("In the Çiçeksepeti seller panel: Hesabım › Entegrasyon Bilgileri (API key)."),
    credential_fields=(
        CredentialField(
            "ciceksepeti_seller_id",
            _l("Seller ID"),
            secret=False,
            pattern=r"[0-9]{1,20}",
            pattern_help=_l("Enter digits only."),
        ),
        CredentialField("ciceksepeti_api_key", _l("API key")),
    ),
    status_colors=DEFAULT_STATUS_COLORS,
    # Çiçeksepeti has no cancel API: a seller cancels a new or preparing order in its panel. From these a
    # cancellation in the shop is passed on, for the connector to refuse by name (the order's history
    # then says to cancel in the Çiçeksepeti panel); later on, it is too late there as well.
    cancellable=frozenset({S.CREATED, S.PICKING}),
    settable=tuple(ciceksepeti.SETTABLE),
    # Its times are to the minute: the minute a pull ended is read again.
    pull_overlap=timedelta(minutes=2),
    # GetOrders takes one request per 5 seconds, and a page is two (active and cancelled items).
    min_pull_interval=60,
    shared_pace=True,
    actions_in_flight=1,
    caveats={
        "reverse_flow": _l(
            "there is no API to cancel an order: a cancellation in your shop is not passed on (the order's "
            "history says so); cancel the order in the Çiçeksepeti seller panel."
        ),
    },
    payload=PayloadReader(addresses=ciceksepeti.addresses),
    masked_keys=ciceksepeti.MASKED_KEYS,
    no_webhooks=_l("Çiçeksepeti sends no webhooks."),
)

PAZARAMA = ConnectorKind(
    key="pazarama",
    label="Pazarama",
    side=Side.MARKETPLACE,
    default_base_url=pazarama.DEFAULT_BASE_URL,
    pinned_hosts=("isortagimapi.pazarama.com",),
    base_url_help=_l("Pazarama's API address; change it only for the sandbox."),
    credentials_help=_l(
        "In the Pazarama partner panel (isortagim.pazarama.com): Hesap Bilgileri › API Bilgileri."
    ),
    credential_fields=(
        CredentialField("pazarama_client_id", _l("API key (client ID)"), secret=False),
        CredentialField("pazarama_client_secret", _l("API secret (client secret)")),
    ),
    status_colors=DEFAULT_STATUS_COLORS,
    # A seller's cancellation (Tedarik Edilemedi) goes before the parcel ships, accepted or not.
    cancellable=frozenset({S.CREATED, S.PICKING}),
    settable=tuple(pazarama.SETTABLE),
    # Pazarama lists orders by order date, with no "changed since": the pull reads the last two weeks'
    # orders again (about once a minute), so an open order's later steps reach the hub.
    pull_overlap=pazarama.REREAD,
    payload=PayloadReader(addresses=pazarama.addresses),
    masked_keys=pazarama.MASKED_KEYS,
    no_webhooks=_l("Pazarama sends no webhooks."),
)

TICIMAX = ConnectorKind(
    key="ticimax",
    label="Ticimax",
    side=Side.SHOP,
    base_url_help=_l(
        "Your store's address, e.g. https://www.example-store.com (its web services are under /Servis)."
    ),
    credentials_help=_l("In the Ticimax panel: Ayarlar › Web Servis › Yetki Kodu (WS Yetki Kodu)."),
    credential_fields=(
        # Sent inside the SOAP body, not a header: any printable character.
        CredentialField(
            "ticimax_ws_code",
            _l("Web service authorisation code (WS Yetki Kodu)"),
            pattern=r"[^\x00-\x1f\x7f]+",
        ),
    ),
    # A fixed list: the enum name Ticimax's web service takes → the name its panel shows.
    shop_statuses=dict(ticimax.STATUSES),
    default_status_map=ticimax.DEFAULT_STATUS_MAP,
    no_webhooks=_l("Ticimax sends no webhooks."),
    unavailable={
        "shipping_vat_rate": _l(
            "Ticimax's web service takes the shipping charge as one amount with VAT included and no "
            "rate: your store applies its own cargo VAT."
        ),
    },
)

IDEASOFT = ConnectorKind(
    key="ideasoft",
    label="IdeaSoft",
    side=Side.SHOP,
    base_url_help=_l("Your store's IdeaSoft address, e.g. https://your-store.myideasoft.com"),
    credentials_help=_l(
        "In the IdeaSoft panel: Entegrasyonlar › API, a new application with the hub's address as its "
        "redirect address; its Client ID and Client Secret. Then connect the store on IdeaSoft's consent "
        "page."
    ),
    credential_fields=(
        CredentialField("ideasoft_client_id", _l("Client ID"), secret=False),
        CredentialField("ideasoft_client_secret", _l("Client secret")),
    ),
    shop_statuses=dict(ideasoft.STATUSES),
    default_status_map=ideasoft.DEFAULT_STATUS_MAP,
    # IdeaSoft signs its webhooks with the application's client secret.
    webhooks=WebhookIntake(read=ideasoft.read_webhook, secret_credential="ideasoft_client_secret"),
    oauth=OAuthFlow(
        authorize_url=ideasoft.authorize_url,
        exchange_code=ideasoft.exchange_code,
        dump=ideasoft.credentials_of,
        load=ideasoft.tokens_from,
        client_id="ideasoft_client_id",
        client_secret="ideasoft_client_secret",
    ),
    unavailable={
        "shipping_vat_rate": _l(
            "IdeaSoft keeps an order's shipping charge as one amount with VAT included, without a rate: "
            "your store applies its own cargo VAT."
        ),
        "force_tracking_link": _l(
            "IdeaSoft makes the tracking link itself from the cargo company: the hub passes the code and "
            "the carrier."
        ),
    },
)

MARKETPLACES: Mapping[str, ConnectorKind] = {
    kind.key: kind for kind in (TRENDYOL, HEPSIBURADA, N11, AMAZON, PAZARAMA, CICEKSEPETI)
}
SHOPS: Mapping[str, ConnectorKind] = {
    kind.key: kind for kind in (WOOCOMMERCE, SHOPIFY, TSOFT, IDEASOFT, TICIMAX)
}
KINDS: Mapping[Side, Mapping[str, ConnectorKind]] = {Side.MARKETPLACE: MARKETPLACES, Side.SHOP: SHOPS}

# One form serves every kind of a side, with a field per credential name: two kinds of a side cannot
# share a name (one field, one check: the last kind's would replace the other's).
for _kinds in KINDS.values():
    _names = [credential.name for kind in _kinds.values() for credential in kind.credential_fields]
    if len(_names) != len(set(_names)):
        raise RuntimeError(f"two kinds of one side share a credential name: {sorted(_names)}")
